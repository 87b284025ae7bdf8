//! Signals as events: the self-pipe.
//!
//! The handler only writes the signal number as one byte to a non-blocking pipe
//! (async-signal-safe); the owning loop reads the bytes and turns them into
//! [`Event`]s. The pipe's write end is the one global the crate allows: a signal
//! handler has no other way to reach the loop. The master and each worker
//! (after fork) install their own pipe, with their own signal set
//! ([`MASTER_SIGNALS`], [`WORKER_SIGNALS`]); both loops read the same [`Event`]s,
//! so this module sits beside them rather than inside either.

use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicI32, Ordering};

use nix::sys::signal::{SaFlags, SigAction, SigHandler, SigSet, Signal, sigaction};

/// Write end of the current process's self-pipe (-1 before install).
static PIPE_WRITE: AtomicI32 = AtomicI32::new(-1);

/// A signal, as the loop sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event {
    /// SIGTERM: graceful stop.
    Term,
    /// SIGINT: quick stop.
    Int,
    /// SIGQUIT: quick stop.
    Quit,
    /// SIGHUP: reload.
    Hup,
    /// SIGTTIN: one more worker.
    Ttin,
    /// SIGTTOU: one worker less.
    Ttou,
    /// SIGUSR1: reopen log files.
    Usr1,
    /// SIGUSR2: re-exec the binary.
    Usr2,
    /// SIGWINCH: retire workers, keep the master.
    Winch,
    /// SIGCHLD: a child changed state.
    Chld,
}

impl Event {
    fn from_signal(sig: Signal) -> Option<Event> {
        Some(match sig {
            Signal::SIGTERM => Event::Term,
            Signal::SIGINT => Event::Int,
            Signal::SIGQUIT => Event::Quit,
            Signal::SIGHUP => Event::Hup,
            Signal::SIGTTIN => Event::Ttin,
            Signal::SIGTTOU => Event::Ttou,
            Signal::SIGUSR1 => Event::Usr1,
            Signal::SIGUSR2 => Event::Usr2,
            Signal::SIGWINCH => Event::Winch,
            Signal::SIGCHLD => Event::Chld,
            _ => return None,
        })
    }
}

/// The signals the master handles.
pub const MASTER_SIGNALS: &[Signal] = &[
    Signal::SIGTERM,
    Signal::SIGINT,
    Signal::SIGQUIT,
    Signal::SIGHUP,
    Signal::SIGTTIN,
    Signal::SIGTTOU,
    Signal::SIGUSR1,
    Signal::SIGUSR2,
    Signal::SIGWINCH,
    Signal::SIGCHLD,
];

/// The signals a worker handles.
pub const WORKER_SIGNALS: &[Signal] = &[
    Signal::SIGTERM,
    Signal::SIGINT,
    Signal::SIGQUIT,
    Signal::SIGUSR1,
];

extern "C" fn on_signal(signo: libc::c_int) {
    let fd = PIPE_WRITE.load(Ordering::Relaxed);
    if fd >= 0 {
        let byte = signo as u8;
        // SAFETY: write(2) is async-signal-safe; the buffer is a local byte. A full
        // pipe drops the byte, which is fine: the loop is already awake.
        unsafe {
            let saved = *libc::__errno_location();
            libc::write(fd, (&byte as *const u8).cast(), 1);
            *libc::__errno_location() = saved;
        }
    }
}

/// The read side of the self-pipe.
#[derive(Debug)]
pub struct SignalPipe {
    read: OwnedFd,
    _write: OwnedFd,
}

impl SignalPipe {
    /// Create the pipe and route `signals` to it. Replaces any previous pipe of
    /// this process (a forked worker calls this again for its own set).
    ///
    /// # Errors
    /// pipe2(2) or sigaction(2) failed.
    pub fn install(signals: &[Signal]) -> nix::Result<SignalPipe> {
        let (read, write) =
            nix::unistd::pipe2(nix::fcntl::OFlag::O_NONBLOCK | nix::fcntl::OFlag::O_CLOEXEC)?;
        PIPE_WRITE.store(write.as_raw_fd(), Ordering::Relaxed);
        let action = SigAction::new(
            SigHandler::Handler(on_signal),
            SaFlags::SA_RESTART | SaFlags::SA_NOCLDSTOP,
            SigSet::empty(),
        );
        for sig in signals {
            // SAFETY: on_signal is async-signal-safe (one write(2) to a pipe).
            unsafe { sigaction(*sig, &action)? };
        }
        Ok(SignalPipe {
            read,
            _write: write,
        })
    }

    /// The fd to poll for readability.
    pub fn fd(&self) -> RawFd {
        self.read.as_raw_fd()
    }

    /// Read every pending signal byte, in arrival order.
    pub fn drain(&self) -> Vec<Event> {
        let mut events = Vec::new();
        let mut buf = [0u8; 64];
        loop {
            match nix::unistd::read(&self.read, &mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => events.extend(buf[..n].iter().filter_map(|b| {
                    Signal::try_from(i32::from(*b))
                        .ok()
                        .and_then(Event::from_signal)
                })),
            }
        }
        events
    }
}

/// Restore default dispositions (used in a forked child before it installs its own).
pub fn reset(signals: &[Signal]) {
    let action = SigAction::new(SigHandler::SigDfl, SaFlags::empty(), SigSet::empty());
    for sig in signals {
        // SAFETY: restoring the default disposition installs no handler code.
        let _ = unsafe { sigaction(*sig, &action) };
    }
}

/// Ignore SIGPIPE: a client that goes away must surface as EPIPE, not kill us.
pub fn ignore_sigpipe() {
    let action = SigAction::new(SigHandler::SigIgn, SaFlags::empty(), SigSet::empty());
    // SAFETY: SIG_IGN installs no handler code.
    let _ = unsafe { sigaction(Signal::SIGPIPE, &action) };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raised_signal_arrives_as_event() {
        let pipe = SignalPipe::install(&[Signal::SIGWINCH]).unwrap();
        nix::sys::signal::raise(Signal::SIGWINCH).unwrap();
        assert_eq!(pipe.drain(), vec![Event::Winch]);
        assert!(pipe.drain().is_empty());
    }
}
