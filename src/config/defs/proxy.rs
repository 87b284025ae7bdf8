//! Server mechanics at the edge: what the parser tolerates (Gunicorn 24's
//! switches, all off by default) and which front ends are trusted to speak for
//! the client (`forwarded_allow_ips` with the scheme and forwarder headers,
//! `proxy_allow_ips` with the PROXY protocol).

use crate::config::{Arity, Kind, Process, Section, Setting, Support, parse_bool};
use crate::peers::AllowList;

/// One of the parser's relaxation switches: a bool into `limits.leniency`.
macro_rules! leniency {
    ($name:ident, $key:literal, $flag:literal, $field:ident, $summary:literal, $doc:literal) => {
        #[doc = concat!("`", $key, "`: ", $summary, ".")]
        pub static $name: Setting = Setting {
            key: $key,
            flags: &[$flag],
            arity: Arity::Switch { value: "true" },
            kind: Kind::Bool,
            section: Section::Server,
            default: "False",
            summary: $summary,
            doc: $doc,
            env_fallback: None,
            process: Process::Worker,
            support: Support::Full,
            apply: |c, v| {
                c.limits.leniency.$field = parse_bool(v)?;
                Ok(())
            },
        };
    };
}

leniency!(
    STRIP_HEADER_SPACES,
    "strip_header_spaces",
    "--strip-header-spaces",
    strip_header_spaces,
    "Strip spaces present between the header name and the ':'",
    "Off by default: RFC 9112 §5.1 requires refusing such a field (400), since \
     proxies disagree on what it means. Deprecated in Gunicorn; kept for old clients."
);
leniency!(
    PERMIT_OBSOLETE_FOLDING,
    "permit_obsolete_folding",
    "--permit-obsolete-folding",
    obsolete_folding,
    "Permit requests employing obsolete HTTP line folding mechanism",
    "Off by default: a continuation line (obs-fold, RFC 9112 §5.2) is refused with \
     400. On, it is joined to the previous field value with one space."
);
leniency!(
    PERMIT_UNCONVENTIONAL_HTTP_METHOD,
    "permit_unconventional_http_method",
    "--permit-unconventional-http-method",
    unconventional_method,
    "Permit HTTP methods not matching conventions",
    "Off by default: a method must be 3 to 20 bytes of RFC 9110 token characters \
     with no lowercase letters or #, as every registered method is; others get 400."
);
leniency!(
    PERMIT_UNCONVENTIONAL_HTTP_VERSION,
    "permit_unconventional_http_version",
    "--permit-unconventional-http-version",
    unconventional_version,
    "Permit HTTP version not matching conventions of 1.0 and 1.1",
    "Off by default: HTTP/1.0 to HTTP/1.9 are served (1.2 and later as 1.1) and \
     other versions get 505. On, those are served as HTTP/1.0 or HTTP/1.1."
);
leniency!(
    CASEFOLD_HTTP_METHOD,
    "casefold_http_method",
    "--casefold-http-method",
    casefold_method,
    "Transform received HTTP methods to uppercase",
    "Methods are case-sensitive (RFC 9110 §9.1); on, REQUEST_METHOD is upper-cased. \
     Combine with permit_unconventional_http_method to accept lowercase methods."
);

/// `forwarded_allow_ips`: trusted front ends.
pub static FORWARDED_ALLOW_IPS: Setting = Setting {
    key: "forwarded_allow_ips",
    flags: &["--forwarded-allow-ips"],
    arity: Arity::Value { metavar: "STRING" },
    kind: Kind::Str,
    section: Section::Server,
    default: "127.0.0.1,::1",
    summary: "Front-end's IPs from which allowed to handle set secure headers",
    doc: "Comma-separated addresses and CIDR networks (10.0.0.0/8), or * for any \
          peer. Only these peers may set the secure_scheme_headers and \
          forwarder_headers; from others those headers are ignored. Unix-socket \
          peers are always trusted. FORWARDED_ALLOW_IPS is used when the setting is \
          not given.",
    env_fallback: Some("FORWARDED_ALLOW_IPS"),
    process: Process::Worker,
    support: Support::Full,
    apply: |c, v| {
        c.forwarded_allow = AllowList::parse(v)?;
        Ok(())
    },
};

