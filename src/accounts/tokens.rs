//! Access tokens: random, shown once, stored only as a sha256 hash, looked up by that hash.
//!
//! `npm token create` asks for granular tokens (package/scope limits, read-only, expiry, CIDR
//! allow-list, …). What this registry can enforce is honoured; anything else is refused with a
//! 400, because silently ignoring a restriction would issue a wider token than was asked for.
//!
//! When a token was last used is remembered in memory ([`TokenUsage`]) and written in batches,
//! never once per request.

use std::collections::HashMap;
use std::sync::Mutex;

use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::accounts::authz::Writer;
use crate::accounts::cidr::Cidr;
use crate::accounts::password::verify_password;
use crate::accounts::users::account_holder;
use crate::clock::{iso, now_iso};
use crate::error::{Error, Result};
use crate::packages::names::PackageName;
use crate::store::{NewToken, Store};

#[derive(Debug, Clone)]
pub struct TokenRecord {
    pub id: i64,
    pub key: String,
    /// A short, non-secret prefix of the token for listings (`npm_ab12`).
    pub display: String,
    pub user_id: i64,
    pub name: Option<String>,
    pub readonly: bool,
    pub cidr_whitelist: Vec<String>,
    pub created_at: String,
    pub expires_at: Option<String>,
    pub last_used_at: Option<String>,
    pub description: Option<String>,
    /// With `scopes`, what a granular token may write to; both `None`: every package.
    pub packages: Option<Vec<String>>,
    /// Scopes as `@scope`.
    pub scopes: Option<Vec<String>>,
    /// Orgs (bare names) whose packages the token reaches, and what it may do to the orgs
    /// themselves (`orgs_permission`).
    pub orgs: Option<Vec<String>>,
    pub orgs_permission: OrgsPermission,
}

/// What a token limited to orgs may do to those orgs' members and teams.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum OrgsPermission {
    #[default]
    NoAccess,
    ReadOnly,
    ReadWrite,
}

impl OrgsPermission {
    pub fn parse(text: &str) -> Option<OrgsPermission> {
        match text {
            "no-access" => Some(OrgsPermission::NoAccess),
            "read-only" => Some(OrgsPermission::ReadOnly),
            "read-write" => Some(OrgsPermission::ReadWrite),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            OrgsPermission::NoAccess => "no-access",
            OrgsPermission::ReadOnly => "read-only",
            OrgsPermission::ReadWrite => "read-write",
        }
    }
}

impl TokenRecord {
    /// True when the token was issued for some packages, scopes or orgs only.
    pub fn is_package_limited(&self) -> bool {
        self.packages.is_some() || self.scopes.is_some() || self.orgs.is_some()
    }

    /// Whether the token may manage (`write`) or see an org's members and teams: an unlimited
    /// token may (the user's role decides); a limited one only for its orgs, as its
    /// `orgs_permission` says.
    pub fn may_manage_org(&self, org: &str, write: bool) -> bool {
        if !self.is_package_limited() {
            return true;
        }
        let listed = self
            .orgs
            .as_ref()
            .is_some_and(|orgs| orgs.iter().any(|o| o == org));
        listed
            && match self.orgs_permission {
                OrgsPermission::ReadWrite => true,
                OrgsPermission::ReadOnly => !write,
                OrgsPermission::NoAccess => false,
            }
    }

    /// Whether the token's package, scope and org limits (if any) include `package`.
    pub fn may_reach_package(&self, package: &str) -> bool {
        if !self.is_package_limited() {
            return true;
        }
        let listed = self
            .packages
            .as_ref()
            .is_some_and(|names| names.iter().any(|n| n == package));
        let in_scope = self.scopes.as_ref().is_some_and(|scopes| {
            scopes.iter().any(|scope| {
                package
                    .strip_prefix(scope.as_str())
                    .is_some_and(|rest| rest.starts_with('/'))
            })
        });
        let in_org = self.orgs.as_ref().is_some_and(|orgs| {
            crate::access::scope_of(package).is_some_and(|scope| orgs.iter().any(|o| o == scope))
        });
        listed || in_scope || in_org
    }
}

const TOKEN_ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
const TOKEN_RANDOM_CHARS: usize = 36;

#[derive(Debug, Default, Clone)]
pub struct TokenOptions {
    pub name: Option<String>,
    pub readonly: bool,
    pub cidr_whitelist: Vec<String>,
    pub expires_at: Option<String>,
}

