//! The request body as `wsgi.input` reads it: decoded from the bytes the
//! event loop already buffered, then from the socket as the app asks.
//!
//! Reading blocks only the way PEP 3333 requires (the app asked for bytes the
//! client has not sent yet), always with the GIL released. `Expect:
//! 100-continue` is answered at the first read that needs the socket, so a
//! client is only invited to send a body the app wants.

use crate::wire::Wire;
use std::time::Duration;

use pyo3::Python;

use super::exchange::IoFailure;
use crate::http::body::Decoder;
use crate::http::head::Version;

/// Bytes read from the socket per read(2) while streaming a body.
const READ_CHUNK: usize = 64 * 1024;

/// Why reading the request body failed: the client's doing, not the app's,
/// so it decides the answer instead of a 500.
#[derive(Clone, Debug)]
pub(crate) enum BodyFailure {
    /// The body's framing is malformed: 400.
    Malformed(crate::http::ParseError),
    /// The client closed the connection mid-body: nothing can be answered.
    Disconnected,
    /// The client stopped sending mid-body: 408.
    TimedOut,
    /// The body grew past `limit_request_body`: 413.
    TooLarge,
}

/// The body side of one request. See the module doc.
pub(crate) struct RequestBody {
    /// Bytes read from the socket and not yet consumed; body bytes start at `rpos`.
    pub rbuf: Vec<u8>,
    /// Read position in `rbuf`.
    pub rpos: usize,
    /// Body framing state.
    decoder: Decoder,
    /// Decoded body bytes read from `rbuf` but not yet returned to the app.
    spill: Vec<u8>,
    /// Read position in `spill`.
    spill_pos: usize,
    /// `Expect: 100-continue` not yet answered.
    continue_pending: bool,
    /// Reading failed, and why; later reads fail the same way.
    pub failure: Option<BodyFailure>,
    /// Body bytes decoded so far, against `limit`.
    decoded: u64,
    /// `limit_request_body` (0: none); a Content-Length over it never gets here.
    limit: u64,
}

impl RequestBody {
    /// The body framed by `decoder`, starting at `rbuf[rpos..]`.
    pub fn new(
        rbuf: Vec<u8>,
        rpos: usize,
        decoder: Decoder,
        expect_continue: bool,
        limit: u64,
    ) -> RequestBody {
        RequestBody {
            rbuf,
            rpos,
            decoder,
            spill: Vec::new(),
            spill_pos: 0,
            continue_pending: expect_continue,
            failure: None,
            decoded: 0,
            limit,
        }
    }

    /// Body bytes still to come, when the framing says (Content-Length).
    pub fn remaining(&self) -> Option<u64> {
        let spilled = (self.spill.len() - self.spill_pos) as u64;
        self.decoder.remaining_hint().map(|n| n + spilled)
    }

    /// The whole body has been read.
    pub fn is_done(&self) -> bool {
        self.decoder.is_done() && self.spill_pos >= self.spill.len()
    }

    /// The client was offered `100 Continue` and has not been told to send:
    /// it may send the body or not, so nothing after it can be framed. The
    /// offer is withdrawn (the response is about to go out).
    pub fn withdraw_continue(&mut self) -> bool {
        let unusable = self.continue_pending && !self.decoder.is_done();
        self.continue_pending = false;
        unusable
    }

    /// Skip an unread rest of the body that is already buffered and at most
    /// `limit` bytes; true when the next request can then be read.
    pub fn skip_buffered(&mut self, limit: usize) -> bool {
        if self.spill_pos < self.spill.len() {
            self.spill.clear();
            self.spill_pos = 0;
        }
        let mut skipped = 0;
        while !self.decoder.is_done() && skipped <= limit {
            let Ok(d) = self.decoder.decode(&self.rbuf[self.rpos..]) else {
                return false;
            };
            if d.consumed == 0 {
                return false;
            }
            skipped += d.data.len();
            self.rpos += d.consumed;
        }
        self.decoder.is_done()
    }

    /// Decode up to `max` body bytes into `out`, reading from `fd` when the
    /// buffer holds none. Returns how many were appended (0 = end of body).
    ///
    /// # Errors
    /// The body is malformed, the client went away or stalled past `timeout`.
    pub fn read(
        &mut self,
        py: Python<'_>,
        conn: (&mut Wire, Version, Duration),
        out: &mut Vec<u8>,
        max: usize,
    ) -> Result<usize, IoFailure> {
        if max == 0 {
            return Ok(0);
        }
        if self.spill_pos < self.spill.len() {
            let take = (self.spill.len() - self.spill_pos).min(max);
            out.extend_from_slice(&self.spill[self.spill_pos..self.spill_pos + take]);
            self.spill_pos += take;
            if self.spill_pos == self.spill.len() {
                self.spill.clear();
                self.spill_pos = 0;
            }
            return Ok(take);
        }
        while !self.decoder.is_done() {
            let decoded = match self.decoder.decode(&self.rbuf[self.rpos..]) {
                Ok(d) => d,
                Err(e) => {
                    // The body cannot be framed: nothing after it can be either.
                    self.failure = Some(BodyFailure::Malformed(e.clone()));
                    return Err(IoFailure::BadBody(e));
                }
            };
            self.decoded += decoded.data.len() as u64;
            if self.limit > 0 && self.decoded > self.limit {
                self.failure = Some(BodyFailure::TooLarge);
                return Err(IoFailure::TooLarge(self.limit));
            }
            let take = decoded.data.len().min(max);
            out.extend_from_slice(&decoded.data[..take]);
            // Decoded payload the caller did not ask for waits in `spill`.
            self.spill.extend_from_slice(&decoded.data[take..]);
            self.rpos += decoded.consumed;
            if take > 0 {
                return Ok(take);
            }
            if decoded.consumed == 0 {
                self.fill_blocking(py, (&mut *conn.0, conn.1, conn.2))?;
            }
        }
        Ok(0)
    }

    /// Read more bytes from the client into `rbuf`, blocking (GIL released).
    fn fill_blocking(
        &mut self,
        py: Python<'_>,
        (wire, version, timeout): (&mut Wire, Version, Duration),
    ) -> Result<(), IoFailure> {
        let result = py.detach(|| {
            if self.continue_pending {
                self.continue_pending = false;
                let line: &[u8] = match version {
                    Version::Http10 => b"HTTP/1.0 100 Continue\r\n\r\n",
                    Version::Http11 => b"HTTP/1.1 100 Continue\r\n\r\n",
                };
                wire.send_blocking(line, timeout)?;
            }
            if self.rpos == self.rbuf.len() {
                self.rbuf.clear();
                self.rpos = 0;
            } else if self.rpos > READ_CHUNK {
                self.rbuf.drain(..self.rpos);
                self.rpos = 0;
            }
            wire.read_blocking(&mut self.rbuf, READ_CHUNK, timeout)
        });
        let failure = match result {
            Ok(0) => IoFailure::Disconnected,
            Ok(_) => return Ok(()),
            Err(e) => IoFailure::from(e),
        };
        self.failure = match failure {
            IoFailure::Disconnected => Some(BodyFailure::Disconnected),
            IoFailure::TimedOut => Some(BodyFailure::TimedOut),
            _ => None,
        };
        Err(failure)
    }
}
