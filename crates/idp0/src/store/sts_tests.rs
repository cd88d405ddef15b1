//! The brokered-consent part of the [`Store`] contract ([`super::super::StsStore`]), on every
//! backend.

use rstest::rstest;

use super::{Backend, T0};
use crate::store::{Interaction, InteractionStatus, VaultEntry};

fn entry(user: &str, resource: &str) -> VaultEntry {
    VaultEntry {
        user_id: user.into(),
        agent: "agent".into(),
        resource: resource.into(),
        access_token: Some("sealed-access".into()),
        access_hash: Some(format!("hash-{user}-{resource}")),
        access_expires_at: Some(T0 + 3600),
        refresh_token: Some("sealed-refresh".into()),
        scope: "repo read:user".into(),
        granted_at: T0,
        last_used_at: None,
    }
}

fn interaction(id: &str, created_at: i64) -> Interaction {
    Interaction {
        id_hash: id.into(),
        user_id: "alice".into(),
        agent: "agent".into(),
        resource: "https://api.github.com".into(),
        status: InteractionStatus::Pending,
        created_at,
        expires_at: created_at + 600,
        last_polled_at: created_at,
        state_hash: None,
        pkce_verifier: None,
    }
}

#[rstest]
#[case::sqlite_file(Backend::SqliteFile)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn the_vault_keeps_one_entry_per_person_agent_and_connection(
    #[case] backend: Backend,
) -> anyhow::Result<()> {
    let store = backend.open().await?;
    let gh = "https://api.github.com";
    let mcp = "https://api.githubcopilot.com/mcp";
    store.upsert_vault_entry(&entry("alice", gh)).await?;
    store.upsert_vault_entry(&entry("alice", mcp)).await?;
    store.upsert_vault_entry(&entry("bob", gh)).await?;
    let mut replaced = entry("alice", gh);
    replaced.access_token = Some("sealed-access-2".into());
    store.upsert_vault_entry(&replaced).await?;
    assert_eq!(
        store.find_vault_entry("alice", "agent", gh).await?,
        Some(replaced.clone())
    );
    assert_eq!(store.find_vault_entry("alice", "other", gh).await?, None);
    assert_eq!(store.list_vault_entries("alice").await?.len(), 2);
    assert_eq!(
        store
            .find_vault_entry_by_access_hash("agent", "hash-bob-https://api.github.com")
            .await?
            .map(|e| e.user_id),
        Some("bob".into())
    );
    store
        .touch_vault_entry("alice", "agent", gh, T0 + 7)
        .await?;
    store.clear_vault_access_token("alice", "agent", gh).await?;
    let cleared = store.find_vault_entry("alice", "agent", gh).await?.unwrap();
    assert_eq!(cleared.access_token, None);
    assert_eq!(cleared.access_hash, None);
    assert_eq!(cleared.refresh_token.as_deref(), Some("sealed-refresh"));
    assert_eq!(cleared.last_used_at, Some(T0 + 7));
    assert!(store.delete_vault_entry("alice", "agent", gh).await?);
    assert!(!store.delete_vault_entry("alice", "agent", gh).await?);
    assert_eq!(store.list_vault_entries("alice").await?.len(), 1);
    Ok(())
}

#[rstest]
#[case::sqlite_file(Backend::SqliteFile)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn an_interaction_moves_through_its_states_once(
    #[case] backend: Backend,
) -> anyhow::Result<()> {
    let store = backend.open().await?;
    let gh = "https://api.github.com";
    store.create_interaction(&interaction("old", T0)).await?;
    store
        .create_interaction(&interaction("new", T0 + 1))
        .await?;
    let open = store.find_open_interaction("alice", "agent", gh).await?;
    assert_eq!(open.map(|i| i.id_hash), Some("new".into()));
    assert!(
        store
            .update_interaction(
                "new",
                InteractionStatus::Pending,
                InteractionStatus::Authorizing,
                Some(("state-hash", "sealed-verifier")),
            )
            .await?
    );
    assert!(
        !store
            .update_interaction(
                "new",
                InteractionStatus::Pending,
                InteractionStatus::Denied,
                None
            )
            .await?,
        "only from the state it is in"
    );
    let by_state = store
        .find_interaction_by_state("state-hash")
        .await?
        .unwrap();
    assert_eq!(by_state.status, InteractionStatus::Authorizing);
    assert_eq!(by_state.pkce_verifier.as_deref(), Some("sealed-verifier"));
    store.record_interaction_poll("new", T0 + 9).await?;
    assert_eq!(
        store.find_interaction("new").await?.unwrap().last_polled_at,
        T0 + 9
    );
    for (from, to) in [
        (
            InteractionStatus::Authorizing,
            InteractionStatus::Exchanging,
        ),
        (InteractionStatus::Exchanging, InteractionStatus::Done),
    ] {
        assert!(store.update_interaction("new", from, to, None).await?);
    }
    let open = store.find_open_interaction("alice", "agent", gh).await?;
    assert_eq!(
        open.map(|i| i.id_hash),
        Some("old".into()),
        "a done one is not open"
    );
    store.purge_expired(T0 + 600 + 86_401).await?;
    assert_eq!(store.find_interaction("old").await?, None);
    Ok(())
}
