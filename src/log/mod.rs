//! Error log: Gunicorn's line format to stderr or `--error-logfile`.
//!
//! Lines look like `[2026-11-25 09:00:00 +0000] [1234] [INFO] Listening at: ...`
//! and are written with one write(2) each, so lines from the master and its workers
//! never interleave mid-line. The sink is process-wide (like the `log` crate's
//! logger) and is set once at startup; workers inherit it across fork.
//! journald's native protocol arrives with the systemd issue.

pub mod access;

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::sync::{Mutex, OnceLock};
use std::time::SystemTime;

/// Error log severity, ordered from most to least verbose.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    /// Diagnostic detail.
    Debug,
    /// Normal operation.
    Info,
    /// Something odd that did not stop the server.
    Warning,
    /// A failure.
    Error,
    /// A failure that stops the server.
    Critical,
}

impl Level {
    /// Parse Gunicorn's level names, case-insensitively.
    pub fn parse(s: &str) -> Option<Level> {
        match s.trim().to_ascii_lowercase().as_str() {
            "debug" => Some(Level::Debug),
            "info" => Some(Level::Info),
            "warning" | "warn" => Some(Level::Warning),
            "error" => Some(Level::Error),
            "critical" => Some(Level::Critical),
            _ => None,
        }
    }

    fn label(self) -> &'static str {
        match self {
            Level::Debug => "DEBUG",
            Level::Info => "INFO",
            Level::Warning => "WARNING",
            Level::Error => "ERROR",
            Level::Critical => "CRITICAL",
        }
    }
}

enum Sink {
    Stderr,
    File(File),
}

struct Logger {
    level: Level,
    sink: Mutex<Sink>,
}

static LOGGER: OnceLock<Logger> = OnceLock::new();

/// Set up the error log. Before this, messages go to stderr at info level.
///
/// # Errors
/// The log file cannot be opened.
pub fn init(errorlog: &str, level: Level) -> std::io::Result<()> {
    let sink = match errorlog {
        "-" | "" => Sink::Stderr,
        path => Sink::File(OpenOptions::new().create(true).append(true).open(path)?),
    };
    let _ = LOGGER.set(Logger {
        level,
        sink: Mutex::new(sink),
    });
    Ok(())
}

/// Log `msg` at `level`.
pub fn log(level: Level, msg: &str) {
    let threshold = LOGGER.get().map_or(Level::Info, |l| l.level);
    if level < threshold {
        return;
    }
    let line = format!(
        "[{}] [{}] [{}] {}\n",
        error_timestamp(SystemTime::now()),
        std::process::id(),
        level.label(),
        msg.trim_end()
    );
    write_raw(&line);
}

/// Write text as it is (no prefix) to the error log, e.g. for `wsgi.errors`.
pub fn write_raw(text: &str) {
    match LOGGER.get() {
        Some(logger) => {
            let mut sink = logger.sink.lock().unwrap_or_else(|p| p.into_inner());
            let _ = match &mut *sink {
                Sink::Stderr => std::io::stderr().write_all(text.as_bytes()),
                Sink::File(f) => f.write_all(text.as_bytes()),
            };
        }
        None => {
            let _ = std::io::stderr().write_all(text.as_bytes());
        }
    }
}

/// Log at debug level.
pub fn debug(msg: &str) {
    log(Level::Debug, msg);
}
/// Log at info level.
pub fn info(msg: &str) {
    log(Level::Info, msg);
}
/// Log at warning level.
pub fn warning(msg: &str) {
    log(Level::Warning, msg);
}
/// Log at error level.
pub fn error(msg: &str) {
    log(Level::Error, msg);
}
/// Log at critical level.
pub fn critical(msg: &str) {
    log(Level::Critical, msg);
}

/// True when debug messages would be written (to skip formatting them).
pub fn debug_enabled() -> bool {
    LOGGER.get().is_some_and(|l| l.level <= Level::Debug)
}

/// Broken-down UTC time.
pub(crate) struct Civil {
    pub year: i64,
    pub month: u32,
    pub day: u32,
    pub hour: u32,
    pub minute: u32,
    pub second: u32,
}

/// Convert a time to UTC calendar fields (Howard Hinnant's days-to-civil).
pub(crate) fn civil(t: SystemTime) -> Civil {
    let secs = t
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    Civil {
        year,
        month,
        day,
        hour: (rem / 3600) as u32,
        minute: (rem % 3600 / 60) as u32,
        second: (rem % 60) as u32,
    }
}

fn error_timestamp(t: SystemTime) -> String {
    let c = civil(t);
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02} +0000",
        c.year, c.month, c.day, c.hour, c.minute, c.second
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn timestamp_matches_gunicorn_layout() {
        let t = SystemTime::UNIX_EPOCH + Duration::from_secs(1_795_597_200);
        assert_eq!(error_timestamp(t), "2026-11-25 09:00:00 +0000");
        assert_eq!(
            error_timestamp(SystemTime::UNIX_EPOCH),
            "1970-01-01 00:00:00 +0000"
        );
    }

    #[test]
    fn levels_parse_and_order() {
        assert_eq!(Level::parse("Warning"), Some(Level::Warning));
        assert!(Level::Debug < Level::Critical);
        assert_eq!(Level::parse("verbose"), None);
    }
}
