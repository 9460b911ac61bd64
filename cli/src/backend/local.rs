//! The local mode: the data directory opened through the core, safe while `registry serve`
//! runs on it (SQLite WAL; the daemon's packument cache revalidates against the database on
//! every read, so a change made here is served at once). It acts as the local administrator
//! (`registry_core::maintenance::local_admin`): every write still goes through `authz`.

use std::collections::BTreeMap;

use registry_core::accounts::authz::require_writer;
use registry_core::accounts::tokens::{revoke_token_by_key_or_secret, TokenOptions};
use registry_core::accounts::users::{create_user, find_user, NewUser};
use registry_core::accounts::{tokens::TokenRecord, users::UserRecord};
use registry_core::hooks::{self, HookInput};
use registry_core::maintenance::{self, local_admin, with_local_admin};
use registry_core::packages::names::PackageName;
use registry_core::packages::packument::PackumentFlavor;
use registry_core::upstream::sync::{self, SyncOptions};
use registry_core::{Error, Registry};
use serde_json::Value;

use registry_core::access::{self, OrgRecord};

use super::{
    Access, Backend, BlockInfo, DayCount, DeliveryInfo, DownloadsReport, HookInfo, HookRequest,
    MembershipInfo, NewTokenInfo, OrgInfo, OrgRole, OrgSizeInfo, PackageCount, PackageOwner,
    PackageRow, SyncRequest, SyncStatus, TeamInfo, TeamName, TeamPermission, TokenInfo,
    TokenRequest, TopReport, UserInfo, VersionCount,
};
use crate::cli::GlobalArgs;

pub struct Local {
    pub registry: Registry,
}

impl Local {
    pub fn open(global: &GlobalArgs) -> anyhow::Result<Local> {
        Ok(Local {
            registry: crate::commands::open_local(global)?,
        })
    }

    fn user(&self, name: &str) -> anyhow::Result<UserRecord> {
        Ok(find_user(&self.registry.store, name)?
            .ok_or_else(|| Error::not_found(format!("no user named {name:?}")))?)
    }
}

fn name(raw: &str) -> anyhow::Result<PackageName> {
    Ok(PackageName::parse(raw)?)
}

/// `--versions`, checked as the HTTP API checks `specificVersions`.
fn sync_versions(versions: &[String]) -> anyhow::Result<Option<Vec<String>>> {
    if versions.is_empty() {
        return Ok(None);
    }
    let body = serde_json::json!({ "specificVersions": versions });
    Ok(SyncOptions::from_json(&body)?.specific_versions)
}

fn org_info(org: OrgRecord) -> OrgInfo {
    OrgInfo {
        name: org.name,
        members: org.members,
        created: org.created_at,
    }
}

fn user_info(user: &UserRecord) -> UserInfo {
    UserInfo {
        name: user.name.clone(),
        email: user.email.clone(),
        admin: Some(user.is_admin),
        created: Some(user.created_at.clone()),
    }
}

fn token_info(token: &TokenRecord, user: &str) -> TokenInfo {
    TokenInfo {
        key: token.key.clone(),
        user: user.to_string(),
        name: token.name.clone(),
        kind: if token.readonly {
            "readonly"
        } else {
            "publish"
        }
        .to_string(),
        cidr_whitelist: token.cidr_whitelist.clone(),
        created: token.created_at.clone(),
        last_used: token.last_used_at.clone(),
        expires: token.expires_at.clone(),
    }
}

impl Backend for Local {
    fn user_add(
        &self,
        name: &str,
        email: &str,
        password: &str,
        admin: bool,
    ) -> anyhow::Result<UserInfo> {
        let user = create_user(
            &self.registry.store,
            &NewUser {
                name,
                email,
                password,
                admin,
            },
        )?;
        Ok(user_info(&user))
    }

    fn user_list(&self) -> anyhow::Result<Vec<UserInfo>> {
        let users = with_local_admin(|a| maintenance::list_users(&self.registry.store, a))?;
        Ok(users.iter().map(user_info).collect())
    }

