//! The resources of idp0's management API, kept as ONE serde document in the store
//! (`Store::replace_managed_directory`): authorization servers with their scopes, policies and
//! rules; OIDC apps with their user assignments; AI agents with keys, connections and owners;
//! trusted origins; and the agents' asynchronous operations. Field names follow Okta's
//! (OKTA.md §4); what Okta shows on the wire is rendered from these by the handlers. Client
//! secrets are kept only as their SHA-256.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// `ACTIVE`, `INACTIVE` (and `STAGED` for a new AI agent).
pub(crate) const ACTIVE: &str = "ACTIVE";
pub(crate) const INACTIVE: &str = "INACTIVE";
pub(crate) const STAGED: &str = "STAGED";

/// Operations kept for polling; older ones are dropped.
pub(crate) const MAX_OPERATIONS: usize = 200;

/// Everything created through the management API.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Document {
    #[serde(default)]
    pub(crate) authorization_servers: Vec<AuthorizationServer>,
    #[serde(default)]
    pub(crate) apps: Vec<App>,
    #[serde(default)]
    pub(crate) agents: Vec<Agent>,
    #[serde(default)]
    pub(crate) trusted_origins: Vec<TrustedOrigin>,
    #[serde(default)]
    pub(crate) operations: Vec<Operation>,
}

/// A custom authorization server.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct AuthorizationServer {
    pub(crate) id: String,
    pub(crate) name: String,
    #[serde(default)]
    pub(crate) description: String,
    pub(crate) audiences: Vec<String>,
    pub(crate) status: String,
    pub(crate) created: i64,
    pub(crate) last_updated: i64,
    #[serde(default)]
    pub(crate) scopes: Vec<Scope>,
    #[serde(default)]
    pub(crate) policies: Vec<Policy>,
}

/// A scope of a custom authorization server.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Scope {
    pub(crate) id: String,
    pub(crate) name: String,
    #[serde(default)]
    pub(crate) description: String,
    #[serde(default)]
    pub(crate) display_name: String,
    pub(crate) consent: String,
    #[serde(default)]
    pub(crate) default: bool,
}

/// An access policy (`OAUTH_AUTHORIZATION_POLICY`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Policy {
    pub(crate) id: String,
    pub(crate) name: String,
    #[serde(default)]
    pub(crate) description: String,
    pub(crate) priority: i64,
    pub(crate) status: String,
    /// `conditions.clients.include`: client ids, or `ALL_CLIENTS`.
    pub(crate) clients: Vec<String>,
    pub(crate) created: i64,
    pub(crate) last_updated: i64,
    #[serde(default)]
    pub(crate) rules: Vec<Rule>,
}

/// A policy rule (`RESOURCE_ACCESS`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Rule {
    pub(crate) id: String,
    pub(crate) name: String,
    pub(crate) priority: i64,
    pub(crate) status: String,
    /// `conditions.grantTypes.include`.
    pub(crate) grant_types: Vec<String>,
    /// `conditions.scopes.include` (`*` = every scope of the server).
    pub(crate) scopes: Vec<String>,
    /// `conditions.people.groups.include`.
    pub(crate) groups: Vec<String>,
    /// `conditions.people.users.include`.
    #[serde(default)]
    pub(crate) users: Vec<String>,
    pub(crate) access_token_lifetime_minutes: i64,
    pub(crate) refresh_token_lifetime_minutes: i64,
    pub(crate) refresh_token_window_minutes: i64,
    pub(crate) created: i64,
    pub(crate) last_updated: i64,
}

/// An OIDC web application; its id is also its OAuth `client_id` (as in Okta).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct App {
    pub(crate) id: String,
    pub(crate) label: String,
    pub(crate) status: String,
    pub(crate) created: i64,
    pub(crate) last_updated: i64,
    /// `credentials.oauthClient.token_endpoint_auth_method`.
    pub(crate) token_endpoint_auth_method: String,
    /// Lowercase hex SHA-256 of the client secret (the secret itself is never stored).
    pub(crate) client_secret_sha256: String,
    /// `settings.oauthClient` as given (redirect URIs, grant types, ...).
    pub(crate) oauth_client: OauthClientSettings,
    /// Assigned users: (user id, assigned at).
    #[serde(default)]
    pub(crate) users: Vec<AppUser>,
}

/// `settings.oauthClient` of an app (other members Okta knows are accepted and not kept).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct OauthClientSettings {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) client_uri: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) logo_uri: Option<String>,
    #[serde(default)]
    pub(crate) redirect_uris: Vec<String>,
    #[serde(default)]
    pub(crate) post_logout_redirect_uris: Vec<String>,
    #[serde(default)]
    pub(crate) response_types: Vec<String>,
    #[serde(default)]
    pub(crate) grant_types: Vec<String>,
    #[serde(default = "web")]
    pub(crate) application_type: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) consent_method: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) initiate_login_uri: Option<String>,
}

fn web() -> String {
    "web".into()
}

