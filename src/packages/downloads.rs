//! Download counts: what is counted, how periods are read, and the reports built from the
//! stored counts (npm's point and range shapes, per-version trends, the top list).
//!
//! Counting happens in memory ([`DownloadCounter`]) and reaches the database in one transaction
//! per flush (the daemon flushes every few seconds and at shutdown), so that a burst of
//! downloads costs one write, not one per tarball. A crash loses at most one flush interval.
//!
//! Periods follow npm (`last-day`, `last-week`, `last-month`, `last-year`, `YYYY-MM-DD`,
//! `YYYY-MM-DD:YYYY-MM-DD`, inclusive at both ends) with one difference: npm's named periods end
//! on "the last available day", which for npm is yesterday because its counts land once a day.
//! Ours land every few seconds, so the last available day is today (UTC) and `last-day` is today.
//!
//! Days without downloads: range reports list EVERY day of the range, with 0 for days nobody
//! downloaded anything, as npm's range API does; charts and scripts then need no gap-filling.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use time::format_description::FormatItem;
use time::macros::format_description;
use time::{Date, Duration, OffsetDateTime};

use crate::access;
use crate::accounts::auth::Identity;
use crate::error::{Error, Result};
use crate::packages::names::PackageName;
use crate::registry::package_not_found;
use crate::store::{Db, Store};

const DAY: &[FormatItem<'static>] = format_description!("[year]-[month]-[day]");

/// The longest range a query may cover, in days: npm's limit of 18 months.
pub const MAX_RANGE_DAYS: i64 = 549;
/// npm's limits for bulk queries (several packages at once).
pub const MAX_BULK_PACKAGES: usize = 128;
pub const MAX_BULK_RANGE_DAYS: i64 = 365;

/// A day as the API writes it: `2024-05-30`.
pub fn format_day(day: Date) -> String {
    day.format(DAY).unwrap_or_else(|_| "0000-00-00".to_string())
}

/// Today in UTC: downloads are counted per UTC day, as npm does.
pub fn today() -> Date {
    OffsetDateTime::now_utc().date()
}

fn parse_day(text: &str, period: &str) -> Result<Date> {
    // `time` accepts a sign or extra digits in some years; a day here is exactly YYYY-MM-DD.
    let shaped = text.len() == 10
        && text.bytes().enumerate().all(|(i, b)| match i {
            4 | 7 => b == b'-',
            _ => b.is_ascii_digit(),
        });
    let parsed = shaped.then(|| Date::parse(text, DAY).ok()).flatten();
    parsed.ok_or_else(|| {
        Error::bad_request(format!(
            "invalid period {period:?}: {text:?} is not a date of the form YYYY-MM-DD"
        ))
    })
}

/// Reads a period (`last-day`, `last-week`, `last-month`, `last-year`, `YYYY-MM-DD` or
/// `YYYY-MM-DD:YYYY-MM-DD`) into its first and last day, both inclusive. Named periods end
/// `today` (see the module comment). Reversed ranges and ranges longer than
/// [`MAX_RANGE_DAYS`] are refused.
pub fn parse_period(text: &str, today: Date) -> Result<(Date, Date)> {
    let last_days = |days: i64| (today - Duration::days(days - 1), today);
    let (start, end) = match text {
        "last-day" => last_days(1),
        "last-week" => last_days(7),
        "last-month" => last_days(30),
        "last-year" => last_days(365),
        _ => match text.split_once(':') {
            Some((start, end)) => (parse_day(start, text)?, parse_day(end, text)?),
            None if text.starts_with(|c: char| c.is_ascii_digit()) => {
                let day = parse_day(text, text)?;
                (day, day)
            }
            None => {
                return Err(Error::bad_request(format!(
                    "invalid period {text:?}: use last-day, last-week, last-month, last-year, \
                     YYYY-MM-DD or YYYY-MM-DD:YYYY-MM-DD"
                )))
            }
        },
    };
    if end < start {
        return Err(Error::bad_request(format!(
            "invalid period {text:?}: the range ends before it starts"
        )));
    }
    if days_in(start, end) > MAX_RANGE_DAYS {
        return Err(Error::bad_request(format!(
            "invalid period {text:?}: a range may cover at most 18 months ({MAX_RANGE_DAYS} days)"
        )));
    }
    Ok((start, end))
}

/// How many days `start..=end` holds.
fn days_in(start: Date, end: Date) -> i64 {
    (end - start).whole_days() + 1
}

/// Every day of `start..=end`, in order.
fn days(start: Date, end: Date) -> impl Iterator<Item = Date> {
    std::iter::successors(Some(start), move |day| {
        day.next_day().filter(|next| *next <= end)
    })
}

/// `name`, once it is known to have counts (local, or proxied with a cached tarball) and
/// `reader` may see it.
fn counted_name<'n>(
    store: &Store,
    name: &'n PackageName,
    reader: Option<&Identity>,
) -> Result<&'n str> {
    store.read(|db| counted(db, name, reader))?;
    Ok(name.as_str())
}

