//! Journey J3 (brokered consent, issue 8) when the person revokes the app at GitHub, end to end
//! through `secure-agent up` on ports the OS picked (agent0, idp0 and github0 as they ship):
//! alice consents and comments, then removes her authorization of the app at github0 itself
//! (as on github.com's Settings → Applications → Revoke: the grant and every token it issued).
//! idp0 still holds her access token, valid by its expiry, so agent0 — refused by GitHub —
//! revokes it at idp0 (`token_type_hint=oauth_sts`, OKTA.md §1) before exchanging again; idp0's
//! refresh is refused by github0 and the exchange answers `interaction_required`: the next
//! comment shows the consent card, alice consents, the call resumes and the comment is made
//! exactly once.

use serde_json::Value;
use testkit::Browser;

use super::demo_password;
use super::j3::{ask_with_consent, comments_by, github_url};
use super::up::{Up, log_in_to_agent0};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn j3_app_revoked_at_github_asks_for_consent_again_and_resumes() {
    let dir = tempfile::tempdir().unwrap();
    // github0's default token lifetime (hours): idp0's cached token stays valid by its expiry.
    let up = Up::start(dir.path(), [0; 4]);
    let github = github_url(&up);
    let agent = format!("http://localhost:{}", up.agent);
    let comment = format!("comment \"LGTM\" on {github}/acme/widgets/pull/1");
    let password = demo_password(dir.path(), "alice");
    let alice = Browser::new();
    let csrf = log_in_to_agent0(&alice, &agent, "alice", &password).await;

    // alice consents; the comment is made.
    ask_with_consent(&alice, &agent, &csrf, &comment, "alice", &password).await;
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
    // (ask_with_consent asserts exactly one card, which waits.)
    let (events, _) = ask_with_consent(&alice, &agent, &csrf, &comment, "alice", &password).await;
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
