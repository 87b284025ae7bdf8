//! PEP 3333 on top of `http`: the only bridge between a request and Python.
//!
//! [`Wsgi::handle`] runs one complete request head through the application:
//! environ, `start_response`, iterating the result, `close()`. It turns every
//! Python exception into an HTTP outcome (500 before the head was sent, a closed
//! connection after) and logs the traceback; a broken app never takes the worker
//! down with it.

mod environ;
mod exchange;
mod forwarded;
mod input;
mod request_body;
mod respond;
mod response;
mod socket;
mod start_response;

pub use environ::ConnInfo;
pub(crate) use forwarded::forwarded;
pub use forwarded::is_forwarder_header;

use crate::wire::Wire;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use pyo3::prelude::*;

use crate::config::Config;
use crate::http::body::Decoder;
use crate::http::head::{RequestHead, Version};
use crate::python::hooks::{Hooks, WorkerView};
use environ::EnvironBuilder;
use exchange::Exchange;
use pyo3::types::PyDict;
use request_body::{BodyFailure, RequestBody};
use respond::Iterated;
use response::{HeadContext, Response};
use start_response::StartResponse;

/// Status logged for a request whose client left before it could be answered
/// (nginx's convention; never sent).
pub const CLIENT_CLOSED: u16 = 499;

/// Unread body bytes we are willing to skip to keep a connection alive.
const DRAIN_LIMIT: usize = 64 * 1024;

/// The connection's buffers, lent to a request while the app runs.
pub struct ConnIo {
    /// The connection's byte stream (plain or TLS), non-blocking.
    pub wire: Wire,
    /// Bytes read and not consumed; the body (and any pipelined requests) start at `rpos`.
    pub rbuf: Vec<u8>,
    /// Start of unconsumed bytes in `rbuf`.
    pub rpos: usize,
    /// Response bytes not yet written.
    pub wbuf: Vec<u8>,
}

/// What a request left behind.
pub struct Outcome {
    /// The buffers, returned.
    pub io: ConnIo,
    /// The connection may carry another request.
    pub keep_alive: bool,
    /// Status code sent (500 for app errors; 0 when nothing could be sent).
    pub status: u16,
    /// Body bytes sent.
    pub body_bytes: u64,
    /// Response headers as sent.
    pub headers: Vec<(Vec<u8>, Vec<u8>)>,
    /// The client went away before the response was complete.
    pub disconnected: bool,
    /// Values of the environ keys the access log asked for, in its order.
    pub environ_values: Vec<Option<String>>,
    /// The request thread that ran it (`--threads`); None on the loop's thread.
    pub thread: Option<String>,
}

/// What [`Wsgi::handle`] left behind.
pub enum Handled {
    /// The response is complete (in `io.wbuf` or already written).
    Done(Outcome),
    /// The response waits for the client to read: write out
    /// [`Parked::try_flush`], then call [`Wsgi::resume`] with the body.
    Parked(Parked, Continuation),
}

/// Where a parked response continues (opaque to the event loop).
pub struct Continuation(respond::Rest);

/// A response in progress whose client reads slower than the app writes. The
/// event loop owns it between writes; the Python thread serves others meanwhile.
/// Dropping it (the client went away) still calls the result's `close()`.
pub struct Parked {
    ex: exchange::Shared,
    /// The app's result, until its `close()` is called.
    result: Option<Py<PyAny>>,
    environ: Option<Py<PyDict>>,
    req: Option<Py<PyAny>>,
    target: String,
}

impl Parked {
    /// Write buffered output without waiting. Ok(true) when all is written.
    ///
    /// # Errors
    /// The client reset the connection.
    pub fn try_flush(&mut self) -> std::io::Result<bool> {
        exchange::lock(&self.ex)
            .try_flush()
            .map_err(|e| std::io::Error::other(e.to_string()))
    }
}

impl Drop for Parked {
    fn drop(&mut self) {
        if let Some(result) = self.result.take() {
            // PEP 3333: close() is called even when the client went away.
            Python::attach(|py| respond::close_result(py, result.bind(py)));
        }
    }
}

/// Per-worker WSGI state: the app and the environ template.
pub struct Wsgi {
    app: Py<PyAny>,
    /// Request hooks from the config file, with this worker's view for them.
    hooks: Option<(Hooks, WorkerView)>,
    /// The settings the front-end trust rules read.
    config: Config,
    environ: EnvironBuilder,
    server: Arc<[u8]>,
    io_timeout: Duration,
    /// Use sendfile(2) for file_wrapper responses.
    sendfile: bool,
    date: Mutex<crate::http::response::DateCache>,
    /// Environ keys the access log format reads (lowercased), in its order.
    access_environ_keys: Vec<String>,
}

