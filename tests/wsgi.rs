//! PEP 3333 conformance: the environ, request bodies (length, chunked,
//! 100-continue), response framing, wsgi.file_wrapper, a validator-wrapped
//! app, and a real framework (Flask).

use std::time::Duration;

use nix::sys::signal::Signal;
use serde_json::{Value, json};

use crate::server_test;
use crate::support::{Conn, Server, TempDir, wait_file};

/// The body filewrapper.py serves: bytes 0..=255 repeated to 102400 bytes.
fn file_pattern() -> Vec<u8> {
    (0..400).flat_map(|_| 0..=255u8).collect()
}

#[test]
fn environ_has_pep3333_keys() {
    let srv = Server::start("echo_environ:app", &["-w", "2"]);
    let mut c = srv.connect();
    let port = srv.port();
    c.send(
        format!(
            "GET /caf%C3%A9/x?a=1&b=%20 HTTP/1.1\r\n\
             Host: 127.0.0.1:{port}\r\n\
             X-Custom-Header: custom value\r\n\
             Accept: text/plain\r\n\
             Connection: close\r\n\r\n"
        )
        .as_bytes(),
    );
    let r = c.read_response();
    assert_eq!(r.status_line, "HTTP/1.1 200 OK", "{}", r.dump());
    let env = r.json();
    let expect = |key: &str, value: Value| {
        assert_eq!(env[key], value, "environ[{key:?}] in {env:#}");
    };
    expect("REQUEST_METHOD", json!("GET"));
    expect("SCRIPT_NAME", json!(""));
    // PEP 3333: percent-decoded bytes, exposed as latin-1 str.
    expect("PATH_INFO", json!("/caf\u{c3}\u{a9}/x"));
    expect("QUERY_STRING", json!("a=1&b=%20"));
    expect("RAW_URI", json!("/caf%C3%A9/x?a=1&b=%20"));
    expect("SERVER_NAME", json!("127.0.0.1"));
    expect("SERVER_PORT", json!(port.to_string()));
    expect("SERVER_PROTOCOL", json!("HTTP/1.1"));
    expect("HTTP_HOST", json!(format!("127.0.0.1:{port}")));
    expect("HTTP_X_CUSTOM_HEADER", json!("custom value"));
    expect("HTTP_ACCEPT", json!("text/plain"));
    expect("HTTP_CONNECTION", json!("close"));
    expect("REMOTE_ADDR", json!("127.0.0.1"));
    expect("REMOTE_PORT", json!(c.local_port.expect("tcp").to_string()));
    expect("wsgi.version", json!("(1, 0)"));
    expect("wsgi.url_scheme", json!("http"));
    expect("wsgi.multithread", json!("False"));
    expect("wsgi.multiprocess", json!("True"));
    expect("wsgi.run_once", json!("False"));
    expect("wsgi.input_terminated", json!("True"));
    expect("body", json!(""));
    expect("body_len", json!(0));
    for key in ["wsgi.input", "wsgi.errors", "wsgi.file_wrapper"] {
        assert!(env.get(key).is_some(), "environ lacks {key}: {env:#}");
    }
    // A GET without a body has no CONTENT_TYPE/CONTENT_LENGTH (or empty ones).
    for key in ["CONTENT_TYPE", "CONTENT_LENGTH"] {
        let v = env.get(key).and_then(Value::as_str).unwrap_or("");
        assert_eq!(v, "", "environ[{key:?}] for a GET without body");
    }
}

server_test!(
    environ_multiprocess_false_with_one_worker,
    "echo_environ:app",
    ["-w", "1"],
    |srv| {
        let env = srv.get("/").json();
        assert_eq!(env["wsgi.multiprocess"], json!("False"));
        assert_eq!(env["wsgi.multithread"], json!("False"));
    }
);

server_test!(
    post_with_content_length_is_read,
    "echo_environ:app",
    |srv| {
        let r = srv.request(
        b"POST /submit HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\n\
          Content-Length: 11\r\nConnection: close\r\n\r\nhello=world",
    );
        assert_eq!(r.status_line, "HTTP/1.1 200 OK", "{}", r.dump());
        let env = r.json();
        assert_eq!(env["REQUEST_METHOD"], "POST");
        assert_eq!(env["CONTENT_TYPE"], "application/x-www-form-urlencoded");
        assert_eq!(env["CONTENT_LENGTH"], "11");
        assert_eq!(env["body"], "hello=world");
        assert_eq!(env["body_len"], 11);
        assert!(env.get("HTTP_CONTENT_TYPE").is_none(), "{env:#}");
        assert!(env.get("HTTP_CONTENT_LENGTH").is_none(), "{env:#}");
    }
);

