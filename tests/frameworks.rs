//! Real frameworks on the real server: a Flask site (`flask_site.py`) and a
//! Django project (`django_site/`) over real sockets. Each behaviour runs
//! against both: server-sent events arrive as they are yielded, a 204 has
//! no body framing and keeps the connection, a CSRF-protected form POST,
//! absolute URLs from the Host header, and uploads behind
//! `Expect: 100-continue` (RFC 9110 §10.1.1), including a view that refuses
//! the request before reading its body.
//!
//! Flask and Django are test prerequisites (`.ci/install-deps`); a missing
//! one fails the test with that hint instead of skipping it.

use crate::support::sse::{self, INTERIM_TIMEOUT};
use crate::support::{IO_TIMEOUT, Response, Server, require_module};

/// Uploaded file size: well past one 64 KiB read.
const UPLOAD_BYTES: usize = 200 * 1024;
const BOUNDARY: &str = "rgunicorn-form-boundary-7d1f";
/// The Host header the absolute-URL tests send.
const HOST: &str = "example.test:8123";

/// One of the two framework apps, with what differs between them.
#[derive(Clone, Copy, Debug)]
enum Site {
    Flask,
    Django,
}

impl Site {
    /// Fails the test unless the framework imports in the interpreter the
    /// binary embeds, then starts the server and waits for READY=1.
    #[track_caller]
    fn start(self) -> Server {
        let (module, builder) = match self {
            Site::Flask => ("flask", Server::builder("flask_site:app")),
            Site::Django => (
                "django",
                Server::builder("django_site.wsgi:application")
                    .env("DJANGO_SETTINGS_MODULE", "django_site.settings"),
            ),
        };
        require_module(module);
        let srv = builder.start();
        // The first request imports views and compiles templates; keep that
        // out of the timing tests.
        let warm = srv.get("/where");
        assert_eq!(warm.status, 200, "{self:?} warm-up: {}", warm.dump());
        srv
    }

    /// The session/CSRF cookie the form GET sets.
    fn csrf_cookie(self) -> &'static str {
        match self {
            Site::Flask => "session",
            Site::Django => "csrftoken",
        }
    }

    /// The hidden form field carrying the CSRF token.
    fn csrf_field(self) -> &'static str {
        match self {
            Site::Flask => "csrf_token",
            Site::Django => "csrfmiddlewaretoken",
        }
    }
}

/// Adler-32, the same as Python's zlib.adler32.
fn adler32(data: &[u8]) -> u32 {
    const MOD: u32 = 65521;
    let (mut a, mut b) = (1u32, 0u32);
    for &x in data {
        a = (a + u32::from(x)) % MOD;
        b = (b + a) % MOD;
    }
    (b << 16) | a
}

/// Deterministic pseudo-random bytes (xorshift64): misplaced or lost bytes
/// change the checksum.
fn upload_payload() -> Vec<u8> {
    crate::support::pseudo_random(UPLOAD_BYTES, 0x9E37_79B9_7F4A_7C15)
}

/// A multipart/form-data body with a "note" field and `data` as "file".
fn multipart_body(data: &[u8]) -> Vec<u8> {
    assert!(
        !data
            .windows(BOUNDARY.len())
            .any(|w| w == BOUNDARY.as_bytes()),
        "payload contains the boundary"
    );
    let mut body = format!(
        "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"note\"\r\n\r\nfrom rust\r\n\
         --{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"blob.bin\"\r\n\
         Content-Type: application/octet-stream\r\n\r\n"
    )
    .into_bytes();
    body.extend_from_slice(data);
    body.extend_from_slice(format!("\r\n--{BOUNDARY}--\r\n").as_bytes());
    body
}

/// A request head announcing a multipart body of `len` bytes behind
/// `Expect: 100-continue`.
fn expect_continue_head(path: &str, len: usize, extra: &str) -> String {
    format!(
        "POST {path} HTTP/1.1\r\nHost: {HOST}\r\n\
         Content-Type: multipart/form-data; boundary={BOUNDARY}\r\n\
         Content-Length: {len}\r\nExpect: 100-continue\r\n{extra}\r\n"
    )
}

/// Server-sent events reach the client as the view yields them (see
/// [`sse::assert_events_arrive_as_yielded`]).
fn stream_events_arrive_as_yielded(site: Site) {
    let srv = site.start();
    sse::assert_events_arrive_as_yielded(&format!("{site:?}"), &srv, "/stream");
}

#[test]
fn flask_stream_events_arrive_as_yielded() {
    stream_events_arrive_as_yielded(Site::Flask);
}

#[test]
fn django_stream_events_arrive_as_yielded() {
    stream_events_arrive_as_yielded(Site::Django);
}

