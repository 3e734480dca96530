//! IP networks in CIDR notation, for the settings that name which clients may do what.
//!
//! Ground level: it imports nothing of Writ's, so settings can own its networks without
//! reaching up into the web layer.

use std::fmt;
use std::net::IpAddr;

/// An IP network in CIDR notation, e.g. `10.0.0.0/8` or `::1/128`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpNetwork {
    addr: IpAddr,
    prefix: u8,
}

impl IpNetwork {
    /// Parses `address/prefix`. The address must be the network's first address (no host
    /// bits set), so that a typo such as `10.1.2.3/8` is caught rather than widened.
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        let Some((addr, prefix)) = text.split_once('/') else {
            return Err(format!(
                "`{text}` is not in CIDR form address/prefix (one address is e.g. 127.0.0.1/32 or ::1/128)"
            ));
        };
        let addr: IpAddr = addr
            .parse()
            .map_err(|_| format!("`{addr}` in `{text}` is not an IP address"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = prefix
            .parse::<u8>()
            .ok()
            .filter(|p| *p <= max)
            .ok_or_else(|| format!("the prefix length in `{text}` must be 0 to {max}"))?;
        let network = Self { addr, prefix };
        let first = network.first_address();
        if first != addr {
            return Err(format!(
                "`{text}` has host bits set; the network is {first}/{prefix}"
            ));
        }
        Ok(network)
    }

    fn first_address(&self) -> IpAddr {
        match self.addr {
            IpAddr::V4(a) => IpAddr::V4(mask_v4(u32::from(a), self.prefix).into()),
            IpAddr::V6(a) => IpAddr::V6(mask_v6(u128::from(a), self.prefix).into()),
        }
    }

    /// Whether `ip` is inside. An IPv4 client seen as an IPv4-mapped IPv6 address (a
    /// dual-stack listener) counts as its IPv4 address.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let mapped = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4),
            IpAddr::V4(_) => None,
        };
        self.contains_exactly(ip) || mapped.is_some_and(|v4| self.contains_exactly(v4))
    }

    fn contains_exactly(&self, ip: IpAddr) -> bool {
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(a)) => {
                mask_v4(u32::from(a), self.prefix) == u32::from(net)
            }
            (IpAddr::V6(net), IpAddr::V6(a)) => {
                mask_v6(u128::from(a), self.prefix) == u128::from(net)
            }
            _ => false,
        }
    }
}

impl fmt::Display for IpNetwork {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

/// The first `prefix` bits of `x` (a shift by the full width, prefix 0, leaves nothing).
fn mask_v4(x: u32, prefix: u8) -> u32 {
    x & u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0)
}

/// The first `prefix` bits of `x`.
fn mask_v6(x: u128, prefix: u8) -> u128 {
    x & u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(s: &str) -> IpNetwork {
        IpNetwork::parse(s).unwrap()
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn networks_parse_strictly_and_match_by_prefix() {
        assert!(net("127.0.0.1/32").contains(ip("127.0.0.1")));
        assert!(!net("127.0.0.1/32").contains(ip("127.0.0.2")));
        assert!(net("10.0.0.0/8").contains(ip("10.255.1.2")));
        assert!(!net("10.0.0.0/8").contains(ip("11.0.0.1")));
        assert!(net("0.0.0.0/0").contains(ip("192.0.2.1")));
        assert!(!net("0.0.0.0/0").contains(ip("::1")));
        assert!(net("::1/128").contains(ip("::1")));
        assert!(net("fd00::/8").contains(ip("fd12:3456::1")));
        assert!(net("::/0").contains(ip("2001:db8::1")));
        // A dual-stack listener sees IPv4 clients as mapped addresses.
        assert!(net("10.0.0.0/8").contains(ip("::ffff:10.1.2.3")));
        assert!(!net("10.0.0.0/8").contains(ip("::ffff:11.1.2.3")));
        for bad in [
            "127.0.0.1",
            "10.0.0.0/33",
            "::/129",
            "10.0.0.0/-1",
            "10.0.0.0/",
            "ten/8",
            "",
            "10.1.2.3/8",
        ] {
            assert!(IpNetwork::parse(bad).is_err(), "{bad} accepted");
        }
        assert!(
            IpNetwork::parse("10.1.2.3/8")
                .unwrap_err()
                .contains("10.0.0.0/8")
        );
        assert_eq!(net(" 10.0.0.0/8 ").to_string(), "10.0.0.0/8");
    }
}
