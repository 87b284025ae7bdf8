//! One request/response exchange on a connection, shared by the Python-facing
//! objects of that request (`wsgi.input`, `start_response`, `write`).
//!
//! The event loop lends the connection's buffers to an [`Exchange`] for the time
//! the app runs and takes them back afterwards. Python objects the app keeps past
//! the request see `finished` and behave as closed, so a stale `wsgi.input` can
//! never read the next request's bytes.
//!
//! Socket I/O here blocks only the way PEP 3333 requires (the app asked for body
//! bytes the client has not sent yet, or the output buffer is over its high-water
//! mark), and always with the GIL released so the app's own threads keep running.

use std::cell::RefCell;
use std::io;
use std::os::fd::RawFd;
use std::rc::Rc;
use std::time::Duration;

use pyo3::Python;

use crate::http::body::Decoder;
use crate::http::head::Version;
use crate::http::response::{self, Framing};

/// Output buffered beyond this is written out before the app may produce more.
const HIGH_WATER: usize = 256 * 1024;
/// Bytes read from the socket per read(2) while streaming a body.
const READ_CHUNK: usize = 64 * 1024;

/// Shared handle to the exchange.
pub(crate) type Shared = Rc<RefCell<Exchange>>;

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
    /// Any other socket error.
    #[error("socket error: {0}")]
    Other(io::Error),
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
            IoFailure::BadBody(_) => InvalidRequestBody::new_err(e.to_string()),
            IoFailure::Other(_) => pyo3::exceptions::PyOSError::new_err(e.to_string()),
        }
    }
}

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
}

/// The response status and headers as given to `start_response`.
#[derive(Default)]
pub(crate) struct Pending {
    /// Numeric status.
    pub code: u16,
    /// Whole status line text, e.g. `200 OK`.
    pub status: Vec<u8>,
    /// Headers to send (hop-by-hop ones already removed).
    pub headers: Vec<(Vec<u8>, Vec<u8>)>,
    /// Content-Length the app declared.
    pub content_length: Option<u64>,
}

/// State of one exchange. See the module doc.
pub(crate) struct Exchange {
    /// The connection's socket (non-blocking), borrowed from the event loop.
    pub fd: RawFd,
    /// Bytes read from the socket and not yet consumed; body bytes start at `rpos`.
    pub rbuf: Vec<u8>,
    /// Read position in `rbuf`.
    pub rpos: usize,
    /// Body framing state.
    pub decoder: Decoder,
    /// Reading the request body failed: when the app lets the exception
    /// propagate, this picks the answer (400, 408, or none) instead of a 500.
    pub body_failure: Option<BodyFailure>,
    /// Decoded body bytes read from `rbuf` but not yet returned to the app.
    pub spill: Vec<u8>,
    /// Read position in `spill`.
    pub spill_pos: usize,
    /// `Expect: 100-continue` not yet answered.
    pub continue_pending: bool,
    /// Response bytes not yet written.
    pub wbuf: Vec<u8>,
    /// HTTP version of the request (and of our response).
    pub version: Version,
    /// HEAD request: send headers only.
    pub is_head: bool,
    /// The client and the server both allow keep-alive.
    pub keep_alive: bool,
    /// Status and headers from start_response, until sent.
    pub pending: Option<Pending>,
    /// Status code sent (0 until the head is sent).
    pub sent_code: u16,
    /// Status line text sent, e.g. `200 OK`.
    pub status_line: Vec<u8>,
    /// The head is in `wbuf` or on the wire.
    pub headers_sent: bool,
    /// Framing chosen when the head was sent.
    pub framing: Framing,
    /// Body bytes still allowed by Content-Length.
    pub remaining: u64,
    /// Body bytes accepted from the app.
    pub body_bytes: u64,
    /// The connection must close after this response.
    pub must_close: bool,
    /// The client went away; stop producing output.
    pub broken: bool,
    /// The request is over: Python objects still around act as closed.
    pub finished: bool,
    /// Longest wait for the client while reading or writing.
    pub io_timeout: Duration,
    /// Cached `Date` value for this response.
    pub date: Vec<u8>,
    /// `Server` header value.
    pub server: Rc<[u8]>,
    /// Response headers as sent, kept for the access log.
    pub sent_headers: Vec<(Vec<u8>, Vec<u8>)>,
}

