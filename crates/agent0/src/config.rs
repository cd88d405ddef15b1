//! agent0's configuration (ARCHITECTURE §4, §7): its own settings ([`service_settings`]: port,
//! steps per turn, ID token renewal, disabled connection kinds, database and Redis), and the MCP
//! servers the agent reaches with each one's auth strategy. They come from two places: the sample's `MCP_*` settings (the
//! todo0 connection, named `todo0`) and the optional `--config` TOML file's `[[mcp_servers]]`
//! entries (see `config/agent0.example.toml`).
//!
//! Parsed at load into runtime types (STYLE §2): an entry is read as a flat raw struct with
//! `deny_unknown_fields` (so TOML errors keep their line and the list of accepted keys, and
//! `auth` defaults to `id-jag` when omitted), then converted into [`McpServerConfig`], whose
//! [`AuthStrategy`] is a tagged enum: the id-jag keys exist only on the `IdJag` arm, so an
//! id-jag key on an `auth = "none"` server is an error rather than silently ignored. Every
//! error names the file (or the setting), the entry and the key.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::{Path, PathBuf};

use protocol::Scopes;
use serde::Deserialize;

use crate::connections::ConnectionKind;
use crate::mcp::McpServer;
use crate::tokens::IdJagTarget;

mod brokered;
mod declared;

pub use brokered::{
    APPLICATION_NAME, Brokered, DEFAULT_GITHUB_API_URL, DEFAULT_GITHUB_WEB_URL, GITHUB_MCP_NAME,
    GithubApplication, brokered,
};
pub use declared::{github_mcp_tools, load_tools_file, parse_tools};

/// What an id-jag server's first token asks for unless configured (least privilege; more is
/// stepped up on `insufficient_scope`).
pub const DEFAULT_SCOPES: &str = "mcp:connect mcp:tools:read";

/// The name of the connection the sample's `MCP_*` settings describe.
pub const SAMPLE_SERVER_NAME: &str = "todo0";

/// A configuration problem, naming where it is and the fix.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// TOML syntax, an unknown or mistyped key, or an unknown `auth` value.
    #[error("{path} is not a valid agent0 config: {message}")]
    Syntax {
        /// The file.
        path: PathBuf,
        /// The parser's message (names the key, the line and what is accepted).
        message: String,
    },
    /// A value that parses but makes no sense.
    #[error("{location}: {problem}")]
    Invalid {
        /// The file or setting, the entry and the key.
        location: String,
        /// What is wrong and how to fix it.
        problem: String,
    },
}

fn invalid(location: impl fmt::Display, problem: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        location: location.to_string(),
        problem: problem.into(),
    }
}

/// Where a server's configuration came from (for error messages).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServerOrigin {
    /// The `index`th (from 1) `[[mcp_servers]]` entry of a `--config` file.
    File {
        /// The file.
        path: PathBuf,
        /// Its position in the file, from 1.
        index: usize,
    },
    /// The sample's `MCP_*` settings.
    Sample,
}

impl ServerOrigin {
    /// The name of `key` (a `[[mcp_servers]]` key) where this server was configured: the key
    /// itself in a file, the sample's variable for the `MCP_*` settings.
    fn key_name(&self, key: &'static str) -> &'static str {
        match self {
            Self::File { .. } => key,
            Self::Sample => match key {
                "url" => "MCP_SERVER_URL",
                "resource" => "MCP_RESOURCE_INDICATOR",
                "authorization_server" => "MCP_AUTHORIZATION_SERVER",
                "token_endpoint" => "MCP_AUTHORIZATION_SERVER_TOKEN_ENDPOINT",
                "scopes" => "AI_AGENT_TODO_MCP_SERVER_SCOPES_TO_REQUEST",
                other => other,
            },
        }
    }

    /// "`<where>`: `<key>`" for an error about `key` of the server `name`.
    fn at(&self, name: &str, key: &'static str) -> String {
        match self {
            Self::File { path, index } => format!(
                "{}: [[mcp_servers]] #{index} ({name:?}): {key}",
                path.display()
            ),
            Self::Sample => format!("MCP server {name} ({})", self.key_name(key)),
        }
    }
}

/// One `[[mcp_servers]]` entry as written: flat, every auth strategy's keys side by side.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawServerEntry {
    name: String,
    label: Option<String>,
    url: String,
    #[serde(default)]
    auth: AuthKind,
    resource: Option<String>,
    authorization_server: Option<String>,
    token_endpoint: Option<String>,
    scopes: Option<String>,
    #[serde(default)]
    auto_approve: Vec<String>,
    #[serde(default)]
    in_band_refusals: bool,
    okta_id: Option<String>,
    tools_file: Option<PathBuf>,
}

