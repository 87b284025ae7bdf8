//! The master's metrics listener: /metrics from shared memory even while a
//! worker is stopped, counters and the duration histogram against a known set
//! of requests, restart reasons, and `--metrics-bind` on a unix socket.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::net::UnixStream;
use std::thread;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::support::{Server, TempDir};

/// A server whose second inherited socket is its metrics listener (passed
/// with FileDescriptorName=metrics, as a systemd socket unit would).
pub fn with_metrics(app: &str, args: &[&str]) -> Server {
    Server::builder(app)
        .listeners(2)
        .env("LISTEN_FDNAMES", "http:metrics")
        .args(args)
        .start()
}

/// The metrics port of a [`with_metrics`] server.
pub fn metrics_addr(srv: &Server) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], srv.ports()[1]))
}

/// GET `path` on the metrics listener: status, body, and how long it took.
pub fn get(addr: SocketAddr, path: &str) -> (u16, String, Duration) {
    let started = Instant::now();
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    write!(s, "GET {path} HTTP/1.1\r\nHost: m\r\n\r\n").unwrap();
    let mut buf = String::new();
    s.read_to_string(&mut buf).expect("read metrics response");
    (status_of(&buf), body_of(&buf), started.elapsed())
}

fn status_of(response: &str) -> u16 {
    response
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

fn body_of(response: &str) -> String {
    response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default()
}

/// The value of one series, e.g. `rgunicorn_requests_total{method="GET",status="2xx"}`.
pub fn value(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|l| {
        let (name, v) = l.rsplit_once(' ')?;
        (name == series).then(|| v.parse().ok())?
    })
}

/// One HTTP request to the app on a fresh connection; the status.
fn request(srv: &Server, path: &str) -> u16 {
    srv.get(path).status
}

/// The busy worker's pid and heartbeat age, from a scrape.
fn busy_worker(text: &str) -> Option<(i32, f64)> {
    text.lines().find_map(|l| {
        let rest = l.strip_prefix("rgunicorn_worker_state{")?;
        let (labels, v) = rest.rsplit_once("} ")?;
        if v != "1.0" || !labels.ends_with("state=\"busy\"") {
            return None;
        }
        let pid_label = labels.split(',').find(|p| p.starts_with("pid="))?;
        let pid: i32 = pid_label
            .trim_start_matches("pid=")
            .trim_matches('"')
            .parse()
            .ok()?;
        let worker = labels.split(',').next()?;
        let age = value(
            text,
            &format!("rgunicorn_worker_heartbeat_age_seconds{{{worker},pid=\"{pid}\"}}"),
        )?;
        Some((pid, age))
    })
}

