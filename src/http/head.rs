//! Request heads: the request line and header section of one HTTP/1.x request
//! (RFC 9112 §2.2, §3, §5), and the body framing they imply (RFC 9112 §6.1, §6.3).
//!
//! This module owns gunicorn's `limit_request_line`, `limit_request_fields` and
//! `limit_request_field_size` semantics, and bounds how much of an incomplete
//! head a client can make the server buffer. It does not read sockets, decode
//! bodies (see `body`) or build the WSGI environ (see `wsgi/`).
//!
//! Tokenising is done by `httparse` on the hot path; our own code only runs on
//! its results, on incomplete input and on errors (to say precisely what was
//! wrong). Choices beyond the RFC's MUSTs:
//! - bare LF is accepted as a line ending in the head, as RFC 9112 §2.2 allows;
//! - obsolete line folding is rejected (RFC 9112 §5.2 allows either) unless
//!   `permit_obsolete_folding`, and whitespace before a colon unless
//!   `strip_header_spaces`: both re-parse a normalised copy of the head, so
//!   the fast path never pays for them;
//! - a missing `Host` is not rejected, matching gunicorn; a malformed one is
//!   (RFC 9112 §3.2);
//! - the request-target must be ASCII (Gunicorn 27 refuses the rest too).

use std::mem::MaybeUninit;

use memchr::{memchr, memchr_iter, memchr2};

use crate::http::error::{ParseError, excerpt};

/// gunicorn's hard cap on header fields; `limit_request_fields = 0` means this.
pub const MAX_HEADERS: usize = 32768;
/// Per-line size assumed when sizing the head budget for a limit of 0, as
/// gunicorn's `max_buffer_headers` does.
const UNLIMITED_LINE_BUDGET: usize = 8190;
/// Cap on a buffered head when any limit is 0 (unlimited).
const UNLIMITED_HEAD_CAP: usize = 1 << 20;
/// Header slots parsed on the stack; requests with more grow a heap array.
const STACK_HEADERS: usize = 100;

/// Gunicorn's switches that relax the parser, all off by default (Gunicorn
/// 24's defaults). Each names the setting it comes from.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Leniency {
    /// `permit_unconventional_http_method`: any RFC 9110 token is a method,
    /// not only 3 to 20 bytes without lowercase letters or `#`.
    pub unconventional_method: bool,
    /// `permit_unconventional_http_version`: `HTTP/0.9` and `HTTP/2.0`+ are
    /// served as HTTP/1.0 and HTTP/1.1 instead of refused with 505.
    pub unconventional_version: bool,
    /// `casefold_http_method`: methods are upper-cased.
    pub casefold_method: bool,
    /// `strip_header_spaces`: whitespace between a field name and its colon is
    /// dropped instead of refused (RFC 9112 §5.1 says refuse).
    pub strip_header_spaces: bool,
    /// `permit_obsolete_folding`: obs-fold continuation lines are joined with a
    /// space instead of refused (RFC 9112 §5.2 allows either).
    pub obsolete_folding: bool,
}

/// Request head limits, with gunicorn's setting names and meanings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// `limit_request_line`: longest request line in bytes, CRLF excluded; 0 = unlimited.
    pub request_line: usize,
    /// `limit_request_fields`: most header fields; 0 (or above 32768) = 32768.
    pub fields: usize,
    /// `limit_request_field_size`: longest header line in bytes, its CRLF
    /// included as Gunicorn counts it; 0 = unlimited.
    pub field_size: usize,
    /// Which of Gunicorn's parser relaxations are on.
    pub leniency: Leniency,
}

impl Default for Limits {
    /// gunicorn's defaults: 4094, 100, 8190.
    fn default() -> Self {
        Limits {
            request_line: 4094,
            fields: 100,
            field_size: 8190,
            leniency: Leniency::default(),
        }
    }
}

impl Limits {
    /// The effective field count limit: `fields`, with 0 and values above
    /// [`MAX_HEADERS`] meaning [`MAX_HEADERS`], as in gunicorn.
    pub fn max_fields(&self) -> usize {
        if self.fields == 0 || self.fields > MAX_HEADERS {
            MAX_HEADERS
        } else {
            self.fields
        }
    }

    /// Most bytes an incomplete head may occupy before [`parse`] gives up with
    /// [`ParseError::HeadTooLarge`]: one maximal request line plus the maximal
    /// number of maximal header lines. When any limit is 0 the budget is capped
    /// at 1 MiB so "unlimited" never means unbounded memory. Workers may also use
    /// this to size read buffers.
    pub fn head_budget(&self) -> usize {
        let line = nonzero_or(self.request_line, UNLIMITED_LINE_BUDGET);
        let field = nonzero_or(self.field_size, UNLIMITED_LINE_BUDGET);
        let budget = line
            .saturating_add(2)
            .saturating_add(self.max_fields().saturating_mul(field.saturating_add(2)))
            .saturating_add(2);
        if self.request_line == 0 || self.field_size == 0 || self.fields == 0 {
            budget.min(UNLIMITED_HEAD_CAP)
        } else {
            budget
        }
    }
}

fn nonzero_or(value: usize, fallback: usize) -> usize {
    if value == 0 { fallback } else { value }
}

/// The HTTP versions this server speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Version {
    /// HTTP/1.0: no chunked bodies, keep-alive only on request.
    Http10,
    /// HTTP/1.1: persistent by default.
    Http11,
}

impl Version {
    /// The protocol string as written on the wire: `"HTTP/1.0"` or `"HTTP/1.1"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Version::Http10 => "HTTP/1.0",
            Version::Http11 => "HTTP/1.1",
        }
    }
}

/// How the request body is delimited (RFC 9112 §6.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BodyKind {
    /// No Content-Length and no Transfer-Encoding: no body.
    Empty,
    /// Exactly this many bytes follow (possibly 0).
    Length(u64),
    /// Chunked transfer coding (RFC 9112 §7.1).
    Chunked,
}

/// A request path with its `%XX` escapes decoded into bytes; anything else,
/// a malformed escape included, is kept as it is (RFC 3986 §2.1). How the
/// bytes read as text is the caller's: latin-1 for WSGI, UTF-8 for ASGI.
pub fn percent_decode(path: &str) -> std::borrow::Cow<'_, [u8]> {
    if !path.contains('%') {
        return std::borrow::Cow::Borrowed(path.as_bytes());
    }
    let bytes = path.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hex = |b: u8| (b as char).to_digit(16);
            if let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    std::borrow::Cow::Owned(out)
}

/// One parsed request head, owning its strings so the read buffer can be reused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestHead {
    /// The method, the target and every field name, back to back: one
    /// allocation for all of them (see [`RequestHead::method`]).
    text: String,
    /// Every field value, back to back (values may hold obs-text: bytes).
    values: Vec<u8>,
    /// Where the method ends in `text`; the target follows it.
    method_end: usize,
    /// Where the target ends in `text`; the field names follow it.
    target_end: usize,
    /// Per field, where its name ends in `text` and its value in `values`.
    field_ends: Vec<(usize, usize)>,
    /// Protocol version from the request line.
    pub version: Version,
    /// Body framing derived from Content-Length / Transfer-Encoding.
    pub body: BodyKind,
    /// Whether the client allows the connection to persist after this request:
    /// HTTP/1.1 unless `Connection: close`; HTTP/1.0 only with
    /// `Connection: keep-alive` (and no `close`).
    pub keep_alive: bool,
    /// `Expect: 100-continue` on an HTTP/1.1 request: send 100 before reading the body.
    pub expect_continue: bool,
}

/// The fields of a [`RequestHead`] in order: name as sent, value with
/// surrounding OWS trimmed.
#[derive(Clone)]
pub struct Fields<'h> {
    head: &'h RequestHead,
    next: usize,
}

impl<'h> Iterator for Fields<'h> {
    type Item = (&'h str, &'h [u8]);

    fn next(&mut self) -> Option<Self::Item> {
        let head = self.head;
        let &(name_end, value_end) = head.field_ends.get(self.next)?;
        let (name_start, value_start) = match self.next {
            0 => (head.target_end, 0),
            i => head.field_ends[i - 1],
        };
        self.next += 1;
        Some((
            &head.text[name_start..name_end],
            &head.values[value_start..value_end],
        ))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = self.head.field_ends.len() - self.next;
        (left, Some(left))
    }
}

impl ExactSizeIterator for Fields<'_> {}

