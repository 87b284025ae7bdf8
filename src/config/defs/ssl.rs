//! TLS settings, spelled as Gunicorn's, plus `plain_bind` (which binds serve
//! without TLS). The files are only named here; the master reads them
//! (`crate::tls::load`) at start-up and on SIGHUP.

use crate::config::{Arity, Kind, Process, Section, Setting, Support, parse_bool, parse_uint};
use crate::listen::Address;
use crate::tls::CertReqs;

/// A file name: empty (or Python's `None`) unsets it.
fn file(v: &str) -> Option<std::path::PathBuf> {
    let v = v.trim();
    (!v.is_empty() && v != "None").then(|| v.into())
}

/// `keyfile`: PEM private key.
pub static KEYFILE: Setting = Setting {
    key: "keyfile",
    flags: &["--keyfile"],
    arity: Arity::Value { metavar: "FILE" },
    kind: Kind::Str,
    section: Section::Ssl,
    default: "None",
    summary: "SSL key file",
    doc: "PEM private key (PKCS#8, PKCS#1 or SEC1) for certfile. Unset, the key is read \
          from the certfile. The master reads it before dropping privileges, so it may be \
          readable by root alone; with $CREDENTIALS_DIRECTORY set (systemd's \
          LoadCredential=), a relative name is looked up there. SIGHUP reads it again for \
          new connections; if the new files cannot be used, the old ones stay in use.",
    env_fallback: None,
    process: Process::Master,
    support: Support::Full,
    apply: |c, v| {
        c.tls.keyfile = file(v);
        Ok(())
    },
};

/// `certfile`: PEM certificate chain; turns TLS on.
pub static CERTFILE: Setting = Setting {
    key: "certfile",
    flags: &["--certfile"],
    arity: Arity::Value { metavar: "FILE" },
    kind: Kind::Str,
    section: Section::Ssl,
    default: "None",
    summary: "SSL certificate file",
    doc: "PEM certificate chain, the server's certificate first. Setting it serves TLS \
          (1.2 and 1.3, ALPN http/1.1) on every bind except those named by plain_bind. \
          A relative name is looked up in $CREDENTIALS_DIRECTORY when that is set. A \
          file that cannot be read or used stops start-up (status 2) with its path and \
          the reason.",
    env_fallback: None,
    process: Process::Master,
    support: Support::Full,
    apply: |c, v| {
        c.tls.certfile = file(v);
        Ok(())
    },
};

/// `ssl_version`: deprecated in Gunicorn; ignored.
pub static SSL_VERSION: Setting = Setting {
    key: "ssl_version",
    flags: &["--ssl-version"],
    arity: Arity::Value { metavar: "VERSION" },
    kind: Kind::Str,
    section: Section::Ssl,
    default: "TLS",
    summary: "SSL version to use (deprecated in Gunicorn)",
    doc: "Accepted for compatibility and ignored, with a warning when set to anything \
          but TLS: TLS 1.2 and 1.3 are always offered, older versions never. Use ciphers \
          (for example TLSv1.3) to narrow what is offered.",
    env_fallback: None,
    process: Process::Master,
    support: Support::Full,
    apply: |c, v| {
        let v = v.trim();
        c.tls.ssl_version = match v {
            "" | "TLS" | "2" | "_SSLMethod.PROTOCOL_TLS" => None,
            other => Some(other.to_owned()),
        };
        Ok(())
    },
};

/// `cert_reqs`: 0 none, 1 optional, 2 required client certificates.
pub static CERT_REQS: Setting = Setting {
    key: "cert_reqs",
    flags: &["--cert-reqs"],
    arity: Arity::Value { metavar: "INT" },
    kind: Kind::Int,
    section: Section::Ssl,
    default: "0",
    summary: "Whether client certificate is required",
    doc: "0: no client certificate is asked for. 1: one is asked for; a client may go \
          without, but a certificate it sends must verify against ca_certs. 2: one is \
          required and must verify. A refused certificate (unknown CA, expired) ends the \
          handshake. The app sees SSL_CLIENT_VERIFY, SSL_CLIENT_S_DN, SSL_CLIENT_I_DN and \
          SSL_CLIENT_CERT in the environ, as under Apache's mod_ssl.",
    env_fallback: None,
    process: Process::Master,
    support: Support::Full,
    apply: |c, v| {
        c.tls.cert_reqs = match parse_uint::<u8>(v)? {
            0 => CertReqs::None,
            1 => CertReqs::Optional,
            2 => CertReqs::Required,
            _ => return Err("expected 0, 1 or 2".into()),
        };
        Ok(())
    },
};

