#![allow(clippy::unwrap_used)]

use std::collections::HashMap;

use super::*;

fn parse(text: &str) -> Result<ConfigFile, ConfigError> {
    ConfigFile::parse(Path::new("agent0.toml"), text)
}

fn servers(text: &str) -> Vec<McpServer> {
    parse(text)
        .unwrap()
        .mcp_servers
        .into_iter()
        .map(|s| s.server)
        .collect()
}

fn settings(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> + use<> {
    let map: HashMap<String, String> = pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    move |name| map.get(name).cloned()
}

#[test]
fn the_example_config_loads() {
    let example = include_str!("../../../config/agent0.example.toml");
    let servers = servers(example);
    assert_eq!(servers.len(), 1);
    let AuthStrategy::IdJag {
        target,
        initial_scopes,
    } = &servers[0].auth
    else {
        panic!("id-jag expected");
    };
    assert_eq!(target.connection, "notes");
    assert_eq!(target.resource, "https://notes.example.com/mcp");
    assert_eq!(initial_scopes.to_string(), "mcp:connect mcp:tools:read");
    assert_eq!(servers[0].label, "Notes MCP Server");
}

#[test]
fn the_file_is_read_from_disk_and_a_missing_one_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("agent0.toml");
    let error = ConfigFile::load(&path).unwrap_err().to_string();
    assert!(
        error.contains("cannot read") && error.contains("agent0.toml"),
        "{error}"
    );
    std::fs::write(
        &path,
        "[[mcp_servers]]\nname = \"x\"\nurl = \"http://h/mcp\"\nauth = \"none\"\n",
    )
    .unwrap();
    assert_eq!(ConfigFile::load(&path).unwrap().mcp_servers.len(), 1);
}

#[test]
fn id_jag_is_the_default_auth_with_okta_style_defaults() {
    let servers = servers(
        "[[mcp_servers]]\nname = \"x\"\nurl = \"http://h/mcp\"\nauthorization_server = \"http://as/oauth2/x/\"\n",
    );
    let AuthStrategy::IdJag {
        target,
        initial_scopes,
    } = &servers[0].auth
    else {
        panic!("id-jag expected");
    };
    assert_eq!(target.as_issuer, "http://as/oauth2/x/");
    assert_eq!(target.as_token_endpoint, "http://as/oauth2/x/v1/token");
    assert_eq!(target.resource, "http://h/mcp");
    assert_eq!(initial_scopes.to_string(), DEFAULT_SCOPES);
    assert!(!servers[0].in_band_refusals);
}

#[test]
fn bad_server_entries_name_the_file_the_entry_and_the_key() {
    for (text, expected) in [
        (
            "[[mcp_servers]]\nname = \"x\"\nurl = \"http://h/mcp\"\ncolour = 1\n",
            "unknown field `colour`",
        ),
        (
            "[[mcp_servers]]\nname = \"a b\"\nurl = \"http://h/mcp\"\nauth = \"none\"\n",
            "agent0.toml: [[mcp_servers]] #1 (\"a b\"): name: \"a b\" must be non-empty ASCII",
        ),
        (
            "[[mcp_servers]]\nname = \"x\"\nurl = \"ftp://h/mcp\"\nauth = \"none\"\n",
            "[[mcp_servers]] #1 (\"x\"): url: \"ftp://h/mcp\" must be an http or https URL",
        ),
        (
            "[[mcp_servers]]\nname = \"x\"\nurl = \"not a url\"\nauth = \"none\"\n",
            "url: \"not a url\" is not a URL",
        ),
        (
            "[[mcp_servers]]\nname = \"x\"\nurl = \"http://h/mcp\"\n",
            "(\"x\"): authorization_server: uses id-jag (the default auth) and needs its \
             authorization server issuer",
        ),
    ] {
        let error = parse(text).unwrap_err().to_string();
        assert!(error.contains(expected), "{text}: {error}");
    }
}

#[test]
fn an_unknown_auth_value_names_the_accepted_ones() {
    let error = parse("[[mcp_servers]]\nname = \"x\"\nurl = \"http://h/mcp\"\nauth = \"magic\"\n")
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("agent0.toml is not a valid agent0 config"),
        "{error}"
    );
    assert!(
        error.contains("unknown variant `magic`, expected one of `id-jag`, `oauth-sts`, `none`"),
        "{error}"
    );
}

