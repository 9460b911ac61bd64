//! Hooks (cnpmcore's Hook Management API, npm's `npm hook`): a user asks to be told, at an
//! HTTP endpoint of theirs, about every change to a package, to every package of a scope, or
//! to every package a user maintains. Each change writes one outbox row per matching hook in
//! its own transaction ([`outbox`]); the [`dispatch`] task sends them, signed, off the request
//! path, and retries until they are accepted. [`guard`] keeps endpoints off internal networks.

pub mod dispatch;
pub mod guard;
pub mod outbox;

use serde_json::Value;

use crate::accounts::auth::Identity;
use crate::accounts::authz::Writer;
use crate::error::{Error, Result};
use crate::packages::names::PackageName;
use crate::registry::Registry;

/// The seed's limits on a hook's fields, in characters.
pub const MAX_NAME_CHARS: usize = 428;
pub const MAX_SECRET_CHARS: usize = 200;
/// Largest page of `GET /-/npm/v1/hooks` and of a hook's deliveries.
pub const MAX_PAGE: u64 = 100;

/// What a hook watches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HookType {
    /// One package, by name.
    Package,
    /// Every package of a scope (`@scope`).
    Scope,
    /// Every package a user maintains.
    Owner,
}

impl HookType {
    pub fn parse(text: &str) -> Option<HookType> {
        match text {
            "package" => Some(HookType::Package),
            "scope" => Some(HookType::Scope),
            "owner" => Some(HookType::Owner),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            HookType::Package => "package",
            HookType::Scope => "scope",
            HookType::Owner => "owner",
        }
    }
}

/// A hook as stored. The secret is never shown back to anyone.
#[derive(Debug, Clone)]
pub struct Hook {
    pub id: String,
    pub owner_id: i64,
    /// The owner's user name.
    pub owner: String,
    pub kind: HookType,
    /// A package name, `@scope`, or a user name, by `kind`.
    pub name: String,
    pub endpoint: String,
    pub secret: String,
    pub created_at: String,
    pub updated_at: String,
    /// Whether any delivery to it ever succeeded.
    pub delivered: bool,
    /// When the last successful delivery was.
    pub last_delivery: Option<String>,
    /// The status the endpoint answered last (none: never reached).
    pub last_response_code: Option<u16>,
}

pub struct NewHook<'a> {
    pub id: &'a str,
    pub owner_id: i64,
    pub kind: HookType,
    pub name: &'a str,
    pub endpoint: &'a str,
    pub secret: &'a str,
    pub now: &'a str,
}

/// One delivery as the deliveries API shows it.
#[derive(Debug, Clone)]
pub struct Delivery {
    /// The id sent in `x-registry-delivery` (the same at every attempt).
    pub id: String,
    pub event: String,
    pub package: String,
    /// `pending`, `delivered` or `failed` (given up).
    pub state: String,
    pub attempts: u64,
    pub response_code: Option<u16>,
    pub duration_ms: Option<u64>,
    pub error: Option<String>,
    pub created_at: String,
    pub last_attempt_at: Option<String>,
    /// When a pending delivery is tried next (unix ms).
    pub next_attempt_ms: i64,
}

impl Delivery {
    /// When a pending delivery is tried next; none once it is delivered or given up.
    pub fn next_attempt(&self) -> Option<String> {
        if self.state != "pending" {
            return None;
        }
        let nanos = i128::from(self.next_attempt_ms) * 1_000_000;
        time::OffsetDateTime::from_unix_timestamp_nanos(nanos)
            .ok()
            .map(crate::clock::iso)
    }
}

/// An event to write to the outbox: what its deliveries share.
pub struct NewEvent<'a> {
    pub event: &'a str,
    pub package: &'a str,
    /// The body sent, but for `hookOwner` ([`DueDelivery::body`] adds it).
    pub envelope: &'a str,
    pub now: &'a str,
    pub now_ms: i64,
    /// The versions still to be listed in the envelope's `payload.versions`.
    pub versions: Option<PendingVersions>,
}

