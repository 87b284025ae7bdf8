//! The master/worker lifecycle: TTIN/TTOU, HUP reload and USR2 upgrade under
//! load, worker timeouts with stack dumps, max_requests, --reload, --daemon
//! with --pid, --user.

use std::fs;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::fs::PermissionsExt;
use std::thread;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::support::{Load, Server, TempDir, alive, apps_dir, children_of, fetch, wait_gone};

#[test]
fn ttin_and_ttou_change_the_worker_count() {
    let srv = Server::start("hello:app", &["-w", "2"]);
    let before = srv.wait_workers(Duration::from_secs(10), |p| p.len() == 2);
    srv.signal(Signal::SIGTTIN);
    let more = srv.wait_workers(Duration::from_secs(10), |p| p.len() == 3);
    assert!(
        before.iter().all(|p| more.contains(p)),
        "TTIN replaced workers: {before:?} -> {more:?}"
    );
    // One signal at a time: the kernel merges a signal sent while one is pending.
    srv.signal(Signal::SIGTTOU);
    srv.wait_workers(Duration::from_secs(10), |p| p.len() == 2);
    srv.signal(Signal::SIGTTOU);
    let fewer = srv.wait_workers(Duration::from_secs(10), |p| p.len() == 1);
    srv.signal(Signal::SIGTTOU);
    srv.wait_stderr("Number of workers: 2 -> 1", Duration::from_secs(5));
    // Never below one worker: the third TTOU changes nothing.
    thread::sleep(Duration::from_millis(500));
    assert_eq!(srv.worker_pids(), fewer, "TTOU went below one worker");
    assert!(more.contains(&fewer[0]));
    srv.assert_get("/", "Hello, World!\n");
}

#[test]
fn hup_reloads_edited_code_without_failing_a_request() {
    hup_reloads_without_failing(&[]);
}

// With request threads, too (issue #11).
#[test]
fn hup_with_threads_fails_no_request() {
    hup_reloads_without_failing(&["--threads", "4"]);
}

fn hup_reloads_without_failing(extra: &[&str]) {
    let dir = TempDir::new("hup");
    let app = dir.path().join("edited.py");
    let write_app = |version: &str| {
        fs::write(
            &app,
            format!(
                "def app(environ, start_response):\n    body = b'{version}\\n'\n    start_response('200 OK', [('Content-Length', str(len(body)))])\n    return [body]\n"
            ),
        )
        .unwrap()
    };
    write_app("v1");
    let path = dir.path().to_owned();
    let mut srv = Server::builder("edited:app")
        .no_chdir()
        .args(["--chdir", path.to_str().unwrap(), "-w", "2"])
        .args(extra.iter().copied())
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .in_dir(dir)
        .start();
    let old = srv.worker_pids();
    assert_eq!(fetch(srv.addr(), "/").as_deref(), Some("v1\n"));

    let load = Load::start(srv.addr(), "/load");
    load.wait_more(1000);
    write_app("v2");
    srv.signal(Signal::SIGHUP);
    srv.wait_for("RELOADING=1", Duration::from_secs(10));
    let new = srv.wait_workers(Duration::from_secs(20), |p| {
        p.len() == 2 && p.iter().all(|x| !old.contains(x))
    });
    load.wait_more(1000);
    let (ok, failed) = load.finish();
    assert!(ok >= 2000, "only {ok} requests");
    assert_eq!(
        failed,
        0,
        "{failed} of {} requests failed across the reload",
        ok + failed
    );
    assert_eq!(fetch(srv.addr(), "/").as_deref(), Some("v2\n"));
    assert!(new.iter().all(|p| !old.contains(p)));
}

#[test]
fn hup_with_a_broken_app_keeps_the_old_workers_serving() {
    let dir = TempDir::new("hup-broken");
    let app = dir.path().join("fragile.py");
    fs::write(
        &app,
        "def app(e, s):\n    s('200 OK', [])\n    return [b'ok\\n']\n",
    )
    .unwrap();
    let path = dir.path().to_owned();
    let srv = Server::builder("fragile:app")
        .no_chdir()
        .args(["--chdir", path.to_str().unwrap()])
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .in_dir(dir)
        .start();
    let old = srv.worker_pids();
    fs::write(&app, "raise ImportError('broken deploy')\n").unwrap();
    srv.signal(Signal::SIGHUP);
    srv.wait_stderr("Reload failed", Duration::from_secs(20));
    assert!(alive(srv.pid()), "master died on a broken reload");
    assert_eq!(srv.worker_pids(), old);
    assert_eq!(fetch(srv.addr(), "/").as_deref(), Some("ok\n"));
}

