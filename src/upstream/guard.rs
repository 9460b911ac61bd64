//! The rules that keep local and proxied names apart on writes: a proxied package is
//! read-only here, and a new unscoped name that an upstream already has may not be published
//! (the dependency-confusion guard: a private `utils` must never shadow, or be shadowed by, a
//! public `utils`).

use std::sync::Arc;

use super::proxy;
use crate::error::{Error, Result};
use crate::packages::names::PackageName;
use crate::packages::packument::PackumentFlavor;
use crate::registry::Registry;

/// Refuses a change (dist-tag, deprecate, unpublish, owners, star) to a name that is not
/// local and that an upstream serves. Blocking.
pub fn refuse_proxied_write(registry: &Registry, name: &PackageName) -> Result<()> {
    let Some(upstream) = registry.upstreams.for_name(name.as_str()) else {
        return Ok(());
    };
    if registry
        .store
        .read(|db| db.package_by_name(name.as_str()))?
        .is_some()
    {
        return Ok(());
    }
    Err(Error::forbidden(format!(
        "read-only: {name} is proxied from upstream {}; change it there",
        upstream.name()
    )))
}

/// Before the first publish of a name: refuses an unscoped name that the upstream serving it
/// has (403), and answers 503 when that upstream cannot be asked, rather than guess.
pub async fn check_new_name(registry: &Arc<Registry>, name: &PackageName) -> Result<()> {
    if name.scope().is_some() {
        return Ok(());
    }
    let Some(upstream) = registry.upstreams.for_name(name.as_str()) else {
        return Ok(());
    };
    let lookup = name.clone();
    let local = {
        let registry = registry.clone();
        tokio::task::spawn_blocking(move || {
            registry
                .store
                .read(|db| db.package_by_name(lookup.as_str()))
        })
        .await
        .map_err(|e| Error::Storage(format!("a blocking task failed: {e}")))??
    };
    if local.is_some() {
        return Ok(());
    }
    match proxy::document(registry, &upstream, name, PackumentFlavor::Abbreviated).await {
        Ok(_) => Err(Error::forbidden(format!(
            "{name} exists on upstream {}: publishing a package of the same name here would \
             shadow it (dependency confusion); publish it under a private scope, such as \
             @your-team/{name}",
            upstream.name()
        ))),
        Err(Error::NotFound(_)) => Ok(()),
        Err(Error::BadGateway(reason) | Error::GatewayTimeout(reason)) => {
            Err(Error::UpstreamUnavailable(format!(
                "cannot tell whether {name} exists on upstream {} ({reason}); nothing was \
                 published — retry later, or publish under a private scope",
                upstream.name()
            )))
        }
        Err(other) => Err(other),
    }
}