/// The versions a payload lists, filled in by the dispatcher before it sends (off the request
/// path, and off the writer: on a read connection): those of the package up to the newest when
/// the event was written, but for those unpublished by then. Version rows are never deleted
/// and a version is unpublished once, so every attempt lists the same versions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PendingVersions {
    pub package_id: i64,
    /// The row id of the package's newest version when the event was written.
    pub through: i64,
}

/// A package's summary for a hook payload, as JSON text, with its version list still empty.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PayloadSummary {
    pub json: String,
    pub versions: PendingVersions,
}

/// A delivery leased to the dispatcher, with what it takes to send it.
#[derive(Debug, Clone)]
pub struct DueDelivery {
    pub row_id: i64,
    pub id: String,
    pub hook_id: String,
    pub event: String,
    /// The event's body without its `hookOwner`, shared by the event's deliveries.
    pub envelope: String,
    /// The hook owner's user name.
    pub owner: String,
    pub endpoint: String,
    pub secret: String,
    /// Attempts so far, this one included.
    pub attempts: u64,
    pub created_ms: i64,
    /// The versions still to be listed in the envelope's payload, as of the event's time.
    pub unlisted: Option<UnlistedVersions>,
}

/// A claimed event's payload versions, still to be listed (see [`PendingVersions`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnlistedVersions {
    pub event_id: i64,
    pub versions: PendingVersions,
    /// When the event was written: versions unpublished later are listed.
    pub as_of: String,
}

impl DueDelivery {
    /// The exact JSON sent and signed: the envelope addressed to the hook's owner. The same
    /// bytes on every attempt.
    pub fn body(&self) -> String {
        let owner = serde_json::json!({ "username": self.owner });
        match self.envelope.strip_prefix('{') {
            Some(rest) if rest.trim_start().starts_with('}') => {
                format!("{{\"hookOwner\":{owner}}}")
            }
            Some(rest) => format!("{{\"hookOwner\":{owner},{rest}"),
            // Not an object (no envelope of ours): sent as stored.
            None => self.envelope.clone(),
        }
    }
}

/// The fields of `POST /-/npm/v1/hooks/hook`, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HookInput {
    pub kind: HookType,
    /// Normalised: `@scope` for a scope, the bare user name for an owner (npm's `~user`
    /// accepted).
    pub name: String,
    pub endpoint: String,
    pub secret: String,
}

fn text_field<'a>(body: &'a Value, field: &str) -> Result<Option<&'a str>> {
    match body.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.as_str())),
        Some(_) => Err(Error::bad_request(format!("{field} must be a string"))),
    }
}

fn required<'a>(body: &'a Value, field: &str, example: &str) -> Result<&'a str> {
    text_field(body, field)?
        .ok_or_else(|| Error::bad_request(format!("{field} is required (for example {example})")))
}

fn check_secret(secret: &str) -> Result<()> {
    let chars = secret.chars().count();
    if chars == 0 || chars > MAX_SECRET_CHARS {
        return Err(Error::bad_request(format!(
            "secret must be 1 to {MAX_SECRET_CHARS} characters long"
        )));
    }
    Ok(())
}

impl HookInput {
    /// Reads and checks a create body; the endpoint's addresses are checked later
    /// ([`guard::check_endpoint`]), as that may take a DNS lookup.
    pub fn from_json(body: &Value) -> Result<HookInput> {
        if !body.is_object() {
            return Err(Error::bad_request("the hook must be a JSON object"));
        }
        let kind_text = required(body, "type", "\"package\", \"scope\" or \"owner\"")?;
        let kind = HookType::parse(kind_text).ok_or_else(|| {
            Error::bad_request(format!(
                "type must be \"package\", \"scope\" or \"owner\", not {kind_text:?}"
            ))
        })?;
        let raw_name = required(body, "name", "\"lodash\", \"@scope\" or \"~user\"")?;
        let chars = raw_name.chars().count();
        if chars == 0 || chars > MAX_NAME_CHARS {
            return Err(Error::bad_request(format!(
                "name must be 1 to {MAX_NAME_CHARS} characters long"
            )));
        }
        let name = normalise_name(kind, raw_name)?;
        let endpoint = required(body, "endpoint", "\"https://example.com/hook\"")?;
        guard::Endpoint::parse(endpoint)?;
        let secret = required(body, "secret", "a shared secret")?;
        check_secret(secret)?;
        Ok(HookInput {
            kind,
            name,
            endpoint: endpoint.to_string(),
            secret: secret.to_string(),
        })
    }
}

