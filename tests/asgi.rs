//! The ASGI worker (`-k asgi`): ASGI 3 apps on the real server. HTTP scope
//! keys and types (ASGI spec 2.4), request and response bodies streamed both
//! ways, `http.disconnect`, back-pressure on `send`, `http.response.pathsend`,
//! lifespan (order, failure, `off`), the event-loop choice, the uvicorn
//! worker aliases, FastAPI and Starlette (HTTP and WebSocket routes).
//! WebSockets themselves are in `asgi_websocket.rs`.
//!
//! The hand-written app is `tests/apps/asgi_app.py`; its docstring lists the
//! routes. FastAPI, Starlette, websockets and uvloop are test prerequisites
//! (`.ci/install-deps`); a missing one fails the test with that hint, except
//! uvloop, whose absence skips its one check with a printed note.

use std::fs;
use std::io::Write;
use std::net::TcpStream;
use std::thread;
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;

use crate::support::websocket::{Message, WebSocket};
use crate::support::{
    Conn, IO_TIMEOUT, Response, Server, ServerBuilder, TempDir, apps_dir, fetch, pseudo_random,
    python, python_imports, require_module,
    tls::{TestCa, connect as tls_connect},
    wait_file, wait_file_eq,
};

/// How long a WebSocket test waits for one frame.
pub(crate) const FRAME_TIMEOUT: Duration = Duration::from_secs(10);

/// `rgunicorn -k asgi -w 1 [extra] asgi_app:app`, not started yet. One
/// worker: the app's progress counters are per process.
pub(crate) fn asgi(extra: &[&str]) -> ServerBuilder {
    Server::builder("asgi_app:app")
        .args(["-k", "asgi", "-w", "1"])
        .args(extra.iter().copied())
}

/// Starts [`asgi`] and waits for READY=1.
pub(crate) fn start(extra: &[&str]) -> Server {
    asgi(extra).start()
}

/// Opens a WebSocket to `path` on `srv`, offering `protocols`.
#[track_caller]
pub(crate) fn ws(srv: &Server, path: &str, protocols: &[&str]) -> WebSocket {
    let mut ws = WebSocket::open(srv.connect(), path, protocols);
    ws.set_read_timeout(FRAME_TIMEOUT);
    ws
}

/// Reads from `conn` until `needle` has arrived (it stays buffered), or
/// fails after the connection's read timeout.
#[track_caller]
pub(crate) fn wait_bytes(conn: &mut Conn, needle: &[u8]) {
    let mut n = needle.len();
    loop {
        let seen = conn.peek(n);
        if seen.windows(needle.len()).any(|w| w == needle) {
            return;
        }
        n += 1;
    }
}

/// Polls `GET path` until `pred(body)` holds (bounded); returns the body.
#[track_caller]
pub(crate) fn poll(
    srv: &Server,
    path: &str,
    timeout: Duration,
    pred: impl Fn(&str) -> bool,
) -> String {
    let deadline = Instant::now() + timeout;
    loop {
        let body = fetch(srv.addr(), path).unwrap_or_default();
        if pred(&body) {
            return body;
        }
        assert!(
            Instant::now() < deadline,
            "GET {path} never satisfied the condition within {timeout:?}; last {body:?}"
        );
        thread::sleep(Duration::from_millis(20));
    }
}

/// Starts `GET /sleep?s=SECS&marker=..` on a thread and returns once the app
/// has read the request (the marker exists), with the response to come.
pub(crate) fn sleep_in_flight(srv: &Server, secs: f64) -> thread::JoinHandle<Response> {
    let marker = srv.dir().join("sleep-started");
    let _ = fs::remove_file(&marker);
    let mut c = srv.connect();
    c.set_read_timeout(Duration::from_secs(20));
    c.send(
        format!(
            "GET /sleep?s={secs}&marker={} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
            marker.display()
        )
        .as_bytes(),
    );
    let handle = thread::spawn(move || c.read_response());
    wait_file(&marker, Duration::from_secs(10));
    handle
}

// ---- HTTP -----------------------------------------------------------------

/// `-k asgi` serves an ASGI 3 app: a fixed body with its Content-Length.
#[test]
fn serves_a_get() {
    let srv = start(&[]);
    let r = srv.get("/hello");
    assert_eq!(r.status_line, "HTTP/1.1 200 OK", "{}", r.dump());
    assert_eq!(r.header("Content-Length"), Some("13"));
    assert_eq!(r.body_str(), "Hello, ASGI!\n");
    assert!(!r.chunked);
}

