//! TLS (issue 13): certificates from a test CA made at test time; curl,
//! Python's `ssl` module and a rustls client as clients.

use std::fs;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use rustls::version::{TLS12, TLS13};

use crate::support::tls::{Identity, TestCa, connect};
use crate::support::{Conn, Server, TempDir, python, run_cli};

/// A server with `app`, TLS from a fresh CA's server certificate, plus `extra` args.
fn tls_server(app: &str, extra: &[&str]) -> (Server, TestCa, Identity) {
    let dir = TempDir::new("tls");
    let ca = TestCa::new(dir.path(), "test CA");
    let id = ca.server("server");
    let srv = Server::builder(app)
        .args(["--certfile", id.cert.to_str().unwrap()])
        .args(["--keyfile", id.key.to_str().unwrap()])
        .args(extra.iter().copied())
        .in_dir(dir)
        .start();
    (srv, ca, id)
}

const GET: &[u8] = b"GET /x HTTP/1.1\r\nHost: localhost\r\n\r\n";

fn environ(conn: &mut Conn) -> serde_json::Value {
    conn.send(GET);
    let r = conn.read_response();
    assert_eq!(r.status, 200, "{}", r.dump());
    r.json()
}

fn curl(srv: &Server, ca: &Path, version: &[&str]) -> String {
    let url = format!("https://localhost:{}/", srv.port());
    let out = Command::new("curl")
        .args(["-sS", "--cacert", ca.to_str().unwrap()])
        .args(["--resolve", &format!("localhost:{}:127.0.0.1", srv.port())])
        .args(version)
        .args(["-w", " connects=%{num_connects}\n", &url, &url])
        .output()
        .expect("run curl (install it: .ci/install-deps)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn curl_gets_the_answer_over_tls_12_and_13_on_one_connection() {
    let (srv, ca, _) = tls_server("hello:app", &[]);
    let want = "Hello, World!\n connects=1\nHello, World!\n connects=0\n";
    assert_eq!(
        curl(&srv, &ca.cert, &["--tlsv1.2", "--tls-max", "1.2"]),
        want
    );
    assert_eq!(curl(&srv, &ca.cert, &["--tlsv1.3"]), want);
}

#[test]
fn environ_says_https_with_the_protocol_and_suite() {
    let (srv, ca, _) = tls_server("echo_environ:app", &[]);
    for (version, name) in [(&TLS12, "TLSv1.2"), (&TLS13, "TLSv1.3")] {
        let mut c = connect(srv.addr(), ca.client_config(None, &[version])).unwrap();
        assert_eq!(c.alpn.as_deref(), Some(&b"http/1.1"[..]));
        // Two requests on one connection: keep-alive through the session.
        for _ in 0..2 {
            let env = environ(&mut c.conn);
            assert_eq!(env["wsgi.url_scheme"], "https");
            assert_eq!(env["HTTPS"], "on");
            assert_eq!(env["SSL_PROTOCOL"], name);
            assert_eq!(env["SSL_CLIENT_VERIFY"], "NONE");
            assert!(env.get("SSL_CLIENT_S_DN").is_none());
        }
    }
    let mut c = connect(srv.addr(), ca.client_config(None, &[&TLS12])).unwrap();
    assert_eq!(
        environ(&mut c.conn)["SSL_CIPHER"],
        "ECDHE-ECDSA-AES128-GCM-SHA256"
    );
}

#[test]
fn pipelined_requests_are_answered_in_order() {
    let (srv, ca, _) = tls_server("echo_environ:app", &[]);
    let mut c = connect(srv.addr(), ca.client_config(None, &[&TLS13])).unwrap();
    c.conn.send(
        b"GET /1 HTTP/1.1\r\nHost: l\r\n\r\nPOST /2 HTTP/1.1\r\nHost: l\r\nContent-Length: 5\r\n\r\nhelloGET /3 HTTP/1.1\r\nHost: l\r\n\r\n",
    );
    for (path, body) in [("/1", ""), ("/2", "hello"), ("/3", "")] {
        let env = c.conn.read_response().json();
        assert_eq!(env["PATH_INFO"], path);
        assert_eq!(env["body"], body);
    }
}

#[test]
fn python_ssl_clients_keep_alive_and_pipeline_over_12_and_13() {
    let (srv, ca, _) = tls_server("hello:app", &[]);
    let script = r#"
import socket, ssl, sys
port, ca, version = int(sys.argv[1]), sys.argv[2], sys.argv[3]
ctx = ssl.create_default_context(cafile=ca)
ctx.minimum_version = ctx.maximum_version = getattr(ssl.TLSVersion, version)
with socket.create_connection(("127.0.0.1", port)) as raw:
    with ctx.wrap_socket(raw, server_hostname="localhost") as s:
        req = b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n"
        s.sendall(req)
        s.sendall(req * 2)
        data = b""
        while data.count(b"Hello, World!") < 3:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
        print(s.version(), data.count(b"HTTP/1.1 200 OK"))
"#;
    for (version, want) in [("TLSv1_2", "TLSv1.2 3"), ("TLSv1_3", "TLSv1.3 3")] {
        let out = Command::new(python())
            .args(["-c", script, &srv.port().to_string()])
            .arg(&ca.cert)
            .arg(version)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), want);
    }
}

