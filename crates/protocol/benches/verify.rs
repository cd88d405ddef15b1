//! Warm JWT verification: what a resource server pays per request to check an access token.
//!
//! * `verify_warm_jwks/static_keys/{RS256,ES256}`: [`JwtVerifier`] over [`StaticKeys`] (keys in
//!   memory, no I/O) verifying an idp0-shaped access token (`typ: at+jwt`, Okta and RFC 9068
//!   claim names) with the expectations a resource server uses (`iss`, `aud`,
//!   [`TypeRule::ACCESS_TOKEN`], default leeway and size limit) and the system clock.
//! * `verify_warm_remote_jwks/{RS256,ES256}`: the same over [`RemoteJwks`], whose JWKS is served
//!   by a tiny axum server on `127.0.0.1:0` inside this bench. The first verification fetches and
//!   caches the key set; the measured ones must not touch the network. A hit counter on the JWKS
//!   route is checked after all iterations: anything but exactly one fetch panics.
//!
//! Every token is verified once, untimed, before its benchmark, so a refusal cannot pass for speed.

use std::hint::black_box;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use protocol::UnixTime;
use protocol::claims::{AccessTokenClaims, Actor, Audience};
use protocol::keys::{KeyKind, SigningKey, jwk_set};
use protocol::oauth::ACCESS_TOKEN_JWT_TYPE;
use protocol::verify::{Expectations, JwtVerifier, KeyResolver, RemoteJwks, StaticKeys, TypeRule};
use tokio::runtime::Runtime;

const ISSUER: &str = "http://127.0.0.1:9400/oauth2/todo0";
const AUDIENCE: &str = "http://localhost:5002/mcp";

/// An access token as idp0's todo0 authorization server issues it after an ID-JAG redemption.
fn access_token(key: &SigningKey, now: UnixTime) -> String {
    let scopes = ["mcp:connect", "mcp:tools:read"];
    let claims = AccessTokenClaims {
        iss: ISSUER.into(),
        aud: Audience::One(AUDIENCE.into()),
        sub: "00u2bd8f0f3c1e5a7d94".into(),
        exp: now + 3600,
        iat: now,
        jti: Some(uuid::Uuid::new_v4().simple().to_string()),
        uid: Some("00u2bd8f0f3c1e5a7d94".into()),
        cid: Some("agent0-agent".into()),
        client_id: Some("agent0-agent".into()),
        scp: Some(scopes.iter().map(|s| (*s).to_owned()).collect()),
        scope: Some(scopes.join(" ")),
        auth_time: Some(now - 60),
        act: Some(Actor {
            sub: "agent0-agent".into(),
        }),
    };
    key.sign(ACCESS_TOKEN_JWT_TYPE, &claims)
        .expect("signing an access token")
}

fn runtime() -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("tokio runtime")
}

/// Benchmarks one verifier on an RS256 and an ES256 token (after checking that both verify).
fn bench_verifier(
    c: &mut Criterion,
    rt: &Runtime,
    group_name: &str,
    prefix: Option<&str>,
    verifier: &JwtVerifier,
    keys: [&SigningKey; 2],
    now: UnixTime,
) {
    let expect = Expectations::new(ISSUER, AUDIENCE, TypeRule::ACCESS_TOKEN);
    let mut group = c.benchmark_group(group_name);
    group.throughput(Throughput::Elements(1));
    for key in keys {
        let alg = format!("{:?}", key.alg());
        let token = access_token(key, now);
        let verified = rt
            .block_on(verifier.verify::<AccessTokenClaims>(&token, &expect))
            .unwrap_or_else(|e| panic!("{alg} token must verify before benchmarking: {e}"));
        assert_eq!(verified.kid, key.kid());
        let id = match prefix {
            Some(prefix) => BenchmarkId::new(prefix, &alg),
            None => BenchmarkId::from_parameter(&alg),
        };
        group.bench_function(id, |b| {
            b.to_async(rt).iter(|| async {
                let verified = verifier
                    .verify::<AccessTokenClaims>(black_box(&token), &expect)
                    .await;
                debug_assert!(verified.is_ok());
                verified
            })
        });
    }
    group.finish();
}

fn verify_warm_jwks(c: &mut Criterion) {
    let rt = runtime();
    let clock = protocol::clock::system();
    let rsa = SigningKey::generate(KeyKind::Rsa).expect("RSA key");
    let ec = SigningKey::generate(KeyKind::P256).expect("P-256 key");
    let keys: Arc<dyn KeyResolver> = Arc::new(StaticKeys::new(&jwk_set([&rsa, &ec])));
    let verifier = JwtVerifier::new(keys, clock.clone());
    bench_verifier(
        c,
        &rt,
        "verify_warm_jwks",
        Some("static_keys"),
        &verifier,
        [&rsa, &ec],
        clock.now(),
    );
}

fn verify_warm_remote_jwks(c: &mut Criterion) {
    let rt = runtime();
    let clock = protocol::clock::system();
    let rsa = SigningKey::generate(KeyKind::Rsa).expect("RSA key");
    let ec = SigningKey::generate(KeyKind::P256).expect("P-256 key");
    let jwks = jwk_set([&rsa, &ec]);

    // The JWKS endpoint, counting its hits.
    let hits = Arc::new(AtomicUsize::new(0));
    let app = {
        let hits = hits.clone();
        axum::Router::new().route(
            "/keys",
            axum::routing::get(move || {
                hits.fetch_add(1, Ordering::SeqCst);
                let jwks = jwks.clone();
                async move { axum::Json(jwks) }
            }),
        )
    };
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .expect("binding 127.0.0.1:0");
    let addr = listener.local_addr().expect("local address");
    let server = rt.spawn(async move { axum::serve(listener, app).await });

    let remote = RemoteJwks::new(
        protocol::discovery::http_client().expect("HTTP client"),
        format!("http://{addr}/keys"),
        Duration::from_secs(300),
    );
    let verifier = JwtVerifier::new(Arc::new(remote), clock.clone());
    // bench_verifier's untimed check of the first token is the warm-up fetch.
    bench_verifier(
        c,
        &rt,
        "verify_warm_remote_jwks",
        None,
        &verifier,
        [&rsa, &ec],
        clock.now(),
    );
    server.abort();

    let fetched = hits.load(Ordering::SeqCst);
    if fetched != 1 {
        panic!("warm verification must not fetch: the JWKS was fetched {fetched} times, not once");
    }
    println!("verify_warm_remote_jwks: JWKS fetched exactly once across all iterations");
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5));
    targets = verify_warm_jwks, verify_warm_remote_jwks
}
criterion_main!(benches);
