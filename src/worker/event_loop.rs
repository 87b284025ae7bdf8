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
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime};

use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token};
use pyo3::Python;

use crate::config::{Config, HeaderMap};
use crate::heartbeat::Slot;
use crate::http::head::{self, BodyKind, Limits, RequestHead};
use crate::http::response;
use crate::listen::{Kind, Listener};
use crate::log::access::{AccessLog, Entry};
use crate::signals::{Event, SignalPipe};
use crate::wsgi::{ConnInfo, ConnIo, Handled, Outcome, Wsgi};

use super::abort::AbortFlag;
use super::conn::{Conn, InFlight, Phase, conn_info, fill, flush, set_nodelay, unsafe_zeroed};
use super::reload::Watcher;

/// Token of the signal pipe; the reload watcher, listeners, then connections.
const SIGNAL: Token = Token(0);
const RELOAD: Token = Token(1);
const LISTENER_BASE: usize = 2;
/// How long a lingering close waits for the client's EOF.
const LINGER: Duration = Duration::from_secs(2);
/// During a graceful stop, how long after its last response an idle keep-alive
/// connection may still deliver a request (about one slow round trip).
const IDLE_GRACE: Duration = Duration::from_secs(1);
/// Poll interval while stopping, so grace and linger deadlines are kept closely.
const STOPPING_TICK: Duration = Duration::from_millis(50);
/// Source files often change in bursts (create, write, rename): wait this long
/// after the first change before stopping, so the next worker imports the result.
const RELOAD_SETTLE: Duration = Duration::from_millis(100);
/// Bodies up to this size are read completely before the app is called.
const BUFFER_BODY_LIMIT: u64 = 64 * 1024;

/// What connects the loop to the worker's life: the master's liveness slot and
/// the two reasons to stop besides signals.
pub(super) struct Lifecycle {
    /// Shared-memory liveness slot the master watches.
    pub(super) heartbeat: Slot,
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
enum Retire {
    /// SIGTERM from the master.
    Term,
    /// This worker served its `max_requests` (plus jitter).
    MaxRequests,
    /// A watched source file changed (`--reload`).
    Reload(PathBuf),
}

/// A worker's serving state.
pub(super) struct Server<'a> {
    config: &'a Config,
    poll: Poll,
    listeners: Vec<Option<Listener>>,
    conns: Vec<Option<Conn>>,
    free: Vec<usize>,
    wsgi: Wsgi<'a>,
    access: Option<AccessLog>,
    limits: Limits,
    /// TERM received: accept nothing new, finish what is in flight.
    stopping: bool,
    /// Stopped accepting at worker_connections; resume when one closes.
    at_capacity: bool,
    last_sweep: Instant,
    /// Shared-memory liveness slot the master watches.
    heartbeat: Slot,
    /// Requests handed to the app so far.
    served: u64,
    /// Stop after this many requests (`max_requests` plus this worker's jitter).
    max_requests: Option<u64>,
    /// Source files to watch (`--reload`).
    reload: Option<Watcher>,
    /// A watched file changed: stop once this instant passes.
    reload_at: Option<Instant>,
    /// Set by the SIGABRT handler (it may run inside the app).
    abort: AbortFlag,
    /// SIGABRT was handled: leave the loop now.
    aborted: bool,
}

