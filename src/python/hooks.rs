//! Server hooks: one typed method per hook, called at Gunicorn's call points.
//!
//! Hook objects carry the attributes real hook code uses: the server has `cfg`,
//! `pid`, `num_workers` and `log`; a worker has `pid`, `ppid`, `age`, `alive`,
//! `cfg` and `log`; a request has `method`, `path`, `query`, `uri`, `version` and
//! `headers` (a list of `(NAME, value)` pairs, names upper-cased as in Gunicorn);
//! a response has `status`, `status_code`, `headers` and `sent`. A hook that
//! raises is logged with its traceback and the server carries on, except where
//! Gunicorn stops ([`HookFailed`]).

use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyTuple};

use crate::config::{Kind, Origins};

/// The server hooks, by name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Hook {
    /// on_starting(server)
    OnStarting,
    /// on_reload(server)
    OnReload,
    /// when_ready(server)
    WhenReady,
    /// pre_fork(server, worker)
    PreFork,
    /// post_fork(server, worker)
    PostFork,
    /// post_worker_init(worker)
    PostWorkerInit,
    /// worker_int(worker)
    WorkerInt,
    /// worker_abort(worker)
    WorkerAbort,
    /// pre_exec(server)
    PreExec,
    /// pre_request(worker, req)
    PreRequest,
    /// post_request(worker, req, environ, resp)
    PostRequest,
    /// child_exit(server, worker)
    ChildExit,
    /// worker_exit(server, worker)
    WorkerExit,
    /// nworkers_changed(server, new, old)
    NworkersChanged,
    /// on_exit(server)
    OnExit,
    /// ssl_context(config, factory)
    SslContext,
}

impl Hook {
    const ALL: [Hook; 16] = [
        Hook::OnStarting,
        Hook::OnReload,
        Hook::WhenReady,
        Hook::PreFork,
        Hook::PostFork,
        Hook::PostWorkerInit,
        Hook::WorkerInt,
        Hook::WorkerAbort,
        Hook::PreExec,
        Hook::PreRequest,
        Hook::PostRequest,
        Hook::ChildExit,
        Hook::WorkerExit,
        Hook::NworkersChanged,
        Hook::OnExit,
        Hook::SslContext,
    ];

    /// The setting key naming this hook.
    pub fn key(self) -> &'static str {
        match self {
            Hook::OnStarting => "on_starting",
            Hook::OnReload => "on_reload",
            Hook::WhenReady => "when_ready",
            Hook::PreFork => "pre_fork",
            Hook::PostFork => "post_fork",
            Hook::PostWorkerInit => "post_worker_init",
            Hook::WorkerInt => "worker_int",
            Hook::WorkerAbort => "worker_abort",
            Hook::PreExec => "pre_exec",
            Hook::PreRequest => "pre_request",
            Hook::PostRequest => "post_request",
            Hook::ChildExit => "child_exit",
            Hook::WorkerExit => "worker_exit",
            Hook::NworkersChanged => "nworkers_changed",
            Hook::OnExit => "on_exit",
            Hook::SslContext => "ssl_context",
        }
    }

    /// The hook with setting key `key`.
    pub fn from_key(key: &str) -> Option<Hook> {
        Hook::ALL.into_iter().find(|h| h.key() == key)
    }
}

/// The master's view of itself, for hooks.
#[derive(Clone, Copy, Debug)]
pub struct ServerView {
    /// Master pid.
    pub pid: u32,
    /// Configured number of workers.
    pub num_workers: usize,
}

/// A worker, for hooks.
#[derive(Clone, Copy, Debug)]
pub struct WorkerView {
    /// Worker pid (None before fork).
    pub pid: Option<u32>,
    /// Master pid.
    pub ppid: u32,
    /// Spawn counter, as Gunicorn's `worker.age`.
    pub age: u64,
    /// Still serving.
    pub alive: bool,
}

