//! One app call's `receive` and `send`, in Rust: the awaitables an ASGI app
//! gets, and the per-call state between it and the event loop.
//!
//! An event already here is returned as a [`Ready`] awaitable, which
//! completes without suspending the coroutine; only when the app must wait
//! (for body bytes, a WebSocket message, the socket to drain, the client to
//! go) does it get an asyncio future, resolved when the event loop's message
//! arrives. `send()` validates each message (`messages.rs`) and passes it on
//! as plain Rust values.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, PoisonError};

use pyo3::exceptions::{PyRuntimeError, PyStopIteration};
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::PyDict;
use rustc_hash::FxHashMap;

use super::messages::{self, Sent};
use super::{CallId, HIGH_WATER, Inbound, Outbound, Shared, Start, WsData};

/// The calls that may still get deliveries, by id.
#[derive(Default)]
pub(super) struct Registry(Mutex<FxHashMap<CallId, Py<Call>>>);

impl Registry {
    pub(super) fn insert(&self, id: CallId, call: Py<Call>) {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(id, call);
    }

    pub(super) fn get(&self, py: Python<'_>, id: CallId) -> Option<Py<Call>> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&id)
            .map(|c| c.clone_ref(py))
    }

    fn remove(&self, id: CallId) -> Option<Py<Call>> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&id)
    }
}

/// The config file's request hooks, with this worker as they see it.
pub struct RequestHooks {
    /// The hooks.
    pub hooks: crate::python::hooks::Hooks,
    /// This worker.
    pub worker: crate::python::hooks::WorkerView,
}

impl RequestHooks {
    /// `pre_request(worker, req)` for an HTTP call about to start; what
    /// `post_request` will need.
    pub(super) fn before(
        self: &Arc<Self>,
        py: Python<'_>,
        head: &crate::http::head::RequestHead,
        scope: &Bound<'_, PyDict>,
    ) -> PyResult<Hooked> {
        let version = match head.version {
            crate::http::head::Version::Http10 => (1, 0),
            crate::http::head::Version::Http11 => (1, 1),
        };
        let req = crate::python::hooks::Hooks::request_object(
            py,
            head.method(),
            head.target(),
            head.path(),
            head.query(),
            version,
            head.headers(),
        )?;
        self.hooks.pre_request(py, self.worker, &req);
        Ok(Hooked {
            hooks: self.clone(),
            req: req.unbind(),
            scope: scope.clone().into_any().unbind(),
        })
    }
}

/// A call the request hooks see: `post_request(worker, req, scope, resp)`
/// runs when it returns, with what was sent.
pub(super) struct Hooked {
    hooks: Arc<RequestHooks>,
    req: Py<PyAny>,
    /// The scope stands where WSGI hooks get the environ.
    scope: Py<PyAny>,
}

/// An awaitable whose result is already known: `await` returns it at once.
#[pyclass(frozen)]
pub(super) struct Ready {
    value: Option<Py<PyAny>>,
}

#[pymethods]
impl Ready {
    fn __await__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    fn __iter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    /// Finish at once: StopIteration carrying the value (none at all, the
    /// cheaper path, when the result is None).
    fn __next__(&self, py: Python<'_>) -> PyResult<Option<Py<PyAny>>> {
        match &self.value {
            Some(v) => Err(PyStopIteration::new_err((v.clone_ref(py),))),
            None => Ok(None),
        }
    }

    fn send(&self, py: Python<'_>, _value: &Bound<'_, PyAny>) -> PyResult<Option<Py<PyAny>>> {
        self.__next__(py)
    }
}

fn ready(py: Python<'_>, value: Option<Py<PyAny>>) -> PyResult<Py<PyAny>> {
    Ok(Py::new(py, Ready { value })?.into_any())
}

/// Where the app is in its side of the protocol.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Stage {
    /// HTTP: no `http.response.start` yet. WebSocket: not accepted yet.
    Opening,
    /// HTTP: the head is sent, body follows. WebSocket: open.
    Open,
    /// HTTP: the last body part is sent. WebSocket: closed.
    Closed,
}

/// Per-call state, touched only on the app thread.
struct State {
    stage: Stage,
    /// Events waiting for `receive()`.
    events: VecDeque<Py<PyAny>>,
    /// `receive()` calls waiting for an event.
    receivers: VecDeque<Py<PyAny>>,
    /// The `send()` waiting for the socket.
    sender: Option<Py<PyAny>>,
    /// More request body follows (HTTP).
    body_more: bool,
    /// A WantBody / WantMessage is outstanding.
    asked: bool,
    /// The client is gone.
    disconnected: bool,
    /// WebSocket close code, once closed.
    close_code: Option<u16>,
    /// Bytes sent since the event loop last said the socket drained.
    unsent: usize,
    /// What was sent, for `post_request`.
    sent: SentSoFar,
}