/// The `auth` key's accepted values (serde's error lists them when another is given).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
enum AuthKind {
    #[default]
    IdJag,
    OauthSts,
    None,
}

/// The file format.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfigFile {
    #[serde(default)]
    mcp_servers: Vec<RawServerEntry>,
}

/// How agent0 authorizes its calls to one MCP server: the tagged auth-strategy enum, used as it
/// is at run time (the id-jag keys exist only on the `IdJag` arm).
#[derive(Debug, Clone)]
pub enum AuthStrategy {
    /// Cross-App Access (`auth = "id-jag"`, the default): ID token → ID-JAG → access token,
    /// starting with `initial_scopes` (least privilege; more is stepped up).
    IdJag {
        /// The resource authorization server (the ID-JAG's `audience`), where the ID-JAG is
        /// redeemed (default `<authorization_server>/v1/token`, Okta's layout), and the resource
        /// indicator sent as `resource` (default: the server's url).
        target: IdJagTarget,
        /// What the first token asks for (default [`DEFAULT_SCOPES`]).
        initial_scopes: Scopes,
    },
    /// Brokered consent (`auth = "oauth-sts"`, OKTA.md §1): the ISV token the org
    /// authorization server hands out for `resource` (the managed connection's resource
    /// indicator, sent verbatim) is the bearer.
    OauthSts {
        /// The resource indicator.
        resource: String,
        /// The managed connection's Okta id (`okta_id`; shown in the panel only).
        okta_id: Option<String>,
    },
    /// No token (`auth = "none"`: an open server).
    None,
}

/// One MCP server, validated, and where it was configured.
#[derive(Debug, Clone)]
pub struct McpServerConfig {
    /// The server as agent0 uses it.
    pub server: McpServer,
    /// Where it was configured.
    pub origin: ServerOrigin,
}

impl McpServerConfig {
    fn from_raw(entry: RawServerEntry, origin: ServerOrigin) -> Result<Self, ConfigError> {
        let name = entry.name;
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return Err(invalid(
                origin.at(&name, "name"),
                format!("{name:?} must be non-empty ASCII letters, digits, - or _"),
            ));
        }
        let url = match url::Url::parse(&entry.url) {
            Ok(url) if matches!(url.scheme(), "http" | "https") => url,
            Ok(_) => {
                return Err(invalid(
                    origin.at(&name, "url"),
                    format!("{:?} must be an http or https URL", entry.url),
                ));
            }
            Err(e) => {
                return Err(invalid(
                    origin.at(&name, "url"),
                    format!("{:?} is not a URL ({e})", entry.url),
                ));
            }
        };
        if entry.okta_id.is_some() && entry.auth != AuthKind::OauthSts {
            return Err(invalid(
                origin.at(&name, "okta_id"),
                "only an oauth-sts server takes this key: remove it, or set auth = \"oauth-sts\"",
            ));
        }
        if entry.tools_file.is_some() && entry.auth != AuthKind::OauthSts {
            return Err(invalid(
                origin.at(&name, "tools_file"),
                "only an oauth-sts server takes this key (the tools it offers before a person \
                 has consented): remove it, or set auth = \"oauth-sts\"",
            ));
        }
        let declared_tools = match &entry.tools_file {
            Some(file) => {
                // A relative path is relative to the configuration file.
                let file = match &origin {
                    ServerOrigin::File { path, .. } => {
                        path.parent().unwrap_or(Path::new("")).join(file)
                    }
                    ServerOrigin::Sample => file.clone(),
                };
                let tools = declared::load_tools_file(&file)
                    .map_err(|e| invalid(origin.at(&name, "tools_file"), e))?;
                Some(tools.into())
            }
            None => None,
        };
        let auth = match entry.auth {
            AuthKind::OauthSts => {
                for (key, value) in [
                    ("authorization_server", &entry.authorization_server),
                    ("token_endpoint", &entry.token_endpoint),
                    ("scopes", &entry.scopes),
                ] {
                    if value.is_some() {
                        return Err(invalid(
                            origin.at(&name, key),
                            "only an id-jag server takes this key: an oauth-sts server's scopes \
                             are the managed connection's, set in the IdP",
                        ));
                    }
                }
                let Some(resource) = entry.resource.filter(|r| !r.trim().is_empty()) else {
                    return Err(invalid(
                        origin.at(&name, "resource"),
                        "an oauth-sts server needs the managed connection's resource indicator \
                         (a URL or orn:okta:… value, exactly as the IdP shows it)",
                    ));
                };
                AuthStrategy::OauthSts {
                    resource,
                    okta_id: entry.okta_id,
                }
            }
            AuthKind::None => {
                // These keys mean something only for id-jag: refuse them rather than ignore a
                // setting the person believes is in force.
                for (key, value) in [
                    ("resource", &entry.resource),
                    ("authorization_server", &entry.authorization_server),
                    ("token_endpoint", &entry.token_endpoint),
                    ("scopes", &entry.scopes),
                ] {
                    if value.is_some() {
                        return Err(invalid(
                            origin.at(&name, key),
                            "only an id-jag server takes this key: remove it, or set auth = \"id-jag\"",
                        ));
                    }
                }
                AuthStrategy::None
            }
            AuthKind::IdJag => {
                let Some(authorization_server) = entry.authorization_server else {
                    return Err(invalid(
                        origin.at(&name, "authorization_server"),
                        "uses id-jag (the default auth) and needs its authorization server \
                         issuer, the ID-JAG audience",
                    ));
                };
                let token_endpoint = entry.token_endpoint.unwrap_or_else(|| {
                    format!("{}/v1/token", authorization_server.trim_end_matches('/'))
                });
                let scopes = entry.scopes.unwrap_or_else(|| DEFAULT_SCOPES.to_owned());
                let scopes = Scopes::parse(&scopes)
                    .map_err(|e| invalid(origin.at(&name, "scopes"), e.to_string()))?;
                AuthStrategy::IdJag {
                    target: IdJagTarget {
                        connection: name.clone(),
                        as_issuer: authorization_server,
                        as_token_endpoint: token_endpoint,
                        resource: entry.resource.unwrap_or_else(|| url.to_string()),
                    },
                    initial_scopes: scopes,
                }
            }
        };
        let server = McpServer {
            label: entry.label.unwrap_or_else(|| name.clone()),
            name,
            url: entry.url,
            auth,
            auto_approve: entry.auto_approve,
            in_band_refusals: entry.in_band_refusals,
            declared_tools,
        };
        Ok(Self { server, origin })
    }
}

