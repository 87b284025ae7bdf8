//! The ASGI worker's WebSockets (RFC 6455 and the ASGI WebSocket spec) on
//! the real server: echo at every length encoding, fragments with a ping
//! between them, close codes both ways, the size limit, refusal before
//! accept, subprotocols, the `websockets` library's client, the core framing
//! cases of the Autobahn test suite (protocol violations and the close codes
//! they earn), and TERM/HUP with WebSockets open (1001 for each).

use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;

use crate::asgi::{FRAME_TIMEOUT, sleep_in_flight, start, ws};
use crate::support::websocket::{Message, WebSocket, encode_frame, op};
use crate::support::{Server, pseudo_random, python, require_module};

// ---- WebSockets -----------------------------------------------------------

/// Text comes back as text and bytes as bytes, at each length encoding
/// (7-bit, 16-bit, 64-bit), and the scope is a websocket scope.
#[test]
fn websocket_echoes_text_and_binary() {
    let srv = start(&[]);
    let mut ws = ws(&srv, "/ws", &[]);
    assert!(ws.response.header("Sec-WebSocket-Protocol").is_none());
    ws.send_text("hello");
    assert_eq!(ws.recv_message(), Message::Text("hello".into()));
    let unicode = "héllo wörld ✓ ".repeat(20);
    ws.send_text(&unicode);
    assert_eq!(ws.recv_message(), Message::Text(unicode));
    for len in [0, 125, 126, 200, 65_535, 70_000] {
        let data = pseudo_random(len, len as u64);
        ws.send_binary(&data);
        assert_eq!(ws.recv_message(), Message::Binary(data), "{len} bytes");
    }
    ws.send_text("scope");
    let Message::Text(text) = ws.recv_message() else {
        panic!("scope reply is not text")
    };
    let s: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(s["type"], "websocket", "{s}");
    assert_eq!(s["scheme"], "ws");
    assert_eq!(s["path"], "/ws");
    assert_eq!(s["asgi"]["version"], "3.0");
    assert_eq!(s["types"]["raw_path"], "bytes", "{s}");
    assert_eq!(s["types"]["query_string"], "bytes", "{s}");
    assert_eq!(s["subprotocols"], serde_json::json!([]), "{s}");
}

/// A text message in 3 fragments with a ping between the 2nd and 3rd: the
/// pong comes back at once (before the message is complete), then the echo
/// of the reassembled message. Binary fragments reassemble too.
#[test]
fn websocket_fragments_are_reassembled_and_a_ping_between_them_is_answered() {
    let srv = start(&[]);
    let mut ws = ws(&srv, "/ws", &[]);
    ws.send_frame(false, op::TEXT, b"Hel");
    ws.send_frame(false, op::CONTINUATION, b"lo, ");
    ws.send_frame(true, op::PING, b"are you there");
    let pong = ws.recv_frame();
    assert_eq!(pong.opcode, op::PONG, "{pong:?}");
    assert!(pong.fin);
    assert_eq!(pong.payload, b"are you there");
    ws.send_frame(true, op::CONTINUATION, "wörld".as_bytes());
    assert_eq!(ws.recv_message(), Message::Text("Hello, wörld".into()));

    let data = pseudo_random(3000, 3);
    ws.send_frame(false, op::BINARY, &data[..1000]);
    ws.send_frame(false, op::CONTINUATION, &data[1000..2000]);
    ws.send_frame(true, op::CONTINUATION, &data[2000..]);
    assert_eq!(ws.recv_message(), Message::Binary(data));
}

