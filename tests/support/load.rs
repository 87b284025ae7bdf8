//! A request loop on another thread, for tests that change the server
//! (reload, upgrade, recycling) while clients keep asking.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

/// One request on a fresh connection; the body, or None on any failure.
pub fn fetch(addr: SocketAddr, path: &str) -> Option<String> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).ok()?;
    let text = String::from_utf8_lossy(&buf).into_owned();
    if !text.starts_with("HTTP/1.1 200 ") {
        return None;
    }
    text.split_once("\r\n\r\n").map(|(_, body)| body.to_owned())
}

/// Requests for `path` in a loop until stopped (bounded by count and time);
/// counts successes and failures.
pub struct Load {
    stop: Arc<AtomicBool>,
    ok: Arc<AtomicUsize>,
    failed: Arc<AtomicUsize>,
    handle: Option<thread::JoinHandle<()>>,
}

impl Load {
    pub fn start(addr: SocketAddr, path: &'static str) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let ok = Arc::new(AtomicUsize::new(0));
        let failed = Arc::new(AtomicUsize::new(0));
        let (s, o, f) = (stop.clone(), ok.clone(), failed.clone());
        let handle = thread::spawn(move || {
            let deadline = Instant::now() + Duration::from_secs(60);
            while !s.load(Ordering::Relaxed)
                && Instant::now() < deadline
                && o.load(Ordering::Relaxed) < 100_000
            {
                match fetch(addr, path) {
                    Some(_) => o.fetch_add(1, Ordering::Relaxed),
                    None => f.fetch_add(1, Ordering::Relaxed),
                };
            }
        });
        Load {
            stop,
            ok,
            failed,
            handle: Some(handle),
        }
    }

    pub fn ok(&self) -> usize {
        self.ok.load(Ordering::Relaxed)
    }

    /// Wait until at least `n` more requests succeeded.
    pub fn wait_more(&self, n: usize) {
        let target = self.ok() + n;
        let deadline = Instant::now() + Duration::from_secs(30);
        while self.ok() < target && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(5));
        }
        assert!(
            self.ok() >= target,
            "load stalled at {} ok, {} failed",
            self.ok(),
            self.failed.load(Ordering::Relaxed)
        );
    }

    /// Stop; (ok, failed).
    pub fn finish(mut self) -> (usize, usize) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            h.join().expect("load thread");
        }
        (self.ok(), self.failed.load(Ordering::Relaxed))
    }
}
