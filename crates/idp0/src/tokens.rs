//! Minting the tokens idp0 issues: ID tokens (OIDC Core §2), access tokens (Okta claim names plus
//! RFC 9068) and ID-JAGs (draft-ietf-oauth-identity-assertion-authz-grant §3.1).

use protocol::claims::{AccessTokenClaims, Actor, Audience, IdJagClaims, IdTokenClaims};
use protocol::oauth::{ACCESS_TOKEN_JWT_TYPE, ID_JAG_JWT_TYPE};
use protocol::{Scopes, UnixTime};
use secrecy::SecretString;

use crate::config::User;
use crate::error::OAuthError;
use crate::server::AuthServer;

/// A fresh random identifier (`jti`, family ids).
pub fn new_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

/// A fresh opaque secret (codes, refresh tokens, session cookies): 256 random bits, base64url.
pub fn new_secret() -> String {
    use base64::Engine;
    let bytes: [u8; 32] = rand::random();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// An issued JWT with its `jti` and expiry.
pub struct Minted {
    /// The compact JWT.
    pub token: SecretString,
    /// Its `jti`.
    pub jti: String,
    /// Its expiry.
    pub expires_at: UnixTime,
}

/// What goes into an ID token beyond the user.
pub struct IdTokenInput<'a> {
    /// The client (`aud`).
    pub client_id: &'a str,
    /// Granted scope (decides which profile claims appear).
    pub scope: &'a Scopes,
    /// Request nonce.
    pub nonce: Option<&'a str>,
    /// Authentication time.
    pub auth_time: UnixTime,
    /// SSO session id.
    pub sid: Option<&'a str>,
    /// Lifetime.
    pub lifetime: i64,
}

/// Signs an ID token.
pub fn id_token(
    server: &AuthServer,
    user: &User,
    input: &IdTokenInput<'_>,
    now: UnixTime,
) -> Result<Minted, OAuthError> {
    let jti = new_id();
    let profile = input.scope.contains("profile");
    let email = input.scope.contains("email");
    let claims = IdTokenClaims {
        iss: server.issuer.clone(),
        sub: user.id.clone(),
        aud: Audience::One(input.client_id.to_owned()),
        exp: now + input.lifetime,
        iat: now,
        jti: Some(jti.clone()),
        auth_time: Some(input.auth_time),
        nonce: input.nonce.map(str::to_owned),
        sid: input.sid.map(str::to_owned),
        name: profile.then(|| user.name.clone()),
        email: email.then(|| user.email.clone()),
        preferred_username: profile.then(|| user.username.clone()),
        azp: Some(input.client_id.to_owned()),
    };
    let token = server.keys.signing_key().sign("JWT", &claims)?;
    Ok(Minted {
        token: SecretString::from(token),
        jti,
        expires_at: claims.exp,
    })
}

/// What goes into an access token.
pub struct AccessTokenInput<'a> {
    /// The user, or `None` for `client_credentials` (then `sub` is the client).
    pub user_id: Option<&'a str>,
    /// The client the token is issued to.
    pub client_id: &'a str,
    /// Granted scopes.
    pub scope: &'a Scopes,
    /// Authentication time of the user.
    pub auth_time: Option<UnixTime>,
    /// The agent acting for the user (ID-JAG redemption).
    pub actor: Option<&'a str>,
    /// Lifetime.
    pub lifetime: i64,
}

/// Signs an access token with Okta's and RFC 9068's claim names.
pub fn access_token(
    server: &AuthServer,
    input: &AccessTokenInput<'_>,
    now: UnixTime,
) -> Result<Minted, OAuthError> {
    let jti = new_id();
    let sub = input.user_id.unwrap_or(input.client_id).to_owned();
    let claims = AccessTokenClaims {
        iss: server.issuer.clone(),
        aud: Audience::One(server.audience().to_owned()),
        sub,
        exp: now + input.lifetime,
        iat: now,
        jti: Some(jti.clone()),
        uid: input.user_id.map(str::to_owned),
        cid: Some(input.client_id.to_owned()),
        client_id: Some(input.client_id.to_owned()),
        scp: Some(input.scope.to_vec()),
        scope: Some(input.scope.to_string()),
        auth_time: input.auth_time,
        act: input.actor.map(|a| Actor { sub: a.to_owned() }),
    };
    let token = server
        .keys
        .signing_key()
        .sign(ACCESS_TOKEN_JWT_TYPE, &claims)?;
    Ok(Minted {
        token: SecretString::from(token),
        jti,
        expires_at: claims.exp,
    })
}

/// What goes into an ID-JAG.
pub struct IdJagInput<'a> {
    /// The user.
    pub user: &'a User,
    /// The resource AS issuer.
    pub audience: &'a str,
    /// The client's id at the resource AS.
    pub client_id: &'a str,
    /// The resource.
    pub resource: Option<&'a str>,
    /// Granted scopes (omitted when empty).
    pub scope: &'a Scopes,
    /// Authentication time.
    pub auth_time: Option<UnixTime>,
    /// Lifetime.
    pub lifetime: i64,
}

/// Signs an ID-JAG at the org AS.
pub fn id_jag(
    org: &AuthServer,
    input: &IdJagInput<'_>,
    now: UnixTime,
) -> Result<Minted, OAuthError> {
    let jti = new_id();
    let claims = IdJagClaims {
        iss: org.issuer.clone(),
        sub: input.user.id.clone(),
        aud: Audience::One(input.audience.to_owned()),
        client_id: input.client_id.to_owned(),
        jti: jti.clone(),
        iat: now,
        exp: now + input.lifetime,
        resource: input.resource.map(str::to_owned),
        scope: (!input.scope.is_empty()).then(|| input.scope.to_string()),
        auth_time: input.auth_time,
        email: Some(input.user.email.clone()),
    };
    let token = org.keys.signing_key().sign(ID_JAG_JWT_TYPE, &claims)?;
    Ok(Minted {
        token: SecretString::from(token),
        jti,
        expires_at: claims.exp,
    })
}
