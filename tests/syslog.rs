//! syslog: Gunicorn's tags, facility and priority, on a unix datagram socket
//! the test owns.

use std::os::unix::net::UnixDatagram;
use std::time::{Duration, Instant};

use crate::support::{Server, TempDir};

/// Records received until one contains each of `wanted`, or panic.
fn records_until(rx: &UnixDatagram, wanted: &[&str]) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut got: Vec<String> = Vec::new();
    let mut buf = [0u8; 8192];
    while !wanted.iter().all(|w| got.iter().any(|r| r.contains(w))) {
        assert!(
            Instant::now() < deadline,
            "wanted {wanted:?}; syslog got {got:#?}"
        );
        if let Ok(n) = rx.recv(&mut buf) {
            got.push(String::from_utf8_lossy(&buf[..n]).into_owned());
        }
    }
    got
}

#[test]
fn syslog_records_reach_a_unix_datagram_socket_with_gunicorns_tags() {
    let dir = TempDir::new("syslog");
    let path = dir.path().join("log.sock");
    let rx = UnixDatagram::bind(&path).unwrap();
    rx.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let to = format!("--log-syslog-to=unix://{}#dgram", path.display());
    let srv = Server::start(
        "ops:app",
        &[
            "--log-syslog",
            &to,
            "--log-syslog-prefix",
            "web",
            "--log-syslog-facility",
            "daemon",
        ],
    );
    assert_eq!(srv.get("/log?msg=careful").status, 200);
    let master = srv.pid();
    let worker = srv.worker_pids()[0];
    let got = records_until(
        &rx,
        &[
            &format!("<30>gunicorn.web.error: [{master}] Starting rgunicorn"),
            &format!("<28>gunicorn.web.error: [{worker}] careful\0"),
            &format!("<30>gunicorn.web.access: [{worker}] 127.0.0.1 - - ["),
        ],
    );
    let access = got.iter().find(|r| r.contains(".access: ")).unwrap();
    assert!(
        access.contains("\"GET /log?msg=careful HTTP/1.1\" 200"),
        "{access:?}"
    );
    assert!(access.ends_with('\0'), "{access:?}");
}

#[test]
fn disable_redirect_access_to_syslog_keeps_access_lines_out() {
    let dir = TempDir::new("syslog2");
    let path = dir.path().join("log.sock");
    let rx = UnixDatagram::bind(&path).unwrap();
    rx.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let to = format!("--log-syslog-to=unix://{}", path.display());
    let srv = Server::start(
        "ops:app",
        &["--log-syslog", &to, "--disable-redirect-access-to-syslog"],
    );
    assert_eq!(srv.get("/log?msg=first").status, 200);
    assert_eq!(srv.get("/log?msg=second").status, 200);
    // The first request's access line, had there been one, was sent before
    // the second request reached the app.
    let got = records_until(&rx, &["] second\0"]);
    assert!(got.iter().all(|r| !r.contains(".access: ")), "{got:#?}");
    assert!(
        got.iter()
            .any(|r| r.starts_with("<12>gunicorn.rgunicorn.error: ")),
        "{got:#?}"
    );
}
