//! The edge: proxy trust behind a real nginx (Debian's, started by the test on
//! loopback and a unix socket), the scheme headers from trusted and untrusted
//! peers, `limit_request_body`, `header_timeout`, and the cases of issue #10's
//! "measured today" list, each over a real socket.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::server_test;
use crate::support::{Conn, Server, TempDir};

/// A real nginx in front of `upstream_port`, listening on a unix socket in
/// `dir`; killed on drop.
struct Nginx {
    child: Child,
    socket: PathBuf,
}

impl Nginx {
    #[track_caller]
    fn start(dir: &Path, upstream_port: u16) -> Nginx {
        let nginx = ["/usr/sbin/nginx", "/usr/bin/nginx"]
            .into_iter()
            .find(|p| Path::new(p).exists())
            .expect("nginx is not installed: run sh .ci/install-deps");
        let socket = dir.join("nginx.sock");
        let d = dir.display();
        let conf = format!(
            "daemon off; master_process off; pid {d}/nginx.pid; error_log {d}/nginx-error.log;\n\
             events {{}}\n\
             http {{\n\
               access_log off;\n\
               client_body_temp_path {d}/t; proxy_temp_path {d}/t; fastcgi_temp_path {d}/t;\n\
               uwsgi_temp_path {d}/t; scgi_temp_path {d}/t;\n\
               server {{\n\
                 listen unix:{sock};\n\
                 location / {{\n\
                   proxy_pass http://127.0.0.1:{upstream_port};\n\
                   proxy_set_header Host $host;\n\
                   proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;\n\
                   proxy_set_header X-Forwarded-Proto https;\n\
                 }}\n\
               }}\n\
             }}\n",
            sock = socket.display()
        );
        let conf_path = dir.join("nginx.conf");
        std::fs::write(&conf_path, conf).unwrap();
        std::fs::create_dir_all(dir.join("t")).unwrap();
        let child = Command::new(nginx)
            .arg("-c")
            .arg(&conf_path)
            .arg("-p")
            .arg(dir)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start nginx");
        let deadline = Instant::now() + Duration::from_secs(10);
        while !socket.exists() {
            assert!(
                Instant::now() < deadline,
                "nginx did not listen: {}",
                std::fs::read_to_string(dir.join("nginx-error.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        Nginx { child, socket }
    }

    fn get(&self, path: &str, host: &str) -> crate::support::Response {
        let mut c = Conn::unix(&self.socket);
        c.send(
            format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n").as_bytes(),
        );
        c.read_response()
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Behind nginx on 127.0.0.1 (trusted by default), Flask's external URLs are
/// https; the same header straight from a peer outside `forwarded_allow_ips`
/// is ignored.
#[test]
fn flask_behind_nginx_builds_https_urls_and_ignores_untrusted_peers() {
    let srv = Server::builder("flask_site:app").start();
    let dir = TempDir::new("nginx");
    let nginx = Nginx::start(dir.path(), srv.port());
    let r = nginx.get("/where", "example.test");
    assert_eq!(r.status, 200, "{}", r.dump());
    assert_eq!(r.body_str(), "https://example.test/where");

    // Trust only an address the test never connects from.
    let strict = Server::builder("flask_site:app")
        .args(["--forwarded-allow-ips", "192.0.2.1/32"])
        .start();
    let strict_dir = dir.path().join("strict-nginx");
    std::fs::create_dir_all(&strict_dir).unwrap();
    let nginx = Nginx::start(&strict_dir, strict.port());
    let r = nginx.get("/where", "example.test");
    assert_eq!(r.body_str(), "http://example.test/where", "{}", r.dump());
    let r = strict.request(
        b"GET /where HTTP/1.1\r\nHost: example.test\r\nX-Forwarded-Proto: https\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(r.body_str(), "http://example.test/where");
}

server_test!(
    trusted_scheme_headers_that_disagree_are_a_400,
    "echo_environ:app",
    |srv| {
        let r = srv.request(
            b"GET / HTTP/1.1\r\nHost: x\r\nX-Forwarded-Proto: https\r\nX-Forwarded-Ssl: off\r\n\r\n",
        );
        assert_eq!(r.status, 400, "{}", r.dump());
        let r = srv.request(
            b"GET / HTTP/1.1\r\nHost: x\r\nX-Forwarded-Proto: https\r\nConnection: close\r\n\r\n",
        );
        assert_eq!(r.json()["wsgi.url_scheme"], "https");
    }
);

server_test!(
    forwarded_script_name_mounts_the_app,
    "echo_environ:app",
    |srv| {
        let r = srv.request(
            b"GET /mount/x HTTP/1.1\r\nHost: x\r\nScript_Name: /mount\r\nConnection: close\r\n\r\n",
        );
        let env = r.json();
        assert_eq!(env["SCRIPT_NAME"], "/mount", "{env}");
        assert_eq!(env["PATH_INFO"], "/x", "{env}");
        let r = srv.request(b"GET /elsewhere HTTP/1.1\r\nHost: x\r\nScript_Name: /mount\r\n\r\n");
        assert_eq!(r.status, 400, "{}", r.dump());
    }
);

server_test!(
    body_over_the_limit_is_413_before_it_is_sent,
    "upload:app",
    ["--limit-request-body", "1000"],
    |srv| {
        // With Expect: 100-continue the client is told before sending anything.
        let mut c = srv.connect();
        c.send(
            b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\nExpect: 100-continue\r\n\r\n",
        );
        let r = c.read_response();
        assert_eq!(r.status, 413, "{}", r.dump());
        assert_eq!(r.header("Connection"), Some("close"));
        // A chunked body is stopped once it passes the limit.
        let mut c = srv.connect();
        let chunk = "x".repeat(600);
        c.send(
            format!(
                "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n\
                 258\r\n{chunk}\r\n258\r\n{chunk}\r\n0\r\n\r\n"
            )
            .as_bytes(),
        );
        assert_eq!(c.read_response().status, 413);
        // Under the limit is served.
        let r = srv.request(
            b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nConnection: close\r\n\r\nabc",
        );
        assert_eq!(r.status, 200, "{}", r.dump());
    }
);

server_test!(
    a_head_that_never_completes_is_closed_at_header_timeout,
    "hello:app",
    ["--header-timeout", "1"],
    |srv| {
        let mut c = srv.connect();
        let start = Instant::now();
        c.send(b"GET / HTTP/1.1\r\nHost: x\r\nX-Slow: ");
        c.expect_closed(Duration::from_secs(5));
        let took = start.elapsed();
        assert!(took >= Duration::from_millis(900), "{took:?}");
        assert!(took < Duration::from_secs(3), "{took:?}");
    }
);

// Each of the cases issue #10 measured as wrongly accepted, sent whole.
server_test!(measured_cases_are_refused, "echo_environ:app", |srv| {
    let cases: &[(&[u8], u16)] = &[
        (b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 7, 7\r\n\r\nabcdefg", 400),
        (b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n1\r\na\r\n0\r\nContent-Length: 5\r\n\r\n", 400),
        (b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n1\r\na\r\n0\r\nHost: evil\r\n\r\n", 400),
        (b"GET * HTTP/1.1\r\nHost: x\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nHost: a.example\r\nHost: b.example\r\n\r\n", 400),
        (b"get / HTTP/1.1\r\nHost: x\r\n\r\n", 400),
        (b"M1 / HTTP/1.1\r\nHost: x\r\n\r\n", 400),
        (b"GET /\xc3\xa0 HTTP/1.1\r\nHost: x\r\n\r\n", 400),
    ];
    for (raw, status) in cases {
        let mut c = srv.connect();
        c.send(raw);
        let r = c.read_response();
        assert_eq!(
            r.status,
            *status,
            "{:?}: {}",
            String::from_utf8_lossy(raw),
            r.dump()
        );
        c.expect_closed(Duration::from_secs(5));
    }
    let many: String = (0..101).map(|i| format!("X-{i}: v\r\n")).collect();
    let r = srv.request(format!("GET / HTTP/1.1\r\n{many}\r\n").as_bytes());
    assert_eq!(r.status, 431);
    let long = format!("GET / HTTP/1.1\r\nX: {}\r\n\r\n", "a".repeat(8190));
    assert_eq!(srv.request(long.as_bytes()).status, 431);
    // The access log and the server survive all of it.
    assert_eq!(srv.get("/").status, 200);
});

// The request target reaches the app as the latin-1 decoding of its bytes.
server_test!(
    percent_encoded_utf8_stays_latin1,
    "echo_environ:app",
    |srv| {
        let r = srv
            .request(b"GET /%C3%A0%20k?x=%C3%A9 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        let env = r.json();
        assert_eq!(env["RAW_URI"], "/%C3%A0%20k?x=%C3%A9");
        assert_eq!(env["PATH_INFO"], "/\u{c3}\u{a0} k");
        assert_eq!(env["QUERY_STRING"], "x=%C3%A9");
    }
);

/// A PROXY v2 header, byte-exact from HAProxy's proxy-protocol.txt §2.2:
/// signature, version 2 + PROXY, TCP over IPv4, 12 address bytes.
fn proxy_v2_ipv4(src: [u8; 4], dst: [u8; 4], sport: u16, dport: u16) -> Vec<u8> {
    let mut h = b"\r\n\r\n\x00\r\nQUIT\n".to_vec();
    h.extend_from_slice(&[0x21, 0x11, 0x00, 0x0c]);
    h.extend_from_slice(&src);
    h.extend_from_slice(&dst);
    h.extend_from_slice(&sport.to_be_bytes());
    h.extend_from_slice(&dport.to_be_bytes());
    h
}

#[test]
fn proxy_protocol_headers_name_the_client() {
    let dir = TempDir::new("proxy-protocol");
    let log = dir.path().join("access.log");
    let srv = Server::builder("echo_environ:app")
        .args([
            "--proxy-protocol",
            "--access-logfile",
            log.to_str().unwrap(),
        ])
        .in_dir(dir)
        .start();
    let get = b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    // v1, then the request on the same connection.
    let mut c = srv.connect();
    let mut v1 = b"PROXY TCP4 192.0.2.10 192.0.2.1 56324 443\r\n".to_vec();
    v1.extend_from_slice(get);
    c.send(&v1);
    let env = c.read_response().json();
    assert_eq!(env["REMOTE_ADDR"], "192.0.2.10", "{env}");
    assert_eq!(env["REMOTE_PORT"], "56324", "{env}");
    // v2, split across writes.
    let mut c = srv.connect();
    let v2 = proxy_v2_ipv4([198, 51, 100, 7], [203, 0, 113, 1], 40000, 80);
    c.send(&v2[..7]);
    c.send(&v2[7..]);
    c.send(get);
    let env = c.read_response().json();
    assert_eq!(env["REMOTE_ADDR"], "198.51.100.7", "{env}");
    assert_eq!(env["REMOTE_PORT"], "40000", "{env}");
    // v1 over IPv6.
    let mut c = srv.connect();
    let mut v6 = b"PROXY TCP6 2001:db8::1 2001:db8::2 1234 443\r\n".to_vec();
    v6.extend_from_slice(get);
    c.send(&v6);
    assert_eq!(c.read_response().json()["REMOTE_ADDR"], "2001:db8::1");
    // No header at all, with proxy_protocol on: refused.
    let r = srv.request(get);
    assert_eq!(r.status, 400, "{}", r.dump());
    // The access log names the client, not the proxy.
    let text = crate::support::wait_file(&log, Duration::from_secs(5));
    assert!(text.starts_with("192.0.2.10 "), "{text}");
    assert!(text.contains("\n198.51.100.7 "), "{text}");
}

server_test!(
    proxy_headers_from_a_peer_outside_proxy_allow_ips_get_403,
    "echo_environ:app",
    [
        "--proxy-protocol",
        "v1",
        "--proxy-allow-from",
        "192.0.2.0/24"
    ],
    |srv| {
        let mut c = srv.connect();
        c.send(b"PROXY TCP4 192.0.2.10 192.0.2.1 56324 443\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n");
        let r = c.read_response();
        assert_eq!(r.status, 403, "{}", r.dump());
        c.expect_closed(Duration::from_secs(5));
    }
);

/// Slowloris against one worker: `slow` connections each trickle one header
/// byte every `trickle`, more than `worker_connections` slots; meanwhile a
/// normal client asks once every `every` for `run`. Every one of its
/// requests must be answered, none slower than 1 s. Returns the worst latency.
fn slow_clients_do_not_starve_a_normal_one(
    slots: usize,
    slow: usize,
    trickle: Duration,
    every: Duration,
    run: Duration,
) -> Duration {
    // Room for the slow connections on both sides (the server inherits it).
    let (soft, hard) = nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE)
        .expect("getrlimit");
    // Only ever raised: other tests' servers inherit this process's limit.
    let want = (slow as u64 * 2 + 256).min(hard).max(soft);
    nix::sys::resource::setrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE, want, hard)
        .expect("setrlimit");
    let srv = Server::start(
        "hello:app",
        &["-w", "1", "--worker-connections", &slots.to_string()],
    );
    let addr = srv.addr();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let trickler = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut conns: Vec<std::net::TcpStream> = (0..slow)
                .filter_map(|_| {
                    std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(2)).ok()
                })
                .collect();
            let line = b"GET / HTTP/1.1\r\nHost: x\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
            let mut pos = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                conns.retain_mut(|c| {
                    std::io::Write::write_all(c, &line[pos % line.len()..][..1]).is_ok()
                });
                // Keep the attack up: reconnect what the server shed.
                while conns.len() < slow {
                    match std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(1)) {
                        Ok(c) => conns.push(c),
                        Err(_) => break,
                    }
                }
                pos += 1;
                std::thread::sleep(trickle);
            }
        })
    };
    // Let the slow connections fill the slots.
    std::thread::sleep(trickle.min(Duration::from_secs(2)));
    let mut worst = Duration::ZERO;
    let end = Instant::now() + run;
    let mut asked = 0;
    while Instant::now() < end {
        let start = Instant::now();
        let r = Conn::try_tcp(addr)
            .and_then(|mut c| {
                c.try_send(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")?;
                c.try_read_response(false)
            })
            .unwrap_or_else(|e| panic!("request {asked} failed under slowloris: {e}"));
        assert_eq!(r.status, 200);
        let took = start.elapsed();
        worst = worst.max(took);
        assert!(
            took < Duration::from_secs(1),
            "request {asked} took {took:?}"
        );
        asked += 1;
        std::thread::sleep(every.saturating_sub(took));
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    trickler.join().unwrap();
    eprintln!(
        "slowloris: {slow} slow connections, {slots} slots: {asked} answers, worst {worst:?}"
    );
    worst
}

#[test]
fn slow_clients_are_shed_before_a_normal_one_waits() {
    slow_clients_do_not_starve_a_normal_one(
        50,
        80,
        Duration::from_millis(500),
        Duration::from_millis(200),
        Duration::from_secs(4),
    );
}

/// Issue #10's measurement at full size (1,200 connections each sending a
/// header byte every 5 s, 1,000 slots, a client asking once a second for
/// 40 s). About a minute: run with
/// `cargo test --test integration slowloris_at_full_size -- --ignored --nocapture`.
#[test]
#[ignore]
fn slowloris_at_full_size() {
    slow_clients_do_not_starve_a_normal_one(
        1000,
        1200,
        Duration::from_secs(5),
        Duration::from_secs(1),
        Duration::from_secs(40),
    );
}
