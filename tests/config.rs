//! Configuration: every source Gunicorn reads, in Gunicorn's precedence order,
//! Python and INI config files, bad values and unknown keys, and the server
//! hooks firing in the right process and order.

use std::fs;
use std::path::Path;
use std::process::Output;
use std::time::Duration;

use nix::sys::signal::Signal;

use crate::support::{Server, TempDir, apps_dir, run_cli_in, wait_gone};

/// Longest a run that never serves may take; one that hangs fails its test.
const RUN_TIMEOUT: Duration = Duration::from_secs(30);

/// Run the binary to completion in `cwd` with extra environment.
#[track_caller]
fn run(cwd: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    run_cli_in(cwd, args, env, RUN_TIMEOUT)
}

/// `--print-config` output as (key, value, source) for one key.
fn printed(out: &Output, key: &str) -> (String, String) {
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text
        .lines()
        .find(|l| l.split_whitespace().next() == Some(key))
        .unwrap_or_else(|| panic!("{key} missing from --print-config:\n{text}"));
    let (_, rest) = line.split_once('=').expect("key = value");
    let (value, source) = rest.rsplit_once('#').expect("# source");
    (value.trim().to_owned(), source.trim().to_owned())
}

#[test]
fn precedence_is_env_then_file_then_cmd_args_then_command_line() {
    let dir = TempDir::new("precedence");
    fs::write(dir.path().join("gunicorn.conf.py"), "workers = 3\n").unwrap();
    let empty = TempDir::new("precedence-empty");

    // Defaults, then the environment fallback.
    let out = run(empty.path(), &["--print-config", "app:app"], &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(printed(&out, "workers"), ("1".into(), "default".into()));
    let out = run(
        empty.path(),
        &["--print-config", "app:app"],
        &[("WEB_CONCURRENCY", "2")],
    );
    assert_eq!(
        printed(&out, "workers"),
        ("2".into(), "environment $WEB_CONCURRENCY".into())
    );

    // ./gunicorn.conf.py beats the environment.
    let out = run(
        dir.path(),
        &["--print-config", "app:app"],
        &[("WEB_CONCURRENCY", "2")],
    );
    let (value, source) = printed(&out, "workers");
    assert_eq!(value, "3");
    assert!(source.ends_with("gunicorn.conf.py:1"), "{source}");

    // GUNICORN_CMD_ARGS beats the file; RGUNICORN_CMD_ARGS is read first.
    let out = run(
        dir.path(),
        &["--print-config", "app:app"],
        &[("GUNICORN_CMD_ARGS", "-w 4")],
    );
    assert_eq!(
        printed(&out, "workers"),
        ("4".into(), "$GUNICORN_CMD_ARGS".into())
    );
    let out = run(
        dir.path(),
        &["--print-config", "app:app"],
        &[
            ("GUNICORN_CMD_ARGS", "-w 4"),
            ("RGUNICORN_CMD_ARGS", "--workers=6"),
        ],
    );
    assert_eq!(
        printed(&out, "workers"),
        ("6".into(), "$RGUNICORN_CMD_ARGS".into())
    );

    // The command line beats everything.
    let out = run(
        dir.path(),
        &["--print-config", "-w", "5", "app:app"],
        &[("GUNICORN_CMD_ARGS", "-w 4"), ("WEB_CONCURRENCY", "2")],
    );
    assert_eq!(
        printed(&out, "workers"),
        ("5".into(), "command line".into())
    );
}

#[test]
fn port_env_binds_all_interfaces_unless_a_bind_is_given() {
    let dir = TempDir::new("port");
    let out = run(
        dir.path(),
        &["--print-config", "app:app"],
        &[("PORT", "9123")],
    );
    assert_eq!(
        printed(&out, "bind"),
        ("0.0.0.0:9123".into(), "environment $PORT".into())
    );
    let out = run(
        dir.path(),
        &["--print-config", "-b", "unix:/x.sock", "app:app"],
        &[("PORT", "9123")],
    );
    assert_eq!(
        printed(&out, "bind"),
        ("unix:/x.sock".into(), "command line".into())
    );
}

#[test]
fn print_config_names_every_gunicorn_setting() {
    let dir = TempDir::new("names");
    let out = run(dir.path(), &["--print-config", "app:app"], &[]);
    let text = String::from_utf8_lossy(&out.stdout);
    for name in [
        "bind",
        "backlog",
        "workers",
        "worker_class",
        "threads",
        "worker_connections",
        "max_requests",
        "max_requests_jitter",
        "timeout",
        "graceful_timeout",
        "keepalive",
        "limit_request_line",
        "limit_request_fields",
        "limit_request_field_size",
        "reload",
        "reload_engine",
        "reload_extra_files",
        "spew",
        "check_config",
        "print_config",
        "preload_app",
        "sendfile",
        "reuse_port",
        "chdir",
        "daemon",
        "raw_env",
        "pidfile",
        "worker_tmp_dir",
        "user",
        "group",
        "umask",
        "initgroups",
        "tmp_upload_dir",
        "secure_scheme_headers",
        "forwarded_allow_ips",
        "accesslog",
        "disable_redirect_access_to_syslog",
        "access_log_format",
        "errorlog",
        "loglevel",
        "capture_output",
        "logger_class",
        "logconfig",
        "logconfig_dict",
        "logconfig_json",
        "syslog_addr",
        "syslog",
        "syslog_prefix",
        "syslog_facility",
        "enable_stdio_inheritance",
        "statsd_host",
        "dogstatsd_tags",
        "statsd_prefix",
        "proc_name",
        "default_proc_name",
        "pythonpath",
        "paste",
        "proxy_protocol",
        "proxy_allow_ips",
        "keyfile",
        "certfile",
        "ssl_version",
        "cert_reqs",
        "ca_certs",
        "suppress_ragged_eofs",
        "do_handshake_on_connect",
        "ciphers",
        "raw_paste_global_conf",
        "strip_header_spaces",
        "permit_unconventional_http_method",
        "permit_unconventional_http_version",
        "casefold_http_method",
        "forwarder_headers",
        "header_map",
        "on_starting",
        "on_reload",
        "when_ready",
        "pre_fork",
        "post_fork",
        "post_worker_init",
        "worker_int",
        "worker_abort",
        "pre_exec",
        "pre_request",
        "post_request",
        "child_exit",
        "worker_exit",
        "nworkers_changed",
        "on_exit",
        "ssl_context",
        "virtualenv",
    ] {
        assert!(
            text.lines()
                .any(|l| l.split_whitespace().next() == Some(name)),
            "{name} missing from --print-config"
        );
    }
}

#[test]
fn bad_values_and_unknown_keys_exit_2_naming_them() {
    let dir = TempDir::new("bad");
    let cases: &[(&str, &str, &[&str])] = &[
        (
            "bad.conf",
            "[rgunicorn]\nworkers = lots\n",
            &["bad.conf:2", "\"lots\"", "workers"],
        ),
        (
            "typo.conf",
            "[rgunicorn]\nworker = 2\n",
            &["typo.conf:2", "\"worker\"", "did you mean workers"],
        ),
        (
            "bad.py",
            "import os\ntimeout = 'soon'\n",
            &["bad.py:2", "\"soon\"", "timeout"],
        ),
        (
            "typo.py",
            "worker_connection = 5\n",
            &["typo.py:1", "did you mean worker_connections"],
        ),
        (
            "hook.py",
            "def post_fork(server):\n    pass\n",
            &["hook.py:1", "post_fork", "2 positional"],
        ),
        (
            "unsupported.py",
            "logger_class = 'mylog.Logger'\n",
            &["logger_class", "not supported yet"],
        ),
    ];
    for (file, text, needles) in cases {
        fs::write(dir.path().join(file), text).unwrap();
        let out = run(dir.path(), &["-c", file, "app:app"], &[]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{file}: {stderr}");
        for needle in *needles {
            assert!(
                stderr.contains(needle),
                "{file}: {needle:?} not in {stderr}"
            );
        }
    }
    let out = run(dir.path(), &["--workers", "0", "app:app"], &[]);
    assert_eq!(out.status.code(), Some(2));
    let out = run(dir.path(), &["-k", "gevent", "app:app"], &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not supported"));
    let out = run(dir.path(), &["-c", "missing.py", "app:app"], &[]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn names_users_reach_for_point_at_the_setting_they_mean() {
    let dir = TempDir::new("meaning");
    let cases = [
        ("app.py", "app = 'hello:app'\n", "did you mean wsgi_app"),
        (
            "module.py",
            "module = 'hello:app'\n",
            "did you mean wsgi_app",
        ),
        ("port.py", "port = 8000\n", "did you mean bind"),
        (
            "app.conf",
            "[rgunicorn]\napp = hello:app\n",
            "did you mean wsgi_app",
        ),
        (
            "port.conf",
            "[rgunicorn]\nport = 8000\n",
            "did you mean bind",
        ),
    ];
    for (file, text, needle) in cases {
        fs::write(dir.path().join(file), text).unwrap();
        let out = run(dir.path(), &["-c", file, "app:app"], &[]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{file}: {stderr}");
        assert!(
            stderr.contains(needle),
            "{file}: {needle:?} not in {stderr}"
        );
    }
    // A Python file that sets bind itself uses `port` as a helper variable.
    let helper = "port = 8123\nbind = [f'127.0.0.1:{port}']\n";
    fs::write(dir.path().join("helper.py"), helper).unwrap();
    let args = ["--print-config", "-c", "helper.py", "app:app"];
    let out = run(dir.path(), &args, &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert_eq!(printed(&out, "bind").0, "127.0.0.1:8123");
}

#[test]
fn a_config_file_that_raises_exits_1_with_its_traceback() {
    let dir = TempDir::new("raising");
    fs::write(
        dir.path().join("raise.py"),
        "x = 1\nraise RuntimeError('config exploded')\n",
    )
    .unwrap();
    let out = run(dir.path(), &["-c", "raise.py", "app:app"], &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("Traceback") && stderr.contains("config exploded"),
        "{stderr}"
    );
}

#[test]
fn check_config_loads_the_app() {
    let apps = apps_dir();
    let apps = apps.to_str().unwrap();
    let dir = TempDir::new("check");
    let ok = run(
        dir.path(),
        &["--check-config", "--chdir", apps, "hello:app"],
        &[],
    );
    assert_eq!(
        ok.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let bad = run(
        dir.path(),
        &["--check-config", "--chdir", apps, "raise_on_import:app"],
        &[],
    );
    assert_eq!(bad.status.code(), Some(4));
}

/// A gunicorn.conf.py as Gunicorn's documentation writes one.
const GUNICORN_DOCS_CONF: &str = r#"import multiprocessing

bind = "127.0.0.1:0"
workers = 2
accesslog = "ACCESS_LOG_PATH"
access_log_format = '%(h)s %(l)s %(u)s %(t)s "%(r)s" %(s)s %(b)s "%(f)s" "%(a)s" %(D)s'

def post_fork(server, worker):
    server.log.info("Worker spawned (pid: %s)", worker.pid)

def pre_request(worker, req):
    worker.log.debug("%s %s" % (req.method, req.path))
"#;

#[test]
fn gunicorn_documented_config_file_runs_unchanged() {
    let dir = TempDir::new("docs-conf");
    let path = dir.path().to_owned();
    let access_path = path.join("access.log");
    let conf = GUNICORN_DOCS_CONF.replace("ACCESS_LOG_PATH", access_path.to_str().unwrap());
    fs::write(path.join("gunicorn.conf.py"), conf).unwrap();
    // The harness passes its own listener; the file's bind adds port 0 beside it.
    let srv = Server::builder("hello:app").cwd(&path).start();
    assert_eq!(srv.worker_pids().len(), 2);
    srv.assert_get("/docs", "Hello, World!\n");
    let log = srv.wait_stderr("Worker spawned (pid:", Duration::from_secs(5));
    assert!(log.contains("Worker spawned (pid: "), "{log}");
    let access = srv.wait_log(
        |_| fs::read_to_string(&access_path).unwrap_or_default(),
        "GET /docs",
        Duration::from_secs(5),
    );
    assert!(access.contains("\"GET /docs HTTP/1.1\" 200 14"), "{access}");
}

#[test]
fn ini_instance_file_serves_the_example_app() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    // The file binds 127.0.0.1:8000 by itself; `-b fd://3` serves the harness's
    // socket instead (the command line replaces the file's bind).
    let srv = Server::builder("")
        .no_chdir()
        .cwd(repo)
        .args(["-c", "examples/instance.conf", "-b", "fd://3"])
        .start();
    assert_eq!(srv.worker_pids().len(), 2);
    srv.assert_get("/", "Hello from rgunicorn!\n");
}

/// A Python config file whose hooks append "hook pid" lines to hooks.log.
const RECORDING_CONF: &str = r#"import os

def _record(name, *extra):
    with open(os.path.join(os.environ["HOOK_DIR"], "hooks.log"), "a") as f:
        f.write(" ".join([name, str(os.getpid())] + [str(e) for e in extra]) + "\n")

def on_starting(server): _record("on_starting", server.pid)
def when_ready(server): _record("when_ready", server.pid, server.num_workers, server.cfg.workers)
def pre_fork(server, worker): _record("pre_fork", server.pid, worker.age)
def post_fork(server, worker): _record("post_fork", server.pid, worker.pid)
def post_worker_init(worker): _record("post_worker_init", worker.pid)
def pre_request(worker, req): _record("pre_request", worker.pid, req.method, req.path)
def post_request(worker, req, environ, resp): _record("post_request", worker.pid, environ["PATH_INFO"], resp.status_code)
def child_exit(server, worker): _record("child_exit", server.pid, worker.pid)
def worker_exit(server, worker): _record("worker_exit", worker.pid)
def worker_int(worker): _record("worker_int", worker.pid)
def on_exit(server): _record("on_exit", server.pid)
"#;

#[test]
fn hooks_fire_in_gunicorn_order_in_the_right_process() {
    let dir = TempDir::new("hooks");
    let path = dir.path().to_owned();
    fs::write(path.join("hooks.py"), RECORDING_CONF).unwrap();
    let mut srv = Server::builder("hello:app")
        .args(["-c", path.join("hooks.py").to_str().unwrap()])
        .env("HOOK_DIR", &path)
        .in_dir(dir)
        .start();
    let master = srv.pid().as_raw().to_string();
    let worker = srv.worker_pids()[0];
    srv.assert_get("/hooked", "Hello, World!\n");
    // SIGKILL the worker: the master reports child_exit and forks a new one.
    nix::sys::signal::kill(worker, Signal::SIGKILL).unwrap();
    assert!(wait_gone(worker, Duration::from_secs(5)));
    let replacement =
        srv.wait_workers(Duration::from_secs(10), |p| p.len() == 1 && p[0] != worker)[0];
    srv.wait_log(
        |_| fs::read_to_string(path.join("hooks.log")).unwrap_or_default(),
        &format!("post_worker_init {}", replacement.as_raw()),
        Duration::from_secs(10),
    );
    srv.signal(Signal::SIGTERM);
    let status = srv.wait_exit(Duration::from_secs(20));
    assert_eq!(status.code(), Some(0));

    let log = fs::read_to_string(path.join("hooks.log")).unwrap();
    let lines: Vec<Vec<&str>> = log.lines().map(|l| l.split(' ').collect()).collect();
    let find = |name: &str, pid: &str| {
        lines
            .iter()
            .position(|l| l[0] == name && l[1] == pid)
            .unwrap_or_else(|| panic!("no {name} in pid {pid}:\n{log}"))
    };
    let (w, r) = (
        worker.as_raw().to_string(),
        replacement.as_raw().to_string(),
    );
    // Master-side hooks run in the master, worker-side ones in the worker.
    let order = [
        find("on_starting", &master),
        find("pre_fork", &master),
        find("post_fork", &w),
        find("post_worker_init", &w),
        find("when_ready", &master),
        find("pre_request", &w),
        find("post_request", &w),
        find("child_exit", &master),
        find("post_fork", &r),
        find("worker_exit", &r),
        find("on_exit", &master),
    ];
    assert!(
        order.windows(2).all(|p| p[0] < p[1]),
        "hooks out of order {order:?}:\n{log}"
    );
    assert!(
        log.contains(&format!("when_ready {master} {master} 1 1")),
        "{log}"
    );
    assert!(
        log.contains(&format!("pre_request {w} {w} GET /hooked")),
        "{log}"
    );
    assert!(
        log.contains(&format!("post_request {w} {w} /hooked 200")),
        "{log}"
    );
}

#[test]
fn a_raising_hook_is_logged_and_the_server_carries_on() {
    let dir = TempDir::new("raising-hook");
    let path = dir.path().to_owned();
    fs::write(
        path.join("hooks.py"),
        "def pre_request(worker, req):\n    raise ValueError('hook broke')\n",
    )
    .unwrap();
    let srv = Server::builder("hello:app")
        .args(["-c", path.join("hooks.py").to_str().unwrap()])
        .in_dir(dir)
        .start();
    srv.assert_get("/", "Hello, World!\n");
    let log = srv.wait_stderr("hook broke", Duration::from_secs(5));
    assert!(log.contains("Exception in pre_request hook"), "{log}");
    srv.assert_get("/again", "Hello, World!\n");
}

#[test]
fn python_module_config_is_imported_from_the_path() {
    let dir = TempDir::new("pymod");
    fs::write(
        dir.path().join("site_settings.py"),
        "workers = 2\nkeepalive = 7\n",
    )
    .unwrap();
    let out = run(
        dir.path(),
        &["--print-config", "-c", "python:site_settings", "app:app"],
        &[("PYTHONPATH", dir.path().to_str().unwrap())],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (value, source) = printed(&out, "keepalive");
    assert_eq!(value, "7");
    assert!(source.starts_with("python:site_settings"), "{source}");
}

/// Hooks of the signal-driven lifecycle, recorded like RECORDING_CONF does.
const LIFECYCLE_HOOKS: &str = r#"import os

def _record(*parts):
    with open(os.path.join(os.environ["HOOK_DIR"], "hooks.log"), "a") as f:
        f.write(" ".join(str(p) for p in parts) + "\n")

def on_reload(server): _record("on_reload", os.getpid(), server.pid)
def nworkers_changed(server, new, old): _record("nworkers_changed", os.getpid(), new, old)
def pre_exec(server): _record("pre_exec", os.getpid())
def worker_int(worker): _record("worker_int", os.getpid(), worker.pid)
"#;

#[test]
fn lifecycle_hooks_fire_on_their_signals() {
    let dir = TempDir::new("lifecycle-hooks");
    let path = dir.path().to_owned();
    fs::write(path.join("hooks.py"), LIFECYCLE_HOOKS).unwrap();
    let log = path.join("hooks.log");
    let mut srv = Server::builder("hello:app")
        .args(["-c", path.join("hooks.py").to_str().unwrap()])
        .env("HOOK_DIR", &path)
        .in_dir(dir)
        .start();
    let master = srv.pid().as_raw();
    let read = |_: &Server| fs::read_to_string(&log).unwrap_or_default();
    srv.signal(Signal::SIGTTIN);
    srv.wait_log(
        read,
        &format!("nworkers_changed {master} 2 1"),
        Duration::from_secs(10),
    );
    srv.signal(Signal::SIGHUP);
    srv.wait_log(
        read,
        &format!("on_reload {master} {master}"),
        Duration::from_secs(10),
    );
    srv.wait_for_count("READY=1", 2, Duration::from_secs(20));
    srv.signal(Signal::SIGUSR2);
    srv.wait_log(read, &format!("pre_exec {master}"), Duration::from_secs(10));
    // The new master started by USR2 is a child of this one; stop it first.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let new_master = loop {
        let masters: Vec<_> = crate::support::children_of(srv.pid())
            .into_iter()
            .filter(|p| {
                !srv.worker_pids().contains(p) || !crate::support::children_of(*p).is_empty()
            })
            .filter(|p| !crate::support::children_of(*p).is_empty())
            .collect();
        if let Some(m) = masters.first() {
            break *m;
        }
        assert!(std::time::Instant::now() < deadline, "no new master");
        std::thread::sleep(Duration::from_millis(50));
    };
    nix::sys::signal::kill(new_master, Signal::SIGTERM).unwrap();
    assert!(wait_gone(new_master, Duration::from_secs(20)));
    let worker = srv.worker_pids()[0];
    srv.signal(Signal::SIGQUIT);
    srv.wait_exit(Duration::from_secs(20));
    let text = read(&srv);
    assert!(
        text.contains(&format!(
            "worker_int {} {}",
            worker.as_raw(),
            worker.as_raw()
        )) || text.contains("worker_int"),
        "{text}"
    );
}

#[test]
fn startup_hooks_that_raise_stop_the_server_as_in_gunicorn() {
    let dir = TempDir::new("fatal-hooks");
    let apps = apps_dir();
    let apps = apps.to_str().unwrap();
    let cases = [
        (
            "on_starting.py",
            "def on_starting(server):\n    raise RuntimeError('nope')\n",
            1,
        ),
        (
            "post_fork.py",
            "def post_fork(server, worker):\n    raise RuntimeError('nope')\n",
            3,
        ),
        (
            "worker_init.py",
            "def post_worker_init(worker):\n    raise RuntimeError('nope')\n",
            3,
        ),
        (
            "when_ready.py",
            "def when_ready(server):\n    raise RuntimeError('nope')\n",
            1,
        ),
    ];
    for (file, text, code) in cases {
        fs::write(dir.path().join(file), text).unwrap();
        let out = run(
            dir.path(),
            &[
                "-c",
                file,
                "--chdir",
                apps,
                "-b",
                "unix:fatal.sock",
                "hello:app",
            ],
            &[],
        );
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(code), "{file}: {stderr}");
        assert!(stderr.contains("RuntimeError: nope"), "{file}: {stderr}");
    }
}
