//! Integration-test harness: spawns the real `rgunicorn` binary against the
//! Python apps in `tests/apps/` and talks to it over real sockets.
//!
//! What it guarantees, so that tests never race each other or the server:
//! - **No free-port race.** The harness binds `127.0.0.1:0` itself and hands
//!   the listener to the server as fd 3 through socket activation
//!   (`sh -c 'export LISTEN_PID=$$ LISTEN_FDS=N; exec "$0" "$@"'`, `exec`
//!   keeps the pid), so it knows the port before the server starts.
//! - **No sleeps or connect polling for readiness.** The harness owns a unix
//!   datagram socket, points `NOTIFY_SOCKET` at it and waits for `READY=1`.
//! - **Hygiene.** Every spawn clears the variables in [`SCRUBBED_ENV`], gets a
//!   fresh temp dir, and is killed (master and workers) on drop.
//! - **Bounded.** Every wait has a deadline; a hung server fails the test.
//!
//! When a test panics while a [`Server`] is alive, the drop prints the
//! server's stderr/stdout and the notify messages, so failures carry the logs.
//!
//! The HTTP client the tests talk through is in `client.rs`; what the harness
//! reads from `/proc` (workers, their state and memory) is in `process.rs`.

mod client;
mod load;
mod process;
pub mod sse;
pub mod tls;
pub mod websocket;

pub use client::{Conn, Response, assert_http_date};
pub use load::{Load, fetch};
pub use process::{alive, children_of, proc_status_kib, wait_gone};

use std::ffi::OsString;
use std::fs;
use std::io;
use std::net::{SocketAddr, TcpListener};
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::net::UnixDatagram;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use nix::sys::signal::{self, Signal};
use nix::unistd::Pid;

/// The binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_rgunicorn");

/// Variables that change rgunicorn's (or Python's) behaviour behind a test's
/// back; removed before every spawn.
pub const SCRUBBED_ENV: &[&str] = &[
    "GUNICORN_CMD_ARGS",
    "RGUNICORN_CMD_ARGS",
    "PORT",
    "WEB_CONCURRENCY",
    "LISTEN_PID",
    "LISTEN_FDS",
    "LISTEN_FDNAMES",
    "NOTIFY_SOCKET",
    "JOURNAL_STREAM",
    "INVOCATION_ID",
    "WATCHDOG_USEC",
    "WATCHDOG_PID",
    "FDSTORE",
    "VIRTUAL_ENV",
    "PYTHONPATH",
    "PYTHONHOME",
];

/// How long a server gets to send `READY=1` before the test fails.
pub const READY_TIMEOUT: Duration = Duration::from_secs(30);
/// Default read/write timeout on client sockets.
pub const IO_TIMEOUT: Duration = Duration::from_secs(10);

/// The python3 whose libpython the binary links (exported by build.rs).
pub fn python() -> &'static str {
    env!("RGUNICORN_PYTHON")
}

/// `<repo>/tests/apps`, the directory holding the WSGI test apps.
pub fn apps_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join("apps")
}

/// A directory under the system temp dir, removed on drop (unless
/// `RGUNICORN_KEEP_TMP` is set, for debugging).
pub struct TempDir {
    path: PathBuf,
}

impl TempDir {
    /// Creates a fresh, uniquely named directory.
    pub fn new(label: &str) -> TempDir {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        // Short names: the notify socket path must fit in sun_path (108 bytes).
        let label: String = label
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
            .take(24)
            .collect();
        let path = std::env::temp_dir().join(format!("rgt-{}-{n}-{label}", std::process::id()));
        let _ = fs::remove_dir_all(&path);
        fs::create_dir_all(&path).expect("create test temp dir");
        TempDir { path }
    }

    /// The directory's path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if std::env::var_os("RGUNICORN_KEEP_TMP").is_none() {
            let _ = fs::remove_dir_all(&self.path);
        }
    }
}

/// Runs the binary to completion with a scrubbed environment (for CLI tests
/// that never serve), in a fresh temp dir. Fails the test if it runs longer
/// than `timeout`.
#[track_caller]
pub fn run_cli(args: &[&str], timeout: Duration) -> Output {
    let dir = TempDir::new("cli");
    run_cli_in(dir.path(), args, &[], timeout)
}

