//! `ParseError`: every way a client's request bytes can be rejected, and the one
//! place that maps each rejection to a response status (RFC 9110 §15).
//!
//! Parsers in `head` and `body` return these; the worker answers with
//! [`ParseError::status`] and [`ParseError::reason`] and then closes the
//! connection. "Need more bytes" is never an error: parsers return `Ok(None)` or
//! consume nothing instead.

/// Longest excerpt of client bytes copied into an error message.
const EXCERPT_LEN: usize = 64;

/// Why a request head or body could not be parsed.
///
/// Every variant is fatal for the connection: after one of these the byte stream
/// can no longer be trusted to be in sync with message boundaries.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum ParseError {
    /// The request line is not `method SP request-target SP HTTP-version`.
    #[error("invalid request line {0:?}")]
    InvalidRequestLine(String),
    /// The method is empty or not an RFC 9110 token.
    #[error("invalid method {0:?}")]
    InvalidMethod(String),
    /// The request-target has bytes outside RFC 3986 or matches none of the four
    /// forms of RFC 9112 §3.2.
    #[error("invalid request target {0:?}")]
    InvalidTarget(String),
    /// A well-formed `HTTP/x.y` other than 1.0 or 1.1.
    #[error("unsupported http version {0:?}")]
    UnsupportedVersion(String),
    /// The request line is longer than `limit_request_line`.
    #[error("request line longer than {limit} bytes")]
    RequestLineTooLong {
        /// The configured limit.
        limit: usize,
    },
    /// A header line is malformed: bad name, bad byte in the value, missing colon,
    /// obsolete line folding. Carries an excerpt of the line when it was found.
    #[error("invalid header {0:?}")]
    InvalidHeader(String),
    /// The Host field value is not `uri-host [ ":" port ]` (RFC 9112 §3.2,
    /// RFC 3986 §3.2.2): it has bytes no host or port can hold.
    #[error("invalid host {0:?}")]
    InvalidHost(String),
    /// A field that may appear only once (Host, Content-Type) appeared again.
    #[error("repeated {0:?} field")]
    RepeatedField(String),
    /// More header fields than `limit_request_fields`.
    #[error("more than {limit} header fields")]
    TooManyHeaders {
        /// The configured (or effective) limit.
        limit: usize,
    },
    /// A header line is longer than `limit_request_field_size`.
    #[error("header field longer than {limit} bytes")]
    HeaderTooLarge {
        /// The configured limit.
        limit: usize,
    },
    /// The whole head, still incomplete, outgrew what the limits allow.
    #[error("request head larger than {limit} bytes")]
    HeadTooLarge {
        /// The byte budget derived from the limits.
        limit: usize,
    },
    /// Content-Length is not a plain decimal number that fits in 64 bits.
    #[error("invalid content-length {0:?}")]
    InvalidContentLength(String),
    /// Content-Length values disagree (repeated header or comma list).
    #[error("conflicting content-length values {0:?}")]
    ConflictingLength(String),
    /// Both Transfer-Encoding and Content-Length were sent (RFC 9112 §6.3 rule 3);
    /// rejected outright as a request smuggling defense.
    #[error("content-length together with transfer-encoding")]
    LengthWithTransferEncoding,
    /// Transfer-Encoding on an HTTP/1.0 request, whose framing must then be
    /// treated as faulty (RFC 9112 §6.1).
    #[error("transfer-encoding in an http/1.0 request")]
    TransferEncodingInHttp10,
    /// Transfer-Encoding whose final coding is not `chunked`, that repeats
    /// `chunked`, or that is empty: the body length cannot be determined (RFC 9112
    /// §6.3 rule 4).
    #[error("invalid transfer-encoding {0:?}")]
    InvalidTransferEncoding(String),
    /// A transfer coding other than `chunked` applied before `chunked`.
    #[error("unsupported transfer-encoding {0:?}")]
    UnsupportedTransferEncoding(String),
    /// Malformed chunked framing; the text names what was wrong.
    #[error("invalid chunk: {0}")]
    InvalidChunk(&'static str),
    /// A trailer field line is malformed.
    #[error("invalid trailer field")]
    InvalidTrailer,
    /// A trailer carries a field that must not be sent there (RFC 9110 §6.5.1):
    /// framing, routing or credentials a proxy may not have checked.
    #[error("field {0:?} not allowed in a trailer")]
    ForbiddenTrailer(String),
    /// The trailer section outgrew its cap.
    #[error("trailer section larger than {limit} bytes")]
    TrailerTooLarge {
        /// The cap, [`crate::http::body::TRAILER_LIMIT`].
        limit: usize,
    },
}

