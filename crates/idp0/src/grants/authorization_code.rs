//! `authorization_code` (RFC 6749 §4.1.3) with PKCE S256 (RFC 7636 §4.6). A code redeems once;
//! a second redemption revokes everything issued from it (RFC 6749 §4.1.2, §10.5).

use base64::Engine;
use protocol::Scopes;
use protocol::oauth::GrantType;
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};

use super::{Redeemed, issue_for_grant};
use crate::config::Client;
use crate::error::OAuthError;
use crate::server::AuthServer;
use crate::state::Idp;
use crate::store::secret_hash;

pub(super) async fn grant(
    idp: &Idp,
    server: &AuthServer,
    client: &Client,
    code: &SecretString,
    redirect_uri: &str,
    code_verifier: &SecretString,
) -> Result<protocol::oauth::TokenResponse, OAuthError> {
    let hash = secret_hash(code.expose_secret());
    let now = idp.clock.now();
    let stored = idp
        .store
        .find_code(&hash)
        .await?
        .ok_or_else(|| OAuthError::InvalidGrant("unknown authorization code".into()))?;
    if stored.used {
        idp.store.revoke_family(&stored.grant.family, now).await?;
        return Err(OAuthError::InvalidGrant(
            "authorization code was already used; tokens issued from it are revoked".into(),
        ));
    }
    if stored.grant.server != server.store_id() || stored.grant.client_id != client.client_id {
        return Err(OAuthError::InvalidGrant(
            "authorization code was issued to another client".into(),
        ));
    }
    if now >= stored.expires_at {
        return Err(OAuthError::InvalidGrant(
            "authorization code expired".into(),
        ));
    }
    if stored.redirect_uri != redirect_uri {
        return Err(OAuthError::InvalidGrant(
            "redirect_uri does not match the authorization request".into(),
        ));
    }
    if !is_pkce_match(code_verifier.expose_secret(), &stored.code_challenge) {
        return Err(OAuthError::InvalidGrant(
            "code_verifier does not match the code_challenge".into(),
        ));
    }
    let scope =
        Scopes::parse(&stored.grant.scope).map_err(|e| OAuthError::InvalidGrant(e.to_string()))?;
    issue_for_grant(
        idp,
        server,
        client,
        &stored.grant,
        &scope,
        stored.grant.nonce.as_deref(),
        &GrantType::AuthorizationCode,
        Redeemed::Code(&hash),
    )
    .await
}

/// RFC 7636 §4.1 verifier syntax and §4.6 S256 check.
pub(crate) fn is_pkce_match(verifier: &str, challenge: &str) -> bool {
    let well_formed = (43..=128).contains(&verifier.len())
        && verifier
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'));
    if !well_formed {
        return false;
    }
    let computed = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(Sha256::digest(verifier.as_bytes()));
    protocol::constant_time::is_equal(computed, challenge)
}

#[cfg(test)]
mod tests {
    use super::is_pkce_match;

    #[test]
    fn rfc7636_appendix_b_example() {
        assert!(is_pkce_match(
            "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk",
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        ));
        assert!(!is_pkce_match(
            "short",
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        ));
    }
}
