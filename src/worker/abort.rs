//! SIGABRT in a worker: the master's timeout, made diagnosable.
//!
//! The master aborts a worker that stopped beating (usually: stuck inside the
//! app), then kills it two seconds later. Before anything else, the worker's
//! reaction must say *where* it was stuck, even when the main thread is inside C
//! code holding the GIL. Python's `faulthandler` does that: its C signal handler
//! walks every thread's frames without taking the GIL and writes them straight
//! to the error log's file descriptor.
//!
//! Two handlers are chained for SIGABRT, faulthandler first:
//! 1. `faulthandler.enable(all_threads=True)` (SIGABRT is one of its fatal
//!    signals, which `register` refuses) prints "Fatal Python error: Aborted"
//!    and every thread's stack, restores the handler that was installed before
//!    it and re-raises the signal into it —
//! 2. CPython's own handler, installed by `signal.signal` with an
//!    [`AbortHandler`]. It only marks the signal; the handler runs the next time
//!    the main thread executes Python: at once if the app is in `time.sleep` or
//!    a lock wait, or when our event loop calls [`AbortFlag::check`]. It sets the
//!    flag the loop reads and raises `SystemExit(1)` to unwind the app; the
//!    worker then runs the `worker_abort` hook and exits 1, as Gunicorn does.
//!
//! A main thread stuck in C never runs step 2: the dump is all we get, and the
//! master's SIGKILL ends the worker. As a side effect, a crash (SIGSEGV, SIGBUS,
//! SIGILL, SIGFPE) in the app also leaves its Python stacks in the error log.
//!
//! Only SIGABRT gets a Python-level handler; Rust keeps every other signal
//! (CPython was initialised with `install_signal_handlers = 0`).

use std::fs::OpenOptions;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use pyo3::exceptions::PySystemExit;
use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::log::LogTarget;

/// Where faulthandler writes: the error log's descriptor.
pub(super) enum DumpTarget {
    /// stderr (errorlog `-`, or the journal, which takes stderr too).
    Stderr,
    /// The error log file, opened for appending by the worker.
    File(OwnedFd),
}

impl DumpTarget {
    /// Open the dump target for the error log. Call before dropping
    /// privileges: the log file may only be writable by the master's user.
    ///
    /// # Errors
    /// The error log file cannot be opened for appending.
    pub(super) fn open(error_log: &LogTarget) -> std::io::Result<DumpTarget> {
        // Our own descriptor, not crate::log's: a USR1 reopen after log rotation
        // does not move it, so dumps keep going to the rotated file until the
        // worker is replaced.
        match error_log {
            LogTarget::Stdio | LogTarget::Journal => Ok(DumpTarget::Stderr),
            LogTarget::File(path) => {
                let file = OpenOptions::new().create(true).append(true).open(path)?;
                Ok(DumpTarget::File(file.into()))
            }
        }
    }

    fn fd(&self) -> RawFd {
        match self {
            DumpTarget::Stderr => libc::STDERR_FILENO,
            DumpTarget::File(f) => f.as_raw_fd(),
        }
    }
}

/// The SIGABRT set-up of this worker; keep it alive as long as the worker runs
/// (faulthandler writes to its descriptor).
pub(super) struct AbortSignal {
    flag: AbortFlag,
    _target: DumpTarget,
}

/// Shared view of "SIGABRT was handled": set by the Python-level handler.
#[derive(Clone, Debug, Default)]
pub(super) struct AbortFlag(Arc<AtomicBool>);

impl AbortFlag {
    /// The handler has run: the worker must exit 1.
    pub(super) fn is_raised(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }

    /// Run Python signal handlers whose signal arrived while the main thread was
    /// outside Python (in epoll); true when SIGABRT's was one of them.
    pub(super) fn check(&self, py: Python<'_>) -> bool {
        if let Err(e) = py.check_signals()
            && !self.is_raised()
        {
            // Some other handler the app installed raised: report it, go on.
            crate::log::error(&format!(
                "Exception in a Python signal handler:\n{}",
                crate::python::format_traceback(py, &e)
            ));
        }
        self.is_raised()
    }
}

/// CPython-level SIGABRT handler: mark the abort, unwind with SystemExit(1).
#[pyclass(module = "rgunicorn")]
struct AbortHandler {
    flag: AbortFlag,
}

#[pymethods]
impl AbortHandler {
    fn __call__(&self, _signum: &Bound<'_, PyAny>, _frame: &Bound<'_, PyAny>) -> PyResult<()> {
        self.flag.0.store(true, Ordering::Relaxed);
        Err(PySystemExit::new_err(1))
    }
}

impl AbortSignal {
    /// Install both SIGABRT handlers (see the module doc). Must run on the
    /// worker's main thread (the one that forked), which CPython treats as its
    /// main thread after `PyOS_AfterFork_Child`.
    ///
    /// # Errors
    /// The `signal` or `faulthandler` module refused (no main thread, no module).
    pub(super) fn install(py: Python<'_>, target: DumpTarget) -> PyResult<AbortSignal> {
        let flag = AbortFlag::default();
        let signal = py.import("signal")?;
        let sigabrt = signal.getattr("SIGABRT")?;
        let handler = Bound::new(py, AbortHandler { flag: flag.clone() })?;
        signal.call_method1("signal", (&sigabrt, handler))?;
        // Enabled second, so the handler it chains to after the dump is CPython's.
        let kwargs = PyDict::new(py);
        kwargs.set_item("file", target.fd())?;
        kwargs.set_item("all_threads", true)?;
        py.import("faulthandler")?
            .call_method("enable", (), Some(&kwargs))?;
        Ok(AbortSignal {
            flag,
            _target: target,
        })
    }

    /// The flag the event loop reads.
    pub(super) fn flag(&self) -> AbortFlag {
        self.flag.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stderr_and_journal_dump_to_fd_2() {
        assert_eq!(DumpTarget::open(&LogTarget::parse("-")).unwrap().fd(), 2);
        assert_eq!(
            DumpTarget::open(&LogTarget::parse("journald"))
                .unwrap()
                .fd(),
            2
        );
    }

    #[test]
    fn a_log_file_is_opened_for_appending() {
        let path = std::env::temp_dir().join(format!("rgunicorn-abort-{}", std::process::id()));
        std::fs::write(&path, "before\n").unwrap();
        let target = DumpTarget::open(&LogTarget::File(path.clone())).unwrap();
        // SAFETY: fd is open for the lifetime of `target`; the buffer is valid.
        let n = unsafe { libc::write(target.fd(), b"after\n".as_ptr().cast(), 6) };
        assert_eq!(n, 6);
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "before\nafter\n");
        let _ = std::fs::remove_file(path);
    }

    #[test]
    fn the_flag_is_shared_between_clones() {
        let flag = AbortFlag::default();
        let seen = flag.clone();
        assert!(!seen.is_raised());
        flag.0.store(true, Ordering::Relaxed);
        assert!(seen.is_raised());
    }
}
