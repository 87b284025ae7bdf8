//! Access log: Gunicorn's `access_log_format` compiled once into atoms.
//!
//! Atoms follow Gunicorn's settings reference: `h l u t r m U q H s B b f a T D M
//! L p`, `{name}i` (request header), `{name}o` (response header). A format is
//! compiled when the setting is applied, so a typo is a startup error rather than
//! a broken line per request.
//!
//! Destinations: `-` (stdout), a file, or the journal. The journal is used when
//! `accesslog` is `journal`/`journald` (an rgunicorn extension) or when it is `-`
//! and stdout is the stream systemd connected to the journal (`$JOURNAL_STREAM`).
//! A journal entry carries the formatted line as `MESSAGE` plus one field per
//! fact (`REQUEST_METHOD`, `STATUS`, `DURATION_US`, ...), so `journalctl
//! STATUS=500` works without parsing lines.

use std::fmt::Write as _;
use std::fs::File;
use std::io::Write;
use std::os::fd::AsFd;
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use super::journal::{self, Journal};

/// Gunicorn's default access log format.
pub const DEFAULT_FORMAT: &str = r#"%(h)s %(l)s %(u)s %(t)s "%(r)s" %(s)s %(b)s "%(f)s" "%(a)s""#;

/// One piece of a compiled format.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Atom {
    Literal(String),
    RemoteAddr,
    Dash,
    User,
    Time,
    RequestLine,
    Method,
    Path,
    Query,
    Protocol,
    Status,
    BytesZero,
    BytesDash,
    Referer,
    UserAgent,
    Seconds,
    Micros,
    Millis,
    DecimalSeconds,
    Pid,
    RequestHeader(String),
    ResponseHeader(String),
}

/// A compiled access log format.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Format {
    atoms: Vec<Atom>,
}

/// What one finished request contributes to its access log line.
pub struct Entry<'a> {
    /// Client address (host only for TCP; empty for unix sockets).
    pub remote_addr: &'a str,
    /// Request method.
    pub method: &'a str,
    /// Raw request target.
    pub target: &'a str,
    /// `HTTP/1.1` etc.
    pub protocol: &'a str,
    /// Request headers, names as sent.
    pub request_headers: &'a [(String, Vec<u8>)],
    /// Status code.
    pub status: u16,
    /// Response headers as the app gave them.
    pub response_headers: &'a [(Vec<u8>, Vec<u8>)],
    /// Response body bytes sent.
    pub bytes: u64,
    /// When the request started.
    pub started: SystemTime,
    /// How long it took.
    pub duration: Duration,
}

impl Format {
    /// Compile a `%(atom)s` format string.
    ///
    /// # Errors
    /// A reason naming the unknown atom.
    pub fn compile(fmt: &str) -> Result<Format, String> {
        let mut atoms = Vec::new();
        let mut literal = String::new();
        let mut rest = fmt;
        while let Some(start) = rest.find("%(") {
            literal.push_str(&rest[..start]);
            let after = &rest[start + 2..];
            let end = after
                .find(")s")
                .ok_or_else(|| format!("unterminated atom at {:?}", &rest[start..]))?;
            let name = &after[..end];
            if !literal.is_empty() {
                atoms.push(Atom::Literal(std::mem::take(&mut literal)));
            }
            atoms.push(atom(name).ok_or_else(|| format!("unknown atom %({name})s"))?);
            rest = &after[end + 2..];
        }
        literal.push_str(rest);
        if !literal.is_empty() {
            atoms.push(Atom::Literal(literal));
        }
        Ok(Format { atoms })
    }

