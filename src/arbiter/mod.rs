//! The master: a single-threaded loop with no async runtime and no Python in
//! signal handlers.
//!
//! Each turn waits for an [`Event`] (signal bytes from the self-pipe) or a boot
//! report from a worker, handles it, reaps children, then reconciles the worker
//! count. READY=1 goes to systemd only once every configured worker has loaded
//! the app and can serve — not when the master starts, as Gunicorn does.
//!
//! Signals, as Gunicorn: TERM graceful stop; INT/QUIT quick stop; HUP reload
//! (see [`reload`]); TTIN/TTOU one worker more/less; USR1 reopen logs; USR2
//! start a new master from the binary on disk (see [`reexec`]); WINCH retire the
//! workers and keep the master. A worker exiting with 3 (boot) or 4 (app load)
//! halts the master with that status instead of respawning it in a loop —
//! except during a reload, where it aborts the reload and the old workers serve on.
//! Every reason to halt is a `Halt` (see `halt.rs`), with its status and sentence.

mod halt;
mod memory;
mod metrics;
mod queue;
mod reexec;
mod reload;
mod scrape;
mod spawn;

use std::collections::HashMap;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::Pid;
use pyo3::prelude::*;

use crate::balance::Board;
use crate::config::Config;
use crate::error::ExitStatus;
use crate::heartbeat::{self, Heartbeats};
use crate::launch::Launch;
use crate::listen::Listener;
use crate::pidfile::Pidfile;
use crate::python::hooks::{Hook, Hooks, ServerView, WorkerView};
use crate::signals::{Event, SignalPipe};
use crate::systemd::notify::Notifier;
use halt::Halt;
use metrics::Restart;

/// How long the master sleeps between turns when nothing happens.
const TICK: Duration = Duration::from_millis(1000);
/// How long an aborted worker may take to die before SIGKILL.
const ABORT_GRACE: Duration = Duration::from_secs(2);

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
    /// The configuration generation it was forked with (a HUP starts a new one).
    generation: u64,
    /// Sent TERM to make room (TTOU, reload, WINCH); not counted as serving.
    retiring: bool,
    /// Its memory at the last sample (metrics, max_worker_memory).
    memory: Option<memory::Memory>,
    /// Retired to be replaced, and why (memory); counted when it exits.
    recycle: Option<Restart>,
}

/// Where the master is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Life {
    /// Keeping `num_workers` workers alive.
    Running,
    /// Waiting for workers to exit; kill the rest at the deadline.
    Stopping { deadline: Instant, graceful: bool },
}

/// The master process state.
pub struct Arbiter {
    config: Config,
    /// The TLS certificate and key of this generation, read from the files
    /// `config` names; workers inherit it by fork. None without `certfile`.
    tls: Option<crate::tls::Acceptor>,
    /// How to load the configuration again (SIGHUP) and re-execute (USR2).
    launch: Launch,
    listeners: Vec<Listener>,
    /// Sockets of a previous configuration, dropped once its workers are gone.
    retired_listeners: Vec<Listener>,
    workers: HashMap<Pid, WorkerState>,
    signals: SignalPipe,
    /// Workers write their pid here once the app is loaded (one atomic write each).
    booted_read: OwnedFd,
    booted_write: OwnedFd,
    notifier: Notifier,
    heartbeats: Heartbeats,
    /// Each worker's load, for accept balance.
    board: Board,
    /// Server hooks from the Python config file.
    hooks: Hooks,
    /// Workers spawned so far (the next worker's age).
    spawned: u64,
    /// Current configuration generation.
    generation: u64,
    /// Workers wanted now: `workers`, changed by TTIN/TTOU/WINCH.
    num_workers: usize,
    /// READY=1 sent for the current generation.
    ready_sent: bool,
    phase: Life,
    /// A HUP whose new workers are still booting.
    reload: Option<reload::Pending>,
    /// The master we started with USR2, while it runs.
    reexec_child: Option<Pid>,
    /// The master that started us with USR2, until it exits.
    parent_master: Option<Pid>,
    /// Stop `parent_master` ourselves once ready (HUP with preload_app).
    takeover: bool,
    pidfile: Option<Pidfile>,
    /// The app imported in the master (preload_app), shared with workers by fork.
    preloaded: Option<Py<PyAny>>,
    last_watchdog: Instant,
    last_status: Instant,
    /// Workers killed for silence since start.
    timeouts: u64,
    /// Requests served by workers that have exited (their slots are reused).
    served_by_gone: u64,
    /// Total served and when, at the last STATUS=, for the req/s rate.
    last_served: (u64, Instant),
    /// A hook whose failure stops Gunicorn raised: halt at the end of this turn.
    halting: Option<Halt>,
    /// The metrics listener and its connections (`metrics_bind`).
    scrapes: Option<scrape::Scrapes>,
    /// Request counts of workers that have exited.
    gone: crate::tally::Counts,
    /// Workers replaced, by [`Restart`] in `Restart::ALL` order.
    restarts: [u64; Restart::ALL.len()],
    /// When worker memory was last sampled.
    last_memory_check: Instant,
    /// When `gunicorn.workers` last went to statsD.
    last_statsd_gauge: Instant,
    /// TERM arrived with `shutdown_delay`: serve on, not ready, until then.
    shutdown_at: Option<Instant>,
}

