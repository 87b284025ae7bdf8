//! Logging settings: the error log and the access log.

use crate::config::parse_bool;
use crate::config::{Arity, Kind, Process, Section, Setting, Support};
use crate::log::statsd::StatsdTarget;
use crate::log::syslog::{SyslogTarget, facility};
use crate::log::{Level, LogTarget};

/// `accesslog`: access log destination.
pub static ACCESSLOG: Setting = Setting {
    key: "accesslog",
    flags: &["--access-logfile"],
    arity: Arity::Value { metavar: "FILE" },
    kind: Kind::Str,
    section: Section::Logging,
    default: "None",
    summary: "The Access log file to write to; '-' means stdout",
    doc: "Without this setting no access log is written. journal (an rgunicorn \
          extension) sends entries with their fields to the systemd journal; so does \
          - when standard output is the journal. journald's rate limit applies.",
    env_fallback: None,
    process: Process::Worker,
    support: Support::Full,
    apply: |c, v| {
        if v.is_empty() {
            return Err("expected a file path, - or journal".into());
        }
        c.access_log = Some(LogTarget::parse(v));
        Ok(())
    },
};

/// `access_log_format`: Gunicorn access log atoms.
pub static ACCESS_LOG_FORMAT: Setting = Setting {
    key: "access_log_format",
    flags: &["--access-logformat"],
    arity: Arity::Value { metavar: "STRING" },
    kind: Kind::Str,
    section: Section::Logging,
    default: crate::log::access::DEFAULT_FORMAT,
    summary: "The access log format",
    doc: "Gunicorn's atoms: h l u t r m U q H s B b f a T D M L p, {name}i for a \
          request header, {name}o for a response header, {name}e for a WSGI environ \
          variable; %% is a literal %. Quotes, backslashes and bytes outside printable \
          ASCII in values are escaped, so a request cannot forge fields. An unknown \
          atom is a startup error. The value json (an rgunicorn extension) writes one \
          JSON object per request with the fields the journal gets.",
    env_fallback: None,
    process: Process::Worker,
    support: Support::Full,
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
    kind: Kind::Str,
    section: Section::Logging,
    default: "-",
    summary: "The Error log file to write to; '-' means stderr",
    doc: "Server messages and application tracebacks go here. journal (an \
          rgunicorn extension) logs through the native journal protocol, which is \
          also used when standard error is the journal.",
    env_fallback: None,
    process: Process::Master,
    support: Support::Full,
    apply: |c, v| {
        c.error_log = LogTarget::parse(v);
        Ok(())
    },
};

/// `loglevel`: error log threshold.
pub static LOGLEVEL: Setting = Setting {
    key: "loglevel",
    flags: &["--log-level"],
    arity: Arity::Value { metavar: "LEVEL" },
    kind: Kind::Str,
    section: Section::Logging,
    default: "info",
    summary: "The granularity of Error log outputs",
    doc: "One of debug, info, warning, error, critical.",
    env_fallback: None,
    process: Process::Master,
    support: Support::Full,
    apply: |c, v| {
        c.loglevel = Level::parse(v).ok_or("expected debug, info, warning, error or critical")?;
        Ok(())
    },
};

