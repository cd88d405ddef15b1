//! `okta bootstrap`: OKTA.md §4's steps in order, each one idempotent. A resource recorded in
//! the state file is checked with a GET (gone → created again, and said so); one not recorded
//! is first looked up by name where Okta offers a search (`?q=` on authorization servers and
//! apps) or a list (scopes, policies, rules, connections, trusted origins), so a step whose
//! answer was lost does not create a duplicate. The state is written after every step.
//! One step more than the sample (our step 12): a second access policy on the MCP authorization
//! server for the todo0 web app, which signs people in there (`OKTA_ISSUER`); without it Okta
//! refuses that login (no policy names the app, or no rule covers `openid profile email`).

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use secrecy::SecretString;
use serde_json::{Value, json};

use super::client::OktaClient;
use super::files::{self, Written};
use super::state::State;
use super::{ApiArgs, parse_org};

mod agent;

/// The MCP authorization server's name (OKTA.md §4 step 1).
pub(crate) const AS_NAME: &str = "todo0-mcp-server";
/// Its scopes (step 2), with descriptions.
pub(crate) const SCOPES: [(&str, &str); 4] = [
    ("mcp:connect", "Connect to the todo0 MCP server"),
    ("mcp:tools:read", "Read todos through the MCP tools"),
    (
        "mcp:tools:manage",
        "Create and change todos through the MCP tools",
    ),
    ("mcp:tools:delete", "Delete todos through the MCP tools"),
];
pub(crate) const POLICY_NAME: &str = "Default MCP Policy";
pub(crate) const RULE_NAME: &str = "Allow MCP Connection";
/// The todo0 web app's sign-in policy and rule (our step 12).
pub(crate) const WEB_POLICY_NAME: &str = "todo0 web sign-in";
pub(crate) const WEB_RULE_NAME: &str = "Allow todo0 sign-in";
/// The scopes the todo0 web app requests (weblogin's `openid profile email`): Okta matches a
/// rule only when it covers every requested scope, the OIDC ones included.
const WEB_SCOPES: [&str; 3] = ["openid", "profile", "email"];
pub(crate) const AGENT_NAME: &str = "agent0 AI agent";
pub(crate) const CONNECTION_TYPE: &str = "IDENTITY_ASSERTION_CUSTOM_AS";
/// The agent's private key, in `packages/agent0` (`AI_AGENT_PRIVATE_KEY_FILE` is relative to it).
pub(crate) const KEY_FILE: &str = "agent0-agent.pem";

const API_AGENTS: &str = "/workload-principals/api/v1/ai-agents";

#[derive(clap::Args)]
pub(crate) struct BootstrapArgs {
    /// The Okta org: https://<org> or the bare domain (OKTA_DOMAIN). Env: OKTA_ORG_URL.
    #[arg(long, env = "OKTA_ORG_URL")]
    org: String,
    #[command(flatten)]
    api: ApiArgs,
    /// The MCP resource (audience of the MCP authorization server). Default:
    /// http://localhost:<mcp-port>/mcp.
    #[arg(long, value_name = "URL")]
    mcp_audience: Option<String>,
    /// agent0's port (its redirect URI and trusted origin).
    #[arg(long, default_value_t = 3000)]
    agent_port: u16,
    /// todo0's web app port.
    #[arg(long, default_value_t = 5001)]
    todo_port: u16,
    /// todo0's MCP server port.
    #[arg(long, default_value_t = 5002)]
    mcp_port: u16,
    /// The loopback port `okta validate --login` listens on: http://127.0.0.1:<port>/callback
    /// is registered for the agent0 app.
    #[arg(long, default_value_t = 8976)]
    login_port: u16,
}

/// The settings the steps use.
pub(crate) struct Plan {
    pub(crate) org: String,
    pub(crate) audience: String,
    pub(crate) agent_port: u16,
    pub(crate) todo_port: u16,
    pub(crate) mcp_port: u16,
    pub(crate) login_port: u16,
}

