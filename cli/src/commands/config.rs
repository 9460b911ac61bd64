//! `registry config show`: the effective configuration and where each value came from.

use registry_core::upstream::config::format_duration;
use serde_json::{json, Map, Value};

use crate::cli::{ConfigCommand, GlobalArgs};
use crate::output::Out;

pub fn run(global: &GlobalArgs, out: &Out, command: ConfigCommand) -> anyhow::Result<()> {
    match command {
        ConfigCommand::Show => show(global, out),
    }
}

fn show(global: &GlobalArgs, out: &Out) -> anyhow::Result<()> {
    let config = super::load_config(global, Default::default())?;
    let values: Vec<(&str, Value)> = vec![
        ("listen", json!(config.listen.to_string())),
        ("data_dir", json!(config.data_dir.display().to_string())),
        // Never the password: postgres://user:***@host/db.
        ("database_url", json!(config.database_url_redacted())),
        ("public_url", json!(config.public_url)),
        ("registration", json!(config.registration.to_string())),
        ("read_access", json!(config.read_access.to_string())),
        ("default_access", json!(config.default_access.as_str())),
        ("max_body_bytes", json!(config.max_body_bytes)),
        ("log_level", json!(config.log_level)),
        ("log_format", json!(config.log_format.to_string())),
        (
            "metrics_listen",
            json!(config.metrics_listen.map(|a| a.to_string())),
        ),
        (
            "trusted_proxies",
            json!(config
                .trusted_proxies
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()),
        ),
        ("count_downloads", json!(config.count_downloads)),
        ("download_flush_secs", json!(config.download_flush_secs)),
        ("max_json_depth", json!(config.max_json_depth)),
        ("max_header_bytes", json!(config.max_header_bytes)),
        (
            "max_versions_per_publish",
            json!(config.max_versions_per_publish),
        ),
        ("max_attachment_bytes", json!(config.max_attachment_bytes)),
        (
            "max_package_name_length",
            json!(config.max_package_name_length),
        ),
        (
            "auth_requests_per_second",
            json!(config.auth_requests_per_second),
        ),
        ("auth_burst", json!(config.auth_burst)),
        ("hooks_allow_private", json!(config.hooks_allow_private)),
        ("hooks_per_user", json!(config.hooks_per_user)),
        ("hooks_retry_base_ms", json!(config.hooks_retry_base_ms)),
        ("hooks_retry_cap_secs", json!(config.hooks_retry_cap_secs)),
        (
            "header_timeout",
            json!(format_duration(config.header_timeout)),
        ),
        ("idle_timeout", json!(format_duration(config.idle_timeout))),
        ("max_connections", json!(config.max_connections)),
        ("workers", json!(config.worker_threads())),
        (
            "tls_cert",
            json!(config.tls_cert.as_ref().map(|p| p.display().to_string())),
        ),
        (
            "tls_key",
            json!(config.tls_key.as_ref().map(|p| p.display().to_string())),
        ),
        (
            "private",
            json!(config
                .private
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()),
        ),
        (
            "upstreams",
            json!(config
                .upstreams
                .iter()
                .map(|u| format!("{} {}", u.name, u.url))
                .collect::<Vec<_>>()),
        ),
        (
            "binaries",
            json!(config
                .binaries
                .iter()
                .map(|b| format!("{} {}", b.name, b.dist_url))
                .collect::<Vec<_>>()),
        ),
    ];
    let source = |key: &str| {
        config
            .sources
            .get(key)
            .cloned()
            .unwrap_or_else(|| "default".into())
    };
    if out.json {
        let mut map = Map::new();
        for (key, value) in &values {
            map.insert(
                (*key).into(),
                json!({ "value": value, "source": source(key) }),
            );
        }
        return out.json(&map);
    }
    let rows = values
        .iter()
        .map(|(key, value)| {
            let shown = match value {
                Value::String(s) => s.clone(),
                Value::Null => "-".into(),
                Value::Array(list) if list.is_empty() => "-".into(),
                Value::Array(list) => list
                    .iter()
                    .map(|v| v.as_str().unwrap_or_default())
                    .collect::<Vec<_>>()
                    .join(", "),
                other => other.to_string(),
            };
            vec![(*key).to_string(), shown, source(key)]
        })
        .collect();
    out.table(&["KEY", "VALUE", "SOURCE"], rows)
}
