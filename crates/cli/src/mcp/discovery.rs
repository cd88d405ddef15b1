//! Finding out how an MCP server is protected (MCP authorization spec 2025-11-25): an
//! unauthenticated `initialize` POST, the `401`'s `WWW-Authenticate` challenge (RFC 6750 §3,
//! parsed with the protocol crate's RFC 9110 parser), the protected resource metadata it points
//! to (RFC 9728, with the well-known fallbacks when the challenge names none, and the §3.3 check
//! that the document describes this very server), and the authorization server's token endpoint
//! (RFC 8414 / OIDC Discovery).

use anyhow::{Context, bail};
use protocol::Scopes;
use protocol::discovery::DiscoveryError;
use protocol::metadata::{ProtectedResourceMetadata, protected_resource_metadata_url};
use protocol::www_authenticate::{self, Challenge};
use reqwest::header::{ACCEPT, WWW_AUTHENTICATE};
use url::Url;

/// The protocol version the probe announces; any version will do, the probe only wants the 401.
const PROBE_PROTOCOL_VERSION: &str = "2025-11-25";
const SESSION_HEADER: &str = "mcp-session-id";

/// What the server told an unauthenticated client.
pub(super) enum Probe {
    /// It answered without asking for a token.
    Open,
    /// It wants a token.
    Protected(Box<Protection>),
}

/// How to get a token for a protected server.
pub(super) struct Protection {
    /// The resource identifier from the metadata (the ID-JAG's `resource`).
    pub(super) resource: String,
    /// The resource authorization server's issuer (the ID-JAG's `audience`).
    pub(super) as_issuer: String,
    /// Its token endpoint (where the ID-JAG is redeemed).
    pub(super) as_token_endpoint: String,
    /// The scopes the challenge asked for (least privilege: nothing more is requested up front).
    pub(super) scope: Scopes,
}