impl Exchange {
    /// Decode up to `max` body bytes into `out`, reading from the socket when the
    /// buffer holds none. Returns how many bytes were appended (0 = end of body).
    pub fn read_body(
        &mut self,
        py: Python<'_>,
        out: &mut Vec<u8>,
        max: usize,
    ) -> Result<usize, IoFailure> {
        if self.finished || max == 0 {
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
        loop {
            if self.decoder.is_done() {
                return Ok(0);
            }
            let decoded = match self.decoder.decode(&self.rbuf[self.rpos..]) {
                Ok(d) => d,
                Err(e) => {
                    // The body cannot be framed: nothing after it can be either.
                    self.body_failure = Some(BodyFailure::Malformed(e.clone()));
                    self.must_close = true;
                    return Err(IoFailure::BadBody(e));
                }
            };
            let take = decoded.data.len().min(max);
            out.extend_from_slice(&decoded.data[..take]);
            // Decoded payload the caller did not ask for waits in `spill`.
            self.spill.extend_from_slice(&decoded.data[take..]);
            self.rpos += decoded.consumed;
            if take > 0 {
                return Ok(take);
            }
            if decoded.consumed > 0 {
                continue;
            }
            if let Err(e) = self.fill(py) {
                self.must_close = true;
                match e {
                    IoFailure::Disconnected => {
                        self.broken = true;
                        self.body_failure = Some(BodyFailure::Disconnected);
                    }
                    IoFailure::TimedOut => self.body_failure = Some(BodyFailure::TimedOut),
                    _ => {}
                }
                return Err(e);
            }
        }
    }

    /// Read more bytes from the client into `rbuf`, blocking (GIL released).
    fn fill(&mut self, py: Python<'_>) -> Result<(), IoFailure> {
        if self.continue_pending {
            self.continue_pending = false;
            let line: &[u8] = match self.version {
                Version::Http10 => b"HTTP/1.0 100 Continue\r\n\r\n",
                Version::Http11 => b"HTTP/1.1 100 Continue\r\n\r\n",
            };
            write_all(py, self.fd, line, self.io_timeout)?;
        }
        if self.rpos == self.rbuf.len() {
            self.rbuf.clear();
            self.rpos = 0;
        } else if self.rpos > READ_CHUNK {
            self.rbuf.drain(..self.rpos);
            self.rpos = 0;
        }
        let start = self.rbuf.len();
        self.rbuf.resize(start + READ_CHUNK, 0);
        let fd = self.fd;
        let timeout = self.io_timeout;
        let buf = &mut self.rbuf[start..];
        let n = py.detach(|| read_blocking(fd, buf, timeout));
        let n = match n {
            Ok(n) => n,
            Err(e) => {
                self.rbuf.truncate(start);
                return Err(e);
            }
        };
        self.rbuf.truncate(start + n);
        if n == 0 {
            self.broken = true;
            return Err(IoFailure::Disconnected);
        }
        Ok(())
    }

    /// Put the response head into `wbuf`, choosing the framing.
    pub fn send_head(&mut self, body_len_hint: Option<u64>) {
        let Some(p) = self.pending.take() else {
            return;
        };
        let content_length = p
            .content_length
            .or(if self.is_head { None } else { body_len_hint });
        if self.continue_pending && !self.decoder.is_done() {
            // The app answers without having read the body it was offered with
            // `Expect: 100-continue`. The client may send that body now or never,
            // so nothing after it can be framed: say so before it has to guess.
            self.continue_pending = false;
            self.must_close = true;
        }
        let (framing, keep_alive) = response::framing(
            self.version,
            self.is_head,
            p.code,
            content_length,
            self.keep_alive && !self.must_close,
        );
        let mut headers = p.headers;
        if forbids_content_length(p.code) {
            // RFC 9110 §8.6: never on 1xx or 204. (HEAD and 304 may carry the
            // length the unconditional GET would have, so theirs stays.)
            headers.retain(|(name, _)| !name.eq_ignore_ascii_case(b"content-length"));
        }
        if p.content_length.is_none()
            && let (Framing::Length(n), Some(_)) = (framing, body_len_hint)
        {
            headers.push((b"Content-Length".to_vec(), n.to_string().into_bytes()));
        }
        response::encode_head(
            &mut self.wbuf,
            self.version,
            &p.status,
            &headers,
            framing,
            keep_alive,
            &self.date,
            &self.server,
        );
        self.keep_alive = keep_alive;
        self.framing = framing;
        self.remaining = match framing {
            Framing::Length(n) => n,
            _ => u64::MAX,
        };
        self.sent_code = p.code;
        self.status_line = p.status;
        self.sent_headers = headers;
        self.headers_sent = true;
    }

    /// Frame and buffer body bytes from the app; flush when over the high-water mark.
    pub fn write_body(&mut self, data: &[u8]) -> Result<(), IoFailure> {
        if self.broken {
            return Err(IoFailure::Disconnected);
        }
        if data.is_empty() {
            return Ok(());
        }
        match self.framing {
            Framing::NoBody => {
                if !self.is_head {
                    warn_body_dropped(self.sent_code);
                }
                return Ok(());
            }
            Framing::Length(_) => {
                // Bytes beyond the declared Content-Length are dropped, as Gunicorn does.
                let take = (data.len() as u64).min(self.remaining) as usize;
                self.wbuf.extend_from_slice(&data[..take]);
                self.remaining -= take as u64;
                self.body_bytes += take as u64;
            }
            Framing::Chunked => {
                response::encode_chunk(&mut self.wbuf, data);
                self.body_bytes += data.len() as u64;
            }
            Framing::UntilClose => {
                self.wbuf.extend_from_slice(data);
                self.body_bytes += data.len() as u64;
            }
        }
        Ok(())
    }

    /// True when so much output waits that the app must not produce more
    /// before the client reads some.
    pub fn over_high_water(&self) -> bool {
        self.wbuf.len() >= HIGH_WATER
    }

    /// Write what the socket takes now, without waiting. Returns true when
    /// everything buffered is written.
    pub fn try_flush(&mut self) -> Result<bool, IoFailure> {
        let mut written = 0;
        while written < self.wbuf.len() {
            match write_some(self.fd, &self.wbuf[written..]) {
                Ok(n) => written += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    self.broken = true;
                    return Err(classify(e));
                }
            }
        }
        self.wbuf.drain(..written);
        Ok(self.wbuf.is_empty())
    }

