//! `okta validate`: checks a bootstrapped setup from the files bootstrap wrote, one line per
//! check with PASS or FAIL and, for a failure, what to do. The files parse and agree; the key
//! file is 0600, parses, and its kid is the one published for the agent; both authorization
//! servers answer discovery; the agent authenticates with `private_key_jwt` in a real token
//! request (a token exchange with a deliberately invalid subject: `invalid_grant` proves the
//! client authenticated, `invalid_client` that the key or kid is wrong). With `--login`, a
//! person logs in with the agent0 app (authorization code + PKCE, loopback redirect), and both
//! ID-JAG steps and an MCP `tools/list` run with the result (OKTA.md §1's error table).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use protocol::assertion::ClientAssertionSigner;
use protocol::keys::SigningKey;
use protocol::oauth::TokenType;
use protocol::token_client::{
    ClientAuth, CrossAppAccess, IdJagRequest, TokenClient, TokenClientError,
};
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Value, json};

use super::client::{OktaClient, Polling};
use super::files::{AGENT_APP_ENV, AGENT_ENV, TODO_APP_ENV, TODO_MCP_ENV};

#[derive(clap::Args)]
pub(crate) struct ValidateArgs {
    /// Where bootstrap wrote the env files and the state file.
    #[arg(long, default_value = ".")]
    out: PathBuf,
    /// Also log in (browser, loopback redirect) and run both ID-JAG steps and an MCP tools/list.
    #[arg(long)]
    login: bool,
    /// With --login: print the URL only, do not open a browser.
    #[arg(long)]
    no_browser: bool,
    /// With --login: the loopback port registered by bootstrap (--login-port there).
    #[arg(long, default_value_t = 8976)]
    login_port: u16,
    /// With --login: give up after this many seconds.
    #[arg(long, default_value_t = 300, value_name = "SECONDS")]
    timeout: u64,
}

/// The checks' outcomes, printed as they come.
#[derive(Default)]
struct Checks {
    failed: usize,
}

impl Checks {
    fn pass(&mut self, name: &str, detail: &str) {
        println!(
            "PASS  {name}{}",
            if detail.is_empty() {
                String::new()
            } else {
                format!(": {detail}")
            }
        );
    }

    fn fail(&mut self, name: &str, problem: &str, fix: &str) {
        self.failed += 1;
        println!("FAIL  {name}: {problem}\n      fix: {fix}");
    }
}

/// One env file's variables.
struct EnvFile(HashMap<String, String>);

impl EnvFile {
    fn get(&self, name: &str) -> Option<&str> {
        self.0
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }
}

pub(crate) async fn run(args: ValidateArgs) -> anyhow::Result<()> {
    let mut checks = Checks::default();
    let result = validate(&args, &mut checks).await;
    if let Err(e) = result {
        checks.fail("validation", &format!("{e:#}"), "see the message above");
    }
    if checks.failed > 0 {
        bail!("{} check(s) failed", checks.failed);
    }
    println!("All checks passed.");
    Ok(())
}

const FIX_BOOTSTRAP: &str = "run `secure-agent okta bootstrap --out <this folder>` again";