impl Plan {
    pub(crate) fn agent_origin(&self) -> String {
        format!("http://localhost:{}", self.agent_port)
    }
    pub(crate) fn todo_origin(&self) -> String {
        format!("http://localhost:{}", self.todo_port)
    }
    pub(crate) fn mcp_origin(&self) -> String {
        format!("http://localhost:{}", self.mcp_port)
    }
    pub(crate) fn as_issuer(&self, as_id: &str) -> String {
        format!("{}/oauth2/{as_id}", self.org)
    }
}

/// An OIDC app as created or found, with its credentials (the secret only in memory).
pub(crate) struct App {
    pub(crate) id: String,
    pub(crate) client_id: String,
    pub(crate) secret: Option<SecretString>,
}

/// What the run knows beyond the state file.
pub(crate) struct Outcome {
    pub(crate) as_id: String,
    pub(crate) agent0: App,
    pub(crate) todo0: App,
    pub(crate) agent_id: String,
    pub(crate) kid: String,
    pub(crate) key_file: PathBuf,
    pub(crate) user_login: String,
    pub(crate) origin_ids: Vec<(String, String)>,
    /// The access policies on the MCP authorization server, with their ids and their rule's.
    pub(crate) policies: Vec<(Access, String, String)>,
}

/// An access policy on the MCP authorization server with its one rule.
pub(crate) struct Access {
    pub(crate) policy: &'static str,
    description: &'static str,
    priority: u32,
    clients: Vec<String>,
    pub(crate) rule: &'static str,
    grant_types: &'static [&'static str],
    scopes: Vec<&'static str>,
}

impl Access {
    /// OKTA.md §4 step 10: the AI agent gets MCP access tokens (jwt-bearer with an ID-JAG).
    fn mcp(agent_id: &str) -> Self {
        Self {
            policy: POLICY_NAME,
            description: "secure-agent: the AI agent may get MCP access tokens",
            priority: 1,
            clients: vec![agent_id.to_owned()],
            rule: RULE_NAME,
            grant_types: &[
                "client_credentials",
                "authorization_code",
                "urn:ietf:params:oauth:grant-type:device_code",
                "urn:ietf:params:oauth:grant-type:token-exchange",
                "urn:ietf:params:oauth:grant-type:jwt-bearer",
            ],
            scopes: SCOPES.iter().map(|(name, _)| *name).collect(),
        }
    }

    /// The todo0 web app's sign-in (authorization code) with the OIDC scopes it requests.
    fn todo0_sign_in(client_id: &str) -> Self {
        Self {
            policy: WEB_POLICY_NAME,
            description: "secure-agent: the todo0 web app signs people in here (its OKTA_ISSUER)",
            priority: 2,
            clients: vec![client_id.to_owned()],
            rule: WEB_RULE_NAME,
            grant_types: &["authorization_code"],
            scopes: WEB_SCOPES.to_vec(),
        }
    }
}

/// The resource in `existing` named `name`, one whose id is `recorded` first.
fn find_named<'v>(existing: &'v [Value], name: &str, recorded: &[String]) -> Option<&'v Value> {
    let named = || {
        existing
            .iter()
            .filter(move |v| str_at(v, "/name") == Some(name))
    };
    named()
        .find(|v| str_at(v, "/id").is_some_and(|id| recorded.iter().any(|r| r == id)))
        .or_else(|| named().next())
}

struct Run<'a> {
    client: OktaClient,
    state: State,
    out: &'a Path,
    plan: Plan,
    created: Vec<String>,
}