/// The app's `websocket.close` with 4001: a close frame with 4001; after the
/// client answers, the server closes the TCP connection.
#[test]
fn websocket_app_close_sends_its_code() {
    let srv = start(&[]);
    let mut ws = ws(&srv, "/ws", &[]);
    ws.send_text("close:4001");
    let f = ws.recv_frame();
    assert_eq!(f.opcode, op::CLOSE, "{f:?}");
    assert_eq!(f.close_code(), Some(4001));
    // The server may close the TCP connection without waiting for our
    // answer (RFC 6455 §7.1.1 lets it), so a failed write is fine.
    let _ = ws.try_send_frame(true, op::CLOSE, &4001u16.to_be_bytes());
    ws.expect_tcp_closed(Duration::from_secs(10));
}

/// A client-initiated close 1000 is answered with a close frame (1000) and
/// then the TCP close (RFC 6455 §5.5.1, §7.1.1).
#[test]
fn websocket_client_close_is_answered() {
    let srv = start(&[]);
    let mut ws = ws(&srv, "/ws", &[]);
    ws.send_text("before close");
    assert_eq!(ws.recv_message(), Message::Text("before close".into()));
    ws.send_close(1000);
    assert_eq!(ws.expect_close(FRAME_TIMEOUT), Some(1000));
    ws.expect_tcp_closed(Duration::from_secs(10));
}

/// `--websocket-max-message-size`: a message at the limit echoes; one past
/// it, in one frame or reassembled from small fragments, closes with 1009.
#[test]
fn websocket_message_over_the_limit_closes_1009() {
    let srv = start(&["--websocket-max-message-size", "1024"]);
    let mut ok = ws(&srv, "/ws", &[]);
    let at_limit = pseudo_random(1024, 5);
    ok.send_binary(&at_limit);
    assert_eq!(ok.recv_message(), Message::Binary(at_limit));

    let mut big = ws(&srv, "/ws", &[]);
    big.send_text(&"x".repeat(2000));
    assert_eq!(big.expect_close(FRAME_TIMEOUT), Some(1009));

    let mut fragmented = ws(&srv, "/ws", &[]);
    let part = pseudo_random(600, 9);
    fragmented.send_frame(false, op::BINARY, &part);
    fragmented.send_frame(true, op::CONTINUATION, &part);
    assert_eq!(fragmented.expect_close(FRAME_TIMEOUT), Some(1009));

    // The default limit (16 MiB) lets a 1 MiB message through.
    let srv = start(&[]);
    let mut ws = ws(&srv, "/ws", &[]);
    let mib = pseudo_random(1 << 20, 13);
    ws.send_binary(&mib);
    assert_eq!(ws.recv_message(), Message::Binary(mib));
}

/// `websocket.close` before `websocket.accept` refuses the handshake with
/// HTTP 403.
#[test]
fn websocket_close_before_accept_is_403() {
    let srv = start(&[]);
    match WebSocket::handshake(srv.connect(), "/ws-reject", &[]) {
        Ok(_) => panic!("the handshake was accepted"),
        Err(r) => assert_eq!(r.status, 403, "{}", r.dump()),
    }
    // The worker goes on serving.
    srv.assert_get("/hello", "Hello, ASGI!\n");
}

/// The offered subprotocols reach the scope in order; the one the app
/// accepts with is the response's `Sec-WebSocket-Protocol`.
#[test]
fn websocket_subprotocol_is_negotiated() {
    let srv = start(&[]);
    let mut ws = ws(&srv, "/ws", &["unknown.v9", "chat.v2", "chat.v1"]);
    assert_eq!(
        ws.response.header("Sec-WebSocket-Protocol"),
        Some("chat.v2"),
        "{}",
        ws.response.dump()
    );
    ws.send_text("scope");
    let Message::Text(text) = ws.recv_message() else {
        panic!("scope reply is not text")
    };
    let s: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(
        s["subprotocols"],
        serde_json::json!(["unknown.v9", "chat.v2", "chat.v1"]),
        "{s}"
    );
}

