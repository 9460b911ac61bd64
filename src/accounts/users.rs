//! Accounts: creating users, checking their passwords, and the profile that `npm profile`
//! reads and writes.

use serde_json::{Map, Value};

use crate::accounts::auth::Identity;
use crate::accounts::authz::{Admin, Writer};
use crate::accounts::password::{
    check_password_policy, hash_password, verify_password, waste_verification_time,
};
use crate::clock::now_iso;
use crate::error::{Error, Result};
use crate::packages::names::validate_username;
use crate::store::Store;

#[derive(Debug, Clone)]
pub struct UserRecord {
    pub id: i64,
    pub name: String,
    pub email: String,
    pub password_hash: String,
    pub is_admin: bool,
    pub created_at: String,
    pub updated_at: String,
    pub profile: ProfileFields,
}

/// The free-form profile fields `npm profile set` writes; `None` when unset.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProfileFields {
    pub fullname: Option<String>,
    pub homepage: Option<String>,
    pub twitter: Option<String>,
    pub github: Option<String>,
    pub freenode: Option<String>,
}

pub struct NewUser<'a> {
    pub name: &'a str,
    pub email: &'a str,
    pub password: &'a str,
    pub admin: bool,
}

/// Creates a user. Runs the password KDF: call it off the async threads.
pub fn create_user(store: &Store, new: &NewUser<'_>) -> Result<UserRecord> {
    validate_username(new.name)?;
    check_password_policy(new.password)?;
    if new.email.len() > 254 || new.email.chars().any(char::is_control) {
        return Err(Error::bad_request("invalid email address"));
    }
    let hash = hash_password(new.password);
    store.write(|db| {
        if db.user_by_name(new.name)?.is_some() {
            return Err(Error::conflict(format!(
                "user {:?} already exists",
                new.name
            )));
        }
        // Users and orgs share one namespace: the scope `@name`.
        if db.org_by_name(new.name)?.is_some() {
            return Err(Error::conflict(format!(
                "{:?} is the name of an org on this registry: choose another user name",
                new.name
            )));
        }
        let id = db.insert_user(new.name, new.email, &hash, new.admin, &now_iso())?;
        db.user_by_id(id)?
            .ok_or_else(|| Error::Storage("the new user vanished".into()))
    })
}

/// The user with this name and password. Unknown users and wrong passwords give the same
/// answer after the same work, so that names cannot be probed.
pub fn check_credentials(store: &Store, name: &str, password: &str) -> Result<UserRecord> {
    let user = store.read(|db| db.user_by_name(name))?;
    match user {
        Some(user) if verify_password(password, &user.password_hash) => Ok(user),
        Some(_) => Err(wrong_credentials()),
        None => {
            waste_verification_time(password);
            Err(wrong_credentials())
        }
    }
}

pub fn find_user(store: &Store, name: &str) -> Result<Option<UserRecord>> {
    store.read(|db| db.user_by_name(name))
}

/// The CouchDB `_rev` of a user document: URL-safe, and different after every change to the
/// account (npm's login retry only echoes it back).
pub fn user_rev(user: &UserRecord) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(format!("{}\0{}", user.id, user.updated_at).as_bytes());
    format!("1-{}", hex::encode(&digest[..16]))
}

fn wrong_credentials() -> Error {
    Error::unauthorized("incorrect username or password")
}

/// What `npm login` / `npm adduser` (the CouchDB-style `PUT /-/user/org.couchdb.user:NAME`)
/// asked for.
pub struct LoginRequest<'a> {
    pub name: &'a str,
    pub password: &'a str,
    /// Present when the client is creating an account (`npm adduser`).
    pub email: Option<&'a str>,
    /// Set when an administrator sends the request: they may create accounts even while
    /// registration is closed (cnpmcore's user API), and learn at once that a name is taken.
    pub admin: Option<&'a Admin<'a>>,
}

#[derive(Debug)]
pub enum LoginOutcome {
    LoggedIn(UserRecord),
    Registered(UserRecord),
}

