//! Python's `logging` bridged to rgunicorn's error log: the loggers
//! `gunicorn.error` and `gunicorn.access` exist in the embedded interpreter,
//! as apps expect under Gunicorn, and their records reach the error log (the
//! journal gets the logger's name as `PYTHON_LOGGER`). Flask's documented
//! recipe `app.logger.handlers = logging.getLogger("gunicorn.error").handlers`
//! works unchanged.
//!
//! The handler is a small Python class calling one Rust function, installed
//! in the master before the app is imported, so workers inherit it at fork.

use pyo3::prelude::*;
use pyo3::types::PyModule;

use crate::log::Level;

/// The Rust side of the handler: one formatted record.
#[pyfunction]
fn emit(levelno: i32, name: &str, message: &str) {
    let level = match levelno {
        n if n >= 50 => Level::Critical,
        n if n >= 40 => Level::Error,
        n if n >= 30 => Level::Warning,
        n if n >= 20 => Level::Info,
        _ => Level::Debug,
    };
    crate::log::log_from(level, message, Some(name));
}

const INSTALL: &str = r#"
import logging
from rgunicorn import _emit

class RgunicornHandler(logging.Handler):
    """Send records to rgunicorn's error log (stderr, a file, or the journal)."""
    def emit(self, record):
        try:
            _emit(record.levelno, record.name, self.format(record))
        except Exception:
            self.handleError(record)

for _name in ("gunicorn.error", "gunicorn.access"):
    _logger = logging.getLogger(_name)
    if not any(isinstance(h, RgunicornHandler) for h in _logger.handlers):
        _handler = RgunicornHandler()
        _handler.setFormatter(logging.Formatter("%(message)s"))
        _logger.addHandler(_handler)
    _logger.propagate = False
logging.getLogger("gunicorn.error").setLevel(LEVEL)
logging.getLogger("gunicorn.access").setLevel(logging.INFO)
"#;

/// Create the `rgunicorn` module (if need be) and install the handlers, with
/// `gunicorn.error` at `level`.
///
/// # Errors
/// Python failed to run the installer (out of memory, a broken `logging`).
pub fn install(py: Python<'_>, level: Level) -> PyResult<()> {
    let sys = py.import("sys")?;
    let modules = sys.getattr("modules")?;
    let module = match modules.get_item("rgunicorn") {
        Ok(m) => m.cast_into::<PyModule>()?,
        Err(_) => {
            let m = PyModule::new(py, "rgunicorn")?;
            modules.set_item("rgunicorn", &m)?;
            m
        }
    };
    module.add("_emit", wrap_pyfunction!(emit, &module)?)?;
    let globals = pyo3::types::PyDict::new(py);
    let level = match level {
        Level::Debug => 10,
        Level::Info => 20,
        Level::Warning => 30,
        Level::Error => 40,
        Level::Critical => 50,
    };
    globals.set_item("LEVEL", level)?;
    let code = std::ffi::CString::new(INSTALL)
        .map_err(|e| pyo3::exceptions::PyValueError::new_err(e.to_string()))?;
    py.run(&code, Some(&globals), None)
}
