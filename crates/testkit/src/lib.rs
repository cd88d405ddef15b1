//! Test support shared by the crates' integration tests: idp0 on `127.0.0.1:0` with a generated
//! development configuration in a temporary directory, a cookie-keeping HTTP client that does not
//! follow redirects (so each OAuth step can be asserted), the login form driven as a person would,
//! and PKCE helpers.
#![allow(clippy::unwrap_used)]

pub mod browser;
pub mod proxy;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, anyhow, bail};
use base64::Engine;
use idp0::Idp;
use protocol::Clock;
use protocol::assertion::ClientAssertionSigner;
use protocol::keys::SigningKey;
use protocol::oauth::TokenResponse;
use protocol::token_client::{
    ClientAuth, CrossAppAccess, CrossAppAccessError, CrossAppAccessGrant, IdJagRequest, TokenClient,
};
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};

pub use devstack::login_form::{form_action, hidden_fields};

/// A running idp0.
pub struct IdpHandle {
    /// Base URL = org issuer, `http://127.0.0.1:PORT`.
    pub issuer: String,
    /// The assembled IdP (for direct inspection).
    pub idp: Idp,
    /// Demo credentials.
    pub demo_users: Vec<(String, String)>,
    /// Data directory.
    pub data_dir: PathBuf,
    /// The redirect URI registered for the `agent0` web client.
    pub agent0_redirect: String,
    _temp: Option<tempfile::TempDir>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
}

impl IdpHandle {
    /// Starts idp0 with a fresh development configuration in a temporary directory.
    pub async fn start() -> anyhow::Result<Self> {
        let temp = tempfile::tempdir()?;
        let dir = temp.path().to_owned();
        let mut handle = Self::start_in(&dir, protocol::clock::system()).await?;
        handle._temp = Some(temp);
        Ok(handle)
    }

    /// Starts idp0 with a fresh development configuration whose todo0 authorization server issues
    /// tokens for `resource` (an MCP server's actual URL in a test) instead of the default.
    pub async fn start_for_resource(resource: &str) -> anyhow::Result<Self> {
        Self::start_for(resource, None).await
    }

    /// As [`Self::start_for_resource`], with the `agent0` web client registered for an agent0
    /// at `agent_base` (`http://127.0.0.1:PORT`) instead of `http://localhost:3000`.
    pub async fn start_for(resource: &str, agent_base: Option<&str>) -> anyhow::Result<Self> {
        Self::start_signing(resource, agent_base, None).await
    }

    /// As [`Self::start_for`]; with `signing_alg`, every authorization server of the generated
    /// configuration signs with it (see [`set_signing_alg`]).
    pub async fn start_signing(
        resource: &str,
        agent_base: Option<&str>,
        signing_alg: Option<&str>,
    ) -> anyhow::Result<Self> {
        let temp = tempfile::tempdir()?;
        let dir = temp.path().to_owned();
        let mut topology = devstack::Topology {
            mcp_resource: resource.to_owned(),
            ..Default::default()
        };
        if let Some(base) = agent_base {
            topology.agent = base.to_owned();
        }
        if let Some(alg) = signing_alg {
            set_signing_alg(&dir, Some(&topology), alg)?;
        }
        let mut handle =
            Self::start_with(&dir, protocol::clock::system(), Some(topology.clone())).await?;
        handle._temp = Some(temp);
        handle.agent0_redirect = format!("{}/callback", topology.agent);
        Ok(handle)
    }

    /// Starts idp0 on `dir` (reusing what is there) with `clock`.
    pub async fn start_in(dir: &Path, clock: Arc<dyn Clock>) -> anyhow::Result<Self> {
        Self::start_with(dir, clock, None).await
    }

    /// Starts idp0 on `dir` with `clock`, its development configuration following `topology`
    /// (the product's own mechanism, as `secure-agent up` uses it).
    pub async fn start_with(
        dir: &Path,
        clock: Arc<dyn Clock>,
        topology: Option<devstack::Topology>,
    ) -> anyhow::Result<Self> {
        Self::start_full(dir, clock, topology, None).await
    }

