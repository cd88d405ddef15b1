//! Nothing secret reaches the logs: every line of this test binary (debug and up) is captured
//! while a whole journey runs — sign-in, consent, code exchange, refresh, REST and MCP calls,
//! revocation — and searched for the password, the client secret, the code and every token.

#![allow(clippy::unwrap_used, unreachable_pub, dead_code)]

use std::sync::{Arc, Mutex, OnceLock};

mod integration {
    pub mod harness;
}

use integration::harness::*;

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

fn capture() -> &'static Captured {
    static LOGS: OnceLock<Captured> = OnceLock::new();
    LOGS.get_or_init(|| {
        let logs = Captured::default();
        let writer = logs.clone();
        // `cookie_store` is the test browser's own jar (client side), not the server.
        tracing_subscriber::fmt()
            .with_env_filter(
                "debug,hyper=info,hyper_util=info,h2=info,rustls=info,reqwest=info,cookie_store=info",
            )
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .init();
        logs
    })
}

#[tokio::test]
async fn no_token_code_password_or_secret_is_logged() {
    let logs = capture();
    let dir = tempfile::tempdir().unwrap();
    let sandbox = Sandbox::start(dir.path()).await;
    let browser = sandbox.browser();
    let callback = sandbox
        .authorize(
            &browser,
            "alice",
            ALICE_PASSWORD,
            &sandbox.authorize_url("repo", "state-1", None),
            "allow",
        )
        .await;
    let code = param(&callback, "code").unwrap();
    let tokens = sandbox
        .token(&[
            ("client_id", CLIENT_ID),
            ("client_secret", CLIENT_SECRET),
            ("code", &code),
        ])
        .await;
    // A replay and a wrong secret, so the refusal paths log too.
    sandbox
        .token(&[
            ("client_id", CLIENT_ID),
            ("client_secret", CLIENT_SECRET),
            ("code", &code),
        ])
        .await;
    sandbox
        .token(&[
            ("client_id", CLIENT_ID),
            ("client_secret", "wrong-secret-value"),
            ("code", &code),
        ])
        .await;
    let fresh = sandbox.tokens_for("bob", BOB_PASSWORD, "repo").await;
    let refreshed = sandbox
        .token(&[
            ("client_id", CLIENT_ID),
            ("client_secret", CLIENT_SECRET),
            ("grant_type", "refresh_token"),
            ("refresh_token", fresh["refresh_token"].as_str().unwrap()),
        ])
        .await;
    let access = refreshed["access_token"].as_str().unwrap();
    let created = sandbox
        .api()
        .post(sandbox.url("/api/v3/repos/acme/widgets/issues/1/comments"))
        .bearer_auth(access)
        .json(&serde_json::json!({"body": "LGTM"}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    let mcp = reqwest::Client::new()
        .post(sandbox.url("/mcp"))
        .bearer_auth(access)
        .header("accept", "application/json, text/event-stream")
        .json(
            &serde_json::json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
            "params": {"name": "get_me", "arguments": {}}}),
        )
        .send()
        .await
        .unwrap();
    assert!(mcp.status().is_success() || mcp.status().is_client_error());
    sandbox
        .api()
        .delete(sandbox.url(&format!("/api/v3/applications/{CLIENT_ID}/grant")))
        .basic_auth(CLIENT_ID, Some(CLIENT_SECRET))
        .json(&serde_json::json!({"access_token": access}))
        .send()
        .await
        .unwrap();

    let text = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    assert!(text.contains("github0::audit"), "the audit lines are there");
    assert!(text.contains("tokens issued") && text.contains("comment created"));
    let mut secrets = vec![
        ALICE_PASSWORD.to_owned(),
        BOB_PASSWORD.to_owned(),
        CLIENT_SECRET.to_owned(),
        "wrong-secret-value".to_owned(),
        code.clone(),
    ];
    for set in [&tokens, &fresh, &refreshed] {
        for key in ["access_token", "refresh_token"] {
            secrets.push(set[key].as_str().unwrap().to_owned());
        }
    }
    for secret in &secrets {
        assert!(!text.contains(secret.as_str()), "a secret was logged");
    }
    // Nothing shaped like a GitHub token either (a prefix and 36 letters or digits; the
    // migration's comments, logged by sqlx, name the prefixes alone).
    for prefix in ["ghu_", "ghr_", "gho_"] {
        for (at, _) in text.match_indices(prefix) {
            let rest = &text[at + prefix.len()..];
            let shaped =
                rest.len() >= 36 && rest.bytes().take(36).all(|b| b.is_ascii_alphanumeric());
            assert!(!shaped, "a token-shaped value was logged");
        }
    }
}