/// The `websockets` library's sync client against our server: subprotocol,
/// text, binary, a 1 MiB message, a ping answered, and the app's 4001 close.
#[test]
fn websocket_works_with_the_websockets_library_client() {
    require_module("websockets");
    let srv = start(&[]);
    let script = r#"
import sys
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

with connect(sys.argv[1], subprotocols=["chat.v1"], max_size=None, open_timeout=10) as ws:
    assert ws.subprotocol == "chat.v1", ws.subprotocol
    ws.send("hello")
    assert ws.recv(timeout=10) == "hello"
    ws.send(b"\x00\x01\xfe\xff")
    got = ws.recv(timeout=10)
    assert got == b"\x00\x01\xfe\xff", got
    big = bytes(range(256)) * 4096
    ws.send(big)
    got = ws.recv(timeout=10)
    assert got == big, len(got)
    assert ws.ping(b"rg").wait(10), "no pong"
    ws.send("close:4001")
    try:
        ws.recv(timeout=10)
        raise SystemExit("the app's close did not arrive")
    except ConnectionClosed as e:
        assert e.rcvd is not None and e.rcvd.code == 4001, e
print("OK")
"#;
    let url = format!("ws://127.0.0.1:{}/ws", srv.port());
    let mut child = Command::new(python())
        .args(["-c", script, &url])
        .env_remove("PYTHONPATH")
        .env_remove("PYTHONHOME")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("run {}: {e}", python()));
    let deadline = Instant::now() + Duration::from_secs(60);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() >= deadline {
            let _ = child.kill();
            break;
        }
        thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.trim() == "OK",
        "websockets client failed ({}):\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}

// ---- Autobahn-style framing cases ----------------------------------------

/// What the server must do with one client frame sequence.
enum Expect {
    /// Echo this message back.
    Echo(Message),
    /// Close with this code.
    Close(u16),
}

/// One case: a name (the Autobahn section it follows), the raw frames, what
/// must come back.
struct Case {
    name: &'static str,
    frames: Vec<Vec<u8>>,
    expect: Expect,
}

const MASK: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

fn frame(fin: bool, opcode: u8, payload: &[u8]) -> Vec<u8> {
    encode_frame(fin, opcode, payload, MASK)
}

fn close_payload(code: u16, reason: &[u8]) -> Vec<u8> {
    let mut p = code.to_be_bytes().to_vec();
    p.extend_from_slice(reason);
    p
}

