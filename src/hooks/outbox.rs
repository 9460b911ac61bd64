//! The outbox: inside the transaction of a change, one event row holding the body its
//! deliveries share (all but `hookOwner`) and the ids of the hooks the change concerns; the
//! dispatcher fans it out into one delivery row per hook. A change that rolls back takes its
//! event with it; one that commits cannot lose it. This is the only work hooks add to a
//! request: a lookup of the matching hooks and, if there are any, the package's summary and
//! one insert per change. The summary's version list, which grows with the package, is left
//! to the dispatcher (see [`super::PendingVersions`]): it lists the versions live at the
//! event all the same.

use serde_json::{json, Value};

use super::{Hook, NewEvent};
use crate::accounts::auth::Identity;
use crate::error::Result;
use crate::store::{Db, PackageRecord};

/// The version of the payload format, as npm and cnpmcore send it.
const PAYLOAD_VERSION: &str = "1.0.0";

/// What happened to a package, as npm names hook events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    Publish {
        version: String,
        tag: Option<String>,
    },
    /// A version, or (`None`) the whole package.
    Unpublish {
        version: Option<String>,
    },
    DistTag {
        tag: String,
    },
    DistTagRm {
        tag: String,
    },
    Deprecated {
        version: String,
        message: String,
    },
    Undeprecated {
        version: String,
    },
    Owner {
        maintainer: String,
    },
    OwnerRm {
        maintainer: String,
    },
    Star {
        user: String,
    },
    Unstar {
        user: String,
    },
}

impl Change {
    pub fn event(&self) -> &'static str {
        match self {
            Change::Publish { .. } => "package:publish",
            Change::Unpublish { .. } => "package:unpublish",
            Change::DistTag { .. } => "package:dist-tag",
            Change::DistTagRm { .. } => "package:dist-tag-rm",
            Change::Deprecated { .. } => "package:deprecated",
            Change::Undeprecated { .. } => "package:undeprecated",
            Change::Owner { .. } => "package:owner",
            Change::OwnerRm { .. } => "package:owner-rm",
            Change::Star { .. } => "package:star",
            Change::Unstar { .. } => "package:unstar",
        }
    }

    /// The `change` object, with cnpmcore's field names.
    fn json(&self) -> Value {
        match self {
            Change::Publish { version, tag } => json!({ "version": version, "dist-tag": tag }),
            Change::Unpublish { version } => json!({ "version": version }),
            Change::DistTag { tag } | Change::DistTagRm { tag } => json!({ "dist-tag": tag }),
            Change::Deprecated { version, message } => {
                json!({ "version": version, "deprecated": message })
            }
            Change::Undeprecated { version } => json!({ "version": version, "deprecated": "" }),
            Change::Owner { maintainer } | Change::OwnerRm { maintainer } => {
                json!({ "maintainer": maintainer })
            }
            Change::Star { user } | Change::Unstar { user } => json!({ "user": user }),
        }
    }

    /// A maintainer the change removed: their owner hooks still hear of it.
    fn removed_owner(&self) -> Option<&str> {
        match self {
            Change::OwnerRm { maintainer } => Some(maintainer),
            _ => None,
        }
    }
}

pub(super) fn now_ms() -> i64 {
    let now = time::OffsetDateTime::now_utc();
    i64::try_from(now.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
}

/// Writes the events of `changes` to package `name`, which must exist. Call it inside the
/// change's `store.write`, after the change (so that the summary shows it). A hook whose
/// owner may no longer read a restricted package hears nothing of it. Answers how many
/// deliveries the events will make.
pub fn enqueue(db: &Db<'_>, name: &str, changes: &[Change]) -> Result<usize> {
    if changes.is_empty() {
        return Ok(0);
    }
    let Some(package) = db.package_by_name(name)? else {
        return Ok(0);
    };
    let scope = name.split_once('/').map(|(scope, _)| scope);
    let removed = changes.iter().find_map(Change::removed_owner);
    let hooks = db.hook_targets(package.id, name, scope, removed)?;
    if hooks.is_empty() {
        return Ok(0);
    }
    let mut readers = Vec::with_capacity(hooks.len());
    for (hook_id, owner_id) in hooks {
        if package.restricted && !owner_may_read(db, owner_id, &package)? {
            continue;
        }
        readers.push(hook_id);
    }
    if readers.is_empty() {
        return Ok(0);
    }
    let Some(summary) = db.hook_payload(package.id)? else {
        return Ok(0);
    };
    let payload = &summary.json;
    let hook_ids: Vec<&str> = readers.iter().map(String::as_str).collect();
    let now = crate::clock::now_iso();
    let ms = now_ms();
    for change in changes {
        // The payload is JSON text already: parsing it into a tree to write it out again
        // would undo what building it in SQL saved.
        let envelope = format!(
            r#"{{"event":{},"name":{},"type":"package","version":"{PAYLOAD_VERSION}","payload":{payload},"change":{},"time":{ms}}}"#,
            Value::from(change.event()),
            Value::from(package.name.as_str()),
            change.json(),
        );
        let event = NewEvent {
            event: change.event(),
            package: &package.name,
            envelope: &envelope,
            now: &now,
            now_ms: ms,
            versions: Some(summary.versions),
        };
        db.insert_hook_event(&event, &hook_ids)?;
    }
    Ok(changes.len() * hook_ids.len())
}

fn owner_may_read(db: &Db<'_>, owner_id: i64, package: &PackageRecord) -> Result<bool> {
    let Some(user) = db.user_by_id(owner_id)? else {
        return Ok(false);
    };
    let owner = Identity { user, token: None };
    match crate::access::require_read(db, Some(&owner), package.id, &package.name, true) {
        Ok(()) => Ok(true),
        Err(crate::Error::NotFound(_)) => Ok(false),
        Err(other) => Err(other),
    }
}

/// Writes a `ping` for one hook (`registry hook test`): the same envelope, with the hook as
/// its subject. Answers the delivery id.
pub fn enqueue_ping(db: &Db<'_>, hook: &Hook) -> Result<String> {
    let now = crate::clock::now_iso();
    let ms = now_ms();
    let envelope = json!({
        "event": "ping",
        "name": hook.name,
        "type": hook.kind.as_str(),
        "version": PAYLOAD_VERSION,
        "payload": { "hook": hook.id, "endpoint": hook.endpoint },
        "change": {},
        "time": ms,
    });
    let event = NewEvent {
        event: "ping",
        package: &hook.name,
        envelope: &envelope.to_string(),
        now: &now,
        now_ms: ms,
        versions: None,
    };
    // Fanned out with the events before it, so that its delivery takes its place after theirs.
    let event_id = db.insert_hook_event(&event, &[&hook.id])?;
    db.fan_out_hook_events()?;
    db.hook_delivery_id(event_id, &hook.id)?
        .ok_or_else(|| crate::Error::Storage("the ping's delivery was not written".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_have_npms_names_and_cnpmcores_change_fields() {
        let publish = Change::Publish {
            version: "1.0.0".into(),
            tag: Some("latest".into()),
        };
        assert_eq!(publish.event(), "package:publish");
        assert_eq!(
            publish.json(),
            json!({"version": "1.0.0", "dist-tag": "latest"})
        );
        assert_eq!(
            Change::DistTagRm { tag: "beta".into() }.json(),
            json!({"dist-tag": "beta"})
        );
        assert_eq!(
            Change::OwnerRm {
                maintainer: "bob".into()
            }
            .event(),
            "package:owner-rm"
        );
        assert_eq!(
            Change::Unpublish { version: None }.json(),
            json!({"version": null})
        );
    }
}
