//! Request body decoding: Content-Length (RFC 9112 §6.2) and chunked transfer
//! coding (RFC 9112 §7.1), as one incremental, zero-copy state machine.
//!
//! The decoder owns no buffer. The worker hands it whatever bytes it has; it
//! returns how many it used and the payload as a sub-slice of that input, and
//! remembers where it stopped, so any split of the stream decodes the same. It
//! never reads past the end of the body: pipelined bytes stay with the caller.
//! It does not read sockets or know about WSGI.
//!
//! Chunked framing is strict where leniency enables request smuggling: every
//! line in chunked framing (size line, after data, trailer lines, final line)
//! must end in CRLF; a bare LF is [`ParseError::InvalidChunk`] or
//! [`ParseError::InvalidTrailer`]. Chunk extensions are skipped but bounded by
//! [`SIZE_LINE_LIMIT`]; trailer fields are checked for shape, then discarded,
//! bounded by [`TRAILER_LIMIT`].

use memchr::memchr2;

use crate::http::error::ParseError;
use crate::http::head::{BodyKind, is_token_byte};

/// Longest chunk-size line, extensions included, CRLF excluded.
pub const SIZE_LINE_LIMIT: usize = 4096;
/// Most bytes the whole trailer section may take, CRLFs included: twice
/// gunicorn's default `limit_request_field_size`, room for a few checksums.
pub const TRAILER_LIMIT: usize = 16 * 1024;

/// Where the decoder is in the body. Chunked states are flat so one `match`
/// drives everything.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// Content-Length body with this many bytes still to come (never 0).
    Length { remaining: u64 },
    /// In the chunk-size hex digits; `line` counts size-line bytes so far.
    Size {
        size: u64,
        has_digits: bool,
        line: usize,
    },
    /// Whitespace after the size, before `;` or CR.
    SizeWs { size: u64, line: usize },
    /// Skipping chunk extensions up to CR.
    Extension { size: u64, line: usize },
    /// Saw the CR ending the size line.
    SizeLf { size: u64 },
    /// Inside chunk data (never 0 remaining).
    Data { remaining: u64 },
    /// Chunk data done, CRLF expected.
    DataCr,
    /// Saw the CR after chunk data.
    DataLf,
    /// At the start of a trailer field line or of the final CRLF.
    TrailerStart { total: usize },
    /// In a trailer field name; its first bytes, lowercased, to refuse the
    /// fields a trailer must not carry (see [`forbidden_in_trailer`]).
    TrailerName { total: usize, name: NamePrefix },
    /// In a trailer field value, up to CR.
    TrailerValue { total: usize },
    /// Saw the CR ending a trailer field line.
    TrailerLf { total: usize },
    /// Saw the CR of the final empty line.
    EndLf,
    /// The body is complete.
    Done,
}

/// Incremental request body decoder for one message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decoder {
    state: State,
}

/// The result of one [`Decoder::decode`] call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Decoded<'a> {
    /// Input bytes used, payload and framing together.
    pub consumed: usize,
    /// Payload bytes: a sub-slice of the input, possibly empty.
    pub data: &'a [u8],
}

impl Decoder {
    /// A decoder for a body framed as `kind`. `Empty` and `Length(0)` start done.
    pub fn new(kind: BodyKind) -> Self {
        let state = match kind {
            BodyKind::Empty | BodyKind::Length(0) => State::Done,
            BodyKind::Length(remaining) => State::Length { remaining },
            BodyKind::Chunked => State::Size {
                size: 0,
                has_digits: false,
                line: 0,
            },
        };
        Decoder { state }
    }