/// `ca_certs`: CAs client certificates are verified against.
pub static CA_CERTS: Setting = Setting {
    key: "ca_certs",
    flags: &["--ca-certs"],
    arity: Arity::Value { metavar: "FILE" },
    kind: Kind::Str,
    section: Section::Ssl,
    default: "None",
    summary: "CA certificates file",
    doc: "PEM file of the CA certificates a client certificate must chain to (cert_reqs \
          1 or 2). A relative name is looked up in $CREDENTIALS_DIRECTORY when set.",
    env_fallback: None,
    process: Process::Master,
    support: Support::Full,
    apply: |c, v| {
        c.tls.ca_certs = file(v);
        Ok(())
    },
};

/// `suppress_ragged_eofs`: a TCP close without close_notify is a plain EOF.
pub static SUPPRESS_RAGGED_EOFS: Setting = Setting {
    key: "suppress_ragged_eofs",
    flags: &["--suppress-ragged-eofs"],
    arity: Arity::Switch { value: "true" },
    kind: Kind::Bool,
    section: Section::Ssl,
    default: "True",
    summary: "Suppress ragged EOFs (see stdlib ssl module's)",
    doc: "True: a client that closes TCP without TLS close_notify has simply ended its \
          stream. False: that counts as a connection error, so wsgi.input raises OSError \
          instead of reporting a client that went away.",
    env_fallback: None,
    process: Process::Worker,
    support: Support::Full,
    apply: |c, v| {
        c.tls.suppress_ragged_eofs = parse_bool(v)?;
        Ok(())
    },
};

/// `do_handshake_on_connect`: accepted; the handshake always runs in the loop.
pub static DO_HANDSHAKE_ON_CONNECT: Setting = Setting {
    key: "do_handshake_on_connect",
    flags: &["--do-handshake-on-connect"],
    arity: Arity::Switch { value: "true" },
    kind: Kind::Bool,
    section: Section::Ssl,
    default: "False",
    summary: "Whether to perform SSL handshake on socket connect",
    doc: "Accepted for compatibility; it changes nothing. The handshake always runs in \
          the worker's event loop as the client's bytes arrive, before any request is \
          read, and a client that stalls in it holds only its socket until \
          header_timeout.",
    env_fallback: None,
    process: Process::Worker,
    support: Support::Full,
    apply: |c, v| {
        c.tls.do_handshake_on_connect = parse_bool(v)?;
        Ok(())
    },
};

/// `ciphers`: an OpenSSL cipher list, read onto rustls's suites.
pub static CIPHERS: Setting = Setting {
    key: "ciphers",
    flags: &["--ciphers"],
    arity: Arity::Value { metavar: "CIPHERS" },
    kind: Kind::Str,
    section: Section::Ssl,
    default: "None",
    summary: "SSL Cipher suite to use, in the format of an OpenSSL cipher list",
    doc: "OpenSSL names (ECDHE-RSA-AES128-GCM-SHA256, TLS_AES_128_GCM_SHA256), IANA names, \
          and the groups ALL, DEFAULT, HIGH, ECDHE, AESGCM, AES128, AES256, CHACHA20, \
          ECDSA, aRSA, TLSv1.2, TLSv1.3; !NAME removes for good, -NAME removes, A+B \
          intersects. Suites OpenSSL has and rustls does not (DHE, CBC, RSA key exchange) \
          select nothing and are named in a warning; an unknown name is an error. The \
          server's order decides, as with Python's ssl: the order given, or unset every \
          suite rustls has (ECDHE only), AES-128-GCM first, then AES-256-GCM, then \
          ChaCha20-Poly1305.",
    env_fallback: None,
    process: Process::Master,
    support: Support::Full,
    apply: |c, v| {
        c.tls.ciphers = match v.trim() {
            "" | "None" => None,
            list => Some(crate::tls::ciphers::parse(list)?),
        };
        Ok(())
    },
};

