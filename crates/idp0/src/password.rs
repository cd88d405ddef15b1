//! Password hashing with Argon2id (RFC 9106; the `argon2` crate's defaults: m=19 MiB, t=2, p=1),
//! run on the blocking pool so a login never stalls the async runtime.

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

/// Checks a password against a PHC string.
pub async fn verify(password: &str, phc: &str) -> bool {
    let (password, phc) = (password.to_owned(), phc.to_owned());
    tokio::task::spawn_blocking(move || {
        PasswordHash::new(&phc).is_ok_and(|parsed| {
            Argon2::default()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok()
        })
    })
    .await
    .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_hash_verifies_only_its_password() -> Result<(), argon2::password_hash::Error> {
        let phc = hash("correct horse")?;
        assert!(phc.starts_with("$argon2id$"));
        assert!(verify("correct horse", &phc).await);
        assert!(!verify("wrong", &phc).await);
        assert!(!verify("x", "not a phc string").await);
        Ok(())
    }
}
