//! Authorization as capabilities: an operation that writes takes a proof that only the
//! functions here can construct, so that a forgotten check cannot let a readonly token or a
//! stranger through.

use crate::auth::Identity;
use crate::error::{Error, Result};
use crate::store::Db;

/// Proof that the caller may write at all: authenticated, and not with a readonly token.
pub struct Writer<'a> {
    identity: &'a Identity,
}

impl<'a> Writer<'a> {
    pub fn identity(&self) -> &'a Identity {
        self.identity
    }
}

/// Proof that the caller may change this package: a maintainer of it, or an admin.
pub struct Maintainer<'a> {
    writer: &'a Writer<'a>,
    package_id: i64,
}

impl Maintainer<'_> {
    pub fn package_id(&self) -> i64 {
        self.package_id
    }
    pub fn identity(&self) -> &Identity {
        self.writer.identity
    }
}

pub fn require_writer(identity: Option<&Identity>) -> Result<Writer<'_>> {
    let identity = identity
        .ok_or_else(|| Error::unauthorized("you must be logged in to do this: run `npm login`"))?;
    if identity.readonly() {
        return Err(Error::forbidden(
            "this token is read-only and cannot be used to write",
        ));
    }
    Ok(Writer { identity })
}

pub fn require_maintainer<'a>(
    db: &Db<'_>,
    writer: &'a Writer<'a>,
    package_name: &str,
    package_id: i64,
) -> Result<Maintainer<'a>> {
    let user = &writer.identity.user;
    if user.is_admin || db.is_maintainer(package_id, user.id)? {
        Ok(Maintainer { writer, package_id })
    } else {
        Err(Error::forbidden(format!(
            "{} is not a maintainer of {package_name}",
            user.name
        )))
    }
}

/// Proof that the caller is an administrator (and not using a readonly token).
pub struct Admin<'a> {
    writer: Writer<'a>,
}

impl<'a> Admin<'a> {
    pub fn identity(&self) -> &'a Identity {
        self.writer.identity
    }
}

pub fn require_admin(identity: Option<&Identity>) -> Result<Admin<'_>> {
    let writer = require_writer(identity)?;
    if !writer.identity.user.is_admin {
        return Err(Error::forbidden(format!(
            "{} is not an administrator of this registry",
            writer.identity.user.name
        )));
    }
    Ok(Admin { writer })
}
