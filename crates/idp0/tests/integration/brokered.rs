//! Brokered consent ("OAuth STS", OKTA.md §1) through real HTTP: the agent's exchange at the org
//! AS, the person's walk through idp0's interaction page, a stand-in ISV's authorize and token
//! endpoints and idp0's callback, then vault hits, silent refresh, revocation, Connected apps, and
//! every refusal on the way (draft-parecki-oauth-jwt-grant-interaction-response's polling
//! errors included). idp0 runs on a fixed clock the test moves.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use idp0::config::{BrokeredConnectionEntry, BrokeredKind, ConfigFile};
use protocol::assertion::ClientAssertionSigner;
use protocol::clock::FixedClock;
use reqwest::StatusCode;
use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;
use testkit::{Browser, IdpHandle, form_action, hidden_fields};

use super::brokered_isv::{ISV_CLIENT_ID, ISV_SECRET, Isv};

/// The connection's resource as configured (with a trailing slash) and as stored and sent.
const CONFIGURED: &str = "https://api.github.example/";
const RESOURCE: &str = "https://api.github.example";
const STS: &str = "urn:okta:params:oauth:token-type:oauth-sts";

pub struct Setup {
    pub idp: IdpHandle,
    pub isv: Isv,
    pub clock: Arc<FixedClock>,
    _dir: tempfile::TempDir,
}

/// A connection to the stand-in ISV's one OAuth app, with RFC 7009 revocation.
fn connection(
    isv: &Isv,
    kind: BrokeredKind,
    name: &str,
    resource: &str,
) -> BrokeredConnectionEntry {
    BrokeredConnectionEntry {
        kind,
        name: name.into(),
        resource: resource.into(),
        authorize_url: format!("{}/authorize", isv.base),
        token_url: format!("{}/token", isv.base),
        revocation_url: Some(format!("{}/revoke", isv.base)),
        revocation: Default::default(),
        client_id: ISV_CLIENT_ID.into(),
        client_secret: Some(ISV_SECRET.into()),
        client_secret_env: None,
        scopes: vec!["repo".into(), "read:user".into()],
    }
}

pub async fn setup() -> Setup {
    setup_with(|isv| {
        vec![connection(
            isv,
            BrokeredKind::Application,
            "Sandbox Git",
            CONFIGURED,
        )]
    })
    .await
}

/// idp0 with the agent's brokered connections `connections(isv)`.
pub async fn setup_with(connections: impl FnOnce(&Isv) -> Vec<BrokeredConnectionEntry>) -> Setup {
    let isv = Isv::start().await;
    let dir = tempfile::tempdir().unwrap();
    devstack::ensure(dir.path(), None).unwrap();
    let path = dir.path().join(devstack::CONFIG_FILE);
    let mut file: ConfigFile = toml::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    file.agents[0]
        .brokered_connections
        .extend(connections(&isv));
    std::fs::write(&path, toml::to_string(&file).unwrap()).unwrap();
    let clock = FixedClock::at(protocol::clock::system().now());
    let idp = IdpHandle::start_in(dir.path(), clock.clone())
        .await
        .unwrap();
    Setup {
        idp,
        isv,
        clock,
        _dir: dir,
    }
}

pub struct Answer {
    pub status: StatusCode,
    pub cache_control: Option<String>,
    pub body: Value,
}

impl Answer {
    pub fn error(&self) -> &str {
        self.body["error"].as_str().unwrap_or("")
    }
    pub fn interaction_uri(&self) -> String {
        self.body["interaction_uri"].as_str().unwrap().to_owned()
    }
}

impl Setup {
    fn signer(&self) -> ClientAssertionSigner {
        ClientAssertionSigner::new(devstack::AGENT_ID, self.idp.agent_key(), self.clock.clone())
    }