    fn user_show(&self, name: &str) -> anyhow::Result<UserInfo> {
        Ok(user_info(&self.user(name)?))
    }

    fn user_passwd(&self, name: &str, password: &str) -> anyhow::Result<()> {
        Ok(with_local_admin(|a| {
            maintenance::set_password(&self.registry.store, a, name, password)
        })?)
    }

    fn user_rm(&self, name: &str) -> anyhow::Result<()> {
        Ok(with_local_admin(|a| {
            maintenance::delete_user(&self.registry.store, a, name)
        })?)
    }

    fn user_admin(&self, name: &str, is_admin: bool) -> anyhow::Result<UserInfo> {
        let user =
            with_local_admin(|a| maintenance::set_admin(&self.registry.store, a, name, is_admin))?;
        Ok(user_info(&user))
    }

    fn token_create(&self, request: &TokenRequest) -> anyhow::Result<NewTokenInfo> {
        let options = TokenOptions {
            name: request.name.clone(),
            readonly: request.readonly,
            cidr_whitelist: request.cidr.clone(),
            expires_at: request.expires_at.clone(),
        };
        let (user, issued) = with_local_admin(|a| {
            maintenance::create_token_for_user(&self.registry.store, a, &request.user, &options)
        })?;
        let record = issued.record;
        Ok(NewTokenInfo {
            token: issued.secret,
            key: record.key,
            user: user.name,
            readonly: record.readonly,
            cidr_whitelist: record.cidr_whitelist,
            created: record.created_at,
            expires: record.expires_at,
        })
    }

    fn token_list(&self, user: Option<&str>) -> anyhow::Result<Vec<TokenInfo>> {
        let tokens =
            with_local_admin(|a| maintenance::list_all_tokens(&self.registry.store, a, user))?;
        Ok(tokens.iter().map(|(user, t)| token_info(t, user)).collect())
    }

    fn token_revoke(&self, key: &str) -> anyhow::Result<()> {
        let identity = local_admin();
        let writer = require_writer(Some(&identity))?;
        Ok(revoke_token_by_key_or_secret(
            &self.registry.store,
            &writer,
            key,
        )?)
    }

    fn package_list(&self) -> anyhow::Result<Vec<PackageRow>> {
        Ok(maintenance::list_packages(&self.registry.store)?
            .into_iter()
            .map(|p| PackageRow {
                name: p.name,
                latest: p.latest,
                versions: Some(p.versions),
                size: Some(p.size),
                modified: Some(p.modified_at),
                state: if p.unpublished_at.is_some() {
                    "unpublished"
                } else {
                    "live"
                }
                .into(),
            })
            .collect())
    }

    fn packument(&self, raw: &str) -> anyhow::Result<Value> {
        let name = name(raw)?;
        let body = self.registry.packument(&name, PackumentFlavor::Full)?;
        let doc: Value = serde_json::from_slice(&body.json).map_err(|e| {
            Error::Storage(format!("the stored packument of {name} is not JSON: {e}"))
        })?;
        if doc.pointer("/time/unpublished").is_some() {
            return Err(Error::not_found(format!("package {name} was unpublished")).into());
        }
        Ok(doc)
    }

    fn tarball_sizes(&self, raw: &str, _doc: &Value) -> anyhow::Result<BTreeMap<String, u64>> {
        Ok(maintenance::tarball_sizes(
            &self.registry.store,
            &name(raw)?,
        )?)
    }

    fn update_document(&self, raw: &str, body: &Value) -> anyhow::Result<()> {
        let name = name(raw)?;
        let identity = local_admin();
        registry_core::packages::documents::apply(
            &self.registry.store,
            Some(&identity),
            &name,
            None,
            body,
        )?;
        Ok(())
    }

    fn unpublish_package(&self, raw: &str, rev: &str) -> anyhow::Result<()> {
        let name = name(raw)?;
        let identity = local_admin();
        let writer = require_writer(Some(&identity))?;
        Ok(registry_core::packages::unpublish::unpublish_package(
            &self.registry.store,
            &writer,
            &name,
            rev,
        )?)
    }

