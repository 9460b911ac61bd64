//! The remote mode: a running registry over its HTTP API (the same endpoints npm uses, plus
//! the administrator's `/-/package/:pkg/blocks`). The token comes from `--token`,
//! `REGISTRY_TOKEN`, or what npm saved in `~/.npmrc` for that URL.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::Context;
use registry_core::Error;
use reqwest::blocking::{Client, RequestBuilder, Response};
use reqwest::Method;
use serde_json::{json, Value};

use registry_core::packages::names::PackageName;

use super::{
    Access, Backend, BlockInfo, DayCount, DeliveryInfo, DownloadsReport, HookInfo, HookRequest,
    MembershipInfo, NewTokenInfo, OrgInfo, OrgRole, PackageCount, PackageOwner, PackageRow,
    SyncRequest, SyncStatus, TeamInfo, TeamName, TeamPermission, TokenInfo, TokenRequest,
    TopReport, UserInfo, VersionCount,
};

/// A registry answered 501: it does not have the route (older versions of ours answered
/// that where they now answer a 4xx). The core has no such error: nothing of ours answers 501.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct NotSupported(pub String);

pub struct Remote {
    base: String,
    token: Option<String>,
    client: Client,
}

impl Remote {
    pub fn connect(url: &str, token: Option<&str>) -> anyhow::Result<Remote> {
        let base = url.trim_end_matches('/').to_string();
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            return Err(crate::exit::UsageError(format!(
                "--registry {url:?} must be an http:// or https:// URL"
            ))
            .into());
        }
        let token = token
            .map(str::to_string)
            .filter(|t| !t.is_empty())
            .or_else(|| npmrc_token(&base));
        // The core's reqwest has no TLS provider of its own: without this, building the
        // client panics.
        registry_core::upstream::client::install_tls_provider();
        let client = Client::builder()
            .timeout(Duration::from_secs(60))
            .user_agent(concat!("registry-cli/", env!("CARGO_PKG_VERSION")))
            .build()
            .context("cannot build the HTTP client")?;
        Ok(Remote {
            base,
            token,
            client,
        })
    }

    fn request(&self, method: Method, path: &str) -> RequestBuilder {
        let request = self.client.request(method, format!("{}{path}", self.base));
        match &self.token {
            Some(token) => request.bearer_auth(token),
            None => request,
        }
    }

    fn send(&self, request: RequestBuilder) -> anyhow::Result<Response> {
        let response = request
            .send()
            .with_context(|| format!("cannot reach the registry at {}", self.base))?;
        if response.status().is_success() {
            return Ok(response);
        }
        let status = response.status().as_u16();
        let body: Value = response.json().unwrap_or(Value::Null);
        let message = body
            .get("error")
            .or_else(|| body.get("reason"))
            .and_then(Value::as_str)
            .map(str::to_string)
            .unwrap_or_else(|| format!("the registry answered HTTP {status}"));
        Err(match status {
            400 => Error::BadRequest(message),
            401 => Error::Unauthorized(format!(
                "{message} (pass --token, set REGISTRY_TOKEN, or `npm login --registry {}`)",
                self.base
            )),
            403 => Error::Forbidden(message),
            404 => Error::NotFound(message),
            409 => Error::Conflict(message),
            451 => Error::UnavailableForLegalReasons(message),
            501 => return Err(NotSupported(message).into()),
            _ => Error::Storage(format!("HTTP {status}: {message}")),
        }
        .into())
    }

    fn json(&self, request: RequestBuilder) -> anyhow::Result<Value> {
        let response = self.send(request)?;
        response
            .json()
            .with_context(|| format!("the registry at {} answered something not JSON", self.base))
    }

    fn whoami(&self) -> anyhow::Result<String> {
        let body = self.json(self.request(Method::GET, "/-/whoami"))?;
        body.get("username")
            .and_then(Value::as_str)
            .map(str::to_string)
            .ok_or_else(|| anyhow::anyhow!("the registry did not say who the token belongs to"))
    }
}

