//! What a TLS connection tells the app, in Apache mod_ssl's names:
//! `SSL_PROTOCOL`, `SSL_CIPHER`, `SSL_CLIENT_VERIFY`, and with a client
//! certificate `SSL_CLIENT_S_DN`, `SSL_CLIENT_I_DN` (RFC 4514 strings, as
//! mod_ssl prints them) and `SSL_CLIENT_CERT` (PEM).
//!
//! rustls has verified the certificate before any of this runs; this module
//! only reads the subject and issuer out of its DER (X.509, RFC 5280 §4.1),
//! with a reader that refuses anything malformed rather than guessing.

use std::fmt::Write;

use rustls::ServerConnection;

use super::ciphers::Suite;

/// The TLS facts of one connection, computed once when its handshake ends.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TlsInfo {
    /// `TLSv1.2` or `TLSv1.3`.
    pub protocol: &'static str,
    /// The suite, by its OpenSSL name.
    pub cipher: &'static str,
    /// The verified client certificate, if the client sent one.
    pub client: Option<ClientCert>,
}

/// A verified client certificate, as the environ shows it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ClientCert {
    /// Subject distinguished name, RFC 4514 (UTF-8).
    pub subject: String,
    /// Issuer distinguished name, RFC 4514 (UTF-8).
    pub issuer: String,
    /// The certificate in PEM.
    pub pem: String,
}

impl TlsInfo {
    /// Read the facts of a connection whose handshake is complete.
    pub fn of(session: &ServerConnection) -> TlsInfo {
        let protocol = match session.protocol_version() {
            Some(rustls::ProtocolVersion::TLSv1_3) => "TLSv1.3",
            Some(rustls::ProtocolVersion::TLSv1_2) => "TLSv1.2",
            _ => "",
        };
        let cipher = session
            .negotiated_cipher_suite()
            .and_then(Suite::of)
            .map_or("", Suite::openssl_name);
        let client = session
            .peer_certificates()
            .and_then(<[_]>::first)
            .and_then(|der| ClientCert::from_der(der));
        TlsInfo {
            protocol,
            cipher,
            client,
        }
    }

    /// mod_ssl's `SSL_CLIENT_VERIFY`: SUCCESS with a (verified) certificate, else NONE.
    pub fn client_verify(&self) -> &'static str {
        match self.client {
            Some(_) => "SUCCESS",
            None => "NONE",
        }
    }
}

impl ClientCert {
    /// Subject, issuer and PEM of a DER certificate; None when it does not parse.
    pub fn from_der(der: &[u8]) -> Option<ClientCert> {
        let (issuer, subject) = names(der)?;
        Some(ClientCert {
            subject,
            issuer,
            pem: pem(der),
        })
    }
}

/// One DER element: tag, contents, and what follows it.
fn element(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let len = rest[..n]
            .iter()
            .fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
        (len, &rest[n..])
    };
    (rest.len() >= len).then(|| (tag, &rest[..len], &rest[len..]))
}

const SEQUENCE: u8 = 0x30;
const SET: u8 = 0x31;
const OID: u8 = 0x06;

/// The issuer and subject of a certificate, as RFC 4514 strings.
fn names(der: &[u8]) -> Option<(String, String)> {
    let (SEQUENCE, cert, _) = element(der)? else {
        return None;
    };
    let (SEQUENCE, tbs, _) = element(cert)? else {
        return None;
    };
    let mut rest = tbs;
    // version [0] EXPLICIT is optional.
    if rest.first() == Some(&0xa0) {
        rest = element(rest)?.2;
    }
    let rest = element(rest)?.2; // serialNumber
    let rest = element(rest)?.2; // signature AlgorithmIdentifier
    let (SEQUENCE, issuer, rest) = element(rest)? else {
        return None;
    };
    let rest = element(rest)?.2; // validity
    let (SEQUENCE, subject, _) = element(rest)? else {
        return None;
    };
    Some((rfc4514(issuer)?, rfc4514(subject)?))
}

/// An X.501 Name (the contents of its SEQUENCE) as RFC 4514: the RDNs last
/// to first, joined by commas, multi-valued ones by `+`.
fn rfc4514(mut name: &[u8]) -> Option<String> {
    let mut rdns = Vec::new();
    while !name.is_empty() {
        let (SET, mut set, rest) = element(name)? else {
            return None;
        };
        name = rest;
        let mut parts = Vec::new();
        while !set.is_empty() {
            let (SEQUENCE, atv, rest) = element(set)? else {
                return None;
            };
            set = rest;
            let (OID, oid, value) = element(atv)? else {
                return None;
            };
            let (tag, value, _) = element(value)?;
            parts.push(format!(
                "{}={}",
                attribute_name(oid),
                attribute_value(tag, value)?
            ));
        }
        rdns.push(parts.join("+"));
    }
    rdns.reverse();
    Some(rdns.join(","))
}

