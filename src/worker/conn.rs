//! One client connection of a worker: its buffers, where it is in the request
//! cycle, and the non-blocking socket calls the event loop makes on it.

use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::time::{Instant, SystemTime};

use crate::http::head::RequestHead;
use crate::listen::Kind;
use crate::wsgi::{Body, ConnInfo, Parked};

/// Bytes read per read(2).
const READ_SIZE: usize = 16 * 1024;

/// Where a connection is in its request cycle.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Phase {
    /// Between requests; closed after `keepalive` seconds.
    Idle,
    /// Part of a request has arrived; closed after `timeout` seconds.
    Reading,
    /// Shut down for writing; input is discarded until EOF or the linger time.
    Lingering,
}

pub(super) struct Conn {
    pub(super) fd: OwnedFd,
    pub(super) info: ConnInfo,
    pub(super) rbuf: Vec<u8>,
    pub(super) rpos: usize,
    pub(super) wbuf: Vec<u8>,
    pub(super) wpos: usize,
    /// A parsed head waiting for its small body to arrive.
    pub(super) head: Option<RequestHead>,
    pub(super) phase: Phase,
    pub(super) deadline: Instant,
    /// When the last response was handed to the socket buffer (or the
    /// connection was accepted): a graceful stop waits its grace period from here.
    pub(super) idle_since: Instant,
    /// Close once `wbuf` is written.
    pub(super) close_after_write: bool,
    /// A response waiting for this client to read (the app's iterator or file
    /// is resumed once the buffered output is written).
    pub(super) in_flight: Option<InFlight>,
}

/// A parked response and what its access log line needs.
pub(super) struct InFlight {
    pub(super) parked: Parked,
    pub(super) body: Body,
    pub(super) head: RequestHead,
    pub(super) started: SystemTime,
    pub(super) clock: Instant,
}

/// Write buffered output. Ok(true) when all is written.
pub(super) fn flush(conn: &mut Conn) -> io::Result<bool> {
    while conn.wpos < conn.wbuf.len() {
        match crate::sockio::send_some(conn.fd.as_raw_fd(), &conn.wbuf[conn.wpos..])? {
            Some(n) => conn.wpos += n,
            None => return Ok(false),
        }
    }
    conn.wbuf.clear();
    conn.wpos = 0;
    Ok(true)
}

/// Read once into the connection buffer. Ok(0) is EOF.
pub(super) fn fill(conn: &mut Conn) -> io::Result<usize> {
    if conn.rpos > 0 && conn.rpos == conn.rbuf.len() {
        conn.rbuf.clear();
        conn.rpos = 0;
    }
    let start = conn.rbuf.len();
    // Read into spare capacity: zero-filling 16 KiB per read showed up in profiles.
    conn.rbuf.reserve(READ_SIZE);
    loop {
        // SAFETY: `reserve` guarantees READ_SIZE writable bytes after `start`;
        // read(2) writes at most that many.
        let n = unsafe {
            libc::read(
                conn.fd.as_raw_fd(),
                conn.rbuf.as_mut_ptr().add(start).cast(),
                READ_SIZE,
            )
        };
        if n >= 0 {
            // SAFETY: read(2) initialised exactly `n` bytes after `start`.
            unsafe { conn.rbuf.set_len(start + n as usize) };
            return Ok(n as usize);
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

pub(super) fn set_nodelay(fd: RawFd) {
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

pub(super) fn unsafe_zeroed() -> libc::sockaddr_storage {
    // SAFETY: sockaddr_storage is plain old data; all-zero is a valid value.
    unsafe { std::mem::zeroed() }
}

/// Environ address strings for an accepted connection.
pub(super) fn conn_info(
    kind: &Kind,
    fd: RawFd,
    storage: &libc::sockaddr_storage,
    len: libc::socklen_t,
) -> ConnInfo {
    let (server_name, server_port) = match kind {
        // A wildcard listener (0.0.0.0, ::) says nothing useful: name the
        // address this connection actually reached.
        Kind::Tcp(sa) if sa.ip().is_unspecified() => {
            let local = local_addr(fd).unwrap_or(*sa);
            (local.ip().to_string(), local.port().to_string())
        }
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

/// The local address of a connected TCP socket.
fn local_addr(fd: RawFd) -> Option<std::net::SocketAddr> {
    let mut storage = unsafe_zeroed();
    let mut len = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
    // SAFETY: storage/len describe a valid, writable sockaddr buffer; fd is a
    // live socket owned by the caller.
    let r = unsafe {
        libc::getsockname(
            fd,
            (&mut storage as *mut libc::sockaddr_storage).cast(),
            &mut len,
        )
    };
    if r != 0 {
        return None;
    }
    peer_addr(&storage, len)
}

/// The peer's IP address and port, for AF_INET and AF_INET6 (None for unix).
pub(super) fn peer_addr(
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
