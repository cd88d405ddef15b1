//! The todo0 web app and REST API over real HTTP, with idp0 and the todo0 MCP server
//! (`testkit::Stack`) on 127.0.0.1:0 sharing one store: the browser journey through idp0's login
//! form and the CSRF-checked forms, logout, the REST API with access tokens from the real
//! Cross-App Access flow (statuses, scopes, bodies checked against `/openapi.json`), the same
//! rows through the MCP server, user isolation, and invalid titles (the REST API's tests are in
//! `web_api.rs`; the page's look, ids, counts, filter and caching headers in `web_ui.rs`).
//!
//! idp0's dev config registers `http://localhost:5001/callback` for the `todo0` client, so the
//! app is configured with exactly that redirect URI, and the browser stand-in (which never
//! follows redirects) carries the `code` and `state` from idp0's redirect to the app's real
//! `/callback` on its ephemeral port, as a browser would to port 5001.

use reqwest::StatusCode;
use reqwest::header::{CONTENT_SECURITY_POLICY, LOCATION, SET_COOKIE, WWW_AUTHENTICATE};
use serde_json::{Value, json};
use testkit::{Browser, Stack, hidden_fields, location};
use todo0::domain::{Filter, Owner};

use super::harness::Server as Mcp;

#[path = "web_api.rs"]
mod api;
#[path = "web_ui.rs"]
mod ui;

const REDIRECT: &str = testkit::TODO0_REDIRECT;
const ALL: &str = "mcp:connect mcp:tools:read mcp:tools:manage mcp:tools:delete";

/// idp0, the MCP server and the web app on one store.
struct App {
    url: String,
    stack: Stack,
}

impl App {
    async fn start() -> Self {
        let stack = Stack::start().await.unwrap();
        let url = stack.start_web_app().await.unwrap();
        Self { url, stack }
    }

    fn at(&self, path: &str) -> String {
        format!("{}{path}", self.url)
    }

    /// Logs `user` in through idp0's form, as a browser would.
    async fn login(&self, user: &str) -> Person {
        let browser = Browser::new();
        let start = browser.http.get(self.at("/login")).send().await.unwrap();
        assert_eq!(start.status(), StatusCode::SEE_OTHER);
        let authorize = location(&start).unwrap();
        let params: std::collections::HashMap<String, String> =
            authorize.query_pairs().into_owned().collect();
        assert!(authorize.as_str().starts_with(&self.stack.idp.issuer));
        assert_eq!(params["client_id"], "todo0");
        assert_eq!(params["redirect_uri"], REDIRECT);
        assert_eq!(params["code_challenge_method"], "S256");
        assert_eq!(params["response_type"], "code");
        for scope in ["openid", "profile", "email"] {
            assert!(params["scope"].split(' ').any(|s| s == scope));
        }
        assert!(params["state"].len() >= 16 && params["nonce"].len() >= 16);

        let password = self.stack.idp.password(user);
        let done = browser
            .log_in_to(authorize.as_str(), (user, &password), &self.at("/callback"))
            .await
            .unwrap();
        assert_eq!(done.status(), StatusCode::SEE_OTHER);
        assert_eq!(done.headers()[LOCATION], "/");
        let cookie = done
            .headers()
            .get_all(SET_COOKIE)
            .iter()
            .map(|v| v.to_str().unwrap())
            .find(|v| v.starts_with("todo0_session="))
            .unwrap()
            .to_owned();
        for attribute in ["HttpOnly", "SameSite=Lax", "Path=/", "Max-Age=28800"] {
            assert!(cookie.contains(attribute), "{cookie}");
        }
        assert!(!cookie.contains("Secure"), "http app, no Secure");

        let person = Person {
            browser,
            url: self.url.clone(),
            csrf: String::new(),
            cookie: cookie.split(';').next().unwrap().to_owned(),
        };
        let page = person.page().await;
        let csrf = hidden_fields(&page)
            .into_iter()
            .find(|(name, _)| name == "csrf_token")
            .map(|(_, value)| value)
            .expect("the page carries the CSRF token");
        Person { csrf, ..person }
    }
}

/// A signed-in browser.
struct Person {
    browser: Browser,
    url: String,
    csrf: String,
    /// The session cookie as the browser sends it (`todo0_session=…`).
    cookie: String,
}

