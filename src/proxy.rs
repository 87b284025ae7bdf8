//! PROXY protocol headers: the line (v1) or binary block (v2) a TCP proxy
//! puts in front of a connection to say who the real client was (HAProxy's
//! `doc/proxy-protocol.txt`, revision 2020/03/05, §2.1 and §2.2).
//!
//! This module owns recognising, validating and measuring one header at the
//! start of a connection's bytes, for gunicorn's `proxy_protocol` setting
//! (`v1`, `v2`, or `auto` for either; `off` never calls it). It does no I/O,
//! keeps no state between calls and allocates only to describe an error. It
//! does not decide who may send a header (`proxy_allow_ips`), whether a
//! missing header is tolerated, or what the addresses mean to the environ:
//! those belong to the worker and to `wsgi/`.
//!
//! Choices beyond the spec's MUSTs, and where they part from gunicorn 24.1:
//! - the first byte picks the version (`P` for v1, CR for v2), so input that
//!   matches neither signature fails at the first byte that differs, and a
//!   partial header is never mistaken for a complete one;
//! - v1 fields are checked as they arrive, so most malformed lines fail before
//!   their CRLF; ports and IPv4 octets must not have leading zeros (the spec's
//!   rule; gunicorn's `int()` accepts `+80` and `080`);
//! - `PROXY UNKNOWN` and a v2 PROXY command over the UNSPEC or UNIX families
//!   are accepted without addresses, as the spec asks (gunicorn rejects
//!   UNKNOWN and UNIX);
//! - v2 LOCAL ignores the family byte, as the spec and gunicorn do; DGRAM is
//!   rejected because HTTP needs a stream;
//! - v2 TLVs are skipped unread (no CRC32C check), and a v2 header is capped at
//!   16 KiB so a sender cannot make us buffer 64 KiB for it.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use crate::http::error::excerpt;

/// The v1 signature: "PROXY" and exactly one space (§2.1).
const V1_SIGNATURE: &[u8] = b"PROXY ";
/// Longest v1 line, CRLF included: the `UNKNOWN` worst case of §2.1.
const V1_MAX_LEN: usize = 107;
/// Longest textual address we wait for: IPv6 with an embedded IPv4 tail.
const V6_TEXT_MAX: usize = 45;
/// The v2 signature (§2.2); it contains a NUL, so it is never a C string.
const V2_SIGNATURE: &[u8; 12] = b"\r\n\r\n\0\r\nQUIT\n";
/// The fixed part of a v2 header: signature, ver_cmd, fam, 16-bit length.
const V2_FIXED_LEN: usize = 16;
/// Cap on a whole v2 header, TLVs included. The spec sizes headers to fit one
/// 536-byte segment; TLVs (certificates, unique ids) can be longer, not 64 KiB.
const V2_MAX_LEN: usize = 16 * 1024;

/// Which versions a listener accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Accept {
    /// Only the text line (`proxy_protocol = v1`).
    V1,
    /// Only the binary block (`proxy_protocol = v2`).
    V2,
    /// Either, told apart by the first byte (`proxy_protocol = auto`).
    Any,
}

impl Accept {
    /// Whether a header of `version` (1 or 2) is allowed here.
    fn allows(self, version: u8) -> bool {
        matches!(
            (self, version),
            (Accept::Any, _) | (Accept::V1, 1) | (Accept::V2, 2)
        )
    }
}

/// What a PROXY header said.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Header {
    /// The protocol version the header used (1 or 2).
    pub version: u8,
    /// The original client and the address it connected to; None for
    /// `PROXY UNKNOWN` (v1) and the LOCAL command or UNSPEC/unix families (v2):
    /// then the connection's own addresses stand.
    pub addresses: Option<(SocketAddr, SocketAddr)>, // (source, destination)
}

/// Why the bytes at the start of a connection are not an acceptable PROXY
/// header.
///
/// Every variant is fatal for the connection: the spec says to abort it, and
/// the bytes after a bad header cannot be trusted to start a request.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum ProxyError {
    /// The bytes match neither signature (nor the signature of a version this
    /// listener does not accept). Carries an excerpt. A caller copying
    /// gunicorn 24.1, which serves such a connection as plain HTTP, may do so
    /// on this variant alone; the spec says to drop it.
    #[error("not a proxy protocol header {0:?}")]
    NotProxy(String),
    /// A complete signature of a version the listener's [`Accept`] excludes.
    #[error("proxy protocol v{found} header not accepted by this listener")]
    VersionNotAccepted {
        /// The version the signature announced (1 or 2).
        found: u8,
    },
    /// A v1 line that breaks §2.1: unknown protocol, extra or missing spaces,
    /// an address wrong for its family, a bad port, a stray CR or LF. Carries
    /// an excerpt of the line.
    #[error("invalid proxy line {0:?}")]
    InvalidV1Line(String),
    /// No CRLF within the first 107 bytes of a v1 line (§2.1's longest line).
    #[error("proxy line longer than {limit} bytes")]
    V1LineTooLong {
        /// The cap, CRLF included.
        limit: usize,
    },
    /// The v2 version nibble is not 2, or the command is neither LOCAL nor PROXY.
    #[error("invalid proxy v2 version and command byte {0:#04x}")]
    InvalidV2VersionCommand(u8),
    /// The v2 family or transport nibble is unassigned.
    #[error("invalid proxy v2 family and protocol byte {0:#04x}")]
    InvalidV2Family(u8),
    /// A v2 PROXY command for a datagram transport; HTTP runs over streams.
    #[error("proxy v2 datagram transport {0:#04x} on a stream connection")]
    V2Datagram(u8),
    /// The v2 length does not cover the address block its family needs.
    #[error("proxy v2 length {length} too short for family byte {family:#04x} (needs {needed})")]
    V2AddressTooShort {
        /// The family and protocol byte.
        family: u8,
        /// The length the header announced.
        length: u16,
        /// The size of that family's address block.
        needed: u16,
    },
    /// The whole v2 header, TLVs included, would exceed 16 KiB.
    #[error("proxy v2 header of {length} bytes longer than {limit}")]
    V2HeaderTooLong {
        /// The announced total size: 16 plus the length field.
        length: usize,
        /// The cap.
        limit: usize,
    },
}

