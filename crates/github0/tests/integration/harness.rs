//! Starts github0 the way `secure-agent github0` does (a [`Config`] → [`Github0::open`] →
//! [`github0::serve`]) on a free port, with a fixed clock the tests move, and a browser-like
//! client (cookie jar, no automatic redirects) that walks the sign-in and consent pages.

use std::path::Path;
use std::sync::Arc;

use github0::{App, Config, Github0, User};
use protocol::FixedClock;
use secrecy::SecretString;
use url::Url;

pub const CLIENT_ID: &str = "Iv1.sandboxidp0";
pub const CLIENT_SECRET: &str = "sandbox-client-secret-0123456789";
pub const APP_NAME: &str = "Okta (idp0)";
pub const ALICE_PASSWORD: &str = "alice-pass-1234";
pub const BOB_PASSWORD: &str = "bob-pass-5678";
pub const UA: &str = "github0-tests";
/// The registered callback (nothing listens there: the tests read the redirect).
pub const CALLBACK: &str = "http://127.0.0.1:9/oauth2/v1/sts/callback";

pub struct Sandbox {
    pub base: String,
    pub github0: Github0,
    pub clock: Arc<FixedClock>,
    _stop: tokio::sync::oneshot::Sender<()>,
}

impl Sandbox {
    pub async fn start(dir: &Path) -> Sandbox {
        Self::start_with(dir, |_| {}).await
    }

    pub async fn start_with(dir: &Path, tweak: impl FnOnce(&mut Config)) -> Sandbox {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
        let mut config = Config::new(Url::parse(&base).unwrap(), dir.join("github0.db"));
        config.apps.push(App::new(
            CLIENT_ID,
            APP_NAME,
            &SecretString::from(CLIENT_SECRET),
            vec![Url::parse(CALLBACK).unwrap()],
        ));
        config
            .users
            .push(User::new("alice", SecretString::from(ALICE_PASSWORD)));
        config
            .users
            .push(User::new("bob", SecretString::from(BOB_PASSWORD)));
        tweak(&mut config);
        let clock = FixedClock::at(protocol::clock::system().now());
        let github0 = Github0::open(config, clock.clone()).await.unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let served = github0.clone();
        tokio::spawn(async move {
            github0::serve(listener, &served, async move {
                let _ = stopped.await;
            })
            .await
        });
        Sandbox {
            base,
            github0,
            clock,
            _stop: stop,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub fn browser(&self) -> reqwest::Client {
        reqwest::Client::builder()
            .cookie_store(true)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap()
    }

    /// A plain API client (with a User-Agent).
    pub fn api(&self) -> reqwest::Client {
        reqwest::Client::builder().user_agent(UA).build().unwrap()
    }

    pub fn authorize_url(&self, scope: &str, state: &str, challenge: Option<&str>) -> String {
        let mut url = Url::parse(&self.url("/login/oauth/authorize")).unwrap();
        url.query_pairs_mut()
            .append_pair("client_id", CLIENT_ID)
            .append_pair("redirect_uri", CALLBACK)
            .append_pair("scope", scope)
            .append_pair("state", state);
        if let Some(challenge) = challenge {
            url.query_pairs_mut()
                .append_pair("code_challenge", challenge)
                .append_pair("code_challenge_method", "S256");
        }
        url.to_string()
    }

    /// Follows one redirect's `Location` (relative to the sandbox).
    pub fn location(&self, response: &reqwest::Response) -> String {
        let location = response.headers()["location"].to_str().unwrap().to_owned();
        if location.starts_with('/') {
            self.url(&location)
        } else {
            location
        }
    }

    /// Signs in at the sign-in page the authorize URL sent the browser to; returns the page
    /// after sign-in (the consent page, or a redirect).
    pub async fn sign_in(
        &self,
        browser: &reqwest::Client,
        login_page_url: &str,
        login: &str,
        password: &str,
    ) -> reqwest::Response {
        let page = browser.get(login_page_url).send().await.unwrap();
        assert_eq!(page.status(), 200);
        let html = page.text().await.unwrap();
        assert!(html.contains("sandbox"), "every page says sandbox");
        let csrf = hidden(&html, "authenticity_token");
        let return_to = hidden(&html, "return_to");
        let response = browser
            .post(self.url("/session"))
            .form(&[
                ("login", login),
                ("password", password),
                ("authenticity_token", &csrf),
                ("return_to", &return_to),
            ])
            .send()
            .await
            .unwrap();
        if !response.status().is_redirection() {
            return response;
        }
        browser.get(self.location(&response)).send().await.unwrap()
    }

    /// The whole flow as `login`: authorize → sign in (if needed) → consent `decision` →
    /// the redirect to the callback, parsed.
    pub async fn authorize(
        &self,
        browser: &reqwest::Client,
        login: &str,
        password: &str,
        authorize_url: &str,
        decision: &str,
    ) -> Url {
        let first = browser.get(authorize_url).send().await.unwrap();
        let consent = if first.status().is_redirection() {
            let next = self.location(&first);
            if next.starts_with(CALLBACK) {
                return Url::parse(&next).unwrap();
            }
            assert!(next.contains("/login?"), "{next}");
            self.sign_in(browser, &next, login, password).await
        } else {
            first
        };
        if consent.status().is_redirection() {
            return Url::parse(&self.location(&consent)).unwrap();
        }
        assert_eq!(consent.status(), 200);
        let html = consent.text().await.unwrap();
        assert!(
            html.contains(&format!("Authorize {}", httpserve::html::escape(APP_NAME))),
            "{html}"
        );
        assert!(html.contains("sandbox"));
        let request = hidden(&html, "authorize_request");
        let answer = browser
            .post(self.url("/login/oauth/authorize"))
            .form(&[
                ("authorize_request", request.as_str()),
                ("decision", decision),
            ])
            .send()
            .await
            .unwrap();
        assert!(answer.status().is_redirection(), "{}", answer.status());
        Url::parse(&self.location(&answer)).unwrap()
    }

    /// `POST /login/oauth/access_token` with `Accept: application/json`.
    pub async fn token(&self, params: &[(&str, &str)]) -> serde_json::Value {
        let response = self
            .api()
            .post(self.url("/login/oauth/access_token"))
            .header("accept", "application/json")
            .form(params)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "GitHub answers 200 even for errors");
        response.json().await.unwrap()
    }

    /// A fresh person's access and refresh tokens (sign-in, consent, exchange).
    pub async fn tokens_for(&self, login: &str, password: &str, scope: &str) -> serde_json::Value {
        let browser = self.browser();
        let callback = self
            .authorize(
                &browser,
                login,
                password,
                &self.authorize_url(scope, "s", None),
                "allow",
            )
            .await;
        let code = param(&callback, "code").unwrap();
        let tokens = self
            .token(&[
                ("client_id", CLIENT_ID),
                ("client_secret", CLIENT_SECRET),
                ("code", &code),
            ])
            .await;
        assert!(tokens["access_token"].is_string(), "{tokens}");
        tokens
    }
}

/// A hidden input's value, unescaped.
pub fn hidden(html: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html
        .find(&marker)
        .unwrap_or_else(|| panic!("no {name} in {html}"))
        + marker.len();
    let end = html[start..].find('"').unwrap() + start;
    httpserve::html::unescape(&html[start..end])
}

/// A query parameter of a URL.
pub fn param(url: &Url, name: &str) -> Option<String> {
    url.query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}