    /// Finish the body: terminate chunked framing; a short Content-Length body
    /// means the connection cannot be reused.
    pub fn finish_body(&mut self) {
        match self.framing {
            Framing::Chunked => self.wbuf.extend_from_slice(response::LAST_CHUNK),
            Framing::Length(_) if self.remaining > 0 && !self.is_head => self.keep_alive = false,
            _ => {}
        }
    }

    /// Write all of `wbuf` to the client, blocking (GIL released).
    pub fn flush(&mut self, py: Python<'_>) -> Result<(), IoFailure> {
        if self.wbuf.is_empty() {
            return Ok(());
        }
        let result = write_all(py, self.fd, &self.wbuf, self.io_timeout);
        self.wbuf.clear();
        if result.is_err() {
            self.broken = true;
        }
        result
    }
}

/// 1xx and 204 responses must not carry Content-Length (RFC 9110 §8.6).
fn forbids_content_length(code: u16) -> bool {
    code == 204 || (100..200).contains(&code)
}

/// The app produced body bytes for a status that has no body (1xx, 204, 304):
/// they are dropped, as RFC 9110 §6.4.1 requires. Warned once per worker, so a
/// busy endpoint does not flood the log; Gunicorn warns once per response.
fn warn_body_dropped(code: u16) {
    static WARNED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
    if !WARNED.swap(true, std::sync::atomic::Ordering::Relaxed) {
        crate::log::warning(&format!(
            "WSGI app sent body bytes on a {code} response, which has no body; \
             dropping them per RFC 9110 (warned once per worker)"
        ));
    }
}