/// `disable_redirect_access_to_syslog`: keep access lines out of syslog.
pub static DISABLE_REDIRECT_ACCESS_TO_SYSLOG: Setting = Setting {
    key: "disable_redirect_access_to_syslog",
    flags: &["--disable-redirect-access-to-syslog"],
    arity: Arity::Switch { value: "true" },
    kind: Kind::Bool,
    section: Section::Logging,
    default: "False",
    summary: "Disable redirect access logs to syslog",
    doc: "With syslog on, access lines go to syslog too (tagged \
          gunicorn.PREFIX.access), even without accesslog; this keeps them out.",
    env_fallback: None,
    process: Process::Worker,
    support: Support::Full,
    apply: |c, v| {
        c.access_to_syslog = !parse_bool(v)?;
        Ok(())
    },
};
/// `capture_output`: stdout and stderr into the error log file.
pub static CAPTURE_OUTPUT: Setting = Setting {
    key: "capture_output",
    flags: &["--capture-output"],
    arity: Arity::Switch { value: "true" },
    kind: Kind::Bool,
    section: Section::Logging,
    default: "False",
    summary: "Redirect stdout/stderr to specified file in errorlog",
    doc: "With errorlog naming a file, the master points its standard output and \
          error (and so the workers') at that file, again after each USR1 \
          reopen, so print() and C extensions' output land in the log. With \
          errorlog - or journal there is nothing to redirect (both streams are \
          already collected); a warning says so.",
    env_fallback: None,
    process: Process::Master,
    support: Support::Full,
    apply: |c, v| {
        c.capture_output = parse_bool(v)?;
        Ok(())
    },
};
not_yet!(
    LOGGER_CLASS,
    "logger_class",
    ["--logger-class"],
    Arity::Value { metavar: "STRING" },
    Kind::Str,
    Section::Logging,
    "gunicorn.glogging.Logger",
    "The logger you want to use to log events",
    Process::Master
);
/// `logconfig`: a Python logging fileConfig INI file.
pub static LOGCONFIG: Setting = Setting {
    key: "logconfig",
    flags: &["--log-config"],
    arity: Arity::Value { metavar: "FILE" },
    kind: Kind::Str,
    section: Section::Logging,
    default: "None",
    summary: "The log config file to use",
    doc: "A file in the format of Python's logging.config.fileConfig. See LOGGING CONFIGURATION in rgunicorn.conf(5) for what is mapped onto \
          rgunicorn's logs; Python applies the rest to the app's loggers.",
    env_fallback: None,
    process: Process::Master,
    support: Support::Full,
    apply: |c, v| {
        c.logconfig = optional_path(v);
        Ok(())
    },
};
/// `logconfig_dict`: a Python logging dictConfig dictionary.
pub static LOGCONFIG_DICT: Setting = Setting {
    key: "logconfig_dict",
    flags: &[],
    arity: Arity::Value { metavar: "DICT" },
    kind: Kind::Dict,
    section: Section::Logging,
    default: "{}",
    summary: "The log config dictionary to use",
    doc: "A dictionary for Python's logging.config.dictConfig (set in a Python \
          config file; it must hold only literals), preferred over logconfig_json \
          and logconfig. See LOGGING CONFIGURATION in rgunicorn.conf(5) for what is mapped onto \
          rgunicorn's logs; Python applies the rest to the app's loggers.",
    env_fallback: None,
    process: Process::Master,
    support: Support::Full,
    apply: |c, v| {
        c.logconfig_dict = match v.trim() {
            "" | "{}" => None,
            d => Some(d.to_owned()),
        };
        Ok(())
    },
};
/// `logconfig_json`: a Python logging dictConfig as a JSON file.
pub static LOGCONFIG_JSON: Setting = Setting {
    key: "logconfig_json",
    flags: &["--log-config-json"],
    arity: Arity::Value { metavar: "FILE" },
    kind: Kind::Str,
    section: Section::Logging,
    default: "None",
    summary: "The log config to read config from a JSON file",
    doc: "A JSON file holding a logging.config.dictConfig dictionary, preferred \
          over logconfig. See LOGGING CONFIGURATION in rgunicorn.conf(5) for what is mapped onto \
          rgunicorn's logs; Python applies the rest to the app's loggers.",
    env_fallback: None,
    process: Process::Master,
    support: Support::Full,
    apply: |c, v| {
        c.logconfig_json = optional_path(v);
        Ok(())
    },
};
/// `syslog_addr`: where syslog records go.
pub static SYSLOG_ADDR: Setting = Setting {
    key: "syslog_addr",
    flags: &["--log-syslog-to"],
    arity: Arity::Value {
        metavar: "SYSLOG_ADDR",
    },
    kind: Kind::Str,
    section: Section::Logging,
    default: "udp://localhost:514",
    summary: "Address to send syslog messages",
    doc: "unix://PATH#TYPE for a unix socket (TYPE dgram or stream; without it a \
          datagram socket is tried, then a stream), udp://HOST:PORT or \
          tcp://HOST:PORT. The default is Gunicorn's on Linux. Records are \
          RFC 3164-style as Python's SysLogHandler writes them: <PRI>TAG: [PID] \
          MESSAGE, and sending never blocks a worker (a record the receiver cannot \
          take now is dropped from syslog; the error log still has it).",
    env_fallback: None,
    process: Process::Master,
    support: Support::Full,
    apply: |c, v| {
        c.syslog_addr = SyslogTarget::parse(v)?;
        Ok(())
    },
};
/// `syslog`: send the error log (and access lines) to syslog too.
pub static SYSLOG: Setting = Setting {
    key: "syslog",
    flags: &["--log-syslog"],
    arity: Arity::Switch { value: "true" },
    kind: Kind::Bool,
    section: Section::Logging,
    default: "False",
    summary: "Send Gunicorn logs to syslog",
    doc: "Error-log records go to syslog_addr as well as to errorlog, tagged \
          gunicorn.PREFIX.error; access lines too, tagged gunicorn.PREFIX.access, \
          unless disable_redirect_access_to_syslog.",
    env_fallback: None,
    process: Process::Master,
    support: Support::Full,
    apply: |c, v| {
        c.syslog_enabled = parse_bool(v)?;
        Ok(())
    },
};
/// `syslog_prefix`: the program-name part of syslog tags.
pub static SYSLOG_PREFIX: Setting = Setting {
    key: "syslog_prefix",
    flags: &["--log-syslog-prefix"],
    arity: Arity::Value {
        metavar: "SYSLOG_PREFIX",
    },
    kind: Kind::Str,
    section: Section::Logging,
    default: "None",
    summary: "Makes Gunicorn use the parameter as program-name in the syslog entries",
    doc: "Tags read gunicorn.PREFIX.error and gunicorn.PREFIX.access; without a \
          prefix, the process name (proc_name) with : turned into . is used.",
    env_fallback: None,
    process: Process::Master,
    support: Support::Full,
    apply: |c, v| {
        c.syslog_prefix = match v.trim() {
            "" | "None" => None,
            p => Some(p.to_owned()),
        };
        Ok(())
    },
};
/// `syslog_facility`: the syslog facility of every record.
pub static SYSLOG_FACILITY: Setting = Setting {
    key: "syslog_facility",
    flags: &["--log-syslog-facility"],
    arity: Arity::Value {
        metavar: "SYSLOG_FACILITY",
    },
    kind: Kind::Str,
    section: Section::Logging,
    default: "user",
    summary: "Syslog facility name",
    doc: "kern, user, mail, daemon, auth, syslog, lpr, news, uucp, cron, authpriv, \
          ftp, security or local0 to local7.",
    env_fallback: None,
    process: Process::Master,
    support: Support::Full,
    apply: |c, v| {
        c.syslog_facility = facility(v).ok_or("unknown facility name")?;
        Ok(())
    },
};
/// `enable_stdio_inheritance`: keep stdout and stderr with --daemon.
pub static ENABLE_STDIO_INHERITANCE: Setting = Setting {
    key: "enable_stdio_inheritance",
    flags: &["-R", "--enable-stdio-inheritance"],
    arity: Arity::Switch { value: "true" },
    kind: Kind::Bool,
    section: Section::Logging,
    default: "False",
    summary: "Enable stdio inheritance",
    doc: "With daemon, keep standard output and error where they were instead of \
          /dev/null (standard input still becomes /dev/null). Python's stdout is \
          buffered; set PYTHONUNBUFFERED (raw_env) to see prints at once.",
    env_fallback: None,
    process: Process::Master,
    support: Support::Full,
    apply: |c, v| {
        c.stdio_inherited = parse_bool(v)?;
        Ok(())
    },
};
/// `statsd_host`: where statsD metrics go.
pub static STATSD_HOST: Setting = Setting {
    key: "statsd_host",
    flags: &["--statsd-host"],
    arity: Arity::Value {
        metavar: "STATSD_ADDR",
    },
    kind: Kind::Str,
    section: Section::Logging,
    default: "None",
    summary: "The address of the StatsD server to log to",
    doc: "HOST:PORT (port 8125 when left out) over UDP, or unix:PATH for a unix \
          datagram socket. Gunicorn's metrics: gunicorn.requests, \
          gunicorn.request.status.CODE and gunicorn.request.duration (ms) from the \
          worker per request, gunicorn.workers (gauge) from the master every \
          second, gunicorn.log.warning, .error and .critical per error-log record. \
          A request's three metrics go in one datagram, a line each (statsd, \
          DogStatsD and Telegraf read multi-metric packets); sends never block, so \
          an absent or slow receiver loses metrics, not requests. Read at start \
          (not on HUP).",
    env_fallback: None,
    process: Process::Worker,
    support: Support::Full,
    apply: |c, v| {
        c.statsd_host = match v.trim() {
            "" | "None" => None,
            addr => Some(StatsdTarget::parse(addr)?),
        };
        Ok(())
    },
};

