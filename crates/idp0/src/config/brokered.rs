//! Brokered ("OAuth STS") managed connections of an agent (OKTA.md §1): an application or MCP
//! server the agent reaches with a person's third-party (ISV) token that idp0 obtains once with
//! the person's consent and keeps in its vault.
//!
//! ```toml
//! [[agents.brokered_connections]]
//! kind = "application"                 # or "mcp_server"
//! name = "GitHub"                      # shown to the person
//! resource = "https://api.github.com"  # the resource indicator (URL or `orn:` form), verbatim
//! authorize_url = "https://github.com/login/oauth/authorize"
//! token_url = "https://github.com/login/oauth/access_token"
//! revocation_url = "https://isv.example/oauth/revoke"   # optional (RFC 7009)
//! # revocation = "github"   # default "rfc7009"; "github": revocation_url is GitHub's grant URL
//! #   https://api.github.com/applications/{client_id}/grant (this connection's client_id;
//! #   anything else is a configuration error), called with DELETE, Basic client_id:secret and
//! #   JSON {"access_token"}; its sibling …/applications/{client_id}/token is derived from it
//! client_id = "Iv1.0123"
//! client_secret_env = "GITHUB_CLIENT_SECRET"  # or client_secret = "…"
//! scopes = ["repo", "read:user"]
//! ```
//!
//! Removing a consent (idp0's Connected apps page) revokes at the ISV only what that consent
//! holds. With `rfc7009` that is each of its tokens. With `github`, one OAuth app may serve
//! several connections (GitHub REST and GitHub MCP, or several agents), and GitHub's grant
//! deletion ends *every* token the person holds for the app; so while another consent of the
//! same person (any agent) still uses the same ISV app — the same `token_url` and `client_id` —
//! idp0 deletes only this consent's token (`DELETE …/applications/{client_id}/token`), and it
//! deletes the grant (`…/grant`: the person's authorization goes, GitHub asks again next time)
//! when the last consent using the app is removed.

use std::collections::HashSet;

use secrecy::SecretString;
use serde::{Deserialize, Serialize};

use super::{ConfigError, invalid};

/// What kind of system a brokered connection reaches (ARCHITECTURE §7).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BrokeredKind {
    /// A third-party application's API (e.g. GitHub REST).
    Application,
    /// A third-party MCP server (e.g. GitHub's remote MCP server).
    McpServer,
}

impl BrokeredKind {
    /// The configured name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Application => "application",
            Self::McpServer => "mcp_server",
        }
    }
}

/// How idp0 revokes a person's tokens at the ISV when the person removes a consent.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RevocationStyle {
    /// RFC 7009: `POST revocation_url` with a form (`token`, `token_type_hint`, client
    /// credentials), once per token.
    #[default]
    Rfc7009,
    /// GitHub's OAuth app API, HTTP Basic `client_id:client_secret` and the JSON body
    /// `{"access_token": …}`. `revocation_url` must be the grant URL
    /// `…/applications/{client_id}/grant` (GitHub: `https://api.github.com/applications/…`,
    /// GitHub Enterprise Server: `https://<host>/api/v3/applications/…`); idp0 calls
    /// `DELETE …/grant` (the person's whole authorization of the app, every token, so GitHub asks
    /// for consent again) when the last consent using the app is removed, and its sibling
    /// `DELETE …/applications/{client_id}/token` (that consent's token only) while another consent
    /// of the same person uses the same app (see [`BrokeredConnection::same_app`]).
    Github,
}

impl RevocationStyle {
    fn is_default(&self) -> bool {
        *self == Self::default()
    }
}