    /// The agent's brokered exchange at `endpoint` (default: the org token endpoint).
    pub async fn exchange_at(
        &self,
        endpoint: &str,
        id_token: &SecretString,
        resource: &str,
    ) -> Answer {
        let mut form: Vec<(&str, String)> = vec![
            (
                "grant_type",
                "urn:ietf:params:oauth:grant-type:token-exchange".into(),
            ),
            ("requested_token_type", STS.into()),
            ("subject_token", id_token.expose_secret().to_owned()),
            (
                "subject_token_type",
                "urn:ietf:params:oauth:token-type:id_token".into(),
            ),
            ("resource", resource.into()),
        ];
        for (k, v) in self.signer().form_fields(endpoint).unwrap() {
            form.push((k, v.expose_secret().to_owned()));
        }
        let response = reqwest::Client::new()
            .post(endpoint)
            .form(&form)
            .send()
            .await
            .unwrap();
        Answer {
            status: response.status(),
            cache_control: response
                .headers()
                .get("cache-control")
                .map(|v| v.to_str().unwrap().to_owned()),
            body: response.json().await.unwrap(),
        }
    }

    pub async fn exchange(&self, id_token: &SecretString) -> Answer {
        self.exchange_for(id_token, RESOURCE).await
    }

    /// The brokered exchange at the org token endpoint for `resource`.
    pub async fn exchange_for(&self, id_token: &SecretString, resource: &str) -> Answer {
        self.exchange_at(&self.idp.org_token_endpoint(), id_token, resource)
            .await
    }

    /// `POST /oauth2/v1/revoke` with the oauth_sts hint, as the agent.
    pub async fn revoke(&self, token: &str) -> StatusCode {
        let endpoint = format!("{}/oauth2/v1/revoke", self.idp.issuer);
        let mut form: Vec<(&str, String)> = vec![
            ("token", token.into()),
            ("token_type_hint", "oauth_sts".into()),
        ];
        for (k, v) in self.signer().form_fields(&endpoint).unwrap() {
            form.push((k, v.expose_secret().to_owned()));
        }
        reqwest::Client::new()
            .post(&endpoint)
            .form(&form)
            .send()
            .await
            .unwrap()
            .status()
    }

    /// Logs `user` in (a browser with an SSO session) and returns the ID token.
    pub async fn login(&self, browser: &Browser, user: &str) -> SecretString {
        self.idp
            .login(browser, user)
            .await
            .unwrap()
            .id_token
            .unwrap()
    }

    /// Opens `uri` in `browser` (signing in as `user` if the login form appears) and answers the
    /// consent question; follows an approval through the ISV to idp0's callback. Returns the
    /// last response (its status and text).
    pub async fn consent(
        &self,
        browser: &Browser,
        uri: &str,
        user: &str,
        approve: bool,
    ) -> (StatusCode, String) {
        let (status, html) = self.open(browser, uri, user).await;
        if status != StatusCode::OK || !html.contains("name=\"decision\"") {
            return (status, html);
        }
        let action = form_action(uri, &html).unwrap();
        let mut fields = hidden_fields(&html);
        let decision = if approve { "approve" } else { "deny" };
        fields.push(("decision".into(), decision.into()));
        let mut response = browser
            .http
            .post(action)
            .form(&fields)
            .send()
            .await
            .unwrap();
        // Approve: 303 to the ISV, which redirects straight back to idp0's callback.
        while response.status().is_redirection() {
            let next = response.headers()["location"].to_str().unwrap().to_owned();
            response = browser.http.get(&next).send().await.unwrap();
        }
        (response.status(), response.text().await.unwrap())
    }

    /// Opens an interaction page, signing in through the form when it appears.
    pub async fn open(&self, browser: &Browser, uri: &str, user: &str) -> (StatusCode, String) {
        let response = browser.http.get(uri).send().await.unwrap();
        let status = response.status();
        let html = response.text().await.unwrap();
        if !html.contains("name=\"password\"") {
            return (status, html);
        }
        let back = browser
            .submit_login(uri, &html, user, &self.idp.password(user))
            .await
            .unwrap();
        assert_eq!(
            back.status(),
            StatusCode::SEE_OTHER,
            "back to the page after signing in"
        );
        let location = back.headers()["location"].to_str().unwrap().to_owned();
        let response = browser
            .http
            .get(url::Url::parse(uri).unwrap().join(&location).unwrap())
            .send()
            .await
            .unwrap();
        (response.status(), response.text().await.unwrap())
    }

