//! Accounts: creating users and checking their passwords.

use crate::clock::now_iso;
use crate::error::{Error, Result};
use crate::names::validate_username;
use crate::password::{
    check_password_policy, hash_password, verify_password, waste_verification_time,
};
use crate::store::{Store, UserRecord};

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
}

#[derive(Debug)]
pub enum LoginOutcome {
    LoggedIn(UserRecord),
    Registered(UserRecord),
}

/// Logs an existing user in, or creates the account when registration is open.
pub fn login_or_register(
    store: &Store,
    registration: crate::config::Registration,
    request: &LoginRequest<'_>,
) -> Result<LoginOutcome> {
    let exists = store.read(|db| db.user_by_name(request.name))?.is_some();
    if exists {
        return check_credentials(store, request.name, request.password)
            .map(LoginOutcome::LoggedIn);
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