#[test]
fn a_large_body_and_response_cross_the_session_whole() {
    let (srv, ca, _) = tls_server("echo_environ:app", &[]);
    let mut c = connect(srv.addr(), ca.client_config(None, &[&TLS13])).unwrap();
    // Past the loop's 64 KiB buffering: wsgi.input reads through TLS, blocking.
    let body = "z".repeat(300_000);
    c.conn.send(
        format!(
            "POST /big HTTP/1.1\r\nHost: l\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .as_bytes(),
    );
    let env = c.conn.read_response().json();
    assert_eq!(env["body_len"], 300_000);
    assert_eq!(env["body"].as_str().map(str::len), Some(300_000));
}

#[test]
fn plain_http_on_a_tls_port_gets_a_400_and_a_close() {
    let (srv, _, _) = tls_server("hello:app", &[]);
    let mut c = srv.connect();
    c.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    let r = c.read_response();
    assert_eq!(r.status, 400, "{}", r.dump());
    c.expect_closed(Duration::from_secs(5));
}

#[test]
fn client_certificates_when_required() {
    let dir = TempDir::new("mtls");
    let ca = TestCa::new(dir.path(), "client CA");
    let other = TestCa::new(dir.path(), "other CA");
    let good = ca.client("Alice Example", false);
    let expired = ca.client("Old Timer", true);
    let stranger = other.client("Mallory", false);
    let (srv, server_ca, _) = tls_server(
        "echo_environ:app",
        &["--cert-reqs", "2", "--ca-certs", ca.cert.to_str().unwrap()],
    );
    let try_with = |id: Option<&Identity>, version| {
        // Trusts the server's CA, shows `id` (from the client CAs, or not).
        connect(srv.addr(), server_ca.client_config(id, &[version])).and_then(|mut c| {
            c.conn.try_send(GET)?;
            c.conn.try_read_response(false)
        })
    };
    for version in [&TLS12, &TLS13] {
        let ok = try_with(Some(&good), version).expect("a certificate from ca_certs is served");
        let env = ok.json();
        assert_eq!(env["SSL_CLIENT_VERIFY"], "SUCCESS");
        assert_eq!(env["SSL_CLIENT_S_DN"], "CN=Alice Example,O=rgunicorn tests");
        assert_eq!(env["SSL_CLIENT_I_DN"], "CN=client CA,O=rgunicorn tests");
        let pem = env["SSL_CLIENT_CERT"].as_str().unwrap();
        assert!(pem.starts_with("-----BEGIN CERTIFICATE-----\n"), "{pem}");
        for (who, id) in [
            ("none", None),
            ("expired", Some(&expired)),
            ("wrong CA", Some(&stranger)),
        ] {
            assert!(
                try_with(id, version).is_err(),
                "{who} was served over {version:?}"
            );
        }
    }
    drop(dir);
}

#[test]
fn an_optional_client_certificate_may_be_left_out() {
    let dir = TempDir::new("mtls-opt");
    let ca = TestCa::new(dir.path(), "client CA");
    let good = ca.client("Bob", false);
    let (srv, server_ca, _) = tls_server(
        "echo_environ:app",
        &["--cert-reqs", "1", "--ca-certs", ca.cert.to_str().unwrap()],
    );
    let mut c = connect(srv.addr(), server_ca.client_config(None, &[&TLS13])).unwrap();
    assert_eq!(environ(&mut c.conn)["SSL_CLIENT_VERIFY"], "NONE");
    let mut c = connect(srv.addr(), server_ca.client_config(Some(&good), &[&TLS13])).unwrap();
    assert_eq!(
        environ(&mut c.conn)["SSL_CLIENT_S_DN"],
        "CN=Bob,O=rgunicorn tests"
    );
}

#[test]
fn stalled_handshakes_do_not_delay_a_tls_client() {
    let (soft, hard) = nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE)
        .expect("getrlimit");
    // Only ever raised: other tests' servers inherit this process's limit.
    let want = 1024u64.min(hard).max(soft);
    nix::sys::resource::setrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE, want, hard)
        .expect("setrlimit");
    let (srv, ca, _) = tls_server("hello:app", &["-w", "1", "--worker-connections", "1000"]);
    let silent: Vec<_> = (0..300)
        .map(|_| std::net::TcpStream::connect(srv.addr()).expect("connect"))
        .collect();
    let config = ca.client_config(None, &[&TLS13]);
    for _ in 0..3 {
        let start = Instant::now();
        let mut c = connect(srv.addr(), config.clone()).unwrap();
        c.conn.send(GET);
        assert_eq!(c.conn.read_response().status, 200);
        let took = start.elapsed();
        assert!(
            took < Duration::from_secs(1),
            "took {took:?} behind 300 silent connections"
        );
    }
    drop(silent);
}

