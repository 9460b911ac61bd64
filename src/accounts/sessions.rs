//! Browser sessions of the web UI: a random secret in an `HttpOnly` cookie, stored only as its
//! sha256 hash (like tokens), expiring, revocable, each with the CSRF token that its forms must
//! carry back. Signing in checks the password as every other login does (the caller applies
//! the login lockout and rate limit around it).

use time::{Duration, OffsetDateTime};

use crate::accounts::tokens::hash_token;
use crate::accounts::users::check_credentials;
use crate::clock::{iso, now_iso};
use crate::error::Result;
use crate::store::{Store, UserRecord};

/// How long a browser stays signed in without signing in again.
pub const SESSION_DAYS: i64 = 7;

#[derive(Debug, Clone)]
pub struct WebSession {
    pub id: i64,
    pub user: UserRecord,
    /// The token every form of this session carries back (compared in constant time).
    pub csrf: String,
    pub created_at: String,
    pub expires_at: String,
}

impl WebSession {
    /// Whether a submitted form's CSRF token is this session's.
    pub fn csrf_matches(&self, submitted: &str) -> bool {
        let (a, b) = (self.csrf.as_bytes(), submitted.as_bytes());
        a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
    }
}

/// A session just started: the cookie's secret exists only here.
pub struct NewSession {
    pub secret: String,
    pub session: WebSession,
}

fn random_text() -> String {
    hex::encode(rand::random::<[u8; 32]>())
}

/// Checks `name` and `password` and starts a session for the user.
pub fn sign_in(store: &Store, name: &str, password: &str) -> Result<NewSession> {
    let user = check_credentials(store, name, password)?;
    start_session(store, &user)
}

/// Starts a session for a user whose identity was already established.
pub fn start_session(store: &Store, user: &UserRecord) -> Result<NewSession> {
    let secret = random_text();
    let csrf = random_text();
    let now = OffsetDateTime::now_utc();
    let expires_at = iso(now + Duration::days(SESSION_DAYS));
    let now = iso(now);
    let hash = hash_token(&secret);
    let session = store.write(|db| {
        db.delete_expired_web_sessions(&now)?;
        let id = db.insert_web_session(&hash, user.id, &csrf, &now, &expires_at)?;
        Ok(WebSession {
            id,
            user: user.clone(),
            csrf: csrf.clone(),
            created_at: now.clone(),
            expires_at: expires_at.clone(),
        })
    })?;
    Ok(NewSession { secret, session })
}

/// The live session whose cookie secret this is.
pub fn session(store: &Store, secret: &str) -> Result<Option<WebSession>> {
    let hash = hash_token(secret);
    store.read(|db| db.web_session(&hash, &now_iso()))
}

/// Signs out: the session ends (signing out twice is not an error).
pub fn end_session(store: &Store, secret: &str) -> Result<()> {
    let hash = hash_token(secret);
    store.write(|db| db.delete_web_session(&hash)).map(|_| ())
}

/// Ends every browser session of a user.
pub fn end_sessions_of(store: &Store, user_id: i64) -> Result<u64> {
    store.write(|db| db.delete_web_sessions_of(user_id))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csrf_tokens_compare_whole() {
        let session = WebSession {
            id: 1,
            user: UserRecord {
                id: 1,
                name: "a".into(),
                email: String::new(),
                password_hash: String::new(),
                is_admin: false,
                created_at: String::new(),
                updated_at: String::new(),
                profile: Default::default(),
            },
            csrf: "abcd".into(),
            created_at: String::new(),
            expires_at: String::new(),
        };
        assert!(session.csrf_matches("abcd"));
        assert!(!session.csrf_matches("abc"));
        assert!(!session.csrf_matches("abce"));
        assert!(!session.csrf_matches(""));
    }
}
