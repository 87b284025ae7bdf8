//! The worker's event loop: Rust owns all socket I/O.
//!
//! One thread, edge-triggered epoll (mio). The loop accepts, reads request heads
//! from any number of slow or idle clients, and calls into Python only when a
//! complete head is in hand (and, for small bodies, the whole body), so a slow
//! client never holds the Python thread. Responses are buffered and written as
//! the socket accepts them; pipelined requests are answered in order, one at a
//! time, and a connection's next request is not read until its previous response
//! is fully written (back-pressure).
//!
//! Every connection is serviced by [`Server::service`], which only stops at a
//! point where the kernel said WouldBlock (or the connection closed), as edge
//! triggering requires.
//!
//! Closing never resets a client. close(2) on a socket with unread input makes
//! the kernel answer with RST, which can destroy a response the client has not
//! read yet; so a connection we end is *lingered*: shut down for writing (our
//! FIN follows the last response), then read and discarded until the client's
//! EOF or [`LINGER`] (Apache's and nginx's lingering close).
//!
//! A graceful stop (TERM, `max_requests`, `--reload`) stops accepting, lets
//! every request a client already sent finish — pipelined ones included, the
//! last answered with `Connection: close` — and gives idle keep-alive
//! connections [`IDLE_GRACE`] after their last response for a request that may
//! already be on the wire, before lingering them shut.

use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime};

use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token};
use pyo3::Python;

use crate::balance::{Availability, DEFER_RETRY, Seat};
use crate::config::{Config, HeaderVerdict};
use crate::heartbeat::Slot;
use crate::http::head::{self, BodyKind, Limits, RequestHead};
use crate::listen::{Endpoint, Listener};
use crate::log::access::AccessLog;
use crate::signals::{Event, SignalPipe};
use crate::tls::TlsStream;
use crate::wire::Wire;
use crate::wsgi::{ConnInfo, Wsgi};

use super::abort::AbortFlag;
use super::conn::{AfterWrite, Conn, InFlight, Phase, Spare, Timeouts, conn_info};
use super::pool::Pool;
use super::reload::Watcher;

/// Token of the signal pipe; the reload watcher, listeners, then connections.
const SIGNAL: Token = Token(0);
const RELOAD: Token = Token(1);
/// A request thread finished a job (`--threads` above 1).
const WAKE: Token = Token(2);
const LISTENER_BASE: usize = 3;
/// Poll interval while stopping, so grace and linger deadlines are kept closely.
const STOPPING_TICK: Duration = Duration::from_millis(50);
/// Source files often change in bursts (create, write, rename): wait this long
/// after the first change before stopping, so the next worker imports the result.
const RELOAD_SETTLE: Duration = Duration::from_millis(100);
/// Requests one connection may run per turn of the loop while others wait.
const PIPELINE_TURN: u32 = 4;
/// A connection younger than this is never shed for a new one.
const SHED_AGE: Duration = Duration::from_millis(200);
/// Bodies up to this size are read completely before the app is called.
const BUFFER_BODY_LIMIT: u64 = 64 * 1024;
/// After its last connection closed, how long a stopping ASGI worker waits
/// for app calls still running (background tasks) before lifespan shutdown.
const ASGI_CALL_GRACE: Duration = Duration::from_secs(5);

/// What connects the loop to the worker's life: the generation's TLS
/// certificate, the master's liveness slot and the two reasons to stop
/// besides signals.
pub(super) struct Lifecycle {
    /// Per listener: what its connections speak TLS with (None: plain).
    pub(super) tls: Vec<Option<crate::tls::Acceptor>>,
    /// Shared-memory liveness slot the master watches.
    pub(super) heartbeat: Slot,
    /// Where we tell peers how loaded we are, and see theirs.
    pub(super) seat: Seat,
    /// Source files to watch (`--reload`).
    pub(super) reload: Option<Watcher>,
    /// Set when the SIGABRT handler ran.
    pub(super) abort: AbortFlag,
}

/// How the loop ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Stop {
    /// TERM: drained in-flight requests.
    Graceful,
    /// INT or QUIT: left at once.
    Quick,
    /// SIGABRT (the master's timeout): the worker must exit 1 now.
    Aborted,
}

/// Why a worker stops taking new work; logged once.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Retire {
    /// SIGTERM from the master.
    Term,
    /// This worker served its `max_requests` (plus jitter).
    MaxRequests,
    /// A watched source file changed (`--reload`).
    Reload(PathBuf),
}

