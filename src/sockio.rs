//! Socket I/O on client connections: the one home of every read, write,
//! sendfile, accept and shutdown call the server makes on them.
//!
//! Two callers share it. The worker's event loop (`worker/`) uses the
//! non-blocking calls and never waits. `wsgi/` uses the blocking ones only
//! where PEP 3333 makes the app wait (it reads body bytes the client has not
//! sent, or calls `write()`), and runs them with the GIL released. Nothing here
//! knows about HTTP or Python.
//!
//! Reads go into a `Vec`'s spare capacity rather than a zero-filled buffer:
//! zero-filling 16 KiB per read showed up in profiles.

use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::os::fd::{FromRawFd, OwnedFd, RawFd};
use std::time::Duration;

/// What a non-blocking call that may have to wait returned.
pub type Progress<T> = io::Result<Option<T>>;

/// Read once into the spare capacity of `buf`, growing it by up to `max`
/// bytes. `Ok(Some(0))` is EOF; `Ok(None)` means the socket has nothing now.
///
/// # Errors
/// The socket failed (reset, or another error).
pub fn read_some(fd: RawFd, buf: &mut Vec<u8>, max: usize) -> Progress<usize> {
    let start = buf.len();
    buf.reserve(max);
    // SAFETY: `reserve` guarantees `max` writable bytes after `start`; read(2)
    // writes at most that many.
    let n = nonblocking(|| unsafe { libc::read(fd, buf.as_mut_ptr().add(start).cast(), max) })?;
    if let Some(n) = n {
        // SAFETY: read(2) initialised exactly `n` bytes after `start`.
        unsafe { buf.set_len(start + n) };
    }
    Ok(n)
}

/// Read once into `buf`. `Ok(Some(0))` is EOF; `Ok(None)` means the socket
/// has nothing now.
///
/// # Errors
/// The socket failed (reset, or another error).
pub fn read_into(fd: RawFd, buf: &mut [u8]) -> Progress<usize> {
    // SAFETY: `buf` is valid writable memory of its length.
    nonblocking(|| unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) })
}

/// Retry `call` (a read-like syscall returning a count or -1) across EINTR;
/// EAGAIN is `Ok(None)`.
fn nonblocking(mut call: impl FnMut() -> isize) -> Progress<usize> {
    loop {
        let n = call();
        if n >= 0 {
            return Ok(Some(n as usize));
        }
        let e = io::Error::last_os_error();
        match e.kind() {
            io::ErrorKind::Interrupted => {}
            io::ErrorKind::WouldBlock => return Ok(None),
            _ => return Err(e),
        }
    }
}

/// [`read_some`], waiting up to `timeout` for the client to send something.
/// Blocks: callers holding the GIL release it around this call.
///
/// # Errors
/// As [`read_some`], plus `TimedOut` when the client sent nothing in time.
pub fn read_blocking(
    fd: RawFd,
    buf: &mut Vec<u8>,
    max: usize,
    timeout: Duration,
) -> io::Result<usize> {
    loop {
        match read_some(fd, buf, max)? {
            Some(n) => return Ok(n),
            None => wait(fd, libc::POLLIN, timeout)?,
        }
    }
}

/// One send(2) without SIGPIPE. `Ok(None)` means the socket buffer is full.
///
/// # Errors
/// The socket failed (the client reset it, or another error).
pub fn send_some(fd: RawFd, data: &[u8]) -> Progress<usize> {
    // SAFETY: data is valid readable memory of data.len() bytes.
    nonblocking(|| unsafe { libc::send(fd, data.as_ptr().cast(), data.len(), libc::MSG_NOSIGNAL) })
}

/// Send as much of `data` as the socket takes now; returns how much it took.
///
/// # Errors
/// As [`send_some`].
pub fn send_available(fd: RawFd, data: &[u8]) -> io::Result<usize> {
    let mut sent = 0;
    while sent < data.len() {
        match send_some(fd, &data[sent..])? {
            Some(n) => sent += n,
            None => break,
        }
    }
    Ok(sent)
}

