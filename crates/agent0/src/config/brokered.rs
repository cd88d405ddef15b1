//! The brokered-consent connections (OKTA.md §1–2, ARCHITECTURE §5.4, §7): the `application`
//! connection (GitHub REST reached with the ISV token the org authorization server hands out for
//! `OAUTH_STS_RESOURCE`) and the sample's GitHub MCP server (`GITHUB_MCP_SERVER_URL`, auth
//! strategy `oauth-sts` with `OAUTH_STS_RESOURCE_GITHUB_MCP`). More brokered MCP servers are
//! `[[mcp_servers]]` entries with `auth = "oauth-sts"`, a `resource` and optionally a
//! `tools_file` declaring their tools.
//!
//! Settings (every error names the setting):
//! - `OAUTH_STS_RESOURCE`: the application connection's resource indicator, sent verbatim (URL or
//!   ORN form); unset: no application connection.
//! - `GITHUB_API_URL` (default `https://api.github.com`): GitHub's REST base URL.
//! - `GITHUB_WEB_URL` (default `https://github.com`): where pull request links point; a PR URL on
//!   any other host is refused before any network call.
//! - `OKTA_APPLICATION_CONNECTION_ID`: the application connection's Okta id (shown in the panel).
//! - `OAUTH_STS_TOKEN_ENDPOINT`: where brokered exchanges are sent (default: the org
//!   authorization server's token endpoint from OIDC discovery, Okta's `{org}/oauth2/v1/token`).
//! - `GITHUB_MCP_SERVER_URL`, `OAUTH_STS_RESOURCE_GITHUB_MCP` (required with it),
//!   `OKTA_GITHUB_MCP_SERVER_ID` (optional, shown in the panel). Its declared tools are GitHub's
//!   own declarations of `get_me`, `list_pull_requests`, `pull_request_read` and
//!   `add_issue_comment` ([`protocol::github::MCP_TOOLS_JSON`]): offered to a person who has no
//!   GitHub token yet with no exchange ([`super::declared`]).

use super::{AuthStrategy, ConfigError, McpServerConfig, ServerOrigin, invalid};
use crate::mcp::McpServer;

/// The connection name of the application (GitHub REST) connection.
pub const APPLICATION_NAME: &str = "github";
/// The connection name of the sample's GitHub MCP server.
pub const GITHUB_MCP_NAME: &str = "github-mcp";
/// GitHub's REST API, unless `GITHUB_API_URL` says otherwise.
pub const DEFAULT_GITHUB_API_URL: &str = "https://api.github.com";
/// GitHub's web host, unless `GITHUB_WEB_URL` says otherwise.
pub const DEFAULT_GITHUB_WEB_URL: &str = "https://github.com";

/// The `application` connection: GitHub's REST API with a brokered ISV token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GithubApplication {
    /// Its connection name ([`APPLICATION_NAME`]).
    pub name: String,
    /// Display name.
    pub label: String,
    /// The resource indicator sent in the exchange (`OAUTH_STS_RESOURCE`), verbatim.
    pub resource: String,
    /// The REST base URL, without a trailing slash.
    pub api_url: String,
    /// The web origin pull request URLs must be on (scheme, host and port).
    pub web_url: url::Url,
    /// The connection's Okta id, when known.
    pub okta_id: Option<String>,
}

/// The brokered-consent settings.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Brokered {
    /// The application connection, when `OAUTH_STS_RESOURCE` is set.
    pub application: Option<GithubApplication>,
    /// Where brokered exchanges go (`None`: the org authorization server's token endpoint).
    pub token_endpoint: Option<String>,
}

fn http_url(name: &str, text: &str) -> Result<url::Url, ConfigError> {
    match url::Url::parse(text) {
        Ok(url) if matches!(url.scheme(), "http" | "https") && url.host_str().is_some() => Ok(url),
        Ok(_) => Err(invalid(
            name,
            format!("{text:?} must be an http or https URL with a host"),
        )),
        Err(e) => Err(invalid(name, format!("{text:?} is not a URL ({e})"))),
    }
}

