//! The app thread: its asyncio loop, the lifespan protocol, and the
//! [`Bridge`] that turns the event loop's messages into app calls.

use std::ffi::CString;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, mpsc};

use pyo3::prelude::*;
use pyo3::types::{PyDict, PyModule};

use crate::config::{AsgiLoop, Config, Lifespan};

use super::call::{Call, LoopHooks, LoopWaker, Registry, RequestHooks};
use super::{EventFd, Handle, Inbound, Mailbox, Shared};

/// The Python half, embedded: loop creation, the call wrapper, lifespan.
const RUNTIME_PY: &str = include_str!("runtime.py");

/// The app thread is serving; what the worker's boot reports.
pub struct Booted {
    /// The event loop's end of the bridge.
    pub handle: Handle,
    /// "asyncio" or "uvloop".
    pub loop_name: String,
}

/// Why the app thread could not start serving.
#[derive(Debug, thiserror::Error)]
pub enum BootFailure {
    /// Lifespan startup failed (`lifespan.startup.failed`, or an exception
    /// with `asgi_lifespan = on`): the app's message or traceback.
    #[error("ASGI lifespan startup failed: {0}")]
    Lifespan(String),
    /// The loop or the thread could not be set up.
    #[error("cannot start the ASGI event loop: {0}")]
    Loop(String),
}

/// What the app thread needs from the configuration.
#[derive(Clone, Copy)]
struct Settings {
    event_loop: AsgiLoop,
    lifespan: Lifespan,
}

/// Start the app thread for `app`, run lifespan startup, and return once it
/// serves. Called holding the GIL; waits with it released.
///
/// # Errors
/// Lifespan startup failed, or the loop could not start.
pub fn start(
    py: Python<'_>,
    app: Py<PyAny>,
    config: &Config,
    loop_wake: Arc<mio::Waker>,
    hooks: Option<RequestHooks>,
) -> Result<Booted, BootFailure> {
    let app_wake = EventFd::new().map_err(|e| BootFailure::Loop(e.to_string()))?;
    let shared = Arc::new(Shared {
        inbox: Mailbox::new(),
        outbox: Mailbox::new(),
        app_wake,
        loop_wake,
        ticks_seen: AtomicU64::new(0),
        wake_scheduled: std::sync::atomic::AtomicBool::new(false),
    });
    let settings = Settings {
        event_loop: config.asgi_loop,
        lifespan: config.asgi_lifespan,
    };
    let (ready, booted) = mpsc::channel::<Result<String, BootFailure>>();
    let thread_shared = shared.clone();
    let thread = std::thread::Builder::new()
        .name("asgi-loop".into())
        .spawn(move || {
            let init = ThreadInit {
                shared: thread_shared,
                app,
                settings,
                hooks,
            };
            Python::attach(|py| app_thread(py, init, &ready));
        })
        .map_err(|e| BootFailure::Loop(e.to_string()))?;
    let outcome = py.detach(move || booted.recv());
    let loop_name = match outcome {
        Ok(Ok(name)) => name,
        Ok(Err(e)) => {
            let _ = py.detach(|| thread.join());
            return Err(e);
        }
        Err(_) => return Err(BootFailure::Loop("the ASGI thread ended".into())),
    };
    Ok(Booted {
        handle: Handle {
            shared,
            serial: 0,
            live: 0,
            wake_pending: false,
            ticks_sent: 0,
            tick_at: std::time::Instant::now(),
            thread: Some(thread),
        },
        loop_name,
    })
}

/// What the app thread starts from.
struct ThreadInit {
    shared: Arc<Shared>,
    app: Py<PyAny>,
    settings: Settings,
    hooks: Option<RequestHooks>,
}

/// The app thread's whole life: set up, report, serve until shutdown.
fn app_thread(py: Python<'_>, init: ThreadInit, ready: &mpsc::Sender<Result<String, BootFailure>>) {
    let serving = match set_up(py, init) {
        Ok(s) => s,
        Err(e) => {
            let _ = ready.send(Err(e));
            return;
        }
    };
    let _ = ready.send(Ok(serving.loop_name.clone()));
    serving.serve(py);
}

/// The app thread, set up and ready to serve.
struct Serving {
    glue: Py<PyModule>,
    event_loop: Py<PyAny>,
    loop_name: String,
    /// The lifespan runner, when the app supports the protocol.
    lifespan: Option<Py<PyAny>>,
}