impl Person {
    async fn page(&self) -> String {
        let response = self.browser.http.get(&self.url).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let csp = response.headers()[CONTENT_SECURITY_POLICY]
            .to_str()
            .unwrap();
        assert!(csp.starts_with("default-src 'none'; style-src 'self'; form-action 'self'"));
        assert!(csp.contains("frame-ancestors 'none'"));
        response.text().await.unwrap()
    }

    /// Submits a form to `path` with `fields` (the CSRF field is up to the caller).
    async fn submit(&self, path: &str, fields: &[(&str, &str)]) -> reqwest::Response {
        self.browser
            .http
            .post(format!("{}{path}", self.url))
            .form(fields)
            .send()
            .await
            .unwrap()
    }

    async fn session(&self) -> Value {
        let response = self
            .browser
            .http
            .get(format!("{}/session", self.url))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        response.json().await.unwrap()
    }

    async fn owner(&self) -> Owner {
        Owner::new(self.session().await["user"]["id"].as_str().unwrap()).unwrap()
    }
}

/// A REST call with a bearer token: status, `WWW-Authenticate`, JSON body (or null).
pub(super) async fn call(
    method: reqwest::Method,
    url: &str,
    token: &str,
    body: Option<Value>,
) -> (StatusCode, Option<String>, Value) {
    let mut request = reqwest::Client::new()
        .request(method, url)
        .bearer_auth(token);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    let challenge = response
        .headers()
        .get(WWW_AUTHENTICATE)
        .map(|v| v.to_str().unwrap().to_owned());
    let json = response.json().await.unwrap_or(Value::Null);
    (status, challenge, json)
}

/// Checks `body` against the schema `/openapi.json` documents for this response.
fn conforms(document: &Value, path: &str, method: &str, status: StatusCode, body: &Value) {
    let schema = &document["paths"][path][method]["responses"][status.as_str()]["content"]["application/json"]
        ["schema"];
    assert!(
        schema.is_object(),
        "{method} {path} documents no {status} body"
    );
    let mut root = schema.clone();
    root["components"] = document["components"].clone();
    let validator = jsonschema::draft202012::new(&root).unwrap();
    let errors: Vec<String> = validator.iter_errors(body).map(|e| e.to_string()).collect();
    assert!(
        errors.is_empty(),
        "{method} {path} {status}: {body} does not match {schema}: {errors:?}"
    );
}

fn titles(todos: &[todo0::domain::Todo]) -> Vec<&str> {
    todos.iter().map(|t| t.title.as_str()).collect()
}