fn resource(name: &str, text: String) -> Result<String, ConfigError> {
    if text.trim().is_empty() || text.trim() != text || text.len() > 2048 {
        return Err(invalid(
            name,
            "must be the connection's resource indicator exactly as Okta shows it (a URL or \
             orn:okta:… value, no surrounding spaces)",
        ));
    }
    Ok(text)
}

/// Reads the brokered-consent settings through `get`.
pub fn brokered(get: &dyn Fn(&str) -> Option<String>) -> Result<Brokered, ConfigError> {
    let token_endpoint = get("OAUTH_STS_TOKEN_ENDPOINT")
        .map(|t| http_url("OAUTH_STS_TOKEN_ENDPOINT", &t).map(|_| t))
        .transpose()?;
    let api_url = get("GITHUB_API_URL");
    let web_url = get("GITHUB_WEB_URL");
    let application = match get("OAUTH_STS_RESOURCE") {
        Some(text) => {
            let resource = resource("OAUTH_STS_RESOURCE", text)?;
            let api = api_url.unwrap_or_else(|| DEFAULT_GITHUB_API_URL.to_owned());
            http_url("GITHUB_API_URL", &api)?;
            let web = web_url.unwrap_or_else(|| DEFAULT_GITHUB_WEB_URL.to_owned());
            let web = http_url("GITHUB_WEB_URL", &web)?;
            Some(GithubApplication {
                name: APPLICATION_NAME.into(),
                label: "GitHub (Application)".into(),
                resource,
                api_url: api.trim_end_matches('/').to_owned(),
                web_url: web,
                okta_id: get("OKTA_APPLICATION_CONNECTION_ID"),
            })
        }
        None => None,
    };
    Ok(Brokered {
        application,
        token_endpoint,
    })
}