impl Wsgi {
    /// Prepare to serve `app`.
    ///
    /// # Errors
    /// Building the environ template failed (out of memory, in practice).
    pub fn new(
        py: Python<'_>,
        app: Py<PyAny>,
        config: &Config,
        hooks: &Hooks,
        worker: WorkerView,
        access_environ_keys: Vec<String>,
    ) -> PyResult<Wsgi> {
        Ok(Wsgi {
            app,
            hooks: hooks
                .has_request_hooks()
                .then(|| (hooks.clone_ref(py), worker)),
            config: config.clone(),
            environ: EnvironBuilder::new(
                py,
                config.workers > 1,
                config.threads > 1,
                &config.script_name,
                config.header_map,
                config.forwarder_headers.clone(),
            )?,
            server: Arc::from(config.server_header.as_bytes()),
            // A client that neither sends nor reads for `timeout` seconds is gone.
            io_timeout: config.io_timeout(),
            sendfile: config.sendfile_enabled,
            date: Mutex::new(crate::http::response::DateCache::new()),
            access_environ_keys,
        })
    }

    /// Run one request through the app and buffer its response in `io.wbuf`.
    /// `keep_alive_allowed` is false when the server is closing the connection anyway.
    /// A response the client reads slower than the app writes comes back
    /// [`Handled::Parked`]: the event loop writes it out and calls [`Wsgi::resume`].
    pub fn handle(
        &self,
        py: Python<'_>,
        head: &RequestHead,
        conn: &ConnInfo,
        io: ConnIo,
        keep_alive_allowed: bool,
    ) -> Handled {
        let ex = Arc::new(Mutex::new(Exchange {
            wire: io.wire,
            body: RequestBody::new(
                io.rbuf,
                io.rpos,
                Decoder::new(head.body),
                head.expect_continue,
                self.config.limit_request_body,
            ),
            response: Response::new(head.keep_alive && keep_alive_allowed),
            wbuf: io.wbuf,
            head_ctx: HeadContext {
                version: head.version,
                is_head: head.method() == "HEAD",
                date: self
                    .date
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .get()
                    .to_vec(),
                server: self.server.clone(),
            },
            io_timeout: self.io_timeout,
            body_timeout: self.config.body_timeout(),
            finished: false,
            client_gone: false,
        }));

        let req = self.hooks.as_ref().and_then(|(hooks, worker)| {
            let req = Hooks::request_object(
                py,
                head.method(),
                head.target(),
                head.path(),
                head.query(),
                match head.version {
                    Version::Http10 => (1, 0),
                    Version::Http11 => (1, 1),
                },
                head.headers(),
            )
            .ok()?;
            hooks.pre_request(py, *worker, &req);
            Some(req.unbind())
        });
        let forwarded = forwarded::forwarded(&self.config, conn, head);
        let mut parked = Parked {
            ex,
            result: None,
            environ: None,
            req,
            target: head.target().to_owned(),
        };
        let forwarded = match forwarded {
            Ok(f) => f,
            Err(why) => {
                crate::log::debug!("bad request {}: {why}", head.target());
                {
                    let e = &mut *exchange::lock(&parked.ex);
                    e.response
                        .error_page(&mut e.wbuf, &e.head_ctx, 400, "Bad Request");
                }
                return self.finish_or_park(py, parked, Iterated::Complete);
            }
        };
        let outcome = self.call_app(py, head, conn, &forwarded, &mut parked);
        self.finish_or_park(py, parked, outcome)
    }

    /// Continue a parked response whose buffered output has been written.
    pub fn resume(&self, py: Python<'_>, parked: Parked, body: Continuation) -> Handled {
        let outcome = respond::resume(py, &parked.ex, body.0);

        self.finish_or_park(py, parked, outcome)
    }

    /// Park again, or finish: errors, close(), post_request, buffers back.
    fn finish_or_park(&self, py: Python<'_>, mut parked: Parked, outcome: Iterated) -> Handled {
        match outcome {
            Iterated::Parked(body) => return Handled::Parked(parked, Continuation(body)),
            Iterated::Complete => {}
            Iterated::AppError(err) => self.app_error(py, &parked.target, &parked.ex, &err),
            Iterated::Io(failure) => {
                crate::log::debug!("{}: {failure}", parked.target);
                let mut e = exchange::lock(&parked.ex);
                e.client_gone = true;
                e.response.break_off();
            }
        }
        if let Some(result) = parked.result.take() {
            respond::close_result(py, result.bind(py));
        }
        self.post_request(py, &parked);
        let environ_values = match &parked.environ {
            Some(env) if !self.access_environ_keys.is_empty() => {
                environ_values(env.bind(py), &self.access_environ_keys)
            }
            _ => Vec::new(),
        };
        let mut e = exchange::lock(&parked.ex);
        e.finished = true;
        // The next request starts after this one's body: skip what is left of
        // it when it is already here and small, else close.
        let keep_alive = e.response.keep_alive()
            && !e.body.withdraw_continue()
            && (e.body.is_done() || e.body.skip_buffered(DRAIN_LIMIT));
        let sent = std::mem::take(&mut e.response.sent);
        Handled::Done(Outcome {
            io: ConnIo {
                wire: e.wire.lend(),
                rbuf: std::mem::take(&mut e.body.rbuf),
                rpos: e.body.rpos,
                wbuf: std::mem::take(&mut e.wbuf),
            },
            keep_alive,
            status: sent.code,
            body_bytes: sent.body_bytes,
            headers: sent.headers,
            disconnected: e.client_gone,
            thread: std::thread::current()
                .name()
                .filter(|n| n.starts_with("request-"))
                .map(str::to_owned),
            environ_values,
        })
    }