/// A user assigned to an app.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct AppUser {
    pub(crate) id: String,
    pub(crate) scope: String,
    pub(crate) created: i64,
}

/// An AI agent identity (a workload principal); its id is also its OAuth `client_id`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Agent {
    pub(crate) id: String,
    pub(crate) name: String,
    #[serde(default)]
    pub(crate) description: String,
    /// The linked OIDC app (whose users' ID tokens the agent may exchange).
    #[serde(default)]
    pub(crate) app_id: Option<String>,
    pub(crate) status: String,
    pub(crate) created: i64,
    pub(crate) last_updated: i64,
    #[serde(default)]
    pub(crate) keys: Vec<AgentKey>,
    #[serde(default)]
    pub(crate) connections: Vec<AgentConnection>,
    /// Owner ORNs (`orn:okta:directory:{org}:users:{id}`).
    #[serde(default)]
    pub(crate) owners: Vec<String>,
}

/// A public key of an agent.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct AgentKey {
    pub(crate) id: String,
    pub(crate) kid: String,
    pub(crate) status: String,
    /// The public JWK as uploaded (checked to hold no private parts).
    pub(crate) jwk: Value,
    pub(crate) created: i64,
    pub(crate) last_updated: i64,
}

/// A managed connection of an agent (`IDENTITY_ASSERTION_CUSTOM_AS`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct AgentConnection {
    pub(crate) id: String,
    pub(crate) connection_type: String,
    /// The custom authorization server's id (from its ORN).
    pub(crate) authorization_server_id: String,
    pub(crate) authorization_server_orn: String,
    pub(crate) resource_indicator: String,
    pub(crate) scope_condition: String,
    pub(crate) scopes: Vec<String>,
    pub(crate) status: String,
    pub(crate) created: i64,
    pub(crate) last_updated: i64,
}

/// A trusted origin (stored and listed; idp0 serves no browser CORS requests from them).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct TrustedOrigin {
    pub(crate) id: String,
    pub(crate) name: String,
    pub(crate) origin: String,
    pub(crate) scopes: Vec<Value>,
    pub(crate) status: String,
    pub(crate) created: i64,
    pub(crate) created_by: String,
    pub(crate) last_updated: i64,
}

/// An asynchronous operation of the AI agent API (202 + `Location`). idp0 completes each at
/// once; it is kept so the `Location` can be polled, as on Okta.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Operation {
    pub(crate) id: String,
    /// `CREATE`, `ACTIVATE`, `DEACTIVATE`, `DELETE`.
    #[serde(rename = "type")]
    pub(crate) kind: String,
    pub(crate) status: String,
    pub(crate) resource_id: String,
    pub(crate) created: i64,
}

impl Document {
    pub(crate) fn server(&self, id: &str) -> Option<&AuthorizationServer> {
        self.authorization_servers.iter().find(|s| s.id == id)
    }
    pub(crate) fn server_mut(&mut self, id: &str) -> Option<&mut AuthorizationServer> {
        self.authorization_servers.iter_mut().find(|s| s.id == id)
    }
    pub(crate) fn app(&self, id: &str) -> Option<&App> {
        self.apps.iter().find(|a| a.id == id)
    }
    pub(crate) fn app_mut(&mut self, id: &str) -> Option<&mut App> {
        self.apps.iter_mut().find(|a| a.id == id)
    }
    pub(crate) fn agent(&self, id: &str) -> Option<&Agent> {
        self.agents.iter().find(|a| a.id == id)
    }
    pub(crate) fn agent_mut(&mut self, id: &str) -> Option<&mut Agent> {
        self.agents.iter_mut().find(|a| a.id == id)
    }

    /// Records a finished operation, dropping the oldest beyond [`MAX_OPERATIONS`].
    pub(crate) fn record_operation(&mut self, operation: Operation) {
        self.operations.push(operation);
        let excess = self.operations.len().saturating_sub(MAX_OPERATIONS);
        self.operations.drain(..excess);
    }
}

impl AuthorizationServer {
    pub(crate) fn policy_mut(&mut self, id: &str) -> Option<&mut Policy> {
        self.policies.iter_mut().find(|p| p.id == id)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_document_round_trips_and_old_documents_read() {
        let doc: Document = serde_json::from_str("{}").unwrap();
        assert!(doc.apps.is_empty());
        let text = serde_json::to_string(&doc).unwrap();
        let again: Document = serde_json::from_str(&text).unwrap();
        assert!(again.agents.is_empty());
    }

    #[test]
    fn operations_are_bounded() {
        let mut doc = Document::default();
        for i in 0..(MAX_OPERATIONS + 5) {
            doc.record_operation(Operation {
                id: format!("op{i}"),
                kind: "CREATE".into(),
                status: "COMPLETED".into(),
                resource_id: "wlp".into(),
                created: 0,
            });
        }
        assert_eq!(doc.operations.len(), MAX_OPERATIONS);
        assert_eq!(doc.operations[0].id, "op5");
    }
}