impl RequestHead {
    /// A head from its parts; the strings are copied into two buffers.
    pub fn new<'f>(
        method: &str,
        target: &str,
        version: Version,
        fields: impl Iterator<Item = (&'f str, &'f [u8])> + Clone,
        body: BodyKind,
    ) -> RequestHead {
        let names: usize = fields.clone().map(|(n, _)| n.len()).sum();
        let values: usize = fields.clone().map(|(_, v)| v.len()).sum();
        let mut head = RequestHead {
            text: String::with_capacity(method.len() + target.len() + names),
            values: Vec::with_capacity(values),
            method_end: method.len(),
            target_end: method.len() + target.len(),
            field_ends: Vec::with_capacity(fields.size_hint().0),
            version,
            body,
            keep_alive: version == Version::Http11,
            expect_continue: false,
        };
        head.text.push_str(method);
        head.text.push_str(target);
        for (name, value) in fields {
            head.text.push_str(name);
            head.values.extend_from_slice(value);
            head.field_ends.push((head.text.len(), head.values.len()));
        }
        head
    }

    /// The method as sent, case preserved (methods are case-sensitive).
    pub fn method(&self) -> &str {
        &self.text[..self.method_end]
    }

    /// The raw request-target, which becomes `RAW_URI`.
    pub fn target(&self) -> &str {
        &self.text[self.method_end..self.target_end]
    }

    /// The header fields in order.
    pub fn headers(&self) -> Fields<'_> {
        Fields {
            head: self,
            next: 0,
        }
    }

    /// The path of the target: origin-form up to `?` or `#`; for absolute-form
    /// (`http://h:p/x?y`) the part after the authority (`/x`, or `""` when
    /// there is none); `"*"` for asterisk-form; `""` for authority-form.
    pub fn path(&self) -> &str {
        let t = self.target();
        let from_path = if t.starts_with('/') || t == "*" {
            t
        } else if let Some(rest) = after_scheme(t) {
            // Cutting at an ASCII byte keeps the str boundary valid.
            match memchr::memchr3(b'/', b'?', b'#', rest.as_bytes()) {
                Some(i) => &rest[i..],
                None => "",
            }
        } else {
            ""
        };
        let end = memchr2(b'?', b'#', from_path.as_bytes()).unwrap_or(from_path.len());
        &from_path[..end]
    }

    /// The query: after the first `?`, before any `#`; `""` when there is none.
    pub fn query(&self) -> &str {
        let target = self.target();
        let t = target.as_bytes();
        let end = memchr(b'#', t).unwrap_or(t.len());
        match memchr(b'?', &t[..end]) {
            Some(q) => &target[q + 1..end],
            None => "",
        }
    }

    /// The value of the first header named `name`, compared ASCII
    /// case-insensitively.
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        self.headers()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    }
}