    fn unpublish_version(&self, raw: &str, version: &str) -> anyhow::Result<()> {
        let name = name(raw)?;
        let identity = local_admin();
        let writer = require_writer(Some(&identity))?;
        let file = name.tarball_file(version);
        Ok(registry_core::packages::unpublish::unpublish_tarball(
            &self.registry.store,
            &writer,
            &name,
            &file,
        )?)
    }

    fn dist_tags(&self, raw: &str) -> anyhow::Result<BTreeMap<String, String>> {
        Ok(registry_core::packages::tags::list(
            &self.registry.store,
            &name(raw)?,
            Some(&local_admin()),
        )?)
    }

    fn dist_tag_add(&self, raw: &str, tag: &str, version: &str) -> anyhow::Result<()> {
        let identity = local_admin();
        let writer = require_writer(Some(&identity))?;
        Ok(registry_core::packages::tags::set(
            &self.registry.store,
            &writer,
            &name(raw)?,
            tag,
            version,
        )?)
    }

    fn dist_tag_rm(&self, raw: &str, tag: &str) -> anyhow::Result<()> {
        let identity = local_admin();
        let writer = require_writer(Some(&identity))?;
        Ok(registry_core::packages::tags::remove(
            &self.registry.store,
            &writer,
            &name(raw)?,
            tag,
        )?)
    }

    fn block(&self, raw: &str, reason: &str) -> anyhow::Result<()> {
        let name = name(raw)?;
        with_local_admin(|a| {
            registry_core::packages::blocks::block(&self.registry.store, a, &name, reason)
        })?;
        Ok(())
    }

    fn unblock(&self, raw: &str) -> anyhow::Result<()> {
        let name = name(raw)?;
        Ok(with_local_admin(|a| {
            registry_core::packages::blocks::unblock(&self.registry.store, a, &name)
        })?)
    }

    fn block_status(&self, raw: &str) -> anyhow::Result<BlockInfo> {
        let name = name(raw)?;
        let block = registry_core::packages::blocks::block_of(&self.registry.store, &name)?;
        Ok(BlockInfo {
            name: name.as_str().to_string(),
            blocked: block.is_some(),
            reason: block.map(|b| b.reason),
        })
    }

    fn top_downloads(&self, period: &str, limit: usize) -> anyhow::Result<TopReport> {
        use registry_core::packages::downloads::{format_day, parse_period, today, top};
        let (start, end) = parse_period(period, today())?;
        let packages = top(
            &self.registry.store,
            start,
            end,
            limit,
            Some(&local_admin()),
        )?
        .into_iter()
        .map(|(package, downloads)| PackageCount { package, downloads })
        .collect();
        Ok(TopReport {
            start: format_day(start),
            end: format_day(end),
            packages,
        })
    }

    fn upstreams(&self) -> anyhow::Result<Vec<super::UpstreamReport>> {
        // This process serves no requests: the breaker and counters are the daemon's.
        Ok(registry_core::upstream::status::report(
            &self.registry,
            false,
        )?)
    }

    fn cache_forget(&self, raw: &str) -> anyhow::Result<()> {
        let name = name(raw)?;
        Ok(with_local_admin(|a| {
            registry_core::upstream::status::forget(&self.registry, a, &name)
        })?)
    }

    fn downloads(&self, raw: &str, period: &str) -> anyhow::Result<DownloadsReport> {
        use registry_core::packages::downloads::{format_day, parse_period, range, today};
        let name = name(raw)?;
        let (start, end) = parse_period(period, today())?;
        let report = range(
            &self.registry.store,
            &name,
            start,
            end,
            Some(&local_admin()),
        )?;
        let days = report
            .days
            .iter()
            .map(|(day, count)| DayCount {
                day: format_day(*day),
                downloads: *count,
            })
            .collect();
        let versions = report
            .versions
            .iter()
            .map(|(version, series)| VersionCount {
                version: version.clone(),
                downloads: series.iter().map(|(_, c)| c).sum(),
            })
            .collect();
        Ok(DownloadsReport::new(
            report.package,
            format_day(start),
            format_day(end),
            days,
            versions,
        ))
    }