    /// Consume framing and payload from the start of `input`.
    ///
    /// Returns the payload found as one contiguous sub-slice of `input` and how
    /// many bytes were used. Framing after that payload is consumed in the same
    /// call as far as it goes, so a body that is fully buffered finishes in one
    /// call. Call again with `input[consumed..]` until [`Decoder::is_done`] or
    /// `consumed == 0` (more bytes needed). Once done, nothing more is consumed.
    ///
    /// # Errors
    ///
    /// [`ParseError::InvalidChunk`], [`ParseError::InvalidTrailer`] or
    /// [`ParseError::TrailerTooLarge`] for malformed chunked framing. The decoder
    /// should not be used after an error; the connection is out of sync.
    pub fn decode<'a>(&mut self, input: &'a [u8]) -> Result<Decoded<'a>, ParseError> {
        match self.state {
            State::Done => Ok(Decoded {
                consumed: 0,
                data: &[],
            }),
            State::Length { remaining } => {
                let n = take(remaining, input.len());
                // `take` never exceeds `remaining`, so this cannot underflow.
                let left = remaining - n as u64;
                self.state = if left == 0 {
                    State::Done
                } else {
                    State::Length { remaining: left }
                };
                Ok(Decoded {
                    consumed: n,
                    data: &input[..n],
                })
            }
            _ => self.decode_chunked(input),
        }
    }

    /// True once the whole body (and for chunked, the trailer section) has been
    /// consumed.
    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// Payload bytes still expected, when known: `Some(n)` for a Content-Length
    /// body, `Some(0)` when done, `None` inside a chunked body.
    pub fn remaining_hint(&self) -> Option<u64> {
        match self.state {
            State::Length { remaining } => Some(remaining),
            State::Done => Some(0),
            _ => None,
        }
    }

    fn decode_chunked<'a>(&mut self, input: &'a [u8]) -> Result<Decoded<'a>, ParseError> {
        let mut pos = 0;
        let mut data: &'a [u8] = &[];
        while pos < input.len() && self.state != State::Done {
            match self.state {
                State::Data { remaining } => {
                    // One contiguous payload slice per call.
                    if !data.is_empty() {
                        break;
                    }
                    let n = take(remaining, input.len() - pos);
                    data = &input[pos..pos + n];
                    pos += n;
                    let left = remaining - n as u64;
                    self.state = if left == 0 {
                        State::DataCr
                    } else {
                        State::Data { remaining: left }
                    };
                }
                // The two states that can span many bytes skip ahead with memchr.
                State::Extension { size, line } => {
                    let (used, state) = skip_extension(size, line, &input[pos..])?;
                    pos += used;
                    self.state = state;
                }
                State::TrailerValue { total } => {
                    let (used, state) = skip_trailer_value(total, &input[pos..])?;
                    pos += used;
                    self.state = state;
                }
                state => {
                    self.state = step(state, input[pos])?;
                    pos += 1;
                }
            }
        }
        Ok(Decoded {
            consumed: pos,
            data,
        })
    }
}

/// How many of `available` bytes a body with `remaining` bytes left may take.
fn take(remaining: u64, available: usize) -> usize {
    // If `remaining` does not fit in usize it is larger than `available`.
    usize::try_from(remaining).map_or(available, |r| r.min(available))
}

/// The first bytes of a trailer field name, lowercased: enough to recognise
/// every field [`forbidden_in_trailer`] names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct NamePrefix {
    bytes: [u8; 20],
    len: u8,
}

impl NamePrefix {
    fn start(b: u8) -> NamePrefix {
        let mut n = NamePrefix {
            bytes: [0; 20],
            len: 0,
        };
        n.push(b);
        n
    }

    /// Add a byte; past the buffer the name is marked too long to match.
    fn push(&mut self, b: u8) {
        match self.bytes.get_mut(usize::from(self.len)) {
            Some(slot) => {
                *slot = b.to_ascii_lowercase();
                self.len += 1;
            }
            None => self.len = u8::MAX,
        }
    }

    fn as_bytes(&self) -> &[u8] {
        self.bytes.get(..usize::from(self.len)).unwrap_or_default()
    }
}

/// RFC 9110 §6.5.1: fields that change framing, routing or authentication
/// must not arrive in a trailer, where a proxy may not have seen them.
fn forbidden_in_trailer(name: &[u8]) -> bool {
    const FORBIDDEN: [&[u8]; 6] = [
        b"content-length",
        b"transfer-encoding",
        b"host",
        b"trailer",
        b"authorization",
        b"te",
    ];
    FORBIDDEN.contains(&name)
}

