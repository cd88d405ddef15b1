//! JWS signing: what an authorization server pays per issued token and an agent per client
//! assertion.
//!
//! * `sign/parsed_once/{RS256,ES256,EdDSA}`: [`SigningKey::sign`], the key pair parsed once at
//!   load (what idp0, agent0 and the CLI use).
//! * `sign/jsonwebtoken_encode/{RS256,ES256,EdDSA}`: `jsonwebtoken::encode` with an
//!   `EncodingKey` from the same PEM, which parses the private key again for every signature
//!   (what `SigningKey::sign` did before): the baseline for the difference.
//!
//! Every token is verified once with the key's public JWK, untimed, so a broken signature
//! cannot pass for speed.

use std::hint::black_box;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use jsonwebtoken::{DecodingKey, EncodingKey, Header, Validation};
use protocol::keys::{KeyKind, SigningKey};
use secrecy::ExposeSecret;
use serde_json::{Value, json};

fn claims() -> Value {
    json!({
        "iss": "http://127.0.0.1:9400/oauth2/todo0",
        "aud": "http://localhost:5002/mcp",
        "sub": "00u2bd8f0f3c1e5a7d94",
        "exp": 4_102_444_800_i64,
        "iat": 1_700_000_000_i64,
        "jti": "b8e0c8a4c6e54f0b9f1f3f8a9b0c1d2e",
        "scp": ["mcp:connect", "mcp:tools:read"],
    })
}

fn check(key: &SigningKey, token: &str) {
    let jwk = key.public_jwk();
    let decoding = DecodingKey::from_jwk(jwk).expect("decoding key");
    let mut validation = Validation::new(key.alg());
    validation.set_audience(&["http://localhost:5002/mcp"]);
    jsonwebtoken::decode::<Value>(token, &decoding, &validation).expect("the token verifies");
}

fn sign(c: &mut Criterion) {
    let claims = claims();
    let mut group = c.benchmark_group("sign");
    for (kind, name) in [
        (KeyKind::Rsa, "RS256"),
        (KeyKind::P256, "ES256"),
        (KeyKind::Ed25519, "EdDSA"),
    ] {
        let key = SigningKey::generate(kind).expect("key");
        check(&key, &key.sign("at+jwt", &claims).expect("signing"));
        group.bench_function(BenchmarkId::new("parsed_once", name), |b| {
            b.iter(|| black_box(key.sign("at+jwt", black_box(&claims)).expect("signing")))
        });

        let pem = key.private_pem().expose_secret().as_bytes().to_vec();
        let encoding = match kind {
            KeyKind::Rsa => EncodingKey::from_rsa_pem(&pem),
            KeyKind::P256 => EncodingKey::from_ec_pem(&pem),
            KeyKind::Ed25519 => EncodingKey::from_ed_pem(&pem),
        }
        .expect("encoding key");
        let mut header = Header::new(key.alg());
        header.kid = Some(key.kid().to_owned());
        header.typ = Some("at+jwt".into());
        check(
            &key,
            &jsonwebtoken::encode(&header, &claims, &encoding).expect("encode"),
        );
        group.bench_function(BenchmarkId::new("jsonwebtoken_encode", name), |b| {
            b.iter(|| {
                black_box(
                    jsonwebtoken::encode(&header, black_box(&claims), &encoding).expect("encode"),
                )
            })
        });
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    targets = sign
}
criterion_main!(benches);
