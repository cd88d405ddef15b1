//! From the management API's resources to idp0's directory entries ([`ManagedEntries`]), which
//! `Config::with_managed` validates together with the file's:
//!
//! * ACTIVE apps → web clients (`client_secret_basic`/`_post`, by the SHA-256 of their secret;
//!   the app id is the `client_id`, as in Okta), which only their assigned users may sign in to.
//! * ACTIVE authorization servers → custom servers: `audience` = `audiences[0]`; scopes; default
//!   scopes = the scopes marked `default`, or `mcp:connect` when none is marked and the server
//!   has it (the sample's MCP clients name their scopes; this only matters for a request that
//!   names none); one policy entry per ACTIVE rule of each ACTIVE policy, in priority order:
//!   clients = the policy's `conditions.clients.include` (`ALL_CLIENTS` = every client) limited
//!   to clients that exist, grant types = the rule's that idp0 serves (Okta's device code grant
//!   is dropped), scopes = the rule's (`*` = all) limited to the server's, lifetime =
//!   `accessTokenLifetimeMinutes` × 60.
//! * ACTIVE agents with at least one ACTIVE key → agents: `linked_clients` = their app when it is
//!   ACTIVE; connections = their ACTIVE `IDENTITY_ASSERTION_CUSTOM_AS` connections to ACTIVE
//!   servers (an agent with none reaches no custom server, as on Okta).

use std::collections::HashSet;

use jsonwebtoken::jwk::JwkSet;

use super::model::{ACTIVE, Document};
use crate::config::{
    AgentEntry, AuthMethod, AuthorizationServerEntry, ClientEntry, ConfigError, ConfigFile,
    ConnectionEntry, ManagedEntries, PolicyEntry,
};

/// The connection type idp0 enforces.
pub(crate) const IDENTITY_ASSERTION_CUSTOM_AS: &str = "IDENTITY_ASSERTION_CUSTOM_AS";

/// Grant types idp0's custom servers serve, by the names Okta's rules use.
fn is_served_grant(name: &str) -> bool {
    matches!(
        name,
        "client_credentials"
            | "authorization_code"
            | "refresh_token"
            | "urn:ietf:params:oauth:grant-type:jwt-bearer"
            | "urn:ietf:params:oauth:grant-type:token-exchange"
    )
}

