//! Accept-queue depth of the listeners, from the kernel, for `/metrics`.
//!
//! TCP: `getsockopt(TCP_INFO)` on a listening socket reports the connections
//! waiting for accept(2) in `tcpi_unacked` and the backlog in `tcpi_sacked`.
//! Unix stream sockets: one sock_diag netlink request (`ss -xl` asks the
//! same), looked up by the socket's inode, with `UNIX_DIAG_RQLEN` giving the
//! queue length and the backlog. Both are answered by the kernel at once;
//! neither waits on a worker.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use crate::listen::{Endpoint, Listener};

/// (waiting connections, backlog) of a listener, when the kernel tells.
pub(super) fn depth(l: &Listener) -> Option<(u32, u32)> {
    match l.kind {
        Endpoint::Tcp(_) => tcp(l.fd.as_raw_fd()),
        Endpoint::Unix(_) => unix(l.fd.as_raw_fd()),
    }
}

fn tcp(fd: RawFd) -> Option<(u32, u32)> {
    // SAFETY: tcp_info is plain old data; zeroed is a valid value.
    let mut info: libc::tcp_info = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libc::tcp_info>() as libc::socklen_t;
    // SAFETY: getsockopt writes at most `len` bytes into `info`, which we own.
    let rc = unsafe {
        libc::getsockopt(
            fd,
            libc::IPPROTO_TCP,
            libc::TCP_INFO,
            (&raw mut info).cast(),
            &mut len,
        )
    };
    (rc == 0).then_some((info.tcpi_unacked, info.tcpi_sacked))
}

/// linux/sock_diag.h and linux/unix_diag.h.
const SOCK_DIAG_BY_FAMILY: u16 = 20;
const UDIAG_SHOW_RQLEN: u32 = 0x10;
const UNIX_DIAG_RQLEN: u16 = 4;
const TCP_LISTEN: u32 = 10;

fn unix(fd: RawFd) -> Option<(u32, u32)> {
    // SAFETY: fstat fills the struct we own; the result is checked.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    if unsafe { libc::fstat(fd, &mut st) } != 0 {
        return None;
    }
    let inode = u32::try_from(st.st_ino).ok()?;
    // SAFETY: a new netlink socket, owned at once.
    let raw = unsafe {
        libc::socket(
            libc::AF_NETLINK,
            libc::SOCK_DGRAM | libc::SOCK_CLOEXEC,
            libc::NETLINK_SOCK_DIAG,
        )
    };
    if raw < 0 {
        return None;
    }
    // SAFETY: `raw` is a descriptor nothing else owns.
    let sock = unsafe { OwnedFd::from_raw_fd(raw) };
    let request = diag_request(inode);
    // SAFETY: send from a buffer we own; the kernel answers before returning.
    let sent = unsafe { libc::send(sock.as_raw_fd(), request.as_ptr().cast(), request.len(), 0) };
    if sent < 0 {
        return None;
    }
    let mut reply = [0u8; 512];
    // SAFETY: recv into a buffer we own; MSG_DONTWAIT, the reply is already queued.
    let n = unsafe {
        libc::recv(
            sock.as_raw_fd(),
            reply.as_mut_ptr().cast(),
            reply.len(),
            libc::MSG_DONTWAIT,
        )
    };
    parse_reply(reply.get(..usize::try_from(n).ok()?)?)
}

/// nlmsghdr + unix_diag_req asking for one listening socket's queue lengths.
fn diag_request(inode: u32) -> Vec<u8> {
    let mut m = Vec::with_capacity(40);
    m.extend_from_slice(&40u32.to_ne_bytes()); // nlmsg_len
    m.extend_from_slice(&SOCK_DIAG_BY_FAMILY.to_ne_bytes()); // nlmsg_type
    m.extend_from_slice(&(libc::NLM_F_REQUEST as u16).to_ne_bytes()); // nlmsg_flags
    m.extend_from_slice(&1u32.to_ne_bytes()); // nlmsg_seq
    m.extend_from_slice(&0u32.to_ne_bytes()); // nlmsg_pid
    m.push(libc::AF_UNIX as u8); // sdiag_family
    m.push(0); // sdiag_protocol
    m.extend_from_slice(&0u16.to_ne_bytes()); // pad
    m.extend_from_slice(&(1u32 << TCP_LISTEN).to_ne_bytes()); // udiag_states
    m.extend_from_slice(&inode.to_ne_bytes()); // udiag_ino
    m.extend_from_slice(&UDIAG_SHOW_RQLEN.to_ne_bytes()); // udiag_show
    m.extend_from_slice(&[0xff; 8]); // udiag_cookie: INET_DIAG_NOCOOKIE
    m
}

/// Find UNIX_DIAG_RQLEN (rqueue, wqueue) in a reply: nlmsghdr (16 bytes),
/// unix_diag_msg (16 bytes), then rtattrs.
fn parse_reply(reply: &[u8]) -> Option<(u32, u32)> {
    let u16_at = |i: usize| Some(u16::from_ne_bytes(reply.get(i..i + 2)?.try_into().ok()?));
    let u32_at = |i: usize| Some(u32::from_ne_bytes(reply.get(i..i + 4)?.try_into().ok()?));
    if u16_at(4)? != SOCK_DIAG_BY_FAMILY {
        return None; // NLMSG_ERROR: no such socket, or no unix_diag in the kernel
    }
    let end = (u32_at(0)? as usize).min(reply.len());
    let mut at = 32;
    while at + 4 <= end {
        let len = usize::from(u16_at(at)?);
        if len < 4 {
            return None;
        }
        if u16_at(at + 2)? == UNIX_DIAG_RQLEN && len >= 12 {
            return Some((u32_at(at + 4)?, u32_at(at + 8)?));
        }
        at += len.next_multiple_of(4);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_unix_listeners_queue_is_read_by_inode() {
        let dir = std::env::temp_dir().join(format!("rg-queue-{}", std::process::id()));
        let _ = std::fs::create_dir_all(&dir);
        let path = dir.join("q.sock");
        let _ = std::fs::remove_file(&path);
        let listener = std::os::unix::net::UnixListener::bind(&path).unwrap();
        let (_a, _b) = (
            std::os::unix::net::UnixStream::connect(&path).unwrap(),
            std::os::unix::net::UnixStream::connect(&path).unwrap(),
        );
        let (waiting, backlog) = unix(listener.as_raw_fd()).expect("sock_diag answers");
        assert_eq!(waiting, 2);
        assert!(backlog >= 2);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_tcp_listeners_queue_is_read_from_tcp_info() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let _c = std::net::TcpStream::connect(addr).unwrap();
        let (waiting, backlog) = tcp(listener.as_raw_fd()).unwrap();
        assert_eq!(waiting, 1);
        assert!(backlog >= 1);
    }

    #[test]
    fn a_reply_without_the_attribute_gives_nothing() {
        assert_eq!(parse_reply(&[0u8; 8]), None);
        let mut error = vec![0u8; 36];
        error[0] = 36;
        error[4] = 2; // NLMSG_ERROR
        assert_eq!(parse_reply(&error), None);
    }
}
