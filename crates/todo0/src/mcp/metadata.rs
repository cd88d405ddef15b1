//! OAuth 2.0 Protected Resource Metadata (RFC 9728 §2–3) for the MCP endpoint, served at the
//! path-suffixed well-known URL (`/.well-known/oauth-protected-resource/mcp`) and the root form.

use protocol::metadata::{ProtectedResourceMetadata, protected_resource_metadata_url};

use super::scopes::ScopePolicy;

/// The metadata URL for `resource`, by [`protocol::metadata::protected_resource_metadata_url`]
/// (RFC 9728 §3.1). A resource that is not a URL (the CLI refuses one at load) has none: empty.
pub fn metadata_url(resource: &str) -> String {
    url::Url::parse(resource)
        .map(|resource| protected_resource_metadata_url(&resource).into())
        .unwrap_or_default()
}

/// The document; `scopes_supported` lists every scope `policy` accepts for some call.
pub fn document(resource: &str, issuer: &str, policy: ScopePolicy) -> ProtectedResourceMetadata {
    ProtectedResourceMetadata {
        resource: resource.to_owned(),
        authorization_servers: vec![issuer.to_owned()],
        scopes_supported: policy.scopes_supported(),
        bearer_methods_supported: vec!["header".to_owned()],
        resource_name: Some("todo0 MCP server".to_owned()),
        extra: serde_json::Map::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_well_known_segment_is_inserted_before_the_path() {
        assert_eq!(
            metadata_url("http://localhost:5002/mcp"),
            "http://localhost:5002/.well-known/oauth-protected-resource/mcp"
        );
    }
}