impl<'a> Server<'a> {
    pub(super) fn new(
        config: &'a Config,
        listeners: Vec<Listener>,
        pipe: &SignalPipe,
        wsgi: Wsgi<'a>,
        access: Option<AccessLog>,
        lifecycle: Lifecycle,
    ) -> io::Result<Server<'a>> {
        let Lifecycle {
            heartbeat,
            reload,
            abort,
        } = lifecycle;
        let poll = Poll::new()?;
        poll.registry()
            .register(&mut SourceFd(&pipe.fd()), SIGNAL, Interest::READABLE)?;
        if let Some(w) = &reload {
            poll.registry()
                .register(&mut SourceFd(&w.fd()), RELOAD, Interest::READABLE)?;
        }
        for (i, l) in listeners.iter().enumerate() {
            poll.registry().register(
                &mut SourceFd(&l.fd.as_raw_fd()),
                Token(LISTENER_BASE + i),
                Interest::READABLE,
            )?;
        }
        Ok(Server {
            config,
            poll,
            listeners: listeners.into_iter().map(Some).collect(),
            conns: Vec::new(),
            free: Vec::new(),
            wsgi,
            access,
            limits: config.limits,
            stopping: false,
            at_capacity: false,
            last_sweep: Instant::now(),
            heartbeat,
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
        })
    }

    fn conn_base(&self) -> usize {
        LISTENER_BASE + self.listeners.len()
    }

    /// Serve until stopped. Returns after a graceful stop has drained, or at once
    /// on INT/QUIT or SIGABRT.
    pub(super) fn run(&mut self, py: Python<'_>, pipe: &SignalPipe) -> io::Result<Stop> {
        let mut events = Events::with_capacity(256);
        loop {
            if self.aborted {
                return Ok(Stop::Aborted);
            }
            if self.stopping && self.conns.iter().all(Option::is_none) {
                return Ok(Stop::Graceful);
            }
            self.heartbeat.beat();
            let timeout = self.poll_timeout();
            let poll = &mut self.poll;
            let result = py.detach(|| poll.poll(&mut events, Some(timeout)));
            if let Err(e) = result
                && e.kind() != io::ErrorKind::Interrupted
            {
                return Err(e);
            }
            // A SIGABRT that arrived while we waited: run its Python handler.
            if self.abort.check(py) {
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
                } else if token < self.conn_base() {
                    self.accept(token - LISTENER_BASE);
                } else {
                    self.service(py, token - self.conn_base());
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
            if self.stopping || now.duration_since(self.last_sweep) >= Duration::from_millis(500) {
                self.last_sweep = now;
                self.sweep(now);
            }
        }
    }

    fn poll_timeout(&self) -> Duration {
        if self.stopping {
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
    fn begin_stop(&mut self, why: Retire) {
        if self.stopping {
            return;
        }
        self.stopping = true;
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
        for c in self.conns.iter_mut().flatten() {
            if c.phase == Phase::Idle {
                c.deadline = c.deadline.min(c.idle_since + IDLE_GRACE);
            }
        }
    }

    fn accept(&mut self, index: usize) {
        loop {
            if self.stopping {
                return;
            }
            // worker_connections: leave the rest in the kernel's backlog until a
            // connection closes (`close` accepts again).
            if self.conns.len() - self.free.len() >= self.config.worker_connections {
                self.at_capacity = true;
                return;
            }
            let Some(listener) = self.listeners.get(index).and_then(Option::as_ref) else {
                return;
            };
            let lfd = listener.fd.as_raw_fd();
            let kind = listener.kind.clone();
            let mut storage: libc::sockaddr_storage = unsafe_zeroed();
            let mut len = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
            // SAFETY: storage/len describe a valid, writable sockaddr buffer.
            let fd = unsafe {
                libc::accept4(
                    lfd,
                    (&mut storage as *mut libc::sockaddr_storage).cast(),
                    &mut len,
                    libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
                )
            };
            if fd < 0 {
                let e = io::Error::last_os_error();
                match e.kind() {
                    io::ErrorKind::WouldBlock => return,
                    io::ErrorKind::Interrupted | io::ErrorKind::ConnectionAborted => continue,
                    _ => {
                        // EMFILE and friends: back off until the next readiness edge.
                        crate::log::error(&format!("accept failed: {e}"));
                        return;
                    }
                }
            }
            // SAFETY: accept4 returned a new descriptor that nothing else owns.
            let fd = unsafe { OwnedFd::from_raw_fd(fd) };
            let info = conn_info(&kind, fd.as_raw_fd(), &storage, len);
            if matches!(kind, Kind::Tcp(_)) {
                set_nodelay(fd.as_raw_fd());
            }
            self.add_conn(fd, info);
        }
    }

    fn add_conn(&mut self, fd: OwnedFd, info: ConnInfo) {
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
        let now = Instant::now();
        self.conns[slot] = Some(Conn {
            in_flight: None,
            fd,
            info,
            rbuf: Vec::new(),
            rpos: 0,
            wbuf: Vec::new(),
            wpos: 0,
            head: None,
            phase: Phase::Idle,
            deadline: now + self.idle_timeout(),
            idle_since: now,
            close_after_write: false,
        });
    }

    fn idle_timeout(&self) -> Duration {
        Duration::from_secs(self.config.keepalive.max(1))
    }

    fn request_timeout(&self) -> Duration {
        Duration::from_secs(if self.config.timeout == 0 {
            3600
        } else {
            self.config.timeout
        })
    }

    /// Forget a connection and close its socket at once. Only for connections
    /// with nothing left to read: the client's EOF was seen, the socket failed, or
    /// a linger ended.
    fn close(&mut self, slot: usize) {
        if let Some(c) = self.conns.get_mut(slot).and_then(Option::take) {
            let _ = self
                .poll
                .registry()
                .deregister(&mut SourceFd(&c.fd.as_raw_fd()));
            self.free.push(slot);
        }
        // Edge-triggered listeners signal no new edge for connections already
        // queued: accept them ourselves now that there is room.
        if self.at_capacity && !self.stopping {
            self.at_capacity = false;
            for index in 0..self.listeners.len() {
                self.accept(index);
            }
        }
    }

    /// End a connection without a reset: send our FIN after whatever was
    /// written, then discard input until the client's EOF (see the module doc).
    fn linger(&mut self, slot: usize) {
        let Some(c) = self.conns.get_mut(slot).and_then(Option::as_mut) else {
            return;
        };
        if c.phase == Phase::Lingering {
            return;
        }
        c.phase = Phase::Lingering;
        c.deadline = Instant::now() + LINGER;
        c.head = None;
        c.rbuf = Vec::new();
        c.rpos = 0;
        c.wbuf = Vec::new();
        c.wpos = 0;
        // SAFETY: fd is a live socket owned by this connection.
        if unsafe { libc::shutdown(c.fd.as_raw_fd(), libc::SHUT_WR) } != 0 {
            return self.close(slot);
        }
        self.discard_input(slot);
    }

    /// Read and drop a lingering connection's input until WouldBlock; close on EOF.
    fn discard_input(&mut self, slot: usize) {
        let Some(c) = self.conns.get(slot).and_then(Option::as_ref) else {
            return;
        };
        let fd = c.fd.as_raw_fd();
        let mut scratch = [0u8; 4096];
        loop {
            // SAFETY: scratch is a valid writable buffer of its length.
            let n = unsafe { libc::read(fd, scratch.as_mut_ptr().cast(), scratch.len()) };
            if n > 0 {
                continue;
            }
            if n < 0 {
                let e = io::Error::last_os_error();
                match e.kind() {
                    io::ErrorKind::Interrupted => continue,
                    io::ErrorKind::WouldBlock => return,
                    _ => {}
                }
            }
            return self.close(slot);
        }
    }

    /// End connections whose idle, read or linger deadline passed.
    fn sweep(&mut self, now: Instant) {
        for i in 0..self.conns.len() {
            match self.conns[i].as_ref() {
                Some(c) if c.deadline <= now && c.phase == Phase::Lingering => self.close(i),
                Some(c) if c.deadline <= now => self.linger(i),
                _ => {}
            }
        }
    }

    /// Drive one connection as far as it can go without blocking.
    fn service(&mut self, py: Python<'_>, slot: usize) {
        let request_timeout = self.request_timeout();
        let idle_timeout = if self.stopping {
            self.idle_timeout().min(IDLE_GRACE)
        } else {
            self.idle_timeout()
        };
        loop {
            if self.aborted {
                return;
            }
            let Some(conn) = self.conns.get_mut(slot).and_then(Option::as_mut) else {
                return;
            };
            if conn.phase == Phase::Lingering {
                return self.discard_input(slot);
            }
            // 0. A parked response: write what it buffered, then let the app
            // produce more. Nothing else happens on this connection meanwhile.
            if let Some(mut in_flight) = conn.in_flight.take() {
                match in_flight.parked.try_flush() {
                    Err(_) => return self.close(slot),
                    Ok(false) => {
                        conn.deadline = Instant::now() + request_timeout;
                        conn.in_flight = Some(in_flight);
                        return; // wait for the writable edge
                    }
                    Ok(true) => {
                        let InFlight {
                            parked,
                            body,
                            head,
                            started,
                            clock,
                        } = in_flight;
                        self.heartbeat.beat();
                        let handled = self.wsgi.resume(py, parked, body);
                        self.settle(slot, handled, head, started, clock);
                        continue;
                    }
                }
            }
            // 1. Output first: nothing new is read until the last response is out.
            let pending = conn.wpos < conn.wbuf.len();
            match flush(conn) {
                Ok(true) if pending => {
                    // The response is out: the keep-alive clock starts now.
                    let now = Instant::now();
                    conn.idle_since = now;
                    conn.deadline = now + idle_timeout;
                }
                Ok(true) => {}
                Ok(false) => {
                    // A slow reader is still being sent a response.
                    conn.deadline = Instant::now() + request_timeout;
                    return; // wait for the writable edge
                }
                Err(_) => return self.close(slot),
            }
            if conn.close_after_write {
                return self.linger(slot);
            }
            // 2. A complete request in the buffer?
            match self.next_request(slot) {
                Step::Dispatch(head) => {
                    self.dispatch(py, slot, head);
                    continue;
                }
                Step::Error(status, reason) => {
                    let Some(conn) = self.conns.get_mut(slot).and_then(Option::as_mut) else {
                        return;
                    };
                    let mut date = response::DateCache::new();
                    response::error_response(
                        &mut conn.wbuf,
                        status,
                        reason,
                        date.get(),
                        self.config.server_header.as_bytes(),
                    );
                    conn.close_after_write = true;
                    let line = RefusedLine::read(&conn.rbuf[conn.rpos..]);
                    // Discard the rest of the input: it cannot be framed.
                    conn.rbuf.clear();
                    conn.rpos = 0;
                    if let Some(access) = self.access.as_mut() {
                        // A refused request is still a request the operator
                        // wants to see, with the status it got.
                        access.log(&Entry {
                            remote_addr: &conn.info.remote_addr,
                            method: &line.method,
                            target: &line.target,
                            protocol: &line.protocol,
                            request_headers: &[],
                            status,
                            response_headers: &[],
                            bytes: reason.len() as u64 + 1,
                            started: SystemTime::now(),
                            duration: Duration::ZERO,
                            environ: &[],
                            disconnected: false,
                        });
                    }
                    continue;
                }
                Step::NeedMore => {}
            }
            // 3. Read more.
            let Some(conn) = self.conns.get_mut(slot).and_then(Option::as_mut) else {
                return;
            };
            match fill(conn) {
                Ok(0) => return self.close(slot), // EOF
                Ok(_) => {
                    if conn.phase == Phase::Idle {
                        conn.phase = Phase::Reading;
                        conn.deadline = Instant::now() + request_timeout;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(_) => return self.close(slot),
            }
        }
    }

    /// Parse the next head (or finish waiting for a small body).
    fn next_request(&mut self, slot: usize) -> Step {
        let limits = self.limits;
        let refuse_underscores = self.config.header_map == HeaderMap::Refuse;
        let Some(conn) = self.conns.get_mut(slot).and_then(Option::as_mut) else {
            return Step::NeedMore;
        };
        if conn.head.is_none() {
            if conn.rpos >= conn.rbuf.len() {
                return Step::NeedMore;
            }
            match head::parse(&conn.rbuf[conn.rpos..], &limits) {
                Ok(None) => return Step::NeedMore,
                Ok(Some((h, consumed))) => {
                    if refuse_underscores && h.headers.iter().any(|(n, _)| n.contains('_')) {
                        return Step::Error(400, "Bad Request");
                    }
                    conn.rpos += consumed;
                    conn.head = Some(h);
                }
                Err(e) => {
                    crate::log::debug(&format!("bad request from {}: {e}", conn.info.remote_addr));
                    return Step::Error(e.status(), e.reason());
                }
            }
        }
        let Some(h) = conn.head.as_ref() else {
            return Step::NeedMore;
        };
        // Small bodies are buffered here, so a slow uploader waits in the loop,
        // not in Python. With Expect: 100-continue the client waits for us.
        if let BodyKind::Length(n) = h.body {
            let buffered = (conn.rbuf.len() - conn.rpos) as u64;
            if n <= BUFFER_BODY_LIMIT && buffered < n && !h.expect_continue {
                return Step::NeedMore;
            }
        }
        match conn.head.take() {
            Some(h) => Step::Dispatch(h),
            None => Step::NeedMore,
        }
    }

    fn dispatch(&mut self, py: Python<'_>, slot: usize, head: RequestHead) {
        self.served += 1;
        if self.max_requests.is_some_and(|limit| self.served >= limit) {
            self.begin_stop(Retire::MaxRequests);
        }
        let limits = self.limits;
        let Some(conn) = self.conns.get_mut(slot).and_then(Option::as_mut) else {
            return;
        };
        // While stopping, a connection stays open only for requests the client
        // has already sent: the last of them is answered with Connection: close.
        let keep_alive_allowed = self.config.keepalive > 0
            && (!self.stopping || pipelined_after(&conn.rbuf, conn.rpos, &head, &limits));
        self.heartbeat.beat();
        self.heartbeat.set_request(&head.method, &head.target);
        self.heartbeat.count_request();
        let started = SystemTime::now();
        let clock = Instant::now();
        let io = ConnIo {
            fd: conn.fd.as_raw_fd(),
            rbuf: std::mem::take(&mut conn.rbuf),
            rpos: conn.rpos,
            wbuf: std::mem::take(&mut conn.wbuf),
        };
        let handled = self
            .wsgi
            .handle(py, &head, &conn.info, io, keep_alive_allowed);
        self.heartbeat.clear_request();
        self.heartbeat.beat();
        self.settle(slot, handled, head, started, clock);
        let Some(conn) = self.conns.get_mut(slot).and_then(Option::as_mut) else {
            return;
        };
        // The SIGABRT handler ran inside the app (its SystemExit came back as
        // the app's error): leave without serving anything else.
        if self.abort.is_raised() {
            self.aborted = true;
            // Best effort, without waiting: the 500 the app error produced.
            let _ = flush(conn);
        }
    }
}

impl Server<'_> {
    /// After the app ran (or resumed): complete the response, or park it on the
    /// connection until the client has read what is buffered.
    fn settle(
        &mut self,
        slot: usize,
        handled: Handled,
        head: RequestHead,
        started: SystemTime,
        clock: Instant,
    ) {
        match handled {
            Handled::Done(outcome) => self.complete(slot, &head, outcome, started, clock),
            Handled::Parked(parked, body) => {
                let request_timeout = self.request_timeout();
                if let Some(conn) = self.conns.get_mut(slot).and_then(Option::as_mut) {
                    // Not idle: a graceful stop waits for it like any request.
                    conn.phase = Phase::Reading;
                    conn.deadline = Instant::now() + request_timeout;
                    conn.in_flight = Some(InFlight {
                        parked,
                        body,
                        head,
                        started,
                        clock,
                    });
                }
            }
        }
    }

    /// A response is complete: take the buffers back, decide keep-alive, log it.
    fn complete(
        &mut self,
        slot: usize,
        head: &RequestHead,
        outcome: Outcome,
        started: SystemTime,
        clock: Instant,
    ) {
        let request_timeout = self.request_timeout();
        let stopping = self.stopping;
        let keepalive = self.config.keepalive;
        let Some(conn) = self.conns.get_mut(slot).and_then(Option::as_mut) else {
            return;
        };
        conn.rbuf = outcome.io.rbuf;
        conn.rpos = outcome.io.rpos;
        conn.wbuf = outcome.io.wbuf;
        conn.wpos = 0;
        if conn.rpos >= conn.rbuf.len() {
            conn.rbuf.clear();
            conn.rpos = 0;
        }
        if !outcome.keep_alive {
            conn.close_after_write = true;
        }
        let now = Instant::now();
        conn.phase = Phase::Idle;
        conn.idle_since = now;
        conn.deadline = if conn.wbuf.is_empty() {
            let idle = Duration::from_secs(keepalive.max(1));
            now + if stopping { idle.min(IDLE_GRACE) } else { idle }
        } else {
            // Part of the response waits for the socket: see `service`.
            now + request_timeout
        };
        if let Some(access) = self.access.as_mut() {
            access.log(&Entry {
                remote_addr: &conn.info.remote_addr,
                method: &head.method,
                target: &head.target,
                protocol: head.version.as_str(),
                request_headers: &head.headers,
                status: outcome.status,
                response_headers: &outcome.headers,
                bytes: outcome.body_bytes,
                started,
                duration: clock.elapsed(),
                environ: &outcome.environ_values,
                disconnected: outcome.disconnected,
            });
        }
    }
}

/// True when the buffer already holds another complete request head after
/// `head`'s body (which starts at `rpos`), so a stopping worker can still answer
/// it on this connection.
fn pipelined_after(rbuf: &[u8], rpos: usize, head: &RequestHead, limits: &Limits) -> bool {
    let body = match head.body {
        BodyKind::Empty => 0,
        BodyKind::Length(n) => n,
        BodyKind::Chunked => return false,
    };
    let next = usize::try_from(body).ok().and_then(|b| rpos.checked_add(b));
    match next {
        Some(next) if next < rbuf.len() => {
            matches!(head::parse(&rbuf[next..], limits), Ok(Some(_)))
        }
        _ => false,
    }
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

/// What can be read of the request line of a request the parser refused, for
/// its access log line (the access log escapes whatever bytes it holds).
struct RefusedLine {
    method: String,
    target: String,
    protocol: String,
}

impl RefusedLine {
    /// Longest request line quoted in the log.
    const MAX: usize = 1024;

    fn read(buf: &[u8]) -> RefusedLine {
        let start = buf.iter().position(|&b| b != b'\r' && b != b'\n');
        let buf = &buf[start.unwrap_or(buf.len())..];
        let buf = &buf[..buf.len().min(Self::MAX)];
        let line = buf.split(|&b| b == b'\n').next().unwrap_or_default();
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        // Latin-1, like every other request string: one char per byte.
        let text: String = line.iter().map(|&b| char::from(b)).collect();
        let mut parts = text.splitn(3, ' ');
        let mut part = || parts.next().unwrap_or("").to_owned();
        RefusedLine {
            method: part(),
            target: part(),
            protocol: part(),
        }
    }
}

enum Step {
    Dispatch(RequestHead),
    Error(u16, &'static str),
    NeedMore,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(bytes: &[u8]) -> (RequestHead, usize) {
        head::parse(bytes, &Limits::default()).unwrap().unwrap()
    }

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
    fn a_buffered_pipelined_request_keeps_a_stopping_connection_open() {
        let buf = b"GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /b HTTP/1.1\r\nHost: x\r\n\r\n";
        let (h, used) = parsed(buf);
        assert!(pipelined_after(buf, used, &h, &Limits::default()));
    }

    #[test]
    fn the_last_buffered_request_closes_a_stopping_connection() {
        let buf = b"GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /b HTTP/1.1\r\nHo";
        let (h, used) = parsed(buf);
        assert!(!pipelined_after(buf, used, &h, &Limits::default()));
        let one = b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n";
        let (h, used) = parsed(one);
        assert!(!pipelined_after(one, used, &h, &Limits::default()));
    }

    #[test]
    fn pipelined_requests_are_found_after_a_buffered_body() {
        let buf =
            b"POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabcGET /b HTTP/1.1\r\n\r\n";
        let (h, used) = parsed(buf);
        assert!(pipelined_after(buf, used, &h, &Limits::default()));
        // Body not fully buffered: the next request's start is unknown.
        let short = b"POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 30\r\n\r\nabc";
        let (h, used) = parsed(short);
        assert!(!pipelined_after(short, used, &h, &Limits::default()));
    }
}
