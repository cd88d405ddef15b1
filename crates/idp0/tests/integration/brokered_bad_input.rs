//! Brokered consent's bad input and faults at the IdP (issue 8, "Bad input and faults"), one
//! rstest row each: the fault, what the person sees (idp0's page: status and words), what the
//! agent gets at the org token endpoint next (RFC 6749 §5.2 / RFC 8693 / OKTA.md §1 and
//! draft-parecki-oauth-jwt-grant-interaction-response: status, `error`, `error_description`),
//! and what is left behind (nothing half-written: no vault entry after a failure, a consent
//! untouched by a replay, a link still usable after someone else's attempt). Every row also checks
//! that no ISV token, code, `state`, client secret or JWT shows on a page, in an answer, or in a
//! line idp0 logged (all of this binary's log lines are captured).
//!
//! Real idp0 on 127.0.0.1:0 with the stand-in ISV of [`super::brokered_isv`]; the chat side of
//! the same list is `agent0`'s `brokered_bad_input`.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, OnceLock};

use idp0::config::ConfigFile;
use reqwest::StatusCode;
use rstest::rstest;
use secrecy::SecretString;
use testkit::{Browser, IdpHandle, form_action, hidden_fields};

use super::brokered::{Answer, Setup, setup};
use super::brokered_isv::ISV_SECRET;

/// The connection's resource as stored and sent (see `brokered.rs`).
const RESOURCE: &str = "https://api.github.example";
/// The stand-in connection's name, as idp0's pages say it.
const APP: &str = "Sandbox Git";
/// Nothing listens there: an ISV that is down.
const DEAD: &str = "http://127.0.0.1:9";

/// Every log line of this test binary (idp0's included).
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn logs() -> &'static Captured {
    static LOGS: OnceLock<Captured> = OnceLock::new();
    LOGS.get_or_init(|| {
        let logs = Captured::default();
        let writer = logs.clone();
        // The servers' own crates at debug; the test's HTTP client (reqwest, hyper, its cookie
        // jar) at info: it is the browser, not a server.
        tracing_subscriber::fmt()
            .with_env_filter(
                "info,idp0=debug,protocol=debug,httpserve=debug,hyper=info,hyper_util=info,\
                 reqwest=info,cookie_store=info,sqlx=warn",
            )
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .try_init()
            .expect("no other log subscriber in this test binary");
        logs
    })
}

/// The fault of a row.
#[derive(Debug, Clone, Copy)]
enum Fault {
    /// The person clicks Deny on idp0's page.
    DeniedAtIdp,
    /// The person denies at the app (it redirects back with `error=access_denied`).
    DeniedAtApp,
    /// A callback with a `state` idp0 never issued arrives while the real one is on its way.
    ForeignState,
    /// The ISV's redirect to the callback is replayed after it was used.
    ReplayedState,
    /// bob opens alice's interaction link.
    AnotherPersonsLink,
    /// The link is opened after `expires_in`.
    ExpiredLink,
    /// The link is opened again after the consent was given.
    LinkOpenedTwice,
    /// The ISV's token endpoint answers 500 when the code is redeemed.
    App500AtCallback,
    /// The ISV's token endpoint cannot be reached when the code is redeemed.
    AppDownAtCallback,
    /// The ISV's token endpoint answers 500 when an expired token is refreshed.
    App500AtRefresh,
    /// The ISV's token endpoint cannot be reached when an expired token is refreshed.
    AppDownAtRefresh,
    /// The person revoked the app at the ISV; the agent, refused there, tells idp0
    /// (`token_type_hint=oauth_sts`) and exchanges again.
    RevokedAtApp,
    /// The refresh token expired: the ISV refuses the refresh (GitHub: HTTP 200
    /// `{"error":"bad_refresh_token"}`).
    RefreshTokenExpired,
    /// The agent asks for a resource that is not one of its connections.
    ResourceNotConnected,
}