    /// Render one line (without the trailing newline).
    pub fn render(&self, e: &Entry<'_>) -> String {
        let mut out = String::with_capacity(160);
        for a in &self.atoms {
            let _ = match a {
                Atom::Literal(s) => write!(out, "{s}"),
                Atom::RemoteAddr => write!(out, "{}", or_dash(e.remote_addr)),
                Atom::Dash | Atom::User => write!(out, "-"),
                Atom::Time => write!(out, "{}", access_timestamp(e.started)),
                Atom::RequestLine => write!(out, "{} {} {}", e.method, e.target, e.protocol),
                Atom::Method => write!(out, "{}", e.method),
                Atom::Path => write!(out, "{}", e.target.split('?').next().unwrap_or("")),
                Atom::Query => write!(out, "{}", e.target.split_once('?').map_or("", |q| q.1)),
                Atom::Protocol => write!(out, "{}", e.protocol),
                Atom::Status => write!(out, "{}", e.status),
                Atom::BytesZero => write!(out, "{}", e.bytes),
                Atom::BytesDash if e.bytes == 0 => write!(out, "-"),
                Atom::BytesDash => write!(out, "{}", e.bytes),
                Atom::Referer => write!(out, "{}", header_or_dash(e.request_headers, "referer")),
                Atom::UserAgent => {
                    write!(out, "{}", header_or_dash(e.request_headers, "user-agent"))
                }
                Atom::Seconds => write!(out, "{}", e.duration.as_secs()),
                Atom::Micros => write!(out, "{}", e.duration.as_micros()),
                Atom::Millis => write!(out, "{}", e.duration.as_millis()),
                Atom::DecimalSeconds => write!(out, "{:.6}", e.duration.as_secs_f64()),
                Atom::Pid => write!(out, "<{}>", std::process::id()),
                Atom::RequestHeader(name) => {
                    write!(out, "{}", header_or_dash(e.request_headers, name))
                }
                Atom::ResponseHeader(name) => {
                    let v = e
                        .response_headers
                        .iter()
                        .find(|(k, _)| k.eq_ignore_ascii_case(name.as_bytes()))
                        .map(|(_, v)| String::from_utf8_lossy(v).into_owned());
                    write!(out, "{}", v.as_deref().unwrap_or("-"))
                }
            };
        }
        out
    }
}

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
}

impl AccessLog {
    /// Open `dest` (`-` is stdout, `journal` the journal) for appending.
    ///
    /// # Errors
    /// The format does not compile or the file cannot be opened.
    pub fn open(dest: &str, format: &str) -> std::io::Result<AccessLog> {
        AccessLog::open_with_env(dest, format, &|k| std::env::var(k).ok())
    }

