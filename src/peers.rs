//! Which peers are trusted: the address lists of `forwarded_allow_ips` (may
//! set the scheme and forwarder headers) and `proxy_allow_ips` (may send a
//! PROXY header), with Gunicorn 24's syntax: comma-separated addresses and
//! CIDR networks, or `*` for any peer.
//!
//! A unix-socket peer has no address and is always trusted, as in Gunicorn:
//! only something on this host (a local proxy) can connect there.

use std::net::IpAddr;

/// A parsed allow-list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AllowList {
    /// `*`: every peer.
    Any,
    /// These networks (a plain address is a /32 or /128).
    Networks(Vec<Network>),
}

/// One address block.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Network {
    addr: IpAddr,
    prefix: u8,
}

impl Network {
    fn contains(&self, ip: IpAddr) -> bool {
        // An IPv4 peer on a dual-stack socket arrives as ::ffff:a.b.c.d.
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

impl AllowList {
    /// Parse `127.0.0.1,::1,10.0.0.0/8` or `*`. Blank entries are skipped.
    ///
    /// # Errors
    /// An entry that is neither an address nor a network, quoted.
    pub fn parse(value: &str) -> Result<AllowList, String> {
        let mut networks = Vec::new();
        for entry in value.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            if entry == "*" {
                return Ok(AllowList::Any);
            }
            networks.push(parse_network(entry)?);
        }
        Ok(AllowList::Networks(networks))
    }

    /// Whether a peer at `ip` is trusted; `None` (a unix socket) always is.
    pub fn allows(&self, ip: Option<IpAddr>) -> bool {
        match (self, ip) {
            (_, None) | (AllowList::Any, _) => true,
            (AllowList::Networks(nets), Some(ip)) => nets.iter().any(|n| n.contains(ip)),
        }
    }
}

fn parse_network(entry: &str) -> Result<Network, String> {
    let bad = || format!("{entry:?} is not an IP address or network");
    let (addr, prefix) = match entry.split_once('/') {
        Some((a, p)) => (a, Some(p)),
        None => (entry, None),
    };
    let addr: IpAddr = addr.parse().map_err(|_| bad())?;
    let max = if addr.is_ipv4() { 32 } else { 128 };
    let prefix = match prefix {
        None => max,
        Some(p) => p.parse::<u8>().ok().filter(|p| *p <= max).ok_or_else(bad)?,
    };
    Ok(Network { addr, prefix })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> Option<IpAddr> {
        Some(s.parse().unwrap())
    }

    #[test]
    fn addresses_and_networks_match_their_peers() {
        let l = AllowList::parse("127.0.0.1, ::1,10.0.0.0/8,2001:db8::/32").unwrap();
        for yes in [
            "127.0.0.1",
            "::1",
            "10.200.3.4",
            "2001:db8:1::5",
            "::ffff:10.1.1.1",
        ] {
            assert!(l.allows(ip(yes)), "{yes}");
        }
        for no in ["127.0.0.2", "11.0.0.1", "2001:db9::1", "::2"] {
            assert!(!l.allows(ip(no)), "{no}");
        }
    }

    #[test]
    fn star_and_unix_peers_are_always_trusted() {
        assert!(AllowList::parse("*").unwrap().allows(ip("203.0.113.9")));
        assert!(AllowList::parse("").unwrap().allows(None));
        assert!(!AllowList::parse("").unwrap().allows(ip("127.0.0.1")));
        assert!(
            AllowList::parse("0.0.0.0/0")
                .unwrap()
                .allows(ip("203.0.113.9"))
        );
    }

    #[test]
    fn bad_entries_are_refused() {
        for bad in ["localhost", "10.0.0.0/33", "::1/129", "1.2.3.4/x", "1.2.3"] {
            assert!(AllowList::parse(bad).is_err(), "{bad}");
        }
    }
}
