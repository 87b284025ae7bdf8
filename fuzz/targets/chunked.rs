//! Fuzz target: `http::body::Decoder` for a chunked body, fed in arbitrary
//! splits.
//!
//! Input: two bytes seeding the split sizes, then the byte stream after a
//! `Transfer-Encoding: chunked` head. The stream is decoded once from one
//! buffer and once handed over in pieces, as the worker's reads would; both
//! must agree on the payload, on where the body ends, and on whether (and
//! with which status) it is refused.

use rgunicorn::http::body::Decoder;
use rgunicorn::http::head::BodyKind;

/// What decoding one stream produced.
#[derive(Debug, PartialEq, Eq)]
struct Outcome {
    payload: Vec<u8>,
    consumed: usize,
    done: bool,
    /// The refusal's status: the message may name a different first defect
    /// when bytes arrive apart, the status may not differ.
    refused: Option<u16>,
}

/// Decode `stream`, making `piece()` more bytes available each time the
/// decoder needs more, as socket reads would.
fn decode(stream: &[u8], mut piece: impl FnMut() -> usize) -> Outcome {
    let mut decoder = Decoder::new(BodyKind::Chunked);
    let mut payload = Vec::new();
    let mut pos = 0;
    let mut avail = 0;
    let mut refused = None;
    loop {
        match decoder.decode(&stream[pos..avail]) {
            Ok(d) => {
                payload.extend_from_slice(d.data);
                pos += d.consumed;
                assert!(pos <= avail, "consumed past its input");
                if decoder.is_done() {
                    break;
                }
                if d.consumed == 0 {
                    if avail == stream.len() {
                        break;
                    }
                    avail = (avail + piece()).min(stream.len());
                }
            }
            Err(e) => {
                refused = Some(e.status());
                break;
            }
        }
    }
    // A refused body's payload and length mean nothing: the connection is
    // answered and closed. Only the status must agree.
    if refused.is_some() {
        payload.clear();
        pos = 0;
    }
    Outcome {
        payload,
        consumed: pos,
        done: decoder.is_done(),
        refused,
    }
}

fn check(data: &[u8]) {
    let Some((seed, stream)) = data.split_at_checked(2) else {
        return;
    };
    let whole = decode(stream, || stream.len());
    // xorshift32 from the two seed bytes: pieces of 1 to 16 bytes.
    let mut state = u32::from(u16::from_le_bytes([seed[0], seed[1]])) | 0x1_0000;
    let split = decode(stream, || {
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        (state % 16) as usize + 1
    });
    assert_eq!(whole, split, "split decoding differs from whole");
    let byte_at_a_time = decode(stream, || 1);
    assert_eq!(whole, byte_at_a_time, "byte-at-a-time decoding differs");
    if whole.done {
        // The last chunk alone is five bytes of framing: `0\r\n\r\n`.
        assert!(
            whole.payload.len() + 5 <= whole.consumed,
            "framing unaccounted"
        );
    }
}

fn main() {
    afl::fuzz!(|data: &[u8]| check(data));
}