fn counted(db: &Db<'_>, name: &PackageName, reader: Option<&Identity>) -> Result<()> {
    if !db.has_downloads_subject(name.as_str())? {
        return Err(package_not_found(name));
    }
    access::ensure_readable(db, reader, name.as_str())
}

/// Downloads of every package of the registry that `reader` may see, in `start..=end` (npm's
/// point query without a package).
pub fn total(store: &Store, start: Date, end: Date, reader: Option<&Identity>) -> Result<u64> {
    store.read(|db| {
        let seen = access::visibility(db, reader)?;
        db.registry_downloads(&format_day(start), &format_day(end), &seen)
    })
}

/// Downloads of each of `names` in `start..=end`, in the order given. An unknown package is
/// a 404 for the whole query. Several names at once follow npm's bulk limits.
pub fn point(
    store: &Store,
    names: &[PackageName],
    start: Date,
    end: Date,
    reader: Option<&Identity>,
) -> Result<Vec<(String, u64)>> {
    if names.len() > 1 {
        if names.len() > MAX_BULK_PACKAGES {
            return Err(Error::bad_request(format!(
                "a bulk query may name at most {MAX_BULK_PACKAGES} packages"
            )));
        }
        if days_in(start, end) > MAX_BULK_RANGE_DAYS {
            return Err(Error::bad_request(format!(
                "a bulk query may cover at most {MAX_BULK_RANGE_DAYS} days"
            )));
        }
    }
    let (first, last) = (format_day(start), format_day(end));
    store.read(|db| {
        names
            .iter()
            .map(|name| {
                counted(db, name, reader)?;
                Ok((
                    name.to_string(),
                    db.package_downloads(name.as_str(), &first, &last)?,
                ))
            })
            .collect()
    })
}

/// Daily downloads of one package, in total and per version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RangeReport {
    pub package: String,
    pub start: Date,
    pub end: Date,
    /// Every day of `start..=end`, with 0 where nothing was downloaded.
    pub days: Vec<(Date, u64)>,
    /// Each version downloaded at least once in the range, with every day of the range (0
    /// where it was not downloaded). Versions never downloaded in the range are absent.
    pub versions: BTreeMap<String, Vec<(Date, u64)>>,
}

/// Daily downloads of `name` in `start..=end`, in total and per version.
pub fn range(
    store: &Store,
    name: &PackageName,
    start: Date,
    end: Date,
    reader: Option<&Identity>,
) -> Result<RangeReport> {
    let id = counted_name(store, name, reader)?;
    let rows =
        store.read(|db| db.package_download_rows(id, &format_day(start), &format_day(end)))?;
    let all_days: Vec<Date> = days(start, end).collect();
    let index_of = |day: &str| {
        Date::parse(day, DAY)
            .ok()
            .map(|day| (day - start).whole_days())
            .and_then(|i| usize::try_from(i).ok())
            .filter(|i| *i < all_days.len())
    };
    let zeros = || all_days.iter().map(|day| (*day, 0)).collect::<Vec<_>>();
    let mut totals = zeros();
    let mut versions: BTreeMap<String, Vec<(Date, u64)>> = BTreeMap::new();
    for row in rows {
        // Rows come from the range just queried; one that does not parse back is skipped
        // rather than failing the report.
        let Some(i) = index_of(&row.day) else {
            continue;
        };
        totals[i].1 += row.count;
        versions.entry(row.version).or_insert_with(zeros)[i].1 += row.count;
    }
    Ok(RangeReport {
        package: name.to_string(),
        start,
        end,
        days: totals,
        versions,
    })
}

/// Downloads per version of `name` in `start..=end`, most downloaded first; versions not
/// downloaded in the range are absent.
pub fn totals_by_version(
    store: &Store,
    name: &PackageName,
    start: Date,
    end: Date,
    reader: Option<&Identity>,
) -> Result<Vec<(String, u64)>> {
    let id = counted_name(store, name, reader)?;
    store.read(|db| db.package_downloads_by_version(id, &format_day(start), &format_day(end)))
}

/// The `limit` most downloaded packages `reader` may see in `start..=end`, most first.
pub fn top(
    store: &Store,
    start: Date,
    end: Date,
    limit: usize,
    reader: Option<&Identity>,
) -> Result<Vec<(String, u64)>> {
    store.read(|db| {
        let seen = access::visibility(db, reader)?;
        db.top_downloads(&format_day(start), &format_day(end), limit, &seen)
    })
}

/// What one flush wrote.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FlushReport {
    /// Rows (package, version, day) inserted or added to.
    pub rows: usize,
    /// Downloads those rows account for.
    pub downloads: u64,
}

type DownloadKey = (String, String, Date);

/// Downloads counted in memory until the next [`DownloadCounter::flush`].
#[derive(Default)]
pub struct DownloadCounter {
    pending: Mutex<HashMap<DownloadKey, u64>>,
    /// Write transactions made by flushes so far: lets tests check that a burst costs one.
    transactions: AtomicU64,
}

impl DownloadCounter {
    /// Counts one download of `name@version` today (UTC).
    pub fn record(&self, name: &PackageName, version: &str) {
        self.record_on(name, version, today(), 1);
    }