/// What a call has sent: status, headers (kept only for `post_request`),
/// body bytes.
#[derive(Default)]
struct SentSoFar {
    status: u16,
    headers: Vec<(Vec<u8>, Vec<u8>)>,
    bytes: u64,
}

/// `receive` and `send` of one app call.
#[pyclass(frozen)]
pub(super) struct Call {
    id: CallId,
    websocket: bool,
    shared: Arc<Shared>,
    registry: Arc<Registry>,
    aio: Arc<LoopHooks>,
    /// The request hooks, when the config file has any (HTTP calls only).
    hooked: Option<Hooked>,
    state: Mutex<State>,
}

/// The asyncio loop's methods a call uses.
pub(super) struct LoopHooks {
    /// `loop.create_future`.
    pub(super) create_future: Py<PyAny>,
    /// `loop.call_soon`.
    pub(super) call_soon: Py<PyAny>,
    /// Wakes the event loop; scheduled once per asyncio turn with replies.
    pub(super) wake: Py<LoopWaker>,
    /// `ClientDisconnected`, which `send()` raises once the client is gone.
    pub(super) disconnected: Py<PyAny>,
}

/// Wakes the worker's event loop for the replies queued in this asyncio turn.
#[pyclass(frozen)]
pub(super) struct LoopWaker {
    pub(super) shared: Arc<Shared>,
}

#[pymethods]
impl LoopWaker {
    fn __call__(&self) {
        self.shared.wake_loop();
    }
}

impl Call {
    pub(super) fn new(
        py: Python<'_>,
        start: &Start,
        shared: Arc<Shared>,
        registry: Arc<Registry>,
        aio: Arc<LoopHooks>,
        hooked: Option<Hooked>,
    ) -> PyResult<Py<Call>> {
        let mut events = VecDeque::new();
        if start.websocket {
            let connect = PyDict::new(py);
            connect.set_item(intern!(py, "type"), intern!(py, "websocket.connect"))?;
            events.push_back(connect.into_any().unbind());
        } else {
            events.push_back(http_request(py, &start.body, start.more_body)?);
        }
        let call = Call {
            id: start.id,
            websocket: start.websocket,
            shared,
            registry,
            aio,
            hooked: hooked.filter(|_| !start.websocket),
            state: Mutex::new(State {
                stage: Stage::Opening,
                events,
                receivers: VecDeque::new(),
                sender: None,
                body_more: start.more_body,
                asked: false,
                disconnected: false,
                close_code: None,
                unsent: 0,
                sent: SentSoFar::default(),
            }),
        };
        Py::new(py, call)
    }

