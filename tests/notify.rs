//! sd_notify(3): READY=1 only once every worker can serve; STOPPING=1 on
//! shutdown. (Every test also relies on READY=1 via the harness.)

use std::time::{Duration, Instant};

use nix::sys::signal::Signal;

use crate::support::Server;

#[test]
fn ready_waits_for_every_worker_to_load_the_app() {
    // slow_boot.py takes 1.5 s to import.
    let mut srv = Server::builder("slow_boot:app").args(["-w", "2"]).spawn();
    srv.wait_ready();
    assert!(
        srv.uptime() >= Duration::from_millis(1400),
        "READY=1 after {:?}, before the app could have loaded",
        srv.uptime()
    );
    assert_eq!(
        srv.worker_pids().len(),
        2,
        "workers: {:?}",
        srv.worker_pids()
    );
    // Both workers can answer right away: no request waits for a boot.
    for _ in 0..4 {
        let start = Instant::now();
        srv.assert_get("/", "booted\n");
        assert!(
            start.elapsed() < Duration::from_millis(500),
            "request took {:?}",
            start.elapsed()
        );
    }
}

#[test]
fn ready_is_sent_once() {
    let mut srv = Server::start("hello:app", &["-w", "2"]);
    srv.assert_get("/", "Hello, World!\n");
    srv.signal(Signal::SIGTERM);
    srv.wait_for("STOPPING=1", Duration::from_secs(10));
    srv.wait_exit(Duration::from_secs(10));
    let ready = srv
        .notify_messages()
        .iter()
        .flat_map(|m| m.lines())
        .filter(|l| *l == "READY=1")
        .count();
    assert_eq!(ready, 1, "messages: {:?}", srv.notify_messages());
    let stopping_after_ready = srv
        .notify_messages()
        .iter()
        .position(|m| m.lines().any(|l| l == "STOPPING=1"))
        > srv
            .notify_messages()
            .iter()
            .position(|m| m.lines().any(|l| l == "READY=1"));
    assert!(
        stopping_after_ready,
        "messages: {:?}",
        srv.notify_messages()
    );
}

#[test]
fn sigint_sends_stopping() {
    let mut srv = Server::start("hello:app", &[]);
    srv.signal(Signal::SIGINT);
    srv.wait_for("STOPPING=1", Duration::from_secs(10));
    let status = srv.wait_exit(Duration::from_secs(10));
    assert_eq!(status.code(), Some(0), "exit status {status}");
}
