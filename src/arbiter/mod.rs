//! The master: a single-threaded loop with no async runtime and no Python in
//! signal handlers.
//!
//! Each turn waits for an [`Event`] (signal bytes from the self-pipe) or a boot
//! report from a worker, handles it, reaps children, then reconciles the worker
//! count. READY=1 goes to systemd only once every configured worker has loaded
//! the app and can serve — not when the master starts, as Gunicorn does.
//!
//! Stops: TERM is graceful (workers stop accepting and finish in-flight requests
//! within `graceful_timeout`, then are killed); INT and QUIT are quick. A worker
//! exiting with 3 (boot) or 4 (app load) halts the master with that status
//! instead of respawning it in a loop.

pub mod heartbeat;
pub mod signals;
mod spawn;

use std::collections::HashMap;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::Pid;

use pyo3::Python;

use crate::config::Config;
use crate::listen::Listener;
use crate::python::hooks::{Hook, Hooks, ServerView, WorkerView};
use crate::systemd::notify::Notifier;
use crate::worker::WorkerExit;
use signals::{Event, SignalPipe};

/// How long the master sleeps between turns when nothing happens.
const TICK: Duration = Duration::from_millis(1000);

/// One live worker, as the master tracks it.
struct WorkerState {
    /// Has reported that its app is loaded.
    booted: bool,
    /// Its heartbeat slot.
    slot: heartbeat::Slot,
    /// When we sent SIGABRT for a timeout; SIGKILL follows if it lingers.
    aborted_at: Option<Instant>,
    /// Spawn counter value, Gunicorn's `worker.age`.
    age: u64,
}

/// How long an aborted worker may take to die before SIGKILL.
const ABORT_GRACE: Duration = Duration::from_secs(2);

/// Where the master is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// Keeping `workers` workers alive.
    Running,
    /// Waiting for workers to exit; kill the rest at the deadline.
    Stopping { deadline: Instant, graceful: bool },
}

/// The master process state.
pub struct Arbiter {
    config: Config,
    listeners: Vec<Listener>,
    workers: HashMap<Pid, WorkerState>,
    signals: SignalPipe,
    /// Workers write their pid here once the app is loaded (one atomic write each).
    booted_read: OwnedFd,
    booted_write: OwnedFd,
    notifier: Notifier,
    ready_sent: bool,
    phase: Phase,
    heartbeats: heartbeat::Heartbeats,
    /// Server hooks from the Python config file.
    hooks: Hooks,
    /// Workers spawned so far (the next worker's age).
    spawned: u64,
}

impl Arbiter {
    /// Take ownership of the listeners and the master's signal pipe.
    ///
    /// # Errors
    /// pipe2(2) failed.
    pub fn new(
        config: Config,
        listeners: Vec<Listener>,
        signals: SignalPipe,
        notifier: Notifier,
        hooks: Hooks,
    ) -> nix::Result<Arbiter> {
        let (booted_read, booted_write) =
            nix::unistd::pipe2(nix::fcntl::OFlag::O_NONBLOCK | nix::fcntl::OFlag::O_CLOEXEC)?;
        Ok(Arbiter {
            config,
            listeners,
            workers: HashMap::new(),
            signals,
            booted_read,
            booted_write,
            notifier,
            ready_sent: false,
            phase: Phase::Running,
            heartbeats: heartbeat::Heartbeats::new().map_err(|e| {
                nix::errno::Errno::from_raw(e.raw_os_error().unwrap_or(libc::ENOMEM))
            })?,
            hooks,
            spawned: 0,
        })
    }

    /// Run until stopped; returns the process exit status.
    pub fn run(mut self) -> i32 {
        loop {
            if let Phase::Running = self.phase {
                self.spawn_missing();
            }
            self.wait_for_activity();
            for event in self.signals.drain() {
                match event {
                    Event::Term => self.stop(true),
                    Event::Int | Event::Quit => self.stop(false),
                    Event::Chld => {}
                    other => crate::log::debug(&format!("ignoring {other:?} (not supported yet)")),
                }
            }
            if let Some(code) = self.reap() {
                let code = self.halt(code);
                self.exit_hooks();
                return code;
            }
            self.read_boot_reports();
            self.check_timeouts();
            if let Phase::Stopping { deadline, .. } = self.phase {
                if self.workers.is_empty() {
                    crate::log::info("Shutting down: Master");
                    self.exit_hooks();
                    return 0;
                }
                if Instant::now() >= deadline {
                    self.signal_all(Signal::SIGKILL);
                }
            }
        }
    }