/// What the row leaves behind.
#[derive(Debug, Clone, Copy)]
enum After {
    /// No vault entry; the next exchange starts a new interaction.
    NothingStored,
    /// The same link still works for alice: she completes it and the exchange answers 200.
    LinkStillUsable,
    /// The consent is as it was: the same ISV token, no second code redeemed.
    ConsentUnchanged,
    /// The vault entry is still there (the ISV's trouble may pass).
    ConsentKept,
    /// The vault entry is gone (the ISV refused the refresh): consent is asked again.
    ConsentDropped,
    /// Nothing at all was created for the foreign resource.
    NothingCreated,
}

/// What a row saw.
struct Seen {
    s: Setup,
    alice: Browser,
    id_token: SecretString,
    /// The page the person was shown, when the fault is on a page.
    page: Option<(StatusCode, String)>,
    /// The agent's next exchange.
    wire: Answer,
    /// The interaction link of the row, when there was one.
    uri: Option<String>,
    /// The callback URL the ISV sent alice's browser to, when the row got that far.
    callback: Option<String>,
    /// The ISV token alice had before the fault, when she had consented.
    before: Option<String>,
    /// Every page and error answer shown along the way.
    shown: Vec<String>,
}

#[rstest]
#[case::consent_denied_at_idp0(
    Fault::DeniedAtIdp,
    Some((StatusCode::OK, "You did not let agent0-agent use Sandbox Git")),
    (StatusCode::BAD_REQUEST, "access_denied", "the user denied the request"),
    After::NothingStored
)]
#[case::consent_denied_at_the_app(
    Fault::DeniedAtApp,
    Some((StatusCode::OK, "Sandbox Git did not grant access")),
    (StatusCode::BAD_REQUEST, "access_denied", "the user denied the request"),
    After::NothingStored
)]
#[case::callback_with_a_foreign_state(
    Fault::ForeignState,
    Some((StatusCode::BAD_REQUEST, "idp0 was not waiting for this answer")),
    (StatusCode::BAD_REQUEST, "interaction_pending", ""),
    After::LinkStillUsable
)]
#[case::callback_with_a_replayed_state(
    Fault::ReplayedState,
    Some((StatusCode::BAD_REQUEST, "idp0 was not waiting for this answer")),
    (StatusCode::OK, "", ""),
    After::ConsentUnchanged
)]
#[case::link_opened_by_another_person(
    Fault::AnotherPersonsLink,
    Some((StatusCode::FORBIDDEN, "This consent link was made for another person. Nothing was changed.")),
    (StatusCode::BAD_REQUEST, "interaction_pending", ""),
    After::LinkStillUsable
)]
#[case::link_opened_after_expiry(
    Fault::ExpiredLink,
    Some((StatusCode::GONE, "This consent link expired. Ask the agent to try again")),
    (StatusCode::BAD_REQUEST, "expired_token", "the interaction expired"),
    After::NothingStored
)]
#[case::link_opened_twice(
    Fault::LinkOpenedTwice,
    Some((StatusCode::GONE, "This consent link was already used and the app is connected")),
    (StatusCode::OK, "", ""),
    After::ConsentUnchanged
)]
#[case::app_answering_500_at_the_callback(
    Fault::App500AtCallback,
    Some((StatusCode::BAD_GATEWAY, "Sandbox Git could not be connected right now. Nothing was stored.")),
    (StatusCode::BAD_REQUEST, "interaction_required", "The user must authenticate"),
    After::NothingStored
)]
#[case::app_down_at_the_callback(
    Fault::AppDownAtCallback,
    Some((StatusCode::BAD_GATEWAY, "Sandbox Git could not be connected right now. Nothing was stored.")),
    (StatusCode::BAD_REQUEST, "interaction_required", "The user must authenticate"),
    After::NothingStored
)]
#[case::app_answering_500_at_refresh(
    Fault::App500AtRefresh,
    None,
    (StatusCode::SERVICE_UNAVAILABLE, "temporarily_unavailable", "Sandbox Git cannot be reached right now"),
    After::ConsentKept
)]
#[case::app_down_at_refresh(
    Fault::AppDownAtRefresh,
    None,
    (StatusCode::SERVICE_UNAVAILABLE, "temporarily_unavailable", "Sandbox Git cannot be reached right now"),
    After::ConsentKept
)]
#[case::isv_token_revoked_at_the_app(
    Fault::RevokedAtApp,
    None,
    (StatusCode::BAD_REQUEST, "interaction_required", "The user must authenticate"),
    After::ConsentDropped
)]
#[case::refresh_token_expired(
    Fault::RefreshTokenExpired,
    None,
    (StatusCode::BAD_REQUEST, "interaction_required", "The user must authenticate"),
    After::ConsentDropped
)]
#[case::resource_not_a_connection_of_the_agent(
    Fault::ResourceNotConnected,
    None,
    (StatusCode::BAD_REQUEST, "invalid_target", "Resource mismatch: not a connection of this agent"),
    After::NothingCreated
)]
#[tokio::test]
async fn bad_input_at_the_idp(
    #[case] fault: Fault,
    #[case] page: Option<(StatusCode, &str)>,
    #[case] wire: (StatusCode, &str, &str),
    #[case] after: After,
) {
    let logs = logs();
    let seen = run(fault).await;

    // (a) The person's page says what happened, in words.
    match (page, &seen.page) {
        (Some((status, words)), Some((shown_status, html))) => {
            assert_eq!(*shown_status, status, "{fault:?}: {html}");
            assert!(html.contains(words), "{fault:?}: {words:?} not in {html}");
        }
        (None, None) => {}
        (expected, shown) => panic!("{fault:?}: page {expected:?}, shown {shown:?}"),
    }

    // (b) The agent's next exchange: a standard answer.
    let (status, error, description) = wire;
    let answer = &seen.wire;
    assert_eq!(answer.status, status, "{fault:?}: {:?}", answer.body);
    assert_eq!(
        answer.cache_control.as_deref(),
        Some("no-store"),
        "{fault:?}"
    );
    if error.is_empty() {
        assert!(answer.body["access_token"].is_string(), "{:?}", answer.body);
    } else {
        assert_eq!(answer.error(), error, "{fault:?}: {:?}", answer.body);
        let said = answer.body["error_description"].as_str().unwrap_or("");
        assert!(said.contains(description), "{fault:?}: {said:?}");
        assert!(answer.body.get("access_token").is_none());
        if error == "interaction_required" {
            assert!(answer.body["interaction_uri"].is_string());
            assert_eq!(answer.body["interval"], 5);
            assert_eq!(answer.body["expires_in"], 600);
        }
    }

    // (c) Nothing half-written.
    check_after(fault, after, &seen).await;

    // (d) No token, code, state, client secret or JWT shown or logged.
    let mut secret: Vec<String> = vec![
        "isv-at-".into(),
        "isv-rt-".into(),
        "isv-code-".into(),
        ISV_SECRET.into(),
        "eyJ".into(),
    ];
    let states: Vec<String> = seen
        .s
        .isv
        .state
        .authorize_params
        .lock()
        .unwrap()
        .iter()
        .filter_map(|p| p.get("state").cloned())
        .collect();
    secret.extend(states);
    for text in &seen.shown {
        for needle in &secret {
            assert!(
                !text.contains(needle.as_str()),
                "{fault:?}: {needle:?} shown in {text}"
            );
        }
    }
    // The interaction links are the person's to open: never in a log line.
    if let Some(uri) = &seen.uri {
        secret.push(uri.rsplit('/').next().unwrap().to_owned());
    }
    let text = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    assert!(
        text.contains("idp0::audit"),
        "the capture reads idp0's lines"
    );
    for needle in &secret {
        let line = text.lines().find(|l| l.contains(needle.as_str()));
        assert!(line.is_none(), "{fault:?}: {needle:?} logged: {line:?}");
    }
}

