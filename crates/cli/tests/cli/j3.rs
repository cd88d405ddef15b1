//! Journey J3 (brokered consent, issue 8) end to end through `secure-agent up` on ports the OS
//! picked: agent0, idp0 and github0 as they ship, nothing stood in. alice asks agent0 to comment
//! on a pull request at github0, gets the consent card, walks the consent as a person would
//! (idp0's interaction page, github0's sign-in and consent pages, idp0's callback), and the
//! pending call resumes by itself; later calls need no consent, also after github0's short token
//! lifetime has passed (idp0 refreshes silently); the GitHub MCP path the same way; removing the
//! consent on idp0's Connected apps page revokes the grant at github0 and brings the card back;
//! bob never rides on alice's consent.

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
struct Walk {
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
async fn ask_with_consent(
    browser: &Browser,
    agent: &str,
    csrf: &str,
    message: &str,
    user: &str,
    password: &str,
) -> (Vec<(String, Value)>, Walk) {
    let mut turn = Turn::start(browser, agent, csrf, message).await;
    // The card of the pending call (`waiting`); agent0 may also show a card, not waiting, for a
    // brokered MCP server whose tools it could not list yet.
    let card = loop {
        let card = turn
            .until("consent_required", Duration::from_secs(20))
            .await;
        if card["waiting"] == true {
            break card;
        }
    };
    let uri = card["interactionUri"].as_str().unwrap().to_owned();
    let walk = consent(browser, &uri, user, password).await;
    // The pending call resumes by itself (agent0 polls idp0 at its interval).
    turn.until("done", Duration::from_secs(30)).await;
    let seen = turn.seen;
    let waiting = seen
        .iter()
        .filter(|(e, d)| e == "consent_required" && d["waiting"] == true);
    assert_eq!(waiting.count(), 1, "{seen:#?}");
    (seen, walk)
}

/// `who am I on GitHub?` through the GitHub MCP connection, consenting as the cards ask; returns
/// the tool results. A card that waits is the pending `get_me` (it resumes by itself); a card
/// that does not wait (shown at a turn's start, `earlier_card`, or in this one) is agent0 not
/// knowing the server's tools yet (nobody has listed them with a token on this fresh stack): the
/// person authorizes from it and asks again.
async fn mcp_get_me(
    browser: &Browser,
    agent: &str,
    csrf: &str,
    user: &str,
    password: &str,
    earlier_card: Option<String>,
) -> String {
    let mut pending_card = earlier_card;
    for _ in 0..2 {
        let mut turn = Turn::start(browser, agent, csrf, "who am I on GitHub?").await;
        loop {
            let (event, data) = turn.next(Duration::from_secs(30)).await;
            match event.as_str() {
                "consent_required" if data["connection"] == "github-mcp" => {
                    let uri = data["interactionUri"].as_str().unwrap().to_owned();
                    if data["waiting"] == true {
                        consent(browser, &uri, user, password).await;
                    } else {
                        pending_card = Some(uri);
                    }
                }
                "done" => break,
                _ => {}
            }
        }
        let results = tool_results(&turn.seen);
        if results.contains("\"login\"") || results.contains(user) {
            return results;
        }
        let uri = pending_card
            .take()
            .unwrap_or_else(|| panic!("no GitHub MCP card: {:#?}", turn.seen));
        consent(browser, &uri, user, password).await;
    }
    panic!("get_me never ran");
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
    let github = up
        .banner
        .iter()
        .find_map(|l| l.split("GitHub sandbox) is at ").nth(1))
        .and_then(|rest| rest.split_whitespace().next())
        .map(|url| url.trim_end_matches('/').to_owned())
        .unwrap_or_else(|| panic!("github0 in the banner: {:#?}", up.banner));
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

    // 1. The consent card, the walk (github0 asks alice to sign in, then to authorize), the
    //    pending comment made once by itself.
    let (events, walk) =
        ask_with_consent(&alice, &agent, &csrf, &comment, "alice", &alice_pw).await;
    assert!(walk.github_sign_in && walk.github_consent, "{walk:?}");
    let mcp_card = events.iter().find_map(|(e, d)| {
        (e == "consent_required" && d["connection"] == "github-mcp" && d["waiting"] == false)
            .then(|| d["interactionUri"].as_str().unwrap().to_owned())
    });
    assert!(tool_results(&events).contains("LGTM"), "{events:#?}");
    assert_eq!(comments_by(&github, "alice").await, 1);

    // 2. The same request again: no consent.
    let again = Turn::start(&alice, &agent, &csrf, &comment).await;
    again.finish_without_consent().await;
    assert_eq!(comments_by(&github, "alice").await, 2);

    // 3. The GitHub MCP connection asks its own consent; get_me answers alice.
    let me = mcp_get_me(&alice, &agent, &csrf, "alice", &alice_pw, mcp_card).await;
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

    // 7. alice removes the consent on idp0's Connected apps page: the grant goes at github0 too,
    //    so the next request asks again and github0 shows its consent page again.
    let issuer = format!("http://localhost:{}", up.idp);
    let page = alice
        .http
        .get(format!("{issuer}/connected-apps"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let resource = format!("{github}/api/v3");
    assert!(page.contains(&resource), "{page}");
    let csrf_field = testkit::hidden_fields(&page)
        .into_iter()
        .find(|(k, _)| k == "csrf")
        .unwrap()
        .1;
    let removed = alice
        .http
        .post(format!("{issuer}/connected-apps/remove"))
        .form(&[
            ("csrf", csrf_field.as_str()),
            ("agent", devstack::AGENT_ID),
            ("resource", resource.as_str()),
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
    let (_, walk) = ask_with_consent(&alice, &agent, &csrf, &comment, "alice", &alice_pw).await;
    assert!(walk.github_consent, "github0 asks again: {walk:?}");
    assert_eq!(comments_by(&github, "alice").await, 4);

    // Both connections are one app at github0, so its grant took the GitHub MCP tokens too:
    // with these short-lived tokens idp0's refresh is refused and that connection asks again.
    let me = mcp_get_me(&alice, &agent, &csrf, "alice", &alice_pw, None).await;
    assert!(me.contains("alice"), "{me}");

    let log = up.stop();
    for secret in [&alice_pw, &bob_pw] {
        assert!(!log.contains(secret.as_str()), "no password in the log");
    }
    assert!(
        !log.contains("ghu_") && !log.contains("ghr_"),
        "no GitHub token in the log"
    );
    eprintln!("J3 end to end took {:?}", started.elapsed());
}
