//! Who is calling: `Authorization: Bearer <token>` or `Basic <user:password>`.
//!
//! Tokens are looked up by their hash, one indexed read. A Basic credential costs a PBKDF2
//! verification the first time; after that it is remembered for a short while (keyed by a hash
//! of user and password, and only while the user's stored hash is unchanged), so that a
//! workspace publish of 200 packages does not pay the KDF 200 times.
//!
//! A token with a CIDR allow-list only authenticates from an address inside one of its
//! networks. The address is the TCP peer's, or — only when that peer is a configured trusted
//! proxy — the client named in `X-Forwarded-For` (anyone can write that header).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use sha2::{Digest, Sha256};

use crate::accounts::cidr::{canonical, Cidr};
use crate::accounts::password::verify_password;
use crate::accounts::tokens::hash_token;
use crate::clock::now_iso;
use crate::error::{Error, Result};
use crate::store::{Store, TokenRecord, UserRecord};

/// An authenticated caller.
#[derive(Debug, Clone)]
pub struct Identity {
    pub user: UserRecord,
    /// The token used, if the caller sent one (none for Basic credentials).
    pub token: Option<TokenRecord>,
}

impl Identity {
    pub fn readonly(&self) -> bool {
        self.token.as_ref().is_some_and(|t| t.readonly)
    }

    /// True when the caller's token is limited to some packages or scopes.
    pub fn is_package_limited(&self) -> bool {
        self.token.as_ref().is_some_and(|t| t.is_package_limited())
    }

    /// Whether the caller's credential reaches `package` at all (a granular token may be
    /// limited to some packages, scopes and orgs). Maintainership is checked separately.
    pub fn may_reach_package(&self, package: &str) -> bool {
        self.token
            .as_ref()
            .is_none_or(|t| t.may_reach_package(package))
    }

    /// Whether the caller's credential may see (or, with `write`, change) an org's members
    /// and teams; the caller's role in the org is checked separately.
    pub fn may_manage_org(&self, org: &str, write: bool) -> bool {
        self.token
            .as_ref()
            .is_none_or(|t| t.may_manage_org(org, write))
    }
}

const BASIC_CACHE_TTL: Duration = Duration::from_secs(300);
const BASIC_CACHE_MAX: usize = 10_000;

/// Remembers Basic credentials that verified recently.
#[derive(Default)]
pub struct CredentialCache {
    verified: Mutex<HashMap<[u8; 32], (i64, String, Instant)>>,
}

impl CredentialCache {
    fn lookup(&self, key: &[u8; 32], user: &UserRecord) -> bool {
        let Ok(map) = self.verified.lock() else {
            return false;
        };
        matches!(map.get(key), Some((id, hash, at))
            if *id == user.id && *hash == user.password_hash && at.elapsed() < BASIC_CACHE_TTL)
    }

    fn remember(&self, key: [u8; 32], user: &UserRecord) {
        if let Ok(mut map) = self.verified.lock() {
            if map.len() >= BASIC_CACHE_MAX {
                map.retain(|_, (_, _, at)| at.elapsed() < BASIC_CACHE_TTL);
                if map.len() >= BASIC_CACHE_MAX {
                    map.clear();
                }
            }
            map.insert(key, (user.id, user.password_hash.clone(), Instant::now()));
        }
    }
}

/// Resolves an `Authorization` header. No header: `Ok(None)` (anonymous). A header that does
/// not identify anyone: 401 — a stale token must be reported, not silently ignored.
/// The caller's address is unknown here, so a token with a CIDR allow-list is refused: use
/// [`authenticate_from`] wherever the address is known.
pub fn authenticate(
    store: &Store,
    cache: &CredentialCache,
    authorization: Option<&str>,
) -> Result<Option<Identity>> {
    authenticate_from(store, cache, authorization, None)
}

/// [`authenticate`] for a request from `client` (see [`client_address`]).
pub fn authenticate_from(
    store: &Store,
    cache: &CredentialCache,
    authorization: Option<&str>,
    client: Option<IpAddr>,
) -> Result<Option<Identity>> {
    let Some(header) = authorization.map(str::trim).filter(|h| !h.is_empty()) else {
        return Ok(None);
    };
    let (scheme, value) = header.split_once(' ').unwrap_or((header, ""));
    let value = value.trim();
    if scheme.eq_ignore_ascii_case("bearer") {
        bearer(store, value, client).map(Some)
    } else if scheme.eq_ignore_ascii_case("basic") {
        basic(store, cache, value).map(Some)
    } else {
        Err(Error::unauthorized(format!(
            "unsupported authorization scheme {scheme:?}: use a Bearer token"
        )))
    }
}

fn bearer(store: &Store, secret: &str, client: Option<IpAddr>) -> Result<Identity> {
    let hash = hash_token(secret);
    let (token, user) = store
        .read(|db| db.token_by_hash(&hash))?
        .ok_or_else(|| Error::unauthorized("invalid or revoked token: run `npm login` again"))?;
    if let Some(expires_at) = &token.expires_at {
        if *expires_at <= now_iso() {
            return Err(Error::unauthorized(
                "the token has expired: run `npm login` again",
            ));
        }
    }
    if !token.cidr_whitelist.is_empty()
        && !client.is_some_and(|ip| allows(&token.cidr_whitelist, ip))
    {
        let from = client.map_or_else(|| "an unknown address".to_string(), |ip| ip.to_string());
        return Err(Error::AddressNotAllowed(format!(
            "this token may not be used from {from}: it is limited to {}",
            token.cidr_whitelist.join(", ")
        )));
    }
    Ok(Identity {
        user,
        token: Some(token),
    })
}

