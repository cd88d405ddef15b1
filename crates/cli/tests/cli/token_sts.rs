//! `secure-agent token exchange --sts`: the brokered (OAuth STS) exchange from the shell against
//! a real idp0 whose agent has a brokered connection — first the consent link and a non-zero
//! exit, then (consent in the vault) the token's type, scope and expiry, the token itself only
//! with `--raw`.

use std::process::Command;

use secrecy::{ExposeSecret, SecretString};
use testkit::{Browser, IdpHandle};

use super::BIN;

const RESOURCE: &str = "https://api.github.example";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_exchange_sts_prints_the_consent_link_then_the_decoded_outcome() {
    let dir = tempfile::tempdir().unwrap();
    devstack::ensure(dir.path(), None).unwrap();
    let path = dir.path().join(devstack::CONFIG_FILE);
    let mut file: idp0::config::ConfigFile =
        toml::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    file.agents[0]
        .brokered_connections
        .push(idp0::config::BrokeredConnectionEntry {
            kind: idp0::config::BrokeredKind::Application,
            name: "Sandbox Git".into(),
            resource: format!("{RESOURCE}/"),
            authorize_url: "http://127.0.0.1:9/authorize".into(),
            token_url: "http://127.0.0.1:9/token".into(),
            revocation_url: None,
            revocation: Default::default(),
            client_id: "isv".into(),
            client_secret: Some("isv-secret".into()),
            client_secret_env: None,
            scopes: vec!["repo".into()],
        });
    std::fs::write(&path, toml::to_string(&file).unwrap()).unwrap();
    let idp = IdpHandle::start_in(dir.path(), protocol::clock::system())
        .await
        .unwrap();
    let id_token = idp
        .login(&Browser::new(), "alice")
        .await
        .unwrap()
        .id_token
        .unwrap();
    let env_file = idp.data_dir.join(devstack::AGENT0_ENV);
    let (issuer, token) = (idp.issuer.clone(), id_token.expose_secret().to_owned());
    let run = move |raw: bool| {
        let mut command = Command::new(BIN);
        command
            .args(["token", "exchange", "--sts", "--env-file"])
            .arg(&env_file)
            .args([
                "--issuer",
                &issuer,
                "--resource",
                RESOURCE,
                "--id-token",
                &token,
            ])
            .env_remove("OKTA_DOMAIN");
        if raw {
            command.arg("--raw");
        }
        command.output().unwrap()
    };

    let run_now = run.clone();
    let first = tokio::task::spawn_blocking(move || run_now(false))
        .await
        .unwrap();
    assert!(!first.status.success());
    let out: serde_json::Value = serde_json::from_slice(&first.stdout).unwrap();
    assert_eq!(out["status"], "interaction_required");
    assert!(
        out["interaction_uri"]
            .as_str()
            .unwrap()
            .starts_with(&format!("{}/oauth2/v1/sts/interaction/", idp.issuer))
    );
    assert_eq!(out["interval"], 5);
    let stderr = String::from_utf8_lossy(&first.stderr);
    assert!(
        stderr.contains("open") && stderr.contains("browser"),
        "{stderr}"
    );

    // Consent in the vault, as idp0's callback stores it.
    let agent = idp.idp.client(devstack::AGENT_ID).unwrap();
    let connection = agent.brokered_connection(RESOURCE).unwrap().clone();
    let user = idp.idp.directory().config.users["alice"].clone();
    let tokens = idp0::sts::isv::IsvTokens {
        access_token: SecretString::from("gho_sandboxtoken".to_owned()),
        refresh_token: None,
        expires_in: Some(28_800),
        scope: Some("repo".into()),
    };
    let entry =
        idp0::sts::sealed_entry(&idp.idp, &user.id, &agent, &connection, &tokens, None).unwrap();
    idp.idp.store.upsert_vault_entry(&entry).await.unwrap();

    let (plain, raw) = tokio::task::spawn_blocking(move || (run(false), run(true)))
        .await
        .unwrap();
    assert!(
        plain.status.success(),
        "{}",
        String::from_utf8_lossy(&plain.stderr)
    );
    let out: serde_json::Value = serde_json::from_slice(&plain.stdout).unwrap();
    assert_eq!(
        out["issued_token_type"],
        "urn:okta:params:oauth:token-type:oauth-sts"
    );
    assert_eq!(out["token_type"], "Bearer");
    assert_eq!(out["scope"], "repo");
    assert!(out["expires_in"].as_i64().unwrap() > 28_000);
    assert!(
        !String::from_utf8_lossy(&plain.stdout).contains("gho_"),
        "no raw token"
    );
    let out: serde_json::Value = serde_json::from_slice(&raw.stdout).unwrap();
    assert_eq!(out["raw"], "gho_sandboxtoken");
}
