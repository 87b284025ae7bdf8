//! Response heads and body framing on the wire: the framing decision (RFC 9112
//! §6.3, RFC 9110 §6.4.1), the status line and header section (RFC 9112 §4,
//! §5), chunked encoding (RFC 9112 §7.1), the `Date` field (RFC 9110 §6.6.1) and
//! canned error responses.
//!
//! Everything here appends bytes to a caller-owned `Vec<u8>`, so a worker can
//! reuse one output buffer per connection. Validating what the application sent
//! (status syntax, header names and values, hop-by-hop fields) is `wsgi/`'s job;
//! this module offers the predicates it uses and trusts their result.

use std::io::Write;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::http::head::{Version, is_token_byte};

/// How the response body is delimited.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Framing {
    /// The application's Content-Length: exactly this many bytes.
    Length(u64),
    /// Chunked transfer coding (HTTP/1.1 only).
    Chunked,
    /// The body ends when the connection closes (HTTP/1.0 without a length).
    UntilClose,
    /// No body may be sent: 1xx, 204, 304, or a response to HEAD.
    NoBody,
}

/// Decide the response framing and whether the connection may persist.
///
/// `content_length` is the application's Content-Length header when it was
/// valid. 1xx, 204, 304 and HEAD responses have no body (for HEAD the
/// application's Content-Length stays in its headers as is); otherwise a
/// Content-Length wins, then chunked on HTTP/1.1, then close-delimited on
/// HTTP/1.0. Returns `(framing, keep_alive)`: `keep_alive` is
/// `keep_alive_requested` unless the framing needs the close to end the body.
pub fn framing(
    version: Version,
    is_head: bool,
    status: u16,
    content_length: Option<u64>,
    keep_alive_requested: bool,
) -> (Framing, bool) {
    let framing = if is_head || (100..200).contains(&status) || status == 204 || status == 304 {
        Framing::NoBody
    } else if let Some(n) = content_length {
        Framing::Length(n)
    } else {
        match version {
            Version::Http11 => Framing::Chunked,
            Version::Http10 => Framing::UntilClose,
        }
    };
    (
        framing,
        keep_alive_requested && framing != Framing::UntilClose,
    )
}

/// True for hop-by-hop fields an application must not set (RFC 9110 §7.6.1,
/// plus `keep-alive`, `proxy-*` and `trailers` as in PEP 3333 and gunicorn):
/// connection, keep-alive, proxy-authenticate, proxy-authorization, te,
/// trailer, trailers, transfer-encoding, upgrade. ASCII case-insensitive.
pub fn is_hop_by_hop(name: &[u8]) -> bool {
    const HOP_BY_HOP: [&[u8]; 9] = [
        b"connection",
        b"keep-alive",
        b"proxy-authenticate",
        b"proxy-authorization",
        b"te",
        b"trailer",
        b"trailers",
        b"transfer-encoding",
        b"upgrade",
    ];
    HOP_BY_HOP.iter().any(|h| h.eq_ignore_ascii_case(name))
}

/// True when `name` is a non-empty RFC 9110 §5.6.2 token.
pub fn valid_header_name(name: &[u8]) -> bool {
    !name.is_empty() && name.iter().all(|&b| is_token_byte(b))
}

/// True when `value` has no CR, LF or NUL, the bytes that would let it end the
/// field line or truncate it downstream (RFC 9110 §5.5).
pub fn valid_header_value(value: &[u8]) -> bool {
    memchr::memchr3(b'\r', b'\n', 0, value).is_none()
}