/// Logs an existing user in, or creates the account when registration is open (or an
/// administrator asks). cnpmcore's rules: a wrong password is 401, creating while registration
/// is closed is 403, an `adduser` for an existing name with another email is 409.
pub fn login_or_register(
    store: &Store,
    registration: crate::config::Registration,
    request: &LoginRequest<'_>,
) -> Result<LoginOutcome> {
    let existing = store.read(|db| db.user_by_name(request.name))?;
    if let Some(existing) = existing {
        if request.admin.is_some() && request.email.is_some() {
            return Err(Error::conflict(format!(
                "user {:?} already exists",
                request.name
            )));
        }
        let user = check_credentials(store, request.name, request.password)?;
        if let Some(email) = request.email {
            if !email.trim().eq_ignore_ascii_case(&existing.email) {
                return Err(Error::conflict(format!(
                    "user {:?} already exists with another email address: log in with `npm \
                     login`, and change the address with `npm profile set email`",
                    request.name
                )));
            }
        }
        return Ok(LoginOutcome::LoggedIn(user));
    }
    if let (Some(_), Some(email)) = (request.admin, request.email) {
        validate_email(email)?;
        return create_user(
            store,
            &NewUser {
                name: request.name,
                email,
                password: request.password,
                admin: false,
            },
        )
        .map(LoginOutcome::Registered);
    }
    match (registration, request.email) {
        (crate::config::Registration::Open, email) => create_user(
            store,
            &NewUser {
                name: request.name,
                email: email.unwrap_or_default(),
                password: request.password,
                admin: false,
            },
        )
        .map(LoginOutcome::Registered),
        (crate::config::Registration::Closed, Some(_)) => Err(Error::forbidden(format!(
            "registration is closed on this registry: ask an administrator to run \
             `registry user add {}`",
            request.name
        ))),
        // A login (no email) for an unknown name looks exactly like a wrong password.
        (crate::config::Registration::Closed, None) => {
            check_credentials(store, request.name, request.password).map(LoginOutcome::LoggedIn)
        }
    }
}

/// Changing the account (tokens, profile, password) needs a credential that can do anything
/// the account can: a readonly or package-limited token must not mint itself a wider one or
/// take the account over.
pub fn account_holder<'a>(writer: &Writer<'a>) -> Result<&'a Identity> {
    let identity = writer.identity();
    if identity.is_package_limited() {
        return Err(Error::forbidden(
            "this token is limited to some packages and cannot manage the account: use a \
             token from `npm login`",
        ));
    }
    Ok(identity)
}

const MAX_EMAIL_LEN: usize = 254;
const MAX_PROFILE_FIELD_LEN: usize = 1024;

/// A plausible address: one `@`, something before it, a dotted domain after it, no spaces.
pub fn validate_email(email: &str) -> Result<()> {
    let invalid = || Error::bad_request(format!("{email:?} is not a valid email address"));
    if email.len() > MAX_EMAIL_LEN || email.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(invalid());
    }
    let (local, domain) = email.split_once('@').ok_or_else(invalid)?;
    let domain_ok = !domain.contains('@')
        && domain.contains('.')
        && domain.split('.').all(|label| !label.is_empty());
    if local.is_empty() || !domain_ok {
        return Err(invalid());
    }
    Ok(())
}

/// What `POST /-/npm/v1/user` asked to change. `None`: leave as it is.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ProfileUpdate {
    pub email: Option<String>,
    /// `Some(None)` clears the field.
    pub fullname: Option<Option<String>>,
    pub homepage: Option<Option<String>>,
    pub twitter: Option<Option<String>>,
    pub github: Option<Option<String>>,
    pub freenode: Option<Option<String>>,
    pub password: Option<PasswordChange>,
}

#[derive(Clone, PartialEq, Eq)]
pub struct PasswordChange {
    pub old: String,
    pub new: String,
}

impl std::fmt::Debug for PasswordChange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PasswordChange { .. }")
    }
}

/// Reads `npm profile set`'s body: every writable key (`email`, `fullname`, `homepage`,
/// `freenode`, `twitter`, `github`, and `password: {old, new}`), empty strings meaning null.
pub fn parse_profile_update(body: &Value) -> Result<ProfileUpdate> {
    let body = body
        .as_object()
        .ok_or_else(|| Error::bad_request("the profile must be a JSON object"))?;
    let mut update = ProfileUpdate::default();
    for (key, value) in body {
        match key.as_str() {
            "email" => match text(key, value)? {
                Some(email) => {
                    validate_email(&email)?;
                    update.email = Some(email);
                }
                None => return Err(Error::bad_request("the email address cannot be removed")),
            },
            "fullname" => update.fullname = Some(text(key, value)?),
            "homepage" => update.homepage = Some(text(key, value)?),
            "twitter" => update.twitter = Some(text(key, value)?),
            "github" => update.github = Some(text(key, value)?),
            "freenode" => update.freenode = Some(text(key, value)?),
            "password" => update.password = password_change(value)?,
            "tfa" => {
                return Err(Error::bad_request(
                    "this registry does not support two-factor authentication",
                ))
            }
            other => {
                return Err(Error::bad_request(format!(
                    "{other:?} is not a profile property that can be set: use email, \
                     fullname, homepage, freenode, twitter, github or password"
                )))
            }
        }
    }
    Ok(update)
}

