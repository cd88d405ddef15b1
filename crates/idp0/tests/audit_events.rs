//! idp0's login throttle writes audit events (`idp0::audit`) for failed logins, locks and
//! refusals, naming the account's id and the address but never what was typed as a username
//! that matches no account (it may be a password). A test binary of its own: it sets the
//! process's subscriber.
#![allow(clippy::unwrap_used)]

use std::net::{IpAddr, Ipv4Addr};
use std::sync::{Arc, Mutex};

use idp0::login_guard::{Account, LoginLimits, LoginThrottle, NotStarted};
use protocol::UnixTime;

const T0: UnixTime = 1_800_000_000;

fn alice() -> Account {
    Account::Known("00ualice".into())
}

fn addr(last: u8) -> Option<IpAddr> {
    Some(IpAddr::V4(Ipv4Addr::new(192, 0, 2, last)))
}

/// A throttle with default limits on a fresh store (a SQLite file in a temporary directory).
async fn throttle() -> LoginThrottle {
    let store = idp0::store::SqliteStore::temporary()
        .await
        .expect("a temporary store");
    LoginThrottle::new(&LoginLimits::default(), Arc::new(store))
}

/// Collects what a `fmt` subscriber writes.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Captured {
    type Writer = Captured;
    fn make_writer(&'a self) -> Captured {
        self.clone()
    }
}

#[tokio::test]
async fn failures_locks_and_refusals_are_audit_events_that_name_no_secret() {
    let captured = Captured::default();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(captured.clone())
        .with_ansi(false)
        .finish();
    // The process's only subscriber, set before any event: a subscriber set for one thread
    // (`set_default`) beside tests on other threads could miss a callsite that one of them
    // registered at the same moment (tracing caches each callsite's interest), and did, about
    // one run in seven, when this test ran among the throttle's unit tests.
    tracing::subscriber::set_global_default(subscriber).expect("the only subscriber");
    {
        let throttle = throttle().await;
        let mut now = T0;
        for _ in 0..10 {
            let attempt = loop {
                match throttle.begin(alice(), addr(1), now).await {
                    Ok(a) => break a,
                    Err(NotStarted::Throttled(t)) => now += t.retry_after,
                    Err(NotStarted::Store(e)) => panic!("store: {e}"),
                }
            };
            throttle.failed(&attempt);
        }
        assert!(throttle.begin(alice(), addr(1), now).await.is_err());
        // People sometimes type their password into the username field.
        let typo = Account::named(None, "hunter2-correct-horse");
        let attempt = throttle.begin(typo, addr(1), now).await.expect("allowed");
        throttle.failed(&attempt);
    }
    let log = String::from_utf8(captured.0.lock().map(|b| b.clone()).unwrap_or_default())
        .unwrap_or_default();
    for needle in [
        "idp0::audit",
        "event=\"login_failed\"",
        "event=\"account_locked\"",
        "event=\"login_throttled\"",
        "user_id=\"00ualice\"",
        "192.0.2.1",
    ] {
        assert!(log.contains(needle), "{needle} missing from:\n{log}");
    }
    assert!(
        !log.contains("hunter2"),
        "an unknown username is never logged:\n{log}"
    );
}
