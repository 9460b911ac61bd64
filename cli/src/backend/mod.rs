//! Where the admin commands act: on a data directory through the core ([`local::Local`]) or on
//! a running registry over its HTTP API ([`remote::Remote`]). Commands are written once, against
//! [`Backend`]; an operation only one mode can do answers [`only_local`] or [`only_remote`]-style
//! errors (exit 1, one line, naming the other mode).

pub mod local;
pub mod remote;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::cli::GlobalArgs;
pub use registry_core::access::packages::PackageOwner;
pub use registry_core::access::teams::TeamName;
pub use registry_core::access::{Access, OrgRole, TeamPermission};
use registry_core::packages::names::PackageName;
pub use registry_core::upstream::status::UpstreamReport;

/// A user as listed and shown. `admin` is `null` where the mode cannot know it (a remote
/// registry does not publish who its administrators are).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct UserInfo {
    pub name: String,
    pub email: String,
    pub admin: Option<bool>,
    pub created: Option<String>,
}

/// A token as listed: never the secret.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TokenInfo {
    pub key: String,
    pub user: String,
    pub name: Option<String>,
    /// `readonly` or `publish`.
    pub kind: String,
    pub cidr_whitelist: Vec<String>,
    pub created: String,
    pub last_used: Option<String>,
    pub expires: Option<String>,
}

/// A token just created: the only time its secret is seen.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NewTokenInfo {
    pub token: String,
    pub key: String,
    pub user: String,
    pub readonly: bool,
    pub cidr_whitelist: Vec<String>,
    pub created: String,
    pub expires: Option<String>,
}

pub struct TokenRequest {
    pub user: String,
    pub readonly: bool,
    pub cidr: Vec<String>,
    pub expires_at: Option<String>,
    pub name: Option<String>,
}

/// One row of `registry package list`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PackageRow {
    pub name: String,
    pub latest: Option<String>,
    pub versions: Option<u64>,
    pub size: Option<u64>,
    pub modified: Option<String>,
    /// `live` or `unpublished`.
    pub state: String,
}

/// A block on a package name.
#[derive(Debug, Clone, Serialize)]
pub struct BlockInfo {
    pub name: String,
    pub blocked: bool,
    pub reason: Option<String>,
}

/// Downloads of a package over a period: per day, and per version.
#[derive(Debug, Clone, Serialize)]
pub struct DownloadsReport {
    pub package: String,
    pub start: String,
    pub end: String,
    pub total: u64,
    pub days: Vec<DayCount>,
    /// Most downloaded first; versions not downloaded in the period are absent.
    pub versions: Vec<VersionCount>,
}

/// The most downloaded packages of a period.
#[derive(Debug, Clone, Serialize)]
pub struct TopReport {
    pub start: String,
    pub end: String,
    pub packages: Vec<PackageCount>,
}

#[derive(Debug, Clone, Serialize)]
pub struct PackageCount {
    pub package: String,
    pub downloads: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct DayCount {
    pub day: String,
    pub downloads: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct VersionCount {
    pub version: String,
    pub downloads: u64,
}

impl DownloadsReport {
    /// Orders versions most downloaded first, and sums the total.
    pub fn new(
        package: String,
        start: String,
        end: String,
        days: Vec<DayCount>,
        mut versions: Vec<VersionCount>,
    ) -> DownloadsReport {
        versions.sort_by(|a, b| {
            b.downloads
                .cmp(&a.downloads)
                .then(a.version.cmp(&b.version))
        });
        DownloadsReport {
            package,
            start,
            end,
            total: days.iter().map(|d| d.downloads).sum(),
            days,
            versions,
        }
    }
}

/// An org as `registry org create|ls` show it (and as `/-/registry/admin/orgs` answers).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OrgInfo {
    pub name: String,
    pub members: u64,
    pub created: String,
}

/// What `registry org set` did: npm's answer to `npm org set` (`PUT /-/org/:org/user`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MembershipInfo {
    pub org: OrgSizeInfo,
    pub user: String,
    pub role: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OrgSizeInfo {
    pub name: String,
    pub size: u64,
}

/// A team just created (`PUT /-/org/:org/team`); `name` is `org:team`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TeamInfo {
    pub name: String,
    pub description: String,
    pub created: String,
}

/// Org, team and package-access operations take arguments the command already parsed (org
/// names normalized, `TeamName`, `PackageName`), so that a bad spelling is a usage error
/// before either mode acts.
pub trait Backend {
    fn user_add(
        &self,
        name: &str,
        email: &str,
        password: &str,
        admin: bool,
    ) -> anyhow::Result<UserInfo>;
    fn user_list(&self) -> anyhow::Result<Vec<UserInfo>>;
    fn user_show(&self, name: &str) -> anyhow::Result<UserInfo>;
    fn user_passwd(&self, name: &str, password: &str) -> anyhow::Result<()>;
    fn user_rm(&self, name: &str) -> anyhow::Result<()>;
    fn user_admin(&self, name: &str, admin: bool) -> anyhow::Result<UserInfo>;

