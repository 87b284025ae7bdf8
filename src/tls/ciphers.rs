//! The `ciphers` setting: an OpenSSL cipher list read onto the suites rustls
//! (with *ring*) implements.
//!
//! Gunicorn hands `ciphers` to `SSLContext.set_ciphers`, so configurations
//! carry OpenSSL strings such as Mozilla's "intermediate" list. Those are
//! read here element by element (`:`, `,` or space separated): a suite name
//! (OpenSSL's, or the IANA/RFC name), a group keyword (`HIGH`, `ECDHE`,
//! `AESGCM`, ...), `!NAME`/`-NAME` to take suites out, `+NAME` (ordering, which
//! changes nothing here: rustls orders by its own preference unless told).
//! Names OpenSSL knows but rustls does not implement (DHE, CBC, RSA key
//! exchange, ...) select nothing and are reported back so start-up can warn;
//! a name nobody knows is an error naming it. Pure: no I/O.

use rustls::SupportedCipherSuite;
use rustls::crypto::ring::cipher_suite as rs;

/// A cipher suite rustls implements; a closed set.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Suite {
    /// TLS 1.3 AES-128-GCM.
    Tls13Aes128Gcm,
    /// TLS 1.3 AES-256-GCM.
    Tls13Aes256Gcm,
    /// TLS 1.3 ChaCha20-Poly1305.
    Tls13Chacha20,
    /// TLS 1.2 ECDHE, ECDSA certificate, AES-128-GCM.
    EcdsaAes128Gcm,
    /// TLS 1.2 ECDHE, ECDSA certificate, AES-256-GCM.
    EcdsaAes256Gcm,
    /// TLS 1.2 ECDHE, ECDSA certificate, ChaCha20-Poly1305.
    EcdsaChacha20,
    /// TLS 1.2 ECDHE, RSA certificate, AES-128-GCM.
    RsaAes128Gcm,
    /// TLS 1.2 ECDHE, RSA certificate, AES-256-GCM.
    RsaAes256Gcm,
    /// TLS 1.2 ECDHE, RSA certificate, ChaCha20-Poly1305.
    RsaChacha20,
}

/// Every suite, in the server's default order of preference: AES-128-GCM
/// first, whose SHA-256 key schedule and signatures run on the CPU's SHA
/// instructions where SHA-384 runs in software (a third of a handshake's
/// time in profiles), then AES-256-GCM, then ChaCha20-Poly1305.
pub const ALL: [Suite; 9] = [
    Suite::Tls13Aes128Gcm,
    Suite::Tls13Aes256Gcm,
    Suite::Tls13Chacha20,
    Suite::EcdsaAes128Gcm,
    Suite::EcdsaAes256Gcm,
    Suite::EcdsaChacha20,
    Suite::RsaAes128Gcm,
    Suite::RsaAes256Gcm,
    Suite::RsaChacha20,
];

impl Suite {
    /// OpenSSL's name, as `SSL_CIPHER` reports it.
    pub fn openssl_name(self) -> &'static str {
        match self {
            Suite::Tls13Aes128Gcm => "TLS_AES_128_GCM_SHA256",
            Suite::Tls13Aes256Gcm => "TLS_AES_256_GCM_SHA384",
            Suite::Tls13Chacha20 => "TLS_CHACHA20_POLY1305_SHA256",
            Suite::EcdsaAes128Gcm => "ECDHE-ECDSA-AES128-GCM-SHA256",
            Suite::EcdsaAes256Gcm => "ECDHE-ECDSA-AES256-GCM-SHA384",
            Suite::EcdsaChacha20 => "ECDHE-ECDSA-CHACHA20-POLY1305",
            Suite::RsaAes128Gcm => "ECDHE-RSA-AES128-GCM-SHA256",
            Suite::RsaAes256Gcm => "ECDHE-RSA-AES256-GCM-SHA384",
            Suite::RsaChacha20 => "ECDHE-RSA-CHACHA20-POLY1305",
        }
    }

    /// The IANA name (rustls's `Debug` spelling).
    fn iana_name(self) -> &'static str {
        match self {
            Suite::Tls13Aes128Gcm | Suite::Tls13Aes256Gcm | Suite::Tls13Chacha20 => {
                self.openssl_name()
            }
            Suite::EcdsaAes128Gcm => "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
            Suite::EcdsaAes256Gcm => "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
            Suite::EcdsaChacha20 => "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
            Suite::RsaAes128Gcm => "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
            Suite::RsaAes256Gcm => "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
            Suite::RsaChacha20 => "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
        }
    }

    /// The rustls suite.
    pub fn rustls(self) -> SupportedCipherSuite {
        match self {
            Suite::Tls13Aes128Gcm => rs::TLS13_AES_128_GCM_SHA256,
            Suite::Tls13Aes256Gcm => rs::TLS13_AES_256_GCM_SHA384,
            Suite::Tls13Chacha20 => rs::TLS13_CHACHA20_POLY1305_SHA256,
            Suite::EcdsaAes128Gcm => rs::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
            Suite::EcdsaAes256Gcm => rs::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
            Suite::EcdsaChacha20 => rs::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
            Suite::RsaAes128Gcm => rs::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
            Suite::RsaAes256Gcm => rs::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
            Suite::RsaChacha20 => rs::TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
        }
    }

    /// The suite rustls negotiated, by its IANA name.
    pub fn of(negotiated: SupportedCipherSuite) -> Option<Suite> {
        ALL.into_iter()
            .find(|s| s.rustls().suite() == negotiated.suite())
    }

    fn is_tls13(self) -> bool {
        matches!(
            self,
            Suite::Tls13Aes128Gcm | Suite::Tls13Aes256Gcm | Suite::Tls13Chacha20
        )
    }

    fn is_ecdsa(self) -> bool {
        matches!(
            self,
            Suite::EcdsaAes128Gcm | Suite::EcdsaAes256Gcm | Suite::EcdsaChacha20
        )
    }

    fn is_chacha(self) -> bool {
        matches!(
            self,
            Suite::Tls13Chacha20 | Suite::EcdsaChacha20 | Suite::RsaChacha20
        )
    }

    fn is_aes128(self) -> bool {
        matches!(
            self,
            Suite::Tls13Aes128Gcm | Suite::EcdsaAes128Gcm | Suite::RsaAes128Gcm
        )
    }
}

