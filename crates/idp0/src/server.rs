//! Authorization servers in Okta's URL layout: the org AS at the base URL (endpoints under
//! `/oauth2/v1/`) and custom ASes at `/oauth2/<id>` (endpoints under `/oauth2/<id>/v1/`), each
//! with its own keys and metadata (RFC 8414, OIDC Discovery, ID-JAG draft §7).

use jsonwebtoken::Algorithm;
use protocol::metadata::AuthorizationServerMetadata;
use protocol::oauth::{GrantType, ID_JAG_GRANT_PROFILE, TokenType};

use crate::config::CustomServer;
use crate::keyring::KeyRing;

/// Scopes of the org AS.
pub const ORG_SCOPES: [&str; 4] = ["openid", "profile", "email", "offline_access"];

/// One authorization server.
pub struct AuthServer {
    /// Issuer identifier.
    pub issuer: String,
    /// Signing keys (shared with the next directory when the server is kept).
    pub keys: std::sync::Arc<KeyRing>,
    /// `None` for the org AS.
    pub custom: Option<CustomServer>,
}

impl AuthServer {
    /// The id used in storage: `""` for the org AS.
    pub fn store_id(&self) -> &str {
        self.custom.as_ref().map_or("", |c| c.id.as_str())
    }

    /// Whether this is the org AS.
    pub fn is_org(&self) -> bool {
        self.custom.is_none()
    }

    /// An endpoint URL: `<issuer>/oauth2/v1/<name>` (org) or `<issuer>/v1/<name>` (custom).
    pub fn endpoint(&self, name: &str) -> String {
        if self.is_org() {
            format!("{}/oauth2/v1/{name}", self.issuer)
        } else {
            format!("{}/v1/{name}", self.issuer)
        }
    }

    /// The `aud` of access tokens this server issues.
    pub fn audience(&self) -> &str {
        self.custom
            .as_ref()
            .map_or(self.issuer.as_str(), |c| c.audience.as_str())
    }

    /// Scopes this server knows.
    pub fn scopes_supported(&self) -> Vec<String> {
        let mut scopes: Vec<String> = ORG_SCOPES.iter().map(|s| (*s).to_owned()).collect();
        if let Some(custom) = &self.custom {
            scopes.extend(custom.scopes.iter().map(str::to_owned));
        }
        scopes
    }

    /// The JWS algorithm this server signs its tokens with (its current key's).
    pub fn signing_alg(&self) -> &'static str {
        match self.keys.signing_key().alg() {
            Algorithm::ES256 => "ES256",
            Algorithm::EdDSA => "EdDSA",
            _ => "RS256",
        }
    }

    /// The metadata document.
    pub fn metadata(&self) -> AuthorizationServerMetadata {
        let strings = |items: &[&str]| items.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        let auth_methods = strings(&[
            "client_secret_basic",
            "client_secret_post",
            "private_key_jwt",
            "none",
        ]);
        let mut grants = vec![
            GrantType::AuthorizationCode.to_string(),
            GrantType::RefreshToken.to_string(),
            GrantType::ClientCredentials.to_string(),
        ];
        let (identity_chaining, grant_profiles) = if self.is_org() {
            grants.push(GrantType::TokenExchange.to_string());
            (vec![TokenType::IdJag.to_string()], vec![])
        } else {
            grants.push(GrantType::JwtBearer.to_string());
            (vec![], vec![ID_JAG_GRANT_PROFILE.to_owned()])
        };
        AuthorizationServerMetadata {
            issuer: self.issuer.clone(),
            authorization_endpoint: Some(self.endpoint("authorize")),
            token_endpoint: Some(self.endpoint("token")),
            jwks_uri: Some(self.endpoint("keys")),
            userinfo_endpoint: Some(self.endpoint("userinfo")),
            introspection_endpoint: Some(self.endpoint("introspect")),
            revocation_endpoint: Some(self.endpoint("revoke")),
            end_session_endpoint: Some(self.endpoint("logout")),
            scopes_supported: self.scopes_supported(),
            response_types_supported: strings(&["code"]),
            response_modes_supported: strings(&["query"]),
            grant_types_supported: grants,
            subject_types_supported: strings(&["public"]),
            id_token_signing_alg_values_supported: vec![self.signing_alg().to_owned()],
            token_endpoint_auth_methods_supported: auth_methods.clone(),
            token_endpoint_auth_signing_alg_values_supported: strings(&["RS256", "ES256", "EdDSA"]),
            introspection_endpoint_auth_methods_supported: auth_methods.clone(),
            revocation_endpoint_auth_methods_supported: auth_methods,
            code_challenge_methods_supported: strings(&["S256"]),
            claims_supported: strings(&[
                "iss",
                "sub",
                "aud",
                "exp",
                "iat",
                "auth_time",
                "nonce",
                "sid",
                "name",
                "email",
                "preferred_username",
            ]),
            identity_chaining_requested_token_types_supported: identity_chaining,
            authorization_grant_profiles_supported: grant_profiles,
            authorization_response_iss_parameter_supported: Some(true),
            extra: serde_json::Map::new(),
        }
    }
}