    fn token_create(&self, request: &TokenRequest) -> anyhow::Result<NewTokenInfo>;
    /// The tokens of `user`, or of everyone (locally) / of the caller (remotely).
    fn token_list(&self, user: Option<&str>) -> anyhow::Result<Vec<TokenInfo>>;
    fn token_revoke(&self, key: &str) -> anyhow::Result<()>;

    fn package_list(&self) -> anyhow::Result<Vec<PackageRow>>;
    /// The full packument (with `_rev`), as `GET /:pkg?write=true` answers it.
    fn packument(&self, name: &str) -> anyhow::Result<Value>;
    /// The tarball size of each live version.
    fn tarball_sizes(&self, name: &str, doc: &Value) -> anyhow::Result<BTreeMap<String, u64>>;
    /// A document update (owners, deprecations), as `PUT /:pkg/-rev/:rev` takes it.
    fn update_document(&self, name: &str, body: &Value) -> anyhow::Result<()>;
    fn unpublish_package(&self, name: &str, rev: &str) -> anyhow::Result<()>;
    fn unpublish_version(&self, name: &str, version: &str) -> anyhow::Result<()>;

    fn dist_tags(&self, name: &str) -> anyhow::Result<BTreeMap<String, String>>;
    fn dist_tag_add(&self, name: &str, tag: &str, version: &str) -> anyhow::Result<()>;
    fn dist_tag_rm(&self, name: &str, tag: &str) -> anyhow::Result<()>;

    fn block(&self, name: &str, reason: &str) -> anyhow::Result<()>;
    fn unblock(&self, name: &str) -> anyhow::Result<()>;
    fn block_status(&self, name: &str) -> anyhow::Result<BlockInfo>;

    /// `period`: last-day, last-week, last-month, last-year, YYYY-MM-DD[:YYYY-MM-DD].
    fn downloads(&self, name: &str, period: &str) -> anyhow::Result<DownloadsReport>;

    /// The `limit` most downloaded packages of `period`.
    fn top_downloads(&self, period: &str, limit: usize) -> anyhow::Result<TopReport>;

    /// Every upstream with its state and what is cached of it.
    fn upstreams(&self) -> anyhow::Result<Vec<UpstreamReport>>;
    /// Drops what is cached of a proxied package.
    fn cache_forget(&self, name: &str) -> anyhow::Result<()>;

    /// The data directory, for what only the local mode can do (gc, doctor, backup).
    fn local(&self, what: &str) -> anyhow::Result<&local::Local>;

    /// Queues a sync of `name` from its upstream (locally: in the database, for the running
    /// daemon's worker; remotely: `PUT /-/package/:name/syncs`).
    fn sync_start(&self, name: &str, request: &SyncRequest) -> anyhow::Result<SyncStatus>;
    /// A sync task's state and its tree's progress.
    fn sync_status(&self, name: &str, id: &str) -> anyhow::Result<SyncStatus>;

    /// Every hook the caller may see (locally: all), of one target name if given.
    fn hook_list(&self, name: Option<&str>) -> anyhow::Result<Vec<HookInfo>>;
    fn hook_add(&self, request: &HookRequest) -> anyhow::Result<HookInfo>;
    fn hook_rm(&self, id: &str) -> anyhow::Result<HookInfo>;
    /// Queues a signed ping; answers the delivery id.
    fn hook_test(&self, id: &str) -> anyhow::Result<String>;
    fn hook_deliveries(&self, id: &str, limit: u64) -> anyhow::Result<Vec<DeliveryInfo>>;

    /// Creates an org with its first owner (administrators only).
    fn org_create(&self, org: &str, owner: &str) -> anyhow::Result<OrgInfo>;
    /// Every org (administrators only).
    fn org_list(&self) -> anyhow::Result<Vec<OrgInfo>>;
    fn org_members(&self, org: &str) -> anyhow::Result<BTreeMap<String, OrgRole>>;
    fn org_set(&self, org: &str, user: &str, role: OrgRole) -> anyhow::Result<MembershipInfo>;
    fn org_rm(&self, org: &str, user: &str) -> anyhow::Result<()>;

    fn team_create(&self, team: &TeamName, description: Option<&str>) -> anyhow::Result<TeamInfo>;
    fn team_destroy(&self, team: &TeamName) -> anyhow::Result<()>;
    fn team_add(&self, team: &TeamName, user: &str) -> anyhow::Result<()>;
    fn team_rm(&self, team: &TeamName, user: &str) -> anyhow::Result<()>;
    /// The org's teams, as `org:team`.
    fn team_list(&self, org: &str) -> anyhow::Result<Vec<String>>;
    fn team_members(&self, team: &TeamName) -> anyhow::Result<Vec<String>>;

