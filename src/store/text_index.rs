//! A copy of the full-text index in memory, to rank free text without FTS5's bm25(): bm25()
//! looks up each match's size (a statement per row) and counts the phrase's matches by running
//! the phrase again, about 2 µs a match, so a search matching all of 10,000 packages cost over
//! 20 ms whenever the kept rankings had to be rebuilt. Here the same formula runs over a token
//! list per package, in well under a millisecond for the same search.
//!
//! The copy is exact, not a second tokenizer's idea of the text: it is read from FTS5's own
//! index (the `search_fts_instances` vocabulary table lists every token of every row), and a
//! changed row is tokenized by FTS5 itself, on a private in-memory table created with the SQL
//! of `search_fts`. It follows the database through `search_log`, which triggers fill in the
//! transaction of every change to an index row, so any process's writes are seen.

use std::collections::{BTreeMap, HashMap};
use std::ops::Bound;

use rusqlite::{Connection, OptionalExtension};

use crate::error::{Error, Result};

/// The columns of `search_fts`, in table order, as the vocabulary table names them.
const COLUMNS: [&str; 5] = ["name", "keywords", "description", "maintainers", "author"];

/// bm25's weight for a match in each column, in [`COLUMNS`] order (see `BM25_WEIGHTS`).
pub(super) const WEIGHTS: [f64; 5] = [10.0, 5.0, 2.0, 1.0, 1.0];

/// More changed rows than this since the copy was made: reading the index again is cheaper.
const MAX_CHANGES_APPLIED: usize = 2_000;

/// One indexed row: its tokens (as term ids) column after column, each column in position
/// order, and where each column ends.
struct Row {
    tokens: Box<[u32]>,
    ends: [u32; COLUMNS.len()],
}

impl Row {
    fn columns(&self) -> impl Iterator<Item = (usize, &[u32])> {
        let mut start = 0;
        self.ends.iter().enumerate().map(move |(column, &end)| {
            let part = &self.tokens[start as usize..end as usize];
            start = end;
            (column, part)
        })
    }
}

/// One phrase of a query: a run of tokens at consecutive positions in one column, the last
/// one a prefix. `None` for a token no term matches: the phrase is nowhere.
struct Phrase {
    exact: Vec<Option<u32>>,
    /// A bit per term id: whether the last token is a prefix of that term.
    prefixed: Vec<u64>,
}

impl Phrase {
    /// The number of tokens in the phrase, the last one included.
    fn len(&self) -> usize {
        self.exact.len() + 1
    }

    fn matches_at(&self, tokens: &[u32], at: usize) -> bool {
        if at + self.len() > tokens.len() {
            return false;
        }
        self.exact
            .iter()
            .enumerate()
            .all(|(i, term)| *term == Some(tokens[at + i]))
            && {
                let term = tokens[at + self.exact.len()] as usize;
                self.prefixed
                    .get(term / 64)
                    .is_some_and(|bits| bits & (1 << (term % 64)) != 0)
            }
    }
}

pub(super) struct TextIndex {
    /// The last `search_log` entry reflected.
    seq: i64,
    terms: BTreeMap<String, u32>,
    rows: HashMap<i64, Row>,
    total_tokens: i64,
    tokenizer: Connection,
}

impl TextIndex {
    /// Reads the whole index from `conn` (a reader's snapshot).
    pub(super) fn load(conn: &Connection) -> Result<TextIndex> {
        let seq = log_position(conn)?;
        let tokenizer = private_tokenizer(conn)?;
        let mut index = TextIndex {
            seq,
            terms: BTreeMap::new(),
            rows: HashMap::new(),
            total_tokens: 0,
            tokenizer,
        };
        // Rows come by term; each row's tokens are gathered as (column, offset, term).
        let mut gathered: HashMap<i64, Vec<(u8, u32, u32)>> = HashMap::new();
        let mut stmt = conn.prepare("SELECT term, doc, col, offset FROM search_fts_instances")?;
        let mut rows = stmt.query([])?;
        let mut last_term: Option<(String, u32)> = None;
        while let Some(row) = rows.next()? {
            let term = text(row, 0)?;
            let id = match &last_term {
                Some((text, id)) if text == term => *id,
                _ => {
                    let id = index.term_id(term);
                    last_term = Some((term.to_string(), id));
                    id
                }
            };
            let column = column_index(text(row, 2)?)?;
            gathered
                .entry(row.get(1)?)
                .or_default()
                .push((column, row.get(3)?, id));
        }
        drop(rows);
        // A row without a single token is in no instance but still counts for bm25.
        let mut ids = conn.prepare("SELECT id FROM search_fts_docsize")?;
        for id in ids.query_map([], |row| row.get::<_, i64>(0))? {
            gathered.entry(id?).or_default();
        }
        for (rowid, mut tokens) in gathered {
            tokens.sort_unstable();
            index.insert_row(rowid, &tokens);
        }
        Ok(index)
    }

