//! Worker process settings.

use crate::config::{Arity, Process, Section, Setting, parse_uint};

/// `workers`: number of worker processes.
pub static WORKERS: Setting = Setting {
    key: "workers",
    flags: &["-w", "--workers"],
    arity: Arity::Value { metavar: "INT" },
    section: Section::Worker,
    default: "1",
    summary: "The number of worker processes for handling requests",
    doc: "A positive integer, generally 2-4 per core. WEB_CONCURRENCY is used when \
          the setting is not given.",
    env_fallback: Some("WEB_CONCURRENCY"),
    process: Process::Master,
    apply: |c, v| {
        let n: usize = parse_uint(v)?;
        if n < 1 {
            return Err("must be at least 1".into());
        }
        c.workers = n;
        Ok(())
    },
};

/// `timeout`: silent worker timeout.
pub static TIMEOUT: Setting = Setting {
    key: "timeout",
    flags: &["-t", "--timeout"],
    arity: Arity::Value { metavar: "INT" },
    section: Section::Worker,
    default: "30",
    summary: "Workers silent for more than this many seconds are killed",
    doc: "A worker busy in one request for longer than this is killed and replaced. \
          0 disables the timeout.",
    env_fallback: None,
    process: Process::Master,
    apply: |c, v| {
        c.timeout = parse_uint(v)?;
        Ok(())
    },
};

/// `graceful_timeout`: drain time on TERM.
pub static GRACEFUL_TIMEOUT: Setting = Setting {
    key: "graceful_timeout",
    flags: &["--graceful-timeout"],
    arity: Arity::Value { metavar: "INT" },
    section: Section::Worker,
    default: "30",
    summary: "Timeout for graceful workers restart",
    doc: "After a TERM, workers stop accepting and finish the requests in flight; \
          workers still busy after this many seconds are killed.",
    env_fallback: None,
    process: Process::Master,
    apply: |c, v| {
        c.graceful_timeout = parse_uint(v)?;
        Ok(())
    },
};

/// `keepalive`: idle keep-alive connection lifetime.
pub static KEEPALIVE: Setting = Setting {
    key: "keepalive",
    flags: &["--keep-alive"],
    arity: Arity::Value { metavar: "INT" },
    section: Section::Worker,
    default: "2",
    summary: "Seconds to wait for requests on a Keep-Alive connection",
    doc: "An idle keep-alive connection is closed after this many seconds. 0 turns \
          keep-alive off: every response closes its connection.",
    env_fallback: None,
    process: Process::Worker,
    apply: |c, v| {
        c.keepalive = parse_uint(v)?;
        Ok(())
    },
};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    #[test]
    fn workers_must_be_positive_integer() {
        let mut c = Config::default();
        assert!((WORKERS.apply)(&mut c, "0").is_err());
        assert!((WORKERS.apply)(&mut c, "-2").is_err());
        assert!((WORKERS.apply)(&mut c, "four").is_err());
        (WORKERS.apply)(&mut c, "4").unwrap();
        assert_eq!(c.workers, 4);
    }

    #[test]
    fn timeouts_parse_seconds() {
        let mut c = Config::default();
        (TIMEOUT.apply)(&mut c, "0").unwrap();
        (GRACEFUL_TIMEOUT.apply)(&mut c, "5").unwrap();
        (KEEPALIVE.apply)(&mut c, "10").unwrap();
        assert_eq!((c.timeout, c.graceful_timeout, c.keepalive), (0, 5, 10));
    }
}
