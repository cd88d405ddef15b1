//! `bench idp`'s requests: alice's login through idp0's form, the development configuration's
//! additions (a brokered connection and its consent for `sts`, the signing algorithm), and each
//! cell's pool of pre-built request bodies.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use anyhow::{Context, bail};
use axum::body::Bytes;
use devstack::{AGENT_ID, AGENT_INITIAL_SCOPES, TODO0_MCP_RESOURCE};
use idp0::store::{AuthCode, Grant};
use idp0::tokens::IdJagInput;
use protocol::assertion::ClientAssertionSigner;
use protocol::keys::SigningKey;
use protocol::oauth::{GrantType, TokenType};
use protocol::{Clock, Scopes};
use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;

use super::{STS_RESOURCE, Workload};

/// What the client needs to build requests: the agent's signer, a person's ID token, and the
/// org's keys to sign ID-JAGs as idp0 would have issued them; agent0's web client and the
/// current cell's pool of pre-built requests.
pub(super) struct Requests {
    agent: ClientAssertionSigner,
    idp: idp0::Idp,
    user: Arc<idp0::config::User>,
    pub(super) login: Login,
    pub(super) org_endpoint: String,
    todo0_issuer: String,
    pub(super) todo0_endpoint: String,
    pub(super) clock: Arc<dyn Clock>,
    pool: std::sync::RwLock<Arc<RequestPool>>,
}

/// One cell's pre-built request bodies, each sent once (a client assertion's `jti`, an ID-JAG
/// and an authorization code are single-use).
#[derive(Default)]
pub(super) struct RequestPool {
    bodies: Vec<Bytes>,
    next: AtomicUsize,
}

impl RequestPool {
    /// The next unsent body; `None` when the pool is used up.
    pub(super) fn take(&self) -> Option<Bytes> {
        self.bodies
            .get(self.next.fetch_add(1, Ordering::Relaxed))
            .cloned()
    }
}

/// agent0's web client and alice's login through idp0's form.
pub(super) struct Login {
    pub(super) client_id: String,
    pub(super) client_secret: SecretString,
    pub(super) redirect_uri: String,
    pub(super) id_token: SecretString,
    /// The login's claims: `sub`, `sid`, `auth_time`.
    pub(super) claims: Value,
    /// One PKCE pair for every pooled code.
    pub(super) code_challenge: String,
    pub(super) code_verifier: String,
}

impl Requests {
    /// The endpoint `workload` posts to.
    pub(super) fn endpoint(&self, workload: Workload) -> &str {
        match workload {
            Workload::JwtBearer => &self.todo0_endpoint,
            Workload::Exchange | Workload::Code | Workload::Sts => &self.org_endpoint,
        }
    }