#[test]
fn hup_serves_a_new_certificate_and_spares_open_connections() {
    let (srv, ca, id) = tls_server("slow:app", &[]);
    let config = ca.client_config(None, &[&TLS13]);
    let mut before = connect(srv.addr(), config.clone()).unwrap();
    assert_eq!(before.server_cert, id.der);
    let marker = srv.dir().join("started");
    before.conn.send(
        format!(
            "GET /?sleep=2&marker={} HTTP/1.1\r\nHost: l\r\n\r\n",
            marker.display()
        )
        .as_bytes(),
    );
    crate::support::wait_file(&marker, Duration::from_secs(10));
    // Replace the files in place, as a certificate renewal does.
    let renewed = ca.server("renewed");
    fs::copy(&renewed.cert, &id.cert).unwrap();
    fs::copy(&renewed.key, &id.key).unwrap();
    srv.signal(Signal::SIGHUP);
    srv.wait_stderr("Reload complete", Duration::from_secs(30));
    let after = connect(srv.addr(), config).unwrap();
    assert_eq!(
        after.server_cert, renewed.der,
        "a new connection got the old certificate"
    );
    let r = before.conn.read_response();
    assert_eq!(
        r.body_str(),
        "slept 2\n",
        "the request in flight over the old session"
    );
}

#[test]
fn hup_with_a_broken_key_keeps_the_old_certificate() {
    let (srv, ca, id) = tls_server("hello:app", &[]);
    fs::write(
        &id.key,
        "-----BEGIN PRIVATE KEY-----\nbroken\n-----END PRIVATE KEY-----\n",
    )
    .unwrap();
    srv.signal(Signal::SIGHUP);
    srv.wait_stderr("TLS files not reloaded", Duration::from_secs(30));
    srv.wait_stderr("Reload complete", Duration::from_secs(30));
    let mut c = connect(srv.addr(), ca.client_config(None, &[&TLS13])).unwrap();
    assert_eq!(c.server_cert, id.der);
    c.conn.send(GET);
    assert_eq!(c.conn.read_response().status, 200);
}

#[test]
fn plain_bind_serves_one_socket_without_tls() {
    let dir = TempDir::new("plain-bind");
    let ca = TestCa::new(dir.path(), "test CA");
    let id = ca.server("server");
    let srv = Server::builder("hello:app")
        .listeners(2)
        .args(["--certfile", id.cert.to_str().unwrap()])
        .args(["--keyfile", id.key.to_str().unwrap()])
        .args(["--plain-bind", "fd://4"])
        .in_dir(dir)
        .start();
    let mut c = connect(srv.addr(), ca.client_config(None, &[&TLS13])).unwrap();
    c.conn.send(GET);
    assert_eq!(c.conn.read_response().body_str(), "Hello, World!\n");
    let plain: std::net::SocketAddr = ([127, 0, 0, 1], srv.ports()[1]).into();
    let mut p = Conn::tcp(plain);
    p.send(GET);
    assert_eq!(p.read_response().body_str(), "Hello, World!\n");
}

