//! Failures: app exceptions become 500s and tracebacks in the log; bad
//! requests get 400/414/431 and a closed connection; the server keeps serving.

use std::time::Duration;

use crate::server_test;
use crate::support::Server;

const LOG_WAIT: Duration = Duration::from_secs(5);

/// Sends `raw` on a fresh connection and expects exactly one error response
/// with `status`, then a close.
#[track_caller]
fn expect_rejected(srv: &Server, raw: &[u8], status: u16) {
    let mut c = srv.connect();
    // The server may answer and close before reading everything we send.
    let _ = c.try_send(raw);
    let r = match c.try_read_response(false) {
        Ok(r) => r,
        Err(e) => panic!(
            "no response to {:?}: {e}",
            String::from_utf8_lossy(&raw[..raw.len().min(200)])
        ),
    };
    assert_eq!(
        r.status,
        status,
        "request {:?} got {}",
        String::from_utf8_lossy(&raw[..raw.len().min(200)]),
        r.dump()
    );
    assert!(r.status_line.starts_with("HTTP/1.1 "), "{}", r.status_line);
    c.expect_closed(Duration::from_secs(5));
}

server_test!(app_exception_is_500_and_logged, "raises:app", |srv| {
    let r = srv.get("/boom");
    assert_eq!(
        r.status_line,
        "HTTP/1.1 500 Internal Server Error",
        "{}",
        r.dump()
    );
    let stderr = srv.wait_stderr(
        "DeliberateFailure: deliberate failure in raises.py",
        LOG_WAIT,
    );
    assert!(
        stderr.contains("Traceback (most recent call last)"),
        "{stderr}"
    );
    // The same worker goes on serving.
    srv.assert_get("/", "Hello, World!\n");
    let r = srv.get("/boom");
    assert_eq!(r.status, 500);
    srv.assert_get("/", "Hello, World!\n");
});

server_test!(
    app_exception_on_keepalive_connection_is_500,
    "raises:app",
    |srv| {
        let mut c = srv.connect();
        c.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
        assert_eq!(c.read_response().status, 200);
        c.send(b"GET /boom HTTP/1.1\r\nHost: x\r\n\r\n");
        let r = c.read_response();
        assert_eq!(
            r.status_line,
            "HTTP/1.1 500 Internal Server Error",
            "{}",
            r.dump()
        );
        srv.assert_get("/", "Hello, World!\n");
    }
);

server_test!(
    exception_mid_body_never_looks_complete,
    "raises:app",
    |srv| {
        let mut c = srv.connect();
        c.send(b"GET /boom-late HTTP/1.1\r\nHost: x\r\n\r\n");
        // Headers went out with the first chunk; the failure must not be passed
        // off as a complete body (no terminating chunk), and the connection ends.
        match c.try_read_response(false) {
            Ok(r) => panic!("truncated body was framed as complete: {}", r.dump()),
            Err(e) => assert!(
                matches!(
                    e.kind(),
                    std::io::ErrorKind::UnexpectedEof | std::io::ErrorKind::ConnectionReset
                ),
                "expected the connection to be closed mid-body, got {e}"
            ),
        }
        srv.wait_stderr("deliberate failure mid-stream in raises.py", LOG_WAIT);
        srv.assert_get("/", "Hello, World!\n");
    }
);

server_test!(malformed_requests_get_400_and_close, "hello:app", |srv| {
    let cases: &[&[u8]] = &[
        b"GARBAGE\r\n\r\n",
        b"GET / HTTP/1.1 extra\r\nHost: x\r\n\r\n",
        b"GET / FOO/1.1\r\nHost: x\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost x\r\n\r\n",
        b"GET / HTTP/1.1\r\nBad Name: v\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd",
        b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    ];
    for raw in cases {
        expect_rejected(&srv, raw, 400);
        srv.assert_get("/", "Hello, World!\n");
    }
});

server_test!(long_request_line_is_414, "hello:app", |srv| {
    // Default limit_request_line is 4094.
    let path = "/".to_string() + &"a".repeat(5000);
    expect_rejected(
        &srv,
        format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes(),
        414,
    );
    srv.assert_get("/", "Hello, World!\n");
});