/// A token just created: the secret is only ever available here.
pub struct IssuedToken {
    pub secret: String,
    pub record: TokenRecord,
}

pub fn hash_token(secret: &str) -> [u8; 32] {
    Sha256::digest(secret.as_bytes()).into()
}

pub fn create_token(store: &Store, user_id: i64, options: &TokenOptions) -> Result<IssuedToken> {
    issue_token(store, user_id, options, None, &PackageLimits::default())
}

/// The packages, scopes and orgs a granular token reaches. All `None`: every package.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct PackageLimits {
    pub packages: Option<Vec<String>>,
    /// As `@scope`.
    pub scopes: Option<Vec<String>>,
    /// Bare org names.
    pub orgs: Option<Vec<String>>,
    pub orgs_permission: OrgsPermission,
}

fn issue_token(
    store: &Store,
    user_id: i64,
    options: &TokenOptions,
    description: Option<&str>,
    limits: &PackageLimits,
) -> Result<IssuedToken> {
    let secret = generate_secret();
    let hash = hash_token(&secret);
    let key = hex::encode(rand::random::<[u8; 16]>());
    let display = secret[..8].to_string();
    let now = now_iso();
    store.write(|db| {
        if db.user_by_id(user_id)?.is_none() {
            return Err(Error::not_found("no such user"));
        }
        db.insert_token(&NewToken {
            key: &key,
            token_hash: &hash,
            display: &display,
            user_id,
            name: options.name.as_deref(),
            readonly: options.readonly,
            cidr_whitelist: &options.cidr_whitelist,
            created_at: &now,
            expires_at: options.expires_at.as_deref(),
            description,
            packages: limits.packages.as_deref(),
            scopes: limits.scopes.as_deref(),
            orgs: limits.orgs.as_deref(),
            orgs_permission: limits.orgs_permission.as_str(),
        })?;
        let (record, _) = db
            .token_by_hash(&hash)?
            .ok_or_else(|| Error::Storage("the new token vanished".into()))?;
        Ok(IssuedToken {
            secret: secret.clone(),
            record,
        })
    })
}

/// Revokes the token with this secret. Revoking an unknown or already revoked token is not an
/// error: logout must always be able to finish.
pub fn revoke_token(store: &Store, secret: &str) -> Result<bool> {
    let hash = hash_token(secret);
    store.write(|db| db.delete_token_by_hash(&hash))
}

/// At most this many networks in one token's allow-list.
pub const MAX_CIDR_ENTRIES: usize = 32;
/// The longest expiry `expires` may ask for, in days.
pub const MAX_EXPIRY_DAYS: i64 = 3650;
const MAX_NAME_LEN: usize = 128;
const MAX_DESCRIPTION_LEN: usize = 1024;

/// A validated `POST /-/npm/v1/tokens` body.
#[derive(Debug, Clone)]
pub struct TokenRequest {
    pub password: String,
    pub options: TokenOptions,
    pub description: Option<String>,
    pub limits: PackageLimits,
}