async fn validate(args: &ValidateArgs, checks: &mut Checks) -> anyhow::Result<()> {
    let out = &args.out;
    let mut files = HashMap::new();
    for name in [AGENT_APP_ENV, AGENT_ENV, TODO_APP_ENV, TODO_MCP_ENV] {
        let path = out.join(name);
        match std::fs::read_to_string(&path) {
            Ok(text) => match devstack::dotenv::parse(&text) {
                Ok(vars) => {
                    checks.pass(&format!("file {name}"), "present and readable");
                    files.insert(name, EnvFile(vars.into_iter().collect()));
                }
                Err(e) => checks.fail(
                    &format!("file {name}"),
                    &format!("line {}: {}", e.line, e.problem),
                    &format!("correct that line, or move the file away and {FIX_BOOTSTRAP}"),
                ),
            },
            Err(e) => checks.fail(&format!("file {name}"), &e.to_string(), FIX_BOOTSTRAP),
        }
    }
    let (Some(app), Some(agent), Some(todo_app), Some(todo_mcp)) = (
        files.get(AGENT_APP_ENV),
        files.get(AGENT_ENV),
        files.get(TODO_APP_ENV),
        files.get(TODO_MCP_ENV),
    ) else {
        bail!("the env files are incomplete; {FIX_BOOTSTRAP}");
    };
    let need = |file: &EnvFile, name: &str, in_file: &str| -> anyhow::Result<String> {
        file.get(name)
            .map(str::to_owned)
            .with_context(|| format!("{in_file} has no {name}; {FIX_BOOTSTRAP}"))
    };
    let okta_domain = need(agent, "OKTA_DOMAIN", AGENT_ENV)?;
    let org = devstack::issuer_from_okta_domain(&okta_domain);
    let agent_id = need(agent, "AI_AGENT_ID", AGENT_ENV)?;
    let mcp_as = need(agent, "MCP_AUTHORIZATION_SERVER", AGENT_ENV)?;
    let mcp_url = need(agent, "MCP_SERVER_URL", AGENT_ENV)?;
    let resource = agent
        .get("MCP_RESOURCE_INDICATOR")
        .map_or_else(|| mcp_url.clone(), str::to_owned);
    let scopes = agent
        .get("AI_AGENT_TODO_MCP_SERVER_SCOPES_TO_REQUEST")
        .unwrap_or("mcp:connect mcp:tools:read")
        .to_owned();
    consistency(
        checks,
        app,
        todo_app,
        todo_mcp,
        &okta_domain,
        &mcp_as,
        &resource,
    );

    let key = key_check(checks, out, agent);
    published_key(checks, &org, &agent_id, key.as_ref()).await;
    let http = protocol::discovery::http_client().context("building the HTTP client")?;
    let org_meta = discovery(checks, &http, "org authorization server", &org).await;
    let mcp_meta = discovery(checks, &http, "MCP authorization server", &mcp_as).await;
    if let Some(meta) = &mcp_meta
        && let Some(configured) = agent.get("MCP_AUTHORIZATION_SERVER_TOKEN_ENDPOINT")
        && meta.token_endpoint.as_deref() != Some(configured)
    {
        checks.fail(
            "MCP token endpoint",
            &format!(
                "{AGENT_ENV} says {configured}, discovery says {:?}",
                meta.token_endpoint
            ),
            &format!(
                "set MCP_AUTHORIZATION_SERVER_TOKEN_ENDPOINT in {AGENT_ENV} to the discovered one"
            ),
        );
    }
    let (Some(key), Some(org_meta), Some(mcp_meta)) = (key, org_meta, mcp_meta) else {
        return Ok(());
    };
    let Some(org_token) = org_meta.token_endpoint.clone() else {
        checks.fail(
            "org token endpoint",
            "not advertised",
            "check the org's address (OKTA_DOMAIN)",
        );
        return Ok(());
    };
    let auth = ClientAuth::PrivateKeyJwt(ClientAssertionSigner::new(
        agent_id.clone(),
        Arc::new(key.clone()),
        protocol::clock::system(),
    ));
    let tokens = TokenClient::new()?;
    client_authentication(checks, &tokens, &auth, &org_token, &key, &mcp_as, &resource).await;
    if !args.login {
        return Ok(());
    }
    let Some(mcp_token) = mcp_meta.token_endpoint.clone() else {
        checks.fail(
            "MCP token endpoint",
            "not advertised",
            "check MCP_AUTHORIZATION_SERVER",
        );
        return Ok(());
    };
    let Some(id_token) = login(checks, args, app, &org, &org_meta, &tokens).await else {
        return Ok(());
    };
    let exchange = CrossAppAccess {
        org_token_endpoint: &org_token,
        resource_token_endpoint: &mcp_token,
        request: IdJagRequest {
            subject_token: &id_token,
            subject_token_type: TokenType::IdToken,
            audience: &mcp_as,
            resource: Some(&resource),
            scope: Some(&scopes),
        },
    };
    let access = match tokens.exchange_for_access_token(&auth, &exchange).await {
        Ok(grant) => {
            checks.pass(
                "Cross-App Access",
                &format!(
                    "ID-JAG and access token for {resource} (scope {})",
                    grant.access.scope.as_deref().unwrap_or(&scopes)
                ),
            );
            grant.access.access_token
        }
        Err(e) => {
            let code = e.error_code().map(|c| c.as_str().to_owned());
            checks.fail(
                &format!("Cross-App Access {}", e.step),
                &protocol::discovery::with_causes(&e),
                oauth_fix(code.as_deref()),
            );
            return Ok(());
        }
    };
    match tools_list(&mcp_url, &access).await {
        Ok(names) => checks.pass(
            "MCP tools/list",
            &format!("{} tool(s): {}", names.len(), names.join(", ")),
        ),
        Err(e) => checks.fail(
            "MCP tools/list",
            &format!("{e:#}"),
            "start todo0's MCP server (`secure-agent todo-mcp --env-file packages/todo0/.env.mcp`) \
             and check that its MCP_EXPECTED_AUDIENCE and MCP_OKTA_ISSUER match the agent's",
        ),
    }
    Ok(())
}

