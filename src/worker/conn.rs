//! One client connection of a worker: its buffers, and where it is in the
//! request cycle as one [`Phase`] whose changes are methods (the shape of
//! hyper's `proto/h1/conn.rs` state).
//!
//! ```text
//!   accept ─(TLS)─▶ Handshake ──done──┐
//!   accept → Idle ◀───────────────────┘ ──bytes──▶ Reading ──head (+small body)──▶ app
//!             ▲                                              │
//!             │        ┌──── response written ◀── Writing ◀──┤ response buffered
//!             └────────┤                                     │
//!                      └──── parked: client reads slowly ◀───┘ Parked
//!   any phase ──deadline / close──▶ Lingering ──EOF or LINGER──▶ closed
//! ```
//!
//! Each phase carries the instant its clock started, and
//! [`Conn::deadline`] is the one place a deadline is worked out from it: a
//! TLS handshake gets `header_timeout` from the accept (a stalled ClientHello
//! is a stalled request head, one layer down), an idle connection gets `keepalive`, a request being read, written or parked
//! gets `header_timeout` from its first byte, a small body being buffered
//! `body_timeout` since it last progressed, a response being written or
//! parked `timeout` since its last progress, a lingering close [`LINGER`].
//! Nothing here touches the socket except through its [`Wire`] (plain or
//! TLS, over `crate::sockio`).

use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::time::{Duration, Instant};

use crate::http::head::RequestHead;
use crate::listen::Endpoint;
use crate::wire::Wire;
use crate::wsgi::{ConnInfo, Continuation, Parked};

/// Bytes read per read(2).
const READ_SIZE: usize = 16 * 1024;
/// A deadline that stands for never (a year).
const NEVER: Duration = Duration::from_secs(365 * 86_400);
/// How long a lingering close waits for the client's EOF.
pub(super) const LINGER: Duration = Duration::from_secs(2);
/// During a graceful stop, how long after its last response an idle keep-alive
/// connection may still deliver a request (about one slow round trip).
pub(super) const IDLE_GRACE: Duration = Duration::from_secs(1);

/// The worker's timeouts, as the phases' deadlines use them.
#[derive(Clone, Copy, Debug)]
pub(super) struct Timeouts {
    /// `keepalive`: how long an idle connection stays open.
    pub(super) idle: Duration,
    /// `timeout`: how long a response may wait for the client to read.
    pub(super) request: Duration,
    /// `header_timeout`: how long a request head may take, from its first byte.
    pub(super) head: Duration,
    /// `body_timeout`: how long a small body being buffered may stall.
    pub(super) body: Duration,
    /// A graceful stop is under way: idle connections get [`IDLE_GRACE`] at most.
    pub(super) stopping: bool,
}

/// What happens once the buffered output is written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum AfterWrite {
    /// Read the next request.
    NextRequest,
    /// End the connection (the response said `Connection: close`).
    Close,
}

/// Where a connection is in its request cycle.
pub(super) enum Phase {
    /// A TLS connection whose handshake is not complete, accepted at `since`.
    Handshake { since: Instant },
    /// Between requests, since the last response was handed to the socket (or
    /// the connection was accepted).
    Idle { since: Instant },
    /// Part of a request head has arrived since `since`; or, with `head`, the
    /// head is parsed and its small body is on its way, last progressing at
    /// `since`.
    Reading {
        since: Instant,
        head: Option<RequestHead>,
    },
    /// A complete response waits in the write buffer; `since` is the last
    /// progress writing it.
    Writing { since: Instant, then: AfterWrite },
    /// A response waits for this client to read; the app's iterator or file is
    /// resumed once the buffered output is written.
    Parked {
        since: Instant,
        in_flight: Box<InFlight>,
    },
    /// A request thread runs this connection's request (`--threads`); its
    /// deadline is the worker timeout's business, not the connection's.
    InApp { since: Instant },
    /// An ASGI app call runs for this connection (`-k asgi`): request body
    /// and response pass between the loop and the app thread. `since` is
    /// when it started.
    Asgi {
        since: Instant,
        call: Box<super::asgi::AsgiCall>,
    },
    /// An open WebSocket (`-k asgi`), accepted at `since`.
    WebSocket {
        since: Instant,
        ws: Box<super::ws::WsConn>,
    },
    /// Shut down for writing; input is discarded until EOF or [`LINGER`].
    Lingering { since: Instant },
}

