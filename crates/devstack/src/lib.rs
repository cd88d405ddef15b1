//! devstack: the development stack as `secure-agent up` starts it — where each service listens
//! ([`Topology`]), the variable names the services read ([`dotenv`], the env files), and idp0's
//! development configuration. idp0 itself knows none of this: it is handed a config file (and the
//! demo logins to show), like any deployment's.
//!
//! The development configuration is generated on first start when no config file is given:
//! demo users `alice` and `bob` with random passwords, the `agent0` and `todo0` web clients, the
//! `secure-agent-cli` native client (`secure-agent login`: public, PKCE, loopback redirect on any
//! port, RFC 8252), the `agent0-agent` AI agent identity (linked to `agent0` and the CLI, so it
//! may exchange either's ID tokens) with its private key, and the `todo0` custom authorization
//! server with the MCP scopes (ARCHITECTURE §5.6) and a policy allowing the agent.
//! It also has github0, the offline GitHub sandbox, as the agent's two brokered ("OAuth STS")
//! connections — GitHub's REST API (`application`, resource `<github0>/api/v3`) and GitHub's MCP
//! server (`mcp_server`, resource `<github0>/mcp`) — through one OAuth app at github0 whose
//! generated secret is in both `idp0.toml` and `github0.toml` (both 0600), with idp0's
//! `/oauth2/v1/sts/callback` as its callback.
//! Its values are also written as dotenv files with the sample's variable names (ARCHITECTURE §4),
//! and, for `up --sample-env`, as the TypeScript sample's own four files ([`write_sample_env`]).

use std::path::{Path, PathBuf};

use anyhow::Context;

use jsonwebtoken::jwk::JwkSet;
use protocol::keys::{KeyKind, SigningKey, expose_pem};

use idp0::config::{
    AgentEntry, ApplicationType, AuthMethod, AuthorizationServerEntry, BrokeredConnectionEntry,
    BrokeredKind, ClientEntry, ConfigFile, PolicyEntry, RevocationStyle, UserEntry,
};
use idp0::fsutil::write_private;
use idp0::password;
use idp0::tokens::new_secret;

pub mod dotenv;
pub mod login_form;
mod sample;
pub use sample::{
    SAMPLE_AGENT_SCOPES, SAMPLE_ENV_FILES, SampleEnv, SampleTopology, write_sample_env,
};

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
/// github0's configuration (its OAuth app for idp0, with the secret; the demo users' file).
pub const GITHUB0_CONFIG: &str = "github0.toml";
/// github0's default port.
pub const GITHUB0_PORT: u16 = 5003;
/// The client id of idp0's OAuth app at github0.
pub const GITHUB0_APP_CLIENT_ID: &str = "Ov23li-idp0-dev";
/// That app's name on github0's consent page.
pub const GITHUB0_APP_NAME: &str = "idp0 (secure-agent development)";
/// What idp0 asks GitHub for.
pub const GITHUB_SCOPES: [&str; 2] = ["repo", "read:user"];

/// Client ids of the generated configuration.
pub const AGENT0_CLIENT: &str = "agent0";
/// The todo0 web client.
pub const TODO0_CLIENT: &str = "todo0";
/// The native client `secure-agent login` uses (public, PKCE, loopback redirect).
pub const CLI_CLIENT: &str = "secure-agent-cli";
/// The CLI's registered loopback redirect URIs: any port matches (RFC 8252 §7.3).
pub const CLI_REDIRECT_URIS: [&str; 2] = ["http://127.0.0.1/callback", "http://[::1]/callback"];
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

/// Where the TypeScript sample's todo0 sends people after logout (fixed in its code).
const SAMPLE_TODO0_LOGOUT: &str = "http://localhost:5001/";

/// Whether a configuration was generated now, and the demo credentials.
pub struct DevConfig {
    /// The config file.
    pub path: PathBuf,
    /// Generated on this start (so the passwords are new).
    pub created: bool,
    /// Demo credentials.
    pub demo_users: Vec<(String, String)>,
}

