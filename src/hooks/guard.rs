//! The SSRF guard of hook endpoints: a hook is an HTTP request the registry makes on behalf of
//! whoever created it, so an endpoint may not reach the registry's own network (loopback,
//! private, link-local, …) unless `hooks_allow_private` says so. Checked when a hook is
//! created or updated, and again at every delivery on the addresses actually connected to.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, ToSocketAddrs};

use reqwest::Url;

use crate::error::{Error, Result};

/// Longest endpoint accepted (the seed's limit).
pub const MAX_ENDPOINT_CHARS: usize = 2048;

/// A parsed endpoint: `http` or `https`, with a host.
#[derive(Debug, Clone)]
pub struct Endpoint {
    pub url: Url,
    pub host: String,
    pub port: u16,
}

impl Endpoint {
    pub fn parse(raw: &str) -> Result<Endpoint> {
        let chars = raw.chars().count();
        if chars == 0 || chars > MAX_ENDPOINT_CHARS {
            return Err(Error::bad_request(format!(
                "endpoint must be 1 to {MAX_ENDPOINT_CHARS} characters long"
            )));
        }
        let url = Url::parse(raw)
            .map_err(|e| Error::bad_request(format!("endpoint {raw:?} is not a URL: {e}")))?;
        if url.scheme() != "http" && url.scheme() != "https" {
            return Err(Error::bad_request(format!(
                "endpoint must be an http or https URL, not {}:",
                url.scheme()
            )));
        }
        let host = url
            .host_str()
            .filter(|h| !h.is_empty())
            .ok_or_else(|| Error::bad_request("endpoint has no host"))?
            .to_string();
        let port = url
            .port_or_known_default()
            .ok_or_else(|| Error::bad_request("endpoint has no port"))?;
        Ok(Endpoint { url, host, port })
    }

    /// The host as an address, when the URL names one (`[::1]` is bracketed in URLs).
    pub fn literal_ip(&self) -> Option<IpAddr> {
        self.host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse()
            .ok()
    }
}

/// Refuses `addrs` if any of them is one a hook may not reach. Every address counts: a name
/// that resolves to one public and one private address could be made to connect to either.
pub fn check_addresses(host: &str, addrs: &[SocketAddr]) -> Result<()> {
    if addrs.is_empty() {
        return Err(Error::bad_request(format!(
            "endpoint host {host} does not resolve to any address"
        )));
    }
    if let Some(bad) = addrs.iter().find(|a| is_internal(a.ip())) {
        return Err(Error::bad_request(format!(
            "endpoint host {host} resolves to {}, a loopback, private or link-local address: \
             hooks may only call public addresses (an administrator can allow others with \
             hooks_allow_private = true)",
            bad.ip()
        )));
    }
    Ok(())
}

/// At create or update time: the endpoint must parse and, unless private addresses are
/// allowed, resolve only to public ones. Blocking (DNS).
pub fn check_endpoint(raw: &str, allow_private: bool) -> Result<Endpoint> {
    let endpoint = Endpoint::parse(raw)?;
    if allow_private {
        return Ok(endpoint);
    }
    let addrs: Vec<SocketAddr> = match endpoint.literal_ip() {
        Some(ip) => vec![SocketAddr::new(ip, endpoint.port)],
        None => (endpoint.host.as_str(), endpoint.port)
            .to_socket_addrs()
            .map_err(|e| {
                Error::bad_request(format!(
                    "endpoint host {} cannot be resolved: {e}",
                    endpoint.host
                ))
            })?
            .collect(),
    };
    check_addresses(&endpoint.host, &addrs)?;
    Ok(endpoint)
}

/// Whether a hook may not call `ip`: loopback, unspecified, private, shared (CGNAT),
/// link-local, multicast, broadcast, reserved and benchmarking ranges, their IPv6
/// counterparts, and IPv4 addresses embedded in IPv6 ones (mapped, compatible, NAT64, 6to4).
pub fn is_internal(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_internal_v4(v4),
        IpAddr::V6(v6) => is_internal_v6(v6),
    }
}