/// POSTs `initialize` without a token and, if the server answers `401`, discovers how to get one.
pub(super) async fn probe(http: &reqwest::Client, server: &Url) -> anyhow::Result<Probe> {
    let initialize = serde_json::json!({
        "jsonrpc": "2.0",
        "id": 0,
        "method": "initialize",
        "params": {
            "protocolVersion": PROBE_PROTOCOL_VERSION,
            "capabilities": {},
            "clientInfo": {"name": "secure-agent", "version": env!("CARGO_PKG_VERSION")},
        },
    });
    let response = http
        .post(server.as_str())
        .header(ACCEPT, "application/json, text/event-stream")
        .json(&initialize)
        .send()
        .await
        .map_err(|e| {
            anyhow::anyhow!(
                "cannot reach {server}: {}",
                protocol::discovery::with_causes(&e.without_url())
            )
        })?;
    let status = response.status();
    if status != reqwest::StatusCode::UNAUTHORIZED && status != reqwest::StatusCode::FORBIDDEN {
        // No authorization asked for. Close the session the probe may have opened.
        if let Some(session) = response.headers().get(SESSION_HEADER).cloned() {
            let _ = http
                .delete(server.as_str())
                .header(SESSION_HEADER, session)
                .send()
                .await;
        }
        return Ok(Probe::Open);
    }
    let values: Vec<&str> = response
        .headers()
        .get_all(WWW_AUTHENTICATE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    let challenge: Option<Challenge> = if values.is_empty() {
        None
    } else {
        match www_authenticate::parse_all(values.iter().copied()) {
            Ok(challenges) => www_authenticate::find_bearer(&challenges).cloned(),
            Err(e) => {
                tracing::warn!(error = %e, "ignoring an unparsable WWW-Authenticate challenge");
                None
            }
        }
    };
    let metadata_url = challenge.as_ref().and_then(Challenge::resource_metadata);
    let prm = protected_resource_metadata(http, server, metadata_url).await?;
    if !same_resource(&prm.resource, server) {
        bail!(
            "the protected resource metadata describes {:?}, not {server}: refusing to get a token \
             for another resource (RFC 9728 §3.3)",
            prm.resource
        );
    }
    let as_issuer = prm.authorization_servers.first().with_context(|| {
        format!("the protected resource metadata of {server} names no authorization server")
    })?;
    let as_metadata = protocol::discovery::discover(http, as_issuer)
        .await
        .with_context(|| format!("discovering the authorization server {as_issuer}"))?;
    let as_token_endpoint = as_metadata
        .token_endpoint
        .with_context(|| format!("the authorization server {as_issuer} has no token_endpoint"))?;
    let scope = match challenge.as_ref().and_then(Challenge::scope) {
        Some(scope) => Scopes::parse(scope).context("the server's challenge has a bad scope")?,
        None => Scopes::empty(),
    };
    Ok(Probe::Protected(Box::new(Protection {
        resource: prm.resource,
        as_issuer: as_issuer.clone(),
        as_token_endpoint,
        scope,
    })))
}

/// Fetches the metadata from the challenge's `resource_metadata`, else from the well-known URLs
/// (RFC 9728 §3.1: path-suffixed form first, then the root form).
async fn protected_resource_metadata(
    http: &reqwest::Client,
    server: &Url,
    from_challenge: Option<&str>,
) -> anyhow::Result<ProtectedResourceMetadata> {
    let candidates = match from_challenge {
        Some(url) => vec![url.to_owned()],
        None => well_known_urls(server),
    };
    let mut last_error = None;
    for url in &candidates {
        match protocol::discovery::get_json::<ProtectedResourceMetadata>(http, url).await {
            Ok(document) => return Ok(document),
            Err(e @ (DiscoveryError::Status { .. } | DiscoveryError::Invalid { .. })) => {
                last_error = Some(e);
            }
            Err(e) => return Err(e).context("fetching the protected resource metadata"),
        }
    }
    match last_error {
        Some(e) => Err(e).context(format!(
            "{server} asked for authorization but publishes no usable protected resource metadata"
        )),
        None => bail!("{server} asked for authorization but names no protected resource metadata"),
    }
}

/// The server's own metadata URL (RFC 9728 §3.1), then the root form.
pub(super) fn well_known_urls(server: &Url) -> Vec<String> {
    let own = protected_resource_metadata_url(server);
    let mut origin = server.clone();
    origin.set_path("/");
    let root = protected_resource_metadata_url(&origin);
    if own == root {
        vec![root.into()]
    } else {
        vec![own.into(), root.into()]
    }
}

/// RFC 9728 §3.3: the document's `resource` must be the server's URL (compared as parsed URLs,
/// so only syntax-based normalization such as the host's case or a default port is forgiven).
pub(super) fn same_resource(resource: &str, server: &Url) -> bool {
    Url::parse(resource).is_ok_and(|resource| resource == *server)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn well_known_urls_insert_the_path_then_fall_back_to_the_root() -> anyhow::Result<()> {
        assert_eq!(
            well_known_urls(&Url::parse("http://127.0.0.1:9/mcp/")?),
            vec![
                "http://127.0.0.1:9/.well-known/oauth-protected-resource/mcp",
                "http://127.0.0.1:9/.well-known/oauth-protected-resource",
            ]
        );
        assert_eq!(
            well_known_urls(&Url::parse("https://mcp.example")?),
            vec!["https://mcp.example/.well-known/oauth-protected-resource"]
        );
        Ok(())
    }

    #[test]
    fn the_metadata_must_describe_this_server() -> anyhow::Result<()> {
        let server = Url::parse("http://localhost:5002/mcp")?;
        assert!(same_resource("http://localhost:5002/mcp", &server));
        assert!(same_resource("HTTP://LOCALHOST:5002/mcp", &server));
        assert!(!same_resource("http://localhost:5002/mcp/", &server));
        assert!(!same_resource("http://localhost:5003/mcp", &server));
        assert!(!same_resource("http://evil.example/mcp", &server));
        assert!(!same_resource("not a url", &server));
        Ok(())
    }
}
