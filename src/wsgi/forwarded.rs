//! What a trusted front end says about the request (Gunicorn 24.1
//! semantics): the scheme the client used (`secure_scheme_headers`) and the
//! mount point (`forwarder_headers`' SCRIPT_NAME), both honoured only from
//! peers in `forwarded_allow_ips`. From anyone else those headers are
//! ordinary request headers and change nothing.
//!
//! Pure: no Python, no sockets, so the rules are unit-tested directly.

use crate::config::Config;
use crate::http::head::RequestHead;

use super::ConnInfo;

/// The front end's verdict for one request.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Forwarded {
    /// The peer is a trusted front end (its forwarder headers pass `header_map`).
    pub trusted: bool,
    /// `wsgi.url_scheme` is https.
    pub https: bool,
    /// A SCRIPT_NAME header from the proxy, replacing the configured one.
    pub script_name: Option<String>,
}

/// The request contradicts itself; answered 400.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub(crate) enum ForwardedError {
    /// Two secure-scheme headers disagree about the scheme.
    #[error("secure scheme headers disagree")]
    SchemeConflict,
    /// The path is outside the SCRIPT_NAME the proxy sent.
    #[error("path {path:?} is not under SCRIPT_NAME {script_name:?}")]
    OutsideScriptName {
        /// The request path.
        path: String,
        /// The forwarded SCRIPT_NAME.
        script_name: String,
    },
}

/// True when `name` is one of `forwarder_headers` (compared upper-case).
pub fn is_forwarder_header(config: &Config, name: &str) -> bool {
    config
        .forwarder_headers
        .iter()
        .any(|f| f.eq_ignore_ascii_case(name))
}

/// Read the trusted front end's headers, if the peer is one.
pub(crate) fn forwarded(
    config: &Config,
    conn: &ConnInfo,
    head: &RequestHead,
) -> Result<Forwarded, ForwardedError> {
    let mut out = Forwarded::default();
    if !config.forwarded_allow.allows(conn.peer_ip) {
        return Ok(out);
    }
    out.trusted = true;
    let mut scheme_seen = None;
    for (name, value) in head.headers() {
        if let Some((_, secure)) = config
            .secure_scheme_headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
        {
            let https = value == secure.as_bytes();
            match scheme_seen {
                Some(seen) if seen != https => return Err(ForwardedError::SchemeConflict),
                _ => scheme_seen = Some(https),
            }
        }
        if name.eq_ignore_ascii_case("script_name") && is_forwarder_header(config, name) {
            // Latin-1, as every environ string.
            out.script_name = Some(value.iter().map(|&b| char::from(b)).collect());
        }
    }
    out.https = scheme_seen.unwrap_or(false);
    if let Some(script_name) = &out.script_name {
        let path = super::environ::percent_decode_latin1(head.path());
        let under = path
            .strip_prefix(script_name.as_str())
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'));
        if !under {
            return Err(ForwardedError::OutsideScriptName {
                path,
                script_name: script_name.clone(),
            });
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::head::{Limits, parse};

    fn head(extra: &str) -> RequestHead {
        let raw = format!("GET /app/x HTTP/1.1\r\nHost: h\r\n{extra}\r\n");
        parse(raw.as_bytes(), &Limits::default())
            .unwrap()
            .unwrap()
            .0
    }

    fn peer(ip: &str) -> ConnInfo {
        ConnInfo {
            peer_ip: Some(ip.parse().unwrap()),
            ..ConnInfo::default()
        }
    }

    #[test]
    fn a_trusted_proxy_sets_the_scheme() {
        let c = Config::default();
        let https = head("X-Forwarded-Proto: https\r\n");
        assert!(forwarded(&c, &peer("127.0.0.1"), &https).unwrap().https);
        assert!(
            forwarded(&c, &ConnInfo::default(), &https).unwrap().https,
            "unix peer"
        );
        let http = head("X-Forwarded-Proto: http\r\n");
        assert!(!forwarded(&c, &peer("127.0.0.1"), &http).unwrap().https);
    }

    #[test]
    fn an_untrusted_peer_changes_nothing() {
        let c = Config::default();
        let h = head("X-Forwarded-Proto: https\r\nScript_Name: /app\r\n");
        assert_eq!(
            forwarded(&c, &peer("203.0.113.7"), &h).unwrap(),
            Forwarded::default()
        );
    }

    #[test]
    fn disagreeing_scheme_headers_are_refused() {
        let c = Config::default();
        let h = head("X-Forwarded-Proto: https\r\nX-Forwarded-Ssl: off\r\n");
        assert_eq!(
            forwarded(&c, &peer("::1"), &h),
            Err(ForwardedError::SchemeConflict)
        );
        let agree = head("X-Forwarded-Proto: https\r\nX-Forwarded-Ssl: on\r\n");
        assert!(forwarded(&c, &peer("::1"), &agree).unwrap().https);
    }

    #[test]
    fn a_forwarded_script_name_must_prefix_the_path() {
        let c = Config::default();
        let f = forwarded(&c, &peer("127.0.0.1"), &head("Script_Name: /app\r\n")).unwrap();
        assert!(f.trusted);
        assert_eq!(f.script_name.as_deref(), Some("/app"));
        assert!(matches!(
            forwarded(&c, &peer("127.0.0.1"), &head("Script_Name: /other\r\n")),
            Err(ForwardedError::OutsideScriptName { .. })
        ));
        assert!(matches!(
            forwarded(&c, &peer("127.0.0.1"), &head("Script_Name: /ap\r\n")),
            Err(ForwardedError::OutsideScriptName { .. })
        ));
    }
}
