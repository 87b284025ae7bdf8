//! The event loop's side of an ASGI app call (`-k asgi`): handing a parsed
//! request to the app thread, feeding it the body as it asks, writing what it
//! sends, and WebSockets once it accepts one.
//!
//! A connection whose call runs is in `Phase::Asgi`; once its response is
//! complete it goes on as any connection does (Writing, then Idle or
//! Lingering) even while the call itself still runs (background work after
//! the response). An accepted WebSocket is `Phase::WebSocket` until both
//! close frames are out. The app thread is told when the client goes away,
//! whatever the phase.

use std::fs::File;
use std::io::Read;
use std::os::fd::AsRawFd;
use std::time::Instant;

use crate::asgi::{CallId, Inbound, Outbound, Start};
use crate::http::body::Decoder;
use crate::http::head::{BodyKind, RequestHead};
use crate::http::response::{self, Framing};
use crate::log::access::Entry;
use crate::websocket;

use super::conn::Phase;
use super::dispatch::Started;
use super::event_loop::Server;

/// Request body bytes handed to the app per `http.request` event.
const BODY_CHUNK: usize = 64 * 1024;
/// File bytes read per turn for `http.response.pathsend`.
const FILE_CHUNK: usize = 256 * 1024;
/// Unread input kept while the app runs (pipelined requests, body it has not
/// asked for yet): past this, the loop reads no more until it does.
const INPUT_LIMIT: usize = 64 * 1024;

/// An app call in progress on a connection.
pub(super) struct AsgiCall {
    pub(super) id: CallId,
    pub(super) head: std::sync::Arc<RequestHead>,
    pub(super) started: Started,
    /// The request body still to be read.
    body: Decoder,
    /// The app awaits body bytes.
    want_body: bool,
    /// `Expect: 100-continue` still to be answered (at the first body read).
    expect_continue: bool,
    keep_alive_allowed: bool,
    /// The WebSocket handshake's accept key (an upgrade request).
    pub(super) ws_accept: Option<String>,
    /// Once `http.response.start` came: how the body is framed, and whether
    /// the connection persists.
    framing: Option<(Framing, bool)>,
    pub(super) status: u16,
    pub(super) headers: Vec<(Vec<u8>, Vec<u8>)>,
    /// Body bytes sent (the app's, without framing).
    bytes: u64,
    /// The app waits until the output is written.
    wait_ack: bool,
    /// `http.response.pathsend`: the file still to be sent.
    file: Option<File>,
    /// The client has not read for this long (set when a write would block).
    pub(super) stalled: Option<Instant>,
}