/// Reads an npm 11 token request (`{name, password, description, packages, packages_all,
/// scopes, orgs, packages_and_scopes_permission, orgs_permission, expires, cidr_whitelist,
/// bypass_2fa}`) or the legacy one (`{password, readonly, cidr_whitelist}`).
pub fn parse_token_request(body: &Value) -> Result<TokenRequest> {
    let body = body
        .as_object()
        .ok_or_else(|| Error::bad_request("the token request must be a JSON object"))?;
    const KNOWN: &[&str] = &[
        "name",
        "password",
        "description",
        "packages",
        "packages_all",
        "scopes",
        "orgs",
        "packages_and_scopes_permission",
        "orgs_permission",
        "expires",
        "cidr_whitelist",
        "bypass_2fa",
        "readonly",
        "automation",
    ];
    if let Some(unknown) = body.keys().find(|k| !KNOWN.contains(&k.as_str())) {
        return Err(Error::bad_request(format!(
            "this registry does not support {unknown:?} in a token request, and will not \
             issue a token that ignores it"
        )));
    }
    let password = match body.get("password") {
        Some(Value::String(p)) if !p.is_empty() => p.clone(),
        _ => {
            return Err(Error::bad_request(
                "your password is required to create a token (\"password\")",
            ))
        }
    };
    let name = optional_text(body, "name", MAX_NAME_LEN)?;
    let description = optional_text(body, "description", MAX_DESCRIPTION_LEN)?;

    // What we cannot honour is refused, never ignored.
    if optional_bool(body, "bypass_2fa")? == Some(true)
        || optional_bool(body, "automation")? == Some(true)
    {
        return Err(Error::bad_request(
            "this registry has no two-factor authentication, so it cannot issue a token that \
             bypasses it: leave out --bypass-2fa (every token here works without 2FA)",
        ));
    }
    let orgs = optional_list(body, "orgs")
        .or_else(|e| match body.get("orgs") {
            // npm sends `orgs: []` when --orgs is not given.
            Some(Value::Array(list)) if list.is_empty() => Ok(None),
            _ => Err(e),
        })?
        .map(|orgs| {
            orgs.iter()
                .map(|org| crate::access::orgs::normalize_org_name(org))
                .collect::<Result<Vec<_>>>()
        })
        .transpose()?;
    let orgs_permission = match body.get("orgs_permission") {
        None | Some(Value::Null) => OrgsPermission::NoAccess,
        Some(Value::String(p)) => OrgsPermission::parse(p).ok_or_else(|| {
            Error::bad_request(format!(
                "orgs_permission must be \"no-access\", \"read-only\" or \"read-write\", \
                 not {p:?}"
            ))
        })?,
        Some(other) => {
            return Err(Error::bad_request(format!(
                "orgs_permission must be a string, not {other}"
            )))
        }
    };
    if orgs.is_none() && orgs_permission != OrgsPermission::NoAccess {
        return Err(Error::bad_request(
            "orgs_permission needs the orgs it applies to (--orgs)",
        ));
    }
    let mut readonly = optional_bool(body, "readonly")?.unwrap_or(false);
    match body.get("packages_and_scopes_permission") {
        None | Some(Value::Null) => {}
        Some(Value::String(p)) if p == "read-write" => {}
        Some(Value::String(p)) if p == "read-only" => readonly = true,
        Some(Value::String(p)) if p == "no-access" && orgs.is_some() => {}
        Some(Value::String(p)) if p == "no-access" => {
            return Err(Error::bad_request(
                "a token with no access to packages needs orgs to be good for anything \
                 (--orgs), or use read-only or read-write",
            ))
        }
        Some(other) => {
            return Err(Error::bad_request(format!(
                "packages_and_scopes_permission must be \"read-only\" or \"read-write\", \
                 not {other}"
            )))
        }
    }

    let packages = optional_list(body, "packages")?
        .map(|names| {
            names
                .into_iter()
                .map(|name| PackageName::parse(&name).map(|n| n.as_str().to_string()))
                .collect::<Result<Vec<_>>>()
        })
        .transpose()?;
    let scopes = optional_list(body, "scopes")?
        .map(|scopes| {
            scopes
                .iter()
                .map(|s| normalize_scope(s))
                .collect::<Result<Vec<_>>>()
        })
        .transpose()?;
    if optional_bool(body, "packages_all")? == Some(true)
        && (packages.is_some() || scopes.is_some())
    {
        return Err(Error::bad_request(
            "packages_all gives access to every package: it cannot be combined with packages \
             or scopes",
        ));
    }

    let expires_at = match body.get("expires") {
        None | Some(Value::Null) => None,
        Some(value) => Some(expiry_after_days(value.as_i64(), &value.to_string())?),
    };

    let cidr_whitelist = match body.get("cidr_whitelist") {
        // The legacy body sends `[]` for "from anywhere"; that is not a guess.
        Some(Value::Array(list)) if list.is_empty() => Vec::new(),
        _ => optional_list(body, "cidr_whitelist")?.unwrap_or_default(),
    };
    let cidr_whitelist = canonical_cidr_whitelist(&cidr_whitelist)?;

    Ok(TokenRequest {
        password,
        options: TokenOptions {
            name,
            readonly,
            cidr_whitelist,
            expires_at,
        },
        description,
        limits: PackageLimits {
            packages,
            scopes,
            orgs,
            orgs_permission,
        },
    })
}

/// When a token asked to expire after `days` days expires: 1 to [`MAX_EXPIRY_DAYS`] from now.
/// `shown` is the value as the caller wrote it, for the refusal.
pub fn expiry_after_days(days: Option<i64>, shown: &str) -> Result<String> {
    let days = days
        .filter(|d| (1..=MAX_EXPIRY_DAYS).contains(d))
        .ok_or_else(|| {
            Error::bad_request(format!(
                "expires must be a whole number of days from 1 to {MAX_EXPIRY_DAYS}, not {shown}"
            ))
        })?;
    Ok(iso(
        time::OffsetDateTime::now_utc() + time::Duration::days(days)
    ))
}