/// Send all of `data`, waiting up to `timeout` each time the socket is full.
/// Blocks: callers holding the GIL release it around this call.
///
/// # Errors
/// As [`send_some`], plus `TimedOut` when the client read nothing in time.
pub fn send_blocking(fd: RawFd, mut data: &[u8], timeout: Duration) -> io::Result<()> {
    while !data.is_empty() {
        match send_some(fd, data)? {
            Some(n) => data = &data[n..],
            None => wait(fd, libc::POLLOUT, timeout)?,
        }
    }
    Ok(())
}

/// One sendfile(2) of up to `count` bytes of `file` from `offset` (advanced).
/// `Ok(None)` means the socket buffer is full; `Ok(Some(0))` that the file
/// ended early.
///
/// # Errors
/// The socket or the file failed.
pub fn sendfile_some(sock: RawFd, file: RawFd, offset: &mut i64, count: u64) -> Progress<u64> {
    let chunk = count.min(1 << 30) as usize;
    // SAFETY: both fds are open for the duration of the call; offset points
    // to a live i64.
    let n = nonblocking(|| unsafe { libc::sendfile(sock, file, offset, chunk) })?;
    Ok(n.map(|n| n as u64))
}

/// Look at the first byte waiting on the socket without taking it.
/// `Ok(Some(None))` is EOF; `Ok(None)` means nothing has arrived yet.
///
/// # Errors
/// The socket failed.
pub fn peek_byte(fd: RawFd) -> Progress<Option<u8>> {
    let mut byte = 0u8;
    // SAFETY: `byte` is one writable byte for the duration of the call.
    let n = nonblocking(|| unsafe { libc::recv(fd, (&raw mut byte).cast(), 1, libc::MSG_PEEK) })?;
    Ok(n.map(|n| (n > 0).then_some(byte)))
}

/// Wait up to `timeout` until the client sent something (or hung up).
///
/// # Errors
/// `TimedOut`, or poll(2) failed.
pub fn wait_readable(fd: RawFd, timeout: Duration) -> io::Result<()> {
    wait(fd, libc::POLLIN, timeout)
}

/// Wait up to `timeout` until the socket takes more output.
///
/// # Errors
/// `TimedOut`, or poll(2) failed.
pub fn wait_writable(fd: RawFd, timeout: Duration) -> io::Result<()> {
    wait(fd, libc::POLLOUT, timeout)
}

/// Read and drop everything the client has sent so far. `Ok(true)` once its
/// EOF is seen (or the socket failed): nothing more will come.
pub fn discard_input(fd: RawFd) -> bool {
    let mut scratch = [0u8; 4096];
    loop {
        // SAFETY: scratch is a valid writable buffer of its length.
        let n = unsafe { libc::read(fd, scratch.as_mut_ptr().cast(), scratch.len()) };
        if n > 0 {
            continue;
        }
        if n < 0 {
            match io::Error::last_os_error().kind() {
                io::ErrorKind::Interrupted => continue,
                io::ErrorKind::WouldBlock => return false,
                _ => {}
            }
        }
        return true;
    }
}

