//! Who may do what, decided in one place: [`decide`] is a pure function of the action and
//! what is known about the caller and the package, so the whole matrix is tested at once.
//!
//! Mutating operations take a proof (`Writer`, `Maintainer`, `Admin`) that only the functions
//! here construct, and they construct it only through [`decide`]: a readonly token cannot reach
//! a write through a forgotten check.

use crate::accounts::auth::Identity;
use crate::error::{Error, Result};
use crate::store::Db;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Read,
    /// A new version of an existing package, or a new package when there is none.
    Publish,
    Tag,
    Deprecate,
    Unpublish,
    ChangeOwners,
    Star,
    Block,
}

/// What a decision depends on.
#[derive(Debug, Clone, Copy, Default)]
pub struct Subject {
    pub authenticated: bool,
    pub readonly_token: bool,
    pub admin: bool,
    /// A maintainer of the package (false when the package does not exist yet).
    pub maintainer: bool,
    pub package_exists: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Allow,
    /// 401: log in first.
    NeedsLogin,
    /// 403: the token may only read.
    ReadonlyToken,
    /// 403: only the package's maintainers (or an admin) may do this.
    NotMaintainer,
    /// 403: only an administrator may do this.
    NotAdmin,
}

pub fn decide(action: Action, subject: Subject) -> Decision {
    if action == Action::Read {
        return Decision::Allow;
    }
    if !subject.authenticated {
        return Decision::NeedsLogin;
    }
    if subject.readonly_token {
        return Decision::ReadonlyToken;
    }
    match action {
        Action::Read | Action::Star => Decision::Allow,
        Action::Block if subject.admin => Decision::Allow,
        Action::Block => Decision::NotAdmin,
        Action::Publish if !subject.package_exists => Decision::Allow,
        Action::Publish
        | Action::Tag
        | Action::Deprecate
        | Action::Unpublish
        | Action::ChangeOwners => {
            if subject.admin || subject.maintainer {
                Decision::Allow
            } else {
                Decision::NotMaintainer
            }
        }
    }
}

fn enforce(decision: Decision, who: &str, package: &str) -> Result<()> {
    match decision {
        Decision::Allow => Ok(()),
        Decision::NeedsLogin => Err(Error::unauthorized(
            "you must be logged in to do this: run `npm login`",
        )),
        Decision::ReadonlyToken => Err(Error::forbidden(
            "this token is read-only and cannot be used to write",
        )),
        Decision::NotMaintainer => Err(Error::forbidden(format!(
            "{who} is not a maintainer of {package}"
        ))),
        Decision::NotAdmin => Err(Error::forbidden(format!(
            "{who} is not an administrator of this registry"
        ))),
    }
}

fn subject_of(identity: Option<&Identity>) -> Subject {
    Subject {
        authenticated: identity.is_some(),
        readonly_token: identity.is_some_and(Identity::readonly),
        admin: identity.is_some_and(|i| i.user.is_admin),
        ..Subject::default()
    }
}

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

/// Proof that the caller is an administrator (and not using a readonly token).
pub struct Admin<'a> {
    writer: Writer<'a>,
}

impl<'a> Admin<'a> {
    pub fn identity(&self) -> &'a Identity {
        self.writer.identity
    }
}

pub fn require_writer(identity: Option<&Identity>) -> Result<Writer<'_>> {
    // Starring is the least a writer can do: it needs exactly "logged in, not readonly".
    let name = identity.map(|i| i.user.name.as_str()).unwrap_or_default();
    enforce(decide(Action::Star, subject_of(identity)), name, "")?;
    let identity = identity.ok_or_else(|| Error::unauthorized("you must be logged in"))?;
    Ok(Writer { identity })
}

