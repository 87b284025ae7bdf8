//! Access log: Gunicorn's `access_log_format` compiled once into atoms.
//!
//! Atoms follow Gunicorn's settings reference: `h l u t r m U q H s B b f a T D M
//! L p`, `{name}i` (request header), `{name}o` (response header). A format is
//! compiled when the setting is applied, so a typo is a startup error rather than
//! a broken line per request.

use std::fmt::Write as _;
use std::io::Write;
use std::time::{Duration, SystemTime};

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
    format: Format,
    out: Box<dyn Write + Send>,
}

impl AccessLog {
    /// Open `dest` (`-` is stdout) for appending.
    ///
    /// # Errors
    /// The format does not compile or the file cannot be opened.
    pub fn open(dest: &str, format: &str) -> std::io::Result<AccessLog> {
        let format = Format::compile(format).map_err(std::io::Error::other)?;
        let out: Box<dyn Write + Send> = match dest {
            "-" => Box::new(std::io::stdout()),
            path => Box::new(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)?,
            ),
        };
        Ok(AccessLog { format, out })
    }

    /// Write one line for `entry`, in a single write(2).
    pub fn log(&mut self, entry: &Entry<'_>) {
        let mut line = self.format.render(entry);
        line.push('\n');
        let _ = self.out.write_all(line.as_bytes());
        let _ = self.out.flush();
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
    fn unknown_atoms_are_refused() {
        assert!(Format::compile("%(zz)s").is_err());
        assert!(Format::compile("%(h").is_err());
        assert!(Format::compile("%({x}z)s").is_err());
    }
}
