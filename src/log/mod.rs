//! Error log: Gunicorn's line format to stderr or `--error-logfile`, or journald's
//! native protocol when running under systemd.
//!
//! Sinks, chosen once by [`init_target`] from the `errorlog` setting (a
//! [`LogTarget`], which the config resolved) and the environment:
//! - the journal (see [`journal`]) when stderr is the stream systemd connected to
//!   it (`$JOURNAL_STREAM` equals fstat(2) of fd 2), or when `errorlog` is
//!   `journal`/`journald` (an rgunicorn extension). Each record is one entry with
//!   `MESSAGE`, `PRIORITY` (syslog level) and `SYSLOG_IDENTIFIER=rgunicorn`, so a
//!   traceback is one entry, not one per line;
//! - stderr with sd-daemon(3) `<N>` prefixes on every line when started by systemd
//!   (`$INVOCATION_ID`) but not connected to the journal;
//! - plain stderr or an append-mode file otherwise. Lines look like
//!   `[2026-11-25 09:00:00 +0000] [1234] [INFO] Listening at: ...` and are written
//!   with one write(2) each, so lines from the master and its workers never
//!   interleave mid-line.
//!
//! The sink is process-wide (like the `log` crate's logger), set once at startup
//! and inherited by workers across fork; [`reopen`] reopens a file sink for USR1.
//!
//! Debug lines are written with `debug!`, which formats its message only when
//! the level lets it through, so debug logging costs one load and a compare when
//! it is off.

pub mod access;
mod access_format;
pub mod journal;
pub mod statsd;
pub mod syslog;

use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};
use std::time::SystemTime;

use journal::Journal;

/// `SYSLOG_IDENTIFIER` of every entry we send to the journal.
pub const SYSLOG_IDENTIFIER: &str = "rgunicorn";

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

    /// The syslog priority (`PRIORITY=`, `<N>` prefix): debug 7, info 6,
    /// warning 4, error 3, critical 2, as Python's `SysLogHandler` maps them.
    pub fn syslog_priority(self) -> u8 {
        match self {
            Level::Debug => 7,
            Level::Info => 6,
            Level::Warning => 4,
            Level::Error => 3,
            Level::Critical => 2,
        }
    }
}

/// Where records go; see the module doc for how it is chosen.
enum Sink {
    /// Gunicorn's lines on stderr.
    Stderr,
    /// Gunicorn's lines on stderr, each line prefixed with `<N>` (sd-daemon(3)).
    StderrPrefixed,
    /// Gunicorn's lines appended to a file; `path` is kept for [`reopen`].
    File { path: PathBuf, file: File },
    /// One native-protocol entry per record.
    Journal(Journal),
}

/// What [`choose_sink`] decided, before anything is opened.
#[derive(Debug, PartialEq, Eq)]
enum SinkKind {
    Stderr,
    StderrPrefixed,
    File(PathBuf),
    Journal,
}

struct Logger {
    level: Level,
    sink: Mutex<Sink>,
}

static LOGGER: OnceLock<Logger> = OnceLock::new();

/// `capture_output` is on: fds 1 and 2 follow the error log file, also after
/// a reopen.
static CAPTURE: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// `capture_output`: point this process's stdout and stderr (fds 1 and 2, which
/// the workers inherit) at the error log file, now and after every [`reopen`],
/// so `print()` and what C extensions write land in the log, as in Gunicorn.
/// Returns false when the error log is not a file: stderr and the journal
/// already collect both streams, so there is nothing to redirect.
///
/// # Errors
/// dup2(2) failed.
pub fn capture_output() -> std::io::Result<bool> {
    let Some(logger) = LOGGER.get() else {
        return Ok(false);
    };
    let sink = logger.sink.lock().unwrap_or_else(|p| p.into_inner());
    let Sink::File { file, .. } = &*sink else {
        return Ok(false);
    };
    CAPTURE.store(true, std::sync::atomic::Ordering::Relaxed);
    redirect_stdio(file)?;
    Ok(true)
}

fn redirect_stdio(file: &File) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    for fd in [1, 2] {
        // SAFETY: dup2 onto the standard descriptors; `file` stays open.
        if unsafe { libc::dup2(file.as_raw_fd(), fd) } < 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}