impl Arbiter {
    /// Take ownership of the listeners (and the metrics listener, if any) and
    /// the master's signal pipe; write the pid file.
    ///
    /// # Errors
    /// A pipe, mapping or pid file could not be created, or the preloaded app
    /// failed to import (returned as exit status 4 by the caller).
    pub fn new(
        config: Config,
        (listeners, metrics): (Vec<Listener>, Option<Listener>),
        tls: Option<crate::tls::Acceptor>,
        signals: SignalPipe,
        notifier: Notifier,
        hooks: Hooks,
        launch: Launch,
    ) -> std::io::Result<Arbiter> {
        let (booted_read, booted_write) =
            nix::unistd::pipe2(nix::fcntl::OFlag::O_NONBLOCK | nix::fcntl::OFlag::O_CLOEXEC)?;
        let parent_master = launch
            .var(reexec::PARENT_MASTER)
            .and_then(|p| p.parse::<i32>().ok())
            .map(Pid::from_raw)
            .filter(|p| *p == nix::unistd::getppid());
        let takeover = parent_master.is_some() && launch.var(reexec::TAKEOVER).is_some();
        let pidfile = match &config.pidfile {
            Some(path) if parent_master.is_some() => Some(Pidfile::create(
                &Pidfile::upgrade_path(path),
                std::process::id(),
            )?),
            Some(path) => Some(Pidfile::create(path, std::process::id())?),
            None => None,
        };
        let num_workers = config.workers;
        Ok(Arbiter {
            config,
            tls,
            launch,
            listeners,
            retired_listeners: Vec::new(),
            workers: HashMap::new(),
            signals,
            booted_read,
            booted_write,
            notifier,
            heartbeats: Heartbeats::new()?,
            board: Board::new()?,
            hooks,
            spawned: 0,
            generation: 0,
            num_workers,
            ready_sent: false,
            phase: Life::Running,
            reload: None,
            reexec_child: None,
            parent_master,
            takeover,
            pidfile,
            preloaded: None,
            last_watchdog: Instant::now(),
            last_status: Instant::now(),
            timeouts: 0,
            served_by_gone: 0,
            last_served: (0, Instant::now()),
            halting: None,
            scrapes: metrics.map(scrape::Scrapes::new),
            gone: crate::tally::Counts::default(),
            restarts: [0; Restart::ALL.len()],
            // The first turn measures at once, so the first scrape has sizes.
            last_memory_check: Instant::now()
                .checked_sub(memory::SAMPLE_EVERY)
                .unwrap_or_else(Instant::now),
            last_statsd_gauge: Instant::now(),
            shutdown_at: None,
        })
    }