/// Sets up the row's situation, causes the fault, and records what was shown.
async fn run(fault: Fault) -> Seen {
    let mut s = setup().await;
    if matches!(fault, Fault::AppDownAtCallback) {
        take_app_down(&mut s).await;
    }
    let alice = Browser::new();
    let mut id_token = s.login(&alice, "alice").await;
    let mut shown = Vec::new();
    let mut page = None;
    let mut uri = None;
    let mut callback = None;
    let mut before = None;
    let link = |answer: &Answer| {
        assert_eq!(answer.error(), "interaction_required", "{:?}", answer.body);
        answer.interaction_uri()
    };
    match fault {
        Fault::DeniedAtIdp | Fault::DeniedAtApp => {
            s.isv
                .state
                .deny
                .store(matches!(fault, Fault::DeniedAtApp), Ordering::SeqCst);
            let u = link(&s.exchange(&id_token).await);
            page = Some(
                s.consent(&alice, &u, "alice", matches!(fault, Fault::DeniedAtApp))
                    .await,
            );
            uri = Some(u);
        }
        Fault::ForeignState => {
            let u = link(&s.exchange(&id_token).await);
            callback = Some(to_callback(&s, &alice, &u).await);
            let forged = format!(
                "{}/oauth2/v1/sts/callback?code=attackers-code&state=attackers-state",
                s.idp.issuer
            );
            page = Some(get(&alice, &forged).await);
            s.clock.advance(5);
            uri = Some(u);
        }
        Fault::ReplayedState | Fault::LinkOpenedTwice => {
            let u = link(&s.exchange(&id_token).await);
            let back = to_callback(&s, &alice, &u).await;
            let (status, html) = get(&alice, &back).await;
            assert_eq!(status, StatusCode::OK, "{html}");
            shown.push(html);
            let hit = s.exchange(&id_token).await;
            before = Some(hit.body["access_token"].as_str().unwrap().to_owned());
            page = Some(if matches!(fault, Fault::ReplayedState) {
                // In alice's browser and in bob's: neither gets anything.
                let bob = Browser::new();
                s.login(&bob, "bob").await;
                let (status, html) = get(&bob, &back).await;
                assert_eq!(status, StatusCode::BAD_REQUEST, "{html}");
                shown.push(html);
                get(&alice, &back).await
            } else {
                s.open(&alice, &u, "alice").await
            });
            callback = Some(back);
            uri = Some(u);
        }
        Fault::AnotherPersonsLink => {
            let u = link(&s.exchange(&id_token).await);
            let bob = Browser::new();
            s.login(&bob, "bob").await;
            page = Some(s.open(&bob, &u, "bob").await);
            // And a decision posted by bob with a form of his own making changes nothing either.
            let response = bob
                .http
                .post(&u)
                .form(&[("csrf", "forged"), ("decision", "approve")])
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), StatusCode::FORBIDDEN);
            shown.push(response.text().await.unwrap());
            s.clock.advance(5);
            uri = Some(u);
        }
        Fault::ExpiredLink => {
            let u = link(&s.exchange(&id_token).await);
            s.clock.advance(601);
            page = Some(s.open(&alice, &u, "alice").await);
            uri = Some(u);
        }
        Fault::App500AtCallback | Fault::AppDownAtCallback => {
            let fail = matches!(fault, Fault::App500AtCallback);
            s.isv.state.fail_token.store(fail, Ordering::SeqCst);
            let u = link(&s.exchange(&id_token).await);
            page = Some(s.consent(&alice, &u, "alice", true).await);
            s.isv.state.fail_token.store(false, Ordering::SeqCst);
            uri = Some(u);
        }
        Fault::App500AtRefresh | Fault::RevokedAtApp | Fault::RefreshTokenExpired => {
            let hit = s.consented(&alice, &id_token, "alice").await;
            let token = hit.body["access_token"].as_str().unwrap().to_owned();
            match fault {
                Fault::App500AtRefresh => {
                    s.clock.advance(3600);
                    s.isv.state.fail_token.store(true, Ordering::SeqCst);
                }
                Fault::RevokedAtApp => {
                    // The app refuses the token and its refresh token from now on. idp0 cannot
                    // know: until told, it hands out the same token (OKTA.md §1) — so the agent,
                    // answered 401 by the app, must tell idp0 (`token_type_hint=oauth_sts`,
                    // always 200) before it exchanges again.
                    s.isv.state.refuse_refresh.store(true, Ordering::SeqCst);
                    let untold = s.exchange(&id_token).await;
                    assert_eq!(untold.body["access_token"], token.as_str());
                    assert_eq!(s.revoke(&token).await, StatusCode::OK);
                }
                _ => {
                    s.clock.advance(3600);
                    s.isv.state.refuse_refresh.store(true, Ordering::SeqCst);
                }
            }
            before = Some(token);
        }
        Fault::AppDownAtRefresh => {
            let hit = s.consented(&alice, &id_token, "alice").await;
            before = Some(hit.body["access_token"].as_str().unwrap().to_owned());
            take_app_down(&mut s).await;
            id_token = s.login(&alice, "alice").await;
            s.clock.advance(3600);
        }
        Fault::ResourceNotConnected => {}
    }
    let wire = match fault {
        Fault::ResourceNotConnected => {
            s.exchange_at(
                &s.idp.org_token_endpoint(),
                &id_token,
                "https://elsewhere.example",
            )
            .await
        }
        _ => s.exchange(&id_token).await,
    };
    if let Some((_, html)) = &page {
        shown.push(html.clone());
    }
    if wire.status != StatusCode::OK {
        shown.push(wire.body.to_string());
    }
    Seen {
        s,
        alice,
        id_token,
        page,
        wire,
        uri,
        callback,
        before,
        shown,
    }
}