#[test]
fn usr2_then_term_to_the_old_master_fails_no_request() {
    let pidfile = TempDir::new("usr2-pid");
    let pid_path = pidfile.path().join("app.pid");
    let mut srv = Server::start(
        "hello:app",
        &["-w", "2", "--pid", pid_path.to_str().unwrap()],
    );
    let old_master = srv.pid();
    assert_eq!(
        fs::read_to_string(&pid_path).unwrap().trim(),
        old_master.to_string()
    );
    let load = Load::start(srv.addr(), "/load");
    load.wait_more(300);
    srv.signal(Signal::SIGUSR2);
    // The new master is a child of the old one, with its own workers.
    let deadline = Instant::now() + Duration::from_secs(20);
    let new_master = loop {
        let masters: Vec<Pid> = children_of(old_master)
            .into_iter()
            .filter(|p| children_of(*p).len() == 2)
            .collect();
        if let Some(m) = masters.first() {
            break *m;
        }
        assert!(
            Instant::now() < deadline,
            "no new master with workers appeared"
        );
        thread::sleep(Duration::from_millis(50));
    };
    let upgrade_pid =
        crate::support::wait_file(&pidfile.path().join("app.pid.2"), Duration::from_secs(10));
    assert_eq!(upgrade_pid.trim(), new_master.to_string());
    load.wait_more(300);
    srv.signal(Signal::SIGTERM);
    assert_eq!(srv.wait_exit(Duration::from_secs(30)).code(), Some(0));
    load.wait_more(300);
    let (ok, failed) = load.finish();
    assert_eq!(
        failed,
        0,
        "{failed} of {} requests failed across the upgrade",
        ok + failed
    );
    assert!(alive(new_master));
    // Promoted: the pid file now names the new master.
    let promoted = crate::support::wait_file_eq(
        &pid_path,
        &format!("{new_master}\n"),
        Duration::from_secs(10),
    );
    assert!(promoted, "pid file was not handed to the new master");
    kill(new_master, Signal::SIGTERM).unwrap();
    assert!(wait_gone(new_master, Duration::from_secs(30)));
}

#[test]
fn a_worker_stuck_in_sleep_is_killed_with_its_stack_logged() {
    let srv = Server::start("slow:app", &["--timeout", "2"]);
    let stuck = srv.worker_pids()[0];
    let addr = srv.addr();
    let client = thread::spawn(move || fetch(addr, "/?sleep=30"));
    let log = srv.wait_stderr("WORKER TIMEOUT", Duration::from_secs(15));
    assert!(
        log.contains("GET /?sleep=30"),
        "the stuck request is not named:\n{log}"
    );
    let log = srv.wait_stderr("slow.py", Duration::from_secs(10));
    assert!(
        log.contains("time.sleep") || log.contains("sleep"),
        "no Python stack:\n{log}"
    );
    assert!(wait_gone(stuck, Duration::from_secs(10)));
    srv.wait_workers(Duration::from_secs(10), |p| p.len() == 1 && p[0] != stuck);
    assert_eq!(
        client.join().unwrap(),
        None,
        "the stuck request cannot have succeeded"
    );
    srv.assert_get("/?sleep=0", "slept 0\n");
}

#[test]
fn a_worker_stuck_in_c_holding_the_gil_is_killed_too() {
    let srv = Server::start("spin:app", &["--timeout", "2"]);
    let stuck = srv.worker_pids()[0];
    let addr = srv.addr();
    let client = thread::spawn(move || fetch(addr, "/spin"));
    srv.wait_stderr("WORKER TIMEOUT", Duration::from_secs(15));
    let log = srv.wait_stderr("spin.py", Duration::from_secs(10));
    assert!(log.contains("File "), "no Python stack:\n{log}");
    assert!(
        wait_gone(stuck, Duration::from_secs(10)),
        "the stuck worker survived"
    );
    srv.wait_workers(Duration::from_secs(10), |p| p.len() == 1 && p[0] != stuck);
    assert_eq!(client.join().unwrap(), None);
    assert_eq!(fetch(srv.addr(), "/").as_deref(), Some("fine\n"));
}

