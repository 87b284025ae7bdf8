//! Halting: the master stopping on its own, not because it was asked to.
//!
//! A worker that exits 3 (boot) or 4 (app load) outside a reload would only
//! crash again if respawned, and a pre_fork or when_ready hook that raises stops
//! Gunicorn's master too. Either way the master stops its workers, says why on
//! one log line and exits with the matching status from the exit-code table.

use std::time::{Duration, Instant};

use nix::sys::signal::Signal;

use super::Arbiter;
use crate::error::ExitStatus;

/// Why the master halts; each reason has its exit status and its log sentence.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Halt {
    /// A worker could not import the application (it exited 4).
    AppLoad,
    /// A worker could not boot (it exited 3).
    WorkerBoot,
    /// A master-side hook whose failure stops Gunicorn raised (pre_fork,
    /// when_ready); its traceback is already logged.
    HookFailed,
}

impl Halt {
    /// The master's exit status.
    fn status(self) -> ExitStatus {
        match self {
            Halt::AppLoad => ExitStatus::AppLoad,
            Halt::WorkerBoot => ExitStatus::WorkerBoot,
            Halt::HookFailed => ExitStatus::Runtime,
        }
    }

    /// The `Reason:` line, in Gunicorn's words.
    fn reason(self) -> &'static str {
        match self {
            Halt::AppLoad => "App failed to load.",
            Halt::WorkerBoot => "Worker failed to boot.",
            Halt::HookFailed => "A server hook failed.",
        }
    }
}

impl Arbiter {
    /// Stop everything for `halt` and return the exit status. The workers get
    /// TERM and at most `graceful_timeout` (5 s at most) before KILL.
    pub(super) fn halt(&mut self, halt: Halt) -> ExitStatus {
        crate::log::info(&format!("Shutting down: Master\nReason: {}", halt.reason()));
        self.notifier.stopping();
        self.signal_all(Signal::SIGTERM);
        let deadline = Instant::now() + self.config.graceful_timeout().min(Duration::from_secs(5));
        while !self.workers.is_empty() && Instant::now() < deadline {
            self.wait_for_activity();
            let _ = self.reap();
        }
        self.signal_all(Signal::SIGKILL);
        self.listeners.clear();
        halt.status()
    }
}
