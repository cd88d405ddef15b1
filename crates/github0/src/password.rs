//! Passwords: Argon2id PHC strings (the `argon2` crate's defaults, as idp0's), checked on the
//! blocking pool with a bounded number of checks at once ([`Gate`]); when all are busy the
//! sign-in answers "try again" rather than queueing without end.

use std::sync::{Arc, LazyLock};
use std::time::Duration;

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, SaltString};
use argon2::{Argon2, PasswordHasher, PasswordVerifier};
use secrecy::{ExposeSecret, SecretString};
use tokio::sync::Semaphore;

/// Checked against when the login is unknown, so both paths cost the same.
static DUMMY_HASH: LazyLock<String> =
    LazyLock::new(|| hash(&crate::tokens::new_opaque()).unwrap_or_default());

fn hash(password: &str) -> Result<String, argon2::password_hash::Error> {
    let salt = SaltString::generate(&mut OsRng);
    Ok(Argon2::default()
        .hash_password(password.as_bytes(), &salt)?
        .to_string())
}

fn verify_now(password: &str, phc: &str) -> bool {
    PasswordHash::new(phc).is_ok_and(|parsed| {
        Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok()
    })
}

/// `current` if it is the hash of `password`, else a new hash (configuration at start).
pub(crate) fn keep_or_hash(
    password: &SecretString,
    current: Option<&str>,
) -> anyhow::Result<String> {
    if let Some(current) = current
        && verify_now(password.expose_secret(), current)
    {
        return Ok(current.to_owned());
    }
    hash(password.expose_secret()).map_err(|e| anyhow::anyhow!("hashing a password: {e}"))
}

/// At most [`Gate::CONCURRENT`] password checks at once.
#[derive(Debug, Clone)]
pub(crate) struct Gate {
    permits: Arc<Semaphore>,
}

/// The gate was full for too long.
#[derive(Debug)]
pub(crate) struct Busy;

impl Gate {
    const CONCURRENT: usize = 4;
    const WAIT: Duration = Duration::from_secs(2);

    pub(crate) fn new() -> Self {
        Self {
            permits: Arc::new(Semaphore::new(Self::CONCURRENT)),
        }
    }

    /// Whether `password` matches `phc` (`None`: an unknown login, checked against a dummy).
    pub(crate) async fn verify(
        &self,
        password: SecretString,
        phc: Option<String>,
    ) -> Result<bool, Busy> {
        let permit = tokio::time::timeout(Self::WAIT, self.permits.clone().acquire_owned())
            .await
            .map_err(|_| Busy)?
            .map_err(|_| Busy)?;
        let known = phc.is_some();
        let phc = phc.unwrap_or_else(|| DUMMY_HASH.clone());
        let ok = tokio::task::spawn_blocking(move || {
            let _permit = permit;
            verify_now(password.expose_secret(), &phc)
        })
        .await
        .map_err(|_| Busy)?;
        Ok(ok && known)
    }
}
