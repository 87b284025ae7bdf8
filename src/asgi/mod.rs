//! ASGI 3 (`-k asgi`): the app's coroutines run on one asyncio loop per worker,
//! on a Python thread of their own, while the worker's Rust event loop keeps
//! every socket.
//!
//! ```text
//!   Rust event loop (no GIL)                     asyncio thread (GIL)
//!   parse head ─ Inbound::Start ─▶ inbox ─eventfd─▶ Bridge: scope, task app(scope, receive, send)
//!   write bytes ◀─ Outbound::* ◀─ outbox ◀─mio::Waker─ send(...) / receive() wanting more
//! ```
//!
//! The two threads share only the two mailboxes: plain Rust values, no Python
//! objects, so the loop never takes the GIL to serve a request. Each mailbox
//! wakes its reader only when a message lands in an empty queue, so a burst of
//! messages costs one wake-up. Flow is pulled by the app: request body bytes
//! and WebSocket messages are read from the socket only once `receive()` wants
//! them, and `send()` waits (see [`call`]) once more than [`HIGH_WATER`] bytes
//! are not yet on the wire, so neither direction buffers without bound.
//!
//! Lifespan (`runtime.rs`) runs on the same loop before the worker reports
//! that it booted, and after its last request on a graceful stop.

mod call;
mod messages;
mod runtime;
mod scope;

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

pub use call::RequestHooks;
pub use runtime::{BootFailure, Booted, start};

use crate::http::head::RequestHead;
use crate::wsgi::ConnInfo;

/// Unwritten response bytes above which `send()` waits for the socket.
pub const HIGH_WATER: usize = 64 * 1024;

/// Identifies one app call: the connection slot it serves, and a number no
/// other call in this worker had, so a reply for a finished call is dropped.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct CallId {
    /// The connection's slot in the event loop.
    pub slot: usize,
    /// Unique per worker.
    pub serial: u64,
}

/// A new app call: what its scope is built from.
pub struct Start {
    /// The call.
    pub id: CallId,
    /// An `Upgrade: websocket` handshake (scope type "websocket").
    pub websocket: bool,
    /// The request head (shared with the event loop, which logs it).
    pub head: Arc<RequestHead>,
    /// The connection it arrived on.
    pub info: ConnInfo,
    /// The client used https (TLS, or a trusted front end said so).
    pub https: bool,
    /// `root_path`: the mount point a trusted front end sent (SCRIPT_NAME).
    pub root_path: String,
    /// Body bytes already read (the whole body when `more_body` is false).
    pub body: Vec<u8>,
    /// More body follows; the app asks for it with `receive()`.
    pub more_body: bool,
}

/// A WebSocket data message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WsData {
    /// A text message (valid UTF-8, checked by the framing layer).
    Text(String),
    /// A binary message.
    Binary(Vec<u8>),
}

/// From the event loop to the app.
pub enum Inbound {
    /// Start an app call.
    Start(Box<Start>),
    /// Request body bytes the app asked for.
    Body {
        /// The call.
        id: CallId,
        /// Payload (possibly empty on the last event).
        data: Vec<u8>,
        /// More follows.
        more: bool,
    },
    /// The client is gone (or the request could not be read further).
    Disconnect {
        /// The call.
        id: CallId,
    },
    /// The bytes the app's `send()` waited on are written.
    Sent {
        /// The call.
        id: CallId,
    },
    /// A WebSocket message the app asked for.
    Message {
        /// The call.
        id: CallId,
        /// Its payload.
        data: WsData,
    },
    /// The WebSocket closed (by the client, or by us while stopping).
    Closed {
        /// The call.
        id: CallId,
        /// The close code (1005 when the client sent none).
        code: u16,
        /// The close reason.
        reason: String,
    },
    /// Liveness probe: the app thread counts it ([`Handle::responsive`]).
    Tick,
    /// Run lifespan shutdown and end the loop.
    Shutdown,
}