/// A 204 carries no Content-Length, no Transfer-Encoding and no body
/// (RFC 9110 §8.6, RFC 9112 §6.1), and the connection serves the next
/// request.
fn no_content_has_no_framing_and_keeps_alive(site: Site) {
    let srv = site.start();
    let mut c = srv.connect();
    c.set_read_timeout(INTERIM_TIMEOUT);
    c.send(b"GET /empty HTTP/1.1\r\nHost: x\r\n\r\n");
    let r = c.read_response();
    assert_eq!(r.status, 204, "{site:?}: {}", r.dump());
    assert_eq!(r.header("Content-Length"), None, "{site:?}: {}", r.dump());
    assert_eq!(
        r.header("Transfer-Encoding"),
        None,
        "{site:?}: {}",
        r.dump()
    );
    assert_ne!(
        r.header("Connection")
            .map(str::to_ascii_lowercase)
            .as_deref(),
        Some("close"),
        "{site:?}: a 204 needn't close the connection: {}",
        r.dump()
    );
    // A stray body or chunk terminator would garble this response's head.
    c.send(format!("GET /where HTTP/1.1\r\nHost: {HOST}\r\nConnection: close\r\n\r\n").as_bytes());
    let again = c.read_response();
    assert_eq!(
        again.status_line,
        "HTTP/1.1 200 OK",
        "{site:?}: {}",
        again.dump()
    );
    assert_eq!(again.body_str(), format!("http://{HOST}/where"));
}

#[test]
fn flask_no_content_has_no_framing_and_keeps_alive() {
    no_content_has_no_framing_and_keeps_alive(Site::Flask);
}

#[test]
fn django_no_content_has_no_framing_and_keeps_alive() {
    no_content_has_no_framing_and_keeps_alive(Site::Django);
}

/// `name=value` of the Set-Cookie named `name`.
#[track_caller]
fn cookie_pair(r: &Response, name: &str) -> String {
    r.headers_named("Set-Cookie")
        .into_iter()
        .filter_map(|c| c.split(';').next())
        .find(|pair| pair.starts_with(&format!("{name}=")))
        .unwrap_or_else(|| panic!("no {name} cookie: {}", r.dump()))
        .to_string()
}

/// The value of the hidden input named `field` in a rendered form.
#[track_caller]
fn hidden_value(r: &Response, field: &str) -> String {
    let body = r.body_str();
    let marker = format!("name=\"{field}\" value=\"");
    let start = body
        .find(&marker)
        .unwrap_or_else(|| panic!("no {field} input in {body:?}"))
        + marker.len();
    let len = body[start..].find('"').expect("closing quote");
    body[start..start + len].to_string()
}

fn post_form(srv: &Server, cookie: &str, form: &str) -> Response {
    srv.request(
        format!(
            "POST /form HTTP/1.1\r\nHost: {HOST}\r\nCookie: {cookie}\r\n\
             Content-Type: application/x-www-form-urlencoded\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n{form}",
            form.len()
        )
        .as_bytes(),
    )
}

/// The form GET sets a cookie and renders a token; a POST carrying both is
/// accepted and sees its fields, one without the token is refused.
fn form_post_needs_csrf_token(site: Site) {
    let srv = site.start();
    let page = srv.get("/form");
    assert_eq!(page.status, 200, "{site:?}: {}", page.dump());
    let cookie = cookie_pair(&page, site.csrf_cookie());
    let token = hidden_value(&page, site.csrf_field());

    let ok = post_form(
        &srv,
        &cookie,
        &format!("{}={token}&name=rust", site.csrf_field()),
    );
    assert_eq!(ok.status, 200, "{site:?} with token: {}", ok.dump());
    assert_eq!(ok.body_str(), "hello rust\n", "{site:?}");

    let refused = post_form(&srv, &cookie, "name=rust");
    assert_eq!(
        refused.status,
        403,
        "{site:?} without token: {}",
        refused.dump()
    );
}

#[test]
fn flask_form_post_needs_csrf_token() {
    form_post_needs_csrf_token(Site::Flask);
}

#[test]
fn django_form_post_needs_csrf_token() {
    form_post_needs_csrf_token(Site::Django);
}

/// `url_for(..., _external=True)` and `request.build_absolute_uri()` build
/// `http://<Host header>/path` from the environ PEP 3333 describes.
fn absolute_url_uses_host_header(site: Site) {
    let srv = site.start();
    let r = srv.request(
        format!("GET /where HTTP/1.1\r\nHost: {HOST}\r\nConnection: close\r\n\r\n").as_bytes(),
    );
    assert_eq!(r.status, 200, "{site:?}: {}", r.dump());
    assert_eq!(r.body_str(), format!("http://{HOST}/where"), "{site:?}");
}

#[test]
fn flask_url_for_external_uses_host_header() {
    absolute_url_uses_host_header(Site::Flask);
}

#[test]
fn django_build_absolute_uri_uses_host_header() {
    absolute_url_uses_host_header(Site::Django);
}

