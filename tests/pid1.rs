//! rgunicorn as PID 1, the way a container runs it: in its own PID namespace
//! (`unshare --pid --fork --mount-proc`), with no journal and no systemd.
//!
//! As init of the namespace the master inherits every process whose parent
//! dies, so it must reap those orphans too, not only its workers, or they stay
//! zombies for the container's life. `SIGTERM` (what `docker stop` and
//! Kubernetes send) must stay a graceful stop: the in-flight request finishes,
//! then the master exits 0. Logs go to stderr (error log) and stdout
//! (`--access-logfile -`).
//!
//! Needs root (a new PID namespace), as the rest of the suite does; it never
//! skips.

use std::fs;
use std::io;
use std::net::{SocketAddr, TcpListener};
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::net::UnixDatagram;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::support::{BIN, Conn, SCRUBBED_ENV, TempDir, children_of};

/// The app: `/orphan` leaves a grandchild behind, `/slow` is a request still
/// in flight when TERM arrives.
const APP: &str = r#"
import os, time

HERE = os.path.dirname(os.path.abspath(__file__))


def orphan():
    # Double fork: the intermediate child exits at once, so the grandchild's
    # parent is gone and the namespace's init (the master) adopts it. It
    # exits once the test creates the file `release`.
    r, w = os.pipe()
    child = os.fork()
    if child == 0:
        grandchild = os.fork()
        if grandchild == 0:
            os.close(r)
            os.close(w)
            release = os.path.join(HERE, "release")
            deadline = time.monotonic() + 30
            while not os.path.exists(release) and time.monotonic() < deadline:
                time.sleep(0.02)
            os._exit(0)
        os.write(w, str(grandchild).encode())
        os._exit(0)
    os.close(w)
    grandchild = int(os.read(r, 32))
    os.close(r)
    os.waitpid(child, 0)
    return f"orphan {grandchild}\n"


def slow():
    open(os.path.join(HERE, "started"), "w").close()
    time.sleep(1.5)
    return "slow done\n"


def app(environ, start_response):
    path = environ["PATH_INFO"]
    body = (orphan() if path == "/orphan" else slow() if path == "/slow"
            else f"pid {os.getpid()} ppid {os.getppid()}\n").encode()
    start_response("200 OK", [("Content-Type", "text/plain"),
                              ("Content-Length", str(len(body)))])
    return [body]
"#;

/// rgunicorn started as PID 1 of a new PID namespace by `unshare`.
struct Pid1 {
    /// The `unshare` process; it exits with the namespace init's status.
    unshare: Child,
    /// The master as the host sees it (PID 1 inside).
    master: Pid,
    addr: SocketAddr,
    notify: UnixDatagram,
    messages: Vec<String>,
    dir: TempDir,
}