/// A token's IPv4 allow-list as stored: at most [`MAX_CIDR_ENTRIES`] networks, each in its
/// canonical spelling (`192.168.1.7` → `192.168.1.7/32`).
pub fn canonical_cidr_whitelist(networks: &[String]) -> Result<Vec<String>> {
    if networks.len() > MAX_CIDR_ENTRIES {
        return Err(Error::bad_request(format!(
            "cidr_whitelist may list at most {MAX_CIDR_ENTRIES} networks"
        )));
    }
    networks
        .iter()
        .map(|network| {
            Cidr::parse_ipv4(network)
                .map(|c| c.to_string())
                .map_err(|_| {
                    Error::bad_request(format!(
                        "cidr_whitelist contains {network:?}, which is not an IPv4 network like \
                         192.168.0.0/24"
                    ))
                })
        })
        .collect()
}

/// `@scope` or `scope` → `@scope`, validated as npm validates scopes.
fn normalize_scope(raw: &str) -> Result<String> {
    let bare = raw.strip_prefix('@').unwrap_or(raw);
    let invalid = || Error::bad_request(format!("{raw:?} is not a valid scope like @myteam"));
    if bare.is_empty() || bare.contains('/') {
        return Err(invalid());
    }
    PackageName::parse(&format!("@{bare}/x")).map_err(|_| invalid())?;
    Ok(format!("@{bare}"))
}

fn optional_text(body: &Map<String, Value>, key: &str, max: usize) -> Result<Option<String>> {
    match body.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(text)) if text.is_empty() => Ok(None),
        Some(Value::String(text)) if text.len() <= max && !text.chars().any(char::is_control) => {
            Ok(Some(text.clone()))
        }
        Some(Value::String(_)) => Err(Error::bad_request(format!(
            "{key} must be at most {max} bytes of text without control characters"
        ))),
        Some(other) => Err(Error::bad_request(format!(
            "{key} must be a string, not {other}"
        ))),
    }
}

fn optional_bool(body: &Map<String, Value>, key: &str) -> Result<Option<bool>> {
    match body.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(other) => Err(Error::bad_request(format!(
            "{key} must be true or false, not {other}"
        ))),
    }
}

/// A non-empty list of strings. An empty list is refused: `packages: []` could mean "no
/// packages" as well as "no limit", and guessing wrong would widen the token.
fn optional_list(body: &Map<String, Value>, key: &str) -> Result<Option<Vec<String>>> {
    let items = match body.get(key) {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Array(items)) if !items.is_empty() => items,
        Some(Value::Array(_)) => {
            return Err(Error::bad_request(format!(
                "{key} is an empty list: name at least one, or leave it out"
            )))
        }
        Some(other) => {
            return Err(Error::bad_request(format!(
                "{key} must be a list of strings, not {other}"
            )))
        }
    };
    items
        .iter()
        .map(|item| {
            item.as_str().map(str::to_string).ok_or_else(|| {
                Error::bad_request(format!("{key} must be a list of strings, not {item}"))
            })
        })
        .collect::<Result<Vec<_>>>()
        .map(Some)
}

/// Creates a token for the caller, who proves it is them with their password. Runs the
/// password KDF: call it off the async threads.
pub fn create_token_for(
    store: &Store,
    writer: &Writer<'_>,
    request: &TokenRequest,
) -> Result<IssuedToken> {
    let identity = account_holder(writer)?;
    if !verify_password(&request.password, &identity.user.password_hash) {
        return Err(Error::unauthorized("incorrect password"));
    }
    issue_token(
        store,
        identity.user.id,
        &request.options,
        request.description.as_deref(),
        &request.limits,
    )
}

/// One page of a user's tokens and how many there are in all.
pub struct TokenPage {
    pub tokens: Vec<TokenRecord>,
    pub total: u64,
}

pub const MAX_PAGE_SIZE: u64 = 100;

/// The tokens of `user_id`, `per_page` (at most [`MAX_PAGE_SIZE`]) from `offset`.
pub fn list_tokens(store: &Store, user_id: i64, offset: u64, per_page: u64) -> Result<TokenPage> {
    let per_page = per_page.clamp(1, MAX_PAGE_SIZE);
    store.read(|db| {
        Ok(TokenPage {
            tokens: db.tokens_of_user(user_id, offset, per_page)?,
            total: db.count_tokens_of_user(user_id)?,
        })
    })
}