fn cases() -> Vec<Case> {
    let text = |t: &str| Expect::Echo(Message::Text(t.into()));
    let euro = "\u{20ac}".as_bytes(); // 3 bytes of UTF-8
    let mut with_rsv = frame(true, op::TEXT, b"rsv");
    with_rsv[0] |= 0x40;
    let mut unmasked = vec![0x81, 3];
    unmasked.extend_from_slice(b"raw");
    vec![
        Case {
            name: "1.1.1 empty text",
            frames: vec![frame(true, op::TEXT, b"")],
            expect: text(""),
        },
        Case {
            name: "1.1.2 125-byte text",
            frames: vec![frame(true, op::TEXT, &[b'a'; 125])],
            expect: text(&"a".repeat(125)),
        },
        Case {
            name: "1.1.3 126-byte text",
            frames: vec![frame(true, op::TEXT, &[b'b'; 126])],
            expect: text(&"b".repeat(126)),
        },
        Case {
            name: "1.1.5 65536-byte text",
            frames: vec![frame(true, op::TEXT, &[b'c'; 65536])],
            expect: text(&"c".repeat(65536)),
        },
        Case {
            name: "2.6 unsolicited pong is ignored",
            frames: vec![frame(true, op::PONG, b"x"), frame(true, op::TEXT, b"after")],
            expect: text("after"),
        },
        Case {
            name: "2.5 ping over 125 bytes",
            frames: vec![frame(true, op::PING, &[0; 126])],
            expect: Expect::Close(1002),
        },
        Case {
            name: "3.1 reserved bit set",
            frames: vec![with_rsv],
            expect: Expect::Close(1002),
        },
        Case {
            name: "4.1.1 reserved data opcode 3",
            frames: vec![frame(true, 0x3, b"")],
            expect: Expect::Close(1002),
        },
        Case {
            name: "4.2.1 reserved control opcode 11",
            frames: vec![frame(true, 0xB, b"")],
            expect: Expect::Close(1002),
        },
        Case {
            name: "5.1 fragmented ping",
            frames: vec![
                frame(false, op::PING, b"a"),
                frame(true, op::CONTINUATION, b"b"),
            ],
            expect: Expect::Close(1002),
        },
        Case {
            name: "5.9 continuation without a start",
            frames: vec![frame(true, op::CONTINUATION, b"x")],
            expect: Expect::Close(1002),
        },
        Case {
            name: "5.18 new text inside a fragmented one",
            frames: vec![frame(false, op::TEXT, b"a"), frame(true, op::TEXT, b"b")],
            expect: Expect::Close(1002),
        },
        Case {
            name: "5.x unmasked client frame",
            frames: vec![unmasked],
            expect: Expect::Close(1002),
        },
        Case {
            name: "6.2.3 UTF-8 split inside a code point",
            frames: vec![
                frame(false, op::TEXT, &euro[..1]),
                frame(true, op::CONTINUATION, &euro[1..]),
            ],
            expect: text("\u{20ac}"),
        },
        Case {
            name: "6.3.1 invalid UTF-8",
            frames: vec![frame(
                true,
                op::TEXT,
                &[0xce, 0xba, 0xe1, 0xbd, 0xb9, 0xcf, 0x83, 0xed, 0xa0, 0x80],
            )],
            expect: Expect::Close(1007),
        },
        Case {
            name: "6.3.2 invalid UTF-8 across fragments",
            frames: vec![
                frame(false, op::TEXT, b"ok"),
                frame(true, op::CONTINUATION, &[0xff]),
            ],
            expect: Expect::Close(1007),
        },
        Case {
            name: "7.3.2 close with a 1-byte payload",
            frames: vec![frame(true, op::CLOSE, &[0x03])],
            expect: Expect::Close(1002),
        },
        Case {
            name: "7.7.1 close 1000 echoed",
            frames: vec![frame(true, op::CLOSE, &close_payload(1000, b""))],
            expect: Expect::Close(1000),
        },
        Case {
            name: "7.7.13 close 4999 echoed",
            frames: vec![frame(true, op::CLOSE, &close_payload(4999, b""))],
            expect: Expect::Close(4999),
        },
        Case {
            name: "7.9.1 close code 0 refused",
            frames: vec![frame(true, op::CLOSE, &close_payload(0, b""))],
            expect: Expect::Close(1002),
        },
        Case {
            name: "7.9.3 close code 1005 refused",
            frames: vec![frame(true, op::CLOSE, &close_payload(1005, b""))],
            expect: Expect::Close(1002),
        },
        Case {
            name: "7.9.9 close code 1016 refused",
            frames: vec![frame(true, op::CLOSE, &close_payload(1016, b""))],
            expect: Expect::Close(1002),
        },
        Case {
            name: "7.5.1 close reason not UTF-8",
            frames: vec![frame(true, op::CLOSE, &close_payload(1000, &[0xff, 0xfe]))],
            expect: Expect::Close(1007),
        },
    ]
}