/// [`run_cli`] in `cwd`, with `env` set on top of the scrubbed environment (for
/// runs that read a config file from `cwd` or an environment fallback).
#[track_caller]
pub fn run_cli_in(cwd: &Path, args: &[&str], env: &[(&str, &str)], timeout: Duration) -> Output {
    // Output goes to files, not pipes: a child that fills a pipe nobody reads
    // yet would never exit.
    let capture = TempDir::new("cli-out");
    let out_path = capture.path().join("stdout");
    let err_path = capture.path().join("stderr");
    let mut cmd = Command::new(BIN);
    cmd.args(args)
        .current_dir(cwd)
        .stdin(Stdio::null())
        .stdout(fs::File::create(&out_path).expect("create stdout file"))
        .stderr(fs::File::create(&err_path).expect("create stderr file"));
    scrub_env(&mut cmd);
    for (key, value) in env {
        cmd.env(key, value);
    }
    let mut child = cmd.spawn().expect("spawn rgunicorn");
    let status = wait_child(&mut child, timeout).unwrap_or_else(|| {
        let _ = child.kill();
        let _ = child.wait();
        panic!(
            "rgunicorn {args:?} did not exit within {timeout:?}\nstderr:\n{}",
            fs::read_to_string(&err_path).unwrap_or_default()
        )
    });
    Output {
        status,
        stdout: fs::read(&out_path).unwrap_or_default(),
        stderr: fs::read(&err_path).unwrap_or_default(),
    }
}

fn scrub_env(cmd: &mut Command) {
    for name in SCRUBBED_ENV {
        cmd.env_remove(name);
    }
    // Never write __pycache__ into tests/apps.
    cmd.env("PYTHONDONTWRITEBYTECODE", "1");
}

fn wait_child(child: &mut Child, timeout: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + timeout;
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return Some(status),
            Ok(None) => {}
            Err(e) => panic!("waiting for child: {e}"),
        }
        if Instant::now() >= deadline {
            return None;
        }
        thread::sleep(Duration::from_millis(10));
    }
}

/// Builds a [`Server`]: app spec, extra args, extra env.
pub struct ServerBuilder {
    app: String,
    args: Vec<OsString>,
    env: Vec<(OsString, OsString)>,
    listeners: usize,
    chdir_to_apps: bool,
    label: String,
    dir: Option<TempDir>,
    cwd: Option<PathBuf>,
}

impl ServerBuilder {
    /// Adds one command-line argument (before the app spec).
    pub fn arg(mut self, arg: impl Into<OsString>) -> Self {
        self.args.push(arg.into());
        self
    }