/// A client that withholds a 200 KiB multipart body until `100 Continue`
/// gets the interim response, sends the body, and the framework's file
/// parser sees every byte.
fn upload_waits_for_100_continue(site: Site) {
    let srv = site.start();
    let data = upload_payload();
    let body = multipart_body(&data);
    let mut c = srv.connect();
    c.send(expect_continue_head("/upload", body.len(), "Connection: close\r\n").as_bytes());
    c.set_read_timeout(INTERIM_TIMEOUT);
    let interim = c
        .try_read_response(false)
        .unwrap_or_else(|e| panic!("{site:?}: no 100 Continue within {INTERIM_TIMEOUT:?}: {e}"));
    assert_eq!(
        interim.status_line,
        "HTTP/1.1 100 Continue",
        "{site:?}: {}",
        interim.dump()
    );
    c.send(&body);
    c.set_read_timeout(IO_TIMEOUT);
    let r = c.read_response();
    assert_eq!(r.status, 200, "{site:?}: {}", r.dump());
    let v = r.json();
    assert_eq!(v["name"], "blob.bin", "{site:?}: {v}");
    assert_eq!(v["note"], "from rust", "{site:?}: {v}");
    assert_eq!(v["bytes"], UPLOAD_BYTES as u64, "{site:?}: {v}");
    assert_eq!(v["adler32"], u64::from(adler32(&data)), "{site:?}: {v}");
}

#[test]
fn flask_upload_waits_for_100_continue() {
    upload_waits_for_100_continue(Site::Flask);
}

#[test]
fn django_upload_waits_for_100_continue() {
    upload_waits_for_100_continue(Site::Django);
}

/// A view that refuses the request (POST to a GET-only route: 405) without
/// reading a body sent behind `Expect: 100-continue`. The client gets the
/// 405 and can tell what happens to the connection (RFC 9110 §10.1.1):
/// either the response says `Connection: close` and the server closes, or
/// the server reads the body and serves the next request. A close without
/// `Connection: close` fails.
fn refusal_before_body_says_how_connection_ends(site: Site) {
    let srv = site.start();
    let body = multipart_body(&upload_payload());
    let mut c = srv.connect();
    c.send(expect_continue_head("/where", body.len(), "").as_bytes());
    c.set_read_timeout(INTERIM_TIMEOUT);
    let first = c.try_read_response(false).unwrap_or_else(|e| {
        panic!(
            "{site:?}: neither 100 Continue nor a final response within {INTERIM_TIMEOUT:?}: {e}"
        )
    });
    let (r, body_sent) = if first.status == 100 {
        // The server asked for the body: a client sends it.
        c.send(&body);
        let r = c.try_read_response(false).unwrap_or_else(|e| {
            panic!("{site:?}: no final response after 100 Continue and the body: {e}")
        });
        (r, true)
    } else {
        (first, false)
    };
    assert_eq!(r.status, 405, "{site:?}: {}", r.dump());
    let closes = r
        .header("Connection")
        .is_some_and(|v| v.to_ascii_lowercase().contains("close"));
    if closes {
        c.expect_closed(INTERIM_TIMEOUT);
        return;
    }
    // No `Connection: close`: the server must be reading the body to keep
    // the connection, so send it (if not yet) and then a second request.
    if !body_sent && let Err(e) = c.try_send(&body) {
        panic!(
            "{site:?}: 405 without Connection: close, yet the server closed \
             before the body was sent: {e}\n{}",
            r.dump()
        );
    }
    let next = format!("GET /where HTTP/1.1\r\nHost: {HOST}\r\nConnection: close\r\n\r\n");
    let again = c
        .try_send(next.as_bytes())
        .and_then(|()| c.try_read_response(false));
    match again {
        Ok(again) => {
            assert_eq!(again.status, 200, "{site:?}: {}", again.dump());
            assert_eq!(again.body_str(), format!("http://{HOST}/where"), "{site:?}");
        }
        Err(e) => panic!(
            "{site:?}: the 405 did not say Connection: close, but the connection \
             did not serve a second request (body {}): {e}\nthe 405 was:\n{}",
            if body_sent {
                "sent after 100 Continue"
            } else {
                "sent after the 405"
            },
            r.dump()
        ),
    }
}

#[test]
fn flask_refusal_before_body_says_how_connection_ends() {
    refusal_before_body_says_how_connection_ends(Site::Flask);
}

#[test]
fn django_refusal_before_body_says_how_connection_ends() {
    refusal_before_body_says_how_connection_ends(Site::Django);
}

#[test]
fn adler32_matches_zlib() {
    // zlib.adler32(b"Wikipedia") == 0x11E60398
    assert_eq!(adler32(b"Wikipedia"), 0x11E6_0398);
    assert_eq!(adler32(b""), 1);
}
