//! The embedded CPython: interpreter lifetime, application loading.
//!
//! This is the only module that initialises the interpreter or imports the app.
//! `PyErr` is converted here into our own error types carrying the formatted
//! traceback; it never escapes into `arbiter` or `http`.

pub mod app;
pub mod conf;
pub mod hooks;
pub mod interp;
pub mod logconfig;
pub mod logging;

use pyo3::prelude::*;

/// Format a Python exception as the traceback Python itself would print.
pub fn format_traceback(py: Python<'_>, err: &PyErr) -> String {
    let formatted = (|| -> PyResult<String> {
        let tb = py.import("traceback")?;
        let lines = tb.call_method1(
            "format_exception",
            (err.get_type(py), err.value(py), err.traceback(py)),
        )?;
        let joined: String = ""
            .into_pyobject(py)?
            .call_method1("join", (lines,))?
            .extract()?;
        Ok(joined)
    })();
    formatted.unwrap_or_else(|_| err.to_string())
}