    /// Queue `message` for the event loop, and have it woken at the end of
    /// this asyncio turn.
    fn reply(&self, py: Python<'_>, message: Outbound) -> PyResult<()> {
        if self.shared.reply(message) {
            self.aio
                .call_soon
                .call1(py, (self.aio.wake.clone_ref(py),))?;
        }
        Ok(())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// What a valid `send()` tells the event loop, and how many body bytes
    /// it carries; moves the call's stage on.
    fn outbound(&self, py: Python<'_>, st: &mut State, sent: Sent) -> PyResult<(Outbound, usize)> {
        let id = self.id;
        Ok(match sent {
            Sent::Start { status, headers } => {
                st.stage = Stage::Open;
                st.sent.status = status;
                if self.hooked.is_some() {
                    st.sent.headers = headers.clone();
                }
                (
                    Outbound::Start {
                        id,
                        status,
                        headers,
                    },
                    0,
                )
            }
            Sent::Body { data, more } => {
                if !more {
                    st.stage = Stage::Closed;
                    wake_receivers(py, st)?;
                }
                let n = data.len();
                st.sent.bytes += n as u64;
                let wait = false;
                (
                    Outbound::Body {
                        id,
                        data,
                        more,
                        wait,
                    },
                    n,
                )
            }
            Sent::PathSend { path } => {
                st.stage = Stage::Closed;
                wake_receivers(py, st)?;
                (Outbound::PathSend { id, path }, 0)
            }
            Sent::Accept {
                subprotocol,
                headers,
            } => {
                st.stage = Stage::Open;
                let accept = Outbound::Accept {
                    id,
                    subprotocol,
                    headers,
                };
                (accept, 0)
            }
            Sent::Message(data) => {
                let n = match &data {
                    WsData::Text(t) => t.len(),
                    WsData::Binary(b) => b.len(),
                };
                let wait = false;
                (Outbound::Send { id, data, wait }, n)
            }
            Sent::Close { code, reason } => {
                st.stage = Stage::Closed;
                st.close_code = Some(code);
                (Outbound::Close { id, code, reason }, 0)
            }
        })
    }

    /// An event from the event loop for this call.
    pub(super) fn deliver(
        &self,
        py: Python<'_>,
        message: Inbound,
        disconnected: &Bound<'_, PyAny>,
    ) -> PyResult<()> {
        let mut st = self.lock();
        match message {
            Inbound::Body { data, more, .. } => {
                st.asked = false;
                st.body_more = more;
                let event = http_request(py, &data, more)?;
                push_event(py, &mut st, event)
            }
            Inbound::Message { data, .. } => {
                st.asked = false;
                let event = PyDict::new(py);
                event.set_item(intern!(py, "type"), intern!(py, "websocket.receive"))?;
                match data {
                    WsData::Text(t) => event.set_item(intern!(py, "text"), t)?,
                    WsData::Binary(b) => {
                        event.set_item(intern!(py, "bytes"), pyo3::types::PyBytes::new(py, &b))?;
                    }
                }
                push_event(py, &mut st, event.into_any().unbind())
            }
            Inbound::Sent { .. } => match st.sender.take() {
                Some(f) => resolve(py, &f, Ok(py.None())),
                None => Ok(()),
            },
            Inbound::Disconnect { .. } => {
                st.disconnected = true;
                if let Some(f) = st.sender.take() {
                    resolve(py, &f, Err(disconnected.call0()?.unbind()))?;
                }
                if !self.websocket {
                    let event = disconnect_event(py, None)?;
                    push_event(py, &mut st, event)?;
                }
                Ok(())
            }
            Inbound::Closed { code, reason, .. } => {
                st.disconnected = true;
                st.close_code = Some(code);
                st.stage = Stage::Closed;
                if let Some(f) = st.sender.take() {
                    resolve(py, &f, Err(disconnected.call0()?.unbind()))?;
                }
                let event = disconnect_event(py, Some((code, &reason)))?;
                push_event(py, &mut st, event)
            }
            Inbound::Start(_) | Inbound::Tick | Inbound::Shutdown => Ok(()),
        }
    }
}

#[pymethods]
impl Call {
    /// `await receive()`: the next event.
    fn receive(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        let mut st = self.lock();
        if let Some(event) = st.events.pop_front() {
            return ready(py, Some(event));
        }
        if self.websocket {
            if let Some(code) = st.close_code {
                return ready(py, Some(disconnect_event(py, Some((code, "")))?));
            }
            if !st.asked {
                st.asked = true;
                self.reply(py, Outbound::WantMessage { id: self.id })?;
            }
        } else if st.disconnected || st.stage == Stage::Closed {
            // The response is complete or the client left.
            return ready(py, Some(disconnect_event(py, None)?));
        } else if st.body_more && !st.asked {
            st.asked = true;
            self.reply(py, Outbound::WantBody { id: self.id })?;
        }
        // Otherwise the body is all read: wait for the client to go.
        let waiter = self.aio.create_future.call0(py)?;
        st.receivers.push_back(waiter.clone_ref(py));
        Ok(waiter)
    }

    /// `await send(message)`.
    fn send(&self, py: Python<'_>, message: &Bound<'_, PyDict>) -> PyResult<Py<PyAny>> {
        let mut st = self.lock();
        let sent = messages::parse(message, self.websocket, st.stage)?;
        if st.disconnected {
            if self.websocket || st.stage != Stage::Closed {
                let error = self
                    .aio
                    .disconnected
                    .call1(py, ("the client has disconnected",))?;
                return Err(PyErr::from_value(error.into_bound(py)));
            }
            return ready(py, None);
        }
        let (outbound, bytes) = self.outbound(py, &mut st, sent)?;
        st.unsent += bytes;
        if st.unsent < HIGH_WATER {
            self.reply(py, outbound)?;
            return ready(py, None);
        }
        // Too much is on its way: wait until the event loop has written it.
        st.unsent = 0;
        let outbound = match outbound {
            Outbound::Body { id, data, more, .. } => Outbound::Body {
                id,
                data,
                more,
                wait: true,
            },
            Outbound::Send { id, data, .. } => Outbound::Send {
                id,
                data,
                wait: true,
            },
            other => other,
        };
        let waiter = self.aio.create_future.call0(py)?;
        st.sender = Some(waiter.clone_ref(py));
        self.reply(py, outbound)?;
        Ok(waiter)
    }

