//! sd_notify(3) from the master: READY, RELOADING (with MONOTONIC_USEC, so
//! Type=notify-reload works), STOPPING, STATUS, WATCHDOG, MAINPID,
//! EXTEND_TIMEOUT_USEC and FDSTORE.
//!
//! A no-op without NOTIFY_SOCKET. Failures are logged as warnings, never swallowed:
//! a service manager that misses READY=1 will kill the service at its start timeout.

use std::os::fd::BorrowedFd;
use std::time::Duration;

use sd_notify::NotifyState;

/// Sends notifications when the service manager asked for them.
#[derive(Debug, Clone, Copy)]
pub struct Notifier {
    enabled: bool,
    /// Half of WATCHDOG_USEC, when the watchdog is on for this process.
    watchdog_interval: Option<Duration>,
}

impl Notifier {
    /// From the start-up environment: NOTIFY_SOCKET enables notifications;
    /// WATCHDOG_USEC (with WATCHDOG_PID, if set, naming `pid`) enables pings.
    pub fn from_env(env: &dyn Fn(&str) -> Option<String>, pid: u32) -> Notifier {
        let enabled = env("NOTIFY_SOCKET").is_some_and(|s| !s.is_empty());
        let for_us = env("WATCHDOG_PID").is_none_or(|p| p.trim().parse::<u32>().ok() == Some(pid));
        let watchdog_interval = env("WATCHDOG_USEC")
            .and_then(|v| v.trim().parse::<u64>().ok())
            .filter(|usec| *usec > 0 && for_us && enabled)
            .map(|usec| Duration::from_micros(usec / 2));
        Notifier {
            enabled,
            watchdog_interval,
        }
    }

    /// How often to send WATCHDOG=1, if at all.
    pub fn watchdog_interval(&self) -> Option<Duration> {
        self.watchdog_interval
    }

    /// READY=1 with a status line: every worker has loaded the app.
    pub fn ready(&self, status: &str) {
        self.send(&[NotifyState::Ready, NotifyState::Status(status)]);
    }

    /// RELOADING=1 with MONOTONIC_USEC, as Type=notify-reload requires.
    pub fn reloading(&self) {
        match NotifyState::monotonic_usec_now() {
            Ok(now) => self.send(&[
                NotifyState::Reloading,
                now,
                NotifyState::Status("reloading"),
            ]),
            Err(_) => self.send(&[NotifyState::Reloading, NotifyState::Status("reloading")]),
        }
    }

    /// STATUS= alone.
    pub fn status(&self, status: &str) {
        self.send(&[NotifyState::Status(status)]);
    }

    /// STOPPING=1: shutdown has begun.
    pub fn stopping(&self) {
        self.send(&[NotifyState::Stopping, NotifyState::Status("stopping")]);
    }

    /// WATCHDOG=1: the master loop is healthy and every worker's heartbeat is fresh.
    pub fn watchdog(&self) {
        self.send(&[NotifyState::Watchdog]);
    }

    /// MAINPID=: after a re-exec, systemd must follow the new master.
    pub fn main_pid(&self, pid: u32) {
        self.send(&[NotifyState::MainPid(pid)]);
    }

    /// EXTEND_TIMEOUT_USEC=: a slow app load is making progress.
    pub fn extend_timeout(&self, by: Duration) {
        let usec = u32::try_from(by.as_micros()).unwrap_or(u32::MAX);
        self.send(&[NotifyState::ExtendTimeoutUsec(usec)]);
    }

    /// FDSTORE=1 with FDNAME=: keep a listening socket across restarts.
    pub fn store_fd(&self, fd: BorrowedFd<'_>, name: &str) {
        if !self.enabled {
            return;
        }
        let states = [NotifyState::FdStore, NotifyState::FdName(name)];
        if let Err(e) = sd_notify::notify_with_fds(&states, &[fd]) {
            crate::log::warning(&format!("sd_notify FDSTORE failed: {e}"));
        }
    }

    /// FDSTOREREMOVE=1 with FDNAME=: drop stored sockets no longer configured.
    pub fn remove_stored_fds(&self, name: &str) {
        self.send(&[NotifyState::FdStoreRemove, NotifyState::FdName(name)]);
    }

    /// True when NOTIFY_SOCKET was set.
    pub fn enabled(&self) -> bool {
        self.enabled
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
