//! Large request bodies are streamed to the app, never buffered whole: a
//! 100 MiB upload arrives intact while the worker's peak RSS barely moves.

use nix::unistd::Pid;

use crate::support::{Conn, Response, Server, proc_status_kib};

const MIB: usize = 1024 * 1024;
const TOTAL: usize = 100 * MIB;
const PIECE: usize = 64 * 1024;
/// Allowed growth of the worker's peak RSS while handling the upload.
const MAX_GROWTH_KIB: u64 = 64 * 1024;

/// CRC-32 (IEEE, reflected 0xEDB88320), the same as Python's zlib.crc32.
struct Crc32 {
    table: [u32; 256],
    value: u32,
}

impl Crc32 {
    fn new() -> Crc32 {
        let mut table = [0u32; 256];
        for (i, slot) in table.iter_mut().enumerate() {
            let mut c = i as u32;
            for _ in 0..8 {
                c = if c & 1 != 0 {
                    0xEDB8_8320 ^ (c >> 1)
                } else {
                    c >> 1
                };
            }
            *slot = c;
        }
        Crc32 {
            table,
            value: 0xFFFF_FFFF,
        }
    }

    fn update(&mut self, data: &[u8]) {
        for &b in data {
            self.value = self.table[((self.value ^ b as u32) & 0xFF) as usize] ^ (self.value >> 8);
        }
    }

    fn finish(&self) -> u32 {
        self.value ^ 0xFFFF_FFFF
    }
}

/// Deterministic pseudo-random pieces (xorshift64), so reordered or
/// duplicated pieces change the checksum.
struct Pieces {
    state: u64,
    buf: Vec<u8>,
}

impl Pieces {
    fn new() -> Pieces {
        Pieces {
            state: 0x9E37_79B9_7F4A_7C15,
            buf: vec![0; PIECE],
        }
    }

    fn next_piece(&mut self) -> &[u8] {
        for word in self.buf.chunks_exact_mut(8) {
            self.state ^= self.state << 13;
            self.state ^= self.state >> 7;
            self.state ^= self.state << 17;
            word.copy_from_slice(&self.state.to_le_bytes());
        }
        &self.buf
    }
}

fn single_worker(srv: &Server) -> Pid {
    let workers = srv.worker_pids();
    assert_eq!(workers.len(), 1, "workers: {workers:?}");
    workers[0]
}

/// A small request, so the app's baseline VmHWM includes its warm-up.
fn baseline_hwm_kib(srv: &Server) -> u64 {
    let r = srv.request(
        b"POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nConnection: close\r\n\r\nabcd",
    );
    assert_eq!(r.status_line, "HTTP/1.1 200 OK", "{}", r.dump());
    let v = r.json();
    assert_eq!(v["bytes"], 4);
    v["vmhwm_kib"].as_u64().expect("vmhwm_kib")
}

fn check_upload_result(
    srv: &Server,
    worker: Pid,
    before_kib: u64,
    app_baseline_kib: u64,
    r: &Response,
    crc: u32,
) {
    assert_eq!(r.status_line, "HTTP/1.1 200 OK", "{}", r.dump());
    let v = r.json();
    assert_eq!(v["bytes"], TOTAL as u64, "byte count: {v}");
    assert_eq!(v["crc32"], crc as u64, "checksum: {v}");
    let app_hwm = v["vmhwm_kib"].as_u64().expect("vmhwm_kib");
    assert!(
        app_hwm.saturating_sub(app_baseline_kib) < MAX_GROWTH_KIB,
        "worker peak RSS grew from {app_baseline_kib} KiB to {app_hwm} KiB during a {} MiB upload",
        TOTAL / MIB
    );
    assert_eq!(
        single_worker(srv),
        worker,
        "the worker was replaced during the upload"
    );
    let after_kib = proc_status_kib(worker, "VmHWM").expect("worker VmHWM");
    assert!(
        after_kib.saturating_sub(before_kib) < MAX_GROWTH_KIB,
        "worker VmHWM from /proc grew from {before_kib} KiB to {after_kib} KiB"
    );
}