    /// Brings the copy up to `conn`'s snapshot. `false` if that snapshot is older than the
    /// copy (a reader that began before the last update): the caller ranks in SQL instead.
    pub(super) fn catch_up(&mut self, conn: &Connection) -> Result<bool> {
        let now = log_position(conn)?;
        if now < self.seq {
            return Ok(false);
        }
        if now == self.seq {
            return Ok(true);
        }
        let oldest: Option<i64> = conn
            .prepare_cached("SELECT min(seq) FROM search_log")?
            .query_row([], |row| row.get(0))?;
        let changed: Vec<i64> = {
            let mut stmt = conn.prepare_cached(
                "SELECT DISTINCT package_id FROM search_log WHERE seq > ?1 LIMIT ?2",
            )?;
            let rows =
                stmt.query_map((self.seq, MAX_CHANGES_APPLIED as i64 + 1), |row| row.get(0))?;
            rows.collect::<rusqlite::Result<_>>()?
        };
        // The log is pruned: entries after ours may be gone, or too many to apply one by one.
        if oldest.is_none_or(|oldest| oldest > self.seq + 1) || changed.len() > MAX_CHANGES_APPLIED
        {
            *self = TextIndex::load(conn)?;
            return Ok(true);
        }
        let mut read = conn.prepare_cached(
            "SELECT name, keywords, description, maintainers, author FROM search_fts \
             WHERE rowid = ?1",
        )?;
        for rowid in changed {
            if let Some(old) = self.rows.remove(&rowid) {
                self.total_tokens -= old.tokens.len() as i64;
            }
            let texts: Option<[Option<String>; 5]> = read
                .query_row([rowid], |row| {
                    Ok([
                        row.get(0)?,
                        row.get(1)?,
                        row.get(2)?,
                        row.get(3)?,
                        row.get(4)?,
                    ])
                })
                .optional()?;
            if let Some(texts) = texts {
                let tokens = self.tokenize(&texts)?;
                self.insert_row(rowid, &tokens);
            }
        }
        self.seq = now;
        Ok(true)
    }