/// Wait until `fd` is ready for `events`, up to `timeout`.
fn wait_fd(fd: RawFd, events: libc::c_short, timeout: Duration) -> Result<(), IoFailure> {
    let mut pfd = libc::pollfd {
        fd,
        events,
        revents: 0,
    };
    let ms = timeout.as_millis().min(i32::MAX as u128) as i32;
    loop {
        // SAFETY: pfd is a valid pollfd for the duration of the call; nfds is 1.
        let r = unsafe { libc::poll(&mut pfd, 1, ms) };
        match r {
            0 => return Err(IoFailure::TimedOut),
            r if r > 0 => return Ok(()),
            _ => {
                let e = io::Error::last_os_error();
                if e.kind() != io::ErrorKind::Interrupted {
                    return Err(IoFailure::Other(e));
                }
            }
        }
    }
}

/// read(2) on a non-blocking fd, waiting for data up to `timeout`.
pub(crate) fn read_blocking(
    fd: RawFd,
    buf: &mut [u8],
    timeout: Duration,
) -> Result<usize, IoFailure> {
    loop {
        // SAFETY: buf is valid writable memory of buf.len() bytes.
        let n = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
        if n >= 0 {
            return Ok(n as usize);
        }
        let e = io::Error::last_os_error();
        match e.kind() {
            io::ErrorKind::WouldBlock => wait_fd(fd, libc::POLLIN, timeout)?,
            io::ErrorKind::Interrupted => {}
            io::ErrorKind::ConnectionReset => return Err(IoFailure::Disconnected),
            _ => return Err(IoFailure::Other(e)),
        }
    }
}

/// Write all of `data`, waiting for the socket to drain (GIL released while waiting).
pub(crate) fn write_all(
    py: Python<'_>,
    fd: RawFd,
    mut data: &[u8],
    timeout: Duration,
) -> Result<(), IoFailure> {
    while !data.is_empty() {
        match write_some(fd, data) {
            Ok(n) => data = &data[n..],
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                py.detach(|| wait_fd(fd, libc::POLLOUT, timeout))?;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(classify(e)),
        }
    }
    Ok(())
}

/// One send(2) without SIGPIPE.
pub(crate) fn write_some(fd: RawFd, data: &[u8]) -> io::Result<usize> {
    // SAFETY: data is valid readable memory of data.len() bytes.
    let n = unsafe { libc::send(fd, data.as_ptr().cast(), data.len(), libc::MSG_NOSIGNAL) };
    if n < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(n as usize)
    }
}

/// Map a socket error to what it means for the exchange.
pub(crate) fn classify(e: io::Error) -> IoFailure {
    match e.kind() {
        io::ErrorKind::BrokenPipe
        | io::ErrorKind::ConnectionReset
        | io::ErrorKind::ConnectionAborted => IoFailure::Disconnected,
        _ => IoFailure::Other(e),
    }
}

/// One sendfile(2) call on a non-blocking socket; advances `offset`.
pub(crate) fn sendfile_some(
    sock: RawFd,
    file: RawFd,
    offset: &mut i64,
    count: u64,
) -> io::Result<u64> {
    let chunk = count.min(1 << 30) as usize;
    // SAFETY: both fds are open for the duration of the call; offset points to a
    // live i64.
    let n = unsafe { libc::sendfile(sock, file, offset, chunk) };
    if n < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(n as u64)
    }
}