#[test]
fn an_id_jag_key_on_an_open_server_is_refused() {
    for key in [
        "resource",
        "authorization_server",
        "token_endpoint",
        "scopes",
    ] {
        let text = format!(
            "[[mcp_servers]]\nname = \"open\"\nurl = \"http://h/mcp\"\nauth = \"none\"\n{key} = \"v\"\n"
        );
        let error = parse(&text).unwrap_err().to_string();
        assert!(
            error.contains(&format!(
                "[[mcp_servers]] #1 (\"open\"): {key}: only an id-jag server"
            )),
            "{key}: {error}"
        );
    }
    let open =
        servers("[[mcp_servers]]\nname = \"open\"\nurl = \"http://h/mcp\"\nauth = \"none\"\n");
    assert!(matches!(open[0].auth, AuthStrategy::None));
    assert_eq!(open[0].label, "open");
}

#[test]
fn names_are_unique_in_the_file_and_beside_the_sample_connection() {
    let twice = "[[mcp_servers]]\nname = \"x\"\nurl = \"http://h/mcp\"\nauth = \"none\"\n\
                 [[mcp_servers]]\nname = \"x\"\nurl = \"http://h/mcp2\"\nauth = \"none\"\n";
    let error = parse(twice).unwrap_err().to_string();
    assert!(
        error.contains("[[mcp_servers]] #2 (\"x\"): name: two MCP servers are named \"x\""),
        "{error}"
    );
    let file =
        parse("[[mcp_servers]]\nname = \"todo0\"\nurl = \"http://h/mcp\"\nauth = \"none\"\n")
            .unwrap();
    let get = settings(&[
        ("MCP_SERVER_URL", "http://localhost:5002/mcp"),
        (
            "MCP_AUTHORIZATION_SERVER",
            "http://localhost:9400/oauth2/todo0",
        ),
    ]);
    let error = connections(Some(&file), &get).unwrap_err().to_string();
    assert!(
        error.contains("the MCP_SERVER_URL connection); names must be unique"),
        "{error}"
    );
}

#[test]
fn the_sample_settings_make_the_todo0_connection() {
    let get = settings(&[
        ("MCP_SERVER_URL", "http://localhost:5002/mcp"),
        (
            "MCP_AUTHORIZATION_SERVER",
            "http://localhost:9400/oauth2/todo0",
        ),
        ("MCP_RESOURCE_INDICATOR", "api://todo0"),
        (
            "AI_AGENT_TODO_MCP_SERVER_SCOPES_TO_REQUEST",
            "mcp:connect mcp:tools:read mcp:tools:manage",
        ),
    ]);
    let file =
        parse("[[mcp_servers]]\nname = \"notes\"\nurl = \"http://h/mcp\"\nauth = \"none\"\n")
            .unwrap();
    let found = connections(Some(&file), &get).unwrap();
    assert_eq!(
        found.authorization_server,
        Some((
            "http://localhost:9400/oauth2/todo0".to_owned(),
            "http://localhost:9400/oauth2/todo0/v1/token".to_owned()
        ))
    );
    let names: Vec<&str> = found.mcp_servers.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["todo0", "notes"]);
    let todo0 = &found.mcp_servers[0];
    assert_eq!(todo0.label, "Todo0 MCP Server");
    assert!(todo0.in_band_refusals);
    let AuthStrategy::IdJag {
        target,
        initial_scopes,
    } = &todo0.auth
    else {
        panic!("id-jag expected");
    };
    assert_eq!(target.resource, "api://todo0");
    assert_eq!(
        initial_scopes.to_string(),
        "mcp:connect mcp:tools:manage mcp:tools:read"
    );

    let none = connections(None, &settings(&[])).unwrap();
    assert!(none.mcp_servers.is_empty() && none.authorization_server.is_none());

    let error = connections(
        None,
        &settings(&[("MCP_SERVER_URL", "http://localhost:5002/mcp")]),
    )
    .unwrap_err()
    .to_string();
    assert!(
        error.starts_with("MCP server todo0 (MCP_AUTHORIZATION_SERVER): uses id-jag"),
        "{error}"
    );
}