/// True if one of the stored networks contains `ip`. An entry that no longer parses matches
/// nothing: an allow-list fails closed.
fn allows(whitelist: &[String], ip: IpAddr) -> bool {
    whitelist
        .iter()
        .filter_map(|network| Cidr::parse_ipv4(network).ok())
        .any(|network| network.contains(ip))
}

/// The address a request comes from: the TCP peer, unless the peer is a trusted proxy, in
/// which case `X-Forwarded-For` is read from the right (each proxy appends the address it
/// saw) and the first address that is not itself a trusted proxy is the client. An entry that
/// does not parse stops the walk at the last trustworthy hop.
pub fn client_address(peer: IpAddr, forwarded_for: Option<&str>, trusted: &[Cidr]) -> IpAddr {
    let peer = canonical(peer);
    let is_trusted = |ip: IpAddr| trusted.iter().any(|net| net.contains(ip));
    let Some(header) = forwarded_for.filter(|_| is_trusted(peer)) else {
        return peer;
    };
    let mut client = peer;
    for hop in header.rsplit(',').map(str::trim) {
        match hop.parse::<IpAddr>() {
            Ok(ip) => {
                client = canonical(ip);
                if !is_trusted(client) {
                    break;
                }
            }
            Err(_) => break,
        }
    }
    client
}

/// The `user:password` of a Basic credential (the base64 after `Basic `).
pub fn decode_basic(encoded: &str) -> Result<(String, String)> {
    let malformed = || Error::unauthorized("malformed Basic credentials");
    let decoded = B64.decode(encoded.trim()).map_err(|_| malformed())?;
    let decoded = String::from_utf8(decoded).map_err(|_| malformed())?;
    let (name, password) = decoded.split_once(':').ok_or_else(malformed)?;
    Ok((name.to_string(), password.to_string()))
}

fn basic(store: &Store, cache: &CredentialCache, encoded: &str) -> Result<Identity> {
    let (name, password) = decode_basic(encoded)?;
    let (name, password) = (name.as_str(), password.as_str());
    let user = store.read(|db| db.user_by_name(name))?;
    let key: [u8; 32] = Sha256::new()
        .chain_update(name.as_bytes())
        .chain_update([0u8])
        .chain_update(password.as_bytes())
        .finalize()
        .into();
    match user {
        Some(user) if cache.lookup(&key, &user) => Ok(Identity { user, token: None }),
        Some(user) if verify_password(password, &user.password_hash) => {
            cache.remember(key, &user);
            Ok(Identity { user, token: None })
        }
        _ => Err(Error::unauthorized("incorrect username or password")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap_or(IpAddr::from([0, 0, 0, 0]))
    }

    fn nets(list: &[&str]) -> Vec<Cidr> {
        list.iter().filter_map(|n| Cidr::parse(n).ok()).collect()
    }

    #[test]
    fn forwarded_for_is_ignored_unless_the_peer_is_a_trusted_proxy() {
        let xff = Some("10.1.2.3");
        assert_eq!(client_address(ip("127.0.0.1"), xff, &[]), ip("127.0.0.1"));
        let trusted = nets(&["127.0.0.1/32"]);
        assert_eq!(
            client_address(ip("127.0.0.1"), xff, &trusted),
            ip("10.1.2.3")
        );
        assert_eq!(
            client_address(ip("192.0.2.1"), xff, &trusted),
            ip("192.0.2.1")
        );
        assert_eq!(
            client_address(ip("127.0.0.1"), None, &trusted),
            ip("127.0.0.1")
        );
    }

    #[test]
    fn forwarded_for_is_read_from_the_right_past_trusted_hops() {
        let trusted = nets(&["127.0.0.1/32", "10.0.0.0/8"]);
        // The client may have sent a forged first entry; the proxies appended the rest.
        let chain = Some("6.6.6.6, 203.0.113.7, 10.0.0.2");
        assert_eq!(
            client_address(ip("127.0.0.1"), chain, &trusted),
            ip("203.0.113.7")
        );
        let garbage = Some("203.0.113.7, not-an-ip");
        assert_eq!(
            client_address(ip("127.0.0.1"), garbage, &trusted),
            ip("127.0.0.1")
        );
        let mapped = Some("::ffff:198.51.100.4");
        assert_eq!(
            client_address(ip("::ffff:127.0.0.1"), mapped, &trusted),
            ip("198.51.100.4")
        );
    }

    #[test]
    fn allow_lists_fail_closed() {
        let list = vec!["10.0.0.0/8".to_string(), "garbage".to_string()];
        assert!(allows(&list, ip("10.9.8.7")));
        assert!(!allows(&list, ip("192.168.1.1")));
        assert!(!allows(&["garbage".to_string()], ip("192.168.1.1")));
    }
}