/// A hook raised (its traceback is logged). Returned by the hooks whose failure
/// stops start-up, as in Gunicorn: on_starting, when_ready, pre_fork (the master
/// exits 1), post_fork and post_worker_init (the worker fails to boot, 3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the {} hook raised", .0.key())]
pub struct HookFailed(pub Hook);

/// The hooks a config file defined, plus the `cfg` object they see.
#[derive(Default)]
pub struct Hooks {
    set: Vec<(Hook, Py<PyAny>)>,
    cfg: Option<Py<PyAny>>,
    /// How many arguments post_request takes (2, 3 or 4), found once.
    post_request_arity: std::sync::OnceLock<usize>,
}

impl Hooks {
    /// A copy holding new references to the same callables, for a worker's
    /// request threads (which outlive the borrow the worker booted with).
    pub fn clone_ref(&self, py: Python<'_>) -> Hooks {
        Hooks {
            set: self
                .set
                .iter()
                .map(|(h, c)| (*h, c.clone_ref(py)))
                .collect(),
            cfg: self.cfg.as_ref().map(|c| c.clone_ref(py)),
            post_request_arity: self.post_request_arity.clone(),
        }
    }

    /// Define `hook`.
    pub fn set(&mut self, hook: Hook, callable: Py<PyAny>) {
        self.set.retain(|(h, _)| *h != hook);
        self.set.push((hook, callable));
    }

    /// True when `hook` is defined.
    pub fn is_set(&self, hook: Hook) -> bool {
        self.set.iter().any(|(h, _)| *h == hook)
    }