/// The exact fix for an OAuth error code (OKTA.md §1).
fn oauth_fix(code: Option<&str>) -> &'static str {
    match code {
        Some("invalid_client") => {
            "the agent's key or kid is not the one Okta has: run `secure-agent okta bootstrap` \
             again (it re-uploads the key in packages/agent0) and check AI_AGENT_PRIVATE_KEY_KID"
        }
        Some("invalid_target") => {
            "the resource is not a managed connection of this agent: check the connection's \
             resource indicator and the MCP authorization server's audience against \
             MCP_RESOURCE_INDICATOR (bootstrap --mcp-audience)"
        }
        Some("unauthorized_client" | "invalid_scope" | "access_denied") => {
            "the access policy does not allow it: check the MCP authorization server's policy \
             (client = the agent) and its rule (jwt-bearer grant, the mcp:* scopes)"
        }
        Some("invalid_grant") => "the login has expired or was refused: run validate --login again",
        Some("invalid_request") => {
            "the org does not accept this exchange: check that Cross-App Access (ID-JAG) is \
             enabled for the org and that OKTA_DOMAIN is the org, not a custom authorization server"
        }
        _ => "check that the org and the MCP authorization server are reachable and retry",
    }
}

#[allow(clippy::too_many_arguments)]
fn consistency(
    checks: &mut Checks,
    app: &EnvFile,
    todo_app: &EnvFile,
    todo_mcp: &EnvFile,
    okta_domain: &str,
    mcp_as: &str,
    resource: &str,
) {
    let mut problems = Vec::new();
    if app.get("OKTA_DOMAIN") != Some(okta_domain) {
        problems.push(format!(
            "{AGENT_APP_ENV} OKTA_DOMAIN differs from {AGENT_ENV}'s"
        ));
    }
    for (file, vars, issuer, audience) in [
        (
            TODO_MCP_ENV,
            todo_mcp,
            "MCP_OKTA_ISSUER",
            "MCP_EXPECTED_AUDIENCE",
        ),
        (TODO_APP_ENV, todo_app, "OKTA_ISSUER", "EXPECTED_AUDIENCE"),
    ] {
        if vars.get(issuer) != Some(mcp_as) {
            problems.push(format!(
                "{file} {issuer} is not MCP_AUTHORIZATION_SERVER ({mcp_as})"
            ));
        }
        if vars.get(audience) != Some(resource) {
            problems.push(format!(
                "{file} {audience} is not the agent's resource ({resource})"
            ));
        }
    }
    for (file, vars) in [(AGENT_APP_ENV, app), (TODO_APP_ENV, todo_app)] {
        for name in ["OKTA_CLIENT_ID", "OKTA_CLIENT_SECRET", "OKTA_REDIRECT_URI"] {
            if vars.get(name).is_none() {
                problems.push(format!("{file} has no {name}"));
            }
        }
    }
    if problems.is_empty() {
        checks.pass("settings agree", "issuer, audience and clients");
    } else {
        checks.fail("settings agree", &problems.join("; "), FIX_BOOTSTRAP);
    }
}

