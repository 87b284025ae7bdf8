//! Process management: dead workers are replaced, TERM drains in-flight
//! requests then exits 0, INT/QUIT stop quickly, stuck workers time out.

use std::io;
use std::thread;
use std::time::{Duration, Instant};

use nix::sys::signal::{self, Signal};
use nix::unistd::Pid;

use crate::support::{Response, Server, alive, wait_gone};

/// Starts `GET /?sleep=SECS&marker=..` on a thread and returns once the app
/// has begun handling it (the marker file exists).
fn start_slow_request(srv: &Server, secs: f64) -> thread::JoinHandle<io::Result<Response>> {
    let marker = srv.dir().join(format!("started-{secs}"));
    let _ = std::fs::remove_file(&marker);
    let mut c = srv.connect();
    c.set_read_timeout(Duration::from_secs((secs as u64).min(10) + 10));
    c.send(
        format!(
            "GET /?sleep={secs}&marker={} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
            marker.display()
        )
        .as_bytes(),
    );
    let handle = thread::spawn(move || c.try_read_response(false));
    let deadline = Instant::now() + Duration::from_secs(10);
    while !marker.exists() {
        assert!(Instant::now() < deadline, "slow request never started");
        thread::sleep(Duration::from_millis(10));
    }
    handle
}

#[track_caller]
fn only_worker(srv: &Server) -> Pid {
    let workers = srv.worker_pids();
    assert_eq!(
        workers.len(),
        1,
        "expected one worker after READY=1: {workers:?}"
    );
    workers[0]
}

#[test]
fn killed_worker_is_replaced() {
    let srv = Server::start("hello:app", &["-w", "2"]);
    let before = srv.worker_pids();
    assert_eq!(before.len(), 2, "workers: {before:?}");
    let victim = before[0];
    signal::kill(victim, Signal::SIGKILL).expect("kill worker");
    let after = srv.wait_workers(Duration::from_secs(15), |pids| {
        pids.len() == 2 && !pids.contains(&victim)
    });
    assert!(
        after.contains(&before[1]),
        "the surviving worker was replaced too: {before:?} -> {after:?}"
    );
    assert!(alive(srv.pid()), "master died");
    for _ in 0..10 {
        srv.assert_get("/", "Hello, World!\n");
    }
}

#[test]
fn sigterm_finishes_in_flight_request_then_exits_0() {
    let mut srv = Server::start("slow:app", &["-w", "1", "--graceful-timeout", "20"]);
    let worker = only_worker(&srv);
    let pending = start_slow_request(&srv, 3.0);
    let sent = Instant::now();
    srv.signal(Signal::SIGTERM);
    srv.wait_for("STOPPING=1", Duration::from_secs(5));

    let r = pending
        .join()
        .expect("client thread")
        .unwrap_or_else(|e| panic!("in-flight request was dropped by SIGTERM: {e}"));
    assert_eq!(r.status_line, "HTTP/1.1 200 OK", "{}", r.dump());
    assert_eq!(r.body_str(), "slept 3\n");

    let status = srv.wait_exit(Duration::from_secs(15));
    assert_eq!(status.code(), Some(0), "exit status {status}");
    assert!(
        sent.elapsed() >= Duration::from_millis(2000),
        "exited before the in-flight request could finish"
    );
    assert!(
        wait_gone(worker, Duration::from_secs(5)),
        "worker {worker} outlived the master"
    );
}

#[test]
fn sigterm_when_idle_exits_0_promptly() {
    let mut srv = Server::start("hello:app", &["-w", "2"]);
    let workers = srv.worker_pids();
    srv.signal(Signal::SIGTERM);
    srv.wait_for("STOPPING=1", Duration::from_secs(5));
    let start = Instant::now();
    let status = srv.wait_exit(Duration::from_secs(10));
    assert_eq!(status.code(), Some(0), "exit status {status}");
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "idle graceful stop took {:?}",
        start.elapsed()
    );
    for w in workers {
        assert!(
            wait_gone(w, Duration::from_secs(5)),
            "worker {w} outlived the master"
        );
    }
}

