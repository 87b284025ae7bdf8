//! `logconfig_dict`, `logconfig_json` and `logconfig` (Python's dictConfig,
//! the same as JSON, fileConfig INI) mapped onto rgunicorn's logs.
//!
//! The configuration is applied by Python's own `logging.config`, so every
//! logger it configures other than Gunicorn's two (the app's, the root) gets
//! exactly the handlers, levels and formats it names. The two Gunicorn loggers
//! are then read back and mapped onto what rgunicorn writes itself:
//!
//! | in the config, on `gunicorn.error` / `gunicorn.access` | becomes |
//! |---|---|
//! | the logger's level (`gunicorn.error`) | `loglevel` |
//! | a `FileHandler` (or subclass) | `errorlog` / `accesslog` = its file |
//! | a `StreamHandler` on stderr or stdout | `errorlog` / `accesslog` = `-` |
//! | a `SysLogHandler` | `syslog` on, its address and facility |
//!
//! Anything else on those two loggers — formatters, filters, other handler
//! classes, a second file or stream handler, rotation (use logrotate and
//! USR1) — is not mapped and is named in a warning; their handlers are then
//! replaced by the bridge to rgunicorn's log (see `logging.rs`), so Python
//! records on them follow the same mapping. A configuration Python refuses is
//! an error (exit status 2). Gunicorn's own `CONFIG_DEFAULTS` are not merged
//! in: a logger the configuration does not name keeps rgunicorn's settings.

use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::config::Config;
use crate::log::syslog::SyslogTarget;
use crate::log::{Level, LogTarget};

const APPLY: &str = r#"
import ast, json, logging, logging.config, logging.handlers, sys

def _apply(kind, value):
    if kind == "dict":
        try:
            conf = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            raise ValueError("logconfig_dict must hold only literals (strings, numbers, lists, dicts)")
        logging.config.dictConfig(conf)
    elif kind == "json":
        with open(value, encoding="utf-8") as f:
            logging.config.dictConfig(json.load(f))
    else:
        logging.config.fileConfig(value, disable_existing_loggers=False)

def _describe(h):
    if isinstance(h, logging.handlers.SysLogHandler):
        addr = h.address
        if isinstance(addr, (tuple, list)):
            scheme = "tcp" if h.socktype == __import__("socket").SOCK_STREAM else "udp"
            addr = "%s://%s:%s" % (scheme, addr[0], addr[1])
        else:
            addr = "unix://" + addr
        return ("syslog", addr, str(int(h.facility)))
    if isinstance(h, logging.FileHandler):
        extra = type(h).__name__ if type(h) is not logging.FileHandler else ""
        return ("file", h.baseFilename, extra)
    if type(h) is logging.StreamHandler and h.stream in (sys.stderr, sys.stdout, sys.__stderr__, sys.__stdout__):
        return ("stream", "", "")
    return ("other", type(h).__module__ + "." + type(h).__name__, "")

def _read(name):
    log = logging.getLogger(name)
    handlers = [_describe(h) for h in log.handlers if type(h).__name__ != "RgunicornHandler"]
    formatted = any(h.formatter is not None and h.formatter._fmt not in (None, "%(message)s")
                    for h in log.handlers if type(h).__name__ != "RgunicornHandler")
    filtered = bool(log.filters) or any(h.filters for h in log.handlers)
    for h in list(log.handlers):
        if type(h).__name__ != "RgunicornHandler":
            log.removeHandler(h)
            h.close()
    log.disabled = False
    log.propagate = False
    return {"level": log.level, "handlers": handlers, "formatted": formatted, "filtered": filtered}

_apply(KIND, VALUE)
RESULT = {"error": _read("gunicorn.error"), "access": _read("gunicorn.access")}
"#;

/// Which setting supplies the configuration, in Gunicorn's order of preference.
fn source(config: &Config) -> Option<(&'static str, &'static str, String)> {
    if let Some(d) = &config.logconfig_dict {
        return Some(("logconfig_dict", "dict", d.clone()));
    }
    if let Some(p) = &config.logconfig_json {
        return Some(("logconfig_json", "json", p.display().to_string()));
    }
    let p = config.logconfig.as_ref()?;
    Some(("logconfig", "ini", p.display().to_string()))
}

/// Apply the logging configuration a `logconfig*` setting names and map
/// Gunicorn's two loggers onto `config`; returns the warnings for what could
/// not be mapped. Without such a setting, nothing happens.
///
/// # Errors
/// Python refused the configuration (unreadable file, bad dict, unknown
/// handler class): the message names the setting.
pub fn apply(py: Python<'_>, config: &mut Config) -> Result<Vec<String>, String> {
    let Some((key, kind, value)) = source(config) else {
        return Ok(Vec::new());
    };
    let globals = PyDict::new(py);
    let run = || -> PyResult<Bound<'_, PyAny>> {
        globals.set_item("KIND", kind)?;
        globals.set_item("VALUE", &value)?;
        let code = std::ffi::CString::new(APPLY)
            .map_err(|e| pyo3::exceptions::PyValueError::new_err(e.to_string()))?;
        py.run(&code, Some(&globals), None)?;
        globals.as_any().get_item("RESULT")
    };
    let result = run().map_err(|e| format!("{key}: {}", e.value(py)))?;
    let mut warnings = Vec::new();
    for (logger, access) in [("gunicorn.error", false), ("gunicorn.access", true)] {
        let read = result
            .get_item(if access { "access" } else { "error" })
            .and_then(|r| Logger::extract(&r))
            .map_err(|e| format!("{key}: {e}"))?;
        map(config, &read, access, &mut |w| {
            warnings.push(format!("{key}: {logger}: {w}"));
        });
    }
    // dictConfig clears the handlers of the loggers it configures, the bridge
    // included (a HUP applies the configuration again): put it back.
    crate::python::logging::install(py, config.loglevel).map_err(|e| format!("{key}: {e}"))?;
    Ok(warnings)
}