#[tokio::test]
async fn a_person_logs_in_and_adds_completes_and_deletes_a_todo_with_csrf_checked_forms() {
    let app = App::start().await;
    let welcome = reqwest::get(app.at("/"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(welcome.contains("href=\"/login\">Log in</a>"));

    let alice = app.login("alice").await;
    let owner = alice.owner().await;
    let store = &app.stack.store;
    assert!(
        alice
            .page()
            .await
            .contains("Signed in as </span><strong>Alice Example</strong>")
    );

    let added = alice
        .submit(
            "/todos",
            &[("csrf_token", &alice.csrf), ("title", "<b>Buy</b> milk")],
        )
        .await;
    assert_eq!(added.status(), StatusCode::SEE_OTHER);
    assert_eq!(added.headers()[LOCATION], "/");
    let todos = store.list(&owner, &Filter::default()).await.unwrap();
    assert_eq!(titles(&todos), ["<b>Buy</b> milk"]);
    let id = todos[0].id;
    let page = alice.page().await;
    assert!(page.contains("&lt;b&gt;Buy&lt;/b&gt; milk"), "escaped");
    assert!(page.contains(&format!("action=\"/todos/{id}/complete\"")));
    assert!(page.contains(&format!("action=\"/todos/{id}/delete\"")));

    // Forged or stale submissions are refused and change nothing.
    let complete = format!("/todos/{id}/complete");
    let delete = format!("/todos/{id}/delete");
    for fields in [vec![], vec![("csrf_token", "forged")]] {
        for path in [complete.as_str(), delete.as_str()] {
            let refused = alice.submit(path, &fields).await;
            assert_eq!(refused.status(), StatusCode::FORBIDDEN, "{path} {fields:?}");
            assert!(refused.text().await.unwrap().contains("CSRF"));
        }
        let mut with_title = fields.clone();
        with_title.push(("title", "sneaky"));
        let refused = alice.submit("/todos", &with_title).await;
        assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    }
    assert_eq!(store.list(&owner, &Filter::default()).await.unwrap(), todos);

    let completed = alice
        .submit(&complete, &[("csrf_token", &alice.csrf)])
        .await;
    assert_eq!(completed.status(), StatusCode::SEE_OTHER);
    assert!(store.get(&owner, id).await.unwrap().completed);
    assert!(
        alice
            .page()
            .await
            .contains(&format!("<li class=\"todo done\" id=\"todo-{id}\">"))
    );
    alice
        .submit(&complete, &[("csrf_token", &alice.csrf)])
        .await;
    assert!(
        !store.get(&owner, id).await.unwrap().completed,
        "uncompleted"
    );

    let deleted = alice.submit(&delete, &[("csrf_token", &alice.csrf)]).await;
    assert_eq!(deleted.status(), StatusCode::SEE_OTHER);
    assert!(
        store
            .list(&owner, &Filter::default())
            .await
            .unwrap()
            .is_empty()
    );

    // The JSON API with the cookie: the CSRF token comes from /session, in a header.
    let session = alice.session().await;
    assert_eq!(session["csrf_token"], alice.csrf.as_str());
    assert_eq!(session["user"]["name"], "Alice Example");
    let post = |csrf: Option<&str>| {
        let mut request = alice
            .browser
            .http
            .post(app.at("/todos"))
            .json(&json!({"title": "via JSON"}));
        if let Some(csrf) = csrf {
            request = request.header("x-csrf-token", csrf);
        }
        request.send()
    };
    assert_eq!(post(None).await.unwrap().status(), StatusCode::FORBIDDEN);
    assert_eq!(
        post(Some("nope")).await.unwrap().status(),
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        post(Some(&alice.csrf)).await.unwrap().status(),
        StatusCode::CREATED
    );
}

#[tokio::test]
async fn a_copy_of_the_session_cookie_is_dead_after_logout() {
    let app = App::start().await;
    let alice = app.login("alice").await;
    let owner = alice.owner().await;
    let store = &app.stack.store;
    let added = alice
        .submit(
            "/todos",
            &[("csrf_token", &alice.csrf), ("title", "keep me")],
        )
        .await;
    assert_eq!(added.status(), StatusCode::SEE_OTHER);
    let id = store.list(&owner, &Filter::default()).await.unwrap()[0].id;

    // Someone copies the cookie (and the CSRF token from the page) before Alice logs out.
    let copy = alice.cookie.clone();
    let thief = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let read = |path: &str| {
        thief
            .get(app.at(path))
            .header("cookie", &copy)
            .header("accept", "application/json")
    };
    assert_eq!(
        read("/todos").send().await.unwrap().status(),
        StatusCode::OK
    );

    let out = alice
        .submit("/logout", &[("csrf_token", &alice.csrf)])
        .await;
    assert_eq!(out.status(), StatusCode::SEE_OTHER);

    for path in ["/todos", "/session", &format!("/todos/{id}")] {
        let refused = read(path).send().await.unwrap();
        assert_eq!(refused.status(), StatusCode::UNAUTHORIZED, "{path}");
    }
    let page = thief
        .get(app.at("/"))
        .header("cookie", &copy)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        page.contains("Log in") && !page.contains("keep me"),
        "{page}"
    );

    let create = thief
        .post(app.at("/todos"))
        .header("cookie", &copy)
        .header("x-csrf-token", &alice.csrf)
        .json(&json!({"title": "written after logout"}))
        .send()
        .await
        .unwrap();
    assert_eq!(create.status(), StatusCode::UNAUTHORIZED);
    let delete = thief
        .post(app.at(&format!("/todos/{id}/delete")))
        .header("cookie", &copy)
        .form(&[("csrf_token", alice.csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert!(
        delete.status() == StatusCode::UNAUTHORIZED || delete.status() == StatusCode::SEE_OTHER,
        "{}",
        delete.status()
    );
    let logout_again = thief
        .post(app.at("/logout"))
        .header("cookie", &copy)
        .form(&[("csrf_token", alice.csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(logout_again.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        titles(&store.list(&owner, &Filter::default()).await.unwrap()),
        ["keep me"],
        "nothing written or deleted with the copy"
    );

    // Logging in again gives a new session that works.
    let again = app.login("alice").await;
    assert_ne!(again.cookie, copy);
    assert!(again.page().await.contains("keep me"));
}

#[tokio::test]
async fn logout_clears_the_session_and_ends_the_idp_session() {
    let app = App::start().await;
    let alice = app.login("alice").await;

    let forged = alice.submit("/logout", &[("csrf_token", "forged")]).await;
    assert_eq!(forged.status(), StatusCode::FORBIDDEN);
    assert!(alice.page().await.contains("Signed in as"));

    let out = alice
        .submit("/logout", &[("csrf_token", &alice.csrf)])
        .await;
    assert_eq!(out.status(), StatusCode::SEE_OTHER);
    let cleared = out
        .headers()
        .get_all(SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap())
        .find(|v| v.starts_with("todo0_session="))
        .unwrap()
        .to_owned();
    assert!(cleared.contains("Max-Age=0"), "{cleared}");
    let end_session = location(&out).unwrap();
    assert_eq!(
        end_session.as_str().split('?').next(),
        Some(format!("{}/oauth2/v1/logout", app.stack.idp.issuer).as_str())
    );
    let params: std::collections::HashMap<String, String> =
        end_session.query_pairs().into_owned().collect();
    assert_eq!(params["client_id"], "todo0");
    assert_eq!(params["post_logout_redirect_uri"], "http://localhost:5001/");
    assert!(alice.page().await.contains("Log in"), "signed out here");

    let idp = alice.browser.http.get(end_session).send().await.unwrap();
    assert_eq!(
        location(&idp).unwrap().as_str(),
        "http://localhost:5001/",
        "back to the app"
    );
    // idp0 forgot the person too: a new login shows its form instead of redirecting at once.
    let again = alice
        .browser
        .http
        .get(app.at("/login"))
        .send()
        .await
        .unwrap();
    let form = alice
        .browser
        .http
        .get(location(&again).unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(form.status(), StatusCode::OK);
    assert!(form.text().await.unwrap().contains("password"));
}

#[tokio::test]
async fn the_callback_refuses_missing_logins_forged_state_and_replays() {
    let app = App::start().await;
    let stranger = Browser::new();
    let unsolicited = stranger
        .http
        .get(app.at("/callback?code=abc&state=xyz"))
        .header("accept", "text/html")
        .send()
        .await
        .unwrap();
    assert_eq!(unsolicited.status(), StatusCode::BAD_REQUEST);
    let page = unsolicited.text().await.unwrap();
    assert!(
        page.contains("no login is in progress in this browser"),
        "{page}"
    );

    let browser = Browser::new();
    let start = browser.http.get(app.at("/login")).send().await.unwrap();
    let code = browser
        .authorize(
            location(&start).unwrap().as_str(),
            Some(("alice", &app.stack.idp.password("alice"))),
        )
        .await
        .unwrap();
    let callback = |state: &str| {
        let mut url = url::Url::parse(&app.at("/callback")).unwrap();
        url.query_pairs_mut()
            .append_pair("code", &code.code)
            .append_pair("state", state);
        browser.http.get(url).send()
    };
    let forged = callback("forged").await.unwrap();
    assert_eq!(forged.status(), StatusCode::BAD_REQUEST);
    let body: Value = forged.json().await.unwrap();
    assert_eq!(body["error"], "login_failed");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("state does not match")
    );
    // The pending login was used up by the failed attempt: the right state is now too late.
    let late = callback(code.state.as_deref().unwrap()).await.unwrap();
    assert_eq!(late.status(), StatusCode::BAD_REQUEST);
    let session = browser.http.get(app.at("/session")).send().await.unwrap();
    assert_eq!(session.status(), StatusCode::UNAUTHORIZED);

    // An error from the IdP is shown, not swallowed.
    let start = browser.http.get(app.at("/login")).send().await.unwrap();
    let state = location(&start)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "state")
        .unwrap()
        .1
        .into_owned();
    let mut url = url::Url::parse(&app.at("/callback")).unwrap();
    url.query_pairs_mut()
        .append_pair("error", "access_denied")
        .append_pair("error_description", "the user said no")
        .append_pair("state", &state);
    let denied: Value = browser
        .http
        .get(url)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        denied["message"]
            .as_str()
            .unwrap()
            .contains("access_denied: the user said no")
    );
}
