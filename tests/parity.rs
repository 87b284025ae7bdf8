//! WSGI parity with what real apps expect of Gunicorn (`tests/apps/parity.py`):
//! streamed blocks leave as they are yielded (PEP 3333 "Buffering and
//! Streaming"), statuses without a body carry no body framing (RFC 9110 §6.4.1,
//! §8.6), an unread `Expect: 100-continue` body closes the connection openly,
//! SERVER_NAME/PORT name the listener, `gunicorn.socket`, `wsgi.early_hints`,
//! failed body reads blamed on the client, and later HTTP/1 minor versions.

use std::io::Read;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::server_test;
use crate::support::sse::{self, wall_now};
use crate::support::{Conn, Server, TempDir};

server_test!(generator_blocks_arrive_as_yielded, "parity:app", |srv| {
    sse::assert_events_arrive_as_yielded("plain generator", &srv, "/sse");
});

// A client that reads slowly (a 4 KiB receive buffer, 8 KiB reads with
// pauses) still gets each 200 KiB block as soon as it is yielded: the
// response parks until the socket drains instead of waiting for more blocks.
server_test!(
    streamed_blocks_reach_a_slow_reader_as_yielded,
    "parity:app",
    |srv| {
        let sock = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)
            .expect("socket");
        sock.set_recv_buffer_size(4096).expect("SO_RCVBUF");
        sock.connect(&srv.addr().into()).expect("connect");
        sock.set_read_timeout(Some(Duration::from_secs(5)))
            .expect("timeout");
        let mut stream = std::net::TcpStream::from(sock);
        std::io::Write::write_all(&mut stream, b"GET /big-blocks HTTP/1.0\r\n\r\n").unwrap();
        const BLOCK: usize = 200 * 1024;
        let mut got = Vec::new();
        let mut body_start = None;
        let mut lags = Vec::new();
        let mut buf = [0u8; 8192];
        loop {
            let n = stream.read(&mut buf).expect("read (5 s timeout)");
            if n == 0 {
                break;
            }
            got.extend_from_slice(&buf[..n]);
            if body_start.is_none() {
                body_start = got.windows(4).position(|w| w == b"\r\n\r\n").map(|i| i + 4);
            }
            if let Some(start) = body_start {
                // Each block begins `block N T\n`: once its line is here, note
                // how long after its yield that was.
                let k = lags.len();
                let at = start + k * BLOCK;
                if let Some(line) = got.get(at..).and_then(|rest| {
                    let end = rest.iter().position(|&b| b == b'\n')?;
                    Some(String::from_utf8_lossy(&rest[..end]).into_owned())
                }) {
                    let t: f64 = line
                        .rsplit_once("t=")
                        .and_then(|(_, t)| t.parse().ok())
                        .unwrap_or_else(|| panic!("block {k} starts {line:?}"));
                    lags.push(wall_now() - t);
                }
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        let start = body_start.expect("a response head");
        assert_eq!(got.len() - start, 4 * BLOCK, "whole body delivered");
        assert_eq!(lags.len(), 4, "{lags:?}");
        for (k, lag) in lags.iter().enumerate() {
            assert!(
                *lag < sse::EVENT_LAG.as_secs_f64(),
                "block {k} reached the slow reader {lag:.3}s after its yield: {lags:?}"
            );
        }
    }
);

server_test!(
    no_body_statuses_drop_body_and_framing,
    "parity:app",
    |srv| {
        let mut c = srv.connect();
        c.send(b"GET /no-body?204 HTTP/1.1\r\nHost: x\r\n\r\nGET /no-body?304 HTTP/1.1\r\nHost: x\r\n\r\nGET /no-body?200 HTTP/1.1\r\nHost: x\r\n\r\n");
        let r204 = c.read_head_response();
        assert_eq!(r204.status, 204, "{}", r204.dump());
        assert_eq!(r204.header("Content-Length"), None, "{}", r204.dump());
        assert_eq!(r204.header("Transfer-Encoding"), None, "{}", r204.dump());
        // 304 may keep the length the full response would have had.
        let r304 = c.read_head_response();
        assert_eq!(r304.status, 304, "{}", r304.dump());
        assert_eq!(r304.header("Content-Length"), Some("5"), "{}", r304.dump());
        // Were either body sent, it would sit in front of this response.
        let r200 = c.read_response();
        assert_eq!(r200.status_line, "HTTP/1.1 200 OK", "{}", r200.dump());
        assert_eq!(r200.body_str(), "hello");
        let log = srv.wait_stderr("no body; dropping", Duration::from_secs(5));
        assert_eq!(
            log.matches("no body; dropping").count(),
            1,
            "warned once per worker: {log}"
        );
    }
);

server_test!(head_responses_carry_no_body, "parity:app", |srv| {
    let mut c = srv.connect();
    c.send(
        b"HEAD /no-body?200 HTTP/1.1\r\nHost: x\r\n\r\nGET /protocol HTTP/1.1\r\nHost: x\r\n\r\n",
    );
    let head = c.read_head_response();
    assert_eq!(head.status, 200);
    assert_eq!(head.header("Content-Length"), Some("5"));
    assert_eq!(c.read_response().body_str(), "HTTP/1.1");
});

// The app answers before reading a body it was offered with
// `Expect: 100-continue`: no 100 goes out, the answer says
// `Connection: close`, and the connection then ends.
server_test!(
    unread_expect_continue_body_closes_openly,
    "parity:app",
    |srv| {
        let mut c = srv.connect();
        c.send(
            b"POST /refuse HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\
          Expect: 100-continue\r\n\r\n",
        );
        let r = c.read_response();
        assert_eq!(r.status, 405, "{}", r.dump());
        assert_eq!(r.header("Connection"), Some("close"), "{}", r.dump());
        c.expect_closed(Duration::from_secs(5));
    }
);

server_test!(
    server_name_and_port_come_from_the_listener,
    "parity:app",
    |srv| {
        let r = srv.request(b"GET /server HTTP/1.1\r\nHost: a:xyz\r\nConnection: close\r\n\r\n");
        assert_eq!(
            r.json(),
            json!({"SERVER_NAME": "127.0.0.1", "SERVER_PORT": srv.port().to_string()})
        );
    }
);

/// A unix socket has no address of its own to give: the Host header names
/// the server there, and a port that is not a number is not passed on.
#[test]
fn server_name_over_a_unix_socket_comes_from_host() {
    let dir = TempDir::new("unix-host");
    let path = dir.path().join("app.sock");
    let srv = Server::builder("parity:app")
        .listeners(0)
        .arg("-b")
        .arg(format!("unix:{}", path.display()))
        .in_dir(dir)
        .start();
    let ask = |host: &str| {
        let mut c = Conn::unix(&path);
        c.send(
            format!("GET /server HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n").as_bytes(),
        );
        c.read_response().json()
    };
    assert_eq!(
        ask("example.test:8080"),
        json!({"SERVER_NAME": "example.test", "SERVER_PORT": "8080"})
    );
    assert_eq!(
        ask("example.test:xyz"),
        json!({"SERVER_NAME": "example.test", "SERVER_PORT": "80"})
    );
    drop(srv);
}

server_test!(gunicorn_socket_is_the_connection, "parity:app", |srv| {
    let mut c = srv.connect();
    c.send(b"GET /socket HTTP/1.1\r\nHost: x\r\n\r\n");
    let facts = c.read_response().json();
    let local_port = c.local_port.expect("tcp");
    assert_eq!(facts["peer"], json!(["127.0.0.1", local_port]), "{facts}");
    assert_eq!(facts["peer"], facts["remote"], "{facts}");
    assert_eq!(facts["dup_peer"], facts["peer"], "{facts}");
    assert_eq!(facts["local"], json!(["127.0.0.1", srv.port()]), "{facts}");
    assert_eq!(facts["family"], json!("AF_INET"));
    assert_eq!(facts["type"], json!("SOCK_STREAM"));
    assert!(facts["fileno"].as_i64().unwrap() > 2, "{facts}");
    assert_ne!(
        facts["nodelay"],
        json!(0),
        "the worker sets TCP_NODELAY: {facts}"
    );
    // The app kept the object: once its request is over it acts closed, and
    // the connection (closing its dup did not touch it) still serves.
    c.send(b"GET /stale-socket HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(c.read_response().body_str(), "closed: OSError");
});

server_test!(
    early_hints_arrive_before_the_response,
    "parity:app",
    |srv| {
        let mut c = srv.connect();
        let sent = Instant::now();
        c.send(b"GET /hints HTTP/1.1\r\nHost: x\r\n\r\n");
        let hints = c.read_head_response();
        let hints_at = sent.elapsed();
        assert_eq!(
            hints.status_line,
            "HTTP/1.1 103 Early Hints",
            "{}",
            hints.dump()
        );
        assert_eq!(
            hints.header("Link"),
            Some("</style.css>; rel=preload; as=style")
        );
        // The app sleeps 0.3 s after sending them.
        assert!(
            hints_at < Duration::from_millis(250),
            "hints took {hints_at:?}"
        );
        let r = c.read_response();
        assert_eq!(r.status, 200);
        assert_eq!(r.body_str(), "after hints\n");
        // HTTP/1.0 does not know 1xx: nothing but the answer.
        let r = srv.request(b"GET /hints HTTP/1.0\r\n\r\n");
        assert_eq!(r.status, 200, "{}", r.dump());
    }
);

/// The client hangs up half-way through its body: the app's read raises
/// ClientDisconnected (an OSError), nothing is logged as an app failure,
/// and the access log says 499, not 500.
#[test]
fn client_leaving_mid_body_is_not_an_app_error() {
    let dir = TempDir::new("disconnect");
    let log = dir.path().join("access.log");
    let srv = Server::builder("parity:app")
        .args(["--access-logfile", log.to_str().unwrap()])
        .in_dir(dir)
        .start();
    let mut c = srv.connect();
    c.send(b"POST /read HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n\r\nonly a little");
    drop(c);
    let stderr = srv.wait_stderr("caught ClientDisconnected", Duration::from_secs(5));
    assert!(
        stderr.contains(
            "caught ClientDisconnected: client disconnected while sending the request body"
        ),
        "{stderr}"
    );
    let line = crate::support::wait_file(&log, Duration::from_secs(5));
    assert!(line.contains("\"POST /read HTTP/1.1\" 499"), "{line}");
    // The server keeps serving, and logged no traceback for the app.
    assert_eq!(srv.get("/protocol").body_str(), "HTTP/1.1");
    let stderr = srv.stderr();
    assert!(!stderr.contains("Error handling request"), "{stderr}");
    assert!(!stderr.contains("Traceback"), "{stderr}");
}

server_test!(malformed_chunked_body_is_a_400, "parity:app", |srv| {
    let mut c = srv.connect();
    // LF-only line ends inside chunked framing are refused (smuggling).
    c.send(b"POST /read HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\nhello\n0\n\n");
    let r = c.read_response();
    assert_eq!(r.status, 400, "{}", r.dump());
    assert_eq!(r.header("Connection"), Some("close"));
    let stderr = srv.wait_stderr("caught InvalidRequestBody", Duration::from_secs(5));
    assert!(!stderr.contains("Error handling request"), "{stderr}");
    let mut c = srv.connect();
    c.send(b"POST /read HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n");
    assert_eq!(c.read_response().status, 400);
});

server_test!(
    later_http1_minor_versions_are_answered_as_http11,
    "parity:app",
    |srv| {
        let r = srv.request(b"GET /protocol HTTP/1.2\r\nHost: x\r\nConnection: close\r\n\r\n");
        assert_eq!(r.status_line, "HTTP/1.1 200 OK", "{}", r.dump());
        assert_eq!(r.body_str(), "HTTP/1.1");
        let r = srv.request(b"GET /protocol HTTP/2.0\r\nHost: x\r\n\r\n");
        assert_eq!(r.status, 505, "{}", r.dump());
    }
);

/// A request the parser refuses still gets an access line with its status.
#[test]
fn refused_request_gets_an_access_line() {
    let dir = TempDir::new("refused-access");
    let log = dir.path().join("access.log");
    let srv = Server::builder("parity:app")
        .args(["--access-logfile", log.to_str().unwrap()])
        .in_dir(dir)
        .start();
    let r = srv.request(b"GET /protocol HTTP/1.1\r\nHost: x\r\nBad Header: y\r\n\r\n");
    assert_eq!(r.status, 400, "{}", r.dump());
    let line = crate::support::wait_file(&log, Duration::from_secs(5));
    assert!(line.contains("\"GET /protocol HTTP/1.1\" 400 "), "{line}");
}

/// `%({name}e)s` logs the request's WSGI environ, as the app left it; `%%`
/// is a percent sign and `%(U)s` drops an absolute-form target's host.
#[test]
fn access_log_reads_the_wsgi_environ() {
    let dir = TempDir::new("environ-atom");
    let log = dir.path().join("access.log");
    let srv = Server::builder("parity:app")
        .args(["--access-logfile", log.to_str().unwrap()])
        .args([
            "--access-logformat",
            "%({wsgi.url_scheme}e)s %({PATH_INFO}e)s %({server_port}e)s %({missing}e)s %(U)s 100%%",
        ])
        .in_dir(dir)
        .start();
    // Absolute-form: %(U)s is the path alone.
    let r = srv.request(b"GET http://example.test/protocol?x=1 HTTP/1.1\r\nHost: example.test\r\nConnection: close\r\n\r\n");
    assert_eq!(r.status, 200, "{}", r.dump());
    let line = crate::support::wait_file(&log, Duration::from_secs(5));
    assert_eq!(
        line.trim_end(),
        format!("http /protocol {} - /protocol 100%", srv.port())
    );
}