impl ProxyError {
    /// The response status for this rejection: 400 for all of them, as
    /// gunicorn answers `InvalidProxyLine` and `InvalidProxyHeader`.
    pub fn status(&self) -> u16 {
        match self {
            ProxyError::NotProxy(_)
            | ProxyError::VersionNotAccepted { .. }
            | ProxyError::InvalidV1Line(_)
            | ProxyError::V1LineTooLong { .. }
            | ProxyError::InvalidV2VersionCommand(_)
            | ProxyError::InvalidV2Family(_)
            | ProxyError::V2Datagram(_)
            | ProxyError::V2AddressTooShort { .. }
            | ProxyError::V2HeaderTooLong { .. } => 400,
        }
    }
}

/// Parse a PROXY header at the start of `buf`.
///
/// Ok(None): more bytes are needed. That is only returned while `buf` is
/// still a prefix of some acceptable header; anything that already cannot be
/// one fails at once, so a caller may simply call again with more bytes.
///
/// Ok(Some((header, consumed))): bytes after `consumed` are the HTTP request.
///
/// # Errors
///
/// A [`ProxyError`] once `buf` cannot start an acceptable header; more bytes
/// never turn an error back into a header.
pub fn parse(buf: &[u8], accept: Accept) -> Result<Option<(Header, usize)>, ProxyError> {
    let (version, signature): (u8, &[u8]) = match buf.first() {
        None => return Ok(None),
        Some(b'P') => (1, V1_SIGNATURE),
        Some(b'\r') => (2, V2_SIGNATURE),
        Some(_) => return Err(not_proxy(buf)),
    };
    let seen = buf.len().min(signature.len());
    if buf[..seen] != signature[..seen] {
        return Err(not_proxy(buf));
    }
    if !accept.allows(version) {
        // Name the other version only once its whole signature is there:
        // "P" alone is as likely to be "POST".
        return Err(if seen == signature.len() {
            ProxyError::VersionNotAccepted { found: version }
        } else {
            not_proxy(buf)
        });
    }
    if seen < signature.len() {
        return Ok(None);
    }
    match version {
        1 => parse_v1(buf),
        _ => parse_v2(buf),
    }
}

fn not_proxy(buf: &[u8]) -> ProxyError {
    ProxyError::NotProxy(excerpt(buf))
}

// ---------------------------------------------------------------- v1 (§2.1)

/// The v1 address family, from the protocol field.
#[derive(Clone, Copy)]
enum Family {
    Tcp4,
    Tcp6,
}