/// `--worker-class asgi` and `worker_class = "asgi"` in a config file pick
/// the same worker (an ASGI app answers at all only under it).
#[test]
fn worker_class_from_the_long_flag_and_the_config_file() {
    let srv = Server::start("asgi_app:app", &["--worker-class", "asgi"]);
    srv.assert_get("/hello", "Hello, ASGI!\n");
    drop(srv);

    let dir = TempDir::new("asgi-conf");
    let conf = dir.path().join("asgi.conf.py");
    fs::write(&conf, "worker_class = \"asgi\"\nworkers = 1\n").unwrap();
    let srv = Server::builder("asgi_app:app")
        .args(["-c", conf.to_str().unwrap()])
        .in_dir(dir)
        .start();
    srv.assert_get("/hello", "Hello, ASGI!\n");
}

/// `-k uvicorn.workers.UvicornWorker` and `-k uvicorn_worker.UvicornWorker`
/// run the ASGI worker (uvicorn need not be installed) and say so in one
/// error-log line naming both the alias and `asgi`.
#[test]
fn uvicorn_worker_aliases_run_the_asgi_worker_and_say_so() {
    for alias in [
        "uvicorn.workers.UvicornWorker",
        "uvicorn_worker.UvicornWorker",
    ] {
        let srv = Server::start("asgi_app:app", &["-k", alias]);
        srv.assert_get("/hello", "Hello, ASGI!\n");
        let log = srv.stderr();
        assert!(
            log.lines().any(|l| l.contains(alias) && l.contains("asgi")),
            "no error-log line names both {alias:?} and \"asgi\":\n{log}"
        );
    }
}

/// The HTTP connection scope of ASGI spec 2.4: every key, with its type
/// (bytes where the spec says byte strings), the percent-decoded path beside
/// the raw one, lowercased header names, client and server addresses, the
/// pathsend extension and the lifespan state.
#[test]
fn scope_has_the_spec_keys_and_types() {
    let srv = start(&[]);
    let mut c = srv.connect();
    let local_port = c.local_port.unwrap();
    c.send(
        b"GET /scope/caf%C3%A9%20x?a=1&b=%20 HTTP/1.1\r\nHost: x\r\n\
          X-Custom-Header: Some Value\r\nConnection: close\r\n\r\n",
    );
    let r = c.read_response();
    assert_eq!(r.status, 200, "{}", r.dump());
    let s = r.json();
    assert_eq!(s["type"], "http");
    assert_eq!(s["asgi"]["version"], "3.0", "{s}");
    assert_eq!(s["asgi"]["spec_version"], "2.4", "{s}");
    assert_eq!(s["http_version"], "1.1");
    assert_eq!(s["method"], "GET");
    assert_eq!(s["scheme"], "http");
    assert_eq!(s["path"], "/scope/café x");
    assert_eq!(s["raw_path"], "/scope/caf%C3%A9%20x");
    assert_eq!(s["query_string"], "a=1&b=%20");
    assert_eq!(s["root_path"], "");
    assert_eq!(
        s["client"],
        serde_json::json!(["127.0.0.1", local_port]),
        "{s}"
    );
    assert_eq!(
        s["server"],
        serde_json::json!(["127.0.0.1", srv.port()]),
        "{s}"
    );
    let headers = s["headers"].as_array().expect("headers is a list");
    assert!(
        headers.contains(&serde_json::json!(["x-custom-header", "Some Value"])),
        "{headers:?}"
    );
    assert!(
        headers.contains(&serde_json::json!(["host", "x"])),
        "{headers:?}"
    );
    for h in headers {
        let name = h[0].as_str().unwrap();
        assert_eq!(
            name,
            name.to_ascii_lowercase(),
            "header name not lowercased"
        );
    }
    let types = &s["types"];
    for (key, ty) in [
        ("type", "str"),
        ("asgi", "dict"),
        ("http_version", "str"),
        ("method", "str"),
        ("scheme", "str"),
        ("path", "str"),
        ("raw_path", "bytes"),
        ("query_string", "bytes"),
        ("root_path", "str"),
        ("headers", "list"),
        ("state", "dict"),
    ] {
        assert_eq!(types[key], ty, "scope[{key:?}] type; scope {s}");
    }
    for key in ["client", "server"] {
        assert!(
            types[key] == "list" || types[key] == "tuple",
            "scope[{key:?}] is a {}",
            types[key]
        );
    }
    // Each header is a [bytes, bytes] pair (a list or a tuple).
    for pair in s["header_types"].as_array().unwrap() {
        let pair = pair.as_str().unwrap();
        assert!(
            pair == "list(bytes,bytes)" || pair == "tuple(bytes,bytes)",
            "header pair {pair}"
        );
    }
    assert!(
        s["extensions"].get("http.response.pathsend").is_some(),
        "pathsend extension not advertised: {s}"
    );
    assert_eq!(s["state"]["greeting"], "hello from lifespan", "{s}");
}

