//! statsD: Gunicorn's metric names, prefix and DogStatsD tags, received by
//! sockets the test owns (UDP and a unix datagram socket).

use std::net::UdpSocket;
use std::os::unix::net::UnixDatagram;
use std::time::{Duration, Instant};

use crate::support::{Server, TempDir};

/// Collect metric lines from `recv` until `done(lines)` or the timeout.
fn collect(
    mut recv: impl FnMut(&mut [u8]) -> std::io::Result<usize>,
    done: impl Fn(&[String]) -> bool,
) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut lines = Vec::new();
    let mut buf = [0u8; 4096];
    while !done(&lines) {
        assert!(Instant::now() < deadline, "statsD lines so far: {lines:#?}");
        if let Ok(n) = recv(&mut buf) {
            let text = String::from_utf8_lossy(&buf[..n]).into_owned();
            lines.extend(text.lines().map(str::to_owned));
        }
    }
    lines
}

fn has(lines: &[String], line: &str) -> bool {
    lines.iter().any(|l| l == line)
}

#[test]
fn statsd_gets_gunicorns_request_metrics_with_prefix_and_tags() {
    let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
    rx.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let host = format!(
        "--statsd-host=127.0.0.1:{}",
        rx.local_addr().unwrap().port()
    );
    let srv = Server::start(
        "ops:app",
        &[
            &host,
            "--statsd-prefix",
            "svc",
            "--dogstatsd-tags",
            "env:test",
        ],
    );
    assert_eq!(srv.get("/").status, 200);
    assert_eq!(srv.get("/status/404").status, 404);
    let lines = collect(
        |b| rx.recv(b),
        |l| {
            has(l, "svc.gunicorn.request.status.404:1|c|@1.0|#env:test")
                && has(l, "svc.gunicorn.request.status.200:1|c|@1.0|#env:test")
                && l.iter().any(|x| x.starts_with("svc.gunicorn.workers:1|g"))
        },
    );
    let requests = lines
        .iter()
        .filter(|l| *l == "svc.gunicorn.requests:1|c|@1.0|#env:test")
        .count();
    assert_eq!(requests, 2, "{lines:#?}");
    let durations: Vec<f64> = lines
        .iter()
        .filter_map(|l| l.strip_prefix("svc.gunicorn.request.duration:"))
        .filter_map(|l| l.strip_suffix("|ms|#env:test")?.parse().ok())
        .collect();
    assert_eq!(durations.len(), 2, "{lines:#?}");
    assert!(durations.iter().all(|ms| *ms >= 0.0 && *ms < 5000.0));
}

#[test]
fn statsd_reaches_a_unix_datagram_socket_and_counts_log_records() {
    let dir = TempDir::new("statsd");
    let path = dir.path().join("statsd.sock");
    let rx = UnixDatagram::bind(&path).unwrap();
    rx.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let srv = Server::start(
        "ops:app",
        &[&format!("--statsd-host=unix:{}", path.display())],
    );
    assert_eq!(srv.get("/log?msg=careful").status, 200);
    collect(
        |b| rx.recv(b),
        |l| has(l, "gunicorn.requests:1|c|@1.0") && has(l, "gunicorn.log.warning:1|c|@1.0"),
    );
}