    /// preload_app: import the app here, once, and freeze the GC so forked
    /// workers share its pages.
    ///
    /// # Errors
    /// The app's import error, with its traceback.
    pub fn preload(&mut self) -> Result<(), crate::python::app::AppLoadError> {
        let app = Python::attach(|py| {
            let app = crate::python::app::load(py, &self.config.app_uri)?;
            if let Ok(gc) = py.import("gc") {
                let _ = gc.call_method0("freeze");
            }
            Ok::<_, crate::python::app::AppLoadError>(app)
        })?;
        self.preloaded = Some(app);
        Ok(())
    }

    /// Run until stopped; returns the process exit status.
    pub fn run(mut self) -> i32 {
        loop {
            if self.phase == Life::Running {
                self.manage_workers();
            }
            self.wait_for_activity();
            for event in self.signals.drain() {
                self.handle(event);
            }
            if let Some(halt) = self.halting.take().or_else(|| self.reap()) {
                let status = self.halt(halt);
                self.exit_hooks();
                return status.code();
            }
            self.read_boot_reports();
            self.check_memory();
            self.serve_scrapes();
            self.send_statsd_gauge();
            self.check_timeouts();
            if self.shutdown_at.is_some_and(|at| Instant::now() >= at) {
                self.stop(true);
            }
            self.maybe_promote();
            self.tell_systemd();
            if let Life::Stopping { deadline, .. } = self.phase {
                if self.workers.is_empty() {
                    crate::log::info("Shutting down: Master");
                    self.exit_hooks();
                    return ExitStatus::Ok.code();
                }
                if Instant::now() >= deadline {
                    self.signal_all(Signal::SIGKILL);
                }
            }
        }
    }

    fn handle(&mut self, event: Event) {
        match event {
            Event::Term => self.delay_or_stop(),
            Event::Int | Event::Quit => self.stop(false),
            Event::Chld => {}
            _ if self.phase != Life::Running || self.shutdown_at.is_some() => {
                crate::log::info(&format!("Ignoring {event:?} while stopping"));
            }
            Event::Hup => self.reload(),
            Event::Ttin => self.set_num_workers(self.num_workers + 1),
            Event::Ttou => self.set_num_workers(self.num_workers.saturating_sub(1).max(1)),
            Event::Winch => {
                crate::log::info("Handling signal: winch; retiring all workers");
                self.num_workers = 0;
            }
            Event::Usr1 => {
                crate::log::info("Handling signal: usr1; reopening log files");
                if let Err(e) = crate::log::reopen() {
                    crate::log::warning(&format!("cannot reopen the error log: {e}"));
                }
                self.signal_all(Signal::SIGUSR1);
            }
            Event::Usr2 => self.upgrade(false),
        }
    }

    /// The hooks' view of the master.
    fn view(&self) -> ServerView {
        ServerView {
            pid: std::process::id(),
            num_workers: self.num_workers,
        }
    }

    fn exit_hooks(&mut self) {
        if self.hooks.is_set(Hook::OnExit) {
            Python::attach(|py| self.hooks.on_exit(py, self.view()));
        }
        if let Some(child) = self.reexec_child {
            // systemd must follow the master we started, or it would stop the service.
            self.notifier.main_pid(child.as_raw() as u32);
        }
        self.pidfile = None;
    }

    /// TTIN/TTOU: change the wanted worker count and tell the hook.
    fn set_num_workers(&mut self, n: usize) {
        let old = self.num_workers;
        if n == old {
            return;
        }
        crate::log::info(&format!("Number of workers: {old} -> {n}"));
        self.num_workers = n;
        if self.hooks.is_set(Hook::NworkersChanged) {
            Python::attach(|py| self.hooks.nworkers_changed(py, self.view(), n, old));
        }
    }

    /// Spawn missing workers of the current generation; retire the oldest extras.
    fn manage_workers(&mut self) {
        let current: Vec<(Pid, u64)> = self
            .workers
            .iter()
            .filter(|(_, w)| w.generation == self.generation && !w.retiring)
            .map(|(pid, w)| (*pid, w.age))
            .collect();
        if current.len() > self.num_workers {
            let mut by_age = current.clone();
            by_age.sort_by_key(|(_, age)| *age);
            for (pid, _) in by_age.into_iter().take(current.len() - self.num_workers) {
                self.retire(pid);
            }
        }
        for _ in current.len()..self.num_workers {
            if !self.spawn() {
                return;
            }
        }
    }

