//! TLS at the edge, with rustls and the *ring* provider.
//!
//! The master reads the certificate, key and client CAs named by the SSL
//! settings into one [`Acceptor`] before it forks (at start-up and on every
//! SIGHUP), so the key file only needs to be readable by the master — with
//! systemd's `LoadCredential=` it lives in `$CREDENTIALS_DIRECTORY`, where
//! relative file names are looked up. Workers inherit the acceptor by fork and
//! make one `rustls::ServerConnection` per accepted connection; `stream.rs`
//! drives it over the non-blocking socket from the worker's event loop (no
//! async runtime, no threads), and `peer.rs` turns a finished handshake into
//! what the environ shows (mod_ssl's `SSL_*` names).
//!
//! TLS 1.2 and 1.3 only; ALPN offers `http/1.1`. The `ssl_context` hook of
//! Gunicorn receives a Python `ssl.SSLContext`, which cannot drive rustls: it
//! is refused at start-up.

pub mod ciphers;
pub mod peer;
pub mod stream;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::ServerConfig;
use rustls::crypto::CryptoProvider;
use rustls::server::WebPkiClientVerifier;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

pub use ciphers::CipherList;
pub use peer::TlsInfo;
pub use stream::TlsStream;

/// `cert_reqs`: whether clients must present a certificate (Python's
/// `ssl.CERT_NONE`, `CERT_OPTIONAL`, `CERT_REQUIRED`: 0, 1, 2).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum CertReqs {
    /// 0: no certificate is asked for.
    #[default]
    None,
    /// 1: asked for; one that is sent must verify against `ca_certs`.
    Optional,
    /// 2: required, and must verify against `ca_certs`.
    Required,
}

/// The SSL settings as typed, resolved but not read: `Config::tls`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Settings {
    /// `certfile`: PEM certificate chain, leaf first. TLS is on when set.
    pub certfile: Option<PathBuf>,
    /// `keyfile`: PEM private key; None reads the key from `certfile`.
    pub keyfile: Option<PathBuf>,
    /// `ca_certs`: PEM CA certificates client certificates are verified against.
    pub ca_certs: Option<PathBuf>,
    /// `cert_reqs`.
    pub cert_reqs: CertReqs,
    /// `ciphers`: the suites offered; None offers every suite rustls has.
    pub ciphers: Option<CipherList>,
    /// `ssl_version`, when set to anything: warned about and ignored.
    pub ssl_version: Option<String>,
    /// `suppress_ragged_eofs`: a TCP close without close_notify ends the
    /// stream like any EOF (true), or counts as a connection error (false).
    pub suppress_ragged_eofs: bool,
    /// `do_handshake_on_connect` (accepted; changes nothing, see its doc).
    pub do_handshake_on_connect: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            certfile: None,
            keyfile: None,
            ca_certs: None,
            cert_reqs: CertReqs::None,
            ciphers: None,
            ssl_version: None,
            suppress_ragged_eofs: true,
            do_handshake_on_connect: false,
        }
    }
}

impl Settings {
    /// TLS is configured (`certfile` is set).
    pub fn enabled(&self) -> bool {
        self.certfile.is_some()
    }
}