/// Where a log goes: the meaning of an `errorlog` or `accesslog` value, decided
/// once when the setting is applied. Whether `-` ends up in the journal depends
/// on what the standard stream is connected to, so that is decided when the log
/// is opened.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LogTarget {
    /// `-`: the process's own stream (stderr for the error log, stdout for the
    /// access log), or the journal when systemd connected that stream to it.
    Stdio,
    /// `journal` or `journald` (an rgunicorn extension): the native journal
    /// protocol, wherever the standard streams go.
    Journal,
    /// Any other value: a file, opened for appending.
    File(PathBuf),
}

impl LogTarget {
    /// What an `errorlog`/`accesslog` value names: `-` (or nothing) the standard
    /// stream, `journal`/`journald` the journal, anything else a file path.
    pub fn parse(value: &str) -> LogTarget {
        match value {
            "-" | "" => LogTarget::Stdio,
            "journal" | "journald" => LogTarget::Journal,
            path => LogTarget::File(PathBuf::from(path)),
        }
    }

    /// The file appended to, if the target is one.
    pub fn path(&self) -> Option<&Path> {
        match self {
            LogTarget::File(path) => Some(path),
            LogTarget::Stdio | LogTarget::Journal => None,
        }
    }
}

impl fmt::Display for LogTarget {
    /// The value as a setting spells it: `-`, `journal` or the path.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LogTarget::Stdio => f.write_str("-"),
            LogTarget::Journal => f.write_str("journal"),
            LogTarget::File(path) => write!(f, "{}", path.display()),
        }
    }
}

/// Set up the error log from the process environment. Before this, messages go to
/// stderr at info level.
///
/// # Errors
/// The log file cannot be opened, or the journal socket cannot be created.
pub fn init_target(target: &LogTarget, level: Level) -> std::io::Result<()> {
    init_with_env(target, level, &|k| std::env::var(k).ok())
}

/// [`init_target`] reading `JOURNAL_STREAM` and `INVOCATION_ID` through `env`.
///
/// # Errors
/// As [`init_target`].
pub fn init_with_env(
    target: &LogTarget,
    level: Level,
    env: &dyn Fn(&str) -> Option<String>,
) -> std::io::Result<()> {
    let stderr_is_journal =
        journal::is_journal_stream(std::io::stderr().as_fd(), env("JOURNAL_STREAM").as_deref());
    let sink = match choose_sink(target, env, stderr_is_journal) {
        SinkKind::Stderr => Sink::Stderr,
        SinkKind::StderrPrefixed => Sink::StderrPrefixed,
        SinkKind::File(path) => Sink::File {
            file: open_append(&path)?,
            path,
        },
        SinkKind::Journal => Sink::Journal(Journal::open()?),
    };
    let _ = LOGGER.set(Logger {
        level,
        sink: Mutex::new(sink),
    });
    Ok(())
}

fn choose_sink(
    target: &LogTarget,
    env: &dyn Fn(&str) -> Option<String>,
    stderr_is_journal: bool,
) -> SinkKind {
    match target {
        LogTarget::Journal => SinkKind::Journal,
        LogTarget::Stdio if stderr_is_journal => SinkKind::Journal,
        LogTarget::Stdio if env("INVOCATION_ID").is_some_and(|v| !v.is_empty()) => {
            SinkKind::StderrPrefixed
        }
        LogTarget::Stdio => SinkKind::Stderr,
        LogTarget::File(path) => SinkKind::File(path.clone()),
    }
}

fn open_append(path: &Path) -> std::io::Result<File> {
    OpenOptions::new().create(true).append(true).open(path)
}

/// Reopen a file error log (after logrotate moved it); USR1 calls this in the
/// master and in each worker. Other sinks have nothing to reopen.
///
/// # Errors
/// The file cannot be reopened; the old descriptor stays in use.
pub fn reopen() -> std::io::Result<()> {
    let Some(logger) = LOGGER.get() else {
        return Ok(());
    };
    let mut sink = logger.sink.lock().unwrap_or_else(|p| p.into_inner());
    sink.reopen()
}

