//! `registry package list|info NAME`

use serde::Serialize;
use serde_json::Value;

use registry_core::packages::names::PackageName;

use crate::backend::{Access, Backend};
use crate::cli::PackageCommand;
use crate::output::{bytes, opt, Out};

pub fn run(backend: &dyn Backend, out: &Out, command: PackageCommand) -> anyhow::Result<()> {
    match command {
        PackageCommand::List => list(backend, out),
        PackageCommand::Info(args) => info(backend, out, &args.package),
    }
}

fn list(backend: &dyn Backend, out: &Out) -> anyhow::Result<()> {
    let packages = backend.package_list()?;
    if out.json {
        return out.json(&packages);
    }
    let rows = packages
        .iter()
        .map(|p| {
            vec![
                p.name.clone(),
                opt(&p.latest),
                p.versions.map_or("-".into(), |v| v.to_string()),
                p.size.map_or("-".into(), bytes),
                opt(&p.modified),
                p.state.clone(),
            ]
        })
        .collect();
    out.table(
        &["NAME", "LATEST", "VERSIONS", "SIZE", "MODIFIED", "STATE"],
        rows,
    )
}

#[derive(Debug, Serialize)]
pub struct VersionInfo {
    pub version: String,
    pub published: Option<String>,
    pub size: Option<u64>,
    pub deprecated: Option<String>,
}

/// `registry package info --json`.
#[derive(Debug, Serialize)]
pub struct PackageInfo {
    pub name: String,
    pub dist_tags: serde_json::Map<String, Value>,
    pub maintainers: Vec<String>,
    pub versions: Vec<VersionInfo>,
    /// Bytes of every live version's tarball.
    pub size: u64,
    pub modified: Option<String>,
    /// Downloads in the last 7 and 30 days (null where the registry cannot say).
    pub downloads_last_week: Option<u64>,
    pub downloads_last_month: Option<u64>,
    /// public or restricted (null where the registry cannot say).
    pub access: Option<Access>,
}

pub fn package_info(doc: &Value) -> PackageInfo {
    let versions: Vec<VersionInfo> = doc
        .get("versions")
        .and_then(Value::as_object)
        .map(|versions| {
            versions
                .iter()
                .map(|(version, manifest)| VersionInfo {
                    version: version.clone(),
                    published: doc
                        .pointer(&format!(
                            "/time/{}",
                            version.replace('~', "~0").replace('/', "~1")
                        ))
                        .and_then(Value::as_str)
                        .map(str::to_string),
                    size: manifest.pointer("/dist/size").and_then(Value::as_u64),
                    deprecated: manifest
                        .get("deprecated")
                        .and_then(Value::as_str)
                        .filter(|d| !d.is_empty())
                        .map(str::to_string),
                })
                .collect()
        })
        .unwrap_or_default();
    PackageInfo {
        name: doc
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string(),
        dist_tags: doc
            .get("dist-tags")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default(),
        maintainers: registry_core::maintenance::maintainer_names(doc),
        size: versions.iter().filter_map(|v| v.size).sum(),
        versions,
        modified: doc
            .pointer("/time/modified")
            .and_then(Value::as_str)
            .map(str::to_string),
        downloads_last_week: None,
        downloads_last_month: None,
        access: None,
    }
}

fn info(backend: &dyn Backend, out: &Out, name: &str) -> anyhow::Result<()> {
    let doc = backend.packument(name)?;
    let mut info = package_info(&doc);
    let sizes = backend.tarball_sizes(name, &doc)?;
    for version in &mut info.versions {
        version.size = sizes.get(&version.version).copied();
    }
    info.size = sizes.values().sum();
    info.downloads_last_week = backend.downloads(name, "last-week").ok().map(|r| r.total);
    info.downloads_last_month = backend.downloads(name, "last-month").ok().map(|r| r.total);
    // The packument was just read, so a 404 or 501 here is a registry without the access
    // route (older versions of ours answer 501): say "unknown" (null) rather than fail the
    // whole command or guess "public".
    info.access = match backend.access_get(&PackageName::parse(name)?) {
        Ok(access) => Some(access),
        Err(e)
            if matches!(e.downcast_ref(), Some(registry_core::Error::NotFound(_)))
                || e.is::<crate::backend::remote::NotSupported>() =>
        {
            None
        }
        Err(e) => return Err(e),
    };
    if out.json {
        return out.json(&info);
    }
    let tags: Vec<String> = info
        .dist_tags
        .iter()
        .map(|(t, v)| format!("{t}: {}", v.as_str().unwrap_or_default()))
        .collect();
    out.line(format!("{} ({})", info.name, bytes(info.size)))?;
    out.line(format!("dist-tags: {}", tags.join(", ")))?;
    out.line(format!("maintainers: {}", info.maintainers.join(", ")))?;
    out.line(format!("modified: {}", opt(&info.modified)))?;
    let access = info.access.map(|a| a.as_str().to_string());
    out.line(format!("access: {}", opt(&access)))?;
    let week = info.downloads_last_week.map(|n| n.to_string());
    let month = info.downloads_last_month.map(|n| n.to_string());
    out.line(format!(
        "downloads: {} last 7 days, {} last 30 days",
        opt(&week),
        opt(&month)
    ))?;
    let rows = info
        .versions
        .iter()
        .map(|v| {
            vec![
                v.version.clone(),
                opt(&v.published),
                v.size.map_or("-".into(), bytes),
                opt(&v.deprecated),
            ]
        })
        .collect();
    out.table(&["VERSION", "PUBLISHED", "SIZE", "DEPRECATED"], rows)
}
