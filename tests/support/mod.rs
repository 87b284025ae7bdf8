//! Integration-test harness: spawns the real `rgunicorn` binary against the
//! Python apps in `tests/apps/` and talks to it over real sockets.
//!
//! What it guarantees (STYLE §6):
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

pub mod sse;

use std::ffi::OsString;
use std::fs;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::net::{UnixDatagram, UnixStream};
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
/// that never serve). Fails the test if it runs longer than `timeout`.
#[track_caller]
pub fn run_cli(args: &[&str], timeout: Duration) -> Output {
    let dir = TempDir::new("cli");
    let out_path = dir.path().join("stdout");
    let err_path = dir.path().join("stderr");
    let mut cmd = Command::new(BIN);
    cmd.args(args)
        .current_dir(dir.path())
        .stdin(Stdio::null())
        .stdout(fs::File::create(&out_path).expect("create stdout file"))
        .stderr(fs::File::create(&err_path).expect("create stderr file"));
    scrub_env(&mut cmd);
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

        let mut listeners = Vec::new();
        let mut ports = Vec::new();
        for _ in 0..self.listeners {
            let l = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
            // Room for the many-connection tests: std's default backlog is 128.
            // SAFETY: `l` is a valid listening socket we own; listen() again
            // only updates its backlog.
            let rc = unsafe { libc::listen(l.as_raw_fd(), 1024) };
            assert_eq!(rc, 0, "listen(1024): {}", io::Error::last_os_error());
            ports.push(l.local_addr().expect("local_addr").port());
            listeners.push(l);
        }

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

        let mut fds: [RawFd; 8] = [-1; 8];
        for (slot, l) in fds.iter_mut().zip(&listeners) {
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

/// Direct children of `pid`, from `/proc/<pid>/task/<pid>/children`, falling
/// back to scanning `/proc/*/stat` where that file doesn't exist.
pub fn children_of(pid: Pid) -> Vec<Pid> {
    let path = format!("/proc/{pid}/task/{pid}/children");
    let mut pids: Vec<Pid> = match fs::read_to_string(&path) {
        Ok(s) => s
            .split_whitespace()
            .filter_map(|p| p.parse().ok())
            .map(Pid::from_raw)
            .collect(),
        Err(_) => scan_children(pid),
    };
    // A worker that just died but isn't reaped yet is not a worker.
    pids.retain(|p| process_state(*p).is_some_and(|s| s != 'Z'));
    pids.sort();
    pids
}

fn scan_children(parent: Pid) -> Vec<Pid> {
    let Ok(entries) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .map(Pid::from_raw)
        .filter(|p| stat_fields(*p).is_some_and(|(_, ppid)| ppid == parent.as_raw()))
        .collect()
}

/// (state, ppid) from `/proc/<pid>/stat`.
fn stat_fields(pid: Pid) -> Option<(char, i32)> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name is in parentheses and may contain spaces.
    let rest = &stat[stat.rfind(')')? + 2..];
    let mut it = rest.split_whitespace();
    let state = it.next()?.chars().next()?;
    let ppid = it.next()?.parse().ok()?;
    Some((state, ppid))
}

/// The process state letter (R, S, Z, ..), or None if it doesn't exist.
pub fn process_state(pid: Pid) -> Option<char> {
    stat_fields(pid).map(|(s, _)| s)
}

/// True while `pid` exists and isn't a zombie.
pub fn alive(pid: Pid) -> bool {
    process_state(pid).is_some_and(|s| s != 'Z')
}

/// Polls until `pid` is gone (or a zombie); false on timeout.
pub fn wait_gone(pid: Pid, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    while alive(pid) {
        if Instant::now() >= deadline {
            return false;
        }
        thread::sleep(Duration::from_millis(20));
    }
    true
}

/// A `/proc/<pid>/status` field in KiB (e.g. "VmHWM", "VmRSS").
pub fn proc_status_kib(pid: Pid, field: &str) -> Option<u64> {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status.lines().find_map(|l| {
        let rest = l.strip_prefix(field)?.strip_prefix(':')?;
        rest.split_whitespace().next()?.parse().ok()
    })
}

/// Byte streams a [`Conn`] can run over.
pub trait Stream: Read + Write + Send {
    /// Sets the read timeout.
    fn set_timeout(&self, t: Option<Duration>) -> io::Result<()>;
    /// Half-closes the write side.
    fn shutdown_write(&self) -> io::Result<()>;
}

impl Stream for TcpStream {
    fn set_timeout(&self, t: Option<Duration>) -> io::Result<()> {
        self.set_read_timeout(t)
    }
    fn shutdown_write(&self) -> io::Result<()> {
        self.shutdown(std::net::Shutdown::Write)
    }
}

impl Stream for UnixStream {
    fn set_timeout(&self, t: Option<Duration>) -> io::Result<()> {
        self.set_read_timeout(t)
    }
    fn shutdown_write(&self) -> io::Result<()> {
        self.shutdown(std::net::Shutdown::Write)
    }
}

/// One client connection with a read buffer, so several (pipelined)
/// responses can be read from it one at a time.
pub struct Conn {
    stream: Box<dyn Stream>,
    buf: Vec<u8>,
    eof: bool,
    /// The local port (TCP only), for REMOTE_PORT checks.
    pub local_port: Option<u16>,
}

/// A parsed HTTP response.
#[derive(Debug, Clone)]
pub struct Response {
    /// e.g. `HTTP/1.1 200 OK`.
    pub status_line: String,
    /// The status code.
    pub status: u16,
    /// Header fields in wire order, names as sent.
    pub headers: Vec<(String, String)>,
    /// The body after removing chunked framing.
    pub body: Vec<u8>,
    /// Every byte of this response as received (head + framed body).
    pub raw: Vec<u8>,
    /// True if the body was chunked.
    pub chunked: bool,
    /// True if the body was delimited by the server closing.
    pub close_delimited: bool,
}

impl Response {
    /// First header value named `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Every value of header `name`.
    pub fn headers_named(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// The body as UTF-8 (lossy).
    pub fn body_str(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body parsed as JSON; panics with the response if it isn't.
    #[track_caller]
    pub fn json(&self) -> serde_json::Value {
        match serde_json::from_slice(&self.body) {
            Ok(v) => v,
            Err(e) => panic!("response body is not JSON ({e}): {}", self.dump()),
        }
    }

    /// The raw response as text, for assertion messages (truncated).
    pub fn dump(&self) -> String {
        let s = String::from_utf8_lossy(&self.raw);
        tail(&s, 2000).to_string()
    }
}

impl Conn {
    /// Connects to a TCP address (loopback only).
    #[track_caller]
    pub fn tcp(addr: SocketAddr) -> Conn {
        assert!(addr.ip().is_loopback(), "tests only talk to loopback");
        let s = match TcpStream::connect_timeout(&addr, IO_TIMEOUT) {
            Ok(s) => s,
            Err(e) => panic!("connect {addr}: {e}"),
        };
        s.set_read_timeout(Some(IO_TIMEOUT)).expect("read timeout");
        s.set_write_timeout(Some(IO_TIMEOUT))
            .expect("write timeout");
        s.set_nodelay(true).expect("nodelay");
        let local_port = s.local_addr().ok().map(|a| a.port());
        Conn {
            stream: Box::new(s),
            buf: Vec::new(),
            eof: false,
            local_port,
        }
    }

    /// Connects to a unix stream socket.
    #[track_caller]
    pub fn unix(path: &Path) -> Conn {
        let s = match UnixStream::connect(path) {
            Ok(s) => s,
            Err(e) => panic!("connect {}: {e}", path.display()),
        };
        s.set_read_timeout(Some(IO_TIMEOUT)).expect("read timeout");
        s.set_write_timeout(Some(IO_TIMEOUT))
            .expect("write timeout");
        Conn {
            stream: Box::new(s),
            buf: Vec::new(),
            eof: false,
            local_port: None,
        }
    }

    /// Sets the read timeout for subsequent reads.
    pub fn set_read_timeout(&mut self, t: Duration) {
        self.stream.set_timeout(Some(t)).expect("set read timeout");
    }

    /// Writes all of `bytes`; panics on error.
    #[track_caller]
    pub fn send(&mut self, bytes: &[u8]) {
        if let Err(e) = self.stream.write_all(bytes) {
            panic!("write to server: {e}");
        }
    }

    /// Writes all of `bytes`, returning the error instead of panicking.
    pub fn try_send(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.stream.write_all(bytes)
    }

    /// Reads exactly `buf.len()` raw bytes (buffered ones first); panics on
    /// error or EOF.
    #[track_caller]
    pub fn read_exact(&mut self, buf: &mut [u8]) {
        if let Err(e) = self.need(buf.len()) {
            panic!("reading {} bytes: {e}", buf.len());
        }
        buf.copy_from_slice(&self.buf[..buf.len()]);
        self.buf.drain(..buf.len());
    }

    /// The first `n` bytes not yet consumed, reading until they arrive;
    /// they stay buffered for the next read. Panics on error or EOF.
    #[track_caller]
    pub fn peek(&mut self, n: usize) -> Vec<u8> {
        if let Err(e) = self.need(n) {
            panic!("waiting for {n} bytes: {e}");
        }
        self.buf[..n].to_vec()
    }

    /// Half-closes our side (the server sees EOF).
    pub fn shutdown_write(&mut self) {
        self.stream.shutdown_write().expect("shutdown write");
    }

    /// Reads one response to a non-HEAD request; panics on error.
    #[track_caller]
    pub fn read_response(&mut self) -> Response {
        match self.try_read_response(false) {
            Ok(r) => r,
            Err(e) => panic!("reading response: {e}"),
        }
    }

    /// Reads one response to a HEAD request (no body whatever the headers say).
    #[track_caller]
    pub fn read_head_response(&mut self) -> Response {
        match self.try_read_response(true) {
            Ok(r) => r,
            Err(e) => panic!("reading HEAD response: {e}"),
        }
    }

    /// Reads one response. `head_request` suppresses the body (RFC 9112 §6.3).
    /// Errors on timeout, premature EOF or unparseable framing.
    pub fn try_read_response(&mut self, head_request: bool) -> io::Result<Response> {
        let head_end = self.find(b"\r\n\r\n", 0)? + 4;
        let head = std::str::from_utf8(&self.buf[..head_end - 4])
            .map_err(|_| invalid("response head is not UTF-8"))?
            .to_string();
        let mut lines = head.split("\r\n");
        let status_line = lines.next().unwrap_or_default().to_string();
        let mut parts = status_line.splitn(3, ' ');
        let version = parts.next().unwrap_or_default();
        if !(version == "HTTP/1.1" || version == "HTTP/1.0") {
            return Err(invalid(&format!("bad status line {status_line:?}")));
        }
        let status: u16 = parts
            .next()
            .and_then(|c| c.parse().ok())
            .ok_or_else(|| invalid(&format!("bad status code in {status_line:?}")))?;
        let mut headers = Vec::new();
        for line in lines {
            let (n, v) = line
                .split_once(':')
                .ok_or_else(|| invalid(&format!("bad header line {line:?}")))?;
            headers.push((n.to_string(), v.trim().to_string()));
        }
        let mut resp = Response {
            status_line,
            status,
            headers,
            body: Vec::new(),
            raw: Vec::new(),
            chunked: false,
            close_delimited: false,
        };
        let no_body =
            head_request || (100..200).contains(&status) || status == 204 || status == 304;
        let end = if no_body {
            head_end
        } else if resp
            .header("Transfer-Encoding")
            .is_some_and(|te| te.to_ascii_lowercase().ends_with("chunked"))
        {
            resp.chunked = true;
            self.read_chunked(head_end, &mut resp.body)?
        } else if let Some(cl) = resp.header("Content-Length") {
            let len: usize = cl
                .parse()
                .map_err(|_| invalid(&format!("bad Content-Length {cl:?}")))?;
            self.need(head_end + len)?;
            resp.body = self.buf[head_end..head_end + len].to_vec();
            head_end + len
        } else {
            resp.close_delimited = true;
            while self.fill()? {}
            resp.body = self.buf[head_end..].to_vec();
            self.buf.len()
        };
        resp.raw = self.buf.drain(..end).collect();
        Ok(resp)
    }

    /// Reads until the server closes; returns everything not yet consumed.
    pub fn read_to_close(&mut self) -> io::Result<Vec<u8>> {
        while self.fill()? {}
        Ok(std::mem::take(&mut self.buf))
    }

    /// Asserts the server closes the connection within `timeout` without
    /// sending anything more. A reset counts as closed.
    #[track_caller]
    pub fn expect_closed(&mut self, timeout: Duration) {
        self.set_read_timeout(timeout);
        let start = Instant::now();
        match self.read_to_close() {
            Ok(rest) => assert!(
                rest.is_empty(),
                "expected the server to close; got {} more bytes: {:?}",
                rest.len(),
                String::from_utf8_lossy(&rest[..rest.len().min(500)])
            ),
            Err(e) if e.kind() == io::ErrorKind::ConnectionReset => {}
            Err(e) => panic!(
                "expected the server to close within {timeout:?}; after {:?}: {e}",
                start.elapsed()
            ),
        }
    }

    /// Reads more bytes into the buffer; Ok(false) at EOF.
    fn fill(&mut self) -> io::Result<bool> {
        if self.eof {
            return Ok(false);
        }
        let mut chunk = [0u8; 65536];
        loop {
            match self.stream.read(&mut chunk) {
                Ok(0) => {
                    self.eof = true;
                    return Ok(false);
                }
                Ok(n) => {
                    self.buf.extend_from_slice(&chunk[..n]);
                    return Ok(true);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) =>
                {
                    return Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        format!(
                            "read timed out; have {} unconsumed bytes: {:?}",
                            self.buf.len(),
                            String::from_utf8_lossy(&self.buf[..self.buf.len().min(500)])
                        ),
                    ));
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Ensures `buf.len() >= n`; errors at EOF.
    fn need(&mut self, n: usize) -> io::Result<()> {
        while self.buf.len() < n {
            if !self.fill()? {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!(
                        "connection closed after {} of {n} bytes: {:?}",
                        self.buf.len(),
                        String::from_utf8_lossy(&self.buf[..self.buf.len().min(500)])
                    ),
                ));
            }
        }
        Ok(())
    }

    /// Index of `needle` in the buffer at or after `from`, reading as needed.
    fn find(&mut self, needle: &[u8], from: usize) -> io::Result<usize> {
        let mut searched = from;
        loop {
            if let Some(i) = self.buf[searched..]
                .windows(needle.len())
                .position(|w| w == needle)
            {
                return Ok(searched + i);
            }
            searched = self.buf.len().saturating_sub(needle.len() - 1).max(from);
            if !self.fill()? {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!(
                        "connection closed before {:?}; have {:?}",
                        String::from_utf8_lossy(needle),
                        String::from_utf8_lossy(&self.buf[..self.buf.len().min(500)])
                    ),
                ));
            }
        }
    }

    /// Decodes a chunked body starting at `pos`; returns the end offset.
    fn read_chunked(&mut self, mut pos: usize, body: &mut Vec<u8>) -> io::Result<usize> {
        loop {
            let eol = self.find(b"\r\n", pos)?;
            let line = String::from_utf8_lossy(&self.buf[pos..eol]).into_owned();
            let size_text = line.split(';').next().unwrap_or_default().trim();
            let size = usize::from_str_radix(size_text, 16)
                .map_err(|_| invalid(&format!("bad chunk size line {line:?}")))?;
            pos = eol + 2;
            if size == 0 {
                // Trailer section: header lines until an empty line.
                loop {
                    let eol = self.find(b"\r\n", pos)?;
                    let empty = eol == pos;
                    pos = eol + 2;
                    if empty {
                        return Ok(pos);
                    }
                }
            }
            self.need(pos + size + 2)?;
            body.extend_from_slice(&self.buf[pos..pos + size]);
            if &self.buf[pos + size..pos + size + 2] != b"\r\n" {
                return Err(invalid("chunk data not followed by CRLF"));
            }
            pos += size + 2;
        }
    }
}

fn invalid(msg: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.to_string())
}

/// Asserts an IMF-fixdate such as `Sun, 06 Nov 1994 08:49:37 GMT`.
#[track_caller]
pub fn assert_http_date(value: &str) {
    let b = value.as_bytes();
    let digits = |r: std::ops::Range<usize>| b[r].iter().all(u8::is_ascii_digit);
    let ok = b.len() == 29
        && ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"].contains(&&value[..3])
        && &value[3..5] == ", "
        && digits(5..7)
        && b[7] == b' '
        && [
            "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
        ]
        .contains(&&value[8..11])
        && b[11] == b' '
        && digits(12..16)
        && b[16] == b' '
        && digits(17..19)
        && b[19] == b':'
        && digits(20..22)
        && b[22] == b':'
        && digits(23..25)
        && &value[25..] == " GMT";
    assert!(ok, "not an IMF-fixdate: {value:?}");
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