#[test]
fn upload_100mib_with_content_length_is_streamed() {
    let srv = Server::start("upload:app", &["-w", "1"]);
    let worker = single_worker(&srv);
    let app_baseline = baseline_hwm_kib(&srv);
    let before = proc_status_kib(worker, "VmHWM").expect("worker VmHWM");

    let mut c: Conn = srv.connect();
    c.send(format!("POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: {TOTAL}\r\nConnection: close\r\n\r\n").as_bytes());
    let mut pieces = Pieces::new();
    let mut crc = Crc32::new();
    for i in 0..TOTAL / PIECE {
        let piece = pieces.next_piece();
        crc.update(piece);
        if let Err(e) = c.try_send(piece) {
            panic!("upload failed after {} bytes: {e}", i * PIECE);
        }
    }
    let r = c.read_response();
    check_upload_result(&srv, worker, before, app_baseline, &r, crc.finish());
}

#[test]
fn upload_100mib_chunked_is_streamed() {
    let srv = Server::start("upload:app", &["-w", "1"]);
    let worker = single_worker(&srv);
    let app_baseline = baseline_hwm_kib(&srv);
    let before = proc_status_kib(worker, "VmHWM").expect("worker VmHWM");

    let mut c: Conn = srv.connect();
    c.send(b"POST /upload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n");
    let mut pieces = Pieces::new();
    let mut crc = Crc32::new();
    let mut frame = Vec::with_capacity(PIECE + 16);
    for i in 0..TOTAL / PIECE {
        let piece = pieces.next_piece();
        crc.update(piece);
        frame.clear();
        frame.extend_from_slice(format!("{:x}\r\n", piece.len()).as_bytes());
        frame.extend_from_slice(piece);
        frame.extend_from_slice(b"\r\n");
        if let Err(e) = c.try_send(&frame) {
            panic!("upload failed after {} bytes: {e}", i * PIECE);
        }
    }
    c.send(b"0\r\n\r\n");
    let r = c.read_response();
    check_upload_result(&srv, worker, before, app_baseline, &r, crc.finish());
}

/// `wsgi.input.read()` of a 100 MiB Content-Length body holds the body once:
/// the worker's peak RSS grows by at most the body plus 8 MiB (issue #12).
#[test]
fn read_of_a_100mib_body_holds_one_copy() {
    let srv = Server::start("upload:app", &["-w", "1"]);
    let app_baseline = baseline_hwm_kib(&srv);
    let mut c: Conn = srv.connect();
    c.send(format!("POST /upload?whole HTTP/1.1\r\nHost: x\r\nContent-Length: {TOTAL}\r\nConnection: close\r\n\r\n").as_bytes());
    let mut pieces = Pieces::new();
    let mut crc = Crc32::new();
    for _ in 0..TOTAL / PIECE {
        let piece = pieces.next_piece();
        crc.update(piece);
        c.send(piece);
    }
    let r = c.read_response();
    let v = r.json();
    assert_eq!(v["bytes"], TOTAL as u64, "{v}");
    assert_eq!(v["crc32"], crc.finish() as u64, "{v}");
    let grew = v["vmhwm_kib"]
        .as_u64()
        .unwrap()
        .saturating_sub(app_baseline);
    let limit = (TOTAL / 1024) as u64 + 8 * 1024;
    assert!(
        grew <= limit,
        "peak RSS grew {grew} KiB for a {} KiB body",
        TOTAL / 1024
    );
}

#[test]
fn crc32_matches_zlib() {
    // zlib.crc32(b"123456789") == 0xCBF43926
    let mut crc = Crc32::new();
    crc.update(b"123456789");
    assert_eq!(crc.finish(), 0xCBF4_3926);
}
