//! One request/response exchange on a connection, shared by the Python-facing
//! objects of that request (`wsgi.input`, `start_response`, `write`,
//! `gunicorn.socket`, `wsgi.early_hints`).
//!
//! The event loop lends the connection's buffers to an [`Exchange`] for the time
//! the app runs and takes them back afterwards. Python objects the app keeps past
//! the request see it `finished` and behave as closed, so a stale `wsgi.input`
//! can never read the next request's bytes.
//!
//! The request side is a [`RequestBody`], the response side a [`Response`]
//! state machine; this type joins them to the socket. Socket calls go through
//! `crate::sockio`; the blocking ones only where PEP 3333 makes the app wait,
//! with the GIL released.

use std::io;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use pyo3::Python;

use super::request_body::RequestBody;
use super::response::{HeadContext, NotStarted, Response};
use crate::sockio;
use crate::wire::Wire;

/// Output buffered beyond this is written out before the app may produce more.
const HIGH_WATER: usize = 256 * 1024;

/// Shared handle to the exchange: the request's Python objects may be used
/// from any of the worker's Python threads.
pub(crate) type Shared = Arc<Mutex<Exchange>>;

/// Lock the exchange from server code, which never holds it across a wait
/// for another thread. A panic while it was held cannot have left it
/// half-written in a way that matters more than answering, so poisoning is
/// ignored.
pub(crate) fn lock(ex: &Shared) -> MutexGuard<'_, Exchange> {
    ex.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Lock the exchange from one of the app's calls. Another thread of the app
/// may hold it across a blocking read or write (GIL released); waiting here
/// with the GIL held would deadlock, so that is an error instead.
pub(crate) fn acquire(ex: &Shared) -> pyo3::PyResult<MutexGuard<'_, Exchange>> {
    match ex.try_lock() {
        Ok(g) => Ok(g),
        Err(std::sync::TryLockError::Poisoned(p)) => Ok(p.into_inner()),
        Err(std::sync::TryLockError::WouldBlock) => Err(pyo3::exceptions::PyRuntimeError::new_err(
            "this request's WSGI objects are in use by another thread",
        )),
    }
}

/// Why the response could not be completed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum IoFailure {
    /// The client closed or reset the connection.
    #[error("client disconnected")]
    Disconnected,
    /// The client did not read or send for too long.
    #[error("client timed out")]
    TimedOut,
    /// The request body was malformed.
    #[error("malformed request body: {0}")]
    BadBody(crate::http::ParseError),
    /// The request body grew past `limit_request_body`.
    #[error("request body larger than {0} bytes")]
    TooLarge(u64),
    /// Any other socket error.
    #[error("socket error: {0}")]
    Other(io::Error),
}

impl From<io::Error> for IoFailure {
    fn from(e: io::Error) -> IoFailure {
        if sockio::is_disconnect(&e) {
            IoFailure::Disconnected
        } else if e.kind() == io::ErrorKind::TimedOut {
            IoFailure::TimedOut
        } else {
            IoFailure::Other(e)
        }
    }
}

pyo3::create_exception!(
    rgunicorn,
    ClientDisconnected,
    pyo3::exceptions::PyOSError,
    "The client went away (or stopped sending) before the request body was complete."
);
pyo3::create_exception!(
    rgunicorn,
    InvalidRequestBody,
    pyo3::exceptions::PyOSError,
    "The request body's framing is malformed (RFC 9112 §7.1); answered 400."
);

// Both are OSError subclasses, so apps and frameworks that treat a failed read
// as OSError (Django's UnreadablePostError, Werkzeug) keep working, while the
// name says whose fault it was.
impl From<IoFailure> for pyo3::PyErr {
    fn from(e: IoFailure) -> pyo3::PyErr {
        match e {
            IoFailure::Disconnected | IoFailure::TimedOut => {
                ClientDisconnected::new_err(format!("{e} while sending the request body"))
            }
            IoFailure::BadBody(_) | IoFailure::TooLarge(_) => {
                InvalidRequestBody::new_err(e.to_string())
            }
            IoFailure::Other(_) => pyo3::exceptions::PyOSError::new_err(e.to_string()),
        }
    }
}

