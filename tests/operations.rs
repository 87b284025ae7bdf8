//! Readiness through a HUP and a shutdown delay, and memory-based recycling
//! under load.

use std::net::SocketAddr;
use std::thread;
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;

use crate::metrics::{get, metrics_addr, value, with_metrics};
use crate::support::{Load, Server};

/// Polls `/readyz` until it answers `status`; panics after `timeout`.
#[track_caller]
fn wait_readyz(m: SocketAddr, status: u16, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    loop {
        let (got, body, _) = get(m, "/readyz");
        if got == status {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "/readyz stayed {got} ({body:?}), wanted {status}"
        );
        thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn readyz_is_not_ready_during_a_hup_until_the_new_workers_serve() {
    let mut srv = Server::builder("ops:app")
        .listeners(2)
        .env("LISTEN_FDNAMES", "http:metrics")
        .env("OPS_BOOT_SLEEP", "1")
        .args(["-w", "2"])
        .start();
    let m = metrics_addr(&srv);
    assert_eq!(get(m, "/readyz").0, 200);
    srv.signal(Signal::SIGHUP);
    srv.wait_for("RELOADING=1", Duration::from_secs(5));
    // The new workers take a second to import: not ready meanwhile, while
    // the old ones still answer requests.
    wait_readyz(m, 503, Duration::from_millis(500));
    assert_eq!(srv.get("/").status, 200);
    srv.wait_for_count("READY=1", 2, Duration::from_secs(20));
    wait_readyz(m, 200, Duration::from_secs(2));
}

#[test]
fn readyz_waits_for_ready_min_workers() {
    let srv = with_metrics("hello:app", &["-w", "2", "--ready-min-workers", "1"]);
    let m = metrics_addr(&srv);
    assert_eq!(get(m, "/readyz").0, 200);
    let (_, text, _) = get(m, "/metrics");
    assert_eq!(value(&text, "rgunicorn_ready"), Some(1.0));
}

#[test]
fn shutdown_delay_serves_on_while_readyz_says_not_ready() {
    let mut srv = with_metrics("hello:app", &["--shutdown-delay", "2"]);
    let m = metrics_addr(&srv);
    assert_eq!(get(m, "/readyz").0, 200);
    let termed = Instant::now();
    srv.signal(Signal::SIGTERM);
    srv.wait_for("STOPPING=1", Duration::from_secs(5));
    wait_readyz(m, 503, Duration::from_millis(500));
    // Still serving: the listeners stay open for the delay.
    assert_eq!(srv.get("/").status, 200);
    assert_eq!(get(m, "/healthz").0, 200);
    let status = srv.wait_exit(Duration::from_secs(15));
    assert!(status.success(), "{status}");
    let took = termed.elapsed();
    assert!(took >= Duration::from_secs(2), "stopped after {took:?}");
    assert!(srv.stderr().contains("serving 2s more"), "{}", srv.stderr());
}

#[test]
fn a_worker_past_max_worker_memory_is_retired_without_failing_a_request() {
    let srv = with_metrics("ops:app", &["-w", "1", "--max-worker-memory", "48"]);
    let first = srv.worker_pids();
    let load = Load::start(srv.addr(), "/");
    assert_eq!(srv.get("/grow?mb=64").status, 200);
    srv.wait_workers(Duration::from_secs(15), |p| {
        p.len() == 1 && p != first.as_slice()
    });
    srv.wait_stderr("over max_worker_memory 48 MiB", Duration::from_secs(5));
    // Serve a little with the new worker, then count.
    thread::sleep(Duration::from_millis(300));
    let (ok, failed) = load.finish();
    assert_eq!(failed, 0, "{ok} ok, {failed} failed");
    assert!(ok > 0);
    let (_, text, _) = get(metrics_addr(&srv), "/metrics");
    assert_eq!(
        value(&text, "rgunicorn_worker_restarts_total{reason=\"memory\"}"),
        Some(1.0),
        "{text}"
    );
    assert!(
        srv.stderr()
            .contains(&format!("Worker (pid:{}) uses", first[0]))
    );
}