/// Parse a v1 line; `buf` starts with the whole signature.
///
/// The line is validated up to the CRLF or the end of `buf`, whichever comes
/// first, so a field that cannot be completed fails before the CRLF arrives.
/// The last field of an incomplete line is checked as a prefix only.
fn parse_v1(buf: &[u8]) -> Result<Option<(Header, usize)>, ProxyError> {
    let window = &buf[..buf.len().min(V1_MAX_LEN)];
    let (line, complete) = match memchr::memmem::find(window, b"\r\n") {
        Some(end) => (&window[..end], true),
        // A trailing CR may be the first half of the CRLF.
        None => (window.strip_suffix(b"\r").unwrap_or(window), false),
    };
    let invalid = || ProxyError::InvalidV1Line(excerpt(line));
    let more = || {
        if buf.len() >= V1_MAX_LEN {
            Err(ProxyError::V1LineTooLong { limit: V1_MAX_LEN })
        } else {
            Ok(None)
        }
    };
    let consumed = line.len() + 2;

    // The signature has no CR, so `line` always holds it; `get` keeps even a
    // broken invariant from panicking.
    let rest = line.get(V1_SIGNATURE.len()..).ok_or_else(invalid)?;
    let (protocol, after) = match memchr::memchr(b' ', rest) {
        Some(i) => (&rest[..i], Some(&rest[i + 1..])),
        None => (rest, None),
    };
    if after.is_none() && !complete {
        let known = [&b"TCP4"[..], b"TCP6", b"UNKNOWN"];
        return if known.iter().any(|k| k.starts_with(protocol)) {
            more()
        } else {
            Err(invalid())
        };
    }
    let family = match protocol {
        // The receiver must ignore whatever follows UNKNOWN up to the CRLF.
        b"UNKNOWN" if complete => {
            return Ok(Some((
                Header {
                    version: 1,
                    addresses: None,
                },
                consumed,
            )));
        }
        b"UNKNOWN" => return more(),
        b"TCP4" => Family::Tcp4,
        b"TCP6" => Family::Tcp6,
        _ => return Err(invalid()),
    };
    let after = after.ok_or_else(invalid)?;

    // src, dst, sport, dport: exactly one space between each, none after.
    let mut fields: [&[u8]; 4] = [&[]; 4];
    let mut count = 0;
    for field in after.split(|&b| b == b' ') {
        let slot = fields.get_mut(count).ok_or_else(invalid)?;
        *slot = field;
        count += 1;
    }
    let (src, dst, sport, dport) = (fields[0], fields[1], fields[2], fields[3]);
    if !complete {
        // Every field before the open one is whole; the open one is a prefix.
        let valid_prefix = (0..count).all(|i| {
            let open = i == count - 1;
            match (i, open) {
                (0 | 1, false) => address(family, fields[i]).is_some(),
                (0 | 1, true) => address_prefix(family, fields[i]),
                (_, false) => port(fields[i]).is_some(),
                (_, true) => fields[i].is_empty() || port(fields[i]).is_some(),
            }
        });
        return if valid_prefix { more() } else { Err(invalid()) };
    }
    if count != 4 {
        return Err(invalid());
    }
    let parsed = address(family, src)
        .zip(address(family, dst))
        .zip(port(sport).zip(port(dport)));
    let ((src, dst), (sport, dport)) = parsed.ok_or_else(invalid)?;
    let addresses = (SocketAddr::new(src, sport), SocketAddr::new(dst, dport));
    Ok(Some((
        Header {
            version: 1,
            addresses: Some(addresses),
        },
        consumed,
    )))
}

/// A whole v1 address of `family`. IPv4 is a dotted quad without leading
/// zeros (std's parser, like `inet_pton`, rejects them); IPv6 is any textual
/// form std accepts, which excludes zone ids.
fn address(family: Family, text: &[u8]) -> Option<IpAddr> {
    let text = std::str::from_utf8(text).ok()?;
    match family {
        Family::Tcp4 => text.parse::<Ipv4Addr>().ok().map(IpAddr::V4),
        Family::Tcp6 => text.parse::<Ipv6Addr>().ok().map(IpAddr::V6),
    }
}

/// Whether `text` can still grow into an address of `family`. Exact for
/// IPv4; for IPv6 only the alphabet and length are checked, and [`address`]
/// decides once the field ends.
fn address_prefix(family: Family, text: &[u8]) -> bool {
    match family {
        Family::Tcp4 => {
            let mut parts = text.split(|&b| b == b'.').peekable();
            let mut n = 0;
            while let Some(part) = parts.next() {
                n += 1;
                let last = parts.peek().is_none();
                if n > 4 || !(octet(part) || (last && part.is_empty())) {
                    return false;
                }
            }
            true
        }
        Family::Tcp6 => {
            text.len() <= V6_TEXT_MAX
                && text
                    .iter()
                    .all(|&b| b.is_ascii_hexdigit() || b == b':' || b == b'.')
        }
    }
}

/// One IPv4 octet: 0 to 255 in decimal, no leading zero.
fn octet(text: &[u8]) -> bool {
    decimal(text, 3).is_some_and(|v| v <= 255)
}

/// A v1 port: 0 to 65535 in decimal, no sign, no leading zero.
fn port(text: &[u8]) -> Option<u16> {
    decimal(text, 5).and_then(|v| u16::try_from(v).ok())
}

/// 1 to `max_digits` ASCII digits, without a leading zero unless the number
/// is 0 itself.
fn decimal(text: &[u8], max_digits: usize) -> Option<u32> {
    let well_formed = !text.is_empty()
        && text.len() <= max_digits
        && text.iter().all(u8::is_ascii_digit)
        && (text[0] != b'0' || text.len() == 1);
    // At most 5 digits, so the fold cannot overflow a u32.
    well_formed.then(|| text.iter().fold(0u32, |v, &d| v * 10 + u32::from(d - b'0')))
}

// ---------------------------------------------------------------- v2 (§2.2)

/// What the family byte of a v2 PROXY command asks of the address block.
enum Block {
    /// Addresses to ignore (UNSPEC family or protocol, or AF_UNIX): needs
    /// `needed` bytes but yields no addresses.
    Ignored { needed: u16 },
    /// TCP over IPv4: 4 + 4 + 2 + 2 bytes.
    Inet,
    /// TCP over IPv6: 16 + 16 + 2 + 2 bytes.
    Inet6,
}

impl Block {
    fn needed(&self) -> u16 {
        match self {
            Block::Ignored { needed } => *needed,
            Block::Inet => 12,
            Block::Inet6 => 36,
        }
    }
}