    fn local(&self, _what: &str) -> anyhow::Result<&Local> {
        Ok(self)
    }

    fn sync_start(&self, raw: &str, request: &SyncRequest) -> anyhow::Result<SyncStatus> {
        let name = name(raw)?;
        let identity = local_admin();
        let writer = require_writer(Some(&identity))?;
        let options = SyncOptions {
            skip_dependencies: request.skip_dependencies,
            specific_versions: sync_versions(&request.versions)?,
            ..SyncOptions::default()
        };
        let task = sync::create(&self.registry, &writer, &name, &options)?;
        self.sync_status(name.as_str(), &task.id)
    }

    fn sync_status(&self, raw: &str, id: &str) -> anyhow::Result<SyncStatus> {
        let name = name(raw)?;
        let (task, tree) = sync::get(&self.registry, &name, id)?;
        Ok(SyncStatus {
            id: task.id,
            package: task.package,
            state: task.state,
            error: task.error,
            total: tree.total,
            finished: tree.finished,
            errors: tree.errors,
        })
    }

    fn hook_list(&self, name: Option<&str>) -> anyhow::Result<Vec<HookInfo>> {
        let identity = local_admin();
        let mut hooks = Vec::new();
        loop {
            let offset = hooks.len() as u64;
            let (page, total) =
                hooks::list(&self.registry, &identity, name, hooks::MAX_PAGE, offset)?;
            let done = page.is_empty();
            hooks.extend(page.into_iter().map(HookInfo::from));
            if done || hooks.len() as u64 >= total {
                return Ok(hooks);
            }
        }
    }

    fn hook_add(&self, request: &HookRequest) -> anyhow::Result<HookInfo> {
        let owner = request.owner.as_deref().ok_or_else(|| {
            crate::exit::UsageError(
                "locally, a hook needs an owner: pass --user NAME (remotely it is the token's \
                 user)"
                    .to_string(),
            )
        })?;
        let input = HookInput::from_json(&serde_json::json!({
            "type": request.kind,
            "name": request.name,
            "endpoint": request.endpoint,
            "secret": request.secret,
        }))?;
        let identity = local_admin();
        let writer = require_writer(Some(&identity))?;
        Ok(hooks::create(&self.registry, &writer, Some(owner), &input)?.into())
    }

    fn hook_rm(&self, id: &str) -> anyhow::Result<HookInfo> {
        let identity = local_admin();
        let writer = require_writer(Some(&identity))?;
        let (hook, _) = hooks::delete(&self.registry, &writer, id)?;
        Ok(hook.into())
    }

    fn hook_test(&self, id: &str) -> anyhow::Result<String> {
        let identity = local_admin();
        let writer = require_writer(Some(&identity))?;
        Ok(hooks::ping(&self.registry, &writer, id)?)
    }

    fn hook_deliveries(&self, id: &str, limit: u64) -> anyhow::Result<Vec<DeliveryInfo>> {
        let identity = local_admin();
        let list = hooks::deliveries(&self.registry, &identity, id, limit)?;
        Ok(list.into_iter().map(DeliveryInfo::from).collect())
    }

    fn org_create(&self, org: &str, owner: &str) -> anyhow::Result<OrgInfo> {
        let org =
            with_local_admin(|a| access::orgs::create_org(&self.registry.store, a, org, owner))?;
        Ok(org_info(org))
    }

    fn org_list(&self) -> anyhow::Result<Vec<OrgInfo>> {
        let orgs = with_local_admin(|a| access::orgs::list_orgs(&self.registry.store, a))?;
        Ok(orgs.into_iter().map(org_info).collect())
    }

    fn org_members(&self, org: &str) -> anyhow::Result<BTreeMap<String, OrgRole>> {
        let identity = local_admin();
        let members = access::orgs::members(&self.registry.store, Some(&identity), org)?;
        Ok(members.into_iter().collect())
    }