/// A parsed `ciphers` value.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CipherList {
    /// The suites selected, in the order given.
    pub suites: Vec<Suite>,
    /// Names OpenSSL knows that select nothing rustls implements (warned at start-up).
    pub unsupported: Vec<String>,
}

/// Keywords and names OpenSSL knows that match nothing rustls implements.
const UNSUPPORTED: &[&str] = &[
    "DHE",
    "EDH",
    "kDHE",
    "kEDH",
    "DH",
    "ADH",
    "AECDH",
    "aNULL",
    "eNULL",
    "NULL",
    "COMPLEMENTOFALL",
    "COMPLEMENTOFDEFAULT",
    "MD5",
    "RC4",
    "DES",
    "3DES",
    "IDEA",
    "SEED",
    "CAMELLIA",
    "ARIA",
    "PSK",
    "SRP",
    "DSS",
    "aDSS",
    "kRSA",
    "RSA",
    "EXP",
    "EXPORT",
    "LOW",
    "MEDIUM",
    "SHA1",
    "SHA",
    "SHA256",
    "SHA384",
    "CBC",
    "AES128-SHA",
    "AES256-SHA",
    "AES128-SHA256",
    "AES256-SHA256",
    "AES128-GCM-SHA256",
    "AES256-GCM-SHA384",
    "DES-CBC3-SHA",
    "CCM",
    "CCM8",
    "AESCCM",
    "TLS_AES_128_CCM_SHA256",
    "TLS_AES_128_CCM_8_SHA256",
    "SSLv3",
    "TLSv1",
    "TLSv1.0",
    "@SECLEVEL=0",
    "@SECLEVEL=1",
    "@SECLEVEL=2",
    "@SECLEVEL=3",
    "@STRENGTH",
];

/// The suites an OpenSSL element selects, or None when we do not know it.
fn select(name: &str) -> Option<Vec<Suite>> {
    let all = ALL.iter().copied();
    let pick = |f: fn(Suite) -> bool| Some(all.clone().filter(|s| f(*s)).collect());
    match name {
        "ALL" | "DEFAULT" | "HIGH" | "FIPS" | "AEAD" => Some(all.collect()),
        "ECDHE" | "EECDH" | "kECDHE" | "kEECDH" | "TLSv1.2" => pick(|s| !s.is_tls13()),
        "TLSv1.3" => pick(Suite::is_tls13),
        "AESGCM" | "AES" => pick(|s| !s.is_chacha()),
        "AES128" => pick(Suite::is_aes128),
        "AES256" => pick(|s| !s.is_chacha() && !s.is_aes128()),
        "CHACHA20" => pick(Suite::is_chacha),
        "ECDSA" | "aECDSA" => pick(Suite::is_ecdsa),
        "aRSA" => pick(|s| !s.is_tls13() && !s.is_ecdsa()),
        _ => ALL
            .iter()
            .find(|s| s.openssl_name() == name || s.iana_name() == name)
            .map(|s| vec![*s]),
    }
}

