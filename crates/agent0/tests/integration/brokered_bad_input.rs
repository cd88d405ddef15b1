//! Brokered consent's bad input and faults in the chat (issue 8, "Bad input and faults"), one
//! rstest row each: the fault, the words the person reads in the turn's SSE events (a tool chip,
//! a consent card, the turn's last words), what went over the wire (GitHub's answer in its own
//! shape, the org authorization server's OAuth error, or no request at all when agent0 refuses
//! first), and what is left behind (no comment posted, no wait left open, the conversation goes
//! on). Every row also checks that no ISV token, ID token or other JWT appears in an event, an
//! answer, or any log line of the servers in this binary.
//!
//! agent0 and idp0 (logins) are real, on 127.0.0.1:0; the org AS's brokered exchange and GitHub
//! are the recording stand-ins of [`super::brokered_stand_in`]. The IdP side of the same list
//! (consent pages, callback, vault, refresh) is `idp0`'s `brokered_bad_input`.

use std::sync::Arc;
use std::time::Duration;

use axum::http::StatusCode;
use rstest::rstest;
use serde_json::{Value, json};

use super::brokered_stand_in::{
    Mcp, PR, RESOURCE, Setup, StandIn, claims_of, comment_call, events_of, start, start_with,
    stream,
};
use super::faults::Scripted;