/// The `--config` file, parsed and validated.
#[derive(Debug, Clone, Default)]
pub struct ConfigFile {
    /// Its `[[mcp_servers]]`, in order, names unique.
    pub mcp_servers: Vec<McpServerConfig>,
}

impl ConfigFile {
    /// Reads and validates `path`.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::parse(path, &text)
    }

    /// Parses and validates `text`, read from `path` (named in errors).
    pub fn parse(path: &Path, text: &str) -> Result<Self, ConfigError> {
        let raw: RawConfigFile = toml::from_str(text).map_err(|e| ConfigError::Syntax {
            path: path.to_owned(),
            message: e.to_string(),
        })?;
        let mcp_servers = raw
            .mcp_servers
            .into_iter()
            .enumerate()
            .map(|(i, entry)| {
                let origin = ServerOrigin::File {
                    path: path.to_owned(),
                    index: i + 1,
                };
                McpServerConfig::from_raw(entry, origin)
            })
            .collect::<Result<Vec<_>, _>>()?;
        check_unique(&mcp_servers)?;
        Ok(Self { mcp_servers })
    }
}

/// The todo0 connection from the sample's settings (none when `MCP_SERVER_URL` is unset).
/// `get` reads a setting by name (flag, environment, env file).
pub fn sample_server(
    get: &dyn Fn(&str) -> Option<String>,
) -> Result<Option<McpServerConfig>, ConfigError> {
    let Some(url) = get("MCP_SERVER_URL") else {
        return Ok(None);
    };
    let entry = RawServerEntry {
        name: SAMPLE_SERVER_NAME.into(),
        label: Some("Todo0 MCP Server".into()),
        url,
        auth: AuthKind::IdJag,
        resource: get("MCP_RESOURCE_INDICATOR"),
        authorization_server: get("MCP_AUTHORIZATION_SERVER"),
        token_endpoint: get("MCP_AUTHORIZATION_SERVER_TOKEN_ENDPOINT"),
        scopes: get("AI_AGENT_TODO_MCP_SERVER_SCOPES_TO_REQUEST"),
        auto_approve: Vec::new(),
        // The connection the sample's env files describe: the sample's MCP server refuses a
        // missing scope inside the tool result.
        in_band_refusals: true,
        okta_id: None,
        tools_file: None,
    };
    McpServerConfig::from_raw(entry, ServerOrigin::Sample).map(Some)
}

