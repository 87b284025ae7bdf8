//! Access log: one line, or one journal entry, per finished request.
//!
//! The line is Gunicorn's `access_log_format`, compiled once into a [`Format`]
//! (see `access_format.rs` beside this file for the atoms and the escaping).
//!
//! Destinations, as the `accesslog` setting resolved them into a [`LogTarget`]:
//! `-` (stdout), a file, or the journal. The journal is used when `accesslog` is
//! `journal`/`journald` (an rgunicorn extension) or when it is `-` and stdout is
//! the stream systemd connected to the journal (`$JOURNAL_STREAM`). A journal
//! entry carries the formatted line as `MESSAGE` plus one field per fact
//! (`REQUEST_METHOD`, `STATUS`, `DURATION_US`, ...), so `journalctl STATUS=500`
//! works without parsing lines.

use std::fs::File;
use std::io::Write;
use std::os::fd::AsFd;
use std::path::PathBuf;
use std::time::SystemTime;

use super::LogTarget;
pub use super::access_format::{DEFAULT_FORMAT, Entry, Format};
use super::journal::{self, Journal};

/// An open access log: a compiled format and its destination.
pub struct AccessLog {
    /// The compiled `access_log_format`.
    format: Format,
    /// Where lines (or entries) go.
    out: Out,
    /// Source of `REQUEST_ID` for requests without `X-Request-Id`.
    ids: RequestIds,
}

enum Out {
    Stdout,
    /// Append-mode file; `path` is kept for [`AccessLog::reopen`].
    File {
        path: PathBuf,
        file: File,
    },
    Journal(Journal),
    /// No `accesslog`: the lines only go to syslog.
    Nowhere,
}

impl AccessLog {
    /// Open `target` for appending, writing lines in `format`.
    ///
    /// # Errors
    /// The format does not compile or the file cannot be opened.
    pub fn open_target(target: &LogTarget, format: &str) -> std::io::Result<AccessLog> {
        AccessLog::open_with_env(target, format, &|k| std::env::var(k).ok())
    }

