//! Log formats: the error log's `[time] [pid] [LEVEL] message` lines and the
//! access log's gunicorn default format.

use std::time::Duration;

use crate::server_test;
use crate::support::{Server, TempDir};

const LOG_WAIT: Duration = Duration::from_secs(5);

/// Checks `[YYYY-MM-DD HH:MM:SS +ZZZZ] [PID] [LEVEL] msg`; returns (pid, level).
fn parse_error_log_line(line: &str) -> Option<(i32, &str)> {
    let b = line.as_bytes();
    if b.len() < 30 || b[0] != b'[' || b[26] != b']' {
        return None;
    }
    let ts = &line[1..26];
    let tb = ts.as_bytes();
    let digits = |r: std::ops::Range<usize>| tb[r].iter().all(u8::is_ascii_digit);
    let ts_ok = digits(0..4)
        && tb[4] == b'-'
        && digits(5..7)
        && tb[7] == b'-'
        && digits(8..10)
        && tb[10] == b' '
        && digits(11..13)
        && tb[13] == b':'
        && digits(14..16)
        && tb[16] == b':'
        && digits(17..19)
        && tb[19] == b' '
        && (tb[20] == b'+' || tb[20] == b'-')
        && digits(21..25);
    if !ts_ok {
        return None;
    }
    let rest = line[27..].strip_prefix(" [")?;
    let (pid, rest) = rest.split_once("] [")?;
    let (level, msg) = rest.split_once("] ")?;
    if msg.is_empty() || !["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"].contains(&level) {
        return None;
    }
    Some((pid.parse().ok()?, level))
}

#[test]
fn error_log_parser_accepts_gunicorn_lines() {
    assert_eq!(
        parse_error_log_line("[2026-11-25 09:00:00 +0000] [42] [INFO] Starting gunicorn 23.0.0"),
        Some((42, "INFO"))
    );
    assert_eq!(
        parse_error_log_line("Traceback (most recent call last):"),
        None
    );
}

server_test!(
    error_log_lines_have_gunicorn_format,
    "hello:app",
    ["-w", "2", "--log-level", "info"],
    |srv| {
        let stderr = srv.stderr();
        let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
        assert!(!lines.is_empty(), "nothing logged at info level on startup");
        let mut pids = Vec::new();
        for line in &lines {
            let (pid, _) = parse_error_log_line(line)
                .unwrap_or_else(|| panic!("not a gunicorn-style log line: {line:?}\n{stderr}"));
            pids.push(pid);
        }
        assert!(
            pids.contains(&srv.pid().as_raw()),
            "no startup line from the master ({}):\n{stderr}",
            srv.pid()
        );
    }
);

#[test]
fn error_logfile_writes_to_file() {
    let dir = TempDir::new("errorlog");
    let path = dir.path().join("errors.log");
    let srv = Server::builder("hello:app")
        .arg("--error-logfile")
        .arg(&path)
        .args(["--log-level", "info"])
        .in_dir(dir)
        .start();
    let read = |_: &Server| std::fs::read_to_string(&path).unwrap_or_default();
    let text = srv.wait_log(read, "[INFO]", LOG_WAIT);
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        assert!(
            parse_error_log_line(line).is_some(),
            "bad line {line:?} in {}",
            path.display()
        );
    }
}

server_test!(
    access_log_uses_gunicorn_default_format,
    "hello:app",
    ["--access-logfile", "-"],
    |srv| {
        let r = srv.request(
            b"GET /some/path?q=1 HTTP/1.1\r\nHost: x\r\nReferer: http://ref.example/\r\n\
          User-Agent: test-agent/1.0\r\nConnection: close\r\n\r\n",
        );
        assert_eq!(r.status, 200);
        let out = srv.wait_log(Server::stdout, "test-agent/1.0", LOG_WAIT);
        let line = out
            .lines()
            .find(|l| l.contains("test-agent/1.0"))
            .expect("access log line");
        // %(h)s %(l)s %(u)s %(t)s "%(r)s" %(s)s %(b)s "%(f)s" "%(a)s"
        let (prefix, rest) = line
            .split_once(" [")
            .unwrap_or_else(|| panic!("no [time] in {line:?}"));
        assert_eq!(prefix, "127.0.0.1 - -", "{line:?}");
        let (time, rest) = rest
            .split_once("] ")
            .unwrap_or_else(|| panic!("no ] in {line:?}"));
        // 25/Nov/2026:09:00:00 +0000
        let tb = time.as_bytes();
        assert!(
            tb.len() == 26 && tb[2] == b'/' && tb[6] == b'/' && tb[11] == b':' && tb[20] == b' ',
            "bad %(t)s {time:?} in {line:?}"
        );
        assert_eq!(
            rest, r#""GET /some/path?q=1 HTTP/1.1" 200 14 "http://ref.example/" "test-agent/1.0""#,
            "{line:?}"
        );
    }
);