impl Sink {
    fn reopen(&mut self) -> std::io::Result<()> {
        if let Sink::File { path, file } = self {
            *file = open_append(path)?;
            if CAPTURE.load(std::sync::atomic::Ordering::Relaxed) {
                redirect_stdio(file)?;
            }
        }
        Ok(())
    }
}

/// Log `msg` at `level`.
pub fn log(level: Level, msg: &str) {
    log_from(level, msg, None);
}

/// Log `msg` at `level` for a Python logger (`gunicorn.error`, an app's): the
/// journal entry names it as `PYTHON_LOGGER`.
pub fn log_from(level: Level, msg: &str, python_logger: Option<&str>) {
    // Gunicorn counts warnings and errors whatever the level lets through.
    statsd::log_record(level);
    let threshold = LOGGER.get().map_or(Level::Info, |l| l.level);
    if level < threshold {
        return;
    }
    let msg = msg.trim_end();
    syslog::error_record(level, msg);
    let Some(logger) = LOGGER.get() else {
        let _ = std::io::stderr().write_all(gunicorn_line(level, msg).as_bytes());
        return;
    };
    let mut sink = logger.sink.lock().unwrap_or_else(|p| p.into_inner());
    let _ = match &mut *sink {
        Sink::Stderr => std::io::stderr().write_all(gunicorn_line(level, msg).as_bytes()),
        Sink::StderrPrefixed => {
            let line = prefix_lines(level.syslog_priority(), &gunicorn_line(level, msg));
            std::io::stderr().write_all(line.as_bytes())
        }
        Sink::File { file, .. } => file.write_all(gunicorn_line(level, msg).as_bytes()),
        Sink::Journal(j) => {
            let priority = [b'0' + level.syslog_priority()];
            let mut fields: Vec<(&str, &[u8])> = vec![
                ("MESSAGE", msg.as_bytes()),
                ("PRIORITY", &priority),
                ("SYSLOG_IDENTIFIER", SYSLOG_IDENTIFIER.as_bytes()),
            ];
            if let Some(name) = python_logger {
                fields.push(("PYTHON_LOGGER", name.as_bytes()));
            }
            let sent = j.send(&fields);
            // journald gone (stopped, or a forced sink outside systemd): keep the
            // record on stderr rather than lose it.
            sent.or_else(|_| {
                let line = prefix_lines(level.syslog_priority(), &gunicorn_line(level, msg));
                std::io::stderr().write_all(line.as_bytes())
            })
        }
    };
}