/// A brokered connection as the file says it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BrokeredConnectionEntry {
    /// `application` or `mcp_server`.
    pub kind: BrokeredKind,
    /// Display name of the app (the consent and Connected apps pages show it).
    pub name: String,
    /// Resource indicator the agent sends as `resource`.
    pub resource: String,
    /// The ISV's authorization endpoint.
    pub authorize_url: String,
    /// The ISV's token endpoint.
    pub token_url: String,
    /// The ISV's token revocation endpoint, when it has one; with `revocation = "github"`,
    /// GitHub's `…/applications/{client_id}/grant`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revocation_url: Option<String>,
    /// How `revocation_url` is called: `rfc7009` (default) or `github`.
    #[serde(default, skip_serializing_if = "RevocationStyle::is_default")]
    pub revocation: RevocationStyle,
    /// idp0's client id at the ISV.
    pub client_id: String,
    /// idp0's client secret at the ISV (sent to the ISV, so kept, never hashed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<String>,
    /// Instead of `client_secret`: the environment variable that holds it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_secret_env: Option<String>,
    /// Scopes requested at the ISV.
    #[serde(default)]
    pub scopes: Vec<String>,
}

/// A brokered connection at run time.
#[derive(Debug, Clone)]
pub struct BrokeredConnection {
    /// Kind.
    pub kind: BrokeredKind,
    /// Display name.
    pub name: String,
    /// Resource indicator (URLs without a trailing slash, as Okta stores them).
    pub resource: String,
    /// ISV authorization endpoint.
    pub authorize_url: url::Url,
    /// ISV token endpoint.
    pub token_url: url::Url,
    /// ISV revocation endpoint (style `github`: the grant URL, checked at load).
    pub revocation_url: Option<url::Url>,
    /// How the revocation endpoint is called.
    pub revocation: RevocationStyle,
    /// Client id at the ISV.
    pub client_id: String,
    /// Client secret at the ISV.
    pub client_secret: SecretString,
    /// Scopes requested at the ISV, space-separated.
    pub scope: String,
}

impl BrokeredConnection {
    /// Whether `other` is the same OAuth app at the same ISV (the same token endpoint and client
    /// id): tokens of both come from one authorization of the person at the ISV.
    pub fn same_app(&self, other: &BrokeredConnection) -> bool {
        self.token_url == other.token_url && self.client_id == other.client_id
    }

    /// Style `github`: GitHub's `DELETE …/applications/{client_id}/token` (one token), the
    /// sibling of the configured grant URL; `None` for another style, without a revocation URL,
    /// or when the URL is not `…/applications/{client_id}/grant` (refused at load).
    pub fn github_token_url(&self) -> Option<url::Url> {
        if self.revocation != RevocationStyle::Github {
            return None;
        }
        github_app_url(self.revocation_url.as_ref()?, &self.client_id, "token")
    }
}

/// `grant` with its last path segment replaced by `leaf`, when `grant` is exactly
/// `…/applications/{client_id}/grant` (no query, no fragment).
fn github_app_url(grant: &url::Url, client_id: &str, leaf: &str) -> Option<url::Url> {
    if grant.query().is_some() || grant.fragment().is_some() {
        return None;
    }
    let segments: Vec<&str> = grant.path_segments()?.collect();
    if segments.len() < 3 || segments[segments.len() - 3] != "applications" {
        return None;
    }
    // The canonical form of the path with this client id (percent-encoded as a segment).
    let mut expected = grant.clone();
    expected
        .path_segments_mut()
        .ok()?
        .pop()
        .pop()
        .push(client_id)
        .push("grant");
    if expected != *grant {
        return None;
    }
    let mut sibling = grant.clone();
    sibling.path_segments_mut().ok()?.pop().push(leaf);
    Some(sibling)
}

/// A resource indicator as Okta stores it: an `http(s)` URL loses a trailing slash; an ORN
/// (`orn:…`) is kept verbatim.
pub fn normalise_resource(resource: &str) -> Option<String> {
    if resource.starts_with("orn:") && resource.len() > 4 && !resource.contains(char::is_whitespace)
    {
        return Some(resource.to_owned());
    }
    let url = url::Url::parse(resource).ok()?;
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        return None;
    }
    let text = url.as_str();
    Some(text.strip_suffix('/').unwrap_or(text).to_owned())
}

