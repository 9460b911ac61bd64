//! The search index: one `search_docs` row per package that has a live version, the FTS5
//! table `search_fts` over the same rows (rowid = package id) and `search_keywords` for exact
//! keyword filters. Also the reads that feed `/-/all/since` and `/-/by-user/`.
//!
//! User text never reaches FTS5's query syntax: [`fts_query`] keeps only the letters and
//! digits of each word and quotes them, so `"`, `*`, `NEAR(`, `AND` and friends are plain words.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use rusqlite::types::Value as SqlValue;
use rusqlite::OptionalExtension;

use super::access::visible_sql;
use super::sql::{Conn, Dialect};
use super::text_index::TextIndex;
use super::Db;
use crate::access::Visibility;
use crate::error::Result;

/// bm25 weights of the FTS columns, in table order: name, keywords, description,
/// maintainers, author. A hit in the name matters most, then keywords, then the description.
/// The in-memory ranking uses the same numbers ([`super::text_index::WEIGHTS`]).
const BM25_WEIGHTS: &str = "10.0, 5.0, 2.0, 1.0, 1.0";

/// At most this many ranked ids are kept by [`SearchCache`] in all (16 bytes each).
const CACHED_IDS_MAX: usize = 1_000_000;

/// Free-text rankings kept between searches. Ranking every match is nearly all of a broad
/// search's time (bm25 over 10,000 matches), and paging through results or repeating a
/// search asks for the same ranking again. A ranking is valid for one generation of the
/// index: triggers bump it on every change that can alter one (a search document, a block, a
/// package's restriction), in the transaction of the change, so a reader's snapshot and its
/// generation always agree, whichever process wrote.
#[derive(Default)]
pub struct SearchCache {
    state: Mutex<CacheState>,
    /// The full-text index in memory, which ranks a search that no kept ranking answers;
    /// read at the first such search.
    text: Mutex<Option<TextIndex>>,
}

#[derive(Default)]
struct CacheState {
    generation: i64,
    rankings: HashMap<RankingKey, Arc<Ranking>>,
    ids: usize,
}

#[derive(PartialEq, Eq, Hash)]
struct RankingKey {
    query: String,
    exact_id: Option<i64>,
    /// The restricted packages the reader may see, sorted; `None` for everything.
    visible: Option<Vec<i64>>,
}

/// Every visible match as (package id, relevance): the exact name first, then by relevance,
/// ties by id.
type Ranking = Vec<(i64, f64)>;

impl SearchCache {
    fn get(&self, generation: i64, key: &RankingKey) -> Option<Arc<Ranking>> {
        let state = self
            .state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if state.generation != generation {
            return None;
        }
        state.rankings.get(key).cloned()
    }

    /// Every row of the full-text index that matches all `phrases`, with its bm25 relevance,
    /// from the in-memory index brought up to `conn`'s snapshot. `None` when it cannot
    /// answer for that snapshot (an older one than the copy's) or the phrases.
    fn rank_in_memory(
        &self,
        conn: &rusqlite::Connection,
        phrases: &[String],
    ) -> Result<Option<Vec<(i64, f64)>>> {
        let mut text = self
            .text
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let index = match text.as_mut() {
            Some(index) => {
                if !index.catch_up(conn)? {
                    return Ok(None);
                }
                index
            }
            None => text.insert(TextIndex::load(conn)?),
        };
        index.rank(phrases)
    }

    fn put(&self, generation: i64, key: RankingKey, ranking: Arc<Ranking>) {
        let mut state = self
            .state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        // A reader on an older snapshot must not bring back a stale generation.
        if generation < state.generation || ranking.len() > CACHED_IDS_MAX {
            return;
        }
        if generation > state.generation || state.ids + ranking.len() > CACHED_IDS_MAX {
            state.rankings.clear();
            state.ids = 0;
            state.generation = generation;
        }
        state.ids += ranking.len();
        if let Some(previous) = state.rankings.insert(key, ranking) {
            state.ids -= previous.len();
        }
    }
}