    /// Starts an idp0 replica on `dir` (its configuration and signing keys) keeping its state in
    /// `database` (`postgres://…`): replicas started on the same two share logins and tokens.
    pub async fn start_replica(dir: &Path, database: &str) -> anyhow::Result<Self> {
        Self::start_full(
            dir,
            protocol::clock::system(),
            None,
            Some(database.to_owned()),
        )
        .await
    }

    async fn start_full(
        dir: &Path,
        clock: Arc<dyn Clock>,
        topology: Option<devstack::Topology>,
        database: Option<String>,
    ) -> anyhow::Result<Self> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let issuer = format!("http://{}", listener.local_addr()?);
        let opened =
            devstack::open_idp(dir, database, issuer.clone(), clock, topology.as_ref()).await?;
        let (tx, rx) = tokio::sync::oneshot::channel();
        let task = tokio::spawn(idp0::serve(listener, opened.idp.clone(), async move {
            let _ = rx.await;
        }));
        Ok(Self {
            issuer,
            idp: opened.idp,
            demo_users: opened.demo_users,
            data_dir: dir.to_owned(),
            agent0_redirect: AGENT0_REDIRECT.to_owned(),
            _temp: None,
            shutdown: Some(tx),
            task: Some(task),
        })
    }

    /// Stops the server and waits for it.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        self.halt().await
    }

    /// Stops the server in place (a test of what its clients do when the IdP is down).
    pub async fn halt(&mut self) -> anyhow::Result<()> {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            task.await??;
        }
        Ok(())
    }

    /// The demo password of `username`.
    pub fn password(&self, username: &str) -> String {
        self.demo_users
            .iter()
            .find(|(u, _)| u == username)
            .map(|(_, p)| p.clone())
            .unwrap()
    }

    /// A dotenv file the IdP wrote, as a map.
    pub fn env(&self, file: &str) -> HashMap<String, String> {
        devstack::read_env_file(&self.data_dir.join(file))
            .unwrap()
            .into_iter()
            .collect()
    }

    /// The todo0 custom AS issuer.
    pub fn todo0_issuer(&self) -> String {
        format!("{}/oauth2/{}", self.issuer, devstack::TODO0_SERVER)
    }

    /// The org token endpoint.
    pub fn org_token_endpoint(&self) -> String {
        format!("{}/oauth2/v1/token", self.issuer)
    }

    /// The todo0 AS token endpoint.
    pub fn todo0_token_endpoint(&self) -> String {
        format!("{}/v1/token", self.todo0_issuer())
    }

    /// Step 1 of Cross-App Access as the agent: `subject` for an ID-JAG to the todo0 AS.
    pub async fn id_jag(
        &self,
        subject: &SecretString,
        subject_token_type: protocol::oauth::TokenType,
        resource: &str,
        scope: &str,
    ) -> anyhow::Result<TokenResponse> {
        let request = protocol::token_client::IdJagRequest {
            subject_token: subject,
            subject_token_type,
            audience: &self.todo0_issuer(),
            resource: Some(resource),
            scope: Some(scope),
        };
        Ok(TokenClient::new()?
            .exchange_for_id_jag(&self.org_token_endpoint(), &self.agent_auth(), &request)
            .await?)
    }

    /// Both Cross-App Access steps as the agent, as agent0 runs them: `id_token` for an ID-JAG to
    /// the todo0 AS for `resource`, redeemed there for an access token.
    pub async fn cross_app_access(
        &self,
        id_token: &SecretString,
        resource: &str,
        scope: &str,
    ) -> Result<CrossAppAccessGrant, CrossAppAccessError> {
        let exchange = CrossAppAccess {
            org_token_endpoint: &self.org_token_endpoint(),
            resource_token_endpoint: &self.todo0_token_endpoint(),
            request: IdJagRequest {
                subject_token: id_token,
                subject_token_type: protocol::oauth::TokenType::IdToken,
                audience: &self.todo0_issuer(),
                resource: Some(resource),
                scope: Some(scope),
            },
        };
        TokenClient::new()
            .expect("a token client")
            .exchange_for_access_token(&self.agent_auth(), &exchange)
            .await
    }

    /// Step 2 as the agent: redeems an ID-JAG at the todo0 AS.
    pub async fn redeem(&self, id_jag: &SecretString) -> anyhow::Result<TokenResponse> {
        Ok(TokenClient::new()?
            .redeem_id_jag(&self.todo0_token_endpoint(), &self.agent_auth(), id_jag)
            .await?)
    }

    /// The agent's private key (from the generated files).
    pub fn agent_key(&self) -> Arc<SigningKey> {
        let env = self.env(devstack::AGENT0_ENV);
        let pem = std::fs::read_to_string(&env["AI_AGENT_PRIVATE_KEY_FILE"]).unwrap();
        Arc::new(SigningKey::from_pem(&pem, Some(env["AI_AGENT_PRIVATE_KEY_KID"].clone())).unwrap())
    }

    /// `private_key_jwt` authentication as the agent.
    pub fn agent_auth(&self) -> ClientAuth {
        ClientAuth::PrivateKeyJwt(ClientAssertionSigner::new(
            devstack::AGENT_ID,
            self.agent_key(),
            protocol::clock::system(),
        ))
    }

    /// `client_secret_basic` authentication as a web client (`agent0` or `todo0`).
    pub fn web_client_auth(&self, client_id: &str) -> ClientAuth {
        ClientAuth::SecretBasic {
            client_id: client_id.to_owned(),
            secret: self.client_secret(client_id),
        }
    }

    /// A web client's secret.
    pub fn client_secret(&self, client_id: &str) -> SecretString {
        let file = if client_id == devstack::TODO0_CLIENT {
            devstack::TODO0_ENV
        } else {
            devstack::AGENT0_ENV
        };
        SecretString::from(self.env(file)["OKTA_CLIENT_SECRET"].clone())
    }

    /// Logs `username` in to the `agent0` web client through the real login form and redeems the
    /// code: the tokens a relying party would hold.
    pub async fn login(&self, browser: &Browser, username: &str) -> anyhow::Result<TokenResponse> {
        let pkce = Pkce::new();
        let url = self.authorize_url(
            "agent0",
            &self.agent0_redirect,
            "openid profile email offline_access",
            &pkce,
            "st4te",
            "n0nce",
        );
        let code = browser
            .authorize(&url, Some((username, &self.password(username))))
            .await?;
        if code.state.as_deref() != Some("st4te") {
            bail!("state was not echoed");
        }
        let tokens = TokenClient::new()?
            .request(
                &self.org_token_endpoint(),
                &self.web_client_auth("agent0"),
                &[
                    ("grant_type", "authorization_code"),
                    ("code", &code.code),
                    ("redirect_uri", &self.agent0_redirect),
                    ("code_verifier", pkce.verifier.expose_secret()),
                ],
            )
            .await?;
        Ok(tokens)
    }

    /// An org authorization URL.
    pub fn authorize_url(
        &self,
        client_id: &str,
        redirect_uri: &str,
        scope: &str,
        pkce: &Pkce,
        state: &str,
        nonce: &str,
    ) -> String {
        let mut url = url::Url::parse(&format!("{}/oauth2/v1/authorize", self.issuer)).unwrap();
        url.query_pairs_mut()
            .append_pair("client_id", client_id)
            .append_pair("redirect_uri", redirect_uri)
            .append_pair("response_type", "code")
            .append_pair("scope", scope)
            .append_pair("state", state)
            .append_pair("nonce", nonce)
            .append_pair("code_challenge", &pkce.challenge)
            .append_pair("code_challenge_method", "S256");
        url.into()
    }
}