fn normalise_name(kind: HookType, raw: &str) -> Result<String> {
    match kind {
        HookType::Package => Ok(PackageName::parse(raw)?.as_str().to_string()),
        HookType::Scope => {
            let scope = raw.strip_prefix('@').unwrap_or(raw);
            // A scope is valid when a package in it could be.
            PackageName::parse(&format!("@{scope}/x"))
                .map_err(|_| Error::bad_request(format!("{raw:?} is not a scope (like @myorg)")))?;
            Ok(format!("@{scope}"))
        }
        HookType::Owner => {
            let user = raw.strip_prefix('~').unwrap_or(raw);
            if user.is_empty() {
                return Err(Error::bad_request(
                    "an owner hook names a user, like ~alice",
                ));
            }
            Ok(user.to_string())
        }
    }
}

fn new_id() -> String {
    hex::encode(rand::random::<[u8; 16]>())
}

/// A hook `identity` may see: its own, or any for an administrator. Anyone else's is a 404,
/// the answer for a hook that does not exist.
fn visible_hook(registry: &Registry, identity: &Identity, id: &str) -> Result<Hook> {
    registry
        .store
        .read(|db| db.hook(id))?
        .filter(|hook| hook.owner_id == identity.user.id || identity.user.is_admin)
        .ok_or_else(|| Error::not_found(format!("no hook {id:?}")))
}

/// Creates a hook owned by the writer, or (an administrator only, as the CLI's local mode
/// does) by the user named `owner`. A package hook takes a package the owner may read (else
/// 404, as for one that does not exist), an owner hook an existing user; at most
/// `hooks_per_user` hooks each. Blocking.
pub fn create(
    registry: &Registry,
    writer: &Writer<'_>,
    owner: Option<&str>,
    input: &HookInput,
) -> Result<Hook> {
    let caller = writer.identity();
    guard::check_endpoint(&input.endpoint, registry.config.hooks_allow_private)?;
    let id = new_id();
    let now = crate::clock::now_iso();
    let limit = registry.config.hooks_per_user;
    registry.store.write(|db| {
        let owner_identity = match owner {
            Some(name) if name != caller.user.name => {
                if !caller.user.is_admin {
                    return Err(Error::forbidden(
                        "only an administrator may create a hook for another user",
                    ));
                }
                let user = db
                    .user_by_name(name)?
                    .ok_or_else(|| Error::not_found(format!("no user named {name:?}")))?;
                Identity { user, token: None }
            }
            _ => caller.clone(),
        };
        match input.kind {
            HookType::Package => {
                let package = db
                    .package_by_name(&input.name)?
                    .ok_or_else(|| crate::access::hidden(&input.name))?;
                crate::access::require_read(
                    db,
                    Some(&owner_identity),
                    package.id,
                    &package.name,
                    package.restricted,
                )?;
            }
            HookType::Owner => {
                if db.user_by_name(&input.name)?.is_none() {
                    return Err(Error::not_found(format!("no user named {:?}", input.name)));
                }
            }
            HookType::Scope => {}
        }
        if db.count_hooks_of(owner_identity.user.id)? >= limit {
            return Err(Error::bad_request(format!(
                "{} already has {limit} hooks, the most a user may have (hooks_per_user): \
                 remove one first",
                owner_identity.user.name
            )));
        }
        db.insert_hook(&NewHook {
            id: &id,
            owner_id: owner_identity.user.id,
            kind: input.kind,
            name: &input.name,
            endpoint: &input.endpoint,
            secret: &input.secret,
            now: &now,
        })?;
        db.hook(&id)?
            .ok_or_else(|| Error::Storage(format!("hook {id} vanished")))
    })
}