    fn org_set(&self, org: &str, user: &str, role: OrgRole) -> anyhow::Result<MembershipInfo> {
        let identity = local_admin();
        let done = access::orgs::set_member(
            &self.registry.store,
            Some(&identity),
            org,
            user,
            Some(role.as_str()),
        )?;
        Ok(MembershipInfo {
            org: OrgSizeInfo {
                name: done.org.name,
                size: done.org.size,
            },
            user: done.user,
            role: done.role.as_str().to_string(),
        })
    }

    fn org_rm(&self, org: &str, user: &str) -> anyhow::Result<()> {
        let identity = local_admin();
        Ok(access::orgs::remove_member(
            &self.registry.store,
            Some(&identity),
            org,
            user,
        )?)
    }

    fn team_create(&self, team: &TeamName, description: Option<&str>) -> anyhow::Result<TeamInfo> {
        let identity = local_admin();
        let created =
            access::teams::create_team(&self.registry.store, Some(&identity), team, description)?;
        Ok(TeamInfo {
            name: created.name,
            description: created.description,
            created: created.created,
        })
    }

    fn team_destroy(&self, team: &TeamName) -> anyhow::Result<()> {
        let identity = local_admin();
        Ok(access::teams::destroy_team(
            &self.registry.store,
            Some(&identity),
            team,
        )?)
    }

    fn team_add(&self, team: &TeamName, user: &str) -> anyhow::Result<()> {
        let identity = local_admin();
        Ok(access::teams::add_member(
            &self.registry.store,
            Some(&identity),
            team,
            user,
        )?)
    }

    fn team_rm(&self, team: &TeamName, user: &str) -> anyhow::Result<()> {
        let identity = local_admin();
        Ok(access::teams::remove_member(
            &self.registry.store,
            Some(&identity),
            team,
            user,
        )?)
    }

    fn team_list(&self, org: &str) -> anyhow::Result<Vec<String>> {
        let identity = local_admin();
        Ok(access::teams::list_teams(
            &self.registry.store,
            Some(&identity),
            org,
        )?)
    }

    fn team_members(&self, team: &TeamName) -> anyhow::Result<Vec<String>> {
        let identity = local_admin();
        Ok(access::teams::list_members(
            &self.registry.store,
            Some(&identity),
            team,
        )?)
    }

    fn access_get(&self, package: &PackageName) -> anyhow::Result<Access> {
        let identity = local_admin();
        Ok(access::packages::access_of(
            &self.registry.store,
            Some(&identity),
            package,
        )?)
    }

    fn access_set(&self, package: &PackageName, level: Access) -> anyhow::Result<()> {
        let identity = local_admin();
        Ok(access::packages::set_access(
            &self.registry.store,
            Some(&identity),
            package,
            level,
        )?)
    }

    fn access_grant(
        &self,
        team: &TeamName,
        package: &PackageName,
        permission: TeamPermission,
    ) -> anyhow::Result<()> {
        let identity = local_admin();
        Ok(access::teams::grant(
            &self.registry.store,
            Some(&identity),
            team,
            package,
            permission,
        )?)
    }

    fn access_revoke(&self, team: &TeamName, package: &PackageName) -> anyhow::Result<()> {
        let identity = local_admin();
        Ok(access::teams::revoke(
            &self.registry.store,
            Some(&identity),
            team,
            package,
        )?)
    }

    fn packages_of(
        &self,
        owner: &PackageOwner,
    ) -> anyhow::Result<BTreeMap<String, TeamPermission>> {
        let identity = local_admin();
        let packages = access::packages::packages_of(&self.registry.store, Some(&identity), owner)?;
        Ok(packages.into_iter().collect())
    }

    fn collaborators(
        &self,
        package: &PackageName,
    ) -> anyhow::Result<BTreeMap<String, TeamPermission>> {
        let identity = local_admin();
        let users =
            access::packages::collaborators(&self.registry.store, Some(&identity), package)?;
        Ok(users.into_iter().collect())
    }
}