/// Sets `signing_alg = "<alg>"` for the org authorization server and every custom one in the
/// idp0 configuration in `dir` (generating the development configuration first when there is
/// none, following `topology`), as a person editing `idp0.toml` would; idp0 reads it when it next
/// opens `dir`. Fails unless the edited file loads.
pub fn set_signing_alg(
    dir: &Path,
    topology: Option<&devstack::Topology>,
    alg: &str,
) -> anyhow::Result<()> {
    devstack::ensure(dir, topology)?;
    let path = dir.join(devstack::CONFIG_FILE);
    let text = std::fs::read_to_string(&path)?;
    if text.contains("signing_alg") {
        bail!("{} already names a signing_alg", path.display());
    }
    let line = format!("signing_alg = \"{alg}\"\n");
    let server = "[[authorization_servers]]\n";
    let text = format!("{line}{}", text.replace(server, &format!("{server}{line}")));
    idp0::fsutil::write_private(&path, &text)?;
    idp0::config::Config::load(&path)?;
    Ok(())
}

impl Drop for IdpHandle {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// A PKCE verifier and its S256 challenge (RFC 7636).
pub struct Pkce {
    /// The verifier.
    pub verifier: SecretString,
    /// BASE64URL(SHA256(verifier)).
    pub challenge: String,
}

impl Pkce {
    /// A fresh pair.
    pub fn new() -> Self {
        let bytes = [
            *uuid::Uuid::new_v4().as_bytes(),
            *uuid::Uuid::new_v4().as_bytes(),
        ]
        .concat();
        let verifier = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
        let challenge = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(Sha256::digest(verifier.as_bytes()));
        Self {
            verifier: SecretString::from(verifier),
            challenge,
        }
    }
}

impl Default for Pkce {
    fn default() -> Self {
        Self::new()
    }
}

/// The result of an authorization request.
#[derive(Debug)]
pub struct CodeResponse {
    /// The code.
    pub code: String,
    /// The echoed state.
    pub state: Option<String>,
    /// RFC 9207 `iss`.
    pub iss: Option<String>,
}

/// A person's browser: keeps cookies, never follows redirects.
pub struct Browser {
    /// The HTTP client.
    pub http: reqwest::Client,
}

impl Default for Browser {
    fn default() -> Self {
        Self::new()
    }
}

impl Browser {
    /// A fresh browser profile.
    pub fn new() -> Self {
        let http = protocol::trust::client_builder()
            .cookie_store(true)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        Self { http }
    }