    /// Consents for `user` in `browser` from scratch; returns the first vault hit.
    pub async fn consented(
        &self,
        browser: &Browser,
        id_token: &SecretString,
        user: &str,
    ) -> Answer {
        self.consented_to(browser, id_token, user, RESOURCE).await
    }

    /// The same for the connection `resource`.
    pub async fn consented_to(
        &self,
        browser: &Browser,
        id_token: &SecretString,
        user: &str,
        resource: &str,
    ) -> Answer {
        let first = self.exchange_for(id_token, resource).await;
        assert_eq!(first.error(), "interaction_required", "{:?}", first.body);
        let (status, html) = self
            .consent(browser, &first.interaction_uri(), user, true)
            .await;
        assert_eq!(status, StatusCode::OK, "{html}");
        assert!(html.contains("Connected"), "{html}");
        let hit = self.exchange_for(id_token, resource).await;
        assert_eq!(hit.status, StatusCode::OK, "{:?}", hit.body);
        hit
    }

    /// Removes the consent to `resource` on the Connected apps page of the person signed in to
    /// `browser` (the agent's); returns the page that answers.
    pub async fn remove_connected_app(&self, browser: &Browser, resource: &str) -> String {
        let page_url = format!("{}/connected-apps", self.idp.issuer);
        let html = browser
            .http
            .get(&page_url)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(html.contains(resource), "{html}");
        let csrf = hidden_fields(&html)
            .into_iter()
            .find(|(k, _)| k == "csrf")
            .unwrap()
            .1;
        let response = browser
            .http
            .post(format!("{}/connected-apps/remove", self.idp.issuer))
            .form(&[
                ("csrf", csrf.as_str()),
                ("agent", devstack::AGENT_ID),
                ("resource", resource),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        response.text().await.unwrap()
    }

    /// Whether any SQLite file of idp0 contains `needle`.
    pub fn database_contains(&self, needle: &str) -> bool {
        std::fs::read_dir(&self.idp.data_dir)
            .unwrap()
            .filter_map(Result::ok)
            .filter(|e| {
                e.file_name()
                    .to_string_lossy()
                    .starts_with(idp0::DATABASE_FILE)
            })
            .any(|e| {
                let bytes = std::fs::read(e.path()).unwrap_or_default();
                bytes.windows(needle.len()).any(|w| w == needle.as_bytes())
            })
    }
}

#[tokio::test]
async fn alice_consents_once_and_the_exchange_then_answers_from_the_vault() {
    let s = setup().await;
    let alice = Browser::new();
    let alice_token = s.login(&alice, "alice").await;

    // No consent yet: interaction_required in Okta's and the draft's shape.
    let first = s.exchange(&alice_token).await;
    assert_eq!(first.status, StatusCode::BAD_REQUEST);
    assert_eq!(first.cache_control.as_deref(), Some("no-store"));
    assert_eq!(first.error(), "interaction_required");
    assert_eq!(
        first.body["error_description"],
        "The user must authenticate with the authorization server for the request to proceed"
    );
    assert_eq!(first.body["interval"], 5);
    assert_eq!(first.body["expires_in"], 600);
    let uri = first.interaction_uri();
    assert!(uri.starts_with(&format!("{}/oauth2/v1/sts/interaction/", s.idp.issuer)));

    // Polling: too soon is slow_down; after the interval, interaction_pending.
    assert_eq!(s.exchange(&alice_token).await.error(), "slow_down");
    s.clock.advance(5);
    assert_eq!(
        s.exchange(&alice_token).await.error(),
        "interaction_pending"
    );

    // Bob opening alice's link is refused, and nothing changes.
    let bob = Browser::new();
    let bob_token = s.login(&bob, "bob").await;
    let (status, html) = s.consent(&bob, &uri, "bob", true).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(html.contains("another person"), "{html}");
    assert!(s.isv.state.authorize_params.lock().unwrap().is_empty());

    // Alice in a browser without an idp0 session: the login form, back to the page, approve,
    // the ISV, the callback.
    let fresh = Browser::new();
    let (status, html) = s.consent(&fresh, &uri, "alice", true).await;
    assert_eq!(status, StatusCode::OK, "{html}");
    assert!(
        html.contains("Connected — you can close this window"),
        "{html}"
    );
    assert!(html.contains("/oauth2/v1/sts/close.js"));
    let sent = s.isv.state.authorize_params.lock().unwrap()[0].clone();
    assert_eq!(sent["client_id"], ISV_CLIENT_ID);
    assert_eq!(
        sent["redirect_uri"],
        format!("{}/oauth2/v1/sts/callback", s.idp.issuer)
    );
    assert_eq!(sent["scope"], "repo read:user");
    assert_eq!(sent["code_challenge_method"], "S256");

    // The callback replayed: refused, nothing changes.
    let replay = format!(
        "{}/oauth2/v1/sts/callback?code=isv-code-0&state={}",
        s.idp.issuer, sent["state"]
    );
    let response = fresh.http.get(&replay).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    // The used link: a clear page.
    let (status, html) = s.open(&fresh, &uri, "alice").await;
    assert_eq!(status, StatusCode::GONE);
    assert!(html.contains("already used"), "{html}");

    // The same request again: a vault hit.
    let hit = s.exchange(&alice_token).await;
    assert_eq!(hit.status, StatusCode::OK, "{:?}", hit.body);
    assert_eq!(hit.cache_control.as_deref(), Some("no-store"));
    assert_eq!(hit.body["issued_token_type"], STS);
    assert_eq!(hit.body["token_type"], "Bearer");
    assert_eq!(hit.body["scope"], "repo read:user");
    assert_eq!(hit.body["expires_in"], 3600);
    let token = hit.body["access_token"].as_str().unwrap().to_owned();
    assert!(token.starts_with("isv-at-"));
    assert_eq!(s.exchange(&alice_token).await.body["access_token"], token);

    // Bob never gets alice's consent.
    assert_eq!(s.exchange(&bob_token).await.error(), "interaction_required");

    // Nothing in the database file is a token in the clear (what is stored in the clear is
    // found, so the search does read the file).
    assert!(
        s.database_contains("repo read:user"),
        "the grep reads the database"
    );
    assert!(!s.database_contains("-plaintext"), "a token in the clear");
    assert!(!s.database_contains(ISV_SECRET));
}

#[tokio::test]
async fn an_expired_token_is_refreshed_silently_revocation_keeps_the_refresh_token_and_a_refused_refresh_asks_again()
 {
    let s = setup().await;
    let alice = Browser::new();
    let id_token = s.login(&alice, "alice").await;
    let first = s.consented(&alice, &id_token, "alice").await;
    let first_token = first.body["access_token"].as_str().unwrap().to_owned();

    // Expired: refreshed at the ISV, no new consent — once, however many ask at the same time
    // (the stand-in rotates refresh tokens, as GitHub does).
    s.clock.advance(3600);
    s.isv.state.refresh_delay_ms.store(300, Ordering::SeqCst);
    let (refreshed, b, c, d) = tokio::join!(
        s.exchange(&id_token),
        s.exchange(&id_token),
        s.exchange(&id_token),
        s.exchange(&id_token)
    );
    assert_eq!(refreshed.status, StatusCode::OK, "{:?}", refreshed.body);
    let second = refreshed.body["access_token"].as_str().unwrap().to_owned();
    for other in [b, c, d] {
        assert_eq!(
            other.body["access_token"],
            second.as_str(),
            "{:?}",
            other.body
        );
    }
    assert_ne!(second, first_token);
    assert_eq!(s.isv.state.refreshes.load(Ordering::SeqCst), 1);
    s.isv.state.refresh_delay_ms.store(0, Ordering::SeqCst);

    // Revocation with the oauth_sts hint drops only the cached access token.
    assert_eq!(s.revoke(&second).await, StatusCode::OK);
    assert_eq!(s.revoke("unknown-token").await, StatusCode::OK);
    let after = s.exchange(&id_token).await;
    assert_eq!(after.status, StatusCode::OK, "{:?}", after.body);
    assert_ne!(after.body["access_token"], second.as_str());
    assert_eq!(s.isv.state.refreshes.load(Ordering::SeqCst), 2);

    // The ISV down: 503 temporarily_unavailable, and the consent stays.
    let third = after.body["access_token"].as_str().unwrap().to_owned();
    assert_eq!(s.revoke(&third).await, StatusCode::OK);
    s.isv.state.fail_token.store(true, Ordering::SeqCst);
    let down = s.exchange(&id_token).await;
    assert_eq!(
        down.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{:?}",
        down.body
    );
    assert_eq!(down.error(), "temporarily_unavailable");
    s.isv.state.fail_token.store(false, Ordering::SeqCst);

    // A refused refresh (GitHub's 200 {"error":…}): the entry goes, consent is asked again.
    s.isv.state.refuse_refresh.store(true, Ordering::SeqCst);
    assert_eq!(s.exchange(&id_token).await.error(), "interaction_required");
    assert!(!s.database_contains("-plaintext"));
}

#[tokio::test]
async fn denial_at_idp0_or_at_the_app_and_expiry_are_reported_once_then_a_new_link_is_given() {
    let s = setup().await;
    let alice = Browser::new();
    let id_token = s.login(&alice, "alice").await;

    // Denied at idp0's page.
    let uri = s.exchange(&id_token).await.interaction_uri();
    let (status, html) = s.consent(&alice, &uri, "alice", false).await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("did not let"), "{html}");
    assert!(s.isv.state.authorize_params.lock().unwrap().is_empty());
    assert_eq!(s.exchange(&id_token).await.error(), "access_denied");
    let again = s.exchange(&id_token).await;
    assert_eq!(again.error(), "interaction_required");
    assert_ne!(again.interaction_uri(), uri);

    // Denied at the app.
    s.isv.state.deny.store(true, Ordering::SeqCst);
    let (status, html) = s
        .consent(&alice, &again.interaction_uri(), "alice", true)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("did not grant access"), "{html}");
    assert_eq!(s.exchange(&id_token).await.error(), "access_denied");
    s.isv.state.deny.store(false, Ordering::SeqCst);