#[test]
fn access_log_file_records_each_request() {
    let dir = TempDir::new("accesslog");
    let path = dir.path().join("access.log");
    let srv = Server::builder("hello:app")
        .arg("--access-logfile")
        .arg(&path)
        .in_dir(dir)
        .start();
    for i in 0..3 {
        srv.assert_get(&format!("/n{i}"), "Hello, World!\n");
    }
    let read = |_: &Server| std::fs::read_to_string(&path).unwrap_or_default();
    let text = srv.wait_log(read, "GET /n2 HTTP/1.1", LOG_WAIT);
    for i in 0..3 {
        assert_eq!(
            text.matches(&format!("\"GET /n{i} HTTP/1.1\" 200 14"))
                .count(),
            1,
            "{text}"
        );
    }
}

server_test!(
    access_log_names_the_basic_auth_user_and_escapes_quotes,
    "hello:app",
    ["--access-logfile", "-"],
    |srv| {
        let r = srv.request(
            b"GET /auth HTTP/1.1\r\nHost: x\r\nAuthorization: Basic YWxpY2U6cHc=\r\n\
          User-Agent: probe/1 evil\" 200 0 \"x\r\nConnection: close\r\n\r\n",
        );
        assert_eq!(r.status, 200);
        let out = srv.wait_log(Server::stdout, "probe/1", LOG_WAIT);
        let line = out
            .lines()
            .find(|l| l.contains("probe/1"))
            .expect("access log line");
        let (prefix, rest) = line
            .split_once(" [")
            .unwrap_or_else(|| panic!("no [time] in {line:?}"));
        assert_eq!(prefix, "127.0.0.1 - alice", "{line:?}");
        let (_, rest) = rest
            .split_once("] ")
            .unwrap_or_else(|| panic!("no ] in {line:?}"));
        // The quotes in the User-Agent are escaped, so the field cannot end early.
        assert_eq!(
            rest, r#""GET /auth HTTP/1.1" 200 14 "-" "probe/1 evil\" 200 0 \"x""#,
            "{line:?}"
        );
    }
);

/// Flask's `app.logger.handlers = logging.getLogger("gunicorn.error").handlers`
/// recipe: the app's messages reach rgunicorn's error log at the configured
/// level.
#[test]
fn flask_logging_recipe_reaches_the_error_log() {
    let srv = crate::support::Server::start("flask_logging:app", &["--log-level", "info"]);
    assert_eq!(srv.get("/").body_str(), "logged\n");
    let log = srv.wait_stderr(
        "hello from the flask app",
        std::time::Duration::from_secs(5),
    );
    assert!(log.contains("[INFO] hello from the flask app"), "{log}");
    assert!(!log.contains("not at the info level"), "{log}");
    srv.wait_stderr("an access record", std::time::Duration::from_secs(5));
}

/// `--access-logformat json`: one JSON object per request, the journal's
/// fields, escaped.
#[test]
fn json_access_log_lines_parse() {
    let srv = crate::support::Server::start(
        "hello:app",
        &["--access-logfile", "-", "--access-logformat", "json"],
    );
    let r = srv.request(
        b"GET /j?x=1 HTTP/1.1\r\nHost: x\r\nUser-Agent: a\"b\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(r.status, 200);
    let out = srv.wait_log(
        crate::support::Server::stdout,
        "request_uri",
        std::time::Duration::from_secs(5),
    );
    let line = out.lines().find(|l| l.contains("request_uri")).unwrap();
    let v: serde_json::Value = serde_json::from_str(line).expect(line);
    assert_eq!(v["request_uri"], "/j?x=1");
    assert_eq!(v["status"], 200);
    assert_eq!(v["user_agent"], "a\"b");
}
