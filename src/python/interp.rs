//! Interpreter start-up through `PyConfig` (no pyo3 auto-initialize).
//!
//! We always set `PyConfig.executable`: to the interpreter rgunicorn was built
//! against, or to `<venv>/bin/python` so CPython's own path calculation finds the
//! venv's `pyvenv.cfg` and site-packages, exactly as running that venv's python
//! would. We never set `home`. Python installs no signal handlers: the Rust
//! handlers are already in place and own every signal.

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use pyo3::ffi;
use pyo3::prelude::*;

/// The Python version rgunicorn links, `MAJOR.MINOR`.
pub const PYTHON_VERSION: &str = env!("RGUNICORN_PYTHON_VERSION");
/// The interpreter whose libpython rgunicorn links.
pub const PYTHON_EXECUTABLE: &str = env!("RGUNICORN_PYTHON");

/// Why the interpreter could not start.
#[derive(Debug, thiserror::Error)]
pub enum InterpError {
    /// `--virtualenv` does not point at a virtualenv.
    #[error("{0} is not a virtualenv (no bin/python or pyvenv.cfg)")]
    NotAVirtualenv(PathBuf),
    /// The venv was made by another Python version.
    #[error(
        "virtualenv {path} was made by Python {venv_version}, but rgunicorn embeds Python {PYTHON_VERSION}; recreate it with python{PYTHON_VERSION} -m venv"
    )]
    VersionMismatch {
        /// The venv directory.
        path: PathBuf,
        /// The version its pyvenv.cfg names.
        venv_version: String,
    },
    /// CPython refused the configuration.
    #[error("python initialization failed: {0}")]
    Init(String),
    /// sys.path setup raised.
    #[error("python setup failed: {0}")]
    Setup(String),
}

/// What the interpreter needs from the configuration.
pub struct Setup<'a> {
    /// Virtualenv to run as, if any.
    pub virtualenv: Option<&'a Path>,
    /// sys.argv for the application.
    pub argv: Vec<String>,
}

/// Check a venv and return its `bin/python`.
///
/// # Errors
/// Not a venv, or made by a different Python version.
pub fn venv_executable(venv: &Path) -> Result<PathBuf, InterpError> {
    let cfg = std::fs::read_to_string(venv.join("pyvenv.cfg"))
        .map_err(|_| InterpError::NotAVirtualenv(venv.to_owned()))?;
    let exe = venv.join("bin").join("python");
    if !exe.exists() {
        return Err(InterpError::NotAVirtualenv(venv.to_owned()));
    }
    let version = cfg.lines().find_map(|line| {
        let (k, v) = line.split_once('=')?;
        matches!(k.trim(), "version" | "version_info").then(|| v.trim().to_owned())
    });
    if let Some(v) = version {
        let major_minor: String = v.split('.').take(2).collect::<Vec<_>>().join(".");
        if major_minor != PYTHON_VERSION {
            return Err(InterpError::VersionMismatch {
                path: venv.to_owned(),
                venv_version: v,
            });
        }
    }
    Ok(exe)
}

