//! Who may do what, decided in one place: [`decide`] is a pure function of the action and
//! what is known about the caller and the package, so the whole matrix is tested at once.
//!
//! Mutating operations take a proof (`Writer`, `Maintainer`, `Admin`) that only the functions
//! here construct, and they construct it only through [`decide`]: a readonly token cannot reach
//! a write through a forgotten check.

use crate::access::{scope_of, OrgRole, PackageRights, TeamPermission};
use crate::accounts::auth::Identity;
use crate::error::{Error, Result};
use crate::store::{Db, PackageRecord};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Read,
    /// A new version of an existing package, or a new package when there is none.
    Publish,
    Tag,
    Deprecate,
    Unpublish,
    ChangeOwners,
    /// Make a package public or restricted.
    SetAccess,
    Star,
    Block,
    /// Change an org's members (other than its owners), teams and team grants.
    ManageOrg,
    /// Make or unmake an org's owners.
    ManageOrgOwners,
    /// See an org's members and teams.
    ReadOrg,
}

/// Who owns the scope of a package that does not exist yet.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ScopeOwner {
    /// No org and no user has that name (or the name is unscoped): first come, first served.
    #[default]
    Unclaimed,
    /// The caller's own scope, or an org the caller is a member of.
    Caller,
    /// Another user's scope, or an org the caller is not in.
    Other,
}

/// What a decision depends on.
#[derive(Debug, Clone, Copy, Default)]
pub struct Subject {
    pub authenticated: bool,
    pub readonly_token: bool,
    pub admin: bool,
    /// A granular token whose package, scope or org limits leave this package (or org) out.
    pub outside_token: bool,
    pub package_exists: bool,
    pub restricted: bool,
    /// A maintainer of the package (false when the package does not exist yet).
    pub maintainer: bool,
    /// The best grant the caller's teams hold on the package.
    pub team: Option<TeamPermission>,
    /// The caller's role in the org of the package's scope (or in the org acted on).
    pub org_role: Option<OrgRole>,
    /// For a package that does not exist yet: whose scope it would be in.
    pub scope_owner: ScopeOwner,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Allow,
    /// 404: the caller may not know the package (or org) exists.
    Hidden,
    /// 401: log in first.
    NeedsLogin,
    /// 403: the token may only read.
    ReadonlyToken,
    /// 403: the token is limited to other packages or orgs.
    OutsideToken,
    /// 403: only the package's maintainers (or an admin) may do this.
    NotMaintainer,
    /// 403: the scope belongs to another user or an org the caller is not in.
    ScopeNotYours,
    /// 403: only the org's owners and admins may do this.
    NotOrgManager,
    /// 403: only the org's owners may do this.
    NotOrgOwner,
    /// 403: only an administrator may do this.
    NotAdmin,
}

pub fn decide(action: Action, subject: Subject) -> Decision {
    let manages_org = subject.org_role.is_some_and(OrgRole::manages);
    let sees_package = !subject.restricted
        || (subject.authenticated
            && !subject.outside_token
            && (subject.admin || subject.maintainer || subject.team.is_some() || manages_org));
    match action {
        Action::Read if sees_package => return Decision::Allow,
        Action::Read => return Decision::Hidden,
        Action::ReadOrg if !subject.authenticated => return Decision::NeedsLogin,
        Action::ReadOrg if subject.outside_token => return Decision::OutsideToken,
        Action::ReadOrg if subject.admin || subject.org_role.is_some() => return Decision::Allow,
        Action::ReadOrg => return Decision::Hidden,
        _ => {}
    }
    if !subject.authenticated {
        return Decision::NeedsLogin;
    }
    if subject.readonly_token {
        return Decision::ReadonlyToken;
    }
    if subject.package_exists && !sees_package {
        return Decision::Hidden;
    }
    if subject.outside_token && action != Action::Star {
        return Decision::OutsideToken;
    }
    let changes_package = subject.admin || subject.maintainer || manages_org;
    match action {
        Action::Read | Action::ReadOrg | Action::Star => Decision::Allow,
        Action::Block if subject.admin => Decision::Allow,
        Action::Block => Decision::NotAdmin,
        Action::ManageOrg if subject.admin || manages_org => Decision::Allow,
        Action::ManageOrg => Decision::NotOrgManager,
        Action::ManageOrgOwners if subject.admin || subject.org_role == Some(OrgRole::Owner) => {
            Decision::Allow
        }
        Action::ManageOrgOwners => Decision::NotOrgOwner,
        Action::Publish if !subject.package_exists => match subject.scope_owner {
            ScopeOwner::Other if !subject.admin => Decision::ScopeNotYours,
            _ => Decision::Allow,
        },
        Action::Publish | Action::Tag | Action::Deprecate => {
            if changes_package || subject.team == Some(TeamPermission::ReadWrite) {
                Decision::Allow
            } else {
                Decision::NotMaintainer
            }
        }
        Action::Unpublish | Action::ChangeOwners | Action::SetAccess => {
            if changes_package {
                Decision::Allow
            } else {
                Decision::NotMaintainer
            }
        }
    }
}

