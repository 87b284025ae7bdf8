//! WebSockets (RFC 6455) for the ASGI worker: the opening handshake, and the
//! framing of an open connection through tungstenite, driven over in-memory
//! buffers so the worker's event loop keeps the socket.
//!
//! tungstenite reassembles fragmented messages, checks UTF-8 in text
//! messages, enforces the message size limit, answers pings with pongs and
//! runs the closing handshake; the loop moves bytes between the connection
//! and [`Socket`]'s buffers, so plain and TLS connections are served alike.

use std::io::{self, Read, Write};

use tungstenite::Message;
use tungstenite::protocol::frame::CloseFrame;
use tungstenite::protocol::frame::coding::CloseCode;
use tungstenite::protocol::{Role, WebSocket, WebSocketConfig};

use crate::http::head::RequestHead;

/// Why an `Upgrade: websocket` request cannot be accepted (answered 400,
/// or 426 for an unsupported version).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum HandshakeError {
    /// Not a GET, or no `Connection: upgrade`, or no key.
    #[error("not a valid WebSocket handshake: {0}")]
    Invalid(&'static str),
    /// `Sec-WebSocket-Version` is not 13.
    #[error("unsupported WebSocket version")]
    Version,
}

/// True when the request asks to become a WebSocket.
pub fn is_upgrade(head: &RequestHead) -> bool {
    head.header("upgrade").is_some_and(|v| {
        v.split(|&b| b == b',')
            .any(|t| t.trim_ascii().eq_ignore_ascii_case(b"websocket"))
    })
}

/// Check the handshake (RFC 6455 §4.2.1) and return the
/// `Sec-WebSocket-Accept` value for it.
///
/// # Errors
/// What is wrong with the request.
pub fn accept_key(head: &RequestHead) -> Result<String, HandshakeError> {
    if head.method() != "GET" {
        return Err(HandshakeError::Invalid("the method is not GET"));
    }
    let upgrade_token = head.headers().any(|(name, value)| {
        name.eq_ignore_ascii_case("connection")
            && value
                .split(|&b| b == b',')
                .any(|t| t.trim_ascii().eq_ignore_ascii_case(b"upgrade"))
    });
    if !upgrade_token {
        return Err(HandshakeError::Invalid("no Connection: upgrade"));
    }
    if head.header("sec-websocket-version").map(<[u8]>::trim_ascii) != Some(b"13") {
        return Err(HandshakeError::Version);
    }
    let Some(key) = head.header("sec-websocket-key").map(<[u8]>::trim_ascii) else {
        return Err(HandshakeError::Invalid("no Sec-WebSocket-Key"));
    };
    Ok(tungstenite::handshake::derive_accept_key(key))
}

/// The connection's bytes as tungstenite sees them: what arrived, and what
/// it wants written.
#[derive(Default)]
struct Buffers {
    input: Vec<u8>,
    pos: usize,
    output: Vec<u8>,
}

impl Read for Buffers {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let rest = &self.input[self.pos..];
        if rest.is_empty() {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        let n = rest.len().min(buf.len());
        buf[..n].copy_from_slice(&rest[..n]);
        self.pos += n;
        if self.pos == self.input.len() {
            self.input.clear();
            self.pos = 0;
        }
        Ok(n)
    }
}

impl Write for Buffers {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.output.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// What reading produced.
#[derive(Debug, PartialEq, Eq)]
pub enum Event {
    /// A whole text message.
    Text(String),
    /// A whole binary message.
    Binary(Vec<u8>),
    /// The client closed (code, reason); our reply is queued.
    Closed(u16, String),
    /// The client broke the protocol or the size limit: we close with this
    /// code (1002 protocol error, 1007 bad UTF-8, 1009 too big).
    Failed(u16),
}

/// An open WebSocket, server side.
pub struct Socket {
    ws: WebSocket<Buffers>,
    /// The client broke the protocol: the close frame is queued, nothing
    /// more is read (the byte stream is out of step), the connection ends.
    failed: bool,
}

impl Socket {
    /// A socket whose handshake is done; `max_message` bounds a message,
    /// fragments together.
    pub fn new(max_message: usize) -> Socket {
        let config = WebSocketConfig::default()
            .max_message_size(Some(max_message))
            .max_frame_size(Some(max_message));
        Socket {
            ws: WebSocket::from_raw_socket(Buffers::default(), Role::Server, Some(config)),
            failed: false,
        }
    }

    /// Bytes that arrived from the client.
    pub fn feed(&mut self, bytes: &[u8]) {
        self.ws.get_mut().input.extend_from_slice(bytes);
    }

