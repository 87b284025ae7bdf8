//! A minimal RFC 6455 client for the ASGI tests: the opening handshake, then
//! raw frames written and read one at a time, so a test controls exactly what
//! goes on the wire (fragments, a ping between them, close codes) and sees
//! exactly what comes back (a pong, a close frame and its code).
//!
//! Client frames are always masked (RFC 6455 §5.3); server frames must not be
//! (§5.1), and a masked one fails the read.

use std::io;
use std::time::Duration;

use super::client::{Conn, Response};

/// The sample nonce of RFC 6455 §1.3, so the expected accept value is a
/// constant instead of a SHA-1 computed here.
pub const KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";
/// `base64(sha1(KEY + GUID))`, also from RFC 6455 §1.3.
pub const ACCEPT: &str = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";

/// Frame opcodes (RFC 6455 §5.2).
pub mod op {
    /// Continuation of a fragmented message.
    pub const CONTINUATION: u8 = 0x0;
    /// A text (UTF-8) frame.
    pub const TEXT: u8 = 0x1;
    /// A binary frame.
    pub const BINARY: u8 = 0x2;
    /// Close, with an optional 2-byte code and reason.
    pub const CLOSE: u8 = 0x8;
    /// Ping.
    pub const PING: u8 = 0x9;
    /// Pong.
    pub const PONG: u8 = 0xA;
}

/// One frame as the server sent it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// The FIN bit.
    pub fin: bool,
    /// The opcode.
    pub opcode: u8,
    /// The (unmasked) payload.
    pub payload: Vec<u8>,
}

impl Frame {
    /// The close code of a close frame (None without a payload).
    pub fn close_code(&self) -> Option<u16> {
        (self.opcode == op::CLOSE && self.payload.len() >= 2)
            .then(|| u16::from_be_bytes([self.payload[0], self.payload[1]]))
    }
}

/// A message reassembled from frames.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// A text message.
    Text(String),
    /// A binary message.
    Binary(Vec<u8>),
}

/// The handshake request for `path`, offering `protocols` (if any).
pub fn handshake_request(path: &str, protocols: &[&str]) -> String {
    let mut req = format!(
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n\
         Connection: Upgrade\r\nSec-WebSocket-Key: {KEY}\r\nSec-WebSocket-Version: 13\r\n"
    );
    if !protocols.is_empty() {
        req.push_str(&format!(
            "Sec-WebSocket-Protocol: {}\r\n",
            protocols.join(", ")
        ));
    }
    req.push_str("\r\n");
    req
}

/// An open WebSocket connection over a [`Conn`].
pub struct WebSocket {
    conn: Conn,
    /// The server's 101 response.
    pub response: Response,
    mask_seed: u32,
}

impl WebSocket {
    /// Sends the handshake for `path` on `conn` and returns the server's
    /// response: Ok(socket) on a valid 101, Err(response) on anything else.
    /// A 101 without the right `Sec-WebSocket-Accept` fails the test.
    #[track_caller]
    pub fn handshake(
        mut conn: Conn,
        path: &str,
        protocols: &[&str],
    ) -> Result<WebSocket, Response> {
        conn.send(handshake_request(path, protocols).as_bytes());
        let response = conn.read_head_response();
        if response.status != 101 {
            return Err(response);
        }
        assert_eq!(
            response.header("Sec-WebSocket-Accept"),
            Some(ACCEPT),
            "bad accept value: {}",
            response.dump()
        );
        assert!(
            response
                .header("Upgrade")
                .is_some_and(|u| u.eq_ignore_ascii_case("websocket")),
            "101 without Upgrade: websocket: {}",
            response.dump()
        );
        Ok(WebSocket {
            conn,
            response,
            mask_seed: 0x1234_5678,
        })
    }

    /// [`WebSocket::handshake`] that fails the test unless the server
    /// switches protocols.
    #[track_caller]
    pub fn open(conn: Conn, path: &str, protocols: &[&str]) -> WebSocket {
        match WebSocket::handshake(conn, path, protocols) {
            Ok(ws) => ws,
            Err(r) => panic!("websocket handshake for {path} refused: {}", r.dump()),
        }
    }

    /// Sets the read timeout for the following reads.
    pub fn set_read_timeout(&mut self, t: Duration) {
        self.conn.set_read_timeout(t);
    }

    /// Writes `bytes` as they are: frames a well-behaved client would not send.
    #[track_caller]
    pub fn send_raw(&mut self, bytes: &[u8]) {
        self.conn.send(bytes);
    }

    /// Writes one masked frame.
    #[track_caller]
    pub fn send_frame(&mut self, fin: bool, opcode: u8, payload: &[u8]) {
        if let Err(e) = self.try_send_frame(fin, opcode, payload) {
            panic!("writing a websocket frame: {e}");
        }
    }