    /// Opens `authorize_url`; if the login form appears, fills in `credentials` and submits it.
    /// Returns the code from the redirect to the client.
    pub async fn authorize(
        &self,
        authorize_url: &str,
        credentials: Option<(&str, &str)>,
    ) -> anyhow::Result<CodeResponse> {
        let response = self.http.get(authorize_url).send().await?;
        let response = if response.status().is_redirection() {
            response
        } else {
            let status = response.status();
            let html = response.text().await?;
            let (username, password) = credentials.ok_or_else(|| {
                anyhow!("login form shown (HTTP {status}) but no credentials given")
            })?;
            self.submit_login(authorize_url, &html, username, password)
                .await?
        };
        code_from_redirect(&response)
    }

    /// Opens `authorize_url`, logs in with `credentials`, and carries the code, `state` and `iss`
    /// to `callback` (the app's real callback URL: its registered redirect URI may name another
    /// port), as a browser following the redirect would. Returns the app's answer.
    pub async fn log_in_to(
        &self,
        authorize_url: &str,
        credentials: (&str, &str),
        callback: &str,
    ) -> anyhow::Result<reqwest::Response> {
        let code = self.authorize(authorize_url, Some(credentials)).await?;
        let mut callback = url::Url::parse(callback)?;
        callback
            .query_pairs_mut()
            .append_pair("code", &code.code)
            .append_pair("state", code.state.as_deref().context("no state")?)
            .append_pair("iss", code.iss.as_deref().context("no iss")?);
        Ok(self.http.get(callback).send().await?)
    }