/// Everything the index keeps about a package, computed by the core from its latest version.
pub struct SearchEntry<'a> {
    pub package_id: i64,
    pub name: &'a str,
    /// Without the `@`; `None` for unscoped packages.
    pub scope: Option<&'a str>,
    pub description: &'a str,
    /// Lowercased, deduplicated.
    pub keywords: &'a [String],
    /// User names of the maintainers.
    pub maintainers: &'a [String],
    /// Lowercased (matched by `author:`).
    pub author_name: &'a str,
    pub author_email: &'a str,
    /// User name of whoever published the latest version, lowercased.
    pub publisher: &'a str,
    pub deprecated: bool,
    pub unstable: bool,
    /// The search result's `package` object (JSON text).
    pub document: &'a str,
    /// The package's `/-/all` entry (JSON text).
    pub summary: &'a str,
}

/// The version a package is indexed by.
#[derive(Debug, Clone)]
pub struct LatestVersion {
    pub version: String,
    pub manifest: String,
    pub published_at: String,
}

/// A parsed search. Every list is "any of"; the lists are combined with AND.
#[derive(Debug, Default, Clone)]
pub struct SearchFilter {
    /// Free-text words as typed; each must match (as a prefix) in some indexed column.
    pub words: Vec<String>,
    /// The free text as typed, to rank an exact name match first.
    pub exact_name: Option<String>,
    pub keywords: Vec<String>,
    pub not_keywords: Vec<String>,
    pub authors: Vec<String>,
    pub maintainers: Vec<String>,
    pub scopes: Vec<String>,
    pub deprecated: Option<bool>,
    pub unstable: Option<bool>,
    pub limit: u32,
    pub offset: u32,
    /// The restricted packages the reader may find (public ones are always found).
    pub visibility: Visibility,
}

/// Packages changed since a time: (name, `/-/all` entry as JSON text) by name, and when the
/// latest of those changes happened.
#[derive(Debug, Clone)]
pub struct ChangedSince {
    pub summaries: Vec<(String, String)>,
    pub latest_change: Option<String>,
}

#[derive(Debug, Clone)]
pub struct SearchHit {
    /// The stored `package` object (JSON text).
    pub document: String,
    pub exact: bool,
    /// FTS relevance, higher is better; 0 when the search had no free text.
    pub relevance: f64,
}

