//! The failed-login part of the [`Store`] contract (`count_login_attempt` and its companions), on
//! every backend: the schedule is decided by the database in one statement, so these pin it.

use std::sync::Arc;

use rstest::rstest;

use super::{Backend, T0};
use crate::login_guard::ThrottlePolicy;

/// Two free failures, then 1 s, 2 s, …; locked for 300 s from the fourth.
const POLICY: ThrottlePolicy = ThrottlePolicy {
    free_failures: 2,
    max_delay_seconds: 60,
    lock_after: 4,
    lock_seconds: 300,
    forget_after_seconds: 3600,
};

#[rstest]
#[case::sqlite_file(Backend::SqliteFile)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn attempts_are_counted_only_when_the_schedule_lets_them_run(
    #[case] backend: Backend,
) -> anyhow::Result<()> {
    let store = backend.open().await?;
    let count = |at| store.count_login_attempt("user:a", &POLICY, at);
    assert_eq!(count(T0).await?, Some(1));
    assert_eq!(count(T0).await?, Some(2), "free failures");
    assert_eq!(count(T0).await?, None, "then one second");
    assert_eq!(store.find_login_failures("user:a").await?, Some((2, T0)));
    assert_eq!(count(T0 + 1).await?, Some(3));
    assert_eq!(count(T0 + 2).await?, None, "then two seconds");
    assert_eq!(count(T0 + 3).await?, Some(4));
    assert_eq!(count(T0 + 302).await?, None, "locked for 300 s");
    assert_eq!(
        store.find_login_failures("user:a").await?,
        Some((4, T0 + 3)),
        "a refusal changes nothing"
    );
    assert_eq!(count(T0 + 303).await?, Some(5), "one guess per lock");
    // Taken back (a success's address, a check that never ran), then forgotten (a success).
    store.uncount_login_attempt("user:a").await?;
    assert_eq!(
        store.find_login_failures("user:a").await?,
        Some((4, T0 + 303))
    );
    store.delete_login_failures("user:a").await?;
    assert_eq!(store.find_login_failures("user:a").await?, None);
    store.uncount_login_attempt("user:a").await?;
    assert_eq!(store.find_login_failures("user:a").await?, None);
    // Keys are independent; old failures start again from one.
    assert_eq!(
        store.count_login_attempt("ip:a", &POLICY, T0).await?,
        Some(1)
    );
    for _ in 0..2 {
        store.count_login_attempt("user:b", &POLICY, T0).await?;
    }
    assert_eq!(count(T0 + 3600).await?, Some(1));
    // A request that read the clock a moment before another counted still runs while free, and
    // does not move the last failure back.
    assert_eq!(count(T0 + 3599).await?, Some(2));
    assert_eq!(
        store.find_login_failures("user:a").await?,
        Some((2, T0 + 3600))
    );
    assert_eq!(
        store
            .count_login_attempt("user:b", &POLICY, T0 + 3600)
            .await?,
        Some(1),
        "forgotten after an hour"
    );
    Ok(())
}

#[rstest]
#[case::sqlite_file(Backend::SqliteFile)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn concurrent_attempts_each_see_the_others(#[case] backend: Backend) -> anyhow::Result<()> {
    let harness = backend.open().await?;
    let store = harness.store.clone();
    let attempts: Vec<_> = (0..20)
        .map(|_| {
            let store = Arc::clone(&store);
            tokio::spawn(async move { store.count_login_attempt("user:c", &POLICY, T0).await })
        })
        .collect();
    let mut counted = Vec::new();
    for attempt in attempts {
        if let Some(n) = attempt.await?? {
            counted.push(n);
        }
    }
    counted.sort_unstable();
    assert_eq!(counted, [1, 2], "exactly the free failures run at once");
    Ok(())
}

#[rstest]
#[case::sqlite_file(Backend::SqliteFile)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn a_second_replica_sees_the_counts(#[case] backend: Backend) -> anyhow::Result<()> {
    let a = backend.open().await?;
    let b = a.reopen().await?;
    a.count_login_attempt("user:d", &POLICY, T0).await?;
    a.count_login_attempt("user:d", &POLICY, T0).await?;
    assert_eq!(b.count_login_attempt("user:d", &POLICY, T0).await?, None);
    b.delete_login_failures("user:d").await?;
    assert_eq!(a.find_login_failures("user:d").await?, None);
    Ok(())
}

#[rstest]
#[case::sqlite_file(Backend::SqliteFile)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn counts_are_purged_once_forgotten_and_unlocked(
    #[case] backend: Backend,
) -> anyhow::Result<()> {
    let store = backend.open().await?;
    store.count_login_attempt("ip:e", &POLICY, T0).await?;
    store.purge_expired(T0 + 3600).await?;
    assert!(store.find_login_failures("ip:e").await?.is_some());
    store.purge_expired(T0 + 3601).await?;
    assert_eq!(store.find_login_failures("ip:e").await?, None);
    Ok(())
}
