//! The access log's line: Gunicorn's `access_log_format` compiled once into
//! atoms, and the escaping that keeps a request from forging a line.
//!
//! The format is Python %-formatting over a mapping, as Gunicorn 23 applies it
//! in `glogging.py` (`atoms()`, `SafeAtoms`): `%(name)s` is an atom, `%%` a
//! literal `%`. Atoms: `h l u t r m U q H s B b f a T D M L p`, `{name}i`
//! (request header), `{name}o` (response header) and `{name}e` (WSGI environ
//! variable); braced names are case-insensitive, as Gunicorn lowercases them. A
//! format is compiled when the setting is applied, so an unknown atom, a lone `%`
//! or a conversion other than `s` is a startup error rather than a broken line
//! per request (Gunicorn renders unknown atoms as `-`).
//!
//! Every value is escaped before it is written: `"` as `\"`, `\` as `\\`, and any
//! byte outside printable ASCII as `\xNN`, so a request cannot forge fields or
//! lines. Gunicorn escapes only `"`, which a backslash defeats. Literal text from
//! the format is written as is.
//!
//! Where lines go is [`super::access`]'s business; this module only renders them.

use std::borrow::Cow;
use std::fmt::Write as _;
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
    /// `B` and `b`: Gunicorn 23 renders both as the body length, see `render`.
    Bytes,
    Referer,
    UserAgent,
    /// `T`, `M`, `D` and `L`: the request's duration.
    Duration(Unit),
    Pid,
    /// Lowercased header name.
    RequestHeader(String),
    /// Lowercased header name.
    ResponseHeader(String),
    /// Index into [`Format::environ_keys`] and [`Entry::environ`].
    Environ(usize),
}

/// How a duration atom writes the request's duration.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Unit {
    /// `T`: whole seconds.
    Seconds,
    /// `M`: whole milliseconds.
    Millis,
    /// `D`: whole microseconds.
    Micros,
    /// `L`: seconds with six decimals.
    DecimalSeconds,
}

/// A compiled access log format.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Format {
    /// The format in order: literals and atoms.
    atoms: Vec<Atom>,
    /// The `{name}e` keys, lowercased, each once, in first-appearance order.
    environ_keys: Vec<String>,
    /// `access_log_format = json`: one JSON object per line, with the fields
    /// the journal gets (rendered by `access`, not from atoms).
    json: bool,
}

/// What one finished request contributes to its access log line.
pub struct Entry<'a> {
    /// Client address (host only for TCP; empty for unix sockets, logged `-`).
    pub remote_addr: &'a str,
    /// Request method.
    pub method: &'a str,
    /// Raw request target.
    pub target: &'a str,
    /// `HTTP/1.1` etc.
    pub protocol: &'a str,
    /// Request headers, names as sent, values as the raw (latin-1) bytes.
    pub request_headers: &'a [(&'a str, &'a [u8])],
    /// Status code.
    pub status: u16,
    /// Response headers as the app gave them.
    pub response_headers: &'a [(Vec<u8>, Vec<u8>)],
    /// Response body bytes sent.
    pub bytes: u64,
    /// When the request started; `%(t)s` is this plus `duration`, the time the
    /// line is logged, as in Gunicorn.
    pub started: SystemTime,
    /// How long it took.
    pub duration: Duration,
    /// The values for [`Format::environ_keys`], in the same order.
    ///
    /// For each key, the `str()` of the WSGI environ value whose key, lowercased
    /// (`str.lower()`), equals it, read after the app returned: Gunicorn logs the
    /// environ as the app left it. When several environ keys lowercase to the same
    /// key, the last in the dict's iteration order wins (Gunicorn builds a dict of
    /// lowercased keys). `None`, or a slice shorter than the keys (such as `&[]`),
    /// renders `-`. Values are escaped when rendered, so they need no cleaning.
    pub environ: &'a [Option<String>],
    /// The client went away before the response was complete. The line looks
    /// the same; the journal entry gets `CLIENT_DISCONNECTED=1`.
    pub disconnected: bool,
    /// The request thread that ran the app (`--threads`), for the journal's
    /// `THREAD` field; None when it ran on the event loop's thread.
    pub thread: Option<&'a str>,
}

