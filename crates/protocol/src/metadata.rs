//! Metadata documents: OAuth 2.0 Authorization Server Metadata (RFC 8414 §2), OpenID Connect
//! Discovery 1.0 §3, the ID-JAG draft's additions, and Protected Resource Metadata (RFC 9728 §2)
//! with its well-known URL (§3.1).

use serde::{Deserialize, Serialize};
use url::Url;

/// Authorization server / OpenID provider metadata. Fields we do not model are kept in `extra`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuthorizationServerMetadata {
    /// The issuer identifier; must equal the issuer the document was fetched for.
    pub issuer: String,
    /// Authorization endpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authorization_endpoint: Option<String>,
    /// Token endpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_endpoint: Option<String>,
    /// JWKS document.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwks_uri: Option<String>,
    /// OIDC UserInfo endpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub userinfo_endpoint: Option<String>,
    /// RFC 7662 introspection endpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub introspection_endpoint: Option<String>,
    /// RFC 7009 revocation endpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revocation_endpoint: Option<String>,
    /// OIDC RP-initiated logout endpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_session_endpoint: Option<String>,
    /// Supported scopes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub scopes_supported: Vec<String>,
    /// Supported response types.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub response_types_supported: Vec<String>,
    /// Supported response modes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub response_modes_supported: Vec<String>,
    /// Supported grant types.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub grant_types_supported: Vec<String>,
    /// OIDC subject types.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub subject_types_supported: Vec<String>,
    /// ID token signing algorithms.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub id_token_signing_alg_values_supported: Vec<String>,
    /// Client authentication methods at the token endpoint.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub token_endpoint_auth_methods_supported: Vec<String>,
    /// Algorithms accepted for `private_key_jwt` assertions.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub token_endpoint_auth_signing_alg_values_supported: Vec<String>,
    /// Client authentication methods at the introspection endpoint.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub introspection_endpoint_auth_methods_supported: Vec<String>,
    /// Client authentication methods at the revocation endpoint.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub revocation_endpoint_auth_methods_supported: Vec<String>,
    /// PKCE methods (RFC 7636).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub code_challenge_methods_supported: Vec<String>,
    /// Claims that may appear in ID tokens.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub claims_supported: Vec<String>,
    /// ID-JAG draft: token types the AS issues by identity chaining (token exchange).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub identity_chaining_requested_token_types_supported: Vec<String>,
    /// ID-JAG draft: authorization grant profiles the AS redeems.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub authorization_grant_profiles_supported: Vec<String>,
    /// Whether `iss` is returned in authorization responses (RFC 9207).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authorization_response_iss_parameter_supported: Option<bool>,
    /// Fields not modelled above.
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

/// Protected resource metadata (RFC 9728 §2).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProtectedResourceMetadata {
    /// The resource identifier.
    pub resource: String,
    /// Issuers of authorization servers that protect it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub authorization_servers: Vec<String>,
    /// Scopes used in requests to the resource.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub scopes_supported: Vec<String>,
    /// How a bearer token may be presented.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub bearer_methods_supported: Vec<String>,
    /// Human-readable name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_name: Option<String>,
    /// Fields not modelled above.
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

/// The well-known path of protected resource metadata (RFC 9728 §3).
pub const PROTECTED_RESOURCE_WELL_KNOWN: &str = "/.well-known/oauth-protected-resource";

/// Where the metadata of `resource` is published (RFC 9728 §3.1): the well-known path goes
/// between the host (with its port) and the resource's path, so `https://h/mcp` publishes at
/// `https://h/.well-known/oauth-protected-resource/mcp`. Trailing slashes are dropped from the
/// path (`https://h/` and `https://h/mcp/` map like `https://h` and `https://h/mcp`), as the MCP
/// SDKs compute it, so a client and this server agree; query, fragment and userinfo are dropped.
pub fn protected_resource_metadata_url(resource: &Url) -> Url {
    let mut url = resource.clone();
    let path = resource.path().trim_end_matches('/');
    url.set_path(&format!("{PROTECTED_RESOURCE_WELL_KNOWN}{path}"));
    url.set_query(None);
    url.set_fragment(None);
    // Only URLs without a host refuse these, and they have no credentials to drop.
    let _ = url.set_username("");
    let _ = url.set_password(None);
    url
}