/// From the app to the event loop.
#[derive(Debug)]
pub enum Outbound {
    /// `http.response.start`.
    Start {
        /// The call.
        id: CallId,
        /// Status code.
        status: u16,
        /// Headers as the app sent them (validated).
        headers: Vec<(Vec<u8>, Vec<u8>)>,
    },
    /// `http.response.body`.
    Body {
        /// The call.
        id: CallId,
        /// Payload.
        data: Vec<u8>,
        /// More follows.
        more: bool,
        /// The app waits in `send()` until this is written ([`Inbound::Sent`]).
        wait: bool,
    },
    /// `http.response.pathsend`: the response body is this file.
    PathSend {
        /// The call.
        id: CallId,
        /// Absolute path of the file.
        path: std::path::PathBuf,
    },
    /// The app awaits `receive()` for request body bytes.
    WantBody {
        /// The call.
        id: CallId,
    },
    /// `websocket.accept`.
    Accept {
        /// The call.
        id: CallId,
        /// The subprotocol chosen.
        subprotocol: Option<String>,
        /// Extra response headers.
        headers: Vec<(Vec<u8>, Vec<u8>)>,
    },
    /// `websocket.send`.
    Send {
        /// The call.
        id: CallId,
        /// The message.
        data: WsData,
        /// The app waits in `send()` until this is written.
        wait: bool,
    },
    /// `websocket.close` (before accept: the handshake is refused with 403).
    Close {
        /// The call.
        id: CallId,
        /// Close code.
        code: u16,
        /// Close reason.
        reason: String,
    },
    /// The app awaits `receive()` for a WebSocket message.
    WantMessage {
        /// The call.
        id: CallId,
    },
    /// The app call returned (`failed`: it raised; the traceback is logged).
    Done {
        /// The call.
        id: CallId,
        /// It raised.
        failed: bool,
    },
}

/// A queue one thread fills and the other drains.
struct Mailbox<T> {
    queue: Mutex<Vec<T>>,
}

impl<T> Mailbox<T> {
    fn new() -> Mailbox<T> {
        Mailbox {
            queue: Mutex::new(Vec::new()),
        }
    }

    /// Add a message; true when the queue was empty (the reader needs a wake).
    fn push(&self, message: T) -> bool {
        let mut q = self.queue.lock().unwrap_or_else(PoisonError::into_inner);
        q.push(message);
        q.len() == 1
    }

    /// Everything queued, in order.
    fn take(&self, into: &mut Vec<T>) {
        let mut q = self.queue.lock().unwrap_or_else(PoisonError::into_inner);
        std::mem::swap(&mut *q, into);
    }
}

/// The eventfd the app thread's loop watches.
struct EventFd(OwnedFd);

impl EventFd {
    fn new() -> io::Result<EventFd> {
        // SAFETY: eventfd returns a new descriptor or -1.
        let fd = unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: fd is a fresh descriptor we own.
        Ok(EventFd(unsafe { OwnedFd::from_raw_fd(fd) }))
    }

    fn fd(&self) -> RawFd {
        self.0.as_raw_fd()
    }

    fn wake(&self) {
        let one = 1u64.to_ne_bytes();
        // SAFETY: writes 8 bytes from a live buffer; EAGAIN (counter full)
        // still leaves the reader woken.
        unsafe { libc::write(self.fd(), one.as_ptr().cast(), one.len()) };
    }

    fn reset(&self) {
        let mut buf = [0u8; 8];
        // SAFETY: reads at most 8 bytes into a live buffer; EAGAIN is fine.
        unsafe { libc::read(self.fd(), buf.as_mut_ptr().cast(), buf.len()) };
    }
}

/// What both threads share.
struct Shared {
    inbox: Mailbox<Inbound>,
    outbox: Mailbox<Outbound>,
    /// Wakes the app thread's loop.
    app_wake: EventFd,
    /// Wakes the Rust event loop.
    loop_wake: Arc<mio::Waker>,
    /// Ticks the app thread has seen.
    ticks_seen: AtomicU64,
    /// A wake of the event loop is scheduled on the asyncio loop.
    wake_scheduled: AtomicBool,
}

