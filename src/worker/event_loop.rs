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

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::time::{Duration, Instant, SystemTime};

use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token};
use pyo3::Python;

use crate::arbiter::heartbeat::Slot;
use crate::arbiter::signals::{Event, SignalPipe};
use crate::config::{Config, HeaderMap};
use crate::http::head::{self, BodyKind, Limits, RequestHead};
use crate::http::response;
use crate::listen::{Kind, Listener};
use crate::log::access::{AccessLog, Entry};
use crate::wsgi::{ConnInfo, ConnIo, Wsgi};

/// Token of the signal pipe; listeners follow, then connections.
const SIGNAL: Token = Token(0);
const LISTENER_BASE: usize = 1;
/// Bodies up to this size are read completely before the app is called.
const BUFFER_BODY_LIMIT: u64 = 64 * 1024;
/// Bytes read per read(2).
const READ_SIZE: usize = 16 * 1024;

/// Where a connection is in its request cycle.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// Between requests; closed after `keepalive` seconds.
    Idle,
    /// Part of a request has arrived; closed after `timeout` seconds.
    Reading,
}

struct Conn {
    fd: OwnedFd,
    info: ConnInfo,
    rbuf: Vec<u8>,
    rpos: usize,
    wbuf: Vec<u8>,
    wpos: usize,
    /// A parsed head waiting for its small body to arrive.
    head: Option<RequestHead>,
    phase: Phase,
    deadline: Instant,
    /// Close once `wbuf` is written.
    close_after_write: bool,
}

/// How the loop ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Stop {
    /// TERM: drained in-flight requests.
    Graceful,
    /// INT or QUIT: left at once.
    Quick,
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
    last_sweep: Instant,
    /// Shared-memory liveness slot the master watches.
    heartbeat: Slot,
}