/// Where the other services of the development stack are reached: the URLs written into the
/// generated configuration (redirect and logout URIs, the MCP resource) and into the env files.
/// `secure-agent up` builds it from the ports it actually bound, so any ports give one consistent
/// configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Topology {
    /// agent0's base URL, no trailing slash (`http://localhost:3000`).
    pub agent: String,
    /// todo0's web app base URL, no trailing slash (`http://localhost:5001`).
    pub todo_app: String,
    /// todo0's MCP endpoint, which is also its resource identifier (`http://localhost:5002/mcp`).
    pub mcp_resource: String,
    /// github0's base URL, no trailing slash (`http://localhost:5003`); always plain http.
    pub github: String,
    /// The TypeScript sample's own services running beside these (`up --sample-env`): their
    /// redirect and logout URIs are registered on the `agent0` and `todo0` clients too. Being
    /// loopback URIs, a later start without them drops them again.
    pub sample: Option<SampleTopology>,
}

impl Default for Topology {
    fn default() -> Self {
        Self::localhost(3000, 5001, 5002)
    }
}

impl Topology {
    /// Every service on `localhost` at the given ports, over plain http.
    pub fn localhost(agent_port: u16, app_port: u16, mcp_port: u16) -> Self {
        Self::on_localhost("http", agent_port, app_port, mcp_port)
    }

    /// Every service on `localhost` at the given ports, with `scheme` (`http` or `https`).
    pub fn on_localhost(scheme: &str, agent_port: u16, app_port: u16, mcp_port: u16) -> Self {
        Self {
            agent: format!("{scheme}://localhost:{agent_port}"),
            todo_app: format!("{scheme}://localhost:{app_port}"),
            mcp_resource: format!("{scheme}://localhost:{mcp_port}/mcp"),
            github: format!("http://localhost:{GITHUB0_PORT}"),
            sample: None,
        }
    }

    /// The same, with github0 on `port`.
    pub fn with_github_port(mut self, port: u16) -> Self {
        self.github = format!("http://localhost:{port}");
        self
    }

    /// The agent's two brokered connections to github0 (GitHub REST and GitHub MCP), with the
    /// OAuth app's `secret`.
    pub fn github_connections(&self, secret: &str) -> Vec<BrokeredConnectionEntry> {
        let g = &self.github;
        let entry = |kind, name: &str, resource: String| BrokeredConnectionEntry {
            kind,
            name: name.into(),
            resource,
            authorize_url: format!("{g}/login/oauth/authorize"),
            token_url: format!("{g}/login/oauth/access_token"),
            revocation_url: Some(format!(
                "{g}/api/v3/applications/{GITHUB0_APP_CLIENT_ID}/grant"
            )),
            revocation: RevocationStyle::Github,
            client_id: GITHUB0_APP_CLIENT_ID.into(),
            client_secret: Some(secret.to_owned()),
            client_secret_env: None,
            scopes: GITHUB_SCOPES.iter().map(|s| (*s).to_owned()).collect(),
        };
        vec![
            entry(
                BrokeredKind::Application,
                "GitHub (github0 sandbox)",
                format!("{g}/api/v3"),
            ),
            entry(
                BrokeredKind::McpServer,
                "GitHub MCP (github0 sandbox)",
                format!("{g}/mcp"),
            ),
        ]
    }

    /// The redirect and logout URIs the generated configuration registers for the web client
    /// `client_id`: its own service's first (the env files use the first), then the sample's.
    fn client_uris(&self, client_id: &str) -> Option<(Vec<String>, Vec<String>)> {
        let sample = self.sample.as_ref();
        let (base, sample) = match client_id {
            AGENT0_CLIENT => (&self.agent, sample.map(SampleTopology::agent)),
            TODO0_CLIENT => (&self.todo_app, sample.map(SampleTopology::todo_app)),
            _ => return None,
        };
        let mut redirect = Self::redirect_uris(base);
        let mut logout = Self::logout_uris(base);
        if let Some(sample) = sample {
            redirect.extend(Self::redirect_uris(&sample));
            logout.extend(Self::logout_uris(&sample));
            // The sample's todo0 sends people to this fixed address after logout, whatever port
            // it runs on. Registered so that its logout ends the session at idp0 (an unregistered
            // one is refused, and the person stays signed in); where the browser then lands is
            // whatever serves that port.
            if client_id == TODO0_CLIENT && !logout.iter().any(|u| u == SAMPLE_TODO0_LOGOUT) {
                logout.push(SAMPLE_TODO0_LOGOUT.to_owned());
            }
        }
        Some((redirect, logout))
    }

    fn redirect_uris(base: &str) -> Vec<String> {
        vec![format!("{base}/callback")]
    }