/// Parse a v2 block; `buf` starts with the whole signature. Each fixed byte
/// is checked as soon as it is there.
fn parse_v2(buf: &[u8]) -> Result<Option<(Header, usize)>, ProxyError> {
    let Some(&ver_cmd) = buf.get(12) else {
        return Ok(None);
    };
    let local = match ver_cmd {
        0x20 => true,
        0x21 => false,
        _ => return Err(ProxyError::InvalidV2VersionCommand(ver_cmd)),
    };
    let Some(&fam) = buf.get(13) else {
        return Ok(None);
    };
    // LOCAL: "discard the protocol block including the family".
    let block = if local { None } else { Some(block(fam)?) };
    let Some(&[hi, lo]) = buf.get(14..16).and_then(|b| b.first_chunk::<2>()) else {
        return Ok(None);
    };
    let length = u16::from_be_bytes([hi, lo]);
    let total = V2_FIXED_LEN + usize::from(length);
    if total > V2_MAX_LEN {
        return Err(ProxyError::V2HeaderTooLong {
            length: total,
            limit: V2_MAX_LEN,
        });
    }
    let too_short = |needed| ProxyError::V2AddressTooShort {
        family: fam,
        length,
        needed,
    };
    if let Some(block) = &block
        && length < block.needed()
    {
        return Err(too_short(block.needed()));
    }
    let Some(mut rest) = buf.get(V2_FIXED_LEN..total) else {
        return Ok(None);
    };
    // What remains after the addresses is TLVs, skipped unread.
    let addresses = match block {
        None | Some(Block::Ignored { .. }) => None,
        Some(Block::Inet) => {
            let read = |rest: &mut &[u8]| -> Option<_> {
                let src = Ipv4Addr::from(take::<4>(rest)?);
                let dst = Ipv4Addr::from(take::<4>(rest)?);
                Some((IpAddr::V4(src), IpAddr::V4(dst)))
            };
            Some(
                read(&mut rest)
                    .zip(ports(&mut rest))
                    .ok_or_else(|| too_short(12))?,
            )
        }
        Some(Block::Inet6) => {
            let read = |rest: &mut &[u8]| -> Option<_> {
                let src = Ipv6Addr::from(take::<16>(rest)?);
                let dst = Ipv6Addr::from(take::<16>(rest)?);
                Some((IpAddr::V6(src), IpAddr::V6(dst)))
            };
            Some(
                read(&mut rest)
                    .zip(ports(&mut rest))
                    .ok_or_else(|| too_short(36))?,
            )
        }
    }
    .map(|((src, dst), (sport, dport))| (SocketAddr::new(src, sport), SocketAddr::new(dst, dport)));
    Ok(Some((
        Header {
            version: 2,
            addresses,
        },
        total,
    )))
}

/// Decode the family and protocol byte of a PROXY command.
fn block(fam: u8) -> Result<Block, ProxyError> {
    let stream = match fam & 0x0f {
        0x0 => false,
        0x1 => true,
        0x2 => return Err(ProxyError::V2Datagram(fam)),
        _ => return Err(ProxyError::InvalidV2Family(fam)),
    };
    Ok(match (fam >> 4, stream) {
        // UNSPEC family or protocol: "the receiver should ignore address
        // information".
        (0x0, _) | (0x1..=0x3, false) => Block::Ignored { needed: 0 },
        (0x1, true) => Block::Inet,
        (0x2, true) => Block::Inet6,
        (0x3, true) => Block::Ignored { needed: 216 },
        _ => return Err(ProxyError::InvalidV2Family(fam)),
    })
}

/// The source and destination ports, big-endian.
fn ports(rest: &mut &[u8]) -> Option<(u16, u16)> {
    let src = u16::from_be_bytes(take::<2>(rest)?);
    let dst = u16::from_be_bytes(take::<2>(rest)?);
    Some((src, dst))
}

/// Split `N` bytes off the front of `rest`.
fn take<const N: usize>(rest: &mut &[u8]) -> Option<[u8; N]> {
    let (head, tail) = rest.split_first_chunk::<N>()?;
    *rest = tail;
    Some(*head)
}

#[cfg(test)]
mod tests {
    use super::*;

    const REQUEST: &[u8] = b"GET / HTTP/1.1\r\nHost: 192.168.0.11\r\n\r\n";

    fn sock(text: &str) -> SocketAddr {
        text.parse().expect("test address")
    }

    fn with_request(header: &[u8]) -> Vec<u8> {
        [header, REQUEST].concat()
    }

    /// A v2 header: signature, ver_cmd, fam, big-endian length, then `body`.
    fn v2(ver_cmd: u8, fam: u8, body: &[u8]) -> Vec<u8> {
        let len = u16::try_from(body.len()).expect("test body fits");
        let mut out = V2_SIGNATURE.to_vec();
        out.extend([ver_cmd, fam]);
        out.extend(len.to_be_bytes());
        out.extend(body);
        out
    }

    /// §2.2's IPv4 block for 192.168.0.1:56324 → 192.168.0.11:443.
    const INET_BLOCK: [u8; 12] = [192, 168, 0, 1, 192, 168, 0, 11, 0xdc, 0x04, 0x01, 0xbb];

    /// 2001:db8::1:56324 → 2001:db8::2:443.
    fn inet6_block() -> Vec<u8> {
        let mut out = Vec::new();
        for ip in ["2001:db8::1", "2001:db8::2"] {
            out.extend(ip.parse::<Ipv6Addr>().expect("test address").octets());
        }
        out.extend([0xdc, 0x04, 0x01, 0xbb]);
        out
    }

