//! One WSGI response's life, as a state machine whose changes are methods
//! (the shape of hyper's `proto/h1` `Writing` state): start_response is
//! awaited, then its head is pending, then the body streams with the framing
//! chosen when the head went out, until it is finished — or broken, when the
//! client went away or the app failed after the head.
//!
//! Everything here writes into the connection's output buffer and nothing
//! else: no sockets, no Python, so the rules are tested with byte tables.
//! Framing follows RFC 9112 §6 and RFC 9110 §6.4.1/§8.6: 1xx, 204 and 304
//! responses and responses to HEAD have no body; 1xx and 204 never carry
//! Content-Length; an app's Content-Length bounds the body (excess is
//! dropped, as Gunicorn does) and a short one means the connection cannot be
//! reused.

use crate::http::head::Version;
use crate::http::response::{self, Framing};

/// Status and headers given to `start_response`, validated, until sent.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
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

/// What the client was sent: for the access log and `post_request`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Sent {
    /// Status code (0 until a head was sent).
    pub code: u16,
    /// Status line text, e.g. `200 OK`.
    pub status: Vec<u8>,
    /// Headers as sent.
    pub headers: Vec<(Vec<u8>, Vec<u8>)>,
    /// Body bytes accepted from the app.
    pub body_bytes: u64,
}

/// The facts about the request and connection a response head depends on.
#[derive(Clone, Debug)]
pub(crate) struct HeadContext {
    /// HTTP version of the request (and of the response).
    pub version: Version,
    /// The request was HEAD: headers only.
    pub is_head: bool,
    /// `Date` value for this response.
    pub date: Vec<u8>,
    /// `Server` header value (empty: none).
    pub server: std::sync::Arc<[u8]>,
}

/// Where the response is.
#[derive(Debug, PartialEq, Eq)]
enum State {
    /// start_response has not been called.
    AwaitingStart,
    /// start_response was called; nothing is written yet.
    HeadPending(Pending),
    /// The head is written; the body follows with this framing.
    Streaming {
        /// How the body is delimited.
        framing: Framing,
        /// Body bytes still allowed by Content-Length (`u64::MAX` otherwise).
        remaining: u64,
    },
    /// The whole response is written.
    Finished,
    /// No more output: the client went away, or the app failed after the head.
    Broken {
        /// Part of the response reached the output buffer.
        head_sent: bool,
    },
}

/// Why start_response was refused.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum StartError {
    /// Called again without `exc_info`.
    AlreadyStarted,
    /// Called with `exc_info` after the head went out: re-raise.
    HeadSent,
}

/// Body output was asked for before start_response.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct NotStarted;

/// Body output was offered to a broken response.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Broken;

/// One response. See the module doc.
#[derive(Debug)]
pub(crate) struct Response {
    state: State,
    /// The connection may carry another request once this response is out.
    keep_alive: bool,
    /// Body bytes dropped for this response's status deserve a warning (not
    /// for HEAD, where dropping them is the server's job).
    warn_on_dropped_body: bool,
    /// What the client was sent so far.
    pub sent: Sent,
}

impl Response {
    /// A response not started yet; `keep_alive` when both the client and the
    /// server allow the connection to persist.
    pub fn new(keep_alive: bool) -> Response {
        Response {
            state: State::AwaitingStart,
            keep_alive,
            warn_on_dropped_body: false,
            sent: Sent::default(),
        }
    }

    /// start_response: `replace` is true when the app passed `exc_info`,
    /// which may replace a head not yet sent (PEP 3333).
    pub fn start(&mut self, pending: Pending, replace: bool) -> Result<(), StartError> {
        match (&self.state, replace) {
            (State::AwaitingStart, _) | (State::HeadPending(_), true) => {
                self.state = State::HeadPending(pending);
                Ok(())
            }
            (State::HeadPending(_), false) => Err(StartError::AlreadyStarted),
            (_, true) if self.head_sent() => Err(StartError::HeadSent),
            _ => Err(StartError::AlreadyStarted),
        }
    }

    /// True once any of the head is in the output buffer.
    pub fn head_sent(&self) -> bool {
        match self.state {
            State::AwaitingStart | State::HeadPending(_) => false,
            State::Streaming { .. } | State::Finished => true,
            State::Broken { head_sent } => head_sent,
        }
    }

    /// start_response was called (its head may or may not be out).
    pub fn started(&self) -> bool {
        !matches!(self.state, State::AwaitingStart)
    }

    /// Nothing more may be written.
    pub fn is_broken(&self) -> bool {
        matches!(self.state, State::Broken { .. })
    }

    /// Whether the connection can carry another request after this response.
    pub fn keep_alive(&self) -> bool {
        self.keep_alive
    }