/// Every MCP connection, ready for [`crate::AgentConfig`].
#[derive(Debug, Clone)]
pub struct Connections {
    /// The todo0 connection's authorization server `(issuer, token endpoint)`, when it uses
    /// id-jag (the Managed Connections panel's `authorization_server`).
    pub authorization_server: Option<(String, String)>,
    /// The servers: todo0 first, then the sample's GitHub MCP server, then the file's, in
    /// order.
    pub mcp_servers: Vec<McpServer>,
    /// The brokered-consent settings (the application connection and where exchanges go).
    pub brokered: Brokered,
}

/// Combines the sample's todo0 connection, the `--config` file's servers and
/// `AGENT_AUTO_APPROVE_TOOLS` into the runtime connections. `get` reads a setting by name.
pub fn connections(
    file: Option<&ConfigFile>,
    get: &dyn Fn(&str) -> Option<String>,
) -> Result<Connections, ConfigError> {
    let mut servers: Vec<McpServerConfig> = sample_server(get)?.into_iter().collect();
    servers.extend(brokered::github_mcp_server(get)?);
    if let Some(file) = file {
        servers.extend(file.mcp_servers.iter().cloned());
    }
    check_unique(&servers)?;
    let brokered = brokered(get)?;
    if let Some(app) = &brokered.application
        && let Some(clash) = servers.iter().find(|s| s.server.name == app.name)
    {
        return Err(invalid(
            clash.origin.at(&clash.server.name, "name"),
            format!(
                "{:?} is the name of the application connection (OAUTH_STS_RESOURCE); name this \
                 MCP server otherwise",
                app.name
            ),
        ));
    }
    if let Some(list) = get("AGENT_AUTO_APPROVE_TOOLS") {
        apply_auto_approve(&mut servers, &list)?;
    }
    let authorization_server = servers
        .iter()
        .filter(|s| s.origin == ServerOrigin::Sample)
        .find_map(|s| match &s.server.auth {
            AuthStrategy::IdJag { target, .. } => {
                Some((target.as_issuer.clone(), target.as_token_endpoint.clone()))
            }
            AuthStrategy::OauthSts { .. } | AuthStrategy::None => None,
        });
    Ok(Connections {
        authorization_server,
        mcp_servers: servers.into_iter().map(|s| s.server).collect(),
        brokered,
    })
}

fn check_unique(servers: &[McpServerConfig]) -> Result<(), ConfigError> {
    let mut seen: BTreeMap<&str, &ServerOrigin> = BTreeMap::new();
    for server in servers {
        if let Some(first) = seen.insert(&server.server.name, &server.origin) {
            let first = match first {
                ServerOrigin::File { index, .. } => format!("[[mcp_servers]] #{index}"),
                ServerOrigin::Sample => "the MCP_SERVER_URL connection".to_owned(),
            };
            return Err(invalid(
                server.origin.at(&server.server.name, "name"),
                format!(
                    "two MCP servers are named {:?} (this one and {first}); names must be unique",
                    server.server.name
                ),
            ));
        }
    }
    Ok(())
}

/// Adds `list` (`<connection>:<tool>`, comma-separated) to the servers' `auto_approve`.
fn apply_auto_approve(servers: &mut [McpServerConfig], list: &str) -> Result<(), ConfigError> {
    const KEY: &str = "AGENT_AUTO_APPROVE_TOOLS";
    for item in list.split(',').map(str::trim).filter(|i| !i.is_empty()) {
        let Some((connection, tool)) = item
            .split_once(':')
            .filter(|(c, t)| !c.is_empty() && !t.is_empty())
        else {
            return Err(invalid(
                KEY,
                format!("{item:?} is not <connection>:<tool>, e.g. todo0:toggle-todo"),
            ));
        };
        let Some(server) = servers
            .iter_mut()
            .map(|s| &mut s.server)
            .find(|s| s.name == connection)
        else {
            return Err(invalid(
                KEY,
                format!("{item:?} names no configured MCP server {connection:?}"),
            ));
        };
        if !server.auto_approve.iter().any(|t| t == tool) {
            server.auto_approve.push(tool.to_owned());
        }
    }
    Ok(())
}

