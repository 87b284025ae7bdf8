//! systemd integration: the unit templates render to the goldens in
//! `tests/units/`, and rgunicorn passes the end-to-end checks of
//! `tests/systemd/run.sh` under a real systemd 252 booted in a throw-away
//! systemd-nspawn container (socket activation, sd_notify, reload, restart,
//! watchdog, fd store, journald fields, `systemd-analyze verify`/`security`).
//!
//! `tests/systemd/package.sh` does the same for the Debian package: it installs
//! the `.deb` into such a container, runs README's install and deploy blocks
//! literally, and checks reload, restart, the journal, an upgrade and removal.
//! It tests `$RGUNICORN_DEB` when set (`.ci/run` builds the packages first),
//! else builds the packages with `packaging/build.sh`.
//!
//! The container tests need root and install what they lack (systemd-container,
//! curl, python3-dev, python3-venv, python3-flask) through apt; they never
//! skip. `RGUNICORN_SYSTEMD_CHECKS` and `RGUNICORN_PACKAGE_CHECKS` select
//! subsets of checks (see the scripts' headers).

use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The same substitution as `tests/systemd/render-units.sh`.
fn render(template: &str, bindir: &str) -> String {
    template.replace("@BINDIR@", bindir)
}

fn templates() -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(root().join("units"))
        .expect("units/ exists")
        .map(|e| e.expect("readable units/ entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "in"))
        .collect();
    out.sort();
    out
}

#[test]
fn units_render_to_goldens() {
    let templates = templates();
    let names: Vec<String> = templates
        .iter()
        .map(|p| p.file_stem().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        names,
        [
            "rgunicorn.service",
            "rgunicorn.target",
            "rgunicorn@.service",
            "rgunicorn@.socket"
        ]
    );
    for t in &templates {
        let name = t.file_stem().unwrap();
        let rendered = render(&std::fs::read_to_string(t).unwrap(), "/usr/bin");
        assert!(
            !rendered.contains("@BINDIR@"),
            "{name:?} still has a placeholder"
        );
        let golden_path = root().join("tests/units").join(name);
        let golden = std::fs::read_to_string(&golden_path).unwrap_or_default();
        assert!(
            rendered == golden,
            "{} is stale; regenerate with: tests/systemd/render-units.sh /usr/bin tests/units",
            golden_path.display()
        );
    }
}

#[test]
fn units_follow_the_project_conventions() {
    for t in templates() {
        let text = std::fs::read_to_string(&t).unwrap();
        let name = t.file_name().unwrap().to_string_lossy().into_owned();
        assert!(
            text.contains("Documentation=man:rgunicorn(1) man:rgunicorn.conf(5)"),
            "{name}"
        );
        if name.ends_with(".service.in") {
            for line in [
                "Type=notify",
                "NotifyAccess=main",
                "ExecReload=/bin/kill -HUP $MAINPID",
                "KillMode=mixed",
                "TimeoutStopSec=35",
                "WatchdogSec=30",
                "FileDescriptorStoreMax=16",
                "CapabilityBoundingSet=",
            ] {
                assert!(text.lines().any(|l| l == line), "{name} lacks {line}");
            }
            assert!(
                !text
                    .lines()
                    .any(|l| l.starts_with("MemoryDenyWriteExecute=")),
                "{name}: JITs and cffi callbacks need W+X memory"
            );
        }
    }
}

#[test]
fn container_checks_pass() {
    run_container_script("tests/systemd/run.sh");
}

#[test]
fn package_checks_pass() {
    run_container_script("tests/systemd/package.sh");
}

/// Runs one of the container scripts; fails with its FAIL lines.
fn run_container_script(relative: &str) {
    let script: &Path = &root().join(relative);
    let out = Command::new("bash")
        .arg(script)
        .env("CARGO", env!("CARGO"))
        .output()
        .unwrap_or_else(|e| panic!("bash runs {relative}: {e}"));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("{stdout}");
    eprintln!("{stderr}");
    assert!(
        out.status.success(),
        "{relative} failed ({}): {}",
        out.status,
        stdout
            .lines()
            .filter(|l| l.starts_with("FAIL") || l.contains(" passed, ") || l.contains("FATAL"))
            .collect::<Vec<_>>()
            .join("\n")
    );
}

#[test]
fn package_versions_agree_with_cargo() {
    let cargo = std::fs::read_to_string(root().join("Cargo.toml")).unwrap();
    let version = cargo
        .lines()
        .find_map(|l| l.strip_prefix("version = \""))
        .and_then(|v| v.strip_suffix('"'))
        .expect("Cargo.toml has a version");
    let changelog = std::fs::read_to_string(root().join("packaging/debian/changelog")).unwrap();
    assert!(
        changelog.starts_with(&format!("rgunicorn ({version}-")),
        "packaging/debian/changelog's first entry is not {version}-N"
    );
    let spec = std::fs::read_to_string(root().join("packaging/rpm/rgunicorn.spec")).unwrap();
    assert!(
        spec.lines()
            .any(|l| l.split_whitespace().collect::<Vec<_>>() == ["Version:", version]),
        "packaging/rpm/rgunicorn.spec is not at Version: {version}"
    );
}
