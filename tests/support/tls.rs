//! TLS for the harness: a test CA made at test time (rcgen), certificates it
//! signs, and a rustls client whose connection is an ordinary [`Conn`].

use std::fs;
use std::io;
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{ClientConfig, ClientConnection, StreamOwned};

use super::IO_TIMEOUT;
use super::client::{Conn, Stream};

impl Stream for StreamOwned<ClientConnection, TcpStream> {
    fn set_timeout(&self, t: Option<Duration>) -> io::Result<()> {
        self.sock.set_read_timeout(t)
    }
    fn shutdown_write(&self) -> io::Result<()> {
        self.sock.shutdown(std::net::Shutdown::Write)
    }
}

/// A certificate and its key, in PEM and DER, written to `cert`/`key`.
pub struct Identity {
    /// The certificate file.
    pub cert: PathBuf,
    /// The key file.
    pub key: PathBuf,
    /// The certificate, DER.
    pub der: Vec<u8>,
    key_der: Vec<u8>,
}

impl Identity {
    fn write(dir: &Path, name: &str, cert: &rcgen::Certificate, key: &KeyPair) -> Identity {
        let (cert_path, key_path) = (
            dir.join(format!("{name}.pem")),
            dir.join(format!("{name}.key")),
        );
        fs::write(&cert_path, cert.pem()).expect("write certificate");
        fs::write(&key_path, key.serialize_pem()).expect("write key");
        Identity {
            cert: cert_path,
            key: key_path,
            der: cert.der().to_vec(),
            key_der: key.serialize_der(),
        }
    }
}

/// A test certificate authority in a directory: `ca.pem` is its certificate.
pub struct TestCa {
    dir: PathBuf,
    issuer: Issuer<'static, KeyPair>,
    /// The CA certificate file.
    pub cert: PathBuf,
    der: Vec<u8>,
}

fn named(cn: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::OrganizationName, "rgunicorn tests");
    dn.push(DnType::CommonName, cn);
    dn
}

impl TestCa {
    /// A new CA called `cn`, its files in `dir`.
    pub fn new(dir: &Path, cn: &str) -> TestCa {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        params.distinguished_name = named(cn);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let key = KeyPair::generate().expect("CA key");
        let cert = params.self_signed(&key).expect("self-sign CA");
        let path = dir.join(format!("{}.pem", cn.replace(' ', "-")));
        fs::write(&path, cert.pem()).expect("write CA");
        TestCa {
            dir: dir.to_path_buf(),
            issuer: Issuer::new(params, key),
            cert: path,
            der: cert.der().to_vec(),
        }
    }

    fn issue(&self, name: &str, mut params: CertificateParams) -> Identity {
        let key = KeyPair::generate().expect("key");
        params.use_authority_key_identifier_extension = true;
        let cert = params.signed_by(&key, &self.issuer).expect("sign");
        Identity::write(&self.dir, name, &cert, &key)
    }

    /// A server certificate for localhost and 127.0.0.1, saved as `name`.
    pub fn server(&self, name: &str) -> Identity {
        let mut params =
            CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
                .expect("server params");
        params.distinguished_name = named(name);
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        self.issue(name, params)
    }

    /// A client certificate with common name `cn`; `expired` makes one whose
    /// validity ended in 2020.
    pub fn client(&self, cn: &str, expired: bool) -> Identity {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("client params");
        params.distinguished_name = named(cn);
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        if expired {
            params.not_before = rcgen::date_time_ymd(2019, 1, 1);
            params.not_after = rcgen::date_time_ymd(2020, 1, 1);
        }
        self.issue(&cn.replace(' ', "-"), params)
    }

    /// A client configuration trusting this CA, offering `client` if given,
    /// speaking only `versions`.
    pub fn client_config(
        &self,
        client: Option<&Identity>,
        versions: &[&'static rustls::SupportedProtocolVersion],
    ) -> Arc<ClientConfig> {
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(CertificateDer::from(self.der.clone()))
            .expect("trust CA");
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(versions)
            .expect("versions")
            .with_root_certificates(roots);
        let mut config = match client {
            Some(id) => builder
                .with_client_auth_cert(
                    vec![CertificateDer::from(id.der.clone())],
                    PrivateKeyDer::try_from(id.key_der.clone()).expect("client key"),
                )
                .expect("client certificate"),
            None => builder.with_no_client_auth(),
        };
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Arc::new(config)
    }
}

/// A TLS connection whose handshake is done, and the certificate the server showed.
pub struct TlsConn {
    /// The connection, for requests.
    pub conn: Conn,
    /// The server's certificate, DER.
    pub server_cert: Vec<u8>,
    /// The ALPN protocol agreed.
    pub alpn: Option<Vec<u8>>,
}

/// Connect to `addr` as `localhost` and complete the handshake.
///
/// # Errors
/// Connecting or the handshake failed.
pub fn connect(addr: SocketAddr, config: Arc<ClientConfig>) -> io::Result<TlsConn> {
    let sock = TcpStream::connect_timeout(&addr, IO_TIMEOUT)?;
    sock.set_read_timeout(Some(IO_TIMEOUT))?;
    sock.set_write_timeout(Some(IO_TIMEOUT))?;
    sock.set_nodelay(true)?;
    let local_port = sock.local_addr().ok().map(|a| a.port());
    let name = ServerName::try_from("localhost").expect("server name");
    let session = ClientConnection::new(config, name).map_err(io::Error::other)?;
    let mut stream = StreamOwned::new(session, sock);
    while stream.conn.is_handshaking() {
        stream.conn.complete_io(&mut stream.sock)?;
    }
    let server_cert = stream
        .conn
        .peer_certificates()
        .and_then(|c| c.first())
        .map(|c| c.to_vec())
        .unwrap_or_default();
    let alpn = stream.conn.alpn_protocol().map(<[u8]>::to_vec);
    let mut conn = Conn::over(Box::new(stream));
    conn.local_port = local_port;
    Ok(TlsConn {
        conn,
        server_cert,
        alpn,
    })
}