    /// The hooks' view of the master.
    fn view(&self) -> ServerView {
        ServerView {
            pid: std::process::id(),
            num_workers: self.config.workers,
        }
    }

    fn exit_hooks(&self) {
        if self.hooks.is_set(Hook::OnExit) {
            Python::attach(|py| self.hooks.on_exit(py, self.view()));
        }
    }

    fn spawn_missing(&mut self) {
        while self.workers.len() < self.config.workers {
            let Some(slot) = self.heartbeats.allocate() else {
                crate::log::error("no free heartbeat slot; not spawning");
                return;
            };
            self.spawned += 1;
            let age = self.spawned;
            if self.hooks.is_set(Hook::PreFork) {
                let worker = WorkerView {
                    pid: None,
                    ppid: std::process::id(),
                    age,
                    alive: true,
                };
                Python::attach(|py| self.hooks.pre_fork(py, self.view(), worker));
            }
            let close_in_child = [self.signals.fd(), self.booted_read.as_raw_fd()];
            let spawned = spawn::spawn_worker(
                &self.config,
                &self.listeners,
                &self.booted_write,
                slot,
                &close_in_child,
                &self.hooks,
                age,
            );
            match spawned {
                Ok(pid) => {
                    let state = WorkerState {
                        booted: false,
                        slot,
                        aborted_at: None,
                        age,
                    };
                    self.workers.insert(pid, state);
                }
                Err(e) => {
                    self.heartbeats.release(slot);
                    crate::log::error(&format!("fork failed: {e}"));
                    return;
                }
            }
        }
    }

    /// Abort workers silent for longer than `timeout` (booting ones too); kill
    /// those that ignore the abort.
    fn check_timeouts(&mut self) {
        if self.config.timeout == 0 {
            return;
        }
        let timeout = Duration::from_secs(self.config.timeout);
        let now = Instant::now();
        for (pid, w) in self.workers.iter_mut() {
            match w.aborted_at {
                None if w.slot.silence() > timeout => {
                    crate::log::critical(&format!("WORKER TIMEOUT (pid:{pid})"));
                    let _ = kill(*pid, Signal::SIGABRT);
                    w.aborted_at = Some(now);
                }
                Some(at) if now.duration_since(at) > ABORT_GRACE => {
                    let _ = kill(*pid, Signal::SIGKILL);
                }
                _ => {}
            }
        }
    }

    /// Sleep until a signal, a boot report, or the next tick.
    fn wait_for_activity(&self) {
        let mut fds = [
            nix::poll::PollFd::new(self.signals_fd(), nix::poll::PollFlags::POLLIN),
            nix::poll::PollFd::new(self.booted_read.as_fd(), nix::poll::PollFlags::POLLIN),
        ];
        let timeout = match self.phase {
            Phase::Stopping { deadline, .. } => deadline
                .saturating_duration_since(Instant::now())
                .min(TICK)
                .max(Duration::from_millis(10)),
            Phase::Running => TICK,
        };
        let ms = u16::try_from(timeout.as_millis()).unwrap_or(u16::MAX);
        let _ = nix::poll::poll(&mut fds, nix::poll::PollTimeout::from(ms));
    }

