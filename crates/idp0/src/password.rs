//! Password hashing with Argon2id (RFC 9106; the `argon2` crate's defaults: m=19 MiB, t=2, p=1).
//! Logins check passwords only through [`crate::login_guard::PasswordGate`], which runs
//! [`verify_now`] on the blocking pool with a fixed number of checks at once.

use std::sync::LazyLock;

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, SaltString};
use argon2::{Argon2, PasswordHasher, PasswordVerifier};

/// A hash of a random password, verified against when the username is unknown so that both
/// paths cost the same.
pub static DUMMY_HASH: LazyLock<String> =
    LazyLock::new(|| hash(&crate::tokens::new_secret()).unwrap_or_default());

/// Hashes a password into a PHC string.
pub fn hash(password: &str) -> Result<String, argon2::password_hash::Error> {
    let salt = SaltString::generate(&mut OsRng);
    Ok(Argon2::default()
        .hash_password(password.as_bytes(), &salt)?
        .to_string())
}

/// Checks a password against a PHC string, on the calling thread (≈19 MiB, tens of ms): call it
/// through the gate, never directly from a request.
pub fn verify_now(password: &str, phc: &str) -> bool {
    PasswordHash::new(phc).is_ok_and(|parsed| {
        Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hash_verifies_only_its_password() -> Result<(), argon2::password_hash::Error> {
        let phc = hash("correct horse")?;
        assert!(phc.starts_with("$argon2id$"));
        assert!(verify_now("correct horse", &phc));
        assert!(!verify_now("wrong", &phc));
        assert!(!verify_now("x", "not a phc string"));
        Ok(())
    }
}