    /// Both spellings of the base URL: the sample sends it without the slash, browsers with it.
    fn logout_uris(base: &str) -> Vec<String> {
        vec![format!("{base}/"), base.to_owned()]
    }
}

/// A URI on this machine (`localhost`, `127.0.0.1`, `[::1]`): what the development configuration
/// generates, and so what following the topology may rewrite. Anything else was added by hand.
fn is_loopback_uri(uri: &str) -> bool {
    url::Url::parse(uri).is_ok_and(|u| match u.host() {
        Some(url::Host::Domain(d)) => d == "localhost",
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    })
}

/// Replaces the loopback entries of `uris` with `wanted`, keeping the ones added by hand.
fn follow(uris: &mut Vec<String>, wanted: Vec<String>) -> bool {
    let mut next: Vec<String> = wanted;
    next.extend(uris.iter().filter(|u| !is_loopback_uri(u)).cloned());
    let changed = *uris != next;
    *uris = next;
    changed
}

/// Makes a generated configuration follow `topology`: the `agent0` and `todo0` clients' redirect
/// and logout URIs and the todo0 authorization server's audience. Only loopback values are
/// rewritten (hand-added public URLs stay), and a configuration that is not a generated
/// development one (`development = false`) is left alone. Returns whether the file changed.
fn follow_topology(file: &mut ConfigFile, topology: &Topology) -> bool {
    if !file.development {
        return false;
    }
    let mut changed = false;
    for client in &mut file.clients {
        let Some((redirect, logout)) = topology.client_uris(&client.client_id) else {
            continue;
        };
        changed |= follow(&mut client.redirect_uris, redirect);
        changed |= follow(&mut client.post_logout_redirect_uris, logout);
    }
    for server in &mut file.authorization_servers {
        if server.id == TODO0_SERVER
            && is_loopback_uri(&server.audience)
            && server.audience != topology.mcp_resource
        {
            server.audience = topology.mcp_resource.clone();
            changed = true;
        }
    }
    for agent in file.agents.iter_mut().filter(|a| a.client_id == AGENT_ID) {
        for connection in &mut agent.brokered_connections {
            if !is_github0(connection) {
                continue;
            }
            let secret = connection.client_secret.clone().unwrap_or_default();
            let Some(wanted) = topology
                .github_connections(&secret)
                .into_iter()
                .find(|w| w.kind == connection.kind)
            else {
                continue;
            };
            if connection.resource != wanted.resource
                || connection.authorize_url != wanted.authorize_url
                || connection.token_url != wanted.token_url
                || connection.revocation_url != wanted.revocation_url
            {
                connection.resource = wanted.resource;
                connection.authorize_url = wanted.authorize_url;
                connection.token_url = wanted.token_url;
                connection.revocation_url = wanted.revocation_url;
                changed = true;
            }
        }
    }
    changed
}

/// A brokered connection the development configuration generated for github0 (its app, on this
/// machine): the ones following the topology, and the ones `agent0.env` and `github0.toml` name.
fn is_github0(connection: &BrokeredConnectionEntry) -> bool {
    connection.client_id == GITHUB0_APP_CLIENT_ID && is_loopback_uri(&connection.authorize_url)
}

/// The `secure-agent-cli` native client.
fn cli_client() -> ClientEntry {
    ClientEntry {
        client_id: CLI_CLIENT.into(),
        name: Some("secure-agent command line".into()),
        client_secret: None,
        client_secret_sha256: None,
        auth_method: AuthMethod::None,
        redirect_uris: CLI_REDIRECT_URIS.iter().map(|u| (*u).to_owned()).collect(),
        post_logout_redirect_uris: vec![],
        jwks: None,
        jwks_file: None,
        application_type: ApplicationType::Native,
        grant_types: None,
    }
}