impl Shared {
    /// From the app thread: queue a message for the event loop. True when
    /// the event loop must be woken for it ([`Shared::wake_loop`]), which the
    /// caller leaves to the end of the asyncio loop's turn, so the replies of
    /// every task that ran in it cost one wake-up.
    fn reply(&self, message: Outbound) -> bool {
        self.outbox.push(message) && !self.wake_scheduled.swap(true, Ordering::AcqRel)
    }

    /// Wake the event loop for the replies queued so far.
    fn wake_loop(&self) {
        self.wake_scheduled.store(false, Ordering::Release);
        if let Err(e) = self.loop_wake.wake() {
            crate::log::error(&format!("cannot wake the event loop: {e}"));
        }
    }
}

/// The event loop's end of the bridge.
pub struct Handle {
    shared: Arc<Shared>,
    serial: u64,
    /// App calls started and not yet returned.
    live: usize,
    /// Messages were queued into an empty inbox: wake the app thread.
    wake_pending: bool,
    /// Ticks sent, and when the last unanswered one was.
    ticks_sent: u64,
    tick_at: std::time::Instant,
    /// The app thread, joined at shutdown.
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Handle {
    /// A new call id for a request on `slot`.
    pub fn next_id(&mut self, slot: usize) -> CallId {
        self.serial += 1;
        CallId {
            slot,
            serial: self.serial,
        }
    }

    /// Queue `message` for the app thread; [`Handle::wake`] wakes it.
    pub fn send(&mut self, message: Inbound) {
        if let Inbound::Start(_) = message {
            self.live += 1;
        }
        self.wake_pending |= self.shared.inbox.push(message);
    }

    /// Wake the app thread if messages were queued since it last drained:
    /// once per turn of the event loop, so a burst of requests costs one
    /// wake-up.
    pub fn wake(&mut self) {
        if std::mem::take(&mut self.wake_pending) {
            self.shared.app_wake.wake();
        }
    }

    /// The app's messages so far, in order.
    pub fn replies(&mut self, into: &mut Vec<Outbound>) {
        self.shared.outbox.take(into);
        self.live -= into
            .iter()
            .filter(|m| matches!(m, Outbound::Done { .. }))
            .count()
            .min(self.live);
    }

    /// App calls still running (including ones whose response is complete).
    pub fn live(&self) -> usize {
        self.live
    }

    /// False once the app thread has left a liveness tick unanswered for a
    /// second: something holds its loop (blocking code in a coroutine). The
    /// worker then stops its heartbeat, so the master's timeout and stack dump
    /// apply as they do to a stuck WSGI request. Sends the next tick when the
    /// last one was answered.
    pub fn responsive(&mut self) -> bool {
        let now = std::time::Instant::now();
        if self.shared.ticks_seen.load(Ordering::Acquire) >= self.ticks_sent {
            if now.duration_since(self.tick_at) >= std::time::Duration::from_millis(250) {
                self.ticks_sent += 1;
                self.tick_at = now;
                self.send(Inbound::Tick);
            }
            return true;
        }
        now.duration_since(self.tick_at) < std::time::Duration::from_secs(1)
    }

    /// Graceful stop: lifespan shutdown, then the app thread's loop ends.
    /// Waits for it (the master's graceful timeout bounds the wait).
    pub fn shutdown(mut self) {
        self.send(Inbound::Shutdown);
        self.wake();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The call a delivery is for. Only for per-call messages.
fn inbound_id(message: &Inbound) -> CallId {
    match message {
        Inbound::Start(s) => s.id,
        Inbound::Body { id, .. }
        | Inbound::Disconnect { id }
        | Inbound::Sent { id }
        | Inbound::Message { id, .. }
        | Inbound::Closed { id, .. } => *id,
        Inbound::Tick | Inbound::Shutdown => CallId {
            slot: usize::MAX,
            serial: 0,
        },
    }
}