/// The core framing cases of the Autobahn test suite (sections 1 to 7:
/// lengths, pings and pongs, reserved bits and opcodes, fragmentation, UTF-8,
/// close frames), each on its own connection: the echo, or the close code
/// RFC 6455 asks for, then the connection ends.
#[test]
fn autobahn_framing_cases() {
    let srv = start(&[]);
    let mut failures = Vec::new();
    for case in cases() {
        let mut socket = ws(&srv, "/ws", &[]);
        for f in &case.frames {
            socket.send_raw(f);
        }
        let got = match &case.expect {
            Expect::Echo(_) => Expect::Echo(socket.recv_message()),
            Expect::Close(_) => Expect::Close(socket.expect_close(FRAME_TIMEOUT).unwrap_or(1005)),
        };
        let ok = match (&case.expect, &got) {
            (Expect::Echo(a), Expect::Echo(b)) => a == b,
            (Expect::Close(a), Expect::Close(b)) => a == b,
            _ => false,
        };
        if !ok {
            let shown = |e: &Expect| match e {
                Expect::Echo(Message::Text(t)) => format!("echo text of {} bytes", t.len()),
                Expect::Echo(Message::Binary(b)) => format!("echo binary of {} bytes", b.len()),
                Expect::Close(c) => format!("close {c}"),
            };
            failures.push(format!(
                "{}: wanted {}, got {}",
                case.name,
                shown(&case.expect),
                shown(&got)
            ));
        }
        if let Expect::Close(_) = case.expect {
            socket.expect_tcp_closed(FRAME_TIMEOUT);
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

// ---- Signals --------------------------------------------------------------

/// Opens `n` WebSockets and checks each echoes, so all are accepted.
fn open_websockets(srv: &Server, n: usize) -> Vec<WebSocket> {
    (0..n)
        .map(|i| {
            let mut w = ws(srv, "/ws", &[]);
            w.send_text(&format!("socket {i}"));
            assert_eq!(w.recv_message(), Message::Text(format!("socket {i}")));
            w
        })
        .collect()
}

/// Each open WebSocket gets a close frame with 1001 (going away), well
/// before the 30 s graceful timeout would end the worker; the client answers.
#[track_caller]
fn expect_going_away(sockets: &mut [WebSocket]) {
    for (i, w) in sockets.iter_mut().enumerate() {
        assert_eq!(
            w.expect_close(Duration::from_secs(10)),
            Some(1001),
            "socket {i}"
        );
        let _ = w.try_send_frame(true, op::CLOSE, &1001u16.to_be_bytes());
    }
}

/// TERM with 3 WebSockets open and an HTTP request in flight: each socket
/// gets 1001, the request completes with 200, the master exits 0.
#[test]
fn term_closes_websockets_with_1001_and_completes_http_in_flight() {
    let mut srv = start(&["--graceful-timeout", "30"]);
    let mut sockets = open_websockets(&srv, 3);
    let pending = sleep_in_flight(&srv, 0.5);
    srv.signal(Signal::SIGTERM);
    expect_going_away(&mut sockets);
    let r = pending.join().expect("client thread");
    assert_eq!(r.status, 200, "{}", r.dump());
    assert_eq!(r.body_str(), "slept 0.5\n");
    let status = srv.wait_exit(Duration::from_secs(20));
    assert_eq!(status.code(), Some(0), "exit status {status}");
}

/// HUP replaces the worker: its 3 WebSockets get 1001, the HTTP request in
/// flight completes with 200, and the new worker accepts WebSockets.
#[test]
fn hup_closes_websockets_with_1001_and_completes_http_in_flight() {
    let mut srv = start(&["--graceful-timeout", "30"]);
    let old = srv.worker_pids();
    let mut sockets = open_websockets(&srv, 3);
    let pending = sleep_in_flight(&srv, 0.5);
    srv.signal(Signal::SIGHUP);
    srv.wait_for("RELOADING=1", Duration::from_secs(10));
    expect_going_away(&mut sockets);
    let r = pending.join().expect("client thread");
    assert_eq!(r.status, 200, "{}", r.dump());
    assert_eq!(r.body_str(), "slept 0.5\n");
    srv.wait_workers(Duration::from_secs(20), |p| {
        p.len() == 1 && !old.contains(&p[0])
    });
    let mut fresh = open_websockets(&srv, 1);
    fresh[0].send_close(1000);
    assert_eq!(fresh[0].expect_close(FRAME_TIMEOUT), Some(1000));
}