/// Parse one request head from the start of `buf`.
///
/// Returns `Ok(None)` when more bytes are needed, or `Ok(Some((head,
/// consumed)))` where `consumed` counts the head bytes including the final blank
/// line and any empty lines skipped before the request line (RFC 9112 §2.2).
/// Bytes after `consumed` (body, pipelined requests) are left alone.
///
/// # Errors
///
/// Any [`ParseError`] about the head; limits are enforced on incomplete input
/// too, so a client cannot make the caller buffer more than
/// [`Limits::head_budget`] bytes waiting for a head.
pub fn parse(buf: &[u8], limits: &Limits) -> Result<Option<(RequestHead, usize)>, ParseError> {
    let skipped = empty_line_prefix(buf);
    let rest = &buf[skipped..];
    check_request_line_length(rest, limits.request_line)?;

    let fields = limits.max_fields();
    let mut stack = [const { MaybeUninit::<httparse::Header<'_>>::uninit() }; STACK_HEADERS];
    let mut slots = fields.min(STACK_HEADERS);
    let mut attempt = match parse_with(rest, &mut stack[..slots], limits) {
        Err(ParseError::UnsupportedVersion(_))
            if served_version(rest, &limits.leniency).is_some() =>
        {
            return parse_as_served_version(buf, skipped, limits);
        }
        // httparse refuses `HTTP/1.2` as soon as it sees the digit: wait for
        // the end of the line before deciding.
        // Likewise `HTTP/2` with the rest of the line still to come: it may
        // end as a 505 (or, with `permit_unconventional_http_version`, be
        // served), not as a malformed line.
        Err(ParseError::UnsupportedVersion(_) | ParseError::InvalidRequestLine(_))
            if memchr(b'\n', rest).is_none() && version_may_follow(rest) =>
        {
            check_partial(buf.len(), rest, limits)?;
            return Ok(None);
        }
        Err(ParseError::InvalidHeader(_)) if normalises_fields(&limits.leniency) => {
            return parse_normalised(buf, skipped, limits);
        }
        other => other?,
    };
    // Only requests that really carry more than STACK_HEADERS fields pay for a
    // heap array; growing by 4x keeps re-parses logarithmic.
    while matches!(attempt, Attempt::SlotsFull) && slots < fields {
        slots = slots.saturating_mul(4).min(fields);
        let mut heap = Vec::with_capacity(slots);
        heap.resize_with(slots, MaybeUninit::uninit);
        attempt = match parse_with(rest, &mut heap, limits) {
            Err(ParseError::InvalidHeader(_)) if normalises_fields(&limits.leniency) => {
                return parse_normalised(buf, skipped, limits);
            }
            other => other?,
        };
    }
    match attempt {
        Attempt::Complete(head, len) => Ok(Some((head, skipped + len))),
        Attempt::Partial => {
            check_partial(buf.len(), rest, limits)?;
            Ok(None)
        }
        Attempt::SlotsFull => Err(ParseError::TooManyHeaders { limit: fields }),
    }
}

/// For a request line ending in `HTTP/x.y` that this server answers in
/// another version, where `x.y` starts in `rest` and what replaces it.
///
/// RFC 9110 §2.5: a later minor version of HTTP/1 (1.2 to 1.9) is answered
/// in the highest one this server speaks, 1.1. With
/// `permit_unconventional_http_version`, as in Gunicorn, any other
/// single-digit `HTTP/x.y` is served too: below 1.0 as 1.0, 2.0 and above as
/// 1.1. Two-digit numbers stay a 505 either way (RFC 9112 §2.3: one digit).
fn served_version(rest: &[u8], leniency: &Leniency) -> Option<(usize, &'static [u8; 3])> {
    let line = &rest[..memchr(b'\n', rest)?];
    let line = &line[..line_len(line)];
    let at = line.len().checked_sub(b" HTTP/1.2".len())?;
    let [b' ', b'H', b'T', b'T', b'P', b'/', major, b'.', minor] = line[at..] else {
        return None;
    };
    if at == 0 || !major.is_ascii_digit() || !minor.is_ascii_digit() {
        return None;
    }
    match major {
        b'1' if minor >= b'2' => Some((at + 6, b"1.1")),
        b'0' if leniency.unconventional_version => Some((at + 6, b"1.0")),
        b'2'..=b'9' if leniency.unconventional_version => Some((at + 6, b"1.1")),
        _ => None,
    }
}

/// Whether an unterminated request line ends in a prefix of
/// `SP HTTP/x.y CR`, with single digits: its verdict needs the rest.
fn version_may_follow(rest: &[u8]) -> bool {
    let mut parts = rest.splitn(3, |&b| b == b' ');
    let (Some(_), Some(_), Some(version)) = (parts.next(), parts.next(), parts.next()) else {
        return false;
    };
    const SHAPE: &[u8] = b"HTTP/0.0\r";
    version.len() <= SHAPE.len()
        && version.iter().zip(SHAPE).all(|(&b, &want)| match want {
            b'0' => b.is_ascii_digit(),
            _ => b == want,
        })
}

/// Parse a copy of `buf` whose version says what [`served_version`] chose.
/// (Rare, so a copy is fine; the copy is as long as `buf`, so `consumed`
/// holds for both.)
fn parse_as_served_version(
    buf: &[u8],
    skipped: usize,
    limits: &Limits,
) -> Result<Option<(RequestHead, usize)>, ParseError> {
    let mut copy = buf.to_vec();
    if let Some((at, version)) = served_version(&copy[skipped..], &limits.leniency) {
        copy[skipped + at..skipped + at + 3].copy_from_slice(version);
    }
    parse(&copy, limits)
}

/// Whether a switch is on that rewrites header lines httparse refused.
fn normalises_fields(leniency: &Leniency) -> bool {
    leniency.strip_header_spaces || leniency.obsolete_folding
}

/// The slow path of `strip_header_spaces` and `permit_obsolete_folding`:
/// once the whole head is in, parse a normalised copy of it (see
/// [`normalise_fields`]) with those switches off. `consumed` counts the
/// bytes of the original head. A head that is still refused after
/// normalising gets the copy's error.
fn parse_normalised(
    buf: &[u8],
    skipped: usize,
    limits: &Limits,
) -> Result<Option<(RequestHead, usize)>, ParseError> {
    let rest = &buf[skipped..];
    let Some(end) = head_end(rest) else {
        check_partial(buf.len(), rest, limits)?;
        return Ok(None);
    };
    // The limits hold for the lines as sent, as they did while incomplete.
    if let Some(request_lf) = memchr(b'\n', rest) {
        check_field_lines(&rest[request_lf + 1..end], limits)?;
    }
    let copy = normalise_fields(&rest[..end], &limits.leniency);
    let strict = Limits {
        leniency: Leniency {
            strip_header_spaces: false,
            obsolete_folding: false,
            ..limits.leniency
        },
        ..*limits
    };
    match parse(&copy, &strict)? {
        Some((head, _)) => Ok(Some((head, skipped + end))),
        // The copy ends in its blank line, so it is never incomplete.
        None => Err(ParseError::InvalidHeader(excerpt(rest))),
    }
}

/// Where the head at the start of `rest` ends: just past the LF of the
/// empty line after the request line, if it has arrived.
fn head_end(rest: &[u8]) -> Option<usize> {
    let base = memchr(b'\n', rest)? + 1;
    let mut start = base;
    for lf in memchr_iter(b'\n', &rest[base..]).map(|i| base + i) {
        if line_len(&rest[start..lf]) == 0 {
            return Some(lf + 1);
        }
        start = lf + 1;
    }
    None
}

/// A copy of a whole head (`head` ends in its empty line) with the lines
/// Gunicorn's switches accept rewritten into plain field lines:
/// - `strip_header_spaces`: SP and HTAB before a field line's first colon
///   are dropped (RFC 9112 §5.1 says refuse; Gunicorn's switch strips);
/// - `permit_obsolete_folding`: a line starting with SP or HTAB continues
///   the field line above it, joined with one SP after trimming both sides,
///   as RFC 9112 §5.2 lets a server do. A first field line that starts with
///   whitespace is never a continuation (RFC 9112 §2.2): it is copied as is
///   and still refused.
///
/// Every line is re-terminated with CRLF.
fn normalise_fields(head: &[u8], leniency: &Leniency) -> Vec<u8> {
    let mut out = Vec::with_capacity(head.len());
    let Some(request_lf) = memchr(b'\n', head) else {
        return head.to_vec();
    };
    out.extend_from_slice(&head[..=request_lf]);
    let mut have_field = false;
    for line in head[request_lf + 1..].split(|&b| b == b'\n') {
        let line = &line[..line_len(line)];
        if line.is_empty() {
            break;
        }
        let folded = matches!(line.first(), Some(b' ' | b'\t'));
        if folded && have_field && leniency.obsolete_folding {
            // Drop the previous line's CRLF and trailing OWS, then join.
            out.truncate(out.len() - 2);
            let kept = trim_ows_end(&out).len();
            out.truncate(kept);
            out.push(b' ');
            out.extend_from_slice(trim_ows_start(line));
        } else {
            match memchr(b':', line) {
                Some(colon) if leniency.strip_header_spaces => {
                    out.extend_from_slice(trim_ows_end(&line[..colon]));
                    out.extend_from_slice(&line[colon..]);
                }
                _ => out.extend_from_slice(line),
            }
        }
        out.extend_from_slice(b"\r\n");
        have_field = true;
    }
    out.extend_from_slice(b"\r\n");
    out
}

/// `bytes` without trailing SP and HTAB (RFC 9110 §5.6.3 OWS; nothing else).
fn trim_ows_end(bytes: &[u8]) -> &[u8] {
    let keep = bytes
        .iter()
        .rposition(|&b| b != b' ' && b != b'\t')
        .map_or(0, |i| i + 1);
    &bytes[..keep]
}

/// `bytes` without leading SP and HTAB.
fn trim_ows_start(bytes: &[u8]) -> &[u8] {
    let skip = bytes
        .iter()
        .position(|&b| b != b' ' && b != b'\t')
        .unwrap_or(bytes.len());
    &bytes[skip..]
}

/// What one `httparse` pass with a given number of header slots produced.
enum Attempt {
    Complete(RequestHead, usize),
    Partial,
    SlotsFull,
}

fn parse_with<'b>(
    rest: &'b [u8],
    slots: &mut [MaybeUninit<httparse::Header<'b>>],
    limits: &Limits,
) -> Result<Attempt, ParseError> {
    let mut req = httparse::Request::new(&mut []);
    match req.parse_with_uninit_headers(rest, slots) {
        Ok(httparse::Status::Complete(len)) => {
            Ok(Attempt::Complete(build(&req, rest, limits)?, len))
        }
        Ok(httparse::Status::Partial) => Ok(Attempt::Partial),
        Err(httparse::Error::TooManyHeaders) => Ok(Attempt::SlotsFull),
        Err(e) => Err(classify(rest, e)),
    }
}

/// Length of the run of empty lines (CRLF or bare LF) at the start of `buf`.
fn empty_line_prefix(buf: &[u8]) -> usize {
    let mut i = 0;
    loop {
        match buf.get(i..) {
            Some([b'\r', b'\n', ..]) => i += 2,
            Some([b'\n', ..]) => i += 1,
            _ => return i,
        }
    }
}

/// Enforce `limit_request_line` looking at no more than `limit + 2` bytes, so
/// an overlong line is refused before its end arrives.
fn check_request_line_length(rest: &[u8], limit: usize) -> Result<(), ParseError> {
    if limit == 0 {
        return Ok(());
    }
    let window = &rest[..rest.len().min(limit.saturating_add(2))];
    let too_long = match memchr(b'\n', window) {
        Some(lf) => line_len(&window[..lf]) > limit,
        None => window.len() >= limit.saturating_add(2),
    };
    if too_long {
        return Err(ParseError::RequestLineTooLong { limit });
    }
    Ok(())
}

/// Length of a line without its LF, not counting a trailing CR.
fn line_len(line: &[u8]) -> usize {
    line.len() - usize::from(line.last() == Some(&b'\r'))
}

/// Limits on an incomplete head: total size, and each complete or growing
/// header line, so an oversized head fails as soon as it is known to.
fn check_partial(buffered: usize, rest: &[u8], limits: &Limits) -> Result<(), ParseError> {
    let budget = limits.head_budget();
    if buffered > budget {
        return Err(ParseError::HeadTooLarge { limit: budget });
    }
    let Some(request_lf) = memchr(b'\n', rest) else {
        return Ok(());
    };
    check_field_lines(&rest[request_lf + 1..], limits)
}

/// `limit_request_fields` and `limit_request_field_size` over the field lines
/// of `section` as they arrived (complete ones, then a growing last one), up
/// to an empty line.
///
/// With `permit_obsolete_folding`, a continuation line belongs to the field
/// above it, as in Gunicorn: it is not another field, and its length, CRLF
/// included, adds to that field's. Lengths are those of the bytes sent, so
/// the switches' rewriting never lets a longer line through than the
/// incomplete head was held to.
fn check_field_lines(section: &[u8], limits: &Limits) -> Result<(), ParseError> {
    let fields = limits.max_fields();
    let folding = limits.leniency.obsolete_folding;
    let mut count = 0;
    // Bytes of the current field so far, each line's CRLF counted.
    let mut field = 0usize;
    let mut start = 0;
    let ends = memchr_iter(b'\n', section).map(Some).chain([None]);
    for lf in ends {
        let line = &section[start..lf.unwrap_or(section.len())];
        let len = line_len(line);
        if len == 0 && lf.is_some() {
            return Ok(());
        }
        let continues = folding && count > 0 && matches!(line.first(), Some(b' ' | b'\t'));
        if continues {
            field = field.saturating_add(len + 2);
        } else {
            field = len + 2;
            count += 1;
        }
        if limits.field_size != 0 && field > limits.field_size {
            return Err(ParseError::HeaderTooLarge {
                limit: limits.field_size,
            });
        }
        // A growing last line is not a field yet.
        if count > fields && lf.is_some() {
            return Err(ParseError::TooManyHeaders { limit: fields });
        }
        match lf {
            Some(lf) => start = lf + 1,
            None => break,
        }
    }
    Ok(())
}

/// `len` excludes the line's CRLF; Gunicorn counts it against the limit.
fn check_field_len(len: usize, limit: usize) -> Result<(), ParseError> {
    if limit != 0 && len.saturating_add(2) > limit {
        return Err(ParseError::HeaderTooLarge { limit });
    }
    Ok(())
}

/// Length of the header line `name: value` as it appeared in `rest` (the
/// buffer httparse read), trailing OWS included and the line end excluded:
/// the same bytes [`check_partial`] measured while the line was arriving, and
/// what Gunicorn counts.
fn field_line_len(h: &httparse::Header<'_>, rest: &[u8]) -> usize {
    // The name points into `rest`; so does a non-empty value, on the same
    // line. An empty value may point elsewhere: then the line goes on after
    // the colon.
    let base = rest.as_ptr() as usize;
    let start = (h.name.as_ptr() as usize).wrapping_sub(base);
    let value_end = (h.value.as_ptr() as usize + h.value.len()).wrapping_sub(base);
    let after = if !h.value.is_empty() && value_end <= rest.len() {
        value_end
    } else {
        start.saturating_add(h.name.len() + 1)
    };
    let Some(tail) = rest.get(after..) else {
        return h.name.len() + 1 + h.value.len();
    };
    let end = after + memchr2(b'\r', b'\n', tail).unwrap_or(tail.len());
    end.saturating_sub(start)
}

/// Turn a complete `httparse` result into an owned head, applying field size
/// limits and the framing and connection rules.
fn build(
    req: &httparse::Request<'_, '_>,
    rest: &[u8],
    limits: &Limits,
) -> Result<RequestHead, ParseError> {
    let (Some(method), Some(target), Some(minor)) = (req.method, req.path, req.version) else {
        return Err(ParseError::InvalidRequestLine(excerpt(rest)));
    };
    check_method(method, &limits.leniency)?;
    check_target(method, target)?;
    let version = if minor == 1 {
        Version::Http11
    } else {
        Version::Http10
    };

    let mut fields = FieldFacts::default();
    for h in req.headers.iter() {
        check_field_len(field_line_len(h, rest), limits.field_size)?;
        fields.observe(h.name, h.value)?;
    }

    let body = fields.body_kind(version)?;
    let upper;
    let method = if limits.leniency.casefold_method {
        upper = method.to_ascii_uppercase();
        upper.as_str()
    } else {
        method
    };
    let pairs = req.headers.iter().map(|h| (h.name, h.value));
    let mut head = RequestHead::new(method, target, version, pairs, body);
    head.keep_alive = match version {
        Version::Http11 => !fields.close,
        Version::Http10 => fields.keep_alive && !fields.close,
    };
    head.expect_continue = version == Version::Http11 && fields.expect_continue;
    Ok(head)
}

/// What the framing- and connection-relevant header fields said, gathered in
/// one pass over the fields.
#[derive(Default)]
struct FieldFacts {
    content_length: Option<u64>,
    /// A Host field was seen (RFC 9112 §3.2: more than one is a 400).
    host: bool,
    /// A Content-Type field was seen (a singleton, RFC 9110 §5.3; as Gunicorn).
    content_type: bool,
    /// Some transfer-encoding field was present, even an empty one.
    te_present: bool,
    /// `chunked` was the last coding seen so far.
    te_chunked_last: bool,
    /// A coding other than `chunked` appeared before it (the first such value).
    te_other: Option<String>,
    /// A coding followed `chunked`, or `chunked` repeated (the offending value).
    te_invalid: Option<String>,
    close: bool,
    keep_alive: bool,
    expect_continue: bool,
}

impl FieldFacts {
    fn observe(&mut self, name: &str, value: &[u8]) -> Result<(), ParseError> {
        // Dispatch on length first: most fields are none of these.
        match name.len() {
            14 if name.eq_ignore_ascii_case("content-length") => self.content_length(value),
            17 if name.eq_ignore_ascii_case("transfer-encoding") => {
                self.transfer_encoding(value);
                Ok(())
            }
            10 if name.eq_ignore_ascii_case("connection") => {
                for token in list_elements(value) {
                    self.close |= token.eq_ignore_ascii_case(b"close");
                    self.keep_alive |= token.eq_ignore_ascii_case(b"keep-alive");
                }
                Ok(())
            }
            4 if name.eq_ignore_ascii_case("host") => {
                singleton(&mut self.host, name)?;
                check_host(value)
            }
            12 if name.eq_ignore_ascii_case("content-type") => {
                singleton(&mut self.content_type, name)
            }
            6 if name.eq_ignore_ascii_case("expect") => {
                self.expect_continue |= value.eq_ignore_ascii_case(b"100-continue");
                Ok(())
            }
            _ => Ok(()),
        }
    }

    /// One plain decimal, in one field. RFC 9112 §6.3 rule 5 lets a server
    /// accept a repeated or listed identical value; like Gunicorn 24 we refuse
    /// both, since a proxy in front may have read them differently.
    fn content_length(&mut self, value: &[u8]) -> Result<(), ParseError> {
        if self.content_length.is_some() {
            return Err(ParseError::ConflictingLength(excerpt(value)));
        }
        let n =
            parse_decimal(value).ok_or_else(|| ParseError::InvalidContentLength(excerpt(value)))?;
        self.content_length = Some(n);
        Ok(())
    }

    /// Codings accumulate across repeated fields in order (RFC 9110 §5.3).
    fn transfer_encoding(&mut self, value: &[u8]) {
        self.te_present = true;
        for coding in list_elements(value) {
            if self.te_chunked_last {
                self.te_invalid.get_or_insert_with(|| excerpt(value));
            }
            self.te_chunked_last = coding.eq_ignore_ascii_case(b"chunked");
            if !self.te_chunked_last {
                self.te_other.get_or_insert_with(|| excerpt(coding));
            }
        }
    }

    fn body_kind(&self, version: Version) -> Result<BodyKind, ParseError> {
        if !self.te_present {
            return Ok(self
                .content_length
                .map_or(BodyKind::Empty, BodyKind::Length));
        }
        if version == Version::Http10 {
            return Err(ParseError::TransferEncodingInHttp10);
        }
        if self.content_length.is_some() {
            return Err(ParseError::LengthWithTransferEncoding);
        }
        if let Some(value) = &self.te_invalid {
            return Err(ParseError::InvalidTransferEncoding(value.clone()));
        }
        if !self.te_chunked_last {
            // Final coding is not chunked: length undeterminable, a MUST-400.
            let value = self.te_other.clone().unwrap_or_default();
            return Err(ParseError::InvalidTransferEncoding(value));
        }
        if let Some(coding) = &self.te_other {
            return Err(ParseError::UnsupportedTransferEncoding(coding.clone()));
        }
        Ok(BodyKind::Chunked)
    }
}

/// A field that may appear once: the second is a 400.
fn singleton(seen: &mut bool, name: &str) -> Result<(), ParseError> {
    if std::mem::replace(seen, true) {
        return Err(ParseError::RepeatedField(name.to_owned()));
    }
    Ok(())
}

/// Gunicorn 24's method rule (RFC 9110 §9.1 allows any token; IANA's
/// registered methods are 3 to 20 bytes with no lowercase or `#`), relaxed by
/// `permit_unconventional_http_method`. httparse already checked the token.
fn check_method(method: &str, leniency: &Leniency) -> Result<(), ParseError> {
    let conventional = (3..=20).contains(&method.len())
        && !method.bytes().any(|b| b.is_ascii_lowercase() || b == b'#');
    if conventional || leniency.unconventional_method {
        Ok(())
    } else {
        Err(ParseError::InvalidMethod(excerpt(method.as_bytes())))
    }
}

/// RFC 9112 §3.2: a Host field with an invalid value is a 400. The value is
/// `uri-host [ ":" port ]` (possibly empty, §3.2), so only the bytes of an
/// RFC 3986 authority without userinfo may appear. The port's digits are not
/// checked: a non-numeric port is replaced later, as Gunicorn does.
fn check_host(value: &[u8]) -> Result<(), ParseError> {
    if value.iter().all(|&b| is_host_byte(b)) {
        Ok(())
    } else {
        Err(ParseError::InvalidHost(excerpt(value)))
    }
}

/// A byte of RFC 3986 §3.2.2 `host` or `port`, or the `:` between them:
/// unreserved, `%` of pct-encoded, sub-delims, and `[` `]` `:` of an
/// IP-literal. Not `@` (no userinfo, RFC 9110 §4.2.4), `/`, `?`, `#`,
/// whitespace, controls or bytes beyond ASCII.
fn is_host_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric()
        || matches!(
            b,
            b'-' | b'.'
                | b'_'
                | b'~'
                | b'%'
                | b'!'
                | b'$'
                | b'&'
                | b'\''
                | b'('
                | b')'
                | b'*'
                | b'+'
                | b','
                | b';'
                | b'='
                | b':'
                | b'['
                | b']'
        )
}

/// Non-empty, OWS-trimmed elements of a comma-separated field value.
fn list_elements(value: &[u8]) -> impl Iterator<Item = &[u8]> {
    value
        .split(|&b| b == b',')
        .map(<[u8]>::trim_ascii)
        .filter(|e| !e.is_empty())
}

/// A non-empty run of ASCII digits that fits in `u64`; no sign, no spaces.
fn parse_decimal(digits: &[u8]) -> Option<u64> {
    if digits.is_empty() {
        return None;
    }
    digits.iter().try_fold(0u64, |n, &b| {
        let d = b.checked_sub(b'0').filter(|d| *d <= 9)?;
        n.checked_mul(10)?.checked_add(u64::from(d))
    })
}

/// RFC 9110 §5.6.2 `tchar`.
pub fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric()
        || matches!(
            b,
            b'!' | b'#'
                | b'$'
                | b'%'
                | b'&'
                | b'\''
                | b'*'
                | b'+'
                | b'-'
                | b'.'
                | b'^'
                | b'_'
                | b'`'
                | b'|'
                | b'~'
        )
}