/// Why the TLS files cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A file could not be read.
    #[error("cannot read {what} {}: {source}", path.display())]
    Read {
        /// Which setting named it.
        what: &'static str,
        /// The path, resolved.
        path: PathBuf,
        /// The system error.
        source: std::io::Error,
    },
    /// A file holds no usable PEM item of the kind expected.
    #[error("{what} {}: {reason}", path.display())]
    Pem {
        /// Which setting named it.
        what: &'static str,
        /// The path, resolved.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// rustls refused the certificate and key (e.g. they do not match).
    #[error("certfile {} with keyfile {}: {reason}", certfile.display(), keyfile.display())]
    Rejected {
        /// The certificate file.
        certfile: PathBuf,
        /// The key file.
        keyfile: PathBuf,
        /// rustls's reason.
        reason: String,
    },
    /// The settings contradict each other.
    #[error("{0}")]
    Settings(&'static str),
}

/// What workers accept TLS connections with: built once per configuration
/// generation in the master, shared with workers by fork.
#[derive(Clone, Debug)]
pub struct Acceptor {
    config: Arc<ServerConfig>,
    /// `suppress_ragged_eofs`.
    ragged_eofs_are_eofs: bool,
}

impl Acceptor {
    /// A server session for a connection just accepted.
    ///
    /// # Errors
    /// rustls could not set up the session (out of memory, in practice).
    pub fn session(&self) -> Result<rustls::ServerConnection, rustls::Error> {
        rustls::ServerConnection::new(self.config.clone())
    }

    /// `suppress_ragged_eofs`.
    pub fn ragged_eofs_are_eofs(&self) -> bool {
        self.ragged_eofs_are_eofs
    }
}

/// Where a file named by a setting is: relative names are looked up in
/// `$CREDENTIALS_DIRECTORY` when systemd set it (`LoadCredential=`), else
/// taken as they are (from the working directory).
pub fn resolve_path(path: &Path, credentials: Option<&Path>) -> PathBuf {
    match credentials {
        Some(dir) if path.is_relative() => dir.join(path),
        _ => path.to_path_buf(),
    }
}

/// Read the files the settings name and build the acceptor; None when TLS is
/// off. `env` is the start-up environment (for `CREDENTIALS_DIRECTORY`).
///
/// # Errors
/// A file cannot be read or holds nothing usable, the key does not match the
/// certificate, or client certificates are asked for without `ca_certs`.
pub fn load(
    settings: &Settings,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Option<Acceptor>, TlsError> {
    let Some(certfile) = &settings.certfile else {
        if settings.keyfile.is_some() {
            return Err(TlsError::Settings("keyfile is set but certfile is not"));
        }
        return Ok(None);
    };
    let credentials = env("CREDENTIALS_DIRECTORY")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from);
    let credentials = credentials.as_deref();
    let certfile = resolve_path(certfile, credentials);
    let keyfile = settings
        .keyfile
        .as_deref()
        .map_or_else(|| certfile.clone(), |k| resolve_path(k, credentials));
    let chain = read_certs("certfile", &certfile)?;
    let key = read_key(&keyfile)?;
    let provider = Arc::new(provider(settings.ciphers.as_ref()));
    let verifier = match settings.cert_reqs {
        CertReqs::None => WebPkiClientVerifier::no_client_auth(),
        reqs => {
            let Some(ca) = &settings.ca_certs else {
                return Err(TlsError::Settings(
                    "cert_reqs 1 or 2 needs ca_certs to verify client certificates against",
                ));
            };
            let ca = resolve_path(ca, credentials);
            let mut roots = rustls::RootCertStore::empty();
            for cert in read_certs("ca_certs", &ca)? {
                roots.add(cert).map_err(|e| TlsError::Pem {
                    what: "ca_certs",
                    path: ca.clone(),
                    reason: e.to_string(),
                })?;
            }
            let builder =
                WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone());
            let builder = match reqs {
                CertReqs::Optional => builder.allow_unauthenticated(),
                _ => builder,
            };
            builder.build().map_err(|e| TlsError::Pem {
                what: "ca_certs",
                path: ca.clone(),
                reason: e.to_string(),
            })?
        }
    };
    let rejected = |e: rustls::Error| TlsError::Rejected {
        certfile: certfile.clone(),
        keyfile: keyfile.clone(),
        reason: e.to_string(),
    };
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(rejected)?
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, key)
        .map_err(rejected)?;
    // TODO(#13): offer h2 here once the worker speaks HTTP/2.
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    // Our order of suites decides, as Python's ssl servers do
    // (OP_CIPHER_SERVER_PREFERENCE), so Gunicorn's `ciphers` keeps its meaning.
    config.ignore_client_order = true;
    Ok(Some(Acceptor {
        config: Arc::new(config),
        ragged_eofs_are_eofs: settings.suppress_ragged_eofs,
    }))
}

/// *ring*, offering the suites `ciphers` selected in its order (by default
/// all of them, in [`ciphers::ALL`]'s order).
fn provider(ciphers: Option<&CipherList>) -> CryptoProvider {
    let mut provider = rustls::crypto::ring::default_provider();
    provider.cipher_suites = match ciphers {
        Some(list) => list.suites.iter().map(|s| s.rustls()).collect(),
        None => ciphers::ALL.iter().map(|s| s.rustls()).collect(),
    };
    provider
}

