//! Journey J3 (brokered consent, issue 8) when the person revokes the app at GitHub, end to end
//! through `secure-agent up` on ports the OS picked (agent0, idp0 and github0 as they ship):
//! alice consents and comments, then removes her authorization of the app at github0 itself
//! (as on github.com's Settings → Applications → Revoke: the grant and every token it issued).
//! idp0 still holds her access token, valid by its expiry, so agent0 — refused by GitHub —
//! revokes it at idp0 (`token_type_hint=oauth_sts`, OKTA.md §1) before exchanging again; idp0's
//! refresh is refused by github0 and the exchange answers `interaction_required`: the next
//! comment shows the consent card, alice consents, the call resumes and the comment is made
//! exactly once. The helpers are this file's own (j3.rs keeps its private).

use std::time::Duration;

use serde_json::Value;
use testkit::Browser;

use super::demo_password;
use super::up::{Up, log_in_to_agent0};

/// `POST /api/chat/stream` with `message`; its SSE events as they arrive.
async fn chat_events(
    browser: &Browser,
    agent: &str,
    csrf: &str,
    message: &str,
) -> tokio::sync::mpsc::UnboundedReceiver<(String, Value)> {
    let mut response = browser
        .http
        .post(format!("{agent}/api/chat/stream"))
        .header("x-csrf-token", csrf)
        .json(&serde_json::json!({ "message": message }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let (tx, events) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut buffer = String::new();
        while let Ok(Some(chunk)) = response.chunk().await {
            buffer.push_str(&String::from_utf8_lossy(&chunk));
            while let Some(end) = buffer.find("\n\n") {
                let block: String = buffer.drain(..end + 2).collect();
                let event = block
                    .lines()
                    .find_map(|l| l.strip_prefix("event:"))
                    .map(|e| e.trim().to_owned());
                let data: String = block
                    .lines()
                    .filter_map(|l| l.strip_prefix("data:"))
                    .map(|d| d.strip_prefix(' ').unwrap_or(d))
                    .collect();
                if let Some(event) = event {
                    let data = serde_json::from_str(&data).unwrap_or(Value::Null);
                    if tx.send((event, data)).is_err() {
                        return;
                    }
                }
            }
        }
    });
    events
}

/// Asks `message` as `user`, walking each consent card's link (idp0's interaction page and
/// login, github0's sign-in and consent pages, idp0's callback) while the call waits; returns
/// every event of the turn and how many cards were shown.
async fn ask(
    browser: &Browser,
    agent: &str,
    csrf: &str,
    message: &str,
    (user, password): (&str, &str),
) -> (Vec<(String, Value)>, usize) {
    let mut events = chat_events(browser, agent, csrf, message).await;
    let mut seen = Vec::new();
    let mut cards = 0;
    loop {
        let next = tokio::time::timeout(Duration::from_secs(40), events.recv()).await;
        let Ok(Some((event, data))) = next else {
            panic!("the turn stalled; seen {seen:#?}");
        };
        eprintln!("[j3-revoked] {event}: {data}");
        seen.push((event.clone(), data.clone()));
        match event.as_str() {
            "consent_required" => {
                assert_eq!(data["waiting"], true, "{data}");
                cards += 1;
                let uri = data["interactionUri"].as_str().unwrap().to_owned();
                consent(browser, &uri, user, password).await;
            }
            "done" => return (seen, cards),
            _ => {}
        }
    }
}