    /// The hooks that are defined.
    pub fn defined(&self) -> impl Iterator<Item = Hook> + '_ {
        self.set.iter().map(|(h, _)| *h)
    }

    /// Build the `cfg` object (every setting as a Python value) once.
    pub fn set_config(&mut self, py: Python<'_>, origins: &Origins) {
        let cfg = (|| -> PyResult<Py<PyAny>> {
            let ns = py.import("types")?.getattr("SimpleNamespace")?.call0()?;
            for (setting, values, _) in &origins.entries {
                let value: Bound<'_, PyAny> = match setting.kind {
                    Kind::Hook(_) => match Hook::from_key(setting.key).and_then(|h| self.get(h)) {
                        Some(f) => f.bind(py).clone(),
                        None => py.None().into_bound(py),
                    },
                    Kind::List => PyList::new(py, values)?.into_any(),
                    Kind::Int => match values.first().and_then(|v| v.trim().parse::<i64>().ok()) {
                        Some(n) => n.into_pyobject(py)?.into_any(),
                        None => py.None().into_bound(py),
                    },
                    Kind::Bool => {
                        let b = values
                            .first()
                            .and_then(|v| crate::config::parse_bool(v).ok())
                            .unwrap_or(false);
                        pyo3::types::PyBool::new(py, b).to_owned().into_any()
                    }
                    Kind::Str | Kind::Dict => match values.first() {
                        Some(v) if v != "None" => v.into_pyobject(py)?.into_any(),
                        _ => py.None().into_bound(py),
                    },
                };
                ns.setattr(setting.key, value)?;
            }
            Ok(ns.unbind())
        })();
        self.cfg = cfg.ok();
    }

    fn get(&self, hook: Hook) -> Option<&Py<PyAny>> {
        self.set.iter().find(|(h, _)| *h == hook).map(|(_, f)| f)
    }

    /// Call `hook` with `args`; log a traceback if it raises.
    fn call<'py>(
        &self,
        py: Python<'py>,
        hook: Hook,
        args: impl FnOnce() -> PyResult<Bound<'py, PyTuple>>,
    ) -> Result<(), HookFailed> {
        let Some(f) = self.get(hook) else {
            return Ok(());
        };
        let result = args().and_then(|a| f.bind(py).call1(a));
        match result {
            Ok(_) => Ok(()),
            Err(e) => {
                crate::log::error(&format!(
                    "Exception in {} hook:\n{}",
                    hook.key(),
                    super::format_traceback(py, &e)
                ));
                Err(HookFailed(hook))
            }
        }
    }

    fn server<'py>(&self, py: Python<'py>, view: ServerView) -> PyResult<Bound<'py, PyAny>> {
        namespace(
            py,
            &[
                ("pid", view.pid.into_pyobject(py)?.into_any()),
                (
                    "num_workers",
                    view.num_workers.into_pyobject(py)?.into_any(),
                ),
                ("cfg", self.cfg_obj(py)),
                ("log", Bound::new(py, HookLog)?.into_any()),
            ],
        )
    }

    fn worker<'py>(&self, py: Python<'py>, view: WorkerView) -> PyResult<Bound<'py, PyAny>> {
        let pid = match view.pid {
            Some(p) => p.into_pyobject(py)?.into_any(),
            None => py.None().into_bound(py),
        };
        namespace(
            py,
            &[
                ("pid", pid),
                ("ppid", view.ppid.into_pyobject(py)?.into_any()),
                ("age", view.age.into_pyobject(py)?.into_any()),
                (
                    "alive",
                    pyo3::types::PyBool::new(py, view.alive)
                        .to_owned()
                        .into_any(),
                ),
                (
                    "booted",
                    pyo3::types::PyBool::new(py, view.pid.is_some())
                        .to_owned()
                        .into_any(),
                ),
                ("cfg", self.cfg_obj(py)),
                ("log", Bound::new(py, HookLog)?.into_any()),
            ],
        )
    }

    fn cfg_obj<'py>(&self, py: Python<'py>) -> Bound<'py, PyAny> {
        match &self.cfg {
            Some(c) => c.bind(py).clone(),
            None => py.None().into_bound(py),
        }
    }

    /// on_starting(server), in the master before any worker exists.
    pub fn on_starting(&self, py: Python<'_>, server: ServerView) -> Result<(), HookFailed> {
        self.call(py, Hook::OnStarting, || {
            PyTuple::new(py, [self.server(py, server)?])
        })
    }

    /// when_ready(server), in the master once every worker serves.
    pub fn when_ready(&self, py: Python<'_>, server: ServerView) -> Result<(), HookFailed> {
        self.call(py, Hook::WhenReady, || {
            PyTuple::new(py, [self.server(py, server)?])
        })
    }

    /// pre_fork(server, worker), in the master.
    pub fn pre_fork(
        &self,
        py: Python<'_>,
        server: ServerView,
        worker: WorkerView,
    ) -> Result<(), HookFailed> {
        self.call(py, Hook::PreFork, || {
            PyTuple::new(py, [self.server(py, server)?, self.worker(py, worker)?])
        })
    }

    /// post_fork(server, worker), in the new worker.
    pub fn post_fork(
        &self,
        py: Python<'_>,
        server: ServerView,
        worker: WorkerView,
    ) -> Result<(), HookFailed> {
        self.call(py, Hook::PostFork, || {
            PyTuple::new(py, [self.server(py, server)?, self.worker(py, worker)?])
        })
    }

    /// post_worker_init(worker), in the worker after the app loaded.
    pub fn post_worker_init(&self, py: Python<'_>, worker: WorkerView) -> Result<(), HookFailed> {
        self.call(py, Hook::PostWorkerInit, || {
            PyTuple::new(py, [self.worker(py, worker)?])
        })
    }

    /// worker_int(worker), in the worker on INT/QUIT.
    pub fn worker_int(&self, py: Python<'_>, worker: WorkerView) {
        let _ = self.call(py, Hook::WorkerInt, || {
            PyTuple::new(py, [self.worker(py, worker)?])
        });
    }

    /// worker_abort(worker), in the worker on SIGABRT (a timeout), before it exits 1.
    pub fn worker_abort(&self, py: Python<'_>, worker: WorkerView) {
        let _ = self.call(py, Hook::WorkerAbort, || {
            PyTuple::new(py, [self.worker(py, worker)?])
        });
    }

    /// worker_exit(server, worker), in the worker as it exits.
    pub fn worker_exit(&self, py: Python<'_>, server: ServerView, worker: WorkerView) {
        let _ = self.call(py, Hook::WorkerExit, || {
            PyTuple::new(py, [self.server(py, server)?, self.worker(py, worker)?])
        });
    }

    /// child_exit(server, worker), in the master after reaping.
    pub fn child_exit(&self, py: Python<'_>, server: ServerView, worker: WorkerView) {
        let _ = self.call(py, Hook::ChildExit, || {
            PyTuple::new(py, [self.server(py, server)?, self.worker(py, worker)?])
        });
    }

    /// on_reload(server), in the master on SIGHUP.
    pub fn on_reload(&self, py: Python<'_>, server: ServerView) {
        let _ = self.call(py, Hook::OnReload, || {
            PyTuple::new(py, [self.server(py, server)?])
        });
    }

    /// pre_exec(server), in the master before a new master is executed (USR2).
    pub fn pre_exec(&self, py: Python<'_>, server: ServerView) {
        let _ = self.call(py, Hook::PreExec, || {
            PyTuple::new(py, [self.server(py, server)?])
        });
    }

    /// nworkers_changed(server, new_value, old_value), in the master (TTIN/TTOU).
    pub fn nworkers_changed(&self, py: Python<'_>, server: ServerView, new: usize, old: usize) {
        let _ = self.call(py, Hook::NworkersChanged, || {
            PyTuple::new(
                py,
                [
                    self.server(py, server)?,
                    new.into_pyobject(py)?.into_any(),
                    old.into_pyobject(py)?.into_any(),
                ],
            )
        });
    }

    /// on_exit(server), in the master as it exits.
    pub fn on_exit(&self, py: Python<'_>, server: ServerView) {
        let _ = self.call(py, Hook::OnExit, || {
            PyTuple::new(py, [self.server(py, server)?])
        });
    }

    /// True when either request hook is defined (so the worker builds `req`).
    pub fn has_request_hooks(&self) -> bool {
        self.is_set(Hook::PreRequest) || self.is_set(Hook::PostRequest)
    }

    /// pre_request(worker, req), in the worker before the app is called.
    pub fn pre_request(&self, py: Python<'_>, worker: WorkerView, req: &Bound<'_, PyAny>) {
        let _ = self.call(py, Hook::PreRequest, || {
            PyTuple::new(py, [self.worker(py, worker)?, req.clone()])
        });
    }

    /// post_request(worker, req, environ, resp), in the worker after the response.
    /// Older 2- and 3-argument hooks get the arguments they take.
    pub fn post_request(
        &self,
        py: Python<'_>,
        worker: WorkerView,
        req: &Bound<'_, PyAny>,
        environ: &Bound<'_, PyAny>,
        resp: &Bound<'_, PyAny>,
    ) {
        let Some(f) = self.get(Hook::PostRequest) else {
            return;
        };
        let arity = *self
            .post_request_arity
            .get_or_init(|| positional_count(py, f.bind(py)).unwrap_or(4));
        let _ = self.call(py, Hook::PostRequest, || {
            let w = self.worker(py, worker)?;
            let all = [w, req.clone(), environ.clone(), resp.clone()];
            PyTuple::new(py, all.into_iter().take(arity.clamp(2, 4)))
        });
    }

    /// A request object for the request hooks.
    pub fn request_object<'py>(
        py: Python<'py>,
        method: &str,
        target: &str,
        path: &str,
        query: &str,
        version: (u8, u8),
        headers: impl Iterator<Item = (&'py str, &'py [u8])>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let list = PyList::empty(py);
        for (name, value) in headers {
            let value: String = value.iter().map(|&b| char::from(b)).collect();
            list.append((name.to_ascii_uppercase(), value))?;
        }
        namespace(
            py,
            &[
                ("method", method.into_pyobject(py)?.into_any()),
                ("uri", target.into_pyobject(py)?.into_any()),
                ("path", path.into_pyobject(py)?.into_any()),
                ("query", query.into_pyobject(py)?.into_any()),
                ("version", version.into_pyobject(py)?.into_any()),
                ("headers", list.into_any()),
            ],
        )
    }

    /// A response object for post_request.
    pub fn response_object<'py>(
        py: Python<'py>,
        status: u16,
        status_line: &str,
        headers: &[(Vec<u8>, Vec<u8>)],
        sent: u64,
    ) -> PyResult<Bound<'py, PyAny>> {
        let list = PyList::empty(py);
        for (name, value) in headers {
            let n: String = name.iter().map(|&b| char::from(b)).collect();
            let v: String = value.iter().map(|&b| char::from(b)).collect();
            list.append((n, v))?;
        }
        namespace(
            py,
            &[
                ("status", status_line.into_pyobject(py)?.into_any()),
                ("status_code", status.into_pyobject(py)?.into_any()),
                ("headers", list.into_any()),
                ("sent", sent.into_pyobject(py)?.into_any()),
                ("response_length", sent.into_pyobject(py)?.into_any()),
            ],
        )
    }
}

