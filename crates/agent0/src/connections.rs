//! Connections (ARCHITECTURE §7): the declared, audited paths from the agent to other systems,
//! in Okta's terms — the `authorization_server` that mints ID-JAG → access tokens, and each
//! `mcp_server` with its auth strategy — and their status for the Managed Connections panel.
//! `DISABLED_CONNECTIONS` turns kinds off: a disabled MCP server offers no tools, and an
//! `id-jag` server cannot work with the authorization server disabled.

use std::collections::BTreeSet;
use std::str::FromStr;

use serde::Serialize;
use serde_json::{Map, Value};

use crate::config::{AuthStrategy, GithubApplication};
use crate::mcp::{McpHub, McpServer};

/// A connection's kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ConnectionKind {
    /// The resource authorization server (Cross-App Access).
    AuthorizationServer,
    /// An ISV application reached by brokered consent.
    Application,
    /// An MCP server.
    McpServer,
}

impl FromStr for ConnectionKind {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim() {
            "authorization_server" => Ok(Self::AuthorizationServer),
            "application" => Ok(Self::Application),
            "mcp_server" => Ok(Self::McpServer),
            other => Err(format!(
                "{other:?} is not a connection kind (authorization_server, application, mcp_server)"
            )),
        }
    }
}

/// Parses `DISABLED_CONNECTIONS` (comma-separated kinds; empty entries ignored).
pub fn parse_disabled(value: &str) -> Result<BTreeSet<ConnectionKind>, String> {
    value
        .split(',')
        .filter(|s| !s.trim().is_empty())
        .map(ConnectionKind::from_str)
        .collect()
}

/// The authorization server connection's identifiers.
#[derive(Debug, Clone)]
pub struct AuthorizationServerInfo {
    /// The resource AS issuer (the ID-JAG audience).
    pub issuer: String,
    /// Its token endpoint.
    pub token_endpoint: String,
    /// The org AS (IdP) issuer, where ID-JAGs are requested.
    pub org_issuer: String,
    /// The agent's client id.
    pub agent_id: String,
}

/// The panel's view of one connection.
#[derive(Debug, Clone, Serialize)]
pub struct ConnectionStatus {
    /// Its name.
    pub name: String,
    /// Its kind.
    pub kind: ConnectionKind,
    /// Display name.
    pub label: String,
    /// `live`, `idle`, `unreachable` (its last use could not reach it), `disabled` or `off`.
    pub state: &'static str,
    /// Whether it is configured.
    pub configured: bool,
    /// Whether this person used it successfully recently (holds a live token / session).
    pub connected: bool,
    /// Whether `DISABLED_CONNECTIONS` turned it off.
    pub disabled: bool,
    /// What identifies it (issuer, agent id, resource indicator, URL).
    pub identifiers: Map<String, Value>,
    /// When this person's last call through it succeeded (RFC 3339), if ever.
    #[serde(rename = "lastSuccessAt")]
    pub last_success_at: Option<String>,
    /// When this person's last call could not reach it (RFC 3339), if ever.
    #[serde(rename = "lastFailureAt")]
    pub last_failure_at: Option<String>,
}

/// A Unix time as RFC 3339 (UTC), for the panel.
fn rfc3339(at: Option<protocol::UnixTime>) -> Option<String> {
    let at = time::OffsetDateTime::from_unix_timestamp(at?).ok()?;
    at.format(&time::format_description::well_known::Rfc3339)
        .ok()
}

fn state(configured: bool, disabled: bool, connected: bool) -> &'static str {
    match (configured, disabled, connected) {
        (false, _, _) => "off",
        (true, true, _) => "disabled",
        (true, false, true) => "live",
        (true, false, false) => "idle",
    }
}

/// Whether `server` can be used with the `disabled` kinds.
pub fn is_enabled(server: &McpServer, disabled: &BTreeSet<ConnectionKind>) -> bool {
    let needs_authorization_server = matches!(server.auth, AuthStrategy::IdJag { .. });
    let kind_disabled = disabled.contains(&ConnectionKind::McpServer);
    let authorization_disabled = disabled.contains(&ConnectionKind::AuthorizationServer);
    let blocked = needs_authorization_server && authorization_disabled;
    !kind_disabled && !blocked
}

