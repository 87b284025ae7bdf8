//! The master's metrics listener: `/metrics`, `/healthz`, `/readyz`.
//!
//! Served inside the master's own poll loop, non-blocking, with no threads and
//! no async runtime: the listener and each open scrape connection are polled
//! with the signal pipe, a turn reads what has arrived, answers a complete
//! request head at once from memory the master already holds (shared-memory
//! slots, its own counters), and writes as much as the socket takes. Every
//! response closes its connection (HTTP/1.0 style: `Connection: close`, a
//! `Content-Length`). A client that stalls is dropped after [`CLIENT_TIMEOUT`];
//! at most [`MAX_CLIENTS`] are held, the oldest going first.
//!
//! It is deliberately not the worker's HTTP stack: a handful of fixed paths,
//! GET and HEAD only, a head of at most [`MAX_HEAD`] bytes.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::time::{Duration, Instant};

use crate::listen::Listener;

/// How long a scrape client may take to send its request and read the answer.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(5);
/// Most scrape connections held at once.
const MAX_CLIENTS: usize = 32;
/// Longest request head read.
const MAX_HEAD: usize = 8192;

/// A response to one request on the metrics listener.
pub(super) struct Answer {
    /// HTTP status code.
    pub(super) status: u16,
    /// Content-Type header value.
    pub(super) content_type: &'static str,
    /// The body (left out for HEAD).
    pub(super) body: String,
}

impl Answer {
    /// A plain-text answer.
    pub(super) fn text(status: u16, body: &str) -> Answer {
        Answer {
            status,
            content_type: "text/plain; charset=utf-8",
            body: body.to_owned(),
        }
    }
}

/// The paths the listener answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Route {
    /// `/metrics`: Prometheus exposition.
    Metrics,
    /// `/healthz`: the master is alive.
    Health,
    /// `/readyz`: enough workers serve.
    Ready,
}

/// One scrape connection.
struct Client {
    fd: OwnedFd,
    /// The request head as read so far.
    head: Vec<u8>,
    /// The response, once the head is complete; written from `written`.
    out: Option<Vec<u8>>,
    written: usize,
    accepted: Instant,
}

/// The metrics listener and its open connections.
pub(super) struct Scrapes {
    listener: Listener,
    clients: Vec<Client>,
}

impl Scrapes {
    /// Serve scrapes on `listener`.
    pub(super) fn new(listener: Listener) -> Scrapes {
        Scrapes {
            listener,
            clients: Vec::new(),
        }
    }

    /// The listening socket (for the USR2 hand-over, and to close in workers).
    pub(super) fn listener(&self) -> &Listener {
        &self.listener
    }

    /// A new master serves the socket file now: leave it in place at exit.
    pub(super) fn keep_path(&mut self) {
        self.listener.keep_path();
    }

    /// Every descriptor to close in a forked worker.
    pub(super) fn fds(&self) -> impl Iterator<Item = std::os::fd::RawFd> + '_ {
        std::iter::once(self.listener.fd.as_raw_fd())
            .chain(self.clients.iter().map(|c| c.fd.as_raw_fd()))
    }

    /// What to poll: the listener for a connection, each client for input or
    /// for room to write.
    pub(super) fn poll_fds(&self) -> Vec<(BorrowedFd<'_>, nix::poll::PollFlags)> {
        use nix::poll::PollFlags;
        let mut fds = vec![(self.listener.fd.as_fd(), PollFlags::POLLIN)];
        for c in &self.clients {
            let want = if c.out.is_some() {
                PollFlags::POLLOUT
            } else {
                PollFlags::POLLIN
            };
            fds.push((c.fd.as_fd(), want));
        }
        fds
    }

    /// Accept, read, answer and write whatever is ready, without blocking.
    /// `answer` builds the response to a route from the master's state.
    pub(super) fn serve(&mut self, answer: impl Fn(Route) -> Answer) {
        self.accept();
        let now = Instant::now();
        self.clients.retain_mut(|c| {
            if now.duration_since(c.accepted) > CLIENT_TIMEOUT {
                return false;
            }
            if c.out.is_none() && !c.read() {
                return false;
            }
            if c.out.is_none()
                && let Some(end) = head_end(&c.head)
            {
                c.out = Some(respond(&c.head[..end], &answer));
            }
            match &c.out {
                Some(_) => c.write(),
                None => true,
            }
        });
    }

    fn accept(&mut self) {
        loop {
            // SAFETY: accept4 on our listening socket; the result is checked and
            // owned at once.
            let fd = unsafe {
                libc::accept4(
                    self.listener.fd.as_raw_fd(),
                    std::ptr::null_mut(),
                    std::ptr::null_mut(),
                    libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
                )
            };
            if fd < 0 {
                return;
            }
            // SAFETY: accept4 returned a new descriptor nothing else owns.
            let fd = unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) };
            if self.clients.len() >= MAX_CLIENTS {
                self.clients.remove(0);
            }
            self.clients.push(Client {
                fd,
                head: Vec::new(),
                out: None,
                written: 0,
                accepted: Instant::now(),
            });
        }
    }
}