/// Revokes a token named by its key or by the secret itself (`npm token revoke` sends either).
/// Only its owner or an administrator may; anyone else is told that there is no such token,
/// so that keys cannot be probed.
pub fn revoke_token_by_key_or_secret(
    store: &Store,
    writer: &Writer<'_>,
    key_or_secret: &str,
) -> Result<()> {
    let identity = account_holder(writer)?;
    let user = &identity.user;
    let hash = hash_token(key_or_secret);
    store.write(|db| {
        let token = match db.token_by_key(key_or_secret)? {
            Some(token) => Some(token),
            None => db.token_by_hash(&hash)?.map(|(token, _)| token),
        };
        match token {
            Some(token) if token.user_id == user.id || user.is_admin => {
                db.delete_token(token.id)?;
                Ok(())
            }
            _ => Err(Error::not_found("no such token: see `npm token list`")),
        }
    })
}

/// When tokens were last used, kept in memory until the next [`TokenUsage::flush`].
#[derive(Default)]
pub struct TokenUsage {
    pending: Mutex<HashMap<i64, String>>,
}

impl TokenUsage {
    pub fn record(&self, token_id: i64) {
        if let Ok(mut pending) = self.pending.lock() {
            pending.insert(token_id, now_iso());
        }
    }

    /// Writes what was recorded since the last flush, in one transaction. On failure the
    /// times are kept for the next attempt.
    pub fn flush(&self, store: &Store) -> Result<usize> {
        let batch: Vec<(i64, String)> = match self.pending.lock() {
            Ok(mut pending) => pending.drain().collect(),
            Err(_) => return Err(Error::Storage("the token usage map was poisoned".into())),
        };
        if batch.is_empty() {
            return Ok(0);
        }
        match store.write(|db| db.touch_tokens(&batch)) {
            Ok(changed) => Ok(changed),
            Err(err) => {
                if let Ok(mut pending) = self.pending.lock() {
                    for (id, at) in batch {
                        // A newer use recorded meanwhile wins.
                        pending.entry(id).or_insert(at);
                    }
                }
                Err(err)
            }
        }
    }
}