    /// Submits the login form found in `html`.
    pub async fn submit_login(
        &self,
        page_url: &str,
        html: &str,
        username: &str,
        password: &str,
    ) -> anyhow::Result<reqwest::Response> {
        let action = form_action(page_url, html)?;
        let mut fields: Vec<(String, String)> = hidden_fields(html);
        fields.push(("username".into(), username.into()));
        fields.push(("password".into(), password.into()));
        Ok(self.http.post(action).form(&fields).send().await?)
    }
}

/// Reads `code`, `state` and `iss` from a redirect's `Location`.
pub fn code_from_redirect(response: &reqwest::Response) -> anyhow::Result<CodeResponse> {
    let location = location(response)?;
    let params: HashMap<String, String> = location.query_pairs().into_owned().collect();
    if let Some(error) = params.get("error") {
        bail!(
            "authorization error {error}: {}",
            params.get("error_description").cloned().unwrap_or_default()
        );
    }
    Ok(CodeResponse {
        code: params.get("code").cloned().context("no code in redirect")?,
        state: params.get("state").cloned(),
        iss: params.get("iss").cloned(),
    })
}

/// The `Location` of a redirect, resolved against the request URL.
pub fn location(response: &reqwest::Response) -> anyhow::Result<url::Url> {
    if !response.status().is_redirection() {
        bail!("expected a redirect, got HTTP {}", response.status());
    }
    let value = response
        .headers()
        .get(reqwest::header::LOCATION)
        .context("no Location")?
        .to_str()?;
    Ok(response.url().join(value)?)
}

/// The redirect URI idp0's dev config registers for the `agent0` web client.
pub const AGENT0_REDIRECT: &str = "http://localhost:3000/callback";
/// The redirect URI idp0's dev config registers for the `todo0` web client.
pub const TODO0_REDIRECT: &str = "http://localhost:5001/callback";

/// idp0 plus todo0's MCP server on 127.0.0.1:0, wired as in production: the MCP server discovers
/// the todo0 authorization server and fetches its JWKS over HTTP; idp0's todo0 AS issues tokens
/// for the MCP server's actual URL.
pub struct Stack {
    /// The identity provider.
    pub idp: IdpHandle,
    /// The MCP endpoint (= resource identifier), `http://127.0.0.1:PORT/mcp`, or `https://…` with
    /// [`Stack::start_tls`].
    pub mcp_url: String,
    /// The todo store behind the MCP server.
    pub store: Arc<dyn todo0::store::TodoStore>,
    /// With [`Stack::start_tls`]: the CA certificate (PEM) the MCP server's certificate chains to,
    /// what a client is told to trust. No client in this process trusts it unless told.
    pub ca: Option<PathBuf>,
    _data: tempfile::TempDir,
}

impl Stack {
    /// Starts both servers (SQLite store in a temporary directory).
    pub async fn start() -> anyhow::Result<Self> {
        Self::start_with(false).await
    }

    /// Starts both servers; `stateless` selects the MCP server's stateless mode.
    pub async fn start_with(stateless: bool) -> anyhow::Result<Self> {
        Self::start_full(stateless, None, false, None).await
    }

    /// Starts both servers with idp0's `agent0` client registered for `agent_base`.
    pub async fn start_for_agent(agent_base: &str) -> anyhow::Result<Self> {
        Self::start_full(false, Some(agent_base), false, None).await
    }

    /// As [`Self::start_for_agent`], with every authorization server of idp0's generated
    /// configuration signing with `signing_alg` (`RS256` or `ES256`; see [`set_signing_alg`]).
    pub async fn start_for_agent_signing(
        agent_base: &str,
        signing_alg: &str,
    ) -> anyhow::Result<Self> {
        Self::start_full(false, Some(agent_base), false, Some(signing_alg)).await
    }

    /// Starts both servers, the MCP server on https (`https://127.0.0.1:PORT/mcp`) with a local CA
    /// made for this stack, as `--tls` serves it ([`httpserve::tls::LocalCa`]); its certificate is
    /// in [`Stack::ca`].
    pub async fn start_tls() -> anyhow::Result<Self> {
        Self::start_full(false, None, true, None).await
    }

