//! Logging settings: the error log and the access log.

use crate::config::{Arity, Process, Section, Setting};
use crate::log::Level;

/// `accesslog`: access log destination.
pub static ACCESSLOG: Setting = Setting {
    key: "accesslog",
    flags: &["--access-logfile"],
    arity: Arity::Value { metavar: "FILE" },
    section: Section::Logging,
    default: "",
    summary: "The Access log file to write to; '-' means stdout",
    doc: "Without this setting no access log is written.",
    env_fallback: None,
    process: Process::Worker,
    apply: |c, v| {
        c.accesslog = Some(v.to_owned());
        Ok(())
    },
};

/// `access_log_format`: Gunicorn access log atoms.
pub static ACCESS_LOG_FORMAT: Setting = Setting {
    key: "access_log_format",
    flags: &["--access-logformat"],
    arity: Arity::Value { metavar: "STRING" },
    section: Section::Logging,
    default: crate::log::access::DEFAULT_FORMAT,
    summary: "The access log format",
    doc: "Gunicorn's atoms: h l u t r m U q H s B b f a T D M L p, {name}i for a \
          request header, {name}o for a response header, {name}e for an environ key.",
    env_fallback: None,
    process: Process::Worker,
    apply: |c, v| {
        crate::log::access::Format::compile(v)?;
        c.access_log_format = v.to_owned();
        Ok(())
    },
};

/// `errorlog`: error log destination.
pub static ERRORLOG: Setting = Setting {
    key: "errorlog",
    flags: &["--error-logfile", "--log-file"],
    arity: Arity::Value { metavar: "FILE" },
    section: Section::Logging,
    default: "-",
    summary: "The Error log file to write to; '-' means stderr",
    doc: "Server messages and application tracebacks go here.",
    env_fallback: None,
    process: Process::Master,
    apply: |c, v| {
        c.errorlog = v.to_owned();
        Ok(())
    },
};

/// `loglevel`: error log threshold.
pub static LOGLEVEL: Setting = Setting {
    key: "loglevel",
    flags: &["--log-level"],
    arity: Arity::Value { metavar: "LEVEL" },
    section: Section::Logging,
    default: "info",
    summary: "The granularity of Error log outputs",
    doc: "One of debug, info, warning, error, critical.",
    env_fallback: None,
    process: Process::Master,
    apply: |c, v| {
        c.loglevel = Level::parse(v).ok_or("expected debug, info, warning, error or critical")?;
        Ok(())
    },
};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    #[test]
    fn loglevel_names_are_case_insensitive() {
        let mut c = Config::default();
        (LOGLEVEL.apply)(&mut c, "DEBUG").unwrap();
        assert_eq!(c.loglevel, Level::Debug);
        assert!((LOGLEVEL.apply)(&mut c, "loud").is_err());
    }

    #[test]
    fn bad_access_format_is_refused() {
        let mut c = Config::default();
        assert!((ACCESS_LOG_FORMAT.apply)(&mut c, "%(h)s %(nope)s").is_err());
        (ACCESS_LOG_FORMAT.apply)(&mut c, "%(h)s %({x-id}i)s").unwrap();
    }
}