    fn signals_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        // SAFETY: the pipe's read end lives as long as `self.signals`.
        unsafe { std::os::fd::BorrowedFd::borrow_raw(self.signals.fd()) }
    }

    /// Begin a graceful (TERM) or quick (INT/QUIT) stop.
    fn stop(&mut self, graceful: bool) {
        if let Phase::Stopping { graceful: was, .. } = self.phase {
            if was && !graceful {
                // A second, impatient signal turns a graceful stop into a quick one.
                self.signal_all(Signal::SIGQUIT);
                self.phase = Phase::Stopping {
                    deadline: Instant::now() + Duration::from_secs(1),
                    graceful: false,
                };
            }
            return;
        }
        crate::log::info(if graceful {
            "Handling signal: term"
        } else {
            "Handling signal: int"
        });
        self.notifier.stopping();
        // Our copies of the sockets close now; workers close theirs as they stop
        // accepting, so the kernel refuses new connections once all are gone.
        self.listeners.clear();
        let (sig, wait) = if graceful {
            (
                Signal::SIGTERM,
                Duration::from_secs(self.config.graceful_timeout),
            )
        } else {
            (Signal::SIGQUIT, Duration::from_secs(1))
        };
        self.signal_all(sig);
        self.phase = Phase::Stopping {
            deadline: Instant::now() + wait,
            graceful,
        };
    }

    fn signal_all(&self, sig: Signal) {
        for pid in self.workers.keys() {
            let _ = kill(*pid, sig);
        }
    }

    /// Reap exited children. Returns an exit status when the master must halt.
    fn reap(&mut self) -> Option<i32> {
        let mut halt = None;
        loop {
            match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::Exited(pid, code)) => {
                    let Some(w) = self.workers.remove(&pid) else {
                        continue;
                    };
                    self.heartbeats.release(w.slot);
                    self.child_exit(pid, &w);
                    match WorkerExit::from_code(code) {
                        Some(WorkerExit::AppLoadError) => {
                            crate::log::error(&format!(
                                "Worker (pid:{pid}) failed to load the application"
                            ));
                            halt = Some(WorkerExit::AppLoadError as i32);
                        }
                        Some(WorkerExit::BootError) => {
                            crate::log::error(&format!("Worker (pid:{pid}) failed to boot"));
                            halt = Some(WorkerExit::BootError as i32);
                        }
                        Some(WorkerExit::Ok) if self.phase == Phase::Running => {
                            crate::log::warning(&format!("Worker (pid:{pid}) exited unexpectedly"));
                        }
                        Some(WorkerExit::Ok) => {}
                        None => crate::log::error(&format!(
                            "Worker (pid:{pid}) exited with code {code}"
                        )),
                    }
                }
                Ok(WaitStatus::Signaled(pid, sig, _)) => {
                    if let Some(w) = self.workers.remove(&pid) {
                        self.heartbeats.release(w.slot);
                        self.child_exit(pid, &w);
                        if self.phase == Phase::Running {
                            crate::log::error(&format!("Worker (pid:{pid}) was sent {sig}!"));
                        }
                    }
                }
                Ok(WaitStatus::StillAlive) | Err(_) => break,
                Ok(_) => {}
            }
        }
        halt
    }

    fn child_exit(&self, pid: Pid, w: &WorkerState) {
        if self.hooks.is_set(Hook::ChildExit) {
            let worker = WorkerView {
                pid: Some(pid.as_raw() as u32),
                ppid: std::process::id(),
                age: w.age,
                alive: false,
            };
            Python::attach(|py| self.hooks.child_exit(py, self.view(), worker));
        }
    }

    /// Mark workers that reported a loaded app; send READY=1 when all have.
    fn read_boot_reports(&mut self) {
        let mut buf = [0u8; 4 * 64];
        while let Ok(n) = nix::unistd::read(&self.booted_read, &mut buf) {
            if n == 0 {
                break;
            }
            for chunk in buf[..n].chunks_exact(4) {
                let pid = u32::from_ne_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
                if let Some(w) = self.workers.get_mut(&Pid::from_raw(pid as i32)) {
                    w.booted = true;
                }
            }
        }
        let booted = self.workers.values().filter(|w| w.booted).count();
        if !self.ready_sent && self.phase == Phase::Running && booted >= self.config.workers {
            self.ready_sent = true;
            if self.hooks.is_set(Hook::WhenReady) {
                Python::attach(|py| self.hooks.when_ready(py, self.view()));
            }
            self.notifier.ready(&self.status_line(booted));
            crate::log::info(&format!("Ready: {booted} worker(s) serving"));
        }
    }

    fn status_line(&self, booted: usize) -> String {
        format!("{booted}/{} workers serving", self.config.workers)
    }

    /// Stop everything after a fatal worker exit and return `code`.
    fn halt(&mut self, code: i32) -> i32 {
        let reason = if code == WorkerExit::AppLoadError as i32 {
            "App failed to load."
        } else {
            "Worker failed to boot."
        };
        crate::log::info(&format!("Shutting down: Master\nReason: {reason}"));
        self.notifier.stopping();
        self.signal_all(Signal::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(self.config.graceful_timeout.min(5));
        while !self.workers.is_empty() && Instant::now() < deadline {
            self.wait_for_activity();
            let _ = self.reap();
        }
        self.signal_all(Signal::SIGKILL);
        self.listeners.clear();
        code
    }
}