server_test!(
    post_with_chunked_body_is_decoded,
    "echo_environ:app",
    |srv| {
        let r = srv.request(
        b"POST /chunked HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n\
          5\r\nhello\r\n6;ext=1\r\n world\r\n1a\r\nabcdefghijklmnopqrstuvwxyz\r\n0\r\n\r\n",
    );
        assert_eq!(r.status_line, "HTTP/1.1 200 OK", "{}", r.dump());
        let env = r.json();
        assert_eq!(env["body"], "hello worldabcdefghijklmnopqrstuvwxyz");
        assert_eq!(env["body_len"], 37);
        assert_eq!(env["wsgi.input_terminated"], "True");
    }
);

server_test!(
    expect_100_continue_gets_interim_response,
    "echo_environ:app",
    |srv| {
        let mut c = srv.connect();
        c.send(
            b"POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\
          Expect: 100-continue\r\nConnection: close\r\n\r\n",
        );
        // The body is withheld until the interim response arrives.
        c.set_read_timeout(Duration::from_secs(5));
        let interim = c.read_response();
        assert_eq!(
            interim.status_line,
            "HTTP/1.1 100 Continue",
            "{}",
            interim.dump()
        );
        c.send(b"hello");
        let r = c.read_response();
        assert_eq!(r.status_line, "HTTP/1.1 200 OK", "{}", r.dump());
        assert_eq!(r.json()["body"], "hello");
    }
);

