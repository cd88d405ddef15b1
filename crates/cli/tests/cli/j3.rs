//! Journey J3 (brokered consent, issue 8) end to end through `secure-agent up` on ports the OS
//! picked: agent0, idp0 and github0 as they ship, nothing stood in. alice asks agent0 to comment
//! on a pull request at github0, gets the consent card, walks the consent as a person would
//! (idp0's interaction page, github0's sign-in and consent pages, idp0's callback), and the
//! pending call resumes by itself; later calls need no consent, also after github0's short token
//! lifetime has passed (idp0 refreshes silently); the GitHub MCP path the same way; bob never rides
//! on alice's consent. Both connections are one OAuth app at github0: removing the GitHub consent on
//! idp0's Connected apps page revokes only its token there, so GitHub MCP keeps working (refreshes
//! included) with no new consent while GitHub asks again; removing the last one deletes the grant
//! at github0, which then asks for consent again.

use std::time::Duration;

use serde_json::Value;
use testkit::Browser;

use super::demo_password;
use super::up::{Up, log_in_to_agent0};

/// github0's access tokens live this long here, so the refresh path runs within the test.
const TOKEN_LIFETIME_S: u64 = 4;

/// A chat turn's SSE events as they arrive.
struct Turn {
    events: tokio::sync::mpsc::UnboundedReceiver<(String, Value)>,
    seen: Vec<(String, Value)>,
}

impl Turn {
    /// `POST /api/chat/stream` with `message`, read in the background.
    async fn start(browser: &Browser, agent: &str, csrf: &str, message: &str) -> Self {
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
                    let mut event = None;
                    let mut data = String::new();
                    for line in block.lines() {
                        if let Some(name) = line.strip_prefix("event:") {
                            event = Some(name.trim().to_owned());
                        } else if let Some(chunk) = line.strip_prefix("data:") {
                            data.push_str(chunk.strip_prefix(' ').unwrap_or(chunk));
                        }
                    }
                    if let Some(event) = event {
                        let data = serde_json::from_str(&data).unwrap_or(Value::Null);
                        if tx.send((event, data)).is_err() {
                            return;
                        }
                    }
                }
            }
        });
        Self {
            events,
            seen: Vec::new(),
        }
    }

    /// The next event; panics after `wait`.
    async fn next(&mut self, wait: Duration) -> (String, Value) {
        let next = tokio::time::timeout(wait, self.events.recv()).await;
        let Ok(Some((event, data))) = next else {
            panic!("no event within {wait:?}; seen {:#?}", self.seen);
        };
        eprintln!("[j3] {event}: {data}");
        self.seen.push((event.clone(), data.clone()));
        (event, data)
    }

    /// The next `name` event's data; panics on `done` first or after `wait`.
    async fn until(&mut self, name: &str, wait: Duration) -> Value {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let next = tokio::time::timeout_at(deadline, self.events.recv()).await;
            let Ok(Some((event, data))) = next else {
                panic!("no {name:?} event within {wait:?}; seen {:#?}", self.seen);
            };
            eprintln!("[j3] {event}: {data}");
            self.seen.push((event.clone(), data.clone()));
            if event == name {
                return data;
            }
            assert_ne!(
                event, "done",
                "the turn ended before {name:?}: {:#?}",
                self.seen
            );
        }
    }

    /// Every event until the turn's `done`, which must come without a consent card.
    async fn finish_without_consent(mut self) -> Vec<(String, Value)> {
        self.until("done", Duration::from_secs(30)).await;
        assert!(
            !self
                .seen
                .iter()
                .any(|(e, d)| e == "error" || (e == "consent_required" && d["waiting"] == true)),
            "no consent asked, no error: {:#?}",
            self.seen
        );
        self.seen
    }
}

/// github0's base URL, from `up`'s banner.
pub(super) fn github_url(up: &Up) -> String {
    up.banner
        .iter()
        .find_map(|l| l.split("GitHub sandbox) is at ").nth(1))
        .and_then(|rest| rest.split_whitespace().next())
        .map(|url| url.trim_end_matches('/').to_owned())
        .unwrap_or_else(|| panic!("github0 in the banner: {:#?}", up.banner))
}

/// The `tool_done` events' results, as text.
fn tool_results(events: &[(String, Value)]) -> String {
    events
        .iter()
        .filter(|(e, _)| e == "tool_done")
        .map(|(_, d)| {
            assert_eq!(d["isError"], false, "{d}");
            d["result"].to_string()
        })
        .collect()
}