impl Db<'_> {
    /// Replaces the package's index entry (its row, keywords and FTS row).
    pub fn put_search_entry(&self, e: &SearchEntry<'_>) -> Result<()> {
        self.remove_search_entry(e.package_id)?;
        self.execute(
            "INSERT INTO search_docs (package_id, name, scope, author_name, author_email, \
             publisher, deprecated, unstable, document, summary) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
            rusqlite::params![
                e.package_id,
                e.name,
                e.scope,
                e.author_name,
                e.author_email,
                e.publisher,
                e.deprecated,
                e.unstable,
                e.document,
                e.summary,
            ],
        )?;
        let mut keyword = self.conn.prepare_cached(
            "INSERT OR IGNORE INTO search_keywords (keyword, package_id) VALUES (?1, ?2)",
        )?;
        for k in e.keywords {
            keyword.execute((k, e.package_id))?;
        }
        self.execute(
            "INSERT INTO search_fts (rowid, name, keywords, description, maintainers, author) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            (
                e.package_id,
                e.name,
                e.keywords.join(" "),
                e.description,
                e.maintainers.join(" "),
                format!("{} {}", e.author_name, e.author_email),
            ),
        )?;
        Ok(())
    }

    /// Drops the package from the index (no live version is left). A no-op if absent.
    pub fn remove_search_entry(&self, package_id: i64) -> Result<()> {
        self.execute("DELETE FROM search_fts WHERE rowid = ?1", [package_id])?;
        self.execute(
            "DELETE FROM search_keywords WHERE package_id = ?1",
            [package_id],
        )?;
        self.execute(
            "DELETE FROM search_docs WHERE package_id = ?1",
            [package_id],
        )?;
        Ok(())
    }

    /// The version a package is indexed by: `preferred` (its `latest` tag) if that version is
    /// live, else the most recently published live version.
    pub fn latest_live_version(
        &self,
        package_id: i64,
        preferred: Option<&str>,
    ) -> Result<Option<LatestVersion>> {
        Ok(self
            .query_row(
                "SELECT version, manifest, published_at FROM versions \
                 WHERE package_id = ?1 AND deleted_at IS NULL \
                 ORDER BY CASE WHEN version = ?2 THEN 1 ELSE 0 END DESC, id DESC LIMIT 1",
                (package_id, preferred),
                |row| {
                    Ok(LatestVersion {
                        version: row.get(0)?,
                        manifest: row.get(1)?,
                        published_at: row.get(2)?,
                    })
                },
            )
            .optional()?)
    }

    /// Up to `limit` packages queued for indexing by the migration that created the index,
    /// with their names.
    pub fn search_backfill(&self, limit: u32) -> Result<Vec<(i64, String)>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT b.package_id, p.name FROM search_backfill b \
             JOIN packages p ON p.id = b.package_id ORDER BY b.package_id LIMIT ?1",
        )?;
        let rows = stmt.query_map([limit], |row| Ok((row.get(0)?, row.get(1)?)))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    pub fn clear_search_backfill(&self, package_id: i64) -> Result<()> {
        self.execute(
            "DELETE FROM search_backfill WHERE package_id = ?1",
            [package_id],
        )?;
        Ok(())
    }

    /// The total number of matches and one page of them, best first: an exact name match,
    /// then by bm25 relevance, then by name. Blocked packages are never found.
    pub fn search_packages(
        &self,
        f: &SearchFilter,
        cache: &SearchCache,
    ) -> Result<(u64, Vec<SearchHit>)> {
        let qualified = !(f.keywords.is_empty()
            && f.not_keywords.is_empty()
            && f.authors.is_empty()
            && f.maintainers.is_empty()
            && f.scopes.is_empty()
            && f.deprecated.is_none()
            && f.unstable.is_none());
        if !qualified {
            if let Some(query) = self.text_query(&f.words) {
                return self.search_text_only(f, &query, cache);
            }
        }
        let mut conditions = vec![
            "NOT EXISTS (SELECT 1 FROM package_blocks b WHERE b.name = d.name)".to_string(),
            visible_sql(&f.visibility, "d.package_id"),
        ];
        let mut params: Vec<SqlValue> = Vec::new();
        let fts = if f.words.is_empty() {
            None
        } else {
            match self.text_query(&f.words) {
                Some(query) => Some(query),
                // Words were given but none has a letter or digit: nothing can match them.
                None => return Ok((0, Vec::new())),
            }
        };
        if let Some(query) = &fts {
            conditions.push(
                self.conn
                    .pick(
                        "search_fts MATCH ?",
                        "search_fts.vector @@ to_tsquery('simple', ?)",
                    )
                    .into(),
            );
            params.push(SqlValue::Text(query.clone()));
        }
        let mut any_of = |sql: &str, values: &[String]| {
            if !values.is_empty() {
                conditions.push(sql.replace("{}", &placeholders(values.len())));
                params.extend(values.iter().cloned().map(SqlValue::Text));
            }
        };
        any_of("d.scope IN ({})", &f.scopes);
        any_of(
            "EXISTS (SELECT 1 FROM search_keywords k \
             WHERE k.package_id = d.package_id AND k.keyword IN ({}))",
            &f.keywords,
        );
        any_of(
            "NOT EXISTS (SELECT 1 FROM search_keywords k \
             WHERE k.package_id = d.package_id AND k.keyword IN ({}))",
            &f.not_keywords,
        );
        any_of(
            "EXISTS (SELECT 1 FROM maintainers m JOIN users u ON u.id = m.user_id \
             WHERE m.package_id = d.package_id AND u.name IN ({}))",
            &f.maintainers,
        );
        if !f.authors.is_empty() {
            let list = placeholders(f.authors.len());
            conditions.push(format!(
                "(d.author_name IN ({list}) OR d.author_email IN ({list}) \
                 OR d.publisher IN ({list}))"
            ));
            for _ in 0..3 {
                params.extend(f.authors.iter().cloned().map(SqlValue::Text));
            }
        }
        if let Some(deprecated) = f.deprecated {
            conditions.push("d.deprecated = ?".into());
            params.push(SqlValue::Integer(deprecated.into()));
        }
        if let Some(unstable) = f.unstable {
            conditions.push("d.unstable = ?".into());
            params.push(SqlValue::Integer(unstable.into()));
        }

        let from = if fts.is_some() {
            "search_docs d JOIN search_fts ON search_fts.rowid = d.package_id"
        } else {
            "search_docs d"
        };
        let filter = conditions.join(" AND ");
        let keywords_only = fts.is_none()
            && !f.keywords.is_empty()
            && f.authors.is_empty()
            && f.maintainers.is_empty()
            && f.scopes.is_empty()
            && f.deprecated.is_none()
            && f.unstable.is_none();
        let total: i64 = if keywords_only {
            self.count_by_keywords(f)?
        } else {
            self.query_row(
                &format!("SELECT count(*) FROM {from} WHERE {filter}"),
                super::sql::params_from_iter(params.iter()),
                |row| row.get(0),
            )?
        };

        // Without free text nothing is exact and every match is as relevant, so the order is
        // the name alone: the name index then gives the page in order, reading only as far as
        // the page, where a sort by the constant terms too read and sorted every match.
        let (relevance, order, page_order) = if let Some(query) = &fts {
            (
                self.relevance_sql(query),
                "exact DESC, relevance DESC, d.name",
                "ranked.exact DESC, ranked.relevance DESC, ranked.name",
            )
        } else {
            ("CAST(0 AS REAL)".to_string(), "d.name", "ranked.name")
        };
        // The sort carries ids, not documents; the page's documents are joined after it.
        let sql = format!(
            "SELECT page.document, ranked.exact, ranked.relevance FROM ( \
               SELECT d.package_id AS id, d.name = ? AS exact, {relevance} AS relevance, \
               d.name AS name FROM {from} WHERE {filter} \
               ORDER BY {order} LIMIT ? OFFSET ?) ranked \
             JOIN search_docs page ON page.package_id = ranked.id \
             ORDER BY {page_order}"
        );
        let mut page_params = vec![SqlValue::Text(f.exact_name.clone().unwrap_or_default())];
        page_params.extend(params);
        page_params.push(SqlValue::Integer(f.limit.into()));
        page_params.push(SqlValue::Integer(f.offset.into()));
        let mut stmt = self.conn.prepare(&sql)?;
        let hits = stmt
            .query_map(super::sql::params_from_iter(page_params.iter()), |row| {
                Ok(SearchHit {
                    document: row.get(0)?,
                    exact: row.get(1)?,
                    relevance: row.get(2)?,
                })
            })?
            .collect::<rusqlite::Result<_>>()?;
        Ok((total.max(0) as u64, hits))
    }

    /// The number of visible, unblocked packages with any of `f.keywords` and none of
    /// `f.not_keywords`, from the keyword index alone: counting through `search_docs` read
    /// every indexed package (8 ms at 10,000) to test each one's keywords.
    fn count_by_keywords(&self, f: &SearchFilter) -> Result<i64> {
        let mut sql = format!(
            "SELECT count({}k.package_id) FROM search_keywords k WHERE k.keyword IN ({}) \
             AND k.package_id NOT IN (SELECT d.package_id FROM package_blocks b \
             {} search_docs d ON d.name = b.name) AND {}",
            // A package with two of the keywords has two rows.
            if f.keywords.len() > 1 {
                "DISTINCT "
            } else {
                ""
            },
            placeholders(f.keywords.len()),
            self.blocked_join(),
            visible_sql(&f.visibility, "k.package_id"),
        );
        if !f.not_keywords.is_empty() {
            sql.push_str(&format!(
                " AND NOT EXISTS (SELECT 1 FROM search_keywords n \
                 WHERE n.package_id = k.package_id AND n.keyword IN ({}))",
                placeholders(f.not_keywords.len())
            ));
        }
        Ok(self.query_row(
            &sql,
            super::sql::params_from_iter(f.keywords.iter().chain(&f.not_keywords)),
            |row| row.get(0),
        )?)
    }

    /// [`Self::search_packages`] for free text alone, in the full-text index alone: ranking
    /// every match (10,000 in a large registry) with a join per match to `search_docs` costs
    /// twice the ranking itself. One pass ranks and counts; the exact name is looked up once,
    /// blocked and hidden packages are sets built once, and relevance ties go by package id
    /// (the order of first publication), not by name, which the index would have to read for
    /// every match. The ranking is kept in `cache` for the next page or the same search.
    fn search_text_only(
        &self,
        f: &SearchFilter,
        query: &str,
        cache: &SearchCache,
    ) -> Result<(u64, Vec<SearchHit>)> {
        let exact_id: Option<i64> = match &f.exact_name {
            Some(name) => self
                .conn
                .prepare_cached("SELECT package_id FROM search_docs WHERE name = ?1")?
                .query_row([name], |row| row.get(0))
                .optional()?,
            None => None,
        };
        let generation: i64 = self
            .conn
            .prepare_cached("SELECT value FROM search_generation")?
            .query_row([], |row| row.get(0))?;
        let key = RankingKey {
            query: query.to_string(),
            exact_id,
            visible: match &f.visibility {
                Visibility::Everything => None,
                Visibility::PublicAnd(ids) => {
                    let mut ids: Vec<i64> = ids.iter().copied().collect();
                    ids.sort_unstable();
                    Some(ids)
                }
            },
        };
        let ranking = match cache.get(generation, &key) {
            Some(ranking) => ranking,
            None => {
                let ranking = Arc::new(self.rank_text(f, query, exact_id, cache)?);
                cache.put(generation, key, Arc::clone(&ranking));
                ranking
            }
        };
        let page: Vec<(i64, f64)> = ranking
            .iter()
            .skip(f.offset as usize)
            .take(f.limit as usize)
            .copied()
            .collect();
        let mut documents: HashMap<i64, String> = HashMap::with_capacity(page.len());
        if !page.is_empty() {
            let mut stmt = self.conn.prepare(&format!(
                "SELECT package_id, document FROM search_docs WHERE package_id IN ({})",
                placeholders(page.len())
            ))?;
            let rows = stmt.query_map(
                super::sql::params_from_iter(page.iter().map(|&(id, _)| id)),
                |row| Ok((row.get(0)?, row.get(1)?)),
            )?;
            for row in rows {
                let (id, document) = row?;
                documents.insert(id, document);
            }
        }
        let hits = page
            .into_iter()
            .filter_map(|(id, relevance)| {
                Some(SearchHit {
                    document: documents.remove(&id)?,
                    exact: Some(id) == exact_id,
                    relevance,
                })
            })
            .collect();
        Ok((ranking.len() as u64, hits))
    }

    /// Every visible, unblocked match of `query`, ranked as [`Self::search_text_only`] says.
    /// bm25() cannot be evaluated under a window function or an aggregate, so the count is
    /// the length of the ranking, sorted here rather than by SQLite.
    fn rank_text(
        &self,
        f: &SearchFilter,
        query: &str,
        exact_id: Option<i64>,
        cache: &SearchCache,
    ) -> Result<Ranking> {
        let in_memory = match &self.conn {
            Conn::Sqlite(conn) => cache.rank_in_memory(conn, &fts_phrases(&f.words))?,
            Conn::Postgres(_) => None,
        };
        let mut ranking: Ranking = match in_memory {
            Some(matches) => {
                let hidden = self.hidden_from(&f.visibility)?;
                matches
                    .into_iter()
                    .filter(|(id, _)| !hidden.contains(id))
                    .collect()
            }
            None => {
                let matching = self.conn.pick(
                    "search_fts MATCH ?1",
                    "search_fts.vector @@ to_tsquery('simple', ?1)",
                );
                let mut stmt = self.conn.prepare(&format!(
                    "SELECT rowid, {} FROM search_fts \
                     WHERE {matching} AND {} AND rowid NOT IN \
                     (SELECT d.package_id FROM package_blocks b \
                      JOIN search_docs d ON d.name = b.name)",
                    self.relevance_sql(query),
                    visible_sql(&f.visibility, "rowid")
                ))?;
                let rows = stmt.query_map([query], |row| Ok((row.get(0)?, row.get(1)?)))?;
                rows.collect::<rusqlite::Result<_>>()?
            }
        };
        ranking.sort_unstable_by(|&(a, relevance_a), &(b, relevance_b)| {
            (Some(b) == exact_id)
                .cmp(&(Some(a) == exact_id))
                .then(relevance_b.total_cmp(&relevance_a))
                .then(a.cmp(&b))
        });
        Ok(ranking)
    }

    /// The indexed packages a search must not show `visibility`'s reader: blocked ones, and
    /// restricted ones it may not see (only a restricted package can be hidden). The blocks
    /// drive the join (CROSS JOIN keeps that order): with no block at all, SQLite would rather
    /// scan `search_docs`, which is every indexed document (5,000 pages at 10,000 packages).
    fn hidden_from(&self, visibility: &Visibility) -> Result<std::collections::HashSet<i64>> {
        let mut stmt = self.conn.prepare(&format!(
            "SELECT d.package_id FROM package_blocks b {} search_docs d \
             ON d.name = b.name \
             UNION SELECT p.id FROM packages p WHERE p.restricted = 1 AND NOT ({})",
            self.blocked_join(),
            visible_sql(visibility, "p.id")
        ))?;
        let ids = stmt.query_map([], |row| row.get(0))?;
        Ok(ids.collect::<rusqlite::Result<_>>()?)
    }

    /// The `/-/all` entries of packages changed at or after `since` (ISO time, as stored),
    /// by name, and the time of the latest such change. Blocked packages are left out.
    pub fn summaries_changed_since(
        &self,
        since: &str,
        visibility: &Visibility,
    ) -> Result<ChangedSince> {
        let visible = visible_sql(visibility, "d.package_id");
        // The latest change the reader may see: a hidden package's change must not move it.
        let latest: Option<String> = self.query_row(
            &format!(
                "SELECT max(c.at) FROM changes c JOIN search_docs d ON d.name = c.package \
                 WHERE c.at >= ?1 AND {visible}"
            ),
            [since],
            |row| row.get(0),
        )?;
        let mut stmt = self.conn.prepare(&format!(
            "SELECT d.name, d.summary FROM search_docs d \
             WHERE d.name IN (SELECT package FROM changes WHERE at >= ?1) \
             AND NOT EXISTS (SELECT 1 FROM package_blocks b WHERE b.name = d.name) \
             AND {visible} ORDER BY d.name"
        ))?;
        let rows = stmt.query_map([since], |row| Ok((row.get(0)?, row.get(1)?)))?;
        Ok(ChangedSince {
            summaries: rows.collect::<rusqlite::Result<_>>()?,
            latest_change: latest,
        })
    }

    /// Names of the packages with a live version that `user` maintains, by name.
    pub fn packages_maintained_by(
        &self,
        user: &str,
        visibility: &Visibility,
    ) -> Result<Vec<String>> {
        let mut stmt = self.conn.prepare(&format!(
            "SELECT p.name FROM users u \
             JOIN maintainers m ON m.user_id = u.id \
             JOIN packages p ON p.id = m.package_id \
             WHERE u.name = ?1 AND EXISTS (SELECT 1 FROM versions v \
                 WHERE v.package_id = p.id AND v.deleted_at IS NULL) AND {} \
             ORDER BY p.name",
            visible_sql(visibility, "p.id")
        ))?;
        let rows = stmt.query_map([user], |row| row.get(0))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }
}