/// Write the status line, header section and final blank line into `out`.
///
/// `status` is the WSGI status, like `b"200 OK"`. `headers` are the
/// application's, already validated and without hop-by-hop fields; their names
/// are written as given. Added in this order before them: `Server: <server>`
/// unless the application set Server (or `server` is empty), `Date: <date>`
/// unless it set Date, `Connection: close` when `!keep_alive` or
/// `Connection: keep-alive` for a persistent HTTP/1.0 response, and
/// `Transfer-Encoding: chunked` for [`Framing::Chunked`]. Content-Length is
/// never added: a `Length` framing comes from the application's own header.
/// `framing` and `keep_alive` should come from [`framing`].
#[allow(clippy::too_many_arguments)] // The brief's fixed signature; every part is a distinct input.
pub fn encode_head(
    out: &mut Vec<u8>,
    version: Version,
    status: &[u8],
    headers: &[(Vec<u8>, Vec<u8>)],
    framing: Framing,
    keep_alive: bool,
    date: &[u8],
    server: &[u8],
) {
    let mut has_server = false;
    let mut has_date = false;
    let mut size = 128 + status.len() + date.len() + server.len();
    for (name, value) in headers {
        size += name.len() + value.len() + 4;
        match name.len() {
            6 => has_server |= name.eq_ignore_ascii_case(b"server"),
            4 => has_date |= name.eq_ignore_ascii_case(b"date"),
            _ => {}
        }
    }
    out.reserve(size);

    out.extend_from_slice(version.as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(status);
    out.extend_from_slice(b"\r\n");
    if !has_server && !server.is_empty() {
        push_field(out, b"Server", server);
    }
    if !has_date {
        push_field(out, b"Date", date);
    }
    if !keep_alive {
        out.extend_from_slice(b"Connection: close\r\n");
    } else if version == Version::Http10 {
        out.extend_from_slice(b"Connection: keep-alive\r\n");
    }
    if framing == Framing::Chunked {
        out.extend_from_slice(b"Transfer-Encoding: chunked\r\n");
    }
    for (name, value) in headers {
        push_field(out, name, value);
    }
    out.extend_from_slice(b"\r\n");
}

fn push_field(out: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    out.extend_from_slice(name);
    out.extend_from_slice(b": ");
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
}

/// Append `data` as one chunk: hex size, CRLF, data, CRLF. Nothing for empty
/// data, since an empty chunk would end the body.
pub fn encode_chunk(out: &mut Vec<u8>, data: &[u8]) {
    if data.is_empty() {
        return;
    }
    const HEX: &[u8; 16] = b"0123456789abcdef";
    // A usize has at most 16 hex digits.
    let mut digits = [0u8; 16];
    let mut start = digits.len();
    let mut n = data.len();
    loop {
        start -= 1;
        digits[start] = HEX[n & 0xf];
        n >>= 4;
        if n == 0 {
            break;
        }
    }
    out.reserve(digits.len() - start + data.len() + 4);
    out.extend_from_slice(&digits[start..]);
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(data);
    out.extend_from_slice(b"\r\n");
}

/// The reason phrase for `status` (RFC 9110 §15), or "" for a code without one.
pub fn reason_phrase(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        101 => "Switching Protocols",
        103 => "Early Hints",
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        203 => "Non-Authoritative Information",
        204 => "No Content",
        205 => "Reset Content",
        206 => "Partial Content",
        207 => "Multi-Status",
        300 => "Multiple Choices",
        301 => "Moved Permanently",
        302 => "Found",
        303 => "See Other",
        304 => "Not Modified",
        307 => "Temporary Redirect",
        308 => "Permanent Redirect",
        400 => "Bad Request",
        401 => "Unauthorized",
        402 => "Payment Required",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        406 => "Not Acceptable",
        407 => "Proxy Authentication Required",
        408 => "Request Timeout",
        409 => "Conflict",
        410 => "Gone",
        411 => "Length Required",
        412 => "Precondition Failed",
        413 => "Content Too Large",
        414 => "URI Too Long",
        415 => "Unsupported Media Type",
        416 => "Range Not Satisfiable",
        417 => "Expectation Failed",
        418 => "I'm a teapot",
        421 => "Misdirected Request",
        422 => "Unprocessable Content",
        423 => "Locked",
        424 => "Failed Dependency",
        425 => "Too Early",
        426 => "Upgrade Required",
        428 => "Precondition Required",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        451 => "Unavailable For Legal Reasons",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        505 => "HTTP Version Not Supported",
        507 => "Insufficient Storage",
        511 => "Network Authentication Required",
        _ => "",
    }
}