impl Server<'_> {
    /// Start an app call for `head` on `slot`.
    pub(super) fn dispatch_asgi(
        &mut self,
        slot: usize,
        head: RequestHead,
        keep_alive_allowed: bool,
        started: Started,
    ) {
        let config = self.config;
        let Some(conn) = self.conns.get_mut(slot).and_then(Option::as_mut) else {
            return;
        };
        let front = match crate::wsgi::forwarded(config, &conn.info, &head) {
            Ok(f) => f,
            Err(e) => {
                crate::log::debug!("refused from {}: {e}", conn.info.remote_addr);
                return self.refuse(slot, 400, "Bad Request");
            }
        };
        let ws_accept = match websocket::is_upgrade(&head) {
            false => None,
            true => match websocket::accept_key(&head) {
                Ok(key) => Some(key),
                Err(websocket::HandshakeError::Version) => {
                    return self.refuse(slot, 426, "Upgrade Required");
                }
                Err(_) => return self.refuse(slot, 400, "Bad Request"),
            },
        };
        let (first, more, body) = first_body(&head, &conn.rbuf, &mut conn.rpos);
        let Some(asgi) = self.asgi.as_mut() else {
            return;
        };
        let id = asgi.next_id(slot);
        let head = std::sync::Arc::new(head);
        let start = Start {
            id,
            websocket: ws_accept.is_some(),
            head: head.clone(),
            info: conn.info.clone(),
            https: conn.wire.is_tls() || front.https,
            root_path: front.script_name.unwrap_or_default(),
            body: first,
            more_body: more,
        };
        asgi.send(Inbound::Start(Box::new(start)));
        let expect_continue = head.expect_continue && more;
        conn.phase = Phase::Asgi {
            since: started.clock,
            call: Box::new(AsgiCall {
                id,
                head,
                started,
                body,
                want_body: false,
                expect_continue,
                keep_alive_allowed,
                ws_accept,
                framing: None,
                status: 0,
                headers: Vec::new(),
                bytes: 0,
                wait_ack: false,
                file: None,
                stalled: None,
            }),
        };
    }

    /// Take the app thread's messages and act on each, then move the
    /// connections they touched on.
    pub(super) fn collect_asgi(&mut self) {
        let Some(asgi) = self.asgi.as_mut() else {
            return;
        };
        let mut batch = std::mem::take(&mut self.replies);
        asgi.replies(&mut batch);
        let mut touched: Vec<usize> = Vec::new();
        for message in batch.drain(..) {
            let slot = message_id(&message).slot;
            self.on_reply(message);
            if !touched.contains(&slot) {
                touched.push(slot);
            }
        }
        self.replies = batch;
        for slot in touched {
            self.service(slot);
        }
    }

    /// One message from the app thread, for the call it names.
    fn on_reply(&mut self, message: Outbound) {
        let id = message_id(&message);
        let Some(conn) = self.conns.get_mut(id.slot).and_then(Option::as_mut) else {
            return;
        };
        let matches = match &conn.phase {
            Phase::Asgi { call, .. } => call.id == id,
            Phase::WebSocket { ws, .. } => ws.id == id,
            _ => false,
        };
        if !matches {
            // The call's response is complete (or its client gone): what it
            // sends now has nowhere to go.
            return;
        }
        if let Phase::WebSocket { .. } = conn.phase {
            return self.on_ws_reply(id.slot, message);
        }
        match message {
            Outbound::Start {
                status, headers, ..
            } => self.start_response(id.slot, status, headers),
            Outbound::Body {
                data, more, wait, ..
            } => self.response_body(id.slot, &data, more, wait),
            Outbound::PathSend { path, .. } => self.path_send(id.slot, &path),
            Outbound::WantBody { .. } => {
                if let Some(call) = self.call_mut(id.slot) {
                    call.want_body = true;
                }
            }
            Outbound::Accept {
                subprotocol,
                headers,
                ..
            } => self.accept_websocket(id.slot, subprotocol, headers),
            Outbound::Close { .. } => {
                // Closed before the handshake was accepted: refused.
                self.finish_call(id.slot, 403);
            }
            Outbound::Done { failed, .. } => self.call_returned(id.slot, failed),
            Outbound::Send { .. } | Outbound::WantMessage { .. } => {}
        }
    }

    /// The app call running on `slot`, if one is.
    fn call_mut(&mut self, slot: usize) -> Option<&mut AsgiCall> {
        match &mut self.conn_mut(slot)?.phase {
            Phase::Asgi { call, .. } => Some(call),
            _ => None,
        }
    }

    /// `http.response.start`: the head goes into the output buffer.
    fn start_response(&mut self, slot: usize, status: u16, headers: Vec<(Vec<u8>, Vec<u8>)>) {
        let server_header = self.config.server_header.as_bytes().to_vec();
        let date = &mut self.date;
        let spare = &mut self.spare;
        let Some(conn) = self.conns.get_mut(slot).and_then(Option::as_mut) else {
            return;
        };
        let Phase::Asgi { call, .. } = &mut conn.phase else {
            return;
        };
        if call.ws_accept.is_some() {
            // The WebSocket denial response extension is not offered.
            return;
        }
        let mut keep_alive = call.keep_alive_allowed && call.head.keep_alive;
        let mut length = None;
        let mut kept = Vec::with_capacity(headers.len());
        for (name, value) in headers {
            if name.eq_ignore_ascii_case(b"content-length") {
                length = std::str::from_utf8(&value)
                    .ok()
                    .and_then(|v| v.trim().parse::<u64>().ok());
            } else if name.eq_ignore_ascii_case(b"connection") {
                if value
                    .split(|&b| b == b',')
                    .any(|t| t.trim_ascii().eq_ignore_ascii_case(b"close"))
                {
                    keep_alive = false;
                }
                continue;
            } else if response::is_hop_by_hop(&name) {
                continue;
            }
            kept.push((name, value));
        }
        let is_head = call.head.method() == "HEAD";
        let (framing, keep_alive) =
            response::framing(call.head.version, is_head, status, length, keep_alive);
        let mut digits = itoa::Buffer::new();
        let mut line = String::with_capacity(32);
        line.push_str(digits.format(status));
        line.push(' ');
        line.push_str(response::reason_phrase(status));
        if conn.wbuf.capacity() == 0 {
            conn.wbuf = spare.take();
        }
        response::encode_head(
            &mut conn.wbuf,
            call.head.version,
            line.as_bytes(),
            &kept,
            framing,
            keep_alive,
            date.get(),
            &server_header,
        );
        call.framing = Some((framing, keep_alive));
        call.status = status;
        call.headers = kept;
    }

    /// `http.response.body`.
    fn response_body(&mut self, slot: usize, data: &[u8], more: bool, wait: bool) {
        let Some(conn) = self.conns.get_mut(slot).and_then(Option::as_mut) else {
            return;
        };
        let Phase::Asgi { call, .. } = &mut conn.phase else {
            return;
        };
        let Some((framing, _)) = call.framing else {
            return;
        };
        match framing {
            Framing::Chunked => response::encode_chunk(&mut conn.wbuf, data),
            Framing::Length(n) => {
                let room = n.saturating_sub(call.bytes) as usize;
                conn.wbuf.extend_from_slice(&data[..data.len().min(room)]);
            }
            Framing::UntilClose => conn.wbuf.extend_from_slice(data),
            Framing::NoBody => {}
        }
        call.bytes += data.len() as u64;
        if more {
            call.wait_ack |= wait;
            return;
        }
        if framing == Framing::Chunked {
            conn.wbuf.extend_from_slice(response::LAST_CHUNK);
        }
        if wait {
            // The response is complete: nothing left to wait for.
            let id = call.id;
            if let Some(asgi) = self.asgi.as_mut() {
                asgi.send(Inbound::Sent { id });
            }
        }
        self.complete_response(slot);
    }

    /// `http.response.pathsend`: the file follows the head as the socket
    /// takes it.
    fn path_send(&mut self, slot: usize, path: &std::path::Path) {
        match File::open(path) {
            Ok(f) => {
                if let Some(call) = self.call_mut(slot) {
                    call.file = Some(f);
                }
            }
            Err(e) => {
                crate::log::error(&format!("http.response.pathsend {}: {e}", path.display()));
                // The head may be out already: the connection cannot go on.
                if let Some(call) = self.call_mut(slot) {
                    call.framing = call.framing.map(|(f, _)| (f, false));
                }
                self.complete_response(slot);
            }
        }
    }

    /// Read the next piece of a path-send file into the output; at its end,
    /// the response is complete. False when there was nothing to do.
    fn pump_file(&mut self, slot: usize) -> bool {
        let sendfile = self.config.sendfile_enabled;
        let Some(conn) = self.conns.get_mut(slot).and_then(Option::as_mut) else {
            return false;
        };
        let plain = !conn.wire.is_tls() && !conn.has_output();
        let fd = conn.fd.as_raw_fd();
        let Phase::Asgi { call, .. } = &mut conn.phase else {
            return false;
        };
        let Some(file) = call.file.as_mut() else {
            return false;
        };
        let framing = call.framing.map_or(Framing::NoBody, |(f, _)| f);
        let n = match framing {
            // The kernel copies file to socket: nothing passes through us.
            Framing::Length(len) if sendfile && plain => {
                let mut offset = call.bytes as i64;
                let left = len.saturating_sub(call.bytes);
                match crate::sockio::sendfile_some(fd, file.as_raw_fd(), &mut offset, left) {
                    Ok(Some(n)) => n as usize,
                    Ok(None) => {
                        // The socket is full: its writable edge resumes us.
                        call.stalled.get_or_insert_with(Instant::now);
                        return false;
                    }
                    Err(e) => {
                        crate::log::debug!("http.response.pathsend: {e}");
                        0
                    }
                }
            }
            _ => {
                let mut chunk = vec![0u8; FILE_CHUNK];
                let n = match file.read(&mut chunk) {
                    Ok(n) => n,
                    Err(e) => {
                        crate::log::error(&format!("http.response.pathsend: {e}"));
                        0
                    }
                };
                match framing {
                    Framing::Chunked => response::encode_chunk(&mut conn.wbuf, &chunk[..n]),
                    Framing::Length(len) => {
                        let room = len.saturating_sub(call.bytes) as usize;
                        conn.wbuf.extend_from_slice(&chunk[..n.min(room)]);
                    }
                    Framing::UntilClose => conn.wbuf.extend_from_slice(&chunk[..n]),
                    Framing::NoBody => {}
                }
                n
            }
        };
        call.bytes += n as u64;
        let complete = match framing {
            Framing::Length(len) => call.bytes >= len,
            Framing::NoBody => true,
            Framing::Chunked | Framing::UntilClose => n == 0,
        };
        if !complete && n > 0 {
            return true;
        }
        if !complete {
            // The file is shorter than its content-length: the response
            // cannot be finished, so the connection ends with it.
            call.framing = call.framing.map(|(f, _)| (f, false));
        }
        call.file = None;
        if framing == Framing::Chunked {
            conn.wbuf.extend_from_slice(response::LAST_CHUNK);
        }
        self.complete_response(slot);
        true
    }

    /// The last body part is in the output: log the request, and let the
    /// connection go on to its next request (or close) once it is written.
    fn complete_response(&mut self, slot: usize) {
        let Some(conn) = self.conns.get_mut(slot).and_then(Option::as_mut) else {
            return;
        };
        let Phase::Asgi { call, .. } = &mut conn.phase else {
            return;
        };
        let mut keep_alive = call.framing.is_some_and(|(_, k)| k);
        // Body the app never read: skip what is here; any more ends the connection.
        if keep_alive && !call.body.is_done() {
            keep_alive = skip_body(&mut call.body, &conn.rbuf, &mut conn.rpos);
        }
        let Some(call) = take_call(&mut conn.phase) else {
            return;
        };
        conn.phase.response_done(keep_alive, Instant::now());
        self.log_call(slot, &call, false);
    }

    /// The access line, the request counters and statsD for a finished call.
    pub(super) fn log_call(&mut self, slot: usize, call: &AsgiCall, disconnected: bool) {
        let duration = call.started.clock.elapsed();
        let status = match (disconnected, call.status) {
            (true, 0) => crate::wsgi::CLIENT_CLOSED,
            (_, s) => s,
        };
        let tally = self.heartbeat.tally();
        tally.record(call.head.method(), status, duration);
        tally.finish();
        crate::log::statsd::request(status, duration);
        let Some(access) = self.access.as_mut() else {
            return;
        };
        let Some(conn) = self.conns.get(slot).and_then(Option::as_ref) else {
            return;
        };
        let request_headers: Vec<_> = call.head.headers().collect();
        access.log(&Entry {
            remote_addr: &conn.info.remote_addr,
            method: call.head.method(),
            target: call.head.target(),
            protocol: call.head.version.as_str(),
            request_headers: &request_headers,
            status,
            response_headers: &call.headers,
            bytes: call.bytes,
            started: call.started.at,
            duration,
            environ: &[],
            disconnected,
            thread: None,
        });
    }

    /// The app call returned before its response was complete: a 500 if
    /// nothing was sent (403 for a WebSocket never accepted), else the
    /// connection ends, since the body cannot be finished.
    fn call_returned(&mut self, slot: usize, failed: bool) {
        let Some(call) = self.call_mut(slot) else {
            return;
        };
        if call.file.is_some() {
            // A path-send is the whole body: complete once the file is out.
            return;
        }
        if call.framing.is_some() {
            // The body was left unfinished: the connection ends with it.
            call.framing = call.framing.map(|(f, _)| (f, false));
            return self.complete_response(slot);
        }
        let status = match (call.ws_accept.is_some(), failed) {
            (true, false) => 403,
            _ => 500,
        };
        self.finish_call(slot, status);
    }

    /// End a call that never started its response with a canned `status`
    /// page; the connection closes after it.
    fn finish_call(&mut self, slot: usize, status: u16) {
        let server_header = self.config.server_header.as_bytes().to_vec();
        let Some(conn) = self.conns.get_mut(slot).and_then(Option::as_mut) else {
            return;
        };
        let Some(call) = take_call(&mut conn.phase) else {
            return;
        };
        let reason = response::reason_phrase(status);
        response::error_response(
            &mut conn.wbuf,
            status,
            reason,
            self.date.get(),
            &server_header,
        );
        conn.phase.response_done(false, Instant::now());
        let mut call = call;
        call.status = status;
        call.bytes = reason.len() as u64 + 1;
        self.log_call(slot, &call, false);
    }

    /// The connection is being dropped: its app call hears the client left.
    pub(super) fn tell_gone(&mut self, slot: usize) {
        let Some(conn) = self.conns.get_mut(slot).and_then(Option::as_mut) else {
            return;
        };
        if !matches!(conn.phase, Phase::Asgi { .. } | Phase::WebSocket { .. }) {
            return;
        }
        // The connection is about to linger or close: its phase goes.
        let phase = std::mem::replace(
            &mut conn.phase,
            Phase::Idle {
                since: Instant::now(),
            },
        );
        match phase {
            Phase::Asgi { call, .. } => {
                if let Some(asgi) = self.asgi.as_mut() {
                    asgi.send(Inbound::Disconnect { id: call.id });
                }
                self.log_call(slot, &call, true);
            }
            Phase::WebSocket { ws, .. } if !ws.told => {
                if let Some(asgi) = self.asgi.as_mut() {
                    asgi.send(Inbound::Closed {
                        id: ws.id,
                        code: 1006,
                        reason: String::new(),
                    });
                }
            }
            _ => {}
        }
    }

    /// Drive a connection whose app call runs: write what it sent, feed it
    /// the body it asked for, and see the client leave.
    pub(super) fn service_asgi(&mut self, slot: usize) {
        loop {
            let now = Instant::now();
            let Some(conn) = self.conns.get_mut(slot).and_then(Option::as_mut) else {
                return;
            };
            if conn.has_output() {
                match conn.flush() {
                    Ok(true) => {}
                    Ok(false) => {
                        if let Phase::Asgi { call, .. } = &mut conn.phase {
                            call.stalled.get_or_insert(now);
                        }
                        return;
                    }
                    Err(_) => return self.client_gone(slot),
                }
            }
            let Phase::Asgi { call, .. } = &mut conn.phase else {
                // The response completed: the connection goes on as any does.
                return self.service(slot);
            };
            call.stalled = None;
            if call.wait_ack {
                call.wait_ack = false;
                let id = call.id;
                if let Some(asgi) = self.asgi.as_mut() {
                    asgi.send(Inbound::Sent { id });
                }
                continue;
            }
            if call.file.is_some() {
                if self.pump_file(slot) {
                    continue;
                }
                return;
            }
            match self.feed_body(slot) {
                Feed::Progress => continue,
                Feed::Gone => return self.client_gone(slot),
                Feed::Idle => return,
            }
        }
    }

    /// Hand the app body bytes it asked for, from the buffer or the socket;
    /// otherwise read only to see the client leave.
    fn feed_body(&mut self, slot: usize) -> Feed {
        let Some(conn) = self.conns.get_mut(slot).and_then(Option::as_mut) else {
            return Feed::Idle;
        };
        let Phase::Asgi { call, .. } = &mut conn.phase else {
            return Feed::Idle;
        };
        if call.want_body {
            if call.expect_continue {
                call.expect_continue = false;
                conn.wbuf
                    .extend_from_slice(b"HTTP/1.1 100 Continue\r\n\r\n");
                return Feed::Progress;
            }
            let mut data = Vec::new();
            while data.len() < BODY_CHUNK && conn.rpos < conn.rbuf.len() && !call.body.is_done() {
                match call.body.decode(&conn.rbuf[conn.rpos..]) {
                    Ok(d) if d.consumed == 0 => break,
                    Ok(d) => {
                        data.extend_from_slice(d.data);
                        conn.rpos += d.consumed;
                    }
                    Err(e) => {
                        crate::log::debug!("bad request body from {}: {e}", conn.info.remote_addr);
                        return Feed::Gone;
                    }
                }
            }
            if conn.rpos >= conn.rbuf.len() {
                conn.rbuf.clear();
                conn.rpos = 0;
            }
            let done = call.body.is_done();
            if !data.is_empty() || done {
                call.want_body = false;
                let id = call.id;
                if let Some(asgi) = self.asgi.as_mut() {
                    asgi.send(Inbound::Body {
                        id,
                        data,
                        more: !done,
                    });
                }
                return Feed::Progress;
            }
        } else if conn.rbuf.len() - conn.rpos >= INPUT_LIMIT {
            return Feed::Idle;
        }
        if conn.rbuf.capacity() == 0 {
            conn.rbuf = self.spare.take();
        }
        match conn.fill() {
            Ok(Some(0)) | Err(_) => Feed::Gone,
            Ok(Some(_)) => Feed::Progress,
            Ok(None) => Feed::Idle,
        }
    }

    /// The client of a running call left: tell the app, close.
    pub(super) fn client_gone(&mut self, slot: usize) {
        self.tell_gone(slot);
        self.close(slot);
    }
}