/// `PUT /-/npm/v1/hooks/hook/:id {endpoint, secret?}`: a new endpoint (checked as at
/// creation) and optionally a new secret. Blocking.
pub fn update(registry: &Registry, writer: &Writer<'_>, id: &str, body: &Value) -> Result<Hook> {
    let hook = visible_hook(registry, writer.identity(), id)?;
    if !body.is_object() {
        return Err(Error::bad_request("the update must be a JSON object"));
    }
    let endpoint = required(body, "endpoint", "\"https://example.com/hook\"")?;
    guard::check_endpoint(endpoint, registry.config.hooks_allow_private)?;
    let secret = match text_field(body, "secret")? {
        Some(secret) => {
            check_secret(secret)?;
            secret
        }
        None => hook.secret.as_str(),
    };
    let now = crate::clock::now_iso();
    registry.store.write(|db| {
        db.update_hook(&hook.id, endpoint, secret, &now)?;
        db.hook(&hook.id)?
            .ok_or_else(|| Error::not_found(format!("no hook {id:?}")))
    })
}

/// Deletes a hook and its undelivered events; answers the hook and when it was deleted.
/// Blocking.
pub fn delete(registry: &Registry, writer: &Writer<'_>, id: &str) -> Result<(Hook, String)> {
    let hook = visible_hook(registry, writer.identity(), id)?;
    let now = crate::clock::now_iso();
    registry.store.write(|db| db.delete_hook(&hook.id))?;
    Ok((hook, now))
}

/// One hook of the caller's (any, for an administrator). Blocking.
pub fn get(registry: &Registry, identity: &Identity, id: &str) -> Result<Hook> {
    visible_hook(registry, identity, id)
}

/// A page of the caller's hooks (everyone's, for an administrator), of one target name if
/// `name` is given, and their total. Blocking.
pub fn list(
    registry: &Registry,
    identity: &Identity,
    name: Option<&str>,
    limit: u64,
    offset: u64,
) -> Result<(Vec<Hook>, u64)> {
    let owner = (!identity.user.is_admin).then_some(identity.user.id);
    let name = name.map(|n| n.strip_prefix('~').unwrap_or(n));
    registry
        .store
        .read(|db| db.list_hooks(owner, name, limit.clamp(1, MAX_PAGE), offset))
}

/// A hook's most recent deliveries, newest first. Blocking.
pub fn deliveries(
    registry: &Registry,
    identity: &Identity,
    id: &str,
    limit: u64,
) -> Result<Vec<Delivery>> {
    let hook = visible_hook(registry, identity, id)?;
    // Events not yet fanned out (a running dispatcher does it within a second, but the CLI
    // may have written them with no daemon running) are listed as the deliveries they make.
    if registry.store.read(|db| db.hook_events_waiting())? {
        registry.store.write(|db| db.fan_out_hook_events())?;
    }
    registry
        .store
        .read(|db| db.hook_deliveries(&hook.id, limit.clamp(1, MAX_PAGE)))
}

/// Queues a signed `ping` to the hook (`registry hook test`); answers the delivery id.
/// Blocking.
pub fn ping(registry: &Registry, writer: &Writer<'_>, id: &str) -> Result<String> {
    let hook = visible_hook(registry, writer.identity(), id)?;
    registry.store.write(|db| outbox::enqueue_ping(db, &hook))
}