impl Format {
    /// Compile a format: `%(atom)s` atoms, `%%` for a literal `%`, and text.
    ///
    /// # Errors
    /// A reason quoting the unknown atom, the lone `%`, the unterminated atom or
    /// the unsupported conversion (anything but `s`, such as `%(s)d` or
    /// `%(h)-15s`).
    pub fn compile(fmt: &str) -> Result<Format, String> {
        let mut f = Format {
            atoms: Vec::new(),
            environ_keys: Vec::new(),
            json: fmt.trim() == "json",
        };
        if f.json {
            return Ok(f);
        }
        let mut literal = String::new();
        let mut rest = fmt;
        while let Some(pct) = rest.find('%') {
            literal.push_str(&rest[..pct]);
            let spec = &rest[pct..];
            let after = &spec[1..];
            if let Some(tail) = after.strip_prefix('%') {
                literal.push('%');
                rest = tail;
                continue;
            }
            let Some(inner) = after.strip_prefix('(') else {
                return Err(format!(
                    "lone % in {:?}; write %% for a literal %",
                    excerpt(spec)
                ));
            };
            let close = closing_paren(inner)
                .ok_or_else(|| format!("unterminated atom {:?}", excerpt(spec)))?;
            let name = &inner[..close];
            let Some(tail) = inner[close + 1..].strip_prefix('s') else {
                return Err(format!(
                    "unsupported conversion in {:?}; only %(name)s is supported",
                    excerpt(spec)
                ));
            };
            if !literal.is_empty() {
                f.atoms.push(Atom::Literal(std::mem::take(&mut literal)));
            }
            let atom = f
                .atom(name)
                .ok_or_else(|| format!("unknown atom {:?}", format!("%({name})s")))?;
            f.atoms.push(atom);
            rest = tail;
        }
        literal.push_str(rest);
        if !literal.is_empty() {
            f.atoms.push(Atom::Literal(literal));
        }
        Ok(f)
    }

    /// The environ keys the `{name}e` atoms need, lowercased as Gunicorn
    /// matches them, each once, in order of first appearance. The worker fills
    /// [`Entry::environ`] in this order.
    pub fn environ_keys(&self) -> &[String] {
        &self.environ_keys
    }

    /// Render one line (without the trailing newline).
    /// The format is `json` (see [`Format::render`]'s caller in `access`).
    pub fn is_json(&self) -> bool {
        self.json
    }

    /// Render one line (without the trailing newline); empty for `json`.
    pub fn render(&self, e: &Entry<'_>) -> String {
        let mut out = String::with_capacity(160);
        for atom in &self.atoms {
            atom.write(&mut out, e);
        }
        out
    }

    /// The atom `%(name)s` stands for; `None` when Gunicorn documents no such atom.
    fn atom(&mut self, name: &str) -> Option<Atom> {
        if let Some(inner) = name.strip_prefix('{') {
            let (var, kind) = inner.rsplit_once('}')?;
            // Gunicorn lowercases the whole key before looking it up, so `{X}I`
            // means `{x}i`.
            return match kind {
                "i" | "I" => Some(Atom::RequestHeader(var.to_ascii_lowercase())),
                "o" | "O" => Some(Atom::ResponseHeader(var.to_ascii_lowercase())),
                "e" | "E" => {
                    let key = var.to_lowercase();
                    let i = match self.environ_keys.iter().position(|k| *k == key) {
                        Some(i) => i,
                        None => {
                            self.environ_keys.push(key);
                            self.environ_keys.len() - 1
                        }
                    };
                    Some(Atom::Environ(i))
                }
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
            "B" | "b" => Atom::Bytes,
            "f" => Atom::Referer,
            "a" => Atom::UserAgent,
            "T" => Atom::Duration(Unit::Seconds),
            "D" => Atom::Duration(Unit::Micros),
            "M" => Atom::Duration(Unit::Millis),
            "L" => Atom::Duration(Unit::DecimalSeconds),
            "p" => Atom::Pid,
            _ => return None,
        })
    }
}