/// The short name of an attribute type OID, or its dotted form.
fn attribute_name(oid: &[u8]) -> String {
    let known = match oid {
        [0x55, 0x04, 0x03] => "CN",
        [0x55, 0x04, 0x05] => "serialNumber",
        [0x55, 0x04, 0x06] => "C",
        [0x55, 0x04, 0x07] => "L",
        [0x55, 0x04, 0x08] => "ST",
        [0x55, 0x04, 0x09] => "STREET",
        [0x55, 0x04, 0x0a] => "O",
        [0x55, 0x04, 0x0b] => "OU",
        [0x55, 0x04, 0x0c] => "title",
        [0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x01] => "emailAddress",
        [0x09, 0x92, 0x26, 0x89, 0x93, 0xf2, 0x2c, 0x64, 0x01, 0x01] => "UID",
        [0x09, 0x92, 0x26, 0x89, 0x93, 0xf2, 0x2c, 0x64, 0x01, 0x19] => "DC",
        _ => "",
    };
    if !known.is_empty() {
        return known.to_owned();
    }
    let mut out = String::new();
    let mut arc: u64 = 0;
    for (i, &b) in oid.iter().enumerate() {
        arc = (arc << 7) | u64::from(b & 0x7f);
        if b & 0x80 != 0 {
            continue;
        }
        if out.is_empty() && i < oid.len() {
            let first = (arc / 40).min(2);
            let _ = write!(out, "{first}.{}", arc - first * 40);
        } else {
            let _ = write!(out, ".{arc}");
        }
        arc = 0;
    }
    out
}

/// A string attribute value, escaped per RFC 4514 §2.4; other types as `#hex`.
fn attribute_value(tag: u8, value: &[u8]) -> Option<String> {
    let text: String = match tag {
        // UTF8String, PrintableString, IA5String, VisibleString.
        0x0c | 0x13 | 0x16 | 0x1a => std::str::from_utf8(value).ok()?.to_owned(),
        // TeletexString: in practice latin-1.
        0x14 => value.iter().map(|&b| char::from(b)).collect(),
        // BMPString: UCS-2 big-endian.
        0x1e => {
            let units: Vec<u16> = value
                .chunks_exact(2)
                .map(|c| u16::from_be_bytes([c[0], c[1]]))
                .collect();
            String::from_utf16(&units).ok()?
        }
        _ => {
            let mut hex = format!("#{tag:02x}{:02x}", value.len());
            for b in value {
                let _ = write!(hex, "{b:02x}");
            }
            return Some(hex);
        }
    };
    let mut out = String::with_capacity(text.len());
    let last = text.chars().count().saturating_sub(1);
    for (i, c) in text.chars().enumerate() {
        let special = matches!(c, ',' | '+' | '"' | '\\' | '<' | '>' | ';')
            || (i == 0 && (c == '#' || c == ' '))
            || (i == last && c == ' ');
        if special {
            out.push('\\');
        }
        out.push(c);
    }
    Some(out)
}

/// DER as PEM: base64 in 64-column lines between the CERTIFICATE markers.
pub fn pem(der: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut b64 = String::with_capacity(der.len().div_ceil(3) * 4);
    for chunk in der.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |acc, (i, &b)| acc | u32::from(b) << (16 - 8 * i));
        for i in 0..4 {
            if i <= chunk.len() {
                b64.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                b64.push('=');
            }
        }
    }
    let mut out = String::from("-----BEGIN CERTIFICATE-----\n");
    for line in b64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(line).unwrap_or_default());
        out.push('\n');
    }
    out.push_str("-----END CERTIFICATE-----\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use rcgen::{CertificateParams, DistinguishedName, DnType, KeyPair};

    fn cert_with(dn: &[(DnType, &str)]) -> (Vec<u8>, String) {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        let mut name = DistinguishedName::new();
        for (t, v) in dn {
            name.push(t.clone(), *v);
        }
        params.distinguished_name = name;
        let key = KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        (cert.der().to_vec(), cert.pem())
    }

    #[test]
    fn subject_is_rfc4514_last_rdn_first() {
        let (der, _) = cert_with(&[
            (DnType::CountryName, "DE"),
            (DnType::OrganizationName, "Example, Inc."),
            (DnType::CommonName, "client one"),
        ]);
        let c = ClientCert::from_der(&der).unwrap();
        assert_eq!(c.subject, r"CN=client one,O=Example\, Inc.,C=DE");
        // Self-signed: the issuer is the subject.
        assert_eq!(c.issuer, c.subject);
    }

    #[test]
    fn non_ascii_names_stay_utf8() {
        let (der, _) = cert_with(&[(DnType::CommonName, "Jürgen")]);
        assert_eq!(ClientCert::from_der(&der).unwrap().subject, "CN=Jürgen");
    }

    #[test]
    fn pem_matches_the_standard_encoding() {
        let (der, pem_text) = cert_with(&[(DnType::CommonName, "x")]);
        assert_eq!(pem(&der).trim(), pem_text.replace("\r\n", "\n").trim());
    }

    #[test]
    fn malformed_der_is_refused() {
        assert!(ClientCert::from_der(b"").is_none());
        assert!(ClientCert::from_der(&[0x30, 0x82, 0xff]).is_none());
        assert!(ClientCert::from_der(&[0x30, 0x03, 0x02, 0x01, 0x00]).is_none());
    }

    #[test]
    fn unknown_attributes_print_as_dotted_oids() {
        assert_eq!(
            attribute_name(&[0x2b, 0x06, 0x01, 0x04, 0x01, 0x82, 0x37]),
            "1.3.6.1.4.1.311"
        );
    }
}