/// Reads `limit` and `offset` query values: absent is the default, garbage is a 400.
pub fn page_of(
    limit: Option<&str>,
    offset: Option<&str>,
    default_limit: u64,
) -> Result<(u64, u64)> {
    let number = |value: Option<&str>, field: &str, default: u64| match value {
        None | Some("") => Ok(default),
        Some(text) => text.parse::<u64>().map_err(|_| {
            Error::bad_request(format!("{field} must be a whole number, not {text:?}"))
        }),
    };
    let limit = number(limit, "limit", default_limit)?;
    if limit == 0 || limit > MAX_PAGE {
        return Err(Error::bad_request(format!(
            "limit must be between 1 and {MAX_PAGE}"
        )));
    }
    Ok((limit, number(offset, "offset", 0)?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn hook_input_is_read_and_normalised() -> Result<()> {
        let body = json!({"type": "owner", "name": "~alice", "endpoint": "https://e.example/h",
                          "secret": "s"});
        let input = HookInput::from_json(&body)?;
        assert_eq!(input.kind, HookType::Owner);
        assert_eq!(input.name, "alice");
        let scope = HookInput::from_json(&json!({"type": "scope", "name": "myorg",
            "endpoint": "http://e.example/", "secret": "s"}))?;
        assert_eq!(scope.name, "@myorg");
        let package = HookInput::from_json(&json!({"type": "package", "name": "@a/b",
            "endpoint": "http://e.example/", "secret": "s"}))?;
        assert_eq!(package.name, "@a/b");
        Ok(())
    }

    #[test]
    fn bad_hook_input_is_refused_with_a_reason() {
        let ok = json!({"type": "package", "name": "a", "endpoint": "https://e.example/",
                        "secret": "s"});
        let with = |key: &str, value: Value| {
            let mut body = ok.clone();
            body[key] = value;
            body
        };
        for (body, reason) in [
            (json!([]), "JSON object"),
            (with("type", json!("user")), "type must be"),
            (with("type", Value::Null), "type is required"),
            (with("name", json!("")), "name must be 1 to 428"),
            (
                with("name", json!("x".repeat(429))),
                "name must be 1 to 428",
            ),
            (with("name", json!("Not A Name")), ""),
            (with("endpoint", json!("ftp://e.example/")), "http or https"),
            (with("endpoint", json!(5)), "endpoint must be a string"),
            (with("secret", json!("")), "secret must be 1 to 200"),
            (
                with("secret", json!("s".repeat(201))),
                "secret must be 1 to 200",
            ),
        ] {
            match HookInput::from_json(&body) {
                Err(Error::BadRequest(text)) => assert!(text.contains(reason), "{text}"),
                other => panic!("{body} should be a 400, got {other:?}"),
            }
        }
    }

    #[test]
    fn pages_are_bounded() {
        assert_eq!(page_of(None, None, 100).ok(), Some((100, 0)));
        assert_eq!(page_of(Some("5"), Some("10"), 100).ok(), Some((5, 10)));
        assert!(page_of(Some("0"), None, 100).is_err());
        assert!(page_of(Some("101"), None, 100).is_err());
        assert!(page_of(Some("x"), None, 100).is_err());
        assert!(page_of(None, Some("-1"), 100).is_err());
    }

    #[test]
    fn a_delivery_is_its_envelope_addressed_to_the_hook_owner() {
        let due = |envelope: &str| DueDelivery {
            row_id: 1,
            id: "d".into(),
            hook_id: "h".into(),
            event: "ping".into(),
            envelope: envelope.into(),
            owner: "al\"ice".into(),
            endpoint: "http://e.example/".into(),
            secret: "s".into(),
            attempts: 1,
            created_ms: 0,
            unlisted: None,
        };
        let parsed = |body: String| serde_json::from_str::<Value>(&body).ok();
        let owner = json!({"username": "al\"ice"});
        assert_eq!(
            parsed(due(r#"{"event":"ping","n":1}"#).body()),
            Some(json!({"event": "ping", "n": 1, "hookOwner": owner}))
        );
        assert_eq!(parsed(due("{ }").body()), Some(json!({"hookOwner": owner})));
        assert_eq!(due("[1]").body(), "[1]");
        let delivery = due(r#"{"a":1}"#);
        assert_eq!(
            delivery.body(),
            delivery.body(),
            "the same bytes on every attempt"
        );
    }
}