/// The fault of a row.
#[derive(Debug, Clone, Copy)]
enum Fault {
    /// Reading a pull request that does not exist: GitHub answers 404 `{"message":"Not Found"}`.
    PrNotFound,
    /// Commenting on a pull request that does not exist (404 again).
    CommentOnMissingPr,
    /// A comment of 65,537 characters (GitHub takes at most 65,536).
    CommentTooLong,
    /// A PR URL that points somewhere other than the configured GitHub web host.
    PrUrlElsewhere(&'static str),
    /// The person revoked the app at GitHub: the cached ISV token is refused (401), the IdP
    /// would hand it back until agent0 revokes it there (`token_type_hint=oauth_sts`), then,
    /// its refresh refused too, it asks for consent again.
    RevokedAtIsv,
    /// The person denies consent.
    ConsentDenied,
    /// The browser asks agent0 to exchange for a resource that is not one of its connections.
    ResourceNotConnected,
}

/// What went over the wire.
#[derive(Debug, Clone, Copy)]
enum Wire {
    /// Nothing: neither the IdP nor GitHub was asked.
    NoRequest,
    /// GitHub was asked `what` with the person's own token and answered in its error shape.
    Github(&'static str),
    /// GitHub refused the cached token (401); the IdP answered `interaction_required`.
    GithubRefusedThenConsent,
    /// The org AS answered this OAuth error.
    Idp(&'static str),
}

#[rstest]
#[case::pr_that_does_not_exist(
    Fault::PrNotFound,
    "There is no such pull request: acme/widgets#999 does not exist",
    Wire::Github("GET acme/widgets#999"),
    0
)]
#[case::comment_on_a_pr_that_does_not_exist(
    Fault::CommentOnMissingPr,
    "There is no such pull request: acme/widgets#999 does not exist",
    Wire::Github("POST acme/widgets#999"),
    0
)]
#[case::comment_over_65536_characters(
    Fault::CommentTooLong,
    "The comment has 65537 characters; GitHub accepts at most 65536. Shorten it.",
    Wire::NoRequest,
    0
)]
#[case::pr_url_on_another_host(
    Fault::PrUrlElsewhere("https://evil.example/acme/widgets/pull/1"),
    "Only pull requests on github.com can be used",
    Wire::NoRequest,
    0
)]
#[case::pr_url_at_a_metadata_address(
    Fault::PrUrlElsewhere("http://169.254.169.254/acme/widgets/pull/1"),
    "Only pull requests on github.com can be used",
    Wire::NoRequest,
    0
)]
#[case::pr_url_with_github_as_userinfo(
    Fault::PrUrlElsewhere("https://github.com@evil.example/acme/widgets/pull/1"),
    "Only pull requests on github.com can be used",
    Wire::NoRequest,
    0
)]
#[case::pr_url_on_a_lookalike_host(
    Fault::PrUrlElsewhere("https://github.com.evil.example/acme/widgets/pull/1"),
    "Only pull requests on github.com can be used",
    Wire::NoRequest,
    0
)]
#[case::pr_url_over_plain_http(
    Fault::PrUrlElsewhere("http://github.com/acme/widgets/pull/1"),
    "Only pull requests on github.com can be used",
    Wire::NoRequest,
    0
)]
#[case::isv_token_revoked_at_github(
    Fault::RevokedAtIsv,
    "https://org.example/sts/interact/alice",
    Wire::GithubRefusedThenConsent,
    1
)]
#[case::consent_denied(
    Fault::ConsentDenied,
    "Consent was denied, so I did not do that. Nothing was sent.",
    Wire::Idp("access_denied"),
    0
)]
#[case::resource_not_a_connection(
    Fault::ResourceNotConnected,
    "that resource is not a brokered connection of this agent",
    Wire::NoRequest,
    0
)]
#[tokio::test]
async fn bad_input_in_the_chat(
    #[case] fault: Fault,
    #[case] message: &str,
    #[case] wire: Wire,
    #[case] comments_after: usize,
) {
    let logs = super::logs::capture();
    let Setup {
        stack,
        model,
        standin,
    } = start(&[]).await;
    if !matches!(fault, Fault::ConsentDenied) {
        standin.world().consented.insert("alice".into());
    }
    let alice = Arc::new(stack.login("alice").await);
    let mut github_before = standin.world().github.len();
    let mut exchanges_before = standin.world().exchanges.len();

    // The fault, and everything agent0 showed (SSE events or the API's answer).
    let shown: Vec<(String, Value)> = match fault {
        Fault::PrNotFound => {
            model.push(Scripted::tool(
                "github_get_pull_request",
                json!({"owner": "acme", "repo": "widgets", "pull_number": 999}),
            ));
            model.push(Scripted::text("ok"));
            alice.chat_stream("show me PR 999 in acme/widgets").await
        }
        Fault::CommentOnMissingPr => {
            model.push(comment_call(
                "https://github.com/acme/widgets/pull/999",
                "LGTM",
            ));
            model.push(Scripted::text("ok"));
            alice.chat_stream("comment LGTM on PR 999").await
        }
        Fault::CommentTooLong => {
            model.push(comment_call(PR, &"x".repeat(65_537)));
            model.push(Scripted::text("ok"));
            alice.chat_stream("comment a long text on PR 1").await
        }
        Fault::PrUrlElsewhere(url) => {
            model.push(comment_call(url, "LGTM"));
            model.push(Scripted::text("ok"));
            alice.chat_stream("comment LGTM there").await
        }
        Fault::RevokedAtIsv => {
            // A first call caches alice's ISV token.
            model.push(Scripted::tool(
                "github_get_pull_request",
                json!({"owner": "acme", "repo": "widgets", "pull_number": 1}),
            ));
            model.push(Scripted::text("ok"));
            let first = alice.chat("show me PR 1 in acme/widgets").await;
            assert_eq!(first["toolResults"][0]["isError"], false, "{first}");
            // alice revokes the app at GitHub: her token is dead and consent is needed again,
            // but the IdP hands the same token back until agent0 revokes it there.
            let refused = standin.revoke_at_github("alice");
            github_before = standin.world().github.len();
            exchanges_before = standin.world().exchanges.len();
            model.push(comment_call(PR, "LGTM"));
            model.push(Scripted::text("Commented."));
            let turn = stream(
                &alice,
                "comment \"LGTM\" on https://github.com/acme/widgets/pull/1",
            );
            wait_for_card(&stack).await;
            assert!(
                standin.world().comments.is_empty(),
                "nothing before consent"
            );
            assert_revoked_at_the_idp(&standin, exchanges_before, &refused);
            standin.world().consented.insert("alice".into());
            tokio::time::timeout(Duration::from_secs(20), turn)
                .await
                .unwrap()
                .unwrap()
        }
        Fault::ConsentDenied => {
            model.push(comment_call(PR, "LGTM"));
            model.push(Scripted::text("should not be asked"));
            let turn = stream(
                &alice,
                "comment \"LGTM\" on https://github.com/acme/widgets/pull/1",
            );
            standin.wait_for_exchange("alice").await;
            standin.world().denied.insert("alice".into());
            tokio::time::timeout(Duration::from_secs(20), turn)
                .await
                .unwrap()
                .unwrap()
        }
        Fault::ResourceNotConnected => {
            let (code, body) = alice
                .post(
                    "/api/oauth-sts/exchange",
                    &json!({"resource": "https://elsewhere.example"}),
                )
                .await;
            assert_eq!(code, StatusCode::BAD_REQUEST, "{body}");
            assert_eq!(body["status"], "error", "{body}");
            vec![("answer".to_owned(), body)]
        }
    };
    let text = serde_json::to_string(&shown).unwrap();

    // (a) A clear message: in a tool chip, a consent card or the turn's last words.
    assert!(
        text.contains(message),
        "{fault:?}: {message:?} not in {text}"
    );
    if !matches!(fault, Fault::ResourceNotConnected) {
        let done = events_of(&shown, "done");
        assert_eq!(done.len(), 1, "{fault:?}: the turn ended: {text}");
        assert!(events_of(&shown, "error").is_empty(), "{fault:?}: {text}");
        let chip = &done[0]["toolResults"][0];
        let failed = !matches!(fault, Fault::RevokedAtIsv);
        assert_eq!(chip["isError"], failed, "{fault:?}: {chip}");
    }

    // (b) What went over the wire.
    let (github, exchanges) = {
        let world = standin.world();
        (
            world.github[github_before..].to_vec(),
            world.exchanges[exchanges_before..].to_vec(),
        )
    };
    match wire {
        Wire::NoRequest => {
            assert!(github.is_empty(), "{fault:?}: GitHub was asked {github:?}");
            assert!(exchanges.is_empty(), "{fault:?}: the IdP was asked");
        }
        Wire::Github(what) => {
            // Asked once, as alice (her own token), and not repeated.
            assert_eq!(
                github,
                vec![(what.to_owned(), "alice".to_owned())],
                "{fault:?}"
            );
        }
        Wire::GithubRefusedThenConsent => {
            // The revoked token was refused ("?": GitHub did not know it), then, after consent,
            // the comment went through as alice, once.
            assert_eq!(
                github.first(),
                Some(&("POST acme/widgets#1".to_owned(), "?".to_owned())),
                "{github:?}"
            );
            assert_eq!(
                github.last(),
                Some(&("POST acme/widgets#1".to_owned(), "alice".to_owned())),
                "{github:?}"
            );
            let cards = events_of(&shown, "consent_required");
            assert_eq!(cards.len(), 1, "{text}");
            assert_eq!(cards[0]["waiting"], true);
        }
        Wire::Idp(error) => {
            // The exchange, answered `access_denied` (what the stand-in answers once the person
            // denied), and GitHub never asked.
            let denied = standin.world().denied.contains("alice");
            assert_eq!(
                error,
                if denied { "access_denied" } else { "?" },
                "{fault:?}"
            );
            assert!(!exchanges.is_empty(), "{fault:?}");
            assert!(github.is_empty(), "{fault:?}: GitHub was asked {github:?}");
            let (_, form) = exchanges.last().unwrap();
            assert_eq!(form["resource"], RESOURCE);
        }
    }

    // (c) Nothing half-written: the comments GitHub holds, no wait left open, and the
    // conversation goes on.
    assert_eq!(standin.world().comments.len(), comments_after, "{fault:?}");
    assert!(stack.app.agent().consent_waits().is_empty(), "{fault:?}");
    model.push(Scripted::text("Still here."));
    let next = alice.chat("hello").await;
    assert!(next["message"].is_string(), "{fault:?}: {next}");

    // (d) No ISV token, ID token or other JWT in what agent0 showed or anything logged.
    let issued: Vec<String> = standin.world().tokens.keys().cloned().collect();
    assert!(!text.contains("gho_standin"), "{fault:?}: {text}");
    assert!(!text.contains("eyJ"), "{fault:?}: a JWT shown: {text}");
    let logged = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    assert!(
        logged.contains("agent0::audit"),
        "the capture reads agent0's lines"
    );
    let subject_tokens: Vec<String> = standin
        .world()
        .exchanges
        .iter()
        .map(|(_, form)| form["subject_token"].clone())
        .collect();
    for needle in issued
        .iter()
        .chain(&subject_tokens)
        .map(String::as_str)
        .chain(["gho_standin"])
    {
        let line = logged.lines().find(|l| l.contains(needle));
        assert!(line.is_none(), "{fault:?}: a token was logged: {line:?}");
    }
}

