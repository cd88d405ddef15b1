//! OAuth 2.0 wire vocabulary: grant types (RFC 6749 §4, RFC 8693 §2.1, RFC 7523 §2.1), token type
//! URIs (RFC 8693 §3, the ID-JAG draft, Okta's `oauth-sts`), error codes (RFC 6749 §5.2 and the
//! specs that extend it) and scopes (RFC 6749 §3.3).

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

use secrecy::SecretString;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// `client_assertion_type` for JWT client authentication (RFC 7523 §2.2).
pub const CLIENT_ASSERTION_TYPE_JWT_BEARER: &str =
    "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
/// JWT `typ` header of an Identity Assertion JWT Authorization Grant.
pub const ID_JAG_JWT_TYPE: &str = "oauth-id-jag+jwt";
/// JWT `typ` header of an RFC 9068 access token.
pub const ACCESS_TOKEN_JWT_TYPE: &str = "at+jwt";
/// `authorization_grant_profiles_supported` value of a resource AS that redeems ID-JAGs.
pub const ID_JAG_GRANT_PROFILE: &str = "urn:ietf:params:oauth:grant-profile:id-jag";

macro_rules! uri_enum {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident => $uri:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash)]
        pub enum $name {
            $($(#[$vmeta])* $variant,)+
            /// A value this crate has no name for, kept verbatim.
            Other(String),
        }

        impl $name {
            /// The wire string.
            pub fn as_str(&self) -> &str {
                match self {
                    $(Self::$variant => $uri,)+
                    Self::Other(other) => other,
                }
            }
        }

        impl From<&str> for $name {
            fn from(value: &str) -> Self {
                match value {
                    $($uri => Self::$variant,)+
                    other => Self::Other(other.to_owned()),
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let value = String::deserialize(d)?;
                Ok(Self::from(value.as_str()))
            }
        }
    };
}

uri_enum!(
    /// `grant_type` values.
    GrantType {
        /// RFC 6749 §4.1.3.
        AuthorizationCode => "authorization_code",
        /// RFC 6749 §6.
        RefreshToken => "refresh_token",
        /// RFC 6749 §4.4.
        ClientCredentials => "client_credentials",
        /// RFC 8693 §2.1.
        TokenExchange => "urn:ietf:params:oauth:grant-type:token-exchange",
        /// RFC 7523 §2.1.
        JwtBearer => "urn:ietf:params:oauth:grant-type:jwt-bearer",
    }
);

uri_enum!(
    /// Token type identifiers (RFC 8693 §3).
    TokenType {
        /// An OIDC ID token.
        IdToken => "urn:ietf:params:oauth:token-type:id_token",
        /// An OAuth access token.
        AccessToken => "urn:ietf:params:oauth:token-type:access_token",
        /// An OAuth refresh token.
        RefreshToken => "urn:ietf:params:oauth:token-type:refresh_token",
        /// A JWT.
        Jwt => "urn:ietf:params:oauth:token-type:jwt",
        /// Identity Assertion JWT Authorization Grant.
        IdJag => "urn:ietf:params:oauth:token-type:id-jag",
        /// Okta's brokered-consent ("OAuth STS") token.
        OktaOauthSts => "urn:okta:params:oauth:token-type:oauth-sts",
    }
);

uri_enum!(
    /// `error` codes of OAuth error responses.
    ErrorCode {
        /// RFC 6749 §5.2.
        InvalidRequest => "invalid_request",
        /// RFC 6749 §5.2.
        InvalidClient => "invalid_client",
        /// RFC 6749 §5.2.
        InvalidGrant => "invalid_grant",
        /// RFC 6749 §5.2.
        UnauthorizedClient => "unauthorized_client",
        /// RFC 6749 §5.2.
        UnsupportedGrantType => "unsupported_grant_type",
        /// RFC 6749 §5.2.
        InvalidScope => "invalid_scope",
        /// RFC 8707 §2 and RFC 8693 §2.2.2.
        InvalidTarget => "invalid_target",
        /// RFC 6749 §4.1.2.1.
        AccessDenied => "access_denied",
        /// RFC 6749 §4.1.2.1.
        UnsupportedResponseType => "unsupported_response_type",
        /// RFC 6749 §4.1.2.1.
        ServerError => "server_error",
        /// RFC 6749 §4.1.2.1.
        TemporarilyUnavailable => "temporarily_unavailable",
        /// OIDC Core §3.1.2.6.
        InteractionRequired => "interaction_required",
        /// OIDC Core §3.1.2.6.
        LoginRequired => "login_required",
        /// RFC 6750 §3.1.
        InvalidToken => "invalid_token",
        /// RFC 6750 §3.1.
        InsufficientScope => "insufficient_scope",
        /// RFC 7009 §2.2.1.
        UnsupportedTokenType => "unsupported_token_type",
        /// RFC 8628 §3.5, reused by draft-parecki-oauth-jwt-grant-interaction-response: the
        /// person has not finished the interaction yet.
        InteractionPending => "interaction_pending",
        /// RFC 8628 §3.5: the client polls faster than `interval`.
        SlowDown => "slow_down",
        /// RFC 8628 §3.5: the interaction expired; a new request starts a new one.
        ExpiredToken => "expired_token",
    }
);

/// An RFC 6749 §5.2 error body. `interaction_uri` carries the brokered-consent extension.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorResponse {
    /// The error code.
    pub error: ErrorCode,
    /// Human-readable detail; never contains secrets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_description: Option<String>,
    /// Where a person completes a required interaction (brokered consent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interaction_uri: Option<String>,
    /// Seconds a client waits between retries while the interaction is pending
    /// (draft-parecki-oauth-jwt-grant-interaction-response).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval: Option<u64>,
    /// Seconds until `interaction_uri` expires (same draft).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_in: Option<u64>,
}

