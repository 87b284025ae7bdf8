//! `--threads N` (Gunicorn's gthread): requests run on N Python threads while
//! the Rust event loop keeps every socket. Concurrency for apps that wait,
//! order on pipelined connections, slow clients, graceful stop, and a thread
//! stuck in C holding the GIL.

use std::thread;
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;

use crate::support::{Server, TempDir, wait_file};

/// Run `n` requests for `path` at once; returns how long the slowest took.
fn concurrent(srv: &Server, n: usize, path: &str) -> Duration {
    let addr = srv.addr();
    let start = Instant::now();
    let handles: Vec<_> = (0..n)
        .map(|_| {
            let path = path.to_owned();
            thread::spawn(move || {
                let mut c = crate::support::Conn::tcp(addr);
                c.set_read_timeout(Duration::from_secs(20));
                c.send(
                    format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                        .as_bytes(),
                );
                c.read_response()
            })
        })
        .collect();
    for h in handles {
        let r = h.join().expect("client thread");
        assert_eq!(r.status, 200, "{}", r.dump());
    }
    start.elapsed()
}

#[test]
fn threads_serve_waiting_requests_in_parallel() {
    let srv = Server::start("slow:app", &["-w", "1", "--threads", "4"]);
    let took = concurrent(&srv, 8, "/?sleep=1");
    assert!(
        took < Duration::from_millis(2500),
        "8 requests on 4 threads took {took:?}"
    );
    assert!(
        took >= Duration::from_millis(1900),
        "{took:?}: fewer than 2 rounds?"
    );
}

#[test]
fn one_thread_serves_one_request_at_a_time() {
    let srv = Server::start("slow:app", &["-w", "1", "--threads", "1"]);
    let took = concurrent(&srv, 4, "/?sleep=0.5");
    assert!(
        took >= Duration::from_millis(1900),
        "4 x 0.5 s on one thread took {took:?}"
    );
}

#[test]
fn environ_says_multithread() {
    let srv = Server::start("echo_environ:app", &["--threads", "2"]);
    assert_eq!(srv.get("/").json()["wsgi.multithread"], "True");
    let log = srv.stderr();
    assert!(log.contains("running as gthread"), "{log}");
}

/// A client that reads its big response a byte at a time holds no thread:
/// the others keep answering at once.
#[test]
fn a_slow_reader_does_not_hold_a_thread() {
    let srv = Server::start("big_body:app", &["-w", "1", "--threads", "2"]);
    let mut stalled = srv.connect();
    stalled.send(b"GET /?size=33554432 HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(stalled.peek(16), b"HTTP/1.1 200 OK\r");
    for i in 0..6 {
        let start = Instant::now();
        let r = srv.get("/?size=10");
        assert_eq!(r.body, b"zzzzzzzzzz");
        let took = start.elapsed();
        assert!(took < Duration::from_secs(1), "request {i} took {took:?}");
    }
    stalled.set_read_timeout(Duration::from_secs(20));
    assert_eq!(stalled.read_response().body.len(), 33_554_432);
}

/// Pipelined requests come back in order on their connection, while another
/// connection is served in parallel.
#[test]
fn pipelined_requests_keep_their_order() {
    let srv = Server::start("slow:app", &["-w", "1", "--threads", "4"]);
    let addr = srv.addr();
    let other = thread::spawn(move || {
        let start = Instant::now();
        let mut c = crate::support::Conn::tcp(addr);
        c.send(b"GET /?sleep=0.6 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        assert_eq!(c.read_response().body_str(), "slept 0.6\n");
        start.elapsed()
    });
    let start = Instant::now();
    let mut c = srv.connect();
    c.send(
        b"GET /?sleep=0.5 HTTP/1.1\r\nHost: x\r\n\r\n\
          GET /?sleep=0.1 HTTP/1.1\r\nHost: x\r\n\r\n\
          GET /?sleep=0.2 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    for want in ["slept 0.5\n", "slept 0.1\n", "slept 0.2\n"] {
        assert_eq!(c.read_response().body_str(), want);
    }
    let ours = start.elapsed();
    let theirs = other.join().unwrap();
    // Serially that would be 1.4 s.
    assert!(
        ours.max(theirs) < Duration::from_millis(1300),
        "{ours:?} / {theirs:?}"
    );
}

/// TERM with four requests in flight on four threads: each completes, then
/// the server exits 0.
#[test]
fn term_drains_every_threads_request() {
    let dir = TempDir::new("threads-term");
    let markers: Vec<_> = (0..4).map(|i| dir.path().join(format!("m{i}"))).collect();
    let mut srv = Server::builder("slow:app")
        .args(["-w", "1", "--threads", "4"])
        .in_dir(dir)
        .start();
    let addr = srv.addr();
    let clients: Vec<_> = markers
        .iter()
        .map(|m| {
            let path = format!("/?sleep=1&marker={}", m.display());
            thread::spawn(move || {
                let mut c = crate::support::Conn::tcp(addr);
                c.set_read_timeout(Duration::from_secs(20));
                c.send(format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes());
                c.read_response()
            })
        })
        .collect();
    for m in &markers {
        wait_file(m, Duration::from_secs(10));
    }
    srv.signal(Signal::SIGTERM);
    for c in clients {
        let r = c.join().unwrap();
        assert_eq!(r.status, 200, "{}", r.dump());
        assert_eq!(r.body_str(), "slept 1\n");
    }
    let status = srv.wait_exit(Duration::from_secs(20));
    assert_eq!(status.code(), Some(0), "{}", srv.stderr());
}

/// A thread stuck in C holding the GIL stops the loop's heartbeat: the
/// master's timeout dumps the stacks and replaces the worker, and the other
/// threads' clients get an answer or a closed connection, never a hang.
#[test]
fn a_thread_stuck_holding_the_gil_is_caught_by_the_timeout() {
    let srv = Server::start("spin:app", &["-w", "1", "--threads", "2", "--timeout", "2"]);
    let old = srv.worker_pids();
    let addr = srv.addr();
    let spinner = thread::spawn(move || {
        let mut c = crate::support::Conn::tcp(addr);
        c.set_read_timeout(Duration::from_secs(30));
        c.send(b"GET /spin HTTP/1.1\r\nHost: x\r\n\r\n");
        c.try_read_response(false)
    });
    srv.wait_stderr("WORKER TIMEOUT", Duration::from_secs(20));
    // Every thread's stack, the stuck one's in the app.
    let stderr = srv.wait_stderr("spin.py", Duration::from_secs(10));
    assert!(stderr.contains("File "), "no Python stack:\n{stderr}");
    // The spinning client is not left hanging.
    let r = spinner.join().unwrap();
    assert!(r.map(|r| r.status == 500).unwrap_or(true));
    srv.wait_workers(Duration::from_secs(20), |p| {
        p.len() == 1 && p != old.as_slice()
    });
    assert_eq!(srv.get("/").body_str(), "fine\n");
}
