//! Socket activation and sd_notify as systemd uses them, against sockets the
//! test owns: the LISTEN_* variables never reach the app, passed sockets are
//! chosen by name, abstract NOTIFY_SOCKET addresses work, HUP reports
//! RELOADING=1 with MONOTONIC_USEC then READY=1, and the watchdog is fed.

use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;

use crate::support::{Server, TempDir};

#[test]
fn listen_variables_are_removed_before_the_app_runs() {
    let srv = Server::start("osenv:app", &[]);
    let env = srv.get("/").json();
    for var in ["LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"] {
        assert!(env.get(var).is_none(), "{var} leaked into the app: {env}");
    }
}

#[test]
fn passed_sockets_are_chosen_by_name() {
    // Two passed sockets named web and admin; --bind fd://admin serves only admin.
    let srv = Server::builder("hello:app")
        .listeners(2)
        .env("LISTEN_FDNAMES", "web:admin")
        .args(["-b", "fd://admin"])
        .start();
    let ports = srv.ports().to_vec();
    let admin = std::net::SocketAddr::from(([127, 0, 0, 1], ports[1]));
    let r = {
        use std::io::{Read, Write};
        let mut c = std::net::TcpStream::connect(admin).unwrap();
        c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        c.write_all(b"GET / HTTP/1.0\r\n\r\n").unwrap();
        let mut out = String::new();
        c.read_to_string(&mut out).unwrap();
        out
    };
    assert!(r.starts_with("HTTP/1.0 200 OK"), "{r}");
    let log = srv.wait_stderr("Not serving passed socket \"web\"", Duration::from_secs(5));
    assert!(!log.contains(&format!("127.0.0.1:{}", ports[0])), "{log}");
}

#[test]
fn an_unknown_socket_name_is_a_clear_error() {
    let mut srv = Server::builder("hello:app")
        .listeners(1)
        .env("LISTEN_FDNAMES", "web")
        .args(["-b", "fd://nope"])
        .spawn();
    let status = srv.wait_exit(Duration::from_secs(20));
    assert_eq!(status.code(), Some(1));
    assert!(
        srv.stderr().contains("no socket named \"nope\""),
        "{}",
        srv.stderr()
    );
}

#[test]
fn abstract_notify_socket_receives_ready() {
    let name = format!("rgunicorn-test-{}", std::process::id());
    let addr = SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
    let sock = UnixDatagram::bind_addr(&addr).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let _srv = Server::builder("hello:app")
        .env("NOTIFY_SOCKET", format!("@{name}"))
        .spawn();
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut buf = [0u8; 4096];
    loop {
        let n = sock
            .recv(&mut buf)
            .expect("no datagram on the abstract socket");
        let text = String::from_utf8_lossy(&buf[..n]).into_owned();
        if text.lines().any(|l| l == "READY=1") {
            break;
        }
        assert!(Instant::now() < deadline, "no READY=1");
    }
}

#[test]
fn hup_sends_reloading_with_monotonic_usec_then_ready() {
    let mut srv = Server::start("hello:app", &["-w", "2"]);
    let readies = srv
        .notify_messages()
        .iter()
        .filter(|m| m.lines().any(|l| l == "READY=1"))
        .count();
    srv.signal(Signal::SIGHUP);
    srv.wait_for("RELOADING=1", Duration::from_secs(10));
    let reloading = srv
        .notify_messages()
        .iter()
        .find(|m| m.lines().any(|l| l == "RELOADING=1"))
        .cloned()
        .unwrap();
    let usec = reloading
        .lines()
        .find_map(|l| l.strip_prefix("MONOTONIC_USEC="))
        .unwrap_or_else(|| panic!("no MONOTONIC_USEC in {reloading:?}"));
    assert!(usec.parse::<u64>().unwrap() > 0);
    srv.wait_for_count("READY=1", readies + 1, Duration::from_secs(20));
    srv.assert_get("/", "Hello, World!\n");
}

#[test]
fn watchdog_is_fed_at_half_the_interval() {
    let mut srv = Server::builder("hello:app")
        .env("WATCHDOG_USEC", "1000000")
        .start();
    let start = Instant::now();
    for _ in 0..3 {
        srv.wait_for("WATCHDOG=1", Duration::from_secs(5));
    }
    // Three pings at ~0.5 s intervals.
    assert!(
        start.elapsed() < Duration::from_secs(4),
        "{:?}",
        start.elapsed()
    );
    assert!(srv.notify_messages().iter().any(|m| m.contains("STATUS=")));
}

#[test]
fn hup_with_preload_loads_new_code_through_a_new_master() {
    let dir = TempDir::new("preload-hup");
    let app = dir.path().join("pre.py");
    let write_app = |v: &str| {
        std::fs::write(
            &app,
            format!("def app(e, s):\n    s('200 OK', [])\n    return [b'{v}\\n']\n"),
        )
        .unwrap()
    };
    write_app("old");
    let path = dir.path().to_owned();
    let mut srv = Server::builder("pre:app")
        .no_chdir()
        .args(["--chdir", path.to_str().unwrap(), "--preload"])
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .in_dir(dir)
        .start();
    srv.assert_get("/", "old\n");
    write_app("new");
    srv.signal(Signal::SIGHUP);
    // The new master takes over and stops this one.
    let status = srv.wait_exit(Duration::from_secs(30));
    assert_eq!(status.code(), Some(0));
    srv.assert_get("/", "new\n");
}

#[test]
fn status_reports_workers_and_request_rate() {
    let mut srv = Server::start("hello:app", &["-w", "2"]);
    for _ in 0..20 {
        srv.assert_get("/", "Hello, World!\n");
    }
    let deadline = Instant::now() + Duration::from_secs(12);
    loop {
        // Pump datagrams; the live STATUS= comes every 5 s.
        let _ = srv.try_wait_for("STATUS=never", Duration::from_millis(200));
        let live = srv
            .notify_messages()
            .iter()
            .flat_map(|m| m.lines())
            .find(|l| l.starts_with("STATUS=") && l.contains("req/s"))
            .map(str::to_owned);
        if let Some(line) = live {
            assert!(line.starts_with("STATUS=2/2 workers serving, "), "{line}");
            assert!(line.ends_with(" timeouts"), "{line}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no live STATUS=: {:?}",
            srv.notify_messages()
        );
    }
}
