//! USR2: start a new master from the binary on disk, handing it the listening
//! sockets, while this master keeps serving.
//!
//! The sockets travel the systemd way: dup2'd to fds 3.. with LISTEN_FDS,
//! LISTEN_PID (the child's own pid, written after fork) and LISTEN_FDNAMES, so
//! the new master adopts them exactly as it adopts sockets from systemd, and never
//! binds an address it was passed. `RGUNICORN_PARENT_MASTER` tells it which master
//! to wait for before it renames `PIDFILE.2` and calls itself the master;
//! `RGUNICORN_TAKEOVER=1` (SIGHUP with preload_app) makes it retire that master
//! itself once its workers serve.
//!
//! Everything the child needs is allocated before fork; between fork and execve
//! the child only calls async-signal-safe functions.

use std::ffi::{CString, OsString};
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::ffi::OsStrExt;

use nix::unistd::Pid;

use crate::launch::Invocation;
use crate::listen::Listener;

/// Environment variable naming the master that started us with USR2.
pub const PARENT_MASTER: &str = "RGUNICORN_PARENT_MASTER";
/// Environment variable asking the new master to stop its parent once ready.
pub const TAKEOVER: &str = "RGUNICORN_TAKEOVER";

/// Variables we set for the child; stripped from the inherited environment.
const OURS: [&str; 5] = [
    "LISTEN_PID",
    "LISTEN_FDS",
    "LISTEN_FDNAMES",
    PARENT_MASTER,
    TAKEOVER,
];

/// Fork and exec a new master. Returns its pid.
///
/// # Errors
/// A NUL byte in an argument or variable, or fork(2) failing.
pub fn reexec(
    invocation: &Invocation,
    env: &[(String, String)],
    listeners: &[Listener],
    metrics: Option<&Listener>,
    takeover: bool,
) -> std::io::Result<Pid> {
    let cstr = |bytes: &[u8]| {
        CString::new(bytes)
            .map_err(|_| std::io::Error::other("NUL byte in argument or environment"))
    };
    let exe = cstr(invocation.exe.as_os_str().as_bytes())?;
    let args: Vec<CString> = invocation
        .args
        .iter()
        .map(|a: &OsString| cstr(a.as_bytes()))
        .collect::<Result<_, _>>()?;
    let cwd = cstr(invocation.cwd.as_os_str().as_bytes())?;
    // The metrics socket goes last, under the name that keeps it off HTTP duty.
    let mut names: Vec<&str> = listeners.iter().map(|_| "rgunicorn").collect();
    let listeners: Vec<&Listener> = listeners.iter().chain(metrics).collect();
    if metrics.is_some() {
        names.push(crate::startup::METRICS_FD_NAME);
    }
    let mut vars: Vec<CString> = env
        .iter()
        .filter(|(k, _)| !OURS.contains(&k.as_str()))
        .map(|(k, v)| cstr(format!("{k}={v}").as_bytes()))
        .collect::<Result<_, _>>()?;
    vars.push(cstr(format!("LISTEN_FDS={}", listeners.len()).as_bytes())?);
    vars.push(cstr(
        format!("LISTEN_FDNAMES={}", names.join(":")).as_bytes(),
    )?);
    vars.push(cstr(
        format!("{PARENT_MASTER}={}", std::process::id()).as_bytes(),
    )?);
    if takeover {
        vars.push(cstr(format!("{TAKEOVER}=1").as_bytes())?);
    }
    let fds: Vec<RawFd> = listeners.iter().map(|l| l.fd.as_raw_fd()).collect();

    // The LISTEN_PID entry is written by the child into this buffer.
    let mut listen_pid = [0u8; 32];
    let mut argv: Vec<*const libc::c_char> = args.iter().map(|a| a.as_ptr()).collect();
    argv.push(std::ptr::null());
    let mut envp: Vec<*const libc::c_char> = vars.iter().map(|v| v.as_ptr()).collect();
    let listen_pid_slot = envp.len();
    envp.push(std::ptr::null());
    envp.push(std::ptr::null());

    // SAFETY: the master is single-threaded; the child below only calls
    // async-signal-safe functions (getpid, fcntl, dup2, chdir, execve, _exit) and
    // writes into memory allocated before the fork.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(std::io::Error::last_os_error());
    }
    if pid > 0 {
        return Ok(Pid::from_raw(pid));
    }
    // Child.
    // SAFETY: see above; every pointer refers to memory owned by this stack frame.
    unsafe {
        let n = write_listen_pid(&mut listen_pid, libc::getpid() as u32);
        listen_pid[n] = 0;
        envp[listen_pid_slot] = listen_pid.as_ptr().cast();
        // Move the sockets out of the way first, above the range 3..3+n they
        // are about to take, so dup2 onto 3.. never clobbers one. (Not a
        // fixed high number: with RLIMIT_NOFILE at 1024 that fails.)
        let mut high = [0 as RawFd; 64];
        let above = 3 + fds.len().min(high.len()) as RawFd;
        for (i, fd) in fds.iter().take(high.len()).enumerate() {
            high[i] = libc::fcntl(*fd, libc::F_DUPFD_CLOEXEC, above);
            if high[i] < 0 {
                // Without its sockets the new master must not start.
                libc::_exit(127);
            }
        }
        for (i, h) in high.iter().take(fds.len()).enumerate() {
            // dup2 onto a different fd clears FD_CLOEXEC: the new master inherits it.
            libc::dup2(*h, 3 + i as RawFd);
        }
        libc::chdir(cwd.as_ptr());
        libc::execve(exe.as_ptr(), argv.as_ptr(), envp.as_ptr());
        libc::_exit(127);
    }
}

/// Write `LISTEN_PID=<pid>` into `buf` without allocating; returns its length.
fn write_listen_pid(buf: &mut [u8; 32], pid: u32) -> usize {
    const PREFIX: &[u8] = b"LISTEN_PID=";
    buf[..PREFIX.len()].copy_from_slice(PREFIX);
    let mut digits = [0u8; 10];
    let mut n = pid;
    let mut len = 0;
    loop {
        digits[len] = b'0' + (n % 10) as u8;
        len += 1;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    for i in 0..len {
        buf[PREFIX.len() + i] = digits[len - 1 - i];
    }
    PREFIX.len() + len
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listen_pid_is_formatted_without_allocation() {
        let mut buf = [0u8; 32];
        let n = write_listen_pid(&mut buf, 40213);
        assert_eq!(&buf[..n], b"LISTEN_PID=40213");
        let n = write_listen_pid(&mut buf, 0);
        assert_eq!(&buf[..n], b"LISTEN_PID=0");
    }
}
