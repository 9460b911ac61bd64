//! `registry upstream list` and `registry cache forget NAME`

use crate::backend::Backend;
use crate::cli::{CacheCommand, UpstreamCommand};
use crate::output::{bytes, Out};

pub fn run(backend: &dyn Backend, out: &Out, command: UpstreamCommand) -> anyhow::Result<()> {
    match command {
        UpstreamCommand::List => list(backend, out),
    }
}

pub fn cache(backend: &dyn Backend, out: &Out, command: CacheCommand) -> anyhow::Result<()> {
    match command {
        CacheCommand::Forget(args) => {
            backend.cache_forget(&args.package)?;
            if out.json {
                return out
                    .json(&serde_json::json!({ "package": args.package, "forgotten": true }));
            }
            out.done(format!(
                "forgot the cached copy of {}; `registry gc` reclaims its tarballs",
                args.package
            ))
        }
    }
}

fn list(backend: &dyn Backend, out: &Out) -> anyhow::Result<()> {
    let upstreams = backend.upstreams()?;
    if out.json {
        return out.json(&upstreams);
    }
    if upstreams.is_empty() {
        return out.line("no upstream is configured (see `[[upstreams]]` or `serve --upstream`)");
    }
    let dash = || "-".to_string();
    let rows = upstreams
        .iter()
        .map(|u| {
            let state = match (&u.state, &u.retry_in) {
                (Some(state), Some(retry)) => format!("{state} (retry in {retry})"),
                (Some(state), None) => state.clone(),
                (None, _) => dash(),
            };
            vec![
                u.name.clone(),
                u.url.clone(),
                u.packages.join(" "),
                state,
                u.failures.map_or_else(dash, |f| f.to_string()),
                u.cached_packages.to_string(),
                format!("{} in {}", bytes(u.cached_bytes), u.cached_tarballs),
                u.hit_ratio
                    .map_or_else(dash, |r| format!("{:.1}%", r * 100.0)),
            ]
        })
        .collect();
    out.table(
        &[
            "NAME",
            "URL",
            "PACKAGES",
            "STATE",
            "FAILURES",
            "CACHED",
            "TARBALLS",
            "HIT RATIO",
        ],
        rows,
    )
}