/// The discovery URLs to try for `issuer`, in order: OIDC (path appended, §4 of Discovery),
/// RFC 8414 path insertion, and RFC 8414 path appended (Okta's custom AS form).
pub fn discovery_urls(issuer: &str) -> Vec<String> {
    let issuer = issuer.trim_end_matches('/');
    let mut urls = vec![format!("{issuer}/.well-known/openid-configuration")];
    if let Some((origin, path)) = split_origin(issuer)
        && !path.is_empty()
    {
        urls.push(format!(
            "{origin}/.well-known/oauth-authorization-server{path}"
        ));
    }
    urls.push(format!("{issuer}/.well-known/oauth-authorization-server"));
    urls
}

/// Splits `https://host:port/path` into (`https://host:port`, `/path`).
fn split_origin(url: &str) -> Option<(&str, &str)> {
    let after_scheme = url.find("://")? + 3;
    match url[after_scheme..].find('/') {
        Some(slash) => Some(url.split_at(after_scheme + slash)),
        None => Some((url, "")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn discovery_urls_cover_oidc_and_rfc8414_forms() {
        assert_eq!(
            discovery_urls("http://localhost:9400/oauth2/todo0"),
            vec![
                "http://localhost:9400/oauth2/todo0/.well-known/openid-configuration",
                "http://localhost:9400/.well-known/oauth-authorization-server/oauth2/todo0",
                "http://localhost:9400/oauth2/todo0/.well-known/oauth-authorization-server",
            ]
        );
        assert_eq!(
            discovery_urls("https://example.okta.com/"),
            vec![
                "https://example.okta.com/.well-known/openid-configuration",
                "https://example.okta.com/.well-known/oauth-authorization-server",
            ]
        );
    }

    #[rstest::rstest]
    #[case::path(
        "https://mcp.example/mcp",
        "https://mcp.example/.well-known/oauth-protected-resource/mcp"
    )]
    #[case::nested_path(
        "https://mcp.example/tenant/a/mcp",
        "https://mcp.example/.well-known/oauth-protected-resource/tenant/a/mcp"
    )]
    #[case::no_path(
        "https://mcp.example",
        "https://mcp.example/.well-known/oauth-protected-resource"
    )]
    #[case::root_slash(
        "https://mcp.example/",
        "https://mcp.example/.well-known/oauth-protected-resource"
    )]
    #[case::trailing_slash(
        "https://mcp.example/mcp/",
        "https://mcp.example/.well-known/oauth-protected-resource/mcp"
    )]
    #[case::port(
        "http://127.0.0.1:5002/mcp",
        "http://127.0.0.1:5002/.well-known/oauth-protected-resource/mcp"
    )]
    #[case::port_no_path(
        "http://localhost:5002",
        "http://localhost:5002/.well-known/oauth-protected-resource"
    )]
    #[case::default_port_is_not_written(
        "https://mcp.example:443/mcp",
        "https://mcp.example/.well-known/oauth-protected-resource/mcp"
    )]
    #[case::query_fragment_and_userinfo_dropped(
        "https://u:p@mcp.example/mcp?x=1#f",
        "https://mcp.example/.well-known/oauth-protected-resource/mcp"
    )]
    fn protected_resource_metadata_sits_between_host_and_path(
        #[case] resource: &str,
        #[case] expected: &str,
    ) -> Result<(), url::ParseError> {
        let resource = Url::parse(resource)?;
        assert_eq!(
            protected_resource_metadata_url(&resource).as_str(),
            expected
        );
        Ok(())
    }

    #[test]
    fn unknown_metadata_fields_survive_a_round_trip() -> Result<(), serde_json::Error> {
        let doc = serde_json::json!({"issuer": "https://as", "dpop_signing_alg_values_supported": ["ES256"]});
        let parsed: AuthorizationServerMetadata = serde_json::from_value(doc.clone())?;
        assert_eq!(serde_json::to_value(&parsed)?, doc);
        Ok(())
    }
}
