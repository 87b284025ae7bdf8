//! Fuzz target: `http::head::parse` on arbitrary bytes.
//!
//! Input: one mode byte, then the buffer. Bit 0 turns every Gunicorn
//! leniency switch on (the slow paths that rewrite a copy of the head); bit 1
//! uses small limits, so the 414/431 paths and the head budget are reached.
//!
//! Beyond "no panic", it checks what the worker relies on: a complete head
//! consumes no more than it was given, parses the same from exactly its own
//! bytes, and every shorter prefix is incomplete (so a head sent a byte at a
//! time parses as it does whole).

use rgunicorn::http::head::{self, Leniency, Limits};

fn limits(mode: u8) -> Limits {
    let mut limits = if mode & 2 == 0 {
        Limits::default()
    } else {
        Limits {
            request_line: 64,
            fields: 4,
            field_size: 64,
            ..Limits::default()
        }
    };
    if mode & 1 == 1 {
        limits.leniency = Leniency {
            unconventional_method: true,
            unconventional_version: true,
            casefold_method: true,
            strip_header_spaces: true,
            obsolete_folding: true,
        };
    }
    limits
}

fn check(data: &[u8]) {
    let Some((&mode, buf)) = data.split_first() else {
        return;
    };
    let limits = limits(mode);
    let Ok(Some((head, used))) = head::parse(buf, &limits) else {
        return;
    };
    assert!(
        used <= buf.len() && used > 0,
        "consumed {used} of {}",
        buf.len()
    );
    let again = head::parse(&buf[..used], &limits);
    assert_eq!(
        again,
        Ok(Some((head, used))),
        "head differs on its own bytes"
    );
    // Every prefix would be too slow on big inputs; a spread of cut points
    // finds the same bugs.
    let step = (used / 64).max(1);
    for cut in (0..used).step_by(step).chain([used - 1]) {
        let partial = head::parse(&buf[..cut], &limits);
        assert_eq!(
            partial,
            Ok(None),
            "prefix of {cut} bytes of a complete head"
        );
    }
}

fn main() {
    afl::fuzz!(|data: &[u8]| check(data));
}
