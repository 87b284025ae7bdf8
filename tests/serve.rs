//! Serving basics: exact responses for GET/HEAD, standard headers, unix
//! socket binds, app specs (factory, default attribute, --pythonpath).

use std::time::Duration;

use nix::sys::signal::Signal;

use crate::server_test;
use crate::support::{Conn, Server, TempDir, apps_dir, assert_http_date};

server_test!(get_returns_exact_status_and_body, "hello:app", |srv| {
    let r = srv.get("/");
    assert_eq!(r.status_line, "HTTP/1.1 200 OK", "{}", r.dump());
    assert_eq!(r.body, b"Hello, World!\n");
    assert_eq!(r.header("Content-Length"), Some("14"));
    assert_eq!(r.header("Content-Type"), Some("text/plain"));
    assert!(!r.chunked, "a body with Content-Length must not be chunked");
    assert_eq!(r.headers_named("Content-Length").len(), 1, "{}", r.dump());
});

server_test!(date_and_server_headers_are_sent, "hello:app", |srv| {
    let r = srv.get("/");
    let date = r
        .header("Date")
        .unwrap_or_else(|| panic!("no Date: {}", r.dump()));
    assert_http_date(date);
    let server = r
        .header("Server")
        .unwrap_or_else(|| panic!("no Server: {}", r.dump()));
    assert!(!server.is_empty(), "empty Server header");
    assert_eq!(r.headers_named("Date").len(), 1, "{}", r.dump());
});