impl Atom {
    /// Append this atom's value for `e`; every value from the request is escaped.
    fn write(&self, out: &mut String, e: &Entry<'_>) {
        match self {
            Atom::Literal(s) => out.push_str(s),
            Atom::RemoteAddr => escape_into(out, or_dash(e.remote_addr).as_bytes()),
            Atom::Dash => out.push('-'),
            Atom::User => {
                let user = basic_auth_user(e.request_headers);
                escape_or_dash(out, user.map(|u| Cow::Owned(u.into_bytes())));
            }
            Atom::Time => {
                let logged = e.started.checked_add(e.duration).unwrap_or(e.started);
                out.push_str(&access_timestamp(logged));
            }
            Atom::RequestLine => {
                escape_into(out, e.method.as_bytes());
                out.push(' ');
                escape_into(out, e.target.as_bytes());
                out.push(' ');
                escape_into(out, e.protocol.as_bytes());
            }
            Atom::Method => escape_into(out, e.method.as_bytes()),
            // Gunicorn logs PATH_INFO: percent-decoded. Unlike PATH_INFO it
            // keeps SCRIPT_NAME, which the entry does not carry.
            Atom::Path => escape_into(out, &percent_decode(target_path(e.target))),
            Atom::Query => escape_into(out, target_query(e.target).as_bytes()),
            Atom::Protocol => escape_into(out, e.protocol.as_bytes()),
            Atom::Status => push_number(out, e.status),
            // Gunicorn 23: `b` is `resp.sent is not None and str(resp.sent) or
            // '-'` and `B` is `resp.sent`. `sent` starts at 0 and is never None,
            // and `str(0)` is the truthy "0", so both log "0" for an empty body,
            // not CLF's "-".
            Atom::Bytes => push_number(out, e.bytes),
            // `f`, `a` and `u` read Gunicorn's environ, which joins repeated
            // headers with ","; `{name}i` takes the last one.
            Atom::Referer => escape_or_dash(out, joined_header(e.request_headers, "referer")),
            Atom::UserAgent => {
                escape_or_dash(out, joined_header(e.request_headers, "user-agent"));
            }
            Atom::Duration(unit) => unit.write(out, e.duration),
            Atom::Pid => {
                let _ = write!(out, "<{}>", std::process::id());
            }
            Atom::RequestHeader(name) => escape_or_dash(out, last_header(e.request_headers, name)),
            Atom::ResponseHeader(name) => {
                escape_or_dash(out, last_header(e.response_headers, name));
            }
            Atom::Environ(i) => {
                let v = e.environ.get(*i).and_then(Option::as_deref);
                escape_or_dash(out, v.map(|v| Cow::Borrowed(v.as_bytes())));
            }
        }
    }
}

impl Unit {
    /// Append `d` in this unit.
    fn write(self, out: &mut String, d: Duration) {
        match self {
            // Gunicorn takes these from a timedelta's `seconds` and
            // `microseconds`, which drop whole days; ours do not.
            Unit::Seconds => push_number(out, d.as_secs()),
            Unit::Millis => push_number(out, d.as_millis()),
            Unit::Micros => push_number(out, d.as_micros()),
            // "%d.%06d": truncated to the microsecond, never rounded.
            Unit::DecimalSeconds => {
                let _ = write!(out, "{}.{:06}", d.as_secs(), d.subsec_micros());
            }
        }
    }
}

/// The index of the `)` closing a `%(` key. Like Python, parentheses inside the
/// key nest: `%(a(b))s` names `a(b)`.
fn closing_paren(s: &str) -> Option<usize> {
    let mut depth = 1usize;
    for (i, b) in s.bytes().enumerate() {
        match b {
            b'(' => depth += 1,
            b')' => {
                depth -= 1;
                if depth == 0 {
                    return Some(i);
                }
            }
            _ => {}
        }
    }
    None
}