/// Checks what the row left behind.
async fn check_after(fault: Fault, after: After, seen: &Seen) {
    let s = &seen.s;
    let user_id = idp0::config::user_id_for("alice");
    let store = &s.idp.idp.store;
    let entry = store
        .find_vault_entry(&user_id, devstack::AGENT_ID, RESOURCE)
        .await
        .unwrap();
    let isv = &s.isv.state;
    match after {
        After::NothingStored => {
            assert!(entry.is_none(), "{fault:?}: a vault entry was written");
            if matches!(fault, Fault::DeniedAtIdp | Fault::ExpiredLink) {
                assert!(
                    isv.authorize_params.lock().unwrap().is_empty(),
                    "{fault:?}: the app was asked"
                );
            }
            // The agent is (or, after the one-time answer, will be) given a new link.
            let next = if seen.wire.error() == "interaction_required" {
                seen.wire.interaction_uri()
            } else {
                let next = s.exchange(&seen.id_token).await;
                assert_eq!(next.error(), "interaction_required", "{:?}", next.body);
                next.interaction_uri()
            };
            assert_ne!(Some(next), seen.uri, "{fault:?}");
        }
        After::LinkStillUsable => {
            assert!(entry.is_none(), "{fault:?}");
            // Only alice's own authorize step (if any) reached the app; no code was redeemed.
            assert!(isv.authorize_params.lock().unwrap().len() <= 1);
            let uri = seen.uri.as_deref().unwrap();
            let (status, html) = match &seen.callback {
                Some(callback) => get(&seen.alice, callback).await,
                None => s.consent(&seen.alice, uri, "alice", true).await,
            };
            assert_eq!(status, StatusCode::OK, "{fault:?}: {html}");
            assert!(html.contains("Connected"), "{html}");
            let hit = s.exchange(&seen.id_token).await;
            assert_eq!(hit.status, StatusCode::OK, "{:?}", hit.body);
        }
        After::ConsentUnchanged => {
            let before = seen.before.as_deref().unwrap();
            assert_eq!(seen.wire.body["access_token"], before, "{fault:?}");
            assert!(entry.is_some());
            // One authorize step, one code, one token answer: nothing redeemed twice.
            assert_eq!(isv.authorize_params.lock().unwrap().len(), 1);
            assert_eq!(isv.issued.load(Ordering::SeqCst), 2, "{fault:?}");
        }
        After::ConsentKept => {
            let entry = entry.expect("the consent stays while the app is away");
            assert!(entry.refresh_token.is_some(), "{fault:?}");
            if matches!(fault, Fault::App500AtRefresh) {
                // The app is back: refreshed with no new consent.
                isv.fail_token.store(false, Ordering::SeqCst);
                let back = s.exchange(&seen.id_token).await;
                assert_eq!(back.status, StatusCode::OK, "{:?}", back.body);
                assert_ne!(back.body["access_token"], seen.before.as_deref().unwrap());
            }
        }
        After::ConsentDropped => {
            assert!(entry.is_none(), "{fault:?}: the refused consent stayed");
            assert_eq!(isv.refreshes.load(Ordering::SeqCst), 1, "one refresh tried");
        }
        After::NothingCreated => {
            let open = store
                .find_open_interaction(&user_id, devstack::AGENT_ID, "https://elsewhere.example")
                .await
                .unwrap();
            assert!(open.is_none(), "{fault:?}: an interaction was created");
            assert!(entry.is_none());
            assert!(isv.authorize_params.lock().unwrap().is_empty());
            // The agent's real connection is untouched: a first exchange starts its interaction.
            let next = s.exchange(&seen.id_token).await;
            assert_eq!(next.error(), "interaction_required", "{:?}", next.body);
        }
    }
    assert!(!s.database_contains("-plaintext"), "a token in the clear");
    assert!(!s.database_contains(ISV_SECRET));
}

