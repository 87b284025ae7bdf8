//! Iterating the app's result onto the wire (PEP 3333 "Buffering and Streaming")
//! and `wsgi.file_wrapper`.
//!
//! Headers go out with the first non-empty body chunk, never before. A list or
//! tuple result has a known length, so it is sent with Content-Length rather than
//! chunked. A `FileWrapper` over a real file is sent with sendfile(2). The result's
//! `close()` is called on every path, including errors and vanished clients.

use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyIterator, PyList, PyTuple};

use std::os::fd::RawFd;

use super::exchange::{IoFailure, Shared, lock};

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

/// Where a body that had to wait for the client continues.
pub(crate) enum Rest {
    /// Iterating the app's result.
    Iter(Py<PyIterator>),
    /// sendfile(2) of a `wsgi.file_wrapper` file.
    File {
        /// The file's descriptor (owned by the app's file object, kept alive
        /// with the result).
        fd: RawFd,
        /// Next offset to send from.
        offset: i64,
        /// Bytes still to send.
        remaining: u64,
    },
}

/// How sending the result ended, or paused.
pub(crate) enum Iterated {
    /// All output produced.
    Complete,
    /// The app raised (while iterating, or a non-bytes item).
    AppError(PyErr),
    /// The client went away or stalled.
    Io(IoFailure),
    /// The client reads slower than the app writes: continue with this body
    /// once the buffered output is written. The Python thread is free meanwhile.
    Parked(Rest),
}

/// Start sending the app's `result`. The caller calls `close()` on the result
/// once this (or a later [`resume`]) completes.
pub(crate) fn start(
    py: Python<'_>,
    ex: &Shared,
    result: &Bound<'_, PyAny>,
    sendfile: bool,
) -> Iterated {
    if sendfile
        && let Ok(fw) = result.cast::<FileWrapper>()
        && let Some(outcome) = start_sendfile(py, ex, &fw.borrow())
    {
        return outcome;
    }
    // A list or tuple of bytes has a known total length: send it with
    // Content-Length instead of chunked.
    let items = if let Ok(list) = result.cast::<PyList>() {
        Some(list.iter().collect::<Vec<_>>())
    } else {
        result.cast::<PyTuple>().ok().map(|t| t.iter().collect())
    };
    // A finished list is joined into one write; any other iterable streams
    // (PEP 3333 "Buffering and Streaming": no block may wait for the next).
    let streaming = items.is_none();
    if let Some(items) = items {
        let mut total = 0u64;
        for item in &items {
            match item.cast::<PyBytes>() {
                Ok(b) => total += b.as_bytes().len() as u64,
                Err(_) => return Iterated::AppError(not_bytes(item)),
            }
        }
        if total > 0 && lock(ex).ensure_head(Some(total)).is_err() {
            return Iterated::AppError(no_start_response());
        }
    }
    match result.try_iter() {
        Ok(iter) => pump(ex, iter, streaming),
        Err(e) => Iterated::AppError(e),
    }
}

/// Continue a parked body; its buffered output has been written.
pub(crate) fn resume(py: Python<'_>, ex: &Shared, body: Rest) -> Iterated {
    match body {
        Rest::Iter(iter) => pump(ex, iter.into_bound(py), true),
        Rest::File {
            fd,
            offset,
            remaining,
        } => pump_file(ex, fd, offset, remaining),
    }
}

/// Call the result's `close()`, logging what it raises (PEP 3333: always).
pub(crate) fn close_result(py: Python<'_>, result: &Bound<'_, PyAny>) {
    // A plain list or tuple (most responses) has no close(): skip the failed
    // attribute lookup, which builds an AttributeError message each time.
    if result.is_exact_instance_of::<pyo3::types::PyList>()
        || result.is_exact_instance_of::<pyo3::types::PyTuple>()
    {
        return;
    }
    if let Ok(close) = result.getattr(pyo3::intern!(py, "close"))
        && let Err(e) = close.call0()
    {
        crate::log::error(&format!(
            "Error calling close() on the response:\n{}",
            crate::python::format_traceback(py, &e)
        ));
    }
}