/// Write text as it is (no prefix) to the error log, e.g. for `wsgi.errors`.
///
/// With the journal as sink each call becomes one entry at info priority, the
/// level journald would give the same bytes arriving on stderr.
pub fn write_raw(text: &str) {
    let Some(logger) = LOGGER.get() else {
        let _ = std::io::stderr().write_all(text.as_bytes());
        return;
    };
    let mut sink = logger.sink.lock().unwrap_or_else(|p| p.into_inner());
    let _ = match &mut *sink {
        Sink::Stderr | Sink::StderrPrefixed => std::io::stderr().write_all(text.as_bytes()),
        Sink::File { file, .. } => file.write_all(text.as_bytes()),
        Sink::Journal(j) => {
            let msg = text.trim_end_matches('\n');
            if msg.is_empty() {
                return;
            }
            j.send(&[
                ("MESSAGE", msg.as_bytes()),
                ("PRIORITY", b"6"),
                ("SYSLOG_IDENTIFIER", SYSLOG_IDENTIFIER.as_bytes()),
            ])
            .or_else(|_| std::io::stderr().write_all(text.as_bytes()))
        }
    };
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

/// True when debug messages would be written; `debug!` checks it before
/// formatting. Before [`init_target`] the level is info, so this is false.
pub fn debug_enabled() -> bool {
    LOGGER.get().is_some_and(|l| l.level <= Level::Debug)
}

/// Log a `format!`-style message at debug level, formatting it only when debug
/// logging is on: `crate::log::debug!("bad request from {peer}: {e}")`.
macro_rules! debug_line {
    ($($arg:tt)+) => {
        if $crate::log::debug_enabled() {
            $crate::log::log($crate::log::Level::Debug, &::std::format!($($arg)+));
        }
    };
}
pub(crate) use debug_line as debug;

/// `[time] [pid] [LEVEL] msg\n`, Gunicorn's error log line.
fn gunicorn_line(level: Level, msg: &str) -> String {
    format!(
        "[{}] [{}] [{}] {}\n",
        error_timestamp(SystemTime::now()),
        std::process::id(),
        level.label(),
        msg
    )
}

/// Put `<N>` before every line: journald (or any sd-daemon(3) reader) parses the
/// prefix per line, so a traceback's later lines would otherwise fall back to
/// the unit's default level.
fn prefix_lines(priority: u8, text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 8);
    for line in text.split_inclusive('\n') {
        out.push('<');
        out.push(char::from(b'0' + priority));
        out.push('>');
        out.push_str(line);
    }
    out
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
    fn sink_follows_errorlog_and_systemd_environment() {
        let none = |_: &str| None;
        let systemd = |k: &str| (k == "INVOCATION_ID").then(|| "0123abcd".to_owned());
        let sink = |errorlog: &str, env: &dyn Fn(&str) -> Option<String>, journal: bool| {
            choose_sink(&LogTarget::parse(errorlog), env, journal)
        };
        assert_eq!(sink("-", &none, false), SinkKind::Stderr);
        assert_eq!(sink("-", &none, true), SinkKind::Journal);
        assert_eq!(sink("-", &systemd, false), SinkKind::StderrPrefixed);
        assert_eq!(sink("-", &systemd, true), SinkKind::Journal);
        assert_eq!(sink("journald", &none, false), SinkKind::Journal);
        assert_eq!(sink("journal", &none, false), SinkKind::Journal);
        assert_eq!(
            sink("/var/log/x.log", &systemd, true),
            SinkKind::File(PathBuf::from("/var/log/x.log"))
        );
    }

    #[test]
    fn every_line_gets_the_priority_prefix() {
        assert_eq!(
            prefix_lines(3, "[t] [1] [ERROR] boom\nTraceback:\n  x\n"),
            "<3>[t] [1] [ERROR] boom\n<3>Traceback:\n<3>  x\n"
        );
        assert_eq!(Level::Warning.syslog_priority(), 4);
        assert_eq!(Level::Critical.syslog_priority(), 2);
    }

    #[test]
    fn reopen_follows_a_rotated_file() {
        let dir = std::env::temp_dir().join(format!("rgunicorn-log-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("error.log");
        let mut sink = Sink::File {
            file: open_append(&path).unwrap(),
            path: path.clone(),
        };
        std::fs::rename(&path, dir.join("error.log.1")).unwrap();
        sink.reopen().unwrap();
        if let Sink::File { file, .. } = &mut sink {
            file.write_all(b"after\n").unwrap();
        }
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "after\n");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn log_targets_are_read_once_from_the_setting() {
        assert_eq!(LogTarget::parse("-"), LogTarget::Stdio);
        assert_eq!(LogTarget::parse(""), LogTarget::Stdio);
        assert_eq!(LogTarget::parse("journald"), LogTarget::Journal);
        let file = LogTarget::parse("/var/log/a.log");
        assert_eq!(file.path(), Some(Path::new("/var/log/a.log")));
        assert_eq!(file.to_string(), "/var/log/a.log");
        assert_eq!(LogTarget::Journal.path(), None);
        assert_eq!(LogTarget::parse("journal"), LogTarget::Journal);
        assert_eq!(LogTarget::parse("-"), LogTarget::Stdio);
    }

    #[test]
    fn debug_lines_are_not_formatted_below_the_level() {
        struct Loud;
        impl fmt::Display for Loud {
            fn fmt(&self, _: &mut fmt::Formatter<'_>) -> fmt::Result {
                panic!("formatted a debug line while debug logging is off")
            }
        }
        // No test initialises the logger, so the level is info.
        assert!(!debug_enabled());
        crate::log::debug!("{}", Loud);
    }

    #[test]
    fn levels_parse_and_order() {
        assert_eq!(Level::parse("Warning"), Some(Level::Warning));
        assert!(Level::Debug < Level::Critical);
        assert_eq!(Level::parse("verbose"), None);
    }
}
