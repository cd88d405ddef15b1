//! The development configuration generated on first start when no config file is given:
//! demo users `alice` and `bob` with random passwords, the `agent0` and `todo0` web clients, the
//! `agent0-agent` AI agent identity with its private key, and the `todo0` custom authorization
//! server with the MCP scopes (ARCHITECTURE §5.6) and a policy allowing the agent.
//! Its values are also written as dotenv files with the sample's variable names (ARCHITECTURE §4).

use std::path::{Path, PathBuf};

use jsonwebtoken::jwk::JwkSet;
use protocol::keys::{KeyKind, SigningKey, expose_pem};

use crate::config::{
    AgentEntry, AuthMethod, AuthorizationServerEntry, ClientEntry, ConfigFile, PolicyEntry,
    UserEntry,
};
use crate::fsutil::write_private;
use crate::password;
use crate::tokens::new_secret;

/// File names inside the data directory.
pub const CONFIG_FILE: &str = "idp0.toml";
/// Demo credentials, `username:password` per line.
pub const DEMO_USERS_FILE: &str = "demo-users.txt";
/// The agent's private key.
pub const AGENT_KEY_FILE: &str = "agent0-agent.pem";
/// agent0's dotenv file.
pub const AGENT0_ENV: &str = "agent0.env";
/// todo0's dotenv file.
pub const TODO0_ENV: &str = "todo0.env";

/// Client ids of the generated configuration.
pub const AGENT0_CLIENT: &str = "agent0";
/// The todo0 web client.
pub const TODO0_CLIENT: &str = "todo0";
/// The AI agent identity.
pub const AGENT_ID: &str = "agent0-agent";
/// The todo0 custom authorization server.
pub const TODO0_SERVER: &str = "todo0";
/// The todo0 MCP resource identifier.
pub const TODO0_MCP_RESOURCE: &str = "http://localhost:5002/mcp";
/// todo0's scopes (ARCHITECTURE §5.6).
pub const TODO0_SCOPES: [&str; 4] = [
    "mcp:connect",
    "mcp:tools:read",
    "mcp:tools:manage",
    "mcp:tools:delete",
];
/// What the agent asks for first (least privilege).
pub const AGENT_INITIAL_SCOPES: &str = "mcp:connect mcp:tools:read";

/// Whether a configuration was generated now, and the demo credentials.
pub struct DevConfig {
    /// The config file.
    pub path: PathBuf,
    /// Generated on this start (so the passwords are new).
    pub created: bool,
    /// Demo credentials.
    pub demo_users: Vec<(String, String)>,
}

/// Points the generated configuration in `data_dir` at services on other addresses (tests and
/// benchmarks on ephemeral ports): the todo0 authorization server's audience becomes `resource`,
/// and with `agent_base` (`http://127.0.0.1:PORT`) the `agent0` client's redirect URIs move there.
pub fn retarget(data_dir: &Path, resource: &str, agent_base: Option<&str>) -> anyhow::Result<()> {
    let path = data_dir.join(CONFIG_FILE);
    let quoted = |value: &str| format!("\"{value}\"");
    let mut text =
        std::fs::read_to_string(&path)?.replace(&quoted(TODO0_MCP_RESOURCE), &quoted(resource));
    if let Some(base) = agent_base {
        text = text
            .replace(
                &quoted("http://localhost:3000/callback"),
                &quoted(&format!("{base}/callback")),
            )
            .replace(
                &quoted("http://localhost:3000/"),
                &quoted(&format!("{base}/")),
            );
    }
    std::fs::write(&path, text)?;
    Ok(())
}

