//! Token requests, parsed not validated (STYLE §2): the form body is read into a flat map
//! (duplicate parameters refused, RFC 6749 §3.2; unknown ones ignored), then converted into one
//! variant per grant, so no handler juggles optional fields.

use std::collections::HashMap;

use protocol::Scopes;
use protocol::oauth::{GrantType, TokenType};
use secrecy::SecretString;

use crate::error::OAuthError;

/// A form body as a map, each parameter at most once.
#[derive(Default)]
pub struct Form(HashMap<String, String>);

impl Form {
    /// Parses `application/x-www-form-urlencoded`.
    pub fn parse(body: &[u8]) -> Result<Self, OAuthError> {
        let mut map = HashMap::new();
        for (name, value) in url::form_urlencoded::parse(body) {
            if map.insert(name.to_string(), value.into_owned()).is_some() {
                return Err(OAuthError::InvalidRequest(format!(
                    "parameter {name} is repeated"
                )));
            }
        }
        Ok(Self(map))
    }

    /// A non-empty parameter (an empty value counts as absent, RFC 6749 §3.1).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    /// A required parameter.
    pub fn require(&self, name: &str) -> Result<&str, OAuthError> {
        self.get(name)
            .ok_or_else(|| OAuthError::InvalidRequest(format!("missing parameter {name}")))
    }

    /// An optional scope parameter.
    pub fn scope(&self) -> Result<Option<Scopes>, OAuthError> {
        self.get("scope")
            .map(|s| Scopes::parse(s).map_err(|e| OAuthError::InvalidScope(e.to_string())))
            .transpose()
    }
}

/// A token request, one variant per grant.
#[derive(Debug)]
pub enum TokenRequest {
    /// RFC 6749 §4.1.3 with PKCE (RFC 7636 §4.5).
    AuthorizationCode {
        /// The code.
        code: SecretString,
        /// Must equal the authorization request's.
        redirect_uri: String,
        /// PKCE verifier.
        code_verifier: SecretString,
    },
    /// RFC 6749 §6.
    RefreshToken {
        /// The refresh token.
        refresh_token: SecretString,
        /// Optional narrowing.
        scope: Option<Scopes>,
    },
    /// RFC 6749 §4.4.
    ClientCredentials {
        /// Requested scope.
        scope: Option<Scopes>,
    },
    /// RFC 8693 §2.1, profiled by the ID-JAG draft §4.3.
    TokenExchange {
        /// What to issue.
        requested_token_type: TokenType,
        /// The user's token.
        subject_token: SecretString,
        /// Its type.
        subject_token_type: TokenType,
        /// The target authorization server.
        audience: Option<String>,
        /// The target resource.
        resource: Option<String>,
        /// Requested scope.
        scope: Option<Scopes>,
    },
    /// RFC 7523 §2.1 with an ID-JAG (draft §4.4).
    JwtBearer {
        /// The ID-JAG.
        assertion: SecretString,
        /// Optional narrowing.
        scope: Option<Scopes>,
    },
}

impl TokenRequest {
    /// The grant type.
    pub fn grant_type(&self) -> GrantType {
        match self {
            Self::AuthorizationCode { .. } => GrantType::AuthorizationCode,
            Self::RefreshToken { .. } => GrantType::RefreshToken,
            Self::ClientCredentials { .. } => GrantType::ClientCredentials,
            Self::TokenExchange { .. } => GrantType::TokenExchange,
            Self::JwtBearer { .. } => GrantType::JwtBearer,
        }
    }
}

impl TryFrom<&Form> for TokenRequest {
    type Error = OAuthError;

    fn try_from(form: &Form) -> Result<Self, OAuthError> {
        let secret = |name: &str| form.require(name).map(|v| SecretString::from(v.to_owned()));
        match GrantType::from(form.require("grant_type")?) {
            GrantType::AuthorizationCode => Ok(Self::AuthorizationCode {
                code: secret("code")?,
                redirect_uri: form.require("redirect_uri")?.to_owned(),
                code_verifier: secret("code_verifier")?,
            }),
            GrantType::RefreshToken => Ok(Self::RefreshToken {
                refresh_token: secret("refresh_token")?,
                scope: form.scope()?,
            }),
            GrantType::ClientCredentials => Ok(Self::ClientCredentials {
                scope: form.scope()?,
            }),
            GrantType::TokenExchange => {
                if form.get("actor_token").is_some() || form.get("actor_token_type").is_some() {
                    return Err(OAuthError::InvalidRequest(
                        "actor_token is not supported".into(),
                    ));
                }
                Ok(Self::TokenExchange {
                    requested_token_type: TokenType::from(form.require("requested_token_type")?),
                    subject_token: secret("subject_token")?,
                    subject_token_type: TokenType::from(form.require("subject_token_type")?),
                    audience: form.get("audience").map(str::to_owned),
                    resource: form.get("resource").map(str::to_owned),
                    scope: form.scope()?,
                })
            }
            GrantType::JwtBearer => Ok(Self::JwtBearer {
                assertion: secret("assertion")?,
                scope: form.scope()?,
            }),
            GrantType::Other(other) => {
                let shown: String = other.chars().take(64).collect();
                Err(OAuthError::UnsupportedGrantType(format!(
                    "grant type {shown:?} is not supported"
                )))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_parameters_are_refused() {
        assert!(matches!(
            Form::parse(b"grant_type=a&grant_type=b"),
            Err(OAuthError::InvalidRequest(_))
        ));
    }

    #[test]
    fn a_token_exchange_is_read_into_its_variant() -> Result<(), OAuthError> {
        let form = Form::parse(
            b"grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Atoken-exchange\
              &requested_token_type=urn%3Aietf%3Aparams%3Aoauth%3Atoken-type%3Aid-jag\
              &subject_token=eyJ&subject_token_type=urn%3Aietf%3Aparams%3Aoauth%3Atoken-type%3Aid_token\
              &audience=http%3A%2F%2Fas&scope=a+b&unknown=ignored",
        )?;
        match TokenRequest::try_from(&form)? {
            TokenRequest::TokenExchange {
                requested_token_type,
                subject_token_type,
                audience,
                scope,
                ..
            } => {
                assert_eq!(requested_token_type, TokenType::IdJag);
                assert_eq!(subject_token_type, TokenType::IdToken);
                assert_eq!(audience.as_deref(), Some("http://as"));
                assert_eq!(scope.map(|s| s.to_string()), Some("a b".into()));
            }
            other => panic!("wrong variant {other:?}"),
        }
        Ok(())
    }

    #[test]
    fn missing_and_unknown_grant_types_have_distinct_errors() {
        let missing = TokenRequest::try_from(&Form::parse(b"code=x").unwrap_or_default());
        assert!(matches!(missing, Err(OAuthError::InvalidRequest(_))));
        let unknown =
            TokenRequest::try_from(&Form::parse(b"grant_type=password").unwrap_or_default());
        assert!(matches!(unknown, Err(OAuthError::UnsupportedGrantType(_))));
    }
}