pub(crate) async fn run(args: BootstrapArgs) -> anyhow::Result<()> {
    let org = parse_org(&args.org)?;
    let out = &args.api.out;
    let audience = args
        .mcp_audience
        .clone()
        .unwrap_or_else(|| format!("http://localhost:{}/mcp", args.mcp_port));
    url::Url::parse(&audience)
        .with_context(|| format!("--mcp-audience {audience:?} is not a URL"))?;
    let state = match State::load(out)? {
        Some(state) => {
            state.check_org(out, &org)?;
            state
        }
        None => State::new(&devstack::okta_domain_for(&org)),
    };
    if let Some(recorded) = &state.mcp_audience
        && recorded != &audience
        && !state.mcp_auth_server_ids.is_empty()
    {
        bail!(
            "the setup in {} was made for the MCP audience {recorded}, not {audience}; pass \
             --mcp-audience {recorded}, or run `secure-agent okta rollback` first",
            State::path(out).display()
        );
    }
    let token = super::api_token()?;
    if !super::confirm(
        &format!("Create the secure-agent configuration in the Okta org {org}?"),
        args.api.yes,
    )? {
        bail!("nothing was changed");
    }
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let client = OktaClient::new(&org, token, args.api.polling())?;
    let plan = Plan {
        org: org.clone(),
        audience,
        agent_port: args.agent_port,
        todo_port: args.todo_port,
        mcp_port: args.mcp_port,
        login_port: args.login_port,
    };
    let mut run = Run {
        client,
        state,
        out,
        plan,
        created: Vec::new(),
    };
    println!(
        "Bootstrapping {org} (state: {})",
        State::path(out).display()
    );
    let outcome = run.steps().await.map_err(|e| {
        anyhow::anyhow!(
            "{e:#}\nWhat was done so far is recorded in {}; run the same command again to \
             continue.",
            State::path(out).display()
        )
    })?;
    let written = files::write_all(out, &run.plan, &outcome)?;
    files::write_report(out, &run.plan, &run.state, &outcome, &run.created)?;
    summary(&run, &written);
    Ok(())
}

fn summary(run: &Run<'_>, written: &Written) {
    if run.created.is_empty() && written.changed.is_empty() {
        println!("Nothing changed: the org and the files were already set up.");
    } else {
        println!("Created {} resource(s) in the org.", run.created.len());
        for file in &written.changed {
            println!("  wrote   {}", file.display());
        }
        for (file, backup) in &written.backups {
            println!(
                "  kept the earlier {} as {}",
                file.display(),
                backup.display()
            );
        }
    }
    println!(
        "Report: {}\nNext: `secure-agent okta validate --out {}` (add --login for a live exchange).",
        run.out.join(files::REPORT_FILE).display(),
        run.out.display()
    );
}

fn id_of(value: &Value, what: &str) -> anyhow::Result<String> {
    value
        .get("id")
        .and_then(Value::as_str)
        .map(str::to_owned)
        .with_context(|| format!("{what}: Okta's answer has no id"))
}

fn str_at<'v>(value: &'v Value, pointer: &str) -> Option<&'v str> {
    value.pointer(pointer).and_then(Value::as_str)
}