/// The request-target must be in one of the four forms of RFC 9112 §3.2.
///
/// Bytes beyond ASCII are refused (RFC 3986 §2 has none; as Gunicorn 27), so
/// every target string is also its latin-1 decoding. Asterisk-form is only for
/// OPTIONS (§3.2.4). Authority-form is only for CONNECT, and CONNECT takes
/// only authority-form (§3.2.3; RFC 9110 §9.3.6: host and port, nothing else).
fn check_target(method: &str, target: &str) -> Result<(), ParseError> {
    let valid = target.is_ascii()
        && if method == "CONNECT" {
            is_authority_form(target)
        } else {
            target.starts_with('/')
                || (target == "*" && method == "OPTIONS")
                || after_scheme(target).is_some()
        };
    if valid {
        Ok(())
    } else {
        Err(ParseError::InvalidTarget(excerpt(target.as_bytes())))
    }
}

/// RFC 9112 §3.2.3 `authority-form = uri-host ":" port`, the port present
/// (RFC 9110 §9.3.6: a client MUST send it).
fn is_authority_form(target: &str) -> bool {
    let Some((host, port)) = target.rsplit_once(':') else {
        return false;
    };
    !host.is_empty()
        && host.bytes().all(is_host_byte)
        && !port.is_empty()
        && port.bytes().all(|b| b.is_ascii_digit())
}

