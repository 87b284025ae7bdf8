//! Forking a worker.
//!
//! The fork happens while holding the GIL, bracketed by `PyOS_BeforeFork` /
//! `PyOS_AfterFork_Child` / `PyOS_AfterFork_Parent`, so the child gets a
//! consistent interpreter even when the app (preloaded, later) started threads.
//! The child never returns from [`spawn_worker`].

use std::os::fd::{AsFd, OwnedFd};

use nix::unistd::{ForkResult, Pid, fork};
use pyo3::Python;
use pyo3::ffi;

use super::heartbeat::Slot;
use crate::config::Config;
use crate::listen::Listener;
use crate::python::hooks::Hooks;
use crate::worker::{WorkerInit, run_worker};

/// Fork a worker. In the child, `listeners` are duplicated into the worker's own
/// ownership and everything master-only is dropped without running destructors.
///
/// # Errors
/// fork(2) failed (the parent keeps running with one worker less).
pub fn spawn_worker(
    config: &Config,
    listeners: &[Listener],
    booted_write: &OwnedFd,
    heartbeat: Slot,
    close_in_child: &[std::os::fd::RawFd],
    hooks: &Hooks,
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
                let mut init = child_init(config, listeners, booted_write, heartbeat, hooks);
                init.age = age;
                run_worker(py, init)
            }
        }
    })
}

/// Build the worker's own copies of the master's resources.
fn child_init<'a>(
    config: &'a Config,
    listeners: &[Listener],
    booted_write: &OwnedFd,
    heartbeat: Slot,
    hooks: &'a Hooks,
) -> WorkerInit<'a> {
    let listeners = listeners
        .iter()
        .filter_map(|l| {
            let fd = l.fd.as_fd().try_clone_to_owned().ok()?;
            Some(Listener::from_parts(fd, l.kind.clone()))
        })
        .collect();
    let booted = booted_write
        .as_fd()
        .try_clone_to_owned()
        .unwrap_or_else(|_| {
            // SAFETY: nothing to clean up yet in the child; 3 = worker boot failure.
            unsafe { libc::_exit(3) }
        });
    WorkerInit {
        config,
        listeners,
        booted,
        heartbeat,
        hooks,
        age: 0,
    }
}