fn key_check(checks: &mut Checks, out: &Path, agent: &EnvFile) -> Option<SigningKey> {
    const NAME: &str = "agent key file";
    let (Some(file), Some(kid)) = (
        agent.get("AI_AGENT_PRIVATE_KEY_FILE"),
        agent.get("AI_AGENT_PRIVATE_KEY_KID"),
    ) else {
        checks.fail(
            NAME,
            "AI_AGENT_PRIVATE_KEY_FILE or _KID is missing",
            FIX_BOOTSTRAP,
        );
        return None;
    };
    let path = out.join("packages/agent0").join(file);
    let pem = match std::fs::read_to_string(&path) {
        Ok(pem) => pem,
        Err(e) => {
            checks.fail(NAME, &format!("{}: {e}", path.display()), FIX_BOOTSTRAP);
            return None;
        }
    };
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path)
            .map(|m| m.permissions().mode() & 0o777)
            .unwrap_or(0);
        if mode != 0o600 {
            checks.fail(
                NAME,
                &format!("{} has mode {mode:o}", path.display()),
                &format!("chmod 600 {}", path.display()),
            );
        }
    }
    match SigningKey::from_pem(&pem, Some(kid.to_owned())) {
        Ok(key) => {
            checks.pass(NAME, &format!("{} parses, kid {kid}", path.display()));
            Some(key)
        }
        Err(e) => {
            checks.fail(
                NAME,
                &format!("{} does not parse: {e}", path.display()),
                FIX_BOOTSTRAP,
            );
            None
        }
    }
}

/// The kid is among the agent's published keys, with the same public key.
async fn published_key(checks: &mut Checks, org: &str, agent_id: &str, key: Option<&SigningKey>) {
    const NAME: &str = "published key";
    let Some(key) = key else { return };
    // The API token goes only to an org address bootstrap itself would accept (https, or http on
    // a loopback address, no path): OKTA_DOMAIN comes from a file that may have been edited.
    let org = match super::parse_org(org) {
        Ok(org) => org,
        Err(e) => {
            checks.fail(
                NAME,
                &format!("OKTA_DOMAIN: {e:#}; the API token is not sent there"),
                "set OKTA_DOMAIN in packages/agent0/.env.agent to the org (e.g. dev-123.okta.com)",
            );
            return;
        }
    };
    let token = match super::api_token() {
        Ok(token) => token,
        Err(e) => {
            checks.fail(
                NAME,
                &format!("{e:#}"),
                "set OKTA_API_TOKEN to check the agent's published keys",
            );
            return;
        }
    };
    let polling = Polling {
        interval: Duration::from_secs(1),
        deadline: Duration::from_secs(10),
    };
    let client = match OktaClient::new(&org, token, polling) {
        Ok(client) => client,
        Err(e) => {
            checks.fail(NAME, &format!("{e:#}"), "see the message");
            return;
        }
    };
    let path = format!("/workload-principals/api/v1/ai-agents/{agent_id}/credentials/jwks");
    match client.list(&path, "listing the agent's keys").await {
        Ok(keys) => {
            let ours = serde_json::to_value(key.public_jwk()).unwrap_or(Value::Null);
            let kid = |k: &Value| {
                k.get("kid")
                    .or_else(|| k.pointer("/jwk/kid"))
                    .and_then(Value::as_str)
                    .map(str::to_owned)
            };
            let n = |k: &Value| k.get("n").or_else(|| k.pointer("/jwk/n")).cloned();
            match keys.iter().find(|k| kid(k).as_deref() == Some(key.kid())) {
                Some(k) if n(k).is_none() || n(k).as_ref() == ours.get("n") => {
                    checks.pass(NAME, &format!("kid {} is published for agent {agent_id}", key.kid()));
                }
                Some(_) => checks.fail(
                    NAME,
                    &format!("kid {} is published with another public key", key.kid()),
                    "the key file is not the one uploaded: restore it, or move it away and run bootstrap again",
                ),
                None => checks.fail(
                    NAME,
                    &format!("agent {agent_id} publishes no key with kid {}", key.kid()),
                    "run `secure-agent okta bootstrap` again (it uploads the key), or set \
                     AI_AGENT_PRIVATE_KEY_KID to the kid Okta shows for the key",
                ),
            }
        }
        Err(e) => checks.fail(NAME, &e.to_string(), "check OKTA_API_TOKEN and AI_AGENT_ID"),
    }
}

async fn discovery(
    checks: &mut Checks,
    http: &reqwest::Client,
    name: &str,
    issuer: &str,
) -> Option<protocol::metadata::AuthorizationServerMetadata> {
    match protocol::discovery::discover(http, issuer).await {
        Ok(meta) => {
            checks.pass(&format!("discovery of the {name}"), issuer);
            Some(meta)
        }
        Err(e) => {
            checks.fail(
                &format!("discovery of the {name}"),
                &protocol::discovery::with_causes(&e),
                "check the address in the env files (OKTA_DOMAIN / MCP_AUTHORIZATION_SERVER) and \
                 that the authorization server is active",
            );
            None
        }
    }
}

