//! Import the WSGI application named by `module[:expression]`.
//!
//! Same rules as Gunicorn's `import_app`: the expression defaults to
//! `application`; it is an attribute path or a call of one with literal arguments
//! only (checked with `ast`, evaluated with `ast.literal_eval`, never `eval`), and
//! the result must be callable.

use pyo3::prelude::*;

/// The application could not be loaded; exit status 4.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct AppLoadError {
    /// One-line reason, e.g. `Failed to find attribute 'app' in 'hello'.`
    pub message: String,
    /// The Python traceback, when an exception caused it.
    pub traceback: Option<String>,
    /// Source files the failure points at (traceback frames, a SyntaxError's
    /// file): what `--reload` must watch to try again.
    pub files: Vec<std::path::PathBuf>,
}

// Runs inside the embedded interpreter. Kept in Python because it is Python's
// own grammar (`ast`) that defines what an app expression may be.
const LOADER: &std::ffi::CStr = cr#"
import ast, importlib, sys

class AppLoadError(Exception):
    pass

def _literal(node):
    try:
        return ast.literal_eval(node)
    except ValueError:
        raise AppLoadError(
            "Failed to parse arguments as literal values: %r" % ast.unparse(node))

def load(uri):
    module, _, obj = uri.partition(":")
    obj = obj or "application"
    try:
        expression = ast.parse(obj, mode="eval").body
    except SyntaxError:
        raise AppLoadError("Failed to parse %r as an attribute name or function call." % obj)
    if isinstance(expression, ast.Name):
        name, args, kwargs = expression.id, None, None
    elif isinstance(expression, ast.Call):
        if not isinstance(expression.func, ast.Name):
            raise AppLoadError("Function reference must be a simple name: %r" % obj)
        name = expression.func.id
        args = [_literal(a) for a in expression.args]
        kwargs = {k.arg: _literal(k.value) for k in expression.keywords}
    else:
        raise AppLoadError("Failed to parse %r as an attribute name or function call." % obj)
    mod = importlib.import_module(module)
    try:
        app = getattr(mod, name)
    except AttributeError:
        raise AppLoadError("Failed to find attribute %r in %r." % (name, module))
    if args is not None:
        try:
            app = app(*args, **kwargs)
        except TypeError as e:
            raise AppLoadError("Error calling the app factory %r: %s" % (name, e)) from e
    if app is None:
        raise AppLoadError("Failed to find application object: %r" % obj)
    if not callable(app):
        raise AppLoadError("Application object must be callable.")
    return app

def failure_files(exc):
    import traceback
    files = [frame.filename for frame in traceback.extract_tb(exc.__traceback__)]
    if isinstance(exc, SyntaxError) and exc.filename:
        files.append(exc.filename)
    return [f for f in files if not f.startswith("<")]

def fail_app(text):
    body = text.encode("utf-8", "replace")
    def app(environ, start_response):
        start_response("500 Internal Server Error", [
            ("Content-Type", "text/plain; charset=utf-8"),
            ("Content-Length", str(len(body))),
        ])
        return [body]
    return app
"#;

/// A stand-in app answering 500 with `text` (the load failure), for `--reload`:
/// the developer sees the error in the browser and the next save reloads.
///
/// # Errors
/// The loader module is unavailable.
pub fn fail_app(py: Python<'_>, text: &str) -> PyResult<Py<PyAny>> {
    Ok(prepare_loader(py)?
        .getattr("fail_app")?
        .call1((text,))?
        .unbind())
}

/// Compile the loader (and import `ast` and `importlib`) once. Called in the
/// master before forking, so workers that drop privileges (`--user`) need not
/// read the standard library again to load the app.
///
/// # Errors
/// The loader does not compile (a broken standard library).
pub fn prepare_loader(py: Python<'_>) -> PyResult<Bound<'_, PyModule>> {
    if let Ok(m) = py
        .import("sys")?
        .getattr("modules")?
        .get_item("_rgunicorn_loader")
    {
        return Ok(m.cast_into::<PyModule>()?);
    }
    let m = PyModule::from_code(py, LOADER, c"<rgunicorn-loader>", c"_rgunicorn_loader")?;
    py.import("sys")?
        .getattr("modules")?
        .set_item("_rgunicorn_loader", &m)?;
    Ok(m)
}

/// Import `uri` and return the application callable.
///
/// # Errors
/// [`AppLoadError`]: our own loader's message, or an import-time exception with
/// its traceback.
pub fn load(py: Python<'_>, uri: &str) -> Result<Py<PyAny>, AppLoadError> {
    let loader = prepare_loader(py).map_err(|e| AppLoadError {
        message: "internal loader failed to compile".into(),
        traceback: Some(super::format_traceback(py, &e)),
        files: Vec::new(),
    })?;
    match loader.getattr("load").and_then(|f| f.call1((uri,))) {
        Ok(app) => Ok(app.unbind()),
        Err(err) => {
            let ours = loader
                .getattr("AppLoadError")
                .is_ok_and(|cls| err.get_type(py).is(&cls));
            let files = loader
                .getattr("failure_files")
                .and_then(|f| f.call1((err.value(py),)))
                .and_then(|l| l.extract::<Vec<std::path::PathBuf>>())
                .unwrap_or_default();
            if ours
                && err
                    .value(py)
                    .getattr("__cause__")
                    .is_ok_and(|c| c.is_none())
            {
                Err(AppLoadError {
                    message: err.value(py).to_string(),
                    traceback: None,
                    files,
                })
            } else {
                Err(AppLoadError {
                    message: format!("Exception in worker process loading {uri:?}"),
                    traceback: Some(super::format_traceback(py, &err)),
                    files,
                })
            }
        }
    }
}