    /// The connection must close after this response (the app asked, or the
    /// request's body makes it unusable). Effective for a head not sent yet.
    pub fn close_after(&mut self) {
        self.keep_alive = false;
    }

    /// The body framing, once the head is out.
    pub fn framing(&self) -> Option<Framing> {
        match self.state {
            State::Streaming { framing, .. } => Some(framing),
            _ => None,
        }
    }

    /// Write the head into `out` if it is pending, choosing the framing:
    /// `body_len` is the total body length when it is known (a finished list,
    /// a file), used when the app gave no Content-Length.
    pub fn ensure_head(
        &mut self,
        out: &mut Vec<u8>,
        ctx: &HeadContext,
        body_len: Option<u64>,
    ) -> Result<(), NotStarted> {
        let pending = match std::mem::replace(&mut self.state, State::Finished) {
            State::HeadPending(p) => p,
            State::AwaitingStart => {
                self.state = State::AwaitingStart;
                return Err(NotStarted);
            }
            other => {
                self.state = other;
                return Ok(());
            }
        };
        let length = pending
            .content_length
            .or(if ctx.is_head { None } else { body_len });
        let (framing, keep_alive) = response::framing(
            ctx.version,
            ctx.is_head,
            pending.code,
            length,
            self.keep_alive,
        );
        let mut headers = pending.headers;
        if forbids_content_length(pending.code) {
            // RFC 9110 §8.6: never on 1xx or 204. (HEAD and 304 may carry the
            // length the unconditional GET would have, so theirs stays.)
            headers.retain(|(name, _)| !name.eq_ignore_ascii_case(b"content-length"));
        } else if pending.content_length.is_none()
            && let (Framing::Length(n), Some(_)) = (framing, body_len)
        {
            headers.push((b"Content-Length".to_vec(), n.to_string().into_bytes()));
        }
        response::encode_head(
            out,
            ctx.version,
            &pending.status,
            &headers,
            framing,
            keep_alive,
            &ctx.date,
            &ctx.server,
        );
        self.keep_alive = keep_alive;
        self.warn_on_dropped_body = !ctx.is_head;
        self.state = State::Streaming {
            framing,
            remaining: match framing {
                Framing::Length(n) => n,
                _ => u64::MAX,
            },
        };
        self.sent = Sent {
            code: pending.code,
            status: pending.status,
            headers,
            body_bytes: 0,
        };
        Ok(())
    }

    /// Frame body bytes from the app into `out`. Returns how many of them the
    /// framing lets through (all, fewer past Content-Length, none for a
    /// status without a body). Call [`Response::ensure_head`] first.
    pub fn write_body(&mut self, out: &mut Vec<u8>, data: &[u8]) -> Result<usize, Broken> {
        let State::Streaming { framing, remaining } = &mut self.state else {
            return if self.is_broken() { Err(Broken) } else { Ok(0) };
        };
        let take = match framing {
            Framing::NoBody => {
                if !data.is_empty() && self.warn_on_dropped_body {
                    warn_body_dropped(self.sent.code);
                }
                0
            }
            Framing::Length(_) => {
                let take = (data.len() as u64).min(*remaining) as usize;
                out.extend_from_slice(&data[..take]);
                *remaining -= take as u64;
                take
            }
            Framing::Chunked => {
                response::encode_chunk(out, data);
                data.len()
            }
            Framing::UntilClose => {
                out.extend_from_slice(data);
                data.len()
            }
        };
        self.sent.body_bytes += take as u64;
        Ok(take)
    }

    /// `n` body bytes went out directly (sendfile), bypassing `out`.
    pub fn sent_directly(&mut self, n: u64) {
        if let State::Streaming { remaining, .. } = &mut self.state {
            *remaining -= n.min(*remaining);
        }
        self.sent.body_bytes += n;
    }

    /// End the body: the last chunk for chunked framing; a body shorter than
    /// its Content-Length leaves the connection unusable.
    pub fn finish(&mut self, out: &mut Vec<u8>) {
        if let State::Streaming { framing, remaining } = self.state {
            match framing {
                Framing::Chunked => out.extend_from_slice(response::LAST_CHUNK),
                Framing::Length(_) if remaining > 0 => self.keep_alive = false,
                _ => {}
            }
            self.state = State::Finished;
        }
    }

    /// Stop: the client went away, or the app failed after the head (the
    /// framing is left unterminated, so closing tells the client).
    pub fn break_off(&mut self) {
        let head_sent = self.head_sent();
        self.keep_alive = false;
        if !matches!(self.state, State::Finished) {
            self.state = State::Broken { head_sent };
        }
    }