/// `plain_bind`: binds served without TLS while certfile is set.
pub static PLAIN_BIND: Setting = Setting {
    key: "plain_bind",
    flags: &["--plain-bind"],
    arity: Arity::Value { metavar: "ADDRESS" },
    kind: Kind::List,
    section: Section::Ssl,
    default: "",
    summary: "A bind served without TLS even when certfile is set (repeatable)",
    doc: "rgunicorn only. With certfile set, TLS is served on every bind, as in Gunicorn, \
          except the ones listed here: for example a unix socket behind nginx next to a \
          public TLS port. Spelled as bind (HOST:PORT, unix:PATH, fd://N, fd://NAME for a \
          socket systemd passed under FileDescriptorName=); each must name a socket being \
          served, or start-up stops.",
    env_fallback: None,
    process: Process::Worker,
    support: Support::Full,
    apply: |c, v| {
        c.plain_bind.push(Address::parse(v)?);
        Ok(())
    },
};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    #[test]
    fn file_settings_take_paths_and_none_unsets() {
        let mut c = Config::default();
        (CERTFILE.apply)(&mut c, "/etc/ssl/c.pem").unwrap();
        (KEYFILE.apply)(&mut c, "tls.key").unwrap();
        (CA_CERTS.apply)(&mut c, "ca.pem").unwrap();
        assert!(c.tls.enabled());
        assert_eq!(
            c.tls.keyfile.as_deref(),
            Some(std::path::Path::new("tls.key"))
        );
        (CERTFILE.apply)(&mut c, "None").unwrap();
        assert!(!c.tls.enabled());
    }

    #[test]
    fn cert_reqs_is_0_1_or_2() {
        let mut c = Config::default();
        (CERT_REQS.apply)(&mut c, "2").unwrap();
        assert_eq!(c.tls.cert_reqs, CertReqs::Required);
        (CERT_REQS.apply)(&mut c, "1").unwrap();
        assert_eq!(c.tls.cert_reqs, CertReqs::Optional);
        assert!((CERT_REQS.apply)(&mut c, "3").is_err());
    }

    #[test]
    fn ciphers_are_checked_when_set() {
        let mut c = Config::default();
        (CIPHERS.apply)(&mut c, "ECDHE-RSA-AES128-GCM-SHA256").unwrap();
        assert_eq!(c.tls.ciphers.as_ref().map(|l| l.suites.len()), Some(1));
        let err = (CIPHERS.apply)(&mut c, "NOT-A-CIPHER").unwrap_err();
        assert!(err.contains("NOT-A-CIPHER"), "{err}");
    }

    #[test]
    fn ssl_version_is_kept_only_to_warn() {
        let mut c = Config::default();
        (SSL_VERSION.apply)(&mut c, "TLSv1_2").unwrap();
        assert_eq!(c.tls.ssl_version.as_deref(), Some("TLSv1_2"));
        (SSL_VERSION.apply)(&mut c, "TLS").unwrap();
        assert_eq!(c.tls.ssl_version, None);
    }

    #[test]
    fn plain_bind_repeats() {
        let mut c = Config::default();
        (PLAIN_BIND.apply)(&mut c, "unix:/run/app.sock").unwrap();
        (PLAIN_BIND.apply)(&mut c, "fd://internal").unwrap();
        assert_eq!(c.plain_bind.len(), 2);
        assert!((PLAIN_BIND.apply)(&mut c, "localhost:nope").is_err());
    }

    #[test]
    fn flags_toggle_the_switches() {
        let mut c = Config::default();
        (SUPPRESS_RAGGED_EOFS.apply)(&mut c, "false").unwrap();
        (DO_HANDSHAKE_ON_CONNECT.apply)(&mut c, "true").unwrap();
        assert!(!c.tls.suppress_ragged_eofs);
        assert!(c.tls.do_handshake_on_connect);
    }
}