/// Pull chunks from the app while the output buffer has room.
///
/// With `streaming`, every block is handed to the kernel before the app is asked
/// for the next one: a generator that sleeps between yields (server-sent events,
/// `StreamingHttpResponse`) must not have its last block wait for the next. When
/// the socket takes only part of it, the response parks, and the event loop
/// finishes the write before the app runs again.
fn pump(ex: &Shared, mut iter: Bound<'_, PyIterator>, streaming: bool) -> Iterated {
    loop {
        if streaming && !lock(ex).wbuf.is_empty() {
            let mut e = lock(ex);
            match e.try_flush() {
                Err(err) => return Iterated::Io(err),
                Ok(false) => return Iterated::Parked(Rest::Iter(iter.unbind())),
                Ok(true) => {}
            }
        } else if lock(ex).over_high_water() {
            let mut e = lock(ex);
            if let Err(err) = e.try_flush() {
                return Iterated::Io(err);
            }
            if e.over_high_water() {
                return Iterated::Parked(Rest::Iter(iter.unbind()));
            }
        }
        let item = match iter.next() {
            None => break,
            Some(Ok(i)) => i,
            Some(Err(e)) => return Iterated::AppError(e),
        };
        let bytes = match item.cast::<PyBytes>() {
            Ok(b) => b,
            Err(_) => return Iterated::AppError(not_bytes(&item)),
        };
        if let Err(e) = write_chunk(ex, bytes.as_bytes()) {
            return e;
        }
    }
    end(ex)
}

/// Write one body chunk, sending the head first if this is the first non-empty one.
fn write_chunk(ex: &Shared, data: &[u8]) -> Result<(), Iterated> {
    if data.is_empty() {
        return Ok(());
    }
    let mut e = lock(ex);
    if e.ensure_head(None).is_err() {
        return Err(Iterated::AppError(no_start_response()));
    }
    e.write_body(data).map_err(Iterated::Io)
}

/// The body is over: an empty body with no head yet gets Content-Length: 0.
fn end(ex: &Shared) -> Iterated {
    let mut e = lock(ex);
    if e.ensure_head(Some(0)).is_err() {
        return Iterated::AppError(no_start_response());
    }
    e.finish_body();
    Iterated::Complete
}

/// sendfile(2) path for a FileWrapper over a regular file. None = not applicable,
/// fall back to iterating.
fn start_sendfile(py: Python<'_>, ex: &Shared, fw: &FileWrapper) -> Option<Iterated> {
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
    {
        let mut e = lock(ex);
        if e.wire.is_tls() {
            // sendfile(2) would bypass the TLS session: iterate the file.
            return None;
        }
        if e.ensure_head(Some(available)).is_err() {
            return Some(Iterated::AppError(no_start_response()));
        }
        if e.head_ctx.is_head {
            e.finish_body();
            return Some(Iterated::Complete);
        }
        if e.response.framing() != Some(crate::http::response::Framing::Length(available)) {
            // Chunked, or a Content-Length that differs from the file: iterate.
            return None;
        }
    }
    Some(pump_file(ex, fd, offset, available))
}

/// Send the head, then the file, as far as the socket takes it now.
fn pump_file(ex: &Shared, fd: RawFd, mut offset: i64, mut remaining: u64) -> Iterated {
    let mut e = lock(ex);
    let parked = |offset, remaining| {
        Iterated::Parked(Rest::File {
            fd,
            offset,
            remaining,
        })
    };
    match e.try_flush() {
        Err(err) => return Iterated::Io(err),
        Ok(false) => return parked(offset, remaining),
        Ok(true) => {}
    }
    while remaining > 0 {
        match crate::sockio::sendfile_some(e.wire.fd(), fd, &mut offset, remaining) {
            Ok(Some(0)) => break, // the file is shorter than it was: finish_body closes
            Ok(Some(n)) => {
                remaining -= n;
                e.response.sent_directly(n);
            }
            Ok(None) => return parked(offset, remaining),
            Err(err) => {
                e.response.break_off();
                return Iterated::Io(err.into());
            }
        }
    }
    e.finish_body();
    Iterated::Complete
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