#[test]
fn auto_approve_comes_from_the_file_and_the_setting() {
    let file = parse(
        "[[mcp_servers]]\nname = \"open\"\nurl = \"http://h/mcp\"\nauth = \"none\"\nauto_approve = [\"get-notes\"]\n",
    )
    .unwrap();
    assert_eq!(file.mcp_servers[0].server.auto_approve, ["get-notes"]);
    let get = settings(&[(
        "AGENT_AUTO_APPROVE_TOOLS",
        "open:delete-note, open:get-notes",
    )]);
    let connections = connections(Some(&file), &get).unwrap();
    assert_eq!(
        connections.mcp_servers[0].auto_approve,
        ["get-notes", "delete-note"]
    );
    for (list, expected) in [
        ("todo0:delete-todo", "names no configured MCP server"),
        ("delete-todo", "is not <connection>:<tool>"),
        ("open:", "is not <connection>:<tool>"),
    ] {
        let get = settings(&[("AGENT_AUTO_APPROVE_TOOLS", list)]);
        let error = super::connections(Some(&file), &get)
            .unwrap_err()
            .to_string();
        assert!(
            error.starts_with("AGENT_AUTO_APPROVE_TOOLS: ") && error.contains(expected),
            "{list}: {error}"
        );
    }
}

#[test]
fn service_settings_default_when_unset() {
    let parsed = service_settings(&settings(&[])).unwrap();
    assert_eq!(
        parsed,
        ServiceSettings {
            port: DEFAULT_PORT,
            max_steps: crate::agent::DEFAULT_MAX_STEPS,
            offline_access: true,
            disabled: BTreeSet::new(),
            database: None,
            redis: None,
            redis_prefix: "agent0:".into(),
        }
    );
}

#[test]
fn service_settings_are_read_by_their_names() {
    let parsed = service_settings(&settings(&[
        ("PORT", "0"),
        ("AGENT_MAX_STEPS", " 3 "),
        ("AGENT_NO_REFRESH", "true"),
        ("DISABLED_CONNECTIONS", "application"),
        ("AGENT_DATABASE_URL", "postgres://u@db/x?sslmode=require"),
        ("AGENT_REDIS_URL", "rediss://db:6380"),
        ("AGENT_REDIS_PREFIX", "agent0-prod:"),
    ]))
    .unwrap();
    assert_eq!(parsed.port, 0);
    assert_eq!(parsed.max_steps, 3);
    assert!(!parsed.offline_access);
    assert_eq!(parsed.disabled.len(), 1);
    assert_eq!(
        parsed.database.as_deref(),
        Some("postgres://u@db/x?sslmode=require")
    );
    assert_eq!(parsed.redis.as_deref(), Some("rediss://db:6380"));
    assert_eq!(parsed.redis_prefix, "agent0-prod:");
    for (value, renew) in [("1", false), ("ON", false), ("0", true), ("false", true)] {
        let parsed = service_settings(&settings(&[("AGENT_NO_REFRESH", value)])).unwrap();
        assert_eq!(parsed.offline_access, renew, "{value}");
    }
}

#[test]
fn bad_service_settings_are_refused_naming_the_setting_and_the_fix() {
    for (name, value, says) in [
        ("PORT", "70000", "is not a port"),
        ("PORT", "http", "is not a port"),
        ("AGENT_MAX_STEPS", "0", "at least 1 model call"),
        ("AGENT_MAX_STEPS", "-2", "is not a number"),
        ("AGENT_MAX_STEPS", "many", "is not a number"),
        ("AGENT_NO_REFRESH", "maybe", "use true or false"),
        ("DISABLED_CONNECTIONS", "gateway", ""),
        ("AGENT_REDIS_PREFIX", "a b", "is not a key prefix"),
        ("AGENT_REDIS_PREFIX", "*", "is not a key prefix"),
    ] {
        let err = service_settings(&settings(&[(name, value)])).unwrap_err();
        let message = err.to_string();
        assert!(message.starts_with(&format!("{name}: ")), "{message}");
        assert!(message.contains(says), "{message}");
    }
}