/// The entries `doc` stands for; `seed` is the file, whose clients policies may also name.
pub(crate) fn managed_entries(doc: &Document, seed: &ConfigFile) -> ManagedEntries {
    let clients: Vec<ClientEntry> = doc
        .apps
        .iter()
        .filter(|a| a.status == ACTIVE)
        .map(|a| ClientEntry {
            client_id: a.id.clone(),
            name: Some(a.label.clone()),
            client_secret: None,
            client_secret_sha256: Some(a.client_secret_sha256.clone()),
            auth_method: if a.token_endpoint_auth_method == "client_secret_post" {
                AuthMethod::ClientSecretPost
            } else {
                AuthMethod::ClientSecretBasic
            },
            redirect_uris: a.oauth_client.redirect_uris.clone(),
            post_logout_redirect_uris: a.oauth_client.post_logout_redirect_uris.clone(),
            jwks: None,
            jwks_file: None,
            application_type: crate::config::ApplicationType::Web,
            // Okta enforces an app's grant types whatever a policy allows.
            grant_types: Some(a.oauth_client.grant_types.clone()),
        })
        .collect();
    let active_servers: HashSet<&str> = doc
        .authorization_servers
        .iter()
        .filter(|s| s.status == ACTIVE)
        .map(|s| s.id.as_str())
        .collect();
    let agents: Vec<AgentEntry> = doc
        .agents
        .iter()
        .filter(|a| a.status == ACTIVE)
        .filter_map(|a| {
            let keys: Vec<_> = a
                .keys
                .iter()
                .filter(|k| k.status == ACTIVE)
                .filter_map(|k| serde_json::from_value(k.jwk.clone()).ok())
                .collect();
            if keys.is_empty() {
                return None;
            }
            let linked = a
                .app_id
                .as_deref()
                .filter(|id| doc.app(id).is_some_and(|app| app.status == ACTIVE))
                .map(str::to_owned);
            let connections = a
                .connections
                .iter()
                .filter(|c| {
                    c.status == ACTIVE
                        && c.connection_type == IDENTITY_ASSERTION_CUSTOM_AS
                        && active_servers.contains(c.authorization_server_id.as_str())
                })
                .map(|c| ConnectionEntry {
                    authorization_server: c.authorization_server_id.clone(),
                    resource: c.resource_indicator.clone(),
                    scopes: c.scopes.clone(),
                })
                .collect();
            Some(AgentEntry {
                client_id: a.id.clone(),
                name: Some(a.name.clone()),
                jwks: Some(JwkSet { keys }),
                jwks_file: None,
                linked_clients: linked.into_iter().collect(),
                connections: Some(connections),
                brokered_connections: Vec::new(),
            })
        })
        .collect();
    let known: HashSet<String> = clients
        .iter()
        .map(|c| c.client_id.clone())
        .chain(agents.iter().map(|a| a.client_id.clone()))
        .chain(seed.clients.iter().map(|c| c.client_id.clone()))
        .chain(seed.agents.iter().map(|a| a.client_id.clone()))
        .collect();
    let authorization_servers = doc
        .authorization_servers
        .iter()
        .filter(|s| s.status == ACTIVE)
        .map(|s| {
            let scopes: Vec<String> = s.scopes.iter().map(|x| x.name.clone()).collect();
            let marked: Vec<String> = s
                .scopes
                .iter()
                .filter(|x| x.default)
                .map(|x| x.name.clone())
                .collect();
            let default_scopes = if marked.is_empty() && scopes.iter().any(|x| x == "mcp:connect") {
                vec!["mcp:connect".to_owned()]
            } else {
                marked
            };
            let mut policies: Vec<_> = s.policies.iter().filter(|p| p.status == ACTIVE).collect();
            policies.sort_by_key(|p| p.priority);
            let mut entries = Vec::new();
            for policy in policies {
                let mut clients: Vec<String> = if policy.clients.iter().any(|c| c == "ALL_CLIENTS")
                {
                    known.iter().cloned().collect()
                } else {
                    policy
                        .clients
                        .iter()
                        .filter(|c| known.contains(*c))
                        .cloned()
                        .collect()
                };
                clients.sort();
                if clients.is_empty() {
                    continue;
                }
                let mut rules: Vec<_> =
                    policy.rules.iter().filter(|r| r.status == ACTIVE).collect();
                rules.sort_by_key(|r| r.priority);
                for rule in rules {
                    let grant_types: Vec<String> = rule
                        .grant_types
                        .iter()
                        .filter(|g| is_served_grant(g))
                        .cloned()
                        .collect();
                    let rule_scopes: Vec<String> = if rule.scopes.iter().any(|x| x == "*") {
                        scopes.clone()
                    } else {
                        rule.scopes
                            .iter()
                            .filter(|x| scopes.contains(x))
                            .cloned()
                            .collect()
                    };
                    if grant_types.is_empty() {
                        continue;
                    }
                    entries.push(PolicyEntry {
                        clients: clients.clone(),
                        grant_types,
                        scopes: rule_scopes,
                        access_token_lifetime_seconds: rule.access_token_lifetime_minutes * 60,
                    });
                }
            }
            AuthorizationServerEntry {
                id: s.id.clone(),
                name: Some(s.name.clone()),
                audience: s.audiences.first().cloned().unwrap_or_default(),
                signing_alg: None,
                scopes,
                default_scopes,
                resource_clients: Vec::new(),
                policies: entries,
            }
        })
        .collect();
    let assignments = doc
        .apps
        .iter()
        .filter(|a| a.status == ACTIVE)
        .map(|a| (a.id.clone(), a.users.iter().map(|u| u.id.clone()).collect()))
        .collect();
    ManagedEntries {
        clients,
        agents,
        authorization_servers,
        assignments,
    }
}

