//! sd_notify(3) from the master: READY, STATUS, STOPPING (RELOADING, WATCHDOG and
//! MAINPID arrive with the lifecycle that sends them).
//!
//! A no-op without NOTIFY_SOCKET. Failures are logged as warnings, never swallowed:
//! a service manager that misses READY=1 will kill the service at its start timeout.

use sd_notify::NotifyState;

/// Sends notifications when the service manager asked for them.
#[derive(Debug, Clone, Copy)]
pub struct Notifier {
    enabled: bool,
}

impl Notifier {
    /// `enabled` when NOTIFY_SOCKET was set at startup.
    pub fn new(enabled: bool) -> Notifier {
        Notifier { enabled }
    }

    /// READY=1 with a status line: every worker has loaded the app.
    pub fn ready(&self, status: &str) {
        self.send(&[NotifyState::Ready, NotifyState::Status(status)]);
    }

    /// STATUS= alone.
    pub fn status(&self, status: &str) {
        self.send(&[NotifyState::Status(status)]);
    }

    /// STOPPING=1: shutdown has begun.
    pub fn stopping(&self) {
        self.send(&[NotifyState::Stopping, NotifyState::Status("stopping")]);
    }

    fn send(&self, states: &[NotifyState]) {
        if !self.enabled {
            return;
        }
        if let Err(e) = sd_notify::notify(states) {
            crate::log::warning(&format!("sd_notify failed: {e}"));
        }
    }
}