/// The port agent0 listens on unless `PORT` (or `--port`) says otherwise.
pub const DEFAULT_PORT: u16 = 3000;

/// agent0's own settings besides its connections, parsed and validated at load: where it
/// listens, how many model calls a chat turn may make, whether ID tokens are renewed, which
/// connection kinds are off, and where conversations and sessions live.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceSettings {
    /// `PORT` (0 picks a free one); default [`DEFAULT_PORT`].
    pub port: u16,
    /// `AGENT_MAX_STEPS`: model calls per chat turn, at least 1; default
    /// [`crate::agent::DEFAULT_MAX_STEPS`].
    pub max_steps: usize,
    /// Whether to ask for `offline_access` (renew ID tokens): off when `AGENT_NO_REFRESH` is
    /// true (`1`, `true`, `yes`, `on`; `0`, `false`, `no`, `off` keep it on).
    pub offline_access: bool,
    /// `DISABLED_CONNECTIONS`: the connection kinds turned off.
    pub disabled: BTreeSet<ConnectionKind>,
    /// `AGENT_DATABASE_URL`: where conversations are kept (`None`: the caller's default file).
    pub database: Option<String>,
    /// `AGENT_REDIS_URL`: Redis for sessions, token caches and exchange leases (`None`: in
    /// process).
    pub redis: Option<String>,
    /// `AGENT_REDIS_PREFIX`: the start of every Redis key and channel name, shared by the
    /// replicas of one deployment; deployments (or test runs) on one Redis each need their own.
    /// Default [`crate::shared::redis::DEFAULT_PREFIX`].
    pub redis_prefix: String,
}

/// Reads agent0's [`ServiceSettings`] through `get` (a setting by name; the caller lets its
/// flags win). Every error names the setting, the value and what is accepted.
pub fn service_settings(
    get: &dyn Fn(&str) -> Option<String>,
) -> Result<ServiceSettings, ConfigError> {
    let port = match get("PORT") {
        Some(text) => text.trim().parse::<u16>().map_err(|_| {
            invalid(
                "PORT",
                format!(
                    "{text:?} is not a port: use a number from 0 to 65535 (0 picks a free one)"
                ),
            )
        })?,
        None => DEFAULT_PORT,
    };
    let max_steps = match get("AGENT_MAX_STEPS") {
        Some(text) => match text.trim().parse::<usize>() {
            Ok(0) => {
                return Err(invalid(
                    "AGENT_MAX_STEPS",
                    "0 is too few: a chat turn needs at least 1 model call",
                ));
            }
            Ok(steps) => steps,
            Err(_) => {
                return Err(invalid(
                    "AGENT_MAX_STEPS",
                    format!("{text:?} is not a number: use a whole number of at least 1"),
                ));
            }
        },
        None => crate::agent::DEFAULT_MAX_STEPS,
    };
    let no_refresh = match get("AGENT_NO_REFRESH") {
        Some(text) => match text.trim().to_ascii_lowercase().as_str() {
            "1" | "true" | "yes" | "on" => true,
            "0" | "false" | "no" | "off" => false,
            _ => {
                return Err(invalid(
                    "AGENT_NO_REFRESH",
                    format!("{text:?} is not a yes or no: use true or false (or 1 / 0)"),
                ));
            }
        },
        None => false,
    };
    let disabled = match get("DISABLED_CONNECTIONS") {
        Some(text) => crate::connections::parse_disabled(&text)
            .map_err(|problem| invalid("DISABLED_CONNECTIONS", problem))?,
        None => BTreeSet::new(),
    };
    let redis_prefix = match get("AGENT_REDIS_PREFIX") {
        Some(text) => {
            let fits = !text.is_empty()
                && text.len() <= 64
                && text
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, ':' | '_' | '-' | '.'));
            if !fits {
                return Err(invalid(
                    "AGENT_REDIS_PREFIX",
                    format!(
                        "{text:?} is not a key prefix: use 1 to 64 letters, digits and : _ - . \
                         (e.g. agent0-prod:)"
                    ),
                ));
            }
            text
        }
        None => crate::shared::redis::DEFAULT_PREFIX.to_owned(),
    };
    Ok(ServiceSettings {
        port,
        max_steps,
        offline_access: !no_refresh,
        disabled,
        database: get("AGENT_DATABASE_URL"),
        redis: get("AGENT_REDIS_URL"),
        redis_prefix,
    })
}

#[cfg(test)]
#[path = "config_tests.rs"]
mod tests;