impl<'a> Server<'a> {
    pub(super) fn new(
        config: &'a Config,
        listeners: Vec<Listener>,
        pipe: &SignalPipe,
        wsgi: Wsgi<'a>,
        access: Option<AccessLog>,
        heartbeat: Slot,
    ) -> io::Result<Server<'a>> {
        let poll = Poll::new()?;
        poll.registry()
            .register(&mut SourceFd(&pipe.fd()), SIGNAL, Interest::READABLE)?;
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
            last_sweep: Instant::now(),
            heartbeat,
        })
    }

    fn conn_base(&self) -> usize {
        LISTENER_BASE + self.listeners.len()
    }

    /// Serve until stopped. Returns after a graceful stop has drained, or at once
    /// on INT/QUIT.
    pub(super) fn run(&mut self, py: Python<'_>, pipe: &SignalPipe) -> io::Result<Stop> {
        let mut events = Events::with_capacity(256);
        loop {
            if self.stopping && self.conns.iter().all(Option::is_none) {
                return Ok(Stop::Graceful);
            }
            self.heartbeat.beat();
            let poll = &mut self.poll;
            let result = py.detach(|| poll.poll(&mut events, Some(Duration::from_millis(500))));
            if let Err(e) = result
                && e.kind() != io::ErrorKind::Interrupted
            {
                return Err(e);
            }
            for ev in events.iter() {
                let token = ev.token().0;
                if ev.token() == SIGNAL {
                    for sig in pipe.drain() {
                        match sig {
                            Event::Term => self.begin_stop(),
                            Event::Int | Event::Quit => return Ok(Stop::Quick),
                            _ => {}
                        }
                    }
                } else if token < self.conn_base() {
                    self.accept(token - LISTENER_BASE);
                } else {
                    self.service(py, token - self.conn_base());
                }
            }
            let now = Instant::now();
            if now.duration_since(self.last_sweep) >= Duration::from_millis(500) {
                self.last_sweep = now;
                self.sweep(now);
            }
        }
    }

    /// Stop accepting; close idle connections; let busy ones finish.
    fn begin_stop(&mut self) {
        if self.stopping {
            return;
        }
        self.stopping = true;
        for l in self.listeners.iter_mut() {
            if let Some(l) = l.take() {
                let _ = self
                    .poll
                    .registry()
                    .deregister(&mut SourceFd(&l.fd.as_raw_fd()));
            }
        }
        for i in 0..self.conns.len() {
            let idle = self.conns[i].as_ref().is_some_and(|c| {
                c.phase == Phase::Idle && c.wpos >= c.wbuf.len() && c.rpos >= c.rbuf.len()
            });
            if idle {
                self.close(i);
            } else if let Some(c) = self.conns[i].as_mut() {
                c.close_after_write = true;
            }
        }
    }

    fn accept(&mut self, index: usize) {
        loop {
            if self.stopping {
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
            let info = conn_info(&kind, &storage, len);
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
        self.conns[slot] = Some(Conn {
            fd,
            info,
            rbuf: Vec::new(),
            rpos: 0,
            wbuf: Vec::new(),
            wpos: 0,
            head: None,
            phase: Phase::Idle,
            deadline: Instant::now() + self.idle_timeout(),
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

    fn close(&mut self, slot: usize) {
        if let Some(c) = self.conns.get_mut(slot).and_then(Option::take) {
            let _ = self
                .poll
                .registry()
                .deregister(&mut SourceFd(&c.fd.as_raw_fd()));
            self.free.push(slot);
        }
    }

    /// Close connections whose idle or read deadline passed.
    fn sweep(&mut self, now: Instant) {
        for i in 0..self.conns.len() {
            if self.conns[i].as_ref().is_some_and(|c| c.deadline <= now) {
                self.close(i);
            }
        }
    }

    /// Drive one connection as far as it can go without blocking.
    fn service(&mut self, py: Python<'_>, slot: usize) {
        loop {
            let Some(conn) = self.conns.get_mut(slot).and_then(Option::as_mut) else {
                return;
            };
            // 1. Output first: nothing new is read until the last response is out.
            match flush(conn) {
                Ok(true) => {}
                Ok(false) => return, // wait for the writable edge
                Err(_) => return self.close(slot),
            }
            if conn.close_after_write {
                return self.close(slot);
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
                    // Discard the rest of the input: it cannot be framed.
                    conn.rbuf.clear();
                    conn.rpos = 0;
                    continue;
                }
                Step::NeedMore => {}
            }
            // 3. Read more.
            let request_timeout = self.request_timeout();
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
                    conn.rpos += consumed;
                    if refuse_underscores && h.headers.iter().any(|(n, _)| n.contains('_')) {
                        return Step::Error(400, "Bad Request");
                    }
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
        let keep_alive_allowed = self.config.keepalive > 0 && !self.stopping;
        let Some(conn) = self.conns.get_mut(slot).and_then(Option::as_mut) else {
            return;
        };
        self.heartbeat.beat();
        let started = SystemTime::now();
        let clock = Instant::now();
        let io = ConnIo {
            fd: conn.fd.as_raw_fd(),
            rbuf: std::mem::take(&mut conn.rbuf),
            rpos: conn.rpos,
            wbuf: std::mem::take(&mut conn.wbuf),
        };
        let outcome = self
            .wsgi
            .handle(py, &head, &conn.info, io, keep_alive_allowed);
        conn.rbuf = outcome.io.rbuf;
        conn.rpos = outcome.io.rpos;
        conn.wbuf = outcome.io.wbuf;
        conn.wpos = 0;
        if conn.rpos >= conn.rbuf.len() {
            conn.rbuf.clear();
            conn.rpos = 0;
        }
        if !outcome.keep_alive || self.stopping {
            conn.close_after_write = true;
        }
        conn.phase = Phase::Idle;
        conn.deadline = Instant::now() + Duration::from_secs(self.config.keepalive.max(1));
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
            });
        }
    }
}

enum Step {
    Dispatch(RequestHead),
    Error(u16, &'static str),
    NeedMore,
}

/// Write buffered output. Ok(true) when all is written.
fn flush(conn: &mut Conn) -> io::Result<bool> {
    while conn.wpos < conn.wbuf.len() {
        match crate::wsgi::write_some(conn.fd.as_raw_fd(), &conn.wbuf[conn.wpos..]) {
            Ok(n) => conn.wpos += n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    conn.wbuf.clear();
    conn.wpos = 0;
    Ok(true)
}

/// Read once into the connection buffer. Ok(0) is EOF.
fn fill(conn: &mut Conn) -> io::Result<usize> {
    if conn.rpos > 0 && conn.rpos == conn.rbuf.len() {
        conn.rbuf.clear();
        conn.rpos = 0;
    }
    let start = conn.rbuf.len();
    conn.rbuf.resize(start + READ_SIZE, 0);
    loop {
        // SAFETY: the slice after `start` is valid writable memory of READ_SIZE bytes.
        let n = unsafe {
            libc::read(
                conn.fd.as_raw_fd(),
                conn.rbuf[start..].as_mut_ptr().cast(),
                READ_SIZE,
            )
        };
        if n >= 0 {
            conn.rbuf.truncate(start + n as usize);
            return Ok(n as usize);
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            conn.rbuf.truncate(start);
            return Err(e);
        }
    }
}

fn set_nodelay(fd: RawFd) {
    let one: libc::c_int = 1;
    // SAFETY: fd is a live TCP socket; the option value is a local c_int.
    unsafe {
        libc::setsockopt(
            fd,
            libc::IPPROTO_TCP,
            libc::TCP_NODELAY,
            (&one as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        );
    }
}

fn unsafe_zeroed() -> libc::sockaddr_storage {
    // SAFETY: sockaddr_storage is plain old data; all-zero is a valid value.
    unsafe { std::mem::zeroed() }
}

/// Environ address strings for an accepted connection.
fn conn_info(kind: &Kind, storage: &libc::sockaddr_storage, len: libc::socklen_t) -> ConnInfo {
    let (server_name, server_port) = match kind {
        Kind::Tcp(sa) => (sa.ip().to_string(), sa.port().to_string()),
        Kind::Unix(path) => (path.to_string_lossy().into_owned(), String::new()),
    };
    let (remote_addr, remote_port) = match peer_addr(storage, len) {
        Some(sa) => (sa.ip().to_string(), sa.port().to_string()),
        None => (String::new(), String::new()),
    };
    ConnInfo {
        remote_addr,
        remote_port,
        server_name,
        server_port,
    }
}

/// The peer's IP address and port, for AF_INET and AF_INET6 (None for unix).
fn peer_addr(
    storage: &libc::sockaddr_storage,
    len: libc::socklen_t,
) -> Option<std::net::SocketAddr> {
    use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
    let len = len as usize;
    match i32::from(storage.ss_family) {
        libc::AF_INET if len >= std::mem::size_of::<libc::sockaddr_in>() => {
            // SAFETY: the family says the storage holds a sockaddr_in, and it is
            // large and aligned enough for one.
            let sin =
                unsafe { &*(storage as *const libc::sockaddr_storage).cast::<libc::sockaddr_in>() };
            let ip = Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr));
            Some(SocketAddr::V4(SocketAddrV4::new(
                ip,
                u16::from_be(sin.sin_port),
            )))
        }
        libc::AF_INET6 if len >= std::mem::size_of::<libc::sockaddr_in6>() => {
            // SAFETY: as above, for sockaddr_in6.
            let sin6 = unsafe {
                &*(storage as *const libc::sockaddr_storage).cast::<libc::sockaddr_in6>()
            };
            let ip = Ipv6Addr::from(sin6.sin6_addr.s6_addr);
            Some(SocketAddr::V6(SocketAddrV6::new(
                ip,
                u16::from_be(sin6.sin6_port),
                sin6.sin6_flowinfo,
                sin6.sin6_scope_id,
            )))
        }
        _ => None,
    }
}
