//! The sync task queue: tasks (`waiting` → `processing` → `success` | `error`), their
//! numbered log lines, and the claim that hands one waiting task to one worker.

use rusqlite::OptionalExtension;

use super::Db;
use crate::error::Result;
pub use crate::upstream::sync::{NewSyncTask, SyncTask, TreeProgress};

const COLUMNS: &str = "id, package, registry, state, options, root_id, parent_id, created_by, \
                       error, attempts, created_at, updated_at, claimed_at";

fn task_of(row: &super::sql::Row<'_>) -> rusqlite::Result<SyncTask> {
    Ok(SyncTask {
        id: row.get(0)?,
        package: row.get(1)?,
        registry: row.get(2)?,
        state: row.get(3)?,
        options: row.get(4)?,
        root_id: row.get(5)?,
        parent_id: row.get(6)?,
        created_by: row.get(7)?,
        error: row.get(8)?,
        attempts: row.get::<_, i64>(9)?.max(0) as u64,
        created_at: row.get(10)?,
        updated_at: row.get(11)?,
        claimed_at: row.get(12)?,
    })
}

impl Db<'_> {
    /// Queues a task; false (and nothing written) when its tree already has a task for the
    /// same package (a name is synced once per tree).
    pub fn insert_sync_task(&self, task: &NewSyncTask<'_>) -> Result<bool> {
        let inserted = self.execute(
            "INSERT INTO sync_tasks (id, package, registry, state, options, root_id, parent_id, \
             created_by, created_at, updated_at) \
             VALUES (?1, ?2, ?3, 'waiting', ?4, ?5, ?6, ?7, ?8, ?8) \
             ON CONFLICT (root_id, package) DO NOTHING",
            (
                task.id,
                task.package,
                task.registry,
                task.options,
                task.root_id,
                task.parent_id,
                task.created_by,
                task.now,
            ),
        )?;
        Ok(inserted > 0)
    }

    pub fn sync_task(&self, id: &str) -> Result<Option<SyncTask>> {
        let mut stmt = self
            .conn
            .prepare_cached(&format!("SELECT {COLUMNS} FROM sync_tasks WHERE id = ?1"))?;
        Ok(stmt.query_row([id], task_of).optional()?)
    }

    /// Whether any task waits (a cheap read before a claim on the writer).
    pub fn sync_task_waiting(&self) -> Result<bool> {
        Ok(self.query_row(
            "SELECT EXISTS (SELECT 1 FROM sync_tasks WHERE state = 'waiting')",
            [],
            |row| row.get(0),
        )?)
    }

    /// Hands the oldest waiting task (forced ones first) to the caller, now `processing`.
    /// Runs on the writer, so two workers never claim the same task.
    pub fn claim_sync_task(&self, now: &str) -> Result<Option<SyncTask>> {
        // On PostgreSQL the write lock serialises claims already; SKIP LOCKED keeps a
        // claim from ever waiting on a row another node holds.
        let (forced, skip_locked) = self.conn.pick(
            ("coalesce(json_extract(options, '$.force'), 0)", ""),
            (
                "CASE WHEN CAST(options AS json) ->> 'force' = 'true' THEN 1 ELSE 0 END",
                "FOR UPDATE SKIP LOCKED",
            ),
        );
        let mut stmt = self.conn.prepare_cached(&format!(
            "UPDATE sync_tasks SET state = 'processing', claimed_at = ?1, updated_at = ?1, \
             attempts = attempts + 1 \
             WHERE id = (SELECT id FROM sync_tasks WHERE state = 'waiting' \
                         ORDER BY {forced} DESC, created_at, id LIMIT 1 {skip_locked}) \
             RETURNING {COLUMNS}"
        ))?;
        Ok(stmt.query_row([now], task_of).optional()?)
    }

    /// Ends a task: `success` or `error` (with the reason).
    pub fn finish_sync_task(
        &self,
        id: &str,
        state: &str,
        error: Option<&str>,
        now: &str,
    ) -> Result<()> {
        self.execute(
            "UPDATE sync_tasks SET state = ?2, error = ?3, updated_at = ?4 WHERE id = ?1",
            (id, state, error, now),
        )?;
        Ok(())
    }

    /// Puts tasks left `processing` by a process that stopped back in the queue; how many.
    pub fn requeue_interrupted_sync_tasks(&self, now: &str) -> Result<usize> {
        Ok(self.execute(
            "UPDATE sync_tasks SET state = 'waiting', claimed_at = NULL, updated_at = ?1 \
             WHERE state = 'processing'",
            [now],
        )?)
    }

    pub fn append_sync_log(&self, id: &str, at: &str, line: &str) -> Result<()> {
        self.execute(
            "INSERT INTO sync_task_logs (task_id, seq, at, line) VALUES (?1, \
             (SELECT coalesce(max(seq), 0) + 1 FROM sync_task_logs WHERE task_id = ?1), ?2, ?3)",
            (id, at, line),
        )?;
        Ok(())
    }

    /// A task's log lines, oldest first: (when, text).
    pub fn sync_log(&self, id: &str) -> Result<Vec<(String, String)>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT at, line FROM sync_task_logs WHERE task_id = ?1 ORDER BY seq",
        )?;
        let rows = stmt.query_map([id], |row| Ok((row.get(0)?, row.get(1)?)))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Makes the proxy's cached documents of a name stale (a sync asks the upstream again,
    /// conditionally, however recently they were fetched). Nothing is dropped: while the
    /// upstream is down they are still served.
    pub fn expire_cached_documents(&self, name: &str) -> Result<()> {
        self.execute(
            "UPDATE upstream_packuments SET fetched_at = 0 WHERE name = ?1",
            [name],
        )?;
        Ok(())
    }

    /// How far the tasks of a tree are.
    pub fn sync_tree_progress(&self, root_id: &str) -> Result<TreeProgress> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT count(*), \
               coalesce(sum(CASE WHEN state IN ('success', 'error') THEN 1 ELSE 0 END), 0), \
               coalesce(sum(CASE WHEN state = 'error' THEN 1 ELSE 0 END), 0) \
             FROM sync_tasks WHERE root_id = ?1",
        )?;
        Ok(stmt.query_row([root_id], |row| {
            Ok(TreeProgress {
                total: row.get::<_, i64>(0)?.max(0) as u64,
                finished: row.get::<_, i64>(1)?.max(0) as u64,
                errors: row.get::<_, i64>(2)?.max(0) as u64,
            })
        })?)
    }
}
