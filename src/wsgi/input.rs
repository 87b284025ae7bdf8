//! `wsgi.input` (PEP 3333 "Input Stream") and `wsgi.errors`.
//!
//! The body is streamed from the connection as the app reads it: only what the
//! app asks for is held in memory, so a 1 GiB upload read in 64 KiB pieces costs
//! 64 KiB. `read()` without a size reads the whole body, as the app asked.

use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyList};

use super::exchange::Shared;

/// Read size used when the app asks for "everything" or iterates by lines.
const CHUNK: usize = 64 * 1024;

/// The `wsgi.input` object.
#[pyclass(module = "rgunicorn")]
pub(crate) struct Input {
    /// The exchange this input reads from.
    pub exchange: Shared,
    /// Bytes read past the end of the last line returned by readline().
    line_buf: Vec<u8>,
}

impl Input {
    /// Wrap the request's exchange.
    pub fn new(exchange: Shared) -> Input {
        Input {
            exchange,
            line_buf: Vec::new(),
        }
    }

    /// Append up to `max` body bytes to `out`, first from the line buffer.
    fn pull(&mut self, py: Python<'_>, out: &mut Vec<u8>, max: usize) -> PyResult<usize> {
        if !self.line_buf.is_empty() {
            let take = self.line_buf.len().min(max);
            out.extend(self.line_buf.drain(..take));
            return Ok(take);
        }
        let mut ex = super::exchange::acquire(&self.exchange)?;
        Ok(ex.read_body(py, out, max)?)
    }

    /// Body bytes still to come (the line buffer included), when known.
    fn known_remaining(&self) -> Option<u64> {
        let ex = super::exchange::lock(&self.exchange);
        if ex.finished {
            return Some(0);
        }
        ex.body.remaining().map(|n| n + self.line_buf.len() as u64)
    }

    /// Exactly `n` body bytes, read into a new bytes object in place.
    fn read_exact_into_bytes<'py>(
        &mut self,
        py: Python<'py>,
        n: usize,
    ) -> PyResult<Bound<'py, PyBytes>> {
        let mut chunk = Vec::with_capacity(CHUNK);
        PyBytes::new_with(py, n, |buf| {
            let mut filled = 0;
            while filled < n {
                chunk.clear();
                let got = self.pull(py, &mut chunk, (n - filled).min(CHUNK))?;
                if got == 0 {
                    // The framing promised more; the body ended (a bug, or the
                    // client): report what arrived as a short read.
                    return Err(super::exchange::ClientDisconnected::new_err(format!(
                        "request body ended after {filled} of {n} bytes"
                    )));
                }
                buf[filled..filled + got].copy_from_slice(&chunk[..got]);
                filled += got;
            }
            Ok(())
        })
    }

    fn read_line(&mut self, py: Python<'_>, limit: Option<usize>) -> PyResult<Vec<u8>> {
        let mut line = Vec::new();
        loop {
            let max = limit.map_or(usize::MAX, |l| l - line.len());
            if max == 0 {
                break;
            }
            let mut chunk = Vec::new();
            if self.pull(py, &mut chunk, CHUNK)? == 0 {
                break;
            }
            let end = memchr::memchr(b'\n', &chunk)
                .map_or(chunk.len(), |i| i + 1)
                .min(max);
            line.extend_from_slice(&chunk[..end]);
            if end < chunk.len() {
                // Put back what belongs to the next line, ahead of anything buffered.
                let mut rest = chunk.split_off(end);
                rest.append(&mut self.line_buf);
                self.line_buf = rest;
                break;
            }
            if line.last() == Some(&b'\n') {
                break;
            }
        }
        Ok(line)
    }
}

fn size_arg(size: Option<i64>) -> Option<usize> {
    size.and_then(|s| usize::try_from(s).ok())
}

#[pymethods]
impl Input {
    /// read(size=-1): up to `size` bytes (fewer only at the end of the body).
    #[pyo3(signature = (size=None))]
    fn read<'py>(&mut self, py: Python<'py>, size: Option<i64>) -> PyResult<Bound<'py, PyBytes>> {
        let limit = size_arg(size);
        // A Content-Length body of known size goes straight into the bytes
        // object the app gets: one copy of the body in memory, not two.
        let known = self
            .known_remaining()
            .map(|n| limit.map_or(n, |l| n.min(l as u64)));
        if let Some(n) = known.and_then(|n| usize::try_from(n).ok())
            && n > CHUNK
        {
            return self.read_exact_into_bytes(py, n);
        }
        let mut out = Vec::new();
        loop {
            let max = limit.map_or(CHUNK, |l| (l - out.len()).min(CHUNK));
            if max == 0 || self.pull(py, &mut out, max)? == 0 {
                break;
            }
        }
        Ok(PyBytes::new(py, &out))
    }

    /// readline(size=-1): one line including its newline.
    #[pyo3(signature = (size=None))]
    fn readline<'py>(
        &mut self,
        py: Python<'py>,
        size: Option<i64>,
    ) -> PyResult<Bound<'py, PyBytes>> {
        let line = self.read_line(py, size_arg(size))?;
        Ok(PyBytes::new(py, &line))
    }

    /// readlines(hint=-1): lines until the end, or until `hint` bytes were read.
    #[pyo3(signature = (hint=None))]
    fn readlines<'py>(
        &mut self,
        py: Python<'py>,
        hint: Option<i64>,
    ) -> PyResult<Bound<'py, PyList>> {
        let hint = size_arg(hint).filter(|h| *h > 0);
        let lines = PyList::empty(py);
        let mut total = 0;
        loop {
            let line = self.read_line(py, None)?;
            if line.is_empty() {
                break;
            }
            total += line.len();
            lines.append(PyBytes::new(py, &line))?;
            if hint.is_some_and(|h| total >= h) {
                break;
            }
        }
        Ok(lines)
    }

    fn __iter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    fn __next__<'py>(&mut self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyBytes>>> {
        let line = self.read_line(py, None)?;
        Ok((!line.is_empty()).then(|| PyBytes::new(py, &line)))
    }
}

/// The `wsgi.errors` stream: text written here goes to the error log.
#[pyclass(module = "rgunicorn")]
pub(crate) struct Errors;

#[pymethods]
impl Errors {
    fn write(&self, text: &str) -> usize {
        crate::log::write_raw(text);
        text.len()
    }

    fn writelines(&self, lines: &Bound<'_, PyAny>) -> PyResult<()> {
        for line in lines.try_iter()? {
            crate::log::write_raw(line?.extract::<&str>()?);
        }
        Ok(())
    }

    fn flush(&self) {}
}
