//! The token broker against a real idp0 (issue 10): one exchange per (person, connection,
//! scopes) however many callers ask at once, reuse until the token's `exp` less the refresh
//! margin (read from the injected clock), and a fresh exchange after `forget` (the 401 path).

use std::sync::Arc;

use agent0::tokens::{IdJagTarget, Principal, TokenBroker};
use protocol::clock::FixedClock;
use protocol::{Clock, Scopes};
use testkit::{Browser, IdpHandle};

struct Rig {
    _idp: IdpHandle,
    broker: Arc<TokenBroker>,
    clock: Arc<FixedClock>,
    alice: Principal,
    target: IdJagTarget,
    scopes: Scopes,
}

impl Rig {
    async fn start() -> Self {
        let resource = "http://127.0.0.1:9/mcp";
        let idp = IdpHandle::start_for_resource(resource).await.unwrap();
        let login = idp.login(&Browser::new(), "alice").await.unwrap();
        let alice = Principal {
            subject: "alice".into(),
            name: "Alice".into(),
            email: None,
            id_token: login.id_token.unwrap(),
        };
        let clock = FixedClock::frozen_now();
        let broker = Arc::new(
            TokenBroker::new(idp.org_token_endpoint(), idp.agent_auth(), clock.clone()).unwrap(),
        );
        let target = IdJagTarget {
            connection: "todo0".into(),
            as_issuer: idp.todo0_issuer(),
            as_token_endpoint: idp.todo0_token_endpoint(),
            resource: resource.into(),
        };
        Self {
            _idp: idp,
            broker,
            clock,
            alice,
            target,
            scopes: Scopes::parse("mcp:connect mcp:tools:read").unwrap(),
        }
    }
}

#[tokio::test]
async fn concurrent_callers_share_one_exchange() {
    let rig = Arc::new(Rig::start().await);
    let calls: Vec<_> = (0..5)
        .map(|_| {
            let rig = rig.clone();
            tokio::spawn(async move {
                rig.broker
                    .access_token(&rig.alice, &rig.target, &rig.scopes)
                    .await
                    .map(|t| t.expires_at)
                    .map_err(|e| e.to_string())
            })
        })
        .collect();
    for call in calls {
        call.await.unwrap().unwrap();
    }
    assert_eq!(rig.broker.exchange_count(), 1);
}

#[tokio::test]
async fn a_token_is_reused_until_its_exp_less_the_margin_and_dropped_on_forget() {
    let rig = Rig::start().await;
    let first = rig
        .broker
        .access_token(&rig.alice, &rig.target, &rig.scopes)
        .await
        .unwrap();
    let usable_for = first.expires_at - rig.clock.now();
    assert!(usable_for > 0, "{usable_for}");
    assert!(rig.broker.has_live_token("alice", "todo0").await);

    rig.clock.advance(usable_for - 1);
    rig.broker
        .access_token(&rig.alice, &rig.target, &rig.scopes)
        .await
        .unwrap();
    assert_eq!(rig.broker.exchange_count(), 1, "still cached");

    rig.clock.advance(1);
    assert!(!rig.broker.has_live_token("alice", "todo0").await);
    rig.broker
        .access_token(&rig.alice, &rig.target, &rig.scopes)
        .await
        .unwrap();
    assert_eq!(rig.broker.exchange_count(), 2, "re-minted at the margin");

    rig.broker
        .forget(&rig.alice, &rig.target, &rig.scopes)
        .await;
    rig.broker
        .access_token(&rig.alice, &rig.target, &rig.scopes)
        .await
        .unwrap();
    assert_eq!(rig.broker.exchange_count(), 3, "re-minted after forget");

    rig.broker.forget_person("alice").await;
    assert!(!rig.broker.has_live_token("alice", "todo0").await);
}