/// `secure_scheme_headers`: headers that say the client used HTTPS.
pub static SECURE_SCHEME_HEADERS: Setting = Setting {
    key: "secure_scheme_headers",
    flags: &[],
    arity: Arity::Value { metavar: "DICT" },
    kind: Kind::Dict,
    section: Section::Server,
    default: "{'X-FORWARDED-PROTOCOL': 'ssl', 'X-FORWARDED-PROTO': 'https', 'X-FORWARDED-SSL': 'on'}",
    summary: "Headers that indicate HTTPS requests from a front-end proxy",
    doc: "A dict of header name to the exact value that means https. From a peer in \
          forwarded_allow_ips, a listed header with that value makes wsgi.url_scheme \
          https, with another value http; two listed headers that disagree are \
          answered 400. In an INI file: NAME=VALUE pairs separated by commas.",
    env_fallback: None,
    process: Process::Worker,
    support: Support::Full,
    apply: |c, v| {
        c.secure_scheme_headers = parse_str_dict(v)?
            .into_iter()
            .map(|(k, v)| (k.to_ascii_uppercase(), v))
            .collect();
        Ok(())
    },
};

/// `forwarder_headers`: underscore headers a trusted proxy may set.
pub static FORWARDER_HEADERS: Setting = Setting {
    key: "forwarder_headers",
    flags: &["--forwarder-headers"],
    arity: Arity::Value { metavar: "STRING" },
    kind: Kind::Str,
    section: Section::Server,
    default: "SCRIPT_NAME,PATH_INFO",
    summary: "Upper-case header names the front-end proxy sets for the environ",
    doc: "Comma-separated. From a peer in forwarded_allow_ips these header names, \
          underscores and all, pass header_map; a SCRIPT_NAME header sets SCRIPT_NAME \
          and is removed from the front of PATH_INFO (a path outside it is a 400).",
    env_fallback: None,
    process: Process::Worker,
    support: Support::Full,
    apply: |c, v| {
        c.forwarder_headers = v
            .split(',')
            .map(|h| h.trim().to_ascii_uppercase())
            .filter(|h| !h.is_empty())
            .collect();
        Ok(())
    },
};

/// `proxy_protocol`: expect a PROXY protocol header on each connection.
pub static PROXY_PROTOCOL: Setting = Setting {
    key: "proxy_protocol",
    flags: &["--proxy-protocol"],
    arity: Arity::Optional {
        metavar: "MODE",
        bare: "auto",
        choices: &["off", "v1", "v2", "auto"],
    },
    kind: Kind::Str,
    section: Section::Server,
    default: "off",
    summary: "Enable detect PROXY protocol (PROXY mode)",
    doc: "off, v1 (text), v2 (binary) or auto (either); the bare flag means auto, and \
          true/false from Gunicorn 23 mean auto/off. Each connection from a peer in \
          proxy_allow_ips must start with a PROXY header, whose client address becomes \
          REMOTE_ADDR/REMOTE_PORT (and the access log's %(h)s); other peers get 403.",
    env_fallback: None,
    process: Process::Worker,
    support: Support::Full,
    apply: |c, v| {
        c.proxy_protocol = match v.trim().to_ascii_lowercase().as_str() {
            "off" | "false" | "0" | "no" => None,
            "v1" => Some(crate::proxy::Accept::V1),
            "v2" => Some(crate::proxy::Accept::V2),
            "auto" | "true" | "1" | "yes" => Some(crate::proxy::Accept::Any),
            _ => return Err("expected off, v1, v2 or auto".into()),
        };
        Ok(())
    },
};

