//! `environ["gunicorn.socket"]`: the request's connection, as apps reach it.
//!
//! Gunicorn hands apps its real socket object. Here the event loop owns the
//! socket and frames every byte on it, so apps get a view instead: the calls
//! apps make on it (`fileno`, `getpeername`, `getsockname`, `getsockopt`,
//! `family`, `type`, `proto`) answer as a `socket.socket` would, and `dup()`
//! returns a real `socket.socket` over a duplicate descriptor for code that
//! insists on one. Reading or writing behind the server's back would corrupt
//! the HTTP framing, so the view has no `recv`/`send`. Once the request is over
//! the view behaves as a closed socket: its descriptor number may already name
//! another client's connection.

use std::os::fd::BorrowedFd;

use pyo3::exceptions::PyOSError;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyTuple};
use socket2::{SockAddr, SockRef};

use super::exchange::{Shared, acquire};

/// The `gunicorn.socket` view of one request's connection.
#[pyclass(module = "rgunicorn", name = "ConnectionSocket")]
pub(crate) struct ConnSocket {
    /// The exchange whose connection this is; `finished` closes the view.
    pub exchange: Shared,
}

impl ConnSocket {
    /// The live descriptor, or EBADF once the request is over.
    fn fd(&self) -> PyResult<i32> {
        let ex = acquire(&self.exchange)?;
        if ex.finished {
            return Err(PyOSError::new_err((
                libc::EBADF,
                "the request is over; its connection belongs to the server",
            )));
        }
        Ok(ex.wire.fd())
    }

    fn with_sock<T>(&self, f: impl FnOnce(SockRef<'_>) -> std::io::Result<T>) -> PyResult<T> {
        let fd = self.fd()?;
        // SAFETY: the descriptor stays open while the request runs: the event
        // loop closes a connection only after its exchange is finished, and
        // `fd()` checked that it is not.
        let borrowed = unsafe { BorrowedFd::borrow_raw(fd) };
        f(SockRef::from(&borrowed)).map_err(PyErr::from)
    }
}

/// A socket address as Python's `socket` module presents it.
fn py_addr<'py>(py: Python<'py>, addr: &SockAddr) -> PyResult<Bound<'py, PyAny>> {
    match addr.as_socket() {
        Some(std::net::SocketAddr::V4(a)) => Ok(PyTuple::new(
            py,
            [
                a.ip().to_string().into_pyobject(py)?.into_any(),
                a.port().into_pyobject(py)?.into_any(),
            ],
        )?
        .into_any()),
        Some(std::net::SocketAddr::V6(a)) => Ok(PyTuple::new(
            py,
            [
                a.ip().to_string().into_pyobject(py)?.into_any(),
                a.port().into_pyobject(py)?.into_any(),
                a.flowinfo().into_pyobject(py)?.into_any(),
                a.scope_id().into_pyobject(py)?.into_any(),
            ],
        )?
        .into_any()),
        None => match addr.as_pathname() {
            Some(path) => Ok(path.to_string_lossy().into_pyobject(py)?.into_any()),
            None => Ok("".into_pyobject(py)?.into_any()),
        },
    }
}

#[pymethods]
impl ConnSocket {
    fn fileno(&self) -> PyResult<i32> {
        self.fd()
    }

    fn getpeername<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let addr = self.with_sock(|s| s.peer_addr())?;
        py_addr(py, &addr)
    }

    fn getsockname<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let addr = self.with_sock(|s| s.local_addr())?;
        py_addr(py, &addr)
    }

    #[getter]
    fn family(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        let domain = self.with_sock(|s| s.domain())?;
        enum_member(py, "AddressFamily", i32::from(domain))
    }

    #[getter]
    fn r#type(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        let ty = self.with_sock(|s| s.r#type())?;
        enum_member(py, "SocketKind", i32::from(ty))
    }

    #[getter]
    fn proto(&self) -> PyResult<i32> {
        Ok(self.with_sock(|s| s.protocol())?.map_or(0, i32::from))
    }

    /// `getsockopt(level, option[, buflen])`: an int, or bytes with `buflen`.
    #[pyo3(signature = (level, option, buflen=0))]
    fn getsockopt<'py>(
        &self,
        py: Python<'py>,
        level: i32,
        option: i32,
        buflen: usize,
    ) -> PyResult<Bound<'py, PyAny>> {
        let fd = self.fd()?;
        let mut buf = vec![0u8; buflen.clamp(std::mem::size_of::<libc::c_int>(), 1024)];
        let mut len = buf.len() as libc::socklen_t;
        // SAFETY: buf/len describe a writable buffer we own; fd is live (see
        // `with_sock`).
        let r = unsafe { libc::getsockopt(fd, level, option, buf.as_mut_ptr().cast(), &mut len) };
        if r != 0 {
            return Err(std::io::Error::last_os_error().into());
        }
        buf.truncate(len as usize);
        if buflen == 0 {
            let mut int = [0u8; std::mem::size_of::<libc::c_int>()];
            let n = buf.len().min(int.len());
            int[..n].copy_from_slice(&buf[..n]);
            return Ok(libc::c_int::from_ne_bytes(int)
                .into_pyobject(py)?
                .into_any());
        }
        Ok(PyBytes::new(py, &buf).into_any())
    }

    /// A real `socket.socket` over a duplicate of the descriptor. The app owns
    /// it; the server keeps framing the connection.
    fn dup<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let fd = self.fd()?;
        // SAFETY: fd is live (see `with_sock`); F_DUPFD_CLOEXEC returns a new
        // descriptor or -1.
        let dup = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 0) };
        if dup < 0 {
            return Err(std::io::Error::last_os_error().into());
        }
        // socket.socket(fileno=...) adopts the duplicate; -1 means "read the
        // family, type and protocol from the descriptor".
        let sock = py
            .import("socket")?
            .call_method1("socket", (-1, -1, -1, dup));
        if sock.is_err() {
            // SAFETY: dup is ours and was not adopted.
            unsafe { libc::close(dup) };
        }
        sock
    }

    fn close(&self) {
        // The server owns the connection; an app closing its view is a no-op,
        // as closing the request's socket under Gunicorn would break it.
    }

    fn __repr__(&self) -> String {
        match self.fd() {
            Ok(fd) => format!("<rgunicorn.ConnectionSocket fd={fd}>"),
            Err(_) => "<rgunicorn.ConnectionSocket [closed]>".to_owned(),
        }
    }
}

/// `socket.AddressFamily(n)` / `socket.SocketKind(n)`, falling back to the int.
fn enum_member(py: Python<'_>, enum_name: &str, value: i32) -> PyResult<Py<PyAny>> {
    let socket = py.import("socket")?;
    match socket.getattr(enum_name)?.call1((value,)) {
        Ok(member) => Ok(member.unbind()),
        Err(_) => Ok(value.into_pyobject(py)?.into_any().unbind()),
    }
}