/// A worker's serving state.
pub(super) struct Server<'a> {
    pub(super) config: &'a Config,
    poll: Poll,
    listeners: Vec<Option<Listener>>,
    /// Per listener: the acceptor its connections speak TLS with (None: plain).
    listener_tls: Vec<Option<crate::tls::Acceptor>>,
    pub(super) conns: Vec<Option<Conn>>,
    free: Vec<usize>,
    pub(super) wsgi: std::sync::Arc<Wsgi>,
    /// Request threads, with `--threads` above 1; None runs requests inline.
    pub(super) pool: Option<Pool>,
    /// The ASGI app thread (`-k asgi`); None serves WSGI.
    pub(super) asgi: Option<crate::asgi::Handle>,
    /// Wakes this loop from another thread (request threads, the ASGI thread).
    pub(super) waker: std::sync::Arc<mio::Waker>,
    /// The ASGI thread's replies, a buffer reused between turns.
    pub(super) replies: Vec<crate::asgi::Outbound>,
    /// The `Date` header, formatted once a second.
    pub(super) date: crate::http::response::DateCache,
    /// Stopping, with no connection left since this instant: app calls
    /// still running (background work) get [`ASGI_CALL_GRACE`] from here.
    pub(super) drained_at: Option<Instant>,
    pub(super) access: Option<AccessLog>,
    pub(super) limits: Limits,
    /// TERM received: accept nothing new, finish what is in flight.
    pub(super) stopping: bool,
    /// Stopped accepting at worker_connections; resume when one closes.
    at_capacity: bool,
    last_sweep: Instant,
    /// Shared-memory liveness slot the master watches.
    pub(super) heartbeat: Slot,
    /// Our load on the accept-balance board.
    pub(super) seat: Seat,
    /// Buffers idle connections gave back.
    pub(super) spare: Spare,
    /// Connections that used their turn with pipelined requests still
    /// buffered: serviced again after the others had theirs.
    ready: Vec<usize>,
    /// A new connection was left to a less loaded peer at this instant (see
    /// [`crate::balance`]); look again shortly.
    deferred_since: Option<Instant>,
    /// Requests handed to the app so far.
    pub(super) served: u64,
    /// Stop after this many requests (`max_requests` plus this worker's jitter).
    pub(super) max_requests: Option<u64>,
    /// Source files to watch (`--reload`).
    reload: Option<Watcher>,
    /// A watched file changed: stop once this instant passes.
    reload_at: Option<Instant>,
    /// Set by the SIGABRT handler (it may run inside the app).
    pub(super) abort: AbortFlag,
    /// SIGABRT was handled: leave the loop now.
    pub(super) aborted: bool,
}