    /// Ask one worker to finish its requests and exit.
    fn retire(&mut self, pid: Pid) {
        if let Some(w) = self.workers.get_mut(&pid) {
            w.retiring = true;
            let _ = kill(pid, Signal::SIGTERM);
        }
    }

    /// Fork one worker of the current generation. False when that failed.
    fn spawn(&mut self) -> bool {
        let Some(slot) = self.heartbeats.allocate() else {
            crate::log::error("no free heartbeat slot; not spawning");
            return false;
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
            if Python::attach(|py| self.hooks.pre_fork(py, self.view(), worker)).is_err() {
                // Gunicorn's master dies when pre_fork raises.
                self.halting = Some(Halt::HookFailed);
                return false;
            }
        }
        let mut close_in_child = vec![self.signals.fd(), self.booted_read.as_raw_fd()];
        close_in_child.extend(self.scrapes.iter().flat_map(scrape::Scrapes::fds));
        let spawned = spawn::spawn_worker(
            &spawn::Inherit {
                config: &self.config,
                tls: self.tls.as_ref(),
                listeners: &self.listeners,
                booted_write: &self.booted_write,
                hooks: &self.hooks,
                preloaded: self.preloaded.as_ref(),
            },
            slot,
            self.board.seat(slot.index),
            &close_in_child,
            age,
        );
        match spawned {
            Ok(pid) => {
                let state = WorkerState {
                    booted: false,
                    slot,
                    aborted_at: None,
                    age,
                    generation: self.generation,
                    retiring: false,
                    memory: None,
                    recycle: None,
                };
                self.workers.insert(pid, state);
                true
            }
            Err(e) => {
                self.heartbeats.release(slot);
                crate::log::error(&format!("fork failed: {e}"));
                false
            }
        }
    }

    /// Abort workers silent for longer than `timeout` (booting ones too); kill
    /// those that ignore the abort.
    fn check_timeouts(&mut self) {
        let Some(timeout) = self.config.timeout() else {
            return;
        };
        let now = Instant::now();
        for (pid, w) in self.workers.iter_mut() {
            match w.aborted_at {
                None if w.slot.silence() > timeout => {
                    let what = match w.slot.request() {
                        Some((req, took)) => {
                            format!(" serving {req} for {:.1}s", took.as_secs_f64())
                        }
                        None if !w.booted => " while booting".to_owned(),
                        None => String::new(),
                    };
                    crate::log::critical(&format!("WORKER TIMEOUT (pid:{pid}){what}"));
                    let _ = kill(*pid, Signal::SIGABRT);
                    w.aborted_at = Some(now);
                    self.timeouts += 1;
                }
                Some(at) if now.duration_since(at) > ABORT_GRACE => {
                    let _ = kill(*pid, Signal::SIGKILL);
                }
                _ => {}
            }
        }
    }

    /// Sleep until a signal, a boot report, a scrape, or the next tick.
    fn wait_for_activity(&self) {
        use nix::poll::{PollFd, PollFlags};
        // SAFETY: the pipe's read end lives as long as `self.signals`.
        let signals_fd = unsafe { std::os::fd::BorrowedFd::borrow_raw(self.signals.fd()) };
        let mut fds = vec![
            PollFd::new(signals_fd, PollFlags::POLLIN),
            PollFd::new(self.booted_read.as_fd(), PollFlags::POLLIN),
        ];
        if let Some(scrapes) = &self.scrapes {
            fds.extend(
                scrapes
                    .poll_fds()
                    .into_iter()
                    .map(|(fd, f)| PollFd::new(fd, f)),
            );
        }
        let mut timeout = match self.phase {
            Life::Stopping { deadline, .. } => deadline
                .saturating_duration_since(Instant::now())
                .min(TICK)
                .max(Duration::from_millis(10)),
            Life::Running => TICK,
        };
        if let Some(interval) = self.notifier.watchdog_interval() {
            timeout = timeout.min(interval);
        }
        if let Some(at) = self.shutdown_at {
            timeout = timeout.min(at.saturating_duration_since(Instant::now()));
        }
        let ms = u16::try_from(timeout.as_millis()).unwrap_or(u16::MAX);
        let _ = nix::poll::poll(&mut fds, nix::poll::PollTimeout::from(ms));
    }

