//! Token exchange for an ID-JAG at the org AS (RFC 8693 §2, profiled by
//! draft-ietf-oauth-identity-assertion-authz-grant §4.3), and the entry of the brokered
//! ("OAuth STS") exchange, which shares its subject-token checks ([`crate::sts::exchange`]).
//!
//! An ID token subject must come from a grant that is not revoked and an SSO session (`sid`)
//! that has not ended; a refresh token subject must be unused, unexpired and not revoked.
//!
//! Error codes: an invalid or foreign subject token is `invalid_grant` (the draft's §4.3.4.3
//! example; RFC 8693 §2.2.2 would say `invalid_request`, but clients such as rmcp treat
//! `invalid_grant` as "log the user in again", which is the right reaction); an `audience` or
//! `resource` we do not issue for, or that policy does not allow this client, is `invalid_target`;
//! unknown scopes are `invalid_scope`; unsupported token types are `invalid_request`.

use std::sync::Arc;

use protocol::Scopes;
use protocol::claims::IdTokenClaims;
use protocol::oauth::{GrantType, TokenResponse, TokenType};
use protocol::verify::{Expectations, TypeRule};
use secrecy::{ExposeSecret, SecretString};

use crate::config::{Client, User};
use crate::error::OAuthError;
use crate::server::AuthServer;
use crate::state::Idp;
use crate::store::secret_hash;
use crate::tokens::{self, IdJagInput};

pub(super) struct Exchange {
    pub(super) requested_token_type: TokenType,
    pub(super) subject_token: SecretString,
    pub(super) subject_token_type: TokenType,
    pub(super) audience: Option<String>,
    pub(super) resource: Option<String>,
    pub(super) scope: Option<Scopes>,
}

pub(super) async fn grant(
    idp: &Idp,
    server: &AuthServer,
    client: &Client,
    request: Exchange,
) -> Result<TokenResponse, OAuthError> {
    if request.requested_token_type == TokenType::OktaOauthSts {
        // Brokered consent is the org AS's (OKTA.md §1): a custom AS answers invalid_request.
        if !server.is_org() {
            return Err(OAuthError::InvalidRequest(format!(
                "requested_token_type {} is served by the org authorization server only",
                TokenType::OktaOauthSts
            )));
        }
        let (user, _) = subject(
            idp,
            client,
            &request.subject_token_type,
            &request.subject_token,
        )
        .await?;
        return crate::sts::exchange::exchange(idp, client, &user, request.resource.as_deref())
            .await;
    }
    if !server.is_org() {
        return Err(OAuthError::UnsupportedGrantType(
            "token exchange for ID-JAGs is served by the org authorization server".into(),
        ));
    }
    if request.requested_token_type != TokenType::IdJag {
        return Err(OAuthError::InvalidRequest(format!(
            "requested_token_type {} is not supported; use {}",
            truncate(request.requested_token_type.as_str()),
            TokenType::IdJag
        )));
    }
    let (user, auth_time) = subject(
        idp,
        client,
        &request.subject_token_type,
        &request.subject_token,
    )
    .await?;

    let audience = request
        .audience
        .as_deref()
        .ok_or_else(|| OAuthError::InvalidRequest("missing parameter audience".into()))?;
    let target = idp.server_by_issuer(audience).ok_or_else(|| {
        OAuthError::InvalidTarget("audience names no known authorization server".into())
    })?;
    let custom = target.custom.as_ref().ok_or_else(|| {
        OAuthError::InvalidTarget("audience is not a resource authorization server".into())
    })?;
    if request
        .resource
        .as_ref()
        .is_some_and(|r| r != &custom.audience)
    {
        return Err(OAuthError::InvalidTarget(
            "resource is not served by that authorization server".into(),
        ));
    }
    let policy = custom
        .policy_for(&client.client_id, &GrantType::JwtBearer)
        .ok_or_else(|| {
            OAuthError::InvalidTarget(
                "no policy lets this client reach that authorization server".into(),
            )
        })?;
    let requested = request
        .scope
        .unwrap_or_else(|| custom.default_scopes.clone());
    if !custom.scopes.contains_all(&requested) {
        return Err(OAuthError::InvalidScope(
            "a requested scope is unknown to that authorization server".into(),
        ));
    }
    // An agent with managed connections reaches only their servers, for only their scopes
    // (Okta's IDENTITY_ASSERTION_CUSTOM_AS connection with scopeCondition INCLUDE_ONLY).
    let connection = client.connection_to(&custom.id).map_err(|()| {
        OAuthError::InvalidTarget(
            "that authorization server is not a managed connection of this agent".into(),
        )
    })?;
    let mut granted = requested.intersection(&policy.scopes);
    if let Some(connection) = connection {
        granted = granted.intersection(&connection.scopes);
    }
    if granted.is_empty() {
        return Err(OAuthError::InvalidScope(
            "none of the requested scopes is allowed for this client".into(),
        ));
    }

    let lifetime = idp.directory().config.id_jag_lifetime;
    let input = IdJagInput {
        user: &user,
        audience: &target.issuer,
        client_id: &client.client_id,
        resource: request.resource.as_deref(),
        scope: &granted,
        auth_time,
        lifetime,
    };
    let minted = tokens::id_jag(server, &input, idp.clock.now())?;
    tracing::info!(client_id = %client.client_id, audience = %target.issuer, scope = %granted, "issued ID-JAG");
    Ok(TokenResponse {
        access_token: minted.token,
        token_type: "N_A".into(),
        issued_token_type: Some(TokenType::IdJag),
        expires_in: Some(lifetime),
        scope: Some(granted.to_string()),
        refresh_token: None,
        id_token: None,
    })
}

