//! Networks written as CIDR (`10.0.0.0/8`): the allow-lists of tokens and the configured
//! trusted proxies. Addresses are compared as bits, so `10.1.2.3/8` and `10.0.0.0/8` are the
//! same network; an IPv4-mapped IPv6 address (`::ffff:10.1.2.3`) counts as its IPv4 address,
//! because a dual-stack listener reports IPv4 peers that way.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use crate::error::{Error, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    address: IpAddr,
    prefix: u8,
}

impl Cidr {
    /// `a.b.c.d/n` or `x:y::z/n`; a bare address is the network of that one address.
    pub fn parse(text: &str) -> Result<Cidr> {
        let bad = || Error::bad_request(format!("{text:?} is not a CIDR network like 10.0.0.0/8"));
        let text = text.trim();
        let (address, prefix) = match text.split_once('/') {
            Some((address, prefix)) => (address, Some(prefix)),
            None => (text, None),
        };
        let address: IpAddr = address.parse().map_err(|_| bad())?;
        let address = canonical(address);
        let max = if address.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            // Digits only: `u8::from_str` would also take "+8".
            Some(p) if !p.is_empty() && p.len() <= 3 && p.bytes().all(|b| b.is_ascii_digit()) => {
                p.parse::<u8>().map_err(|_| bad())?
            }
            Some(_) => return Err(bad()),
            None => max,
        };
        if prefix > max {
            return Err(bad());
        }
        Ok(Cidr { address, prefix })
    }

    /// An IPv4 network, as npm allows in a token's `cidr_whitelist`.
    pub fn parse_ipv4(text: &str) -> Result<Cidr> {
        let cidr = Cidr::parse(text)?;
        if !cidr.address.is_ipv4() {
            return Err(Error::bad_request(format!(
                "{text:?}: a CIDR allow-list can only contain IPv4 networks"
            )));
        }
        Ok(cidr)
    }

    pub fn contains(&self, address: IpAddr) -> bool {
        match (self.address, canonical(address)) {
            (IpAddr::V4(net), IpAddr::V4(addr)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(net) & mask == u32::from(addr) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(addr)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(net) & mask == u128::from(addr) & mask
            }
            _ => false,
        }
    }
}

/// IPv4-mapped IPv6 addresses become plain IPv4 ones.
pub fn canonical(address: IpAddr) -> IpAddr {
    match address {
        IpAddr::V6(v6) => v6
            .to_ipv4_mapped()
            .map(IpAddr::V4)
            .unwrap_or(IpAddr::V6(v6)),
        v4 => v4,
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.address, self.prefix)
    }
}

impl FromStr for Cidr {
    type Err = Error;
    fn from_str(s: &str) -> Result<Cidr> {
        Cidr::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap_or(IpAddr::from([0, 0, 0, 0]))
    }

    #[test]
    fn networks_contain_their_addresses_only() -> Result<()> {
        let net = Cidr::parse("10.1.0.0/16")?;
        assert!(net.contains(ip("10.1.255.7")));
        assert!(!net.contains(ip("10.2.0.1")));
        assert!(
            net.contains(ip("::ffff:10.1.0.1")),
            "IPv4-mapped peers match"
        );
        assert!(!net.contains(ip("::1")));
        assert!(Cidr::parse("0.0.0.0/0")?.contains(ip("203.0.113.9")));
        let host = Cidr::parse("127.0.0.1")?;
        assert_eq!(host.to_string(), "127.0.0.1/32");
        assert!(host.contains(ip("127.0.0.1")) && !host.contains(ip("127.0.0.2")));
        assert!(Cidr::parse("fd00::/8")?.contains(ip("fd12::1")));
        assert!(Cidr::parse("10.9.9.9/8")?.contains(ip("10.0.0.1")));
        Ok(())
    }

    #[test]
    fn malformed_networks_are_refused() {
        for bad in [
            "",
            "10.0.0.0/33",
            "10.0.0/8",
            "10.0.0.0/",
            "10.0.0.0/+8",
            "10.0.0.0/8/8",
            "a/8",
            "::1/129",
            "10.0.0.256/8",
        ] {
            assert!(Cidr::parse(bad).is_err(), "{bad:?} should be refused");
        }
        assert!(Cidr::parse_ipv4("::1/128").is_err());
        assert!(Cidr::parse_ipv4("192.168.0.0/24").is_ok());
    }
}
