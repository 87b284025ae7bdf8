//! Writes each fuzz target's starting inputs from the request corpus, so the
//! fuzzer starts from requests that reach deep into the parsers.
//!
//! Usage: `seeds CORPUS_DIR OUT_DIR` with `CORPUS_DIR` = `tests/requests`;
//! writes `OUT_DIR/head/` (every `.http`, once per limits mode),
//! `OUT_DIR/chunked/` (what follows the head of every chunked request) and
//! `OUT_DIR/proxy/` (PROXY v1 lines and v2 blocks, built from HAProxy's
//! proxy-protocol.txt §2.1 and §2.2, each in front of a valid request).

use std::fs;
use std::path::Path;

use rgunicorn::http::head::{self, BodyKind, Limits};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let [_, corpus, out] = args.as_slice() else {
        eprintln!("usage: seeds CORPUS_DIR OUT_DIR");
        std::process::exit(2);
    };
    let out = Path::new(out);
    for target in ["head", "chunked", "proxy"] {
        fs::create_dir_all(out.join(target)).expect("create seed dir");
    }
    let mut count = [0usize; 3];
    for kind in ["valid", "invalid"] {
        let dir = Path::new(corpus).join(kind);
        let mut paths: Vec<_> = fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|e| e.expect("dir entry").path())
            .filter(|p| p.extension().is_some_and(|e| e == "http"))
            .collect();
        paths.sort();
        for path in paths {
            let raw = fs::read(&path).expect("read .http");
            let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or("case");
            for mode in [0u8, 1] {
                let mut seed = vec![mode];
                seed.extend_from_slice(&raw);
                fs::write(out.join("head").join(format!("{kind}-{stem}-{mode}")), seed)
                    .expect("write head seed");
                count[0] += 1;
            }
            if let Ok(Some((h, used))) = head::parse(&raw, &Limits::default())
                && h.body == BodyKind::Chunked
            {
                let mut seed = vec![0x5a, 0xa5];
                seed.extend_from_slice(&raw[used..]);
                fs::write(out.join("chunked").join(format!("{kind}-{stem}")), seed)
                    .expect("write chunked seed");
                count[1] += 1;
            }
            if kind == "valid" && count[2] < 3 * PROXY_SEED_REQUESTS * proxy_headers().len() {
                for (i, header) in proxy_headers().iter().enumerate() {
                    for mode in [0u8, 1, 2] {
                        let mut seed = vec![mode];
                        seed.extend_from_slice(header);
                        seed.extend_from_slice(&raw);
                        let name = format!("{stem}-{i}-{mode}");
                        fs::write(out.join("proxy").join(name), seed).expect("write proxy seed");
                        count[2] += 1;
                    }
                }
            }
        }
    }
    println!(
        "{} head seeds, {} chunked seeds, {} proxy seeds",
        count[0], count[1], count[2]
    );
}

/// Valid requests that get each PROXY header in front of them.
const PROXY_SEED_REQUESTS: usize = 4;

/// One header of each shape the parser knows.
fn proxy_headers() -> Vec<Vec<u8>> {
    const V2_SIGNATURE: &[u8] = b"\r\n\r\n\0\r\nQUIT\n";
    let v2 = |ver_cmd: u8, family: u8, addresses: &[u8]| {
        let mut h = V2_SIGNATURE.to_vec();
        h.push(ver_cmd);
        h.push(family);
        let len = u16::try_from(addresses.len()).expect("short address block");
        h.extend_from_slice(&len.to_be_bytes());
        h.extend_from_slice(addresses);
        h
    };
    let ipv4 = [192, 0, 2, 1, 198, 51, 100, 2, 0xd4, 0x31, 0x01, 0xbb];
    let mut ipv6 = Vec::new();
    ipv6.extend_from_slice(&[0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
    ipv6.extend_from_slice(&[0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2]);
    ipv6.extend_from_slice(&[0xd4, 0x31, 0x01, 0xbb]);
    // A NOOP TLV (type 0x04) after the IPv4 addresses.
    let mut ipv4_tlv = ipv4.to_vec();
    ipv4_tlv.extend_from_slice(&[0x04, 0x00, 0x02, 0xaa, 0xbb]);
    vec![
        b"PROXY TCP4 192.0.2.1 198.51.100.2 54321 443\r\n".to_vec(),
        b"PROXY TCP6 2001:db8::1 2001:db8::2 54321 443\r\n".to_vec(),
        b"PROXY UNKNOWN\r\n".to_vec(),
        v2(0x21, 0x11, &ipv4),
        v2(0x21, 0x21, &ipv6),
        v2(0x21, 0x11, &ipv4_tlv),
        v2(0x20, 0x00, &[]),
    ]
}