/// The sample's GitHub MCP server (none when `GITHUB_MCP_SERVER_URL` is unset).
pub(super) fn github_mcp_server(
    get: &dyn Fn(&str) -> Option<String>,
) -> Result<Option<McpServerConfig>, ConfigError> {
    let Some(url) = get("GITHUB_MCP_SERVER_URL") else {
        return Ok(None);
    };
    http_url("GITHUB_MCP_SERVER_URL", &url)?;
    let Some(text) = get("OAUTH_STS_RESOURCE_GITHUB_MCP") else {
        return Err(invalid(
            "OAUTH_STS_RESOURCE_GITHUB_MCP",
            "is needed with GITHUB_MCP_SERVER_URL: set it to the GitHub MCP connection's \
             resource indicator (e.g. https://api.githubcopilot.com/mcp)",
        ));
    };
    let resource = resource("OAUTH_STS_RESOURCE_GITHUB_MCP", text)?;
    // GitHub's own declarations of the demo's tools: offered to a person with no GitHub token
    // yet without any exchange (their first call asks consent).
    let declared = super::declared::github_mcp_tools().map_err(|e| {
        invalid(
            "GITHUB_MCP_SERVER_URL",
            format!("the built-in GitHub MCP tool declarations do not parse ({e})"),
        )
    })?;
    Ok(Some(McpServerConfig {
        server: McpServer {
            name: GITHUB_MCP_NAME.into(),
            label: "GitHub MCP Server".into(),
            url,
            auth: AuthStrategy::OauthSts {
                resource,
                okta_id: get("OKTA_GITHUB_MCP_SERVER_ID"),
            },
            auto_approve: Vec::new(),
            in_band_refusals: false,
            declared_tools: Some(declared),
        },
        origin: ServerOrigin::Sample,
    }))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::config::{ConfigFile, connections};

    fn settings(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let pairs: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        move |name| {
            pairs
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
        }
    }

    #[test]
    fn the_application_connection_comes_from_oauth_sts_resource_with_githubs_defaults() {
        let none = brokered(&settings(&[])).unwrap();
        assert_eq!(none, Brokered::default());
        let get = settings(&[
            (
                "OAUTH_STS_RESOURCE",
                "orn:okta:idp:00o1:client-auth-settings:cas1",
            ),
            ("OKTA_APPLICATION_CONNECTION_ID", "cas1"),
        ]);
        let app = brokered(&get).unwrap().application.unwrap();
        assert_eq!(app.name, APPLICATION_NAME);
        assert_eq!(app.resource, "orn:okta:idp:00o1:client-auth-settings:cas1");
        assert_eq!(app.api_url, "https://api.github.com");
        assert_eq!(app.web_url.as_str(), "https://github.com/");
        assert_eq!(app.okta_id.as_deref(), Some("cas1"));
        let get = settings(&[
            ("OAUTH_STS_RESOURCE", "https://api.github.com"),
            ("GITHUB_API_URL", "http://localhost:5003/api/"),
            ("GITHUB_WEB_URL", "http://localhost:5003"),
            (
                "OAUTH_STS_TOKEN_ENDPOINT",
                "http://localhost:9400/oauth2/v1/token",
            ),
        ]);
        let parsed = brokered(&get).unwrap();
        assert_eq!(
            parsed.application.unwrap().api_url,
            "http://localhost:5003/api"
        );
        assert_eq!(
            parsed.token_endpoint.as_deref(),
            Some("http://localhost:9400/oauth2/v1/token")
        );
    }

    #[test]
    fn bad_brokered_settings_name_the_variable() {
        for (pairs, name) in [
            (vec![("OAUTH_STS_RESOURCE", " x ")], "OAUTH_STS_RESOURCE"),
            (vec![("OAUTH_STS_RESOURCE", "")], "OAUTH_STS_RESOURCE"),
            (
                vec![("OAUTH_STS_RESOURCE", "r"), ("GITHUB_API_URL", "ftp://x")],
                "GITHUB_API_URL",
            ),
            (
                vec![
                    ("OAUTH_STS_RESOURCE", "r"),
                    ("GITHUB_WEB_URL", "github.com"),
                ],
                "GITHUB_WEB_URL",
            ),
            (
                vec![("OAUTH_STS_TOKEN_ENDPOINT", "nope")],
                "OAUTH_STS_TOKEN_ENDPOINT",
            ),
        ] {
            let err = brokered(&settings(&pairs)).unwrap_err().to_string();
            assert!(err.starts_with(name), "{err}");
        }
        let err = connections(
            None,
            &settings(&[(
                "GITHUB_MCP_SERVER_URL",
                "https://api.githubcopilot.com/mcp/",
            )]),
        )
        .unwrap_err()
        .to_string();
        assert!(err.starts_with("OAUTH_STS_RESOURCE_GITHUB_MCP"), "{err}");
    }

    #[test]
    fn the_github_mcp_server_uses_oauth_sts_and_more_are_configuration() {
        let file = ConfigFile::parse(
            Path::new("agent0.toml"),
            r#"
            [[mcp_servers]]
            name = "linear"
            url = "https://mcp.linear.app/mcp"
            auth = "oauth-sts"
            resource = "orn:okta:idp:00o1:client-auth-settings:lin"
            okta_id = "ems2"
            "#,
        )
        .unwrap();
        let get = settings(&[
            (
                "GITHUB_MCP_SERVER_URL",
                "https://api.githubcopilot.com/mcp/",
            ),
            (
                "OAUTH_STS_RESOURCE_GITHUB_MCP",
                "https://api.githubcopilot.com/mcp",
            ),
            ("OKTA_GITHUB_MCP_SERVER_ID", "ems1"),
            (
                "OAUTH_STS_RESOURCE",
                "orn:okta:idp:00o1:client-auth-settings:cas1",
            ),
        ]);
        let all = connections(Some(&file), &get).unwrap();
        let names: Vec<&str> = all.mcp_servers.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, [GITHUB_MCP_NAME, "linear"]);
        assert!(matches!(
            &all.mcp_servers[0].auth,
            AuthStrategy::OauthSts { resource, okta_id: Some(id) }
                if resource == "https://api.githubcopilot.com/mcp" && id == "ems1"
        ));
        assert!(matches!(
            &all.mcp_servers[1].auth,
            AuthStrategy::OauthSts { okta_id: Some(id), .. } if id == "ems2"
        ));
        assert!(all.brokered.application.is_some());
        assert!(all.authorization_server.is_none());
        // GitHub's MCP server declares GitHub's own tools (offered with no exchange); the other
        // brokered server declares none, so its listing needs the person's token.
        let declared = all.mcp_servers[0].declared_tools.as_deref().unwrap();
        let names: Vec<&str> = declared.iter().map(|t| t.name.as_ref()).collect();
        assert_eq!(names, protocol::github::MCP_TOOL_NAMES);
        assert!(all.mcp_servers[1].declared_tools.is_none());
    }

    #[test]
    fn a_brokered_server_declares_its_tools_in_a_tools_file_next_to_the_config() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("linear-tools.json"),
            r#"[{"name": "list_issues", "description": "List issues",
                 "inputSchema": {"type": "object"}}]"#,
        )
        .unwrap();
        std::fs::write(dir.path().join("empty.json"), "[]").unwrap();
        let config = dir.path().join("agent0.toml");
        let entry = |auth: &str, file: &str| {
            format!(
                "[[mcp_servers]]\nname = \"linear\"\nurl = \"https://mcp.linear.app/mcp\"\n\
                 {auth}\ntools_file = \"{file}\"\n"
            )
        };
        let sts = "auth = \"oauth-sts\"\nresource = \"orn:okta:idp:00o1:client-auth-settings:lin\"";
        let file = ConfigFile::parse(&config, &entry(sts, "linear-tools.json")).unwrap();
        let declared = file.mcp_servers[0]
            .server
            .declared_tools
            .as_deref()
            .unwrap();
        assert_eq!(declared.len(), 1);
        assert_eq!(declared[0].name, "list_issues");

        for (text, expected) in [
            (entry(sts, "missing.json"), "cannot read"),
            (entry(sts, "empty.json"), "declares no tool"),
            (
                entry("auth = \"none\"", "linear-tools.json"),
                "only an oauth-sts server takes this key",
            ),
            (
                entry(
                    "authorization_server = \"https://as.example\"",
                    "linear-tools.json",
                ),
                "only an oauth-sts server takes this key",
            ),
        ] {
            let err = ConfigFile::parse(&config, &text).unwrap_err().to_string();
            assert!(
                err.contains("[[mcp_servers]] #1 (\"linear\"): tools_file: "),
                "the error names the setting: {err}"
            );
            assert!(err.contains(expected), "{text}: {err}");
        }
    }

    #[test]
    fn oauth_sts_entries_refuse_what_does_not_apply_to_them() {
        for (entry, key) in [
            ("auth = \"oauth-sts\"", "resource"),
            (
                "auth = \"oauth-sts\"\nresource = \"r\"\nscopes = \"a\"",
                "scopes",
            ),
            (
                "auth = \"oauth-sts\"\nresource = \"r\"\nauthorization_server = \"https://as\"",
                "authorization_server",
            ),
            ("auth = \"none\"\nokta_id = \"x\"", "okta_id"),
        ] {
            let text = format!("[[mcp_servers]]\nname = \"x\"\nurl = \"https://x/mcp\"\n{entry}\n");
            let err = ConfigFile::parse(Path::new("a.toml"), &text)
                .unwrap_err()
                .to_string();
            assert!(err.contains(&format!("): {key}:")), "{entry}: {err}");
        }
        let file = ConfigFile::parse(
            Path::new("a.toml"),
            "[[mcp_servers]]\nname = \"github\"\nurl = \"https://x/mcp\"\nauth = \"none\"\n",
        )
        .unwrap();
        let err = connections(Some(&file), &settings(&[("OAUTH_STS_RESOURCE", "r")]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("application connection"), "{err}");
    }
}