/// Walks `interaction_uri` as `user` in `browser`, approving everything, to idp0's callback.
async fn consent(browser: &Browser, interaction_uri: &str, user: &str, password: &str) {
    let mut url = url::Url::parse(interaction_uri).unwrap();
    let mut response = browser.http.get(url.clone()).send().await.unwrap();
    for _ in 0..20 {
        if response.status().is_redirection() {
            url = testkit::location(&response).unwrap();
            response = browser.http.get(url.clone()).send().await.unwrap();
            continue;
        }
        assert_eq!(response.status(), 200, "{url}");
        let html = response.text().await.unwrap();
        let fields = testkit::hidden_fields(&html);
        let hidden = |name: &str| {
            fields
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
        };
        let post = |action: url::Url, form: Vec<(String, String)>| {
            browser.http.post(action).form(&form).send()
        };
        response = if let Some(token) = hidden("authenticity_token") {
            // github0's sign-in page.
            let form = vec![
                ("login".to_owned(), user.to_owned()),
                ("password".to_owned(), password.to_owned()),
                ("authenticity_token".to_owned(), token),
                ("return_to".to_owned(), hidden("return_to").unwrap()),
            ];
            post(url.join("/session").unwrap(), form).await.unwrap()
        } else if let Some(request) = hidden("authorize_request") {
            // github0's consent page.
            let form = vec![
                ("authorize_request".to_owned(), request),
                ("decision".to_owned(), "allow".to_owned()),
            ];
            post(url.join("/login/oauth/authorize").unwrap(), form)
                .await
                .unwrap()
        } else if html.contains("name=\"decision\"") {
            // idp0's interaction page.
            let action = testkit::form_action(url.as_str(), &html).unwrap();
            let mut form = fields.clone();
            form.push(("decision".into(), "approve".into()));
            post(action, form).await.unwrap()
        } else if html.contains("name=\"password\"") {
            // idp0's login form.
            browser
                .submit_login(url.as_str(), &html, user, password)
                .await
                .unwrap()
        } else {
            assert!(
                url.path().starts_with("/oauth2/v1/sts/callback") && html.contains("Connected"),
                "the walk ends at idp0's callback: {url}\n{html}"
            );
            return;
        };
    }
    panic!("the consent walk did not end");
}

/// How many comments `login` has on acme/widgets#1 (github0's read-only sandbox page).
async fn comments_by(github: &str, login: &str) -> usize {
    let page = reqwest::get(format!("{github}/acme/widgets/pull/1"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    page.matches(&format!("<strong>{login}</strong> commented"))
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn j3_app_revoked_at_github_asks_for_consent_again_and_resumes() {
    let dir = tempfile::tempdir().unwrap();
    // github0's default token lifetime (hours): idp0's cached token stays valid by its expiry.
    let up = Up::start(dir.path(), [0; 4]);
    let github = up
        .banner
        .iter()
        .find_map(|l| l.split("GitHub sandbox) is at ").nth(1))
        .and_then(|rest| rest.split_whitespace().next())
        .map(|url| url.trim_end_matches('/').to_owned())
        .unwrap_or_else(|| panic!("github0 in the banner: {:#?}", up.banner));
    let agent = format!("http://localhost:{}", up.agent);
    let comment = format!("comment \"LGTM\" on {github}/acme/widgets/pull/1");
    let password = demo_password(dir.path(), "alice");
    let alice = Browser::new();
    let csrf = log_in_to_agent0(&alice, &agent, "alice", &password).await;
    let person = ("alice", password.as_str());

    // alice consents; the comment is made.
    let (_, cards) = ask(&alice, &agent, &csrf, &comment, person).await;
    assert_eq!(cards, 1);
    assert_eq!(comments_by(&github, "alice").await, 1);

    // alice revokes the app at github0 itself: her grant and every token it issued are gone
    // (github0's own store, as its settings would; it runs in `up` on this database).
    let store = github0::store::Store::open(&dir.path().join("github0.db"))
        .await
        .unwrap();
    let account = store.account_by_login("alice").await.unwrap().unwrap();
    store
        .delete_grant(account.id, devstack::GITHUB0_APP_CLIENT_ID)
        .await
        .unwrap();

    // The next comment: GitHub refuses the cached token, agent0 revokes it at idp0 and exchanges
    // again, idp0's refresh is refused, so the consent card comes; alice consents and the
    // pending comment is made once.
    let (events, cards) = ask(&alice, &agent, &csrf, &comment, person).await;
    assert_eq!(cards, 1, "{events:#?}");
    let chips: Vec<&Value> = events
        .iter()
        .filter(|(e, _)| e == "tool_done")
        .map(|(_, d)| d)
        .collect();
    assert!(
        chips
            .iter()
            .any(|d| d["isError"] == false && d["result"].to_string().contains("LGTM")),
        "{events:#?}"
    );
    assert!(
        !events
            .iter()
            .any(|(e, d)| e == "error" || d.to_string().contains("freshly exchanged")),
        "{events:#?}"
    );
    assert_eq!(comments_by(&github, "alice").await, 2, "exactly one more");

    let log = up.stop();
    assert!(!log.contains(password.as_str()), "no password in the log");
    assert!(
        !log.contains("ghu_") && !log.contains("ghr_") && !log.contains("gho_"),
        "no GitHub token in the log"
    );
    // idp0's audit: the refused token was revoked there by agent0.
    assert!(log.contains("sts_token_revoked"), "{log}");
}