    async fn start_full(
        stateless: bool,
        agent_base: Option<&str>,
        tls: bool,
        signing_alg: Option<&str>,
    ) -> anyhow::Result<Self> {
        let data = tempfile::tempdir()?;
        let local_ca = if tls {
            let now = u64::try_from(protocol::SystemClock.now()).unwrap_or(0);
            let now = std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(now);
            Some(httpserve::tls::LocalCa::ensure(data.path(), now)?.0)
        } else {
            None
        };
        let mut listener =
            httpserve::Listener::from(tokio::net::TcpListener::bind("127.0.0.1:0").await?);
        let scheme = if let Some(ca) = &local_ca {
            listener = listener.with_tls(httpserve::tls::server_config(&ca.cert, &ca.key)?);
            "https"
        } else {
            "http"
        };
        let mcp_url = format!("{scheme}://{}/mcp", listener.local_addr()?);
        let idp = IdpHandle::start_signing(&mcp_url, agent_base, signing_alg).await?;
        let store = todo0::store::open(&format!(
            "sqlite://{}",
            data.path().join("todo0.db").display()
        ))
        .await?;
        let jwks = protocol::verify::RemoteJwks::discover(
            protocol::discovery::http_client()?,
            &idp.todo0_issuer(),
            std::time::Duration::from_secs(30),
        )
        .await?;
        let mut config = todo0::mcp::McpConfig::new(idp.todo0_issuer(), &mcp_url);
        config.stateless = stateless;
        let app = todo0::mcp::router(
            &config,
            Arc::new(jwks),
            store.clone(),
            protocol::clock::system(),
        );
        tokio::spawn(async move { httpserve::serve(listener, app, std::future::pending()).await });
        Ok(Self {
            idp,
            mcp_url,
            store,
            ca: local_ca.map(|ca| ca.ca_cert),
            _data: data,
        })
    }

    /// Starts todo0's web app + REST API on this stack's store, registered at idp0 as the `todo0`
    /// client (redirect URI `http://localhost:5001/callback`: a test carries the code to the
    /// app's real callback itself). Returns its base URL.
    pub async fn start_web_app(&self) -> anyhow::Result<String> {
        self.start_web_app_with(|_| {}).await
    }

    /// [`Self::start_web_app`], with its configuration adjusted by `configure`.
    pub async fn start_web_app_with(
        &self,
        configure: impl FnOnce(&mut todo0::web::WebConfig),
    ) -> anyhow::Result<String> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}", listener.local_addr()?);
        let oidc = todo0::web::OidcSettings {
            issuer: self.idp.issuer.clone(),
            client_id: "todo0".into(),
            client_secret: self.idp.client_secret("todo0"),
            redirect_uri: TODO0_REDIRECT.into(),
            post_logout_redirect_uri: "http://localhost:5001/".into(),
        };
        let key = todo0::web::SessionKey::from_secret(&todo0::web::SessionKey::generate_secret())?;
        let mut config =
            todo0::web::WebConfig::new(oidc, key, self.idp.todo0_issuer(), &self.mcp_url);
        configure(&mut config);
        let jwks = protocol::verify::RemoteJwks::discover(
            protocol::discovery::http_client()?,
            &self.idp.todo0_issuer(),
            std::time::Duration::from_secs(30),
        )
        .await?;
        let router = todo0::web::router(
            config,
            Arc::new(jwks),
            self.store.clone(),
            protocol::clock::system(),
        )
        .await?;
        tokio::spawn(async move { axum::serve(listener, router).await });
        Ok(url)
    }

    /// Logs `user` in and runs the real ID-JAG flow for an MCP access token with `scope`.
    pub async fn mcp_token(&self, user: &str, scope: &str) -> anyhow::Result<SecretString> {
        let login = self.idp.login(&Browser::new(), user).await?;
        let id_token = login.id_token.context("no ID token")?;
        let grant = self
            .idp
            .cross_app_access(&id_token, &self.mcp_url, scope)
            .await?;
        Ok(grant.access.access_token)
    }
}
