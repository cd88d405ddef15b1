//! Sessions over time (ARCHITECTURE §5.1): when the ID token nears expiry agent0 renews it with
//! the refresh token (and the renewed token is what the agent then exchanges); without a refresh
//! token the session ends and the person is asked to log in again — an expired ID token is
//! never used. agent0's clock is moved forward; idp0 keeps real time.

use std::sync::Arc;

use agent0::llm::offline::OfflineModel;
use protocol::clock::FixedClock;
use reqwest::StatusCode;
use serde_json::json;

use super::harness::AgentStack;

/// idp0's development ID token lifetime.
const ID_TOKEN_LIFETIME: i64 = 3600;

#[tokio::test]
async fn an_expiring_id_token_is_renewed_with_the_refresh_token() {
    let clock = FixedClock::frozen_now();
    let agent_clock = clock.clone();
    let stack = AgentStack::start_with(Arc::new(OfflineModel::new()), move |config| {
        config.clock = agent_clock;
    })
    .await;
    let alice = stack.login("alice").await;
    let (_, before) = alice.get("/api/me/claims").await;
    alice.chat_approved("add \"before the refresh\"").await;

    // Just inside the renewal margin of the first ID token, from agent0's point of view.
    clock.advance(ID_TOKEN_LIFETIME - 30);
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await; // a new iat at idp0
    let (code, after) = alice.get("/api/me/claims").await;
    assert_eq!(code, StatusCode::OK, "{after}");
    assert_eq!(after["claims"]["sub"], before["claims"]["sub"]);
    assert_ne!(
        after["claims"]["iat"], before["claims"]["iat"],
        "a renewed ID token"
    );
    // The agent keeps working for the person with the renewed login.
    let reply = alice.chat_approved("list my todos").await;
    assert!(
        reply["message"]
            .as_str()
            .unwrap()
            .contains("before the refresh"),
        "{reply}"
    );
}

#[tokio::test]
async fn without_a_refresh_token_an_expired_login_asks_to_log_in_again() {
    let clock = FixedClock::frozen_now();
    let agent_clock = clock.clone();
    let stack = AgentStack::start_with(Arc::new(OfflineModel::new()), move |config| {
        config.clock = agent_clock;
        config.offline_access = false;
    })
    .await;
    let alice = stack.login("alice").await;
    alice.chat_approved("list my todos").await;
    clock.advance(ID_TOKEN_LIFETIME);
    let (status, body) = alice
        .post("/api/chat", &json!({"message": "list my todos"}))
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert_eq!(body["error"], "login_expired");
    let (_, status) = alice.get("/auth/status").await;
    assert_eq!(status["authenticated"], false);
    // Logging in again (at idp0's time) restores everything, conversation included.
    clock.advance(-ID_TOKEN_LIFETIME);
    let again = stack.login("alice").await;
    let (_, conversation) = again.get("/api/conversations/current").await;
    assert_eq!(conversation["messages"].as_array().unwrap().len(), 2);
}