/// Checks `action` on an existing package inside the caller's transaction.
pub fn require_maintainer<'a>(
    db: &Db<'_>,
    writer: &'a Writer<'a>,
    action: Action,
    package_name: &str,
    package_id: i64,
) -> Result<Maintainer<'a>> {
    require_package_in_token(writer, package_name)?;
    let user = &writer.identity.user;
    let subject = Subject {
        maintainer: db.is_maintainer(package_id, user.id)?,
        package_exists: true,
        ..subject_of(Some(writer.identity))
    };
    enforce(decide(action, subject), &user.name, package_name)?;
    Ok(Maintainer { writer, package_id })
}

/// A granular token limited to some packages or scopes may write to those only, whoever
/// holds it (admins included). Also called before a new package is created.
pub fn require_package_in_token(writer: &Writer<'_>, package_name: &str) -> Result<()> {
    if writer.identity.may_write_package(package_name) {
        Ok(())
    } else {
        Err(Error::forbidden(format!(
            "this token is limited to other packages and cannot write to {package_name}"
        )))
    }
}

pub fn require_admin(identity: Option<&Identity>) -> Result<Admin<'_>> {
    let name = identity.map(|i| i.user.name.as_str()).unwrap_or_default();
    enforce(decide(Action::Block, subject_of(identity)), name, "")?;
    let identity = identity.ok_or_else(|| Error::unauthorized("you must be logged in"))?;
    Ok(Admin {
        writer: Writer { identity },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const ACTIONS: [Action; 8] = [
        Action::Read,
        Action::Publish,
        Action::Tag,
        Action::Deprecate,
        Action::Unpublish,
        Action::ChangeOwners,
        Action::Star,
        Action::Block,
    ];

    fn who(kind: &str) -> Subject {
        let logged_in = Subject {
            authenticated: true,
            package_exists: true,
            ..Subject::default()
        };
        match kind {
            "anonymous" => Subject {
                package_exists: true,
                ..Subject::default()
            },
            "readonly" => Subject {
                readonly_token: true,
                maintainer: true,
                ..logged_in
            },
            "stranger" => logged_in,
            "maintainer" => Subject {
                maintainer: true,
                ..logged_in
            },
            "admin" => Subject {
                admin: true,
                ..logged_in
            },
            _ => unreachable!("test table names only these"),
        }
    }

    #[test]
    fn the_authorization_matrix() {
        use Decision::*;
        // Columns: read, publish, tag, deprecate, unpublish, owners, star, block.
        let table: [(&str, [Decision; 8]); 5] = [
            (
                "anonymous",
                [
                    Allow, NeedsLogin, NeedsLogin, NeedsLogin, NeedsLogin, NeedsLogin, NeedsLogin,
                    NeedsLogin,
                ],
            ),
            (
                "readonly",
                [
                    Allow,
                    ReadonlyToken,
                    ReadonlyToken,
                    ReadonlyToken,
                    ReadonlyToken,
                    ReadonlyToken,
                    ReadonlyToken,
                    ReadonlyToken,
                ],
            ),
            (
                "stranger",
                [
                    Allow,
                    NotMaintainer,
                    NotMaintainer,
                    NotMaintainer,
                    NotMaintainer,
                    NotMaintainer,
                    Allow,
                    NotAdmin,
                ],
            ),
            (
                "maintainer",
                [Allow, Allow, Allow, Allow, Allow, Allow, Allow, NotAdmin],
            ),
            (
                "admin",
                [Allow, Allow, Allow, Allow, Allow, Allow, Allow, Allow],
            ),
        ];
        for (kind, expected) in table {
            for (action, want) in ACTIONS.iter().zip(expected) {
                assert_eq!(decide(*action, who(kind)), want, "{kind} × {action:?}");
            }
        }
    }

    #[test]
    fn anyone_logged_in_may_publish_a_new_package() {
        let stranger = Subject {
            authenticated: true,
            ..Subject::default()
        };
        assert_eq!(decide(Action::Publish, stranger), Decision::Allow);
        assert_eq!(decide(Action::Tag, stranger), Decision::NotMaintainer);
    }
}