impl Client {
    /// Read what has arrived; false when the connection is finished (EOF,
    /// error, or a head too long).
    fn read(&mut self) -> bool {
        let mut buf = [0u8; 2048];
        loop {
            match nix::unistd::read(&self.fd, &mut buf) {
                // A client that shut down its side after the head still gets
                // its answer.
                Ok(0) => return head_end(&self.head).is_some(),
                Ok(n) => {
                    self.head.extend_from_slice(&buf[..n]);
                    if self.head.len() > MAX_HEAD {
                        return false;
                    }
                }
                Err(nix::errno::Errno::EAGAIN) => return true,
                Err(nix::errno::Errno::EINTR) => {}
                Err(_) => return false,
            }
        }
    }

    /// Write what the socket takes; false once all is written (or it failed).
    fn write(&mut self) -> bool {
        let Some(out) = &self.out else {
            return true;
        };
        while self.written < out.len() {
            match nix::sys::socket::send(
                self.fd.as_raw_fd(),
                &out[self.written..],
                nix::sys::socket::MsgFlags::MSG_NOSIGNAL,
            ) {
                Ok(n) => self.written += n,
                Err(nix::errno::Errno::EAGAIN) => return true,
                Err(nix::errno::Errno::EINTR) => {}
                Err(_) => return false,
            }
        }
        false
    }
}

/// Length of the head up to and including its blank line, once complete.
fn head_end(buf: &[u8]) -> Option<usize> {
    memchr::memmem::find(buf, b"\r\n\r\n")
        .map(|i| i + 4)
        .or_else(|| memchr::memmem::find(buf, b"\n\n").map(|i| i + 2))
}

/// The whole response to a request head.
fn respond(head: &[u8], answer: &impl Fn(Route) -> Answer) -> Vec<u8> {
    let line = head.split(|&b| b == b'\n').next().unwrap_or_default();
    let line = String::from_utf8_lossy(line);
    let mut words = line.split_whitespace();
    let (method, target) = (words.next().unwrap_or(""), words.next().unwrap_or(""));
    let path = target.split('?').next().unwrap_or("");
    let route = match path {
        "/metrics" => Some(Route::Metrics),
        "/healthz" => Some(Route::Health),
        "/readyz" => Some(Route::Ready),
        _ => None,
    };
    let a = match (method, route) {
        ("GET" | "HEAD", Some(route)) => answer(route),
        (_, Some(_)) => Answer::text(405, "method not allowed\n"),
        _ => Answer::text(404, "not found; try /metrics, /healthz or /readyz\n"),
    };
    let reason = match a.status {
        200 => "OK",
        404 => "Not Found",
        405 => "Method Not Allowed",
        503 => "Service Unavailable",
        _ => "Unknown",
    };
    let mut out = format!(
        "HTTP/1.1 {} {reason}\r\nContent-Type: {}\r\nContent-Length: {}\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n",
        a.status,
        a.content_type,
        a.body.len()
    )
    .into_bytes();
    if method != "HEAD" {
        out.extend_from_slice(a.body.as_bytes());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(route: Route) -> Answer {
        match route {
            Route::Metrics => Answer::text(200, "m"),
            Route::Health => Answer::text(200, "ok"),
            Route::Ready => Answer::text(503, "no"),
        }
    }

    fn text(head: &str) -> String {
        String::from_utf8(respond(head.as_bytes(), &answer)).unwrap()
    }

    #[test]
    fn routes_are_answered_by_path() {
        let r = text("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
        assert!(r.starts_with("HTTP/1.1 200 OK\r\n"), "{r}");
        assert!(r.ends_with("\r\n\r\nok"), "{r}");
        let r = text("GET /readyz?verbose HTTP/1.1\r\n\r\n");
        assert!(r.starts_with("HTTP/1.1 503 Service Unavailable\r\n"), "{r}");
        let r = text("GET /nope HTTP/1.1\r\n\r\n");
        assert!(r.starts_with("HTTP/1.1 404 "), "{r}");
        let r = text("POST /metrics HTTP/1.1\r\n\r\n");
        assert!(r.starts_with("HTTP/1.1 405 "), "{r}");
    }

    #[test]
    fn head_gets_no_body() {
        let r = text("HEAD /metrics HTTP/1.1\r\n\r\n");
        assert!(
            r.ends_with(
                "Content-Length: 1\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n"
            ),
            "{r}"
        );
    }

    #[test]
    fn a_head_ends_at_its_blank_line() {
        assert_eq!(head_end(b"GET / HTTP/1.1\r\nHost: x\r\n"), None);
        assert_eq!(head_end(b"GET / HTTP/1.0\r\n\r\nrest"), Some(18));
        assert_eq!(head_end(b"GET /\n\n"), Some(7));
    }
}
