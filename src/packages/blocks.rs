//! Package blocks (cnpmcore's admin API): an administrator takes a package off the registry and
//! says why. A blocked name answers 451 with that reason to every read of its packument,
//! versions and tarballs, refuses publishes, and drops out of search and `/-/all/since`.
//!
//! Blocks are keyed by name rather than by package, so that a name (a known typosquat, say)
//! can be blocked before anyone publishes it. Setting or lifting a block is a change to the
//! package, so it bumps the changes sequence; the packument itself is left untouched and comes
//! back as it was when the block is lifted.

use crate::accounts::authz::Admin;
use crate::clock::now_iso;
use crate::error::{Error, Result};
use crate::packages::names::PackageName;
use crate::store::{BlockRecord, Db, Store};

/// Reasons are shown to every client that asks for the package: keep them to a paragraph.
pub const MAX_REASON_CHARS: usize = 1000;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockOutcome {
    pub id: i64,
    /// False when an existing block only got a new reason.
    pub created: bool,
    /// The blocked package, if the name has ever been published.
    pub package_id: Option<i64>,
}

/// Blocks `name` with `reason`, or replaces the reason of an existing block (so an identical
/// retry succeeds).
pub fn block(
    store: &Store,
    admin: &Admin<'_>,
    name: &PackageName,
    reason: &str,
) -> Result<BlockOutcome> {
    let reason = reason.trim();
    if reason.is_empty() {
        return Err(Error::bad_request(
            "a block needs a reason: send {\"reason\": \"…\"}",
        ));
    }
    if reason.chars().count() > MAX_REASON_CHARS {
        return Err(Error::bad_request(format!(
            "the reason is longer than {MAX_REASON_CHARS} characters"
        )));
    }
    // The CLI's local administrator has no account row (id 0): such a block has no author.
    let user_id = Some(admin.identity().user.id).filter(|id| *id > 0);
    store.write(|db| {
        let now = now_iso();
        let (id, created) = db.put_package_block(name.as_str(), reason, user_id, &now)?;
        db.record_change(name.as_str(), "block", &now)?;
        let package_id = db.package_by_name(name.as_str())?.map(|p| p.id);
        Ok(BlockOutcome {
            id,
            created,
            package_id,
        })
    })
}

/// Lifts the block on `name`; 404 if there was none.
pub fn unblock(store: &Store, _admin: &Admin<'_>, name: &PackageName) -> Result<()> {
    store.write(|db| {
        if !db.delete_package_block(name.as_str())? {
            return Err(Error::not_found(format!("{name} is not blocked")));
        }
        db.record_change(name.as_str(), "unblock", &now_iso())?;
        Ok(())
    })
}

/// The block on `name`, if any. Public: a blocked package's reason is shown to anyone who
/// asks for the package anyway.
pub fn block_of(store: &Store, name: &PackageName) -> Result<Option<BlockRecord>> {
    store.read(|db| db.package_block(name.as_str()))
}

/// Whether a package of that name was ever published (for telling "not blocked" apart from
/// "no such package").
pub fn package_exists(store: &Store, name: &PackageName) -> Result<bool> {
    Ok(store
        .read(|db| db.package_by_name(name.as_str()))?
        .is_some())
}

/// The read path's check: 451 with the reason if `name` is blocked. One indexed lookup.
pub fn ensure_readable(store: &Store, name: &PackageName) -> Result<()> {
    store.read(|db| ensure_not_blocked(db, name.as_str()))
}

/// The same check inside a caller's transaction (publish checks it where it writes, so a
/// block set while a tarball was uploading still wins).
pub fn ensure_not_blocked(db: &Db<'_>, name: &str) -> Result<()> {
    match db.package_block_reason(name)? {
        Some(reason) => Err(blocked(name, &reason)),
        None => Ok(()),
    }
}

pub(crate) fn blocked(name: &str, reason: &str) -> Error {
    Error::UnavailableForLegalReasons(format!(
        "{name} was blocked by the registry's administrators: {reason}"
    ))
}