/// A profile field: a string, or null / "" for none.
fn text(key: &str, value: &Value) -> Result<Option<String>> {
    match value {
        Value::Null => Ok(None),
        Value::String(s) if s.trim().is_empty() => Ok(None),
        Value::String(s)
            if s.len() <= MAX_PROFILE_FIELD_LEN && !s.chars().any(char::is_control) =>
        {
            Ok(Some(s.trim().to_string()))
        }
        Value::String(_) => Err(Error::bad_request(format!(
            "{key} must be at most {MAX_PROFILE_FIELD_LEN} bytes without control characters"
        ))),
        other => Err(Error::bad_request(format!(
            "{key} must be a string or null, not {other}"
        ))),
    }
}

fn password_change(value: &Value) -> Result<Option<PasswordChange>> {
    let field = |object: &Map<String, Value>, key: &str| match object.get(key) {
        Some(Value::String(s)) if !s.is_empty() => Ok(s.clone()),
        _ => Err(Error::bad_request(format!(
            "password.{key} is required to change the password"
        ))),
    };
    match value {
        Value::Null => Ok(None),
        Value::Object(object) => Ok(Some(PasswordChange {
            old: field(object, "old")?,
            new: field(object, "new")?,
        })),
        _ => Err(Error::bad_request(
            "password must be {\"old\": \"…\", \"new\": \"…\"}",
        )),
    }
}

/// Applies a profile update for the caller and returns the updated user. A password change
/// verifies the old password first and runs the KDF: call it off the async threads. The new
/// hash also ends every remembered Basic credential (the cache checks the stored hash).
pub fn update_profile(
    store: &Store,
    writer: &Writer<'_>,
    update: &ProfileUpdate,
) -> Result<UserRecord> {
    let user_id = account_holder(writer)?.user.id;
    let new_hash = match &update.password {
        None => None,
        Some(change) => {
            let current = store
                .read(|db| db.user_by_id(user_id))?
                .ok_or_else(|| Error::not_found("the account no longer exists"))?;
            if !verify_password(&change.old, &current.password_hash) {
                return Err(Error::unauthorized("the current password is incorrect"));
            }
            check_password_policy(&change.new)?;
            Some(hash_password(&change.new))
        }
    };
    store.write(|db| {
        let user = db
            .user_by_id(user_id)?
            .ok_or_else(|| Error::not_found("the account no longer exists"))?;
        let pick = |new: &Option<Option<String>>, old: &Option<String>| match new {
            Some(value) => value.clone(),
            None => old.clone(),
        };
        let profile = ProfileFields {
            fullname: pick(&update.fullname, &user.profile.fullname),
            homepage: pick(&update.homepage, &user.profile.homepage),
            twitter: pick(&update.twitter, &user.profile.twitter),
            github: pick(&update.github, &user.profile.github),
            freenode: pick(&update.freenode, &user.profile.freenode),
        };
        let email = update.email.as_deref().unwrap_or(&user.email);
        let now = now_iso();
        db.update_user_profile(user_id, email, &profile, &now)?;
        if let Some(hash) = &new_hash {
            db.set_password_hash(user_id, hash, &now)?;
        }
        db.user_by_id(user_id)?
            .ok_or_else(|| Error::Storage("the updated user vanished".into()))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_checked_for_shape() {
        for good in ["a@example.com", "first.last+tag@sub.example.org"] {
            assert!(validate_email(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "a",
            "a@b",
            "@example.com",
            "a@@example.com",
            "a b@example.com",
            "a@example.",
        ] {
            assert!(validate_email(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn profile_updates_as_npm_sends_them() -> Result<()> {
        let update = parse_profile_update(&serde_json::json!({
            "email": "alice@example.com", "fullname": "Alice B", "homepage": null,
            "freenode": "", "twitter": null, "github": "alice",
        }))?;
        assert_eq!(update.email.as_deref(), Some("alice@example.com"));
        assert_eq!(update.fullname, Some(Some("Alice B".into())));
        assert_eq!(update.homepage, Some(None));
        assert_eq!(update.freenode, Some(None), "empty strings clear a field");
        assert_eq!(update.github, Some(Some("alice".into())));
        assert!(update.password.is_none());
        let change = parse_profile_update(&serde_json::json!({
            "password": { "old": "a", "new": "b" }
        }))?;
        assert_eq!(
            change.password,
            Some(PasswordChange {
                old: "a".into(),
                new: "b".into()
            })
        );
        Ok(())
    }

    #[test]
    fn unsupported_profile_changes_are_refused() {
        for body in [
            serde_json::json!({ "tfa": { "mode": "auth-only", "password": "x" } }),
            serde_json::json!({ "name": "mallory" }),
            serde_json::json!({ "email": "" }),
            serde_json::json!({ "email": "not-an-email" }),
            serde_json::json!({ "fullname": 5 }),
            serde_json::json!({ "password": "new-password" }),
            serde_json::json!({ "password": { "new": "x" } }),
            serde_json::json!("fullname"),
        ] {
            assert!(
                parse_profile_update(&body).is_err(),
                "{body} should be refused"
            );
        }
    }
}