/// The last chunk with an empty trailer section: ends a chunked body.
pub const LAST_CHUNK: &[u8] = b"0\r\n\r\n";

/// Append a whole canned error response that closes the connection: status
/// line, `Server` (unless empty), `Date`, `Connection: close`, a plain-text
/// `Content-Type` and `Content-Length`, and the reason plus a newline as body.
/// Used for [`crate::http::ParseError`] (`status()`, `reason()`) and for
/// failures before the application produced a response.
pub fn error_response(out: &mut Vec<u8>, status: u16, reason: &str, date: &[u8], server: &[u8]) {
    let mut status_buf = itoa::Buffer::new();
    let mut length_buf = itoa::Buffer::new();
    out.extend_from_slice(b"HTTP/1.1 ");
    out.extend_from_slice(status_buf.format(status).as_bytes());
    out.push(b' ');
    out.extend_from_slice(reason.as_bytes());
    out.extend_from_slice(b"\r\n");
    if !server.is_empty() {
        push_field(out, b"Server", server);
    }
    push_field(out, b"Date", date);
    out.extend_from_slice(b"Connection: close\r\nContent-Type: text/plain\r\n");
    push_field(
        out,
        b"Content-Length",
        length_buf.format(reason.len() + 1).as_bytes(),
    );
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(reason.as_bytes());
    out.push(b'\n');
}

/// Length of an IMF-fixdate, `Sun, 06 Nov 1994 08:49:37 GMT`.
const DATE_LEN: usize = 29;
/// Last second `httpdate` can format (9999-12-31T23:59:59Z).
const MAX_DATE_SECS: u64 = 253_402_300_799;

/// The `Date` field value, formatted at most once per second.
///
/// One per worker thread; formatting a date for every response would cost more
/// than the rest of a hello-world head.
#[derive(Clone, Debug)]
pub struct DateCache {
    /// Unix second `value` was formatted for.
    second: u64,
    /// IMF-fixdate for `second`.
    value: [u8; DATE_LEN],
}

impl DateCache {
    /// A cache holding the current date.
    pub fn new() -> Self {
        let mut cache = DateCache {
            second: u64::MAX,
            value: [b' '; DATE_LEN],
        };
        cache.refresh(SystemTime::now());
        cache
    }

    /// The current date as an IMF-fixdate (RFC 9110 §5.6.7).
    pub fn get(&mut self) -> &[u8] {
        self.refresh(SystemTime::now());
        &self.value
    }

    fn refresh(&mut self, now: SystemTime) {
        // Clamp a clock set before 1970 or past 9999, which httpdate would
        // panic on.
        let second = now
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs())
            .min(MAX_DATE_SECS);
        if second == self.second {
            return;
        }
        let date = httpdate::HttpDate::from(UNIX_EPOCH + Duration::from_secs(second));
        let mut slot = &mut self.value[..];
        // In range, the format is exactly DATE_LEN bytes; on the impossible
        // failure the previous value stays and the next call retries.
        if write!(slot, "{date}").is_ok() && slot.is_empty() {
            self.second = second;
        }
    }
}