    /// [`AccessLog::open_target`] reading `JOURNAL_STREAM` through `env`.
    ///
    /// # Errors
    /// As [`AccessLog::open_target`].
    pub fn open_with_env(
        target: &LogTarget,
        format: &str,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> std::io::Result<AccessLog> {
        let stdout_is_journal = || {
            journal::is_journal_stream(std::io::stdout().as_fd(), env("JOURNAL_STREAM").as_deref())
        };
        let out = match target {
            LogTarget::Journal => Out::Journal(Journal::open()?),
            LogTarget::Stdio if stdout_is_journal() => Out::Journal(Journal::open()?),
            LogTarget::Stdio => Out::Stdout,
            LogTarget::File(path) => Out::File {
                file: super::open_append(path)?,
                path: path.clone(),
            },
        };
        AccessLog::with_out(out, format)
    }

    /// An access log sending entries to `journal` (tests pass one bound to their
    /// own socket with [`Journal::with_path`]).
    ///
    /// # Errors
    /// The format does not compile.
    pub fn with_journal(journal: Journal, format: &str) -> std::io::Result<AccessLog> {
        AccessLog::with_out(Out::Journal(journal), format)
    }

    /// An access log whose lines only go to syslog (`syslog` without
    /// `accesslog`, as Gunicorn redirects them).
    ///
    /// # Errors
    /// The format does not compile.
    pub fn syslog_only(format: &str) -> std::io::Result<AccessLog> {
        AccessLog::with_out(Out::Nowhere, format)
    }

    fn with_out(out: Out, format: &str) -> std::io::Result<AccessLog> {
        let format = Format::compile(format).map_err(std::io::Error::other)?;
        Ok(AccessLog {
            format,
            out,
            ids: RequestIds::new(),
        })
    }

    /// The WSGI environ keys the format reads (see [`Format::environ_keys`]).
    pub fn environ_keys(&self) -> &[String] {
        self.format.environ_keys()
    }

    /// Write one line for `entry`, in a single write(2), or one journal entry.
    pub fn log(&mut self, entry: &Entry<'_>) {
        let request_id = if self.format.is_json() || matches!(self.out, Out::Journal(_)) {
            request_id(entry, &mut self.ids)
        } else {
            String::new()
        };
        let mut line = if self.format.is_json() {
            json_line(entry, &request_id)
        } else {
            self.format.render(entry)
        };
        super::syslog::access_record(&line);
        match &mut self.out {
            Out::Nowhere => {}
            Out::Journal(j) => {
                let fields = journal_fields(entry, &line, &request_id);
                let borrowed: Vec<(&str, &[u8])> =
                    fields.iter().map(|(k, v)| (*k, v.as_slice())).collect();
                if j.send(&borrowed).is_err() {
                    // journald gone: keep the line rather than lose it.
                    line.push('\n');
                    let _ = std::io::stdout().write_all(line.as_bytes());
                }
            }
            Out::Stdout => {
                line.push('\n');
                let mut out = std::io::stdout().lock();
                let _ = out.write_all(line.as_bytes());
                let _ = out.flush();
            }
            Out::File { file, .. } => {
                line.push('\n');
                let _ = file.write_all(line.as_bytes());
            }
        }
    }

    /// Reopen a file destination (USR1, after logrotate moved it). Stdout and
    /// the journal have nothing to reopen.
    ///
    /// # Errors
    /// The file cannot be reopened; the old descriptor stays in use.
    pub fn reopen(&mut self) -> std::io::Result<()> {
        if let Out::File { path, file } = &mut self.out {
            *file = super::open_append(path)?;
        }
        Ok(())
    }
}

/// The journal fields of one access entry, `MESSAGE` (the formatted line) first.
/// Absent facts (no `User-Agent`, a unix-socket peer, a client that stayed) are
/// left out, not `-`. Values are the raw bytes: the journal needs no escaping.
fn journal_fields(e: &Entry<'_>, line: &str, request_id: &str) -> Vec<(&'static str, Vec<u8>)> {
    let mut f: Vec<(&'static str, Vec<u8>)> = vec![
        ("MESSAGE", line.as_bytes().to_vec()),
        ("PRIORITY", b"6".to_vec()),
        (
            "SYSLOG_IDENTIFIER",
            super::SYSLOG_IDENTIFIER.as_bytes().to_vec(),
        ),
        ("REQUEST_METHOD", e.method.as_bytes().to_vec()),
        ("REQUEST_URI", e.target.as_bytes().to_vec()),
        ("STATUS", e.status.to_string().into_bytes()),
        ("RESPONSE_BYTES", e.bytes.to_string().into_bytes()),
        (
            "DURATION_US",
            e.duration.as_micros().to_string().into_bytes(),
        ),
    ];
    if !e.remote_addr.is_empty() {
        f.push(("REMOTE_ADDR", e.remote_addr.as_bytes().to_vec()));
    }
    if let Some(ua) = header(e.request_headers, "user-agent") {
        f.push(("USER_AGENT", ua.to_vec()));
    }
    if let Some(referer) = header(e.request_headers, "referer") {
        f.push(("REFERER", referer.to_vec()));
    }
    f.push(("WORKER_PID", std::process::id().to_string().into_bytes()));
    f.push(("REQUEST_ID", request_id.as_bytes().to_vec()));
    if e.disconnected {
        f.push(("CLIENT_DISCONNECTED", b"1".to_vec()));
    }
    if let Some(thread) = e.thread {
        f.push(("THREAD", thread.as_bytes().to_vec()));
    }
    f
}

/// `access_log_format = json`: the journal's fields as one JSON object, keys
/// lowercased, plus the time (RFC 3339, UTC). Request bytes are latin-1, so
/// every value is valid UTF-8 once escaped; quotes, backslashes and control
/// characters are escaped as JSON requires.
fn json_line(e: &Entry<'_>, request_id: &str) -> String {
    let fields = journal_fields(e, "", request_id);
    let mut out = String::with_capacity(256);
    out.push_str("{\"time\":\"");
    out.push_str(&rfc3339(e.started + e.duration));
    out.push('"');
    for (key, value) in &fields {
        if matches!(*key, "MESSAGE" | "PRIORITY" | "SYSLOG_IDENTIFIER") {
            continue;
        }
        out.push_str(",\"");
        out.push_str(&key.to_ascii_lowercase());
        out.push_str("\":");
        let numeric = matches!(
            *key,
            "STATUS" | "RESPONSE_BYTES" | "DURATION_US" | "WORKER_PID"
        );
        if numeric && !value.is_empty() && value.iter().all(u8::is_ascii_digit) {
            out.push_str(&String::from_utf8_lossy(value));
        } else if *key == "CLIENT_DISCONNECTED" {
            out.push_str("true");
        } else {
            json_string(&mut out, value);
        }
    }
    out.push('}');
    out
}

/// `bytes` (latin-1) as a JSON string literal.
fn json_string(out: &mut String, bytes: &[u8]) {
    out.push('"');
    for &b in bytes {
        match b {
            b'"' => out.push_str("\\\""),
            b'\\' => out.push_str("\\\\"),
            0x00..=0x1f | 0x7f => {
                let _ = std::fmt::Write::write_fmt(out, format_args!("\\u{b:04x}"));
            }
            _ => out.push(char::from(b)),
        }
    }
    out.push('"');
}

/// `2026-12-01T21:59:21.123456Z`.
fn rfc3339(t: std::time::SystemTime) -> String {
    let c = super::civil(t);
    let micros = t
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_micros());
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{micros:06}Z",
        c.year, c.month, c.day, c.hour, c.minute, c.second
    )
}