fn is_unsupported(name: &str) -> bool {
    UNSUPPORTED.contains(&name)
        || name.starts_with("DHE-")
        || name.starts_with("EDH-")
        || name.starts_with("SRP-")
        || name.starts_with("PSK-")
        || name.starts_with("RSA-PSK-")
        || name.starts_with("DHE_")
        || name.starts_with("TLS_DHE_")
        || name.starts_with("TLS_RSA_")
        // ECDHE with CBC: ECDHE-RSA-AES128-SHA, ECDHE-ECDSA-AES256-SHA384, ...
        || (name.starts_with("ECDHE-") && !name.contains("GCM") && !name.contains("CHACHA20"))
}

/// Parse an OpenSSL cipher list.
///
/// # Errors
/// An element that names no cipher OpenSSL knows (the message quotes it), or
/// a list that leaves no suite rustls implements.
pub fn parse(value: &str) -> Result<CipherList, String> {
    let mut out = CipherList::default();
    let mut banned: Vec<Suite> = Vec::new();
    let elements = value
        .split([':', ',', ' '])
        .map(str::trim)
        .filter(|e| !e.is_empty());
    for element in elements {
        let (op, body) = match element.as_bytes()[0] {
            b'!' | b'-' | b'+' => (element.as_bytes()[0], &element[1..]),
            _ => (0, element),
        };
        // `A+B` is an intersection in OpenSSL: every part must match.
        let mut parts = body.split('+');
        let first = parts.next().unwrap_or_default();
        let mut chosen = match select(first) {
            Some(s) => s,
            None if is_unsupported(first) => Vec::new(),
            None => return Err(format!("unknown cipher {first:?}")),
        };
        for part in parts {
            match select(part) {
                Some(s) => chosen.retain(|c| s.contains(c)),
                None if is_unsupported(part) => chosen.clear(),
                None => return Err(format!("unknown cipher {part:?}")),
            }
        }
        match op {
            b'!' => {
                banned.extend(&chosen);
                out.suites.retain(|s| !chosen.contains(s));
            }
            b'-' => out.suites.retain(|s| !chosen.contains(s)),
            // Ordering only: rustls keeps its own order.
            b'+' => {}
            _ if chosen.is_empty() => out.unsupported.push(element.to_owned()),
            _ => {
                for s in chosen {
                    if !banned.contains(&s) && !out.suites.contains(&s) {
                        out.suites.push(s);
                    }
                }
            }
        }
    }
    if out.suites.is_empty() {
        return Err("selects no cipher suite rustls implements".to_owned());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn openssl_and_iana_names_select_one_suite() {
        let l = parse("ECDHE-RSA-AES128-GCM-SHA256:TLS_AES_128_GCM_SHA256").unwrap();
        assert_eq!(l.suites, [Suite::RsaAes128Gcm, Suite::Tls13Aes128Gcm]);
        let l = parse("TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256").unwrap();
        assert_eq!(l.suites, [Suite::EcdsaChacha20]);
    }

    #[test]
    fn groups_and_exclusions() {
        assert_eq!(parse("HIGH").unwrap().suites.len(), 9);
        assert_eq!(parse("HIGH:!CHACHA20").unwrap().suites.len(), 6);
        assert_eq!(parse("ECDHE+AESGCM").unwrap().suites.len(), 4);
        assert_eq!(parse("TLSv1.3").unwrap().suites.len(), 3);
        // `!` bans for good; `-` only removes what is there.
        assert!(
            !parse("!ECDSA:ALL")
                .unwrap()
                .suites
                .contains(&Suite::EcdsaAes128Gcm)
        );
        assert!(
            parse("-ECDSA:ALL")
                .unwrap()
                .suites
                .contains(&Suite::EcdsaAes128Gcm)
        );
    }

    #[test]
    fn mozilla_intermediate_keeps_what_rustls_has_and_reports_the_rest() {
        let moz = "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:\
                   ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:\
                   ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:\
                   DHE-RSA-AES128-GCM-SHA256:DHE-RSA-AES256-GCM-SHA384:!aNULL:!MD5";
        let l = parse(moz).unwrap();
        assert_eq!(l.suites.len(), 6);
        assert_eq!(
            l.unsupported,
            ["DHE-RSA-AES128-GCM-SHA256", "DHE-RSA-AES256-GCM-SHA384"]
        );
    }

    #[test]
    fn unknown_names_and_empty_selections_are_refused() {
        assert!(
            parse("ECDHE-RSA-AES128-GCM-SHA256:BOGUS")
                .unwrap_err()
                .contains("BOGUS")
        );
        assert!(parse("DHE-RSA-AES128-GCM-SHA256").is_err());
        assert!(parse("").is_err());
    }

    #[test]
    fn every_suite_round_trips_through_rustls() {
        for s in ALL {
            assert_eq!(Suite::of(s.rustls()), Some(s));
        }
    }
}