    /// Counts `count` downloads of `name@version` on `day`.
    pub fn record_on(&self, name: &PackageName, version: &str, day: Date, count: u64) {
        // A poisoned map only means another thread panicked mid-insert; counting is best
        // effort and must never fail a download.
        if let Ok(mut pending) = self.pending.lock() {
            *pending
                .entry((name.to_string(), version.to_string(), day))
                .or_insert(0) += count;
        }
    }

    /// Downloads counted but not yet flushed.
    pub fn pending(&self) -> u64 {
        self.pending
            .lock()
            .map(|pending| pending.values().sum())
            .unwrap_or(0)
    }

    /// How many write transactions flushes have made so far.
    pub fn transactions(&self) -> u64 {
        self.transactions.load(Ordering::Relaxed)
    }

    /// Writes what was counted since the last flush, in one transaction. On failure the counts
    /// are put back for the next attempt (added to whatever was counted meanwhile).
    pub fn flush(&self, store: &Store) -> Result<FlushReport> {
        let drained: Vec<(DownloadKey, u64)> = match self.pending.lock() {
            Ok(mut pending) => pending.drain().collect(),
            Err(_) => return Err(Error::Storage("the download counter was poisoned".into())),
        };
        if drained.is_empty() {
            return Ok(FlushReport::default());
        }
        let batch: Vec<(String, String, String, u64)> = drained
            .iter()
            .map(|((name, version, day), count)| {
                (name.clone(), version.clone(), format_day(*day), *count)
            })
            .collect();
        let downloads = batch.iter().map(|entry| entry.3).sum();
        self.transactions.fetch_add(1, Ordering::Relaxed);
        match store.write(|db| db.add_downloads(&batch)) {
            Ok(rows) => Ok(FlushReport { rows, downloads }),
            Err(err) => {
                if let Ok(mut pending) = self.pending.lock() {
                    for (key, count) in drained {
                        *pending.entry(key).or_insert(0) += count;
                    }
                }
                Err(err)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::date;

    const TODAY: Date = date!(2024 - 05 - 30);

    fn period(text: &str) -> Result<(Date, Date)> {
        parse_period(text, TODAY)
    }

    fn message(result: Result<(Date, Date)>) -> String {
        match result {
            Ok(range) => panic!("expected an error, got {range:?}"),
            Err(err) => {
                assert_eq!(err.status(), 400, "{err}");
                err.to_string()
            }
        }
    }

    #[test]
    fn named_periods_end_today_and_count_whole_days() -> Result<()> {
        assert_eq!(period("last-day")?, (TODAY, TODAY));
        assert_eq!(period("last-week")?, (date!(2024 - 05 - 24), TODAY));
        assert_eq!(period("last-month")?, (date!(2024 - 05 - 01), TODAY));
        // 2024 is a leap year: 365 days back from 2024-05-30 is 2023-06-01.
        assert_eq!(period("last-year")?, (date!(2023 - 06 - 01), TODAY));
        assert_eq!(days_in(period("last-year")?.0, TODAY), 365);
        Ok(())
    }

    #[test]
    fn single_days_and_inclusive_ranges() -> Result<()> {
        assert_eq!(
            period("2024-02-29")?,
            (date!(2024 - 02 - 29), date!(2024 - 02 - 29))
        );
        assert_eq!(
            period("2024-01-01:2024-12-31")?,
            (date!(2024 - 01 - 01), date!(2024 - 12 - 31))
        );
        // Exactly the maximum is allowed.
        let (start, end) = period("2023-01-01:2024-07-02")?;
        assert_eq!(days_in(start, end), MAX_RANGE_DAYS);
        Ok(())
    }

    #[test]
    fn bad_periods_are_refused_with_a_sentence() {
        assert!(message(period("last-fortnight")).contains("use last-day, last-week"));
        assert!(message(period("2024-13-01")).contains("not a date of the form YYYY-MM-DD"));
        assert!(message(period("2023-02-29")).contains("not a date"));
        assert!(message(period("2024-1-01")).contains("not a date"));
        assert!(message(period("+2024-01-01")).contains("use last-day"));
        assert!(message(period("2024-01-01:")).contains("not a date"));
        assert!(message(period("2024-01-01:2024-01-02:2024-01-03")).contains("not a date"));
        assert!(message(period("")).contains("use last-day"));
        assert!(message(period("2024-05-02:2024-05-01")).contains("ends before it starts"));
        assert!(message(period("2023-01-01:2024-07-04")).contains("at most 18 months"));
    }

    #[test]
    fn days_run_from_start_to_end_inclusive() {
        let all: Vec<Date> = days(date!(2024 - 02 - 27), date!(2024 - 03 - 01)).collect();
        assert_eq!(
            all,
            [
                date!(2024 - 02 - 27),
                date!(2024 - 02 - 28),
                date!(2024 - 02 - 29),
                date!(2024 - 03 - 01)
            ]
        );
        assert_eq!(format_day(date!(2024 - 03 - 01)), "2024-03-01");
    }
}