impl ErrorResponse {
    /// An error with a description.
    pub fn new(error: ErrorCode, description: impl Into<String>) -> Self {
        Self {
            error,
            error_description: Some(description.into()),
            interaction_uri: None,
            interval: None,
            expires_in: None,
        }
    }
}

/// A successful token response (RFC 6749 §5.1, RFC 8693 §2.2.1).
#[derive(Debug, Serialize, Deserialize)]
pub struct TokenResponse {
    /// The issued token (for token exchange, the issued token whatever its type).
    #[serde(serialize_with = "crate::secret_serde::serialize")]
    pub access_token: SecretString,
    /// `Bearer`, or `N_A` for an ID-JAG (not an access token).
    pub token_type: String,
    /// RFC 8693: the type of `access_token`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issued_token_type: Option<TokenType>,
    /// Lifetime in seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_in: Option<i64>,
    /// Granted scope, when it differs from or narrows the request (always sent by idp0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// Refresh token.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        serialize_with = "crate::secret_serde::serialize_opt"
    )]
    pub refresh_token: Option<SecretString>,
    /// OIDC ID token.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        serialize_with = "crate::secret_serde::serialize_opt"
    )]
    pub id_token: Option<SecretString>,
}

impl TokenResponse {
    /// The scopes granted: `scope` when sent, else exactly what was `requested` (RFC 6749 §5.1
    /// makes `scope` optional when it is identical to the request).
    pub fn granted_scopes(&self, requested: &Scopes) -> Result<Scopes, InvalidScope> {
        match self.scope.as_deref() {
            Some(granted) => Scopes::parse(granted),
            None => Ok(requested.clone()),
        }
    }
}

/// A set of scope tokens (RFC 6749 §3.3): space-delimited on the wire, order-insensitive.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Scopes(BTreeSet<String>);

/// A scope string with a character outside `%x21 / %x23-5B / %x5D-7E`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid scope token {0:?}")]
pub struct InvalidScope(pub String);

impl Scopes {
    /// The empty set.
    pub fn empty() -> Self {
        Self::default()
    }

    /// Parses a space-delimited scope string. Repeated spaces are tolerated; bad characters are not.
    pub fn parse(value: &str) -> Result<Self, InvalidScope> {
        value
            .split(' ')
            .filter(|s| !s.is_empty())
            .map(Self::checked)
            .collect()
    }

    fn checked(token: &str) -> Result<String, InvalidScope> {
        let valid = token
            .bytes()
            .all(|b| matches!(b, 0x21 | 0x23..=0x5B | 0x5D..=0x7E));
        if valid {
            Ok(token.to_owned())
        } else {
            Err(InvalidScope(token.to_owned()))
        }
    }

    /// Whether the set holds `scope`.
    pub fn contains(&self, scope: &str) -> bool {
        self.0.contains(scope)
    }