fn is_internal_v4(ip: Ipv4Addr) -> bool {
    let [a, b, ..] = ip.octets();
    ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_multicast()
        || ip.is_broadcast()
        || a == 0
        // 100.64.0.0/10, carrier-grade NAT: inside someone's network.
        || (a == 100 && (64..128).contains(&b))
        // 198.18.0.0/15, benchmarking; 240.0.0.0/4, reserved.
        || (a == 198 && (b == 18 || b == 19))
        || a >= 240
}

fn is_internal_v6(ip: Ipv6Addr) -> bool {
    if let Some(v4) = ip.to_ipv4_mapped() {
        return is_internal_v4(v4);
    }
    let segments = ip.segments();
    let embedded_v4 = |high: u16, low: u16| {
        Ipv4Addr::new((high >> 8) as u8, high as u8, (low >> 8) as u8, low as u8)
    };
    // ::a.b.c.d (deprecated IPv4-compatible), but not :: and ::1 themselves.
    if segments[..6].iter().all(|s| *s == 0) && !ip.is_loopback() && !ip.is_unspecified() {
        return is_internal_v4(embedded_v4(segments[6], segments[7]));
    }
    // 64:ff9b::/96 (NAT64) carries an IPv4 address in its last 32 bits.
    if segments[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        return is_internal_v4(embedded_v4(segments[6], segments[7]));
    }
    // 2002::/16 (6to4) carries one in bits 16–47.
    if segments[0] == 0x2002 {
        return is_internal_v4(embedded_v4(segments[1], segments[2]));
    }
    ip.is_loopback()
        || ip.is_unspecified()
        || ip.is_multicast()
        // fc00::/7 unique local, fe80::/10 link-local, fec0::/10 (old) site-local.
        || (segments[0] & 0xfe00) == 0xfc00
        || (segments[0] & 0xffc0) == 0xfe80
        || (segments[0] & 0xffc0) == 0xfec0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED))
    }

    #[test]
    fn internal_addresses_are_refused_in_every_spelling() {
        for internal in [
            "127.0.0.1",
            "127.8.9.10",
            "10.1.2.3",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "169.254.169.254",
            "0.0.0.0",
            "100.64.0.1",
            "224.0.0.1",
            "255.255.255.255",
            "198.18.0.1",
            "::1",
            "::",
            "fc00::1",
            "fd12:3456::1",
            "fe80::1",
            "ff02::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "::127.0.0.1",
            "64:ff9b::a00:1",
            "2002:7f00:1::",
        ] {
            assert!(is_internal(ip(internal)), "{internal} is internal");
        }
        for public in [
            "1.1.1.1",
            "8.8.8.8",
            "172.32.0.1",
            "100.128.0.1",
            "2606:4700:4700::1111",
            "::ffff:8.8.8.8",
            "64:ff9b::808:808",
        ] {
            assert!(!is_internal(ip(public)), "{public} is public");
        }
    }

    #[test]
    fn endpoints_must_be_http_urls_within_the_limit() {
        assert!(Endpoint::parse("https://example.com/hook").is_ok());
        assert_eq!(
            Endpoint::parse("http://example.com").map(|e| e.port).ok(),
            Some(80)
        );
        let long = format!("https://example.com/{}", "a".repeat(MAX_ENDPOINT_CHARS));
        for bad in [
            "",
            "ftp://example.com/",
            "not a url",
            "file:///etc/passwd",
            &long,
        ] {
            assert!(Endpoint::parse(bad).is_err(), "{bad:?} refused");
        }
    }

    #[test]
    fn private_endpoints_are_refused_unless_allowed() {
        for bad in [
            "http://127.0.0.1:8080/",
            "http://[::1]/",
            "http://localhost/",
            "http://169.254.169.254/latest/meta-data",
            "http://[::ffff:7f00:1]/",
        ] {
            let refused = check_endpoint(bad, false);
            assert!(
                matches!(&refused, Err(Error::BadRequest(reason)) if reason.contains("private")
                    || reason.contains("resolve")),
                "{bad}: {refused:?}"
            );
            assert!(check_endpoint(bad, true).is_ok(), "{bad} allowed");
        }
        assert!(check_endpoint("http://8.8.8.8/hook", false).is_ok());
    }
}