/// Waits until a turn waits for consent.
async fn wait_for_card(stack: &super::harness::AgentStack) {
    for _ in 0..200 {
        if !stack.app.agent().consent_waits().is_empty() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("no turn waits for consent");
}

/// Before exchanging again, agent0 revoked the refused token at the org AS, once, as OKTA.md §1
/// says (`token_type_hint=oauth_sts`, its client assertion for the revocation endpoint), and
/// then exchanged.
fn assert_revoked_at_the_idp(standin: &StandIn, exchanges_before: usize, refused: &str) {
    let world = standin.world();
    assert_eq!(world.revocations.len(), 1, "one revocation");
    let (made_before, form) = &world.revocations[0];
    assert_eq!(
        *made_before, exchanges_before,
        "revoked before exchanging again"
    );
    assert!(world.exchanges.len() > exchanges_before, "then exchanged");
    assert_eq!(form["token"], refused);
    assert_eq!(form["token_type_hint"], "oauth_sts");
    assert_eq!(
        form["client_assertion_type"],
        "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
    );
    let assertion = claims_of(&form["client_assertion"]);
    assert_eq!(
        assertion["aud"],
        format!("{}/oauth2/v1/revoke", world.org),
        "{assertion}"
    );
    assert_eq!(assertion["iss"], assertion["sub"]);
    assert!(world.vault.is_empty(), "the IdP forgot the refused token");
}

/// The same for the GitHub MCP server (auth `oauth-sts`): its 401 to the revoked token makes
/// agent0 revoke it at the IdP and exchange again; consent is asked, and `get_me` resumes.
#[tokio::test]
async fn github_mcp_token_revoked_at_github_is_revoked_at_the_idp_then_consent_resumes() {
    let Setup {
        stack,
        model,
        standin,
    } = start_with(&[], Mcp::Declared).await;
    standin.world().consented.insert("alice".into());
    let alice = Arc::new(stack.login("alice").await);
    model.push(Scripted::tool("get_me", json!({})));
    model.push(Scripted::text("ok"));
    let first = alice.chat("who am I on GitHub?").await;
    assert_eq!(first["toolResults"][0]["isError"], false, "{first}");

    let refused = standin.revoke_at_github("alice");
    let exchanges_before = standin.world().exchanges.len();
    model.push(Scripted::tool("get_me", json!({})));
    model.push(Scripted::text("ok"));
    let turn = stream(&alice, "who am I on GitHub?");
    wait_for_card(&stack).await;
    assert_revoked_at_the_idp(&standin, exchanges_before, &refused);
    standin.world().consented.insert("alice".into());
    let events = tokio::time::timeout(Duration::from_secs(20), turn)
        .await
        .unwrap()
        .unwrap();
    let cards = events_of(&events, "consent_required");
    assert_eq!(cards.len(), 1, "{events:?}");
    assert_eq!(cards[0]["connection"], "github-mcp");
    let done = events_of(&events, "tool_done");
    assert_eq!(done[0]["isError"], false, "{done:?}");
    assert!(
        done[0]["result"].as_str().unwrap().contains("\"alice\""),
        "{done:?}"
    );
    let calls = standin.world().github.clone();
    assert_eq!(
        calls.last(),
        Some(&("MCP get_me".to_owned(), "alice".to_owned()))
    );
}