/// For an absolute-form target `scheme://rest`, the `rest`.
fn after_scheme(target: &str) -> Option<&str> {
    let colon = memchr(b':', target.as_bytes())?;
    let (scheme, rest) = target.split_at(colon);
    let mut bytes = scheme.bytes();
    let first_alpha = bytes.next().is_some_and(|b| b.is_ascii_alphabetic());
    let scheme_ok =
        first_alpha && bytes.all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'));
    if !scheme_ok {
        return None;
    }
    rest.strip_prefix("://")
}

/// Turn an `httparse` error into a precise [`ParseError`]. Runs only on the
/// error path, so it can afford to re-scan.
fn classify(rest: &[u8], err: httparse::Error) -> ParseError {
    let request_lf = memchr(b'\n', rest);
    let line_ok = request_lf.is_some_and(|lf| {
        // With no bytes after the request line, httparse stops at Partial
        // unless the line itself is bad.
        httparse::Request::new(&mut []).parse(&rest[..=lf]).is_ok()
    });
    match (err, request_lf) {
        (
            httparse::Error::HeaderName | httparse::Error::HeaderValue | httparse::Error::NewLine,
            Some(lf),
        ) if line_ok => invalid_header(&rest[lf + 1..]),
        _ => classify_request_line(&rest[..request_lf.unwrap_or(rest.len())]),
    }
}

/// Find the first malformed line of a header section and quote it.
fn invalid_header(section: &[u8]) -> ParseError {
    let bad = section.split(|&b| b == b'\n').find(|line| {
        let line = &line[..line_len(line)];
        let Some(colon) = memchr(b':', line) else {
            return !line.is_empty();
        };
        let (name, value) = (&line[..colon], &line[colon + 1..]);
        name.is_empty()
            || !name.iter().all(|&b| is_token_byte(b))
            || value.iter().any(|&b| b != b'\t' && (b < b' ' || b == 0x7f))
    });
    ParseError::InvalidHeader(excerpt(bad.unwrap_or(section)))
}