impl Phase {
    /// When this connection must be ended if nothing happens first.
    pub(super) fn deadline(&self, t: &Timeouts) -> Instant {
        match self {
            Phase::Handshake { since } if t.stopping => *since + t.head.min(IDLE_GRACE),
            Phase::Handshake { since } => *since + t.head,
            Phase::Idle { since } if t.stopping => *since + t.idle.min(IDLE_GRACE),
            Phase::Idle { since } => *since + t.idle,
            Phase::Reading { since, head: None } => *since + t.head,
            Phase::Reading {
                since,
                head: Some(_),
            } => *since + t.body,
            Phase::Writing { since, .. } | Phase::Parked { since, .. } => *since + t.request,
            // The app may take as long as it needs; a year stands for never.
            Phase::InApp { since } => *since + NEVER,
            // The app may run as long as it likes; output the client does
            // not read stalls it for `timeout` at most.
            Phase::Asgi { since, call } => call.stalled.map_or(*since + NEVER, |s| s + t.request),
            // Open until a side closes; then the closing handshake gets LINGER.
            Phase::WebSocket { since, ws } => ws.closing.map_or(*since + NEVER, |s| s + LINGER),
            Phase::Lingering { since } => *since + LINGER,
        }
    }

    /// Bytes of a request arrived: an idle connection (or one that has just
    /// finished its handshake) starts its request clock.
    pub(super) fn bytes_arrived(&mut self, now: Instant) {
        if let Phase::Idle { .. } | Phase::Handshake { .. } = *self {
            *self = Phase::Reading {
                since: now,
                head: None,
            };
        }
    }

    /// A response is complete in the write buffer (or already written):
    /// write it, then read the next request or close.
    pub(super) fn response_done(&mut self, keep_alive: bool, now: Instant) {
        *self = Phase::Writing {
            since: now,
            then: if keep_alive {
                AfterWrite::NextRequest
            } else {
                AfterWrite::Close
            },
        };
    }

    /// The app's response waits for the client to read.
    pub(super) fn park(&mut self, in_flight: InFlight, now: Instant) {
        *self = Phase::Parked {
            since: now,
            in_flight: Box::new(in_flight),
        };
    }

    /// Take a parked response to resume it (the phase becomes Writing until
    /// it settles again).
    pub(super) fn unpark(&mut self, now: Instant) -> Option<Box<InFlight>> {
        match std::mem::replace(
            self,
            Phase::Writing {
                since: now,
                then: AfterWrite::NextRequest,
            },
        ) {
            Phase::Parked { in_flight, .. } => Some(in_flight),
            other => {
                *self = other;
                None
            }
        }
    }

    /// Writing made progress but the socket is full again: restart its clock.
    pub(super) fn write_progress(&mut self, now: Instant) {
        if let Phase::Writing { since, .. } | Phase::Parked { since, .. } = self {
            *since = now;
        }
    }

    /// Everything buffered is written: what the response decided comes next.
    /// The keep-alive clock starts now.
    pub(super) fn written(&mut self, now: Instant) -> AfterWrite {
        match *self {
            Phase::Writing { then, .. } => {
                if then == AfterWrite::NextRequest {
                    *self = Phase::Idle { since: now };
                }
                then
            }
            _ => AfterWrite::NextRequest,
        }
    }
}

/// A parked response and what its access log line needs.
pub(super) struct InFlight {
    pub(super) parked: Parked,
    pub(super) body: Continuation,
    pub(super) head: RequestHead,
    pub(super) started: super::dispatch::Started,
}

/// One accepted connection.
pub(super) struct Conn {
    pub(super) fd: OwnedFd,
    /// The byte stream over `fd`: plain, or TLS; lent to the request the app runs.
    pub(super) wire: Wire,
    pub(super) info: ConnInfo,
    /// Bytes read and not consumed yet start at `rpos`.
    pub(super) rbuf: Vec<u8>,
    pub(super) rpos: usize,
    /// Output not written yet starts at `wpos`.
    pub(super) wbuf: Vec<u8>,
    pub(super) wpos: usize,
    pub(super) phase: Phase,
    /// `proxy_protocol`: the PROXY header this connection must start with,
    /// until it has arrived.
    pub(super) awaiting_proxy: Option<crate::proxy::Accept>,
}

impl Conn {
    /// A connection just accepted: idle since `now`, or handshaking when
    /// `wire` is TLS.
    pub(super) fn new(fd: OwnedFd, wire: Wire, info: ConnInfo, now: Instant) -> Conn {
        let phase = match wire.is_tls() {
            true => Phase::Handshake { since: now },
            false => Phase::Idle { since: now },
        };
        Conn {
            fd,
            wire,
            info,
            rbuf: Vec::new(),
            rpos: 0,
            wbuf: Vec::new(),
            wpos: 0,
            phase,
            awaiting_proxy: None,
        }
    }