    /// Valid headers and what they must parse to.
    fn valid_cases() -> Vec<(Vec<u8>, Header)> {
        let v4 = Some((sock("192.168.0.1:56324"), sock("192.168.0.11:443")));
        let v6 = Some((sock("[2001:db8::1]:56324"), sock("[2001:db8::2]:443")));
        let mut tlvs = INET_BLOCK.to_vec();
        tlvs.extend([0x04, 0x00, 0x03, b'a', b'b', b'c']);
        tlvs.extend([0x02, 0x00, 0x0b]);
        tlvs.extend(b"example.com");
        vec![
            (
                b"PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\n".to_vec(),
                Header {
                    version: 1,
                    addresses: v4,
                },
            ),
            (
                b"PROXY TCP6 2001:db8::1 2001:db8::2 56324 443\r\n".to_vec(),
                Header {
                    version: 1,
                    addresses: v6,
                },
            ),
            (
                b"PROXY UNKNOWN\r\n".to_vec(),
                Header {
                    version: 1,
                    addresses: None,
                },
            ),
            (
                v2(0x21, 0x11, &INET_BLOCK),
                Header {
                    version: 2,
                    addresses: v4,
                },
            ),
            (
                v2(0x21, 0x21, &inet6_block()),
                Header {
                    version: 2,
                    addresses: v6,
                },
            ),
            (
                v2(0x21, 0x11, &tlvs),
                Header {
                    version: 2,
                    addresses: v4,
                },
            ),
            (
                v2(0x20, 0x00, &[]),
                Header {
                    version: 2,
                    addresses: None,
                },
            ),
            (
                v2(0x21, 0x31, &[0; 216]),
                Header {
                    version: 2,
                    addresses: None,
                },
            ),
        ]
    }

    fn err(input: &[u8], accept: Accept) -> ProxyError {
        match parse(input, accept) {
            Err(e) => e,
            other => panic!("expected an error for {input:?}, got {other:?}"),
        }
    }

    fn is_invalid_v1(input: &[u8]) -> bool {
        matches!(parse(input, Accept::V1), Err(ProxyError::InvalidV1Line(_)))
    }

    /// Small deterministic xorshift64, so the property loops need no crate.
    struct XorShift(u64);

