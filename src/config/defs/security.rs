//! Security settings: limits on what a client may send in a request head.

use crate::config::{Arity, Kind, Process, Section, Setting, Support, parse_uint};

/// `limit_request_line`: maximum request-line size.
pub static LIMIT_REQUEST_LINE: Setting = Setting {
    key: "limit_request_line",
    flags: &["--limit-request-line"],
    arity: Arity::Value { metavar: "INT" },
    kind: Kind::Int,
    section: Section::Security,
    default: "4094",
    summary: "The maximum size of HTTP request line in bytes",
    doc: "0 means unlimited, up to 8190. A longer request line is answered with 414.",
    env_fallback: None,
    process: Process::Worker,
    support: Support::Full,
    apply: |c, v| {
        let n: usize = parse_uint(v)?;
        c.limits.request_line = if n == 0 || n > 8190 { 8190 } else { n };
        Ok(())
    },
};

/// `limit_request_fields`: maximum number of header fields.
pub static LIMIT_REQUEST_FIELDS: Setting = Setting {
    key: "limit_request_fields",
    flags: &["--limit-request-fields"],
    arity: Arity::Value { metavar: "INT" },
    kind: Kind::Int,
    section: Section::Security,
    default: "100",
    summary: "Limit the number of HTTP headers fields in a request",
    doc: "At most 32768. More header fields are answered with 431.",
    env_fallback: None,
    process: Process::Worker,
    support: Support::Full,
    apply: |c, v| {
        let n: usize = parse_uint(v)?;
        c.limits.fields = n.min(32768);
        Ok(())
    },
};

/// `limit_request_field_size`: maximum size of one header line.
pub static LIMIT_REQUEST_FIELD_SIZE: Setting = Setting {
    key: "limit_request_field_size",
    flags: &["--limit-request-field_size"],
    arity: Arity::Value { metavar: "INT" },
    kind: Kind::Int,
    section: Section::Security,
    default: "8190",
    summary: "Limit the allowed size of an HTTP request header field",
    doc: "0 means unlimited. A larger header field is answered with 431. The flag is \
          spelled with an underscore, as in Gunicorn.",
    env_fallback: None,
    process: Process::Worker,
    support: Support::Full,
    apply: |c, v| {
        c.limits.field_size = parse_uint(v)?;
        Ok(())
    },
};

/// `limit_request_body`: largest request body accepted (rgunicorn).
pub static LIMIT_REQUEST_BODY: Setting = Setting {
    key: "limit_request_body",
    flags: &["--limit-request-body"],
    arity: Arity::Value { metavar: "BYTES" },
    kind: Kind::Int,
    section: Section::Security,
    default: "0",
    summary: "The maximum size of a request body in bytes (0: no limit)",
    doc: "A Content-Length above it is answered 413 before the app runs, and before \
          the client sends the body when it asked with Expect: 100-continue; a \
          chunked body that grows past it is refused with 413 when the app reads it. \
          An rgunicorn setting; Gunicorn has none.",
    env_fallback: None,
    process: Process::Worker,
    support: Support::Full,
    apply: |c, v| {
        c.limit_request_body = parse_uint(v)?;
        Ok(())
    },
};

/// `header_timeout`: time allowed for a whole request head (rgunicorn).
pub static HEADER_TIMEOUT: Setting = Setting {
    key: "header_timeout",
    flags: &["--header-timeout"],
    arity: Arity::Value { metavar: "INT" },
    kind: Kind::Int,
    section: Section::Security,
    default: "30",
    summary: "Seconds a client has to send a whole request head",
    doc: "Counted from the request's first byte (nginx's client_header_timeout); a \
          head still incomplete then is closed without an answer. 0 means the \
          worker timeout. A new connection that sends nothing is closed after \
          keepalive seconds. An rgunicorn setting.",
    env_fallback: None,
    process: Process::Worker,
    support: Support::Full,
    apply: |c, v| {
        c.header_timeout = parse_uint(v)?;
        Ok(())
    },
};

/// `body_timeout`: longest pause while a request body arrives (rgunicorn).
pub static BODY_TIMEOUT: Setting = Setting {
    key: "body_timeout",
    flags: &["--body-timeout"],
    arity: Arity::Value { metavar: "INT" },
    kind: Kind::Int,
    section: Section::Security,
    default: "30",
    summary: "Seconds a request body may stall between two reads",
    doc: "nginx's client_body_timeout: a client that sends nothing of its body for \
          this long is answered 408 (the app's read raises ClientDisconnected). 0 \
          means the worker timeout. An rgunicorn setting.",
    env_fallback: None,
    process: Process::Worker,
    support: Support::Full,
    apply: |c, v| {
        c.body_timeout = parse_uint(v)?;
        Ok(())
    },
};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    #[test]
    fn request_line_zero_means_the_hard_maximum() {
        let mut c = Config::default();
        (LIMIT_REQUEST_LINE.apply)(&mut c, "0").unwrap();
        assert_eq!(c.limits.request_line, 8190);
        (LIMIT_REQUEST_LINE.apply)(&mut c, "100").unwrap();
        assert_eq!(c.limits.request_line, 100);
    }

    #[test]
    fn field_count_is_capped() {
        let mut c = Config::default();
        (LIMIT_REQUEST_FIELDS.apply)(&mut c, "100000").unwrap();
        assert_eq!(c.limits.fields, 32768);
        assert!((LIMIT_REQUEST_FIELD_SIZE.apply)(&mut c, "x").is_err());
    }
}
