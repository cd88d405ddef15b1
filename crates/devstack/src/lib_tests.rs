#![allow(clippy::unwrap_used)]

use super::*;

#[test]
fn okta_domain_is_bare_for_an_https_root_and_reads_back_as_the_issuer() {
    for (issuer, domain) in [
        ("https://localhost:9400", "localhost:9400"),
        ("https://dev-1.okta.com/", "dev-1.okta.com"),
        ("http://localhost:9400", "http://localhost:9400"),
        ("https://idp.example/tenant", "https://idp.example/tenant"),
    ] {
        assert_eq!(okta_domain_for(issuer), domain);
        assert_eq!(
            issuer_from_okta_domain(&okta_domain_for(issuer)),
            issuer.trim_end_matches('/')
        );
    }
}

#[test]
fn idp0_alone_switches_the_configured_urls_to_its_scheme_and_keeps_their_ports() {
    let dir = tempfile::tempdir().unwrap();
    assert_eq!(configured_topology(dir.path(), "https"), None);
    ensure(dir.path(), Some(&Topology::localhost(23000, 25001, 25002))).unwrap();
    let https = configured_topology(dir.path(), "https").unwrap();
    assert_eq!(https, Topology::on_localhost("https", 23000, 25001, 25002));
    ensure(dir.path(), Some(&https)).unwrap();
    assert_eq!(
        configured_topology(dir.path(), "http").unwrap(),
        Topology::localhost(23000, 25001, 25002)
    );
}

#[test]
fn a_generated_config_follows_the_topology_and_keeps_hand_added_uris() {
    let dir = tempfile::tempdir().unwrap();
    ensure(dir.path(), None).unwrap();
    let path = dir.path().join(CONFIG_FILE);
    let read =
        || -> ConfigFile { toml::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap() };
    let mut file = read();
    let agent = file
        .clients
        .iter_mut()
        .find(|c| c.client_id == AGENT0_CLIENT)
        .unwrap();
    assert_eq!(agent.redirect_uris, ["http://localhost:3000/callback"]);
    assert_eq!(
        agent.post_logout_redirect_uris,
        ["http://localhost:3000/", "http://localhost:3000"]
    );
    agent
        .redirect_uris
        .push("https://agent.example.com/callback".into());
    write_config(&path, &file).unwrap();

    let moved = Topology::localhost(23000, 25001, 25002);
    ensure(dir.path(), Some(&moved)).unwrap();
    let file = read();
    let uris = |id: &str| {
        let c = file.clients.iter().find(|c| c.client_id == id).unwrap();
        (c.redirect_uris.clone(), c.post_logout_redirect_uris.clone())
    };
    assert_eq!(
        uris(AGENT0_CLIENT).0,
        [
            "http://localhost:23000/callback",
            "https://agent.example.com/callback"
        ]
    );
    assert_eq!(
        uris(TODO0_CLIENT).1,
        ["http://localhost:25001/", "http://localhost:25001"]
    );
    assert_eq!(
        file.authorization_servers[0].audience,
        "http://localhost:25002/mcp"
    );

    // The env files say the same, ports included.
    write_env_files(dir.path(), "http://localhost:29400").unwrap();
    let env: std::collections::HashMap<_, _> = read_env_file(&dir.path().join(AGENT0_ENV))
        .unwrap()
        .into_iter()
        .collect();
    assert_eq!(env["OKTA_REDIRECT_URI"], "http://localhost:23000/callback");
    assert_eq!(env["MCP_SERVER_URL"], "http://localhost:25002/mcp");
    assert_eq!(env["PORT"], "23000");
}

#[test]
fn an_older_generated_config_lets_todo0_introspect() {
    let dir = tempfile::tempdir().unwrap();
    ensure(dir.path(), None).unwrap();
    let path = dir.path().join(CONFIG_FILE);
    let mut file: ConfigFile = toml::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    file.authorization_servers[0].resource_clients.clear();
    write_config(&path, &file).unwrap();
    ensure(dir.path(), None).unwrap();
    let file: ConfigFile = toml::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    assert_eq!(
        file.authorization_servers[0].resource_clients,
        [TODO0_CLIENT]
    );
}

#[test]
fn an_older_generated_config_gains_the_cli_client() {
    let dir = tempfile::tempdir().unwrap();
    ensure(dir.path(), None).unwrap();
    let path = dir.path().join(CONFIG_FILE);
    let mut file: ConfigFile = toml::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let cli = file
        .clients
        .iter()
        .find(|c| c.client_id == CLI_CLIENT)
        .unwrap();
    assert_eq!(cli.auth_method, AuthMethod::None);
    assert_eq!(cli.application_type, ApplicationType::Native);
    file.clients.retain(|c| c.client_id != CLI_CLIENT);
    file.agents[0].linked_clients = vec![AGENT0_CLIENT.into()];
    write_config(&path, &file).unwrap();
    ensure(dir.path(), None).unwrap();
    let file: ConfigFile = toml::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    assert!(file.clients.iter().any(|c| c.client_id == CLI_CLIENT));
    assert_eq!(file.agents[0].linked_clients, [AGENT0_CLIENT, CLI_CLIENT]);
    idp0::config::Config::load(&path).unwrap();
}

