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
//! # revocation = "github"   # default "rfc7009"; "github": revocation_url is GitHub's
//! #   DELETE https://api.github.com/applications/{client_id}/grant (Basic client_id:secret,
//! #   JSON {"access_token"}), which removes the person's whole authorization of the app
//! client_id = "Iv1.0123"
//! client_secret_env = "GITHUB_CLIENT_SECRET"  # or client_secret = "…"
//! scopes = ["repo", "read:user"]
//! ```

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
    /// GitHub's OAuth app API: `DELETE revocation_url` (GitHub:
    /// `https://api.github.com/applications/{client_id}/grant`) with HTTP Basic
    /// `client_id:client_secret` and the JSON body `{"access_token": …}`; it deletes the person's
    /// whole authorization of the app (every token), so GitHub asks for consent again.
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
    /// The ISV's token revocation endpoint, when it has one.
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
    /// ISV revocation endpoint.
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
        out.push(BrokeredConnection {
            kind: e.kind,
            name: e.name,
            resource,
            authorize_url: endpoint(&format!("{k}.authorize_url"), &e.authorize_url)?,
            token_url: endpoint(&format!("{k}.token_url"), &e.token_url)?,
            revocation_url: e
                .revocation_url
                .as_deref()
                .map(|u| endpoint(&format!("{k}.revocation_url"), u))
                .transpose()?,
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