/// Generates the development configuration in `data_dir` unless one is there.
pub fn ensure(data_dir: &Path) -> anyhow::Result<DevConfig> {
    let path = data_dir.join(CONFIG_FILE);
    if path.exists() {
        let demo_users = crate::state::Idp::read_demo_credentials(&data_dir.join(DEMO_USERS_FILE));
        return Ok(DevConfig {
            path,
            created: false,
            demo_users,
        });
    }
    let mut demo_users = Vec::new();
    let mut users = Vec::new();
    for (username, name) in [("alice", "Alice Example"), ("bob", "Bob Example")] {
        let password: String = new_secret().chars().take(16).collect();
        users.push(UserEntry {
            id: None,
            username: username.into(),
            name: name.into(),
            email: format!("{username}@example.com"),
            password_hash: password::hash(&password)
                .map_err(|e| anyhow::anyhow!("hashing a password: {e}"))?,
        });
        demo_users.push((username.to_owned(), password));
    }
    let agent_key = SigningKey::generate(KeyKind::Rsa)?;
    write_private(&data_dir.join(AGENT_KEY_FILE), expose_pem(&agent_key))?;
    let web_client = |id: &str, port: u16| ClientEntry {
        client_id: id.into(),
        name: Some(id.into()),
        client_secret: Some(new_secret()),
        auth_method: AuthMethod::ClientSecretBasic,
        redirect_uris: vec![format!("http://localhost:{port}/callback")],
        post_logout_redirect_uris: vec![format!("http://localhost:{port}/")],
        jwks: None,
        jwks_file: None,
    };
    let scopes: Vec<String> = TODO0_SCOPES.iter().map(|s| (*s).to_owned()).collect();
    let file = ConfigFile {
        development: true,
        id_token_lifetime_seconds: 3600,
        id_jag_lifetime_seconds: 300,
        refresh_token_lifetime_seconds: 30 * 24 * 3600,
        session_lifetime_seconds: 12 * 3600,
        users,
        clients: vec![
            web_client(AGENT0_CLIENT, 3000),
            web_client(TODO0_CLIENT, 5001),
        ],
        agents: vec![AgentEntry {
            client_id: AGENT_ID.into(),
            name: Some("agent0 AI agent".into()),
            jwks: Some(JwkSet {
                keys: vec![agent_key.public_jwk().clone()],
            }),
            jwks_file: None,
            linked_clients: vec![AGENT0_CLIENT.into()],
        }],
        authorization_servers: vec![AuthorizationServerEntry {
            id: TODO0_SERVER.into(),
            name: Some("todo0 MCP".into()),
            audience: TODO0_MCP_RESOURCE.into(),
            scopes: scopes.clone(),
            default_scopes: vec!["mcp:connect".into()],
            resource_clients: vec![TODO0_CLIENT.into()],
            policies: vec![
                PolicyEntry {
                    clients: vec![AGENT_ID.into()],
                    grant_types: vec!["urn:ietf:params:oauth:grant-type:jwt-bearer".into()],
                    scopes: scopes.clone(),
                    access_token_lifetime_seconds: 3600,
                },
                PolicyEntry {
                    clients: vec![TODO0_CLIENT.into()],
                    grant_types: vec!["authorization_code".into(), "refresh_token".into()],
                    scopes,
                    access_token_lifetime_seconds: 3600,
                },
            ],
        }],
    };
    let header =
        "# idp0 development configuration, generated on first start. Edit freely; see README.\n";
    write_private(&path, &format!("{header}{}", toml::to_string(&file)?))?;
    let lines: String = demo_users
        .iter()
        .map(|(u, p)| format!("{u}:{p}\n"))
        .collect();
    write_private(&data_dir.join(DEMO_USERS_FILE), &lines)?;
    Ok(DevConfig {
        path,
        created: true,
        demo_users,
    })
}

