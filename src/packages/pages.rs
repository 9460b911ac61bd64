//! What the web UI's pages read: listings of packages (recent, by name) and one package's
//! overview (versions, tags, maintainers, the shown version's readme, its dependents), each
//! limited to what the reader may see. Read-only; the daemon renders the answers.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use crate::access::packages::readable_package;
use crate::access::visibility;
use crate::accounts::auth::Identity;
use crate::error::{Error, Result};
use crate::packages::names::PackageName;
use crate::store::{ListedPackage, PackageRecord, Store, VersionSummary};

/// Dependents listed on a package page at most.
pub const MAX_DEPENDENTS: u32 = 100;

/// A package as a listing shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    pub name: String,
    pub version: String,
    pub description: String,
    pub modified_at: String,
}

fn listed(row: ListedPackage) -> Listed {
    let document: Value = serde_json::from_str(&row.document).unwrap_or(Value::Null);
    let field = |key: &str| {
        document["package"][key]
            .as_str()
            .unwrap_or_default()
            .to_string()
    };
    Listed {
        version: field("version"),
        description: field("description"),
        name: row.name,
        modified_at: row.modified_at,
    }
}

/// The `limit` most recently changed packages `reader` may see.
pub fn recent(store: &Store, limit: u32, reader: Option<&Identity>) -> Result<Vec<Listed>> {
    store.read(|db| {
        let seen = visibility(db, reader)?;
        Ok(db
            .recent_packages(limit, &seen)?
            .into_iter()
            .map(listed)
            .collect())
    })
}

/// The packages of `names` that exist here and `reader` may see, in the order of `names`.
pub fn listed_by_name(
    store: &Store,
    names: &[String],
    reader: Option<&Identity>,
) -> Result<Vec<Listed>> {
    let mut found: BTreeMap<String, Listed> = store.read(|db| {
        let seen = visibility(db, reader)?;
        Ok(db
            .listed_packages(names, &seen)?
            .into_iter()
            .map(|row| (row.name.clone(), listed(row)))
            .collect())
    })?;
    Ok(names.iter().filter_map(|n| found.remove(n)).collect())
}

/// One package as its page shows it.
#[derive(Debug, Clone)]
pub struct PackageOverview {
    pub package: PackageRecord,
    /// Every version, unpublished ones included, in publication order.
    pub versions: Vec<VersionSummary>,
    pub tags: BTreeMap<String, String>,
    /// (name, email)
    pub maintainers: Vec<(String, String)>,
    /// The version shown: the one asked for, else `latest`, else the newest live one.
    pub shown: String,
    /// The shown version's manifest.
    pub manifest: Value,
    pub readme: String,
    /// Dependencies of the shown version that are local packages the reader may see.
    pub local_dependencies: BTreeSet<String>,
    /// Local packages (the reader may see) whose latest version depends on this one.
    pub dependents: Vec<String>,
}

/// The overview of `name` at `version` (default: `latest`); the same 404 for a package that
/// does not exist, is unpublished or that `reader` may not see.
pub fn overview(
    store: &Store,
    name: &PackageName,
    version: Option<&str>,
    reader: Option<&Identity>,
) -> Result<PackageOverview> {
    store.read(|db| {
        let package = readable_package(db, reader, name)?;
        let versions = db.version_summaries(package.id)?;
        let tags = db.dist_tags(package.id)?;
        let live = |v: &&VersionSummary| v.deleted_at.is_none();
        let chosen = match version {
            Some(wanted) => versions
                .iter()
                .filter(live)
                .find(|v| v.version == wanted || tags.get(wanted) == Some(&v.version))
                .ok_or_else(|| {
                    Error::not_found(format!("package {name} has no version {wanted}"))
                })?,
            None => tags
                .get("latest")
                .and_then(|latest| versions.iter().filter(live).find(|v| &v.version == latest))
                .or_else(|| versions.iter().rfind(|v| v.deleted_at.is_none()))
                .ok_or_else(|| crate::access::hidden(name.as_str()))?,
        };
        let shown = chosen.version.clone();
        let manifest: Value = db
            .manifest_of(package.id, &shown)?
            .and_then(|m| serde_json::from_str(&m).ok())
            .unwrap_or(Value::Null);
        let readme = db.readme(package.id, &shown)?;
        let seen = visibility(db, reader)?;
        let dependency_names: Vec<String> = manifest["dependencies"]
            .as_object()
            .map(|deps| deps.keys().cloned().collect())
            .unwrap_or_default();
        let local_dependencies = db
            .listed_packages(&dependency_names, &seen)?
            .into_iter()
            .map(|row| row.name)
            .collect();
        let dependents = db.dependents(&package.name, MAX_DEPENDENTS, &seen)?;
        let maintainers = db.maintainers(package.id)?;
        Ok(PackageOverview {
            package,
            versions,
            tags,
            maintainers,
            shown,
            manifest,
            readme,
            local_dependencies,
            dependents,
        })
    })
}
