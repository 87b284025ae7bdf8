//! Iterating the app's result onto the wire (PEP 3333 "Buffering and Streaming")
//! and `wsgi.file_wrapper`.
//!
//! Headers go out with the first non-empty body chunk, never before. A list or
//! tuple result has a known length, so it is sent with Content-Length rather than
//! chunked. A `FileWrapper` over a real file is sent with sendfile(2). The result's
//! `close()` is called on every path, including errors and vanished clients.

use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyList, PyTuple};

use super::exchange::{IoFailure, Shared, sendfile_all};

/// `wsgi.file_wrapper(filelike, blksize=8192)`.
#[pyclass(module = "rgunicorn")]
pub(crate) struct FileWrapper {
    filelike: Py<PyAny>,
    blksize: usize,
}

#[pymethods]
impl FileWrapper {
    #[new]
    #[pyo3(signature = (filelike, blksize=8192))]
    fn new(filelike: Py<PyAny>, blksize: usize) -> FileWrapper {
        FileWrapper {
            filelike,
            blksize: blksize.max(1),
        }
    }

    fn __iter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    fn __next__<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyAny>>> {
        let data = self
            .filelike
            .bind(py)
            .call_method1("read", (self.blksize,))?;
        Ok((data.len()? > 0).then_some(data))
    }

    fn close(&self, py: Python<'_>) -> PyResult<()> {
        let f = self.filelike.bind(py);
        if f.hasattr("close")? {
            f.call_method0("close")?;
        }
        Ok(())
    }
}

/// How iterating the result ended.
pub(crate) enum Iterated {
    /// All output produced.
    Complete,
    /// The app raised (while iterating, or a non-bytes item).
    AppError(PyErr),
    /// The client went away or stalled.
    Io(IoFailure),
}

/// Send the app's `result` through the exchange, then call `result.close()`.
pub(crate) fn send_result(
    py: Python<'_>,
    ex: &Shared,
    result: &Bound<'_, PyAny>,
    sendfile: bool,
) -> Iterated {
    let outcome = iterate(py, ex, result, sendfile);
    if let Ok(close) = result.getattr(pyo3::intern!(py, "close"))
        && let Err(e) = close.call0()
    {
        crate::log::error(&format!(
            "Error calling close() on the response:\n{}",
            crate::python::format_traceback(py, &e)
        ));
    }
    outcome
}

fn iterate(py: Python<'_>, ex: &Shared, result: &Bound<'_, PyAny>, sendfile: bool) -> Iterated {
    if sendfile
        && let Ok(fw) = result.cast::<FileWrapper>()
        && let Some(outcome) = try_sendfile(py, ex, &fw.borrow())
    {
        return outcome;
    }
    // A list or tuple of bytes has a known total length.
    if let Ok(list) = result.cast::<PyList>() {
        return send_sequence(py, ex, list.iter());
    }
    if let Ok(tuple) = result.cast::<PyTuple>() {
        return send_sequence(py, ex, tuple.iter());
    }
    let iter = match result.try_iter() {
        Ok(it) => it,
        Err(e) => return Iterated::AppError(e),
    };
    for item in iter {
        let item = match item {
            Ok(i) => i,
            Err(e) => return Iterated::AppError(e),
        };
        let bytes = match item.cast::<PyBytes>() {
            Ok(b) => b,
            Err(_) => return Iterated::AppError(not_bytes(&item)),
        };
        if let Err(e) = write_chunk(py, ex, bytes.as_bytes(), None) {
            return e;
        }
    }
    end(py, ex)
}

fn send_sequence<'py>(
    py: Python<'py>,
    ex: &Shared,
    items: impl Iterator<Item = Bound<'py, PyAny>>,
) -> Iterated {
    let mut chunks = Vec::new();
    let mut total = 0u64;
    for item in items {
        match item.cast_into::<PyBytes>() {
            Ok(b) => {
                total += b.as_bytes().len() as u64;
                chunks.push(b);
            }
            Err(e) => return Iterated::AppError(not_bytes(e.into_inner().as_any())),
        }
    }
    for b in &chunks {
        if let Err(e) = write_chunk(py, ex, b.as_bytes(), Some(total)) {
            return e;
        }
    }
    if !ex.borrow().headers_sent {
        let mut e = ex.borrow_mut();
        if e.pending.is_none() {
            return Iterated::AppError(no_start_response());
        }
        e.send_head(Some(total));
    }
    end(py, ex)
}

/// Write one body chunk, sending the head first if this is the first non-empty one.
fn write_chunk(
    py: Python<'_>,
    ex: &Shared,
    data: &[u8],
    total: Option<u64>,
) -> Result<(), Iterated> {
    if data.is_empty() {
        return Ok(());
    }
    let mut e = ex.borrow_mut();
    if !e.headers_sent {
        if e.pending.is_none() {
            return Err(Iterated::AppError(no_start_response()));
        }
        e.send_head(total);
    }
    e.write_body(py, data).map_err(Iterated::Io)
}

/// The body is over: an empty body with no head yet gets Content-Length: 0.
fn end(_py: Python<'_>, ex: &Shared) -> Iterated {
    let mut e = ex.borrow_mut();
    if !e.headers_sent {
        if e.pending.is_none() {
            return Iterated::AppError(no_start_response());
        }
        e.send_head(Some(0));
    }
    e.finish_body();
    Iterated::Complete
}

/// sendfile(2) path for a FileWrapper over a regular file. None = not applicable,
/// fall back to iterating.
fn try_sendfile(py: Python<'_>, ex: &Shared, fw: &FileWrapper) -> Option<Iterated> {
    let f = fw.filelike.bind(py);
    let fd: i32 = f.call_method0("fileno").ok()?.extract().ok()?;
    let offset: i64 = f.call_method0("tell").ok()?.extract().ok()?;
    // SAFETY: fstat writes into the zeroed stat struct we own.
    let size = unsafe {
        let mut st: libc::stat = std::mem::zeroed();
        if libc::fstat(fd, &mut st) != 0 || (st.st_mode & libc::S_IFMT) != libc::S_IFREG {
            return None;
        }
        st.st_size
    };
    let available = (size - offset).max(0) as u64;
    let mut e = ex.borrow_mut();
    if e.pending.is_none() && !e.headers_sent {
        return Some(Iterated::AppError(no_start_response()));
    }
    if !e.headers_sent {
        e.send_head(Some(available));
    }
    if e.framing != crate::http::response::Framing::Length(available) || e.is_head {
        // Chunked, HEAD, or a Content-Length that differs from the file: iterate.
        if e.is_head {
            e.finish_body();
            return Some(Iterated::Complete);
        }
        return None;
    }
    if let Err(err) = e.flush(py) {
        return Some(Iterated::Io(err));
    }
    let (sock, timeout) = (e.fd, e.io_timeout);
    match sendfile_all(py, sock, fd, offset, available, timeout) {
        Ok(sent) => {
            e.body_bytes += sent;
            e.remaining -= sent.min(e.remaining);
            e.finish_body();
            Some(Iterated::Complete)
        }
        Err(err) => {
            e.broken = true;
            Some(Iterated::Io(err))
        }
    }
}

fn not_bytes(item: &Bound<'_, PyAny>) -> PyErr {
    let type_name = item
        .get_type()
        .name()
        .map(|n| n.to_string())
        .unwrap_or_else(|_| "?".into());
    pyo3::exceptions::PyTypeError::new_err(format!(
        "response body items must be bytes, got {type_name}"
    ))
}

fn no_start_response() -> PyErr {
    pyo3::exceptions::PyAssertionError::new_err(
        "application returned without calling start_response",
    )
}
