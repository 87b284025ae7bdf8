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
