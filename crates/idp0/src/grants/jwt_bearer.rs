//! Redeeming an ID-JAG with the JWT bearer grant at a custom (resource) authorization server
//! (RFC 7523 §2.1, draft-ietf-oauth-identity-assertion-authz-grant §4.4). Every defect of the
//! assertion is `invalid_grant` (RFC 7523 §3.1); a client without a policy is
//! `unauthorized_client`; scope beyond the grant is `invalid_scope`.

use protocol::Scopes;
use protocol::claims::IdJagClaims;
use protocol::oauth::{GrantType, TokenResponse};
use protocol::verify::{Expectations, TypeRule};
use secrecy::{ExposeSecret, SecretString};

use crate::config::Client;
use crate::error::OAuthError;
use crate::server::AuthServer;
use crate::state::Idp;
use crate::tokens::{self, AccessTokenInput};

pub(super) async fn grant(
    idp: &Idp,
    server: &AuthServer,
    client: &Client,
    assertion: &SecretString,
    scope: Option<Scopes>,
) -> Result<TokenResponse, OAuthError> {
    let custom = server.custom.as_ref().ok_or_else(|| {
        OAuthError::UnsupportedGrantType(
            "ID-JAGs are redeemed at custom authorization servers (/oauth2/<id>)".into(),
        )
    })?;
    let expect = Expectations::new(&idp.org.issuer, &server.issuer, TypeRule::ID_JAG);
    let claims = idp
        .verifier_for(&idp.org)
        .verify::<IdJagClaims>(assertion.expose_secret(), &expect)
        .await
        .map_err(|e| OAuthError::InvalidGrant(format!("ID-JAG rejected: {e}")))?
        .claims;
    if !claims.aud.is_only(&server.issuer) {
        return Err(OAuthError::InvalidGrant(
            "ID-JAG must have exactly one audience".into(),
        ));
    }
    if claims.client_id != client.client_id {
        return Err(OAuthError::InvalidGrant(
            "ID-JAG was issued to another client".into(),
        ));
    }
    if claims
        .resource
        .as_ref()
        .is_some_and(|r| r != &custom.audience)
    {
        return Err(OAuthError::InvalidGrant(
            "ID-JAG resource is not served by this authorization server".into(),
        ));
    }
    let policy = custom
        .policy_for(&client.client_id, &GrantType::JwtBearer)
        .ok_or_else(|| {
            OAuthError::UnauthorizedClient("no policy lets this client redeem ID-JAGs here".into())
        })?;
    let user = idp
        .user(&claims.sub)
        .ok_or_else(|| OAuthError::InvalidGrant("unknown subject".into()))?;

    let jag_scopes = match &claims.scope {
        Some(scope) => Scopes::parse(scope).map_err(|e| OAuthError::InvalidGrant(e.to_string()))?,
        None => custom.default_scopes.clone(),
    };
    let requested = scope.unwrap_or_else(|| jag_scopes.clone());
    if !jag_scopes.contains_all(&requested) {
        return Err(OAuthError::InvalidScope(
            "requested scope exceeds the ID-JAG".into(),
        ));
    }
    let granted = requested
        .intersection(&jag_scopes)
        .intersection(&policy.scopes);
    if granted.is_empty() {
        return Err(OAuthError::InvalidScope(
            "no requested scope is allowed by policy".into(),
        ));
    }
    // Last check, so a refused request leaves the ID-JAG unspent.
    let fresh = idp
        .store
        .remember_jti(&format!("id-jag:{}", custom.id), &claims.jti, claims.exp)
        .await?;
    if !fresh {
        return Err(OAuthError::InvalidGrant(
            "ID-JAG was already redeemed".into(),
        ));
    }
    let minted = tokens::access_token(
        server,
        &AccessTokenInput {
            user_id: Some(&user.id),
            client_id: &client.client_id,
            scope: &granted,
            auth_time: claims.auth_time,
            actor: Some(&client.client_id),
            lifetime: policy.access_token_lifetime,
        },
        idp.clock.now(),
    )?;
    tracing::info!(client_id = %client.client_id, server = %custom.id, scope = %granted, "redeemed ID-JAG");
    Ok(TokenResponse {
        access_token: minted.token,
        token_type: "Bearer".into(),
        issued_token_type: None,
        expires_in: Some(policy.access_token_lifetime),
        scope: Some(granted.to_string()),
        refresh_token: None,
        id_token: None,
    })
}