    // Expired: the link is refused, the poll says expired_token, then a new link.
    let uri = s.exchange(&id_token).await.interaction_uri();
    s.clock.advance(601);
    let (status, html) = s.open(&alice, &uri, "alice").await;
    assert_eq!(status, StatusCode::GONE);
    assert!(html.contains("expired"), "{html}");
    assert_eq!(s.exchange(&id_token).await.error(), "expired_token");
    assert_eq!(s.exchange(&id_token).await.error(), "interaction_required");

    // A made-up link and a foreign state: clear pages.
    let (status, _) = s
        .open(
            &alice,
            &format!("{}/oauth2/v1/sts/interaction/nope", s.idp.issuer),
            "alice",
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let foreign = format!(
        "{}/oauth2/v1/sts/callback?code=x&state=forged",
        s.idp.issuer
    );
    let response = alice.http.get(&foreign).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    // The callback's pages may run idp0's own close.js, and only that.
    assert_eq!(
        response.headers()["content-security-policy"],
        idp0::html::CSP_SELF_SCRIPT
    );
    let script = alice
        .http
        .get(format!("{}/oauth2/v1/sts/close.js", s.idp.issuer))
        .send()
        .await
        .unwrap();
    assert!(script.text().await.unwrap().contains("window.close()"));
    assert!(!s.database_contains("-plaintext"));
}

#[tokio::test]
async fn an_app_down_at_the_callback_stores_nothing() {
    let s = setup().await;
    let alice = Browser::new();
    let id_token = s.login(&alice, "alice").await;
    let uri = s.exchange(&id_token).await.interaction_uri();
    s.isv.state.fail_token.store(true, Ordering::SeqCst);
    let (status, html) = s.consent(&alice, &uri, "alice", true).await;
    assert_eq!(status, StatusCode::BAD_GATEWAY);
    assert!(html.contains("Nothing was stored"), "{html}");
    assert!(!html.contains("isv-code"), "no code on the page");
    s.isv.state.fail_token.store(false, Ordering::SeqCst);
    assert_eq!(s.exchange(&id_token).await.error(), "interaction_required");
}

#[tokio::test]
async fn removing_a_connected_app_revokes_it_at_the_app_and_asks_again() {
    let s = setup().await;
    let alice = Browser::new();
    let id_token = s.login(&alice, "alice").await;
    let hit = s.consented(&alice, &id_token, "alice").await;
    let token = hit.body["access_token"].as_str().unwrap().to_owned();

    let page_url = format!("{}/connected-apps", s.idp.issuer);
    let html = alice
        .http
        .get(&page_url)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        html.contains("Sandbox Git") && html.contains("repo read:user"),
        "{html}"
    );
    assert!(!html.contains("isv-at-"), "no token on the page");
    let action = form_action(&page_url, &html).unwrap();
    let response = alice
        .http
        .post(action)
        .form(&hidden_fields(&html))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let html = response.text().await.unwrap();
    assert!(
        html.contains("Removed") && html.contains("No app is connected"),
        "{html}"
    );
    let revoked = s.isv.revoked();
    assert!(revoked.contains(&token), "access token revoked at the app");
    assert!(
        revoked.iter().any(|t| t.starts_with("isv-rt-")),
        "refresh token too"
    );
    assert_eq!(s.exchange(&id_token).await.error(), "interaction_required");