/// The user behind the subject token, and when they authenticated.
async fn subject(
    idp: &Idp,
    client: &Client,
    token_type: &TokenType,
    token: &SecretString,
) -> Result<(Arc<User>, Option<i64>), OAuthError> {
    match token_type {
        TokenType::IdToken => {
            // The ID token must have been issued to the requesting client (draft §4.3.3) or, for an
            // AI agent identity, to an application the agent is linked to (Okta's model).
            let mut expect = Expectations::new(&idp.org.issuer, &client.client_id, TypeRule::ANY);
            for linked in &client.linked_clients {
                expect = expect.or_audience(linked);
            }
            let verified = idp
                .verifier_for(&idp.org)
                .verify::<IdTokenClaims>(token.expose_secret(), &expect)
                .await
                .map_err(|e| OAuthError::InvalidGrant(format!("subject token rejected: {e}")))?;
            let claims = verified.claims;
            // An ID token stands for its user only while its grant stands and its SSO session
            // lives: a replayed code (revoked family) or a logout ends it (OIDC Back-Channel
            // Logout 1.0 §2.4 defines `sid` for this). One indexed lookup.
            let (Some(jti), Some(sid)) = (claims.jti.as_deref(), claims.sid.as_deref()) else {
                return Err(OAuthError::InvalidGrant(
                    "subject token rejected: it names no session".into(),
                ));
            };
            if !idp
                .store
                .is_id_token_active(jti, sid, idp.clock.now())
                .await?
            {
                return Err(OAuthError::InvalidGrant(
                    "subject token rejected: its grant was revoked or its session ended".into(),
                ));
            }
            let user = idp
                .user(&claims.sub)
                .ok_or_else(|| OAuthError::InvalidGrant("unknown subject".into()))?;
            let issued_to = std::iter::once(&client.client_id)
                .chain(&client.linked_clients)
                .filter(|c| claims.aud.contains(c));
            for app in issued_to {
                require_assigned(idp, app, &user)?;
            }
            Ok((user, claims.auth_time))
        }
        TokenType::RefreshToken => {
            let record = idp
                .store
                .find_refresh_token(&secret_hash(token.expose_secret()))
                .await?
                .ok_or_else(|| {
                    OAuthError::InvalidGrant("subject token rejected: unknown refresh token".into())
                })?;
            let issued_to_client = record.grant.client_id == client.client_id
                || client.linked_clients.contains(&record.grant.client_id);
            let active = !record.used
                && record.expires_at > idp.clock.now()
                && record.grant.server.is_empty()
                && !idp.store.is_family_revoked(&record.grant.family).await?;
            if !issued_to_client || !active {
                return Err(OAuthError::InvalidGrant(
                    "subject token rejected: refresh token is not active for this client".into(),
                ));
            }
            let user = idp
                .user(&record.grant.user_id)
                .ok_or_else(|| OAuthError::InvalidGrant("unknown subject".into()))?;
            require_assigned(idp, &record.grant.client_id, &user)?;
            Ok((user, Some(record.grant.auth_time)))
        }
        other => Err(OAuthError::InvalidRequest(format!(
            "subject_token_type {} is not supported; use {} or {}",
            truncate(other.as_str()),
            TokenType::IdToken,
            TokenType::RefreshToken
        ))),
    }
}

/// A subject token stands for its user only while the user is still assigned to the app it was
/// issued to (Okta's app assignments, enforced at sign-in by `authorize`): unassigning a person
/// stops agents from exchanging the tokens they already hold.
fn require_assigned(idp: &Idp, app: &str, user: &User) -> Result<(), OAuthError> {
    match idp.client(app) {
        Some(app) if !app.is_assigned(&user.id) => Err(OAuthError::InvalidGrant(
            "subject token rejected: the user is not assigned to the application".into(),
        )),
        _ => Ok(()),
    }
}

fn truncate(value: &str) -> String {
    value.chars().take(80).collect()
}