    /// Start a lingering close; false when it had already started.
    pub(super) fn start_linger(&mut self, now: Instant) -> bool {
        if let Phase::Lingering { .. } = self.phase {
            return false;
        }
        self.phase = Phase::Lingering { since: now };
        self.rbuf = Vec::new();
        self.rpos = 0;
        self.wbuf = Vec::new();
        self.wpos = 0;
        true
    }

    /// Write buffered output without waiting. Ok(true) when all is written.
    ///
    /// # Errors
    /// The client reset the connection.
    pub(super) fn flush(&mut self) -> io::Result<bool> {
        self.wpos += self.wire.send_available(&self.wbuf[self.wpos..])?;
        if self.wpos < self.wbuf.len() {
            return Ok(false);
        }
        self.wbuf.clear();
        self.wpos = 0;
        self.wire.flush_pending()
    }

    /// Output is waiting to be written (ours, or TLS records under it).
    pub(super) fn has_output(&self) -> bool {
        self.wpos < self.wbuf.len() || self.wire.has_pending()
    }

    /// A TLS handshake that has just completed: the connection is idle,
    /// waiting for its first request, and its TLS facts join its info.
    pub(super) fn handshake_progress(&mut self, now: Instant) {
        if let Phase::Handshake { .. } = self.phase
            && !self.wire.is_handshaking()
        {
            self.info.tls = self.wire.tls_info();
            self.phase = Phase::Idle { since: now };
        }
    }

    /// Read once into the connection buffer. `Ok(Some(0))` is EOF, `Ok(None)`
    /// that nothing is there now.
    ///
    /// # Errors
    /// The socket failed.
    pub(super) fn fill(&mut self) -> crate::sockio::Progress<usize> {
        if self.rpos > 0 && self.rpos == self.rbuf.len() {
            self.rbuf.clear();
            self.rpos = 0;
        }
        self.wire.read_some(&mut self.rbuf, READ_SIZE)
    }
}

/// Buffers of connections that went idle, lent to the next connection that
/// reads or answers: an idle keep-alive connection holds none, so ten
/// thousand of them cost their sockets and little else.
#[derive(Default)]
pub(super) struct Spare(Vec<Vec<u8>>);

impl Spare {
    /// Most buffers kept: enough for every connection one turn of the loop
    /// serves; more are freed.
    const KEEP: usize = 64;
    /// Larger buffers (a big response's) are freed rather than kept.
    const LARGEST: usize = 64 * 1024;

    /// An empty buffer, with room when one was given back.
    pub(super) fn take(&mut self) -> Vec<u8> {
        self.0.pop().unwrap_or_default()
    }

    /// Keep `buf` (emptied) for the next connection that needs one.
    pub(super) fn give(&mut self, mut buf: Vec<u8>) {
        if buf.capacity() > 0 && buf.capacity() <= Self::LARGEST && self.0.len() < Self::KEEP {
            buf.clear();
            self.0.push(buf);
        }
    }
}