#[test]
fn a_scrape_while_a_worker_is_stopped_is_fast_and_shows_it_busy() {
    let srv = with_metrics("ops:app", &["-w", "2", "--timeout", "60"]);
    let addr = srv.addr();
    let slow = thread::spawn(move || {
        let mut s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        write!(
            s,
            "GET /sleep?s=2 HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut buf = String::new();
        let _ = s.read_to_string(&mut buf);
        buf
    });
    let m = metrics_addr(&srv);
    let deadline = Instant::now() + Duration::from_secs(10);
    let (pid, _) = loop {
        if let Some(busy) = busy_worker(&get(m, "/metrics").1) {
            break busy;
        }
        assert!(Instant::now() < deadline, "no worker ever showed busy");
        thread::sleep(Duration::from_millis(20));
    };
    kill(Pid::from_raw(pid), Signal::SIGSTOP).unwrap();
    let (status, first, took) = get(m, "/metrics");
    assert_eq!(status, 200);
    assert!(took < Duration::from_millis(100), "scrape took {took:?}");
    let (_, age_before) = busy_worker(&first).expect("stopped worker shows busy");
    thread::sleep(Duration::from_millis(300));
    let (_, second, took) = get(m, "/metrics");
    assert!(took < Duration::from_millis(100), "scrape took {took:?}");
    let (still, age_after) = busy_worker(&second).expect("still busy");
    assert_eq!(still, pid);
    assert!(
        age_after >= age_before + 0.25,
        "heartbeat age did not grow: {age_before} then {age_after}"
    );
    let (status, _, _) = get(m, "/healthz");
    assert_eq!(status, 200);
    kill(Pid::from_raw(pid), Signal::SIGCONT).unwrap();
    assert!(slow.join().unwrap().starts_with("HTTP/1.1 200 "));
}

#[test]
fn counters_and_histogram_match_the_requests_sent() {
    let srv = with_metrics("ops:app", &["-w", "2"]);
    let sent = [
        ("/", 200, 5),
        ("/status/302", 302, 1),
        ("/status/404", 404, 3),
        ("/status/500", 500, 2),
    ];
    for (path, status, times) in sent {
        for _ in 0..times {
            assert_eq!(request(&srv, path), status, "{path}");
        }
    }
    // A request the parser refuses is answered (400) and counted too.
    let refused = srv.request(b"GET / HTTP/1.1\r\nBad Header\r\n\r\n");
    assert_eq!(refused.status, 400);
    let (_, text, _) = get(metrics_addr(&srv), "/metrics");
    let count = |class: &str| {
        value(
            &text,
            &format!("rgunicorn_requests_total{{method=\"GET\",status=\"{class}\"}}"),
        )
    };
    assert_eq!(count("2xx"), Some(5.0), "{text}");
    assert_eq!(count("3xx"), Some(1.0), "{text}");
    assert_eq!(count("4xx"), Some(4.0), "{text}");
    assert_eq!(count("5xx"), Some(2.0), "{text}");
    assert_eq!(count("1xx"), None, "{text}");
    assert_eq!(
        value(&text, "rgunicorn_request_duration_seconds_count"),
        Some(12.0)
    );
    assert_eq!(
        value(
            &text,
            "rgunicorn_request_duration_seconds_bucket{le=\"+Inf\"}"
        ),
        Some(12.0)
    );
    assert_eq!(value(&text, "rgunicorn_requests_in_flight"), Some(0.0));
    let served: f64 = text
        .lines()
        .filter(|l| l.starts_with("rgunicorn_worker_requests_total{"))
        .filter_map(|l| l.rsplit_once(' ')?.1.parse::<f64>().ok())
        .sum();
    assert_eq!(served, 11.0, "{text}");
    assert_eq!(value(&text, "rgunicorn_workers{state=\"idle\"}"), Some(2.0));
    let queue = format!(
        "rgunicorn_listen_queue_length{{listener=\"http://{}\"}}",
        srv.addr()
    );
    assert_eq!(value(&text, &queue), Some(0.0), "{text}");
}

#[test]
fn max_requests_restarts_are_counted_and_totals_survive_them() {
    let srv = with_metrics("ops:app", &["-w", "1", "--max-requests", "3"]);
    let first = srv.worker_pids();
    for _ in 0..3 {
        assert_eq!(request(&srv, "/"), 200);
    }
    srv.wait_workers(Duration::from_secs(10), |p| p.len() == 1 && p != first);
    let m = metrics_addr(&srv);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (_, text, _) = get(m, "/metrics");
        let restarts = value(
            &text,
            "rgunicorn_worker_restarts_total{reason=\"max_requests\"}",
        );
        if restarts == Some(1.0) {
            assert_eq!(
                value(
                    &text,
                    "rgunicorn_requests_total{method=\"GET\",status=\"2xx\"}"
                ),
                Some(3.0)
            );
            assert_eq!(
                value(&text, "rgunicorn_worker_restarts_total{reason=\"exit\"}"),
                Some(0.0)
            );
            break;
        }
        assert!(Instant::now() < deadline, "restart never counted:\n{text}");
        thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn metrics_bind_serves_on_a_unix_socket() {
    let dir = TempDir::new("mbind");
    let path = dir.path().join("metrics.sock");
    let srv = Server::builder("hello:app")
        .arg(format!("--metrics-bind=unix:{}", path.display()))
        .start();
    assert_eq!(srv.get("/").status, 200);
    let mut s = UnixStream::connect(&path).expect("connect metrics socket");
    s.write_all(b"GET /metrics HTTP/1.0\r\n\r\n").unwrap();
    let mut buf = String::new();
    s.read_to_string(&mut buf).unwrap();
    assert_eq!(status_of(&buf), 200, "{buf}");
    assert!(
        buf.contains("Content-Type: application/openmetrics-text"),
        "{buf}"
    );
    let text = body_of(&buf);
    assert!(text.ends_with("# EOF\n"), "{text}");
    assert_eq!(
        value(
            &text,
            "rgunicorn_requests_total{method=\"GET\",status=\"2xx\"}"
        ),
        Some(1.0)
    );
    assert!(
        text.contains("rgunicorn_worker_pss_bytes{")
            || text.contains("# TYPE rgunicorn_worker_pss_bytes")
    );
}

#[test]
fn the_accept_queue_shows_connections_waiting_for_a_busy_worker() {
    let srv = with_metrics("ops:app", &["-w", "1"]);
    let addr = srv.addr();
    let slow = thread::spawn(move || {
        let mut s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        write!(
            s,
            "GET /sleep?s=1.5 HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut buf = String::new();
        let _ = s.read_to_string(&mut buf);
    });
    let m = metrics_addr(&srv);
    let deadline = Instant::now() + Duration::from_secs(10);
    while busy_worker(&get(m, "/metrics").1).is_none() {
        assert!(Instant::now() < deadline, "the worker never showed busy");
        thread::sleep(Duration::from_millis(20));
    }
    // The only worker is in the app: new connections wait in the kernel.
    let waiting: Vec<TcpStream> = (0..3).map(|_| TcpStream::connect(addr).unwrap()).collect();
    let series = format!("rgunicorn_listen_queue_length{{listener=\"http://{addr}\"}}");
    let (_, text, _) = get(m, "/metrics");
    assert_eq!(value(&text, &series), Some(3.0), "{text}");
    drop(waiting);
    slow.join().unwrap();
}

/// Polls /metrics until `series` has `want`; panics with the text after 15 s.
fn wait_value(m: SocketAddr, series: &str, want: f64) {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let (_, text, _) = get(m, "/metrics");
        if value(&text, series) == Some(want) {
            return;
        }
        assert!(Instant::now() < deadline, "{series} never {want}:\n{text}");
        thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn killed_and_timed_out_workers_count_as_exit_and_timeout() {
    let srv = with_metrics("ops:app", &["-w", "2", "--timeout", "1"]);
    let m = metrics_addr(&srv);
    let victim = srv.worker_pids()[0];
    kill(victim, Signal::SIGKILL).unwrap();
    wait_value(m, "rgunicorn_worker_restarts_total{reason=\"exit\"}", 1.0);
    // A request that outlives --timeout gets its worker aborted.
    let _ = srv.get("/sleep?s=5");
    wait_value(
        m,
        "rgunicorn_worker_restarts_total{reason=\"timeout\"}",
        1.0,
    );
    let (_, text, _) = get(m, "/metrics");
    assert_eq!(
        value(&text, "rgunicorn_worker_restarts_total{reason=\"exit\"}"),
        Some(1.0),
        "{text}"
    );
}