    /// Adds several command-line arguments (before the app spec).
    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<OsString>,
    {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    /// Sets an environment variable for the server.
    pub fn env(mut self, key: impl Into<OsString>, value: impl Into<OsString>) -> Self {
        self.env.push((key.into(), value.into()));
        self
    }

    /// Number of TCP listeners handed over by socket activation (default 1;
    /// 0 means no LISTEN_FDS at all, so the test must pass `--bind`).
    pub fn listeners(mut self, n: usize) -> Self {
        assert!(n <= 8, "at most 8 inherited listeners");
        self.listeners = n;
        self
    }

    /// Don't pass `--chdir <repo>/tests/apps` (the test provides its own
    /// way to find the app, e.g. `--pythonpath`).
    pub fn no_chdir(mut self) -> Self {
        self.chdir_to_apps = false;
        self
    }

    /// Runs the server in `dir` (e.g. one holding a virtualenv or socket
    /// path the test prepared) instead of a fresh temp dir.
    pub fn in_dir(mut self, dir: TempDir) -> Self {
        self.dir = Some(dir);
        self
    }

    /// Runs the server with this working directory (the temp dir still holds
    /// its logs and notify socket).
    pub fn cwd(mut self, path: impl Into<PathBuf>) -> Self {
        self.cwd = Some(path.into());
        self
    }

    /// Spawns the server without waiting for readiness.
    pub fn spawn(mut self) -> Server {
        let dir = self.dir.take().unwrap_or_else(|| TempDir::new(&self.label));
        let notify_path = dir.path().join("notify.sock");
        let notify = UnixDatagram::bind(&notify_path).expect("bind notify socket");

        let (listeners, ports) = bind_listeners(self.listeners);
        let stdout_path = dir.path().join("stdout");
        let stderr_path = dir.path().join("stderr");
        let mut cmd = Command::new("/bin/sh");
        cmd.arg("-c");
        if listeners.is_empty() {
            cmd.arg(r#"exec "$0" "$@""#);
        } else {
            cmd.arg(format!(
                r#"export LISTEN_PID=$$ LISTEN_FDS={}; exec "$0" "$@""#,
                listeners.len()
            ));
        }
        cmd.arg(BIN);
        if self.chdir_to_apps {
            cmd.arg("--chdir").arg(apps_dir());
        }
        cmd.args(&self.args);
        // An empty app spec means the config file names it (wsgi_app).
        if !self.app.is_empty() {
            cmd.arg(&self.app);
        }
        cmd.current_dir(self.cwd.as_deref().unwrap_or(dir.path()))
            .stdin(Stdio::null())
            .stdout(fs::File::create(&stdout_path).expect("create stdout file"))
            .stderr(fs::File::create(&stderr_path).expect("create stderr file"));
        scrub_env(&mut cmd);
        cmd.env("NOTIFY_SOCKET", &notify_path);
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        // Own process group, so drop can kill master and workers in one go.
        cmd.process_group(0);

        pass_listeners(&mut cmd, &listeners);
        let child = cmd.spawn().expect("spawn rgunicorn");
        // The server holds its own copies now. Closing ours means a dead
        // server refuses connections instead of leaving them queued.
        drop(listeners);

        Server {
            child,
            ports,
            notify,
            notify_messages: Vec::new(),
            stdout_path,
            stderr_path,
            exit_status: None,
            started: Instant::now(),
            dir,
        }
    }

    /// Spawns the server and waits for `READY=1`.
    pub fn start(self) -> Server {
        let mut srv = self.spawn();
        srv.wait_ready();
        srv
    }
}

/// Binds `n` listeners on `127.0.0.1:0`, with their ports.
fn bind_listeners(n: usize) -> (Vec<TcpListener>, Vec<u16>) {
    let mut listeners = Vec::new();
    let mut ports = Vec::new();
    for _ in 0..n {
        let l = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        // Room for the many-connection tests: std's default backlog is 128.
        // SAFETY: `l` is a valid listening socket we own; listen() again
        // only updates its backlog.
        let rc = unsafe { libc::listen(l.as_raw_fd(), 1024) };
        assert_eq!(rc, 0, "listen(1024): {}", io::Error::last_os_error());
        ports.push(l.local_addr().expect("local_addr").port());
        listeners.push(l);
    }
    (listeners, ports)
}

/// Makes `listeners` fds 3, 4, .. of the child `cmd` starts, as socket
/// activation hands them over, and ties the child's life to this process.
fn pass_listeners(cmd: &mut Command, listeners: &[TcpListener]) {
    let mut fds: [RawFd; 8] = [-1; 8];
    for (slot, l) in fds.iter_mut().zip(listeners) {
        *slot = l.as_raw_fd();
    }
    let count = listeners.len();
    // SAFETY: the closure runs between fork and exec in the child, so it
    // only makes async-signal-safe syscalls (fcntl, dup2, close, prctl) on
    // a fixed-size array captured by value: no allocation, no locks.
    unsafe {
        cmd.pre_exec(move || {
            // Phase 1: move every listener above the target range so
            // that dup2 into 3.. can't clobber a source fd.
            let mut high: [RawFd; 8] = [-1; 8];
            for i in 0..count {
                let fd = libc::fcntl(fds[i], libc::F_DUPFD, 64);
                if fd < 0 {
                    return Err(io::Error::last_os_error());
                }
                high[i] = fd;
            }
            // Phase 2: dup2 clears FD_CLOEXEC on the new descriptor.
            for (i, fd) in high.iter().enumerate().take(count) {
                if libc::dup2(*fd, 3 + i as RawFd) < 0 {
                    return Err(io::Error::last_os_error());
                }
                libc::close(*fd);
            }
            // Safety net: if the test process dies, the master dies too.
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        });
    }
}

/// A running rgunicorn master, its temp dir, logs and notify socket.
pub struct Server {
    child: Child,
    ports: Vec<u16>,
    notify: UnixDatagram,
    notify_messages: Vec<String>,
    stdout_path: PathBuf,
    stderr_path: PathBuf,
    exit_status: Option<ExitStatus>,
    started: Instant,
    dir: TempDir,
}

impl Server {
    /// A builder for `rgunicorn [args] APP`, with one inherited listener and
    /// `--chdir <repo>/tests/apps`.
    pub fn builder(app: &str) -> ServerBuilder {
        ServerBuilder {
            label: app.split(':').next().unwrap_or("app").to_string(),
            app: app.to_string(),
            args: Vec::new(),
            env: Vec::new(),
            listeners: 1,
            chdir_to_apps: true,
            dir: None,
            cwd: None,
        }
    }

    /// Shorthand: spawn `rgunicorn [args] APP` and wait for `READY=1`.
    pub fn start(app: &str, args: &[&str]) -> Server {
        Server::builder(app).args(args).start()
    }

    /// The master's pid.
    pub fn pid(&self) -> Pid {
        Pid::from_raw(self.child.id() as i32)
    }

    /// The (first) inherited listener's port.
    pub fn port(&self) -> u16 {
        *self
            .ports
            .first()
            .expect("server has no inherited listener")
    }

    /// All inherited listeners' ports, in fd order (3, 4, ..).
    pub fn ports(&self) -> &[u16] {
        &self.ports
    }

    /// `127.0.0.1:<port>`.
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port()))
    }

    /// The per-test temp dir.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Seconds since spawn, for timing assertions.
    pub fn uptime(&self) -> Duration {
        self.started.elapsed()
    }

    /// Waits for `READY=1`; fails the test if the server exits first or
    /// takes longer than [`READY_TIMEOUT`].
    #[track_caller]
    pub fn wait_ready(&mut self) {
        self.wait_for("READY=1", READY_TIMEOUT);
    }

    /// Waits until a notify datagram holds a line equal to `line` (any
    /// datagram received since spawn counts). Panics with the logs on
    /// timeout or if the server exits without sending it.
    #[track_caller]
    pub fn wait_for(&mut self, line: &str, timeout: Duration) {
        if let Err(e) = self.try_wait_for(line, timeout) {
            panic!("{e}");
        }
    }

    /// Waits until at least `n` notify datagrams hold a line equal to `line`
    /// (e.g. a second `READY=1` after a reload).
    #[track_caller]
    pub fn wait_for_count(&mut self, line: &str, n: usize, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        let mut buf = vec![0u8; 4096];
        loop {
            let seen = self
                .notify_messages
                .iter()
                .filter(|m| m.lines().any(|l| l == line))
                .count();
            if seen >= n {
                return;
            }
            let now = Instant::now();
            assert!(
                now < deadline,
                "only {seen} of {n} {line:?} within {timeout:?}; got {:?}",
                self.notify_messages
            );
            let slice = (deadline - now).min(Duration::from_millis(100));
            self.notify
                .set_read_timeout(Some(slice))
                .expect("set notify timeout");
            if let Ok(len) = self.notify.recv(&mut buf) {
                let msg = String::from_utf8_lossy(&buf[..len]).into_owned();
                self.notify_messages.push(msg);
            }
        }
    }

    /// Like [`Server::wait_for`] but returns an error instead of panicking.
    pub fn try_wait_for(&mut self, line: &str, timeout: Duration) -> Result<(), String> {
        let deadline = Instant::now() + timeout;
        let mut buf = vec![0u8; 4096];
        loop {
            if self.notified(line) {
                return Ok(());
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(format!(
                    "no {line:?} from NOTIFY_SOCKET within {timeout:?}; got {:?}",
                    self.notify_messages
                ));
            }
            // Short slices so an early exit is noticed promptly.
            let slice = (deadline - now).min(Duration::from_millis(100));
            self.notify
                .set_read_timeout(Some(slice))
                .expect("set notify timeout");
            match self.notify.recv(&mut buf) {
                Ok(n) => {
                    let msg = String::from_utf8_lossy(&buf[..n]).into_owned();
                    self.notify_messages.push(msg);
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) =>
                {
                    if let Some(status) = self.try_exit_status() {
                        // Drain anything sent just before exiting.
                        self.notify.set_nonblocking(true).expect("nonblocking");
                        while let Ok(n) = self.notify.recv(&mut buf) {
                            let msg = String::from_utf8_lossy(&buf[..n]).into_owned();
                            self.notify_messages.push(msg);
                        }
                        self.notify.set_nonblocking(false).expect("blocking");
                        if self.notified(line) {
                            return Ok(());
                        }
                        return Err(format!(
                            "server exited ({status}) before sending {line:?}; got {:?}",
                            self.notify_messages
                        ));
                    }
                }
                Err(e) => return Err(format!("notify recv: {e}")),
            }
        }
    }

    /// True once a received datagram holds the line `line`.
    pub fn notified(&self, line: &str) -> bool {
        self.notify_messages
            .iter()
            .any(|m| m.lines().any(|l| l == line))
    }

    /// Every datagram received so far.
    pub fn notify_messages(&self) -> &[String] {
        &self.notify_messages
    }

    /// Worker pids: the master's direct children, sorted.
    pub fn worker_pids(&self) -> Vec<Pid> {
        children_of(self.pid())
    }

    /// Polls (every 20 ms, bounded) until `pred(worker_pids)` holds; returns
    /// the pids that satisfied it.
    #[track_caller]
    pub fn wait_workers(&self, timeout: Duration, pred: impl Fn(&[Pid]) -> bool) -> Vec<Pid> {
        let deadline = Instant::now() + timeout;
        loop {
            let pids = self.worker_pids();
            if pred(&pids) {
                return pids;
            }
            if Instant::now() >= deadline {
                panic!(
                    "worker pids never satisfied the condition within {timeout:?}; last {pids:?}"
                );
            }
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// Sends `sig` to the master.
    #[track_caller]
    pub fn signal(&self, sig: Signal) {
        signal::kill(self.pid(), sig).expect("signal master");
    }

    /// The exit status if the master has exited (reaps it).
    pub fn try_exit_status(&mut self) -> Option<ExitStatus> {
        if self.exit_status.is_none() {
            self.exit_status = self.child.try_wait().expect("try_wait");
        }
        self.exit_status
    }

    /// Waits for the master to exit; fails the test after `timeout`.
    #[track_caller]
    pub fn wait_exit(&mut self, timeout: Duration) -> ExitStatus {
        if let Some(status) = self.exit_status {
            return status;
        }
        match wait_child(&mut self.child, timeout) {
            Some(status) => {
                self.exit_status = Some(status);
                status
            }
            None => panic!("server did not exit within {timeout:?}"),
        }
    }

    /// The server's stderr so far (the error log by default).
    pub fn stderr(&self) -> String {
        fs::read_to_string(&self.stderr_path).unwrap_or_default()
    }

    /// The server's stdout so far (`--access-logfile -` goes here).
    pub fn stdout(&self) -> String {
        fs::read_to_string(&self.stdout_path).unwrap_or_default()
    }

    /// Waits (bounded, polling every 20 ms) until `read()` contains
    /// `needle`; returns the text. Log lines may land just after the
    /// response does, so tests wait for them rather than read once.
    #[track_caller]
    pub fn wait_log(
        &self,
        read: impl Fn(&Server) -> String,
        needle: &str,
        timeout: Duration,
    ) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            let text = read(self);
            if text.contains(needle) {
                return text;
            }
            if Instant::now() >= deadline {
                panic!("log never contained {needle:?} within {timeout:?}; log was:\n{text}");
            }
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits for `needle` in stderr.
    #[track_caller]
    pub fn wait_stderr(&self, needle: &str, timeout: Duration) -> String {
        self.wait_log(Server::stderr, needle, timeout)
    }

    /// A fresh TCP connection to the (first) listener.
    #[track_caller]
    pub fn connect(&self) -> Conn {
        Conn::tcp(self.addr())
    }

    /// Connects, writes `raw`, reads one response (or until close).
    #[track_caller]
    pub fn request(&self, raw: &[u8]) -> Response {
        let mut conn = self.connect();
        conn.send(raw);
        conn.read_response()
    }

    /// `GET <path> HTTP/1.1` with `Connection: close`.
    #[track_caller]
    pub fn get(&self, path: &str) -> Response {
        self.request(
            format!(
                "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nConnection: close\r\n\r\n",
                self.port()
            )
            .as_bytes(),
        )
    }

    /// GET `path` and assert `200` with `body`.
    #[track_caller]
    pub fn assert_get(&self, path: &str, body: &str) {
        let r = self.get(path);
        assert_eq!(r.status_line, "HTTP/1.1 200 OK", "GET {path}: {}", r.dump());
        assert_eq!(r.body_str(), body, "GET {path}");
    }

    /// GET `path` and assert the status code.
    #[track_caller]
    pub fn assert_get_status(&self, path: &str, status: u16) -> Response {
        let r = self.get(path);
        assert_eq!(r.status, status, "GET {path}: {}", r.dump());
        r
    }

    fn kill_all(&mut self) {
        if self.try_exit_status().is_some() {
            // Workers are reaped by their master; any orphan would still be
            // in our process group.
            let _ = signal::killpg(self.pid(), Signal::SIGKILL);
            return;
        }
        let workers = self.worker_pids();
        let _ = signal::killpg(self.pid(), Signal::SIGKILL);
        for w in workers {
            let _ = signal::kill(w, Signal::SIGKILL);
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill_all();
        if thread::panicking() {
            eprintln!(
                "---- rgunicorn (pid {}) notify messages ----",
                self.child.id()
            );
            eprintln!("{:?}", self.notify_messages);
            eprintln!(
                "---- rgunicorn stderr ----\n{}",
                tail(&self.stderr(), 12_000)
            );
            eprintln!(
                "---- rgunicorn stdout ----\n{}",
                tail(&self.stdout(), 4_000)
            );
            if let Some(status) = self.exit_status {
                eprintln!("---- exit: {status} (signal {:?}) ----", status.signal());
            }
        }
    }
}

fn tail(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut start = s.len() - max;
    while !s.is_char_boundary(start) {
        start += 1;
    }
    &s[start..]
}

/// `server_test!(name, "module:app", [args..], |srv| { .. })` — a `#[test]`
/// with a fresh server that is ready before the body runs and killed after.
#[macro_export]
macro_rules! server_test {
    ($name:ident, $app:expr, [$($arg:expr),* $(,)?], |$srv:ident| $body:block) => {
        #[test]
        fn $name() {
            #[allow(unused_mut)]
            let mut $srv = $crate::support::Server::start($app, &[$($arg),*]);
            $body
        }
    };
    ($name:ident, $app:expr, |$srv:ident| $body:block) => {
        $crate::server_test!($name, $app, [], |$srv| $body);
    };
}

/// Waits until `path` exists with non-empty contents, and returns them.
pub fn wait_file(path: &Path, timeout: Duration) -> String {
    let deadline = Instant::now() + timeout;
    loop {
        if let Ok(text) = fs::read_to_string(path)
            && !text.is_empty()
        {
            return text;
        }
        assert!(
            Instant::now() < deadline,
            "{} never appeared",
            path.display()
        );
        thread::sleep(Duration::from_millis(20));
    }
}

/// Waits until `path` holds exactly `expected`; false on timeout.
pub fn wait_file_eq(path: &Path, expected: &str, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if fs::read_to_string(path).is_ok_and(|t| t == expected) {
            return true;
        }
        thread::sleep(Duration::from_millis(20));
    }
    false
}

/// Deterministic pseudo-random bytes (xorshift64 from `seed`): a lost,
/// duplicated or misplaced byte changes any comparison or checksum.
pub fn pseudo_random(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed | 1;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 56) as u8
        })
        .collect()
}

/// Ok when the embedded interpreter imports `module`, else its error.
pub fn python_imports(module: &str) -> Result<(), String> {
    let out = Command::new(python())
        .args(["-c", &format!("import {module}")])
        .env_remove("PYTHONPATH")
        .env_remove("PYTHONHOME")
        .env_remove("VIRTUAL_ENV")
        .output()
        .unwrap_or_else(|e| panic!("run {}: {e}", python()));
    if out.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

/// Fails (never skips) when `module` is missing, naming the fix.
#[track_caller]
pub fn require_module(module: &str) {
    if let Err(e) = python_imports(module) {
        panic!(
            "{module} is not importable by {} (the python3 rgunicorn embeds); \
             run `sh .ci/install-deps` to install the test dependencies:\n{e}",
            python()
        );
    }
}