/// `dogstatsd_tags`: tags appended to every statsD metric.
pub static DOGSTATSD_TAGS: Setting = Setting {
    key: "dogstatsd_tags",
    flags: &["--dogstatsd-tags"],
    arity: Arity::Value {
        metavar: "DOGSTATSD_TAGS",
    },
    kind: Kind::Str,
    section: Section::Logging,
    default: "",
    summary: "A comma-delimited list of datadog statsd (dogstatsd) tags to append",
    doc: "For example env:prod,app:web; each metric then ends with |#env:prod,app:web.",
    env_fallback: None,
    process: Process::Worker,
    support: Support::Full,
    apply: |c, v| {
        if !v.is_ascii() {
            return Err("tags must be ASCII".into());
        }
        c.dogstatsd_tags = v.trim().to_owned();
        Ok(())
    },
};

/// `statsd_prefix`: prefix of every statsD metric name.
pub static STATSD_PREFIX: Setting = Setting {
    key: "statsd_prefix",
    flags: &["--statsd-prefix"],
    arity: Arity::Value {
        metavar: "STATSD_PREFIX",
    },
    kind: Kind::Str,
    section: Section::Logging,
    default: "",
    summary: "Prefix to use when emitting statsd metrics",
    doc: "A trailing dot is added when missing: app gives app.gunicorn.requests.",
    env_fallback: None,
    process: Process::Worker,
    support: Support::Full,
    apply: |c, v| {
        if !v.is_ascii() {
            return Err("the prefix must be ASCII".into());
        }
        c.statsd_prefix = v.trim().to_owned();
        Ok(())
    },
};