/// Shut the socket down for writing: our FIN follows what was written.
///
/// # Errors
/// The socket is no longer connected.
pub fn shutdown_write(fd: RawFd) -> io::Result<()> {
    // SAFETY: fd is a live socket owned by the caller.
    if unsafe { libc::shutdown(fd, libc::SHUT_WR) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// True for errors that mean the client went away, not that the server failed.
pub fn is_disconnect(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::BrokenPipe
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionAborted
    )
}

/// Wait until `fd` is ready for `events`, up to `timeout`.
fn wait(fd: RawFd, events: libc::c_short, timeout: Duration) -> io::Result<()> {
    let mut pfd = libc::pollfd {
        fd,
        events,
        revents: 0,
    };
    let ms = timeout.as_millis().min(i32::MAX as u128) as i32;
    loop {
        // SAFETY: pfd is a valid pollfd for the duration of the call; nfds is 1.
        let r = unsafe { libc::poll(&mut pfd, 1, ms) };
        match r {
            0 => return Err(io::ErrorKind::TimedOut.into()),
            r if r > 0 => return Ok(()),
            _ => {
                let e = io::Error::last_os_error();
                if e.kind() != io::ErrorKind::Interrupted {
                    return Err(e);
                }
            }
        }
    }
}

/// An accepted connection: its socket (non-blocking, close-on-exec) and the
/// peer's address (None for unix sockets).
pub struct Accepted {
    /// The connection's socket.
    pub fd: OwnedFd,
    /// The client's IP address and port.
    pub peer: Option<SocketAddr>,
}

/// accept4(2) one connection from a listener. `Ok(None)`: none is waiting.
///
/// # Errors
/// The listener failed (EMFILE and friends); aborted handshakes are skipped.
pub fn accept(listener: RawFd) -> Progress<Accepted> {
    loop {
        let mut storage = zeroed_storage();
        let mut len = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
        // SAFETY: storage/len describe a valid, writable sockaddr buffer.
        let fd = unsafe {
            libc::accept4(
                listener,
                (&mut storage as *mut libc::sockaddr_storage).cast(),
                &mut len,
                libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
            )
        };
        if fd >= 0 {
            // SAFETY: accept4 returned a new descriptor that nothing else owns.
            let fd = unsafe { OwnedFd::from_raw_fd(fd) };
            return Ok(Some(Accepted {
                fd,
                peer: inet_addr(&storage, len),
            }));
        }
        let e = io::Error::last_os_error();
        match e.kind() {
            io::ErrorKind::WouldBlock => return Ok(None),
            io::ErrorKind::Interrupted | io::ErrorKind::ConnectionAborted => {}
            _ => return Err(e),
        }
    }
}

/// The local address of a connected TCP socket.
pub fn local_addr(fd: RawFd) -> Option<SocketAddr> {
    let mut storage = zeroed_storage();
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
    inet_addr(&storage, len)
}

/// Turn Nagle off on a TCP connection: responses are written whole.
pub fn set_nodelay(fd: RawFd) {
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

fn zeroed_storage() -> libc::sockaddr_storage {
    // SAFETY: sockaddr_storage is plain old data; all-zero is a valid value.
    unsafe { std::mem::zeroed() }
}

/// The IP address and port in `storage`, for AF_INET and AF_INET6.
fn inet_addr(storage: &libc::sockaddr_storage, len: libc::socklen_t) -> Option<SocketAddr> {
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
            Some(SocketAddr::V6(SocketAddrV6::new(
                Ipv6Addr::from(sin6.sin6_addr.s6_addr),
                u16::from_be(sin6.sin6_port),
                sin6.sin6_flowinfo,
                sin6.sin6_scope_id,
            )))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::os::fd::AsRawFd;
    use std::os::unix::net::UnixStream;

    fn pair() -> (UnixStream, UnixStream) {
        let (a, b) = UnixStream::pair().unwrap();
        a.set_nonblocking(true).unwrap();
        b.set_nonblocking(true).unwrap();
        (a, b)
    }

    #[test]
    fn read_some_appends_and_reports_would_block_and_eof() {
        let (a, mut b) = pair();
        let mut buf = b"x".to_vec();
        assert_eq!(read_some(a.as_raw_fd(), &mut buf, 16).unwrap(), None);
        b.write_all(b"hello").unwrap();
        assert_eq!(read_some(a.as_raw_fd(), &mut buf, 16).unwrap(), Some(5));
        assert_eq!(buf, b"xhello");
        drop(b);
        assert_eq!(read_some(a.as_raw_fd(), &mut buf, 16).unwrap(), Some(0));
    }

    #[test]
    fn send_available_stops_when_the_socket_is_full() {
        let (a, b) = pair();
        let big = vec![7u8; 8 << 20];
        let sent = send_available(a.as_raw_fd(), &big).unwrap();
        assert!(sent > 0 && sent < big.len(), "{sent}");
        assert_eq!(send_some(a.as_raw_fd(), &big).unwrap(), None);
        drop(b);
        let e = send_some(a.as_raw_fd(), b"x").unwrap_err();
        assert!(is_disconnect(&e), "{e}");
    }

    #[test]
    fn blocking_read_times_out_when_nothing_comes() {
        let (a, _b) = pair();
        let mut buf = Vec::new();
        let e = read_blocking(a.as_raw_fd(), &mut buf, 16, Duration::from_millis(20)).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::TimedOut);
    }

    #[test]
    fn discard_input_reports_eof() {
        let (a, mut b) = pair();
        b.write_all(b"junk").unwrap();
        assert!(!discard_input(a.as_raw_fd()));
        drop(b);
        assert!(discard_input(a.as_raw_fd()));
    }
}
