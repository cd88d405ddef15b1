//! The login cache: one file per issuer, `<data-dir>/tokens/<SHA-256(issuer) hex>.json`, mode
//! 0600 in a 0700 directory, written atomically. It holds only what a later command needs: the
//! issuer, the client id, the ID token with its expiry, and the refresh token when there is one
//! (no access token, no user name, no password). Nothing here prints a token.
//!
//! An ID token about to expire (within [`FRESH_FOR`]) is replaced by a refresh (RFC 6749 §6,
//! OIDC Core §12) as the same public client, and the rotated refresh token is stored at once,
//! because the old one is now spent.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use protocol::UnixTime;
use protocol::claims::IdTokenClaims;
use protocol::token_client::{ClientAuth, TokenClient};
use protocol::verify::{Expectations, JwtVerifier, RemoteJwks, TypeRule};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

/// An ID token with less than this left is refreshed before use.
const FRESH_FOR: i64 = 60;

/// A cached login (no `Debug`: it holds tokens).
pub(super) struct CachedLogin {
    pub(super) issuer: String,
    pub(super) client_id: String,
    pub(super) id_token: SecretString,
    pub(super) id_token_expires_at: UnixTime,
    pub(super) refresh_token: Option<SecretString>,
}

/// The file's shape.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Stored {
    issuer: String,
    client_id: String,
    id_token: String,
    id_token_expires_at: UnixTime,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    refresh_token: Option<String>,
}

/// The cache file for `issuer`.
pub(super) fn path(data_dir: &Path, issuer: &str) -> PathBuf {
    // The issuer is not secret; SHA-256 just makes any URL a safe, fixed-length file name.
    data_dir
        .join("tokens")
        .join(format!("{}.json", idp0::store::secret_hash(issuer)))
}

/// Writes `login` (0600, directory 0700). Returns the file.
pub(super) fn save(data_dir: &Path, login: &CachedLogin) -> anyhow::Result<PathBuf> {
    if !data_dir.exists() {
        idp0::fsutil::create_private_dir(data_dir)
            .with_context(|| format!("creating {}", data_dir.display()))?;
    }
    let file = path(data_dir, &login.issuer);
    if let Some(dir) = file.parent() {
        idp0::fsutil::create_private_dir(dir)
            .with_context(|| format!("creating {}", dir.display()))?;
    }
    let stored = Stored {
        issuer: login.issuer.clone(),
        client_id: login.client_id.clone(),
        id_token: login.id_token.expose_secret().to_owned(),
        id_token_expires_at: login.id_token_expires_at,
        refresh_token: login
            .refresh_token
            .as_ref()
            .map(|t| t.expose_secret().to_owned()),
    };
    idp0::fsutil::write_private(&file, &serde_json::to_string_pretty(&stored)?)
        .with_context(|| format!("writing {}", file.display()))?;
    Ok(file)
}

/// The cached login for `issuer`, if any.
pub(super) fn load(data_dir: &Path, issuer: &str) -> anyhow::Result<Option<CachedLogin>> {
    let file = path(data_dir, issuer);
    let text = match std::fs::read_to_string(&file) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("reading {}", file.display())),
    };
    let stored: Stored = serde_json::from_str(&text).map_err(|_| {
        anyhow::anyhow!(
            "{} is not a login cache this version understands: run `secure-agent login` again",
            file.display()
        )
    })?;
    if stored.issuer != issuer {
        bail!(
            "{} belongs to {}, not {issuer}",
            file.display(),
            stored.issuer
        );
    }
    Ok(Some(CachedLogin {
        issuer: stored.issuer,
        client_id: stored.client_id,
        id_token: SecretString::from(stored.id_token),
        id_token_expires_at: stored.id_token_expires_at,
        refresh_token: stored.refresh_token.map(SecretString::from),
    }))
}