impl<'a> Server<'a> {
    pub(super) fn new(
        config: &'a Config,
        listeners: Vec<Listener>,
        pipe: &SignalPipe,
        wsgi: Wsgi,
        access: Option<AccessLog>,
        lifecycle: Lifecycle,
    ) -> io::Result<Server<'a>> {
        let Lifecycle {
            tls,
            heartbeat,
            seat,
            reload,
            abort,
        } = lifecycle;
        let listener_tls = tls;
        let poll = Poll::new()?;
        poll.registry()
            .register(&mut SourceFd(&pipe.fd()), SIGNAL, Interest::READABLE)?;
        if let Some(w) = &reload {
            poll.registry()
                .register(&mut SourceFd(&w.fd()), RELOAD, Interest::READABLE)?;
        }
        let wsgi = std::sync::Arc::new(wsgi);
        let waker = std::sync::Arc::new(mio::Waker::new(poll.registry(), WAKE)?);
        let pool = request_threads(config, &wsgi, &waker)?;
        for (i, l) in listeners.iter().enumerate() {
            poll.registry().register(
                &mut SourceFd(&l.fd.as_raw_fd()),
                Token(LISTENER_BASE + i),
                Interest::READABLE,
            )?;
        }
        let server = Server {
            config,
            poll,
            listeners: listeners.into_iter().map(Some).collect(),
            listener_tls,
            conns: Vec::new(),
            free: Vec::new(),
            wsgi,
            pool,
            asgi: None,
            waker,
            replies: Vec::new(),
            drained_at: None,
            date: crate::http::response::DateCache::new(),
            access,
            limits: config.limits,
            stopping: false,
            at_capacity: false,
            last_sweep: Instant::now(),
            heartbeat,
            seat,
            deferred_since: None,
            ready: Vec::new(),
            spare: Spare::default(),
            served: 0,
            max_requests: request_limit(
                config.max_requests,
                config.max_requests_jitter,
                jitter_seed(),
            ),
            reload,
            reload_at: None,
            abort,
            aborted: false,
        };
        // Our listeners are registered: a connection from now on wakes us,
        // so peers may leave it to us (before the master hears we booted).
        server.publish_load();
        Ok(server)
    }

    fn conn_base(&self) -> usize {
        LISTENER_BASE + self.listeners.len()
    }

    /// Serve until stopped. Returns after a graceful stop has drained, or at once
    /// on INT/QUIT or SIGABRT.
    pub(super) fn run(&mut self, pipe: &SignalPipe) -> io::Result<Stop> {
        let mut events = Events::with_capacity(256);
        loop {
            if self.aborted {
                return Ok(Stop::Aborted);
            }
            if self.stopping && self.drained() {
                return Ok(Stop::Graceful);
            }
            if self
                .asgi
                .as_mut()
                .is_none_or(crate::asgi::Handle::responsive)
            {
                self.heartbeat.beat();
            }
            let timeout = self.poll_timeout();
            self.publish_load();
            if let Some(asgi) = self.asgi.as_mut() {
                asgi.wake();
            }
            let result = self.wait(&mut events, timeout);
            if let Err(e) = result
                && e.kind() != io::ErrorKind::Interrupted
            {
                return Err(e);
            }
            // A SIGABRT that arrived while we waited: run its Python handler.
            if self.abort_checked() {
                return Ok(Stop::Aborted);
            }
            for ev in events.iter() {
                let token = ev.token().0;
                if ev.token() == SIGNAL {
                    for sig in pipe.drain() {
                        match sig {
                            Event::Term => self.begin_stop(Retire::Term),
                            Event::Int | Event::Quit => return Ok(Stop::Quick),
                            Event::Usr1 => self.reopen_logs(),
                            _ => {}
                        }
                    }
                } else if ev.token() == RELOAD {
                    self.watch_sources();
                } else if ev.token() == WAKE {
                    self.collect_finished();
                    self.collect_asgi();
                } else if token < self.conn_base() {
                    self.accept(token - LISTENER_BASE);
                } else {
                    self.service(token - self.conn_base());
                }
                if self.aborted {
                    return Ok(Stop::Aborted);
                }
            }
            let now = Instant::now();
            if let Some(at) = self.reload_at
                && now >= at
                && let Some(w) = self.reload.take()
            {
                let _ = self.poll.registry().deregister(&mut SourceFd(&w.fd()));
                self.reload_at = None;
                self.begin_stop(Retire::Reload(w.first_change().unwrap_or_default()));
            }
            for slot in std::mem::take(&mut self.ready) {
                self.service(slot);
            }
            self.retry_accept();
            if self.stopping || now.duration_since(self.last_sweep) >= Duration::from_millis(500) {
                self.last_sweep = now;
                self.sweep(now);
            }
        }
    }

    /// Wait for events. Serving WSGI, this thread holds the GIL between
    /// waits and lets it go while it waits; serving ASGI it never holds it.
    fn wait(&mut self, events: &mut Events, timeout: Duration) -> io::Result<()> {
        let poll = &mut self.poll;
        if self.asgi.is_some() {
            return poll.poll(events, Some(timeout));
        }
        Python::attach(|py| py.detach(|| poll.poll(events, Some(timeout))))
    }

    /// Run Python signal handlers whose signal arrived while we waited; true
    /// once SIGABRT's ran. Serving ASGI, the GIL is taken for that only at
    /// sweeps, so the app thread keeps it otherwise.
    fn abort_checked(&mut self) -> bool {
        if self.asgi.is_none() {
            return Python::attach(|py| self.abort.check(py));
        }
        if self.abort.is_raised() {
            return true;
        }
        if self.last_sweep.elapsed() >= Duration::from_millis(500) {
            let abort = &self.abort;
            return Python::attach(|py| abort.check(py));
        }
        false
    }

    /// A stopping worker may exit: no connection is left, and no app call
    /// runs (or the calls left have had [`ASGI_CALL_GRACE`]).
    fn drained(&mut self) -> bool {
        if !self.conns.iter().all(Option::is_none) {
            return false;
        }
        let Some(asgi) = &self.asgi else {
            return true;
        };
        let since = *self.drained_at.get_or_insert_with(Instant::now);
        asgi.live() == 0 || since.elapsed() >= ASGI_CALL_GRACE
    }

    fn poll_timeout(&self) -> Duration {
        if !self.ready.is_empty() {
            // Pipelined requests wait in our buffers: only collect new events.
            Duration::ZERO
        } else if self.deferred_since.is_some() && !self.stopping {
            // Look again: the peer may have gone into the app meanwhile.
            DEFER_RETRY
        } else if self.stopping || self.at_capacity {
            // At capacity: look again soon for a connection old enough to shed.
            STOPPING_TICK
        } else if self.reload_at.is_some() {
            RELOAD_SETTLE
        } else {
            Duration::from_millis(500)
        }
    }

    /// Read the watcher's events; the first change of a watched file starts the
    /// settle timer.
    fn watch_sources(&mut self) {
        let Some(w) = self.reload.as_mut() else {
            return;
        };
        match w.read_changes() {
            Ok(Some(path)) if self.reload_at.is_none() => {
                crate::log::info(&format!("Worker reloading: {} modified", path.display()));
                self.reload_at = Some(Instant::now() + RELOAD_SETTLE);
            }
            Ok(_) => {}
            Err(e) => crate::log::warning(&format!("reading file change events failed: {e}")),
        }
    }

    /// USR1: reopen the error log and the access log (after rotation).
    fn reopen_logs(&mut self) {
        if let Err(e) = crate::log::reopen() {
            crate::log::warning(&format!("cannot reopen the error log: {e}"));
        }
        if let Some(access) = self.access.as_mut()
            && let Err(e) = access.reopen()
        {
            crate::log::warning(&format!("cannot reopen the access log: {e}"));
        }
    }

    /// Stop accepting and let every request already sent finish; idle
    /// connections get [`IDLE_GRACE`] for one last request.
    pub(super) fn begin_stop(&mut self, why: Retire) {
        if self.stopping {
            return;
        }
        self.stopping = true;
        self.heartbeat.set_draining(match why {
            Retire::MaxRequests => crate::heartbeat::Drain::MaxRequests,
            Retire::Term | Retire::Reload(_) => crate::heartbeat::Drain::Stopping,
        });
        match why {
            Retire::Term => {}
            Retire::MaxRequests => crate::log::info("Autorestarting worker after current request."),
            // Logged when the change was seen.
            Retire::Reload(_) => {}
        }
        for l in self.listeners.iter_mut() {
            if let Some(l) = l.take() {
                let _ = self
                    .poll
                    .registry()
                    .deregister(&mut SourceFd(&l.fd.as_raw_fd()));
            }
        }
        // Idle connections now get only the grace period: see `Conn::deadline`.
        if self.asgi.is_some() {
            self.close_websockets();
        }
    }

    fn accept(&mut self, index: usize) {
        loop {
            if self.stopping {
                return;
            }
            // worker_connections: when full, the connection slowest to send a
            // head makes room for a new one; if every connection is busy, the
            // rest wait in the kernel's backlog until one closes (`close`
            // accepts again).
            let open = self.open_conns();
            if self.defer_accept(open) {
                return;
            }
            let full = open >= self.config.worker_connections;
            let victim = if full {
                let phases = self.conns.iter().map(|c| c.as_ref().map(|c| &c.phase));
                match shed_candidate(phases, Instant::now()) {
                    Some(v) => Some(v),
                    None => {
                        self.at_capacity = true;
                        return;
                    }
                }
            } else {
                None
            };
            let Some(listener) = self.listeners.get(index).and_then(Option::as_ref) else {
                return;
            };
            let kind = listener.kind.clone();
            let accepted = match crate::sockio::accept(listener.fd.as_raw_fd()) {
                Ok(Some(a)) => a,
                Ok(None) => {
                    // The backlog is empty: a peer took what we left.
                    self.deferred_since = None;
                    return;
                }
                Err(e) => {
                    // EMFILE and friends: back off until the next readiness edge.
                    crate::log::error(&format!("accept failed: {e}"));
                    return;
                }
            };
            if let Some(victim) = victim {
                // Only now that a client is really waiting.
                crate::log::debug!("worker_connections full: shedding the slowest head");
                self.forget(victim);
            }
            let info = conn_info(&kind, &accepted);
            if matches!(kind, Endpoint::Tcp(_)) {
                crate::sockio::set_nodelay(accepted.fd.as_raw_fd());
            }
            let fd = accepted.fd;
            if let Some(wire) = self.wire_for(index, &fd) {
                self.add_conn(fd, wire, info);
            }
            self.publish_load();
        }
    }

    pub(super) fn open_conns(&self) -> usize {
        self.conns.len() - self.free.len()
    }

    /// Tell peers how many connections we hold and whether we take more.
    pub(super) fn publish_load(&self) {
        let availability = if self.stopping || self.at_capacity {
            Availability::Closed
        } else {
            Availability::Ready
        };
        self.seat.publish(self.open_conns(), availability);
    }

    /// Whether to leave the next connection to a less loaded peer that is
    /// waiting for it ([`crate::balance`]), for as long as that peer is worth
    /// waiting for.
    fn defer_accept(&mut self, open: usize) -> bool {
        let Some(patience) = self.seat.patience(open) else {
            self.deferred_since = None;
            return false;
        };
        let now = Instant::now();
        let since = *self.deferred_since.get_or_insert(now);
        now.duration_since(since) < patience
    }

    /// The byte stream of a connection accepted on listener `index`: plain,
    /// or a new TLS session (None, and the connection dropped, when rustls
    /// cannot start one).
    fn wire_for(&self, index: usize, fd: &OwnedFd) -> Option<Wire> {
        let Some(acceptor) = self.listener_tls.get(index).and_then(Option::as_ref) else {
            return Some(Wire::Plain(fd.as_raw_fd()));
        };
        match acceptor.session() {
            Ok(session) => Some(Wire::Tls(Box::new(TlsStream::new(
                fd.as_raw_fd(),
                session,
                acceptor.ragged_eofs_are_eofs(),
            )))),
            Err(e) => {
                crate::log::error(&format!("cannot start a TLS session: {e}"));
                None
            }
        }
    }

    fn add_conn(&mut self, fd: OwnedFd, wire: Wire, info: ConnInfo) {
        let slot = self.free.pop().unwrap_or_else(|| {
            self.conns.push(None);
            self.conns.len() - 1
        });
        let token = Token(self.conn_base() + slot);
        if let Err(e) = self.poll.registry().register(
            &mut SourceFd(&fd.as_raw_fd()),
            token,
            Interest::READABLE | Interest::WRITABLE,
        ) {
            crate::log::error(&format!("cannot watch connection: {e}"));
            self.free.push(slot);
            return;
        }
        let mut conn = Conn::new(fd, wire, info, Instant::now());
        if let Some(accept) = self.config.proxy_protocol {
            if !self.config.proxy_allow.allows(conn.info.peer_ip) {
                // Only proxy_allow_ips may speak for a client (Gunicorn's 403).
                crate::log::debug!("PROXY header refused from {}", conn.info.remote_addr);
                self.conns[slot] = Some(conn);
                return self.refuse(slot, 403, "Forbidden");
            }
            conn.awaiting_proxy = Some(accept);
        }
        self.conns[slot] = Some(conn);
    }

    /// The connection in `slot`, if it is still open.
    pub(super) fn conn_mut(&mut self, slot: usize) -> Option<&mut Conn> {
        self.conns.get_mut(slot).and_then(Option::as_mut)
    }

    /// The deadlines' inputs, as this worker stands now.
    fn timeouts(&self) -> Timeouts {
        Timeouts {
            idle: self.config.idle_timeout(),
            request: self.config.io_timeout(),
            head: self.config.header_timeout(),
            body: self.config.body_timeout(),
            stopping: self.stopping,
        }
    }

    /// Forget a connection and close its socket at once. Only for connections
    /// with nothing left to read: the client's EOF was seen, the socket failed, or
    /// a linger ended.
    pub(super) fn close(&mut self, slot: usize) {
        self.forget(slot);
        // Edge-triggered listeners signal no new edge for connections already
        // queued: accept them ourselves now that there is room.
        if self.at_capacity && !self.stopping {
            self.at_capacity = false;
            for index in 0..self.listeners.len() {
                self.accept(index);
            }
        }
    }

    /// Drop a connection and its slot, closing the socket.
    fn forget(&mut self, slot: usize) {
        if self.asgi.is_some() {
            self.tell_gone(slot);
        }
        if let Some(c) = self.conns.get_mut(slot).and_then(Option::take) {
            if let Phase::Parked { .. } = c.phase {
                // A response its client never read to the end: over all the same.
                self.heartbeat.tally().finish();
            }
            let _ = self
                .poll
                .registry()
                .deregister(&mut SourceFd(&c.fd.as_raw_fd()));
            self.free.push(slot);
            self.publish_load();
        }
    }

    /// End a connection without a reset: send our FIN after whatever was
    /// written, then discard input until the client's EOF (see the module doc).
    fn linger(&mut self, slot: usize) {
        if self.asgi.is_some() {
            self.tell_gone(slot);
        }
        let Some(c) = self.conn_mut(slot) else {
            return;
        };
        if !c.start_linger(Instant::now()) {
            return;
        }
        c.wire.close_notify();
        if crate::sockio::shutdown_write(c.fd.as_raw_fd()).is_err() {
            return self.close(slot);
        }
        self.discard_input(slot);
    }

    /// Read and drop a lingering connection's input until WouldBlock; close on EOF.
    fn discard_input(&mut self, slot: usize) {
        let Some(c) = self.conns.get(slot).and_then(Option::as_ref) else {
            return;
        };
        if crate::sockio::discard_input(c.fd.as_raw_fd()) {
            self.close(slot);
        }
    }

    /// End connections whose idle, read or linger deadline passed.
    fn sweep(&mut self, now: Instant) {
        let t = self.timeouts();
        for i in 0..self.conns.len() {
            match self.conns[i].as_ref() {
                Some(c) if c.phase.deadline(&t) > now => {}
                Some(Conn {
                    phase: Phase::Lingering { .. },
                    ..
                }) => self.close(i),
                Some(_) => self.linger(i),
                None => {}
            }
        }
    }

    /// Full, with clients maybe waiting in the backlog: a connection may have
    /// aged into one that can be shed since the last look.
    fn retry_accept(&mut self) {
        if (self.at_capacity || self.deferred_since.is_some()) && !self.stopping {
            self.at_capacity = false;
            for index in 0..self.listeners.len() {
                self.accept(index);
            }
        }
    }

    /// Drive one connection as far as it can go without blocking: write what
    /// is buffered, then run the next complete request, then read more.
    pub(super) fn service(&mut self, slot: usize) {
        let mut turn = PIPELINE_TURN;
        loop {
            if self.aborted {
                return;
            }
            let now = Instant::now();
            let Some(conn) = self.conn_mut(slot) else {
                return;
            };
            match conn.phase {
                Phase::Lingering { .. } => return self.discard_input(slot),
                // A request thread has the buffers; its result moves us on.
                Phase::InApp { .. } => return,
                Phase::Asgi { .. } => return self.service_asgi(slot),
                Phase::WebSocket { .. } => return self.service_websocket(slot),
                Phase::Parked { .. } => {
                    if self.resume_parked(slot) {
                        continue;
                    }
                    return;
                }
                _ => {}
            }
            // 1. Output first: nothing new is read until the last response is out.
            if conn.has_output() {
                match conn.flush() {
                    Ok(true) => {}
                    Ok(false) => return conn.phase.write_progress(now), // wait for the writable edge
                    Err(_) => return self.close(slot),
                }
            }
            if conn.phase.written(now) == AfterWrite::Close {
                return self.linger(slot);
            }
            // 2. A complete request in the buffer? After PIPELINE_TURN of
            // them, the other connections go first.
            if turn == 0 && conn.rpos < conn.rbuf.len() {
                self.ready.push(slot);
                return;
            }
            match self.next_request(slot) {
                Step::Dispatch(head) => {
                    turn -= 1;
                    self.dispatch(slot, head);
                    continue;
                }
                Step::Error(status, reason) => {
                    self.refuse(slot, status, reason);
                    continue;
                }
                Step::NeedMore => {}
            }
            // 3. Read more, into a lent buffer when this one went back.
            if !self.read_more(slot, now) {
                return;
            }
        }
    }

    /// Read what the client sent next. False when there is nothing to do
    /// until the socket moves (or the connection is gone).
    fn read_more(&mut self, slot: usize, now: Instant) -> bool {
        let Some(conn) = self.conns.get_mut(slot).and_then(Option::as_mut) else {
            return false;
        };
        if conn.rbuf.capacity() == 0 {
            conn.rbuf = self.spare.take();
        }
        let filled = conn.fill();
        conn.handshake_progress(now);
        match filled {
            Ok(Some(0)) => {
                self.close(slot); // EOF
                false
            }
            Err(e) if crate::tls::stream::is_plain_http(&e) => {
                // Plain HTTP on a TLS port: say so in words it can read.
                crate::log::debug!("plain HTTP from {} on a TLS port", conn.info.remote_addr);
                conn.wire.downgrade();
                self.refuse(slot, 400, "Bad Request");
                true
            }
            Err(e) => {
                if conn.wire.is_tls() {
                    crate::log::debug!("TLS from {}: {e}", conn.info.remote_addr);
                }
                self.close(slot); // reset, or a failed handshake
                false
            }
            Ok(Some(_)) => {
                conn.phase.bytes_arrived(now);
                true
            }
            Ok(None) => {
                // Idle until the client sends: it needs no buffer meanwhile.
                if conn.rpos >= conn.rbuf.len() {
                    conn.rpos = 0;
                    self.spare.give(std::mem::take(&mut conn.rbuf));
                }
                if !conn.has_output() {
                    self.spare.give(std::mem::take(&mut conn.wbuf));
                }
                false
            }
        }
    }

    /// A parked response: write what it buffered, then let the app produce
    /// more. Nothing else happens on this connection meanwhile. True when the
    /// app ran again (the connection's phase moved on).
    fn resume_parked(&mut self, slot: usize) -> bool {
        let now = Instant::now();
        let Some(conn) = self.conns.get_mut(slot).and_then(Option::as_mut) else {
            return false;
        };
        let Phase::Parked { in_flight, .. } = &mut conn.phase else {
            return true;
        };
        match in_flight.parked.try_flush() {
            Err(_) => {
                self.close(slot);
                false
            }
            Ok(false) => {
                conn.phase.write_progress(now); // wait for the writable edge
                false
            }
            Ok(true) => {
                let Some(in_flight) = conn.phase.unpark(now) else {
                    return true;
                };
                let InFlight {
                    parked,
                    body,
                    head,
                    started,
                } = *in_flight;
                if let Some(pool) = &self.pool {
                    conn.phase = Phase::InApp { since: now };
                    pool.submit(super::pool::Job::Resume {
                        slot,
                        parked,
                        body,
                        head,
                        started,
                    });
                    return false;
                }
                self.heartbeat.beat();
                let wsgi = &self.wsgi;
                let handled = Python::attach(|py| wsgi.resume(py, parked, body));
                self.settle(slot, handled, head, started);
                true
            }
        }
    }

    /// Take the results request threads finished: settle each, then carry on
    /// with its connection (write the response, read the next request).
    fn collect_finished(&mut self) {
        let Some(pool) = &self.pool else {
            return;
        };
        let finished: Vec<_> = pool.finished().collect();
        for f in finished {
            self.heartbeat.beat();
            self.settle(f.slot, f.handled, f.head, f.started);
            self.service(f.slot);
        }
    }

    /// Parse the next head (or finish waiting for a small body).
    fn next_request(&mut self, slot: usize) -> Step {
        let limits = self.limits;
        let config = self.config;
        let Some(conn) = self.conn_mut(slot) else {
            return Step::NeedMore;
        };
        if let Some(accept) = conn.awaiting_proxy {
            match crate::proxy::parse(&conn.rbuf[conn.rpos..], accept) {
                Ok(None) => return Step::NeedMore,
                Ok(Some((header, used))) => {
                    conn.rpos += used;
                    conn.awaiting_proxy = None;
                    if let Some((client, _)) = header.addresses {
                        // The client the proxy speaks for, in the environ and
                        // the access log; trust still follows the real peer.
                        conn.info.remote_addr = client.ip().to_string();
                        conn.info.remote_port = client.port().to_string();
                    }
                }
                Err(e) => {
                    crate::log::debug!("bad PROXY header from {}: {e}", conn.info.remote_addr);
                    return Step::Error(e.status(), "Bad Request");
                }
            }
        }
        let waiting = match &mut conn.phase {
            Phase::Reading { head, .. } => head.take(),
            _ => None,
        };
        let head = match waiting {
            Some(h) => h,
            None if conn.rpos >= conn.rbuf.len() => return Step::NeedMore,
            None => match head::parse(&conn.rbuf[conn.rpos..], &limits) {
                Ok(None) => return Step::NeedMore,
                Ok(Some((h, _))) if refused_header(config, &conn.info, &h) => {
                    return Step::Error(400, "Bad Request");
                }
                Ok(Some((h, consumed))) => {
                    conn.rpos += consumed;
                    h
                }
                Err(e) => {
                    crate::log::debug!("bad request from {}: {e}", conn.info.remote_addr);
                    return Step::Error(e.status(), e.reason());
                }
            },
        };
        // Small bodies are buffered here, so a slow uploader waits in the loop,
        // not in Python. With Expect: 100-continue the client waits for us.
        if let BodyKind::Length(n) = head.body {
            if config.limit_request_body > 0 && n > config.limit_request_body {
                // Refused before the body is read, or asked for with 100-continue.
                return Step::Error(413, "Content Too Large");
            }
            let buffered = (conn.rbuf.len() - conn.rpos) as u64;
            if n <= BUFFER_BODY_LIMIT && buffered < n && !head.expect_continue {
                // The body stall clock restarts with each arrival.
                conn.phase = Phase::Reading {
                    since: Instant::now(),
                    head: Some(head),
                };
                return Step::NeedMore;
            }
        }
        Step::Dispatch(head)
    }
}