    // Without a session, the page asks to sign in.
    let html = Browser::new()
        .http
        .get(&page_url)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(html.contains("name=\"password\""));
}

/// A second connection through the same ISV app (as GitHub MCP beside GitHub REST).
const MCP_RESOURCE: &str = "https://mcp.github.example/mcp";

#[tokio::test]
async fn removing_one_of_two_consents_through_one_github_style_app_deletes_only_its_token() {
    // Both connections through the ISV's one OAuth app, with GitHub's revocation API.
    let s = setup_with(|isv| {
        let github = |kind, name, resource| BrokeredConnectionEntry {
            revocation_url: Some(isv.github_grant_url()),
            revocation: idp0::config::RevocationStyle::Github,
            ..connection(isv, kind, name, resource)
        };
        vec![
            github(BrokeredKind::Application, "Sandbox Git", CONFIGURED),
            github(BrokeredKind::McpServer, "Sandbox Git MCP", MCP_RESOURCE),
        ]
    })
    .await;
    let alice = Browser::new();
    let alice_token = s.login(&alice, "alice").await;
    let rest = s
        .consented_to(&alice, &alice_token, "alice", RESOURCE)
        .await;
    let rest_token = rest.body["access_token"].as_str().unwrap().to_owned();
    let mcp = s
        .consented_to(&alice, &alice_token, "alice", MCP_RESOURCE)
        .await;
    let mcp_token = mcp.body["access_token"].as_str().unwrap().to_owned();
    assert_ne!(rest_token, mcp_token, "one authorization each");
    // bob's consent through the same app is his own: it never keeps alice's grant.
    let bob = Browser::new();
    let bob_token = s.login(&bob, "bob").await;
    let bobs = s.consented_to(&bob, &bob_token, "bob", RESOURCE).await;

    // alice removes GitHub REST: her MCP consent still uses the app, so only the REST token is
    // deleted at the app (…/token), never the grant.
    let html = s.remove_connected_app(&alice, RESOURCE).await;
    assert!(
        html.contains("Removed") && !html.contains("could not revoke"),
        "{html}"
    );
    assert!(
        html.contains("Sandbox Git MCP"),
        "the other consent is listed: {html}"
    );
    assert_eq!(
        s.isv.github_deleted(),
        vec![("token".to_owned(), rest_token.clone())]
    );
    assert!(s.isv.revoked().is_empty(), "GitHub's API, not RFC 7009");
    // The MCP consent still works with no new consent; REST asks again.
    let still = s.exchange_for(&alice_token, MCP_RESOURCE).await;
    assert_eq!(still.status, StatusCode::OK, "{:?}", still.body);
    assert_eq!(still.body["access_token"], mcp_token.as_str());
    assert_eq!(
        s.exchange_for(&alice_token, RESOURCE).await.error(),
        "interaction_required"
    );

    // alice removes her last consent through the app: the grant goes (bob's does not count).
    let html = s.remove_connected_app(&alice, MCP_RESOURCE).await;
    assert!(
        html.contains("Removed") && html.contains("No app is connected"),
        "{html}"
    );
    assert_eq!(
        s.isv.github_deleted(),
        vec![
            ("token".to_owned(), rest_token),
            ("grant".to_owned(), mcp_token),
        ]
    );
    assert_eq!(
        s.exchange_for(&alice_token, MCP_RESOURCE).await.error(),
        "interaction_required"
    );
    // bob's consent is untouched at idp0.
    let his = s.exchange_for(&bob_token, RESOURCE).await;
    assert_eq!(his.body["access_token"], bobs.body["access_token"]);
}

