//! Command-line behaviour and exit codes for runs that never get to serve. The
//! codes are public API, listed under EXIT STATUS in rgunicorn(1): 0 ok, 2 usage
//! error (bad flag or value), 4 the app failed to load (3 and 4 as in Gunicorn).

use std::time::{Duration, Instant};

use crate::support::{Server, run_cli};

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn version_prints_crate_version_and_exits_0() {
    let out = run_cli(&["--version"], Duration::from_secs(10));
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "stderr: {}", text(&out.stderr));
    assert!(
        stdout.contains(env!("CARGO_PKG_VERSION")),
        "--version output {stdout:?} lacks {}",
        env!("CARGO_PKG_VERSION")
    );
    assert!(stdout.contains("rgunicorn"), "--version output {stdout:?}");
}

#[test]
fn help_lists_gunicorn_flags_and_exits_0() {
    let out = run_cli(&["--help"], Duration::from_secs(10));
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "stderr: {}", text(&out.stderr));
    for flag in [
        "--bind",
        "--workers",
        "--backlog",
        "--chdir",
        "--pythonpath",
        "--virtualenv",
        "--timeout",
        "--graceful-timeout",
        "--keep-alive",
        "--access-logfile",
        "--error-logfile",
        "--log-level",
        "--limit-request-line",
        "--limit-request-fields",
        "--limit-request-field_size",
    ] {
        assert!(
            stdout.contains(flag),
            "--help does not mention {flag}:\n{stdout}"
        );
    }
}

#[test]
fn unknown_flag_is_usage_error() {
    let out = run_cli(&["--no-such-flag", "hello:app"], Duration::from_secs(10));
    assert_eq!(out.status.code(), Some(2), "stderr: {}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("--no-such-flag"),
        "the error should quote the bad flag: {}",
        text(&out.stderr)
    );
}

#[test]
fn unknown_flag_suggests_the_setting_it_means() {
    let out = run_cli(&["--port", "8000", "hello:app"], Duration::from_secs(10));
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "stderr: {stderr}");
    assert!(
        stderr.contains("--port") && stderr.contains("did you mean --bind"),
        "the error should point --port at --bind: {stderr}"
    );
}

#[test]
fn bad_flag_value_is_usage_error() {
    let out = run_cli(&["--workers", "many", "hello:app"], Duration::from_secs(10));
    assert_eq!(out.status.code(), Some(2), "stderr: {}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("many"),
        "the error should quote the bad value: {}",
        text(&out.stderr)
    );
}

#[test]
fn missing_app_is_usage_error() {
    let out = run_cli(&["--workers", "1"], Duration::from_secs(10));
    assert_eq!(out.status.code(), Some(2), "stderr: {}", text(&out.stderr));
}

/// An app that raises at import: exit 4 with the traceback on stderr, no
/// READY=1 and no respawn loop (each of the 2 workers tries at most once).
#[test]
fn import_error_exits_4_with_traceback() {
    let mut srv = Server::builder("raise_on_import:app")
        .args(["-w", "2"])
        .spawn();
    let start = Instant::now();
    let status = srv.wait_exit(Duration::from_secs(15));
    assert_eq!(status.code(), Some(4), "exit status {status}");
    assert!(
        start.elapsed() < Duration::from_secs(10),
        "took {:?} to give up",
        start.elapsed()
    );
    assert!(
        !srv.notified("READY=1"),
        "sent READY=1 for an app that can't load"
    );
    let stderr = srv.stderr();
    assert!(
        stderr.contains("Traceback (most recent call last)"),
        "{stderr}"
    );
    let msg = "RuntimeError: raise_on_import refuses to load";
    let tries = stderr.matches(msg).count();
    assert!(
        (1..=2).contains(&tries),
        "expected 1 or 2 load attempts (one per worker), saw {tries}:\n{stderr}"
    );
}

#[test]
fn missing_module_exits_4() {
    let mut srv = Server::builder("no_such_module_here:app").spawn();
    let status = srv.wait_exit(Duration::from_secs(15));
    assert_eq!(status.code(), Some(4), "exit status {status}");
    let stderr = srv.stderr();
    assert!(stderr.contains("no_such_module_here"), "{stderr}");
    assert!(!srv.notified("READY=1"));
}

#[test]
fn missing_attribute_exits_4() {
    let mut srv = Server::builder("hello:no_such_attribute").spawn();
    let status = srv.wait_exit(Duration::from_secs(15));
    assert_eq!(status.code(), Some(4), "exit status {status}");
    let stderr = srv.stderr();
    assert!(stderr.contains("no_such_attribute"), "{stderr}");
    assert!(!srv.notified("READY=1"));
}
