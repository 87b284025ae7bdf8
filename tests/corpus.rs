//! The request corpus: `tests/requests/{valid,invalid}/NNN.http`, raw request
//! bytes written from RFC 9112, RFC 9110 and Gunicorn's documented behaviour,
//! each beside an `NNN.toml` saying what must happen (the environ a valid
//! request gives the app, or the status an invalid one gets, with the rule's
//! RFC section).
//!
//! Every case is sent to the real binary, running `echo_environ:app`, in four
//! ways: whole; one byte per write; in seeded random splits; and pipelined
//! behind a valid request (a valid case is followed by one more, so its body
//! framing must end exactly where it should). An invalid case must not spoil
//! the response before it, and its connection must close after its status.
//!
//! Cases with an `args` key run on their own server started with those
//! arguments; the rest share one. Cases run on a few threads, one connection
//! per case and mode, under an overall deadline.

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use crate::support::{Conn, Response, Server};

/// Valid and invalid cases the corpus must hold at least (issue 10, item 7).
const MIN_VALID: usize = 80;
const MIN_INVALID: usize = 90;
/// Client threads per server.
const THREADS: usize = 6;
/// How long one response may take.
const READ_TIMEOUT: Duration = Duration::from_secs(5);
/// After this, no new case is started and the test fails.
const DEADLINE: Duration = Duration::from_secs(45);
/// Cases up to this size get a short pause between single-byte writes, so the
/// bytes really arrive apart; larger ones are written back to back.
const PAUSED_BYTES: usize = 512;
/// Sent before a case in the pipelined mode (and after a valid one).
const PRELUDE: &[u8] = b"GET /corpus-prelude HTTP/1.1\r\nHost: corpus.example\r\n\r\n";
const POSTLUDE: &[u8] = b"GET /corpus-postlude HTTP/1.1\r\nHost: corpus.example\r\n\r\n";

/// What a case must produce.
#[derive(Debug)]
enum Expect {
    /// A 200 from the echo app whose environ has these values (`body` is what
    /// `wsgi.input` read) and lacks these keys.
    Valid {
        environ: Vec<(String, String)>,
        absent: Vec<String>,
    },
    /// This status, then the connection closes.
    Invalid { status: u16 },
}

/// One corpus file pair.
#[derive(Debug)]
struct Case {
    /// `valid/001`, for messages.
    name: String,
    /// The `.http` bytes.
    raw: Vec<u8>,
    /// Server arguments this case needs (its mode group).
    args: Vec<String>,
    /// The rule the case checks.
    rfc: String,
    expect: Expect,
}

/// How a case's bytes are written.
#[derive(Clone, Copy, Debug)]
enum Mode {
    Whole,
    ByteAtATime,
    RandomSplits,
    Pipelined,
}

const MODES: [Mode; 4] = [
    Mode::Whole,
    Mode::ByteAtATime,
    Mode::RandomSplits,
    Mode::Pipelined,
];

fn corpus_dir(kind: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join("requests")
        .join(kind)
}

/// Every case of `kind` ("valid" or "invalid"), in file order.
fn load(kind: &str) -> Vec<Case> {
    let dir = corpus_dir(kind);
    let mut names: Vec<String> = fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.expect("corpus dir entry").file_name())
        .filter_map(|n| n.to_str()?.strip_suffix(".http").map(str::to_owned))
        .collect();
    names.sort();
    names
        .iter()
        .map(|stem| load_case(kind, &dir, stem))
        .collect()
}

fn load_case(kind: &str, dir: &Path, stem: &str) -> Case {
    let name = format!("{kind}/{stem}");
    let raw = fs::read(dir.join(format!("{stem}.http"))).expect("read .http");
    let toml_path = dir.join(format!("{stem}.toml"));
    let text = fs::read_to_string(&toml_path)
        .unwrap_or_else(|e| panic!("{name}: every .http needs a .toml: {e}"));
    let table: toml::Table = text.parse().unwrap_or_else(|e| panic!("{name}.toml: {e}"));
    let string = |key: &str| -> Option<String> {
        table.get(key).map(|v| {
            v.as_str()
                .unwrap_or_else(|| panic!("{name}: {key} must be a string"))
                .to_owned()
        })
    };
    let strings = |key: &str| -> Vec<String> {
        table.get(key).map_or_else(Vec::new, |v| {
            v.as_array()
                .unwrap_or_else(|| panic!("{name}: {key} must be an array"))
                .iter()
                .map(|s| s.as_str().expect("array of strings").to_owned())
                .collect()
        })
    };
    let rfc = string("rfc").unwrap_or_else(|| panic!("{name}: no rfc reason"));
    let args = strings("args");
    let expect = if kind == "invalid" {
        let status = table
            .get("status")
            .and_then(toml::Value::as_integer)
            .unwrap_or_else(|| panic!("{name}: no status"));
        Expect::Invalid {
            status: u16::try_from(status).expect("status fits u16"),
        }
    } else {
        let mut environ = Vec::new();
        for (key, env_key) in [
            ("method", "REQUEST_METHOD"),
            ("uri", "RAW_URI"),
            ("path", "PATH_INFO"),
            ("query", "QUERY_STRING"),
            ("protocol", "SERVER_PROTOCOL"),
            ("body", "body"),
        ] {
            if let Some(value) = string(key) {
                environ.push((env_key.to_owned(), value));
            }
        }
        if let Some(extra) = table.get("environ") {
            let extra = extra.as_table().expect("[environ] is a table");
            for (k, v) in extra {
                let v = v.as_str().expect("environ values are strings");
                environ.push((k.clone(), v.to_owned()));
            }
        }
        Expect::Valid {
            environ,
            absent: strings("absent"),
        }
    };
    Case {
        name,
        raw,
        args,
        rfc,
        expect,
    }
}

