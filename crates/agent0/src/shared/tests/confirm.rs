//! The [`ConfirmationStore`] contract, run against the in-process store and Redis: a card is
//! taken once (also by many takers at once), only by its owner (person, session and
//! conversation), not after its expiry by the injected clock, within the person's share; a new
//! message or a logout takes the matching cards; on Redis, key names show no id or subject and
//! a card's TTL is its expiry.

use std::sync::Arc;

use protocol::Clock;
use rstest::rstest;

use super::{Backend, Rig};
use crate::confirm::store::{
    ConfirmationStore, Created, MemoryConfirmationStore, PendingCard, Which,
};
use crate::confirm::{CONFIRMATION_LIFETIME, MAX_PENDING_PER_PERSON, Owner};
use crate::shared::redis::hashed;

fn card(subject: &str, session: &str, conversation: &str, expires_at: i64) -> PendingCard {
    PendingCard {
        subject: subject.to_owned(),
        session: session.to_owned(),
        conversation: conversation.to_owned(),
        connection: "todo0".to_owned(),
        tool: "delete-todo".to_owned(),
        expires_at,
    }
}

fn owner<'a>(subject: &'a str, session: &'a str, conversation: &'a str) -> Owner<'a> {
    Owner {
        subject,
        session,
        conversation,
    }
}

#[rstest]
#[case::in_process(Backend::InProcess)]
#[case::redis(Backend::Redis)]
#[tokio::test]
async fn a_card_is_taken_once_and_only_by_its_owner(#[case] backend: Backend) {
    let rig = Rig::start(backend).await;
    let store = rig.shared.confirmations.clone();
    let alice = card(
        "alice",
        "s-alice",
        "c1",
        rig.clock.now() + CONFIRMATION_LIFETIME,
    );
    assert_eq!(
        store.create("id-1", &alice).await.unwrap(),
        Created::Created
    );
    // Bob, Alice's other session and Alice's other conversation are all refused, and none of
    // them uses the card up.
    for stranger in [
        owner("bob", "s-alice", "c1"),
        owner("bob", "s-bob", "c1"),
        owner("alice", "s-other", "c1"),
        owner("alice", "s-alice", "c2"),
    ] {
        assert_eq!(store.take("id-1", &stranger).await.unwrap(), None);
    }
    assert_eq!(
        store
            .take("made-up", &owner("alice", "s-alice", "c1"))
            .await
            .unwrap(),
        None
    );
    let taken = store
        .take("id-1", &owner("alice", "s-alice", "c1"))
        .await
        .unwrap();
    assert_eq!(taken, Some(alice));
    assert_eq!(
        store
            .take("id-1", &owner("alice", "s-alice", "c1"))
            .await
            .unwrap(),
        None
    );
    assert!(rig.keys().await.iter().all(|k| !k.contains(":confirm:")));
    rig.finish().await;
}

#[rstest]
#[case::in_process(Backend::InProcess)]
#[case::redis(Backend::Redis)]
#[tokio::test]
async fn of_many_takers_at_once_exactly_one_gets_the_card(#[case] backend: Backend) {
    let rig = Rig::start(backend).await;
    let store = rig.shared.confirmations.clone();
    let expires_at = rig.clock.now() + CONFIRMATION_LIFETIME;
    store
        .create("id-1", &card("alice", "s", "c", expires_at))
        .await
        .unwrap();
    let takers: Vec<_> = (0..16)
        .map(|_| {
            let store: Arc<dyn ConfirmationStore> = store.clone();
            tokio::spawn(async move { store.take("id-1", &owner("alice", "s", "c")).await })
        })
        .collect();
    let mut winners = 0;
    for taker in takers {
        if taker.await.unwrap().unwrap().is_some() {
            winners += 1;
        }
    }
    assert_eq!(winners, 1);
    rig.finish().await;
}

#[rstest]
#[case::in_process(Backend::InProcess)]
#[case::redis(Backend::Redis)]
#[tokio::test]
async fn a_card_is_gone_at_its_expiry_by_the_injected_clock(#[case] backend: Backend) {
    let rig = Rig::start(backend).await;
    let store = rig.shared.confirmations.clone();
    let now = rig.clock.now();
    for id in ["early", "late"] {
        store
            .create(id, &card("alice", "s", "c", now + 100))
            .await
            .unwrap();
    }
    rig.clock.advance(99);
    assert!(
        store
            .take("early", &owner("alice", "s", "c"))
            .await
            .unwrap()
            .is_some()
    );
    rig.clock.advance(1);
    assert!(
        store
            .take("late", &owner("alice", "s", "c"))
            .await
            .unwrap()
            .is_none()
    );
    rig.finish().await;
}