/// The ID token of the cached login for `issuer`, refreshed first when it has (nearly) expired.
pub(crate) async fn id_token(data_dir: &Path, issuer: &str) -> anyhow::Result<SecretString> {
    let Some(login) = load(data_dir, issuer)? else {
        bail!(
            "no ID token: pass --id-token (or ID_TOKEN), or run `secure-agent login --issuer \
             {issuer}` first (no login is cached for it in {})",
            data_dir.display()
        );
    };
    let now = protocol::clock::system().now();
    if login.id_token_expires_at - FRESH_FOR > now {
        return Ok(login.id_token);
    }
    let Some(refresh_token) = &login.refresh_token else {
        bail!(
            "the cached ID token for {issuer} has expired and there is no refresh token: run \
             `secure-agent login` again"
        );
    };
    let refreshed = refresh(&login, refresh_token).await.map_err(|e| {
        anyhow::anyhow!(
            "the cached ID token for {issuer} has expired and could not be refreshed ({e:#}): \
             run `secure-agent login` again"
        )
    })?;
    save(data_dir, &refreshed)?;
    tracing::info!(issuer, "refreshed the cached ID token");
    Ok(refreshed.id_token)
}

async fn refresh(login: &CachedLogin, refresh_token: &SecretString) -> anyhow::Result<CachedLogin> {
    let endpoints = Endpoints::discover(&login.issuer).await?;
    let response = TokenClient::new()?
        .request(
            &endpoints.token,
            &ClientAuth::None {
                client_id: login.client_id.clone(),
            },
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", refresh_token.expose_secret()),
            ],
        )
        .await?;
    let id_token = response
        .id_token
        .context("the refresh answer has no ID token")?;
    let claims = endpoints
        .verify_id_token(&login.issuer, &login.client_id, &id_token)
        .await?;
    Ok(CachedLogin {
        issuer: login.issuer.clone(),
        client_id: login.client_id.clone(),
        id_token,
        id_token_expires_at: claims.exp,
        // Rotation: the new one replaces the spent one; an IdP that does not rotate keeps it.
        refresh_token: response
            .refresh_token
            .or_else(|| Some(refresh_token.clone())),
    })
}

/// An issuer's endpoints as discovered (RFC 8414 / OIDC Discovery, issuer checked).
pub(super) struct Endpoints {
    pub(super) authorization: String,
    pub(super) token: String,
    jwks: String,
    http: reqwest::Client,
}

impl Endpoints {
    pub(super) async fn discover(issuer: &str) -> anyhow::Result<Self> {
        let http = protocol::discovery::http_client().context("building the HTTP client")?;
        let metadata = protocol::discovery::discover(&http, issuer)
            .await
            .with_context(|| format!("discovering the identity provider {issuer}"))?;
        let missing = |what: &str| format!("{issuer} advertises no {what}");
        Ok(Self {
            authorization: metadata
                .authorization_endpoint
                .with_context(|| missing("authorization_endpoint"))?,
            token: metadata
                .token_endpoint
                .with_context(|| missing("token_endpoint"))?,
            jwks: metadata.jwks_uri.with_context(|| missing("jwks_uri"))?,
            http,
        })
    }

    /// Verifies an ID token issued by `issuer` to `client_id` (OIDC Core §3.1.3.7): signature
    /// against the discovered JWKS, `iss`, `aud`, `exp`.
    pub(super) async fn verify_id_token(
        &self,
        issuer: &str,
        client_id: &str,
        id_token: &SecretString,
    ) -> anyhow::Result<IdTokenClaims> {
        let keys = RemoteJwks::new(self.http.clone(), &self.jwks, Duration::from_secs(60));
        let verifier = JwtVerifier::new(Arc::new(keys), protocol::clock::system());
        let verified = verifier
            .verify::<IdTokenClaims>(
                id_token.expose_secret(),
                &Expectations::new(issuer, client_id, TypeRule::ANY),
            )
            .await
            .map_err(|e| anyhow::anyhow!("the ID token is not valid: {e}"))?;
        Ok(verified.claims)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_login_is_stored_privately_and_read_back_per_issuer() {
        let dir = tempfile::tempdir().unwrap();
        let data_dir = dir.path().join("data");
        let login = CachedLogin {
            issuer: "http://127.0.0.1:9400".into(),
            client_id: "secure-agent-cli".into(),
            id_token: SecretString::from("header.payload.signature"),
            id_token_expires_at: 42,
            refresh_token: None,
        };
        let file = save(&data_dir, &login).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode(&file), 0o600);
            assert_eq!(mode(file.parent().unwrap()), 0o700);
            assert_eq!(mode(&data_dir), 0o700);
        }
        let read = load(&data_dir, "http://127.0.0.1:9400").unwrap().unwrap();
        assert_eq!(read.id_token.expose_secret(), "header.payload.signature");
        assert!(read.refresh_token.is_none());
        assert!(load(&data_dir, "http://127.0.0.1:9401").unwrap().is_none());
    }
}