impl ParseError {
    /// The response status for this rejection: 400 unless a more precise code
    /// exists (414, 431, 501, 505).
    pub fn status(&self) -> u16 {
        match self {
            ParseError::RequestLineTooLong { .. } => 414,
            ParseError::TooManyHeaders { .. }
            | ParseError::HeaderTooLarge { .. }
            | ParseError::HeadTooLarge { .. } => 431,
            ParseError::UnsupportedTransferEncoding(_) => 501,
            ParseError::UnsupportedVersion(_) => 505,
            ParseError::InvalidRequestLine(_)
            | ParseError::InvalidMethod(_)
            | ParseError::InvalidTarget(_)
            | ParseError::InvalidHeader(_)
            | ParseError::InvalidHost(_)
            | ParseError::RepeatedField(_)
            | ParseError::InvalidContentLength(_)
            | ParseError::ConflictingLength(_)
            | ParseError::LengthWithTransferEncoding
            | ParseError::TransferEncodingInHttp10
            | ParseError::InvalidTransferEncoding(_)
            | ParseError::InvalidChunk(_)
            | ParseError::InvalidTrailer
            | ParseError::ForbiddenTrailer(_)
            | ParseError::TrailerTooLarge { .. } => 400,
        }
    }

    /// The RFC 9110 reason phrase for [`ParseError::status`].
    pub fn reason(&self) -> &'static str {
        match self.status() {
            414 => "URI Too Long",
            431 => "Request Header Fields Too Large",
            501 => "Not Implemented",
            505 => "HTTP Version Not Supported",
            _ => "Bad Request",
        }
    }
}

/// A bounded, lossy copy of client bytes for an error message.
pub(crate) fn excerpt(bytes: &[u8]) -> String {
    let cut = &bytes[..bytes.len().min(EXCERPT_LEN)];
    String::from_utf8_lossy(cut).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_map_to_their_own_statuses() {
        assert_eq!(ParseError::RequestLineTooLong { limit: 1 }.status(), 414);
        assert_eq!(ParseError::TooManyHeaders { limit: 1 }.status(), 431);
        assert_eq!(ParseError::HeaderTooLarge { limit: 1 }.status(), 431);
        assert_eq!(ParseError::HeadTooLarge { limit: 1 }.status(), 431);
        assert_eq!(
            ParseError::UnsupportedTransferEncoding("gzip".into()).status(),
            501
        );
        assert_eq!(
            ParseError::UnsupportedVersion("HTTP/2.0".into()).status(),
            505
        );
        assert_eq!(ParseError::LengthWithTransferEncoding.status(), 400);
    }

    #[test]
    fn reason_follows_status() {
        assert_eq!(ParseError::InvalidTrailer.reason(), "Bad Request");
        assert_eq!(
            ParseError::RequestLineTooLong { limit: 1 }.reason(),
            "URI Too Long"
        );
        assert_eq!(
            ParseError::UnsupportedVersion(String::new()).reason(),
            "HTTP Version Not Supported"
        );
    }

    #[test]
    fn excerpt_is_bounded() {
        assert_eq!(excerpt(&[b'a'; 1000]).len(), EXCERPT_LEN);
        assert_eq!(excerpt(b"\xffx"), "\u{fffd}x");
    }
}