/// The connection to shed for a new one when `worker_connections` is full:
/// of those without a complete request head (idle, or part of a head in),
/// the one that has waited longest, if it has waited at least [`SHED_AGE`]:
/// a connection just accepted has not had the chance to send anything. Never
/// one the app is serving or whose response is being written.
fn shed_candidate<'c>(
    phases: impl Iterator<Item = Option<&'c Phase>>,
    now: Instant,
) -> Option<usize> {
    phases
        .enumerate()
        .filter_map(|(slot, phase)| match phase? {
            Phase::Idle { since }
            | Phase::Handshake { since }
            | Phase::Reading { since, head: None }
                if now.saturating_duration_since(*since) >= SHED_AGE =>
            {
                Some((*since, slot))
            }
            _ => None,
        })
        .min()
        .map(|(_, slot)| slot)
}

/// `header_map = refuse` and a header name with `_` that is not a forwarder
/// header from a trusted peer: the whole request is refused.
fn refused_header(config: &Config, info: &ConnInfo, head: &RequestHead) -> bool {
    let trusted = config.forwarded_allow.allows(info.peer_ip);
    head.headers().any(|(name, _)| {
        config.header_verdict(name) == HeaderVerdict::Refuse
            && !(trusted && crate::wsgi::is_forwarder_header(config, name))
    })
}