fn set_up(py: Python<'_>, init: ThreadInit) -> Result<Serving, BootFailure> {
    let ThreadInit {
        shared,
        app,
        settings,
        hooks,
    } = init;
    let shared = &shared;
    let failed = |e: PyErr| BootFailure::Loop(crate::python::format_traceback(py, &e));
    let glue = PyModule::from_code(
        py,
        &CString::new(RUNTIME_PY).map_err(|e| BootFailure::Loop(e.to_string()))?,
        c"rgunicorn_asgi.py",
        c"rgunicorn_asgi",
    )
    .map_err(failed)?;
    let kind = match settings.event_loop {
        AsgiLoop::Auto => "auto",
        AsgiLoop::Asyncio => "asyncio",
        AsgiLoop::Uvloop => "uvloop",
    };
    let (event_loop, loop_name): (Bound<'_, PyAny>, String) = glue
        .call_method1("new_loop", (kind,))
        .and_then(|pair| pair.extract())
        .map_err(failed)?;
    py.import("asyncio")
        .and_then(|a| a.call_method1("set_event_loop", (&event_loop,)))
        .map_err(failed)?;
    let state = PyDict::new(py);
    let lifespan = match settings.lifespan {
        Lifespan::Off => None,
        mode => startup(py, &glue, &app, &event_loop, &state, mode)?,
    };
    let registry = Arc::new(Registry::default());
    let bridge = Bridge {
        shared: shared.clone(),
        registry,
        app,
        run_call: glue.getattr("run_call").map_err(failed)?.unbind(),
        create_task: event_loop.getattr("create_task").map_err(failed)?.unbind(),
        aio: Arc::new(LoopHooks {
            create_future: event_loop
                .getattr("create_future")
                .map_err(failed)?
                .unbind(),
            call_soon: event_loop.getattr("call_soon").map_err(failed)?.unbind(),
            wake: Py::new(
                py,
                LoopWaker {
                    shared: shared.clone(),
                },
            )
            .map_err(failed)?,
            disconnected: glue.getattr("ClientDisconnected").map_err(failed)?.unbind(),
        }),
        stop: event_loop.getattr("stop").map_err(failed)?.unbind(),
        state: (settings.lifespan != Lifespan::Off).then(|| state.unbind()),
        scratch: std::sync::Mutex::new(Vec::new()),
        hooks: hooks.map(Arc::new),
    };
    let bridge = Bound::new(py, bridge).map_err(failed)?;
    event_loop
        .call_method1("add_reader", (shared.app_wake.fd(), bridge))
        .map_err(failed)?;
    Ok(Serving {
        glue: glue.unbind(),
        event_loop: event_loop.unbind(),
        loop_name,
        lifespan,
    })
}

/// Lifespan startup: the runner when the app supports the protocol, None
/// when it does not (auto), or the boot failure.
fn startup(
    py: Python<'_>,
    glue: &Bound<'_, PyModule>,
    app: &Py<PyAny>,
    event_loop: &Bound<'_, PyAny>,
    state: &Bound<'_, PyDict>,
    mode: Lifespan,
) -> Result<Option<Py<PyAny>>, BootFailure> {
    let failed = |e: PyErr| BootFailure::Lifespan(crate::python::format_traceback(py, &e));
    let runner = glue
        .getattr("Lifespan")
        .and_then(|c| c.call1((app, event_loop, state)))
        .map_err(failed)?;
    let outcome = runner
        .call_method0("run_startup")
        .and_then(|coro| event_loop.call_method1("run_until_complete", (coro,)))
        .map_err(failed)?;
    if outcome.is_none() {
        crate::log::info("ASGI lifespan startup complete");
        return Ok(Some(runner.unbind()));
    }
    let (kind, text): (String, String) = outcome.extract().map_err(failed)?;
    match (kind.as_str(), mode) {
        ("failed", _) => Err(BootFailure::Lifespan(text)),
        (_, Lifespan::On) => Err(BootFailure::Lifespan(match text.is_empty() {
            true => "the app returned without answering lifespan.startup".into(),
            false => text,
        })),
        _ => {
            crate::log::info("ASGI 'lifespan' protocol appears unsupported.");
            if !text.is_empty() {
                crate::log::debug!("the app raised on the lifespan scope:\n{text}");
            }
            Ok(None)
        }
    }
}

impl Serving {
    /// Run the loop until [`Inbound::Shutdown`], then lifespan shutdown.
    fn serve(self, py: Python<'_>) {
        let event_loop = self.event_loop.bind(py);
        if let Err(e) = event_loop.call_method0("run_forever") {
            crate::log::error(&format!(
                "the ASGI event loop failed:\n{}",
                crate::python::format_traceback(py, &e)
            ));
        }
        if let Some(lifespan) = &self.lifespan {
            let outcome = lifespan
                .bind(py)
                .call_method0("run_shutdown")
                .and_then(|coro| event_loop.call_method1("run_until_complete", (coro,)));
            match outcome {
                Ok(o) if o.is_none() => crate::log::info("ASGI lifespan shutdown complete"),
                Ok(o) => {
                    let text = o
                        .extract::<(String, String)>()
                        .map(|(_, t)| t)
                        .unwrap_or_default();
                    crate::log::error(&format!("ASGI lifespan shutdown failed: {text}"));
                }
                Err(e) => crate::log::error(&format!(
                    "ASGI lifespan shutdown failed:\n{}",
                    crate::python::format_traceback(py, &e)
                )),
            }
        }
        if let Err(e) = self
            .glue
            .bind(py)
            .call_method1("finish_loop", (event_loop,))
        {
            crate::log::debug!(
                "closing the ASGI event loop: {}",
                crate::python::format_traceback(py, &e)
            );
        }
    }
}

/// Called by the asyncio loop when the event loop wrote to its eventfd:
/// turns each message into an app call or a delivery to one.
#[pyclass(frozen)]
pub(super) struct Bridge {
    shared: Arc<Shared>,
    registry: Arc<Registry>,
    app: Py<PyAny>,
    run_call: Py<PyAny>,
    create_task: Py<PyAny>,
    aio: Arc<LoopHooks>,
    stop: Py<PyAny>,
    /// The lifespan state each scope gets a shallow copy of.
    state: Option<Py<PyDict>>,
    /// A buffer reused between drains.
    scratch: std::sync::Mutex<Vec<Inbound>>,
    /// `pre_request` / `post_request`, when the config file defines either.
    hooks: Option<Arc<RequestHooks>>,
}

#[pymethods]
impl Bridge {
    fn __call__(&self, py: Python<'_>) {
        self.shared.app_wake.reset();
        let mut batch = std::mem::take(
            &mut *self
                .scratch
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        );
        self.shared.inbox.take(&mut batch);
        for message in batch.drain(..) {
            if let Err(e) = self.handle(py, message) {
                crate::log::error(&format!(
                    "ASGI: {}",
                    crate::python::format_traceback(py, &e)
                ));
            }
        }
        *self
            .scratch
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = batch;
    }
}

impl Bridge {
    fn handle(&self, py: Python<'_>, message: Inbound) -> PyResult<()> {
        match message {
            Inbound::Start(start) => self.start_call(py, *start),
            Inbound::Tick => {
                self.shared.ticks_seen.fetch_add(1, Ordering::Release);
                Ok(())
            }
            Inbound::Shutdown => self.stop.call0(py).map(drop),
            other => {
                let id = super::inbound_id(&other);
                match self.registry.get(py, id) {
                    Some(call) => call
                        .get()
                        .deliver(py, other, self.aio.disconnected.bind(py)),
                    // The call has returned: nobody is listening.
                    None => Ok(()),
                }
            }
        }
    }

    fn start_call(&self, py: Python<'_>, start: super::Start) -> PyResult<()> {
        let state = self.state.as_ref().map(|s| s.bind(py));
        let scope = super::scope::build(py, &start, state)?;
        let hooked = match &self.hooks {
            Some(h) => Some(h.before(py, &start.head, &scope)?),
            None => None,
        };
        let call = Call::new(
            py,
            &start,
            self.shared.clone(),
            self.registry.clone(),
            self.aio.clone(),
            hooked,
        )?;
        self.registry.insert(start.id, call.clone_ref(py));
        let coro = self.run_call.call1(py, (&self.app, scope, call))?;
        self.create_task.call1(py, (coro,))?;
        Ok(())
    }
}