/// Advance the single-byte states of chunked framing by one byte.
fn step(state: State, b: u8) -> Result<State, ParseError> {
    let next = match state {
        State::Size {
            size,
            has_digits,
            line,
        } => size_byte(size, has_digits, size_line_byte(line, b)?, b)?,
        // RFC 9112 §7.1.1: whitespace after the size only before an extension.
        State::SizeWs { size, line } => {
            let line = size_line_byte(line, b)?;
            match b {
                b' ' | b'\t' => State::SizeWs { size, line },
                b';' => State::Extension { size, line },
                _ => return Err(ParseError::InvalidChunk("whitespace after chunk size")),
            }
        }
        State::SizeLf { size } => match b {
            b'\n' if size == 0 => State::TrailerStart { total: 0 },
            b'\n' => State::Data { remaining: size },
            _ => {
                return Err(ParseError::InvalidChunk(
                    "chunk size line not ended by crlf",
                ));
            }
        },
        State::DataCr if b == b'\r' => State::DataLf,
        State::DataLf if b == b'\n' => State::Size {
            size: 0,
            has_digits: false,
            line: 0,
        },
        State::DataCr | State::DataLf => {
            return Err(ParseError::InvalidChunk("chunk data not followed by crlf"));
        }
        State::TrailerStart { .. } | State::TrailerName { .. } | State::TrailerLf { .. } => {
            trailer_byte(state, b)?
        }
        State::EndLf if b == b'\n' => State::Done,
        State::EndLf => return Err(ParseError::InvalidChunk("last chunk not followed by crlf")),
        // Handled by the caller without stepping; kept total for `match`.
        State::Length { .. }
        | State::Data { .. }
        | State::Extension { .. }
        | State::TrailerValue { .. }
        | State::Done => state,
    };
    Ok(next)
}

/// One byte of the chunk-size digits (`line` already counts it).
fn size_byte(size: u64, has_digits: bool, line: usize, b: u8) -> Result<State, ParseError> {
    Ok(match (hex_value(b), b) {
        (Some(v), _) => {
            if size > u64::MAX >> 4 {
                return Err(ParseError::InvalidChunk("chunk size overflows 64 bits"));
            }
            State::Size {
                size: size << 4 | v,
                has_digits: true,
                line,
            }
        }
        _ if !has_digits => return Err(ParseError::InvalidChunk("missing chunk size")),
        (None, b' ' | b'\t') => State::SizeWs { size, line },
        (None, b';') => State::Extension { size, line },
        (None, b'\r') => State::SizeLf { size },
        _ => return Err(ParseError::InvalidChunk("invalid byte in chunk size")),
    })
}

/// One byte of the trailer section outside a field value.
fn trailer_byte(state: State, b: u8) -> Result<State, ParseError> {
    Ok(match state {
        State::TrailerStart { total } => match b {
            b'\r' => State::EndLf,
            _ if is_token_byte(b) => State::TrailerName {
                total: trailer_total(total, 1)?,
                name: NamePrefix::start(b),
            },
            _ => return Err(ParseError::InvalidTrailer),
        },
        State::TrailerName { total, mut name } => {
            let total = trailer_total(total, 1)?;
            match b {
                b':' if forbidden_in_trailer(name.as_bytes()) => {
                    return Err(ParseError::ForbiddenTrailer(
                        String::from_utf8_lossy(name.as_bytes()).into_owned(),
                    ));
                }
                b':' => State::TrailerValue { total },
                _ if is_token_byte(b) => {
                    name.push(b);
                    State::TrailerName { total, name }
                }
                _ => return Err(ParseError::InvalidTrailer),
            }
        }
        State::TrailerLf { total } if b == b'\n' => State::TrailerStart {
            total: trailer_total(total, 1)?,
        },
        _ => return Err(ParseError::InvalidTrailer),
    })
}

fn hex_value(b: u8) -> Option<u64> {
    match b {
        b'0'..=b'9' => Some(u64::from(b - b'0')),
        b'a'..=b'f' => Some(u64::from(b - b'a' + 10)),
        b'A'..=b'F' => Some(u64::from(b - b'A' + 10)),
        _ => None,
    }
}

/// Count one more size-line byte; the CR ending the line does not count.
fn size_line_byte(line: usize, b: u8) -> Result<usize, ParseError> {
    if b == b'\r' {
        Ok(line)
    } else {
        size_line(line + 1)
    }
}