/// A validation error of the merged directory, with the managed object it is about named by
/// its Okta id: `Config::with_managed` numbers managed entries after the file's own.
pub(crate) fn describe(error: &ConfigError, managed: &ManagedEntries, seed: &ConfigFile) -> String {
    let ConfigError::Invalid { key, .. } = error else {
        return error.to_string();
    };
    let index = |prefix: &str| -> Option<usize> {
        let rest = key.strip_prefix(prefix)?.strip_prefix('[')?;
        rest.split(']').next()?.parse().ok()
    };
    let object = if let Some(i) = index("clients") {
        i.checked_sub(seed.clients.len())
            .and_then(|i| managed.clients.get(i))
            .map(|c| format!("app {}", c.client_id))
    } else if let Some(i) = index("agents") {
        i.checked_sub(seed.agents.len())
            .and_then(|i| managed.agents.get(i))
            .map(|a| format!("AI agent {}", a.client_id))
    } else if let Some(i) = index("authorization_servers") {
        i.checked_sub(seed.authorization_servers.len())
            .and_then(|i| managed.authorization_servers.get(i))
            .map(|s| format!("authorization server {}", s.id))
    } else {
        None
    };
    match object {
        Some(object) => format!("{object}: {error}"),
        None => error.to_string(),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::super::model::{AuthorizationServer, Policy, Rule, Scope};
    use super::*;

    fn server(status: &str) -> AuthorizationServer {
        let scope = |name: &str, default: bool| Scope {
            id: format!("scp{name}"),
            name: name.into(),
            description: String::new(),
            display_name: name.into(),
            consent: "REQUIRED".into(),
            default,
        };
        AuthorizationServer {
            id: "aus1".into(),
            name: "mcp".into(),
            description: String::new(),
            audiences: vec!["http://localhost:5002/mcp".into()],
            status: status.into(),
            created: 0,
            last_updated: 0,
            scopes: vec![scope("mcp:connect", false), scope("mcp:tools:read", false)],
            policies: vec![Policy {
                id: "00p1".into(),
                name: "p".into(),
                description: String::new(),
                priority: 1,
                status: ACTIVE.into(),
                clients: vec!["agent0-agent".into(), "gone".into()],
                created: 0,
                last_updated: 0,
                rules: vec![Rule {
                    id: "0pr1".into(),
                    name: "r".into(),
                    priority: 1,
                    status: ACTIVE.into(),
                    grant_types: vec![
                        "urn:ietf:params:oauth:grant-type:device_code".into(),
                        "urn:ietf:params:oauth:grant-type:jwt-bearer".into(),
                    ],
                    scopes: vec!["*".into()],
                    groups: vec!["EVERYONE".into()],
                    users: vec![],
                    access_token_lifetime_minutes: 60,
                    refresh_token_lifetime_minutes: 0,
                    refresh_token_window_minutes: 0,
                    created: 0,
                    last_updated: 0,
                }],
            }],
        }
    }

    #[test]
    fn an_active_server_becomes_a_custom_server_with_its_rules_as_policies() {
        let seed: ConfigFile =
            toml::from_str("[[agents]]\nclient_id = \"agent0-agent\"\n").unwrap();
        let doc = Document {
            authorization_servers: vec![server(ACTIVE), {
                let mut s = server("INACTIVE");
                s.id = "aus2".into();
                s
            }],
            ..Document::default()
        };
        let managed = managed_entries(&doc, &seed);
        assert_eq!(managed.authorization_servers.len(), 1);
        let s = &managed.authorization_servers[0];
        assert_eq!(s.audience, "http://localhost:5002/mcp");
        assert_eq!(s.default_scopes, ["mcp:connect"]);
        let p = &s.policies[0];
        assert_eq!(p.clients, ["agent0-agent"]);
        assert_eq!(
            p.grant_types,
            ["urn:ietf:params:oauth:grant-type:jwt-bearer"]
        );
        assert_eq!(p.scopes, ["mcp:connect", "mcp:tools:read"]);
        assert_eq!(p.access_token_lifetime_seconds, 3600);
    }

    #[test]
    fn an_error_names_the_managed_object_by_its_okta_id() {
        let seed = ConfigFile::default();
        let managed = managed_entries(
            &Document {
                authorization_servers: vec![server(ACTIVE)],
                ..Document::default()
            },
            &seed,
        );
        let error = ConfigError::Invalid {
            key: "authorization_servers[0].audience".into(),
            problem: "bad".into(),
        };
        assert_eq!(
            describe(&error, &managed, &seed),
            "authorization server aus1: authorization_servers[0].audience: bad"
        );
    }
}
