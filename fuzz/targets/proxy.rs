//! Fuzz target: `proxy::parse`, the PROXY protocol v1/v2 header parser.
//!
//! Input: one byte choosing what the listener accepts (v1, v2 or either),
//! then the first bytes of a connection. Beyond "no panic", it checks the
//! contract the worker relies on when bytes trickle in: a header consumes no
//! more than it was given and no less than its signature, parses the same
//! from exactly its own bytes, and every shorter prefix asks for more; and
//! once a prefix is refused, the whole input is refused too.

use rgunicorn::proxy::{self, Accept};

fn check(data: &[u8]) {
    let Some((&mode, buf)) = data.split_first() else {
        return;
    };
    let accept = match mode % 3 {
        0 => Accept::V1,
        1 => Accept::V2,
        _ => Accept::Any,
    };
    let whole = proxy::parse(buf, accept);
    let step = (buf.len() / 64).max(1);
    for cut in (0..buf.len()).step_by(step) {
        let partial = proxy::parse(&buf[..cut], accept);
        match (&whole, &partial) {
            (Ok(Some((_, used))), _) if cut < *used => {
                assert_eq!(partial, Ok(None), "prefix of {cut} bytes of a header");
            }
            (Ok(_), Err(e)) => panic!("prefix of {cut} bytes refused ({e}), whole accepted"),
            _ => {}
        }
    }
    if let Ok(Some((header, used))) = whole {
        assert!(
            used <= buf.len() && used >= 8,
            "consumed {used} of {}",
            buf.len()
        );
        let again = proxy::parse(&buf[..used], accept);
        assert_eq!(
            again,
            Ok(Some((header, used))),
            "header differs on its own bytes"
        );
    }
}

fn main() {
    afl::fuzz!(|data: &[u8]| check(data));
}
