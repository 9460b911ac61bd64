//! Who is calling: `Authorization: Bearer <token>` or `Basic <user:password>`.
//!
//! Tokens are looked up by their hash, one indexed read. A Basic credential costs a PBKDF2
//! verification the first time; after that it is remembered for a short while (keyed by a hash
//! of user and password, and only while the user's stored hash is unchanged), so that a
//! workspace publish of 200 packages does not pay the KDF 200 times.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use sha2::{Digest, Sha256};

use crate::clock::now_iso;
use crate::error::{Error, Result};
use crate::password::verify_password;
use crate::store::{Store, TokenRecord, UserRecord};
use crate::tokens::hash_token;

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
pub fn authenticate(
    store: &Store,
    cache: &CredentialCache,
    authorization: Option<&str>,
) -> Result<Option<Identity>> {
    let Some(header) = authorization.map(str::trim).filter(|h| !h.is_empty()) else {
        return Ok(None);
    };
    let (scheme, value) = header.split_once(' ').unwrap_or((header, ""));
    let value = value.trim();
    if scheme.eq_ignore_ascii_case("bearer") {
        bearer(store, value).map(Some)
    } else if scheme.eq_ignore_ascii_case("basic") {
        basic(store, cache, value).map(Some)
    } else {
        Err(Error::unauthorized(format!(
            "unsupported authorization scheme {scheme:?}: use a Bearer token"
        )))
    }
}

fn bearer(store: &Store, secret: &str) -> Result<Identity> {
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
    Ok(Identity {
        user,
        token: Some(token),
    })
}

fn basic(store: &Store, cache: &CredentialCache, encoded: &str) -> Result<Identity> {
    let malformed = || Error::unauthorized("malformed Basic credentials");
    let decoded = B64.decode(encoded).map_err(|_| malformed())?;
    let decoded = String::from_utf8(decoded).map_err(|_| malformed())?;
    let (name, password) = decoded.split_once(':').ok_or_else(malformed)?;
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