/// The start of `s`, short enough to quote in an error.
fn excerpt(s: &str) -> &str {
    match s.char_indices().nth(24) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

/// Append `v`: printable ASCII as is, except `"` as `\"` and `\` as `\\`; every
/// other byte (controls, DEL, non-ASCII) as `\xNN`. The output is printable
/// ASCII, so a value can neither close a quoted field nor start a new line, and
/// latin-1 header bytes are kept exactly rather than guessed at.
fn escape_into(out: &mut String, v: &[u8]) {
    for &b in v {
        match b {
            b'"' => out.push_str("\\\""),
            b'\\' => out.push_str("\\\\"),
            0x20..=0x7e => out.push(char::from(b)),
            _ => {
                let _ = write!(out, "\\x{b:02x}");
            }
        }
    }
}

/// Append `v` escaped, or `-` when it is absent. A present but empty value stays
/// empty, as in Gunicorn.
fn escape_or_dash(out: &mut String, v: Option<Cow<'_, [u8]>>) {
    match v {
        Some(v) => escape_into(out, &v),
        None => out.push('-'),
    }
}

fn push_number(out: &mut String, n: impl itoa::Integer) {
    out.push_str(itoa::Buffer::new().format(n));
}

fn or_dash(s: &str) -> &str {
    if s.is_empty() { "-" } else { s }
}

/// The value Gunicorn's environ holds for a request header: every field named
/// `name`, joined with `,`; `None` when there is none.
fn joined_header<'h>(headers: &[(&str, &'h [u8])], name: &str) -> Option<Cow<'h, [u8]>> {
    let mut found: Option<Cow<'h, [u8]>> = None;
    for (_, v) in headers.iter().filter(|(k, _)| k.eq_ignore_ascii_case(name)) {
        found = Some(match found {
            None => Cow::Borrowed(*v),
            Some(prev) => {
                let mut joined = prev.into_owned();
                joined.push(b',');
                joined.extend_from_slice(v);
                Cow::Owned(joined)
            }
        });
    }
    found
}

/// The value of the last field named `name` (`{name}i`, `{name}o`).
fn last_header<'h, K: AsRef<[u8]>, V: AsRef<[u8]>>(
    headers: &'h [(K, V)],
    name: &str,
) -> Option<Cow<'h, [u8]>> {
    headers
        .iter()
        .rev()
        .find(|(k, _)| k.as_ref().eq_ignore_ascii_case(name.as_bytes()))
        .map(|(_, v)| Cow::Borrowed(v.as_ref()))
}

/// `%(u)s`: the user name of HTTP Basic credentials, found as Gunicorn's
/// `_get_user` finds it. The `Authorization` value must start with `basic` in
/// any case; what follows its first space is base64 (decoded leniently, as
/// Python's `b64decode` does); the user is what precedes the first `:`. `None`
/// (logged `-`) when there is no such header, the base64 or the UTF-8 is bad, or
/// the name is empty.
fn basic_auth_user(headers: &[(&str, &[u8])]) -> Option<String> {
    let auth = joined_header(headers, "authorization")?;
    if !auth.get(..5)?.eq_ignore_ascii_case(b"basic") {
        return None;
    }
    let space = memchr::memchr(b' ', &auth)?;
    let decoded = b64decode_lenient(&auth[space + 1..])?;
    let user = decoded.split(|&b| b == b':').next()?;
    match String::from_utf8(user.to_vec()) {
        Ok(user) if !user.is_empty() => Some(user),
        _ => None,
    }
}