#[test]
fn a_hand_written_config_is_never_rewritten() {
    let dir = tempfile::tempdir().unwrap();
    ensure(dir.path(), None).unwrap();
    let path = dir.path().join(CONFIG_FILE);
    let text = std::fs::read_to_string(&path)
        .unwrap()
        .replace("development = true", "development = false");
    std::fs::write(&path, &text).unwrap();
    ensure(dir.path(), Some(&Topology::localhost(1, 2, 3))).unwrap();
    assert_eq!(std::fs::read_to_string(&path).unwrap(), text);
}

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

#[test]
fn github0_is_the_agents_two_brokered_connections_and_follows_its_port() {
    let dir = tempfile::tempdir().unwrap();
    let topology = Topology::localhost(23000, 25001, 25002).with_github_port(25003);
    ensure(dir.path(), Some(&topology)).unwrap();
    let path = dir.path().join(CONFIG_FILE);
    let config = idp0::config::Config::load(&path).unwrap();
    drop(config);
    let read =
        || -> ConfigFile { toml::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap() };
    let file = read();
    let connections = &file.agents[0].brokered_connections;
    let kinds: Vec<_> = connections
        .iter()
        .map(|c| (c.kind, c.resource.as_str(), c.revocation))
        .collect();
    assert_eq!(
        kinds,
        [
            (
                BrokeredKind::Application,
                "http://localhost:25003/api/v3",
                RevocationStyle::Github
            ),
            (
                BrokeredKind::McpServer,
                "http://localhost:25003/mcp",
                RevocationStyle::Github
            ),
        ]
    );
    assert_eq!(
        connections[0].revocation_url.as_deref(),
        Some("http://localhost:25003/api/v3/applications/Ov23li-idp0-dev/grant")
    );
    assert_eq!(connections[0].scopes, ["repo", "read:user"]);
    assert_eq!(configured_topology(dir.path(), "http").unwrap(), topology);

    write_env_files(dir.path(), "http://localhost:29400").unwrap();
    let env: std::collections::HashMap<_, _> = read_env_file(&dir.path().join(AGENT0_ENV))
        .unwrap()
        .into_iter()
        .collect();
    assert_eq!(env["OAUTH_STS_RESOURCE"], "http://localhost:25003/api/v3");
    assert_eq!(env["GITHUB_API_URL"], "http://localhost:25003/api/v3");
    assert_eq!(env["GITHUB_WEB_URL"], "http://localhost:25003");
    assert_eq!(env["GITHUB_MCP_SERVER_URL"], "http://localhost:25003/mcp/");
    assert_eq!(
        env["OAUTH_STS_RESOURCE_GITHUB_MCP"],
        "http://localhost:25003/mcp"
    );
    let github0 = dir.path().join(GITHUB0_CONFIG);
    let text = std::fs::read_to_string(&github0).unwrap();
    assert!(
        text.contains("http://localhost:29400/oauth2/v1/sts/callback"),
        "{text}"
    );
    assert!(text.contains(connections[0].client_secret.as_deref().unwrap()));
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&github0).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    let parsed = github0_file(&text);
    assert_eq!(parsed["users_file"].as_str(), Some(DEMO_USERS_FILE));

    // Another github0 port on a later start: every github0 URL follows, the secret stays.
    ensure(dir.path(), Some(&topology.clone().with_github_port(25004))).unwrap();
    let moved = read();
    let moved = &moved.agents[0].brokered_connections;
    assert_eq!(moved[1].resource, "http://localhost:25004/mcp");
    assert_eq!(
        moved[0].token_url,
        "http://localhost:25004/login/oauth/access_token"
    );
    assert_eq!(moved[0].client_secret, connections[0].client_secret);
}

fn github0_file(text: &str) -> toml::Table {
    toml::from_str(text).unwrap()
}

#[test]
fn an_older_generated_config_gains_the_github0_connections() {
    let dir = tempfile::tempdir().unwrap();
    ensure(dir.path(), None).unwrap();
    let path = dir.path().join(CONFIG_FILE);
    let mut file: ConfigFile = toml::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    file.agents[0].brokered_connections.clear();
    write_config(&path, &file).unwrap();
    ensure(
        dir.path(),
        Some(&Topology::default().with_github_port(25003)),
    )
    .unwrap();
    let file: ConfigFile = toml::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let connections = &file.agents[0].brokered_connections;
    assert_eq!(connections.len(), 2);
    assert_eq!(
        connections[0].authorize_url,
        "http://localhost:25003/login/oauth/authorize"
    );
    idp0::config::Config::load(&path).unwrap();
}