/// Brings a development configuration generated by an earlier version up to what this one
/// generates: todo0 may introspect its authorization server's tokens (`resource_clients`), which
/// its revocation sweep needs — without it idp0 would answer `active: false` for every token
/// and todo0 would refuse them all; and the `secure-agent-cli` native client exists and the
/// agent may exchange its ID tokens (`secure-agent login`, then `mcp` / `token exchange`); and
/// the agent has the brokered connections to github0.
/// A hand-written configuration is left alone.
fn upgrade(file: &mut ConfigFile, topology: &Topology) -> bool {
    if !file.development || !file.clients.iter().any(|c| c.client_id == TODO0_CLIENT) {
        return false;
    }
    let mut changed = false;
    if !file.clients.iter().any(|c| c.client_id == CLI_CLIENT) {
        file.clients.push(cli_client());
        changed = true;
    }
    for agent in &mut file.agents {
        if agent.client_id == AGENT_ID && !agent.linked_clients.iter().any(|c| c == CLI_CLIENT) {
            agent.linked_clients.push(CLI_CLIENT.into());
            changed = true;
        }
        // Before github0: the agent had no brokered connection; it gets github0's two, with a
        // new app secret (github0.toml is written from this file at every start).
        if agent.client_id == AGENT_ID && agent.brokered_connections.is_empty() {
            agent.brokered_connections = topology.github_connections(&new_secret());
            changed = true;
        }
    }
    for server in &mut file.authorization_servers {
        if server.id == TODO0_SERVER && !server.resource_clients.iter().any(|c| c == TODO0_CLIENT) {
            server.resource_clients.push(TODO0_CLIENT.into());
            changed = true;
        }
    }
    changed
}

const CONFIG_HEADER: &str = "# idp0 development configuration, generated on first start. Edit freely; see README.\n\
     # The agent0/todo0 redirect URIs and the todo0 audience follow the ports `secure-agent up` uses.\n";

fn write_config(path: &Path, file: &ConfigFile) -> anyhow::Result<()> {
    write_private(path, &format!("{CONFIG_HEADER}{}", toml::to_string(file)?))?;
    Ok(())
}

/// idp0 opened on the development configuration, and what to tell the person starting it.
pub struct Opened {
    /// The IdP.
    pub idp: idp0::Idp,
    /// The demo logins (also shown on idp0's login page).
    pub demo_users: Vec<(String, String)>,
    /// The development configuration was generated on this start (so the passwords are new).
    pub generated: bool,
}

/// Opens idp0 on the development configuration in `data_dir`: generates it (or makes it follow
/// `topology`, see [`ensure`]), opens idp0 with its state where `database` says (`None`: SQLite
/// in `data_dir`) and the demo logins shown, then writes the env files with idp0's issuer.
pub async fn open_idp(
    data_dir: &Path,
    database: Option<String>,
    issuer: String,
    clock: std::sync::Arc<dyn protocol::Clock>,
    topology: Option<&Topology>,
) -> anyhow::Result<Opened> {
    let dev = ensure(data_dir, topology)?;
    let idp = idp0::open(idp0::Options {
        data_dir: data_dir.to_owned(),
        database,
        config: dev.path.clone(),
        issuer,
        clock,
        demo_credentials: dev.demo_users.clone(),
    })
    .await?;
    write_env_files(data_dir, idp.issuer())?;
    Ok(Opened {
        idp,
        demo_users: dev.demo_users,
        generated: dev.created,
    })
}