/// Python's `base64.b64decode(s)` (no `validate`), following CPython's
/// `binascii.a2b_base64` in its non-strict mode: bytes outside the standard
/// alphabet are skipped; a `=` counts only once two characters of a quantum are
/// in, and the pads that complete it end the input (the rest is ignored); an
/// incomplete last quantum is an error.
fn b64decode_lenient(s: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(s.len() / 4 * 3 + 2);
    let (mut quad, mut pads, mut left) = (0u8, 0u8, 0u8);
    for &c in s {
        if c == b'=' {
            if quad >= 2 {
                pads += 1;
                if quad + pads >= 4 {
                    return Some(out);
                }
            }
            continue;
        }
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => continue,
        };
        pads = 0;
        match quad {
            0 => left = v,
            1 => {
                out.push(left << 2 | v >> 4);
                left = v & 0x0f;
            }
            2 => {
                out.push(left << 4 | v >> 2);
                left = v & 0x03;
            }
            _ => out.push(left << 6 | v),
        }
        quad = (quad + 1) % 4;
    }
    (quad == 0).then_some(out)
}

/// The path of a request target before decoding, as `http::RequestHead::path`
/// finds it (`log` cannot depend on `http`): origin-form up to `?` or `#`;
/// absolute-form (`http://h/p?q`) without scheme and authority (`/p`, or empty);
/// `*` for asterisk-form; empty for authority-form.
fn target_path(t: &str) -> &str {
    let from_path = if t.starts_with('/') || t == "*" {
        t
    } else if let Some(rest) = after_scheme(t) {
        match rest.find(['/', '?', '#']) {
            Some(i) => &rest[i..],
            None => "",
        }
    } else {
        ""
    };
    let end = from_path.find(['?', '#']).unwrap_or(from_path.len());
    &from_path[..end]
}

/// The query of a request target: after the first `?`, before any `#`.
fn target_query(t: &str) -> &str {
    let t = &t[..t.find('#').unwrap_or(t.len())];
    t.split_once('?').map_or("", |(_, q)| q)
}

/// For an absolute-form target `scheme://rest`, the `rest`.
fn after_scheme(t: &str) -> Option<&str> {
    let (scheme, rest) = t.split_once(':')?;
    let mut bytes = scheme.bytes();
    let scheme_ok = bytes.next().is_some_and(|b| b.is_ascii_alphabetic())
        && bytes.all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'));
    if scheme_ok {
        rest.strip_prefix("//")
    } else {
        None
    }
}

/// `%XX` escapes decoded to bytes, as Python's `unquote_to_bytes` (which
/// Gunicorn's PATH_INFO goes through); a malformed escape stays as it is.
fn percent_decode(s: &str) -> Cow<'_, [u8]> {
    let b = s.as_bytes();
    if !b.contains(&b'%') {
        return Cow::Borrowed(b);
    }
    let hex = |c: u8| char::from(c).to_digit(16);
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && let (Some(h), Some(l)) = (
                b.get(i + 1).copied().and_then(hex),
                b.get(i + 2).copied().and_then(hex),
            )
        {
            // Two hex digits: at most 0xff.
            out.push((h * 16 + l) as u8);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    Cow::Owned(out)
}

/// `[25/Nov/2026:09:00:00 +0000]`: Gunicorn's `[%d/%b/%Y:%H:%M:%S %z]`, in UTC.
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
pub(super) mod tests {
    use super::*;