    fn access_get(&self, package: &PackageName) -> anyhow::Result<Access>;
    fn access_set(&self, package: &PackageName, access: Access) -> anyhow::Result<()>;
    fn access_grant(
        &self,
        team: &TeamName,
        package: &PackageName,
        permission: TeamPermission,
    ) -> anyhow::Result<()>;
    fn access_revoke(&self, team: &TeamName, package: &PackageName) -> anyhow::Result<()>;
    /// The packages of an org, team or user that the caller may see; not found when there is
    /// no such org, team or user.
    fn packages_of(&self, owner: &PackageOwner)
        -> anyhow::Result<BTreeMap<String, TeamPermission>>;
    fn collaborators(
        &self,
        package: &PackageName,
    ) -> anyhow::Result<BTreeMap<String, TeamPermission>>;
}

/// What `registry hook add` asks for: the fields of `POST /-/npm/v1/hooks/hook`, and the
/// owner in local mode.
pub struct HookRequest {
    /// `package`, `scope` or `owner`.
    pub kind: String,
    pub name: String,
    pub endpoint: String,
    pub secret: String,
    pub owner: Option<String>,
}

/// A hook as listed (the API's fields; never the secret).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HookInfo {
    pub id: String,
    pub username: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub name: String,
    pub endpoint: String,
    pub created: String,
    pub updated: String,
    pub delivered: bool,
    pub last_delivery: Option<String>,
    pub response_code: Option<u16>,
}

impl From<registry_core::hooks::Hook> for HookInfo {
    fn from(hook: registry_core::hooks::Hook) -> HookInfo {
        HookInfo {
            id: hook.id,
            username: hook.owner,
            kind: hook.kind.as_str().to_string(),
            name: hook.name,
            endpoint: hook.endpoint,
            created: hook.created_at,
            updated: hook.updated_at,
            delivered: hook.delivered,
            last_delivery: hook.last_delivery,
            response_code: hook.last_response_code,
        }
    }
}

/// One delivery of a hook, as `GET /-/npm/v1/hooks/hook/:id/deliveries` lists it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DeliveryInfo {
    pub id: String,
    pub event: String,
    pub package: String,
    /// pending, delivered or failed (given up).
    pub status: String,
    pub attempts: u64,
    pub response_code: Option<u16>,
    pub duration_ms: Option<u64>,
    pub error: Option<String>,
    pub created: String,
    pub last_attempt: Option<String>,
    /// When a pending delivery is tried next.
    pub next_attempt: Option<String>,
}

impl From<registry_core::hooks::Delivery> for DeliveryInfo {
    fn from(delivery: registry_core::hooks::Delivery) -> DeliveryInfo {
        let next_attempt = delivery.next_attempt();
        DeliveryInfo {
            id: delivery.id,
            event: delivery.event,
            package: delivery.package,
            status: delivery.state,
            attempts: delivery.attempts,
            response_code: delivery.response_code,
            duration_ms: delivery.duration_ms,
            error: delivery.error,
            created: delivery.created_at,
            last_attempt: delivery.last_attempt_at,
            next_attempt,
        }
    }
}

/// What `registry sync` asks for.
pub struct SyncRequest {
    pub skip_dependencies: bool,
    /// Only these versions (none: every version).
    pub versions: Vec<String>,
}

/// A sync task, and how far it and the dependencies it queued are.
#[derive(Debug, Clone, Serialize)]
pub struct SyncStatus {
    pub id: String,
    pub package: String,
    /// waiting, processing, success or error.
    pub state: String,
    pub error: Option<String>,
    /// The task and every dependency task it queued.
    pub total: u64,
    pub finished: u64,
    pub errors: u64,
}

impl SyncStatus {
    /// The task and every task it queued have ended.
    pub fn done(&self) -> bool {
        matches!(self.state.as_str(), "success" | "error") && self.finished >= self.total
    }
}

/// Picks the mode: remote when a registry URL is given (flag or `REGISTRY_URL`), else local.
pub fn open(global: &GlobalArgs) -> anyhow::Result<Box<dyn Backend>> {
    match &global.registry {
        Some(url) => Ok(Box::new(remote::Remote::connect(
            url,
            global.token.as_deref(),
        )?)),
        None => Ok(Box::new(local::Local::open(global)?)),
    }
}

/// The error of an operation the remote mode cannot do.
pub fn only_local(what: &str) -> anyhow::Error {
    anyhow::anyhow!(
        "{what} works only on the data directory: run it on the registry's host with \
         --data-dir instead of --registry"
    )
}