    /// Whether every scope of `other` is in this set.
    pub fn contains_all(&self, other: &Scopes) -> bool {
        other.0.is_subset(&self.0)
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Scopes in both sets.
    pub fn intersection(&self, other: &Scopes) -> Scopes {
        Scopes(self.0.intersection(&other.0).cloned().collect())
    }

    /// Scopes in either set.
    pub fn union(&self, other: &Scopes) -> Scopes {
        Scopes(self.0.union(&other.0).cloned().collect())
    }

    /// The scopes, sorted.
    pub fn iter(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(String::as_str)
    }

    /// The scopes as a sorted vector (Okta's `scp` claim).
    pub fn to_vec(&self) -> Vec<String> {
        self.0.iter().cloned().collect()
    }
}

impl FromIterator<String> for Scopes {
    fn from_iter<I: IntoIterator<Item = String>>(iter: I) -> Self {
        Scopes(iter.into_iter().collect())
    }
}

impl<'a> FromIterator<&'a str> for Scopes {
    fn from_iter<I: IntoIterator<Item = &'a str>>(iter: I) -> Self {
        Scopes(iter.into_iter().map(str::to_owned).collect())
    }
}

impl fmt::Display for Scopes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for scope in &self.0 {
            if !first {
                f.write_str(" ")?;
            }
            f.write_str(scope)?;
            first = false;
        }
        Ok(())
    }
}

impl FromStr for Scopes {
    type Err = InvalidScope;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl Serialize for Scopes {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Scopes {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let value = String::deserialize(d)?;
        Scopes::parse(&value).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_scope_in_a_token_response_means_the_requested_scope() {
        let response = |scope: Option<&str>| TokenResponse {
            access_token: SecretString::from("t"),
            token_type: "Bearer".into(),
            issued_token_type: None,
            expires_in: None,
            scope: scope.map(str::to_owned),
            refresh_token: None,
            id_token: None,
        };
        let requested = Scopes::parse("a b").expect("scopes");
        assert_eq!(
            response(None).granted_scopes(&requested),
            Ok(requested.clone())
        );
        assert_eq!(
            response(Some("a")).granted_scopes(&requested),
            Ok(Scopes::parse("a").expect("scope"))
        );
        assert!(response(Some("a\"b")).granted_scopes(&requested).is_err());
    }

    #[test]
    fn grant_types_round_trip_their_urns() {
        for raw in [
            "authorization_code",
            "urn:ietf:params:oauth:grant-type:token-exchange",
            "urn:ietf:params:oauth:grant-type:jwt-bearer",
        ] {
            assert_eq!(GrantType::from(raw).as_str(), raw);
        }
        assert_eq!(
            GrantType::from("password"),
            GrantType::Other("password".into())
        );
    }

    #[test]
    fn token_type_id_jag_is_named() {
        assert_eq!(
            TokenType::from("urn:ietf:params:oauth:token-type:id-jag"),
            TokenType::IdJag
        );
    }

    #[test]
    fn scopes_parse_sort_and_intersect() -> Result<(), InvalidScope> {
        let requested = Scopes::parse("mcp:tools:read  mcp:connect")?;
        assert_eq!(requested.to_string(), "mcp:connect mcp:tools:read");
        let allowed = Scopes::parse("mcp:connect mcp:tools:manage")?;
        assert_eq!(requested.intersection(&allowed).to_string(), "mcp:connect");
        assert_eq!(
            requested.union(&allowed).to_string(),
            "mcp:connect mcp:tools:manage mcp:tools:read"
        );
        Ok(())
    }

    #[test]
    fn scopes_reject_quotes_and_backslashes() {
        assert!(Scopes::parse("ok \"bad\"").is_err());
        assert!(Scopes::parse("a\\b").is_err());
    }

    #[test]
    fn error_response_serialises_per_rfc6749() -> Result<(), serde_json::Error> {
        let body = serde_json::to_value(ErrorResponse::new(ErrorCode::InvalidGrant, "expired"))?;
        assert_eq!(
            body,
            serde_json::json!({"error": "invalid_grant", "error_description": "expired"})
        );
        Ok(())
    }

    #[test]
    fn token_response_debug_hides_the_token() -> Result<(), serde_json::Error> {
        let response = TokenResponse {
            access_token: SecretString::from("s3cr3t-token"),
            token_type: "Bearer".into(),
            issued_token_type: None,
            expires_in: Some(60),
            scope: None,
            refresh_token: None,
            id_token: None,
        };
        assert!(!format!("{response:?}").contains("s3cr3t"));
        let wire = serde_json::to_string(&response)?;
        assert!(wire.contains("s3cr3t-token"));
        Ok(())
    }
}