    /// A GET of `/a?b=1` from 127.0.0.1 answered 200 with 14 bytes in 1.5 ms.
    pub(crate) fn entry<'a>(
        headers: &'a [(&'a str, &'a [u8])],
        resp: &'a [(Vec<u8>, Vec<u8>)],
    ) -> Entry<'a> {
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
            environ: &[],
            disconnected: false,
            thread: None,
        }
    }

    #[test]
    fn default_format_renders_like_gunicorn() {
        let headers = vec![("User-Agent", &b"curl/8"[..])];
        let f = Format::compile(DEFAULT_FORMAT).unwrap();
        assert_eq!(
            f.render(&entry(&headers, &[])),
            r#"127.0.0.1 - - [25/Nov/2026:09:00:00 +0000] "GET /a?b=1 HTTP/1.1" 200 14 "-" "curl/8""#
        );
    }

    #[test]
    fn header_and_timing_atoms() {
        let headers = vec![("X-Id", &b"abc"[..])];
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
        assert!(Format::compile("%(h)").is_err());
        assert!(Format::compile("%({x}z)s").is_err());
        assert!(Format::compile("%({x})s").is_err());
        assert!(Format::compile("%()s").is_err());
    }

    #[test]
    fn unknown_atom_error_names_the_atom() {
        let err = Format::compile("%(h)s %(zz)s").unwrap_err();
        assert!(err.contains("%(zz)s"), "{err}");
    }

    #[test]
    fn every_gunicorn_atom_compiles() {
        let all = "%(h)s %(l)s %(u)s %(t)s %(r)s %(m)s %(U)s %(q)s %(H)s %(s)s %(B)s \
                   %(b)s %(f)s %(a)s %(T)s %(M)s %(D)s %(L)s %(p)s %({x-id}i)s \
                   %({content-type}o)s %({REMOTE_USER}e)s %({X-Id}I)s %({Server}O)s %({X}E)s";
        assert!(Format::compile(all).is_ok());
    }

    #[test]
    fn conversions_other_than_s_are_refused() {
        assert!(Format::compile("%(s)d").is_err());
        assert!(Format::compile("%(h)-15s").is_err());
        assert!(Format::compile("%(h)r").is_err());
    }

    #[test]
    fn double_percent_is_a_literal_percent() {
        let f = Format::compile("100%% %(s)s %%(h)s%%").unwrap();
        assert_eq!(f.render(&entry(&[], &[])), "100% 200 %(h)s%");
    }

    #[test]
    fn lone_percent_is_refused() {
        assert!(Format::compile("50% done").is_err());
        assert!(Format::compile("%(s)s 100%").is_err());
        assert!(Format::compile("%s").is_err());
    }

    #[test]
    fn parentheses_nest_inside_an_atom_name() {
        // Python reads the key of `%({a(b)}i)s` as `{a(b)}i`.
        let headers = vec![("a(b)", &b"v"[..])];
        let f = Format::compile("%({a(b)}i)s").unwrap();
        assert_eq!(f.render(&entry(&headers, &[])), "v");
    }

    fn auth(value: &[u8]) -> Vec<(&str, &[u8])> {
        vec![("Authorization", value)]
    }

    fn user(headers: &[(&str, &[u8])]) -> String {
        Format::compile("%(u)s")
            .unwrap()
            .render(&entry(headers, &[]))
    }

    #[test]
    fn basic_auth_user_is_logged() {
        assert_eq!(user(&auth(b"Basic YWxpY2U6cHc=")), "alice");
        // Any case of the scheme; no colon means the whole value is the name.
        assert_eq!(user(&auth(b"basic YWxpY2U=")), "alice");
        let f = Format::compile(DEFAULT_FORMAT).unwrap();
        assert!(
            f.render(&entry(&auth(b"Basic YWxpY2U6cHc="), &[]))
                .starts_with("127.0.0.1 - alice [")
        );
    }

    #[test]
    fn user_is_a_dash_without_usable_basic_credentials() {
        assert_eq!(user(&[]), "-");
        assert_eq!(user(&auth(b"Bearer YWxpY2U6cHc=")), "-");
        assert_eq!(user(&auth(b"Basic")), "-");
        // Incomplete base64, a name that is not UTF-8 (0xff), an empty name.
        assert_eq!(user(&auth(b"Basic YWxpY2U")), "-");
        assert_eq!(user(&auth(b"Basic /zpwdw==")), "-");
        assert_eq!(user(&auth(b"Basic OnB3")), "-");
    }

    #[test]
    fn basic_auth_base64_is_decoded_as_leniently_as_python() {
        // Expected values from CPython 3.11's base64.b64decode.
        assert_eq!(user(&auth(b"Basic YWxp Y2U6 cHc=")), "alice");
        assert_eq!(user(&auth(b"Basic YWxpY2U6cHc=garbage")), "alice");
        assert_eq!(user(&auth(b"Basic -_YWxpY2U6cHc=")), "alice");
        assert_eq!(b64decode_lenient(b"YWx=pY2U6cHc="), Some(b"al".to_vec()));
        assert_eq!(
            b64decode_lenient(b"Y=WxpY2U6cHc="),
            Some(b"alice:pw".to_vec())
        );
        assert_eq!(
            b64decode_lenient(b"YWxpYw=x=YWxp"),
            Some(b"alic\x0c".to_vec())
        );
        assert_eq!(b64decode_lenient(b"YWxpYw="), None);
        assert_eq!(b64decode_lenient(b"YQ"), None);
    }

    #[test]
    fn user_name_is_escaped() {
        // base64 of `a"b\c:pw`
        assert_eq!(user(&auth(b"Basic YSJiXGM6cHc=")), r#"a\"b\\c"#);
    }

    #[test]
    fn quotes_in_headers_cannot_forge_fields() {
        let headers = vec![
            ("User-Agent", &br#"evil" 200 0 "x"#[..]),
            ("Referer", &br#"\" "#[..]),
        ];
        let f = Format::compile(DEFAULT_FORMAT).unwrap();
        assert_eq!(
            f.render(&entry(&headers, &[])),
            r#"127.0.0.1 - - [25/Nov/2026:09:00:00 +0000] "GET /a?b=1 HTTP/1.1" 200 14 "\\\" " "evil\" 200 0 \"x""#
        );
    }

    #[test]
    fn control_and_non_ascii_bytes_are_escaped_as_hex() {
        let headers = vec![("X-Odd", &b"a\tb\x1b[31m\x7f caf\xe9"[..])];
        let f = Format::compile("%({x-odd}i)s").unwrap();
        assert_eq!(
            f.render(&entry(&headers, &[])),
            r"a\x09b\x1b[31m\x7f caf\xe9"
        );
    }

    #[test]
    fn every_request_value_is_escaped() {
        let resp = vec![(b"X-Out".to_vec(), b"o\"\n".to_vec())];
        let environ = [Some("e\"\n".to_owned())];
        let mut e = entry(&[], &resp);
        e.method = "G\"T";
        e.target = "/p\"?q\"\\";
        e.protocol = "HTTP/\"";
        e.remote_addr = "h\"";
        e.environ = &environ;
        let f =
            Format::compile("%(h)s|%(r)s|%(m)s|%(U)s|%(q)s|%(H)s|%({x-out}o)s|%({k}e)s").unwrap();
        assert_eq!(
            f.render(&e),
            r#"h\"|G\"T /p\"?q\"\\ HTTP/\"|G\"T|/p\"|q\"\\|HTTP/\"|o\"\x0a|e\"\x0a"#
        );
    }

    #[test]
    fn decoded_path_is_escaped() {
        // PATH_INFO is percent-decoded, so `%0A` and `%22` must not come out raw.
        let mut e = entry(&[], &[]);
        e.target = "/a%0Ab%22c%e9%zz%4";
        let f = Format::compile("%(U)s").unwrap();
        assert_eq!(f.render(&e), r#"/a\x0ab\"c\xe9%zz%4"#);
    }

    #[test]
    fn absolute_form_path_has_no_host() {
        let mut e = entry(&[], &[]);
        e.target = "http://h/p?q#frag";
        let f = Format::compile("%(U)s|%(q)s|%(r)s").unwrap();
        assert_eq!(f.render(&e), "/p|q|GET http://h/p?q#frag HTTP/1.1");
        e.target = "https://h:8443";
        assert_eq!(f.render(&e), "||GET https://h:8443 HTTP/1.1");
        e.target = "http://h?x=1";
        assert_eq!(f.render(&e), "|x=1|GET http://h?x=1 HTTP/1.1");
    }

    #[test]
    fn fragment_is_neither_path_nor_query() {
        let mut e = entry(&[], &[]);
        e.target = "/p#f?notquery";
        assert_eq!(Format::compile("%(U)s|%(q)s").unwrap().render(&e), "/p|");
        e.target = "*";
        assert_eq!(Format::compile("%(U)s|%(q)s").unwrap().render(&e), "*|");
    }

    #[test]
    fn environ_atom_renders_given_value() {
        let f = Format::compile(
            "%({REMOTE_USER}e)s %({wsgi.url_scheme}e)s %({remote_user}e)s %({missing}e)s",
        )
        .unwrap();
        assert_eq!(
            f.environ_keys(),
            ["remote_user", "wsgi.url_scheme", "missing"]
        );
        let environ = [Some("bob".to_owned()), Some("https".to_owned()), None];
        let mut e = entry(&[], &[]);
        e.environ = &environ;
        assert_eq!(f.render(&e), "bob https bob -");
        // A worker that fills nothing gets dashes.
        e.environ = &[];
        assert_eq!(f.render(&e), "- - - -");
    }

    #[test]
    fn formats_without_environ_atoms_need_no_environ() {
        assert!(
            Format::compile(DEFAULT_FORMAT)
                .unwrap()
                .environ_keys()
                .is_empty()
        );
    }

    #[test]
    fn empty_body_logs_like_gunicorn() {
        let mut e = entry(&[], &[]);
        e.bytes = 0;
        let f = Format::compile("%(b)s %(B)s").unwrap();
        assert_eq!(f.render(&e), "0 0");
    }

    #[test]
    fn timing_atoms_render_like_gunicorn() {
        let mut e = entry(&[], &[]);
        e.duration = Duration::new(1, 999_999_999);
        let f = Format::compile("%(T)s %(M)s %(D)s %(L)s").unwrap();
        // L is "%d.%06d": truncated, never rounded up to 2.000000.
        assert_eq!(f.render(&e), "1 1999 1999999 1.999999");
        e.duration = Duration::from_micros(42);
        assert_eq!(f.render(&e), "0 0 42 0.000042");
    }

    #[test]
    fn time_atom_is_when_the_line_is_logged() {
        let mut e = entry(&[], &[]);
        e.started = SystemTime::UNIX_EPOCH + Duration::from_millis(1_795_597_199_900);
        e.duration = Duration::from_millis(200);
        let f = Format::compile("%(t)s").unwrap();
        assert_eq!(f.render(&e), "[25/Nov/2026:09:00:00 +0000]");
    }

    #[test]
    fn pid_and_dash_atoms() {
        let f = Format::compile("%(p)s %(l)s").unwrap();
        assert_eq!(
            f.render(&entry(&[], &[])),
            format!("<{}> -", std::process::id())
        );
    }

    #[test]
    fn repeated_headers_render_like_gunicorn() {
        // `a` and `f` read the environ, which joins repeats; `{name}i` and
        // `{name}o` read the header lists, where the last one wins.
        let headers = vec![("User-Agent", &b"one"[..]), ("user-agent", &b"two"[..])];
        let resp = vec![
            (b"Set-Cookie".to_vec(), b"a=1".to_vec()),
            (b"set-cookie".to_vec(), b"b=2".to_vec()),
        ];
        let f = Format::compile("%(a)s|%({user-agent}i)s|%({set-cookie}o)s").unwrap();
        assert_eq!(f.render(&entry(&headers, &resp)), "one,two|two|b=2");
    }

    #[test]
    fn empty_header_values_stay_empty() {
        let headers = vec![("User-Agent", &b""[..])];
        let f = Format::compile("\"%(a)s\" \"%({user-agent}i)s\" \"%(f)s\"").unwrap();
        assert_eq!(f.render(&entry(&headers, &[])), r#""" "" "-""#);
    }

    #[test]
    fn unix_socket_peer_is_a_dash() {
        let mut e = entry(&[], &[]);
        e.remote_addr = "";
        assert_eq!(Format::compile("%(h)s").unwrap().render(&e), "-");
    }
}