/// A refusal for lack of rights (401/403), after which a non-admin fallback is tried.
fn is_denied(err: &anyhow::Error) -> bool {
    matches!(
        err.downcast_ref::<Error>(),
        Some(Error::Forbidden(_) | Error::Unauthorized(_))
    )
}

/// `@scope/name` → `@scope%2fname` (the form npm sends in paths).
fn package_path(name: &str) -> anyhow::Result<String> {
    let parsed = registry_core::packages::names::PackageName::parse(name)?;
    Ok(parsed.as_str().replace('/', "%2f"))
}

fn segment(text: &str) -> String {
    let mut out = String::new();
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~@".contains(&byte) {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// The `_authToken` npm saved in `~/.npmrc` for `base` (`//host:port/path/:_authToken=…`).
fn npmrc_token(base: &str) -> Option<String> {
    let home = std::env::var_os("HOME")?;
    let text = std::fs::read_to_string(std::path::Path::new(&home).join(".npmrc")).ok()?;
    token_in_npmrc(&text, base)
}

fn token_in_npmrc(text: &str, base: &str) -> Option<String> {
    let without_scheme = base
        .strip_prefix("https:")
        .or_else(|| base.strip_prefix("http:"))?;
    let wanted = format!("{}/:_authToken", without_scheme.trim_end_matches('/'));
    text.lines().find_map(|line| {
        let (key, value) = line.split_once('=')?;
        (key.trim() == wanted).then(|| value.trim().trim_matches('"').to_string())
    })
}

/// `/-/team/:org/:team`, as npm builds it.
fn team_path(team: &TeamName) -> String {
    format!("/-/team/{}/{}", segment(&team.org), segment(&team.team))
}

/// A user as npm's org and team commands send it: without a leading `@`.
fn bare_user(user: &str) -> &str {
    user.strip_prefix('@').unwrap_or(user)
}

/// npm's access listings, `{"name": "read"|"write"}`, as permissions.
fn permission_map(body: Value) -> anyhow::Result<BTreeMap<String, TeamPermission>> {
    let map: BTreeMap<String, String> =
        serde_json::from_value(body).context("an unexpected access listing")?;
    map.into_iter()
        .map(|(name, wire)| {
            let permission = match wire.as_str() {
                "read" => TeamPermission::ReadOnly,
                "write" => TeamPermission::ReadWrite,
                other => anyhow::bail!("the registry answered an unknown permission {other:?}"),
            };
            Ok((name, permission))
        })
        .collect()
}

fn text(value: &Value, key: &str) -> Option<String> {
    value.get(key).and_then(Value::as_str).map(str::to_string)
}

impl Backend for Remote {
    fn user_add(
        &self,
        name: &str,
        email: &str,
        password: &str,
        admin: bool,
    ) -> anyhow::Result<UserInfo> {
        if email.is_empty() {
            return Err(crate::exit::UsageError(
                "creating a user on a remote registry needs --email".into(),
            )
            .into());
        }
        // npm's account creation (an administrator may create accounts while registration is
        // closed), then the admin flag through the admin API.
        let path = format!("/-/user/org.couchdb.user:{}", segment(name));
        let body = json!({
            "_id": format!("org.couchdb.user:{name}"), "name": name, "password": password,
            "email": email, "type": "user", "roles": [],
        });
        self.send(self.request(Method::PUT, &path).json(&body))?;
        if admin {
            return self.user_admin(name, true);
        }
        self.user_show(name)
    }

    fn user_list(&self) -> anyhow::Result<Vec<UserInfo>> {
        let body = self.json(self.request(Method::GET, "/-/registry/admin/users"))?;
        serde_json::from_value(body).context("an unexpected user list")
    }

    fn user_show(&self, name: &str) -> anyhow::Result<UserInfo> {
        // An administrator's token sees the admin flag; anyone else the public document.
        match self.user_list() {
            Ok(users) => {
                return users
                    .into_iter()
                    .find(|u| u.name == name)
                    .ok_or_else(|| Error::not_found(format!("no user named {name:?}")).into())
            }
            Err(e) if !is_denied(&e) => return Err(e),
            Err(_) => {}
        }
        let path = format!("/-/user/org.couchdb.user:{}", segment(name));
        let doc = self.json(self.request(Method::GET, &path))?;
        Ok(UserInfo {
            name: text(&doc, "name").unwrap_or_else(|| name.to_string()),
            email: text(&doc, "email").unwrap_or_default(),
            admin: None,
            created: text(&doc, "date"),
        })
    }

    fn user_passwd(&self, name: &str, password: &str) -> anyhow::Result<()> {
        let path = format!("/-/registry/admin/users/{}/password", segment(name));
        self.send(
            self.request(Method::PUT, &path)
                .json(&json!({ "password": password })),
        )?;
        Ok(())
    }

    fn user_rm(&self, name: &str) -> anyhow::Result<()> {
        let path = format!("/-/registry/admin/users/{}", segment(name));
        self.send(self.request(Method::DELETE, &path))?;
        Ok(())
    }

    fn user_admin(&self, name: &str, admin: bool) -> anyhow::Result<UserInfo> {
        let path = format!("/-/registry/admin/users/{}/admin", segment(name));
        let body = self.json(
            self.request(Method::PUT, &path)
                .json(&json!({ "admin": admin })),
        )?;
        serde_json::from_value(body).context("an unexpected user document")
    }

    fn token_create(&self, request: &TokenRequest) -> anyhow::Result<NewTokenInfo> {
        let path = format!("/-/registry/admin/users/{}/tokens", segment(&request.user));
        let body = json!({
            "readonly": request.readonly, "cidr_whitelist": request.cidr,
            "expires": request.expires_at, "name": request.name,
        });
        let issued = self.json(self.request(Method::POST, &path).json(&body))?;
        serde_json::from_value(issued).context("an unexpected token")
    }

    fn token_list(&self, user: Option<&str>) -> anyhow::Result<Vec<TokenInfo>> {
        let path = match user {
            Some(user) => format!("/-/registry/admin/tokens?user={}", segment(user)),
            None => "/-/registry/admin/tokens".to_string(),
        };
        match self.json(self.request(Method::GET, &path)) {
            Ok(body) => return serde_json::from_value(body).context("an unexpected token list"),
            Err(e) if !is_denied(&e) => return Err(e),
            Err(_) => {}
        }
        // Not an administrator: npm's endpoint lists the caller's own tokens.
        let me = self.whoami()?;
        if let Some(user) = user.filter(|u| *u != me) {
            return Err(Error::forbidden(format!(
                "only an administrator may list the tokens of {user} (this token belongs to {me})"
            ))
            .into());
        }
        let mut out = Vec::new();
        let mut page = 0;
        loop {
            let path = format!("/-/npm/v1/tokens?page={page}&perPage=100");
            let body = self.json(self.request(Method::GET, &path))?;
            let objects = body
                .get("objects")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            for t in &objects {
                let readonly = t.get("readonly").and_then(Value::as_bool).unwrap_or(false);
                out.push(TokenInfo {
                    key: text(t, "key").unwrap_or_default(),
                    user: me.clone(),
                    name: text(t, "name"),
                    kind: if readonly { "readonly" } else { "publish" }.to_string(),
                    cidr_whitelist: t
                        .get("cidr_whitelist")
                        .and_then(Value::as_array)
                        .map(|l| {
                            l.iter()
                                .filter_map(Value::as_str)
                                .map(str::to_string)
                                .collect()
                        })
                        .unwrap_or_default(),
                    created: text(t, "created").unwrap_or_default(),
                    last_used: text(t, "lastUsedAt"),
                    expires: text(t, "expires"),
                });
            }
            if body.pointer("/urls/next").is_none() || objects.is_empty() {
                break;
            }
            page += 1;
        }
        Ok(out)
    }

    fn token_revoke(&self, key: &str) -> anyhow::Result<()> {
        let path = format!("/-/npm/v1/tokens/token/{}", segment(key));
        self.send(self.request(Method::DELETE, &path))?;
        Ok(())
    }

    fn package_list(&self) -> anyhow::Result<Vec<PackageRow>> {
        match self.json(self.request(Method::GET, "/-/registry/admin/packages")) {
            Ok(body) => return serde_json::from_value(body).context("an unexpected package list"),
            Err(e) if !is_denied(&e) => return Err(e),
            Err(_) => {}
        }
        // Not an administrator: `/-/all/since?startkey=0` has every live, unblocked package.
        let body =
            self.json(self.request(Method::GET, "/-/all/since?stale=update_after&startkey=0"))?;
        let mut rows = Vec::new();
        if let Some(map) = body.as_object() {
            for (name, summary) in map {
                if name.starts_with('_') {
                    continue;
                }
                rows.push(PackageRow {
                    name: name.clone(),
                    latest: summary
                        .pointer("/dist-tags/latest")
                        .and_then(Value::as_str)
                        .map(str::to_string),
                    versions: None,
                    size: None,
                    modified: summary
                        .pointer("/time/modified")
                        .and_then(Value::as_str)
                        .map(str::to_string),
                    state: "live".into(),
                });
            }
        }
        rows.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(rows)
    }

    fn packument(&self, name: &str) -> anyhow::Result<Value> {
        let path = format!("/{}?write=true", package_path(name)?);
        self.json(self.request(Method::GET, &path))
    }

    /// `HEAD` of each tarball: its Content-Length (a HEAD is not counted as a download).
    fn tarball_sizes(&self, _name: &str, doc: &Value) -> anyhow::Result<BTreeMap<String, u64>> {
        let mut sizes = BTreeMap::new();
        let Some(versions) = doc.get("versions").and_then(Value::as_object) else {
            return Ok(sizes);
        };
        for (version, manifest) in versions {
            let Some(url) = manifest.pointer("/dist/tarball").and_then(Value::as_str) else {
                continue;
            };
            let mut request = self.client.head(url);
            if let Some(token) = &self.token {
                request = request.bearer_auth(token);
            }
            let response = self.send(request)?;
            let length = response
                .headers()
                .get(reqwest::header::CONTENT_LENGTH)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse().ok());
            if let Some(length) = length {
                sizes.insert(version.clone(), length);
            }
        }
        Ok(sizes)
    }

    fn update_document(&self, name: &str, body: &Value) -> anyhow::Result<()> {
        let rev = body.get("_rev").and_then(Value::as_str).unwrap_or_default();
        let path = format!("/{}/-rev/{}", package_path(name)?, segment(rev));
        self.send(self.request(Method::PUT, &path).json(body))?;
        Ok(())
    }

    fn unpublish_package(&self, name: &str, rev: &str) -> anyhow::Result<()> {
        let path = format!("/{}/-rev/{}", package_path(name)?, segment(rev));
        self.send(self.request(Method::DELETE, &path))?;
        Ok(())
    }

    fn unpublish_version(&self, name: &str, version: &str) -> anyhow::Result<()> {
        let parsed = registry_core::packages::names::PackageName::parse(name)?;
        let doc = self.packument(name)?;
        let rev = text(&doc, "_rev").unwrap_or_default();
        let path = format!(
            "/{}/-/{}/-rev/{}",
            package_path(name)?,
            segment(&parsed.tarball_file(version)),
            segment(&rev)
        );
        self.send(self.request(Method::DELETE, &path))?;
        Ok(())
    }

    fn dist_tags(&self, name: &str) -> anyhow::Result<BTreeMap<String, String>> {
        let path = format!("/-/package/{}/dist-tags", package_path(name)?);
        Ok(serde_json::from_value(
            self.json(self.request(Method::GET, &path))?,
        )?)
    }

    fn dist_tag_add(&self, name: &str, tag: &str, version: &str) -> anyhow::Result<()> {
        let path = format!(
            "/-/package/{}/dist-tags/{}",
            package_path(name)?,
            segment(tag)
        );
        self.send(self.request(Method::PUT, &path).json(&json!(version)))?;
        Ok(())
    }

    fn dist_tag_rm(&self, name: &str, tag: &str) -> anyhow::Result<()> {
        let path = format!(
            "/-/package/{}/dist-tags/{}",
            package_path(name)?,
            segment(tag)
        );
        self.send(self.request(Method::DELETE, &path))?;
        Ok(())
    }

    fn block(&self, name: &str, reason: &str) -> anyhow::Result<()> {
        let path = format!("/-/package/{}/blocks", package_path(name)?);
        self.send(
            self.request(Method::PUT, &path)
                .json(&json!({ "reason": reason })),
        )?;
        Ok(())
    }

    fn unblock(&self, name: &str) -> anyhow::Result<()> {
        let path = format!("/-/package/{}/blocks", package_path(name)?);
        self.send(self.request(Method::DELETE, &path))?;
        Ok(())
    }

    fn block_status(&self, name: &str) -> anyhow::Result<BlockInfo> {
        let path = format!("/-/package/{}/blocks", package_path(name)?);
        let body = self.json(self.request(Method::GET, &path))?;
        Ok(BlockInfo {
            name: name.to_string(),
            blocked: body
                .get("blocked")
                .and_then(Value::as_bool)
                .unwrap_or(false),
            reason: text(&body, "reason"),
        })
    }

    fn upstreams(&self) -> anyhow::Result<Vec<super::UpstreamReport>> {
        let body = self.json(self.request(Method::GET, "/-/registry/admin/upstreams"))?;
        serde_json::from_value(body).context("the registry's upstream list is not as expected")
    }

    fn cache_forget(&self, name: &str) -> anyhow::Result<()> {
        let path = format!("/-/registry/admin/cache/{}", package_path(name)?);
        self.send(self.request(Method::DELETE, &path))?;
        Ok(())
    }

    fn top_downloads(&self, period: &str, limit: usize) -> anyhow::Result<TopReport> {
        let path = format!("/-/downloads/top/{}?limit={limit}", segment(period));
        let body = self.json(self.request(Method::GET, &path))?;
        let packages = body
            .get("packages")
            .and_then(Value::as_array)
            .map(|list| {
                list.iter()
                    .map(|p| PackageCount {
                        package: text(p, "package").unwrap_or_default(),
                        downloads: p.get("downloads").and_then(Value::as_u64).unwrap_or(0),
                    })
                    .collect()
            })
            .unwrap_or_default();
        Ok(TopReport {
            start: text(&body, "start").unwrap_or_default(),
            end: text(&body, "end").unwrap_or_default(),
            packages,
        })
    }

    fn downloads(&self, name: &str, period: &str) -> anyhow::Result<DownloadsReport> {
        let path = format!(
            "/downloads/range/{}/{}",
            segment(period),
            package_path(name)?.replace("%2f", "/")
        );
        let body = self.json(self.request(Method::GET, &path))?;
        let series = |value: Option<&Value>| -> Vec<DayCount> {
            value
                .and_then(Value::as_array)
                .map(|days| {
                    days.iter()
                        .map(|d| DayCount {
                            day: text(d, "day").unwrap_or_default(),
                            downloads: d.get("downloads").and_then(Value::as_u64).unwrap_or(0),
                        })
                        .collect()
                })
                .unwrap_or_default()
        };
        let versions = body
            .get("versions")
            .and_then(Value::as_object)
            .map(|map| {
                map.iter()
                    .map(|(version, days)| VersionCount {
                        version: version.clone(),
                        downloads: series(Some(days)).iter().map(|d| d.downloads).sum(),
                    })
                    .collect()
            })
            .unwrap_or_default();
        Ok(DownloadsReport::new(
            text(&body, "package").unwrap_or_else(|| name.to_string()),
            text(&body, "start").unwrap_or_default(),
            text(&body, "end").unwrap_or_default(),
            series(body.get("downloads")),
            versions,
        ))
    }

    fn local(&self, what: &str) -> anyhow::Result<&super::local::Local> {
        Err(super::only_local(what))
    }

    fn sync_start(&self, name: &str, request: &SyncRequest) -> anyhow::Result<SyncStatus> {
        let path = format!("/-/package/{}/syncs", package_path(name)?);
        let mut body = json!({ "skipDependencies": request.skip_dependencies });
        if !request.versions.is_empty() {
            body["specificVersions"] = json!(request.versions);
        }
        let created = self.json(self.request(Method::PUT, &path).json(&body))?;
        let id = text(&created, "id")
            .ok_or_else(|| anyhow::anyhow!("the registry did not say which task it queued"))?;
        self.sync_status(name, &id)
    }

    fn sync_status(&self, name: &str, id: &str) -> anyhow::Result<SyncStatus> {
        let path = format!("/-/package/{}/syncs/{}", package_path(name)?, segment(id));
        let task = self.json(self.request(Method::GET, &path))?;
        let count = |key: &str| task["tree"].get(key).and_then(Value::as_u64).unwrap_or(0);
        Ok(SyncStatus {
            id: text(&task, "id").unwrap_or_else(|| id.to_string()),
            package: text(&task, "package").unwrap_or_else(|| name.to_string()),
            state: text(&task, "state").unwrap_or_default(),
            error: text(&task, "error"),
            total: count("total").max(1),
            finished: count("finished"),
            errors: count("errors"),
        })
    }

    fn hook_list(&self, name: Option<&str>) -> anyhow::Result<Vec<HookInfo>> {
        let mut hooks: Vec<HookInfo> = Vec::new();
        loop {
            let mut path = format!(
                "/-/npm/v1/hooks?limit={}&offset={}",
                registry_core::hooks::MAX_PAGE,
                hooks.len()
            );
            if let Some(name) = name {
                path.push_str(&format!("&package={}", segment(name)));
            }
            let body = self.json(self.request(Method::GET, &path))?;
            let page: Vec<HookInfo> = serde_json::from_value(body["objects"].clone())
                .context("the registry's hook list is not what it should be")?;
            let total = body["total"].as_u64().unwrap_or(0);
            let done = page.is_empty();
            hooks.extend(page);
            if done || hooks.len() as u64 >= total {
                return Ok(hooks);
            }
        }
    }

    fn hook_add(&self, request: &HookRequest) -> anyhow::Result<HookInfo> {
        if request.owner.is_some() {
            return Err(crate::exit::UsageError(
                "--user is for local mode: remotely a hook belongs to the token's user".to_string(),
            )
            .into());
        }
        let body = json!({
            "type": request.kind,
            "name": request.name,
            "endpoint": request.endpoint,
            "secret": request.secret,
        });
        let created = self.json(
            self.request(Method::POST, "/-/npm/v1/hooks/hook")
                .json(&body),
        )?;
        serde_json::from_value(created).context("the registry's new hook is not what it should be")
    }

    fn hook_rm(&self, id: &str) -> anyhow::Result<HookInfo> {
        let path = format!("/-/npm/v1/hooks/hook/{}", segment(id));
        let deleted = self.json(self.request(Method::DELETE, &path))?;
        serde_json::from_value(deleted).context("the registry's answer is not a hook")
    }

    fn hook_test(&self, id: &str) -> anyhow::Result<String> {
        let path = format!("/-/npm/v1/hooks/hook/{}/ping", segment(id));
        let queued = self.json(self.request(Method::POST, &path))?;
        text(&queued, "delivery")
            .ok_or_else(|| anyhow::anyhow!("the registry did not say which delivery it queued"))
    }

    fn hook_deliveries(&self, id: &str, limit: u64) -> anyhow::Result<Vec<DeliveryInfo>> {
        let path = format!(
            "/-/npm/v1/hooks/hook/{}/deliveries?limit={limit}",
            segment(id)
        );
        let body = self.json(self.request(Method::GET, &path))?;
        serde_json::from_value(body["objects"].clone())
            .context("the registry's delivery list is not what it should be")
    }

    fn org_create(&self, org: &str, owner: &str) -> anyhow::Result<OrgInfo> {
        let body = json!({ "name": org, "owner": bare_user(owner) });
        let created = self.json(
            self.request(Method::POST, "/-/registry/admin/orgs")
                .json(&body),
        )?;
        serde_json::from_value(created).context("an unexpected org")
    }

    fn org_list(&self) -> anyhow::Result<Vec<OrgInfo>> {
        let body = self.json(self.request(Method::GET, "/-/registry/admin/orgs"))?;
        serde_json::from_value(body).context("an unexpected org list")
    }

    fn org_members(&self, org: &str) -> anyhow::Result<BTreeMap<String, OrgRole>> {
        let path = format!("/-/org/{}/user", segment(org));
        let body = self.json(self.request(Method::GET, &path))?;
        let roles: BTreeMap<String, String> =
            serde_json::from_value(body).context("an unexpected member list")?;
        roles
            .into_iter()
            .map(|(user, role)| match OrgRole::parse(&role) {
                Some(role) => Ok((user, role)),
                None => Err(anyhow::anyhow!(
                    "the registry answered an unknown role {role:?} for {user}"
                )),
            })
            .collect()
    }

    fn org_set(&self, org: &str, user: &str, role: OrgRole) -> anyhow::Result<MembershipInfo> {
        let path = format!("/-/org/{}/user", segment(org));
        let body = json!({ "user": bare_user(user), "role": role.as_str() });
        let done = self.json(self.request(Method::PUT, &path).json(&body))?;
        serde_json::from_value(done).context("an unexpected membership")
    }

    fn org_rm(&self, org: &str, user: &str) -> anyhow::Result<()> {
        let path = format!("/-/org/{}/user", segment(org));
        let body = json!({ "user": bare_user(user) });
        self.send(self.request(Method::DELETE, &path).json(&body))?;
        Ok(())
    }

    fn team_create(&self, team: &TeamName, description: Option<&str>) -> anyhow::Result<TeamInfo> {
        let path = format!("/-/org/{}/team", segment(&team.org));
        let mut body = json!({ "name": team.team });
        if let Some(description) = description {
            body["description"] = json!(description);
        }
        let created = self.json(self.request(Method::PUT, &path).json(&body))?;
        serde_json::from_value(created).context("an unexpected team")
    }

    fn team_destroy(&self, team: &TeamName) -> anyhow::Result<()> {
        self.send(self.request(Method::DELETE, &team_path(team)))?;
        Ok(())
    }

    fn team_add(&self, team: &TeamName, user: &str) -> anyhow::Result<()> {
        let path = format!("{}/user", team_path(team));
        let body = json!({ "user": bare_user(user) });
        self.send(self.request(Method::PUT, &path).json(&body))?;
        Ok(())
    }

    fn team_rm(&self, team: &TeamName, user: &str) -> anyhow::Result<()> {
        let path = format!("{}/user", team_path(team));
        let body = json!({ "user": bare_user(user) });
        self.send(self.request(Method::DELETE, &path).json(&body))?;
        Ok(())
    }

    fn team_list(&self, org: &str) -> anyhow::Result<Vec<String>> {
        let path = format!("/-/org/{}/team?format=cli", segment(org));
        let body = self.json(self.request(Method::GET, &path))?;
        serde_json::from_value(body).context("an unexpected team list")
    }

    fn team_members(&self, team: &TeamName) -> anyhow::Result<Vec<String>> {
        let path = format!("{}/user?format=cli", team_path(team));
        let body = self.json(self.request(Method::GET, &path))?;
        serde_json::from_value(body).context("an unexpected member list")
    }

    fn access_get(&self, package: &PackageName) -> anyhow::Result<Access> {
        let path = format!("/-/package/{}/access", package_path(package.as_str())?);
        let body = self.json(self.request(Method::GET, &path))?;
        match body.get("access").and_then(Value::as_str) {
            Some("public") => Ok(Access::Public),
            Some("restricted") => Ok(Access::Restricted),
            _ => Err(anyhow::anyhow!(
                "the registry answered an unexpected access level: {body}"
            )),
        }
    }

    fn access_set(&self, package: &PackageName, level: Access) -> anyhow::Result<()> {
        let path = format!("/-/package/{}/access", package_path(package.as_str())?);
        let body = json!({ "access": level.as_str() });
        self.send(self.request(Method::POST, &path).json(&body))?;
        Ok(())
    }

    fn access_grant(
        &self,
        team: &TeamName,
        package: &PackageName,
        permission: TeamPermission,
    ) -> anyhow::Result<()> {
        let path = format!("{}/package", team_path(team));
        let body = json!({ "package": package.as_str(), "permissions": permission.as_str() });
        self.send(self.request(Method::PUT, &path).json(&body))?;
        Ok(())
    }

    fn access_revoke(&self, team: &TeamName, package: &PackageName) -> anyhow::Result<()> {
        let path = format!("{}/package", team_path(team));
        let body = json!({ "package": package.as_str() });
        self.send(self.request(Method::DELETE, &path).json(&body))?;
        Ok(())
    }

    fn packages_of(
        &self,
        owner: &PackageOwner,
    ) -> anyhow::Result<BTreeMap<String, TeamPermission>> {
        let path = match owner {
            PackageOwner::Org(org) => format!("/-/org/{}/package", segment(org)),
            PackageOwner::Team(team) => format!("{}/package", team_path(team)),
            PackageOwner::User(user) => format!("/-/user/{}/package", segment(bare_user(user))),
        };
        permission_map(self.json(self.request(Method::GET, &path))?)
    }

    fn collaborators(
        &self,
        package: &PackageName,
    ) -> anyhow::Result<BTreeMap<String, TeamPermission>> {
        let path = format!(
            "/-/package/{}/collaborators",
            package_path(package.as_str())?
        );
        permission_map(self.json(self.request(Method::GET, &path))?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_npmrc_token_for_the_registry_url_is_found() {
        let npmrc = "registry=http://x/\n//127.0.0.1:4873/:_authToken=npm_abc\n\
                     //other/:_authToken=npm_no\n";
        assert_eq!(
            token_in_npmrc(npmrc, "http://127.0.0.1:4873"),
            Some("npm_abc".to_string())
        );
        assert_eq!(token_in_npmrc(npmrc, "http://elsewhere"), None);
    }

    #[test]
    fn team_paths_and_access_listings_are_npm_s() -> anyhow::Result<()> {
        let team = TeamName::parse("@acme:devs")?;
        assert_eq!(team_path(&team), "/-/team/acme/devs");
        assert_eq!(bare_user("@alice"), "alice");
        let map = permission_map(json!({"a": "read", "@s/b": "write"}))?;
        assert_eq!(map.get("a"), Some(&TeamPermission::ReadOnly));
        assert_eq!(map.get("@s/b"), Some(&TeamPermission::ReadWrite));
        assert!(permission_map(json!({"a": "admin"})).is_err());
        assert!(permission_map(json!(["a"])).is_err());
        Ok(())
    }

    #[test]
    fn scoped_names_are_encoded_as_npm_does() -> anyhow::Result<()> {
        assert_eq!(package_path("@scope/pkg")?, "@scope%2fpkg");
        assert_eq!(segment("a b/c"), "a%20b%2Fc");
        Ok(())
    }
}
