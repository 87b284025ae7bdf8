//! Running a complete request through the app on the worker's Python thread,
//! and what follows: the response completes or parks on its connection, the
//! access log line is written, the connection moves to its next phase. A
//! request the parser refused is answered and logged here too.
//!
//! `max_requests` is counted here, and a graceful stop decides per request
//! whether the connection may stay open: only for a request the client has
//! already pipelined behind this one.

use std::time::{Duration, Instant, SystemTime};

use pyo3::Python;

use crate::http::head::{self, BodyKind, Limits, RequestHead};
use crate::http::response;
use crate::log::access::Entry;
use crate::wsgi::{ConnIo, Handled, Outcome};

use super::conn::InFlight;
use super::event_loop::{Retire, Server};

/// When a request started, for its access log line.
#[derive(Clone, Copy)]
pub(super) struct Started {
    /// Wall clock, for `%(t)s`.
    pub(super) at: SystemTime,
    /// Monotonic clock, for the duration atoms.
    pub(super) clock: Instant,
}

impl Server<'_> {
    /// Hand `head` (and the connection's buffers) to the app.
    pub(super) fn dispatch(&mut self, slot: usize, head: RequestHead) {
        self.served += 1;
        if self.max_requests.is_some_and(|limit| self.served >= limit) {
            self.begin_stop(Retire::MaxRequests);
        }
        let limits = self.limits;
        let keepalive = self.config.keepalive().is_some();
        let stopping = self.stopping;
        let Some(conn) = self.conn_mut(slot) else {
            return;
        };
        // While stopping, a connection stays open only for requests the client
        // has already sent: the last of them is answered with Connection: close.
        let keep_alive_allowed =
            keepalive && (!stopping || pipelined_after(&conn.rbuf, conn.rpos, &head, &limits));
        if self.asgi.is_some() {
            self.heartbeat.beat();
            self.heartbeat.count_request();
            let started = Started {
                at: SystemTime::now(),
                clock: Instant::now(),
            };
            return self.dispatch_asgi(slot, head, keep_alive_allowed, started);
        }
        let Some(conn) = self.conn_mut(slot) else {
            return;
        };
        let io = ConnIo {
            wire: conn.wire.lend(),
            rbuf: std::mem::take(&mut conn.rbuf),
            rpos: conn.rpos,
            wbuf: match conn.wbuf.capacity() {
                0 => self.spare.take(),
                _ => std::mem::take(&mut conn.wbuf),
            },
        };
        self.heartbeat.beat();
        self.heartbeat.set_request(head.method(), head.target());
        self.heartbeat.count_request();
        let started = Started {
            at: SystemTime::now(),
            clock: Instant::now(),
        };
        let Some(conn) = self.conns.get(slot).and_then(Option::as_ref) else {
            return;
        };
        if let Some(pool) = &self.pool {
            // A request thread runs it; the loop hears back through the pool.
            let Some(conn) = self.conns.get_mut(slot).and_then(Option::as_mut) else {
                return;
            };
            conn.phase = super::conn::Phase::InApp {
                since: started.clock,
            };
            pool.submit(super::pool::Job::Request {
                slot,
                head,
                info: conn.info.clone(),
                io,
                keep_alive_allowed,
                started,
            });
            return;
        }
        // In the app, this loop takes no connection: peers wait for us briefly.
        let open = self.open_conns();
        self.seat.publish(open, crate::balance::Availability::Busy);
        let wsgi = &self.wsgi;
        let handled =
            Python::attach(|py| wsgi.handle(py, &head, &conn.info, io, keep_alive_allowed));
        self.publish_load();
        self.heartbeat.clear_request();
        self.heartbeat.beat();
        self.settle(slot, handled, head, started);
        // The SIGABRT handler ran inside the app (its SystemExit came back as
        // the app's error): leave without serving anything else.
        if self.abort.is_raised() {
            self.aborted = true;
            if let Some(conn) = self.conn_mut(slot) {
                // Best effort, without waiting: the 500 the app error produced.
                let _ = conn.flush();
            }
        }
    }

    /// After the app ran (or resumed): complete the response, or park it on the
    /// connection until the client has read what is buffered.
    pub(super) fn settle(
        &mut self,
        slot: usize,
        handled: Handled,
        head: RequestHead,
        started: Started,
    ) {
        match handled {
            Handled::Done(outcome) => self.complete(slot, &head, outcome, started),
            Handled::Parked(parked, body) => {
                let Some(conn) = self.conn_mut(slot) else {
                    // Its client is gone: the request is over.
                    self.heartbeat.tally().finish();
                    return;
                };
                // Not idle: a graceful stop waits for it like any request.
                let in_flight = InFlight {
                    parked,
                    body,
                    head,
                    started,
                };
                conn.phase.park(in_flight, Instant::now());
            }
        }
    }

    /// A response is complete: take the buffers back, log it; the connection
    /// writes it, then reads the next request or closes.
    fn complete(&mut self, slot: usize, head: &RequestHead, outcome: Outcome, started: Started) {
        let tally = self.heartbeat.tally();
        let duration = started.clock.elapsed();
        tally.record(head.method(), outcome.status, duration);
        tally.finish();
        crate::log::statsd::request(outcome.status, duration);
        let Some(conn) = self.conns.get_mut(slot).and_then(Option::as_mut) else {
            return;
        };
        conn.wire = outcome.io.wire;
        conn.rbuf = outcome.io.rbuf;
        conn.rpos = outcome.io.rpos;
        conn.wbuf = outcome.io.wbuf;
        conn.wpos = 0;
        if conn.rpos >= conn.rbuf.len() {
            conn.rbuf.clear();
            conn.rpos = 0;
        }
        conn.phase.response_done(outcome.keep_alive, Instant::now());
        if let Some(access) = self.access.as_mut() {
            let request_headers: Vec<_> = head.headers().collect();
            access.log(&Entry {
                remote_addr: &conn.info.remote_addr,
                method: head.method(),
                target: head.target(),
                protocol: head.version.as_str(),
                request_headers: &request_headers,
                status: outcome.status,
                response_headers: &outcome.headers,
                bytes: outcome.body_bytes,
                started: started.at,
                duration: started.clock.elapsed(),
                environ: &outcome.environ_values,
                disconnected: outcome.disconnected,
                thread: outcome.thread.as_deref(),
            });
        }
    }

    /// Answer a request the parser refused with `status` and close; its
    /// access log line carries what can be read of its request line.
    pub(super) fn refuse(&mut self, slot: usize, status: u16, reason: &'static str) {
        let server_header = self.config.server_header.as_bytes();
        let Some(conn) = self.conns.get_mut(slot).and_then(Option::as_mut) else {
            return;
        };
        let mut date = response::DateCache::new();
        response::error_response(&mut conn.wbuf, status, reason, date.get(), server_header);
        let line = RefusedLine::read(&conn.rbuf[conn.rpos..]);
        // Discard the rest of the input: it cannot be framed.
        conn.rbuf.clear();
        conn.rpos = 0;
        conn.phase.response_done(false, Instant::now());
        self.heartbeat
            .tally()
            .record(&line.method, status, Duration::ZERO);
        crate::log::statsd::request(status, Duration::ZERO);
        if let Some(access) = self.access.as_mut() {
            // A refused request is still a request the operator wants to see,
            // with the status it got.
            access.log(&Entry {
                remote_addr: &conn.info.remote_addr,
                method: &line.method,
                target: &line.target,
                protocol: &line.protocol,
                request_headers: &[],
                status,
                response_headers: &[],
                bytes: reason.len() as u64 + 1,
                started: SystemTime::now(),
                duration: Duration::ZERO,
                environ: &[],
                disconnected: false,
                thread: None,
            });
        }
    }
}

