//! `private_key_jwt` client authentication (RFC 7523 §2.2 and §3; OIDC Core §9): a short-lived JWT
//! signed with the client's key, `iss = sub = client_id`, `aud` = the token endpoint being called.

use std::sync::Arc;

use secrecy::SecretString;

use crate::claims::{Audience, ClientAssertionClaims};
use crate::clock::Clock;
use crate::keys::{KeyError, SigningKey};
use crate::oauth::CLIENT_ASSERTION_TYPE_JWT_BEARER;

/// Assertion lifetime; servers refuse more than five minutes.
pub const ASSERTION_LIFETIME_SECONDS: i64 = 60;

/// Signs client assertions for one client.
#[derive(Debug, Clone)]
pub struct ClientAssertionSigner {
    client_id: String,
    key: Arc<SigningKey>,
    clock: Arc<dyn Clock>,
}

impl ClientAssertionSigner {
    /// A signer for `client_id` with its registered key.
    pub fn new(client_id: impl Into<String>, key: Arc<SigningKey>, clock: Arc<dyn Clock>) -> Self {
        Self {
            client_id: client_id.into(),
            key,
            clock,
        }
    }

    /// The client id.
    pub fn client_id(&self) -> &str {
        &self.client_id
    }

    /// A fresh assertion for `audience` (the exact token endpoint URL), with a new `jti`.
    pub fn sign(&self, audience: &str) -> Result<SecretString, KeyError> {
        let now = self.clock.now();
        let claims = ClientAssertionClaims {
            iss: self.client_id.clone(),
            sub: self.client_id.clone(),
            aud: Audience::One(audience.to_owned()),
            jti: uuid::Uuid::new_v4().to_string(),
            exp: now + ASSERTION_LIFETIME_SECONDS,
            iat: Some(now),
            nbf: None,
        };
        Ok(SecretString::from(self.key.sign("JWT", &claims)?))
    }

    /// The form fields that authenticate the client at `token_endpoint`.
    pub fn form_fields(
        &self,
        token_endpoint: &str,
    ) -> Result<Vec<(&'static str, SecretString)>, KeyError> {
        Ok(vec![
            ("client_id", SecretString::from(self.client_id.clone())),
            (
                "client_assertion_type",
                SecretString::from(CLIENT_ASSERTION_TYPE_JWT_BEARER),
            ),
            ("client_assertion", self.sign(token_endpoint)?),
        ])
    }
}