    /// TERM: with `shutdown_delay`, serve on for that long while /readyz says
    /// not ready (a load balancer drains first), then stop gracefully; a
    /// second TERM during the delay stops at once.
    fn delay_or_stop(&mut self) {
        match self.config.shutdown_delay() {
            Some(delay) if self.phase == Life::Running && self.shutdown_at.is_none() => {
                crate::log::info(&format!(
                    "Handling signal: term; serving {}s more while /readyz reports not ready",
                    delay.as_secs()
                ));
                self.notifier.stopping();
                self.shutdown_at = Some(Instant::now() + delay);
            }
            _ => self.stop(true),
        }
    }

    /// Begin a graceful (TERM) or quick (INT/QUIT) stop.
    fn stop(&mut self, graceful: bool) {
        self.shutdown_at = None;
        if let Life::Stopping { graceful: was, .. } = self.phase {
            if was && !graceful {
                // A second, impatient signal turns a graceful stop into a quick one.
                self.signal_all(Signal::SIGQUIT);
                self.phase = Life::Stopping {
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
        self.retired_listeners.clear();
        let (sig, wait) = if graceful {
            (Signal::SIGTERM, self.config.graceful_timeout())
        } else {
            (Signal::SIGQUIT, Duration::from_secs(1))
        };
        self.signal_all(sig);
        self.phase = Life::Stopping {
            deadline: Instant::now() + wait,
            graceful,
        };
    }

    fn signal_all(&self, sig: Signal) {
        for pid in self.workers.keys() {
            let _ = kill(*pid, sig);
        }
    }

    /// Reap exited children: workers, the USR2 child, and any other process
    /// that made us its parent (orphans, when the master is PID 1). Returns
    /// why the master must halt, if it must.
    fn reap(&mut self) -> Option<Halt> {
        let mut halt = None;
        loop {
            let (pid, code) = match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::Exited(pid, code)) => (pid, Some(code)),
                Ok(WaitStatus::Signaled(pid, _, _)) => (pid, None),
                Ok(WaitStatus::StillAlive) | Err(_) => break,
                Ok(_) => continue,
            };
            if Some(pid) == self.reexec_child {
                crate::log::warning(&format!(
                    "New master (pid:{pid}) exited; this master keeps serving"
                ));
                self.reexec_child = None;
                continue;
            }
            // Not a worker: as PID 1 (a container's init) the master adopts
            // every orphan in its PID namespace, such as a grandchild the app
            // double-forked. waitpid(-1) above has reaped it, so no zombie is
            // left behind; nothing else is owed to it.
            let Some(w) = self.workers.remove(&pid) else {
                crate::log::debug!("Reaped pid:{pid}, not a worker (an adopted orphan)");
                continue;
            };
            self.served_by_gone += w.slot.served();
            let expected = w.retiring || self.phase != Life::Running;
            self.account_exit(&w, expected);
            self.heartbeats.release(w.slot);
            self.board.vacate(w.slot.index);
            self.child_exit(pid, &w);
            match code.map(|c| (c, ExitStatus::from_code(c))) {
                Some((_, Some(exit @ (ExitStatus::AppLoad | ExitStatus::WorkerBoot)))) => {
                    let (fatal, what) = if exit == ExitStatus::AppLoad {
                        (Halt::AppLoad, "failed to load the application")
                    } else {
                        (Halt::WorkerBoot, "failed to boot")
                    };
                    crate::log::error(&format!("Worker (pid:{pid}) {what}"));
                    if self.reload.is_some() && w.generation == self.generation {
                        self.abort_reload();
                    } else if !w.retiring {
                        halt = Some(fatal);
                    }
                }
                Some((_, Some(ExitStatus::Ok))) if !expected => {
                    crate::log::info(&format!("Worker (pid:{pid}) exited; replacing it"));
                }
                Some((_, Some(ExitStatus::Ok))) => {}
                Some((code, _)) => {
                    crate::log::error(&format!("Worker (pid:{pid}) exited with code {code}"));
                }
                None if !expected => {
                    crate::log::error(&format!("Worker (pid:{pid}) was killed by a signal"))
                }
                None => {}
            }
        }
        if !self
            .workers
            .values()
            .any(|w| w.generation < self.generation)
        {
            self.retired_listeners.clear();
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

    /// Mark workers that reported a loaded app; finish a reload and send READY=1
    /// when the current generation is all up.
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
        if self.phase != Life::Running || self.ready_sent {
            return;
        }
        let booted = self.serving();
        if booted < self.num_workers {
            if self.notifier.watchdog_interval().is_some() || !self.ready_sent {
                // A slow app load is progress, not a hang: keep systemd waiting.
                self.notifier.extend_timeout(TICK * 5);
            }
            return;
        }
        if self.reload.is_some() {
            self.finish_reload();
        }
        self.ready_sent = true;
        if self.hooks.is_set(Hook::WhenReady)
            && Python::attach(|py| self.hooks.when_ready(py, self.view())).is_err()
        {
            self.halting = Some(Halt::HookFailed);
        }
        self.notifier.ready(&self.status_line());
        crate::log::info(&format!("Ready: {booted} worker(s) serving"));
        if self.takeover {
            self.takeover = false;
            if let Some(parent) = self.parent_master {
                crate::log::info(&format!(
                    "Taking over from the previous master (pid:{parent})"
                ));
                let _ = kill(parent, Signal::SIGTERM);
            }
        }
    }

    /// Booted, non-retiring workers of the current generation.
    fn serving(&self) -> usize {
        self.workers
            .values()
            .filter(|w| w.booted && !w.retiring && w.generation == self.generation)
            .count()
    }

    fn status_line(&self) -> String {
        format!(
            "{}/{} workers serving, {} timeouts",
            self.serving(),
            self.num_workers,
            self.timeouts
        )
    }

    /// Requests served since start, by live and exited workers.
    fn served_total(&self) -> u64 {
        self.served_by_gone + self.workers.values().map(|w| w.slot.served()).sum::<u64>()
    }

    /// After USR2: once the master that started us is gone, we are the master.
    fn maybe_promote(&mut self) {
        let Some(parent) = self.parent_master else {
            return;
        };
        if nix::unistd::getppid() == parent {
            return;
        }
        crate::log::info("Master has been promoted.");
        self.parent_master = None;
        if let (Some(pidfile), Some(path)) = (self.pidfile.as_mut(), self.config.pidfile.as_ref())
            && let Err(e) = pidfile.rename(path)
        {
            crate::log::warning(&format!("cannot rename the pid file: {e}"));
        }
        self.notifier.main_pid(std::process::id());
    }

    /// WATCHDOG=1 while healthy, and a fresh STATUS= now and then.
    fn tell_systemd(&mut self) {
        let now = Instant::now();
        if let Some(interval) = self.notifier.watchdog_interval()
            && now.duration_since(self.last_watchdog) >= interval.saturating_sub(TICK / 10)
        {
            let fresh = self.config.timeout().is_none_or(|limit| {
                let limit = limit.max(Duration::from_secs(1));
                self.workers.values().all(|w| w.slot.silence() <= limit)
            });
            if fresh {
                self.notifier.watchdog();
                self.last_watchdog = now;
            }
        }
        if self.ready_sent && now.duration_since(self.last_status) >= Duration::from_secs(5) {
            let total = self.served_total();
            let (before, since) = self.last_served;
            let secs = now.duration_since(since).as_secs_f64().max(0.001);
            let rate = total.saturating_sub(before) as f64 / secs;
            self.notifier.status(&format!(
                "{}/{} workers serving, {rate:.0} req/s, {} timeouts",
                self.serving(),
                self.num_workers,
                self.timeouts
            ));
            self.last_served = (total, now);
            self.last_status = now;
        }
    }
}