/// A token exchange whose subject is a JWT signed by the agent's own key (not an ID token of
/// the org): a server that authenticated the client refuses the grant, not the client.
async fn client_authentication(
    checks: &mut Checks,
    tokens: &TokenClient,
    auth: &ClientAuth,
    org_token: &str,
    key: &SigningKey,
    mcp_as: &str,
    resource: &str,
) {
    const NAME: &str = "agent client authentication (private_key_jwt)";
    let now = protocol::clock::system().now();
    let claims = json!({
        "iss": "urn:secure-agent:okta-validate", "sub": "validate", "aud": org_token,
        "iat": now, "exp": now + 60,
    });
    let subject = match key.sign("JWT", &claims) {
        Ok(jwt) => SecretString::from(jwt),
        Err(e) => {
            checks.fail(NAME, &e.to_string(), FIX_BOOTSTRAP);
            return;
        }
    };
    let request = IdJagRequest {
        subject_token: &subject,
        subject_token_type: TokenType::IdToken,
        audience: mcp_as,
        resource: Some(resource),
        scope: Some("mcp:connect"),
    };
    match tokens.exchange_for_id_jag(org_token, auth, &request).await {
        Err(TokenClientError::OAuth { error, .. }) if error.error.as_str() == "invalid_grant" => {
            checks.pass(NAME, "the org accepted the client assertion (invalid_grant for the test subject, as intended)");
        }
        Err(TokenClientError::OAuth { error, status, .. }) => checks.fail(
            NAME,
            &format!(
                "HTTP {status} {}: {}",
                error.error,
                error.error_description.as_deref().unwrap_or("")
            ),
            oauth_fix(Some(error.error.as_str())),
        ),
        Err(e) => checks.fail(NAME, &e.to_string(), oauth_fix(None)),
        Ok(_) => checks.fail(
            NAME,
            "the org issued a token for an invalid subject",
            "this org does not validate subject tokens: do not use it",
        ),
    }
}