/// The `--threads` request threads, when there is more than one (and the
/// worker serves WSGI).
fn request_threads(
    config: &Config,
    wsgi: &std::sync::Arc<Wsgi>,
    waker: &std::sync::Arc<mio::Waker>,
) -> io::Result<Option<Pool>> {
    if config.threads > 1 && config.asgi {
        crate::log::info(&format!(
            "threads = {} has no effect on the asgi worker: its app runs on one event loop",
            config.threads
        ));
    }
    if config.threads <= 1 || config.asgi {
        return Ok(None);
    }
    if !config.threaded_class {
        crate::log::info(&format!(
            "sync worker with {} threads: running as gthread, as Gunicorn does",
            config.threads
        ));
    }
    Pool::start(config.threads, wsgi.clone(), waker.clone()).map(Some)
}

/// This worker's request limit: `max_requests` plus a share of the jitter drawn
/// from `seed`, so workers started together do not all restart together.
/// None when `max_requests` is 0 (no limit).
fn request_limit(max_requests: u64, jitter: u64, seed: u64) -> Option<u64> {
    if max_requests == 0 {
        return None;
    }
    let extra = match jitter.checked_add(1) {
        Some(span) => splitmix64(seed) % span,
        None => splitmix64(seed),
    };
    Some(max_requests.saturating_add(extra))
}