/// The pages a consent walk went through.
#[derive(Default, Debug)]
pub(super) struct Walk {
    github_sign_in: bool,
    github_consent: bool,
}

/// Walks `interaction_uri` as `user` in `browser`: idp0's page (signing in there if asked),
/// Approve, github0's sign-in (the demo password) and consent pages as they come, and the
/// redirect to idp0's callback, which must say the app is connected.
async fn consent(browser: &Browser, interaction_uri: &str, user: &str, password: &str) -> Walk {
    let mut walk = Walk::default();
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
        let hidden = |name: &str| {
            testkit::hidden_fields(&html)
                .into_iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v)
        };
        let post = |action: url::Url, form: Vec<(String, String)>| {
            browser.http.post(action).form(&form).send()
        };
        if let Some(token) = hidden("authenticity_token") {
            // github0's sign-in page.
            walk.github_sign_in = true;
            let form = vec![
                ("login".to_owned(), user.to_owned()),
                ("password".to_owned(), password.to_owned()),
                ("authenticity_token".to_owned(), token),
                ("return_to".to_owned(), hidden("return_to").unwrap()),
            ];
            response = post(url.join("/session").unwrap(), form).await.unwrap();
        } else if let Some(request) = hidden("authorize_request") {
            // github0's consent page.
            walk.github_consent = true;
            assert!(html.contains("sandbox"), "github0 says it is a sandbox");
            let form = vec![
                ("authorize_request".to_owned(), request),
                ("decision".to_owned(), "allow".to_owned()),
            ];
            let action = url.join("/login/oauth/authorize").unwrap();
            response = post(action, form).await.unwrap();
        } else if html.contains("name=\"decision\"") {
            // idp0's interaction page: which agent wants which app with which scopes.
            assert!(
                html.contains("repo") && html.contains("read:user"),
                "{html}"
            );
            let action = testkit::form_action(url.as_str(), &html).unwrap();
            let mut form = testkit::hidden_fields(&html);
            form.push(("decision".into(), "approve".into()));
            response = post(action, form).await.unwrap();
        } else if html.contains("name=\"password\"") {
            // idp0's login form (no SSO session in this browser).
            response = browser
                .submit_login(url.as_str(), &html, user, password)
                .await
                .unwrap();
        } else {
            assert!(
                url.path().starts_with("/oauth2/v1/sts/callback") && html.contains("Connected"),
                "the walk ends at idp0's callback: {url}\n{html}"
            );
            return walk;
        }
    }
    panic!("the consent walk did not end");
}

/// Asks `message` and answers its consent card as `user`; returns the finished turn's events
/// and the walk.
pub(super) async fn ask_with_consent(
    browser: &Browser,
    agent: &str,
    csrf: &str,
    message: &str,
    user: &str,
    password: &str,
) -> (Vec<(String, Value)>, Walk) {
    let mut turn = Turn::start(browser, agent, csrf, message).await;
    // The card of the pending call, which waits for the consent; no other card (agent0 offers
    // the GitHub MCP server's declared tools without asking anything).
    let card = turn
        .until("consent_required", Duration::from_secs(20))
        .await;
    assert_eq!(card["waiting"], true, "{card}");
    let uri = card["interactionUri"].as_str().unwrap().to_owned();
    let walk = consent(browser, &uri, user, password).await;
    // The pending call resumes by itself (agent0 polls idp0 at its interval).
    turn.until("done", Duration::from_secs(30)).await;
    let seen = turn.seen;
    let cards = seen.iter().filter(|(e, _)| e == "consent_required");
    assert_eq!(cards.count(), 1, "{seen:#?}");
    (seen, walk)
}

/// `who am I on GitHub?` through the GitHub MCP connection: its `get_me` is offered as GitHub
/// declares it, so when `user` has no GitHub MCP token the call itself asks for consent (one
/// card, which waits), `user` consents and the call resumes by itself. Returns the tool results
/// and whether a card was shown.
async fn mcp_get_me(
    browser: &Browser,
    agent: &str,
    csrf: &str,
    user: &str,
    password: &str,
) -> (String, bool) {
    let mut turn = Turn::start(browser, agent, csrf, "who am I on GitHub?").await;
    let mut cards = 0;
    loop {
        let (event, data) = turn.next(Duration::from_secs(30)).await;
        match event.as_str() {
            "consent_required" => {
                assert_eq!(data["connection"], "github-mcp", "{data}");
                assert_eq!(data["waiting"], true, "{data}");
                cards += 1;
                let uri = data["interactionUri"].as_str().unwrap().to_owned();
                consent(browser, &uri, user, password).await;
            }
            "done" => break,
            _ => {}
        }
    }
    assert!(cards <= 1, "{:#?}", turn.seen);
    assert!(
        turn.seen
            .iter()
            .any(|(e, d)| e == "tool_done" && d["tool"] == "get_me"),
        "get_me ran: {:#?}",
        turn.seen
    );
    (tool_results(&turn.seen), cards == 1)
}