/// Start the interpreter, set up sys.path, then release the GIL so any thread
/// (and [`Python::attach`]) can take it.
///
/// # Errors
/// [`InterpError`] with CPython's message.
pub fn start(setup: &Setup<'_>) -> Result<(), InterpError> {
    let executable = match setup.virtualenv {
        Some(venv) => venv_executable(venv)?,
        None => PathBuf::from(PYTHON_EXECUTABLE),
    };
    let exe = CString::new(executable.as_os_str().as_bytes())
        .map_err(|_| InterpError::Init("executable path contains NUL".into()))?;
    let argv: Vec<CString> = setup
        .argv
        .iter()
        .filter_map(|a| CString::new(a.as_bytes()).ok())
        .collect();
    let mut argv_ptrs: Vec<*const libc::c_char> = argv.iter().map(|a| a.as_ptr()).collect();

    // SAFETY: we are the only thread touching CPython; `config` is initialised by
    // PyConfig_InitPythonConfig before any field is read, and cleared on every path.
    unsafe {
        let mut config = std::mem::MaybeUninit::<ffi::PyConfig>::zeroed();
        ffi::PyConfig_InitPythonConfig(config.as_mut_ptr());
        let mut config = config.assume_init();
        config.install_signal_handlers = 0;
        // Our argv is rgunicorn's, not python's: don't let CPython parse it.
        config.parse_argv = 0;
        let status =
            ffi::PyConfig_SetBytesString(&mut config, &mut config.executable, exe.as_ptr());
        check(status, &mut config)?;
        let status = ffi::PyConfig_SetBytesArgv(
            &mut config,
            argv_ptrs.len() as ffi::Py_ssize_t,
            argv_ptrs.as_mut_ptr().cast(),
        );
        check(status, &mut config)?;
        let status = ffi::Py_InitializeFromConfig(&config);
        check(status, &mut config)?;
        ffi::PyConfig_Clear(&mut config);
    }

    // SAFETY: Py_InitializeFromConfig succeeded, so this thread holds the GIL; we
    // release it for good. Later callers take it with Python::attach
    // (PyGILState_Ensure), which works from this thread too.
    unsafe {
        ffi::PyEval_SaveThread();
    }
    Ok(())
}

/// Put `dirs` first on sys.path, in order (skipping ones already there).
///
/// # Errors
/// sys.path is not a list.
pub fn prepend_sys_path(py: Python<'_>, dirs: &[PathBuf]) -> PyResult<()> {
    let path = py.import("sys")?.getattr("path")?;
    for dir in dirs.iter().rev() {
        let dir = dir.to_string_lossy();
        if !path.contains(dir.as_ref())? {
            path.call_method1("insert", (0, dir.as_ref()))?;
        }
    }
    Ok(())
}

/// Set `raw_env` pairs in `os.environ` (which also calls putenv), so the app and
/// the workers see them.
///
/// # Errors
/// os.environ refused a value.
pub fn set_environ(py: Python<'_>, pairs: &[(String, String)]) -> PyResult<()> {
    let environ = py.import("os")?.getattr("environ")?;
    for (k, v) in pairs {
        environ.set_item(k, v)?;
    }
    Ok(())
}

/// Turn a failed PyStatus into an error, clearing the config.
///
/// # Safety
/// `config` must be an initialised PyConfig.
unsafe fn check(status: ffi::PyStatus, config: &mut ffi::PyConfig) -> Result<(), InterpError> {
    // SAFETY: status is a value returned by CPython; config is initialised (caller).
    unsafe {
        if ffi::PyStatus_Exception(status) == 0 {
            return Ok(());
        }
        let msg = if status.err_msg.is_null() {
            "unknown error".to_owned()
        } else {
            std::ffi::CStr::from_ptr(status.err_msg)
                .to_string_lossy()
                .into_owned()
        };
        ffi::PyConfig_Clear(config);
        Err(InterpError::Init(msg))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn venv_dir(name: &str, cfg: Option<&str>, with_python: bool) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("rgunicorn-venv-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("bin")).unwrap();
        if let Some(cfg) = cfg {
            std::fs::write(dir.join("pyvenv.cfg"), cfg).unwrap();
        }
        if with_python {
            std::fs::write(dir.join("bin/python"), "").unwrap();
        }
        dir
    }

    #[test]
    fn venv_of_another_python_version_is_refused() {
        let dir = venv_dir("old", Some("home = /usr/bin\nversion = 2.7.18\n"), true);
        assert!(matches!(
            venv_executable(&dir),
            Err(InterpError::VersionMismatch { .. })
        ));
    }

    #[test]
    fn matching_venv_gives_its_python() {
        let cfg = format!("home = /usr/bin\nversion = {PYTHON_VERSION}.3\n");
        let dir = venv_dir("ok", Some(&cfg), true);
        assert_eq!(venv_executable(&dir).unwrap(), dir.join("bin/python"));
    }

    #[test]
    fn directory_without_pyvenv_cfg_is_not_a_venv() {
        let dir = venv_dir("none", None, true);
        assert!(matches!(
            venv_executable(&dir),
            Err(InterpError::NotAVirtualenv(_))
        ));
    }
}