    /// One request's form body: a fresh client assertion (for `jwt-bearer` also a fresh
    /// ID-JAG); for `code`, the code's redemption (authenticated with agent0's client secret
    /// over HTTP Basic instead).
    pub(super) fn body(&self, workload: Workload, code: Option<&str>) -> anyhow::Result<Bytes> {
        let mut form = url::form_urlencoded::Serializer::new(String::new());
        let endpoint = match workload {
            Workload::Code => {
                form.extend_pairs([
                    ("grant_type", "authorization_code"),
                    ("code", code.context("a code redemption needs a code")?),
                    ("redirect_uri", &self.login.redirect_uri),
                    ("code_verifier", &self.login.code_verifier),
                ]);
                return Ok(Bytes::from(form.finish()));
            }
            Workload::Exchange => {
                form.extend_pairs([
                    ("grant_type", GrantType::TokenExchange.as_str()),
                    ("requested_token_type", TokenType::IdJag.as_str()),
                    ("subject_token", self.login.id_token.expose_secret()),
                    ("subject_token_type", TokenType::IdToken.as_str()),
                    ("audience", self.todo0_issuer.as_str()),
                    ("resource", TODO0_MCP_RESOURCE),
                    ("scope", AGENT_INITIAL_SCOPES),
                ]);
                &self.org_endpoint
            }
            Workload::Sts => {
                form.extend_pairs([
                    ("grant_type", GrantType::TokenExchange.as_str()),
                    ("requested_token_type", TokenType::OktaOauthSts.as_str()),
                    ("subject_token", self.login.id_token.expose_secret()),
                    ("subject_token_type", TokenType::IdToken.as_str()),
                    ("resource", STS_RESOURCE),
                ]);
                &self.org_endpoint
            }
            Workload::JwtBearer => {
                let scope = Scopes::parse(AGENT_INITIAL_SCOPES)?;
                let jag = idp0::tokens::id_jag(
                    &self.idp.org,
                    &IdJagInput {
                        user: &self.user,
                        audience: &self.todo0_issuer,
                        client_id: AGENT_ID,
                        resource: Some(TODO0_MCP_RESOURCE),
                        scope: &scope,
                        auth_time: Some(self.clock.now()),
                        lifetime: self.idp.directory().config.id_jag_lifetime,
                    },
                    self.clock.now(),
                )
                .map_err(|e| anyhow::anyhow!("signing an ID-JAG: {e}"))?;
                form.extend_pairs([
                    ("grant_type", GrantType::JwtBearer.as_str()),
                    ("assertion", jag.token.expose_secret()),
                ]);
                &self.todo0_endpoint
            }
        };
        for (name, value) in self.agent.form_fields(endpoint)? {
            form.append_pair(name, value.expose_secret());
        }
        Ok(Bytes::from(form.finish()))
    }