/// xorshift64*: a few random numbers for split points, reproducible per case.
struct Rng(u64);

impl Rng {
    fn new(name: &str) -> Rng {
        // FNV-1a of the case name, so each case has its own fixed splits.
        let seed = name.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
        });
        Rng(seed | 1)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A number in `1..=max`.
    fn size(&mut self, max: usize) -> usize {
        1 + (self.next() % max as u64) as usize
    }
}

/// Write `bytes` as `mode` says. Errors are returned, not raised: a server
/// that refused the request may close before the last bytes are written.
fn send(conn: &mut Conn, case: &Case, mode: Mode) -> io::Result<()> {
    let bytes = &case.raw;
    match mode {
        Mode::Whole => conn.try_send(bytes),
        Mode::ByteAtATime => {
            let pause = bytes.len() <= PAUSED_BYTES;
            for b in bytes {
                conn.try_send(std::slice::from_ref(b))?;
                if pause {
                    thread::sleep(Duration::from_micros(50));
                }
            }
            Ok(())
        }
        Mode::RandomSplits => {
            let mut rng = Rng::new(&case.name);
            // At most about 24 pieces, each a separate write 1 ms apart.
            let max = (bytes.len() / 12).max(16);
            let mut at = 0;
            while at < bytes.len() {
                let end = (at + rng.size(max)).min(bytes.len());
                conn.try_send(&bytes[at..end])?;
                at = end;
                thread::sleep(Duration::from_millis(1));
            }
            Ok(())
        }
        Mode::Pipelined => {
            let mut all = PRELUDE.to_vec();
            all.extend_from_slice(bytes);
            if matches!(case.expect, Expect::Valid { .. }) {
                all.extend_from_slice(POSTLUDE);
            }
            conn.try_send(&all)
        }
    }
}

/// The next final response, skipping any `100 Continue`.
fn final_response(conn: &mut Conn) -> Result<Response, String> {
    loop {
        let r = conn
            .try_read_response(false)
            .map_err(|e| format!("no response: {e}"))?;
        if r.status != 100 {
            return Ok(r);
        }
    }
}

/// The echo app's environ from `r`, which must be a 200.
fn environ(r: &Response) -> Result<serde_json::Value, String> {
    if r.status != 200 {
        return Err(format!("expected 200, got {}", r.dump()));
    }
    serde_json::from_slice(&r.body).map_err(|e| format!("not JSON ({e}): {}", r.dump()))
}

/// Check the response to the pipelined request sent before or after a case.
fn check_neighbour(conn: &mut Conn, uri: &str) -> Result<(), String> {
    let r = final_response(conn).map_err(|e| format!("{uri}: {e}"))?;
    let env = environ(&r).map_err(|e| format!("{uri}: {e}"))?;
    match env["RAW_URI"].as_str() {
        Some(got) if got == uri => Ok(()),
        got => Err(format!(
            "expected the response to {uri}, got RAW_URI {got:?}"
        )),
    }
}

fn check_valid(
    conn: &mut Conn,
    mode: Mode,
    environ_want: &[(String, String)],
    absent: &[String],
) -> Result<(), String> {
    if matches!(mode, Mode::Pipelined) {
        check_neighbour(conn, "/corpus-prelude")?;
    }
    let r = final_response(conn)?;
    let env = environ(&r)?;
    for (key, want) in environ_want {
        let got = env.get(key).and_then(serde_json::Value::as_str);
        if got != Some(want.as_str()) {
            return Err(format!("{key}: expected {want:?}, got {got:?}"));
        }
    }
    for key in absent {
        if let Some(got) = env.get(key) {
            return Err(format!("{key} must be absent, got {got}"));
        }
    }
    if matches!(mode, Mode::Pipelined) {
        if r.header("Connection")
            .is_some_and(|c| c.eq_ignore_ascii_case("close"))
        {
            return expect_closed(conn);
        }
        check_neighbour(conn, "/corpus-postlude")?;
    }
    Ok(())
}

fn check_invalid(conn: &mut Conn, mode: Mode, status: u16) -> Result<(), String> {
    if matches!(mode, Mode::Pipelined) {
        check_neighbour(conn, "/corpus-prelude")?;
    }
    let r = final_response(conn)?;
    if r.status != status {
        return Err(format!("expected {status}, got {}", r.dump()));
    }
    expect_closed(conn)
}