/// Say which part of a rejected request line is wrong.
fn classify_request_line(line: &[u8]) -> ParseError {
    let line = &line[..line_len(line)];
    let mut parts = line.splitn(3, |&b| b == b' ');
    let method = parts.next().unwrap_or_default();
    if method.is_empty() || !method.iter().all(|&b| is_token_byte(b)) {
        return ParseError::InvalidMethod(excerpt(method));
    }
    let target = parts.next().unwrap_or_default();
    let target_bytes_ok =
        target.iter().all(|&b| b > b' ' && b != 0x7f) && std::str::from_utf8(target).is_ok();
    if !target_bytes_ok {
        return ParseError::InvalidTarget(excerpt(target));
    }
    if let Some(version) = parts.next()
        && let [b'H', b'T', b'T', b'P', b'/', major, b'.', minor] = version
        && major.is_ascii_digit()
        && minor.is_ascii_digit()
        && !matches!(version, b"HTTP/1.0" | b"HTTP/1.1")
    {
        return ParseError::UnsupportedVersion(excerpt(version));
    }
    ParseError::InvalidRequestLine(excerpt(line))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_default(buf: &[u8]) -> Result<Option<(RequestHead, usize)>, ParseError> {
        parse(buf, &Limits::default())
    }

    fn head(buf: &[u8]) -> RequestHead {
        match parse_default(buf) {
            Ok(Some((head, len))) => {
                assert_eq!(len, buf.len());
                head
            }
            other => panic!("expected a complete head, got {other:?}"),
        }
    }

    fn err(buf: &[u8]) -> ParseError {
        match parse_default(buf) {
            Err(e) => e,
            other => panic!("expected an error, got {other:?}"),
        }
    }

    #[test]
    fn simple_get_parses() {
        let h =
            head(b"GET /a/b?x=1&y=2 HTTP/1.1\r\nHost: example.com\r\nX-Thing:  v a l  \r\n\r\n");
        assert_eq!(h.method(), "GET");
        assert_eq!(h.target(), "/a/b?x=1&y=2");
        assert_eq!(h.path(), "/a/b");
        assert_eq!(h.query(), "x=1&y=2");
        assert_eq!(h.version, Version::Http11);
        assert_eq!(h.headers().len(), 2);
        assert_eq!(h.header("host"), Some(&b"example.com"[..]));
        assert_eq!(h.header("X-THING"), Some(&b"v a l"[..]));
        assert_eq!(h.headers().nth(1).unwrap().0, "X-Thing");
        assert_eq!(h.body, BodyKind::Empty);
        assert!(h.keep_alive);
        assert!(!h.expect_continue);
    }

    #[test]
    fn post_with_content_length_leaves_body_unconsumed() {
        let buf = b"POST /submit HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello";
        let (h, len) = parse_default(buf).unwrap().unwrap();
        assert_eq!(h.method(), "POST");
        assert_eq!(h.body, BodyKind::Length(5));
        assert_eq!(&buf[len..], b"hello");
    }

    #[test]
    fn pipelined_heads_parse_one_at_a_time() {
        let buf = b"GET /1 HTTP/1.1\r\n\r\nGET /2 HTTP/1.1\r\nHost: h\r\n\r\n";
        let (first, n) = parse_default(buf).unwrap().unwrap();
        assert_eq!(first.target(), "/1");
        let (second, m) = parse_default(&buf[n..]).unwrap().unwrap();
        assert_eq!(second.target(), "/2");
        assert_eq!(n + m, buf.len());
    }

    #[test]
    fn every_prefix_of_a_head_is_incomplete() {
        let buf = b"\r\nGET /x HTTP/1.1\r\nHost: h\r\nA: b\r\n\r\n";
        for cut in 0..buf.len() {
            assert_eq!(parse_default(&buf[..cut]), Ok(None), "cut at {cut}");
        }
        assert!(parse_default(buf).unwrap().is_some());
    }

    #[test]
    fn leading_empty_lines_are_skipped_and_counted() {
        let buf = b"\r\n\n\r\nGET / HTTP/1.1\r\n\r\n";
        let (h, len) = parse_default(buf).unwrap().unwrap();
        assert_eq!(h.target(), "/");
        assert_eq!(len, buf.len());
    }

    #[test]
    fn bare_lf_line_endings_are_accepted() {
        let h = head(b"GET / HTTP/1.1\nHost: h\n\n");
        assert_eq!(h.header("host"), Some(&b"h"[..]));
    }

    #[test]
    fn absolute_form_target_splits_path_and_query() {
        let h = head(b"GET http://h:8080/x/y?q=1#frag HTTP/1.1\r\n\r\n");
        assert_eq!(h.target(), "http://h:8080/x/y?q=1#frag");
        assert_eq!(h.path(), "/x/y");
        assert_eq!(h.query(), "q=1");
        let bare = head(b"GET https://h HTTP/1.1\r\n\r\n");
        assert_eq!(bare.path(), "");
        assert_eq!(bare.query(), "");
        let query_only = head(b"GET http://h?a HTTP/1.1\r\n\r\n");
        assert_eq!(query_only.path(), "");
        assert_eq!(query_only.query(), "a");
    }

    #[test]
    fn asterisk_and_authority_forms_are_accepted() {
        let star = head(b"OPTIONS * HTTP/1.1\r\n\r\n");
        assert_eq!(star.path(), "*");
        let connect = head(b"CONNECT example.com:443 HTTP/1.1\r\n\r\n");
        assert_eq!(connect.path(), "");
        assert_eq!(connect.query(), "");
    }

    #[test]
    fn fragment_ends_path_and_query() {
        let h = head(b"GET /p#f?notquery HTTP/1.1\r\n\r\n");
        assert_eq!(h.path(), "/p");
        assert_eq!(h.query(), "");
    }

    #[test]
    fn target_in_no_known_form_is_rejected() {
        assert!(matches!(
            err(b"GET foo HTTP/1.1\r\n\r\n"),
            ParseError::InvalidTarget(_)
        ));
        assert!(matches!(
            err(b"GET 1http://x/ HTTP/1.1\r\n\r\n"),
            ParseError::InvalidTarget(_)
        ));
    }

    #[test]
    fn bad_request_lines_are_classified() {
        assert!(matches!(
            err(b"G(T / HTTP/1.1\r\n\r\n"),
            ParseError::InvalidMethod(_)
        ));
        assert!(matches!(
            err(b" / HTTP/1.1\r\n\r\n"),
            ParseError::InvalidMethod(_)
        ));
        assert!(matches!(
            err(b"GET /\x01 HTTP/1.1\r\n\r\n"),
            ParseError::InvalidTarget(_)
        ));
        assert!(matches!(
            err(b"GET  / HTTP/1.1\r\n\r\n"),
            ParseError::InvalidRequestLine(_)
        ));
        assert!(matches!(
            err(b"GET / HTTP/1.1 x\r\n\r\n"),
            ParseError::InvalidRequestLine(_)
        ));
        assert!(matches!(
            err(b"GET / FOO/1.1\r\n\r\n"),
            ParseError::InvalidRequestLine(_)
        ));
        assert!(matches!(
            err(b"GET /\r\n\r\n"),
            ParseError::InvalidRequestLine(_)
        ));
    }

    #[test]
    fn other_http_versions_are_505() {
        for line in [
            &b"GET / HTTP/2.0\r\n\r\n"[..],
            b"GET / HTTP/3.1\r\n\r\n",
            b"GET / HTTP/0.9\r\n\r\n",
        ] {
            let e = err(line);
            assert!(matches!(e, ParseError::UnsupportedVersion(_)), "{e:?}");
            assert_eq!(e.status(), 505);
        }
    }

    #[test]
    fn bad_header_lines_are_rejected() {
        let cases: [&[u8]; 5] = [
            b"GET / HTTP/1.1\r\nBad Name: x\r\n\r\n",
            b"GET / HTTP/1.1\r\nNoColon\r\n\r\n",
            b"GET / HTTP/1.1\r\nA: b\x00c\r\n\r\n",
            b"GET / HTTP/1.1\r\nA: b\rc\r\n\r\n",
            b"GET / HTTP/1.1\r\nA: b\r\n folded\r\n\r\n",
        ];
        for case in cases {
            let e = err(case);
            assert!(
                matches!(e, ParseError::InvalidHeader(ref line) if !line.is_empty()),
                "{e:?}"
            );
        }
    }

    #[test]
    fn request_line_at_limit_is_accepted() {
        let limits = Limits {
            request_line: 16,
            ..Limits::default()
        };
        let buf = b"GET /23456789 HTTP/1.1\r\n\r\n";
        assert!(parse(buf, &limits).is_err());
        let buf = b"GET /2 HTTP/1.1\r\n\r\n"; // 15 bytes
        assert!(parse(buf, &limits).unwrap().is_some());
        let limits = Limits {
            request_line: 15,
            ..Limits::default()
        };
        assert!(parse(buf, &limits).unwrap().is_some());
        let limits = Limits {
            request_line: 14,
            ..Limits::default()
        };
        assert_eq!(
            parse(buf, &limits),
            Err(ParseError::RequestLineTooLong { limit: 14 })
        );
    }

    #[test]
    fn request_line_over_limit_is_414_before_line_end() {
        let limits = Limits {
            request_line: 20,
            ..Limits::default()
        };
        let mut buf = b"GET /".to_vec();
        buf.resize(21, b'a');
        assert_eq!(parse(&buf, &limits), Ok(None));
        buf.push(b'a');
        let e = parse(&buf, &limits).unwrap_err();
        assert_eq!(e, ParseError::RequestLineTooLong { limit: 20 });
        assert_eq!(e.status(), 414);
    }

    #[test]
    fn unlimited_request_line_is_bounded_by_head_budget() {
        let limits = Limits {
            request_line: 0,
            ..Limits::default()
        };
        let mut buf = b"GET /".to_vec();
        buf.resize(100_000, b'a');
        assert_eq!(parse(&buf, &limits), Ok(None));
        buf.resize(limits.head_budget() + 1, b'a');
        assert!(matches!(
            parse(&buf, &limits),
            Err(ParseError::HeadTooLarge { .. })
        ));
    }

    #[test]
    fn header_line_over_field_size_is_431() {
        let limits = Limits {
            field_size: 10,
            ..Limits::default()
        };
        // Gunicorn counts the CRLF: 8 bytes of line fit in a limit of 10.
        assert!(
            parse(b"GET / HTTP/1.1\r\nA: 34567\r\n\r\n", &limits)
                .unwrap()
                .is_some()
        );
        let e = parse(b"GET / HTTP/1.1\r\nA: 345678\r\n\r\n", &limits).unwrap_err();
        assert_eq!(e, ParseError::HeaderTooLarge { limit: 10 });
        assert_eq!(e.status(), 431);
        // Still incomplete, but already known to be too long.
        let e = parse(b"GET / HTTP/1.1\r\nA: 345678", &limits).unwrap_err();
        assert_eq!(e, ParseError::HeaderTooLarge { limit: 10 });
        assert_eq!(parse(b"GET / HTTP/1.1\r\nA: 34567\r", &limits), Ok(None));
        // A complete earlier line over the limit fails while the head is incomplete.
        let e = parse(b"GET / HTTP/1.1\r\nA: 345678\r\nB: 1", &limits).unwrap_err();
        assert_eq!(e, ParseError::HeaderTooLarge { limit: 10 });
        // Trailing whitespace counts, whole or in pieces (found by the `head`
        // fuzz target: the complete line was measured without it).
        let padded = b"GET / HTTP/1.1\r\nA: 3456 \t\r\n\r\n";
        assert_eq!(
            parse(padded, &limits),
            Err(ParseError::HeaderTooLarge { limit: 10 })
        );
        let fits = b"GET / HTTP/1.1\r\nA: 3456\t\r\nB:\r\n\r\n";
        assert!(parse(fits, &limits).unwrap().is_some());
        for end in 1..fits.len() {
            assert_eq!(parse(&fits[..end], &limits), Ok(None), "{end}");
        }
    }

    #[test]
    fn too_many_headers_is_431() {
        let limits = Limits {
            fields: 3,
            ..Limits::default()
        };
        let ok = b"GET / HTTP/1.1\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n";
        assert!(parse(ok, &limits).unwrap().is_some());
        let four = b"GET / HTTP/1.1\r\nA: 1\r\nB: 2\r\nC: 3\r\nD: 4\r\n\r\n";
        let e = parse(four, &limits).unwrap_err();
        assert_eq!(e, ParseError::TooManyHeaders { limit: 3 });
        assert_eq!(e.status(), 431);
        let partial = b"GET / HTTP/1.1\r\nA: 1\r\nB: 2\r\nC: 3\r\nD: 4\r\n";
        assert_eq!(
            parse(partial, &limits),
            Err(ParseError::TooManyHeaders { limit: 3 })
        );
    }

    #[test]
    fn more_than_stack_headers_grow_to_the_limit() {
        let mut buf = b"GET / HTTP/1.1\r\n".to_vec();
        for i in 0..250 {
            buf.extend_from_slice(format!("X-{i}: {i}\r\n").as_bytes());
        }
        buf.extend_from_slice(b"\r\n");
        let limits = Limits {
            fields: 250,
            ..Limits::default()
        };
        let (h, _) = parse(&buf, &limits).unwrap().unwrap();
        assert_eq!(h.headers().len(), 250);
        assert_eq!(h.header("x-249"), Some(&b"249"[..]));
        let limits = Limits {
            fields: 249,
            ..Limits::default()
        };
        assert_eq!(
            parse(&buf, &limits),
            Err(ParseError::TooManyHeaders { limit: 249 })
        );
        let limits = Limits {
            fields: 0,
            ..Limits::default()
        };
        assert!(parse(&buf, &limits).unwrap().is_some());
    }

    #[test]
    fn incomplete_head_is_bounded() {
        let limits = Limits {
            request_line: 100,
            fields: 2,
            field_size: 20,
            leniency: Leniency::default(),
        };
        let budget = limits.head_budget();
        assert_eq!(budget, 100 + 2 + 2 * 22 + 2);
        let mut buf = b"\r\n".repeat(budget / 2);
        assert_eq!(parse(&buf, &limits), Ok(None));
        buf.extend_from_slice(b"\r\n");
        assert_eq!(
            parse(&buf, &limits),
            Err(ParseError::HeadTooLarge { limit: budget })
        );
    }

    #[test]
    fn default_limits_match_gunicorn() {
        let l = Limits::default();
        assert_eq!((l.request_line, l.fields, l.field_size), (4094, 100, 8190));
        assert_eq!(Limits { fields: 0, ..l }.max_fields(), MAX_HEADERS);
        assert!(
            Limits {
                field_size: 0,
                fields: 0,
                request_line: 0,
                leniency: Leniency::default(),
            }
            .head_budget()
                <= UNLIMITED_HEAD_CAP
        );
    }

    #[test]
    fn content_length_with_transfer_encoding_is_rejected() {
        let e = err(b"POST / HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n");
        assert_eq!(e, ParseError::LengthWithTransferEncoding);
        let e = err(b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n");
        assert_eq!(e, ParseError::LengthWithTransferEncoding);
    }

    #[test]
    fn chunked_transfer_encoding_is_case_insensitive() {
        let h = head(b"POST / HTTP/1.1\r\nTransfer-Encoding: ChUnKeD\r\n\r\n");
        assert_eq!(h.body, BodyKind::Chunked);
    }

    #[test]
    fn transfer_encoding_rules() {
        let e = err(b"POST / HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n");
        assert!(matches!(e, ParseError::UnsupportedTransferEncoding(_)));
        assert_eq!(e.status(), 501);
        let e = err(
            b"POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n",
        );
        assert!(matches!(e, ParseError::UnsupportedTransferEncoding(_)));
        for bad in [
            &b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked, gzip\r\n\r\n"[..],
            b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked, chunked\r\n\r\n",
            b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
            b"POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n",
            b"POST / HTTP/1.1\r\nTransfer-Encoding:\r\n\r\n",
        ] {
            let e = err(bad);
            assert!(matches!(e, ParseError::InvalidTransferEncoding(_)), "{e:?}");
            assert_eq!(e.status(), 400);
        }
    }

    #[test]
    fn transfer_encoding_on_http10_is_rejected() {
        let e = err(b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n");
        assert_eq!(e, ParseError::TransferEncodingInHttp10);
    }

    #[test]
    fn content_length_rules() {
        assert_eq!(
            head(b"POST / HTTP/1.1\r\nContent-Length: 0\r\n\r\n").body,
            BodyKind::Length(0)
        );
        // Identical repeats and lists are refused too (Gunicorn 24; RFC 9112
        // §6.3 rule 5 only permits accepting them).
        for same in [
            &b"POST / HTTP/1.1\r\nContent-Length: 7\r\ncontent-length: 7\r\n\r\n"[..],
            b"POST / HTTP/1.1\r\nContent-Length: 7, 7\r\n\r\n",
        ] {
            assert!(parse_default(same).is_err(), "{same:?}");
        }
        let max = b"POST / HTTP/1.1\r\nContent-Length: 18446744073709551615\r\n\r\n";
        assert_eq!(head(max).body, BodyKind::Length(u64::MAX));
        for bad in [
            &b"+5"[..],
            b"-1",
            b"5 5",
            b"0x5",
            b"",
            b"5,",
            b"18446744073709551616",
            b"\xff",
        ] {
            let mut buf = b"POST / HTTP/1.1\r\nContent-Length: ".to_vec();
            buf.extend_from_slice(bad);
            buf.extend_from_slice(b"\r\n\r\n");
            assert!(
                matches!(err(&buf), ParseError::InvalidContentLength(_)),
                "{bad:?}"
            );
        }
        let e = err(b"POST / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n");
        assert!(matches!(e, ParseError::ConflictingLength(_)));
        let e = err(b"POST / HTTP/1.1\r\nContent-Length: 5, 6\r\n\r\n");
        assert!(matches!(e, ParseError::InvalidContentLength(_)));
    }

    #[test]
    fn keep_alive_matrix() {
        let cases: [(&[u8], bool); 9] = [
            (b"GET / HTTP/1.1\r\n\r\n", true),
            (b"GET / HTTP/1.1\r\nConnection: close\r\n\r\n", false),
            (
                b"GET / HTTP/1.1\r\nConnection: Upgrade, CLOSE\r\n\r\n",
                false,
            ),
            (b"GET / HTTP/1.1\r\nConnection: keep-alive\r\n\r\n", true),
            (b"GET / HTTP/1.0\r\n\r\n", false),
            (b"GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n", true),
            (
                b"GET / HTTP/1.0\r\nConnection: foo\r\nConnection: keep-alive\r\n\r\n",
                true,
            ),
            (
                b"GET / HTTP/1.0\r\nConnection: keep-alive, close\r\n\r\n",
                false,
            ),
            (b"GET / HTTP/1.0\r\nConnection: close\r\n\r\n", false),
        ];
        for (buf, expected) in cases {
            assert_eq!(
                head(buf).keep_alive,
                expected,
                "{}",
                String::from_utf8_lossy(buf)
            );
        }
    }

    #[test]
    fn expect_continue_only_on_http11() {
        let h = head(b"POST / HTTP/1.1\r\nExpect: 100-Continue\r\nContent-Length: 1\r\n\r\n");
        assert!(h.expect_continue);
        let h = head(b"POST / HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\n");
        assert!(!h.expect_continue);
        let h = head(b"POST / HTTP/1.1\r\nExpect: something\r\n\r\n");
        assert!(!h.expect_continue);
    }

    #[test]
    fn version_strings() {
        assert_eq!(Version::Http10.as_str(), "HTTP/1.0");
        assert_eq!(Version::Http11.as_str(), "HTTP/1.1");
        assert_eq!(head(b"GET / HTTP/1.0\r\n\r\n").version, Version::Http10);
    }

    #[test]
    fn later_http1_minor_versions_are_served_as_http11() {
        let req = b"GET /x HTTP/1.2\r\nHost: a\r\n\r\n";
        let (h, used) = parse(req, &Limits::default()).unwrap().unwrap();
        assert_eq!(h.version, Version::Http11);
        assert_eq!(h.target(), "/x");
        assert_eq!(used, req.len());
        for end in 1..req.len() {
            assert_eq!(parse(&req[..end], &Limits::default()), Ok(None), "{end}");
        }
        assert!(matches!(
            parse(b"GET / HTTP/2.0\r\n\r\n", &Limits::default()),
            Err(ParseError::UnsupportedVersion(_))
        ));
    }

    fn lenient(leniency: Leniency) -> Limits {
        Limits {
            leniency,
            ..Limits::default()
        }
    }

    #[test]
    fn unconventional_versions_are_served_when_permitted() {
        let limits = lenient(Leniency {
            unconventional_version: true,
            ..Leniency::default()
        });
        for (line, version) in [
            (&b"GET / HTTP/0.9\r\nHost: a\r\n\r\n"[..], Version::Http10),
            (b"GET / HTTP/0.0\r\n\r\n", Version::Http10),
            (b"GET / HTTP/2.0\r\n\r\n", Version::Http11),
            (b"GET / HTTP/9.9\r\n\r\n", Version::Http11),
            (b"GET / HTTP/1.5\r\n\r\n", Version::Http11),
        ] {
            let (h, used) = parse(line, &limits).unwrap().unwrap();
            assert_eq!((h.version, used), (version, line.len()), "{line:?}");
        }
        // Still one digit each, as Gunicorn's VERSION_RE; still "HTTP".
        for bad in [
            &b"GET / HTTP/10.0\r\n\r\n"[..],
            b"GET / HTTP/2.10\r\n\r\n",
            b"GET / http/2.0\r\n\r\n",
            b"GET / HTTP/2\r\n\r\n",
        ] {
            assert!(parse(bad, &limits).is_err(), "{bad:?}");
        }
        let req = b"GET /x HTTP/2.0\r\nHost: a\r\n\r\n";
        for end in 1..req.len() {
            assert_eq!(parse(&req[..end], &limits), Ok(None), "{end}");
        }
    }

    #[test]
    fn space_before_colon_is_stripped_when_permitted() {
        let req = b"GET / HTTP/1.1\r\nHost : a\r\nX-A\t \t: b\r\n\r\nNEXT";
        assert!(matches!(
            err(&req[..req.len() - 4]),
            ParseError::InvalidHeader(_)
        ));
        let limits = lenient(Leniency {
            strip_header_spaces: true,
            ..Leniency::default()
        });
        let (h, used) = parse(req, &limits).unwrap().unwrap();
        assert_eq!(used, req.len() - 4);
        assert_eq!(h.headers().next().unwrap(), ("Host", &b"a"[..]));
        assert_eq!(h.header("x-a"), Some(&b"b"[..]));
        // Partial heads wait, and the rest of the rules still hold.
        for end in 1..used {
            assert_eq!(parse(&req[..end], &limits), Ok(None), "{end}");
        }
        let twice = b"GET / HTTP/1.1\r\nHost : a\r\nHost: b\r\n\r\n";
        assert!(matches!(
            parse(twice, &limits),
            Err(ParseError::RepeatedField(_))
        ));
        let nul = b"GET / HTTP/1.1\r\nA : b\x00\r\n\r\n";
        assert!(matches!(
            parse(nul, &limits),
            Err(ParseError::InvalidHeader(_))
        ));
        let folded = b"GET / HTTP/1.1\r\nA : b\r\n c\r\n\r\n";
        assert!(matches!(
            parse(folded, &limits),
            Err(ParseError::InvalidHeader(_))
        ));
    }

    #[test]
    fn obsolete_folding_is_joined_when_permitted() {
        let req = b"POST / HTTP/1.1\r\nX-Long: a  \r\n  b\r\n\tc \r\nContent-Length: 2\r\n\r\nhi";
        assert!(matches!(
            err(&req[..req.len() - 2]),
            ParseError::InvalidHeader(_)
        ));
        let limits = lenient(Leniency {
            obsolete_folding: true,
            ..Leniency::default()
        });
        let (h, used) = parse(req, &limits).unwrap().unwrap();
        assert_eq!(&req[used..], b"hi");
        assert_eq!(h.header("x-long"), Some(&b"a b c"[..]));
        assert_eq!(h.body, BodyKind::Length(2));
        assert_eq!(h.headers().len(), 2);
        // Bare LF heads fold the same way.
        let lf = b"GET / HTTP/1.1\nA: 1\n 2\n\n";
        let (h, used) = parse(lf, &limits).unwrap().unwrap();
        assert_eq!((h.header("a"), used), (Some(&b"1 2"[..]), lf.len()));
        // A first field line cannot continue anything (RFC 9112 §2.2).
        let first = b"GET / HTTP/1.1\r\n A: 1\r\n\r\n";
        assert!(matches!(
            parse(first, &limits),
            Err(ParseError::InvalidHeader(_))
        ));
        // A folded framing field is still checked after joining.
        let cl = b"POST / HTTP/1.1\r\nContent-Length: 1\r\n 2\r\n\r\n";
        assert!(matches!(
            parse(cl, &limits),
            Err(ParseError::InvalidContentLength(_))
        ));
        // Whitespace before a colon stays refused without its own switch.
        let spaced = b"GET / HTTP/1.1\r\nA : 1\r\n 2\r\n\r\n";
        assert!(matches!(
            parse(spaced, &limits),
            Err(ParseError::InvalidHeader(_))
        ));
        let both = lenient(Leniency {
            obsolete_folding: true,
            strip_header_spaces: true,
            ..Leniency::default()
        });
        let (h, _) = parse(spaced, &both).unwrap().unwrap();
        assert_eq!(h.header("a"), Some(&b"1 2"[..]));
    }

    #[test]
    fn lenient_slow_path_is_bounded() {
        let limits = Limits {
            field_size: 20,
            leniency: Leniency {
                obsolete_folding: true,
                strip_header_spaces: true,
                ..Leniency::default()
            },
            ..Limits::default()
        };
        let mut req = b"GET / HTTP/1.1\r\nA : b\r\n".to_vec();
        assert_eq!(parse(&req, &limits), Ok(None));
        req.extend_from_slice(&[b'x'; 40]);
        assert_eq!(
            parse(&req, &limits),
            Err(ParseError::HeaderTooLarge { limit: 20 })
        );
        // Folded lines count joined against the field size.
        let folded = b"GET / HTTP/1.1\r\nA: 0123456789\r\n 0123456789\r\n\r\n";
        assert_eq!(
            parse(folded, &limits),
            Err(ParseError::HeaderTooLarge { limit: 20 })
        );
    }

    #[test]
    fn host_value_must_be_an_authority() {
        for ok in [
            &b""[..],
            b"example.com",
            b"example.com:8080",
            b"[::1]:80",
            b"xn--bcher-kva.example",
            b"a:xyz",
            b"under_score.example",
        ] {
            let mut req = b"GET / HTTP/1.1\r\nHost: ".to_vec();
            req.extend_from_slice(ok);
            req.extend_from_slice(b"\r\n\r\n");
            assert_eq!(head(&req).header("host"), Some(ok), "{ok:?}");
        }
        for bad in [
            &b"a b"[..],
            b"user@example.com",
            b"example.com/path",
            b"example.com?q",
            b"exa\"mple",
            b"caf\xc3\xa9.example",
            b"a\tb",
        ] {
            let mut req = b"GET / HTTP/1.1\r\nHost: ".to_vec();
            req.extend_from_slice(bad);
            req.extend_from_slice(b"\r\n\r\n");
            let e = err(&req);
            assert!(matches!(e, ParseError::InvalidHost(_)), "{bad:?}: {e:?}");
            assert_eq!(e.status(), 400);
        }
    }

    #[test]
    fn connect_takes_only_authority_form() {
        let h = head(b"CONNECT [::1]:443 HTTP/1.1\r\n\r\n");
        assert_eq!(h.target(), "[::1]:443");
        for bad in [
            &b"CONNECT /x HTTP/1.1\r\n\r\n"[..],
            b"CONNECT http://h:443/ HTTP/1.1\r\n\r\n",
            b"CONNECT example.com HTTP/1.1\r\n\r\n",
            b"CONNECT example.com: HTTP/1.1\r\n\r\n",
            b"CONNECT :443 HTTP/1.1\r\n\r\n",
            b"CONNECT u@example.com:443 HTTP/1.1\r\n\r\n",
            b"CONNECT * HTTP/1.1\r\n\r\n",
            b"GET example.com:443 HTTP/1.1\r\n\r\n",
        ] {
            assert!(matches!(err(bad), ParseError::InvalidTarget(_)), "{bad:?}");
        }
    }

    #[test]
    fn unsupported_version_waits_for_its_line_end() {
        // Sent a byte at a time, `HTTP/2.0` must still end as a 505.
        let req = b"GET / HTTP/2.0\r\n\r\n";
        let lf = req.iter().position(|&b| b == b'\n').unwrap();
        for end in 1..=lf {
            assert_eq!(parse_default(&req[..end]), Ok(None), "{end}");
        }
        assert_eq!(err(req).status(), 505);
        // A line that can no longer end in a version is refused at once.
        assert!(parse_default(b"GET / HTTP/2x").is_err());
        assert!(parse_default(b"GET / HTTP/2.0x").is_err());
    }

    // Found by the `head` fuzz target: the incomplete head was held to
    // per-line counts the complete, folded one was not.
    #[test]
    fn folded_and_stripped_heads_meet_limits_the_same_in_pieces() {
        let limits = Limits {
            fields: 2,
            field_size: 24,
            leniency: Leniency {
                obsolete_folding: true,
                strip_header_spaces: true,
                ..Leniency::default()
            },
            ..Limits::default()
        };
        // Two fields, one of them folded over three lines: within the limits.
        let req = b"GET / HTTP/1.1\r\nHost: a\r\nX-A: 1\r\n\t2\r\n 3\r\n\r\n";
        let (h, used) = parse(req, &limits).unwrap().unwrap();
        assert_eq!((h.header("x-a"), used), (Some(&b"1 2 3"[..]), req.len()));
        for end in 1..used {
            assert_eq!(parse(&req[..end], &limits), Ok(None), "{end}");
        }
        // Stripped spaces still count: the line as sent is 28 bytes.
        let spaced = b"GET / HTTP/1.1\r\nX-A                    : 1\r\n\r\n";
        assert_eq!(
            parse(spaced, &limits),
            Err(ParseError::HeaderTooLarge { limit: 24 })
        );
        // A third field is one too many, folded or not.
        let three = b"GET / HTTP/1.1\r\nA: 1\r\n 2\r\nB: 3\r\nC: 4\r\n\r\n";
        assert_eq!(
            parse(three, &limits),
            Err(ParseError::TooManyHeaders { limit: 2 })
        );
    }
}
