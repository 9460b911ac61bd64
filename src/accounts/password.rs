//! Password hashes: PBKDF2-HMAC-SHA512, 210 000 rounds, 16-byte random salt, stored as a PHC
//! string (`$pbkdf2-sha512$i=210000,l=64$<salt>$<hash>`). Hashing is slow on purpose: callers
//! run it off the async threads.

use base64::engine::general_purpose::STANDARD_NO_PAD as B64;
use base64::Engine;
use sha2::Sha512;

use crate::error::{Error, Result};

const ROUNDS: u32 = 210_000;
const OUTPUT_LEN: usize = 64;
const SALT_LEN: usize = 16;
pub const MIN_PASSWORD_LEN: usize = 8;
pub const MAX_PASSWORD_LEN: usize = 1024;

pub fn check_password_policy(password: &str) -> Result<()> {
    if password.chars().count() < MIN_PASSWORD_LEN {
        return Err(Error::bad_request(format!(
            "the password is too short: use at least {MIN_PASSWORD_LEN} characters"
        )));
    }
    if password.len() > MAX_PASSWORD_LEN {
        return Err(Error::bad_request(format!(
            "the password is too long: at most {MAX_PASSWORD_LEN} bytes"
        )));
    }
    Ok(())
}

pub fn hash_password(password: &str) -> String {
    let salt: [u8; SALT_LEN] = rand::random();
    let mut out = [0u8; OUTPUT_LEN];
    pbkdf2::pbkdf2_hmac::<Sha512>(password.as_bytes(), &salt, ROUNDS, &mut out);
    format!(
        "$pbkdf2-sha512$i={ROUNDS},l={OUTPUT_LEN}${}${}",
        B64.encode(salt),
        B64.encode(out)
    )
}

/// True if `password` matches the PHC string. A malformed stored hash never matches.
pub fn verify_password(password: &str, phc: &str) -> bool {
    let Some((rounds, salt, expected)) = parse_phc(phc) else {
        return false;
    };
    let mut out = vec![0u8; expected.len()];
    pbkdf2::pbkdf2_hmac::<Sha512>(password.as_bytes(), &salt, rounds, &mut out);
    constant_time_eq(&out, &expected)
}

/// Spends the same time as a real verification, so that a login for an unknown user cannot be
/// told apart from a wrong password by its timing.
pub fn waste_verification_time(password: &str) {
    let mut out = [0u8; OUTPUT_LEN];
    pbkdf2::pbkdf2_hmac::<Sha512>(password.as_bytes(), &[0u8; SALT_LEN], ROUNDS, &mut out);
}

fn parse_phc(phc: &str) -> Option<(u32, Vec<u8>, Vec<u8>)> {
    let mut parts = phc.split('$');
    if parts.next() != Some("") || parts.next() != Some("pbkdf2-sha512") {
        return None;
    }
    let params = parts.next()?;
    let salt = B64.decode(parts.next()?).ok()?;
    let hash = B64.decode(parts.next()?).ok()?;
    if parts.next().is_some() || hash.len() < 16 {
        return None;
    }
    let mut rounds = None;
    for param in params.split(',') {
        if let Some(value) = param.strip_prefix("i=") {
            rounds = value.parse::<u32>().ok();
        }
    }
    let rounds = rounds.filter(|r| *r >= 1000)?;
    Some((rounds, salt, hash))
}

pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_verify_and_are_salted() {
        let one = hash_password("correct horse");
        let two = hash_password("correct horse");
        assert!(one.starts_with("$pbkdf2-sha512$i=210000,l=64$"));
        assert_ne!(one, two, "each hash has its own salt");
        assert!(verify_password("correct horse", &one));
        assert!(!verify_password("correct horsf", &one));
        assert!(!verify_password(
            "correct horse",
            "$pbkdf2-sha512$i=10,l=64$AAAA$AAAA"
        ));
        assert!(!verify_password("x", "garbage"));
    }

    #[test]
    fn policy_refuses_short_passwords() {
        assert!(check_password_policy("short").is_err());
        assert!(check_password_policy("long enough").is_ok());
    }
}