/// Generates the development configuration in `data_dir` unless one is there. With a
/// `topology` (from the command that starts the whole stack) an existing generated configuration
/// is made to follow it, so a changed port on a later start stays consistent; without one (idp0
/// started on its own, which does not know the other services' ports) it is left as it is.
pub fn ensure(data_dir: &Path, topology: Option<&Topology>) -> anyhow::Result<DevConfig> {
    idp0::fsutil::create_private_dir(data_dir)?;
    let path = data_dir.join(CONFIG_FILE);
    if path.exists() {
        let mut file: ConfigFile = toml::from_str(&std::fs::read_to_string(&path)?)
            .with_context(|| format!("reading {}", path.display()))?;
        let mut changed = upgrade(&mut file, &topology.cloned().unwrap_or_default());
        if let Some(topology) = topology {
            changed |= follow_topology(&mut file, topology);
        }
        if changed {
            write_config(&path, &file)?;
        }
        let demo_users = idp0::Idp::read_demo_credentials(&data_dir.join(DEMO_USERS_FILE));
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
    let topology = topology.cloned().unwrap_or_default();
    let agent_key = SigningKey::generate(KeyKind::Rsa)?;
    write_private(&data_dir.join(AGENT_KEY_FILE), expose_pem(&agent_key))?;
    let web_client = |id: &str| {
        let (redirect_uris, post_logout_redirect_uris) =
            topology.client_uris(id).unwrap_or_default();
        ClientEntry {
            client_id: id.into(),
            name: Some(id.into()),
            client_secret: Some(new_secret()),
            client_secret_sha256: None,
            auth_method: AuthMethod::ClientSecretBasic,
            redirect_uris,
            post_logout_redirect_uris,
            jwks: None,
            jwks_file: None,
            application_type: ApplicationType::Web,
            grant_types: None,
        }
    };
    let scopes: Vec<String> = TODO0_SCOPES.iter().map(|s| (*s).to_owned()).collect();
    let file = ConfigFile {
        development: true,
        id_token_lifetime_seconds: 3600,
        id_jag_lifetime_seconds: 300,
        refresh_token_lifetime_seconds: 30 * 24 * 3600,
        session_lifetime_seconds: 12 * 3600,
        admin_user: None,
        signing_alg: None,
        users,
        clients: vec![
            web_client(AGENT0_CLIENT),
            web_client(TODO0_CLIENT),
            cli_client(),
        ],
        agents: vec![AgentEntry {
            client_id: AGENT_ID.into(),
            name: Some("agent0 AI agent".into()),
            jwks: Some(JwkSet {
                keys: vec![agent_key.public_jwk().clone()],
            }),
            jwks_file: None,
            linked_clients: vec![AGENT0_CLIENT.into(), CLI_CLIENT.into()],
            connections: None,
            brokered_connections: topology.github_connections(&new_secret()),
        }],
        authorization_servers: vec![AuthorizationServerEntry {
            id: TODO0_SERVER.into(),
            name: Some("todo0 MCP".into()),
            audience: topology.mcp_resource.clone(),
            signing_alg: None,
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
    write_config(&path, &file)?;
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

/// What the env files say, read from the generated configuration in a data directory (so the
/// env files and idp0 never disagree).
struct Generated {
    file: ConfigFile,
    /// The agent's key id.
    agent_kid: String,
    /// The agent's private key, absolute.
    key_path: PathBuf,
    /// The todo0 authorization server's audience: the MCP resource.
    resource: String,
}

impl Generated {
    fn read(data_dir: &Path) -> anyhow::Result<Self> {
        let path = data_dir.join(CONFIG_FILE);
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("reading {}", path.display()))?;
        let file: ConfigFile =
            toml::from_str(&text).with_context(|| format!("reading {}", path.display()))?;
        let agent_kid = file
            .agents
            .iter()
            .find(|a| a.client_id == AGENT_ID)
            .and_then(|a| a.jwks.as_ref())
            .and_then(|j| j.keys.first())
            .and_then(|k| k.common.key_id.clone())
            .ok_or_else(|| anyhow::anyhow!("{CONFIG_FILE} has no key for agent {AGENT_ID}"))?;
        let key = data_dir.join(AGENT_KEY_FILE);
        let key_path =
            std::fs::canonicalize(&key).with_context(|| format!("reading {}", key.display()))?;
        let resource = file
            .authorization_servers
            .iter()
            .find(|s| s.id == TODO0_SERVER)
            .map(|s| s.audience.clone())
            .ok_or_else(|| {
                anyhow::anyhow!("{CONFIG_FILE} has no authorization server {TODO0_SERVER}")
            })?;
        Ok(Self {
            file,
            agent_kid,
            key_path,
            resource,
        })
    }

    /// The agent's brokered connections generated for github0.
    fn github_connections(&self) -> Vec<BrokeredConnectionEntry> {
        self.file
            .agents
            .iter()
            .filter(|a| a.client_id == AGENT_ID)
            .flat_map(|a| a.brokered_connections.iter())
            .filter(|c| is_github0(c))
            .cloned()
            .collect()
    }

    fn client(&self, id: &str) -> anyhow::Result<&ClientEntry> {
        self.file
            .clients
            .iter()
            .find(|c| c.client_id == id)
            .ok_or_else(|| anyhow::anyhow!("{CONFIG_FILE} has no client {id}"))
    }

    fn secret(&self, id: &str) -> anyhow::Result<String> {
        self.client(id)?
            .client_secret
            .clone()
            .ok_or_else(|| anyhow::anyhow!("{CONFIG_FILE} has no secret for client {id}"))
    }

    /// The client's first redirect URI: its own service's.
    fn redirect(&self, id: &str) -> anyhow::Result<String> {
        self.client(id)?
            .redirect_uris
            .first()
            .cloned()
            .ok_or_else(|| anyhow::anyhow!("{CONFIG_FILE}: client {id} has no redirect URI"))
    }
}

/// Writes `agent0.env` and `todo0.env` for `issuer` from the configuration in the data directory:
/// every URL and port in them comes from that file (the clients' first redirect URIs, the todo0
/// authorization server's audience), so the env files and idp0 never disagree.
pub fn write_env_files(data_dir: &Path, issuer: &str) -> anyhow::Result<()> {
    let generated = Generated::read(data_dir)?;
    let resource = generated.resource.clone();
    let secret_of = |id: &str| generated.secret(id);
    let agent_redirect = generated.redirect(AGENT0_CLIENT)?;
    let todo_redirect = generated.redirect(TODO0_CLIENT)?;
    let as_issuer = format!("{issuer}/oauth2/{TODO0_SERVER}");
    let okta_domain = okta_domain_for(issuer);
    let mut agent0 = vec![
        ("OKTA_DOMAIN", okta_domain.clone()),
        ("OKTA_CLIENT_ID", AGENT0_CLIENT.to_owned()),
        ("OKTA_CLIENT_SECRET", secret_of(AGENT0_CLIENT)?),
        ("OKTA_REDIRECT_URI", agent_redirect.clone()),
        ("AI_AGENT_ID", AGENT_ID.to_owned()),
        (
            "AI_AGENT_PRIVATE_KEY_FILE",
            generated.key_path.display().to_string(),
        ),
        ("AI_AGENT_PRIVATE_KEY_KID", generated.agent_kid.clone()),
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
    agent0.extend(port_of(&agent_redirect).map(|p| ("PORT", p)));
    let github = generated.github_connections();
    if let Some(app) = github.iter().find(|c| c.kind == BrokeredKind::Application) {
        let web = app
            .authorize_url
            .trim_end_matches("/login/oauth/authorize")
            .to_owned();
        agent0.extend([
            ("OAUTH_STS_RESOURCE", app.resource.clone()),
            ("GITHUB_API_URL", format!("{web}/api/v3")),
            ("GITHUB_WEB_URL", web),
        ]);
    }
    if let Some(mcp) = github.iter().find(|c| c.kind == BrokeredKind::McpServer) {
        agent0.extend([
            ("GITHUB_MCP_SERVER_URL", format!("{}/", mcp.resource)),
            ("OAUTH_STS_RESOURCE_GITHUB_MCP", mcp.resource.clone()),
        ]);
    }
    write_github0_config(data_dir, issuer, &github)?;
    let mut todo0 = vec![
        ("OKTA_DOMAIN", okta_domain),
        ("OKTA_CLIENT_ID", TODO0_CLIENT.to_owned()),
        ("OKTA_CLIENT_SECRET", secret_of(TODO0_CLIENT)?),
        ("OKTA_REDIRECT_URI", todo_redirect.clone()),
        ("MCP_OKTA_ISSUER", as_issuer),
        ("MCP_EXPECTED_AUDIENCE", resource.clone()),
    ];
    todo0.extend(port_of(&todo_redirect).map(|p| ("TODO_APP_PORT", p)));
    todo0.extend(port_of(&resource).map(|p| ("MCP_PORT", p)));
    write_private(&data_dir.join(AGENT0_ENV), &dotenv("agent0", &agent0))?;
    write_private(&data_dir.join(TODO0_ENV), &dotenv("todo0", &todo0))?;
    Ok(())
}

/// Writes `github0.toml` (0600) for the generated github0 connections: the OAuth app idp0 uses
/// (client id, secret, callback `<issuer>/oauth2/v1/sts/callback`) and the demo users' file, so
/// github0's people are idp0's demo people with the same passwords. Nothing when there are none.
fn write_github0_config(
    data_dir: &Path,
    issuer: &str,
    connections: &[BrokeredConnectionEntry],
) -> anyhow::Result<()> {
    let Some(secret) = connections.iter().find_map(|c| c.client_secret.clone()) else {
        return Ok(());
    };
    let mut app = toml::Table::new();
    app.insert("client_id".into(), GITHUB0_APP_CLIENT_ID.into());
    app.insert("name".into(), GITHUB0_APP_NAME.into());
    app.insert("client_secret".into(), secret.into());
    app.insert(
        "callback_urls".into(),
        toml::Value::Array(vec![
            format!("{}/oauth2/v1/sts/callback", issuer.trim_end_matches('/')).into(),
        ]),
    );
    let mut file = toml::Table::new();
    file.insert("users_file".into(), DEMO_USERS_FILE.into());
    file.insert("apps".into(), toml::Value::Array(vec![app.into()]));
    let text = format!(
        "# github0 settings for the idp0 development configuration; rewritten at every idp0 start.\n\
         # The app is idp0's (its secret is also in {CONFIG_FILE}); people come from {DEMO_USERS_FILE}.\n{}",
        toml::to_string(&file)?
    );
    write_private(&data_dir.join(GITHUB0_CONFIG), &text)?;
    Ok(())
}

/// The explicit port of a URL (so a service started on its own listens where its URLs point).
fn port_of(uri: &str) -> Option<String> {
    url::Url::parse(uri)
        .ok()
        .and_then(|u| u.port())
        .map(|p| p.to_string())
}

fn dotenv(service: &str, vars: &[(&str, String)]) -> String {
    let mut out = format!(
        "# {service} settings for the idp0 development configuration; rewritten at every idp0 start.\n"
    );
    for (name, value) in vars {
        out.push_str(&env_line(name, value));
    }
    out
}

/// `NAME=value\n`, the value double-quoted when it holds a space, `#` or a quote.
fn env_line(name: &str, value: &str) -> String {
    if value.contains([' ', '#', '"', '\'']) {
        format!(
            "{name}=\"{}\"\n",
            value.replace('\\', "\\\\").replace('"', "\\\"")
        )
    } else {
        format!("{name}={value}\n")
    }
}

/// Reads a dotenv file into pairs (for tests and tools that consume these files), as the
/// services read it.
pub fn read_env_file(path: &Path) -> anyhow::Result<Vec<(String, String)>> {
    let text = std::fs::read_to_string(path)?;
    crate::dotenv::parse(&text)
        .map_err(|e| anyhow::anyhow!("{}:{}: {}", path.display(), e.line, e.problem))
}

/// The topology a generated development configuration in `data_dir` describes, with every URL
/// switched to `scheme` (ports kept): what idp0 started on its own with or without `--tls`
/// follows, since it does not know the other services' ports but does know the scheme of the
/// stack. `None` when there is no generated configuration (or it is hand-written).
pub fn configured_topology(data_dir: &Path, scheme: &str) -> Option<Topology> {
    let text = std::fs::read_to_string(data_dir.join(CONFIG_FILE)).ok()?;
    let file: ConfigFile = toml::from_str(&text).ok()?;
    if !file.development {
        return None;
    }
    let port = |uri: &str| url::Url::parse(uri).ok()?.port_or_known_default();
    let base = |id: &str| {
        let client = file.clients.iter().find(|c| c.client_id == id)?;
        port(client.redirect_uris.first()?)
    };
    let mcp = file
        .authorization_servers
        .iter()
        .find(|s| s.id == TODO0_SERVER)
        .and_then(|s| port(&s.audience))?;
    let github = file
        .agents
        .iter()
        .flat_map(|a| a.brokered_connections.iter())
        .find(|c| is_github0(c))
        .and_then(|c| port(&c.authorize_url))
        .unwrap_or(GITHUB0_PORT);
    Some(
        Topology::on_localhost(scheme, base(AGENT0_CLIENT)?, base(TODO0_CLIENT)?, mcp)
            .with_github_port(github),
    )
}

/// `OKTA_DOMAIN` for an org issuer, as Okta and the sample mean it: the bare `host[:port]` when
/// the issuer is an https root (`https://localhost:9400` → `localhost:9400`), which the sample's
/// code turns back into the issuer with `'https://' + OKTA_DOMAIN`; any other issuer (plain http,
/// or one with a path) as the full URL, which only a reader that accepts both understands — as
/// [`issuer_from_okta_domain`] does.
pub fn okta_domain_for(issuer: &str) -> String {
    let trimmed = issuer.trim_end_matches('/');
    match trimmed.strip_prefix("https://") {
        Some(host) if !host.contains('/') => host.to_owned(),
        _ => trimmed.to_owned(),
    }
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
#[path = "lib_tests.rs"]
mod tests;