    /// Every row that has all of `phrases` (each a list of token texts, the last a prefix),
    /// with the score FTS5's `bm25(search_fts, WEIGHTS…)` gives it, negated (higher is
    /// better), computed the way fts5_aux.c computes it so that the numbers are the same.
    /// `None` if a phrase has no token: FTS5's query syntax would not take it.
    pub(super) fn rank(&mut self, phrases: &[String]) -> Result<Option<Vec<(i64, f64)>>> {
        const K1: f64 = 1.2;
        const B: f64 = 0.75;
        let mut compiled = Vec::with_capacity(phrases.len());
        for phrase in phrases {
            let tokens = self.tokenize_query(phrase)?;
            let Some((last, rest)) = tokens.split_last() else {
                return Ok(None);
            };
            let mut prefixed = vec![0u64; self.terms.len().div_ceil(64)];
            for (_, &id) in self
                .terms
                .range::<str, _>((Bound::Included(last.as_str()), Bound::Unbounded))
                .take_while(|(term, _)| term.starts_with(last.as_str()))
            {
                prefixed[id as usize / 64] |= 1 << (id % 64);
            }
            compiled.push(Phrase {
                exact: rest.iter().map(|t| self.terms.get(t).copied()).collect(),
                prefixed,
            });
        }
        if compiled.is_empty() {
            return Ok(None);
        }
        // One pass: each row's weighted instance count per phrase, and per phrase the number
        // of rows that have it at all (bm25's idf counts those among all rows).
        let mut hits = vec![0i64; compiled.len()];
        let mut found: Vec<(i64, Vec<f64>, u32)> = Vec::new();
        let mut freq = vec![0f64; compiled.len()];
        for (&rowid, row) in &self.rows {
            let mut all = true;
            for (phrase, (f, hit)) in compiled.iter().zip(freq.iter_mut().zip(hits.iter_mut())) {
                *f = 0.0;
                let mut any = false;
                for (column, tokens) in row.columns() {
                    for at in 0..tokens.len() {
                        if phrase.matches_at(tokens, at) {
                            *f += WEIGHTS[column];
                            any = true;
                        }
                    }
                }
                if any {
                    *hit += 1;
                } else {
                    all = false;
                }
            }
            if all {
                found.push((rowid, freq.clone(), row.tokens.len() as u32));
            }
        }
        let rows = self.rows.len() as i64;
        let avgdl = self.total_tokens as f64 / rows as f64;
        let idf: Vec<f64> = hits
            .iter()
            .map(|&hit| {
                let idf = (((rows - hit) as f64 + 0.5) / (hit as f64 + 0.5)).ln();
                if idf <= 0.0 {
                    1e-6
                } else {
                    idf
                }
            })
            .collect();
        Ok(Some(
            found
                .into_iter()
                .map(|(rowid, freq, size)| {
                    let d = f64::from(size);
                    let mut score = 0.0;
                    for (f, idf) in freq.iter().zip(&idf) {
                        score += idf * ((f * (K1 + 1.0)) / (f + K1 * (1.0 - B + B * d / avgdl)));
                    }
                    (rowid, score)
                })
                .collect(),
        ))
    }

    fn term_id(&mut self, term: &str) -> u32 {
        if let Some(&id) = self.terms.get(term) {
            return id;
        }
        let id = self.terms.len() as u32;
        self.terms.insert(term.to_string(), id);
        id
    }

    /// `tokens` as (column, offset, term), sorted.
    fn insert_row(&mut self, rowid: i64, tokens: &[(u8, u32, u32)]) {
        let mut ends = [0u32; COLUMNS.len()];
        for &(column, _, _) in tokens {
            for end in &mut ends[usize::from(column)..] {
                *end += 1;
            }
        }
        self.total_tokens += tokens.len() as i64;
        self.rows.insert(
            rowid,
            Row {
                tokens: tokens.iter().map(|&(_, _, term)| term).collect(),
                ends,
            },
        );
    }

    /// A row's column texts as FTS5 tokenizes them: (column, offset, term id), sorted.
    fn tokenize(&mut self, texts: &[Option<String>; 5]) -> Result<Vec<(u8, u32, u32)>> {
        let found = self.private_tokens(texts)?;
        let mut tokens: Vec<(u8, u32, u32)> = found
            .into_iter()
            .map(|(term, column, offset)| (column, offset, self.term_id(&term)))
            .collect();
        tokens.sort_unstable();
        Ok(tokens)
    }

    /// The tokens of a query phrase, in order, as FTS5 would read them in a MATCH.
    fn tokenize_query(&mut self, phrase: &str) -> Result<Vec<String>> {
        let mut found = self.private_tokens(&[Some(phrase.to_string()), None, None, None, None])?;
        found.sort_unstable_by_key(|&(_, column, offset)| (column, offset));
        Ok(found.into_iter().map(|(term, _, _)| term).collect())
    }