fn read_file(what: &'static str, path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        what,
        path: path.to_path_buf(),
        source,
    })
}

/// Every certificate in a PEM file, in order; at least one.
fn read_certs(what: &'static str, path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let pem = read_file(what, path)?;
    let bad = |reason: String| TlsError::Pem {
        what,
        path: path.to_path_buf(),
        reason,
    };
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| bad(format!("malformed PEM: {e}")))?;
    if certs.is_empty() {
        return Err(bad("no CERTIFICATE found".to_owned()));
    }
    Ok(certs)
}

/// The first private key (PKCS#8, PKCS#1 or SEC1) in a PEM file.
fn read_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    let pem = read_file("keyfile", path)?;
    PrivateKeyDer::from_pem_slice(&pem).map_err(|e| TlsError::Pem {
        what: "keyfile",
        path: path.to_path_buf(),
        reason: match e {
            rustls_pki_types::pem::Error::NoItemsFound => "no PRIVATE KEY found".to_owned(),
            e => format!("malformed PEM: {e}"),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_names_resolve_in_the_credentials_directory() {
        let creds = Path::new("/run/credentials/app.service");
        assert_eq!(
            resolve_path(Path::new("tls.key"), Some(creds)),
            creds.join("tls.key")
        );
        assert_eq!(
            resolve_path(Path::new("/etc/ssl/k.pem"), Some(creds)),
            Path::new("/etc/ssl/k.pem")
        );
        assert_eq!(
            resolve_path(Path::new("tls.key"), None),
            Path::new("tls.key")
        );
    }

    fn write_pair(dir: &Path) -> (PathBuf, PathBuf) {
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec!["localhost".into()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        let (c, k) = (dir.join("cert.pem"), dir.join("key.pem"));
        std::fs::write(&c, cert.pem()).unwrap();
        std::fs::write(&k, key.serialize_pem()).unwrap();
        (c, k)
    }

    fn temp_dir(label: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("rgunicorn-tls-{label}-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn a_certificate_and_its_key_load() {
        let dir = temp_dir("load");
        let (c, k) = write_pair(&dir);
        let s = Settings {
            certfile: Some(c),
            keyfile: Some(k),
            ..Settings::default()
        };
        assert!(load(&s, &|_| None).unwrap().is_some());
        // Relative names, found in the credentials directory.
        let s = Settings {
            certfile: Some("cert.pem".into()),
            keyfile: Some("key.pem".into()),
            ..Settings::default()
        };
        let d = dir.to_string_lossy().into_owned();
        assert!(load(&s, &|k| (k == "CREDENTIALS_DIRECTORY").then(|| d.clone())).is_ok());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn bad_files_are_named_in_the_error() {
        let dir = temp_dir("bad");
        let (c, k) = write_pair(&dir);
        let other = dir.join("other.pem");
        std::fs::write(&other, rcgen::KeyPair::generate().unwrap().serialize_pem()).unwrap();
        let with = |cert: &Path, key: &Path| Settings {
            certfile: Some(cert.to_path_buf()),
            keyfile: Some(key.to_path_buf()),
            ..Settings::default()
        };
        let e = load(&with(&c, &dir.join("missing.pem")), &|_| None).unwrap_err();
        assert!(
            matches!(
                e,
                TlsError::Read {
                    what: "keyfile",
                    ..
                }
            ),
            "{e}"
        );
        assert!(e.to_string().contains("missing.pem"));
        let e = load(&with(&k, &k), &|_| None).unwrap_err();
        assert!(
            matches!(
                e,
                TlsError::Pem {
                    what: "certfile",
                    ..
                }
            ),
            "{e}"
        );
        let e = load(&with(&c, &c), &|_| None).unwrap_err();
        assert!(
            matches!(
                e,
                TlsError::Pem {
                    what: "keyfile",
                    ..
                }
            ),
            "{e}"
        );
        let e = load(&with(&c, &other), &|_| None).unwrap_err();
        assert!(matches!(e, TlsError::Rejected { .. }), "{e}");
        let s = Settings {
            cert_reqs: CertReqs::Required,
            ..with(&c, &k)
        };
        assert!(matches!(load(&s, &|_| None), Err(TlsError::Settings(_))));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