/// An HTTP/1.0 request has `http_version` "1.0".
#[test]
fn scope_http_version_follows_the_request() {
    let srv = start(&[]);
    let r = srv.request(b"GET /scope HTTP/1.0\r\nHost: x\r\n\r\n");
    assert_eq!(r.status, 200, "{}", r.dump());
    assert_eq!(r.json()["http_version"], "1.0");
}

/// `scope["state"]` is a shallow copy of the lifespan state: what one request
/// adds to it is not there for the next.
#[test]
fn scope_state_is_a_fresh_copy_per_request() {
    let srv = start(&[]);
    let first = srv.get("/scope").json();
    let second = srv.get("/scope").json();
    for s in [&first, &second] {
        assert_eq!(s["state"]["greeting"], "hello from lifespan", "{s}");
        assert!(
            s["state"].get("mutated").is_none(),
            "a request's change to scope[\"state\"] leaked into the next: {s}"
        );
    }
}

/// Under TLS the scheme is "https" (and "wss" for WebSockets).
#[test]
fn scope_scheme_is_https_and_wss_under_tls() {
    let dir = TempDir::new("asgi-tls");
    let ca = TestCa::new(dir.path(), "test CA");
    let id = ca.server("server");
    let srv = asgi(&[
        "--certfile",
        id.cert.to_str().unwrap(),
        "--keyfile",
        id.key.to_str().unwrap(),
    ])
    .in_dir(dir)
    .start();
    let config = ca.client_config(None, &[&rustls::version::TLS13]);
    let mut c = tls_connect(srv.addr(), config.clone()).unwrap().conn;
    c.send(b"GET /scope HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    let r = c.read_response();
    assert_eq!(r.status, 200, "{}", r.dump());
    assert_eq!(r.json()["scheme"], "https");

    let conn = tls_connect(srv.addr(), config).unwrap().conn;
    let mut ws = WebSocket::open(conn, "/ws", &[]);
    ws.set_read_timeout(FRAME_TIMEOUT);
    ws.send_text("scope");
    let Message::Text(text) = ws.recv_message() else {
        panic!("scope reply is not text")
    };
    let s: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(s["scheme"], "wss", "{s}");
}

/// A multi-megabyte chunked upload is echoed back as it arrives: echoed bytes
/// come back before the upload is finished, and every byte matches.
#[test]
fn chunked_upload_is_echoed_while_it_streams() {
    let srv = start(&[]);
    let data = pseudo_random(4 << 20, 7);
    let stream = TcpStream::connect(srv.addr()).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    stream
        .set_write_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let mut writer = stream.try_clone().unwrap();
    let mut reader = Conn::over(Box::new(stream));
    let chunk = |part: &[u8]| {
        let mut out = format!("{:x}\r\n", part.len()).into_bytes();
        out.extend_from_slice(part);
        out.extend_from_slice(b"\r\n");
        out
    };
    writer
        .write_all(
            b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\
              Connection: close\r\n\r\n",
        )
        .unwrap();
    let first = 64 * 1024;
    writer.write_all(&chunk(&data[..first])).unwrap();
    // Half the first chunk's echo, before any more is sent: the body is
    // streamed back, not collected first.
    reader.peek(first / 2);
    let rest = data[first..].to_vec();
    let upload = thread::spawn(move || {
        // Uneven chunk sizes, so chunk and read boundaries never line up.
        let mut sizes = [65_537usize, 1_000, 300_000, 17].into_iter().cycle();
        let mut at = 0;
        while at < rest.len() {
            let n = sizes.next().unwrap().min(rest.len() - at);
            writer.write_all(&chunk(&rest[at..at + n])).unwrap();
            at += n;
        }
        writer.write_all(b"0\r\n\r\n").unwrap();
    });
    let r = reader.read_response();
    upload.join().expect("upload thread");
    assert_eq!(r.status, 200, "{}", r.dump());
    assert!(r.chunked, "echo without a Content-Length should be chunked");
    assert_eq!(r.body.len(), data.len(), "echoed length");
    assert!(r.body == data, "echoed bytes differ from the upload");
}

/// A large Content-Length body reaches the app in several `http.request`
/// events (`more_body`), and `/echo` returns it byte for byte.
#[test]
fn large_body_arrives_in_several_events_and_echoes_back() {
    let srv = start(&[]);
    let data = pseudo_random(3 << 20, 11);
    let head = |path: &str| {
        format!(
            "POST {path} HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\
             Connection: close\r\n\r\n",
            data.len()
        )
    };
    let mut c = srv.connect();
    c.send(head("/body-info").as_bytes());
    c.send(&data);
    let info = c.read_response().json();
    assert_eq!(info["length"], data.len(), "{info}");
    assert!(
        info["events"].as_u64().unwrap() > 1,
        "3 MiB arrived in one http.request event: {info}"
    );

    let stream = TcpStream::connect(srv.addr()).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let mut writer = stream.try_clone().unwrap();
    let mut req = head("/echo").into_bytes();
    req.extend_from_slice(&data);
    let upload = thread::spawn(move || writer.write_all(&req).unwrap());
    let r = Conn::over(Box::new(stream)).read_response();
    upload.join().expect("upload thread");
    assert_eq!(r.status, 200, "{}", r.dump());
    assert!(r.body == data, "echoed bytes differ");
}

/// Several `http.response.body` events without a Content-Length make a
/// chunked response, and each is written when sent: the first arrives while
/// the app still holds the rest back.
#[test]
fn response_body_events_are_written_as_sent() {
    let srv = start(&[]);
    let r = srv.get("/stream?n=5");
    assert_eq!(r.status, 200, "{}", r.dump());
    assert!(r.chunked, "{}", r.dump());
    let want: String = (0..5).map(|i| format!("chunk {i}\n")).collect();
    assert_eq!(r.body_str(), want);

    let mut held = srv.connect();
    held.set_read_timeout(Duration::from_secs(5));
    held.send(b"GET /held HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    wait_bytes(&mut held, b"first\n");
    assert_eq!(fetch(srv.addr(), "/release").as_deref(), Some("released\n"));
    let r = held.read_response();
    assert_eq!(r.body_str(), "first\nsecond\n");
}

/// A client that leaves mid-response: the app's `receive()` returns
/// `http.disconnect`.
#[test]
fn disconnect_is_seen_when_the_client_leaves_mid_response() {
    let srv = start(&[]);
    let mut c = srv.connect();
    c.set_read_timeout(Duration::from_secs(5));
    c.send(b"GET /disconnect HTTP/1.1\r\nHost: x\r\n\r\n");
    wait_bytes(&mut c, b"partial\n");
    assert_eq!(fetch(srv.addr(), "/seen").as_deref(), Some("no"));
    drop(c);
    poll(&srv, "/seen", Duration::from_secs(10), |b| b == "yes");
}

/// `receive()` after the response is complete returns `http.disconnect`
/// (on a kept-alive connection too), instead of hanging the app.
#[test]
fn receive_after_the_response_is_complete_is_a_disconnect() {
    let srv = start(&[]);
    let mut c = srv.connect();
    c.send(b"GET /late-receive HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(c.read_response().body_str(), "done\n");
    poll(&srv, "/late", Duration::from_secs(8), |b| {
        b == "http.disconnect"
    });
    drop(c);
}

/// Back-pressure: while the client reads nothing, `await send(..)` stays
/// pending, so the app's count of sent 64 KiB chunks stops well below the
/// total (buffering is bounded); once the client reads, it all arrives.
#[test]
fn a_client_that_stops_reading_pauses_send() {
    const TOTAL: usize = 1024; // 64 MiB
    let srv = start(&[]);
    let stream = TcpStream::connect(srv.addr()).unwrap();
    // A small fixed receive buffer (no autotuning up to tcp_rmem's max), so
    // the kernel holds little on our side.
    nix::sys::socket::setsockopt(&stream, nix::sys::socket::sockopt::RcvBuf, &(64 * 1024))
        .expect("SO_RCVBUF");
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    let mut c = Conn::over(Box::new(stream));
    c.send(
        format!("GET /slow-stream?total={TOTAL} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .as_bytes(),
    );

    // Wait until the count has not moved for a second (bounded).
    let deadline = Instant::now() + Duration::from_secs(30);
    let (mut last, mut since) = (usize::MAX, Instant::now());
    let stalled_at = loop {
        let n: usize = fetch(srv.addr(), "/progress")
            .and_then(|b| b.parse().ok())
            .unwrap_or(0);
        if n != last {
            (last, since) = (n, Instant::now());
        } else if n > 0 && since.elapsed() >= Duration::from_secs(1) {
            break n;
        }
        assert!(
            Instant::now() < deadline,
            "the sent count never settled; last {last} of {TOTAL}"
        );
        thread::sleep(Duration::from_millis(50));
    };
    assert!(
        stalled_at < TOTAL / 4,
        "with the client not reading, the app sent {stalled_at} of {TOTAL} chunks \
         ({} MiB buffered): send() does not wait for the client",
        stalled_at / 16
    );

    let r = c.read_response();
    assert_eq!(r.status, 200);
    assert_eq!(r.body.len(), TOTAL * 64 * 1024);
    assert!(r.body.iter().all(|&b| b == b's'));
    poll(&srv, "/progress", Duration::from_secs(10), |b| {
        b == TOTAL.to_string()
    });
}

/// `http.response.pathsend` sends the named file as the body.
#[test]
fn pathsend_sends_the_file() {
    let srv = start(&[]);
    let r = srv.get("/pathsend");
    assert_eq!(r.status, 200, "{}", r.dump());
    let file = fs::read(apps_dir().join("asgi_app.py")).unwrap();
    assert_eq!(
        r.header("Content-Length"),
        Some(file.len().to_string().as_str())
    );
    assert!(r.body == file, "pathsend body differs from the file");
}

/// A 6 MiB file by pathsend arrives whole over plain TCP (where the kernel
/// copies it with sendfile, the client reading slowly at first) and over TLS
/// (where it goes through the session), and the connection serves on.
#[test]
fn pathsend_sends_a_large_file_whole_with_and_without_tls() {
    let dir = TempDir::new("asgi-pathsend");
    let big = dir.path().join("big.bin");
    let data = pseudo_random(6 << 20, 7);
    fs::write(&big, &data).unwrap();
    let ca = TestCa::new(dir.path(), "test CA");
    let id = ca.server("server");
    let target = format!("/pathsend?file={}", big.display());
    let request = format!("GET {target} HTTP/1.1\r\nHost: x\r\n\r\n");
    let plain = start(&[]);
    let mut c = plain.connect();
    c.send(request.as_bytes());
    // Let the socket fill before reading.
    thread::sleep(Duration::from_millis(200));
    let r = c.read_response();
    assert_eq!(r.status, 200, "{}", r.dump());
    assert!(
        r.body == data,
        "plain: {} bytes, not the file",
        r.body.len()
    );
    c.send(b"GET /hello HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(c.read_response().status, 200);
    let tls = asgi(&[
        "--certfile",
        id.cert.to_str().unwrap(),
        "--keyfile",
        id.key.to_str().unwrap(),
    ])
    .start();
    let config = ca.client_config(None, &[&rustls::version::TLS13]);
    let mut c = tls_connect(tls.addr(), config).unwrap().conn;
    c.send(request.as_bytes());
    let r = c.read_response();
    assert_eq!(r.status, 200, "{}", r.dump());
    assert!(r.body == data, "tls: {} bytes, not the file", r.body.len());
}

/// An app raising before `http.response.start`: a 500, the traceback in the
/// error log, an access-log line, and the worker goes on serving.
#[test]
fn app_raising_before_start_is_a_500_with_an_access_log_line() {
    let srv = start(&["--access-logfile", "-"]);
    let r = srv.get("/raise");
    assert_eq!(r.status, 500, "{}", r.dump());
    srv.wait_log(
        Server::stdout,
        "\"GET /raise HTTP/1.1\" 500",
        Duration::from_secs(5),
    );
    srv.wait_stderr("asgi_app /raise refuses", Duration::from_secs(5));
    srv.assert_get("/hello", "Hello, ASGI!\n");
}

/// `--asgi-loop asyncio` runs the app on asyncio's loop; `uvloop` and the
/// default (auto) on uvloop's when it is importable (skipped with a note
/// otherwise).
#[test]
fn asgi_loop_picks_the_event_loop() {
    let srv = start(&["--asgi-loop", "asyncio"]);
    let lp = fetch(srv.addr(), "/loop").unwrap_or_default();
    assert!(
        lp.starts_with("asyncio."),
        "--asgi-loop asyncio ran on {lp:?}"
    );
    drop(srv);

    if let Err(e) = python_imports("uvloop") {
        eprintln!(
            "note: skipping the --asgi-loop uvloop checks: uvloop is not importable by {} \
             (sh .ci/install-deps installs it): {e}",
            python()
        );
        return;
    }
    for args in [&["--asgi-loop", "uvloop"][..], &[]] {
        let srv = start(args);
        let lp = fetch(srv.addr(), "/loop").unwrap_or_default();
        assert!(lp.starts_with("uvloop"), "{args:?} ran on {lp:?}");
    }
}

// ---- Lifespan -------------------------------------------------------------

/// Lifespan order: startup before the first request, shutdown on TERM after
/// the request in flight finished.
#[test]
fn lifespan_startup_runs_before_requests_and_shutdown_after_them() {
    let dir = TempDir::new("asgi-lifespan");
    let log = dir.path().join("lifespan.log");
    let mut srv = asgi(&["--graceful-timeout", "20"])
        .env("ASGI_LIFESPAN_LOG", &log)
        .in_dir(dir)
        .start();
    srv.assert_get("/hello", "Hello, ASGI!\n");
    // The app writes its line just after the response has gone out.
    let want = "startup\nhttp /hello\n";
    assert!(
        wait_file_eq(&log, want, Duration::from_secs(5)),
        "lifespan log is {:?}, want {want:?}",
        fs::read_to_string(&log).unwrap_or_default()
    );
    let pending = sleep_in_flight(&srv, 0.5);
    srv.signal(Signal::SIGTERM);
    let r = pending.join().expect("client thread");
    assert_eq!(r.status, 200, "{}", r.dump());
    let status = srv.wait_exit(Duration::from_secs(20));
    assert_eq!(status.code(), Some(0), "exit status {status}");
    assert_eq!(
        fs::read_to_string(&log).unwrap(),
        "startup\nhttp /hello\nhttp /sleep\nshutdown\n"
    );
}

/// `lifespan.startup.failed`: the worker does not boot, the master exits 3
/// without READY=1, and the app's message is in the error log.
#[test]
fn lifespan_startup_failed_exits_3_with_the_message() {
    let mut srv = Server::builder("asgi_lifespan_fail:app")
        .args(["-k", "asgi"])
        .spawn();
    let status = srv.wait_exit(Duration::from_secs(30));
    assert_eq!(status.code(), Some(3), "exit status {status}");
    assert!(
        !srv.notified("READY=1"),
        "READY=1 for a worker that can't boot"
    );
    let log = srv.stderr();
    assert!(log.contains("database unreachable"), "{log}");
}

/// With `--asgi-lifespan on`, an exception in the lifespan startup is fatal
/// too: exit 3, its message in the error log.
#[test]
fn lifespan_on_exception_in_startup_exits_3() {
    let mut srv = Server::builder("asgi_lifespan_fail:app")
        .args(["-k", "asgi", "--asgi-lifespan", "on"])
        .env("ASGI_FAIL_MODE", "raise")
        .spawn();
    let status = srv.wait_exit(Duration::from_secs(30));
    assert_eq!(status.code(), Some(3), "exit status {status}");
    let log = srv.stderr();
    assert!(log.contains("database unreachable"), "{log}");
}

/// In the default `auto` mode an app whose lifespan raises is taken as one
/// without lifespan support: it serves.
#[test]
fn lifespan_auto_serves_an_app_whose_lifespan_raises() {
    let srv = Server::builder("asgi_lifespan_fail:app")
        .args(["-k", "asgi"])
        .env("ASGI_FAIL_MODE", "raise")
        .start();
    srv.assert_get("/", "served\n");
}

/// `--asgi-lifespan off` never calls the app with a lifespan scope, at start
/// or at stop.
#[test]
fn lifespan_off_never_sends_lifespan_events() {
    let dir = TempDir::new("asgi-nolife");
    let log = dir.path().join("lifespan.log");
    let mut srv = asgi(&["--asgi-lifespan", "off"])
        .env("ASGI_LIFESPAN_LOG", &log)
        .in_dir(dir)
        .start();
    srv.assert_get("/hello", "Hello, ASGI!\n");
    srv.signal(Signal::SIGTERM);
    let status = srv.wait_exit(Duration::from_secs(20));
    assert_eq!(status.code(), Some(0), "exit status {status}");
    assert_eq!(fs::read_to_string(&log).unwrap(), "http /hello\n");
}

// ---- Frameworks -----------------------------------------------------------

/// One framework app's routes: JSON, POST echo, StreamingResponse and a
/// WebSocket echo with a clean client close.
fn framework_routes(app: &str, module: &str) {
    require_module(module);
    let srv = Server::start(app, &["-k", "asgi"]);
    let r = srv.get("/items/42?q=rust");
    assert_eq!(r.status, 200, "{}", r.dump());
    assert!(
        r.header("Content-Type")
            .is_some_and(|t| t.starts_with("application/json")),
        "{}",
        r.dump()
    );
    assert_eq!(
        r.json(),
        serde_json::json!({"framework": module, "item_id": 42, "q": "rust"})
    );

    let data = pseudo_random(1 << 20, 17);
    let stream = TcpStream::connect(srv.addr()).unwrap();
    stream.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    let mut writer = stream.try_clone().unwrap();
    let mut req = format!(
        "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        data.len()
    )
    .into_bytes();
    req.extend_from_slice(&data);
    let upload = thread::spawn(move || writer.write_all(&req).unwrap());
    let r = Conn::over(Box::new(stream)).read_response();
    upload.join().expect("upload thread");
    assert_eq!(r.status, 200, "{}", r.dump());
    assert!(r.body == data, "{module}: POST echo differs");

    let r = srv.get("/stream?n=4");
    assert_eq!(r.status, 200, "{}", r.dump());
    assert!(r.chunked, "StreamingResponse not chunked: {}", r.dump());
    assert_eq!(r.body_str(), "line 0\nline 1\nline 2\nline 3\n");

    let mut ws = ws(&srv, "/ws", &[]);
    ws.send_text("from rust");
    assert_eq!(ws.recv_message(), Message::Text("from rust".into()));
    let bin = pseudo_random(5000, 19);
    ws.send_binary(&bin);
    assert_eq!(ws.recv_message(), Message::Binary(bin));
    ws.send_close(1000);
    assert_eq!(ws.expect_close(FRAME_TIMEOUT), Some(1000));
}

/// FastAPI: JSON, POST echo, StreamingResponse, WebSocket.
#[test]
fn fastapi_routes() {
    framework_routes("asgi_fastapi:app", "fastapi");
}

/// Starlette: JSON, POST echo, StreamingResponse, WebSocket.
/// Django's ASGI handler: a sync view (run in a thread by asgiref), an async
/// view on the event loop, a streamed response, a 404, and a POST refused
/// by CSRF protection.
#[test]
fn django_asgi_serves_sync_and_async_views() {
    require_module("django");
    let srv = Server::builder("django_site.asgi:application")
        .env("DJANGO_SETTINGS_MODULE", "django_site.settings")
        .args(["-k", "asgi", "-w", "1"])
        .start();
    let mut c = srv.connect();
    c.send(b"GET /where HTTP/1.1\r\nHost: example.test:8123\r\n\r\n");
    let r = c.read_response();
    assert_eq!(
        (r.status, r.body_str().as_str()),
        (200, "http://example.test:8123/where")
    );
    c.send(b"GET /pause HTTP/1.1\r\nHost: example.test\r\n\r\n");
    let r = c.read_response();
    assert_eq!(r.status, 200, "{}", r.dump());
    assert_eq!(r.json()["async"], true);
    c.send(b"GET /stream HTTP/1.1\r\nHost: example.test\r\n\r\n");
    let r = c.read_response();
    assert_eq!(r.status, 200, "{}", r.dump());
    assert_eq!(r.body_str().matches("data: ").count(), 4, "{}", r.dump());
    c.send(b"GET /nowhere HTTP/1.1\r\nHost: example.test\r\n\r\n");
    assert_eq!(c.read_response().status, 404);
    c.send(b"POST /form HTTP/1.1\r\nHost: example.test\r\nContent-Length: 6\r\nContent-Type: application/x-www-form-urlencoded\r\n\r\nname=x");
    assert_eq!(c.read_response().status, 403);
}

#[test]
fn starlette_routes() {
    framework_routes("asgi_starlette:app", "starlette");
}

// ---- Worker life -----------------------------------------------------------

/// A coroutine that blocks the event loop (synchronous sleep) stops the
/// worker's heartbeat: the master's timeout replaces the worker and logs its
/// Python stacks, the blocked one's in the app, and the new worker serves.
#[test]
fn a_coroutine_blocking_the_loop_is_caught_by_the_timeout() {
    let srv = start(&["--timeout", "2"]);
    let old = srv.worker_pids();
    let addr = srv.addr();
    let blocked = thread::spawn(move || {
        let mut c = Conn::tcp(addr);
        c.set_read_timeout(Duration::from_secs(30));
        c.send(b"GET /block HTTP/1.1\r\nHost: x\r\n\r\n");
        c.try_read_response(false)
    });
    srv.wait_stderr("WORKER TIMEOUT", Duration::from_secs(20));
    let stderr = srv.wait_stderr("asgi_app.py", Duration::from_secs(10));
    assert!(
        stderr.contains("in app"),
        "no stack of the blocked coroutine:\n{stderr}"
    );
    // The blocked client is not left hanging.
    let r = blocked.join().unwrap();
    assert!(r.is_err() || r.is_ok_and(|r| r.status >= 500));
    srv.wait_workers(Duration::from_secs(20), |p| {
        p.len() == 1 && p != old.as_slice()
    });
    assert_eq!(srv.get("/hello").status, 200);
}

/// `max_requests` retires an ASGI worker as it does a WSGI one: the request
/// that reaches the limit is answered, the master starts a fresh worker, and
/// no request fails on the way.
#[test]
fn max_requests_replaces_the_asgi_worker() {
    let srv = start(&["--max-requests", "5"]);
    let first = fetch(srv.addr(), "/pid").expect("first request");
    let mut pids = std::collections::BTreeSet::new();
    for _ in 0..30 {
        let pid = fetch(srv.addr(), "/pid").expect("every request is answered");
        pids.insert(pid);
    }
    assert!(pids.len() >= 3, "workers seen: {pids:?} (first {first})");
}

/// The config file's `pre_request` and `post_request` hooks run around each
/// HTTP call, as for WSGI: `req` as Gunicorn builds it, the scope where WSGI
/// passes the environ, and `resp` with the status and body length sent.
#[test]
fn request_hooks_run_around_each_http_call() {
    let dir = TempDir::new("asgi-hooks");
    let log = dir.path().join("hooks.log");
    let conf = format!(
        r#"
def _record(line):
    with open({log:?}, "a") as f:
        f.write(line + "\n")

def pre_request(worker, req):
    _record(f"pre {{req.method}} {{req.path}} {{req.query}}")

def post_request(worker, req, environ, resp):
    _record(f"post {{req.path}} {{environ['type']}} {{environ['path']}} {{resp.status_code}} {{resp.sent}}")
"#
    );
    fs::write(dir.path().join("hooks.conf.py"), conf).unwrap();
    let srv = asgi(&["-c", "hooks.conf.py"]).in_dir(dir).start();
    assert_eq!(srv.get("/hello?x=1").status, 200);
    assert_eq!(srv.get("/raise").status, 500);
    // post_request runs when the call returns, which may be after the
    // client has its response.
    let text = poll_file(&log, |t| t.lines().count() >= 2);
    let want = "pre GET /hello x=1\npost /hello http /hello 200 13\n";
    assert!(text.starts_with(want), "{text:?}");
    let text = poll_file(&log, |t| t.lines().count() >= 4);
    assert!(
        text.ends_with("pre GET /raise \npost /raise http /raise 500 0\n"),
        "{text:?}"
    );
}

/// The file's contents once `pred` holds (bounded).
fn poll_file(path: &std::path::Path, pred: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let text = fs::read_to_string(path).unwrap_or_default();
        if pred(&text) || Instant::now() >= deadline {
            return text;
        }
        thread::sleep(Duration::from_millis(20));
    }
}