    /// (term, column, offset) of every token of `texts`, from the private table.
    fn private_tokens(&self, texts: &[Option<String>; 5]) -> Result<Vec<(String, u8, u32)>> {
        let conn = &self.tokenizer;
        conn.prepare_cached("INSERT INTO tokens (rowid, name, keywords, description, maintainers, author) VALUES (1, ?1, ?2, ?3, ?4, ?5)")?
            .execute(rusqlite::params_from_iter(texts.iter()))?;
        let mut stmt = conn.prepare_cached("SELECT term, col, offset FROM token_instances")?;
        let found = stmt
            .query_map([], |row| {
                Ok((
                    row.get::<_, String>(0)?,
                    row.get::<_, String>(1)?,
                    row.get(2)?,
                ))
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        conn.prepare_cached("INSERT INTO tokens (tokens) VALUES ('delete-all')")?
            .execute([])?;
        found
            .into_iter()
            .map(|(term, column, offset)| Ok((term, column_index(&column)?, offset)))
            .collect()
    }
}

fn text<'r>(row: &'r rusqlite::Row<'_>, column: usize) -> rusqlite::Result<&'r str> {
    row.get_ref(column)?.as_str().map_err(|err| {
        rusqlite::Error::FromSqlConversionFailure(
            column,
            rusqlite::types::Type::Text,
            Box::new(err),
        )
    })
}

fn column_index(name: &str) -> Result<u8> {
    COLUMNS
        .iter()
        .position(|c| *c == name)
        .map(|i| i as u8)
        .ok_or_else(|| Error::Storage(format!("search_fts has an unknown column {name:?}")))
}

/// The last `search_log` entry in `conn`'s snapshot (0 before any).
fn log_position(conn: &Connection) -> Result<i64> {
    Ok(conn
        // Bare max() is one seek to the last row; wrapped in coalesce() it would be a scan.
        .prepare_cached("SELECT max(seq) FROM search_log")?
        .query_row([], |row| row.get::<_, Option<i64>>(0))?
        .unwrap_or(0))
}

/// An in-memory FTS5 table made from `search_fts`'s own SQL, so that it tokenizes as the index
/// does whatever tokenizer options the schema gives, but contentless, to be emptied at once.
fn private_tokenizer(conn: &Connection) -> Result<Connection> {
    let sql: String = conn.query_row(
        "SELECT sql FROM sqlite_master WHERE name = 'search_fts'",
        [],
        |row| row.get(0),
    )?;
    let columns = sql
        .find("fts5(")
        .and_then(|start| Some(sql[start..].trim_end().strip_suffix(')')?.to_string()))
        .ok_or_else(|| Error::Storage(format!("search_fts is not an FTS5 table: {sql}")))?;
    let private = Connection::open_in_memory()?;
    private.execute_batch(&format!(
        "CREATE VIRTUAL TABLE tokens USING {columns}, content = '');
         CREATE VIRTUAL TABLE token_instances USING fts5vocab(tokens, instance);"
    ))?;
    Ok(private)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{SearchEntry, Store};

    const DOCS: &[(&str, &str, &[&str])] = &[
        (
            "left-pad",
            "pads a string on the left, left left",
            &["pad", "string"],
        ),
        ("leftpad", "the same, without a dash", &["pad"]),
        (
            "pad-left-right",
            "Pads both sides; LEFT first",
            &["padding"],
        ),
        ("cafe-menu", "un café très bon, 日本語 too", &[]),
        ("café-noir", "CAFÉ CAFE cafe", &["café"]),
        ("json", "the json thing", &["data"]),
        (
            "fast-json",
            "a quick json parser for json json",
            &["json", "speed"],
        ),
        ("x", "", &[]),
    ];

    fn put(store: &Store, id: i64, name: &str, description: &str, keywords: &[&str]) -> Result<()> {
        let keywords: Vec<String> = keywords.iter().map(|k| k.to_string()).collect();
        let maintainers = vec!["alice".to_string()];
        store.write(|db| {
            db.conn.execute(
                "INSERT OR IGNORE INTO packages (id, name, created_at, modified_at) \
                 VALUES (?1, ?2, 't', 't')",
                (id, name),
            )?;
            db.put_search_entry(&SearchEntry {
                package_id: id,
                name,
                scope: None,
                description,
                keywords: &keywords,
                maintainers: &maintainers,
                author_name: "jane doe",
                author_email: "jane@example.com",
                publisher: "alice",
                deprecated: false,
                unstable: false,
                document: "{}",
                summary: "{}",
            })
        })
    }

    /// FTS5's own ranking of `phrases`, by id.
    fn by_fts5(store: &Store, phrases: &[&str]) -> Result<Vec<(i64, f64)>> {
        let query: Vec<String> = phrases.iter().map(|p| format!("\"{p}\"*")).collect();
        store.read(|db| {
            let mut stmt = db.conn.prepare(
                "SELECT rowid, -bm25(search_fts, 10.0, 5.0, 2.0, 1.0, 1.0) FROM search_fts \
                 WHERE search_fts MATCH ?1 ORDER BY rowid",
            )?;
            let rows = stmt.query_map([query.join(" ")], |row| Ok((row.get(0)?, row.get(1)?)))?;
            Ok(rows.collect::<rusqlite::Result<_>>()?)
        })
    }

    fn in_memory(
        store: &Store,
        index: &mut Option<TextIndex>,
        phrases: &[&str],
    ) -> Result<Vec<(i64, f64)>> {
        let phrases: Vec<String> = phrases.iter().map(|p| p.to_string()).collect();
        store.read(|db| {
            let index = match index.as_mut() {
                Some(index) => {
                    assert!(index.catch_up(db.sqlite())?, "the snapshot is current");
                    index
                }
                None => index.insert(TextIndex::load(db.sqlite())?),
            };
            let mut ranked = index.rank(&phrases)?.unwrap_or_default();
            ranked.sort_unstable_by_key(|&(id, _)| id);
            Ok(ranked)
        })
    }

    const QUERIES: &[&[&str]] = &[
        &["left"],
        &["l"],
        &["pad"],
        &["left pad"],
        &["left", "pad"],
        &["pads on"],
        &["json"],
        &["json", "parser"],
        &["cafe"],
        &["CAFÉ"],
        &["日本語"],
        &["jane"],
        &["alice"],
        &["nothing"],
        &["left", "nothing"],
        &["the"],
        &["x"],
    ];

    #[test]
    fn the_in_memory_ranking_is_fts5s_bm25_to_the_last_bit_through_changes() -> Result<()> {
        let dir = tempfile::tempdir()?;
        let store = Store::open(&dir.path().join("r.db"))?;
        for (i, (name, description, keywords)) in DOCS.iter().enumerate() {
            put(&store, i as i64 + 1, name, description, keywords)?;
        }
        let mut index = None;
        let check = |index: &mut Option<TextIndex>| -> Result<()> {
            for phrases in QUERIES {
                let expected = by_fts5(&store, phrases)?;
                let found = in_memory(&store, index, phrases)?;
                assert_eq!(found.len(), expected.len(), "{phrases:?}");
                for ((id, score), (fts_id, fts_score)) in found.iter().zip(&expected) {
                    assert_eq!(id, fts_id, "{phrases:?}");
                    assert_eq!(
                        score.to_bits(),
                        fts_score.to_bits(),
                        "{phrases:?}: {score} {fts_score}"
                    );
                }
            }
            Ok(())
        };
        check(&mut index)?;
        assert_eq!(
            by_fts5(&store, &["left"])?.len(),
            3,
            "not a vacuous comparison"
        );

        // Changed, removed and new rows: the copy catches up on them alone.
        put(&store, 1, "left-pad", "now about json", &["json"])?;
        store.write(|db| db.remove_search_entry(2))?;
        put(&store, 20, "left-left", "left", &[])?;
        check(&mut index)?;
        let seq = index.as_ref().map(|i| i.seq);
        assert!(seq.is_some_and(|s| s > 0), "caught up through the log");

        // A copy made before the database was read by anyone else agrees with a new one.
        let mut fresh = None;
        for phrases in QUERIES {
            assert_eq!(
                in_memory(&store, &mut fresh, phrases)?,
                in_memory(&store, &mut index, phrases)?
            );
        }

        // A reader on an older snapshot than the copy is told to rank in SQL.
        let old = Connection::open(dir.path().join("r.db"))?;
        let tx = old.unchecked_transaction()?;
        let _: i64 = tx.query_row("SELECT count(*) FROM search_log", [], |r| r.get(0))?;
        put(&store, 21, "later", "later", &[])?;
        check(&mut index)?;
        let behind = index.as_mut().map(|i| i.catch_up(&tx)).transpose()?;
        assert_eq!(behind, Some(false));
        Ok(())
    }

    #[test]
    fn a_phrase_without_a_token_is_left_to_fts5() -> Result<()> {
        let dir = tempfile::tempdir()?;
        let store = Store::open(&dir.path().join("r.db"))?;
        put(&store, 1, "left-pad", "pads", &[])?;
        let ranked = store.read(|db| TextIndex::load(db.sqlite())?.rank(&["·".to_string()]))?;
        assert!(ranked.is_none());
        Ok(())
    }
}