    pub(super) fn pool(&self) -> Arc<RequestPool> {
        match self.pool.read() {
            Ok(pool) => pool.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Builds `count` requests for `workload` and makes them the pool: for `code`, fresh codes
    /// written through idp0's store first; the signing is spread over every CPU.
    pub(super) async fn refill(
        self: &Arc<Self>,
        workload: Workload,
        count: usize,
    ) -> anyhow::Result<()> {
        let codes = if workload == Workload::Code {
            self.write_codes(count).await?
        } else {
            Vec::new()
        };
        let this = self.clone();
        let bodies = tokio::task::spawn_blocking(move || {
            let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
            let chunk = count.div_ceil(threads).max(1);
            std::thread::scope(|scope| {
                let parts: Vec<_> = (0..count)
                    .step_by(chunk)
                    .map(|start| {
                        let (this, codes) = (&this, &codes);
                        scope.spawn(move || {
                            (start..(start + chunk).min(count))
                                .map(|i| this.body(workload, codes.get(i).map(String::as_str)))
                                .collect::<anyhow::Result<Vec<_>>>()
                        })
                    })
                    .collect();
                parts
                    .into_iter()
                    .try_fold(Vec::with_capacity(count), |mut all, part| {
                        all.extend(
                            part.join()
                                .map_err(|_| anyhow::anyhow!("building requests panicked"))??,
                        );
                        anyhow::Ok(all)
                    })
            })
        })
        .await??;
        let pool = Arc::new(RequestPool {
            bodies,
            next: AtomicUsize::new(0),
        });
        match self.pool.write() {
            Ok(mut current) => *current = pool,
            Err(poisoned) => *poisoned.into_inner() = pool,
        }
        Ok(())
    }

    /// Writes `count` fresh codes for alice's session through idp0's store, as `/authorize`
    /// writes them.
    async fn write_codes(&self, count: usize) -> anyhow::Result<Vec<String>> {
        let claim = |name: &str| self.login.claims.get(name).cloned().unwrap_or_default();
        let (sub, sid) = (claim("sub"), claim("sid"));
        let (Some(sub), Some(sid), Some(auth_time)) =
            (sub.as_str(), sid.as_str(), claim("auth_time").as_i64())
        else {
            bail!("the login's ID token has no sub, sid or auth_time");
        };
        let now = self.clock.now();
        let mut codes = Vec::with_capacity(count);
        for _ in 0..count {
            let code = idp0::tokens::new_secret();
            let record = AuthCode {
                grant: Grant {
                    server: self.idp.org.store_id().to_owned(),
                    client_id: self.login.client_id.clone(),
                    user_id: sub.to_owned(),
                    scope: LOGIN_SCOPE.to_owned(),
                    nonce: None,
                    auth_time,
                    sid: Some(sid.to_owned()),
                    family: idp0::tokens::new_id(),
                },
                redirect_uri: self.login.redirect_uri.clone(),
                code_challenge: self.login.code_challenge.clone(),
                // Long enough for any run (`/authorize` gives 120 s: a pool outlives that).
                expires_at: now + 3600,
                used: false,
            };
            self.idp
                .store
                .create_code(&idp0::store::secret_hash(&code), &record)
                .await
                .map_err(|e| anyhow::anyhow!("writing an authorization code: {e}"))?;
            codes.push(code);
        }
        Ok(codes)
    }
}

/// The scopes of agent0's login.
const LOGIN_SCOPE: &str = "openid profile email offline_access";

/// Gives the development configuration's agent a brokered connection (for `sts`).
pub(super) fn add_brokered_connection(dir: &std::path::Path) -> anyhow::Result<()> {
    devstack::ensure(dir, None)?;
    let path = dir.join(devstack::CONFIG_FILE);
    let mut file: idp0::config::ConfigFile = toml::from_str(&std::fs::read_to_string(&path)?)?;
    let agent = file
        .agents
        .first_mut()
        .context("the development configuration has no agent")?;
    agent
        .brokered_connections
        .push(idp0::config::BrokeredConnectionEntry {
            kind: idp0::config::BrokeredKind::Application,
            name: "Bench app".into(),
            resource: STS_RESOURCE.into(),
            authorize_url: "http://127.0.0.1:9/authorize".into(),
            token_url: "http://127.0.0.1:9/token".into(),
            revocation_url: None,
            revocation: Default::default(),
            client_id: "bench".into(),
            client_secret: Some("bench-secret".into()),
            client_secret_env: None,
            scopes: vec!["repo".into()],
        });
    std::fs::write(&path, toml::to_string(&file)?)?;
    Ok(())
}

/// Makes the development configuration's authorization servers (org and todo0) sign with `alg`.
pub(super) fn sign_with(dir: &std::path::Path, alg: &str) -> anyhow::Result<()> {
    devstack::ensure(dir, None)?;
    let path = dir.join(devstack::CONFIG_FILE);
    let mut file: idp0::config::ConfigFile = toml::from_str(&std::fs::read_to_string(&path)?)?;
    file.signing_alg = Some(alg.to_owned());
    for server in &mut file.authorization_servers {
        server.signing_alg = Some(alg.to_owned());
    }
    std::fs::write(&path, toml::to_string(&file)?)?;
    Ok(())
}

/// alice's consent for the `sts` connection, in the vault as the callback would store it.
async fn seed_consent(idp: &idp0::Idp, user: &idp0::config::User) -> anyhow::Result<()> {
    let Some(agent) = idp.client(AGENT_ID) else {
        return Ok(());
    };
    let Some(connection) = agent.brokered_connection(STS_RESOURCE).cloned() else {
        return Ok(());
    };
    let tokens = idp0::sts::isv::IsvTokens {
        access_token: SecretString::from(idp0::tokens::new_secret()),
        refresh_token: None,
        expires_in: Some(30 * 86_400),
        scope: Some("repo".into()),
    };
    let entry = idp0::sts::sealed_entry(idp, &user.id, &agent, &connection, &tokens, None)?;
    idp.store.upsert_vault_entry(&entry).await?;
    Ok(())
}

/// The agent's signing key, as `devstack` wrote it for agent0.
pub(super) fn agent_key(dir: &std::path::Path) -> anyhow::Result<SigningKey> {
    let env: std::collections::HashMap<String, String> =
        devstack::read_env_file(&dir.join(devstack::AGENT0_ENV))?
            .into_iter()
            .collect();
    let var = |name: &str| {
        env.get(name)
            .cloned()
            .with_context(|| format!("agent0.env has no {name}"))
    };
    let pem = std::fs::read_to_string(var("AI_AGENT_PRIVATE_KEY_FILE")?)?;
    Ok(SigningKey::from_pem(
        &pem,
        Some(var("AI_AGENT_PRIVATE_KEY_KID")?),
    )?)
}

pub(super) async fn requests(
    dir: &std::path::Path,
    issuer: &str,
    (idp, demo_users): (idp0::Idp, Vec<(String, String)>),
    clock: Arc<dyn Clock>,
) -> anyhow::Result<Requests> {
    devstack::write_env_files(dir, issuer)?;
    let agent = ClientAssertionSigner::new(AGENT_ID, Arc::new(agent_key(dir)?), clock.clone());
    let todo0 = idp
        .server(Some(devstack::TODO0_SERVER))
        .context("the development configuration has no todo0 authorization server")?;
    let user = idp
        .directory()
        .config
        .users
        .get("alice")
        .cloned()
        .context("the development configuration has no alice")?;
    let password = demo_users
        .into_iter()
        .find_map(|(name, password)| (name == "alice").then_some(password))
        .context("no demo password for alice")?;
    let login = login(dir, issuer, &password, clock.now()).await?;
    seed_consent(&idp, &user).await?;
    Ok(Requests {
        agent,
        org_endpoint: idp.org.endpoint("token"),
        todo0_issuer: todo0.issuer.clone(),
        todo0_endpoint: todo0.endpoint("token"),
        user,
        login,
        idp,
        clock,
        pool: Default::default(),
    })
}

/// alice logs in to agent0's client through `/authorize`, idp0's form and the code exchange.
async fn login(
    dir: &std::path::Path,
    issuer: &str,
    password: &str,
    now: protocol::UnixTime,
) -> anyhow::Result<Login> {
    let env: std::collections::HashMap<String, String> =
        devstack::read_env_file(&dir.join(devstack::AGENT0_ENV))?
            .into_iter()
            .collect();
    let var = |name: &str| {
        env.get(name)
            .cloned()
            .with_context(|| format!("agent0.env has no {name}"))
    };
    let settings = weblogin::OidcSettings {
        issuer: issuer.to_owned(),
        client_id: var("OKTA_CLIENT_ID")?,
        client_secret: var("OKTA_CLIENT_SECRET")?.into(),
        redirect_uri: var("OKTA_REDIRECT_URI")?,
        post_logout_redirect_uri: var("OKTA_REDIRECT_URI")?,
    };
    let rp = weblogin::RelyingParty::discover(settings.clone()).await?;
    let browser = protocol::trust::client_builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    let (authorize, pending) = rp.begin(now, &["offline_access"]);
    let page = browser.get(authorize.as_str()).send().await?.text().await?;
    let mut fields = devstack::login_form::hidden_fields(&page);
    fields.push(("username".into(), "alice".into()));
    fields.push(("password".into(), password.into()));
    let action = devstack::login_form::form_action(authorize.as_str(), &page)?;
    let submitted = browser.post(action).form(&fields).send().await?;
    let location = submitted
        .headers()
        .get(reqwest::header::LOCATION)
        .and_then(|v| v.to_str().ok())
        .with_context(|| format!("the login form answered {}", submitted.status()))?;
    let code = url::Url::parse(location)?
        .query_pairs()
        .find_map(|(name, value)| (name == "code").then(|| value.into_owned()))
        .context("the login redirect has no code")?;
    let tokens = rp.finish(code, pending).await?;
    // A second authorization request's PKCE pair, for the pooled codes.
    let (authorize, pending) = rp.begin(now, &["offline_access"]);
    let code_challenge = authorize
        .query_pairs()
        .find_map(|(name, value)| (name == "code_challenge").then(|| value.into_owned()))
        .context("the authorization URL has no code_challenge")?;
    Ok(Login {
        client_id: settings.client_id,
        client_secret: settings.client_secret,
        redirect_uri: settings.redirect_uri,
        id_token: tokens.id_token,
        claims: tokens.claims,
        code_challenge,
        code_verifier: pending.verifier,
    })
}