    /// [`AccessLog::open`] reading `JOURNAL_STREAM` through `env`.
    ///
    /// # Errors
    /// As [`AccessLog::open`].
    pub fn open_with_env(
        dest: &str,
        format: &str,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> std::io::Result<AccessLog> {
        let stdout_is_journal = dest == "-"
            && journal::is_journal_stream(
                std::io::stdout().as_fd(),
                env("JOURNAL_STREAM").as_deref(),
            );
        let out = if stdout_is_journal || super::names_journal(dest) {
            Out::Journal(Journal::open()?)
        } else if dest == "-" {
            Out::Stdout
        } else {
            let path = PathBuf::from(dest);
            Out::File {
                file: super::open_append(&path)?,
                path,
            }
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

    fn with_out(out: Out, format: &str) -> std::io::Result<AccessLog> {
        let format = Format::compile(format).map_err(std::io::Error::other)?;
        Ok(AccessLog {
            format,
            out,
            ids: RequestIds::new(),
        })
    }

    /// Write one line for `entry`, in a single write(2), or one journal entry.
    pub fn log(&mut self, entry: &Entry<'_>) {
        let mut line = self.format.render(entry);
        match &mut self.out {
            Out::Journal(j) => {
                let request_id = request_id(entry, &mut self.ids);
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
/// Absent facts (no `User-Agent`, a unix-socket peer) are left out, not `-`.
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
    f
}

/// The client's `X-Request-Id` when it sent one, else a fresh id.
fn request_id(e: &Entry<'_>, ids: &mut RequestIds) -> String {
    match header(e.request_headers, "x-request-id") {
        Some(v) if !v.is_empty() => String::from_utf8_lossy(v).into_owned(),
        _ => ids.next_id(),
    }
}

fn header<'h>(headers: &'h [(String, Vec<u8>)], name: &str) -> Option<&'h [u8]> {
    headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_slice())
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

fn atom(name: &str) -> Option<Atom> {
    if let Some(inner) = name.strip_prefix('{') {
        let (header, kind) = inner.rsplit_once('}')?;
        let header = header.to_ascii_lowercase();
        return match kind {
            "i" => Some(Atom::RequestHeader(header)),
            "o" => Some(Atom::ResponseHeader(header)),
            _ => None,
        };
    }
    Some(match name {
        "h" => Atom::RemoteAddr,
        "l" => Atom::Dash,
        "u" => Atom::User,
        "t" => Atom::Time,
        "r" => Atom::RequestLine,
        "m" => Atom::Method,
        "U" => Atom::Path,
        "q" => Atom::Query,
        "H" => Atom::Protocol,
        "s" => Atom::Status,
        "B" => Atom::BytesZero,
        "b" => Atom::BytesDash,
        "f" => Atom::Referer,
        "a" => Atom::UserAgent,
        "T" => Atom::Seconds,
        "D" => Atom::Micros,
        "M" => Atom::Millis,
        "L" => Atom::DecimalSeconds,
        "p" => Atom::Pid,
        _ => return None,
    })
}

fn or_dash(s: &str) -> &str {
    if s.is_empty() { "-" } else { s }
}

fn header_or_dash(headers: &[(String, Vec<u8>)], name: &str) -> String {
    headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map_or_else(
            || "-".to_owned(),
            |(_, v)| String::from_utf8_lossy(v).into_owned(),
        )
}

/// `[25/Nov/2026:09:00:00 +0000]`, the common log format time.
fn access_timestamp(t: SystemTime) -> String {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let c = super::civil(t);
    format!(
        "[{:02}/{}/{:04}:{:02}:{:02}:{:02} +0000]",
        c.day,
        MONTHS[(c.month as usize).saturating_sub(1) % 12],
        c.year,
        c.hour,
        c.minute,
        c.second
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry<'a>(headers: &'a [(String, Vec<u8>)], resp: &'a [(Vec<u8>, Vec<u8>)]) -> Entry<'a> {
        Entry {
            remote_addr: "127.0.0.1",
            method: "GET",
            target: "/a?b=1",
            protocol: "HTTP/1.1",
            request_headers: headers,
            status: 200,
            response_headers: resp,
            bytes: 14,
            started: SystemTime::UNIX_EPOCH + Duration::from_secs(1_795_597_200),
            duration: Duration::from_micros(1500),
        }
    }

    #[test]
    fn default_format_renders_like_gunicorn() {
        let headers = vec![("User-Agent".to_owned(), b"curl/8".to_vec())];
        let f = Format::compile(DEFAULT_FORMAT).unwrap();
        assert_eq!(
            f.render(&entry(&headers, &[])),
            r#"127.0.0.1 - - [25/Nov/2026:09:00:00 +0000] "GET /a?b=1 HTTP/1.1" 200 14 "-" "curl/8""#
        );
    }

    #[test]
    fn header_and_timing_atoms() {
        let headers = vec![("X-Id".to_owned(), b"abc".to_vec())];
        let resp = vec![(b"Content-Type".to_vec(), b"text/plain".to_vec())];
        let f = Format::compile("%({x-id}i)s %({content-type}o)s %(D)s %(m)s %(U)s %(q)s").unwrap();
        assert_eq!(
            f.render(&entry(&headers, &resp)),
            "abc text/plain 1500 GET /a b=1"
        );
    }

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
            ("User-Agent".to_owned(), b"curl/8".to_vec()),
            ("X-Request-Id".to_owned(), b"req-42".to_vec()),
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
        let mut log = AccessLog::open_with_env(path.to_str().unwrap(), "%(s)s", &|_| None).unwrap();
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
    fn unknown_atoms_are_refused() {
        assert!(Format::compile("%(zz)s").is_err());
        assert!(Format::compile("%(h").is_err());
        assert!(Format::compile("%({x}z)s").is_err());
    }
}