/// State of one exchange. See the module doc.
pub(crate) struct Exchange {
    /// The connection's byte stream (non-blocking), lent by the event loop.
    pub wire: Wire,
    /// The request body, with the connection's read buffer.
    pub body: RequestBody,
    /// The response, whose bytes go to `wbuf`.
    pub response: Response,
    /// Response bytes not yet written (the connection's write buffer).
    pub wbuf: Vec<u8>,
    /// What the response head depends on.
    pub head_ctx: HeadContext,
    /// Longest wait for the client to read what is written.
    pub io_timeout: Duration,
    /// Longest stall of the request body (`body_timeout`).
    pub body_timeout: Duration,
    /// The request is over: Python objects still around act as closed.
    pub finished: bool,
    /// The client went away (or stopped reading) before the response was done.
    pub client_gone: bool,
}

impl Exchange {
    /// Decode up to `max` body bytes into `out` (see [`RequestBody::read`]).
    /// A failed read leaves the connection unusable.
    pub fn read_body(
        &mut self,
        py: Python<'_>,
        out: &mut Vec<u8>,
        max: usize,
    ) -> Result<usize, IoFailure> {
        if self.finished {
            return Ok(0);
        }
        let conn = (&mut self.wire, self.head_ctx.version, self.body_timeout);
        let result = self.body.read(py, conn, out, max);
        if let Err(e) = &result {
            self.response.close_after();
            if matches!(e, IoFailure::Disconnected) {
                self.client_gone = true;
                self.response.break_off();
            }
        }
        result
    }

    /// Put the response head into `wbuf` if it is pending (`body_len`: the
    /// body's total length when known).
    pub fn ensure_head(&mut self, body_len: Option<u64>) -> Result<(), NotStarted> {
        if !self.response.head_sent() && self.body.withdraw_continue() {
            // The app answers without having read the body it was offered with
            // `Expect: 100-continue`. The client may send that body now or
            // never, so nothing after it can be framed: say so in this head.
            self.response.close_after();
        }
        self.response
            .ensure_head(&mut self.wbuf, &self.head_ctx, body_len)
    }

    /// Frame and buffer body bytes from the app.
    pub fn write_body(&mut self, data: &[u8]) -> Result<(), IoFailure> {
        self.response
            .write_body(&mut self.wbuf, data)
            .map(drop)
            .map_err(|_| IoFailure::Disconnected)
    }

    /// End the body's framing.
    pub fn finish_body(&mut self) {
        self.response.finish(&mut self.wbuf);
    }

    /// True when so much output waits that the app must not produce more
    /// before the client reads some.
    pub fn over_high_water(&self) -> bool {
        self.wbuf.len() >= HIGH_WATER
    }

    /// Write what the socket takes now, without waiting. Returns true when
    /// everything buffered is written.
    pub fn try_flush(&mut self) -> Result<bool, IoFailure> {
        let sent = self.wire.send_available(&self.wbuf).and_then(|n| {
            self.wbuf.drain(..n);
            self.wire.flush_pending()
        });
        match sent {
            Ok(pending_out) => Ok(self.wbuf.is_empty() && pending_out),
            Err(e) => {
                self.client_gone = true;
                self.response.break_off();
                Err(e.into())
            }
        }
    }

    /// Write all of `wbuf` to the client, blocking (GIL released).
    pub fn flush_blocking(&mut self, py: Python<'_>) -> Result<(), IoFailure> {
        if self.wbuf.is_empty() {
            return Ok(());
        }
        let timeout = self.io_timeout;
        let (wire, wbuf) = (&mut self.wire, &self.wbuf);
        let result = py.detach(|| wire.send_blocking(wbuf, timeout));
        self.wbuf.clear();
        result.map_err(|e| {
            self.client_gone = true;
            self.response.break_off();
            e.into()
        })
    }
}