/// A seed that differs between workers: pid and the wall clock's nanoseconds.
fn jitter_seed() -> u64 {
    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    (u64::from(std::process::id()) << 32) ^ nanos
}

/// One round of SplitMix64: a cheap, well-mixed hash of the seed.
fn splitmix64(seed: u64) -> u64 {
    let mut z = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

enum Step {
    Dispatch(RequestHead),
    Error(u16, &'static str),
    NeedMore,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_request_limit_without_max_requests() {
        assert_eq!(request_limit(0, 10, 42), None);
    }

    #[test]
    fn request_limit_stays_within_the_jitter() {
        for seed in 0..1000 {
            let limit = request_limit(50, 5, seed).unwrap();
            assert!((50..=55).contains(&limit), "{limit}");
        }
        assert_eq!(request_limit(50, 0, 7), Some(50));
        assert!(request_limit(u64::MAX, u64::MAX, 7).is_some());
    }

    #[test]
    fn request_limit_jitter_spreads_workers() {
        let limits: std::collections::HashSet<u64> = (0..100)
            .map(|pid| request_limit(1000, 100, pid << 32).unwrap())
            .collect();
        assert!(limits.len() > 20, "{limits:?}");
    }

    #[test]
    fn the_longest_waiting_head_is_shed_first() {
        let t0 = Instant::now();
        let at = |s| t0 + Duration::from_secs(s);
        let phases = [
            Some(Phase::Reading {
                since: at(5),
                head: None,
            }),
            None,
            Some(Phase::Writing {
                since: at(0),
                then: super::super::conn::AfterWrite::NextRequest,
            }),
            Some(Phase::Reading {
                since: at(2),
                head: None,
            }),
            Some(Phase::Idle { since: at(3) }),
            Some(Phase::Lingering { since: at(0) }),
        ];
        let now = at(7);
        assert_eq!(
            shed_candidate(phases.iter().map(Option::as_ref), now),
            Some(3)
        );
        // Nothing has had long enough to send its head yet.
        assert_eq!(
            shed_candidate(phases.iter().map(Option::as_ref), at(2)),
            None
        );
        let busy = [Some(Phase::Writing {
            since: at(0),
            then: super::super::conn::AfterWrite::Close,
        })];
        assert_eq!(shed_candidate(busy.iter().map(Option::as_ref), now), None);
    }
}