/// True when the buffer already holds another complete request head after
/// `head`'s body (which starts at `rpos`), so a stopping worker can still answer
/// it on this connection.
fn pipelined_after(rbuf: &[u8], rpos: usize, head: &RequestHead, limits: &Limits) -> bool {
    let body = match head.body {
        BodyKind::Empty => 0,
        BodyKind::Length(n) => n,
        BodyKind::Chunked => return false,
    };
    let next = usize::try_from(body).ok().and_then(|b| rpos.checked_add(b));
    match next {
        Some(next) if next < rbuf.len() => {
            matches!(head::parse(&rbuf[next..], limits), Ok(Some(_)))
        }
        _ => false,
    }
}

/// What can be read of the request line of a request the parser refused, for
/// its access log line (the access log escapes whatever bytes it holds).
struct RefusedLine {
    method: String,
    target: String,
    protocol: String,
}

impl RefusedLine {
    /// Longest request line quoted in the log.
    const MAX: usize = 1024;

    fn read(buf: &[u8]) -> RefusedLine {
        let start = buf.iter().position(|&b| b != b'\r' && b != b'\n');
        let buf = &buf[start.unwrap_or(buf.len())..];
        let buf = &buf[..buf.len().min(Self::MAX)];
        let line = buf.split(|&b| b == b'\n').next().unwrap_or_default();
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        // Latin-1, like every other request string: one char per byte.
        let text: String = line.iter().map(|&b| char::from(b)).collect();
        let mut parts = text.splitn(3, ' ');
        let mut part = || parts.next().unwrap_or("").to_owned();
        RefusedLine {
            method: part(),
            target: part(),
            protocol: part(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(bytes: &[u8]) -> (RequestHead, usize) {
        head::parse(bytes, &Limits::default()).unwrap().unwrap()
    }

    #[test]
    fn a_buffered_pipelined_request_keeps_a_stopping_connection_open() {
        let buf = b"GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /b HTTP/1.1\r\nHost: x\r\n\r\n";
        let (h, used) = parsed(buf);
        assert!(pipelined_after(buf, used, &h, &Limits::default()));
    }

    #[test]
    fn the_last_buffered_request_closes_a_stopping_connection() {
        let buf = b"GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /b HTTP/1.1\r\nHo";
        let (h, used) = parsed(buf);
        assert!(!pipelined_after(buf, used, &h, &Limits::default()));
        let one = b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n";
        let (h, used) = parsed(one);
        assert!(!pipelined_after(one, used, &h, &Limits::default()));
    }

    #[test]
    fn pipelined_requests_are_found_after_a_buffered_body() {
        let buf =
            b"POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabcGET /b HTTP/1.1\r\n\r\n";
        let (h, used) = parsed(buf);
        assert!(pipelined_after(buf, used, &h, &Limits::default()));
        // Body not fully buffered: the next request's start is unknown.
        let short = b"POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 30\r\n\r\nabc";
        let (h, used) = parsed(short);
        assert!(!pipelined_after(short, used, &h, &Limits::default()));
    }

    #[test]
    fn a_refused_request_line_is_read_as_latin1_words() {
        let line = RefusedLine::read(b"\r\nGET /caf\xe9 HTTP/1.1\r\nBad Header: y\r\n");
        assert_eq!(line.method, "GET");
        assert_eq!(line.target, "/caf\u{e9}");
        assert_eq!(line.protocol, "HTTP/1.1");
        let junk = RefusedLine::read(b"\x16\x03\x01");
        assert_eq!(junk.method, "\u{16}\u{3}\u{1}");
        assert_eq!(junk.target, "");
    }
}