#[test]
fn max_requests_restarts_workers_without_resetting_a_client() {
    let srv = Server::start(
        "hello:app",
        &[
            "-w",
            "2",
            "--max-requests",
            "50",
            "--max-requests-jitter",
            "10",
        ],
    );
    let first = srv.worker_pids();
    // Keep-alive clients: every response is read, none may be cut off.
    let addr = srv.addr();
    let clients: Vec<_> = (0..4)
        .map(|_| {
            thread::spawn(move || {
                let mut ok = 0;
                let mut conn = crate::support::Conn::tcp(addr);
                for _ in 0..100 {
                    conn.send(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n");
                    let r = conn.read_response();
                    assert_eq!(r.status, 200);
                    ok += 1;
                    if r.header("Connection") == Some("close") {
                        conn.expect_closed(Duration::from_secs(5));
                        conn = crate::support::Conn::tcp(addr);
                    }
                }
                ok
            })
        })
        .collect();
    let total: usize = clients
        .into_iter()
        .map(|c| c.join().expect("client failed"))
        .sum();
    assert_eq!(total, 400);
    let now = srv.wait_workers(Duration::from_secs(10), |p| p.len() == 2);
    assert!(
        now.iter().any(|p| !first.contains(p)),
        "no worker was restarted: {first:?} {now:?}"
    );
    assert!(
        srv.stderr().contains("Autorestarting worker"),
        "{}",
        srv.stderr()
    );
}

#[test]
fn reload_flag_picks_up_an_edited_module() {
    let dir = TempDir::new("reload");
    let app = dir.path().join("live.py");
    fs::write(
        &app,
        "def app(e, s):\n    s('200 OK', [])\n    return [b'before\\n']\n",
    )
    .unwrap();
    let path = dir.path().to_owned();
    let srv = Server::builder("live:app")
        .no_chdir()
        .args(["--chdir", path.to_str().unwrap(), "--reload"])
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .in_dir(dir)
        .start();
    let old = srv.worker_pids();
    assert_eq!(fetch(srv.addr(), "/").as_deref(), Some("before\n"));
    fs::write(
        &app,
        "def app(e, s):\n    s('200 OK', [])\n    return [b'after\\n']\n",
    )
    .unwrap();
    srv.wait_workers(Duration::from_secs(15), |p| {
        p.len() == 1 && !old.contains(&p[0])
    });
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if fetch(srv.addr(), "/").as_deref() == Some("after\n") {
            break;
        }
        assert!(Instant::now() < deadline, "edited module never served");
        thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn daemon_with_pidfile_detaches_and_serves() {
    let dir = TempDir::new("daemon");
    let pid_path = dir.path().join("d.pid");
    let sock = dir.path().join("d.sock");
    let out = crate::support::run_cli(
        &[
            "--daemon",
            "--pid",
            pid_path.to_str().unwrap(),
            "-b",
            &format!("unix:{}", sock.display()),
            "--chdir",
            apps_dir().to_str().unwrap(),
            "hello:app",
        ],
        Duration::from_secs(20),
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let pid: i32 = crate::support::wait_file(&pid_path, Duration::from_secs(10))
        .trim()
        .parse()
        .unwrap();
    let master = Pid::from_raw(pid);
    let guard = KillOnDrop(master);
    let deadline = Instant::now() + Duration::from_secs(10);
    let body = loop {
        let mut c = match std::os::unix::net::UnixStream::connect(&sock) {
            Ok(c) => c,
            Err(_) if Instant::now() < deadline => {
                thread::sleep(Duration::from_millis(50));
                continue;
            }
            Err(e) => panic!("daemon never listened: {e}"),
        };
        c.write_all(b"GET / HTTP/1.0\r\n\r\n").unwrap();
        let mut buf = String::new();
        c.read_to_string(&mut buf).unwrap();
        if buf.starts_with("HTTP/1.0 200") {
            break buf;
        }
        assert!(Instant::now() < deadline, "daemon did not answer: {buf}");
        thread::sleep(Duration::from_millis(50));
    };
    assert!(body.ends_with("Hello, World!\n"));
    // Detached: a session of its own (setsid, then a second fork, as Gunicorn).
    let sid = nix::unistd::getsid(Some(master)).unwrap();
    assert_ne!(
        sid,
        nix::unistd::getsid(None).unwrap(),
        "the daemon kept our session"
    );
    kill(master, Signal::SIGTERM).unwrap();
    assert!(wait_gone(master, Duration::from_secs(20)));
    assert!(!pid_path.exists(), "pid file left behind");
    drop(guard);
}

struct KillOnDrop(Pid);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if alive(self.0) {
            let _ = kill(self.0, Signal::SIGKILL);
        }
    }
}

#[test]
fn user_nobody_runs_the_workers_as_nobody() {
    assert!(
        nix::unistd::geteuid().is_root(),
        "this test needs root (CI runs as root)"
    );
    let nobody = nix::unistd::User::from_name("nobody")
        .unwrap()
        .expect("user nobody");
    // The app lives in a directory nobody can read whatever the clone's
    // location (a checkout under a 0700 home is unreadable to nobody).
    let dir = TempDir::new("nobody");
    fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
    fs::copy(apps_dir().join("hello.py"), dir.path().join("hello.py")).unwrap();
    let chdir = dir.path().to_str().unwrap().to_owned();
    let srv = Server::builder("hello:app")
        .no_chdir()
        .args(["--chdir", chdir.as_str(), "--user", "nobody", "-w", "2"])
        .in_dir(dir)
        .start();
    for pid in srv.worker_pids() {
        let status = fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
        let uid_line = status.lines().find(|l| l.starts_with("Uid:")).unwrap();
        let uids: Vec<u32> = uid_line
            .split_whitespace()
            .skip(1)
            .map(|u| u.parse().unwrap())
            .collect();
        assert!(
            uids.iter().all(|u| *u == nobody.uid.as_raw()),
            "worker {pid}: {uid_line}"
        );
    }
    let master = fs::read_to_string(format!("/proc/{}/status", srv.pid())).unwrap();
    assert!(
        master.lines().any(|l| l.starts_with("Uid:\t0\t")),
        "master dropped root"
    );
    srv.assert_get("/", "Hello, World!\n");
}

#[test]
fn process_titles_name_master_and_workers() {
    let srv = Server::start("hello:app", &["-n", "titled"]);
    let cmdline = |pid: Pid| {
        fs::read(format!("/proc/{pid}/cmdline"))
            .map(|b| String::from_utf8_lossy(&b).replace('\0', " "))
            .unwrap_or_default()
    };
    assert!(
        cmdline(srv.pid()).starts_with("rgunicorn: master [titled]"),
        "{}",
        cmdline(srv.pid())
    );
    let w = srv.worker_pids()[0];
    assert!(
        cmdline(w).starts_with("rgunicorn: worker [titled]"),
        "{}",
        cmdline(w)
    );
}

#[test]
fn usr1_reopens_the_access_log_after_rotation() {
    let dir = TempDir::new("usr1");
    let log = dir.path().join("access.log");
    let rotated = dir.path().join("access.log.1");
    let srv = Server::start("hello:app", &["--access-logfile", log.to_str().unwrap()]);
    srv.assert_get("/before", "Hello, World!\n");
    srv.wait_log(
        |_| fs::read_to_string(&log).unwrap_or_default(),
        "GET /before",
        Duration::from_secs(5),
    );
    fs::rename(&log, &rotated).unwrap();
    srv.signal(Signal::SIGUSR1);
    srv.wait_stderr("reopening log files", Duration::from_secs(5));
    // The worker reopens on its own signal; retry until the new file appears.
    let deadline = Instant::now() + Duration::from_secs(10);
    while !fs::read_to_string(&log)
        .unwrap_or_default()
        .contains("GET /after")
    {
        assert!(Instant::now() < deadline, "access log was not reopened");
        srv.assert_get("/after", "Hello, World!\n");
        thread::sleep(Duration::from_millis(50));
    }
    assert!(!fs::read_to_string(&rotated).unwrap().contains("GET /after"));
}

#[test]
fn reload_serves_a_broken_save_as_500_and_recovers() {
    let dir = TempDir::new("reload-broken");
    let app = dir.path().join("typo.py");
    fs::write(
        &app,
        "def app(e, s):\n    s('200 OK', [])\n    return [b'good\\n']\n",
    )
    .unwrap();
    let path = dir.path().to_owned();
    let srv = Server::builder("typo:app")
        .no_chdir()
        .args(["--chdir", path.to_str().unwrap(), "--reload"])
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .in_dir(dir)
        .start();
    let master = srv.pid();
    fs::write(&app, "def app(e, s)\n    oops\n").unwrap();
    let raw = |addr| -> Option<String> {
        let mut s = TcpStream::connect(addr).ok()?;
        s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
        s.write_all(b"GET / HTTP/1.0\r\n\r\n").ok()?;
        let mut out = String::new();
        s.read_to_string(&mut out).ok()?;
        Some(out)
    };
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if let Some(r) = raw(srv.addr())
            && r.starts_with("HTTP/1.0 500")
        {
            assert!(r.contains("SyntaxError"), "{r}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the broken save was never reported"
        );
        thread::sleep(Duration::from_millis(50));
    }
    assert!(alive(master), "a broken save ended the server");
    fs::write(
        &app,
        "def app(e, s):\n    s('200 OK', [])\n    return [b'fixed\\n']\n",
    )
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(15);
    while fetch(srv.addr(), "/").as_deref() != Some("fixed\n") {
        assert!(Instant::now() < deadline, "the fix was never served");
        thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn preload_imports_the_app_once_in_the_master() {
    let dir = TempDir::new("preload-once");
    let marker = dir.path().join("imports.log");
    let app = dir.path().join("counted.py");
    fs::write(
        &app,
        format!(
            "import os\nwith open({:?}, 'a') as f:\n    f.write('%d\\n' % os.getpid())\n\ndef app(e, s):\n    s('200 OK', [])\n    return [b'%d\\n' % os.getpid()]\n",
            marker.display().to_string()
        ),
    )
    .unwrap();
    let path = dir.path().to_owned();
    let srv = Server::builder("counted:app")
        .no_chdir()
        .args(["--chdir", path.to_str().unwrap(), "--preload", "-w", "3"])
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .in_dir(dir)
        .start();
    let imports = fs::read_to_string(&marker).unwrap();
    assert_eq!(
        imports,
        format!("{}\n", srv.pid()),
        "imported outside the master: {imports}"
    );
    let body = fetch(srv.addr(), "/").unwrap();
    let worker: i32 = body.trim().parse().unwrap();
    assert!(srv.worker_pids().contains(&Pid::from_raw(worker)));
}

#[test]
fn env_flag_sets_the_apps_environment_and_umask_applies_to_sockets() {
    use std::os::unix::fs::PermissionsExt;
    let dir = TempDir::new("env-umask");
    let sock = dir.path().join("u.sock");
    let srv = Server::builder("osenv:app")
        .listeners(0)
        .args([
            "-e",
            "GREETING=hello world",
            "--env",
            "EMPTY=",
            "-m",
            "0o077",
        ])
        .arg("-b")
        .arg(format!("unix:{}", sock.display()))
        .in_dir(dir)
        .start();
    let mode = fs::metadata(&sock).unwrap().permissions().mode() & 0o777;
    assert_eq!(
        mode, 0o700,
        "umask 077 should leave the socket owner-only, got {mode:o}"
    );
    let mut c = crate::support::Conn::unix(&sock);
    c.send(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    let env = c.read_response().json();
    assert_eq!(env["GREETING"], "hello world");
    assert_eq!(env["EMPTY"], "");
    drop(srv);
}

#[test]
fn hup_with_a_new_bind_keeps_the_old_socket_and_adds_the_new() {
    let dir = TempDir::new("hup-bind");
    let (a, b) = (dir.path().join("a.sock"), dir.path().join("b.sock"));
    let conf = dir.path().join("site.conf");
    let write_conf = |binds: &[&std::path::Path]| {
        let lines: Vec<String> = binds
            .iter()
            .map(|p| format!("bind = unix:{}", p.display()))
            .collect();
        fs::write(
            &conf,
            format!("[rgunicorn]\nwsgi_app = hello:app\n{}\n", lines.join("\n")),
        )
        .unwrap();
    };
    let get = |sock: &std::path::Path| -> String {
        let mut c = crate::support::Conn::unix(sock);
        c.send(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        c.read_response().body_str()
    };
    write_conf(&[&a]);
    let conf_arg = conf.to_str().unwrap().to_owned();
    let mut srv = Server::builder("")
        .listeners(0)
        .args(["-c", &conf_arg])
        .in_dir(dir)
        .start();
    assert_eq!(get(&a), "Hello, World!\n");
    write_conf(&[&a, &b]);
    srv.signal(Signal::SIGHUP);
    srv.wait_for_count("READY=1", 2, Duration::from_secs(20));
    assert_eq!(get(&a), "Hello, World!\n");
    assert_eq!(get(&b), "Hello, World!\n");
    write_conf(&[&b]);
    srv.signal(Signal::SIGHUP);
    srv.wait_for_count("READY=1", 3, Duration::from_secs(20));
    assert_eq!(get(&b), "Hello, World!\n");
    let deadline = Instant::now() + Duration::from_secs(10);
    while a.exists() {
        assert!(
            Instant::now() < deadline,
            "the dropped socket file was not removed"
        );
        thread::sleep(Duration::from_millis(50));
    }
    srv.signal(Signal::SIGTERM);
    assert_eq!(srv.wait_exit(Duration::from_secs(20)).code(), Some(0));
    assert!(!b.exists(), "socket file left after exit");
}
