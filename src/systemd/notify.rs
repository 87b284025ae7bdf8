//! sd_notify(3) from the master: READY, RELOADING (with MONOTONIC_USEC, so
//! Type=notify-reload works), STOPPING, STATUS, WATCHDOG, MAINPID,
//! EXTEND_TIMEOUT_USEC and FDSTORE.
//!
//! The datagrams are built and sent here rather than by the `sd-notify` crate,
//! which cannot address the abstract (`@name`) sockets systemd may use.
//! A no-op without NOTIFY_SOCKET. Failures are logged as warnings, never swallowed:
//! a service manager that misses READY=1 will kill the service at its start timeout.

use std::os::fd::{AsRawFd, BorrowedFd};
use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::time::Duration;

/// Sends notifications when the service manager asked for them.
#[derive(Debug, Clone)]
pub struct Notifier {
    /// Where to send, from NOTIFY_SOCKET (a path, or `@name` for an abstract socket).
    target: Option<String>,
    /// Half of WATCHDOG_USEC, when the watchdog is on for this process.
    watchdog_interval: Option<Duration>,
}

impl Notifier {
    /// From the start-up environment: NOTIFY_SOCKET enables notifications;
    /// WATCHDOG_USEC (with WATCHDOG_PID, if set, naming `pid`) enables pings.
    pub fn from_env(env: &dyn Fn(&str) -> Option<String>, pid: u32) -> Notifier {
        let target = env("NOTIFY_SOCKET").filter(|s| !s.is_empty());
        let for_us = env("WATCHDOG_PID").is_none_or(|p| p.trim().parse::<u32>().ok() == Some(pid));
        let watchdog_interval = env("WATCHDOG_USEC")
            .and_then(|v| v.trim().parse::<u64>().ok())
            .filter(|usec| *usec > 0 && for_us && target.is_some())
            .map(|usec| Duration::from_micros(usec / 2));
        Notifier {
            target,
            watchdog_interval,
        }
    }

    /// How often to send WATCHDOG=1, if at all.
    pub fn watchdog_interval(&self) -> Option<Duration> {
        self.watchdog_interval
    }

    /// True when NOTIFY_SOCKET was set.
    pub fn enabled(&self) -> bool {
        self.target.is_some()
    }

    /// READY=1 with a status line: every worker has loaded the app.
    pub fn ready(&self, status: &str) {
        self.send(&format!("READY=1\nSTATUS={status}"), None);
    }

    /// RELOADING=1 with MONOTONIC_USEC, as Type=notify-reload requires.
    pub fn reloading(&self) {
        let now = monotonic_usec();
        self.send(
            &format!("RELOADING=1\nMONOTONIC_USEC={now}\nSTATUS=reloading"),
            None,
        );
    }

    /// STATUS= alone.
    pub fn status(&self, status: &str) {
        self.send(&format!("STATUS={status}"), None);
    }

    /// STOPPING=1: shutdown has begun.
    pub fn stopping(&self) {
        self.send("STOPPING=1\nSTATUS=stopping", None);
    }

    /// WATCHDOG=1: the master loop is healthy and every worker's heartbeat is fresh.
    pub fn watchdog(&self) {
        self.send("WATCHDOG=1", None);
    }

    /// MAINPID=: after a re-exec, systemd must follow the new master.
    pub fn main_pid(&self, pid: u32) {
        self.send(&format!("MAINPID={pid}"), None);
    }

    /// EXTEND_TIMEOUT_USEC=: a slow app load is making progress.
    pub fn extend_timeout(&self, by: Duration) {
        self.send(&format!("EXTEND_TIMEOUT_USEC={}", by.as_micros()), None);
    }

    /// FDSTORE=1 with FDNAME=: keep a listening socket across restarts.
    pub fn store_fd(&self, fd: BorrowedFd<'_>, name: &str) {
        self.send(&format!("FDSTORE=1\nFDNAME={name}"), Some(fd));
    }

    /// FDSTOREREMOVE=1 with FDNAME=: drop stored sockets no longer configured.
    pub fn remove_stored_fds(&self, name: &str) {
        self.send(&format!("FDSTOREREMOVE=1\nFDNAME={name}"), None);
    }

    fn send(&self, message: &str, fd: Option<BorrowedFd<'_>>) {
        let Some(target) = &self.target else {
            return;
        };
        if let Err(e) = send_to(target, message, fd) {
            crate::log::warning(&format!("sd_notify to {target} failed: {e}"));
        }
    }
}

/// One datagram to NOTIFY_SOCKET, with an fd attached when given.
fn send_to(target: &str, message: &str, fd: Option<BorrowedFd<'_>>) -> std::io::Result<()> {
    let addr = match target.strip_prefix('@') {
        Some(name) => SocketAddr::from_abstract_name(name.as_bytes())?,
        None => SocketAddr::from_pathname(target)?,
    };
    let sock = UnixDatagram::unbound()?;
    sock.connect_addr(&addr)?;
    match fd {
        None => {
            sock.send(message.as_bytes())?;
        }
        Some(fd) => {
            let iov = [std::io::IoSlice::new(message.as_bytes())];
            let fds = [fd.as_raw_fd()];
            let cmsg = [nix::sys::socket::ControlMessage::ScmRights(&fds)];
            nix::sys::socket::sendmsg::<()>(
                sock.as_raw_fd(),
                &iov,
                &cmsg,
                nix::sys::socket::MsgFlags::empty(),
                None,
            )?;
        }
    }
    Ok(())
}