fn enforce(decision: Decision, who: &str, target: &str) -> Result<()> {
    match decision {
        Decision::Allow => Ok(()),
        Decision::Hidden => Err(crate::access::hidden(target)),
        Decision::NeedsLogin => Err(Error::unauthorized(
            "you must be logged in to do this: run `npm login`",
        )),
        Decision::ReadonlyToken => Err(Error::forbidden(
            "this token is read-only and cannot be used to write",
        )),
        Decision::OutsideToken => Err(Error::forbidden(format!(
            "this token is limited to other packages or orgs and cannot be used for {target}"
        ))),
        Decision::NotMaintainer => Err(Error::forbidden(format!(
            "{who} is not a maintainer of {target}"
        ))),
        Decision::ScopeNotYours => Err(Error::forbidden(format!(
            "the scope of {target} belongs to another user or to an org {who} is not a \
             member of: publish under your own scope (@{who}/…) or ask the org's owners"
        ))),
        Decision::NotOrgManager => Err(Error::forbidden(format!(
            "{who} is not an owner or admin of the org {target}"
        ))),
        Decision::NotOrgOwner => Err(Error::forbidden(format!(
            "only an owner of the org {target} may add, change or remove its owners"
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

/// The subject for `identity` acting on an existing package with these rights.
pub fn subject_for_package(
    identity: &Identity,
    name: &str,
    package_exists: bool,
    restricted: bool,
    rights: PackageRights,
) -> Subject {
    Subject {
        outside_token: !identity.may_reach_package(name),
        package_exists,
        restricted,
        maintainer: rights.maintainer,
        team: rights.team,
        org_role: rights.org_role,
        ..subject_of(Some(identity))
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
    package: &PackageRecord,
) -> Result<Maintainer<'a>> {
    let user = &writer.identity.user;
    let rights = db.package_rights(package.id, scope_of(&package.name), user.id)?;
    let subject = subject_for_package(
        writer.identity,
        &package.name,
        true,
        package.restricted,
        rights,
    );
    enforce(decide(action, subject), &user.name, &package.name)?;
    Ok(Maintainer {
        writer,
        package_id: package.id,
    })
}

/// Checks that the caller may create `package_name`: their token reaches it, and its scope
/// is unclaimed, their own, or an org they are a member of.
pub fn require_new_package(db: &Db<'_>, writer: &Writer<'_>, package_name: &str) -> Result<()> {
    let user = &writer.identity.user;
    let scope_owner = match scope_of(package_name) {
        None => ScopeOwner::Unclaimed,
        Some(scope) if scope == user.name => ScopeOwner::Caller,
        Some(scope) => match db.org_by_name(scope)? {
            Some(org) if db.org_role(org.id, user.id)?.is_some() => ScopeOwner::Caller,
            Some(_) => ScopeOwner::Other,
            None if db.user_by_name(scope)?.is_some() => ScopeOwner::Other,
            None => ScopeOwner::Unclaimed,
        },
    };
    let subject = Subject {
        outside_token: !writer.identity.may_reach_package(package_name),
        scope_owner,
        ..subject_of(Some(writer.identity))
    };
    enforce(decide(Action::Publish, subject), &user.name, package_name)
}

/// Checks `action` (one of the org actions) on the org `org_id` named `org`.
pub fn require_org(
    db: &Db<'_>,
    identity: Option<&Identity>,
    action: Action,
    org_id: i64,
    org: &str,
) -> Result<()> {
    let subject = match identity {
        Some(identity) => Subject {
            outside_token: !identity.may_manage_org(org, action != Action::ReadOrg),
            org_role: db.org_role(org_id, identity.user.id)?,
            ..subject_of(Some(identity))
        },
        None => Subject::default(),
    };
    let who = identity.map(|i| i.user.name.as_str()).unwrap_or_default();
    match decide(action, subject) {
        // The same 404 as for an org that does not exist (`orgs::org_named`), not the
        // package sentence `enforce` would give.
        Decision::Hidden => Err(Error::not_found(format!("no org named {org}"))),
        decision => enforce(decision, who, org),
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

    /// The actions on an existing package, in the columns of the tables below.
    const ACTIONS: [Action; 8] = [
        Action::Read,
        Action::Publish,
        Action::Tag,
        Action::Deprecate,
        Action::Unpublish,
        Action::ChangeOwners,
        Action::SetAccess,
        Action::Star,
    ];

    #[derive(Clone, Copy)]
    enum Package {
        Public,
        Restricted,
        /// Restricted, in the scope of an org.
        InOrg,
    }

    fn who(kind: &str, package: Package) -> Subject {
        let base = Subject {
            package_exists: true,
            restricted: !matches!(package, Package::Public),
            ..Subject::default()
        };
        let logged_in = Subject {
            authenticated: true,
            ..base
        };
        match kind {
            "anonymous" => base,
            "stranger" => logged_in,
            "maintainer" => Subject {
                maintainer: true,
                ..logged_in
            },
            "read-only team" => Subject {
                team: Some(TeamPermission::ReadOnly),
                ..logged_in
            },
            "read-write team" => Subject {
                team: Some(TeamPermission::ReadWrite),
                ..logged_in
            },
            // An owner of the org `acme`; only the third package is in its scope.
            "org owner" => Subject {
                org_role: matches!(package, Package::InOrg).then_some(OrgRole::Owner),
                ..logged_in
            },
            "org developer" => Subject {
                org_role: matches!(package, Package::InOrg).then_some(OrgRole::Developer),
                ..logged_in
            },
            "admin" => Subject {
                admin: true,
                ..logged_in
            },
            // A maintainer of all three, holding a token limited to the org `acme`.
            "org-limited token" => Subject {
                maintainer: true,
                outside_token: !matches!(package, Package::InOrg),
                ..logged_in
            },
            "read-only token" => Subject {
                maintainer: true,
                readonly_token: true,
                ..logged_in
            },
            _ => unreachable!("the tables name only these"),
        }
    }

    fn decision(code: char) -> Decision {
        match code {
            'A' => Decision::Allow,
            'H' => Decision::Hidden,
            'L' => Decision::NeedsLogin,
            'R' => Decision::ReadonlyToken,
            'O' => Decision::OutsideToken,
            'M' => Decision::NotMaintainer,
            _ => unreachable!("the tables use only these codes"),
        }
    }

    /// Columns: read, publish, tag, deprecate, unpublish, owners, set access, star.
    /// A allow, H hidden (404), L log in (401), R read-only token, O outside the token's
    /// limits, M not a maintainer (403).
    #[test]
    fn the_authorization_matrix() {
        let table: [(&str, [&str; 3]); 10] = [
            //                   public      restricted  restricted in an org
            ("anonymous", ["ALLLLLLL", "HLLLLLLL", "HLLLLLLL"]),
            ("stranger", ["AMMMMMMA", "HHHHHHHH", "HHHHHHHH"]),
            ("maintainer", ["AAAAAAAA", "AAAAAAAA", "AAAAAAAA"]),
            ("read-only team", ["AMMMMMMA", "AMMMMMMA", "AMMMMMMA"]),
            ("read-write team", ["AAAAMMMA", "AAAAMMMA", "AAAAMMMA"]),
            ("org owner", ["AMMMMMMA", "HHHHHHHH", "AAAAAAAA"]),
            ("org developer", ["AMMMMMMA", "HHHHHHHH", "HHHHHHHH"]),
            ("admin", ["AAAAAAAA", "AAAAAAAA", "AAAAAAAA"]),
            ("org-limited token", ["AOOOOOOA", "HHHHHHHH", "AAAAAAAA"]),
            ("read-only token", ["ARRRRRRR", "ARRRRRRR", "ARRRRRRR"]),
        ];
        let packages = [Package::Public, Package::Restricted, Package::InOrg];
        for (kind, rows) in table {
            for (package, row) in packages.iter().zip(rows) {
                for (action, code) in ACTIONS.iter().zip(row.chars()) {
                    assert_eq!(
                        decide(*action, who(kind, *package)),
                        decision(code),
                        "{kind} × {action:?} on a {} package",
                        ["public", "restricted", "restricted org"][*package as usize]
                    );
                }
            }
        }
    }

    #[test]
    fn new_packages_go_to_whoever_owns_the_scope() {
        let caller = |scope_owner, admin| Subject {
            authenticated: true,
            admin,
            scope_owner,
            ..Subject::default()
        };
        use ScopeOwner::*;
        assert_eq!(
            decide(Action::Publish, caller(Unclaimed, false)),
            Decision::Allow
        );
        assert_eq!(
            decide(Action::Publish, caller(Caller, false)),
            Decision::Allow
        );
        assert_eq!(
            decide(Action::Publish, caller(Other, false)),
            Decision::ScopeNotYours
        );
        assert_eq!(
            decide(Action::Publish, caller(Other, true)),
            Decision::Allow
        );
        let limited = Subject {
            outside_token: true,
            ..caller(Caller, false)
        };
        assert_eq!(decide(Action::Publish, limited), Decision::OutsideToken);
        assert_eq!(
            decide(Action::Tag, caller(Unclaimed, false)),
            Decision::NotMaintainer
        );
    }

    #[test]
    fn org_rights_follow_the_role() {
        let member = |role: Option<OrgRole>| Subject {
            authenticated: true,
            org_role: role,
            ..Subject::default()
        };
        let actions = [Action::ReadOrg, Action::ManageOrg, Action::ManageOrgOwners];
        let table = [
            (
                None,
                [
                    Decision::Hidden,
                    Decision::NotOrgManager,
                    Decision::NotOrgOwner,
                ],
            ),
            (
                Some(OrgRole::Developer),
                [
                    Decision::Allow,
                    Decision::NotOrgManager,
                    Decision::NotOrgOwner,
                ],
            ),
            (
                Some(OrgRole::Admin),
                [Decision::Allow, Decision::Allow, Decision::NotOrgOwner],
            ),
            (
                Some(OrgRole::Owner),
                [Decision::Allow, Decision::Allow, Decision::Allow],
            ),
        ];
        for (role, expected) in table {
            for (action, want) in actions.iter().zip(expected) {
                assert_eq!(decide(*action, member(role)), want, "{role:?} × {action:?}");
            }
        }
        assert_eq!(
            decide(Action::ReadOrg, Subject::default()),
            Decision::NeedsLogin
        );
        let admin = Subject {
            admin: true,
            ..member(None)
        };
        assert!(actions.iter().all(|a| decide(*a, admin) == Decision::Allow));
        let readonly = Subject {
            readonly_token: true,
            ..member(Some(OrgRole::Owner))
        };
        assert_eq!(decide(Action::ReadOrg, readonly), Decision::Allow);
        assert_eq!(decide(Action::ManageOrg, readonly), Decision::ReadonlyToken);
        let outside = Subject {
            outside_token: true,
            ..member(Some(OrgRole::Owner))
        };
        assert_eq!(decide(Action::ManageOrg, outside), Decision::OutsideToken);
        assert_eq!(decide(Action::Block, member(None)), Decision::NotAdmin);
    }
}