/// Every connection's status for `subject`.
pub async fn status(
    hub: &McpHub,
    authorization_server: Option<&AuthorizationServerInfo>,
    all_servers: &[McpServer],
    application: Option<&GithubApplication>,
    disabled: &BTreeSet<ConnectionKind>,
    subject: &str,
) -> Vec<ConnectionStatus> {
    let mut connections = Vec::new();
    let id_jag_servers: Vec<&McpServer> = all_servers
        .iter()
        .filter(|s| matches!(s.auth, AuthStrategy::IdJag { .. }))
        .collect();
    let as_disabled = disabled.contains(&ConnectionKind::AuthorizationServer);
    let mut as_connected = false;
    for server in &id_jag_servers {
        as_connected = as_connected || hub.broker().has_live_token(subject, &server.name).await;
    }
    let mut identifiers = Map::new();
    if let Some(info) = authorization_server {
        identifiers.insert("AS issuer".into(), info.issuer.clone().into());
        identifiers.insert("Token endpoint".into(), info.token_endpoint.clone().into());
        identifiers.insert("Org issuer".into(), info.org_issuer.clone().into());
        identifiers.insert("Agent ID".into(), info.agent_id.clone().into());
    }
    let configured = authorization_server.is_some();
    connections.push(ConnectionStatus {
        name: "authorization_server".into(),
        kind: ConnectionKind::AuthorizationServer,
        label: "Authorization Server".into(),
        state: state(configured, as_disabled, as_connected),
        configured,
        connected: as_connected,
        disabled: as_disabled,
        identifiers,
        last_success_at: None,
        last_failure_at: None,
    });
    for server in all_servers {
        let is_disabled = !is_enabled(server, disabled);
        let health = hub.health(subject, &server.name);
        let connected = hub.is_live(subject, &server.name) && !health.is_unreachable();
        let mut identifiers = Map::new();
        identifiers.insert("MCP URL".into(), server.url.clone().into());
        match &server.auth {
            AuthStrategy::IdJag {
                target,
                initial_scopes,
            } => {
                identifiers.insert("Resource indicator".into(), target.resource.clone().into());
                identifiers.insert("Auth".into(), "id-jag".into());
                identifiers.insert("AS issuer".into(), target.as_issuer.clone().into());
                identifiers.insert("First scopes".into(), initial_scopes.to_string().into());
            }
            AuthStrategy::OauthSts { resource, okta_id } => {
                identifiers.insert("Resource indicator".into(), resource.clone().into());
                identifiers.insert("Auth".into(), "oauth-sts".into());
                if let Some(id) = okta_id {
                    identifiers.insert("Okta id".into(), id.clone().into());
                }
            }
            AuthStrategy::None => {
                identifiers.insert("Auth".into(), "none".into());
            }
        }
        connections.push(ConnectionStatus {
            name: server.name.clone(),
            kind: ConnectionKind::McpServer,
            label: server.label.clone(),
            state: match state(true, is_disabled, connected) {
                "idle" | "live" if health.is_unreachable() => "unreachable",
                other => other,
            },
            configured: true,
            connected,
            disabled: is_disabled,
            identifiers,
            last_success_at: rfc3339(health.last_success_at),
            last_failure_at: rfc3339(health.last_failure_at),
        });
    }
    // Last, so the cards before it keep their places.
    connections.push(application_status(hub, application, disabled, subject));
    connections
}

/// The application connection's card (GitHub REST by brokered consent).
fn application_status(
    hub: &McpHub,
    application: Option<&GithubApplication>,
    disabled: &BTreeSet<ConnectionKind>,
    subject: &str,
) -> ConnectionStatus {
    let is_disabled = disabled.contains(&ConnectionKind::Application);
    let mut identifiers = Map::new();
    let Some(app) = application else {
        return ConnectionStatus {
            name: "application".into(),
            kind: ConnectionKind::Application,
            label: "Application".into(),
            state: state(false, is_disabled, false),
            configured: false,
            connected: false,
            disabled: is_disabled,
            identifiers,
            last_success_at: None,
            last_failure_at: None,
        };
    };
    identifiers.insert("Resource indicator".into(), app.resource.clone().into());
    identifiers.insert("Auth".into(), "oauth-sts".into());
    if let Some(id) = &app.okta_id {
        identifiers.insert("Okta id".into(), id.clone().into());
    }
    identifiers.insert("API URL".into(), app.api_url.clone().into());
    identifiers.insert("Web URL".into(), app.web_url.to_string().into());
    let health = hub.health(subject, &app.name);
    let connected = !is_disabled && hub.is_live(subject, &app.name) && !health.is_unreachable();
    ConnectionStatus {
        name: app.name.clone(),
        kind: ConnectionKind::Application,
        label: app.label.clone(),
        state: match state(true, is_disabled, connected) {
            "idle" | "live" if health.is_unreachable() => "unreachable",
            other => other,
        },
        configured: true,
        connected,
        disabled: is_disabled,
        identifiers,
        last_success_at: rfc3339(health.last_success_at),
        last_failure_at: rfc3339(health.last_failure_at),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn disabled_kinds_parse_with_clear_errors() {
        let kinds = parse_disabled("application, mcp_server,").unwrap_or_default();
        assert_eq!(
            kinds.into_iter().collect::<Vec<_>>(),
            vec![ConnectionKind::Application, ConnectionKind::McpServer]
        );
        assert!(parse_disabled("").is_ok_and(|k| k.is_empty()));
        let error = parse_disabled("mcp").unwrap_err();
        assert!(
            error.contains("\"mcp\" is not a connection kind"),
            "{error}"
        );
    }

    #[test]
    fn states_follow_configuration_then_disabling_then_use() {
        assert_eq!(state(false, true, true), "off");
        assert_eq!(state(true, true, true), "disabled");
        assert_eq!(state(true, false, true), "live");
        assert_eq!(state(true, false, false), "idle");
    }
}