impl Pid1 {
    /// Spawns the server and waits for READY=1.
    fn start(label: &str) -> Pid1 {
        let dir = TempDir::new(label);
        fs::write(dir.path().join("pid1app.py"), APP).expect("write the app");
        let notify_path = dir.path().join("notify.sock");
        let notify = UnixDatagram::bind(&notify_path).expect("bind notify socket");
        notify
            .set_read_timeout(Some(Duration::from_millis(100)))
            .expect("notify timeout");
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("local_addr");

        let mut cmd = Command::new("unshare");
        // --kill-child: if unshare dies (the test process died), the
        // namespace's init gets SIGKILL, which ends the whole namespace.
        cmd.args([
            "--pid",
            "--fork",
            "--mount-proc",
            "--kill-child",
            "/bin/sh",
            "-c",
        ])
        // $$ is 1 inside the namespace, and exec keeps it.
        .arg(r#"export LISTEN_PID=$$ LISTEN_FDS=1; exec "$0" "$@""#)
        .arg(BIN)
        .arg("--chdir")
        .arg(dir.path())
        .args(["--workers", "1", "--graceful-timeout", "10"])
        .args(["--access-logfile", "-", "pid1app:app"])
        .current_dir(dir.path())
        .stdin(Stdio::null())
        .stdout(fs::File::create(dir.path().join("stdout")).expect("stdout file"))
        .stderr(fs::File::create(dir.path().join("stderr")).expect("stderr file"));
        for var in SCRUBBED_ENV {
            cmd.env_remove(var);
        }
        cmd.env("NOTIFY_SOCKET", &notify_path);
        let fd = listener.as_raw_fd();
        // SAFETY: runs between fork and exec in the child: only dup2 and
        // prctl, async-signal-safe, on an fd captured by value.
        unsafe {
            cmd.pre_exec(move || {
                if libc::dup2(fd, 3 as RawFd) < 0 {
                    return Err(io::Error::last_os_error());
                }
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        let unshare = cmd.spawn().expect("spawn unshare (util-linux)");
        drop(listener);
        let mut srv = Pid1 {
            master: Pid::from_raw(0),
            unshare,
            addr,
            notify,
            messages: Vec::new(),
            dir,
        };
        srv.wait_notified("READY=1", Duration::from_secs(30));
        let unshare_pid = Pid::from_raw(srv.unshare.id() as i32);
        srv.master = *children_of(unshare_pid)
            .first()
            .unwrap_or_else(|| panic!("unshare has no child\n{}", srv.logs()));
        assert_eq!(
            ns_pids(srv.master).last(),
            Some(&1),
            "the master is not PID 1 of its namespace"
        );
        srv
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn logs(&self) -> String {
        let read = |name| fs::read_to_string(self.path().join(name)).unwrap_or_default();
        format!("stderr:\n{}\nstdout:\n{}", read("stderr"), read("stdout"))
    }

    #[track_caller]
    fn wait_notified(&mut self, line: &str, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        let mut buf = [0u8; 4096];
        while !self.messages.iter().any(|m| m.lines().any(|l| l == line)) {
            if Instant::now() >= deadline {
                panic!("no {line} within {timeout:?}\n{}", self.logs());
            }
            if let Ok(n) = self.notify.recv(&mut buf) {
                self.messages
                    .push(String::from_utf8_lossy(&buf[..n]).into_owned());
            }
        }
    }

    fn get(&self, path: &str) -> (u16, String) {
        let mut conn = Conn::tcp(self.addr);
        conn.set_read_timeout(Duration::from_secs(20));
        conn.send(
            format!("GET {path} HTTP/1.1\r\nHost: pid1\r\nConnection: close\r\n\r\n").as_bytes(),
        );
        let resp = conn.read_response();
        (resp.status, resp.body_str())
    }

    #[track_caller]
    fn wait_exit(&mut self, timeout: Duration) -> ExitStatus {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.unshare.try_wait().expect("try_wait") {
                return status;
            }
            if Instant::now() >= deadline {
                panic!("PID 1 did not exit within {timeout:?}\n{}", self.logs());
            }
            thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Pid1 {
    fn drop(&mut self) {
        if self.unshare.try_wait().ok().flatten().is_none() {
            // SIGKILL to the namespace's init ends every process in it.
            if self.master.as_raw() > 0 {
                let _ = kill(self.master, Signal::SIGKILL);
            }
            let _ = self.unshare.kill();
            let _ = self.unshare.wait();
        }
        if thread::panicking() {
            eprintln!("{}", self.logs());
        }
    }
}

/// The `NSpid:` line of /proc/PID/status: the pid in each namespace, the
/// host's first.
fn ns_pids(pid: Pid) -> Vec<i32> {
    fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("NSpid:"))
        .map(|v| {
            v.split_whitespace()
                .filter_map(|p| p.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

/// The state letter from /proc/PID/stat, or None once the pid is gone.
fn state(pid: Pid) -> Option<char> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat[stat.rfind(')')? + 2..].chars().next()
}

#[test]
fn pid1_reaps_orphaned_grandchildren() {
    let srv = Pid1::start("pid1_orphan");
    let (status, body) = srv.get("/orphan");
    assert_eq!(status, 200, "{body}");
    let ns_pid: i32 = body
        .trim()
        .strip_prefix("orphan ")
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("unexpected body {body:?}"));

    // The orphan is adopted by PID 1, the master: it shows up among the
    // master's children, beside the worker.
    let deadline = Instant::now() + Duration::from_secs(10);
    let orphan = loop {
        let found = children_of(srv.master)
            .into_iter()
            .find(|p| ns_pids(*p).last() == Some(&ns_pid));
        if let Some(p) = found {
            break p;
        }
        assert!(
            Instant::now() < deadline,
            "grandchild {ns_pid} never became a child of PID 1\n{}",
            srv.logs()
        );
        thread::sleep(Duration::from_millis(20));
    };

    // Let it exit: the master must reap it, or it stays a zombie.
    fs::write(srv.path().join("release"), b"").expect("create release file");
    let deadline = Instant::now() + Duration::from_secs(5);
    while let Some(s) = state(orphan) {
        assert!(
            Instant::now() < deadline,
            "orphan {orphan} (pid {ns_pid} in the namespace) is still there in state {s} \
             5 s after exiting: PID 1 did not reap it\n{}",
            srv.logs()
        );
        thread::sleep(Duration::from_millis(20));
    }
    // The server is unharmed: the worker that created it still serves.
    let (status, body) = srv.get("/");
    assert_eq!(status, 200, "{body}");
    assert!(
        body.ends_with("ppid 1\n"),
        "worker's parent is PID 1: {body}"
    );
}

#[test]
fn pid1_term_drains_in_flight_request_then_exits_0() {
    let mut srv = Pid1::start("pid1_term");
    let addr = srv.addr;
    let slow = thread::spawn(move || {
        let mut conn = Conn::tcp(addr);
        conn.set_read_timeout(Duration::from_secs(20));
        conn.send(b"GET /slow HTTP/1.1\r\nHost: pid1\r\nConnection: close\r\n\r\n");
        let resp = conn.read_response();
        (resp.status, resp.body_str())
    });
    let started: PathBuf = srv.path().join("started");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !started.exists() {
        assert!(
            Instant::now() < deadline,
            "/slow never started\n{}",
            srv.logs()
        );
        thread::sleep(Duration::from_millis(10));
    }

    // What `docker stop` and the kubelet do: SIGTERM to PID 1.
    kill(srv.master, Signal::SIGTERM).expect("SIGTERM to PID 1");
    let (status, body) = slow.join().expect("client thread");
    assert_eq!(
        (status, body.as_str()),
        (200, "slow done\n"),
        "{}",
        srv.logs()
    );
    let exit = srv.wait_exit(Duration::from_secs(15));
    assert_eq!(
        (exit.code(), exit.signal()),
        (Some(0), None),
        "PID 1 exit status\n{}",
        srv.logs()
    );
    srv.wait_notified("STOPPING=1", Duration::from_secs(1));

    // No journal: the error log is on stderr, the access log on stdout.
    let stderr = fs::read_to_string(srv.path().join("stderr")).unwrap_or_default();
    let stdout = fs::read_to_string(srv.path().join("stdout")).unwrap_or_default();
    assert!(stderr.contains("Handling signal: term"), "{stderr}");
    assert!(stdout.contains("\"GET /slow HTTP/1.1\" 200"), "{stdout}");
}