fn size_line(len: usize) -> Result<usize, ParseError> {
    if len > SIZE_LINE_LIMIT {
        return Err(ParseError::InvalidChunk("chunk size line too long"));
    }
    Ok(len)
}

fn trailer_total(total: usize, more: usize) -> Result<usize, ParseError> {
    let total = total.saturating_add(more);
    if total > TRAILER_LIMIT {
        return Err(ParseError::TrailerTooLarge {
            limit: TRAILER_LIMIT,
        });
    }
    Ok(total)
}

/// Skip chunk extension bytes up to the CR ending the size line.
fn skip_extension(size: u64, line: usize, input: &[u8]) -> Result<(usize, State), ParseError> {
    let end = memchr2(b'\r', b'\n', input);
    // Extensions are tokens, `=`, quoted strings and whitespace: no controls
    // (RFC 9112 §7.1.1), which could hide a line end from another parser.
    let ext = &input[..end.unwrap_or(input.len())];
    if ext.iter().any(|&b| (b < b' ' && b != b'\t') || b == 0x7f) {
        return Err(ParseError::InvalidChunk("control byte in chunk extension"));
    }
    match end {
        Some(i) if input[i] == b'\r' => {
            size_line(line + i)?;
            Ok((i + 1, State::SizeLf { size }))
        }
        Some(_) => Err(ParseError::InvalidChunk("bare lf in chunk extension")),
        None => Ok((
            input.len(),
            State::Extension {
                size,
                line: size_line(line + input.len())?,
            },
        )),
    }
}

