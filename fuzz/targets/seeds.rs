//! Writes each fuzz target's starting inputs from the request corpus, so the
//! fuzzer starts from requests that reach deep into the parsers.
//!
//! Usage: `seeds CORPUS_DIR OUT_DIR` with `CORPUS_DIR` = `tests/requests`;
//! writes `OUT_DIR/head/` (every `.http`, once per limits mode) and
//! `OUT_DIR/chunked/` (what follows the head of every chunked request).

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
    for target in ["head", "chunked"] {
        fs::create_dir_all(out.join(target)).expect("create seed dir");
    }
    let mut count = [0usize; 2];
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
        }
    }
    println!("{} head seeds, {} chunked seeds", count[0], count[1]);
}
