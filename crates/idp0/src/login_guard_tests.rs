//! The throttle's schedule with a moved clock (no sleeping) on a temporary store, and the
//! gate's bound.

use std::net::{IpAddr, Ipv4Addr};

use rstest::rstest;

use super::*;

const T0: UnixTime = 1_800_000_000;

fn alice() -> Account {
    Account::Known("00ualice".into())
}

fn addr(last: u8) -> Option<IpAddr> {
    Some(IpAddr::V4(Ipv4Addr::new(192, 0, 2, last)))
}

/// A throttle with default limits on a fresh store (a SQLite file in a temporary directory).
async fn throttle() -> LoginThrottle {
    let store = crate::store::SqliteStore::temporary()
        .await
        .expect("a temporary store");
    LoginThrottle::new(&LoginLimits::default(), Arc::new(store))
}

/// The refusal of an attempt that did not start (a store error fails the test).
fn refusal(result: Result<Attempt, NotStarted>) -> Option<Throttled> {
    match result {
        Ok(_) => None,
        Err(NotStarted::Throttled(t)) => Some(t),
        Err(NotStarted::Store(e)) => panic!("store: {e}"),
    }
}

/// Fails `n` attempts at `at`, all allowed.
async fn fail(
    throttle: &LoginThrottle,
    account: Account,
    address: Option<IpAddr>,
    n: u32,
    at: UnixTime,
) {
    for i in 0..n {
        let attempt = throttle
            .begin(account.clone(), address, at)
            .await
            .unwrap_or_else(|t| panic!("attempt {i} was refused: {t:?}"));
        throttle.failed(&attempt);
    }
}

#[rstest]
// (failures so far, seconds later, expected)
#[case::four_failures_are_free(4, 0, None)]
#[case::the_sixth_attempt_waits_a_second(5, 0, Some((1, false)))]
#[case::a_second_later_it_runs(5, 1, None)]
#[case::delays_double(7, 0, Some((4, false)))]
#[case::the_tenth_failure_locks(10, 0, Some((300, true)))]
#[case::the_lock_holds_for_its_duration(10, 299, Some((1, true)))]
#[case::the_lock_expires(10, 300, None)]
#[case::old_failures_are_forgotten(9, 3600, None)]
#[tokio::test]
async fn the_account_schedule(
    #[case] failures: u32,
    #[case] later: i64,
    #[case] expected: Option<(i64, bool)>,
) {
    let throttle = throttle().await;
    let mut now = T0;
    for _ in 0..failures {
        // Each failure as early as the schedule allows.
        let attempt = loop {
            match throttle.begin(alice(), addr(1), now).await {
                Ok(a) => break a,
                Err(NotStarted::Throttled(t)) => now += t.retry_after,
                Err(NotStarted::Store(e)) => panic!("store: {e}"),
            }
        };
        throttle.failed(&attempt);
    }
    let got = throttle.begin(alice(), addr(1), now + later).await;
    assert_eq!(refusal(got).map(|t| (t.retry_after, t.locked)), expected);
}

#[tokio::test]
async fn a_lock_refuses_the_right_password_too_and_refusals_do_not_extend_it() {
    let throttle = throttle().await;
    let limits = LoginLimits::default();
    // Ten failures, each from a different address, spaced past every delay.
    let mut now = T0;
    for i in 0..limits.account.lock_after {
        let attempt = throttle
            .begin(alice(), addr(u8::try_from(i).unwrap_or(0)), now)
            .await
            .expect("allowed");
        throttle.failed(&attempt);
        now += limits.account.max_delay_seconds;
    }
    let locked_at = now - limits.account.max_delay_seconds;
    // Hammering during the lock is refused and does not move its end.
    for s in (0..300).step_by(30) {
        let refused = throttle.begin(alice(), addr(200), locked_at + s).await;
        assert_eq!(
            refusal(refused).map(|t| (t.locked, t.retry_after)),
            Some((true, 300 - s))
        );
    }
    // After the lock, the right password works and clears the account.
    let attempt = throttle
        .begin(alice(), addr(200), locked_at + 300)
        .await
        .expect("lock expired");
    throttle.succeeded(attempt).await.expect("store");
    fail(&throttle, alice(), addr(201), 4, locked_at + 301).await;
}

#[tokio::test]
async fn accounts_and_addresses_are_independent_keys() {
    let throttle = throttle().await;
    fail(&throttle, alice(), addr(1), 5, T0).await;
    assert!(
        throttle.begin(alice(), addr(2), T0).await.is_err(),
        "per account"
    );
    let bob = Account::Known("00ubob".into());
    assert!(
        throttle.begin(bob, addr(1), T0).await.is_ok(),
        "bob is not alice"
    );
    // One address spraying many accounts is slowed after its own free failures.
    let throttle = self::throttle().await;
    for i in 0..20 {
        fail(
            &throttle,
            Account::named(None, &format!("user{i}")),
            addr(9),
            1,
            T0,
        )
        .await;
    }
    let sprayed = throttle
        .begin(Account::named(None, "user99"), addr(9), T0)
        .await;
    assert_eq!(refusal(sprayed).map(|t| t.locked), Some(false));
    assert!(
        throttle
            .begin(Account::named(None, "user99"), addr(10), T0)
            .await
            .is_ok(),
        "another address is not slowed"
    );
}

#[tokio::test]
async fn unknown_usernames_are_throttled_like_real_ones() {
    let throttle = throttle().await;
    fail(&throttle, Account::named(None, "ghost"), addr(1), 5, T0).await;
    let refused = throttle
        .begin(Account::named(None, " Ghost "), addr(2), T0)
        .await;
    assert_eq!(refusal(refused).map(|t| t.retry_after), Some(1));
}

#[tokio::test]
async fn an_abandoned_attempt_is_not_held_against_anyone() {
    let throttle = throttle().await;
    for _ in 0..50 {
        let attempt = throttle.begin(alice(), addr(1), T0).await.expect("allowed");
        throttle.abandoned(attempt).await.expect("store");
    }
    fail(&throttle, alice(), addr(1), 5, T0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_gate_runs_at_most_its_limit_and_answers_busy_after_the_deadline()
-> Result<(), argon2::password_hash::Error> {
    let limits = LoginLimits {
        max_concurrent_checks: 2,
        max_waiting_checks: 1_000,
        check_wait: Duration::from_millis(300),
        ..LoginLimits::default()
    };
    let gate = Arc::new(PasswordGate::new(&limits).expect("worker threads"));
    let phc = crate::password::hash("right")?;
    let tasks: Vec<_> = (0..200)
        .map(|_| {
            let (gate, phc) = (gate.clone(), phc.clone());
            tokio::spawn(async move { gate.verify(&SecretString::from("wrong"), &phc).await })
        })
        .collect();
    let mut busy = 0;
    for task in tasks {
        match task.await {
            Ok(Ok(verified)) => assert!(!verified),
            Ok(Err(b)) => {
                assert_eq!(b.retry_after, 1);
                busy += 1;
            }
            Err(e) => panic!("task failed: {e}"),
        }
    }
    assert!(gate.peak_concurrency() <= 2, "{}", gate.peak_concurrency());
    assert!(gate.peak_concurrency() >= 1);
    assert!(
        busy > 0,
        "200 checks cannot all finish within 300 ms on 2 slots"
    );
    assert_eq!(
        gate.verify(&SecretString::from("right"), &phc).await,
        Ok(true)
    );
    Ok(())
}
