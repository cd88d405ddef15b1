//! `bench agent --github`: github0, the offline GitHub sandbox, in the bench's process as `up`
//! runs it (the `github0.toml` idp0's development configuration writes: idp0's OAuth app, its
//! secret and callback), with the bench people as its people (same logins and password as at
//! idp0), and each person's one consent walked over HTTP as a person walks it: agent0's
//! `POST /api/oauth-sts/exchange` answers `interaction_required`, the person opens the link
//! (idp0's interaction page, where the SSO session of their login is reused, Approve; github0's
//! sign-in and consent pages; idp0's `/oauth2/v1/sts/callback`), and the same exchange then
//! succeeds, so agent0 holds the person's ISV token before anything is measured.

use std::time::Duration;

use anyhow::{Context, bail};
use github0::config::UserEntry;
use secrecy::SecretString;
use serde_json::{Value, json};

use super::Person;

/// github0's port, bound before idp0's configuration is written (its URLs name it).
pub(super) struct Sandbox {
    listener: tokio::net::TcpListener,
    /// github0's base URL, no trailing slash.
    pub(super) base: String,
}

impl Sandbox {
    pub(super) async fn bind() -> anyhow::Result<Self> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let base = format!("http://{}", listener.local_addr()?);
        Ok(Self { listener, base })
    }

    /// Serves github0 from the `github0.toml` in `dir` (written with agent0's env files), with
    /// `logins` as its people, all with `password`. Its rate limit is lifted: a closed loop makes
    /// far more than GitHub's 5,000 requests per token and hour, and a throttled turn is not
    /// what is measured.
    pub(super) async fn start(
        self,
        dir: &std::path::Path,
        logins: Vec<String>,
        password: &str,
        clock: std::sync::Arc<dyn protocol::Clock>,
    ) -> anyhow::Result<()> {
        let path = dir.join(devstack::GITHUB0_CONFIG);
        let mut file = github0::ConfigFile::load(&path)?;
        // The bench people only: not the demo people of `demo-users.txt`.
        file.users_file = None;
        file.users = logins
            .into_iter()
            .map(|login| UserEntry {
                login,
                name: None,
                password: SecretString::from(password.to_owned()),
            })
            .collect();
        file.rate_limit_per_hour = Some(u32::MAX);
        let mut config = github0::Config::new(url::Url::parse(&self.base)?, dir.join("github0.db"));
        file.apply(&mut config, dir)?;
        let sandbox = github0::Github0::open(config, clock).await?;
        let listener = self.listener;
        tokio::spawn(
            async move { github0::serve(listener, &sandbox, std::future::pending()).await },
        );
        Ok(())
    }
}

/// Makes sure agent0 at `agent_base` holds `person`'s ISV token for `resource`: the sample's
/// exchange endpoint, and when it answers `interaction_required`, the consent walked and the
/// exchange repeated until it succeeds. Whether a walk was needed (no consent yet at idp0).
pub(super) async fn consent(
    agent_base: &str,
    person: &Person,
    username: &str,
    password: &str,
    resource: &str,
) -> anyhow::Result<bool> {
    let mut walked = false;
    for _ in 0..30 {
        let answer: Value = person
            .http
            .post(format!("{agent_base}/api/oauth-sts/exchange"))
            .header("x-csrf-token", &person.csrf)
            .json(&json!({ "resource": resource }))
            .send()
            .await?
            .json()
            .await?;
        match answer["status"].as_str() {
            Some("success") => return Ok(walked),
            Some("interaction_required") if !walked => {
                let uri = answer["interaction_uri"]
                    .as_str()
                    .context("interaction_required without an interaction_uri")?;
                walk(person, uri, username, password).await?;
                walked = true;
            }
            // The consent is done but idp0 asks clients to poll no faster than its interval.
            Some("interaction_pending") => tokio::time::sleep(Duration::from_secs(1)).await,
            _ => bail!("the brokered exchange for {username} failed: {answer}"),
        }
    }
    bail!("the brokered exchange for {username} did not succeed after the consent")
}

/// Walks `interaction_uri` as `username`: idp0's interaction page (its login form first if the
/// person has no SSO session there), Approve; github0's sign-in and Authorize pages as they
/// come; the redirect to idp0's callback, which must say the app is connected.
async fn walk(
    person: &Person,
    interaction_uri: &str,
    username: &str,
    password: &str,
) -> anyhow::Result<()> {
    let http = &person.http;
    let mut url = url::Url::parse(interaction_uri)?;
    let mut response = http.get(url.clone()).send().await?;
    for _ in 0..20 {
        if response.status().is_redirection() {
            let location = response
                .headers()
                .get(reqwest::header::LOCATION)
                .context("a redirect without a Location")?
                .to_str()?;
            url = url.join(location)?;
            response = http.get(url.clone()).send().await?;
            continue;
        }
        let status = response.status();
        let html = response.text().await?;
        if !status.is_success() {
            bail!("consent walk of {username}: {url} answered {status}: {html}");
        }
        let mut form = devstack::login_form::hidden_fields(&html);
        let has = |name: &str| form.iter().any(|(k, _)| k == name);
        if has("authenticity_token") {
            // github0's sign-in page.
            form.push(("login".into(), username.into()));
            form.push(("password".into(), password.into()));
        } else if has("authorize_request") {
            // github0's consent page: Authorize.
            form.push(("decision".into(), "allow".into()));
        } else if html.contains("name=\"decision\"") {
            // idp0's interaction page: which agent wants which app; Approve.
            form.push(("decision".into(), "approve".into()));
        } else if html.contains("name=\"password\"") {
            // idp0's login form (no SSO session).
            form.push(("username".into(), username.into()));
            form.push(("password".into(), password.into()));
        } else if url.path().starts_with("/oauth2/v1/sts/callback") && html.contains("Connected") {
            return Ok(());
        } else {
            bail!("consent walk of {username}: unexpected page at {url}: {html}");
        }
        let action = devstack::login_form::form_action(url.as_str(), &html)?;
        response = http.post(action.clone()).form(&form).send().await?;
        url = action;
    }
    bail!("the consent walk of {username} did not end")
}