fn positional_count(py: Python<'_>, f: &Bound<'_, PyAny>) -> PyResult<usize> {
    let code = py
        .import("inspect")?
        .getattr("signature")?
        .call1((f,))?
        .getattr("parameters")?
        .len()?;
    Ok(code)
}

fn namespace<'py>(
    py: Python<'py>,
    items: &[(&str, Bound<'py, PyAny>)],
) -> PyResult<Bound<'py, PyAny>> {
    let kwargs = PyDict::new(py);
    for (k, v) in items {
        kwargs.set_item(*k, v)?;
    }
    py.import("types")?
        .getattr("SimpleNamespace")?
        .call((), Some(&kwargs))
}

/// `server.log` / `worker.log`: Gunicorn's logger methods onto our error log.
#[pyclass(module = "rgunicorn")]
pub struct HookLog;

#[pymethods]
impl HookLog {
    #[pyo3(signature = (msg, *args))]
    fn debug(&self, msg: &Bound<'_, PyAny>, args: &Bound<'_, PyTuple>) -> PyResult<()> {
        // Like Python's logging, `msg % args` runs only when debug is on.
        crate::log::debug!("{}", format_msg(msg, args)?);
        Ok(())
    }
    #[pyo3(signature = (msg, *args))]
    fn info(&self, msg: &Bound<'_, PyAny>, args: &Bound<'_, PyTuple>) -> PyResult<()> {
        crate::log::info(&format_msg(msg, args)?);
        Ok(())
    }
    #[pyo3(signature = (msg, *args))]
    fn warning(&self, msg: &Bound<'_, PyAny>, args: &Bound<'_, PyTuple>) -> PyResult<()> {
        crate::log::warning(&format_msg(msg, args)?);
        Ok(())
    }
    #[pyo3(signature = (msg, *args))]
    fn error(&self, msg: &Bound<'_, PyAny>, args: &Bound<'_, PyTuple>) -> PyResult<()> {
        crate::log::error(&format_msg(msg, args)?);
        Ok(())
    }
    #[pyo3(signature = (msg, *args))]
    fn critical(&self, msg: &Bound<'_, PyAny>, args: &Bound<'_, PyTuple>) -> PyResult<()> {
        crate::log::critical(&format_msg(msg, args)?);
        Ok(())
    }
    #[pyo3(signature = (msg, *args))]
    fn exception(
        &self,
        py: Python<'_>,
        msg: &Bound<'_, PyAny>,
        args: &Bound<'_, PyTuple>,
    ) -> PyResult<()> {
        let tb: String = py
            .import("traceback")?
            .call_method0("format_exc")?
            .extract()?;
        crate::log::error(&format!("{}\n{}", format_msg(msg, args)?, tb));
        Ok(())
    }
}

/// `msg % args`, as the logging module does.
fn format_msg(msg: &Bound<'_, PyAny>, args: &Bound<'_, PyTuple>) -> PyResult<String> {
    if args.is_empty() {
        return Ok(msg.str()?.to_string());
    }
    let formatted = msg.str()?.call_method1("__mod__", (args,))?;
    Ok(formatted.str()?.to_string())
}