/// How many comments `login` has on acme/widgets#1 (github0's read-only sandbox page).
pub(super) async fn comments_by(github: &str, login: &str) -> usize {
    let page = reqwest::get(format!("{github}/acme/widgets/pull/1"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    page.matches(&format!("<strong>{login}</strong> commented"))
        .count()
}

/// Removes alice's consent to `resource` on idp0's Connected apps page (signed in to idp0 in
/// `browser`); the page that answers must say it was removed and revoked at github0.
async fn remove_connected_app(browser: &Browser, issuer: &str, resource: &str) -> String {
    let page = browser
        .http
        .get(format!("{issuer}/connected-apps"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains(resource), "{page}");
    let csrf = testkit::hidden_fields(&page)
        .into_iter()
        .find(|(k, _)| k == "csrf")
        .unwrap()
        .1;
    let removed = browser
        .http
        .post(format!("{issuer}/connected-apps/remove"))
        .form(&[
            ("csrf", csrf.as_str()),
            ("agent", devstack::AGENT_ID),
            ("resource", resource),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(removed.status(), 200);
    let html = removed.text().await.unwrap();
    assert!(html.contains("Removed"), "{html}");
    assert!(
        !html.contains("could not revoke"),
        "revoked at github0: {html}"
    );
    html
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn j3_consent_resume_no_second_consent_refresh_mcp_removal_and_another_person() {
    let started = std::time::Instant::now();
    let dir = tempfile::tempdir().unwrap();
    eprintln!("[j3] data dir {}", dir.path().display());
    let lifetime = format!("{TOKEN_LIFETIME_S}s");
    let up = Up::start_env(
        dir.path(),
        [0; 4],
        &[("GITHUB0_TOKEN_LIFETIME", lifetime.as_str())],
    );
    let github = github_url(&up);
    // github0 runs with idp0's app, the two demo people and the lifetime from the environment.
    let banner = up.banner.join("\n");
    assert!(banner.contains("github0 sandbox"), "{banner}");
    assert!(
        banner.contains(&format!(
            "apps: 1   people: 2   token lifetime: {TOKEN_LIFETIME_S}s"
        )),
        "{banner}"
    );
    let agent = format!("http://localhost:{}", up.agent);
    let pr = format!("{github}/acme/widgets/pull/1");
    let comment = format!("comment \"LGTM\" on {pr}");
    let alice_pw = demo_password(dir.path(), "alice");
    let alice = Browser::new();
    let csrf = log_in_to_agent0(&alice, &agent, "alice", &alice_pw).await;

    // 0. An unrelated first turn asks no consent: the GitHub MCP server's tools are offered as
    //    GitHub declares them, without a brokered exchange.
    let todos = Turn::start(&alice, &agent, &csrf, "list my todos").await;
    let events = todos.finish_without_consent().await;
    assert!(
        !events.iter().any(|(e, _)| e == "consent_required"),
        "no card at all: {events:#?}"
    );

    // 1. The consent card, the walk (github0 asks alice to sign in, then to authorize), the
    //    pending comment made once by itself.
    let (events, walk) =
        ask_with_consent(&alice, &agent, &csrf, &comment, "alice", &alice_pw).await;
    assert!(walk.github_sign_in && walk.github_consent, "{walk:?}");
    assert!(tool_results(&events).contains("LGTM"), "{events:#?}");
    assert_eq!(comments_by(&github, "alice").await, 1);

    // 2. The same request again: no consent.
    let again = Turn::start(&alice, &agent, &csrf, &comment).await;
    again.finish_without_consent().await;
    assert_eq!(comments_by(&github, "alice").await, 2);

    // 3. The GitHub MCP connection asks its own consent when get_me is called (the card waits
    //    and the call resumes by itself); get_me answers alice.
    let (me, asked) = mcp_get_me(&alice, &agent, &csrf, "alice", &alice_pw).await;
    assert!(asked, "get_me asked for alice's GitHub MCP consent");
    assert!(me.contains("alice"), "{me}");

    // 4. Past github0's token lifetime: idp0 refreshes silently, no consent.
    tokio::time::sleep(Duration::from_secs(TOKEN_LIFETIME_S + 1)).await;
    let later = Turn::start(&alice, &agent, &csrf, &comment).await;
    let events = later.finish_without_consent().await;
    assert!(tool_results(&events).contains("LGTM"), "{events:#?}");
    assert_eq!(comments_by(&github, "alice").await, 3);
    let me = Turn::start(&alice, &agent, &csrf, "who am I on GitHub?").await;
    assert!(tool_results(&me.finish_without_consent().await).contains("alice"));

    // 5. The Application and GitHub MCP cards are live.
    let status: Value = alice
        .http
        .get(format!("{agent}/api/connections/status"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let text = status.to_string();
    assert!(text.matches("\"live\"").count() >= 2, "{status:#}");

    // 6. bob never uses alice's consent: he gets his own card.
    let bob = Browser::new();
    let bob_pw = demo_password(dir.path(), "bob");
    let bob_csrf = log_in_to_agent0(&bob, &agent, "bob", &bob_pw).await;
    let mut bobs = Turn::start(&bob, &agent, &bob_csrf, &comment).await;
    let card = bobs
        .until("consent_required", Duration::from_secs(20))
        .await;
    assert!(card["interactionUri"].as_str().is_some(), "{card}");
    drop(bobs);
    assert_eq!(comments_by(&github, "bob").await, 0);

    // 7. alice removes the GitHub (REST) consent on idp0's Connected apps page. Her GitHub MCP
    //    consent uses the same app at github0, so only the removed consent's token is revoked
    //    there (not the grant): GitHub MCP keeps working with no new consent — also past the
    //    token lifetime, through idp0's refresh — while a comment asks for consent again.
    let issuer = format!("http://localhost:{}", up.idp);
    let rest = format!("{github}/api/v3");
    let mcp = format!("{github}/mcp");
    let html = remove_connected_app(&alice, &issuer, &rest).await;
    assert!(html.contains(&mcp), "GitHub MCP is still connected: {html}");
    let me = Turn::start(&alice, &agent, &csrf, "who am I on GitHub?").await;
    assert!(tool_results(&me.finish_without_consent().await).contains("alice"));
    tokio::time::sleep(Duration::from_secs(TOKEN_LIFETIME_S + 1)).await;
    let me = Turn::start(&alice, &agent, &csrf, "who am I on GitHub?").await;
    assert!(tool_results(&me.finish_without_consent().await).contains("alice"));
    let (_, walk) = ask_with_consent(&alice, &agent, &csrf, &comment, "alice", &alice_pw).await;
    assert!(
        !walk.github_consent,
        "github0 still holds alice's grant of the app: {walk:?}"
    );
    assert_eq!(comments_by(&github, "alice").await, 4);

    // 8. alice removes both: the first removal revokes a token, the last one the grant, so the
    //    next consent walk shows github0's consent page again.
    remove_connected_app(&alice, &issuer, &rest).await;
    let html = remove_connected_app(&alice, &issuer, &mcp).await;
    assert!(html.contains("No app is connected"), "{html}");
    let (_, walk) = ask_with_consent(&alice, &agent, &csrf, &comment, "alice", &alice_pw).await;
    assert!(walk.github_consent, "github0 asks again: {walk:?}");
    assert_eq!(comments_by(&github, "alice").await, 5);

    let log = up.stop();
    for secret in [&alice_pw, &bob_pw] {
        assert!(!log.contains(secret.as_str()), "no password in the log");
    }
    assert!(
        !log.contains("ghu_") && !log.contains("ghr_"),
        "no GitHub token in the log"
    );
    // idp0's audit of what it revoked at github0, in order: a token while GitHub MCP was still
    // connected (steps 7 and 8), then the grant with the last consent.
    let revoked: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("isv_revoked"))
        .map(|l| {
            if l.contains("\"grant\"") {
                "grant"
            } else if l.contains("\"token\"") {
                "token"
            } else {
                l
            }
        })
        .collect();
    assert_eq!(revoked, ["token", "token", "grant"], "{log}");
    eprintln!("J3 end to end took {:?}", started.elapsed());
}