#[tokio::test]
async fn a_github_style_app_failing_to_revoke_still_removes_the_consent_and_says_so() {
    let s = setup_with(|isv| {
        vec![BrokeredConnectionEntry {
            // A grant URL at a port nobody listens on: the app cannot be reached.
            revocation_url: Some(format!(
                "http://127.0.0.1:9/applications/{ISV_CLIENT_ID}/grant"
            )),
            revocation: idp0::config::RevocationStyle::Github,
            ..connection(isv, BrokeredKind::Application, "Sandbox Git", CONFIGURED)
        }]
    })
    .await;
    let alice = Browser::new();
    let id_token = s.login(&alice, "alice").await;
    s.consented(&alice, &id_token, "alice").await;
    let html = s.remove_connected_app(&alice, RESOURCE).await;
    assert!(
        html.contains("Removed from idp0")
            && html.contains("could not revoke")
            && html.contains("No app is connected"),
        "{html}"
    );
    assert!(!html.contains("isv-at-"), "no token on the page");
    assert_eq!(s.exchange(&id_token).await.error(), "interaction_required");
}

#[tokio::test]
async fn exchanges_outside_a_connection_or_at_a_custom_server_are_refused() {
    let s = setup().await;
    let id_token = s.login(&Browser::new(), "alice").await;
    let org = s.idp.org_token_endpoint();
    let custom = s.idp.todo0_token_endpoint();
    for (endpoint, resource, error) in [
        (&org, "https://elsewhere.example", "invalid_target"),
        (&org, CONFIGURED, "invalid_target"),
        (&org, "http://localhost:5002/mcp", "invalid_target"),
        (&custom, RESOURCE, "invalid_request"),
    ] {
        let answer = s.exchange_at(endpoint, &id_token, resource).await;
        assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{resource}");
        assert_eq!(
            answer.error(),
            error,
            "{endpoint} {resource}: {:?}",
            answer.body
        );
    }
}