#[rstest]
#[case::in_process(Backend::InProcess)]
#[case::redis(Backend::Redis)]
#[tokio::test]
async fn a_person_has_a_bounded_share_and_nothing_is_evicted(#[case] backend: Backend) {
    let rig = Rig::start(backend).await;
    let store = rig.shared.confirmations.clone();
    let expires_at = rig.clock.now() + CONFIRMATION_LIFETIME;
    for i in 0..MAX_PENDING_PER_PERSON {
        let created = store
            .create(
                &format!("a{i}"),
                &card("alice", "s", &format!("c{i}"), expires_at),
            )
            .await
            .unwrap();
        assert_eq!(created, Created::Created);
    }
    let more = card("alice", "s", "c-more", expires_at);
    assert_eq!(
        store.create("a-more", &more).await.unwrap(),
        Created::PersonFull
    );
    let bob = card("bob", "s-bob", "b", expires_at);
    assert_eq!(store.create("b0", &bob).await.unwrap(), Created::Created);
    // Every one of hers is still there; once one is taken she may open another.
    assert!(
        store
            .take("a0", &owner("alice", "s", "c0"))
            .await
            .unwrap()
            .is_some()
    );
    assert_eq!(
        store.create("a-more", &more).await.unwrap(),
        Created::Created
    );
    for i in 1..MAX_PENDING_PER_PERSON {
        let conversation = format!("c{i}");
        let taken = store
            .take(&format!("a{i}"), &owner("alice", "s", &conversation))
            .await
            .unwrap();
        assert!(taken.is_some());
    }
    // Expired cards no longer count.
    rig.clock.advance(CONFIRMATION_LIFETIME);
    let expires_at = rig.clock.now() + CONFIRMATION_LIFETIME;
    for i in 0..MAX_PENDING_PER_PERSON {
        let created = store
            .create(&format!("n{i}"), &card("alice", "s", "c", expires_at))
            .await
            .unwrap();
        assert_eq!(created, Created::Created);
    }
    rig.finish().await;
}

#[rstest]
#[case::in_process(Backend::InProcess)]
#[case::redis(Backend::Redis)]
#[tokio::test]
async fn a_new_message_or_a_logout_takes_the_matching_cards(#[case] backend: Backend) {
    let rig = Rig::start(backend).await;
    let store = rig.shared.confirmations.clone();
    let expires_at = rig.clock.now() + CONFIRMATION_LIFETIME;
    for (id, subject, session, conversation) in [
        ("1", "alice", "s1", "c1"),
        ("2", "alice", "s1", "c2"),
        ("3", "alice", "s2", "c1"),
        ("4", "bob", "s1", "c1"),
    ] {
        store
            .create(id, &card(subject, session, conversation, expires_at))
            .await
            .unwrap();
    }
    let mut taken = store
        .take_where("alice", Which::Conversation("c1"))
        .await
        .unwrap();
    taken.sort_by(|a, b| a.0.cmp(&b.0));
    let ids: Vec<&str> = taken.iter().map(|(id, _)| id.as_str()).collect();
    assert_eq!(ids, ["1", "3"]);
    assert_eq!(taken[1].1, card("alice", "s2", "c1", expires_at));
    let taken = store
        .take_where("alice", Which::Session("s1"))
        .await
        .unwrap();
    assert_eq!(
        taken,
        [("2".to_owned(), card("alice", "s1", "c2", expires_at))]
    );
    assert!(
        store
            .take_where("alice", Which::Session("s1"))
            .await
            .unwrap()
            .is_empty()
    );
    // Bob's card, in the same session id and conversation id, is untouched.
    assert!(
        store
            .take("4", &owner("bob", "s1", "c1"))
            .await
            .unwrap()
            .is_some()
    );
    rig.finish().await;
}

#[tokio::test]
async fn the_in_process_store_is_bounded_and_refuses_rather_than_evicts() {
    let clock = protocol::clock::FixedClock::frozen_now();
    let store = MemoryConfirmationStore::new(2, clock.clone());
    let expires_at = clock.now() + CONFIRMATION_LIFETIME;
    for (id, subject) in [("1", "alice"), ("2", "bob")] {
        let created = store
            .create(id, &card(subject, "s", "c", expires_at))
            .await
            .unwrap();
        assert_eq!(created, Created::Created);
    }
    let refused = store
        .create("3", &card("carol", "s", "c", expires_at))
        .await;
    assert_eq!(refused.unwrap(), Created::Full);
    assert!(
        store
            .take("1", &owner("alice", "s", "c"))
            .await
            .unwrap()
            .is_some()
    );
}

#[tokio::test]
async fn redis_card_keys_show_no_id_or_subject_and_expire_with_the_card() {
    let rig = Rig::start(Backend::Redis).await;
    let (conn, prefix) = rig.redis.clone().unwrap();
    let store = rig.shared.confirmations.clone();
    let expires_at = rig.clock.now() + CONFIRMATION_LIFETIME;
    store
        .create("card-id-1", &card("alice", "s", "c", expires_at))
        .await
        .unwrap();
    let mut keys = rig.keys().await;
    keys.sort();
    assert_eq!(
        keys,
        [
            format!("{prefix}confirm-person:{}", hashed("alice")),
            format!("{prefix}confirm:{}", hashed("card-id-1")),
        ]
    );
    for key in &keys {
        let ttl: i64 = conn.raw(::redis::cmd("TTL").arg(key)).await.unwrap();
        assert!(
            (CONFIRMATION_LIFETIME - 5..=CONFIRMATION_LIFETIME).contains(&ttl),
            "{key}: {ttl}"
        );
    }
    rig.finish().await;
}
