//! Per-authorization-server signing keys with rotation: the JWKS publishes the current key, the
//! next one (so verifiers learn it before it signs) and the previous one (so tokens it signed
//! stay verifiable until they expire). Keys are PKCS#8 PEM files, mode 0600.

use std::path::Path;
use std::sync::Arc;

use jsonwebtoken::jwk::JwkSet;
use protocol::keys::{KeyKind, SigningKey, expose_pem, jwk_set};
use protocol::verify::StaticKeys;

use crate::fsutil::write_private;

/// One server's keys.
pub struct KeyRing {
    current: Arc<SigningKey>,
    next: Option<SigningKey>,
    previous: Option<SigningKey>,
    verifier: Arc<StaticKeys>,
}

impl KeyRing {
    /// Loads `dir/{current,next,previous}.pem`, generating `current` and `next` when absent.
    pub fn load_or_create(dir: &Path) -> anyhow::Result<Self> {
        std::fs::create_dir_all(dir)?;
        let current = load_or_generate(&dir.join("current.pem"))?;
        let next = Some(load_or_generate(&dir.join("next.pem"))?);
        let previous = load(&dir.join("previous.pem"))?;
        Ok(Self::assemble(current, next, previous))
    }

    /// A ring with one fresh key, kept in memory (tests, benchmarks).
    pub fn ephemeral() -> anyhow::Result<Self> {
        Ok(Self::assemble(
            SigningKey::generate(KeyKind::Rsa)?,
            None,
            None,
        ))
    }

    fn assemble(
        current: SigningKey,
        next: Option<SigningKey>,
        previous: Option<SigningKey>,
    ) -> Self {
        let jwks = jwk_set(
            [Some(&current), next.as_ref(), previous.as_ref()]
                .into_iter()
                .flatten(),
        );
        Self {
            current: Arc::new(current),
            next,
            previous,
            verifier: Arc::new(StaticKeys::new(&jwks)),
        }
    }

    /// Rotates the files in `dir`: next → current → previous, and a new next.
    pub fn rotate(dir: &Path) -> anyhow::Result<String> {
        let (current, next, previous) = (
            dir.join("current.pem"),
            dir.join("next.pem"),
            dir.join("previous.pem"),
        );
        load_or_generate(&current)?;
        load_or_generate(&next)?;
        std::fs::rename(&current, &previous)?;
        std::fs::rename(&next, &current)?;
        load_or_generate(&next)?;
        Ok(load_or_generate(&current)?.kid().to_owned())
    }

    /// The key that signs.
    pub fn signing_key(&self) -> &SigningKey {
        &self.current
    }

    /// The published key set.
    pub fn jwks(&self) -> JwkSet {
        jwk_set(
            [
                Some(self.current.as_ref()),
                self.next.as_ref(),
                self.previous.as_ref(),
            ]
            .into_iter()
            .flatten(),
        )
    }

    /// In-process verification keys (no HTTP round trip to our own JWKS).
    pub fn verifier_keys(&self) -> Arc<StaticKeys> {
        self.verifier.clone()
    }
}

fn load(path: &Path) -> anyhow::Result<Option<SigningKey>> {
    match std::fs::read_to_string(path) {
        Ok(pem) => Ok(Some(
            SigningKey::from_pem(&pem, None)
                .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?,
        )),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(anyhow::anyhow!("{}: {e}", path.display())),
    }
}

fn load_or_generate(path: &Path) -> anyhow::Result<SigningKey> {
    if let Some(key) = load(path)? {
        return Ok(key);
    }
    let key = SigningKey::generate(KeyKind::Rsa)?;
    write_private(path, expose_pem(&key))?;
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotation_keeps_previous_and_next_in_the_jwks() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let ring = KeyRing::load_or_create(dir.path())?;
        let first = ring.signing_key().kid().to_owned();
        assert_eq!(ring.jwks().keys.len(), 2);
        let announced_next = ring.jwks().keys[1].common.key_id.clone();
        let new_current = KeyRing::rotate(dir.path())?;
        assert_eq!(Some(new_current.clone()), announced_next);
        let ring = KeyRing::load_or_create(dir.path())?;
        assert_eq!(ring.signing_key().kid(), new_current);
        let kids: Vec<_> = ring
            .jwks()
            .keys
            .iter()
            .filter_map(|k| k.common.key_id.clone())
            .collect();
        assert_eq!(kids.len(), 3);
        assert!(kids.contains(&first), "the previous key stays published");
        Ok(())
    }
}
