//! Bad configuration fails at load, naming the key (STYLE §2).

use super::*;

const HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHQ$RdescudvJCsgt3ub+b+dWRWJTmaaJObG";

fn load(text: &str) -> Result<Config, ConfigError> {
    let dir = tempfile::tempdir().map_err(|source| ConfigError::Read {
        path: "tmp".into(),
        source,
    })?;
    let path = dir.path().join("idp0.toml");
    std::fs::write(&path, text).map_err(|source| ConfigError::Read {
        path: path.clone(),
        source,
    })?;
    Config::load(&path)
}

fn message(text: &str) -> String {
    match load(text) {
        Ok(_) => panic!("config should have been refused:\n{text}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn a_full_config_loads() -> Result<(), ConfigError> {
    let config = load(&format!(
        r#"
[[users]]
username = "alice"
name = "Alice"
email = "alice@example.com"
password_hash = "{HASH}"

[[clients]]
client_id = "web"
client_secret = "s"
auth_method = "client_secret_post"
redirect_uris = ["https://app.example/callback"]

[[agents]]
client_id = "agent"
linked_clients = ["web"]
jwks = {{ keys = [{{ kty = "EC", crv = "P-256", x = "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU", y = "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0", kid = "k1" }}] }}

[[authorization_servers]]
id = "todo0"
audience = "http://localhost:5002/mcp"
scopes = ["mcp:connect", "mcp:tools:read"]
default_scopes = ["mcp:connect"]

[[authorization_servers.policies]]
clients = ["agent"]
grant_types = ["jwt-bearer"]
scopes = ["mcp:connect", "mcp:tools:read"]
access_token_lifetime_seconds = 600
"#
    ))?;
    assert_eq!(config.users["alice"].id, user_id_for("alice"));
    assert!(config.clients["agent"].is_agent);
    let policy = config.servers[0].policy_for("agent", &GrantType::JwtBearer);
    assert_eq!(policy.map(|p| p.access_token_lifetime), Some(600));
    Ok(())
}

#[test]
fn unknown_keys_are_refused_by_name() {
    let m =
        message("[[clients]]\nclient_id = \"a\"\nauth_method = \"none\"\nredirect_url = \"x\"\n");
    assert!(m.contains("redirect_url"), "{m}");
}

#[test]
fn a_secret_client_needs_a_secret() {
    let m = message("[[clients]]\nclient_id = \"a\"\nauth_method = \"client_secret_basic\"\n");
    assert!(m.contains("clients[0].client_secret"), "{m}");
}

#[test]
fn an_agent_needs_keys_and_known_linked_clients() {
    let m = message("[[agents]]\nclient_id = \"a\"\n");
    assert!(m.contains("agents[0].jwks"), "{m}");
    let m = message(
        "[[agents]]\nclient_id = \"a\"\nlinked_clients = [\"ghost\"]\njwks = { keys = [] }\n",
    );
    assert!(
        m.contains("agents[0].linked_clients") && m.contains("ghost"),
        "{m}"
    );
}

#[test]
fn policies_must_stay_within_the_servers_scopes_and_clients() {
    let base = "[[clients]]\nclient_id = \"c\"\nauth_method = \"none\"\n[[authorization_servers]]\nid = \"x\"\naudience = \"https://api\"\nscopes = [\"a\"]\n[[authorization_servers.policies]]\n";
    let m = message(&format!(
        "{base}clients = [\"c\"]\ngrant_types = [\"jwt-bearer\"]\nscopes = [\"b\"]\n"
    ));
    assert!(
        m.contains("authorization_servers[0].policies[0].scopes"),
        "{m}"
    );
    let m = message(&format!(
        "{base}clients = [\"nobody\"]\ngrant_types = [\"jwt-bearer\"]\nscopes = [\"a\"]\n"
    ));
    assert!(m.contains("nobody"), "{m}");
    let m = message(&format!(
        "{base}clients = [\"c\"]\ngrant_types = [\"password\"]\nscopes = [\"a\"]\n"
    ));
    assert!(m.contains("unknown grant type"), "{m}");
}

#[test]
fn resource_clients_must_be_configured_clients() -> Result<(), ConfigError> {
    let base = "[[clients]]\nclient_id = \"c\"\nauth_method = \"none\"\n[[authorization_servers]]\nid = \"x\"\naudience = \"https://api\"\nscopes = [\"a\"]\n";
    let m = message(&format!("{base}resource_clients = [\"ghost\"]\n"));
    assert!(
        m.contains("authorization_servers[0].resource_clients") && m.contains("ghost"),
        "{m}"
    );
    let config = load(&format!("{base}resource_clients = [\"c\"]\n"))?;
    assert!(config.servers[0].resource_clients.contains("c"));
    let config = load(base)?;
    assert!(
        config.servers[0].resource_clients.is_empty(),
        "defaults to none"
    );
    Ok(())
}

#[test]
fn malformed_values_are_refused() {
    let m = message(
        "[[users]]\nusername = \"a\"\nname = \"A\"\nemail = \"e\"\npassword_hash = \"plain\"\n",
    );
    assert!(m.contains("users[0].password_hash"), "{m}");
    let m = message(
        "[[clients]]\nclient_id = \"a\"\nauth_method = \"none\"\nredirect_uris = [\"not a uri\"]\n",
    );
    assert!(m.contains("clients[0].redirect_uris"), "{m}");
    let m = message(
        "[[authorization_servers]]\nid = \"has space\"\naudience = \"https://a\"\nscopes = []\n",
    );
    assert!(m.contains("authorization_servers[0].id"), "{m}");
    let m = message("id_jag_lifetime_seconds = 86400\n");
    assert!(m.contains("id_jag_lifetime_seconds"), "{m}");
    let m = message(&format!(
        "[[users]]\nusername = \"a\"\nname = \"A\"\nemail = \"e\"\npassword_hash = \"{HASH}\"\n[[users]]\nusername = \"a\"\nname = \"B\"\nemail = \"e\"\npassword_hash = \"{HASH}\"\n"
    ));
    assert!(m.contains("duplicate"), "{m}");
}

#[test]
fn the_documented_example_parses() -> Result<(), Box<dyn std::error::Error>> {
    let text = include_str!("../../../../config/idp0.example.toml");
    let file: ConfigFile = toml::from_str(text)?;
    assert_eq!(file.authorization_servers[0].id, "todo0");
    // Everything but the agent's key file (which the reader generates) validates.
    let dir = tempfile::tempdir()?;
    let key = protocol::keys::SigningKey::generate(protocol::keys::KeyKind::Rsa)?;
    std::fs::write(
        dir.path().join("agent.pem.jwk.json"),
        serde_json::to_string(key.public_jwk())?,
    )?;
    let config = Config::from_file(file, dir.path())?;
    assert!(config.clients["agent0-agent"].is_agent);
    Ok(())
}

fn client_of(application_type: &str, redirect: &str) -> Client {
    let config = load(&format!(
        "[[clients]]\nclient_id = \"c\"\nauth_method = \"none\"\napplication_type = \
         \"{application_type}\"\nredirect_uris = [\"{redirect}\"]\n"
    ))
    .unwrap_or_else(|e| panic!("{e}"));
    (*config.clients["c"]).clone()
}

#[test]
fn a_native_clients_loopback_redirect_matches_any_port_and_nothing_else() {
    let cli = client_of("native", "http://127.0.0.1/callback");
    for ok in [
        "http://127.0.0.1/callback",
        "http://127.0.0.1:1/callback",
        "http://127.0.0.1:49152/callback",
        "http://127.0.0.1:65535/callback",
    ] {
        assert!(cli.is_redirect_uri(ok), "{ok}");
    }
    for refused in [
        "http://127.0.0.1:0/callback",
        "http://127.0.0.1:65536/callback",
        "http://127.0.0.1:8080/other",
        "http://127.0.0.1:8080/callback/",
        "http://127.0.0.1:8080/callback?next=x",
        "http://127.0.0.1:8080/callback#x",
        "http://localhost:8080/callback",
        "http://127.0.0.2:8080/callback",
        "http://127.0.0.1.evil.example:8080/callback",
        "http://127.0.0.1:8080@evil.example/callback",
        "https://127.0.0.1:8080/callback",
        "http://[::1]:8080/callback",
    ] {
        assert!(!cli.is_redirect_uri(refused), "{refused}");
    }
    let v6 = client_of("native", "http://[::1]:9999/callback");
    assert!(v6.is_redirect_uri("http://[::1]:4321/callback"));
    assert!(!v6.is_redirect_uri("http://127.0.0.1:4321/callback"));
}

#[test]
fn only_loopback_ip_literals_get_any_port() {
    let localhost = client_of("native", "http://localhost/callback");
    assert!(localhost.is_redirect_uri("http://localhost/callback"));
    assert!(!localhost.is_redirect_uri("http://localhost:8080/callback"));
    let remote = client_of("native", "https://app.example/callback");
    assert!(!remote.is_redirect_uri("https://app.example:8443/callback"));
}

#[test]
fn a_web_client_gets_no_port_leniency() {
    let web = client_of("web", "http://127.0.0.1:3000/callback");
    assert!(web.is_redirect_uri("http://127.0.0.1:3000/callback"));
    assert!(!web.is_redirect_uri("http://127.0.0.1:3001/callback"));
    assert!(!web.is_redirect_uri("http://127.0.0.1/callback"));
}

#[test]
fn a_native_client_must_be_public() {
    let m = message(
        "[[clients]]\nclient_id = \"a\"\nclient_secret = \"s\"\nauth_method = \
         \"client_secret_basic\"\napplication_type = \"native\"\n",
    );
    assert!(
        m.contains("clients[0].auth_method") && m.contains("none"),
        "{m}"
    );
    let m = message(
        "[[clients]]\nclient_id = \"a\"\nauth_method = \"none\"\napplication_type = \"spa\"\n",
    );
    assert!(m.contains("application_type") || m.contains("spa"), "{m}");
}

const EC_JWKS: &str = r#"jwks = { keys = [{ kty = "EC", crv = "P-256", x = "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU", y = "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0", kid = "k1" }] }"#;

const SERVER: &str = r#"
[[authorization_servers]]
id = "todo0"
audience = "http://localhost:5002/mcp"
scopes = ["mcp:connect", "mcp:tools:read"]
"#;

#[test]
fn an_agents_connections_name_a_server_its_audience_and_its_scopes() -> Result<(), ConfigError> {
    let config = load(&format!(
        r#"
[[agents]]
client_id = "agent"
{EC_JWKS}
connections = [{{ authorization_server = "todo0", resource = "http://localhost:5002/mcp", scopes = ["mcp:connect"] }}]
{SERVER}"#
    ))?;
    let agent = &config.clients["agent"];
    let connection = agent
        .connection_to("todo0")
        .ok()
        .flatten()
        .map(|c| c.scopes.to_string());
    assert_eq!(connection.as_deref(), Some("mcp:connect"));
    assert!(
        agent.connection_to("other").is_err(),
        "a server that is not a connection is refused"
    );

    for (connection, key, why) in [
        (
            r#"{ authorization_server = "nope", resource = "http://localhost:5002/mcp", scopes = [] }"#,
            "agents[0].connections[0].authorization_server",
            "not a configured authorization server",
        ),
        (
            r#"{ authorization_server = "todo0", resource = "http://elsewhere/mcp", scopes = [] }"#,
            "agents[0].connections[0].resource",
            "the server's audience",
        ),
        (
            r#"{ authorization_server = "todo0", resource = "http://localhost:5002/mcp", scopes = ["mcp:admin"] }"#,
            "agents[0].connections[0].scopes",
            "subset of the server's",
        ),
    ] {
        let error = message(&format!(
            "[[agents]]\nclient_id = \"agent\"\n{EC_JWKS}\nconnections = [{connection}]\n{SERVER}"
        ));
        assert!(error.contains(key) && error.contains(why), "{error}");
    }
    Ok(())
}

#[test]
fn an_agent_without_connections_is_not_restricted_by_them() -> Result<(), ConfigError> {
    let config = load(&format!(
        "[[agents]]\nclient_id = \"agent\"\n{EC_JWKS}\n{SERVER}"
    ))?;
    assert!(matches!(
        config.clients["agent"].connection_to("todo0"),
        Ok(None)
    ));
    Ok(())
}

#[test]
fn a_client_may_be_registered_by_the_digest_of_its_secret() -> Result<(), ConfigError> {
    let digest = crate::store::secret_hash("s3cret");
    let config = load(&format!(
        "[[clients]]\nclient_id = \"web\"\nclient_secret_sha256 = \"{digest}\"\nauth_method = \"client_secret_basic\"\n"
    ))?;
    assert!(matches!(
        &config.clients["web"].secret,
        Some(ClientSecret::Sha256(d)) if *d == digest
    ));
    for (entry, why) in [
        (
            "client_secret = \"s\"\nclient_secret_sha256 = \"00\"",
            "not both",
        ),
        ("client_secret_sha256 = \"ABC\"", "64 lowercase hex digits"),
    ] {
        let error = message(&format!(
            "[[clients]]\nclient_id = \"web\"\n{entry}\nauth_method = \"client_secret_basic\"\n"
        ));
        assert!(error.contains(why), "{error}");
    }
    Ok(())
}

#[test]
fn managed_entries_are_validated_with_the_files_and_keep_the_seed() -> Result<(), ConfigError> {
    let config = load(SERVER)?;
    let managed = ManagedEntries {
        clients: vec![ClientEntry {
            client_id: "0oa1".into(),
            name: None,
            client_secret: None,
            client_secret_sha256: Some(crate::store::secret_hash("x")),
            auth_method: AuthMethod::ClientSecretBasic,
            redirect_uris: vec!["http://localhost:3000/callback".into()],
            post_logout_redirect_uris: vec![],
            jwks: None,
            jwks_file: None,
            application_type: ApplicationType::Web,
            grant_types: None,
        }],
        ..ManagedEntries::default()
    };
    let with = config.with_managed(&managed)?;
    assert!(with.clients.contains_key("0oa1"));
    assert_eq!(with.servers.len(), 1, "the file's server stays");
    // Applying an empty set again drops the managed client but keeps the file's entries.
    let without = with.with_managed(&ManagedEntries::default())?;
    assert!(!without.clients.contains_key("0oa1"));
    assert_eq!(without.servers.len(), 1);
    // A managed server colliding with the file's is refused, naming it.
    let clash = ManagedEntries {
        authorization_servers: vec![AuthorizationServerEntry {
            id: "todo0".into(),
            name: None,
            audience: "http://x/mcp".into(),
            signing_alg: None,
            scopes: vec![],
            default_scopes: vec![],
            resource_clients: vec![],
            policies: vec![],
        }],
        ..ManagedEntries::default()
    };
    let error = config
        .with_managed(&clash)
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(error.contains("duplicate id"), "{error}");
    Ok(())
}

#[test]
fn redirect_uris_that_are_script_data_files_or_carry_credentials_are_refused() {
    let client = |kind: &str, uri: &str| {
        let auth = if kind == "native" {
            "none"
        } else {
            "client_secret_basic\"\nclient_secret = \"s"
        };
        format!(
            "[[clients]]\nclient_id = \"c\"\napplication_type = \"{kind}\"\nauth_method = \"{auth}\"\nredirect_uris = [{uri:?}]\n"
        )
    };
    for (kind, uri, why) in [
        ("web", "javascript:alert(1)", "https (or http) URL"),
        ("web", "data:text/html,hi", "https (or http) URL"),
        ("web", "file:///etc/passwd", "https (or http) URL"),
        ("web", "com.example.app:/callback", "https (or http) URL"),
        ("web", "https://user:pw@app.example/cb", "user information"),
        (
            "web",
            "https://app.example/cb\r\nX: y",
            "control characters",
        ),
        ("native", "javascript:alert(1)", "javascript: scheme"),
        ("native", "data:text/html,hi", "data: scheme"),
    ] {
        let error = message(&client(kind, uri));
        assert!(
            error.contains("clients[0].redirect_uris") && error.contains(why),
            "{uri}: {error}"
        );
    }
    // A native app's private-use scheme (RFC 8252 §7.1) is fine.
    assert!(load(&client("native", "com.example.app:/callback")).is_ok());
}

#[test]
fn a_clients_grant_types_are_read_and_unknown_ones_refused() -> Result<(), ConfigError> {
    let config = load(
        "[[clients]]\nclient_id = \"web\"\nclient_secret = \"s\"\nauth_method = \"client_secret_basic\"\ngrant_types = [\"authorization_code\", \"refresh_token\"]\n",
    )?;
    let allowed = config.clients["web"]
        .grant_types
        .clone()
        .unwrap_or_default();
    assert!(allowed.contains(&GrantType::AuthorizationCode));
    assert!(!allowed.contains(&GrantType::ClientCredentials));
    let error = message(
        "[[clients]]\nclient_id = \"web\"\nclient_secret = \"s\"\nauth_method = \"client_secret_basic\"\ngrant_types = [\"password\"]\n",
    );
    assert!(error.contains("clients[0].grant_types"), "{error}");
    Ok(())
}

#[test]
fn brokered_connections_load_normalised_and_bad_ones_fail_naming_the_key() -> Result<(), ConfigError>
{
    let good = r#"kind = "mcp_server"
name = "GitHub MCP"
resource = "https://api.githubcopilot.com/mcp/"
authorize_url = "https://github.com/login/oauth/authorize"
token_url = "https://github.com/login/oauth/access_token"
client_id = "Iv1.abc"
client_secret = "s3cret"
scopes = ["repo", "read:user"]"#;
    let config = load(&format!(
        "[[agents]]\nclient_id = \"agent\"\n{EC_JWKS}\n[[agents.brokered_connections]]\n{good}\n"
    ))?;
    let agent = &config.clients["agent"];
    let connection = agent
        .brokered_connection("https://api.githubcopilot.com/mcp")
        .map(|c| (c.kind, c.scope.clone(), c.revocation_url.is_none()));
    assert_eq!(
        connection,
        Some((BrokeredKind::McpServer, "repo read:user".to_owned(), true)),
        "the trailing slash is dropped as Okta does"
    );
    assert!(
        !format!("{:?}", agent.brokered).contains("s3cret"),
        "the secret never shows in Debug"
    );
    for (change, key, why) in [
        (
            (
                "resource = \"https://api.githubcopilot.com/mcp/\"",
                "resource = \"mailto:x\"",
            ),
            "brokered_connections[0].resource",
            "ORN",
        ),
        (
            ("kind = \"mcp_server\"", "kind = \"vault\""),
            "kind",
            "unknown variant",
        ),
        (
            (
                "client_secret = \"s3cret\"",
                "client_secret_env = \"IDP0_TEST_UNSET_SECRET_VAR\"",
            ),
            "brokered_connections[0].client_secret_env",
            "IDP0_TEST_UNSET_SECRET_VAR is not set",
        ),
        (
            (
                "token_url = \"https://github.com/login/oauth/access_token\"",
                "token_url = \"/token\"",
            ),
            "brokered_connections[0].token_url",
            "absolute URL",
        ),
        (
            ("client_id = \"Iv1.abc\"", "client_id = \"\""),
            "client_id",
            "must not be empty",
        ),
    ] {
        let entry = good.replace(change.0, change.1);
        let error = message(&format!(
            "[[agents]]\nclient_id = \"agent\"\n{EC_JWKS}\n[[agents.brokered_connections]]\n{entry}\n"
        ));
        assert!(error.contains(key) && error.contains(why), "{error}");
    }
    let error = message(&format!(
        "[[agents]]\nclient_id = \"agent\"\n{EC_JWKS}\n[[agents.brokered_connections]]\n{good}\n\
         [[agents.brokered_connections]]\n{}\n",
        good.replace("mcp/\"", "mcp\"")
    ));
    assert!(error.contains("duplicate resource"), "{error}");
    Ok(())
}

#[test]
fn a_github_style_revocation_url_must_be_the_apps_grant_url_and_gives_its_token_sibling()
-> Result<(), ConfigError> {
    let entry = |revocation_url: &str, style: &str| {
        format!(
            "[[agents]]\nclient_id = \"agent\"\n{EC_JWKS}\n[[agents.brokered_connections]]\n\
             kind = \"application\"\nname = \"GitHub\"\nresource = \"https://api.github.com\"\n\
             authorize_url = \"https://github.com/login/oauth/authorize\"\n\
             token_url = \"https://github.com/login/oauth/access_token\"\n\
             revocation_url = \"{revocation_url}\"\nrevocation = \"{style}\"\n\
             client_id = \"Iv1.abc\"\nclient_secret = \"s3cret\"\n"
        )
    };
    for (grant, token) in [
        (
            "https://api.github.com/applications/Iv1.abc/grant",
            "https://api.github.com/applications/Iv1.abc/token",
        ),
        (
            "https://ghe.example/api/v3/applications/Iv1.abc/grant",
            "https://ghe.example/api/v3/applications/Iv1.abc/token",
        ),
    ] {
        let config = load(&entry(grant, "github"))?;
        let connection = config.clients["agent"]
            .brokered_connection("https://api.github.com")
            .cloned();
        let urls = connection.map(|c| {
            (
                c.revocation_url.clone().map(String::from),
                c.github_token_url().map(String::from),
            )
        });
        assert_eq!(
            urls,
            Some((Some(grant.to_owned()), Some(token.to_owned()))),
            "{grant}"
        );
    }
    for wrong in [
        "https://api.github.com/applications/Iv1.abc/token",
        "https://api.github.com/applications/Iv1.other/grant",
        "https://api.github.com/applications/Iv1.abc/grant/",
        "https://api.github.com/applications/Iv1.abc/grant?x=1",
        "https://api.github.com/Iv1.abc/grant",
        "https://isv.example/oauth/revoke",
    ] {
        let error = message(&entry(wrong, "github"));
        assert!(
            error.contains("brokered_connections[0].revocation_url")
                && error.contains("applications/Iv1.abc/grant"),
            "{wrong}: {error}"
        );
    }
    // RFC 7009 revocation URLs are any endpoint, and have no token sibling.
    let config = load(&entry("https://isv.example/oauth/revoke", "rfc7009"))?;
    let connection = config.clients["agent"].brokered_connection("https://api.github.com");
    assert!(connection.is_some_and(|c| c.github_token_url().is_none()));
    Ok(())
}