server_test!(
    limit_request_line_is_configurable,
    "hello:app",
    ["--limit-request-line", "100"],
    |srv| {
        let ok = "/".to_string() + &"b".repeat(60);
        srv.assert_get(&ok, "Hello, World!\n");
        let long = "/".to_string() + &"b".repeat(150);
        expect_rejected(
            &srv,
            format!("GET {long} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes(),
            414,
        );
        srv.assert_get("/", "Hello, World!\n");
    }
);

server_test!(
    too_many_headers_is_431,
    "hello:app",
    ["--limit-request-fields", "10"],
    |srv| {
        let mut few = String::from("GET / HTTP/1.1\r\nHost: x\r\n");
        for i in 0..5 {
            few += &format!("X-H{i}: v\r\n");
        }
        few += "Connection: close\r\n\r\n";
        assert_eq!(srv.request(few.as_bytes()).status, 200);

        let mut many = String::from("GET / HTTP/1.1\r\nHost: x\r\n");
        for i in 0..30 {
            many += &format!("X-H{i}: v\r\n");
        }
        many += "\r\n";
        expect_rejected(&srv, many.as_bytes(), 431);
        srv.assert_get("/", "Hello, World!\n");
    }
);

server_test!(
    too_large_header_is_431,
    "hello:app",
    ["--limit-request-field_size", "100"],
    |srv| {
        let small = format!(
            "GET / HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\nConnection: close\r\n\r\n",
            "v".repeat(50)
        );
        assert_eq!(srv.request(small.as_bytes()).status, 200);
        let big = format!(
            "GET / HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n",
            "v".repeat(300)
        );
        expect_rejected(&srv, big.as_bytes(), 431);
        srv.assert_get("/", "Hello, World!\n");
    }
);

server_test!(default_header_size_limit_is_enforced, "hello:app", |srv| {
    // Default limit_request_field_size is 8190.
    let big = format!(
        "GET / HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n",
        "v".repeat(10_000)
    );
    expect_rejected(&srv, big.as_bytes(), 431);
    srv.assert_get("/", "Hello, World!\n");
});

server_test!(
    status_431_has_standard_reason,
    "hello:app",
    ["--limit-request-fields", "2"],
    |srv| {
        let mut c = srv.connect();
        let _ = c.try_send(b"GET / HTTP/1.1\r\nHost: x\r\nA: 1\r\nB: 2\r\nC: 3\r\nD: 4\r\n\r\n");
        let r = c.read_response();
        assert_eq!(
            r.status_line,
            "HTTP/1.1 431 Request Header Fields Too Large",
            "{}",
            r.dump()
        );
    }
);

server_test!(status_400_has_standard_reason, "hello:app", |srv| {
    let r = srv.request(b"GARBAGE\r\n\r\n");
    assert_eq!(r.status_line, "HTTP/1.1 400 Bad Request", "{}", r.dump());
});

// start_response contract violations: a 500 that leaks nothing the app set.
server_test!(start_response_violations_are_500, "bad_status:app", |srv| {
    for path in [
        "/bad-status",
        "/newline-header",
        "/bad-header-name",
        "/non-str-header",
        "/str-body",
        "/no-start-response",
        "/double-start",
    ] {
        let r = srv.get(path);
        assert_eq!(
            r.status_line,
            "HTTP/1.1 500 Internal Server Error",
            "{path}: {}",
            r.dump()
        );
        assert!(
            r.header("X-Injected").is_none(),
            "{path}: header injection: {}",
            r.dump()
        );
        assert!(r.header("X-Bad").is_none(), "{path}: {}", r.dump());
        assert!(!r.body_str().contains("never sent"), "{path}: {}", r.dump());
        srv.assert_get("/", "Hello, World!\n");
    }
});

server_test!(obsolete_line_folding_is_400, "hello:app", |srv| {
    expect_rejected(
        &srv,
        b"GET / HTTP/1.1\r\nHost: x\r\nX-Folded: a\r\n b\r\n\r\n",
        400,
    );
    srv.assert_get("/", "Hello, World!\n");
});

server_test!(invalid_chunk_size_is_400, "echo_environ:app", |srv| {
    for body in [
        &b"zz\r\nab\r\n0\r\n\r\n"[..],
        b"ffffffffffffffffffff\r\nab\r\n0\r\n\r\n",
    ] {
        let mut raw = b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
        raw.extend_from_slice(body);
        expect_rejected(&srv, &raw, 400);
        srv.assert_get_status("/", 200);
    }
});

server_test!(
    short_body_closes_the_connection,
    "wrong_length:app",
    |srv| {
        let mut c = srv.connect();
        c.send(b"GET /short HTTP/1.1\r\nHost: x\r\n\r\n");
        // Declared 100, sent 10: the client must see the connection end, not hang.
        match c.try_read_response(false) {
            Ok(r) => panic!("a 10-byte body passed as 100: {}", r.dump()),
            Err(e) => assert_eq!(e.kind(), std::io::ErrorKind::UnexpectedEof, "{e}"),
        }
        srv.assert_get("/", "0123456789");
    }
);

server_test!(
    long_body_is_cut_to_content_length,
    "wrong_length:app",
    |srv| {
        let mut c = srv.connect();
        c.send(
            b"GET /long HTTP/1.1\r\nHost: x\r\n\r\n\
          GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        );
        let r = c.read_response();
        assert_eq!(r.status_line, "HTTP/1.1 200 OK", "{}", r.dump());
        assert_eq!(r.body, b"01234");
        // Whatever follows must be the next response (or nothing), never the
        // 5 extra bytes.
        let rest = c.read_to_close().unwrap_or_default();
        assert!(
            rest.is_empty() || rest.starts_with(b"HTTP/1.1 200 OK\r\n"),
            "stray bytes after a Content-Length body: {:?}",
            String::from_utf8_lossy(&rest[..rest.len().min(200)])
        );
    }
);