impl Run<'_> {
    fn save(&self) -> anyhow::Result<()> {
        self.state.save(self.out)
    }

    fn created(&mut self, what: String) {
        println!("  + {what}");
        self.created.push(what);
    }

    fn recreated(&self, what: &str, id: &str) {
        println!("  ! {what} {id} recorded in the state is gone from Okta: creating it again");
    }

    async fn steps(&mut self) -> anyhow::Result<Outcome> {
        // Read-only calls first: a wrong token stops the run before anything is created.
        let me = self
            .client
            .get("/api/v1/users/me", "reading the API token's user")
            .await?;
        let user_id = id_of(&me, "GET /api/v1/users/me")?;
        let user_login = str_at(&me, "/profile/login").unwrap_or(&user_id).to_owned();
        let org = self.client.get("/api/v1/org", "reading the org").await?;
        let org_id = id_of(&org, "GET /api/v1/org")?;
        self.state.org_id = Some(org_id.clone());
        self.state.user_id = Some(user_id.clone());
        self.state.mcp_audience = Some(self.plan.audience.clone());
        self.save()?;

        let as_id = self.authorization_server().await?;
        self.scopes(&as_id).await?;
        let agent0 = self.app("agent0").await?;
        let todo0 = self.app("todo0").await?;
        for (label, app) in [("agent0", &agent0.id), ("todo0", &todo0.id)] {
            self.assign(label, app, &user_id).await?;
        }
        let agent = self.agent(&agent0.id).await?;
        let agent_id = id_of(&agent, "the AI agent")?;
        self.owners(&org_id, &user_id, &agent_id).await?;
        let (kid, key_file) = self.key(&agent_id).await?;
        self.activate(&agent, &agent_id).await?;
        self.connection(&org_id, &as_id, &agent_id).await?;
        let mut policies = Vec::new();
        let mcp = Access::mcp(&agent_id);
        let policy_id = self.policy(&as_id, &mcp).await?;
        let rule_id = self.rule(&as_id, &policy_id, &mcp).await?;
        policies.push((mcp, policy_id, rule_id));
        let origin_ids = self.trusted_origins().await?;
        // Step 12 (ours): todo0's web app signs people in at this server (its OKTA_ISSUER), which
        // Okta allows only to a client of one of its policies with a rule covering every scope
        // the app requests. A policy of its own keeps the agent's rule as OKTA.md §4 has it.
        let web = Access::todo0_sign_in(&todo0.client_id);
        let policy_id = self.policy(&as_id, &web).await?;
        let rule_id = self.rule(&as_id, &policy_id, &web).await?;
        policies.push((web, policy_id, rule_id));
        Ok(Outcome {
            as_id,
            agent0,
            todo0,
            agent_id,
            kid,
            key_file,
            user_login,
            origin_ids,
            policies,
        })
    }

    /// Step 1.
    async fn authorization_server(&mut self) -> anyhow::Result<String> {
        const WHAT: &str = "the MCP authorization server";
        if let Some(id) = self.state.mcp_auth_server_ids.first().cloned() {
            let path = format!("/api/v1/authorizationServers/{id}");
            if self.client.find(&path, WHAT).await?.is_some() {
                return Ok(id);
            }
            self.recreated(WHAT, &id);
            self.state.mcp_auth_server_ids.retain(|i| i != &id);
        }
        let query = format!("/api/v1/authorizationServers?q={AS_NAME}");
        let found = self.client.list(&query, WHAT).await?.into_iter().find(|s| {
            str_at(s, "/name") == Some(AS_NAME)
                && s.get("audiences")
                    .and_then(Value::as_array)
                    .is_some_and(|a| a.iter().any(|x| x.as_str() == Some(&self.plan.audience)))
        });
        let id = match found {
            Some(server) => id_of(&server, WHAT)?,
            None => {
                let body = json!({
                    "name": AS_NAME,
                    "description": "secure-agent: issues access tokens for todo0's MCP server",
                    "audiences": [self.plan.audience],
                });
                let reply = self
                    .client
                    .post("/api/v1/authorizationServers", &body, WHAT)
                    .await?;
                let id = id_of(&reply.body, WHAT)?;
                self.created(format!("authorization server {AS_NAME} ({id})"));
                id
            }
        };
        self.state.mcp_auth_server_ids.insert(0, id.clone());
        self.save()?;
        Ok(id)
    }

    /// Step 2: the scopes the server does not have yet.
    async fn scopes(&mut self, as_id: &str) -> anyhow::Result<()> {
        let path = format!("/api/v1/authorizationServers/{as_id}/scopes");
        let existing = self.client.list(&path, "listing the MCP scopes").await?;
        for (name, description) in SCOPES {
            if existing.iter().any(|s| str_at(s, "/name") == Some(name)) {
                continue;
            }
            let body = json!({
                "name": name,
                "description": description,
                "displayName": name,
                "consent": "REQUIRED",
            });
            self.client
                .post(&path, &body, &format!("creating the scope {name}"))
                .await?;
            self.created(format!("scope {name}"));
        }
        Ok(())
    }

    fn app_ids(&mut self, label: &str) -> &mut Vec<String> {
        if label == "agent0" {
            &mut self.state.agent0_app_ids
        } else {
            &mut self.state.todo0_app_ids
        }
    }

    /// Step 3, one app.
    async fn app(&mut self, label: &str) -> anyhow::Result<App> {
        let what = format!("the {label} app");
        let mut found = None;
        if let Some(id) = self.app_ids(label).first().cloned() {
            match self
                .client
                .find(&format!("/api/v1/apps/{id}"), &what)
                .await?
            {
                Some(app) => found = Some(app),
                None => {
                    self.recreated(&what, &id);
                    self.app_ids(label).retain(|i| i != &id);
                }
            }
        }
        if found.is_none() {
            let query = format!("/api/v1/apps?q={label}");
            found = self
                .client
                .list(&query, &what)
                .await?
                .into_iter()
                .find(|a| {
                    str_at(a, "/label") == Some(label) && str_at(a, "/name") == Some("oidc_client")
                });
        }
        let port = if label == "agent0" {
            self.plan.agent_port
        } else {
            self.plan.todo_port
        };
        let base = format!("http://localhost:{port}");
        let mut redirects = vec![format!("{base}/callback")];
        if label == "agent0" {
            redirects.push(format!(
                "http://127.0.0.1:{}/callback",
                self.plan.login_port
            ));
        }
        let (app, secret) = match found {
            Some(app) => {
                let registered = app
                    .pointer("/settings/oauthClient/redirect_uris")
                    .and_then(Value::as_array);
                for uri in &redirects {
                    let has = registered.is_some_and(|r| r.iter().any(|u| u.as_str() == Some(uri)));
                    if !has {
                        println!(
                            "  ! the {label} app does not register the redirect URI {uri} (other \
                             ports than its first bootstrap?): add it in the Admin Console"
                        );
                    }
                }
                let secret = self.app_secret(&app, &what).await?;
                (app, secret)
            }
            None => {
                let body = json!({
                    "name": "oidc_client",
                    "label": label,
                    "signOnMode": "OPENID_CONNECT",
                    "credentials": {"oauthClient": {"token_endpoint_auth_method": "client_secret_basic"}},
                    "settings": {"oauthClient": {
                        "client_uri": base,
                        "redirect_uris": redirects,
                        "post_logout_redirect_uris": [format!("{base}/")],
                        "response_types": ["code"],
                        // agent0 and todo0 ask for offline_access to keep a session past the
                        // ID token's hour: Okta issues refresh tokens only to apps allowed the
                        // refresh_token grant (the sample's bootstrap allows authorization_code
                        // only, and its sessions end with the ID token).
                        "grant_types": ["authorization_code", "refresh_token"],
                        "application_type": "web",
                        "consent_method": "REQUIRED",
                    }},
                });
                let reply = self.client.post("/api/v1/apps", &body, &what).await?;
                let id = id_of(&reply.body, &what)?;
                self.created(format!("app {label} ({id})"));
                let secret = str_at(&reply.body, "/credentials/oauthClient/client_secret")
                    .map(|s| SecretString::from(s.to_owned()));
                (reply.body, secret)
            }
        };
        let id = id_of(&app, &what)?;
        let client_id = str_at(&app, "/credentials/oauthClient/client_id")
            .unwrap_or(&id)
            .to_owned();
        let ids = self.app_ids(label);
        if !ids.contains(&id) {
            ids.insert(0, id.clone());
        }
        self.save()?;
        Ok(App {
            id,
            client_id,
            secret,
        })
    }

    /// An existing app's secret: in its own answer, else its first active secret (`None`: the
    /// env file's is kept).
    async fn app_secret(&self, app: &Value, what: &str) -> anyhow::Result<Option<SecretString>> {
        if let Some(secret) = str_at(app, "/credentials/oauthClient/client_secret") {
            return Ok(Some(SecretString::from(secret.to_owned())));
        }
        let id = id_of(app, what)?;
        let path = format!("/api/v1/apps/{id}/credentials/secrets");
        let secrets = match self.client.list(&path, what).await {
            Ok(secrets) => secrets,
            Err(e) if e.is_not_found() => Vec::new(),
            Err(e) => return Err(e.into()),
        };
        Ok(secrets
            .iter()
            .find(|s| str_at(s, "/status").is_none_or(|s| s == "ACTIVE"))
            .and_then(|s| str_at(s, "/client_secret"))
            .map(|s| SecretString::from(s.to_owned())))
    }

    /// Step 4: the API token's user assigned to an app.
    async fn assign(&mut self, label: &str, app_id: &str, user_id: &str) -> anyhow::Result<()> {
        let what = format!("assigning the user to {label}");
        let path = format!("/api/v1/apps/{app_id}/users/{user_id}");
        if self.client.find(&path, &what).await?.is_none() {
            let body = json!({"id": user_id, "scope": "USER"});
            self.client
                .post(&format!("/api/v1/apps/{app_id}/users"), &body, &what)
                .await?;
            self.created(format!("assignment of user {user_id} to {label}"));
        }
        let ids = if label == "agent0" {
            &mut self.state.agent0_app_user_ids
        } else {
            &mut self.state.todo0_app_user_ids
        };
        if !ids.iter().any(|i| i == user_id) {
            ids.push(user_id.to_owned());
        }
        self.save()
    }

    /// Step 10 (and our step 12), one access policy: found by its name (a recorded one first),
    /// else created. A found policy that does not name this run's client (the app or agent was
    /// created again) is reported with the fix: Okta would refuse that client here.
    async fn policy(&mut self, as_id: &str, access: &Access) -> anyhow::Result<String> {
        let what = format!("the access policy {}", access.policy);
        let path = format!("/api/v1/authorizationServers/{as_id}/policies");
        let existing = self.client.list(&path, &what).await?;
        let gone: Vec<String> = self
            .state
            .mcp_policy_ids
            .iter()
            .filter(|id| {
                !existing
                    .iter()
                    .any(|p| str_at(p, "/id") == Some(id.as_str()))
            })
            .cloned()
            .collect();
        for id in &gone {
            self.recreated("an access policy", id);
            self.state.mcp_policy_ids.retain(|i| i != id);
        }
        let recorded = &self.state.mcp_policy_ids;
        let found = find_named(&existing, access.policy, recorded);
        let id = match found {
            Some(policy) => {
                let id = id_of(policy, &what)?;
                let include = policy
                    .pointer("/conditions/clients/include")
                    .and_then(Value::as_array);
                for client in &access.clients {
                    let has = include.is_some_and(|c| c.iter().any(|x| x.as_str() == Some(client)));
                    if !has {
                        println!(
                            "  ! the access policy {} ({id}) does not include the client {client} \
                             (created again since?): add it under Security > API > \
                             Authorization Servers > {AS_NAME} > Access Policies",
                            access.policy
                        );
                    }
                }
                id
            }
            None => {
                let body = json!({
                    "name": access.policy,
                    "description": access.description,
                    "priority": access.priority,
                    "type": "OAUTH_AUTHORIZATION_POLICY",
                    "conditions": {"clients": {"include": access.clients}},
                });
                let reply = self.client.post(&path, &body, &what).await?;
                let id = id_of(&reply.body, &what)?;
                self.created(format!("policy {} ({id})", access.policy));
                id
            }
        };
        if !self.state.mcp_policy_ids.contains(&id) {
            self.state.mcp_policy_ids.push(id.clone());
        }
        self.save()?;
        Ok(id)
    }

    /// Step 10 (and 12), the policy's rule.
    async fn rule(
        &mut self,
        as_id: &str,
        policy_id: &str,
        access: &Access,
    ) -> anyhow::Result<String> {
        let what = format!(
            "the rule {} of the access policy {}",
            access.rule, access.policy
        );
        let path = format!("/api/v1/authorizationServers/{as_id}/policies/{policy_id}/rules");
        let existing = self.client.list(&path, &what).await?;
        let found = find_named(&existing, access.rule, &self.state.mcp_policy_rule_ids);
        let id = match found {
            Some(rule) => id_of(rule, &what)?,
            None => {
                let body = json!({
                    "name": access.rule,
                    "priority": 1,
                    "type": "RESOURCE_ACCESS",
                    "conditions": {
                        "grantTypes": {"include": access.grant_types},
                        "people": {"groups": {"include": ["EVERYONE"]}},
                        "scopes": {"include": access.scopes},
                    },
                    "actions": {"token": {
                        "accessTokenLifetimeMinutes": 60,
                        "refreshTokenLifetimeMinutes": 129600,
                        "refreshTokenWindowMinutes": 10080,
                    }},
                });
                let reply = self.client.post(&path, &body, &what).await?;
                let id = id_of(&reply.body, &what)?;
                self.created(format!("policy rule {} ({id})", access.rule));
                id
            }
        };
        if !self.state.mcp_policy_rule_ids.contains(&id) {
            self.state.mcp_policy_rule_ids.push(id.clone());
        }
        self.save()?;
        Ok(id)
    }

    /// Step 11: agent0's and the MCP server's origins; an existing entry for the same origin
    /// is used as it is (and left alone by rollback unless it carries the name this tool gives).
    async fn trusted_origins(&mut self) -> anyhow::Result<Vec<(String, String)>> {
        const WHAT: &str = "the trusted origins";
        let existing = self.client.list("/api/v1/trustedOrigins", WHAT).await?;
        let mut ids = Vec::new();
        for (label, origin) in [
            ("agent0", self.plan.agent_origin()),
            ("todo0 MCP", self.plan.mcp_origin()),
        ] {
            let name = format!("secure-agent {label} ({origin})");
            let found = existing
                .iter()
                .find(|o| str_at(o, "/origin").is_some_and(|o| o.trim_end_matches('/') == origin));
            let id = match found {
                Some(entry) => {
                    let id = id_of(entry, WHAT)?;
                    // Ours (by the name this tool gives) though unrecorded: its answer was lost.
                    let is_ours = str_at(entry, "/name") == Some(name.as_str());
                    if is_ours && !self.state.trusted_origin_ids.contains(&id) {
                        self.state.trusted_origin_names.retain(|n| n != &name);
                        self.state.trusted_origin_names.push(name.clone());
                        self.state.trusted_origin_ids.push(id.clone());
                        self.save()?;
                    }
                    id
                }
                None => {
                    if let Some(at) = self
                        .state
                        .trusted_origin_names
                        .iter()
                        .position(|n| n == &name)
                    {
                        let gone = self
                            .state
                            .trusted_origin_ids
                            .get(at)
                            .cloned()
                            .unwrap_or_default();
                        self.recreated("the trusted origin", &gone);
                        self.state.trusted_origin_names.remove(at);
                        if at < self.state.trusted_origin_ids.len() {
                            self.state.trusted_origin_ids.remove(at);
                        }
                    }
                    let body = json!({
                        "name": name,
                        "origin": origin,
                        "scopes": [{"type": "CORS"}, {"type": "REDIRECT"}],
                    });
                    let reply = self
                        .client
                        .post("/api/v1/trustedOrigins", &body, WHAT)
                        .await?;
                    let id = id_of(&reply.body, WHAT)?;
                    self.created(format!("trusted origin {origin} ({id})"));
                    self.state.trusted_origin_names.push(name);
                    self.state.trusted_origin_ids.push(id.clone());
                    self.save()?;
                    id
                }
            };
            ids.push((origin, id));
        }
        Ok(ids)
    }
}

pub(crate) fn agent_orn(org_id: &str, agent_id: &str) -> String {
    format!("orn:okta:directory:{org_id}:workload-principals:ai-agents:{agent_id}")
}