fn endpoint(key: &str, value: &str) -> Result<url::Url, ConfigError> {
    let url =
        url::Url::parse(value).map_err(|e| invalid(key, format!("not an absolute URL: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(invalid(key, "must be an http or https URL"));
    }
    Ok(url)
}

/// Validates an agent's brokered connections; `key` is the agent's dotted key.
pub(super) fn build(
    key: &str,
    entries: Vec<BrokeredConnectionEntry>,
) -> Result<Vec<BrokeredConnection>, ConfigError> {
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for (i, e) in entries.into_iter().enumerate() {
        let k = format!("{key}.brokered_connections[{i}]");
        let resource = normalise_resource(&e.resource).ok_or_else(|| {
            invalid(
                format!("{k}.resource"),
                "must be an http(s) URL or an ORN (orn:…)",
            )
        })?;
        if !seen.insert(resource.clone()) {
            return Err(invalid(
                format!("{k}.resource"),
                format!("duplicate resource {resource:?} for this agent"),
            ));
        }
        if e.name.trim().is_empty() {
            return Err(invalid(format!("{k}.name"), "must not be empty"));
        }
        if e.client_id.trim().is_empty() {
            return Err(invalid(format!("{k}.client_id"), "must not be empty"));
        }
        let secret = match (e.client_secret, e.client_secret_env) {
            (Some(_), Some(_)) => {
                return Err(invalid(
                    format!("{k}.client_secret_env"),
                    "give `client_secret` or `client_secret_env`, not both",
                ));
            }
            (Some(plain), None) => plain,
            (None, Some(var)) => std::env::var(&var).map_err(|_| {
                invalid(
                    format!("{k}.client_secret_env"),
                    format!("the environment variable {var} is not set"),
                )
            })?,
            (None, None) => {
                return Err(invalid(
                    format!("{k}.client_secret"),
                    "give `client_secret` or `client_secret_env`",
                ));
            }
        };
        if secret.is_empty() {
            return Err(invalid(format!("{k}.client_secret"), "must not be empty"));
        }
        if e.scopes.iter().any(|s| s.is_empty() || s.contains(' ')) {
            return Err(invalid(
                format!("{k}.scopes"),
                "each scope is one non-empty word",
            ));
        }
        let revocation_url = e
            .revocation_url
            .as_deref()
            .map(|u| endpoint(&format!("{k}.revocation_url"), u))
            .transpose()?;
        if let Some(url) = &revocation_url
            && e.revocation == RevocationStyle::Github
            && github_app_url(url, &e.client_id, "token").is_none()
        {
            return Err(invalid(
                format!("{k}.revocation_url"),
                format!(
                    "with revocation = \"github\" it must be GitHub's grant URL \
                     …/applications/{}/grant (e.g. https://api.github.com/applications/{}/grant); \
                     idp0 derives …/token from it",
                    e.client_id, e.client_id
                ),
            ));
        }
        out.push(BrokeredConnection {
            kind: e.kind,
            name: e.name,
            resource,
            authorize_url: endpoint(&format!("{k}.authorize_url"), &e.authorize_url)?,
            token_url: endpoint(&format!("{k}.token_url"), &e.token_url)?,
            revocation_url,
            revocation: e.revocation,
            client_id: e.client_id,
            client_secret: SecretString::from(secret),
            scope: e.scopes.join(" "),
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resources_are_normalised_as_okta_stores_them() {
        assert_eq!(
            normalise_resource("https://api.githubcopilot.com/mcp/").as_deref(),
            Some("https://api.githubcopilot.com/mcp")
        );
        assert_eq!(
            normalise_resource("https://api.github.com").as_deref(),
            Some("https://api.github.com")
        );
        assert_eq!(
            normalise_resource("orn:okta:idp:00o1:client-auth-settings:abc").as_deref(),
            Some("orn:okta:idp:00o1:client-auth-settings:abc")
        );
        assert_eq!(normalise_resource("ftp://x"), None);
        assert_eq!(normalise_resource("not a url"), None);
        assert_eq!(normalise_resource("orn:"), None);
    }
}
