//! Hooks and their outbox: the hook records, the delivery rows written in the transaction of
//! the change they report, the claim that leases due rows to the dispatcher, and the record
//! of each attempt.

use rusqlite::OptionalExtension;

use super::sql::Dialect;
use super::Db;
use crate::error::Result;
pub use crate::hooks::{
    Delivery, DueDelivery, Hook, HookType, NewEvent, NewHook, PayloadSummary, PendingVersions,
    UnlistedVersions,
};

/// Finished deliveries kept per hook for the deliveries API; older ones are pruned.
const KEPT_DELIVERIES: i64 = 100;

/// The rows `d` a hook may send: the oldest pending row of each hook. Driven from the hooks
/// (one index seek each, in the queue's index by hook), not from the pending rows,
/// so that a backlog behind a failing endpoint does not make every look at the queue slower.
const HEADS: &str = "hooks h JOIN hook_queue d ON d.id = \
                     (SELECT min(e.id) FROM hook_queue e WHERE e.hook_id = h.id)";

const HOOK_COLUMNS: &str = "h.id, h.owner_id, u.name, h.type, h.name, h.endpoint, h.secret, \
                            h.created_at, h.updated_at, h.delivered, h.last_delivery, \
                            h.last_response_code";

fn hook_of(row: &super::sql::Row<'_>) -> rusqlite::Result<Hook> {
    let kind: String = row.get(3)?;
    Ok(Hook {
        id: row.get(0)?,
        owner_id: row.get(1)?,
        owner: row.get(2)?,
        // The CHECK constraint allows nothing else.
        kind: HookType::parse(&kind).unwrap_or(HookType::Package),
        name: row.get(4)?,
        endpoint: row.get(5)?,
        secret: row.get(6)?,
        created_at: row.get(7)?,
        updated_at: row.get(8)?,
        delivered: row.get(9)?,
        last_delivery: row.get(10)?,
        last_response_code: row
            .get::<_, Option<i64>>(11)?
            .map(|c| c.clamp(0, 999) as u16),
    })
}

const DELIVERY_COLUMNS: &str = "delivery_id, event, package, state, attempts, \
                                response_code, duration_ms, error, created_at, \
                                last_attempt_at, next_attempt_at";

fn delivery_of(row: &super::sql::Row<'_>) -> rusqlite::Result<Delivery> {
    Ok(Delivery {
        id: row.get(0)?,
        event: row.get(1)?,
        package: row.get(2)?,
        state: row.get(3)?,
        attempts: row.get::<_, i64>(4)?.max(0) as u64,
        response_code: row
            .get::<_, Option<i64>>(5)?
            .map(|c| c.clamp(0, 999) as u16),
        duration_ms: row.get::<_, Option<i64>>(6)?.map(|d| d.max(0) as u64),
        error: row.get(7)?,
        created_at: row.get(8)?,
        last_attempt_at: row.get(9)?,
        next_attempt_ms: row.get(10)?,
    })
}

