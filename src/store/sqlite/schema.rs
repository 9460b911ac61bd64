//! Embedded, numbered, forward-only migrations, tracked in `PRAGMA user_version`.
//! A database written by a newer binary is refused rather than misread.

use rusqlite::Connection;

use crate::error::{Error, Result};

/// Migration N (1-based) brings a database from user_version N-1 to N.
const MIGRATIONS: &[&str] = &[
    // 1: users, tokens, packages with their versions, tags and maintainers, precomputed
    //    packuments, and the changes feed.
    r#"
    CREATE TABLE users (
        id            INTEGER PRIMARY KEY,
        name          TEXT NOT NULL UNIQUE,
        email         TEXT NOT NULL DEFAULT '',
        password_hash TEXT NOT NULL,
        is_admin      INTEGER NOT NULL DEFAULT 0,
        created_at    TEXT NOT NULL,
        updated_at    TEXT NOT NULL
    );
    CREATE TABLE tokens (
        id             INTEGER PRIMARY KEY,
        key            TEXT NOT NULL UNIQUE,
        token_hash     BLOB NOT NULL UNIQUE,
        display        TEXT NOT NULL,
        user_id        INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        name           TEXT,
        readonly       INTEGER NOT NULL DEFAULT 0,
        cidr_whitelist TEXT NOT NULL DEFAULT '[]',
        created_at     TEXT NOT NULL,
        expires_at     TEXT,
        last_used_at   TEXT
    );
    CREATE INDEX tokens_user ON tokens(user_id);
    CREATE TABLE packages (
        id          INTEGER PRIMARY KEY,
        name        TEXT NOT NULL UNIQUE,
        created_at  TEXT NOT NULL,
        modified_at TEXT NOT NULL,
        rev_seq     INTEGER NOT NULL DEFAULT 0
    );
    -- Rows are never deleted: a version number, once used, is burnt for good.
    CREATE TABLE versions (
        id             INTEGER PRIMARY KEY,
        package_id     INTEGER NOT NULL REFERENCES packages(id),
        version        TEXT NOT NULL,
        manifest       TEXT NOT NULL,
        readme         TEXT NOT NULL DEFAULT '',
        tarball_sha512 TEXT NOT NULL,
        tarball_sha1   TEXT NOT NULL,
        tarball_size   INTEGER NOT NULL,
        published_at   TEXT NOT NULL,
        publisher_id   INTEGER REFERENCES users(id),
        deleted_at     TEXT,
        UNIQUE (package_id, version)
    );
    CREATE TABLE dist_tags (
        package_id INTEGER NOT NULL REFERENCES packages(id),
        tag        TEXT NOT NULL,
        version    TEXT NOT NULL,
        PRIMARY KEY (package_id, tag)
    );
    CREATE TABLE maintainers (
        package_id INTEGER NOT NULL REFERENCES packages(id),
        user_id    INTEGER NOT NULL REFERENCES users(id),
        PRIMARY KEY (package_id, user_id)
    );
    CREATE TABLE packuments (
        package_id  INTEGER PRIMARY KEY REFERENCES packages(id),
        name        TEXT NOT NULL UNIQUE,
        rev         TEXT NOT NULL,
        full_json   BLOB NOT NULL,
        full_etag   TEXT NOT NULL,
        abbrev_json BLOB NOT NULL,
        abbrev_etag TEXT NOT NULL
    );
    CREATE TABLE changes (
        seq     INTEGER PRIMARY KEY AUTOINCREMENT,
        package TEXT NOT NULL,
        kind    TEXT NOT NULL,
        at      TEXT NOT NULL
    );
    "#,
    // 2: fully unpublished packages keep a tombstone; stars.
    r#"
    ALTER TABLE packages ADD COLUMN unpublished_at TEXT;
    ALTER TABLE packuments ADD COLUMN tombstone INTEGER NOT NULL DEFAULT 0;
    CREATE TABLE stars (
        package_id INTEGER NOT NULL REFERENCES packages(id),
        user_id    INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        PRIMARY KEY (package_id, user_id)
    );
    CREATE INDEX stars_user ON stars(user_id);
    "#,
    // 3: profiles and granular tokens: the profile fields `npm profile set` writes, and a
    // token's description and package/scope limits (JSON arrays; NULL: no limit).
    r#"
    ALTER TABLE users ADD COLUMN fullname TEXT;
    ALTER TABLE users ADD COLUMN homepage TEXT;
    ALTER TABLE users ADD COLUMN twitter TEXT;
    ALTER TABLE users ADD COLUMN github TEXT;
    ALTER TABLE users ADD COLUMN freenode TEXT;
    ALTER TABLE tokens ADD COLUMN description TEXT;
    ALTER TABLE tokens ADD COLUMN limit_packages TEXT;
    ALTER TABLE tokens ADD COLUMN limit_scopes TEXT;
    "#,
    // Search, feeds and package blocks. `search_docs` holds one row per package that has a live
    // version, describing its latest; `search_fts` indexes the same rows (rowid = package id)
    // and `search_keywords` their keywords, for exact `keywords:` filters. Packages that
    // existed before this migration are queued in `search_backfill`, which the registry
    // drains when it opens (building a row needs code, not SQL). Blocks are keyed by name so
    // that a name can be blocked before anyone publishes it. The two indexes serve
    // `/-/all/since` (changes by time) and `/-/by-user/` (packages by maintainer).
    r#"
    CREATE TABLE search_docs (
        package_id   INTEGER PRIMARY KEY REFERENCES packages(id),
        name         TEXT NOT NULL UNIQUE,
        scope        TEXT,
        author_name  TEXT NOT NULL DEFAULT '',
        author_email TEXT NOT NULL DEFAULT '',
        publisher    TEXT NOT NULL DEFAULT '',
        deprecated   INTEGER NOT NULL DEFAULT 0,
        unstable     INTEGER NOT NULL DEFAULT 0,
        document     TEXT NOT NULL,
        summary      TEXT NOT NULL
    );
    CREATE INDEX search_docs_scope ON search_docs(scope);
    CREATE TABLE search_keywords (
        keyword    TEXT NOT NULL,
        package_id INTEGER NOT NULL REFERENCES search_docs(package_id) ON DELETE CASCADE,
        PRIMARY KEY (keyword, package_id)
    ) WITHOUT ROWID;
    CREATE VIRTUAL TABLE search_fts USING fts5(
        name, keywords, description, maintainers, author,
        tokenize = 'unicode61 remove_diacritics 2'
    );
    CREATE TABLE search_backfill (package_id INTEGER PRIMARY KEY);
    INSERT INTO search_backfill (package_id) SELECT id FROM packages;
    CREATE TABLE package_blocks (
        id         INTEGER PRIMARY KEY,
        name       TEXT NOT NULL UNIQUE,
        reason     TEXT NOT NULL,
        blocked_by INTEGER REFERENCES users(id) ON DELETE SET NULL,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL
    );
    CREATE INDEX IF NOT EXISTS changes_at ON changes(at);
    CREATE INDEX IF NOT EXISTS maintainers_user ON maintainers(user_id);
    "#,
    // Download counts: one row per package, version and UTC day (`YYYY-MM-DD`, which sorts as
    // text), added to by the daemon's periodic flush. Days without downloads have no row.
    // `downloads_day` serves registry-wide totals and the top list, which scan by day.
    r#"
    CREATE TABLE downloads (
        package_id INTEGER NOT NULL REFERENCES packages(id),
        version    TEXT NOT NULL,
        day        TEXT NOT NULL,
        count      INTEGER NOT NULL,
        PRIMARY KEY (package_id, version, day)
    ) WITHOUT ROWID;
    CREATE INDEX downloads_day ON downloads(day);
    "#,
    // Packuments are no longer stored whole: rewriting a 2,000-version document on every
    // publish made a publish cost O(versions). A packument is assembled from per-version
    // fragments when it is read (and cached by the daemon under the package's revision), so a
    // write touches only its own rows. `abbrev_manifest` is a version's abbreviated manifest,
    // computed from `manifest`; NULL means "not computed yet" (new or changed rows), and the
    // partial index finds those at once.
    r#"
    ALTER TABLE versions ADD COLUMN abbrev_manifest TEXT;
    CREATE INDEX versions_unabbreviated ON versions(package_id) WHERE abbrev_manifest IS NULL;
    DROP TABLE packuments;
    "#,
    // Upstreams. `upstream_packuments` caches one document per proxied name and flavor, as the
    // upstream sent it but with tarball URLs pointing here (the placeholder origin); a row with
    // status 404 remembers that the upstream has no such package. `dists` keeps each version's
    // original tarball URL and checksums, so that a tarball miss need not parse the document.
    // `upstream_tarballs` lists the verified tarballs in the blob store, and
    // `upstream_downloads` counts their downloads (proxied names have no `packages` row).
    r#"
    CREATE TABLE upstream_packuments (
        name          TEXT NOT NULL,
        flavor        TEXT NOT NULL,
        upstream      TEXT NOT NULL,
        status        INTEGER NOT NULL,
        body          BLOB,
        etag          TEXT NOT NULL,
        upstream_etag TEXT,
        last_modified TEXT,
        dists         TEXT,
        fetched_at    INTEGER NOT NULL,
        PRIMARY KEY (name, flavor)
    );
    CREATE TABLE upstream_tarballs (
        name       TEXT NOT NULL,
        version    TEXT NOT NULL,
        upstream   TEXT NOT NULL,
        sha512     TEXT NOT NULL,
        size       INTEGER NOT NULL,
        fetched_at TEXT NOT NULL,
        PRIMARY KEY (name, version)
    );
    CREATE TABLE upstream_downloads (
        name    TEXT NOT NULL,
        version TEXT NOT NULL,
        day     TEXT NOT NULL,
        count   INTEGER NOT NULL,
        PRIMARY KEY (name, version, day)
    ) WITHOUT ROWID;
    "#,
    // Sync tasks (cnpmcore's Package Sync API), the registries API, and the binary mirror's
    // cache. A task is a durable queue entry: `waiting` until a worker claims it
    // (`processing`, with `claimed_at`), then `success` or `error`; a task found `processing`
    // at start-up was interrupted and goes back to `waiting`. Tasks queued for the
    // dependencies of a task share its `root_id`, and a name is synced once per tree (the
    // unique index). `options` is the request's JSON (skipDependencies, specificVersions,
    // force, forceSyncHistory, tips). Log lines are numbered per task. `registries` holds
    // the registries added over HTTP (configured upstreams live in the config file).
    // `binary_files` maps a mirrored file to its blob.
    r#"
    CREATE TABLE sync_tasks (
        id          TEXT PRIMARY KEY,
        package     TEXT NOT NULL,
        registry    TEXT,
        state       TEXT NOT NULL,
        options     TEXT NOT NULL DEFAULT '{}',
        root_id     TEXT NOT NULL,
        parent_id   TEXT,
        created_by  TEXT,
        error       TEXT,
        attempts    INTEGER NOT NULL DEFAULT 0,
        created_at  TEXT NOT NULL,
        updated_at  TEXT NOT NULL,
        claimed_at  TEXT
    );
    CREATE INDEX sync_tasks_queue ON sync_tasks(state, created_at);
    CREATE INDEX sync_tasks_package ON sync_tasks(package, created_at);
    CREATE UNIQUE INDEX sync_tasks_tree ON sync_tasks(root_id, package);
    CREATE TABLE sync_task_logs (
        task_id TEXT NOT NULL REFERENCES sync_tasks(id) ON DELETE CASCADE,
        seq     INTEGER NOT NULL,
        at      TEXT NOT NULL,
        line    TEXT NOT NULL,
        PRIMARY KEY (task_id, seq)
    ) WITHOUT ROWID;
    CREATE TABLE registries (
        id            TEXT PRIMARY KEY,
        name          TEXT NOT NULL UNIQUE,
        host          TEXT NOT NULL,
        change_stream TEXT NOT NULL DEFAULT '',
        user_prefix   TEXT NOT NULL DEFAULT '',
        type          TEXT NOT NULL DEFAULT 'npm',
        auth_token    TEXT,
        created_at    TEXT NOT NULL,
        updated_at    TEXT NOT NULL
    );
    CREATE TABLE binary_files (
        binary     TEXT NOT NULL,
        path       TEXT NOT NULL,
        sha512     TEXT NOT NULL,
        size       INTEGER NOT NULL,
        fetched_at TEXT NOT NULL,
        PRIMARY KEY (binary, path)
    );
    "#,
    // Private packages: a package is public or restricted (every existing one stays public);
    // orgs own the scope of their name, their teams are granted packages read-only or
    // read-write; a granular token may be limited to some orgs.
    r#"
    ALTER TABLE packages ADD COLUMN restricted INTEGER NOT NULL DEFAULT 0;
    CREATE INDEX packages_restricted ON packages(id) WHERE restricted = 1;
    CREATE TABLE orgs (
        id         INTEGER PRIMARY KEY,
        name       TEXT NOT NULL UNIQUE,
        created_at TEXT NOT NULL
    );
    CREATE TABLE org_members (
        org_id  INTEGER NOT NULL REFERENCES orgs(id) ON DELETE CASCADE,
        user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        role    TEXT NOT NULL CHECK (role IN ('owner', 'admin', 'developer')),
        PRIMARY KEY (org_id, user_id)
    );
    CREATE INDEX org_members_user ON org_members(user_id);
    CREATE TABLE teams (
        id          INTEGER PRIMARY KEY,
        org_id      INTEGER NOT NULL REFERENCES orgs(id) ON DELETE CASCADE,
        name        TEXT NOT NULL,
        description TEXT NOT NULL DEFAULT '',
        created_at  TEXT NOT NULL,
        UNIQUE (org_id, name)
    );
    CREATE TABLE team_members (
        team_id INTEGER NOT NULL REFERENCES teams(id) ON DELETE CASCADE,
        user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        PRIMARY KEY (team_id, user_id)
    );
    CREATE INDEX team_members_user ON team_members(user_id);
    CREATE TABLE team_packages (
        team_id    INTEGER NOT NULL REFERENCES teams(id) ON DELETE CASCADE,
        package_id INTEGER NOT NULL REFERENCES packages(id),
        writable   INTEGER NOT NULL,
        PRIMARY KEY (team_id, package_id)
    );
    CREATE INDEX team_packages_package ON team_packages(package_id);
    ALTER TABLE tokens ADD COLUMN limit_orgs TEXT;
    ALTER TABLE tokens ADD COLUMN orgs_permission TEXT;
    "#,
    // Browser sessions of the web UI: only a hash of the cookie's secret is stored; each has
    // the CSRF token its forms carry.
    r#"
    CREATE TABLE web_sessions (
        id          INTEGER PRIMARY KEY,
        secret_hash BLOB NOT NULL UNIQUE,
        user_id     INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        csrf        TEXT NOT NULL,
        created_at  TEXT NOT NULL,
        expires_at  TEXT NOT NULL
    );
    CREATE INDEX web_sessions_user ON web_sessions(user_id);
    "#,
    // The names each version depends on, so that a package page finds its dependents through
    // an index instead of parsing every package's manifest.
    r#"
    CREATE TABLE version_dependencies (
        name       TEXT NOT NULL,
        version_id INTEGER NOT NULL REFERENCES versions(id),
        PRIMARY KEY (name, version_id)
    ) WITHOUT ROWID;
    INSERT OR IGNORE INTO version_dependencies (name, version_id)
        SELECT j.key, v.id FROM versions v, json_each(v.manifest, '$.dependencies') j
        WHERE json_valid(v.manifest) AND json_type(v.manifest, '$.dependencies') = 'object';
    "#,
    // A package's versions in publication order without sorting them (its page, its
    // packument), and the recently changed packages without sorting every package.
    r#"
    CREATE INDEX versions_package ON versions(package_id);
    CREATE INDEX packages_modified ON packages(modified_at);
    "#,
    // Hooks (cnpmcore's Hook Management API) and their outbox: one delivery row per matching
    // hook, written in the transaction of the change it reports. `next_attempt_at` (unix ms)
    // is both when a pending row is due and the lease of a claimed one, so that a crash only
    // lets the lease run out; a hook's rows go out in `id` order.
    r#"
    CREATE TABLE hooks (
        id                 TEXT PRIMARY KEY,
        owner_id           INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        type               TEXT NOT NULL CHECK (type IN ('package', 'scope', 'owner')),
        name               TEXT NOT NULL,
        endpoint           TEXT NOT NULL,
        secret             TEXT NOT NULL,
        created_at         TEXT NOT NULL,
        updated_at         TEXT NOT NULL,
        delivered          INTEGER NOT NULL DEFAULT 0,
        last_delivery      TEXT,
        last_response_code INTEGER
    );
    CREATE INDEX hooks_target ON hooks(type, name);
    CREATE INDEX hooks_owner ON hooks(owner_id);
    CREATE TABLE hook_deliveries (
        id              INTEGER PRIMARY KEY,
        delivery_id     TEXT NOT NULL UNIQUE,
        hook_id         TEXT NOT NULL REFERENCES hooks(id) ON DELETE CASCADE,
        event           TEXT NOT NULL,
        package         TEXT NOT NULL,
        body            TEXT NOT NULL,
        state           TEXT NOT NULL CHECK (state IN ('pending', 'delivered', 'failed')),
        attempts        INTEGER NOT NULL DEFAULT 0,
        next_attempt_at INTEGER NOT NULL,
        response_code   INTEGER,
        duration_ms     INTEGER,
        error           TEXT,
        created_at      TEXT NOT NULL,
        created_ms      INTEGER NOT NULL,
        last_attempt_at TEXT
    );
    CREATE INDEX hook_deliveries_hook ON hook_deliveries(hook_id, id);
    CREATE INDEX hook_deliveries_due ON hook_deliveries(next_attempt_at)
        WHERE state = 'pending';
    CREATE INDEX hook_deliveries_queue ON hook_deliveries(hook_id, id)
        WHERE state = 'pending';
    "#,
    // The package page's version list from an index alone: a version's deprecation message
    // becomes a column (finding it in each manifest cost half the page's time at 2,000
    // versions), and the index that gives publication order carries the listed columns, so
    // that the rows, whose manifests span overflow pages, are not read at all.
    r#"
    ALTER TABLE versions ADD COLUMN deprecated TEXT;
    UPDATE versions SET deprecated = nullif(json_extract(manifest, '$.deprecated'), '')
        WHERE instr(manifest, '"deprecated"') > 0 AND json_valid(manifest)
        AND json_type(manifest, '$.deprecated') = 'text';
    DROP INDEX versions_package;
    CREATE INDEX versions_summary
        ON versions(package_id, id, version, deprecated, tarball_size, published_at, deleted_at);
    "#,
    // The search index's generation, which keys the rankings a process keeps between
    // searches: bumped in the transaction of every change that can alter a ranking.
    r#"
    CREATE TABLE search_generation (value INTEGER NOT NULL);
    INSERT INTO search_generation (value) VALUES (0);
    CREATE TRIGGER search_docs_inserted AFTER INSERT ON search_docs
        BEGIN UPDATE search_generation SET value = value + 1; END;
    CREATE TRIGGER search_docs_updated AFTER UPDATE ON search_docs
        BEGIN UPDATE search_generation SET value = value + 1; END;
    CREATE TRIGGER search_docs_deleted AFTER DELETE ON search_docs
        BEGIN UPDATE search_generation SET value = value + 1; END;
    CREATE TRIGGER package_blocks_inserted AFTER INSERT ON package_blocks
        BEGIN UPDATE search_generation SET value = value + 1; END;
    CREATE TRIGGER package_blocks_updated AFTER UPDATE OF name ON package_blocks
        BEGIN UPDATE search_generation SET value = value + 1; END;
    CREATE TRIGGER package_blocks_deleted AFTER DELETE ON package_blocks
        BEGIN UPDATE search_generation SET value = value + 1; END;
    CREATE TRIGGER packages_restriction_changed AFTER UPDATE OF restricted ON packages
        BEGIN UPDATE search_generation SET value = value + 1; END;
    "#,
    // A delivery's body (the payload, kilobytes with a package's version list) in a table of
    // its own: it is written once and read once, while the dispatcher reads and rewrites the
    // delivery's state for every attempt, and with the body in the row every such read went
    // through its overflow pages. Finished deliveries, which are pruned per hook, get an index
    // of their own for the same reason.
    r#"
    CREATE TABLE hook_delivery_bodies (
        id   INTEGER PRIMARY KEY REFERENCES hook_deliveries(id) ON DELETE CASCADE,
        body TEXT NOT NULL
    );
    INSERT INTO hook_delivery_bodies (id, body) SELECT id, body FROM hook_deliveries;
    ALTER TABLE hook_deliveries DROP COLUMN body;
    CREATE INDEX hook_deliveries_done ON hook_deliveries(hook_id, id) WHERE state != 'pending';
    "#,
    // An event instead of a body per delivery. The bodies of an event's deliveries differ only
    // in `hookOwner`, which the dispatcher adds when it sends, and writing the payload (a
    // package's version list) and a row per hook in the change's transaction made a publish
    // to a package with ten hooks cost a third more. Now the change writes the event and the
    // ids of the hooks it concerns (`hook_event_targets`); the dispatcher fans them out into
    // delivery rows, and an event goes with its last delivery.
    r#"
    DELETE FROM hook_deliveries WHERE id NOT IN (SELECT id FROM hook_delivery_bodies);
    CREATE TABLE hook_events (
        id         INTEGER PRIMARY KEY,
        event      TEXT NOT NULL,
        package    TEXT NOT NULL,
        envelope   TEXT NOT NULL,
        created_at TEXT NOT NULL,
        created_ms INTEGER NOT NULL
    );
    CREATE TABLE hook_event_targets (
        event_id INTEGER PRIMARY KEY REFERENCES hook_events(id) ON DELETE CASCADE,
        hooks    TEXT NOT NULL
    );
    INSERT INTO hook_events (id, event, package, envelope, created_at, created_ms)
        SELECT d.id, d.event, d.package,
               CASE WHEN json_valid(b.body) THEN json_remove(b.body, '$.hookOwner') ELSE b.body END,
               d.created_at, d.created_ms
        FROM hook_delivery_bodies b JOIN hook_deliveries d ON d.id = b.id;
    ALTER TABLE hook_deliveries ADD COLUMN event_id INTEGER REFERENCES hook_events(id);
    UPDATE hook_deliveries SET event_id = id;
    DROP TABLE hook_delivery_bodies;
    CREATE INDEX hook_deliveries_event ON hook_deliveries(event_id);
    CREATE TRIGGER hook_event_released AFTER DELETE ON hook_deliveries
        WHEN NOT EXISTS (SELECT 1 FROM hook_deliveries WHERE event_id = OLD.event_id)
        BEGIN DELETE FROM hook_events WHERE id = OLD.event_id; END;
    "#,
    // What the search's in-memory copy of the full-text index reads: the index's every token
    // (`search_fts_instances`, a view of FTS5's own data that stores nothing), and a log of the
    // packages whose index row changed, written in the change's transaction so that a copy in
    // any process can catch up on the rows alone. The log keeps its latest 5,000 entries; a
    // copy further behind reads the index again.
    r#"
    CREATE VIRTUAL TABLE search_fts_instances USING fts5vocab(search_fts, instance);
    CREATE TABLE search_log (seq INTEGER PRIMARY KEY, package_id INTEGER NOT NULL);
    CREATE TRIGGER search_log_inserted AFTER INSERT ON search_docs
        BEGIN INSERT INTO search_log (package_id) VALUES (new.package_id); END;
    CREATE TRIGGER search_log_updated AFTER UPDATE ON search_docs
        BEGIN
            INSERT INTO search_log (package_id) VALUES (old.package_id);
            INSERT INTO search_log (package_id) VALUES (new.package_id);
        END;
    CREATE TRIGGER search_log_deleted AFTER DELETE ON search_docs
        BEGIN INSERT INTO search_log (package_id) VALUES (old.package_id); END;
    CREATE TRIGGER search_log_pruned AFTER INSERT ON search_log
        BEGIN DELETE FROM search_log WHERE seq <= new.seq - 5000; END;
    "#,
    // Every reindex deletes a package's keywords, directly and through the cascade from
    // `search_docs`; keyed by keyword first, that was a scan of every package's keywords,
    // which made each publish slower as the registry grew.
    r#"
    CREATE INDEX search_keywords_package ON search_keywords(package_id);
    "#,
    // An event's payload lists the package's versions, a list that grows with every publish:
    // building it and writing it in the change's transaction was most of what hooks cost a
    // publish. The change now writes the payload with an empty list and the id of its newest
    // version (`versions_through`); the dispatcher fills the list in, on a reader, before it
    // sends. Events written before have their list already (the column is NULL).
    r#"
    ALTER TABLE hook_events ADD COLUMN package_id INTEGER;
    ALTER TABLE hook_events ADD COLUMN versions_through INTEGER;
    "#,
    // Pending deliveries (`hook_queue`) apart from finished ones (`hook_delivery_log`, kept
    // for the deliveries API). With both in one table under six indexes, every delivery was
    // written into seven B-trees, moved between three of them when it was sent and taken out
    // of all seven when it was pruned: a publish to a package with ten hooks wrote about 27
    // pages of the dispatcher's to the WAL besides its own 20, which the publish's fsync and
    // the checkpoints then carried. Now a delivery lives in four B-trees while it is pending
    // and in one once it is finished (the log's key orders it by hook, as it is read and
    // pruned). The delivery id needs no index: nothing looks a delivery up by it, and 128
    // random bits do not repeat. The queue's ids only grow (AUTOINCREMENT), above every id in
    // the log, so that the log's keys stay unique and a hook's deliveries list newest first.
    r#"
    CREATE TABLE hook_delivery_log (
        hook_id         TEXT NOT NULL REFERENCES hooks(id) ON DELETE CASCADE,
        id              INTEGER NOT NULL,
        delivery_id     TEXT NOT NULL,
        event           TEXT NOT NULL,
        package         TEXT NOT NULL,
        state           TEXT NOT NULL CHECK (state IN ('delivered', 'failed')),
        attempts        INTEGER NOT NULL,
        response_code   INTEGER,
        duration_ms     INTEGER,
        error           TEXT,
        created_at      TEXT NOT NULL,
        last_attempt_at TEXT,
        PRIMARY KEY (hook_id, id)
    ) WITHOUT ROWID;
    INSERT INTO hook_delivery_log (hook_id, id, delivery_id, event, package, state, attempts,
        response_code, duration_ms, error, created_at, last_attempt_at)
        SELECT hook_id, id, delivery_id, event, package, state, attempts, response_code,
               duration_ms, error, created_at, last_attempt_at
        FROM hook_deliveries WHERE state != 'pending';
    CREATE TABLE hook_queue (
        id              INTEGER PRIMARY KEY AUTOINCREMENT,
        delivery_id     TEXT NOT NULL,
        hook_id         TEXT NOT NULL REFERENCES hooks(id) ON DELETE CASCADE,
        event_id        INTEGER NOT NULL REFERENCES hook_events(id),
        event           TEXT NOT NULL,
        package         TEXT NOT NULL,
        attempts        INTEGER NOT NULL DEFAULT 0,
        next_attempt_at INTEGER NOT NULL,
        response_code   INTEGER,
        duration_ms     INTEGER,
        error           TEXT,
        created_at      TEXT NOT NULL,
        created_ms      INTEGER NOT NULL,
        last_attempt_at TEXT
    );
    INSERT INTO hook_queue (id, delivery_id, hook_id, event_id, event, package, attempts,
        next_attempt_at, response_code, duration_ms, error, created_at, created_ms,
        last_attempt_at)
        SELECT id, delivery_id, hook_id, event_id, event, package, attempts, next_attempt_at,
               response_code, duration_ms, error, created_at, created_ms, last_attempt_at
        FROM hook_deliveries WHERE state = 'pending';
    INSERT INTO sqlite_sequence (name, seq) SELECT 'hook_queue', 0
        WHERE NOT EXISTS (SELECT 1 FROM sqlite_sequence WHERE name = 'hook_queue');
    UPDATE sqlite_sequence SET seq = (SELECT coalesce(max(id), 0) FROM hook_deliveries)
        WHERE name = 'hook_queue';
    DROP TABLE hook_deliveries;
    DELETE FROM hook_events WHERE id NOT IN (SELECT event_id FROM hook_queue)
        AND id NOT IN (SELECT event_id FROM hook_event_targets);
    CREATE INDEX hook_queue_hook ON hook_queue(hook_id, id);
    CREATE INDEX hook_queue_due ON hook_queue(next_attempt_at);
    CREATE INDEX hook_queue_event ON hook_queue(event_id);
    CREATE TRIGGER hook_event_released AFTER DELETE ON hook_queue
        WHEN NOT EXISTS (SELECT 1 FROM hook_queue WHERE event_id = OLD.event_id)
        BEGIN DELETE FROM hook_events WHERE id = OLD.event_id; END;
    "#,
    // npm's web logins in progress, which lived in one process's memory: behind a load
    // balancer npm may poll a node other than the one that opened its login, so they are in
    // the database now. A login is found by the sha256 hash of one of its two random ids (the
    // login page's, and the one npm polls, which alone collects the token), as tokens are; no
    // token secret is kept, since the token is made when npm collects the login. Expiry is in
    // unix milliseconds, indexed for the cleanup that each new login runs. An approval goes
    // with the user who gave it (hence the approver's index: a user's deletion looks it up).
    r#"
    CREATE TABLE cli_logins (
        page_hash      BLOB NOT NULL PRIMARY KEY,
        done_hash      BLOB NOT NULL UNIQUE,
        create_account INTEGER NOT NULL DEFAULT 0,
        approved_by    INTEGER REFERENCES users(id) ON DELETE CASCADE,
        expires_ms     INTEGER NOT NULL
    );
    CREATE INDEX cli_logins_expires ON cli_logins(expires_ms);
    CREATE INDEX cli_logins_approver ON cli_logins(approved_by);
    "#,
];

pub const LATEST_VERSION: u32 = MIGRATIONS.len() as u32;

pub fn migrate(conn: &mut Connection) -> Result<()> {
    let current: u32 = conn.query_row("PRAGMA user_version", [], |row| row.get(0))?;
    if current > LATEST_VERSION {
        return Err(Error::Storage(format!(
            "the database has schema version {current}, but this registry binary only knows \
             versions up to {LATEST_VERSION}: upgrade the binary"
        )));
    }
    for (index, sql) in MIGRATIONS.iter().enumerate().skip(current as usize) {
        let target = index as u32 + 1;
        let tx = conn.transaction()?;
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", target)?;
        tx.commit()?;
    }
    Ok(())
}

/// Brings a new database up to, but not including, the first migration whose text contains
/// `marker`, so that a test can put rows in an old schema and then watch the migration run.
#[cfg(test)]
pub(in crate::store) fn migrate_before(conn: &mut Connection, marker: &str) -> Result<()> {
    for (index, sql) in MIGRATIONS.iter().enumerate() {
        if sql.contains(marker) {
            break;
        }
        let tx = conn.transaction()?;
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", index as u32 + 1)?;
        tx.commit()?;
    }
    Ok(())
}