    /// Replace a response whose head was not sent with a canned error page
    /// that closes the connection. False when the head is already out.
    pub fn error_page(
        &mut self,
        out: &mut Vec<u8>,
        ctx: &HeadContext,
        code: u16,
        reason: &str,
    ) -> bool {
        if self.head_sent() {
            return false;
        }
        out.clear();
        response::error_response(out, code, reason, &ctx.date, &ctx.server);
        self.keep_alive = false;
        self.state = State::Finished;
        self.sent = Sent {
            code,
            status: format!("{code} {reason}").into_bytes(),
            headers: Vec::new(),
            body_bytes: 0,
        };
        true
    }

    /// Nothing could be answered (the client left first): log `code` only.
    pub fn unanswered(&mut self, code: u16) {
        self.break_off();
        if !self.head_sent() {
            self.sent.code = code;
        }
    }
}

/// 1xx and 204 responses must not carry Content-Length (RFC 9110 §8.6).
fn forbids_content_length(code: u16) -> bool {
    code == 204 || (100..200).contains(&code)
}

/// The app produced body bytes for a status that has no body (204, 304): they
/// are dropped, as RFC 9110 §6.4.1 requires. Warned once per worker, so a busy
/// endpoint does not flood the log; Gunicorn warns once per response.
fn warn_body_dropped(code: u16) {
    static WARNED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
    if !WARNED.swap(true, std::sync::atomic::Ordering::Relaxed) {
        crate::log::warning(&format!(
            "WSGI app sent body bytes on a {code} response, which has no body; \
             dropping them per RFC 9110 (warned once per worker)"
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DATE: &[u8] = b"Sun, 06 Nov 1994 08:49:37 GMT";

    fn ctx(version: Version, is_head: bool) -> HeadContext {
        HeadContext {
            version,
            is_head,
            date: DATE.to_vec(),
            server: std::sync::Arc::from(&b""[..]),
        }
    }

    fn pending(status: &str, headers: &[(&str, &str)]) -> Pending {
        let content_length = headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
            .map(|(_, v)| v.parse().unwrap());
        Pending {
            code: status[..3].parse().unwrap(),
            status: status.as_bytes().to_vec(),
            headers: headers
                .iter()
                .map(|(n, v)| (n.as_bytes().to_vec(), v.as_bytes().to_vec()))
                .collect(),
            content_length,
        }
    }

    /// Run one response: start, head (with the known length, if any), each
    /// body chunk, finish. Returns the bytes and whether keep-alive survived.
    fn run(
        ctx: &HeadContext,
        p: Pending,
        body_len: Option<u64>,
        chunks: &[&[u8]],
    ) -> (String, bool) {
        let mut out = Vec::new();
        let mut r = Response::new(true);
        r.start(p, false).unwrap();
        r.ensure_head(&mut out, ctx, body_len).unwrap();
        for c in chunks {
            r.write_body(&mut out, c).unwrap();
        }
        r.finish(&mut out);
        (String::from_utf8(out).unwrap(), r.keep_alive())
    }

    #[test]
    fn framing_table() {
        use Version::{Http10, Http11};
        let d = "Date: Sun, 06 Nov 1994 08:49:37 GMT\r\n";
        // (context, start_response, known length, body chunks) → (bytes, keep-alive)
        type Case = (
            HeadContext,
            Pending,
            Option<u64>,
            Vec<&'static [u8]>,
            String,
            bool,
        );
        let cases: Vec<Case> = vec![
            // A generator on 1.1: chunked.
            (
                ctx(Http11, false),
                pending("200 OK", &[]),
                None,
                vec![b"ab", b"c"],
                format!(
                    "HTTP/1.1 200 OK\r\n{d}Transfer-Encoding: chunked\r\n\r\n2\r\nab\r\n1\r\nc\r\n0\r\n\r\n"
                ),
                true,
            ),
            // A finished list: its length is known.
            (
                ctx(Http11, false),
                pending("200 OK", &[]),
                Some(3),
                vec![b"abc"],
                format!("HTTP/1.1 200 OK\r\n{d}Content-Length: 3\r\n\r\nabc"),
                true,
            ),
            // Bytes past the app's Content-Length are dropped.
            (
                ctx(Http11, false),
                pending("200 OK", &[("Content-Length", "2")]),
                None,
                vec![b"abc"],
                format!("HTTP/1.1 200 OK\r\n{d}Content-Length: 2\r\n\r\nab"),
                true,
            ),
            // A short body makes the connection unusable.
            (
                ctx(Http11, false),
                pending("200 OK", &[("Content-Length", "5")]),
                None,
                vec![b"ab"],
                format!("HTTP/1.1 200 OK\r\n{d}Content-Length: 5\r\n\r\nab"),
                false,
            ),
            // 1.0 without a length: until close.
            (
                ctx(Http10, false),
                pending("200 OK", &[]),
                None,
                vec![b"ab"],
                format!("HTTP/1.0 200 OK\r\n{d}Connection: close\r\n\r\nab"),
                false,
            ),
            // 204: the app's Content-Length and body are dropped.
            (
                ctx(Http11, false),
                pending("204 No Content", &[("Content-Length", "5")]),
                None,
                vec![b"hello"],
                format!("HTTP/1.1 204 No Content\r\n{d}\r\n"),
                true,
            ),
            // 304 keeps its Content-Length, loses the body.
            (
                ctx(Http11, false),
                pending("304 Not Modified", &[("Content-Length", "5")]),
                None,
                vec![b"hello"],
                format!("HTTP/1.1 304 Not Modified\r\n{d}Content-Length: 5\r\n\r\n"),
                true,
            ),
            // HEAD: headers only, the app's length kept, none invented.
            (
                ctx(Http11, true),
                pending("200 OK", &[("Content-Length", "5")]),
                None,
                vec![b"hello"],
                format!("HTTP/1.1 200 OK\r\n{d}Content-Length: 5\r\n\r\n"),
                true,
            ),
            (
                ctx(Http11, true),
                pending("200 OK", &[]),
                Some(5),
                vec![b"hello"],
                format!("HTTP/1.1 200 OK\r\n{d}\r\n"),
                true,
            ),
        ];
        for (ctx, p, len, chunks, want, keep) in cases {
            let label = format!(
                "{:?} head={} {:?}",
                ctx.version,
                ctx.is_head,
                String::from_utf8_lossy(&p.status)
            );
            assert_eq!(run(&ctx, p, len, &chunks), (want, keep), "{label}");
        }
    }

    #[test]
    fn body_before_start_response_is_refused() {
        let mut r = Response::new(true);
        assert_eq!(
            r.ensure_head(&mut Vec::new(), &ctx(Version::Http11, false), None),
            Err(NotStarted)
        );
        assert!(!r.started());
    }

    #[test]
    fn start_response_twice_needs_exc_info_and_an_unsent_head() {
        let c = ctx(Version::Http11, false);
        let mut r = Response::new(true);
        r.start(pending("200 OK", &[]), false).unwrap();
        assert_eq!(
            r.start(pending("201 Created", &[]), false),
            Err(StartError::AlreadyStarted)
        );
        r.start(pending("500 Oops", &[]), true).unwrap();
        let mut out = Vec::new();
        r.ensure_head(&mut out, &c, Some(0)).unwrap();
        assert!(out.starts_with(b"HTTP/1.1 500 Oops\r\n"));
        assert_eq!(
            r.start(pending("502 X", &[]), true),
            Err(StartError::HeadSent)
        );
        assert_eq!(
            r.start(pending("502 X", &[]), false),
            Err(StartError::AlreadyStarted)
        );
    }

    #[test]
    fn error_page_replaces_only_an_unsent_head() {
        let c = ctx(Version::Http11, false);
        let mut r = Response::new(true);
        r.start(pending("200 OK", &[]), false).unwrap();
        let mut out = Vec::new();
        assert!(r.error_page(&mut out, &c, 500, "Internal Server Error"));
        assert!(out.starts_with(b"HTTP/1.1 500 Internal Server Error\r\n"));
        assert!(!r.keep_alive());
        assert_eq!(r.sent.code, 500);

        let mut r = Response::new(true);
        r.start(pending("200 OK", &[]), false).unwrap();
        let mut out = Vec::new();
        r.ensure_head(&mut out, &c, None).unwrap();
        r.write_body(&mut out, b"part").unwrap();
        let before = out.clone();
        assert!(!r.error_page(&mut out, &c, 500, "Internal Server Error"));
        assert_eq!(out, before, "a sent head is never followed by another");
        r.break_off();
        assert_eq!(r.write_body(&mut out, b"more"), Err(Broken));
        assert!(!r.keep_alive());
        assert!(r.head_sent());
    }

    #[test]
    fn an_unanswered_request_logs_its_code_without_output() {
        let mut r = Response::new(true);
        r.unanswered(499);
        assert_eq!(r.sent.code, 499);
        assert!(r.is_broken() && !r.head_sent() && !r.keep_alive());
    }

    #[test]
    fn sendfile_bytes_count_against_the_length() {
        let c = ctx(Version::Http11, false);
        let mut r = Response::new(true);
        r.start(pending("200 OK", &[]), false).unwrap();
        let mut out = Vec::new();
        r.ensure_head(&mut out, &c, Some(10)).unwrap();
        assert_eq!(r.framing(), Some(Framing::Length(10)));
        r.sent_directly(10);
        r.finish(&mut out);
        assert!(r.keep_alive());
        assert_eq!(r.sent.body_bytes, 10);
    }
}