/// Skip a trailer field value up to the CR ending its line.
fn skip_trailer_value(total: usize, input: &[u8]) -> Result<(usize, State), ParseError> {
    match memchr2(b'\r', b'\n', input) {
        Some(i) if input[i] == b'\r' => Ok((
            i + 1,
            State::TrailerLf {
                total: trailer_total(total, i + 1)?,
            },
        )),
        Some(_) => Err(ParseError::InvalidTrailer),
        None => Ok((
            input.len(),
            State::TrailerValue {
                total: trailer_total(total, input.len())?,
            },
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feed `pieces` as a socket would deliver them, keeping unconsumed bytes
    /// buffered like a worker does. Returns the payload and the leftover bytes.
    fn feed(kind: BodyKind, pieces: &[&[u8]]) -> Result<(Vec<u8>, Vec<u8>), ParseError> {
        let mut decoder = Decoder::new(kind);
        let mut pending = Vec::new();
        let mut payload = Vec::new();
        for piece in pieces {
            pending.extend_from_slice(piece);
            loop {
                let Decoded { consumed, data } = decoder.decode(&pending)?;
                payload.extend_from_slice(data);
                pending.drain(..consumed);
                if consumed == 0 || decoder.is_done() {
                    break;
                }
            }
        }
        assert!(decoder.is_done(), "body incomplete after all input");
        Ok((payload, pending))
    }

    fn decode_whole(kind: BodyKind, input: &[u8]) -> Result<(Vec<u8>, Vec<u8>), ParseError> {
        feed(kind, &[input])
    }

    fn chunk_err(input: &[u8]) -> ParseError {
        let mut decoder = Decoder::new(BodyKind::Chunked);
        let mut rest = input;
        loop {
            match decoder.decode(rest) {
                Err(e) => return e,
                Ok(d) if d.consumed == 0 || decoder.is_done() => panic!("no error for {input:?}"),
                Ok(d) => rest = &rest[d.consumed..],
            }
        }
    }

    const CHUNKED: &[u8] =
        b"5\r\nhello\r\n7;name=val;q=\"a b\"\r\n, world\r\n0\r\nX-Sum: 1\r\nY:2\r\n\r\nGET /next";

    #[test]
    fn length_decoder_stops_at_the_boundary() {
        let (payload, rest) = decode_whole(BodyKind::Length(5), b"helloGET / HTTP/1.1").unwrap();
        assert_eq!(payload, b"hello");
        assert_eq!(rest, b"GET / HTTP/1.1");
    }

    #[test]
    fn length_decoder_reports_remaining() {
        let mut d = Decoder::new(BodyKind::Length(10));
        assert_eq!(d.remaining_hint(), Some(10));
        let out = d.decode(b"abcd").unwrap();
        assert_eq!((out.consumed, out.data), (4, &b"abcd"[..]));
        assert_eq!(d.remaining_hint(), Some(6));
        assert!(!d.is_done());
        assert_eq!(d.decode(b"").unwrap().consumed, 0);
        d.decode(b"efghijXYZ").unwrap();
        assert!(d.is_done());
        assert_eq!(d.remaining_hint(), Some(0));
        assert_eq!(d.decode(b"XYZ").unwrap().consumed, 0);
    }

    #[test]
    fn empty_and_zero_length_bodies_start_done() {
        assert!(Decoder::new(BodyKind::Empty).is_done());
        assert!(Decoder::new(BodyKind::Length(0)).is_done());
        assert_eq!(Decoder::new(BodyKind::Chunked).remaining_hint(), None);
    }

    #[test]
    fn huge_length_does_not_overflow() {
        let mut d = Decoder::new(BodyKind::Length(u64::MAX));
        assert_eq!(d.decode(b"abc").unwrap().consumed, 3);
        assert_eq!(d.remaining_hint(), Some(u64::MAX - 3));
    }

    #[test]
    fn chunked_body_with_extensions_and_trailers_decodes() {
        let (payload, rest) = decode_whole(BodyKind::Chunked, CHUNKED).unwrap();
        assert_eq!(payload, b"hello, world");
        assert_eq!(rest, b"GET /next");
    }

    #[test]
    fn chunked_framing_after_the_last_payload_finishes_in_one_call() {
        let mut d = Decoder::new(BodyKind::Chunked);
        let input = b"3\r\nabc\r\n0\r\n\r\nNEXT";
        let out = d.decode(input).unwrap();
        assert_eq!(out.data, b"abc");
        assert_eq!(out.consumed, input.len() - 4);
        assert!(d.is_done());
    }

    #[test]
    fn chunked_body_survives_every_split_point() {
        let whole = decode_whole(BodyKind::Chunked, CHUNKED).unwrap();
        for a in 0..=CHUNKED.len() {
            for b in a..=CHUNKED.len() {
                let pieces = [&CHUNKED[..a], &CHUNKED[a..b], &CHUNKED[b..]];
                assert_eq!(
                    feed(BodyKind::Chunked, &pieces).unwrap(),
                    whole,
                    "split at {a},{b}"
                );
            }
        }
    }

    #[test]
    fn chunked_body_fed_one_byte_at_a_time() {
        let pieces: Vec<&[u8]> = CHUNKED.chunks(1).collect();
        let (payload, rest) = feed(BodyKind::Chunked, &pieces).unwrap();
        assert_eq!(payload, b"hello, world");
        assert_eq!(rest, b"GET /next");
    }

    #[test]
    fn length_body_fed_one_byte_at_a_time() {
        let input = b"0123456789tail";
        let pieces: Vec<&[u8]> = input.chunks(1).collect();
        let (payload, rest) = feed(BodyKind::Length(10), &pieces).unwrap();
        assert_eq!(payload, b"0123456789");
        assert_eq!(rest, b"tail");
    }

    #[test]
    fn chunk_sizes_are_hex_any_case_with_leading_zeros() {
        let mut input = b"0000A\r\n".to_vec();
        input.extend_from_slice(&[b'x'; 10]);
        input.extend_from_slice(b"\r\n1f \t;ext\r\n");
        input.extend_from_slice(&[b'y'; 31]);
        input.extend_from_slice(b"\r\n0\r\n\r\n");
        let (payload, rest) = decode_whole(BodyKind::Chunked, &input).unwrap();
        assert_eq!(payload.len(), 41);
        assert!(rest.is_empty());
    }

    #[test]
    fn malformed_chunk_sizes_are_rejected() {
        for bad in [
            &b"\r\n"[..],
            b";ext\r\n",
            b"g\r\n",
            b"-1\r\n",
            b"+1\r\n",
            b"0x5\r\n",
            b"5 5\r\n",
            b"10000000000000000\r\n",
            b"5\n",
            b"5\rX",
        ] {
            assert!(
                matches!(chunk_err(bad), ParseError::InvalidChunk(_)),
                "{bad:?}"
            );
        }
        let max = b"ffffffffffffffff\r\n";
        let mut d = Decoder::new(BodyKind::Chunked);
        assert_eq!(d.decode(max).unwrap().consumed, max.len());
    }

    #[test]
    fn chunk_data_must_end_in_crlf() {
        for bad in [
            &b"3\r\nabcX\r\n"[..],
            b"3\r\nabc\n0\r\n\r\n",
            b"3\r\nabc\rX",
        ] {
            assert!(
                matches!(chunk_err(bad), ParseError::InvalidChunk(_)),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn bare_lf_in_extension_is_rejected() {
        assert!(matches!(
            chunk_err(b"3;a\nabc\r\n"),
            ParseError::InvalidChunk(_)
        ));
    }

    #[test]
    fn long_size_line_is_rejected_before_its_end() {
        let mut input = b"5;".to_vec();
        input.resize(SIZE_LINE_LIMIT + 1, b'a');
        let mut d = Decoder::new(BodyKind::Chunked);
        assert!(matches!(d.decode(&input), Err(ParseError::InvalidChunk(_))));
        let mut ok = b"5;".to_vec();
        ok.resize(SIZE_LINE_LIMIT, b'a');
        ok.extend_from_slice(b"\r\nhello\r\n0\r\n\r\n");
        assert_eq!(decode_whole(BodyKind::Chunked, &ok).unwrap().0, b"hello");
    }

    #[test]
    fn malformed_trailers_are_rejected() {
        for bad in [
            &b"0\r\nBad Name: x\r\n\r\n"[..],
            b"0\r\n: x\r\n\r\n",
            b"0\r\nA: x\nB: y\r\n\r\n",
            b"0\r\nA: x\rB",
        ] {
            assert_eq!(chunk_err(bad), ParseError::InvalidTrailer, "{bad:?}");
        }
        assert!(matches!(
            chunk_err(b"0\r\n\rX"),
            ParseError::InvalidChunk(_)
        ));
    }

    #[test]
    fn trailer_section_is_bounded() {
        let mut input = b"0\r\nX: ".to_vec();
        input.resize(TRAILER_LIMIT + 10, b'v');
        let mut d = Decoder::new(BodyKind::Chunked);
        assert_eq!(
            d.decode(&input),
            Err(ParseError::TrailerTooLarge {
                limit: TRAILER_LIMIT
            })
        );
        // Many small lines count too.
        let mut many = b"0\r\n".to_vec();
        while many.len() < TRAILER_LIMIT + 10 {
            many.extend_from_slice(b"A: b\r\n");
        }
        assert!(matches!(
            chunk_err(&many),
            ParseError::TrailerTooLarge { .. }
        ));
    }

    #[test]
    fn framing_fields_in_a_trailer_are_refused() {
        for name in [
            "Content-Length",
            "transfer-encoding",
            "HOST",
            "Trailer",
            "Authorization",
            "TE",
        ] {
            let body = format!("1\r\na\r\n0\r\n{name}: 5\r\n\r\n");
            let e = decode_whole(BodyKind::Chunked, body.as_bytes()).unwrap_err();
            assert!(
                matches!(e, ParseError::ForbiddenTrailer(_)),
                "{name}: {e:?}"
            );
        }
        // Other fields, even ones sharing a prefix, are fine.
        let ok = b"1\r\na\r\n0\r\nContent-Length-Hint: 1\r\nTEA: 2\r\nX-Checksum: 3\r\n\r\n";
        assert_eq!(decode_whole(BodyKind::Chunked, ok).unwrap().0, b"a");
    }

    #[test]
    fn whitespace_after_a_chunk_size_needs_an_extension() {
        assert!(decode_whole(BodyKind::Chunked, b"1 \r\na\r\n0\r\n\r\n").is_err());
        let ok = b"1 ;ext=1\r\na\r\n0\r\n\r\n";
        assert_eq!(decode_whole(BodyKind::Chunked, ok).unwrap().0, b"a");
    }

    #[test]
    fn control_bytes_in_a_chunk_extension_are_refused() {
        assert!(decode_whole(BodyKind::Chunked, b"1;a\x00b\r\na\r\n0\r\n\r\n").is_err());
        assert!(decode_whole(BodyKind::Chunked, b"1;a\x7f\r\na\r\n0\r\n\r\n").is_err());
    }
}
