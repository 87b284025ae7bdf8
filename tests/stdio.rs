//! The standard streams: `capture_output` sends prints into the error log
//! file; `enable_stdio_inheritance` keeps them when daemonized.

use std::fs;
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::support::{BIN, SCRUBBED_ENV, Server, TempDir, apps_dir, wait_file, wait_gone};

#[test]
fn capture_output_puts_prints_in_the_error_log_file() {
    let dir = TempDir::new("capture");
    let log = dir.path().join("error.log");
    let srv = Server::start(
        "ops:app",
        &["--error-logfile", log.to_str().unwrap(), "--capture-output"],
    );
    assert_eq!(srv.get("/print?msg=captured-marker").status, 200);
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let text = fs::read_to_string(&log).unwrap_or_default();
        if text.contains("captured-marker\n") && text.contains("captured-marker-err\n") {
            assert!(text.contains("[INFO] Booting worker"), "{text}");
            break;
        }
        assert!(Instant::now() < deadline, "error log holds:\n{text}");
        thread::sleep(Duration::from_millis(20));
    }
    assert!(!srv.stdout().contains("captured-marker"));
}

#[test]
fn enable_stdio_inheritance_keeps_stdout_when_daemonized() {
    let dir = TempDir::new("inherit");
    let pid_path = dir.path().join("d.pid");
    let out_path = dir.path().join("stdout");
    let conf = dir.path().join("conf.py");
    fs::write(
        &conf,
        "def when_ready(server):\n    print('inherited-marker', flush=True)\n",
    )
    .unwrap();
    let mut cmd = Command::new(BIN);
    for name in SCRUBBED_ENV {
        cmd.env_remove(name);
    }
    cmd.args(["--daemon", "--enable-stdio-inheritance", "-c"])
        .arg(&conf)
        .arg("--pid")
        .arg(&pid_path)
        .arg(format!(
            "--bind=unix:{}",
            dir.path().join("s.sock").display()
        ))
        .arg("--chdir")
        .arg(apps_dir())
        .arg("hello:app")
        .stdin(Stdio::null())
        .stdout(fs::File::create(&out_path).unwrap())
        .stderr(Stdio::null());
    let status = cmd.status().expect("run rgunicorn --daemon");
    assert!(status.success());
    let pid: i32 = wait_file(&pid_path, Duration::from_secs(10))
        .trim()
        .parse()
        .unwrap();
    let master = Pid::from_raw(pid);
    let seen = wait_file(&out_path, Duration::from_secs(15));
    let _ = kill(master, Signal::SIGTERM);
    assert!(seen.contains("inherited-marker"), "{seen}");
    assert!(wait_gone(master, Duration::from_secs(10)));
}