#[test]
fn unusable_tls_settings_stop_start_up_with_status_2() {
    let dir = TempDir::new("tls-bad");
    let ca = TestCa::new(dir.path(), "test CA");
    let id = ca.server("server");
    let cert = id.cert.to_str().unwrap();
    let missing = dir.path().join("missing.key");
    let conf = dir.path().join("ssl_context.py");
    fs::write(
        &conf,
        "def ssl_context(config, factory):\n    return factory()\n",
    )
    .unwrap();
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec!["--certfile", cert, "--keyfile", missing.to_str().unwrap()],
            "missing.key",
        ),
        (
            vec!["--certfile", cert, "--keyfile", cert],
            "no PRIVATE KEY",
        ),
        (
            vec![
                "--certfile",
                cert,
                "--keyfile",
                id.key.to_str().unwrap(),
                "--ciphers",
                "FOO-BAR",
            ],
            "FOO-BAR",
        ),
        (
            vec![
                "--certfile",
                cert,
                "--keyfile",
                id.key.to_str().unwrap(),
                "--cert-reqs",
                "2",
            ],
            "ca_certs",
        ),
        (vec!["-c", conf.to_str().unwrap()], "use certfile"),
        (
            vec![
                "--certfile",
                cert,
                "--keyfile",
                id.key.to_str().unwrap(),
                "--plain-bind",
                "unix:/nowhere",
            ],
            "plain_bind",
        ),
    ];
    for (args, says) in cases {
        let mut all = vec!["--chdir", "/tmp", "-b", "127.0.0.1:0"];
        all.extend(args);
        all.push("hello:app");
        let out = run_cli(&all, Duration::from_secs(20));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{all:?}: {stderr}");
        assert!(
            stderr.contains(says),
            "{all:?} should say {says:?}: {stderr}"
        );
    }
}

#[test]
fn file_wrapper_bodies_go_through_the_session_not_sendfile() {
    let (srv, ca, _) = tls_server("filewrapper:app", &[]);
    let mut c = connect(srv.addr(), ca.client_config(None, &[&TLS13])).unwrap();
    let pattern: Vec<u8> = (0..=255u8).cycle().take(102_400).collect();
    for path in ["/", "/?seek=1000"] {
        c.conn
            .send(format!("GET {path} HTTP/1.1\r\nHost: l\r\n\r\n").as_bytes());
        let r = c.conn.read_response();
        let skip = if path == "/" { 0 } else { 1000 };
        assert_eq!(r.body, pattern[skip..], "GET {path}");
    }
}

#[test]
fn request_threads_serve_tls_connections() {
    let (srv, ca, _) = tls_server("echo_environ:app", &["--threads", "4"]);
    let config = ca.client_config(None, &[&TLS12]);
    let clients: Vec<_> = (0..4)
        .map(|_| {
            let (addr, config) = (srv.addr(), config.clone());
            std::thread::spawn(move || {
                let mut c = connect(addr, config).unwrap();
                (0..5).all(|_| environ(&mut c.conn)["SSL_PROTOCOL"] == "TLSv1.2")
            })
        })
        .collect();
    for c in clients {
        assert!(c.join().unwrap());
    }
}

#[test]
fn a_stalled_handshake_is_closed_at_header_timeout() {
    let (srv, _, _) = tls_server("hello:app", &["--header-timeout", "1"]);
    let mut c = srv.connect();
    // The first bytes of a ClientHello record, then nothing.
    c.send(&[0x16, 0x03, 0x01, 0x02, 0x00, 0x01]);
    let start = Instant::now();
    c.expect_closed(Duration::from_secs(5));
    let took = start.elapsed();
    assert!(
        took >= Duration::from_millis(900),
        "closed after {took:?}, before header_timeout"
    );
}

#[test]
fn the_servers_cipher_order_decides() {
    // rustls clients prefer AES-256; the default order starts with AES-128.
    let (srv, ca, _) = tls_server("echo_environ:app", &[]);
    let mut c = connect(srv.addr(), ca.client_config(None, &[&TLS13])).unwrap();
    assert_eq!(environ(&mut c.conn)["SSL_CIPHER"], "TLS_AES_128_GCM_SHA256");
    let (srv, ca, _) = tls_server(
        "echo_environ:app",
        &[
            "--ciphers",
            "TLS_CHACHA20_POLY1305_SHA256:TLS_AES_256_GCM_SHA384",
        ],
    );
    let mut c = connect(srv.addr(), ca.client_config(None, &[&TLS13])).unwrap();
    assert_eq!(
        environ(&mut c.conn)["SSL_CIPHER"],
        "TLS_CHACHA20_POLY1305_SHA256"
    );
}
