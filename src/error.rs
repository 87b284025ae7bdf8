//! Start-up errors and the exit-code table.
//!
//! Exit statuses are public API (documented under EXIT STATUS in rgunicorn(1)):
//! 0 ok, 1 runtime error, 2 usage error, 3 worker boot failure, 4 application
//! load failure. 3 and 4 are Gunicorn's WORKER_BOOT_ERROR and APP_LOAD_ERROR.

use crate::config::SettingError;
use crate::listen::BindError;
use crate::python::interp::InterpError;
use crate::systemd::activation::ActivationError;

/// Normal exit.
pub const EXIT_OK: i32 = 0;
/// A runtime failure (cannot bind, cannot start Python, ...).
pub const EXIT_RUNTIME: i32 = 1;
/// Bad command line or configuration.
pub const EXIT_USAGE: i32 = 2;

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
    Conf(#[from] crate::python::conf::ConfError),
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
    /// on_starting raised.
    #[error(transparent)]
    Hook(#[from] crate::python::hooks::HookFailed),
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
        match self {
            StartupError::Setting(_) => EXIT_USAGE,
            StartupError::Conf(crate::python::conf::ConfError::Setting(_)) => EXIT_USAGE,
            StartupError::Conf(crate::python::conf::ConfError::Failed { .. }) => EXIT_RUNTIME,
            StartupError::Bind(_)
            | StartupError::Activation(_)
            | StartupError::Python(_)
            | StartupError::Path { .. }
            | StartupError::Hook(_)
            | StartupError::Os { .. } => EXIT_RUNTIME,
        }
    }
}