/// What was read back from one Gunicorn logger.
struct Logger {
    level: i64,
    /// (kind, detail, extra) per handler, as `_describe` gives them.
    handlers: Vec<(String, String, String)>,
    formatted: bool,
    filtered: bool,
}

impl Logger {
    fn extract(read: &Bound<'_, PyAny>) -> PyResult<Logger> {
        Ok(Logger {
            level: read.get_item("level")?.extract()?,
            handlers: read.get_item("handlers")?.extract()?,
            formatted: read.get_item("formatted")?.extract()?,
            filtered: read.get_item("filtered")?.extract()?,
        })
    }
}

/// Python's numeric level as ours; None for NOTSET (0: not configured).
fn level(n: i64) -> Option<Level> {
    match n {
        0 => None,
        n if n >= 50 => Some(Level::Critical),
        n if n >= 40 => Some(Level::Error),
        n if n >= 30 => Some(Level::Warning),
        n if n >= 20 => Some(Level::Info),
        _ => Some(Level::Debug),
    }
}

/// Map one logger onto `config`, reporting what does not map through `warn`.
fn map(config: &mut Config, read: &Logger, access: bool, warn: &mut dyn FnMut(String)) {
    if !access && let Some(l) = level(read.level) {
        config.loglevel = l;
    }
    if read.formatted {
        warn("formatters are not mapped: rgunicorn writes its own line format".into());
    }
    if read.filtered {
        warn("filters are not mapped".into());
    }
    let mut target_set = false;
    for (kind, detail, extra) in &read.handlers {
        let target = match kind.as_str() {
            "file" => {
                if !extra.is_empty() {
                    warn(format!(
                        "{extra} is mapped as a plain file (rotate with logrotate and USR1)"
                    ));
                }
                Some(LogTarget::File(detail.into()))
            }
            "stream" => Some(LogTarget::Stdio),
            "syslog" => {
                match SyslogTarget::parse(detail) {
                    Ok(t) => {
                        config.syslog_enabled = true;
                        config.syslog_addr = t;
                        config.syslog_facility = extra.parse().unwrap_or(1);
                        if access {
                            config.access_to_syslog = true;
                        }
                    }
                    Err(e) => warn(format!("syslog address {detail:?} is not mapped: {e}")),
                }
                None
            }
            _ => {
                warn(format!("handler {detail} is not mapped"));
                None
            }
        };
        match target {
            Some(_) if target_set => warn("only the first file or stream handler is mapped".into()),
            Some(t) if access => {
                config.access_log = Some(t);
                target_set = true;
            }
            Some(t) => {
                config.error_log = t;
                target_set = true;
            }
            None => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn logger(handlers: &[(&str, &str, &str)]) -> Logger {
        Logger {
            level: 30,
            handlers: handlers
                .iter()
                .map(|(a, b, c)| ((*a).to_owned(), (*b).to_owned(), (*c).to_owned()))
                .collect(),
            formatted: false,
            filtered: false,
        }
    }

    #[test]
    fn file_stream_and_syslog_handlers_map_onto_the_logs() {
        let mut c = Config::default();
        let mut warnings = Vec::new();
        let error = logger(&[
            ("file", "/var/log/e.log", ""),
            ("syslog", "udp://h:514", "3"),
        ]);
        map(&mut c, &error, false, &mut |w| warnings.push(w));
        assert_eq!(c.error_log, LogTarget::File("/var/log/e.log".into()));
        assert_eq!(c.loglevel, Level::Warning);
        assert!(c.syslog_enabled);
        assert_eq!(c.syslog_facility, 3);
        map(&mut c, &logger(&[("stream", "", "")]), true, &mut |w| {
            warnings.push(w)
        });
        assert_eq!(c.access_log, Some(LogTarget::Stdio));
        assert!(warnings.is_empty(), "{warnings:?}");
    }

    #[test]
    fn what_does_not_map_is_warned_about() {
        let mut c = Config::default();
        let mut warnings = Vec::new();
        let mut read = logger(&[
            ("file", "/a", "RotatingFileHandler"),
            ("stream", "", ""),
            ("other", "logging.handlers.HTTPHandler", ""),
        ]);
        read.formatted = true;
        map(&mut c, &read, false, &mut |w| warnings.push(w));
        assert_eq!(c.error_log, LogTarget::File("/a".into()));
        assert_eq!(warnings.len(), 4, "{warnings:?}");
    }
}
