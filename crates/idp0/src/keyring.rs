//! Per-authorization-server signing keys with rotation: the JWKS publishes the current key, the
//! next one (so verifiers learn it before it signs) and the previous one (so tokens it signed
//! stay verifiable until they expire). Keys are PKCS#8 PEM files, mode 0600.
//!
//! Each ring signs with one kind of key, the server's configured `signing_alg` (RSA 2048 for
//! RS256, P-256 for ES256). When a ring on disk holds a current key of another kind, opening it
//! switches: the announced `next` key becomes current when it is of the configured kind, else a
//! new key does; the old current key becomes `previous` (still published, so the tokens it signed
//! verify until they expire); a `next` of the old kind is replaced by a new one. Nothing is
//! deleted: a key moved out of the ring (the `previous` before the switch, a `next` of the old
//! kind) is kept beside it as `retired-<kid>.pem`, no longer published, and the switch is logged.

use std::path::Path;
use std::sync::Arc;

use jsonwebtoken::Algorithm;
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
    /// Loads `dir/{current,next,previous}.pem`, generating `current` and `next` of `kind` when
    /// absent, and switching the ring to `kind` when its current key is of another (see the
    /// module's documentation).
    pub fn load_or_create(dir: &Path, kind: KeyKind) -> anyhow::Result<Self> {
        std::fs::create_dir_all(dir)?;
        let (current_path, next_path, previous_path) = paths(dir);
        if let Some(current) = load(&current_path)?
            && kind_of(&current) != kind
        {
            switch(dir, &current, kind)?;
        }
        let current = load_or_generate(&current_path, kind)?;
        if let Some(next) = load(&next_path)?
            && kind_of(&next) != kind
        {
            retire(
                dir,
                &next_path,
                &next,
                "an announced next key of another kind",
            )?;
        }
        let next = Some(load_or_generate(&next_path, kind)?);
        let previous = load(&previous_path)?;
        Ok(Self::assemble(current, next, previous))
    }

    /// A ring with one fresh key of `kind`, kept in memory (tests, benchmarks).
    pub fn ephemeral(kind: KeyKind) -> anyhow::Result<Self> {
        Ok(Self::assemble(SigningKey::generate(kind)?, None, None))
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

    /// Rotates the files in `dir`: next → current → previous, and a new next of the same kind.
    pub fn rotate(dir: &Path) -> anyhow::Result<String> {
        let (current, next, previous) = paths(dir);
        let kind = match load(&current)? {
            Some(key) => kind_of(&key),
            None => KeyKind::default(),
        };
        load_or_generate(&current, kind)?;
        load_or_generate(&next, kind)?;
        std::fs::rename(&current, &previous)?;
        std::fs::rename(&next, &current)?;
        let signing = load_or_generate(&current, kind)?;
        load_or_generate(&next, kind_of(&signing))?;
        Ok(signing.kid().to_owned())
    }

    /// The kind of key this ring signs with.
    pub fn kind(&self) -> KeyKind {
        kind_of(&self.current)
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

fn paths(dir: &Path) -> (std::path::PathBuf, std::path::PathBuf, std::path::PathBuf) {
    (
        dir.join("current.pem"),
        dir.join("next.pem"),
        dir.join("previous.pem"),
    )
}

fn load_or_generate(path: &Path, kind: KeyKind) -> anyhow::Result<SigningKey> {
    if let Some(key) = load(path)? {
        return Ok(key);
    }
    let key = SigningKey::generate(kind)?;
    write_private(path, expose_pem(&key))?;
    Ok(key)
}

/// The kind of key `key` is, from the algorithm it is pinned to.
fn kind_of(key: &SigningKey) -> KeyKind {
    match key.alg() {
        Algorithm::ES256 => KeyKind::P256,
        Algorithm::EdDSA => KeyKind::Ed25519,
        _ => KeyKind::Rsa,
    }
}

/// Makes a key of `kind` current in `dir`, whose current key `old` is of another kind: the
/// announced next key when it is of `kind`, else a new one; `old` becomes previous. Each step is
/// a rename, so a start interrupted half-way finds a ring the next start completes.
fn switch(dir: &Path, old: &SigningKey, kind: KeyKind) -> anyhow::Result<()> {
    let (current_path, next_path, previous_path) = paths(dir);
    if let Some(previous) = load(&previous_path)? {
        retire(dir, &previous_path, &previous, "the previous key")?;
    }
    std::fs::rename(&current_path, &previous_path)?;
    let promoted = match load(&next_path)? {
        Some(next) if kind_of(&next) == kind => {
            std::fs::rename(&next_path, &current_path)?;
            next
        }
        _ => load_or_generate(&current_path, kind)?,
    };
    tracing::warn!(
        dir = %dir.display(),
        from = ?old.alg(),
        to = ?promoted.alg(),
        previous_kid = old.kid(),
        current_kid = promoted.kid(),
        "signing algorithm changed: a new key signs; the old one stays published as previous"
    );
    Ok(())
}

/// Moves `key` (at `path`) out of the ring to `dir/retired-<kid>.pem`: no longer published, not
/// deleted.
fn retire(dir: &Path, path: &Path, key: &SigningKey, what: &str) -> anyhow::Result<()> {
    let to = dir.join(format!("retired-{}.pem", key.kid()));
    std::fs::rename(path, &to)?;
    tracing::warn!(kid = key.kid(), to = %to.display(), "{what} is no longer published");
    Ok(())
}

#[cfg(test)]
mod tests {
    use protocol::Clock;
    use protocol::verify::{Expectations, JwtVerifier, TypeRule};

    use super::*;

    #[test]
    fn rotation_keeps_previous_and_next_in_the_jwks() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let ring = KeyRing::load_or_create(dir.path(), KeyKind::Rsa)?;
        let first = ring.signing_key().kid().to_owned();
        assert_eq!(ring.jwks().keys.len(), 2);
        let announced_next = ring.jwks().keys[1].common.key_id.clone();
        let new_current = KeyRing::rotate(dir.path())?;
        assert_eq!(Some(new_current.clone()), announced_next);
        let ring = KeyRing::load_or_create(dir.path(), KeyKind::Rsa)?;
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

    fn kids(ring: &KeyRing) -> Vec<String> {
        ring.jwks()
            .keys
            .iter()
            .filter_map(|k| k.common.key_id.clone())
            .collect()
    }

    #[tokio::test]
    async fn switching_to_es256_keeps_the_rsa_key_published_as_previous() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let rsa = KeyRing::load_or_create(dir.path(), KeyKind::Rsa)?;
        let (old_current, old_next) = (
            rsa.signing_key().kid().to_owned(),
            rsa.next.as_ref().map(|k| k.kid().to_owned()),
        );
        KeyRing::rotate(dir.path())?;
        let before_switch = KeyRing::load_or_create(dir.path(), KeyKind::Rsa)?;
        assert_eq!(Some(before_switch.signing_key().kid().to_owned()), old_next);

        let ring = KeyRing::load_or_create(dir.path(), KeyKind::P256)?;
        assert_eq!(ring.signing_key().alg(), Algorithm::ES256);
        assert_eq!(ring.kind(), KeyKind::P256);
        let previous = ring
            .previous
            .as_ref()
            .map(|k| (k.kid().to_owned(), k.alg()));
        assert_eq!(
            previous,
            Some((
                before_switch.signing_key().kid().to_owned(),
                Algorithm::RS256
            )),
            "the RSA key that signed until now is previous"
        );
        assert_eq!(
            ring.next.as_ref().map(SigningKey::alg),
            Some(Algorithm::ES256),
            "next follows the configured kind"
        );
        let published = kids(&ring);
        assert_eq!(published.len(), 3);
        assert!(published.contains(&before_switch.signing_key().kid().to_owned()));

        // A token the RSA key signed before the switch still verifies with the new ring's keys.
        let now = protocol::SystemClock.now();
        let claims =
            serde_json::json!({"iss": "i", "aud": "a", "sub": "x", "iat": now, "exp": now + 60});
        let token = before_switch.signing_key().sign("JWT", &claims)?;
        let verifier = JwtVerifier::new(ring.verifier_keys(), protocol::clock::system());
        let expect = Expectations::new("i", "a", TypeRule::ANY);
        let verified = verifier
            .verify::<serde_json::Value>(&token, &expect)
            .await?;
        assert_eq!(verified.claims["sub"], "x");

        // Nothing was deleted: the keys moved out of the ring are kept, unpublished.
        let retired: Vec<_> = std::fs::read_dir(dir.path())?
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .filter(|name| name.starts_with("retired-"))
            .collect();
        assert!(
            retired.contains(&format!("retired-{old_current}.pem")),
            "{retired:?}"
        );
        assert_eq!(
            retired.len(),
            2,
            "the old previous and the RSA next: {retired:?}"
        );

        // Opening it again with the same setting changes nothing.
        let again = KeyRing::load_or_create(dir.path(), KeyKind::P256)?;
        assert_eq!(kids(&again), published);
        Ok(())
    }

    #[test]
    fn an_announced_next_key_of_the_configured_kind_is_promoted() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        KeyRing::load_or_create(dir.path(), KeyKind::Rsa)?;
        let es256_next = SigningKey::generate(KeyKind::P256)?;
        write_private(&dir.path().join("next.pem"), expose_pem(&es256_next))?;
        let ring = KeyRing::load_or_create(dir.path(), KeyKind::P256)?;
        assert_eq!(ring.signing_key().kid(), es256_next.kid());
        assert_eq!(ring.jwks().keys.len(), 3);
        Ok(())
    }

    #[test]
    fn an_es256_ring_rotates_to_es256_keys() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let ring = KeyRing::load_or_create(dir.path(), KeyKind::P256)?;
        assert_eq!(ring.signing_key().alg(), Algorithm::ES256);
        KeyRing::rotate(dir.path())?;
        let ring = KeyRing::load_or_create(dir.path(), KeyKind::P256)?;
        let algs: Vec<_> = [
            Some(ring.signing_key()),
            ring.next.as_ref(),
            ring.previous.as_ref(),
        ]
        .into_iter()
        .flatten()
        .map(SigningKey::alg)
        .collect();
        assert_eq!(algs, vec![Algorithm::ES256; 3]);
        Ok(())
    }
}