/// Writes `agent0.env` and `todo0.env` for `issuer` from the generated configuration.
pub fn write_env_files(data_dir: &Path, issuer: &str) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(data_dir.join(CONFIG_FILE))?;
    let file: ConfigFile = toml::from_str(&text)?;
    let secret_of = |id: &str| {
        file.clients
            .iter()
            .find(|c| c.client_id == id)
            .and_then(|c| c.client_secret.clone())
            .ok_or_else(|| anyhow::anyhow!("{CONFIG_FILE} has no secret for client {id}"))
    };
    let agent_kid = file
        .agents
        .iter()
        .find(|a| a.client_id == AGENT_ID)
        .and_then(|a| a.jwks.as_ref())
        .and_then(|j| j.keys.first())
        .and_then(|k| k.common.key_id.clone())
        .ok_or_else(|| anyhow::anyhow!("{CONFIG_FILE} has no key for agent {AGENT_ID}"))?;
    let key_path = std::fs::canonicalize(data_dir.join(AGENT_KEY_FILE))?;
    let resource = file
        .authorization_servers
        .iter()
        .find(|s| s.id == TODO0_SERVER)
        .map(|s| s.audience.clone())
        .ok_or_else(|| {
            anyhow::anyhow!("{CONFIG_FILE} has no authorization server {TODO0_SERVER}")
        })?;
    let as_issuer = format!("{issuer}/oauth2/{TODO0_SERVER}");
    let agent0 = [
        ("OKTA_DOMAIN", issuer.to_owned()),
        ("OKTA_CLIENT_ID", AGENT0_CLIENT.to_owned()),
        ("OKTA_CLIENT_SECRET", secret_of(AGENT0_CLIENT)?),
        (
            "OKTA_REDIRECT_URI",
            "http://localhost:3000/callback".to_owned(),
        ),
        ("AI_AGENT_ID", AGENT_ID.to_owned()),
        ("AI_AGENT_PRIVATE_KEY_FILE", key_path.display().to_string()),
        ("AI_AGENT_PRIVATE_KEY_KID", agent_kid),
        ("MCP_AUTHORIZATION_SERVER", as_issuer.clone()),
        (
            "MCP_AUTHORIZATION_SERVER_TOKEN_ENDPOINT",
            format!("{as_issuer}/v1/token"),
        ),
        (
            "AI_AGENT_TODO_MCP_SERVER_SCOPES_TO_REQUEST",
            AGENT_INITIAL_SCOPES.to_owned(),
        ),
        ("MCP_SERVER_URL", resource.clone()),
        ("MCP_RESOURCE_INDICATOR", resource.clone()),
    ];
    let todo0 = [
        ("OKTA_DOMAIN", issuer.to_owned()),
        ("OKTA_CLIENT_ID", TODO0_CLIENT.to_owned()),
        ("OKTA_CLIENT_SECRET", secret_of(TODO0_CLIENT)?),
        (
            "OKTA_REDIRECT_URI",
            "http://localhost:5001/callback".to_owned(),
        ),
        ("MCP_OKTA_ISSUER", as_issuer),
        ("MCP_EXPECTED_AUDIENCE", resource),
    ];
    write_private(&data_dir.join(AGENT0_ENV), &dotenv("agent0", &agent0))?;
    write_private(&data_dir.join(TODO0_ENV), &dotenv("todo0", &todo0))?;
    Ok(())
}

fn dotenv(service: &str, vars: &[(&str, String)]) -> String {
    let mut out = format!(
        "# {service} settings for the idp0 development configuration; rewritten at every idp0 start.\n"
    );
    for (name, value) in vars {
        if value.contains([' ', '#', '"', '\'']) {
            out.push_str(&format!(
                "{name}=\"{}\"\n",
                value.replace('\\', "\\\\").replace('"', "\\\"")
            ));
        } else {
            out.push_str(&format!("{name}={value}\n"));
        }
    }
    out
}

/// Reads a dotenv file into pairs (for tests and tools that consume these files).
pub fn read_env_file(path: &Path) -> anyhow::Result<Vec<(String, String)>> {
    let text = std::fs::read_to_string(path)?;
    Ok(text
        .lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().trim_matches('"').to_owned()))
        .collect())
}

/// `OKTA_DOMAIN` may be a bare domain (as the sample writes it) or a full URL.
pub fn issuer_from_okta_domain(domain: &str) -> String {
    let trimmed = domain.trim().trim_end_matches('/');
    if trimmed.starts_with("http://") || trimmed.starts_with("https://") {
        trimmed.to_owned()
    } else {
        format!("https://{trimmed}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn okta_domain_accepts_bare_domains_and_urls() {
        assert_eq!(
            issuer_from_okta_domain("example.okta.com"),
            "https://example.okta.com"
        );
        assert_eq!(
            issuer_from_okta_domain("http://localhost:9400/"),
            "http://localhost:9400"
        );
    }
}
