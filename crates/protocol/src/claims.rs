//! JWT claim sets (RFC 7519 §4) of the tokens this stack issues and accepts: OIDC ID tokens
//! (OIDC Core §2), ID-JAGs (draft-ietf-oauth-identity-assertion-authz-grant §3), access tokens
//! (Okta's claim names plus RFC 9068 §2.2) and client assertions (RFC 7523 §3).

use serde::{Deserialize, Serialize};

use crate::clock::UnixTime;

/// `aud`: one string or an array of strings (RFC 7519 §4.1.3).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Audience {
    /// A single audience.
    One(String),
    /// Several audiences.
    Many(Vec<String>),
}

impl Audience {
    /// Whether `value` is one of the audiences.
    pub fn contains(&self, value: &str) -> bool {
        match self {
            Self::One(one) => one == value,
            Self::Many(many) => many.iter().any(|a| a == value),
        }
    }

    /// Whether the audience is exactly the single `value`.
    pub fn is_only(&self, value: &str) -> bool {
        match self {
            Self::One(one) => one == value,
            Self::Many(many) => many.len() == 1 && many[0] == value,
        }
    }
}

impl From<&str> for Audience {
    fn from(value: &str) -> Self {
        Self::One(value.to_owned())
    }
}

/// OIDC ID token claims.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdTokenClaims {
    /// Issuer.
    pub iss: String,
    /// Subject (stable user id).
    pub sub: String,
    /// The client the token was issued to.
    pub aud: Audience,
    /// Expiry.
    pub exp: UnixTime,
    /// Issued at.
    pub iat: UnixTime,
    /// Unique id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jti: Option<String>,
    /// When the person authenticated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_time: Option<UnixTime>,
    /// The nonce of the authentication request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nonce: Option<String>,
    /// IdP session id (OIDC Front-/Back-Channel Logout).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
    /// Full name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// E-mail address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// Login name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preferred_username: Option<String>,
    /// Authorized party.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub azp: Option<String>,
}

/// Identity Assertion JWT Authorization Grant claims (`typ: oauth-id-jag+jwt`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdJagClaims {
    /// The IdP (org AS) issuer.
    pub iss: String,
    /// The user, as known to the IdP.
    pub sub: String,
    /// The resource authorization server's issuer (exactly one).
    pub aud: Audience,
    /// The client's id at the resource authorization server.
    pub client_id: String,
    /// Unique id; redeemable once.
    pub jti: String,
    /// Issued at.
    pub iat: UnixTime,
    /// Expiry.
    pub exp: UnixTime,
    /// The resource the grant is for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource: Option<String>,
    /// Space-separated scopes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// When the person authenticated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_time: Option<UnixTime>,
    /// The person's e-mail address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
}

/// `act` (RFC 8693 §4.1): who acts on the subject's behalf.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Actor {
    /// The acting client.
    pub sub: String,
}

/// Access token claims: Okta's names (`scp`, `uid`, `cid`) and RFC 9068's (`scope`, `client_id`).
/// Either naming is accepted on input; idp0 emits both.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessTokenClaims {
    /// Issuer.
    pub iss: String,
    /// The resource.
    pub aud: Audience,
    /// Subject.
    pub sub: String,
    /// Expiry.
    pub exp: UnixTime,
    /// Issued at.
    pub iat: UnixTime,
    /// Unique id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jti: Option<String>,
    /// Okta: stable user id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uid: Option<String>,
    /// Okta: client id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cid: Option<String>,
    /// RFC 9068: client id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    /// Okta: scopes as an array.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scp: Option<Vec<String>>,
    /// RFC 9068: scopes as a space-separated string.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// When the person authenticated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_time: Option<UnixTime>,
    /// The agent acting for the user.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub act: Option<Actor>,
}

impl AccessTokenClaims {
    /// The granted scopes, from `scp` or else `scope`.
    pub fn scopes(&self) -> crate::Scopes {
        match (&self.scp, &self.scope) {
            (Some(scp), _) => scp.iter().map(String::as_str).collect(),
            (None, Some(scope)) => scope.split(' ').filter(|s| !s.is_empty()).collect(),
            (None, None) => crate::Scopes::empty(),
        }
    }

    /// The user the token is for: `uid` when present (Okta), else `sub`.
    pub fn user_id(&self) -> &str {
        self.uid.as_deref().unwrap_or(&self.sub)
    }

    /// The client the token was issued to: `cid` or `client_id`.
    pub fn client(&self) -> Option<&str> {
        self.cid.as_deref().or(self.client_id.as_deref())
    }
}

/// Client assertion claims (RFC 7523 §3).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientAssertionClaims {
    /// The client id.
    pub iss: String,
    /// The client id.
    pub sub: String,
    /// The token endpoint URL or the issuer.
    pub aud: Audience,
    /// Unique id; a replay is refused.
    pub jti: String,
    /// Expiry.
    pub exp: UnixTime,
    /// Issued at.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iat: Option<UnixTime>,
    /// Not before.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<UnixTime>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn audience_accepts_string_or_array() -> Result<(), serde_json::Error> {
        let one: Audience = serde_json::from_str("\"a\"")?;
        let many: Audience = serde_json::from_str("[\"a\",\"b\"]")?;
        assert!(one.is_only("a") && many.contains("b") && !many.is_only("a"));
        Ok(())
    }

    #[test]
    fn access_token_scopes_read_okta_and_rfc9068_names() -> Result<(), serde_json::Error> {
        let okta: AccessTokenClaims = serde_json::from_value(serde_json::json!({
            "iss": "i", "aud": "a", "sub": "s", "exp": 2, "iat": 1, "uid": "00u1",
            "cid": "agent", "scp": ["mcp:connect", "mcp:tools:read"]
        }))?;
        assert!(okta.scopes().contains("mcp:tools:read"));
        assert_eq!(okta.user_id(), "00u1");
        let rfc: AccessTokenClaims = serde_json::from_value(serde_json::json!({
            "iss": "i", "aud": ["a"], "sub": "s", "exp": 2, "iat": 1,
            "client_id": "agent", "scope": "mcp:connect"
        }))?;
        assert!(rfc.scopes().contains("mcp:connect"));
        assert_eq!((rfc.user_id(), rfc.client()), ("s", Some("agent")));
        Ok(())
    }
}