    impl XorShift {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }

        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }
    }

    /// Growing prefixes of `input` go Ok(None)… then settle: either an error
    /// that more bytes never undo, or one header that more bytes never change.
    fn assert_settles(input: &[u8], accept: Accept) {
        let mut settled: Option<Result<Option<(Header, usize)>, ProxyError>> = None;
        for cut in 0..=input.len() {
            let got = parse(&input[..cut], accept);
            match (&settled, &got) {
                (None, Ok(None)) => {}
                (None, Ok(Some((_, consumed)))) => {
                    assert_eq!(*consumed, cut, "header ends where it was found: {input:?}");
                    settled = Some(got);
                }
                (None, Err(_)) => settled = Some(got),
                (Some(Err(_)), Err(_)) => {}
                (Some(Ok(before)), Ok(now)) => assert_eq!(before, now, "{input:?}"),
                (Some(before), now) => panic!("{input:?}: {before:?} then {now:?} at {cut}"),
            }
        }
    }

    #[test]
    fn v1_tcp4_example_from_the_spec() {
        let input = with_request(b"PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\n");
        let (header, consumed) = parse(&input, Accept::V1).unwrap().unwrap();
        assert_eq!(header.version, 1);
        assert_eq!(
            header.addresses,
            Some((sock("192.168.0.1:56324"), sock("192.168.0.11:443")))
        );
        assert_eq!(&input[consumed..], REQUEST);
    }

    #[test]
    fn v1_tcp6_longest_line_is_accepted() {
        let line = b"PROXY TCP6 ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff \
                     ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 65535 65535\r\n";
        assert_eq!(line.len(), 104);
        let max = sock("[ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff]:65535");
        let got = parse(line, Accept::V1).unwrap();
        assert_eq!(
            got,
            Some((
                Header {
                    version: 1,
                    addresses: Some((max, max))
                },
                104
            ))
        );
    }

    #[test]
    fn v1_tcp6_accepts_compressed_and_mapped_forms() {
        let line = b"PROXY TCP6 ::1 ::ffff:10.0.0.1 0 80\r\n";
        let (header, _) = parse(line, Accept::V1).unwrap().unwrap();
        assert_eq!(
            header.addresses,
            Some((sock("[::1]:0"), sock("[::ffff:10.0.0.1]:80")))
        );
    }

    #[test]
    fn v1_unknown_yields_no_addresses_and_ignores_the_rest_of_its_line() {
        let short = with_request(b"PROXY UNKNOWN\r\n");
        assert_eq!(
            parse(&short, Accept::V1).unwrap(),
            Some((
                Header {
                    version: 1,
                    addresses: None
                },
                15
            ))
        );
        let worst = b"PROXY UNKNOWN ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff \
                      ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 65535 65535\r\n";
        assert_eq!(worst.len(), V1_MAX_LEN);
        assert_eq!(
            parse(worst, Accept::V1).unwrap(),
            Some((
                Header {
                    version: 1,
                    addresses: None
                },
                V1_MAX_LEN
            ))
        );
        let junk = b"PROXY UNKNOWN whatever \x01\r x\r\nGET";
        assert_eq!(
            parse(junk, Accept::V1).unwrap().map(|(_, n)| n),
            Some(junk.len() - 3)
        );
    }

    #[test]
    fn v2_proxy_inet_example() {
        let input = with_request(&v2(0x21, 0x11, &INET_BLOCK));
        let (header, consumed) = parse(&input, Accept::V2).unwrap().unwrap();
        assert_eq!(header.version, 2);
        assert_eq!(
            header.addresses,
            Some((sock("192.168.0.1:56324"), sock("192.168.0.11:443")))
        );
        assert_eq!(consumed, 28);
        assert_eq!(&input[consumed..], REQUEST);
    }

    #[test]
    fn v2_proxy_inet6_example() {
        let input = v2(0x21, 0x21, &inet6_block());
        assert_eq!(input.len(), 52);
        let (header, consumed) = parse(&input, Accept::V2).unwrap().unwrap();
        assert_eq!(
            header.addresses,
            Some((sock("[2001:db8::1]:56324"), sock("[2001:db8::2]:443")))
        );
        assert_eq!(consumed, 52);
    }

    #[test]
    fn v2_tlvs_are_skipped_within_the_length() {
        let mut body = INET_BLOCK.to_vec();
        body.extend([0x05, 0x00, 0x02, 0xaa, 0xbb]);
        let input = with_request(&v2(0x21, 0x11, &body));
        let (header, consumed) = parse(&input, Accept::V2).unwrap().unwrap();
        assert!(header.addresses.is_some());
        assert_eq!(consumed, 16 + 12 + 5);
        assert_eq!(&input[consumed..], REQUEST);
    }

    #[test]
    fn v2_local_ignores_family_and_skips_its_length() {
        let local = v2(0x20, 0x00, &[]);
        assert_eq!(
            parse(&local, Accept::V2).unwrap(),
            Some((
                Header {
                    version: 2,
                    addresses: None
                },
                16
            ))
        );
        // "must not assume zero is presented for LOCAL connections".
        let with_block = with_request(&v2(0x20, 0x11, &INET_BLOCK));
        let (header, consumed) = parse(&with_block, Accept::V2).unwrap().unwrap();
        assert_eq!((header.addresses, consumed), (None, 28));
        let odd_family = v2(0x20, 0xff, &[]);
        assert!(parse(&odd_family, Accept::V2).unwrap().is_some());
    }

    #[test]
    fn v2_unix_and_unspec_families_yield_no_addresses() {
        for (fam, body) in [
            (0x31, vec![0; 216]),
            (0x00, vec![]),
            (0x10, vec![1, 2]),
            (0x01, vec![]),
        ] {
            let input = v2(0x21, fam, &body);
            let got = parse(&input, Accept::V2).unwrap();
            assert_eq!(
                got,
                Some((
                    Header {
                        version: 2,
                        addresses: None
                    },
                    input.len()
                )),
                "{fam:#x}"
            );
        }
    }

    #[test]
    fn every_prefix_of_a_valid_header_needs_more_bytes() {
        for (header, _) in valid_cases() {
            for cut in 0..header.len() {
                assert_eq!(
                    parse(&header[..cut], Accept::Any),
                    Ok(None),
                    "{:?}",
                    &header[..cut]
                );
            }
        }
    }

    #[test]
    fn consumed_is_exact_and_leaves_the_request_untouched() {
        for (header, expected) in valid_cases() {
            let input = with_request(&header);
            let (got, consumed) = parse(&input, Accept::Any).unwrap().unwrap();
            assert_eq!(got, expected);
            assert_eq!(consumed, header.len());
            assert_eq!(&input[consumed..], REQUEST);
        }
    }

    #[test]
    fn any_picks_the_version_by_the_first_byte() {
        let v1 = b"PROXY UNKNOWN\r\n";
        let v2 = v2(0x20, 0x00, &[]);
        assert_eq!(parse(v1, Accept::Any).unwrap().unwrap().0.version, 1);
        assert_eq!(parse(&v2, Accept::Any).unwrap().unwrap().0.version, 2);
        assert_eq!(parse(b"P", Accept::Any), Ok(None));
        assert_eq!(parse(b"\r", Accept::Any), Ok(None));
        assert!(matches!(err(b"G", Accept::Any), ProxyError::NotProxy(_)));
        assert!(matches!(
            err(b"\x16\x03\x01", Accept::Any),
            ProxyError::NotProxy(_)
        ));
    }

    #[test]
    fn empty_input_needs_more_bytes() {
        for accept in [Accept::V1, Accept::V2, Accept::Any] {
            assert_eq!(parse(b"", accept), Ok(None));
        }
    }

    #[test]
    fn bad_signatures_fail_at_the_first_differing_byte() {
        for accept in [Accept::V1, Accept::V2, Accept::Any] {
            assert!(matches!(err(REQUEST, accept), ProxyError::NotProxy(_)));
        }
        assert!(matches!(err(b"PROXZ", Accept::V1), ProxyError::NotProxy(_)));
        assert!(matches!(
            err(b"PROXY\r\n", Accept::V1),
            ProxyError::NotProxy(_)
        ));
        assert!(matches!(
            err(b"\r\n\r\n\0\r\nQUIX", Accept::V2),
            ProxyError::NotProxy(_)
        ));
        assert!(matches!(
            err(b"\r\n\r\n\r\n", Accept::V2),
            ProxyError::NotProxy(_)
        ));
    }

    #[test]
    fn lowercase_proxy_is_not_a_header() {
        let line = b"proxy TCP4 1.2.3.4 5.6.7.8 1 2\r\n";
        assert!(matches!(err(line, Accept::V1), ProxyError::NotProxy(_)));
        assert!(is_invalid_v1(b"PROXY tcp4 1.2.3.4 5.6.7.8 1 2\r\n"));
    }

    #[test]
    fn a_version_the_listener_excludes_is_named_once_its_signature_is_whole() {
        let v1 = b"PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\n";
        let v2 = v2(0x21, 0x11, &INET_BLOCK);
        assert_eq!(
            err(v1, Accept::V2),
            ProxyError::VersionNotAccepted { found: 1 }
        );
        assert_eq!(
            err(&v2, Accept::V1),
            ProxyError::VersionNotAccepted { found: 2 }
        );
        // A lone `P` may be `POST`: no version is claimed, but it fails at once.
        assert!(matches!(err(b"P", Accept::V2), ProxyError::NotProxy(_)));
        assert!(matches!(
            err(b"POST / HTTP/1.1\r\n", Accept::V2),
            ProxyError::NotProxy(_)
        ));
        assert!(matches!(err(b"\r\n", Accept::V1), ProxyError::NotProxy(_)));
    }

    #[test]
    fn v1_bad_ports_are_rejected() {
        for port in ["65536", "+80", "-1", "080", "00", "8o", "123456", ""] {
            let line = format!("PROXY TCP4 1.2.3.4 5.6.7.8 {port} 80\r\n");
            assert!(is_invalid_v1(line.as_bytes()), "source port {port:?}");
            let line = format!("PROXY TCP4 1.2.3.4 5.6.7.8 80 {port}\r\n");
            assert!(is_invalid_v1(line.as_bytes()), "destination port {port:?}");
        }
        let zero = b"PROXY TCP4 1.2.3.4 5.6.7.8 0 65535\r\n";
        assert!(parse(zero, Accept::V1).unwrap().is_some());
    }

    #[test]
    fn v1_spaces_must_be_single() {
        for line in [
            &b"PROXY  TCP4 1.2.3.4 5.6.7.8 1 2\r\n"[..],
            b"PROXY TCP4  1.2.3.4 5.6.7.8 1 2\r\n",
            b"PROXY TCP4 1.2.3.4 5.6.7.8  1 2\r\n",
            b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2 \r\n",
            b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2 3\r\n",
            b"PROXY TCP4 1.2.3.4\t5.6.7.8 1 2\r\n",
            b"PROXY UNKNOWNX\r\n",
        ] {
            assert!(is_invalid_v1(line), "{:?}", String::from_utf8_lossy(line));
        }
    }

    #[test]
    fn v1_addresses_must_match_their_family() {
        for line in [
            &b"PROXY TCP4 ::1 5.6.7.8 1 2\r\n"[..],
            b"PROXY TCP6 1.2.3.4 ::1 1 2\r\n",
            b"PROXY TCP4 01.2.3.4 5.6.7.8 1 2\r\n",
            b"PROXY TCP4 1.2.3.256 5.6.7.8 1 2\r\n",
            b"PROXY TCP4 1.2.3 5.6.7.8 1 2\r\n",
            b"PROXY TCP4 1.2.3.4.5 5.6.7.8 1 2\r\n",
            b"PROXY TCP6 fe80::1%eth0 ::1 1 2\r\n",
            b"PROXY TCP6 1::2::3 ::1 1 2\r\n",
            b"PROXY TCP4 1.2.3.4 5.6.7.8\r\n",
            b"PROXY TCP4\r\n",
            b"PROXY \r\n",
            b"PROXY UDP4 1.2.3.4 5.6.7.8 1 2\r\n",
        ] {
            assert!(is_invalid_v1(line), "{:?}", String::from_utf8_lossy(line));
        }
    }

    #[test]
    fn v1_needs_a_crlf_not_a_lone_cr_or_lf() {
        assert!(is_invalid_v1(b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n"));
        assert!(is_invalid_v1(b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\rX"));
        assert_eq!(
            parse(b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r", Accept::V1),
            Ok(None)
        );
    }

    #[test]
    fn v1_without_crlf_in_107_bytes_is_too_long() {
        let mut line = b"PROXY UNKNOWN ".to_vec();
        line.resize(V1_MAX_LEN, b'a');
        let too_long = ProxyError::V1LineTooLong { limit: V1_MAX_LEN };
        assert_eq!(err(&line, Accept::V1), too_long);
        assert_eq!(parse(&line[..V1_MAX_LEN - 1], Accept::V1), Ok(None));
        // CRLF ending at byte 108 is one byte too late.
        line.truncate(V1_MAX_LEN - 1);
        line.extend(b"\r\n");
        assert_eq!(err(&line, Accept::V1), too_long);
    }

    #[test]
    fn v1_malformed_lines_fail_before_their_crlf() {
        for partial in [
            &b"PROXY TCP5"[..],
            b"PROXY TCP4 1.2.3.4  ",
            b"PROXY TCP4 1.2.3.400",
            b"PROXY TCP4 1.2.3.4.",
            b"PROXY TCP4 01",
            b"PROXY TCP4 ::",
            b"PROXY TCP6 ::g",
            b"PROXY TCP4 1.2.3.4 5.6.7.8 070",
            b"PROXY TCP4 1.2.3.4 5.6.7.8 1 65536",
            b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2 ",
        ] {
            assert!(
                is_invalid_v1(partial),
                "{:?}",
                String::from_utf8_lossy(partial)
            );
        }
    }

    #[test]
    fn v2_bad_version_or_command_is_rejected() {
        for ver_cmd in [0x11, 0x31, 0x22, 0x2f, 0x00] {
            let input = v2(ver_cmd, 0x11, &INET_BLOCK);
            assert_eq!(
                err(&input, Accept::V2),
                ProxyError::InvalidV2VersionCommand(ver_cmd)
            );
            // Found at byte 13, before the rest of the header arrives.
            assert_eq!(
                err(&input[..13], Accept::V2),
                ProxyError::InvalidV2VersionCommand(ver_cmd)
            );
        }
    }

    #[test]
    fn v2_unassigned_family_or_protocol_is_rejected() {
        for fam in [0x41, 0xf1, 0x13, 0x1f] {
            let input = v2(0x21, fam, &INET_BLOCK);
            assert_eq!(
                err(&input[..14], Accept::V2),
                ProxyError::InvalidV2Family(fam)
            );
        }
    }

    #[test]
    fn v2_datagram_is_rejected() {
        for fam in [0x12, 0x22, 0x32, 0x02] {
            let input = v2(0x21, fam, &[0; 216]);
            assert_eq!(err(&input, Accept::V2), ProxyError::V2Datagram(fam));
        }
    }

    #[test]
    fn v2_length_shorter_than_the_address_block_is_rejected() {
        for (fam, needed) in [(0x11, 12), (0x21, 36), (0x31, 216)] {
            let input = v2(0x21, fam, &vec![0; usize::from(needed) - 1]);
            let expected = ProxyError::V2AddressTooShort {
                family: fam,
                length: needed - 1,
                needed,
            };
            assert_eq!(err(&input, Accept::V2), expected);
            // Known from the fixed part alone.
            assert_eq!(err(&input[..16], Accept::V2), expected);
        }
    }

    #[test]
    fn v2_header_longer_than_the_cap_is_rejected_from_its_length_field() {
        let mut input = V2_SIGNATURE.to_vec();
        input.extend([0x21, 0x11, 0xff, 0xff]);
        let expected = ProxyError::V2HeaderTooLong {
            length: 16 + 0xffff,
            limit: V2_MAX_LEN,
        };
        assert_eq!(err(&input, Accept::V2), expected);
        let at_cap = v2(0x21, 0x11, &vec![0; V2_MAX_LEN - 16]);
        assert!(parse(&at_cap, Accept::V2).unwrap().is_some());
    }

    #[test]
    fn every_error_is_a_bad_request() {
        let errors = [
            ProxyError::NotProxy(String::new()),
            ProxyError::VersionNotAccepted { found: 2 },
            ProxyError::InvalidV1Line(String::new()),
            ProxyError::V1LineTooLong { limit: V1_MAX_LEN },
            ProxyError::InvalidV2VersionCommand(0),
            ProxyError::InvalidV2Family(0),
            ProxyError::V2Datagram(0x12),
            ProxyError::V2AddressTooShort {
                family: 0x11,
                length: 0,
                needed: 12,
            },
            ProxyError::V2HeaderTooLong {
                length: 1 << 16,
                limit: V2_MAX_LEN,
            },
        ];
        assert!(errors.iter().all(|e| e.status() == 400));
    }

    #[test]
    fn random_splits_of_valid_headers_parse_once_and_exactly() {
        let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
        for (header, expected) in valid_cases() {
            let input = with_request(&header);
            for _ in 0..200 {
                let mut have = 0;
                let found = loop {
                    have = (have + 1 + rng.below(24)).min(input.len());
                    match parse(&input[..have], Accept::Any) {
                        Ok(None) => assert!(have < header.len(), "stalled at {have}"),
                        Ok(Some(found)) => break found,
                        Err(e) => panic!("split at {have} of {input:?}: {e}"),
                    }
                };
                assert_eq!(found, (expected.clone(), header.len()));
            }
        }
    }

    #[test]
    fn mutated_headers_settle_on_one_answer() {
        let mut rng = XorShift(0x2545_f491_4f6c_dd1d);
        let cases = valid_cases();
        for _ in 0..3000 {
            let (header, _) = &cases[rng.below(cases.len())];
            let mut input = with_request(header);
            for _ in 0..1 + rng.below(3) {
                let at = rng.below(input.len());
                input[at] = match rng.below(4) {
                    0 => b' ',
                    1 => b'\r',
                    2 => b'0' + (rng.below(10) as u8),
                    _ => rng.next() as u8,
                };
            }
            if rng.below(4) == 0 {
                input.truncate(rng.below(input.len()));
            }
            for accept in [Accept::V1, Accept::V2, Accept::Any] {
                assert_settles(&input, accept);
            }
        }
    }
}