    /// The `post_request` hook, with what was sent.
    fn post_request(&self, py: Python<'_>, parked: &Parked) {
        let (Some((hooks, worker)), Some(req), Some(environ)) =
            (&self.hooks, &parked.req, &parked.environ)
        else {
            return;
        };
        let e = exchange::lock(&parked.ex);
        let sent = &e.response.sent;
        let status_line = String::from_utf8_lossy(&sent.status).into_owned();
        let resp =
            Hooks::response_object(py, sent.code, &status_line, &sent.headers, sent.body_bytes);
        drop(e);
        if let Ok(resp) = resp {
            hooks.post_request(py, *worker, req.bind(py), environ.bind(py).as_any(), &resp);
        }
    }

    fn call_app(
        &self,
        py: Python<'_>,
        head: &RequestHead,
        conn: &ConnInfo,
        forwarded: &forwarded::Forwarded,
        parked: &mut Parked,
    ) -> Iterated {
        let ex = &parked.ex;
        let environ = match self.environ.build(py, head, conn, forwarded, ex) {
            Ok(env) => env,
            Err(e) => return Iterated::AppError(e),
        };
        parked.environ = Some(environ.clone().unbind());
        let start_response = StartResponse {
            exchange: ex.clone(),
        };
        let start_response = match Bound::new(py, start_response) {
            Ok(s) => s,
            Err(e) => return Iterated::AppError(e),
        };
        let result = match self.app.bind(py).call1((&environ, start_response)) {
            Ok(r) => r,
            Err(e) => return Iterated::AppError(e),
        };
        parked.result = Some(result.clone().unbind());
        respond::start(py, ex, &result, self.sendfile)
    }

    /// Log the traceback; answer 500 if nothing was sent yet, else close.
    /// A failure the client caused while sending its body is answered for what
    /// it is (400, 408, or nothing to a client that is gone), without a traceback.
    fn app_error(&self, py: Python<'_>, target: &str, ex: &exchange::Shared, err: &PyErr) {
        let body_failure = exchange::lock(ex).body.failure.clone();
        let answer = match &body_failure {
            Some(BodyFailure::Malformed(bad)) => {
                crate::log::debug!("Bad request body for {target}: {bad}");
                Some((bad.status(), bad.reason()))
            }
            Some(BodyFailure::TimedOut) => {
                crate::log::info(&format!("Client timed out sending the body of {target}"));
                Some((408, "Request Timeout"))
            }
            Some(BodyFailure::TooLarge) => {
                crate::log::info(&format!("Request body of {target} over limit_request_body"));
                Some((413, "Content Too Large"))
            }
            Some(BodyFailure::Disconnected) => {
                crate::log::info(&format!("Client disconnected sending the body of {target}"));
                None
            }
            None => {
                if err.is_instance_of::<pyo3::exceptions::PySystemExit>(py) {
                    // The worker is being aborted (timeout) or the app asked to
                    // exit: the worker logs why; a traceback would only be noise.
                    crate::log::info(&format!("Request {target} interrupted: worker exiting"));
                } else {
                    crate::log::error(&format!(
                        "Error handling request {target}\n{}",
                        crate::python::format_traceback(py, err)
                    ));
                }
                Some((500, "Internal Server Error"))
            }
        };
        let mut e = exchange::lock(ex);
        let Some((code, reason)) = answer else {
            // Nobody is left to answer: nginx's 499 "client closed request"
            // marks it in the access log.
            e.client_gone = true;
            e.response.unanswered(CLIENT_CLOSED);
            return;
        };
        let e = &mut *e;
        if !e
            .response
            .error_page(&mut e.wbuf, &e.head_ctx, code, reason)
        {
            // Part of the response is out; the only honest signal left is to
            // close without ending its framing.
            e.response.break_off();
        }
    }
}

/// `str()` of the environ values whose lowercased keys are `keys` (Gunicorn's
/// `%({name}e)s`), read after the app ran so what it stored there shows.
fn environ_values(env: &Bound<'_, PyDict>, keys: &[String]) -> Vec<Option<String>> {
    let mut values = vec![None; keys.len()];
    for (k, v) in env.iter() {
        let Ok(k) = k.extract::<String>() else {
            continue;
        };
        let k = k.to_lowercase();
        if let Some(i) = keys.iter().position(|want| *want == k) {
            values[i] = v.str().ok().map(|s| s.to_string());
        }
    }
    values
}