server_test!(streamed_body_is_chunked_on_http11, "stream:app", |srv| {
    let mut c = srv.connect();
    c.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    let r = c.read_response();
    assert_eq!(r.status_line, "HTTP/1.1 200 OK", "{}", r.dump());
    assert!(r.chunked, "no Transfer-Encoding: chunked: {}", r.dump());
    assert_eq!(r.header("Content-Length"), None);
    assert_eq!(r.body_str(), "chunk0\nchunk1\nchunk2\nchunk3\nchunk4\n");
    // Chunked framing keeps the connection reusable.
    c.send(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    let again = c.read_response();
    assert_eq!(again.body, r.body);
});

server_test!(
    streamed_body_is_close_delimited_on_http10,
    "stream:app",
    |srv| {
        let mut c = srv.connect();
        c.send(b"GET / HTTP/1.0\r\nHost: x\r\n\r\n");
        let r = c.read_response();
        assert_eq!(r.status, 200, "{}", r.dump());
        assert!(
            !r.chunked,
            "HTTP/1.0 client got a chunked body: {}",
            r.dump()
        );
        assert!(r.close_delimited, "{}", r.dump());
        assert_eq!(r.body_str(), "chunk0\nchunk1\nchunk2\nchunk3\nchunk4\n");
    }
);

server_test!(file_wrapper_body_is_exact, "filewrapper:app", |srv| {
    let r = srv.get("/");
    assert_eq!(r.status_line, "HTTP/1.1 200 OK", "{}", r.dump());
    assert_eq!(r.header("Content-Length"), Some("102400"));
    assert_eq!(r.body.len(), 102400);
    assert!(
        r.body == file_pattern(),
        "file_wrapper body differs from the file"
    );

    // Without Content-Length the server may chunk or derive the length
    // itself, but the framing must be explicit on HTTP/1.1 and exact.
    let r = srv.get("/?nolength");
    assert_eq!(r.status_line, "HTTP/1.1 200 OK", "{}", r.dump());
    assert!(
        !r.close_delimited,
        "HTTP/1.1 body framed by close: {}",
        r.dump()
    );
    assert!(
        r.chunked || r.header("Content-Length") == Some("102400"),
        "{}",
        r.dump()
    );
    assert!(
        r.body == file_pattern(),
        "file_wrapper body (no length) differs"
    );
});

server_test!(
    file_wrapper_starts_at_current_file_offset,
    "filewrapper:app",
    |srv| {
        let expected = &file_pattern()[1000..];
        for path in ["/?seek=1000", "/?seek=1000&nolength"] {
            let r = srv.get(path);
            assert_eq!(r.status_line, "HTTP/1.1 200 OK", "{path}: {}", r.dump());
            assert_eq!(r.body.len(), expected.len(), "{path}: body length");
            assert!(
                r.body == expected,
                "{path}: body differs from the file after offset 1000"
            );
            if let Some(cl) = r.header("Content-Length") {
                assert_eq!(cl, "101400", "{path}");
            }
        }
    }
);

server_test!(file_wrapper_head_has_no_body, "filewrapper:app", |srv| {
    let mut c = srv.connect();
    c.send(b"HEAD / HTTP/1.1\r\nHost: x\r\n\r\n");
    let r = c.read_head_response();
    assert_eq!(r.status_line, "HTTP/1.1 200 OK", "{}", r.dump());
    assert_eq!(r.header("Content-Length"), Some("102400"));
    // The connection stays in sync: the next response starts right away.
    c.send(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    let r = c.read_response();
    assert_eq!(r.status_line, "HTTP/1.1 200 OK", "{}", r.dump());
    assert_eq!(r.body.len(), 102400);
});

/// Drives wsgiref.validate.validator with every kind of request; any PEP 3333
/// violation surfaces as an AssertionError (500 or a logged traceback).
#[test]
fn validator_sees_no_violations() {
    let mut srv = Server::start("validated:app", &[]);
    let cases: &[(&[u8], &str)] = &[
        (b"GET /read HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", ""),
        (
            b"POST /read HTTP/1.1\r\nHost: x\r\nContent-Length: 18\r\nConnection: close\r\n\r\n\
              line one\nline two\n",
            "line one\nline two\n",
        ),
        (
            b"POST /readline HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n\
              4\r\nab\nc\r\n5\r\nd\nef\n\r\n0\r\n\r\n",
            "ab\ncd\nef\n",
        ),
        (
            b"POST /iter HTTP/1.1\r\nHost: x\r\nContent-Length: 9\r\nConnection: close\r\n\r\nx\ny\nzzzz\n",
            "x\ny\nzzzz\n",
        ),
        (b"GET /read HTTP/1.0\r\n\r\n", ""),
    ];
    for (raw, body) in cases {
        let r = srv.request(raw);
        assert_eq!(
            r.status,
            200,
            "request {:?}: {}",
            String::from_utf8_lossy(raw),
            r.dump()
        );
        assert_eq!(
            r.body_str(),
            *body,
            "request {:?}",
            String::from_utf8_lossy(raw)
        );
    }

    // HEAD.
    let mut c = srv.connect();
    c.send(b"HEAD /read HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    let r = c.read_head_response();
    assert_eq!(r.status_line, "HTTP/1.1 200 OK", "{}", r.dump());
    c.expect_closed(Duration::from_secs(5));

    // Keep-alive, one request at a time.
    let mut c = srv.connect();
    for i in 0..3 {
        c.send(b"POST /read HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc");
        let r = c.read_response();
        assert_eq!(
            r.status_line,
            "HTTP/1.1 200 OK",
            "keep-alive {i}: {}",
            r.dump()
        );
        assert_eq!(r.body, b"abc");
    }

    // Pipelined, in one write.
    let mut c = srv.connect();
    c.send(
        b"POST /read HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n12\
          GET /read HTTP/1.1\r\nHost: x\r\n\r\n\
          POST /iter HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nz\n\r\n0\r\n\r\n\
          HEAD /read HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    for (i, body) in ["12", "", "z\n"].iter().enumerate() {
        let r = c.read_response();
        assert_eq!(
            r.status_line,
            "HTTP/1.1 200 OK",
            "pipelined {i}: {}",
            r.dump()
        );
        assert_eq!(r.body_str(), *body, "pipelined {i}");
    }
    let r = c.read_head_response();
    assert_eq!(
        r.status_line,
        "HTTP/1.1 200 OK",
        "pipelined HEAD: {}",
        r.dump()
    );
    c.expect_closed(Duration::from_secs(5));

    // Stop gracefully so every worker flushes its log, then inspect it.
    srv.signal(Signal::SIGTERM);
    let status = srv.wait_exit(Duration::from_secs(15));
    assert_eq!(status.code(), Some(0), "exit status {status}");
    let stderr = srv.stderr();
    assert!(
        !stderr.contains("AssertionError"),
        "validator complained:\n{stderr}"
    );
    assert!(
        !stderr.contains("Traceback"),
        "traceback in the log:\n{stderr}"
    );
}

server_test!(flask_get, "flask_app:app", |srv| {
    let r = srv.get("/");
    assert_eq!(r.status_line, "HTTP/1.1 200 OK", "{}", r.dump());
    assert_eq!(r.body_str(), "flask ok\n");
    assert!(
        r.header("Content-Type")
            .is_some_and(|t| t.starts_with("text/html")),
        "{}",
        r.dump()
    );
});

server_test!(flask_json_post_round_trips, "flask_app:app", |srv| {
    let payload =
        json!({"name": "rgunicorn", "n": [1, 2, 3], "nested": {"ok": true}, "text": "caf\u{e9}"});
    let body = payload.to_string();
    let r = srv.request(
        format!(
            "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
        .as_bytes(),
    );
    assert_eq!(r.status_line, "HTTP/1.1 200 OK", "{}", r.dump());
    assert_eq!(r.header("Content-Type"), Some("application/json"));
    assert_eq!(r.json(), json!({"received": payload, "method": "POST"}));
});

server_test!(flask_unknown_route_is_404, "flask_app:app", |srv| {
    let r = srv.get("/nope");
    assert_eq!(r.status_line, "HTTP/1.1 404 NOT FOUND", "{}", r.dump());
});

#[test]
fn chunked_body_over_unix_socket_too() {
    let dir = TempDir::new("wsgiunix");
    let sock = dir.path().join("w.sock");
    let srv = Server::builder("echo_environ:app")
        .listeners(0)
        .arg("-b")
        .arg(format!("unix:{}", sock.display()))
        .in_dir(dir)
        .start();
    let mut c = Conn::unix(&sock);
    c.send(
        b"POST /u HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n\
          3\r\nabc\r\n0\r\n\r\n",
    );
    let r = c.read_response();
    assert_eq!(r.status_line, "HTTP/1.1 200 OK", "{}", r.dump());
    let env = r.json();
    assert_eq!(env["body"], "abc");
    assert_eq!(env["PATH_INFO"], "/u");
    assert_eq!(env["REQUEST_METHOD"], "POST");
    drop(srv);
}

#[test]
fn script_name_from_environment_is_stripped_from_path() {
    let srv = Server::builder("echo_environ:app")
        .env("SCRIPT_NAME", "/prefix")
        .start();
    let env = srv.get("/prefix/inner/page?x=1").json();
    assert_eq!(env["SCRIPT_NAME"], "/prefix", "{env:#}");
    assert_eq!(env["PATH_INFO"], "/inner/page", "{env:#}");
    assert_eq!(env["QUERY_STRING"], "x=1", "{env:#}");
}

server_test!(
    write_callable_output_precedes_iterable,
    "start_response:app",
    |srv| {
        let r = srv.get("/write");
        assert_eq!(r.status_line, "HTTP/1.1 200 OK", "{}", r.dump());
        assert_eq!(r.body_str(), "written, then returned\n");
    }
);

server_test!(
    exc_info_replaces_unsent_status,
    "start_response:app",
    |srv| {
        let r = srv.get("/exc-info");
        assert_eq!(
            r.status_line,
            "HTTP/1.1 503 Service Unavailable",
            "{}",
            r.dump()
        );
        assert_eq!(r.header("Retry-After"), Some("7"), "{}", r.dump());
        assert_eq!(r.body_str(), "replaced\n");
    }
);

server_test!(
    wsgi_errors_reaches_the_error_log,
    "start_response:app",
    |srv| {
        let r = srv.get("/log");
        assert_eq!(r.status_line, "HTTP/1.1 204 No Content", "{}", r.dump());
        assert!(r.body.is_empty());
        srv.wait_stderr("message from wsgi.errors", Duration::from_secs(5));
    }
);

server_test!(
    many_and_large_response_headers_arrive_intact,
    "big_headers:app",
    |srv| {
        let r = srv.get("/");
        assert_eq!(r.status_line, "HTTP/1.1 200 OK", "{}", r.dump());
        for i in 0..100 {
            let name = format!("X-Header-{i:03}");
            let value = format!("v{i:03}{}", "x".repeat(96));
            assert_eq!(r.header(&name), Some(value.as_str()), "{name}");
        }
        let cookies = r.headers_named("Set-Cookie");
        assert_eq!(cookies.len(), 2, "Set-Cookie headers must stay separate");
        assert_eq!(cookies[0], format!("big={}", "c".repeat(6000)));
        assert_eq!(cookies[1], "small=1");
        assert_eq!(r.body_str(), "big headers\n");
    }
);

server_test!(
    iterable_close_is_called_after_response,
    "closing:app",
    |srv| {
        let marker = srv.dir().join("closed-normal");
        let r = srv.get(&format!("/?marker={}", marker.display()));
        assert_eq!(r.status_line, "HTTP/1.1 200 OK", "{}", r.dump());
        assert_eq!(r.body.len(), 3 * 1024);
        // close() writes the marker.
        assert_eq!(wait_file(&marker, Duration::from_secs(5)), "closed\n");
    }
);

server_test!(
    iterable_close_is_called_when_client_disconnects,
    "closing:app",
    |srv| {
        let marker = srv.dir().join("closed-early");
        let mut c = srv.connect();
        c.send(
            format!(
                "GET /?marker={}&chunks=1000&delay=0.01 HTTP/1.1\r\nHost: x\r\n\r\n",
                marker.display()
            )
            .as_bytes(),
        );
        // Wait for the head, then hang up mid-body.
        let mut first = [0u8; 1];
        c.read_exact(&mut first);
        drop(c);
        // close() must run even though the client went away, and well
        // before the 10 s the full body would take: the server stops
        // iterating a response nobody reads.
        assert_eq!(wait_file(&marker, Duration::from_secs(6)), "closed\n");
        srv.assert_get_status("/?chunks=1", 200);
    }
);

server_test!(
    absolute_form_target_sets_path_and_host,
    "echo_environ:app",
    |srv| {
        let r = srv.request(
        b"GET http://example.test:8080/abs/path?q=1 HTTP/1.1\r\nHost: example.test:8080\r\nConnection: close\r\n\r\n",
    );
        assert_eq!(r.status_line, "HTTP/1.1 200 OK", "{}", r.dump());
        let env = r.json();
        assert_eq!(env["PATH_INFO"], "/abs/path", "{env:#}");
        assert_eq!(env["QUERY_STRING"], "q=1", "{env:#}");
        assert_eq!(env["HTTP_HOST"], "example.test:8080", "{env:#}");
    }
);

server_test!(
    encoded_slash_is_decoded_in_path_info_only,
    "echo_environ:app",
    |srv| {
        let env = srv.get("/a%2Fb/c%20d").json();
        assert_eq!(env["PATH_INFO"], "/a/b/c d", "{env:#}");
        assert_eq!(env["RAW_URI"], "/a%2Fb/c%20d", "{env:#}");
    }
);

server_test!(
    repeated_headers_are_joined_with_commas,
    "echo_environ:app",
    |srv| {
        let r = srv.request(
        b"GET / HTTP/1.1\r\nHost: x\r\nX-Multi: a\r\nX-Multi: b\r\nx-multi: c\r\nConnection: close\r\n\r\n",
    );
        assert_eq!(r.json()["HTTP_X_MULTI"], "a,b,c");
    }
);

// `X_Forwarded_For` must not be able to impersonate `X-Forwarded-For`
// (gunicorn's header_map = "drop" default).
server_test!(
    headers_with_underscores_are_dropped,
    "echo_environ:app",
    |srv| {
        let r = srv.request(
        b"GET / HTTP/1.1\r\nHost: x\r\nX_Forwarded_For: 6.6.6.6\r\nX-Real: yes\r\nConnection: close\r\n\r\n",
    );
        let env = r.json();
        assert_eq!(env["HTTP_X_REAL"], "yes", "{env:#}");
        assert!(
            env.get("HTTP_X_FORWARDED_FOR").is_none(),
            "underscore header leaked: {env:#}"
        );
    }
);
