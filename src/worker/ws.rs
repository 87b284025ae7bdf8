//! The event loop's side of an ASGI WebSocket (`-k asgi`): the 101
//! response once the app accepts, then frames both ways through
//! [`crate::websocket::Socket`], read only as the app's `receive()` asks,
//! until both close frames are out.

use std::time::Instant;

use crate::asgi::{CallId, Inbound, Outbound, WsData};
use crate::http::head::Version;
use crate::http::response::{self, Framing};
use crate::websocket::{self, Event};

use super::asgi::take_call;
use super::conn::Phase;
use super::event_loop::Server;

/// An open WebSocket.
pub(super) struct WsConn {
    pub(super) id: CallId,
    socket: websocket::Socket,
    /// The app awaits a message.
    want: bool,
    /// The app waits until the output is written.
    wait_ack: bool,
    /// The app has been told the socket closed.
    pub(super) told: bool,
    /// The closing handshake started at this instant.
    pub(super) closing: Option<Instant>,
}

impl Server<'_> {
    /// `websocket.accept`: the 101 response, then the connection speaks
    /// WebSocket frames.
    pub(super) fn accept_websocket(
        &mut self,
        slot: usize,
        subprotocol: Option<String>,
        headers: Vec<(Vec<u8>, Vec<u8>)>,
    ) {
        let config = self.config;
        let max = config.websocket_max_message_size;
        let Some(conn) = self.conns.get_mut(slot).and_then(Option::as_mut) else {
            return;
        };
        let Some(call) = take_call(&mut conn.phase) else {
            return;
        };
        let Some(key) = &call.ws_accept else {
            return;
        };
        let mut fields = vec![
            (b"Upgrade".to_vec(), b"websocket".to_vec()),
            (b"Connection".to_vec(), b"Upgrade".to_vec()),
            (b"Sec-WebSocket-Accept".to_vec(), key.clone().into_bytes()),
        ];
        if let Some(p) = &subprotocol {
            fields.push((b"Sec-WebSocket-Protocol".to_vec(), p.clone().into_bytes()));
        }
        fields.extend(
            headers
                .iter()
                .filter(|(name, _)| {
                    !(response::is_hop_by_hop(name)
                        || name.eq_ignore_ascii_case(b"sec-websocket-accept")
                        || name.eq_ignore_ascii_case(b"sec-websocket-protocol"))
                })
                .cloned(),
        );
        if conn.wbuf.capacity() == 0 {
            conn.wbuf = self.spare.take();
        }
        response::encode_head(
            &mut conn.wbuf,
            Version::Http11,
            b"101 Switching Protocols",
            &fields,
            Framing::NoBody,
            true,
            self.date.get(),
            config.server_header.as_bytes(),
        );
        let mut socket = websocket::Socket::new(max);
        // Frames the client sent right behind its handshake.
        socket.feed(&conn.rbuf[conn.rpos..]);
        conn.rbuf.clear();
        conn.rpos = 0;
        conn.phase = Phase::WebSocket {
            since: Instant::now(),
            ws: Box::new(WsConn {
                id: call.id,
                socket,
                want: false,
                wait_ack: false,
                told: false,
                closing: None,
            }),
        };
        let mut call = call;
        call.status = 101;
        call.headers = headers;
        self.log_call(slot, &call, false);
    }

    /// One message from the app thread for an open WebSocket.
    pub(super) fn on_ws_reply(&mut self, slot: usize, message: Outbound) {
        let Some(conn) = self.conns.get_mut(slot).and_then(Option::as_mut) else {
            return;
        };
        let Phase::WebSocket { ws, .. } = &mut conn.phase else {
            return;
        };
        match message {
            Outbound::Send { data, wait, .. } => {
                if ws.socket.can_send() {
                    ws.socket.send(data);
                    ws.wait_ack |= wait;
                } else if wait && let Some(asgi) = self.asgi.as_mut() {
                    asgi.send(Inbound::Sent { id: ws.id });
                }
            }
            Outbound::Close { code, reason, .. } => {
                ws.socket.close(code, &reason);
                ws.told = true;
                ws.closing.get_or_insert_with(Instant::now);
            }
            Outbound::WantMessage { .. } => ws.want = true,
            Outbound::Done { failed, .. } => {
                // The handler returned with the socket open: close it.
                ws.told = true;
                ws.socket.close(if failed { 1011 } else { 1000 }, "");
                ws.closing.get_or_insert_with(Instant::now);
            }
            _ => {}
        }
        conn.wbuf.extend_from_slice(&ws.socket.output());
    }

    /// Graceful stop: every open WebSocket gets a 1001 close frame, and its
    /// app is told.
    pub(super) fn close_websockets(&mut self) {
        for slot in 0..self.conns.len() {
            let Some(conn) = self.conns.get_mut(slot).and_then(Option::as_mut) else {
                continue;
            };
            let Phase::WebSocket { ws, .. } = &mut conn.phase else {
                continue;
            };
            if ws.closing.is_some() {
                continue;
            }
            ws.socket.close(1001, "server shutting down");
            ws.closing = Some(Instant::now());
            conn.wbuf.extend_from_slice(&ws.socket.output());
            if let Some(closed) = ws.closed(1001, String::new())
                && let Some(asgi) = self.asgi.as_mut()
            {
                asgi.send(closed);
            }
            self.service(slot);
        }
    }

    /// Drive an open WebSocket: write, read the messages the app asked for,
    /// answer pings, finish the closing handshake.
    pub(super) fn service_websocket(&mut self, slot: usize) {
        loop {
            let Some(conn) = self.conns.get_mut(slot).and_then(Option::as_mut) else {
                return;
            };
            if conn.has_output() {
                match conn.flush() {
                    Ok(true) => {}
                    Ok(false) => return,
                    Err(_) => return self.client_gone(slot),
                }
            }
            let Phase::WebSocket { ws, .. } = &mut conn.phase else {
                return;
            };
            if ws.wait_ack {
                ws.wait_ack = false;
                let id = ws.id;
                if let Some(asgi) = self.asgi.as_mut() {
                    asgi.send(Inbound::Sent { id });
                }
                continue;
            }
            if ws.socket.is_closed() {
                if let Some(closed) = ws.closed(1000, String::new())
                    && let Some(asgi) = self.asgi.as_mut()
                {
                    asgi.send(closed);
                }
                return self.end_websocket(slot);
            }
            if !(ws.want || ws.closing.is_some()) {
                return;
            }
            // Messages already in hand first; then the socket.
            let event = ws.socket.next_event();
            let out = ws.socket.output();
            let wrote = !out.is_empty();
            conn.wbuf.extend_from_slice(&out);
            let Some(event) = event else {
                if wrote {
                    continue;
                }
                if conn.rbuf.capacity() == 0 {
                    conn.rbuf = self.spare.take();
                }
                match conn.fill() {
                    Ok(Some(0)) | Err(_) => return self.client_gone(slot),
                    Ok(None) => return,
                    Ok(Some(_)) => {
                        if let Phase::WebSocket { ws, .. } = &mut conn.phase {
                            ws.socket.feed(&conn.rbuf[conn.rpos..]);
                        }
                        conn.rbuf.clear();
                        conn.rpos = 0;
                        continue;
                    }
                }
            };
            if let Some(inbound) = ws.inbound(event)
                && let Some(asgi) = self.asgi.as_mut()
            {
                asgi.send(inbound);
            }
        }
    }

    /// Both close frames are out: end the connection.
    fn end_websocket(&mut self, slot: usize) {
        if let Some(conn) = self.conn_mut(slot) {
            conn.phase = Phase::Writing {
                since: Instant::now(),
                then: super::conn::AfterWrite::Close,
            };
        }
        self.service(slot);
    }
}

impl WsConn {
    /// What the app hears of `event`; None when it has already been told
    /// the socket closed.
    fn inbound(&mut self, event: Event) -> Option<Inbound> {
        let id = self.id;
        match event {
            Event::Text(t) => {
                self.want = false;
                Some(Inbound::Message {
                    id,
                    data: WsData::Text(t),
                })
            }
            Event::Binary(b) => {
                self.want = false;
                Some(Inbound::Message {
                    id,
                    data: WsData::Binary(b),
                })
            }
            Event::Closed(code, reason) => self.closed(code, reason),
            Event::Failed(code) => self.closed(code, String::new()),
        }
    }

    /// The socket closed with `code`: the app hears it once.
    fn closed(&mut self, code: u16, reason: String) -> Option<Inbound> {
        self.closing.get_or_insert_with(Instant::now);
        if self.told {
            return None;
        }
        self.told = true;
        Some(Inbound::Closed {
            id: self.id,
            code,
            reason,
        })
    }
}