/// CLOCK_MONOTONIC in microseconds, as systemd reads MONOTONIC_USEC.
fn monotonic_usec() -> u64 {
    // CLOCK_MONOTONIC cannot fail on Linux.
    nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC).map_or(0, |t| {
        t.tv_sec() as u64 * 1_000_000 + t.tv_nsec() as u64 / 1000
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |k| {
            pairs
                .iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| (*v).to_owned())
        }
    }

    fn env_owned(pairs: Vec<(&'static str, String)>) -> impl Fn(&str) -> Option<String> {
        move |k| pairs.iter().find(|(n, _)| *n == k).map(|(_, v)| v.clone())
    }

    #[test]
    fn ready_and_reloading_reach_a_path_socket() {
        let path = std::env::temp_dir().join(format!("rgunicorn-notify-{}", std::process::id()));
        let _ = std::fs::remove_file(&path);
        let sock = UnixDatagram::bind(&path).unwrap();
        let n = Notifier::from_env(
            &env_owned(vec![("NOTIFY_SOCKET", path.display().to_string())]),
            1,
        );
        n.ready("2/2 workers serving");
        n.reloading();
        let mut buf = [0u8; 512];
        let len = sock.recv(&mut buf).unwrap();
        assert_eq!(&buf[..len], b"READY=1\nSTATUS=2/2 workers serving");
        let len = sock.recv(&mut buf).unwrap();
        let text = std::str::from_utf8(&buf[..len]).unwrap();
        let usec: u64 = text
            .lines()
            .find_map(|l| l.strip_prefix("MONOTONIC_USEC="))
            .unwrap()
            .parse()
            .unwrap();
        assert!(text.starts_with("RELOADING=1\n") && usec > 0, "{text}");
        let _ = std::fs::remove_file(&path);
    }

    #[test]
    fn abstract_sockets_are_addressed_with_at() {
        let name = format!("rgunicorn-notify-abstract-{}", std::process::id());
        let sock =
            UnixDatagram::bind_addr(&SocketAddr::from_abstract_name(name.as_bytes()).unwrap())
                .unwrap();
        let n = Notifier::from_env(&env_owned(vec![("NOTIFY_SOCKET", format!("@{name}"))]), 1);
        n.stopping();
        let mut buf = [0u8; 64];
        let len = sock.recv(&mut buf).unwrap();
        assert_eq!(&buf[..len], b"STOPPING=1\nSTATUS=stopping");
    }

    #[test]
    fn fdstore_passes_the_descriptor() {
        let name = format!("rgunicorn-notify-fd-{}", std::process::id());
        let sock =
            UnixDatagram::bind_addr(&SocketAddr::from_abstract_name(name.as_bytes()).unwrap())
                .unwrap();
        let n = Notifier::from_env(&env_owned(vec![("NOTIFY_SOCKET", format!("@{name}"))]), 1);
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        n.store_fd(std::os::fd::AsFd::as_fd(&listener), "rgunicorn-bind");
        let mut buf = [0u8; 128];
        let mut iov = [std::io::IoSliceMut::new(&mut buf)];
        let mut space = nix::cmsg_space!([std::os::fd::RawFd; 1]);
        let msg = nix::sys::socket::recvmsg::<()>(
            sock.as_raw_fd(),
            &mut iov,
            Some(&mut space),
            nix::sys::socket::MsgFlags::empty(),
        )
        .unwrap();
        let fds: Vec<_> = msg
            .cmsgs()
            .unwrap()
            .filter_map(|c| match c {
                nix::sys::socket::ControlMessageOwned::ScmRights(fds) => Some(fds),
                _ => None,
            })
            .flatten()
            .collect();
        assert_eq!(fds.len(), 1);
        let len = msg.bytes;
        assert_eq!(&buf[..len], b"FDSTORE=1\nFDNAME=rgunicorn-bind");
        // SAFETY: we received this descriptor and own it now.
        drop(unsafe { <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fds[0]) });
    }

    #[test]
    fn watchdog_pings_at_half_the_interval_for_our_pid_only() {
        let n = Notifier::from_env(
            &env(&[
                ("NOTIFY_SOCKET", "/x"),
                ("WATCHDOG_USEC", "3000000"),
                ("WATCHDOG_PID", "7"),
            ]),
            7,
        );
        assert_eq!(n.watchdog_interval(), Some(Duration::from_millis(1500)));
        let other = Notifier::from_env(
            &env(&[
                ("NOTIFY_SOCKET", "/x"),
                ("WATCHDOG_USEC", "3000000"),
                ("WATCHDOG_PID", "8"),
            ]),
            7,
        );
        assert_eq!(other.watchdog_interval(), None);
        let off = Notifier::from_env(&env(&[("WATCHDOG_USEC", "3000000")]), 7);
        assert_eq!(off.watchdog_interval(), None);
    }
}