/// The server must close without sending anything more (a reset counts).
fn expect_closed(conn: &mut Conn) -> Result<(), String> {
    match conn.read_to_close() {
        Ok(rest) if rest.is_empty() => Ok(()),
        Ok(rest) => Err(format!(
            "expected the connection to close, got {:?}",
            String::from_utf8_lossy(&rest[..rest.len().min(300)])
        )),
        Err(e) if e.kind() == io::ErrorKind::ConnectionReset => Ok(()),
        Err(e) => Err(format!("connection not closed: {e}")),
    }
}

/// Send one case in one mode on a fresh connection and check the outcome.
fn run_case(addr: SocketAddr, case: &Case, mode: Mode) -> Result<(), String> {
    let mut conn = Conn::tcp(addr);
    conn.set_read_timeout(READ_TIMEOUT);
    let sent = send(&mut conn, case, mode);
    match &case.expect {
        Expect::Valid { environ, absent } => {
            sent.map_err(|e| format!("sending: {e}"))?;
            check_valid(&mut conn, mode, environ, absent)
        }
        Expect::Invalid { status } => {
            // The server may have answered and shut its side already; our
            // EOF ends its lingering close.
            // (A reset socket may refuse the shutdown; that is no failure.)
            let _ = sent;
            let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                conn.shutdown_write();
            }));
            check_invalid(&mut conn, mode, *status)
        }
    }
}

/// Run `cases` in every mode against one server per distinct `args`; return
/// the failures, one line each.
fn run_corpus(cases: &[Case]) -> Vec<String> {
    let started = Instant::now();
    let mut groups: BTreeMap<&[String], Vec<&Case>> = BTreeMap::new();
    for case in cases {
        groups.entry(&case.args).or_default().push(case);
    }
    let failures = Mutex::new(Vec::new());
    for (args, group) in groups {
        let mut server_args = vec!["--workers", "2"];
        server_args.extend(args.iter().map(String::as_str));
        let srv = Server::start("echo_environ:app", &server_args);
        let addr = srv.addr();
        let work: Vec<(&Case, Mode)> = group
            .iter()
            .flat_map(|case| MODES.iter().map(move |mode| (*case, *mode)))
            .collect();
        let next = AtomicUsize::new(0);
        thread::scope(|scope| {
            for _ in 0..THREADS {
                scope.spawn(|| {
                    while let Some(&(case, mode)) = work.get(next.fetch_add(1, Ordering::SeqCst)) {
                        let outcome = if started.elapsed() > DEADLINE {
                            Err(format!("not run: the corpus passed {DEADLINE:?}"))
                        } else {
                            run_case(addr, case, mode)
                        };
                        if let Err(why) = outcome {
                            failures
                                .lock()
                                .expect("failures lock")
                                .push(format!("{} [{mode:?}] ({}): {why}", case.name, case.rfc));
                        }
                    }
                });
            }
        });
        drop(srv);
    }
    let mut failures = failures.into_inner().expect("failures lock");
    failures.sort();
    failures
}

#[track_caller]
fn assert_no_failures(kind: &str, total: usize, failures: &[String]) {
    assert!(
        failures.is_empty(),
        "{} of {} {kind} case runs failed:\n{}",
        failures.len(),
        total * MODES.len(),
        failures.join("\n")
    );
}

#[test]
fn corpus_is_large_enough_and_well_formed() {
    let valid = load("valid");
    let invalid = load("invalid");
    assert!(valid.len() >= MIN_VALID, "{} valid cases", valid.len());
    assert!(
        invalid.len() >= MIN_INVALID,
        "{} invalid cases",
        invalid.len()
    );
    for case in valid.iter().chain(&invalid) {
        assert!(
            !case.rfc.is_empty() && !case.rfc.contains('\n'),
            "{}: one line of reason",
            case.name
        );
        assert!(!case.raw.is_empty(), "{}", case.name);
        if let Expect::Invalid { status } = case.expect {
            assert!(
                [400, 414, 431, 501, 505].contains(&status),
                "{}: {status}",
                case.name
            );
        }
    }
    // Every .toml has its .http.
    for kind in ["valid", "invalid"] {
        for entry in fs::read_dir(corpus_dir(kind)).expect("corpus dir") {
            let path = entry.expect("entry").path();
            if path.extension().is_some_and(|e| e == "toml") {
                assert!(path.with_extension("http").exists(), "{}", path.display());
            }
        }
    }
}

#[test]
fn corpus_valid_requests_in_every_send_mode() {
    let cases = load("valid");
    let failures = run_corpus(&cases);
    assert_no_failures("valid", cases.len(), &failures);
}

#[test]
fn corpus_invalid_requests_in_every_send_mode() {
    let cases = load("invalid");
    let failures = run_corpus(&cases);
    assert_no_failures("invalid", cases.len(), &failures);
}