/// A path setting whose default is `None`.
fn optional_path(v: &str) -> Option<std::path::PathBuf> {
    match v.trim() {
        "" | "None" => None,
        p => Some(p.into()),
    }
}

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
    fn log_destinations_resolve_to_targets() {
        let mut c = Config::default();
        (ERRORLOG.apply)(&mut c, "journald").unwrap();
        assert_eq!(c.error_log, LogTarget::Journal);
        (ERRORLOG.apply)(&mut c, "").unwrap();
        assert_eq!(c.error_log, LogTarget::Stdio);
        (ACCESSLOG.apply)(&mut c, "-").unwrap();
        assert_eq!(c.access_log, Some(LogTarget::Stdio));
        (ACCESSLOG.apply)(&mut c, "/var/log/a.log").unwrap();
        assert_eq!(c.access_log, Some(LogTarget::File("/var/log/a.log".into())));
        assert!((ACCESSLOG.apply)(&mut c, "").is_err());
    }

    #[test]
    fn logconfig_settings_name_their_sources() {
        let mut c = Config::default();
        (LOGCONFIG.apply)(&mut c, "/etc/log.ini").unwrap();
        (LOGCONFIG_JSON.apply)(&mut c, "log.json").unwrap();
        (LOGCONFIG_DICT.apply)(&mut c, "{'version': 1}").unwrap();
        assert_eq!(
            c.logconfig.as_deref(),
            Some(std::path::Path::new("/etc/log.ini"))
        );
        assert_eq!(
            c.logconfig_json.as_deref(),
            Some(std::path::Path::new("log.json"))
        );
        assert_eq!(c.logconfig_dict.as_deref(), Some("{'version': 1}"));
        (LOGCONFIG_DICT.apply)(&mut c, "{}").unwrap();
        assert_eq!(c.logconfig_dict, None);
    }

    #[test]
    fn stdio_switches_parse() {
        let mut c = Config::default();
        (CAPTURE_OUTPUT.apply)(&mut c, "true").unwrap();
        (ENABLE_STDIO_INHERITANCE.apply)(&mut c, "yes").unwrap();
        assert!(c.capture_output && c.stdio_inherited);
        assert!((CAPTURE_OUTPUT.apply)(&mut c, "maybe").is_err());
    }

    #[test]
    fn syslog_settings_parse() {
        let mut c = Config::default();
        (SYSLOG.apply)(&mut c, "true").unwrap();
        (SYSLOG_ADDR.apply)(&mut c, "unix:///dev/log#dgram").unwrap();
        (SYSLOG_FACILITY.apply)(&mut c, "local3").unwrap();
        (SYSLOG_PREFIX.apply)(&mut c, "web").unwrap();
        (DISABLE_REDIRECT_ACCESS_TO_SYSLOG.apply)(&mut c, "true").unwrap();
        assert!(c.syslog_enabled && !c.access_to_syslog);
        assert_eq!(c.syslog_facility, 19);
        assert_eq!(c.syslog_prefix.as_deref(), Some("web"));
        assert!((SYSLOG_FACILITY.apply)(&mut c, "local9").is_err());
        assert!((SYSLOG_ADDR.apply)(&mut c, "syslog.example:514").is_err());
    }

    #[test]
    fn statsd_settings_parse() {
        let mut c = Config::default();
        (STATSD_HOST.apply)(&mut c, "localhost:9125").unwrap();
        assert!(matches!(
            c.statsd_host,
            Some(StatsdTarget::Udp { port: 9125, .. })
        ));
        (STATSD_HOST.apply)(&mut c, "unix:/run/statsd").unwrap();
        assert!(matches!(c.statsd_host, Some(StatsdTarget::Unix(_))));
        assert!((STATSD_HOST.apply)(&mut c, "host:nope").is_err());
        (STATSD_PREFIX.apply)(&mut c, "svc").unwrap();
        (DOGSTATSD_TAGS.apply)(&mut c, "env:prod").unwrap();
        assert_eq!(
            (c.statsd_prefix.as_str(), c.dogstatsd_tags.as_str()),
            ("svc", "env:prod")
        );
    }

    #[test]
    fn bad_access_format_is_refused() {
        let mut c = Config::default();
        assert!((ACCESS_LOG_FORMAT.apply)(&mut c, "%(h)s %(nope)s").is_err());
        (ACCESS_LOG_FORMAT.apply)(&mut c, "%(h)s %({x-id}i)s").unwrap();
    }
}
