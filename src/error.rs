//! Start-up errors and the exit-code table.
//!
//! Exit statuses are public API (documented under EXIT STATUS in rgunicorn(1)):
//! 0 ok, 1 runtime error, 2 usage error (including TLS files that cannot be
//! read or used), 3 worker boot failure, 4 application load failure. 3 and 4 are Gunicorn's WORKER_BOOT_ERROR and APP_LOAD_ERROR.
//! [`ExitStatus`] is the one table: the master's and the workers' exits, and the
//! arbiter's reading of a worker's status, all go through it.

use crate::config::SettingError;
use crate::listen::BindError;
use crate::python::conf::ConfError;
use crate::python::interp::InterpError;
use crate::systemd::activation::ActivationError;

/// How an rgunicorn process ends, master or worker; the numbers are public API.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExitStatus {
    /// 0: stopped normally.
    Ok = 0,
    /// 1: a runtime failure (cannot bind, cannot start Python, a server hook
    /// raised); a worker also exits 1 after the master's timeout SIGABRT.
    Runtime = 1,
    /// 2: bad command line or configuration.
    Usage = 2,
    /// 3: a worker could not boot (Gunicorn's WORKER_BOOT_ERROR).
    WorkerBoot = 3,
    /// 4: the application could not be loaded (Gunicorn's APP_LOAD_ERROR).
    AppLoad = 4,
}

impl ExitStatus {
    /// The number the process exits with.
    pub const fn code(self) -> i32 {
        self as i32
    }

    /// Read a child's exit code back; `None` for numbers outside the table.
    pub fn from_code(code: i32) -> Option<ExitStatus> {
        Some(match code {
            0 => ExitStatus::Ok,
            1 => ExitStatus::Runtime,
            2 => ExitStatus::Usage,
            3 => ExitStatus::WorkerBoot,
            4 => ExitStatus::AppLoad,
            _ => return None,
        })
    }
}

impl From<ExitStatus> for std::process::ExitCode {
    fn from(status: ExitStatus) -> std::process::ExitCode {
        std::process::ExitCode::from(status as u8)
    }
}

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    /// A bad flag or value.
    #[error(transparent)]
    Setting(#[from] SettingError),
    /// A socket could not be bound or adopted.
    #[error(transparent)]
    Bind(#[from] BindError),
    /// LISTEN_FDS was malformed.
    #[error(transparent)]
    Activation(#[from] ActivationError),
    /// The interpreter did not start.
    #[error(transparent)]
    Python(#[from] InterpError),
    /// The Python config file failed.
    #[error(transparent)]
    Conf(#[from] ConfError),
    /// A file or directory named by a setting cannot be used.
    #[error("{what} {}: {source}", path.display())]
    Path {
        /// What we tried, e.g. "cannot change directory to".
        what: &'static str,
        /// The path from the setting.
        path: std::path::PathBuf,
        /// The system error.
        source: std::io::Error,
    },
    /// The TLS certificate, key or CA files cannot be used.
    #[error(transparent)]
    Tls(#[from] crate::tls::TlsError),
    /// on_starting raised.
    #[error(transparent)]
    Hook(#[from] crate::python::hooks::HookFailed),
    /// The sockets and log files could not be handed to `user`/`group`.
    #[error("cannot hand files to the worker user: {0}")]
    HandOver(#[source] crate::privileges::PrivilegeError),
    /// Any other system call failure during start-up.
    #[error("{context}: {source}")]
    Os {
        /// What we were doing.
        context: &'static str,
        /// The system error.
        source: std::io::Error,
    },
}

impl StartupError {
    /// The process exit status for this error.
    pub fn exit_code(&self) -> i32 {
        let status = match self {
            StartupError::Setting(_) | StartupError::Tls(_) => ExitStatus::Usage,
            StartupError::Conf(ConfError::Setting(_)) => ExitStatus::Usage,
            StartupError::Conf(ConfError::Failed { .. }) => ExitStatus::Runtime,
            StartupError::Bind(_)
            | StartupError::Activation(_)
            | StartupError::Python(_)
            | StartupError::Path { .. }
            | StartupError::Hook(_)
            | StartupError::HandOver(_)
            | StartupError::Os { .. } => ExitStatus::Runtime,
        };
        status.code()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_exit_status_reads_back_from_its_code() {
        for status in [
            ExitStatus::Ok,
            ExitStatus::Runtime,
            ExitStatus::Usage,
            ExitStatus::WorkerBoot,
            ExitStatus::AppLoad,
        ] {
            assert_eq!(ExitStatus::from_code(status.code()), Some(status));
        }
        assert_eq!(ExitStatus::from_code(127), None);
    }

    #[test]
    fn exit_codes_match_gunicorn() {
        assert_eq!(ExitStatus::WorkerBoot.code(), 3);
        assert_eq!(ExitStatus::AppLoad.code(), 4);
    }
}