/// The client's `X-Request-Id` when it sent one, else a fresh id.
fn request_id(e: &Entry<'_>, ids: &mut RequestIds) -> String {
    match header(e.request_headers, "x-request-id") {
        Some(v) if !v.is_empty() => String::from_utf8_lossy(v).into_owned(),
        _ => ids.next_id(),
    }
}

fn header<'h>(headers: &[(&str, &'h [u8])], name: &str) -> Option<&'h [u8]> {
    headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| *v)
}

/// Generated request ids: 16 hex digits, unique within a worker and, with
/// overwhelming probability, across workers and restarts.
///
/// The seed mixes the worker's pid and the time the log was opened; each id is
/// SplitMix64's output function applied to `seed + n * GAMMA`. That function is a
/// bijection and GAMMA is odd, so ids within one worker never repeat.
struct RequestIds {
    seed: u64,
    next: u64,
}

impl RequestIds {
    const GAMMA: u64 = 0x9e37_79b9_7f4a_7c15;

    fn new() -> RequestIds {
        let nanos = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        RequestIds {
            seed: nanos ^ (u64::from(std::process::id()) << 40),
            next: 0,
        }
    }

    fn next_id(&mut self) -> String {
        let mut z = self
            .seed
            .wrapping_add(self.next.wrapping_mul(RequestIds::GAMMA));
        self.next = self.next.wrapping_add(1);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        format!("{z:016x}")
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::log::access_format::tests::entry;

    #[test]
    fn journal_entry_carries_one_field_per_fact() {
        let dir = std::env::temp_dir().join(format!("rgunicorn-access-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let srv = std::os::unix::net::UnixDatagram::bind(dir.join("socket")).unwrap();
        srv.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let j = Journal::with_path(dir.join("socket")).unwrap();
        let mut log = AccessLog::with_journal(j, "%(m)s %(U)s %(s)s").unwrap();

        let headers = vec![
            ("User-Agent", &b"curl/8"[..]),
            ("X-Request-Id", &b"req-42"[..]),
        ];
        log.log(&entry(&headers, &[]));
        let mut buf = vec![0u8; 4096];
        let n = srv.recv(&mut buf).unwrap();
        let pid = std::process::id().to_string();
        assert_eq!(
            journal::decode(&buf[..n]),
            vec![
                ("MESSAGE".to_owned(), b"GET /a 200".to_vec()),
                ("PRIORITY".to_owned(), b"6".to_vec()),
                ("SYSLOG_IDENTIFIER".to_owned(), b"rgunicorn".to_vec()),
                ("REQUEST_METHOD".to_owned(), b"GET".to_vec()),
                ("REQUEST_URI".to_owned(), b"/a?b=1".to_vec()),
                ("STATUS".to_owned(), b"200".to_vec()),
                ("RESPONSE_BYTES".to_owned(), b"14".to_vec()),
                ("DURATION_US".to_owned(), b"1500".to_vec()),
                ("REMOTE_ADDR".to_owned(), b"127.0.0.1".to_vec()),
                ("USER_AGENT".to_owned(), b"curl/8".to_vec()),
                ("WORKER_PID".to_owned(), pid.into_bytes()),
                ("REQUEST_ID".to_owned(), b"req-42".to_vec()),
            ]
        );

        // No X-Request-Id: a generated 16-hex-digit id, different each time.
        let mut ids = Vec::new();
        for _ in 0..2 {
            log.log(&entry(&[], &[]));
            let n = srv.recv(&mut buf).unwrap();
            let fields = journal::decode(&buf[..n]);
            assert!(
                !fields
                    .iter()
                    .any(|(k, _)| k == "USER_AGENT" || k == "REFERER")
            );
            let (_, id) = fields.iter().find(|(k, _)| k == "REQUEST_ID").unwrap();
            assert_eq!(id.len(), 16);
            assert!(id.iter().all(u8::is_ascii_hexdigit));
            ids.push(id.clone());
        }
        assert_ne!(ids[0], ids[1]);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn generated_request_ids_do_not_repeat() {
        let mut ids = RequestIds { seed: 7, next: 0 };
        let set: std::collections::HashSet<String> = (0..10_000).map(|_| ids.next_id()).collect();
        assert_eq!(set.len(), 10_000);
    }

    #[test]
    fn reopen_follows_a_rotated_file() {
        let dir = std::env::temp_dir().join(format!("rgunicorn-accessfile-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("access.log");
        let mut log =
            AccessLog::open_with_env(&LogTarget::File(path.clone()), "%(s)s", &|_| None).unwrap();
        log.log(&entry(&[], &[]));
        std::fs::rename(&path, dir.join("access.log.1")).unwrap();
        log.reopen().unwrap();
        log.log(&entry(&[], &[]));
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "200\n");
        assert_eq!(
            std::fs::read_to_string(dir.join("access.log.1")).unwrap(),
            "200\n"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn disconnected_client_is_a_journal_field_only() {
        let f = Format::compile(DEFAULT_FORMAT).unwrap();
        let mut e = entry(&[], &[]);
        let stayed = f.render(&e);
        let fields = journal_fields(&e, &stayed, "id");
        assert!(!fields.iter().any(|(k, _)| *k == "CLIENT_DISCONNECTED"));

        e.disconnected = true;
        let line = f.render(&e);
        assert_eq!(line, stayed);
        let fields = journal_fields(&e, &line, "id");
        assert_eq!(fields.last(), Some(&("CLIENT_DISCONNECTED", b"1".to_vec())));
        // The other fields are still there.
        assert!(fields.iter().any(|(k, _)| *k == "REQUEST_ID"));
        assert!(fields.iter().any(|(k, _)| *k == "STATUS"));
    }

    #[test]
    fn the_request_thread_is_a_journal_field() {
        let f = Format::compile(DEFAULT_FORMAT).unwrap();
        let mut e = entry(&[], &[]);
        let line = f.render(&e);
        assert!(
            !journal_fields(&e, &line, "id")
                .iter()
                .any(|(k, _)| *k == "THREAD")
        );
        e.thread = Some("request-3");
        let fields = journal_fields(&e, &line, "id");
        assert!(fields.contains(&("THREAD", b"request-3".to_vec())));
    }

    #[test]
    fn json_lines_carry_the_journal_fields_escaped() {
        let f = Format::compile("json").unwrap();
        assert!(f.is_json() && f.environ_keys().is_empty());
        let headers = vec![("User-Agent", &b"evil\" \\ \x01 caf\xe9"[..])];
        let e = entry(&headers, &[]);
        let line = json_line(&e, "abc");
        let v: serde_json::Value = serde_json::from_str(&line).expect(&line);
        assert_eq!(v["request_method"], "GET");
        assert_eq!(v["status"], 200);
        assert_eq!(v["request_id"], "abc");
        assert_eq!(v["user_agent"], "evil\" \\ \u{1} caf\u{e9}");
        assert!(v["time"].as_str().unwrap().ends_with('Z'), "{line}");
        assert!(v.get("message").is_none());
    }

    #[test]
    fn rfc3339_times_are_utc() {
        let t = std::time::UNIX_EPOCH + std::time::Duration::from_micros(1_764_626_361_123_456);
        assert_eq!(rfc3339(t), "2025-12-01T21:59:21.123456Z");
    }
}