/// What feeding the body did.
enum Feed {
    /// Something moved: look again.
    Progress,
    /// The client left (EOF, reset, or a body that cannot be framed).
    Gone,
    /// Nothing more to do until the socket or the app moves.
    Idle,
}

/// Take the app call out of an `Asgi` phase (leaving a placeholder the
/// caller replaces); None, and the phase untouched, for any other.
pub(super) fn take_call(phase: &mut Phase) -> Option<Box<AsgiCall>> {
    if !matches!(phase, Phase::Asgi { .. }) {
        return None;
    }
    let since = Instant::now();
    match std::mem::replace(phase, Phase::Idle { since }) {
        Phase::Asgi { call, .. } => Some(call),
        _ => None,
    }
}

/// The body that goes with an app call's start, when it is all buffered
/// (whole, `more_body` false); otherwise nothing yet, and the decoder for the
/// rest, which is read as the app asks.
fn first_body(head: &RequestHead, rbuf: &[u8], rpos: &mut usize) -> (Vec<u8>, bool, Decoder) {
    match head.body {
        BodyKind::Empty => (Vec::new(), false, Decoder::new(BodyKind::Empty)),
        BodyKind::Length(n) if (rbuf.len() - *rpos) as u64 >= n => {
            let n = n as usize;
            let data = rbuf[*rpos..*rpos + n].to_vec();
            *rpos += n;
            (data, false, Decoder::new(BodyKind::Empty))
        }
        kind => (Vec::new(), true, Decoder::new(kind)),
    }
}

/// Skip a request body the app did not read, as far as it is buffered; true
/// when it was all there (the connection may go on).
fn skip_body(body: &mut Decoder, rbuf: &[u8], rpos: &mut usize) -> bool {
    while !body.is_done() && *rpos < rbuf.len() {
        match body.decode(&rbuf[*rpos..]) {
            Ok(d) if d.consumed == 0 => break,
            Ok(d) => *rpos += d.consumed,
            Err(_) => return false,
        }
    }
    body.is_done()
}

fn message_id(message: &Outbound) -> CallId {
    match message {
        Outbound::Start { id, .. }
        | Outbound::Body { id, .. }
        | Outbound::PathSend { id, .. }
        | Outbound::WantBody { id }
        | Outbound::Accept { id, .. }
        | Outbound::Send { id, .. }
        | Outbound::Close { id, .. }
        | Outbound::WantMessage { id }
        | Outbound::Done { id, .. } => *id,
    }
}