fn placeholders(n: usize) -> String {
    vec!["?"; n].join(", ")
}

impl Db<'_> {
    /// The join from the blocks to the index: SQLite's CROSS JOIN keeps the blocks first (see
    /// [`Db::hidden_from`]); PostgreSQL takes no ON clause after a CROSS JOIN and plans the
    /// order itself.
    fn blocked_join(&self) -> &'static str {
        self.conn.pick("CROSS JOIN", "JOIN")
    }

    /// The full-text query of `words` in the database's own syntax.
    fn text_query(&self, words: &[String]) -> Option<String> {
        match self.conn.dialect() {
            Dialect::Sqlite => fts_query(words),
            Dialect::Postgres => tsquery(words),
        }
    }

    /// A match's relevance, higher is better. On PostgreSQL, `ts_rank` with the columns'
    /// weights in the proportions of [`BM25_WEIGHTS`], divided by the log of the document's
    /// length (as bm25 prefers a short document); `query` is [`tsquery`]'s, letters,
    /// digits and operators only, so it is written into the SQL as it is.
    fn relevance_sql(&self, query: &str) -> String {
        match self.conn.dialect() {
            Dialect::Sqlite => format!("-bm25(search_fts, {BM25_WEIGHTS})"),
            Dialect::Postgres => format!(
                "ts_rank('{{0.1, 0.2, 0.5, 1.0}}', search_fts.vector, \
                 to_tsquery('simple', '{query}'), 1)"
            ),
        }
    }
}