/// Environ address strings for an accepted connection.
pub(super) fn conn_info(kind: &Endpoint, accepted: &crate::sockio::Accepted) -> ConnInfo {
    let (server_name, server_port) = match kind {
        // A wildcard listener (0.0.0.0, ::) says nothing useful: name the
        // address this connection actually reached.
        Endpoint::Tcp(sa) if sa.ip().is_unspecified() => {
            let local = crate::sockio::local_addr(accepted.fd.as_raw_fd()).unwrap_or(*sa);
            (local.ip().to_string(), local.port().to_string())
        }
        Endpoint::Tcp(sa) => (sa.ip().to_string(), sa.port().to_string()),
        Endpoint::Unix(path) => (path.to_string_lossy().into_owned(), String::new()),
    };
    let (remote_addr, remote_port) = match accepted.peer {
        Some(sa) => (sa.ip().to_string(), sa.port().to_string()),
        None => (String::new(), String::new()),
    };
    ConnInfo {
        remote_addr,
        remote_port,
        server_name,
        server_port,
        peer_ip: accepted.peer.map(|sa| sa.ip()),
        tls: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: Timeouts = Timeouts {
        idle: Duration::from_secs(2),
        request: Duration::from_secs(30),
        head: Duration::from_secs(30),
        body: Duration::from_secs(30),
        stopping: false,
    };

    #[derive(Debug)]
    enum Step {
        Bytes,
        Done { keep_alive: bool },
        Progress,
        Written(AfterWrite),
    }

    /// Run the steps one second apart from an idle phase; after each, the
    /// deadline relative to the start.
    fn deadlines(steps: &[Step], t: Timeouts) -> Vec<u64> {
        let t0 = Instant::now();
        let mut p = Phase::Idle { since: t0 };
        let mut out = Vec::new();
        for (i, step) in steps.iter().enumerate() {
            let now = t0 + Duration::from_secs(i as u64 + 1);
            match step {
                Step::Bytes => p.bytes_arrived(now),
                Step::Done { keep_alive } => p.response_done(*keep_alive, now),
                Step::Progress => p.write_progress(now),
                Step::Written(want) => assert_eq!(p.written(now), *want, "{steps:?}"),
            }
            out.push((p.deadline(&t) - t0).as_secs());
        }
        out
    }

    #[test]
    fn spare_buffers_come_back_empty_and_large_ones_are_freed() {
        let mut spare = Spare::default();
        let mut buf = Vec::with_capacity(16 * 1024);
        buf.extend_from_slice(b"leftover");
        spare.give(buf);
        spare.give(Vec::with_capacity(Spare::LARGEST + 1));
        spare.give(Vec::new());
        let lent = spare.take();
        assert!(lent.is_empty() && lent.capacity() >= 16 * 1024);
        assert_eq!(spare.take().capacity(), 0, "only the one kept buffer");
        for _ in 0..Spare::KEEP + 10 {
            spare.give(Vec::with_capacity(64));
        }
        assert_eq!(spare.0.len(), Spare::KEEP);
    }

    #[test]
    fn each_phase_has_its_own_clock() {
        use Step::*;
        let cases: &[(&[Step], &[u64])] = &[
            // Bytes start the request clock once; more bytes do not extend it.
            (&[Bytes, Bytes], &[31, 31]),
            // A response being written gets `timeout` since its last progress,
            // then the keep-alive clock starts when it is out.
            (
                &[
                    Bytes,
                    Done { keep_alive: true },
                    Progress,
                    Written(AfterWrite::NextRequest),
                ],
                &[31, 32, 33, 6],
            ),
            // A closing response stays Writing (its clock unchanged) until the
            // loop lingers it.
            (
                &[
                    Bytes,
                    Done { keep_alive: false },
                    Written(AfterWrite::Close),
                ],
                &[31, 32, 32],
            ),
            // Pipelined: the next request is already here when the response is out.
            (
                &[
                    Bytes,
                    Done { keep_alive: true },
                    Written(AfterWrite::NextRequest),
                    Bytes,
                ],
                &[31, 32, 5, 34],
            ),
        ];
        for (steps, want) in cases {
            assert_eq!(deadlines(steps, T), *want, "{steps:?}");
        }
    }

    #[test]
    fn stopping_gives_idle_connections_only_the_grace_period() {
        let t0 = Instant::now();
        let stopping = Timeouts {
            stopping: true,
            ..T
        };
        assert_eq!(
            Phase::Idle { since: t0 }.deadline(&stopping),
            t0 + IDLE_GRACE
        );
        let mut busy = Phase::Idle { since: t0 };
        busy.bytes_arrived(t0);
        assert_eq!(busy.deadline(&stopping), t0 + T.head);
        let lingering = Phase::Lingering { since: t0 };
        assert_eq!(lingering.deadline(&stopping), t0 + LINGER);
    }

    #[test]
    fn a_handshake_gets_the_head_timeout_then_requests_start_their_own() {
        let t0 = Instant::now();
        let mut p = Phase::Handshake { since: t0 };
        assert_eq!(p.deadline(&T), t0 + T.head);
        let stopping = Timeouts {
            stopping: true,
            ..T
        };
        assert_eq!(p.deadline(&stopping), t0 + IDLE_GRACE);
        // The request sent with the last handshake flight starts its clock.
        let later = t0 + Duration::from_secs(3);
        p.bytes_arrived(later);
        assert_eq!(p.deadline(&T), later + T.head);
    }

    #[test]
    fn unpark_without_a_parked_response_changes_nothing() {
        let t0 = Instant::now();
        let mut p = Phase::Idle { since: t0 };
        assert!(p.unpark(t0).is_none());
        assert!(matches!(p, Phase::Idle { .. }));
        // Writing is not idle until written.
        p.response_done(true, t0);
        assert!(p.unpark(t0).is_none());
        assert!(matches!(p, Phase::Writing { .. }));
    }
}