    /// [`WebSocket::send_frame`], returning the error.
    pub fn try_send_frame(&mut self, fin: bool, opcode: u8, payload: &[u8]) -> io::Result<()> {
        let frame = encode_frame(fin, opcode, payload, self.next_mask());
        self.conn.try_send(&frame)
    }

    /// Sends a whole text message in one frame.
    #[track_caller]
    pub fn send_text(&mut self, text: &str) {
        self.send_frame(true, op::TEXT, text.as_bytes());
    }

    /// Sends a whole binary message in one frame.
    #[track_caller]
    pub fn send_binary(&mut self, data: &[u8]) {
        self.send_frame(true, op::BINARY, data);
    }

    /// Sends a close frame with `code` (and no reason).
    #[track_caller]
    pub fn send_close(&mut self, code: u16) {
        self.send_frame(true, op::CLOSE, &code.to_be_bytes());
    }

    /// Reads one frame; errors on timeout, EOF or a masked server frame.
    pub fn try_recv_frame(&mut self) -> io::Result<Frame> {
        let mut head = [0u8; 2];
        self.conn.try_read_exact(&mut head)?;
        let fin = head[0] & 0x80 != 0;
        let opcode = head[0] & 0x0F;
        if head[1] & 0x80 != 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "server frame is masked (RFC 6455 §5.1)",
            ));
        }
        let len = match head[1] & 0x7F {
            126 => {
                let mut b = [0u8; 2];
                self.conn.try_read_exact(&mut b)?;
                u64::from(u16::from_be_bytes(b))
            }
            127 => {
                let mut b = [0u8; 8];
                self.conn.try_read_exact(&mut b)?;
                u64::from_be_bytes(b)
            }
            n => u64::from(n),
        };
        let len = usize::try_from(len)
            .ok()
            .filter(|n| *n <= 64 << 20)
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "frame over 64 MiB"))?;
        let mut payload = vec![0u8; len];
        self.conn.try_read_exact(&mut payload)?;
        Ok(Frame {
            fin,
            opcode,
            payload,
        })
    }

    /// Reads one frame; fails the test on error.
    #[track_caller]
    pub fn recv_frame(&mut self) -> Frame {
        match self.try_recv_frame() {
            Ok(f) => f,
            Err(e) => panic!("reading a websocket frame: {e}"),
        }
    }

    /// Reads frames until a whole data message has arrived and returns it.
    /// Fails the test on a close frame, a pong nobody asked for, or an error.
    #[track_caller]
    pub fn recv_message(&mut self) -> Message {
        let mut first: Option<u8> = None;
        let mut data = Vec::new();
        loop {
            let f = self.recv_frame();
            match f.opcode {
                op::TEXT | op::BINARY if first.is_none() => first = Some(f.opcode),
                op::CONTINUATION if first.is_some() => {}
                _ => panic!("expected a data frame, got {f:?}"),
            }
            data.extend_from_slice(&f.payload);
            if f.fin {
                break;
            }
        }
        match first {
            Some(op::TEXT) => Message::Text(
                String::from_utf8(data).unwrap_or_else(|e| panic!("text not UTF-8: {e}")),
            ),
            _ => Message::Binary(data),
        }
    }

    /// Reads frames until a close frame arrives (data frames before it are
    /// skipped) within `timeout`; returns its code.
    #[track_caller]
    pub fn expect_close(&mut self, timeout: Duration) -> Option<u16> {
        self.set_read_timeout(timeout);
        loop {
            match self.try_recv_frame() {
                Ok(f) if f.opcode == op::CLOSE => return f.close_code(),
                Ok(_) => {}
                Err(e) => panic!("no close frame within {timeout:?}: {e}"),
            }
        }
    }

    /// Asserts the server closes the TCP connection within `timeout`,
    /// sending nothing more.
    #[track_caller]
    pub fn expect_tcp_closed(&mut self, timeout: Duration) {
        self.conn.expect_closed(timeout);
    }

    fn next_mask(&mut self) -> [u8; 4] {
        // xorshift32: masks differ frame to frame, deterministically.
        let mut x = self.mask_seed;
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        self.mask_seed = x;
        x.to_be_bytes()
    }
}

/// One client frame: FIN/opcode, the mask bit and length, the key, then the
/// payload XORed with it (RFC 6455 §5.2, §5.3).
pub fn encode_frame(fin: bool, opcode: u8, payload: &[u8], mask: [u8; 4]) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload.len() + 14);
    out.push(if fin { 0x80 } else { 0 } | (opcode & 0x0F));
    match payload.len() {
        n if n < 126 => out.push(0x80 | n as u8),
        n if n <= 0xFFFF => {
            out.push(0x80 | 126);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            out.push(0x80 | 127);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    out.extend_from_slice(&mask);
    out.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    out
}
