//! The token vault's encryption at rest: AES-256-GCM (NIST SP 800-38D) with a random 96-bit
//! nonce per encryption and the owner of the secret — (person, agent, connection, field) — as
//! associated data, so a ciphertext copied onto another person's row, or from the refresh-token
//! column into the access-token column, does not decrypt.
//!
//! The key is `IDP_VAULT_KEY` (base64 of 32 bytes) when set, else [`VAULT_KEY_FILE`] in the data
//! directory's keys (created 0600 on first start): replicas that share the keys directory share
//! the vault key, as they share the CSRF key.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use anyhow::Context;
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use secrecy::{ExposeSecret, SecretString};

/// The key's file in the keys directory: 32 random bytes, base64url, mode 0600.
pub const VAULT_KEY_FILE: &str = "vault.key";
/// The environment variable that may hold the key (standard base64 of 32 bytes).
pub const VAULT_KEY_ENV: &str = "IDP_VAULT_KEY";

/// What a sealed value belongs to (its associated data).
pub struct Owner<'a> {
    /// Person (user id).
    pub user_id: &'a str,
    /// Agent (client id).
    pub agent: &'a str,
    /// Connection (resource indicator).
    pub resource: &'a str,
    /// Which secret: `access`, `refresh` or `pkce`.
    pub field: &'a str,
}

impl Owner<'_> {
    fn aad(&self) -> Vec<u8> {
        [
            "idp0-vault-v1",
            self.user_id,
            self.agent,
            self.resource,
            self.field,
        ]
        .join("\0")
        .into_bytes()
    }
}

/// The vault's cipher.
pub struct VaultKey(Aes256Gcm);

impl VaultKey {
    /// A random key (tests, and idp0 without a keys directory).
    pub fn random() -> Self {
        let key: [u8; 32] = rand::random();
        Self::from_bytes(&key)
    }

    fn from_bytes(key: &[u8; 32]) -> Self {
        Self(Aes256Gcm::new(key.into()))
    }

    /// The key from `IDP_VAULT_KEY`, else from `keys_dir/`[`VAULT_KEY_FILE`] (created when
    /// missing), else random (no keys directory: nothing outlives the process anyway).
    pub fn load(keys_dir: Option<&std::path::Path>) -> anyhow::Result<Self> {
        if let Ok(value) = std::env::var(VAULT_KEY_ENV) {
            return Self::parse(STANDARD.decode(value.trim()).ok(), || {
                format!("{VAULT_KEY_ENV} must be the base64 of 32 random bytes")
            });
        }
        let Some(dir) = keys_dir else {
            return Ok(Self::random());
        };
        let path = dir.join(VAULT_KEY_FILE);
        if !path.exists() {
            std::fs::create_dir_all(dir)?;
            let fresh: [u8; 32] = rand::random();
            crate::fsutil::write_private(&path, &URL_SAFE_NO_PAD.encode(fresh))
                .with_context(|| format!("writing {}", path.display()))?;
        }
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("reading {}", path.display()))?;
        Self::parse(URL_SAFE_NO_PAD.decode(text.trim()).ok(), || {
            format!(
                "{} holds no 32-byte key (tokens sealed with it cannot be read without it)",
                path.display()
            )
        })
    }

    fn parse(bytes: Option<Vec<u8>>, why: impl FnOnce() -> String) -> anyhow::Result<Self> {
        let key: [u8; 32] = bytes.and_then(|b| b.try_into().ok()).with_context(why)?;
        Ok(Self::from_bytes(&key))
    }

    /// Seals `secret` for `owner`: base64url(nonce ‖ ciphertext ‖ tag).
    pub fn seal(&self, owner: &Owner<'_>, secret: &SecretString) -> anyhow::Result<String> {
        let nonce: [u8; 12] = rand::random();
        let aad = owner.aad();
        let sealed = self
            .0
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: secret.expose_secret().as_bytes(),
                    aad: &aad,
                },
            )
            .map_err(|_| anyhow::anyhow!("sealing a vault entry failed"))?;
        Ok(URL_SAFE_NO_PAD.encode([nonce.as_slice(), &sealed].concat()))
    }

    /// Opens what [`Self::seal`] sealed for the same `owner`; `None` when it was sealed with
    /// another key or for another owner, or was altered.
    pub fn open(&self, owner: &Owner<'_>, sealed: &str) -> Option<SecretString> {
        let bytes = URL_SAFE_NO_PAD.decode(sealed).ok()?;
        if bytes.len() < 12 + 16 {
            return None;
        }
        let (nonce, body) = bytes.split_at(12);
        let aad = owner.aad();
        let plain = self
            .0
            .decrypt(
                Nonce::from_slice(nonce),
                Payload {
                    msg: body,
                    aad: &aad,
                },
            )
            .ok()?;
        String::from_utf8(plain).ok().map(SecretString::from)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn owner<'a>(user: &'a str, field: &'a str) -> Owner<'a> {
        Owner {
            user_id: user,
            agent: "agent",
            resource: "https://api.github.com",
            field,
        }
    }

    #[test]
    fn a_sealed_token_opens_only_for_its_owner_and_field_under_its_key() {
        let key = VaultKey::random();
        let secret = SecretString::from("gho_secret".to_owned());
        let sealed = key.seal(&owner("alice", "access"), &secret).unwrap();
        assert!(!sealed.contains("gho_secret"));
        let again = key.seal(&owner("alice", "access"), &secret).unwrap();
        assert_ne!(sealed, again, "a fresh nonce per encryption");
        assert_eq!(
            key.open(&owner("alice", "access"), &sealed)
                .unwrap()
                .expose_secret(),
            "gho_secret"
        );
        assert!(key.open(&owner("bob", "access"), &sealed).is_none());
        assert!(key.open(&owner("alice", "refresh"), &sealed).is_none());
        assert!(
            VaultKey::random()
                .open(&owner("alice", "access"), &sealed)
                .is_none()
        );
        assert!(key.open(&owner("alice", "access"), "AAAA").is_none());
    }

    #[test]
    fn the_key_file_is_created_0600_and_reused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let first = VaultKey::load(Some(dir.path())).unwrap();
        let sealed = first
            .seal(&owner("a", "access"), &SecretString::from("t".to_owned()))
            .unwrap();
        let second = VaultKey::load(Some(dir.path())).unwrap();
        assert!(second.open(&owner("a", "access"), &sealed).is_some());
        let mode = std::fs::metadata(dir.path().join(VAULT_KEY_FILE))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}
