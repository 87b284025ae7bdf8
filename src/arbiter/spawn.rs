//! Forking a worker.
//!
//! The fork happens while holding the GIL, bracketed by `PyOS_BeforeFork` /
//! `PyOS_AfterFork_Child` / `PyOS_AfterFork_Parent`, so the child gets a
//! consistent interpreter even when the app (preloaded, later) started threads.
//! The child never returns from [`spawn_worker`].

use std::os::fd::{AsFd, OwnedFd};

use nix::unistd::{ForkResult, Pid, fork};
use pyo3::ffi;
use pyo3::prelude::*;

use crate::balance::Seat;
use crate::config::Config;
use crate::error::ExitStatus;
use crate::heartbeat::Slot;
use crate::listen::Listener;
use crate::python::hooks::Hooks;
use crate::worker::{WorkerInit, run_worker};

/// What a worker inherits from the master, by reference into the forked copy
/// of the master's memory.
pub struct Inherit<'a> {
    /// The configuration of the worker's generation.
    pub config: &'a Config,
    /// The generation's TLS certificate and key, when TLS is on.
    pub tls: Option<&'a crate::tls::Acceptor>,
    /// The master's listening sockets.
    pub listeners: &'a [Listener],
    /// Write end of the boot pipe.
    pub booted_write: &'a OwnedFd,
    /// Server hooks.
    pub hooks: &'a Hooks,
    /// The app, when the master preloaded it.
    pub preloaded: Option<&'a Py<PyAny>>,
}

/// Fork a worker. In the child, `listeners` are duplicated into the worker's own
/// ownership and everything master-only is dropped without running destructors.
///
/// # Errors
/// fork(2) failed (the parent keeps running with one worker less).
pub fn spawn_worker(
    inherit: &Inherit<'_>,
    heartbeat: Slot,
    seat: Seat,
    close_in_child: &[std::os::fd::RawFd],
    age: u64,
) -> nix::Result<Pid> {
    Python::attach(|py| {
        // SAFETY: we hold the GIL and the master is single-threaded (no Rust
        // threads; Python threads, if any, are parked on the GIL we hold), which is
        // what CPython's fork protocol requires.
        let result = unsafe {
            ffi::PyOS_BeforeFork();
            let r = fork();
            match r {
                Ok(ForkResult::Child) => ffi::PyOS_AfterFork_Child(),
                _ => ffi::PyOS_AfterFork_Parent(),
            }
            r
        };
        match result? {
            ForkResult::Parent { child } => Ok(child),
            ForkResult::Child => {
                for fd in close_in_child {
                    // SAFETY: these are master-only descriptors nothing in the child uses.
                    unsafe { libc::close(*fd) };
                }
                let init = child_init(inherit, heartbeat, seat, age);
                run_worker(py, init)
            }
        }
    })
}

/// Build the worker's own copies of the master's resources.
fn child_init<'a>(inherit: &Inherit<'a>, heartbeat: Slot, seat: Seat, age: u64) -> WorkerInit<'a> {
    let listeners = inherit
        .listeners
        .iter()
        .filter_map(|l| {
            let fd = l.fd.as_fd().try_clone_to_owned().ok()?;
            Some(Listener::from_parts(fd, l.kind.clone()))
        })
        .collect();
    let booted = inherit
        .booted_write
        .as_fd()
        .try_clone_to_owned()
        .unwrap_or_else(|_| {
            // SAFETY: nothing to clean up yet in the child.
            unsafe { libc::_exit(ExitStatus::WorkerBoot.code()) }
        });
    WorkerInit {
        config: inherit.config,
        // Decided here, on the master's descriptors: `plain_bind fd://N`
        // names the master's number, not the worker's copy.
        tls: inherit
            .listeners
            .iter()
            .map(|l| {
                inherit
                    .tls
                    .filter(|_| !inherit.config.plain_bind.iter().any(|a| l.matches(a)))
                    .cloned()
            })
            .collect(),
        listeners,
        booted,
        heartbeat,
        seat,
        hooks: inherit.hooks,
        age,
        preloaded: inherit.preloaded,
    }
}
