//! Reading a streamed response as it arrives: chunked (or sized) framing
//! decoded by hand, each server-sent event timestamped when its last byte is
//! read, so a test can tell a stream from a response held back to the end.
//!
//! Apps under test yield `data: N T\n\n`, where `T` is the `time.time()` of
//! the yield.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::{Conn, Server};

/// Bounded wait for the first byte of each event.
pub const INTERIM_TIMEOUT: Duration = Duration::from_secs(5);
/// How late an event may arrive after the app yielded it.
pub const EVENT_LAG: Duration = Duration::from_millis(100);
/// The apps sleep this long between events.
pub const EVENT_SPACING: Duration = Duration::from_millis(500);

/// Reads one CRLF-terminated line (without the CRLF) from `c`.
#[track_caller]
pub fn read_line(c: &mut Conn) -> String {
    let mut line = Vec::new();
    let mut byte = [0u8; 1];
    while !line.ends_with(b"\r\n") {
        c.read_exact(&mut byte);
        line.push(byte[0]);
    }
    line.truncate(line.len() - 2);
    String::from_utf8_lossy(&line).into_owned()
}

/// One server-sent event as the client saw it.
#[derive(Debug)]
pub struct Event {
    /// Its `data:` text, e.g. `2 1715000000.123456`.
    pub data: String,
    /// When its last byte arrived.
    pub arrived: Instant,
    /// Arrival minus the `time.time()` the app wrote at its yield, seconds.
    pub lag: f64,
}

pub fn wall_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs_f64()
}

/// Reads the head and body of the `/stream` response as it arrives,
/// decoding chunked (or Content-Length) framing, and timestamps each
/// `\n\n`-terminated event when its last byte is read.
#[track_caller]
pub fn read_events(c: &mut Conn) -> (String, Vec<(String, String)>, Vec<Event>) {
    let status_line = read_line(c);
    let mut headers = Vec::new();
    loop {
        let line = read_line(c);
        if line.is_empty() {
            break;
        }
        let (n, v) = line
            .split_once(':')
            .unwrap_or_else(|| panic!("bad header line {line:?}"));
        headers.push((n.to_string(), v.trim().to_string()));
    }
    let header = |name: &str| {
        headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.to_ascii_lowercase())
    };
    let chunked = header("Transfer-Encoding").is_some_and(|te| te.ends_with("chunked"));
    let mut remaining = header("Content-Length").map(|cl| {
        cl.parse::<usize>()
            .unwrap_or_else(|_| panic!("bad Content-Length {cl:?}"))
    });

    let mut events = Vec::new();
    let mut pending = Vec::new();
    let mut take = |piece: &[u8], events: &mut Vec<Event>| {
        pending.extend_from_slice(piece);
        while let Some(i) = pending.windows(2).position(|w| w == b"\n\n") {
            let block: Vec<u8> = pending.drain(..i + 2).collect();
            let text = String::from_utf8_lossy(&block[..i]).into_owned();
            let data = text
                .strip_prefix("data: ")
                .unwrap_or_else(|| panic!("not an SSE data block: {text:?}"))
                .to_string();
            let yielded: f64 = data
                .split_whitespace()
                .nth(1)
                .and_then(|t| t.parse().ok())
                .unwrap_or_else(|| panic!("no yield time in {data:?}"));
            events.push(Event {
                data,
                arrived: Instant::now(),
                lag: wall_now() - yielded,
            });
        }
    };
    let mut byte = [0u8; 1];
    loop {
        if chunked {
            let line = read_line(c);
            let size = usize::from_str_radix(line.split(';').next().unwrap_or("").trim(), 16)
                .unwrap_or_else(|_| panic!("bad chunk size line {line:?}"));
            if size == 0 {
                while !read_line(c).is_empty() {}
                break;
            }
            let mut data = vec![0u8; size];
            c.read_exact(&mut data);
            take(&data, &mut events);
            assert_eq!(read_line(c), "", "chunk data not followed by CRLF");
        } else if let Some(left) = remaining.as_mut() {
            if *left == 0 {
                break;
            }
            c.read_exact(&mut byte);
            *left -= 1;
            take(&byte, &mut events);
        } else {
            // The request kept the connection open, so only framing can
            // end the body.
            panic!("streamed response is neither chunked nor sized: {headers:?}");
        }
    }
    assert!(pending.is_empty(), "trailing bytes {pending:?}");
    (status_line, headers, events)
}

/// Server-sent events reach the client as the view yields them: the first
/// within 100 ms of the request, each within 100 ms of its yield, so the
/// four arrive about 0.5 s apart rather than together at the end.
pub fn assert_events_arrive_as_yielded(site: &str, srv: &Server, path: &str) {
    let mut c = srv.connect();
    c.set_read_timeout(INTERIM_TIMEOUT);
    let sent = Instant::now();
    c.send(format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes());
    let (status_line, headers, events) = read_events(&mut c);
    assert_eq!(status_line, "HTTP/1.1 200 OK", "{site} headers {headers:?}");
    let timeline: Vec<String> = events
        .iter()
        .map(|e| {
            format!(
                "{:?} at {:.3}s (lag {:.3}s)",
                e.data,
                (e.arrived - sent).as_secs_f64(),
                e.lag
            )
        })
        .collect();
    assert_eq!(events.len(), 4, "{site}: {timeline:#?}");
    for (n, e) in events.iter().enumerate() {
        assert!(
            e.data.starts_with(&format!("{n} ")),
            "{site}: event {n} out of order: {timeline:#?}"
        );
        assert!(
            e.lag < EVENT_LAG.as_secs_f64(),
            "{site}: event {n} arrived {:.3}s after the app yielded it \
             (limit {EVENT_LAG:?}); the stream was held back: {timeline:#?}",
            e.lag
        );
    }
    let first = events[0].arrived - sent;
    assert!(
        first < EVENT_LAG,
        "{site}: first event arrived {first:?} after the request (limit {EVENT_LAG:?}): \
         {timeline:#?}"
    );
    for (n, e) in events.iter().enumerate().skip(1) {
        let since_first = e.arrived - events[0].arrived;
        let expected = EVENT_SPACING * n as u32;
        assert!(
            since_first + EVENT_LAG > expected && since_first < expected + EVENT_LAG,
            "{site}: event {n} arrived {since_first:?} after the first, \
             expected {expected:?} ± {EVENT_LAG:?}: {timeline:#?}"
        );
    }
}