/// `GET url` in `browser`: the status and the page.
async fn get(browser: &Browser, url: &str) -> (StatusCode, String) {
    let response = browser.http.get(url).send().await.unwrap();
    (response.status(), response.text().await.unwrap())
}

/// Approves `uri` as alice and goes through the ISV's authorize step, stopping before idp0's
/// callback: the callback URL (code and state) the ISV sent the browser to.
async fn to_callback(s: &Setup, browser: &Browser, uri: &str) -> String {
    let (status, html) = s.open(browser, uri, "alice").await;
    assert_eq!(status, StatusCode::OK, "{html}");
    let mut fields = hidden_fields(&html);
    fields.push(("decision".into(), "approve".into()));
    let to_isv = browser
        .http
        .post(form_action(uri, &html).unwrap())
        .form(&fields)
        .send()
        .await
        .unwrap();
    assert_eq!(to_isv.status(), StatusCode::SEE_OTHER);
    let isv = to_isv.headers()["location"].to_str().unwrap().to_owned();
    let back = browser.http.get(&isv).send().await.unwrap();
    assert_eq!(back.status(), StatusCode::SEE_OTHER);
    let callback = back.headers()["location"].to_str().unwrap().to_owned();
    assert!(callback.starts_with(&format!("{}/oauth2/v1/sts/callback?", s.idp.issuer)));
    callback
}

/// Restarts idp0 on the same data (vault, key, sessions) with the connection's token endpoint
/// at an address where nothing listens: the app's pages still answer, its token endpoint is down.
/// The ID tokens of the stopped idp0 name its issuer: log in again.
async fn take_app_down(s: &mut Setup) {
    s.idp.halt().await.unwrap();
    let path = s.idp.data_dir.join(devstack::CONFIG_FILE);
    let mut file: ConfigFile = toml::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let connection = file.agents[0]
        .brokered_connections
        .iter_mut()
        .find(|c| c.name == APP)
        .unwrap();
    connection.token_url = format!("{DEAD}/token");
    std::fs::write(&path, toml::to_string(&file).unwrap()).unwrap();
    s.idp = IdpHandle::start_in(&s.idp.data_dir.clone(), s.clock.clone())
        .await
        .unwrap();
}