/// The authorization-code + PKCE login with the agent0 app on the loopback redirect.
async fn login(
    checks: &mut Checks,
    args: &ValidateArgs,
    app: &EnvFile,
    org: &str,
    meta: &protocol::metadata::AuthorizationServerMetadata,
    tokens: &TokenClient,
) -> Option<SecretString> {
    const NAME: &str = "login with the agent0 app";
    let (Some(client_id), Some(secret), Some(authorize)) = (
        app.get("OKTA_CLIENT_ID"),
        app.get("OKTA_CLIENT_SECRET"),
        meta.authorization_endpoint.as_deref(),
    ) else {
        checks.fail(
            NAME,
            "no client id, secret or authorization endpoint",
            FIX_BOOTSTRAP,
        );
        return None;
    };
    let token_endpoint = meta.token_endpoint.clone().unwrap_or_default();
    let pkce = crate::login::pkce::Pkce::new();
    let state = weblogin::random_token();
    let nonce = weblogin::random_token();
    let mut listener =
        match crate::login::loopback::Loopback::bind_port(&state, args.login_port).await {
            Ok(listener) => listener,
            Err(e) => {
                checks.fail(
                    NAME,
                    &format!("{e:#} (port {})", args.login_port),
                    "free that port or pass the --login-port given to bootstrap",
                );
                return None;
            }
        };
    let mut url = match url::Url::parse(authorize) {
        Ok(url) => url,
        Err(_) => {
            checks.fail(
                NAME,
                "the authorization_endpoint is not a URL",
                "check OKTA_DOMAIN",
            );
            return None;
        }
    };
    url.query_pairs_mut()
        .append_pair("client_id", client_id)
        .append_pair("redirect_uri", &listener.redirect_uri)
        .append_pair("response_type", "code")
        .append_pair("scope", "openid profile email")
        .append_pair("state", &state)
        .append_pair("nonce", &nonce)
        .append_pair("code_challenge", &pkce.challenge)
        .append_pair("code_challenge_method", "S256");
    crate::login::open_browser(url.as_str(), args.no_browser);
    let timeout = Duration::from_secs(args.timeout.max(1));
    let callback = match tokio::time::timeout(timeout, listener.callback()).await {
        Ok(Ok(callback)) => callback,
        Ok(Err(e)) => {
            checks.fail(NAME, &format!("{e:#}"), "run validate --login again");
            return None;
        }
        Err(_) => {
            checks.fail(
                NAME,
                &format!("no login within {} s", timeout.as_secs()),
                "run validate --login again (--timeout sets the limit)",
            );
            return None;
        }
    };
    if let Some(error) = callback.error {
        let fix = if error == "access_denied" {
            "assign the person to the agent0 app in the Admin Console"
        } else {
            "check the agent0 app's redirect URIs (bootstrap --login-port) and grant types"
        };
        checks.fail(
            NAME,
            &format!(
                "{error}: {}",
                callback.error_description.unwrap_or_default()
            ),
            fix,
        );
        return None;
    }
    if let Some(iss) = &callback.iss
        && iss != org
    {
        checks.fail(
            NAME,
            &format!("the response came from {iss}, not {org}"),
            "check OKTA_DOMAIN",
        );
        return None;
    }
    let Some(code) = callback.code else {
        checks.fail(
            NAME,
            "the authorization response has no code",
            "run validate --login again",
        );
        return None;
    };
    let auth = ClientAuth::SecretBasic {
        client_id: client_id.to_owned(),
        secret: SecretString::from(secret.to_owned()),
    };
    let redeemed = tokens
        .request(
            &token_endpoint,
            &auth,
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", &listener.redirect_uri),
                ("code_verifier", pkce.verifier.expose_secret()),
            ],
        )
        .await;
    match redeemed {
        Ok(response) => match response.id_token {
            Some(id_token) => {
                checks.pass(NAME, "ID token received");
                Some(id_token)
            }
            None => {
                checks.fail(
                    NAME,
                    "no ID token in the token response",
                    "the agent0 app must be an OIDC app (openid scope)",
                );
                None
            }
        },
        Err(e) => {
            let code = match &e {
                TokenClientError::OAuth { error, .. } => Some(error.error.as_str().to_owned()),
                _ => None,
            };
            let fix = match code.as_deref() {
                Some("invalid_client") => {
                    "OKTA_CLIENT_SECRET in packages/agent0/.env.app is not the app's secret"
                }
                other => oauth_fix(other),
            };
            checks.fail(NAME, &e.to_string(), fix);
            None
        }
    }
}

/// `tools/list` at `server` with `token`: the tools' names.
async fn tools_list(server: &str, token: &SecretString) -> anyhow::Result<Vec<String>> {
    use rmcp::ServiceExt;
    use rmcp::model::{ClientCapabilities, ClientConfig, Implementation};
    use rmcp::transport::StreamableHttpClientTransport;
    use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
    let config =
        StreamableHttpClientTransportConfig::with_uri(server).auth_header(token.expose_secret());
    let http = protocol::trust::client_builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(30))
        .build()
        .context("building the HTTP client")?;
    let transport = StreamableHttpClientTransport::with_client(http, config);
    let info = ClientConfig::new(
        ClientCapabilities::default(),
        Implementation::new("secure-agent-okta-validate", env!("CARGO_PKG_VERSION")),
    );
    let client = info
        .serve(transport)
        .await
        .map_err(|e| anyhow::anyhow!("connecting to {server}: {e}"))?;
    let tools = client.list_all_tools().await;
    let _ = client.cancel().await;
    let tools = tools.map_err(|e| anyhow::anyhow!("tools/list at {server}: {e}"))?;
    Ok(tools.into_iter().map(|t| t.name.to_string()).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_oauth_error_has_its_own_fix() {
        assert!(oauth_fix(Some("invalid_client")).contains("key or kid"));
        assert!(oauth_fix(Some("invalid_target")).contains("resource indicator"));
        assert!(oauth_fix(Some("unauthorized_client")).contains("policy"));
        assert!(oauth_fix(Some("invalid_scope")).contains("scopes"));
        assert!(oauth_fix(Some("invalid_grant")).contains("--login again"));
        assert!(oauth_fix(None).contains("reachable"));
    }
}