    /// The app call returned (`error` None) or raised.
    fn finish(&self, py: Python<'_>, error: Option<Bound<'_, PyAny>>) -> PyResult<()> {
        let _ = self.registry.remove(self.id);
        let failed = match error {
            None => false,
            Some(e) => {
                let cancelled = py.import("asyncio")?.getattr("CancelledError")?;
                if !e.is_instance(&cancelled)? {
                    let err = PyErr::from_value(e);
                    crate::log::error(&format!(
                        "Exception in ASGI application\n{}",
                        crate::python::format_traceback(py, &err)
                    ));
                }
                true
            }
        };
        let st = self.lock();
        if !failed && !self.websocket && st.stage == Stage::Opening && !st.disconnected {
            crate::log::error("ASGI callable returned without starting response.");
        }
        if let Some(h) = &self.hooked {
            let SentSoFar {
                status,
                headers,
                bytes,
            } = &st.sent;
            let status = if *status == 0 { 500 } else { *status };
            let line = format!("{status} {}", crate::http::response::reason_phrase(status));
            let resp =
                crate::python::hooks::Hooks::response_object(py, status, &line, headers, *bytes)?;
            let rh = &h.hooks;
            rh.hooks
                .post_request(py, rh.worker, h.req.bind(py), h.scope.bind(py), &resp);
        }
        drop(st);
        self.reply(
            py,
            Outbound::Done {
                id: self.id,
                failed,
            },
        )
    }
}

/// Hand `event` to the first waiting `receive()`, or keep it for the next.
fn push_event(py: Python<'_>, st: &mut State, event: Py<PyAny>) -> PyResult<()> {
    while let Some(waiter) = st.receivers.pop_front() {
        if waiter
            .bind(py)
            .call_method0(intern!(py, "done"))?
            .is_truthy()?
        {
            continue; // cancelled meanwhile
        }
        return resolve(py, &waiter, Ok(event));
    }
    st.events.push_back(event);
    Ok(())
}

/// The response is complete: waiting `receive()` calls see the disconnect.
fn wake_receivers(py: Python<'_>, st: &mut State) -> PyResult<()> {
    while let Some(waiter) = st.receivers.pop_front() {
        if !waiter
            .bind(py)
            .call_method0(intern!(py, "done"))?
            .is_truthy()?
        {
            resolve(py, &waiter, Ok(disconnect_event(py, None)?))?;
        }
    }
    Ok(())
}

/// Complete an asyncio future, unless it was cancelled.
fn resolve(
    py: Python<'_>,
    future: &Py<PyAny>,
    outcome: Result<Py<PyAny>, Py<PyAny>>,
) -> PyResult<()> {
    let f = future.bind(py);
    if f.call_method0(intern!(py, "done"))?.is_truthy()? {
        return Ok(());
    }
    match outcome {
        Ok(v) => f.call_method1(intern!(py, "set_result"), (v,))?,
        Err(e) => f.call_method1(intern!(py, "set_exception"), (e,))?,
    };
    Ok(())
}

fn http_request(py: Python<'_>, body: &[u8], more: bool) -> PyResult<Py<PyAny>> {
    let event = PyDict::new(py);
    event.set_item(intern!(py, "type"), intern!(py, "http.request"))?;
    event.set_item(intern!(py, "body"), pyo3::types::PyBytes::new(py, body))?;
    event.set_item(intern!(py, "more_body"), more)?;
    Ok(event.into_any().unbind())
}

fn disconnect_event(py: Python<'_>, close: Option<(u16, &str)>) -> PyResult<Py<PyAny>> {
    let event = PyDict::new(py);
    match close {
        None => event.set_item(intern!(py, "type"), intern!(py, "http.disconnect"))?,
        Some((code, reason)) => {
            event.set_item(intern!(py, "type"), intern!(py, "websocket.disconnect"))?;
            event.set_item(intern!(py, "code"), code)?;
            event.set_item(intern!(py, "reason"), reason)?;
        }
    }
    Ok(event.into_any().unbind())
}

/// For errors `send()` raises on a protocol violation.
pub(super) fn protocol_error(text: String) -> PyErr {
    PyRuntimeError::new_err(text)
}