    /// The next complete message, if the bytes fed so far hold one. Pings are
    /// answered and pongs dropped on the way.
    pub fn next_event(&mut self) -> Option<Event> {
        if self.failed {
            return None;
        }
        loop {
            match self.ws.read() {
                Ok(Message::Text(t)) => return Some(Event::Text(t.as_str().to_owned())),
                Ok(Message::Binary(b)) => return Some(Event::Binary(b.to_vec())),
                Ok(Message::Close(frame)) => {
                    let (code, reason) = match frame {
                        Some(f) => (u16::from(f.code), f.reason.as_str().to_owned()),
                        None => (1005, String::new()),
                    };
                    // tungstenite queued our reply; have it written.
                    let _ = self.ws.flush();
                    return Some(Event::Closed(code, reason));
                }
                Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_)) => {
                    let _ = self.ws.flush();
                }
                Err(tungstenite::Error::Io(e)) if e.kind() == io::ErrorKind::WouldBlock => {
                    let _ = self.ws.flush();
                    return None;
                }
                Err(tungstenite::Error::ConnectionClosed | tungstenite::Error::AlreadyClosed) => {
                    return None;
                }
                Err(e) => {
                    let code = match e {
                        tungstenite::Error::Capacity(_) => CloseCode::Size,
                        tungstenite::Error::Utf8(_) => CloseCode::Invalid,
                        _ => CloseCode::Protocol,
                    };
                    self.close(code.into(), "");
                    self.failed = true;
                    return Some(Event::Failed(code.into()));
                }
            }
        }
    }

    /// Queue a message.
    pub fn send(&mut self, message: crate::asgi::WsData) {
        let message = match message {
            crate::asgi::WsData::Text(t) => Message::text(t),
            crate::asgi::WsData::Binary(b) => Message::binary(b),
        };
        if self.ws.write(message).is_ok() {
            let _ = self.ws.flush();
        }
    }

    /// Start the closing handshake with `code` (a no-op once closing).
    pub fn close(&mut self, code: u16, reason: &str) {
        let frame = CloseFrame {
            code: CloseCode::from(code),
            reason: reason.to_owned().into(),
        };
        let _ = self.ws.close(Some(frame));
        let _ = self.ws.flush();
    }

    /// Bytes to write to the client (taken: the caller writes them).
    pub fn output(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.ws.get_mut().output)
    }

    /// Both sides have sent their close frames, or the client broke the
    /// protocol (then ours is the last frame).
    pub fn is_closed(&self) -> bool {
        self.failed || (!self.ws.can_read() && !self.ws.can_write())
    }

    /// We may still send messages.
    pub fn can_send(&self) -> bool {
        self.ws.can_write()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A masked client frame.
    fn frame(fin: bool, opcode: u8, payload: &[u8]) -> Vec<u8> {
        let mask = [1u8, 2, 3, 4];
        let mut out = vec![(u8::from(fin) << 7) | opcode];
        match payload.len() {
            n if n < 126 => out.push(0x80 | n as u8),
            n => {
                out.push(0x80 | 126);
                out.extend_from_slice(&(n as u16).to_be_bytes());
            }
        }
        out.extend_from_slice(&mask);
        out.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
        out
    }

    fn head(raw: &str) -> RequestHead {
        crate::http::head::parse(raw.as_bytes(), &Default::default())
            .unwrap()
            .unwrap()
            .0
    }

    #[test]
    fn the_handshake_gives_rfc_6455s_accept_key() {
        let h = head(
            "GET /chat HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: keep-alive, Upgrade\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
        );
        assert!(is_upgrade(&h));
        assert_eq!(accept_key(&h).unwrap(), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
        let old = head(
            "GET / HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: a\r\nSec-WebSocket-Version: 8\r\n\r\n",
        );
        assert_eq!(accept_key(&old), Err(HandshakeError::Version));
        let post = head("POST / HTTP/1.1\r\nUpgrade: websocket\r\nContent-Length: 0\r\n\r\n");
        assert!(matches!(accept_key(&post), Err(HandshakeError::Invalid(_))));
    }

    #[test]
    fn fragments_are_reassembled_and_pings_answered_between_them() {
        let mut s = Socket::new(1 << 20);
        let mut input = frame(false, 0x1, b"Hel");
        input.extend(frame(true, 0x9, b"p"));
        input.extend(frame(false, 0x0, b"lo, "));
        input.extend(frame(true, 0x0, b"world"));
        s.feed(&input);
        assert_eq!(s.next_event(), Some(Event::Text("Hello, world".into())));
        // The pong: unmasked, opcode 0xA, payload "p".
        assert_eq!(s.output(), vec![0x8A, 1, b'p']);
        assert_eq!(s.next_event(), None);
    }

    #[test]
    fn a_message_over_the_limit_closes_with_1009() {
        let mut s = Socket::new(16);
        s.feed(&frame(true, 0x2, &[0u8; 17]));
        assert_eq!(s.next_event(), Some(Event::Failed(1009)));
        let out = s.output();
        assert_eq!(&out[..4], &[0x88, 2, 0x03, 0xF1]);
    }

    #[test]
    fn a_client_close_is_answered_with_its_code() {
        let mut s = Socket::new(1 << 20);
        let mut payload = 1000u16.to_be_bytes().to_vec();
        payload.extend_from_slice(b"bye");
        s.feed(&frame(true, 0x8, &payload));
        assert_eq!(s.next_event(), Some(Event::Closed(1000, "bye".into())));
        // Our reply echoes the code and reason, unmasked.
        assert_eq!(s.output(), vec![0x88, 5, 0x03, 0xE8, b'b', b'y', b'e']);
        assert!(s.is_closed());
    }

    #[test]
    fn invalid_utf8_in_text_closes_with_1007() {
        let mut s = Socket::new(1 << 20);
        s.feed(&frame(true, 0x1, &[0xff, 0xfe]));
        assert_eq!(s.next_event(), Some(Event::Failed(1007)));
        // The stream is out of step: nothing more is read, and it is over.
        s.feed(&frame(true, 0x1, b"more"));
        assert_eq!(s.next_event(), None);
        assert!(s.is_closed());
    }
}
