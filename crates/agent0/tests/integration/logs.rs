//! Nothing secret reaches the logs: every log line of this test binary (all levels from debug up,
//! from every test running alongside) is captured while a full journey runs — login, delegated
//! calls with step-ups, logout — and searched for tokens, passwords, secrets and cookies.

use std::sync::{Arc, Mutex, OnceLock};

use super::harness::AgentStack;

#[derive(Clone, Default)]
pub(super) struct Captured(pub(super) Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

pub(super) fn capture() -> &'static Captured {
    static LOGS: OnceLock<Captured> = OnceLock::new();
    LOGS.get_or_init(|| {
        let logs = Captured::default();
        let writer = logs.clone();
        // `cookie_store` is the test browser's own cookie jar (client side), which logs the
        // cookies it stores at debug level; `thirtyfour` drives the browser tests' Chromium and
        // logs WebDriver replies (screenshots as base64, which can hold "eyJ" by chance); neither
        // is part of any server.
        tracing_subscriber::fmt()
            .with_env_filter(
                "debug,hyper=info,hyper_util=info,h2=info,rustls=info,reqwest=info,cookie_store=info,\
                 thirtyfour=info",
            )
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .init();
        logs
    })
}

#[tokio::test]
async fn no_token_secret_password_or_cookie_is_logged() {
    let logs = capture();
    let stack = AgentStack::start().await;
    let alice = stack.login("alice").await;
    alice.chat_approved("list my todos").await;
    alice.chat_approved("add \"log me not\"").await;
    alice.chat_approved("delete todo 999999").await;
    let (_, status) = alice.get("/auth/status").await;
    assert_eq!(status["authenticated"], true);
    alice.post("/auth/logout", &serde_json::json!({})).await;

    let text = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    assert!(text.contains("agent0::audit"), "the audit lines are there");
    assert!(text.contains("tool call"), "and so are the tool calls");
    assert!(
        text.contains("tool call confirmation") && text.contains("approved"),
        "and the person's decisions"
    );
    let env = stack.stack.idp.env(devstack::AGENT0_ENV);
    for (what, secret) in [
        ("a JWT", "eyJ".to_owned()),
        ("alice's password", stack.stack.idp.password("alice")),
        ("the client secret", env["OKTA_CLIENT_SECRET"].clone()),
        ("the CSRF token", alice.csrf.clone()),
        ("a private key", "PRIVATE KEY".to_owned()),
        ("a session cookie", "agent0_session=".to_owned()),
    ] {
        let line = text.lines().find(|l| l.contains(&secret));
        assert!(line.is_none(), "{what} was logged: {line:?}");
    }
}