impl Db<'_> {
    pub fn insert_hook(&self, hook: &NewHook<'_>) -> Result<()> {
        self.execute(
            "INSERT INTO hooks (id, owner_id, type, name, endpoint, secret, created_at, \
             updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7)",
            (
                hook.id,
                hook.owner_id,
                hook.kind.as_str(),
                hook.name,
                hook.endpoint,
                hook.secret,
                hook.now,
            ),
        )?;
        Ok(())
    }

    pub fn hook(&self, id: &str) -> Result<Option<Hook>> {
        let mut stmt = self.conn.prepare_cached(&format!(
            "SELECT {HOOK_COLUMNS} FROM hooks h JOIN users u ON u.id = h.owner_id WHERE h.id = ?1"
        ))?;
        Ok(stmt.query_row([id], hook_of).optional()?)
    }

    pub fn count_hooks_of(&self, owner_id: i64) -> Result<u64> {
        let count: i64 = self.query_row(
            "SELECT count(*) FROM hooks WHERE owner_id = ?1",
            [owner_id],
            |row| row.get(0),
        )?;
        Ok(count.max(0) as u64)
    }

    /// A page of hooks, oldest first, and how many there are in all: of one owner (`None`:
    /// everyone's), of one target name if given.
    pub fn list_hooks(
        &self,
        owner_id: Option<i64>,
        name: Option<&str>,
        limit: u64,
        offset: u64,
    ) -> Result<(Vec<Hook>, u64)> {
        let filter = "(CAST(?1 AS BIGINT) IS NULL OR h.owner_id = ?1) \
                      AND (CAST(?2 AS TEXT) IS NULL OR h.name = ?2)";
        let total: i64 = self.query_row(
            &format!("SELECT count(*) FROM hooks h WHERE {filter}"),
            (owner_id, name),
            |row| row.get(0),
        )?;
        let mut stmt = self.conn.prepare_cached(&format!(
            "SELECT {HOOK_COLUMNS} FROM hooks h JOIN users u ON u.id = h.owner_id \
             WHERE {filter} ORDER BY h.created_at, h.id LIMIT ?3 OFFSET ?4"
        ))?;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let offset = i64::try_from(offset).unwrap_or(i64::MAX);
        let rows = stmt.query_map((owner_id, name, limit, offset), hook_of)?;
        Ok((rows.collect::<rusqlite::Result<_>>()?, total.max(0) as u64))
    }

    pub fn update_hook(&self, id: &str, endpoint: &str, secret: &str, now: &str) -> Result<()> {
        self.execute(
            "UPDATE hooks SET endpoint = ?2, secret = ?3, updated_at = ?4 WHERE id = ?1",
            (id, endpoint, secret, now),
        )?;
        Ok(())
    }

    /// Deletes a hook and, with it, its deliveries (pending ones are never sent).
    pub fn delete_hook(&self, id: &str) -> Result<()> {
        self.execute("DELETE FROM hooks WHERE id = ?1", [id])?;
        Ok(())
    }

    /// The hooks a change of package `package_id` (named `name`, of `scope` like `@foo`)
    /// concerns, as (id, owner's user id): hooks on the name, on its scope, and on any of its
    /// maintainers or on `extra_owner` (a maintainer the change just removed). Ids only: it
    /// runs in every change's transaction, and the rest of a hook is read when it is sent.
    pub fn hook_targets(
        &self,
        package_id: i64,
        name: &str,
        scope: Option<&str>,
        extra_owner: Option<&str>,
    ) -> Result<Vec<(String, i64)>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT h.id, h.owner_id FROM hooks h \
             WHERE (h.type = 'package' AND h.name = ?2) \
                OR (h.type = 'scope' AND h.name = ?3) \
                OR (h.type = 'owner' AND (h.name = ?4 OR h.name IN ( \
                    SELECT mu.name FROM maintainers m JOIN users mu ON mu.id = m.user_id \
                    WHERE m.package_id = ?1))) \
             ORDER BY h.id",
        )?;
        let rows = stmt.query_map((package_id, name, scope, extra_owner), |row| {
            Ok((row.get(0)?, row.get(1)?))
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// The package as a hook payload summarises it, as JSON text: name, dist-tags, versions
    /// (an empty list, filled in before sending: see [`PendingVersions`]), maintainers, creation
    /// and modification times, and whether it is unpublished. Built by SQLite in one
    /// statement; the version list, which grows with every publish, was most of what a hook
    /// cost a publish even so. The dist-tags are aggregated from an ordered subquery, which
    /// walks the index in that order, rather than with an aggregate's own ORDER BY, which
    /// sorts in a temporary B-tree.
    pub fn hook_payload(&self, package_id: i64) -> Result<Option<PayloadSummary>> {
        Ok(self
            .query_row(
                self.conn.pick(
                    "SELECT json_object( \
                       'name', p.name, \
                       'dist-tags', (SELECT json_group_object(tag, version) FROM \
                                     (SELECT t.tag, t.version FROM dist_tags t \
                                      WHERE t.package_id = p.id ORDER BY t.tag)), \
                       'versions', json_array(), \
                       'maintainers', (SELECT json_group_array(json_object('name', u.name) \
                                                               ORDER BY u.name) \
                                       FROM maintainers m JOIN users u ON u.id = m.user_id \
                                       WHERE m.package_id = p.id), \
                       'time', json_object('created', p.created_at, 'modified', p.modified_at), \
                       'unpublished', json(iif(p.unpublished_at IS NULL, 'false', 'true'))), \
                       (SELECT coalesce(max(v.id), 0) FROM versions v WHERE v.package_id = p.id) \
                     FROM packages p WHERE p.id = ?1",
                    "SELECT CAST(json_build_object( \
                       'name', p.name, \
                       'dist-tags', (SELECT coalesce(json_object_agg(t.tag, t.version \
                                                                     ORDER BY t.tag), '{}') \
                                     FROM dist_tags t WHERE t.package_id = p.id), \
                       'versions', json_build_array(), \
                       'maintainers', (SELECT coalesce(json_agg(json_build_object('name', u.name) \
                                                                ORDER BY u.name), '[]') \
                                       FROM maintainers m JOIN users u ON u.id = m.user_id \
                                       WHERE m.package_id = p.id), \
                       'time', json_build_object('created', p.created_at, \
                                                 'modified', p.modified_at), \
                       'unpublished', p.unpublished_at IS NOT NULL) AS TEXT), \
                       (SELECT coalesce(max(v.id), 0) FROM versions v WHERE v.package_id = p.id) \
                     FROM packages p WHERE p.id = ?1",
                ),
                [package_id],
                |row| {
                    Ok(PayloadSummary {
                        json: row.get(0)?,
                        versions: PendingVersions {
                            package_id,
                            through: row.get(1)?,
                        },
                    })
                },
            )
            .optional()?)
    }

    /// Stores an event and the hooks it is for, to be fanned out into deliveries by
    /// [`Db::fan_out_hook_events`]; answers the event's id.
    pub fn insert_hook_event(&self, event: &NewEvent<'_>, hook_ids: &[&str]) -> Result<i64> {
        let id = self.insert_returning(
            "INSERT INTO hook_events (event, package, envelope, created_at, created_ms, \
             package_id, versions_through) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) RETURNING id",
            (
                event.event,
                event.package,
                event.envelope,
                event.now,
                event.now_ms,
                event.versions.map(|v| v.package_id),
                event.versions.map(|v| v.through),
            ),
        )?;
        if !hook_ids.is_empty() {
            let hooks = serde_json::Value::from(hook_ids.to_vec()).to_string();
            self.conn
                .prepare_cached("INSERT INTO hook_event_targets (event_id, hooks) VALUES (?1, ?2)")?
                .execute((id, hooks))?;
        }
        Ok(id)
    }

    /// The id of the delivery an event made to a hook, once fanned out (and not yet sent).
    pub fn hook_delivery_id(&self, event_id: i64, hook_id: &str) -> Result<Option<String>> {
        Ok(self
            .conn
            .prepare_cached(
                "SELECT delivery_id FROM hook_queue WHERE event_id = ?1 AND hook_id = ?2",
            )?
            .query_row((event_id, hook_id), |row| row.get(0))
            .optional()?)
    }

    /// Whether events wait to be fanned out.
    pub fn hook_events_waiting(&self) -> Result<bool> {
        Ok(self
            .conn
            .prepare_cached("SELECT EXISTS (SELECT 1 FROM hook_event_targets)")?
            .query_row([], |row| row.get(0))?)
    }

    /// Turns stored events into one pending delivery per hook that still exists, oldest event
    /// first (so that a hook's deliveries keep the order of its events); an event none of
    /// whose hooks is left is dropped.
    pub fn fan_out_hook_events(&self) -> Result<()> {
        let events: Vec<i64> = self
            .conn
            .prepare_cached("SELECT event_id FROM hook_event_targets ORDER BY event_id")?
            .query_map([], |row| row.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        let mut fan_out = self.conn.prepare_cached(self.conn.pick(
            "INSERT INTO hook_queue (delivery_id, hook_id, event, package, \
             next_attempt_at, created_at, created_ms, event_id) \
             SELECT lower(hex(randomblob(16))), h.id, e.event, e.package, \
                    e.created_ms, e.created_at, e.created_ms, e.id \
             FROM hook_event_targets t JOIN hook_events e ON e.id = t.event_id, \
                  json_each(t.hooks) j JOIN hooks h ON h.id = j.value \
             WHERE t.event_id = ?1 ORDER BY j.key",
            "INSERT INTO hook_queue (delivery_id, hook_id, event, package, \
             next_attempt_at, created_at, created_ms, event_id) \
             SELECT replace(CAST(gen_random_uuid() AS TEXT), '-', ''), h.id, e.event, \
                    e.package, e.created_ms, e.created_at, e.created_ms, e.id \
             FROM hook_event_targets t JOIN hook_events e ON e.id = t.event_id \
             CROSS JOIN LATERAL json_array_elements_text(CAST(t.hooks AS json)) \
               WITH ORDINALITY j(value, key) \
             JOIN hooks h ON h.id = j.value \
             WHERE t.event_id = ?1 ORDER BY j.key",
        ))?;
        let mut done = self
            .conn
            .prepare_cached("DELETE FROM hook_event_targets WHERE event_id = ?1")?;
        let mut drop_event = self
            .conn
            .prepare_cached("DELETE FROM hook_events WHERE id = ?1")?;
        for &event in &events {
            let written = fan_out.execute([event])?;
            done.execute([event])?;
            if written == 0 {
                drop_event.execute([event])?;
            }
        }
        Ok(())
    }

    /// `envelope` with its payload's version list filled in: the versions up to the event's
    /// newest that were live when it was written (those unpublished since have a `deleted_at`
    /// after the event's time; both are in milliseconds, so a version unpublished in the
    /// millisecond of an earlier event is left out of its list). The ordered subquery walks
    /// the versions' covering index in publication order. A reader's work: it holds no lock.
    pub fn list_payload_versions(
        &self,
        envelope: &str,
        unlisted: &UnlistedVersions,
    ) -> Result<String> {
        if self.conn.dialect() == Dialect::Postgres {
            return self.list_payload_versions_in_rust(envelope, unlisted);
        }
        Ok(self.query_row(
            "SELECT CASE WHEN json_valid(?1) THEN json_set(?1, '$.payload.versions', \
               json((SELECT json_group_array(version) FROM \
                     (SELECT v.version FROM versions v \
                      WHERE v.package_id = ?2 AND v.id <= ?3 \
                        AND (v.deleted_at IS NULL OR v.deleted_at > ?4) \
                      ORDER BY v.id)))) ELSE ?1 END",
            (
                envelope,
                unlisted.versions.package_id,
                unlisted.versions.through,
                &unlisted.as_of,
            ),
            |row| row.get(0),
        )?)
    }

    /// [`Db::list_payload_versions`] where the database has no `json_set` that keeps the
    /// keys' order (PostgreSQL's `jsonb_set` sorts them, and npm's payload has an order).
    fn list_payload_versions_in_rust(
        &self,
        envelope: &str,
        unlisted: &UnlistedVersions,
    ) -> Result<String> {
        let versions = self
            .conn
            .prepare_cached(
                "SELECT v.version FROM versions v \
                 WHERE v.package_id = ?1 AND v.id <= ?2 \
                   AND (v.deleted_at IS NULL OR v.deleted_at > ?3) \
                 ORDER BY v.id",
            )?
            .query_map(
                (
                    unlisted.versions.package_id,
                    unlisted.versions.through,
                    &unlisted.as_of,
                ),
                |row| row.get::<_, String>(0),
            )?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        let Ok(mut doc) = serde_json::from_str::<serde_json::Value>(envelope) else {
            return Ok(envelope.to_string());
        };
        if let Some(payload) = doc.get_mut("payload").and_then(|p| p.as_object_mut()) {
            payload.insert("versions".into(), serde_json::Value::from(versions));
        }
        Ok(doc.to_string())
    }

    /// Whether a delivery can be claimed at `now_ms`, or an event is to be fanned out (a
    /// cheap read before a claim).
    pub fn hook_delivery_due(&self, now_ms: i64) -> Result<bool> {
        Ok(self
            .conn
            .prepare_cached(&format!(
                "SELECT EXISTS (SELECT 1 FROM hook_event_targets) \
                 OR EXISTS (SELECT 1 FROM {HEADS} WHERE d.next_attempt_at <= ?1)"
            ))?
            .query_row([now_ms], |row| row.get(0))?)
    }

    /// When the next claimable delivery is due (or a lease ends), if there is one. Rows
    /// queued behind an earlier one of their hook do not count: they wait for it.
    pub fn next_hook_delivery_ms(&self) -> Result<Option<i64>> {
        Ok(self
            .conn
            .prepare_cached(&format!(
                "SELECT CASE WHEN EXISTS (SELECT 1 FROM hook_event_targets) THEN 0 \
                 ELSE (SELECT min(d.next_attempt_at) FROM {HEADS}) END"
            ))?
            .query_row([], |row| row.get(0))?)
    }

    /// Leases the due deliveries of up to `hooks` hooks until `lease_until_ms`: for each hook
    /// whose oldest pending delivery is due, that one and the next up to `per_hook` in all, so
    /// that a hook's events go out in order and a burst of them takes one claim. Counts the
    /// attempt. Runs on the writer, so two dispatchers never hold the same row; a lease that
    /// runs out (the process died) makes the rows due again. Answers them by hook, each
    /// hook's oldest first.
    pub fn claim_hook_deliveries(
        &self,
        now_ms: i64,
        lease_until_ms: i64,
        hooks: usize,
        per_hook: usize,
        now: &str,
    ) -> Result<Vec<DueDelivery>> {
        self.fan_out_hook_events()?;
        // Rows behind a hook's head are never leased on their own, so they are all due.
        let mut claim = self.conn.prepare_cached(&format!(
            "WITH heads(hook) AS (SELECT h.id FROM {HEADS} WHERE d.next_attempt_at <= ?1 \
                                  ORDER BY d.next_attempt_at, d.id LIMIT ?3) \
             UPDATE hook_queue SET next_attempt_at = ?2, attempts = attempts + 1, \
             last_attempt_at = ?4 \
             WHERE id IN (SELECT q.id FROM heads JOIN hook_queue q ON q.id IN \
                          (SELECT p.id FROM hook_queue p WHERE p.hook_id = heads.hook \
                           ORDER BY p.id LIMIT ?5)) \
             RETURNING id, delivery_id, hook_id, event, attempts, created_ms"
        ))?;
        let hooks = i64::try_from(hooks).unwrap_or(i64::MAX);
        let per_hook = i64::try_from(per_hook).unwrap_or(i64::MAX);
        let mut claimed = claim
            .query_map((now_ms, lease_until_ms, hooks, now, per_hook), |row| {
                Ok((
                    row.get::<_, i64>(0)?,
                    row.get::<_, String>(1)?,
                    row.get::<_, String>(2)?,
                    row.get::<_, String>(3)?,
                    row.get::<_, i64>(4)?,
                    row.get::<_, i64>(5)?,
                ))
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        claimed.sort_by(|a, b| (&a.2, a.0).cmp(&(&b.2, b.0)));
        let mut target = self.conn.prepare_cached(
            "SELECT h.endpoint, h.secret, u.name, e.envelope, e.id, e.package_id, \
             e.versions_through, e.created_at FROM hooks h \
             JOIN users u ON u.id = h.owner_id, hook_queue d \
             JOIN hook_events e ON e.id = d.event_id WHERE h.id = ?1 AND d.id = ?2",
        )?;
        let mut due = Vec::with_capacity(claimed.len());
        for (row_id, id, hook_id, event, attempts, created_ms) in claimed {
            let (endpoint, secret, owner, envelope, unlisted) =
                target.query_row((&hook_id, row_id), |row| {
                    let unlisted = match (row.get(5)?, row.get(6)?) {
                        (Some(package_id), Some(through)) => Some(UnlistedVersions {
                            event_id: row.get(4)?,
                            versions: PendingVersions {
                                package_id,
                                through,
                            },
                            as_of: row.get(7)?,
                        }),
                        _ => None,
                    };
                    Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?, unlisted))
                })?;
            due.push(DueDelivery {
                row_id,
                id,
                hook_id,
                event,
                envelope,
                owner,
                endpoint,
                secret,
                attempts: attempts.max(0) as u64,
                created_ms,
                unlisted,
            });
        }
        Ok(due)
    }

    /// Records an attempt. `state` is `delivered` or `failed` (given up), which moves the
    /// delivery from the queue to the log, or `pending` (retried at `next_attempt_ms`). A
    /// delivered one marks its hook delivered; every attempt leaves its response code on the
    /// hook.
    #[allow(clippy::too_many_arguments)]
    pub fn record_hook_attempt(
        &self,
        row_id: i64,
        hook_id: &str,
        state: &str,
        next_attempt_ms: i64,
        response_code: Option<u16>,
        duration_ms: u64,
        error: Option<&str>,
        now: &str,
    ) -> Result<()> {
        let duration = i64::try_from(duration_ms).unwrap_or(i64::MAX);
        if state == "pending" {
            self.conn
                .prepare_cached(
                    "UPDATE hook_queue SET next_attempt_at = ?2, response_code = ?3, \
                     duration_ms = ?4, error = ?5 WHERE id = ?1",
                )?
                .execute((row_id, next_attempt_ms, response_code, duration, error))?;
        } else {
            self.conn
                .prepare_cached(
                    "INSERT INTO hook_delivery_log (hook_id, id, delivery_id, event, package, \
                     state, attempts, response_code, duration_ms, error, created_at, \
                     last_attempt_at) \
                     SELECT hook_id, id, delivery_id, event, package, ?2, attempts, ?3, ?4, ?5, \
                            created_at, last_attempt_at FROM hook_queue WHERE id = ?1",
                )?
                .execute((row_id, state, response_code, duration, error))?;
            self.conn
                .prepare_cached("DELETE FROM hook_queue WHERE id = ?1")?
                .execute([row_id])?;
        }
        if state == "delivered" {
            self.conn
                .prepare_cached(
                    "UPDATE hooks SET delivered = 1, last_delivery = ?2, \
                     last_response_code = ?3 WHERE id = ?1",
                )?
                .execute((hook_id, now, response_code))?;
        } else {
            self.conn
                .prepare_cached("UPDATE hooks SET last_response_code = ?2 WHERE id = ?1")?
                .execute((hook_id, response_code))?;
        }
        Ok(())
    }

    /// Hands back a leased delivery that was not sent (an earlier one of its hook failed, or
    /// its lease would have run out first): due at once, its attempt not counted.
    pub fn release_hook_delivery(&self, row_id: i64, now_ms: i64) -> Result<()> {
        self.conn
            .prepare_cached(
                "UPDATE hook_queue SET next_attempt_at = ?2, attempts = attempts - 1, \
                 last_attempt_at = CASE WHEN attempts <= 1 THEN NULL ELSE last_attempt_at END \
                 WHERE id = ?1",
            )?
            .execute((row_id, now_ms))?;
        Ok(())
    }

    /// Prunes a hook's finished deliveries to the latest [`KEPT_DELIVERIES`].
    pub fn prune_hook_deliveries(&self, hook_id: &str) -> Result<()> {
        self.conn
            .prepare_cached(
                "DELETE FROM hook_delivery_log WHERE hook_id = ?1 \
                 AND id <= (SELECT id FROM hook_delivery_log WHERE hook_id = ?1 \
                 ORDER BY id DESC LIMIT 1 OFFSET ?2)",
            )?
            .execute((hook_id, KEPT_DELIVERIES))?;
        Ok(())
    }

    /// A hook's most recent deliveries, pending and finished, newest first.
    pub fn hook_deliveries(&self, hook_id: &str, limit: u64) -> Result<Vec<Delivery>> {
        let mut stmt = self.conn.prepare_cached(&format!(
            "SELECT {DELIVERY_COLUMNS} FROM ( \
               SELECT id, delivery_id, event, package, 'pending' AS state, attempts, \
                      response_code, duration_ms, error, created_at, last_attempt_at, \
                      next_attempt_at FROM hook_queue WHERE hook_id = ?1 \
               UNION ALL \
               SELECT id, delivery_id, event, package, state, attempts, response_code, \
                      duration_ms, error, created_at, last_attempt_at, 0 \
               FROM hook_delivery_log WHERE hook_id = ?1) d \
             ORDER BY id DESC LIMIT ?2"
        ))?;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = stmt.query_map((hook_id, limit), delivery_of)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }
}

#[cfg(test)]
mod tests {
    use super::super::{sqlite::schema, Store};
    use crate::error::Result;
    use crate::hooks::NewEvent;

    const ALICE_AND_HER_HOOK: &str =
        "INSERT INTO users (id, name, email, password_hash, created_at, updated_at) \
         VALUES (1, 'alice', 'a@example.com', 'x', 'x', 'x');
         INSERT INTO hooks (id, owner_id, type, name, endpoint, secret, created_at, \
         updated_at) VALUES ('h1', 1, 'package', 'p', 'http://127.0.0.1:1/', 's', 'x', 'x');";

    const HER_SECOND_HOOK: &str =
        "INSERT INTO hooks (id, owner_id, type, name, endpoint, secret, created_at, \
         updated_at) VALUES ('h2', 1, 'package', 'p', 'http://127.0.0.1:2/', 't', 'x', 'x');";

    /// A publish event number `n` for `hooks`, written at time 0.
    fn insert_event(db: &crate::store::Db<'_>, n: i64, hooks: &[&str]) -> Result<i64> {
        let envelope = format!(r#"{{"event":"package:publish","n":{n}}}"#);
        let event = NewEvent {
            event: "package:publish",
            package: "p",
            envelope: &envelope,
            now: "now",
            now_ms: 0,
            versions: None,
        };
        db.insert_hook_event(&event, hooks)
    }

    fn parsed(body: &str) -> Result<serde_json::Value> {
        serde_json::from_str(body).map_err(|e| crate::Error::Storage(e.to_string()))
    }

    fn body_of(store: &Store) -> Result<serde_json::Value> {
        let due = store.write(|db| db.claim_hook_deliveries(1, 2, 10, 1, "now"))?;
        assert_eq!(due.len(), 1);
        assert_eq!(due[0].id, "d1");
        assert_eq!(due[0].endpoint, "http://127.0.0.1:1/");
        parsed(&due[0].body())
    }

    #[test]
    fn pending_deliveries_keep_their_bodies_across_both_moves_of_bodies() -> Result<()> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("r.db");
        {
            let mut conn = rusqlite::Connection::open(&path)?;
            schema::migrate_before(&mut conn, "CREATE TABLE hook_delivery_bodies")?;
            conn.execute_batch(ALICE_AND_HER_HOOK)?;
            conn.execute_batch(
                "INSERT INTO hook_deliveries (delivery_id, hook_id, event, package, body, state, \
                 next_attempt_at, created_at, created_ms) VALUES ('d1', 'h1', 'package:publish', \
                 'p', '{\"sent\":1,\"hookOwner\":{\"username\":\"alice\"}}', 'pending', 0, 'x', 0);",
            )?;
        }
        let store = Store::open(&path)?;
        assert_eq!(
            body_of(&store)?,
            serde_json::json!({"sent": 1, "hookOwner": {"username": "alice"}})
        );
        Ok(())
    }

    #[test]
    fn finished_deliveries_move_to_the_log_and_new_ones_list_after_them() -> Result<()> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("r.db");
        {
            let mut conn = rusqlite::Connection::open(&path)?;
            schema::migrate_before(&mut conn, "CREATE TABLE hook_delivery_log")?;
            conn.execute_batch(ALICE_AND_HER_HOOK)?;
            conn.execute_batch(
                "INSERT INTO hook_events (id, event, package, envelope, created_at, created_ms) \
                 VALUES (1, 'package:publish', 'p', '{\"n\":1}', 'x', 0), \
                        (2, 'package:publish', 'p', '{\"n\":2}', 'x', 0);
                 INSERT INTO hook_deliveries (id, delivery_id, hook_id, event, package, state, \
                 attempts, next_attempt_at, response_code, created_at, created_ms, event_id) \
                 VALUES (7, 'sent', 'h1', 'package:publish', 'p', 'delivered', 1, 0, 200, 'x', 0, 1), \
                        (4, 'waits', 'h1', 'package:publish', 'p', 'pending', 2, 0, 500, 'x', 0, 2);",
            )?;
        }
        let store = Store::open(&path)?;
        let listed = |store: &Store| -> Result<Vec<(String, String)>> {
            Ok(store
                .read(|db| db.hook_deliveries("h1", 10))?
                .into_iter()
                .map(|d| (d.id, d.state))
                .collect())
        };
        assert_eq!(
            listed(&store)?,
            [
                ("sent".into(), "delivered".into()),
                ("waits".into(), "pending".into())
            ]
        );
        let events: i64 = store.read(|db| {
            Ok(db
                .conn
                .query_row("SELECT count(*) FROM hook_events", [], |r| r.get(0))?)
        })?;
        assert_eq!(events, 1, "only the pending delivery's event is kept");

        // A new delivery lists before both, and the one waiting is still sent first.
        store.write(|db| {
            insert_event(db, 3, &["h1"])?;
            db.fan_out_hook_events()
        })?;
        let ids: Vec<String> = listed(&store)?.into_iter().map(|(id, _)| id).collect();
        assert_eq!(ids.len(), 3);
        assert_eq!(&ids[1..], ["sent", "waits"]);
        let due = store.write(|db| db.claim_hook_deliveries(1, 2, 10, 1, "now"))?;
        assert_eq!(due.len(), 1);
        assert_eq!(due[0].id, "waits");
        assert_eq!(due[0].attempts, 3);

        // Delivered, it moves to the log, and its event goes with it.
        store.write(|db| {
            db.record_hook_attempt(
                due[0].row_id,
                "h1",
                "delivered",
                1,
                Some(204),
                3,
                None,
                "now",
            )
        })?;
        let states: Vec<String> = listed(&store)?.into_iter().map(|(_, s)| s).collect();
        assert_eq!(states, ["pending", "delivered", "delivered"]);
        Ok(())
    }

    #[test]
    fn an_event_is_fanned_out_in_order_to_the_hooks_left_and_goes_with_its_last_delivery(
    ) -> Result<()> {
        let dir = tempfile::tempdir()?;
        let store = Store::open(&dir.path().join("r.db"))?;
        let events = |store: &Store| -> Result<(i64, i64, i64)> {
            store.read(|db| {
                Ok(db.conn.query_row(
                    "SELECT (SELECT count(*) FROM hook_events), \
                     (SELECT count(*) FROM hook_event_targets), \
                     (SELECT count(*) FROM hook_queue)",
                    [],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
                )?)
            })
        };
        store.write(|db| {
            db.conn.execute_batch(ALICE_AND_HER_HOOK)?;
            db.conn.execute_batch(HER_SECOND_HOOK)?;
            for (n, hooks) in [
                (1, vec!["h1", "h2"]),
                (2, vec!["h2", "h1"]),
                (3, vec!["gone"]),
            ] {
                insert_event(db, n, &hooks)?;
            }
            Ok(())
        })?;
        assert_eq!(
            events(&store)?,
            (3, 3, 0),
            "nothing is fanned out on the write"
        );
        assert!(store.read(|db| db.hook_delivery_due(1))?);
        assert_eq!(store.read(|db| db.next_hook_delivery_ms())?, Some(0));

        // Each hook gets its oldest event first; the event whose hook is gone is dropped.
        let due = store.write(|db| db.claim_hook_deliveries(1, 2, 10, 1, "now"))?;
        assert_eq!(events(&store)?, (2, 0, 4));
        let mut sent: Vec<(String, serde_json::Value)> = due
            .iter()
            .map(|d| Ok((d.hook_id.clone(), parsed(&d.body())?)))
            .collect::<Result<_>>()?;
        sent.sort_by(|a, b| a.0.cmp(&b.0));
        let body = |n: i64| {
            serde_json::json!({"event": "package:publish", "n": n,
                               "hookOwner": {"username": "alice"}})
        };
        assert_eq!(sent, vec![("h1".into(), body(1)), ("h2".into(), body(1))]);

        store.write(|db| db.delete_hook("h1"))?;
        assert_eq!(
            events(&store)?,
            (2, 0, 2),
            "h2's deliveries still need both events"
        );
        store.write(|db| db.delete_hook("h2"))?;
        assert_eq!(events(&store)?, (0, 0, 0));
        Ok(())
    }

    #[test]
    fn a_payload_lists_the_versions_live_when_its_event_was_written() -> Result<()> {
        let dir = tempfile::tempdir()?;
        let store = Store::open(&dir.path().join("r.db"))?;
        let version = |db: &crate::store::Db<'_>, v: &str| -> Result<()> {
            db.conn.execute(
                "INSERT INTO versions (package_id, version, manifest, tarball_sha512, \
                 tarball_sha1, tarball_size, published_at) VALUES (1, ?1, '{}', '', '', 0, 'x')",
                [v],
            )?;
            Ok(())
        };
        let unpublish = |db: &crate::store::Db<'_>, v: &str, at: &str| -> Result<()> {
            db.conn.execute(
                "UPDATE versions SET deleted_at = ?2 WHERE version = ?1",
                (v, at),
            )?;
            Ok(())
        };
        store.write(|db| {
            db.conn.execute_batch(ALICE_AND_HER_HOOK)?;
            db.conn.execute_batch(
                "INSERT INTO packages (id, name, created_at, modified_at) VALUES (1, 'p', 'x', 'x')",
            )?;
            for v in ["1.0.0", "1.1.0", "1.2.0"] {
                version(db, v)?;
            }
            unpublish(db, "1.0.0", "2026-01-01T00:00:00.000Z")?;
            let summary = db
                .hook_payload(1)?
                .ok_or_else(|| crate::Error::Storage("no summary".into()))?;
            assert_eq!(parsed(&summary.json)?["versions"], serde_json::json!([]));
            let envelope = format!(r#"{{"event":"package:publish","payload":{}}}"#, summary.json);
            db.insert_hook_event(
                &NewEvent {
                    event: "package:publish",
                    package: "p",
                    envelope: &envelope,
                    now: "2026-01-01T00:00:00.000Z",
                    now_ms: 0,
                    versions: Some(summary.versions),
                },
                &["h1"],
            )?;
            // After the event, before it is claimed: one more version, and one less.
            version(db, "2.0.0")?;
            unpublish(db, "1.1.0", "2026-01-01T00:00:01.000Z")?;
            Ok(())
        })?;
        let mut due = store.write(|db| db.claim_hook_deliveries(1, 2, 10, 1, "now"))?;
        assert_eq!(due.len(), 1);
        assert_eq!(
            parsed(&due[0].body())?["payload"]["versions"],
            serde_json::json!([]),
            "listed by the dispatcher, not in the claim"
        );
        let unlisted = due[0]
            .unlisted
            .clone()
            .ok_or_else(|| crate::Error::Storage("the claim lost the versions".into()))?;
        due[0].envelope = store.read(|db| db.list_payload_versions(&due[0].envelope, &unlisted))?;
        let body = parsed(&due[0].body())?;
        assert_eq!(
            body["payload"]["versions"],
            serde_json::json!(["1.1.0", "1.2.0"])
        );
        assert_eq!(body["payload"]["name"], "p");
        Ok(())
    }

    #[test]
    fn a_claim_leases_each_hooks_next_deliveries_in_order_and_a_release_hands_one_back(
    ) -> Result<()> {
        let dir = tempfile::tempdir()?;
        let store = Store::open(&dir.path().join("r.db"))?;
        store.write(|db| {
            db.conn.execute_batch(ALICE_AND_HER_HOOK)?;
            db.conn.execute_batch(HER_SECOND_HOOK)?;
            for n in 1..=3 {
                insert_event(db, n, &["h1", "h2"])?;
            }
            Ok(())
        })?;
        let sent = |due: &[crate::hooks::DueDelivery]| -> Result<Vec<(String, i64)>> {
            due.iter()
                .map(|d| {
                    Ok((
                        d.hook_id.clone(),
                        parsed(&d.body())?["n"].as_i64().unwrap_or(0),
                    ))
                })
                .collect()
        };
        let due = store.write(|db| db.claim_hook_deliveries(1, 100, 10, 2, "now"))?;
        assert_eq!(
            sent(&due)?,
            [
                ("h1".into(), 1),
                ("h1".into(), 2),
                ("h2".into(), 1),
                ("h2".into(), 2)
            ]
        );
        assert!(due.iter().all(|d| d.attempts == 1));
        assert!(
            store
                .write(|db| db.claim_hook_deliveries(1, 100, 10, 2, "now"))?
                .is_empty(),
            "leased rows are not claimed again, nor those behind them"
        );

        // h1's first went out and its second was not sent; h2 still holds its lease.
        store.write(|db| {
            db.record_hook_attempt(
                due[0].row_id,
                "h1",
                "delivered",
                1,
                Some(200),
                1,
                None,
                "now",
            )?;
            db.release_hook_delivery(due[1].row_id, 1)
        })?;
        let due = store.write(|db| db.claim_hook_deliveries(2, 100, 10, 5, "now"))?;
        assert_eq!(sent(&due)?, [("h1".into(), 2), ("h1".into(), 3)]);
        assert_eq!(
            due.iter().map(|d| d.attempts).collect::<Vec<_>>(),
            [1, 1],
            "the released delivery's unsent attempt is not counted"
        );
        // Once the leases are over, every row is due again.
        let due = store.write(|db| db.claim_hook_deliveries(100, 200, 10, 5, "now"))?;
        assert_eq!(
            sent(&due)?,
            [
                ("h1".into(), 2),
                ("h1".into(), 3),
                ("h2".into(), 1),
                ("h2".into(), 2),
                ("h2".into(), 3)
            ]
        );
        assert_eq!(
            due.iter().map(|d| d.attempts).collect::<Vec<_>>(),
            [2, 2, 2, 2, 1],
            "a claim whose lease ran out counts; h2's third was not claimed before"
        );
        Ok(())
    }
}