/// [`fts_query`] for PostgreSQL: each phrase's runs in sequence (`<->`), the last one as a
/// prefix, every phrase required.
pub fn tsquery(words: &[String]) -> Option<String> {
    let phrases: Vec<String> = fts_phrases(words)
        .into_iter()
        .map(|phrase| format!("{}:*", phrase.split(' ').collect::<Vec<_>>().join(" <-> ")))
        .collect();
    (!phrases.is_empty()).then(|| phrases.join(" & "))
}

/// An FTS5 query that matches rows containing every word (as a prefix), or `None` if no word
/// has anything searchable. Each word becomes a quoted phrase of its letter-and-digit runs
/// (`left-pad` → `"left pad"*`), the same split the `unicode61` tokenizer makes, so the query
/// syntax never sees a character the user typed other than letters, digits and spaces.
pub fn fts_query(words: &[String]) -> Option<String> {
    let phrases: Vec<String> = fts_phrases(words)
        .into_iter()
        .map(|phrase| format!("\"{phrase}\"*"))
        .collect();
    (!phrases.is_empty()).then(|| phrases.join(" "))
}

/// The text of each phrase of [`fts_query`], unquoted: a word's letter-and-digit runs.
fn fts_phrases(words: &[String]) -> Vec<String> {
    words
        .iter()
        .filter_map(|word| {
            let tokens: Vec<&str> = word
                .split(|c: char| !c.is_alphanumeric())
                .filter(|t| !t.is_empty())
                .collect();
            (!tokens.is_empty()).then(|| tokens.join(" "))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(ws: &[&str]) -> Vec<String> {
        ws.iter().map(|w| w.to_string()).collect()
    }

    #[test]
    fn fts_queries_quote_every_word_and_drop_syntax() {
        assert_eq!(
            fts_query(&words(&["left-pad"])).as_deref(),
            Some("\"left pad\"*")
        );
        assert_eq!(
            fts_query(&words(&["NEAR(a", "AND", "b*", "\"x\""])).as_deref(),
            Some("\"NEAR a\"* \"AND\"* \"b\"* \"x\"*")
        );
        assert_eq!(
            fts_query(&words(&["café", "日本語"])).as_deref(),
            Some("\"café\"* \"日本語\"*")
        );
        assert_eq!(fts_query(&words(&["\"", "*", "()", "-"])), None);
        assert_eq!(fts_query(&[]), None);
    }
}

#[cfg(test)]
mod index_tests {
    use serde_json::{json, Value};

    use super::*;
    use crate::store::{schema, Store};

    fn tempdir() -> Result<tempfile::TempDir> {
        Ok(tempfile::tempdir()?)
    }

    /// Rows as an older registry wrote them: a user, a package, versions and a latest tag.
    fn seed(conn: &rusqlite::Connection, versions: &[(&str, &str)]) -> Result<i64> {
        conn.execute(
            "INSERT INTO users (name, email, password_hash, created_at, updated_at) \
             VALUES ('alice', 'alice@example.com', 'x', 't', 't')",
            [],
        )?;
        let user = conn.last_insert_rowid();
        conn.execute(
            "INSERT INTO packages (name, created_at, modified_at) \
             VALUES ('left-pad', '2024-01-01T00:00:00.000Z', '2024-01-02T00:00:00.000Z')",
            [],
        )?;
        let package = conn.last_insert_rowid();
        conn.execute(
            "INSERT INTO maintainers (package_id, user_id) VALUES (?1, ?2)",
            (package, user),
        )?;
        for (version, description) in versions {
            let manifest = json!({
                "name": "left-pad", "version": version, "description": description,
                "keywords": ["Pad", "strings"], "author": "Jane Doe <jane@example.com> (https://j.example)",
                "_npmUser": {"name": "alice", "email": "alice@example.com"},
            });
            conn.execute(
                "INSERT INTO versions (package_id, version, manifest, tarball_sha512, \
                 tarball_sha1, tarball_size, published_at, publisher_id) \
                 VALUES (?1, ?2, ?3, 'x', 'x', 1, '2024-01-01T00:00:00.000Z', ?4)",
                (package, version, manifest.to_string(), user),
            )?;
        }
        if let Some((first, _)) = versions.first() {
            conn.execute(
                "INSERT INTO dist_tags (package_id, tag, version) VALUES (?1, 'latest', ?2)",
                (package, first),
            )?;
        }
        Ok(package)
    }

    fn find(store: &Store, words: &[&str]) -> Result<Vec<Value>> {
        let filter = SearchFilter {
            words: words.iter().map(|w| w.to_string()).collect(),
            limit: 20,
            ..SearchFilter::default()
        };
        let (total, hits) = store.read(|db| db.search_packages(&filter, store.search_cache()))?;
        assert_eq!(total as usize, hits.len());
        Ok(hits
            .iter()
            .map(|h| serde_json::from_str(&h.document).unwrap_or_default())
            .collect())
    }

    #[test]
    fn the_index_follows_the_latest_live_version_and_drops_a_package_without_one() -> Result<()> {
        let dir = tempdir()?;
        let store = Store::open(&dir.path().join("r.db"))?;
        let package = store.write(|db| {
            let id = seed(
                db.sqlite(),
                &[("1.0.0", "pads on the left"), ("2.0.0", "pads better")],
            )?;
            crate::packages::search::reindex(db, id, "left-pad")?;
            Ok(id)
        })?;
        // `latest` points at 1.0.0, so that is what is indexed, not the newer 2.0.0.
        let found = find(&store, &["left"])?;
        assert_eq!(found.len(), 1);
        let doc = &found[0]["package"];
        assert_eq!(doc["version"], "1.0.0");
        assert_eq!(doc["description"], "pads on the left");
        assert_eq!(doc["author"]["name"], "Jane Doe");
        assert_eq!(doc["author"]["email"], "jane@example.com");
        assert_eq!(doc["author"]["url"], "https://j.example");
        assert_eq!(
            doc["maintainers"],
            json!([{"username": "alice", "email": "alice@example.com"}])
        );
        assert_eq!(found[0]["flags"], Value::Null, "1.0.0 is stable");
        assert!(find(&store, &["better"])?.is_empty());

        // Unpublishing 1.0.0 leaves 2.0.0 as the package's face.
        store.write(|db| {
            db.conn.execute(
                "UPDATE versions SET deleted_at = 'x' WHERE version = '1.0.0'",
                [],
            )?;
            crate::packages::search::reindex(db, package, "left-pad")
        })?;
        assert!(!find(&store, &["left"])?.is_empty());
        assert_eq!(find(&store, &["better"])?.len(), 1);

        // Nothing live: gone from every index table.
        store.write(|db| {
            db.sqlite()
                .execute("UPDATE versions SET deleted_at = 'x'", [])?;
            crate::packages::search::reindex(db, package, "left-pad")
        })?;
        assert!(find(&store, &["left"])?.is_empty());
        let leftovers: i64 = store.read(|db| {
            Ok(db.conn.query_row(
                "SELECT (SELECT count(*) FROM search_docs) + (SELECT count(*) FROM search_fts) \
                 + (SELECT count(*) FROM search_keywords)",
                [],
                |r| r.get(0),
            )?)
        })?;
        assert_eq!(leftovers, 0);
        Ok(())
    }

    #[test]
    fn packages_from_before_the_index_are_indexed_when_the_registry_opens() -> Result<()> {
        let dir = tempdir()?;
        let path = dir.path().join("r.db");
        {
            let mut conn = rusqlite::Connection::open(&path)?;
            schema::migrate_before(&mut conn, "CREATE VIRTUAL TABLE search_fts")?;
            seed(&conn, &[("0.1.0", "an old package")])?;
        }
        let store = Store::open(&path)?;
        assert!(
            find(&store, &["old"])?.is_empty(),
            "queued, not yet indexed"
        );
        assert_eq!(crate::packages::search::index_pending(&store)?, 1);
        let found = find(&store, &["old"])?;
        assert_eq!(found.len(), 1);
        assert_eq!(found[0]["package"]["name"], "left-pad");
        assert_eq!(found[0]["flags"]["unstable"], true, "0.x is unstable");
        assert_eq!(
            crate::packages::search::index_pending(&store)?,
            0,
            "caught up"
        );
        Ok(())
    }
}