impl Default for DateCache {
    fn default() -> Self {
        DateCache::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DATE: &[u8] = b"Sun, 06 Nov 1994 08:49:37 GMT";

    fn head(
        version: Version,
        headers: &[(&[u8], &[u8])],
        framing: Framing,
        keep_alive: bool,
    ) -> String {
        let headers: Vec<(Vec<u8>, Vec<u8>)> = headers
            .iter()
            .map(|(n, v)| (n.to_vec(), v.to_vec()))
            .collect();
        let mut out = Vec::new();
        encode_head(
            &mut out,
            version,
            b"200 OK",
            &headers,
            framing,
            keep_alive,
            DATE,
            b"rgunicorn",
        );
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn framing_matrix() {
        use Framing::*;
        use Version::*;
        let cases = [
            // (version, head, status, length, ka requested) -> (framing, ka)
            ((Http11, false, 200, Some(5), true), (Length(5), true)),
            ((Http11, false, 200, None, true), (Chunked, true)),
            ((Http11, false, 200, None, false), (Chunked, false)),
            ((Http10, false, 200, Some(5), true), (Length(5), true)),
            ((Http10, false, 200, None, true), (UntilClose, false)),
            ((Http10, false, 200, None, false), (UntilClose, false)),
            ((Http11, true, 200, Some(5), true), (NoBody, true)),
            ((Http11, true, 200, None, true), (NoBody, true)),
            ((Http10, true, 200, None, true), (NoBody, true)),
            ((Http11, false, 204, None, true), (NoBody, true)),
            ((Http11, false, 304, Some(9), true), (NoBody, true)),
            ((Http11, false, 101, None, true), (NoBody, true)),
            ((Http10, false, 204, None, true), (NoBody, true)),
            ((Http11, false, 404, None, false), (Chunked, false)),
        ];
        for ((v, is_head, status, len, ka), expected) in cases {
            assert_eq!(
                framing(v, is_head, status, len, ka),
                expected,
                "{v:?} head={is_head} {status} {len:?} {ka}"
            );
        }
    }

    #[test]
    fn encode_head_keep_alive_with_length() {
        let got = head(
            Version::Http11,
            &[(b"Content-Length", b"5"), (b"X-A", b"b")],
            Framing::Length(5),
            true,
        );
        assert_eq!(
            got,
            "HTTP/1.1 200 OK\r\nServer: rgunicorn\r\nDate: Sun, 06 Nov 1994 08:49:37 GMT\r\n\
             Content-Length: 5\r\nX-A: b\r\n\r\n"
        );
    }

    #[test]
    fn encode_head_chunked_close() {
        let got = head(
            Version::Http11,
            &[(b"content-type", b"text/plain")],
            Framing::Chunked,
            false,
        );
        assert_eq!(
            got,
            "HTTP/1.1 200 OK\r\nServer: rgunicorn\r\nDate: Sun, 06 Nov 1994 08:49:37 GMT\r\n\
             Connection: close\r\nTransfer-Encoding: chunked\r\ncontent-type: text/plain\r\n\r\n"
        );
    }

    #[test]
    fn encode_head_http10_keep_alive_says_so() {
        let got = head(
            Version::Http10,
            &[(b"Content-Length", b"0")],
            Framing::Length(0),
            true,
        );
        assert_eq!(
            got,
            "HTTP/1.0 200 OK\r\nServer: rgunicorn\r\nDate: Sun, 06 Nov 1994 08:49:37 GMT\r\n\
             Connection: keep-alive\r\nContent-Length: 0\r\n\r\n"
        );
    }

    #[test]
    fn encode_head_keeps_app_server_and_date() {
        let got = head(
            Version::Http10,
            &[(b"SERVER", b"mine"), (b"date", b"yesterday")],
            Framing::UntilClose,
            false,
        );
        assert_eq!(
            got,
            "HTTP/1.0 200 OK\r\nConnection: close\r\nSERVER: mine\r\ndate: yesterday\r\n\r\n"
        );
    }

    #[test]
    fn empty_server_string_omits_server() {
        let mut out = Vec::new();
        encode_head(
            &mut out,
            Version::Http11,
            b"204 No Content",
            &[],
            Framing::NoBody,
            true,
            DATE,
            b"",
        );
        assert_eq!(
            out,
            b"HTTP/1.1 204 No Content\r\nDate: Sun, 06 Nov 1994 08:49:37 GMT\r\n\r\n"
        );
    }

    #[test]
    fn chunks_are_hex_sized_and_empty_data_writes_nothing() {
        let mut out = Vec::new();
        encode_chunk(&mut out, b"");
        assert!(out.is_empty());
        encode_chunk(&mut out, b"hello");
        encode_chunk(&mut out, &[b'x'; 26]);
        out.extend_from_slice(LAST_CHUNK);
        let mut expected = b"5\r\nhello\r\n1a\r\n".to_vec();
        expected.extend_from_slice(&[b'x'; 26]);
        expected.extend_from_slice(b"\r\n0\r\n\r\n");
        assert_eq!(out, expected);
        let mut big = Vec::new();
        encode_chunk(&mut big, &vec![0u8; 0x10000]);
        assert!(big.starts_with(b"10000\r\n"));
    }

    #[test]
    fn error_response_is_complete_and_closes() {
        let mut out = Vec::new();
        error_response(&mut out, 400, "Bad Request", DATE, b"rgunicorn");
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "HTTP/1.1 400 Bad Request\r\nServer: rgunicorn\r\nDate: Sun, 06 Nov 1994 08:49:37 GMT\r\n\
             Connection: close\r\nContent-Type: text/plain\r\nContent-Length: 12\r\n\r\nBad Request\n"
        );
    }

    #[test]
    fn hop_by_hop_names_are_recognised_in_any_case() {
        for name in [
            &b"Connection"[..],
            b"KEEP-ALIVE",
            b"te",
            b"Trailer",
            b"Transfer-Encoding",
            b"upgrade",
        ] {
            assert!(is_hop_by_hop(name), "{name:?}");
        }
        for name in [&b"Content-Length"[..], b"tee", b"", b"X-Connection"] {
            assert!(!is_hop_by_hop(name), "{name:?}");
        }
    }

    #[test]
    fn header_name_and_value_checks() {
        assert!(valid_header_name(b"X-Custom_Header.1"));
        assert!(!valid_header_name(b""));
        assert!(!valid_header_name(b"X Y"));
        assert!(!valid_header_name(b"X:Y"));
        assert!(!valid_header_name("Ünï".as_bytes()));
        assert!(valid_header_value(b"a b\tc \xff"));
        assert!(valid_header_value(b""));
        assert!(!valid_header_value(b"a\r\nInjected: 1"));
        assert!(!valid_header_value(b"a\nb"));
        assert!(!valid_header_value(b"a\0b"));
    }

    #[test]
    fn date_cache_formats_imf_fixdate_once_per_second() {
        let mut cache = DateCache {
            second: u64::MAX,
            value: [b' '; DATE_LEN],
        };
        cache.refresh(UNIX_EPOCH + Duration::from_secs(784_111_777));
        assert_eq!(&cache.value, DATE);
        // Within the same second nothing changes.
        cache.refresh(UNIX_EPOCH + Duration::from_millis(784_111_777_900));
        assert_eq!(&cache.value, DATE);
        cache.refresh(UNIX_EPOCH + Duration::from_secs(784_111_778));
        assert_eq!(&cache.value, b"Sun, 06 Nov 1994 08:49:38 GMT");
        assert_eq!(DateCache::new().get().len(), DATE_LEN);
    }

    #[test]
    fn date_cache_survives_out_of_range_clocks() {
        let mut cache = DateCache::new();
        cache.refresh(UNIX_EPOCH - Duration::from_secs(10));
        assert_eq!(&cache.value, b"Thu, 01 Jan 1970 00:00:00 GMT");
        cache.refresh(UNIX_EPOCH + Duration::from_secs(MAX_DATE_SECS * 2));
        assert_eq!(&cache.value, b"Fri, 31 Dec 9999 23:59:59 GMT");
    }
}