fn generate_secret() -> String {
    let mut secret = String::with_capacity(4 + TOKEN_RANDOM_CHARS);
    secret.push_str("npm_");
    for _ in 0..TOKEN_RANDOM_CHARS {
        let index = rand::random_range(0..TOKEN_ALPHABET.len());
        secret.push(TOKEN_ALPHABET[index] as char);
    }
    secret
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_look_like_npm_tokens_and_differ() {
        let a = generate_secret();
        let b = generate_secret();
        assert!(a.starts_with("npm_") && a.len() == 40, "{a}");
        assert!(a[4..].chars().all(|c| c.is_ascii_alphanumeric()));
        assert_ne!(a, b);
        assert_eq!(hash_token(&a), hash_token(&a));
        assert_ne!(hash_token(&a), hash_token(&b));
    }

    fn request(body: Value) -> Result<TokenRequest> {
        parse_token_request(&body)
    }

    fn refusal(body: Value) -> String {
        request(body)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default()
    }

    #[test]
    fn npm_11_granular_requests_are_honoured() -> Result<()> {
        let r = request(serde_json::json!({
            "name": "ci", "password": "pw", "description": "for CI",
            "packages": ["foo", "@a/b"], "scopes": ["team", "@other"],
            "packages_and_scopes_permission": "read-only", "orgs_permission": "no-access",
            "expires": 30, "cidr_whitelist": ["10.0.0.0/8", "192.168.1.7"],
        }))?;
        assert_eq!(r.password, "pw");
        assert_eq!(r.options.name.as_deref(), Some("ci"));
        assert!(r.options.readonly);
        assert!(r.options.expires_at.is_some_and(|at| at > now_iso()));
        assert_eq!(r.options.cidr_whitelist, ["10.0.0.0/8", "192.168.1.7/32"]);
        assert_eq!(r.description.as_deref(), Some("for CI"));
        assert_eq!(r.limits.packages, Some(vec!["foo".into(), "@a/b".into()]));
        assert_eq!(r.limits.scopes, Some(vec!["@team".into(), "@other".into()]));
        assert_eq!(r.limits.orgs, None);
        let org = request(serde_json::json!({
            "password": "pw", "orgs": ["@acme"], "orgs_permission": "read-write",
            "packages_and_scopes_permission": "no-access",
        }))?;
        assert_eq!(org.limits.orgs, Some(vec!["acme".into()]));
        assert_eq!(org.limits.orgs_permission, OrgsPermission::ReadWrite);
        Ok(())
    }

    #[test]
    fn legacy_requests_are_honoured() -> Result<()> {
        let r = request(serde_json::json!({
            "password": "pw", "readonly": true, "cidr_whitelist": [],
        }))?;
        assert!(r.options.readonly);
        assert!(r.options.cidr_whitelist.is_empty());
        assert_eq!(r.limits, PackageLimits::default());
        let r = request(serde_json::json!({ "name": null, "password": "pw" }))?;
        assert!(!r.options.readonly && r.options.expires_at.is_none());
        Ok(())
    }

    #[test]
    fn what_cannot_be_honoured_is_refused() {
        for (body, words) in [
            (serde_json::json!({ "name": "x" }), "password"),
            (
                serde_json::json!({ "password": "pw", "bypass_2fa": true }),
                "two-factor",
            ),
            (
                serde_json::json!({ "password": "pw", "orgs": ["Not An Org"] }),
                "org name",
            ),
            (
                serde_json::json!({ "password": "pw", "orgs_permission": "read-write" }),
                "--orgs",
            ),
            (
                serde_json::json!({ "password": "pw", "orgs": ["acme"], "orgs_permission": "all" }),
                "orgs_permission",
            ),
            (
                serde_json::json!({ "password": "pw", "packages_and_scopes_permission": "no-access" }),
                "read-only or read-write",
            ),
            (
                serde_json::json!({ "password": "pw", "packages": [] }),
                "empty",
            ),
            (
                serde_json::json!({ "password": "pw", "packages": ["Bad Name"] }),
                "invalid package name",
            ),
            (
                serde_json::json!({ "password": "pw", "scopes": ["a/b"] }),
                "scope",
            ),
            (
                serde_json::json!({ "password": "pw", "packages_all": true, "packages": ["a"] }),
                "packages_all",
            ),
            (
                serde_json::json!({ "password": "pw", "expires": 0 }),
                "expires",
            ),
            (
                serde_json::json!({ "password": "pw", "expires": "30" }),
                "expires",
            ),
            (
                serde_json::json!({ "password": "pw", "cidr_whitelist": ["::1/128"] }),
                "IPv4",
            ),
            (
                serde_json::json!({ "password": "pw", "cidr_whitelist": ["10.0.0.0/40"] }),
                "IPv4",
            ),
            (
                serde_json::json!({ "password": "pw", "cidr_whitelist": "10.0.0.0/8" }),
                "list",
            ),
            (
                serde_json::json!({ "password": "pw", "mystery": 1 }),
                "mystery",
            ),
            (serde_json::json!(["password"]), "object"),
        ] {
            let err = refusal(body.clone());
            assert!(
                err.contains(words),
                "{body} → {err:?} should mention {words:?}"
            );
        }
    }

    #[test]
    fn package_limits_match_names_and_scopes() {
        let token = |packages: Option<&[&str]>, scopes: Option<&[&str]>| TokenRecord {
            orgs: None,
            orgs_permission: OrgsPermission::NoAccess,
            id: 1,
            key: String::new(),
            display: String::new(),
            user_id: 1,
            name: None,
            readonly: false,
            cidr_whitelist: Vec::new(),
            created_at: String::new(),
            expires_at: None,
            last_used_at: None,
            description: None,
            packages: packages.map(|p| p.iter().map(|s| s.to_string()).collect()),
            scopes: scopes.map(|p| p.iter().map(|s| s.to_string()).collect()),
        };
        let open = token(None, None);
        assert!(!open.is_package_limited() && open.may_reach_package("anything"));
        let limited = token(Some(&["foo"]), Some(&["@team"]));
        assert!(limited.may_reach_package("foo"));
        assert!(limited.may_reach_package("@team/bar"));
        assert!(!limited.may_reach_package("foobar"));
        assert!(!limited.may_reach_package("@teammate/bar"));
        assert!(!limited.may_reach_package("@other/foo"));
        let org = TokenRecord {
            orgs: Some(vec!["acme".into()]),
            orgs_permission: OrgsPermission::ReadOnly,
            ..token(None, None)
        };
        assert!(org.may_reach_package("@acme/app") && !org.may_reach_package("@other/app"));
        assert!(!org.may_reach_package("acme"));
        assert!(org.may_manage_org("acme", false) && !org.may_manage_org("acme", true));
        assert!(!org.may_manage_org("other", false));
        assert!(open.may_manage_org("anything", true));
    }
}