#[test]
fn graceful_timeout_bounds_shutdown() {
    let mut srv = Server::start("slow:app", &["-w", "1", "--graceful-timeout", "1"]);
    let worker = only_worker(&srv);
    let pending = start_slow_request(&srv, 30.0);
    let start = Instant::now();
    srv.signal(Signal::SIGTERM);
    let status = srv.wait_exit(Duration::from_secs(10));
    let took = start.elapsed();
    assert!(
        took < Duration::from_secs(6),
        "graceful-timeout 1 but shutdown took {took:?}"
    );
    assert_eq!(status.code(), Some(0), "exit status {status}");
    assert!(
        wait_gone(worker, Duration::from_secs(5)),
        "worker {worker} outlived the master"
    );
    // The client sees the connection end without a (complete) response.
    let result = pending.join().expect("client thread");
    assert!(
        result.is_err(),
        "request finished despite the graceful timeout: {result:?}"
    );
}

fn quick_stop(sig: Signal) {
    let mut srv = Server::start("slow:app", &["-w", "2", "--graceful-timeout", "30"]);
    let workers = srv.worker_pids();
    let pending = start_slow_request(&srv, 30.0);
    let start = Instant::now();
    srv.signal(sig);
    let status = srv.wait_exit(Duration::from_secs(10));
    let took = start.elapsed();
    assert!(
        took < Duration::from_secs(5),
        "{sig} stop took {took:?} with a request in flight"
    );
    assert_eq!(status.code(), Some(0), "exit status after {sig}: {status}");
    for w in workers {
        assert!(
            wait_gone(w, Duration::from_secs(5)),
            "worker {w} outlived the master"
        );
    }
    let result = pending.join().expect("client thread");
    assert!(
        result.is_err(),
        "a 30 s request completed during a quick stop: {result:?}"
    );
}

#[test]
fn sigint_is_quick_stop() {
    quick_stop(Signal::SIGINT);
}

#[test]
fn sigquit_is_quick_stop() {
    quick_stop(Signal::SIGQUIT);
}

#[test]
fn stuck_worker_is_killed_after_timeout() {
    let srv = Server::start("slow:app", &["-w", "1", "--timeout", "2"]);
    let worker = only_worker(&srv);
    let pending = start_slow_request(&srv, 30.0);
    let replaced = srv.wait_workers(Duration::from_secs(10), |pids| {
        pids.len() == 1 && pids[0] != worker
    });
    assert_ne!(replaced[0], worker);
    let result = pending.join().expect("client thread");
    assert!(
        result.is_err() || result.as_ref().is_ok_and(|r| r.status >= 500),
        "{result:?}"
    );
    let r = srv.get("/?sleep=0");
    assert_eq!(r.status_line, "HTTP/1.1 200 OK", "{}", r.dump());
    assert_eq!(r.body_str(), "slept 0\n");
}

/// Idle keep-alive connections don't hold a graceful stop for the keep-alive
/// (or graceful) timeout.
#[test]
fn sigterm_closes_idle_keepalive_connections() {
    let mut srv = Server::start(
        "hello:app",
        &["-w", "1", "--keep-alive", "60", "--graceful-timeout", "30"],
    );
    let mut idle = srv.connect();
    idle.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(idle.read_response().status, 200);
    let start = Instant::now();
    srv.signal(Signal::SIGTERM);
    let status = srv.wait_exit(Duration::from_secs(15));
    assert_eq!(status.code(), Some(0), "exit status {status}");
    let took = start.elapsed();
    assert!(
        took < Duration::from_secs(5),
        "graceful stop took {took:?} with one idle connection"
    );
    idle.expect_closed(Duration::from_secs(2));
}