/// `proxy_allow_ips`: peers allowed to send a PROXY header.
pub static PROXY_ALLOW_IPS: Setting = Setting {
    key: "proxy_allow_ips",
    flags: &["--proxy-allow-from"],
    arity: Arity::Value { metavar: "STRING" },
    kind: Kind::Str,
    section: Section::Server,
    default: "127.0.0.1,::1",
    summary: "Front-end's IPs from which allowed accept proxy requests",
    doc: "Comma-separated addresses and CIDR networks, or *. With proxy_protocol on, \
          a connection from any other peer is answered 403 and closed. Unix-socket \
          peers are always allowed.",
    env_fallback: None,
    process: Process::Worker,
    support: Support::Full,
    apply: |c, v| {
        c.proxy_allow = AllowList::parse(v)?;
        Ok(())
    },
};

/// A string-to-string dict as typed: a Python dict's repr (`{'A': 'b'}`), or
/// `A=b,C=d` from an INI file or the command line; empty is empty.
fn parse_str_dict(v: &str) -> Result<Vec<(String, String)>, String> {
    let v = v.trim();
    let Some(inner) = v.strip_prefix('{').and_then(|r| r.strip_suffix('}')) else {
        return v
            .split(',')
            .filter(|p| !p.trim().is_empty())
            .map(|pair| {
                let (k, val) = pair
                    .split_once('=')
                    .ok_or_else(|| format!("expected NAME=VALUE, got {pair:?}"))?;
                Ok((k.trim().to_owned(), val.trim().to_owned()))
            })
            .collect();
    };
    let mut out = Vec::new();
    let mut rest = inner.trim();
    while !rest.is_empty() {
        let (key, after) = quoted(rest)?;
        let after = after
            .trim_start()
            .strip_prefix(':')
            .ok_or_else(|| format!("expected ':' after {key:?}"))?;
        let (value, after) = quoted(after.trim_start())?;
        out.push((key, value));
        rest = after.trim_start();
        rest = rest.strip_prefix(',').unwrap_or(rest).trim_start();
    }
    Ok(out)
}

/// A leading Python string literal ('..' or "..", no escapes) and the rest.
fn quoted(s: &str) -> Result<(String, &str), String> {
    let quote = s
        .chars()
        .next()
        .filter(|c| *c == '\'' || *c == '"')
        .ok_or_else(|| format!("expected a quoted string at {s:?}"))?;
    let body = &s[1..];
    let end = body
        .find(quote)
        .ok_or_else(|| format!("unterminated string at {s:?}"))?;
    Ok((body[..end].to_owned(), &body[end + 1..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dicts_parse_from_python_and_ini_spellings() {
        let want = vec![
            ("X-FORWARDED-PROTO".to_owned(), "https".to_owned()),
            ("X-Ssl".to_owned(), "on".to_owned()),
        ];
        assert_eq!(
            parse_str_dict("{'X-FORWARDED-PROTO': 'https', \"X-Ssl\": \"on\"}").unwrap(),
            want
        );
        assert_eq!(
            parse_str_dict("X-FORWARDED-PROTO=https, X-Ssl=on").unwrap(),
            want
        );
        assert_eq!(parse_str_dict("").unwrap(), vec![]);
        assert_eq!(parse_str_dict("{}").unwrap(), vec![]);
        assert!(parse_str_dict("{'a' 'b'}").is_err());
        assert!(parse_str_dict("novalue").is_err());
    }

    #[test]
    fn proxy_protocol_modes() {
        use crate::proxy::Accept;
        let mut c = crate::config::Config::default();
        for (typed, want) in [
            ("off", None),
            ("v1", Some(Accept::V1)),
            ("v2", Some(Accept::V2)),
            ("auto", Some(Accept::Any)),
            ("true", Some(Accept::Any)),
            ("False", None),
        ] {
            (PROXY_PROTOCOL.apply)(&mut c, typed).unwrap();
            assert_eq!(c.proxy_protocol, want, "{typed}");
        }
        assert!((PROXY_PROTOCOL.apply)(&mut c, "v3").is_err());
    }
}
