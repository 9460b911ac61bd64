//! Access tokens: random, shown once, stored only as a sha256 hash, looked up by that hash.

use sha2::{Digest, Sha256};

use crate::clock::now_iso;
use crate::error::{Error, Result};
use crate::store::{NewToken, Store, TokenRecord};

const TOKEN_ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
const TOKEN_RANDOM_CHARS: usize = 36;

#[derive(Debug, Default, Clone)]
pub struct TokenOptions {
    pub name: Option<String>,
    pub readonly: bool,
    pub cidr_whitelist: Vec<String>,
    pub expires_at: Option<String>,
}

/// A token just created: the secret is only ever available here.
pub struct IssuedToken {
    pub secret: String,
    pub record: TokenRecord,
}

pub fn hash_token(secret: &str) -> [u8; 32] {
    Sha256::digest(secret.as_bytes()).into()
}

pub fn create_token(store: &Store, user_id: i64, options: &TokenOptions) -> Result<IssuedToken> {
    let secret = generate_secret();
    let hash = hash_token(&secret);
    let key = hex::encode(rand::random::<[u8; 16]>());
    let display = secret[..8].to_string();
    let now = now_iso();
    store.write(|db| {
        if db.user_by_id(user_id)?.is_none() {
            return Err(Error::not_found("no such user"));
        }
        db.insert_token(&NewToken {
            key: &key,
            token_hash: &hash,
            display: &display,
            user_id,
            name: options.name.as_deref(),
            readonly: options.readonly,
            cidr_whitelist: &options.cidr_whitelist,
            created_at: &now,
            expires_at: options.expires_at.as_deref(),
        })?;
        let (record, _) = db
            .token_by_hash(&hash)?
            .ok_or_else(|| Error::Storage("the new token vanished".into()))?;
        Ok(IssuedToken {
            secret: secret.clone(),
            record,
        })
    })
}

/// Revokes the token with this secret. Revoking an unknown or already revoked token is not an
/// error: logout must always be able to finish.
pub fn revoke_token(store: &Store, secret: &str) -> Result<bool> {
    let hash = hash_token(secret);
    store.write(|db| db.delete_token_by_hash(&hash))
}

fn generate_secret() -> String {
    let mut secret = String::with_capacity(4 + TOKEN_RANDOM_CHARS);
    secret.push_str("npm_");
    for _ in 0..TOKEN_RANDOM_CHARS {
        let index = rand::random_range(0..TOKEN_ALPHABET.len());
        secret.push(TOKEN_ALPHABET[index] as char);
    }
    secret
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_look_like_npm_tokens_and_differ() {
        let a = generate_secret();
        let b = generate_secret();
        assert!(a.starts_with("npm_") && a.len() == 40, "{a}");
        assert!(a[4..].chars().all(|c| c.is_ascii_alphanumeric()));
        assert_ne!(a, b);
        assert_eq!(hash_token(&a), hash_token(&a));
        assert_ne!(hash_token(&a), hash_token(&b));
    }
}