server_test!(
    connection_close_request_gets_close_header_and_eof,
    "hello:app",
    |srv| {
        let mut c = srv.connect();
        c.send(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        let r = c.read_response();
        assert_eq!(r.status_line, "HTTP/1.1 200 OK");
        assert_eq!(
            r.header("Connection")
                .map(str::to_ascii_lowercase)
                .as_deref(),
            Some("close"),
            "{}",
            r.dump()
        );
        c.expect_closed(Duration::from_secs(5));
    }
);

server_test!(head_sends_headers_without_body, "hello:app", |srv| {
    let mut c = srv.connect();
    c.send(b"HEAD / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    let r = c.read_head_response();
    assert_eq!(r.status_line, "HTTP/1.1 200 OK", "{}", r.dump());
    assert_eq!(r.header("Content-Length"), Some("14"), "{}", r.dump());
    assert!(r.raw.ends_with(b"\r\n\r\n"));
    // Nothing may follow the head: no body bytes, just the close.
    c.expect_closed(Duration::from_secs(5));
});

server_test!(head_of_streamed_body_has_no_body, "stream:app", |srv| {
    let mut c = srv.connect();
    c.send(b"HEAD / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    let r = c.read_head_response();
    assert_eq!(r.status_line, "HTTP/1.1 200 OK", "{}", r.dump());
    c.expect_closed(Duration::from_secs(5));
});

server_test!(default_attribute_is_application, "hello", |srv| {
    srv.assert_get("/", "Hello, World!\n");
});

server_test!(
    factory_call_with_literal_argument,
    r#"factory:create_app("world")"#,
    |srv| {
        srv.assert_get("/", "Hello from world\n");
    }
);

server_test!(
    factory_call_without_arguments,
    "factory:create_app()",
    |srv| {
        srv.assert_get("/", "Hello from default\n");
    }
);

server_test!(
    serves_with_several_workers,
    "hello:app",
    ["-w", "3"],
    |srv| {
        // READY=1 means every configured worker is up.
        assert_eq!(
            srv.worker_pids().len(),
            3,
            "workers: {:?}",
            srv.worker_pids()
        );
        for _ in 0..6 {
            srv.assert_get("/", "Hello, World!\n");
        }
    }
);

#[test]
fn pythonpath_finds_the_app_module() {
    let srv = Server::builder("hello:app")
        .no_chdir()
        .arg("--pythonpath")
        .arg(format!("/nonexistent-dir,{}", apps_dir().display()))
        .start();
    srv.assert_get("/", "Hello, World!\n");
}

#[test]
fn serves_every_inherited_listener() {
    let srv = Server::builder("hello:app").listeners(2).start();
    assert_eq!(srv.ports().len(), 2);
    for port in srv.ports() {
        let mut c = Conn::tcp(([127, 0, 0, 1], *port).into());
        c.send(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        let r = c.read_response();
        assert_eq!(
            r.status_line,
            "HTTP/1.1 200 OK",
            "port {port}: {}",
            r.dump()
        );
        assert_eq!(r.body, b"Hello, World!\n");
    }
}

#[test]
fn unix_socket_bind_serves_and_is_removed_on_exit() {
    let dir = TempDir::new("unixsock");
    let sock = dir.path().join("s.sock");
    let mut srv = Server::builder("hello:app")
        .listeners(0)
        .arg("-b")
        .arg(format!("unix:{}", sock.display()))
        .in_dir(dir)
        .start();
    let mut c = Conn::unix(&sock);
    c.send(b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    let r = c.read_response();
    assert_eq!(r.status_line, "HTTP/1.1 200 OK", "{}", r.dump());
    assert_eq!(r.body, b"Hello, World!\n");
    srv.signal(Signal::SIGTERM);
    let status = srv.wait_exit(Duration::from_secs(15));
    assert_eq!(status.code(), Some(0), "exit status {status}");
    assert!(!sock.exists(), "{} still exists after exit", sock.display());
}

/// The port from a `Listening at: http://HOST:PORT (PID)` log line.
fn listening_port(stderr: &str, host: &str) -> u16 {
    let prefix = format!("Listening at: http://{host}:");
    let line = stderr
        .lines()
        .find_map(|l| l.split_once(&prefix).map(|(_, rest)| rest))
        .unwrap_or_else(|| panic!("no {prefix:?} line in stderr:\n{stderr}"));
    let port = line
        .split(|c: char| !c.is_ascii_digit())
        .next()
        .unwrap_or_default();
    port.parse()
        .unwrap_or_else(|_| panic!("bad port in {line:?}"))
}

/// Without socket activation the server binds `--bind` itself.
#[test]
fn binds_tcp_itself_without_activation() {
    let srv = Server::builder("hello:app")
        .listeners(0)
        .args(["-b", "127.0.0.1:0"])
        .start();
    let port = listening_port(&srv.stderr(), "127.0.0.1");
    assert_ne!(port, 0);
    let mut c = Conn::tcp(([127, 0, 0, 1], port).into());
    c.send(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    let r = c.read_response();
    assert_eq!(r.status_line, "HTTP/1.1 200 OK", "{}", r.dump());
    assert_eq!(r.body, b"Hello, World!\n");
}

#[test]
fn binds_ipv6_loopback() {
    let srv = Server::builder("hello:app")
        .listeners(0)
        .args(["-b", "[::1]:0"])
        .start();
    let port = listening_port(&srv.stderr(), "[::1]");
    let addr = std::net::SocketAddr::from((std::net::Ipv6Addr::LOCALHOST, port));
    let mut c = Conn::tcp(addr);
    c.send(b"GET / HTTP/1.1\r\nHost: [::1]\r\nConnection: close\r\n\r\n");
    let r = c.read_response();
    assert_eq!(r.status_line, "HTTP/1.1 200 OK", "{}", r.dump());
    assert_eq!(r.body, b"Hello, World!\n");
}

/// Prefork: a worker busy in the app must not take connections that an
/// idle worker could serve.
#[test]
fn idle_worker_serves_while_another_is_busy() {
    let srv = Server::start("slow:app", &["-w", "2"]);
    let mut busy = srv.connect();
    busy.set_read_timeout(Duration::from_secs(15));
    busy.send(b"GET /?sleep=4 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    // Give the slow request a moment to be picked up by one worker.
    std::thread::sleep(Duration::from_millis(300));
    for i in 0..6 {
        let start = std::time::Instant::now();
        let r = srv.get("/?sleep=0");
        let took = start.elapsed();
        assert_eq!(r.status_line, "HTTP/1.1 200 OK", "{}", r.dump());
        assert!(
            took < Duration::from_secs(1),
            "request {i} waited {took:?} behind a busy worker"
        );
    }
    let r = busy.read_response();
    assert_eq!(r.body_str(), "slept 4\n");
}
