//! Table-driven tests of the verifier: every refusal has a named case, signed with real keys.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{EncodingKey, Header};
use rstest::rstest;
use serde_json::{Value, json};

use super::*;
use crate::clock::FixedClock;
use crate::keys::{KeyKind, SigningKey, jwk_set};

const NOW: i64 = 1_800_000_000;
const ISS: &str = "https://idp.example";
const AUD: &str = "https://as.example";

struct Fixture {
    key: SigningKey,
    other: SigningKey,
    verifier: JwtVerifier,
    clock: Arc<FixedClock>,
}

fn fixture() -> Fixture {
    let key = SigningKey::generate(KeyKind::Rsa).expect("rsa key");
    let other = SigningKey::generate(KeyKind::P256).expect("p256 key");
    let clock = FixedClock::at(NOW);
    let keys = Arc::new(StaticKeys::new(&jwk_set([&key, &other])));
    let verifier = JwtVerifier::new(keys, clock.clone());
    Fixture {
        key,
        other,
        verifier,
        clock,
    }
}

fn claims() -> Value {
    json!({"iss": ISS, "aud": AUD, "sub": "alice", "iat": NOW, "exp": NOW + 300})
}

fn with(mut base: Value, key: &str, value: Value) -> Value {
    base[key] = value;
    base
}

fn raw_token(header: Value, claims: &Value, signature: &str) -> String {
    let enc = |v: &Value| URL_SAFE_NO_PAD.encode(serde_json::to_vec(v).expect("json"));
    format!("{}.{}.{signature}", enc(&header), enc(claims))
}

enum Case {
    Signed(&'static str, Value),
    Raw(fn(&Fixture) -> String),
}

#[rstest]
#[case::valid(Case::Signed("oauth-id-jag+jwt", claims()), Ok(()))]
#[case::wrong_issuer(Case::Signed("oauth-id-jag+jwt", with(claims(), "iss", json!("https://evil"))), Err(JwtError::WrongIssuer))]
#[case::wrong_audience(Case::Signed("oauth-id-jag+jwt", with(claims(), "aud", json!("https://other"))), Err(JwtError::WrongAudience))]
#[case::audience_in_array(Case::Signed("oauth-id-jag+jwt", with(claims(), "aud", json!(["x", AUD]))), Ok(()))]
#[case::expired(Case::Signed("oauth-id-jag+jwt", with(claims(), "exp", json!(NOW - 31))), Err(JwtError::Expired))]
#[case::expired_within_leeway(Case::Signed("oauth-id-jag+jwt", with(claims(), "exp", json!(NOW - 29))), Ok(()))]
#[case::not_yet_valid(Case::Signed("oauth-id-jag+jwt", with(claims(), "nbf", json!(NOW + 120))), Err(JwtError::NotYetValid))]
#[case::issued_in_future(Case::Signed("oauth-id-jag+jwt", with(claims(), "iat", json!(NOW + 120))), Err(JwtError::NotYetValid))]
#[case::missing_exp(Case::Signed("oauth-id-jag+jwt", json!({"iss": ISS, "aud": AUD, "sub": "a"})), Err(JwtError::Claim("exp")))]
#[case::wrong_typ(Case::Signed("JWT", claims()), Err(JwtError::WrongType(Some("JWT".into()))))]
#[case::alg_none(Case::Raw(|f| raw_token(json!({"alg": "none", "kid": f.key.kid()}), &claims(), "")), Err(JwtError::DisallowedAlgorithm("none".into())))]
#[case::hmac_with_public_key(Case::Raw(hmac_with_public_key), Err(JwtError::DisallowedAlgorithm("HS256".into())))]
#[case::unknown_kid(Case::Raw(|_| raw_token(json!({"alg": "RS256", "kid": "nope", "typ": "oauth-id-jag+jwt"}), &claims(), "c2ln")), Err(JwtError::UnknownKid))]
#[case::missing_kid(Case::Raw(|_| raw_token(json!({"alg": "RS256", "typ": "oauth-id-jag+jwt"}), &claims(), "c2ln")), Err(JwtError::MissingKid))]
#[case::alg_not_the_keys(Case::Raw(|f| raw_token(json!({"alg": "RS256", "kid": f.other.kid(), "typ": "oauth-id-jag+jwt"}), &claims(), "c2ln")), Err(JwtError::AlgorithmMismatch { expected: Algorithm::ES256, found: Algorithm::RS256 }))]
#[case::tampered_payload(Case::Raw(tampered), Err(JwtError::BadSignature))]
#[case::signed_by_unlisted_key(Case::Raw(unlisted_key_same_kid), Err(JwtError::BadSignature))]
#[case::two_segments(Case::Raw(|_| "abc.def".into()), Err(JwtError::Malformed("not a compact JWS")))]
#[case::header_not_json(Case::Raw(|_| "bm90LWpzb24.e30.c2ln".into()), Err(JwtError::Malformed("header is not a JSON object")))]
#[case::too_large(Case::Raw(|f| f.key.sign("oauth-id-jag+jwt", &with(claims(), "pad", json!("x".repeat(20_000)))).expect("sign")), Err(JwtError::TooLarge(DEFAULT_MAX_TOKEN_BYTES)))]
#[case::crit_unknown_extension(Case::Raw(|f| signed_with_header(f, json!({"crit": ["exp"], "exp": NOW}))), Err(JwtError::UnsupportedCritical))]
#[case::crit_b64_false(Case::Raw(|f| signed_with_header(f, json!({"crit": ["b64"], "b64": false}))), Err(JwtError::UnsupportedCritical))]
#[case::crit_empty_list(Case::Raw(|f| signed_with_header(f, json!({"crit": []}))), Err(JwtError::UnsupportedCritical))]
#[case::crit_not_a_list(Case::Raw(|f| signed_with_header(f, json!({"crit": "x"}))), Err(JwtError::UnsupportedCritical))]
#[case::crit_null(Case::Raw(|f| signed_with_header(f, json!({"crit": null}))), Err(JwtError::UnsupportedCritical))]
#[case::extra_non_critical_header(Case::Raw(|f| signed_with_header(f, json!({"x-note": "hi"}))), Ok(()))]
#[tokio::test]
async fn verify_cases(#[case] case: Case, #[case] expected: Result<(), JwtError>) {
    let f = fixture();
    let token = match case {
        Case::Signed(typ, claims) => f.key.sign(typ, &claims).expect("sign"),
        Case::Raw(make) => make(&f),
    };
    let expect = Expectations::new(ISS, AUD, TypeRule::ID_JAG);
    let result = f.verifier.verify::<Value>(&token, &expect).await.map(|v| {
        assert_eq!(v.claims["sub"], "alice");
    });
    assert_eq!(result, expected);
}

fn hmac_with_public_key(f: &Fixture) -> String {
    // The classic confusion attack: HS256 keyed with the RSA public key's bytes.
    let public = serde_json::to_vec(f.key.public_jwk()).expect("jwk");
    let mut header = Header::new(Algorithm::HS256);
    header.kid = Some(f.key.kid().to_owned());
    jsonwebtoken::encode(&header, &claims(), &EncodingKey::from_secret(&public)).expect("hs256")
}

/// A token correctly signed by the fixture's key whose header carries `extra` parameters, so a
/// refusal can only come from the header's content.
fn signed_with_header(f: &Fixture, extra: Value) -> String {
    let mut header = json!({"alg": "RS256", "kid": f.key.kid(), "typ": "oauth-id-jag+jwt"});
    for (name, value) in extra.as_object().expect("object") {
        header[name] = value.clone();
    }
    let enc = |v: &Value| URL_SAFE_NO_PAD.encode(serde_json::to_vec(v).expect("json"));
    let message = format!("{}.{}", enc(&header), enc(&claims()));
    let key = EncodingKey::from_rsa_pem(crate::keys::expose_pem(&f.key).as_bytes()).expect("pem");
    let signature =
        jsonwebtoken::crypto::sign(message.as_bytes(), &key, Algorithm::RS256).expect("sign");
    format!("{message}.{signature}")
}

fn tampered(f: &Fixture) -> String {
    let token = f.key.sign("oauth-id-jag+jwt", &claims()).expect("sign");
    let parts: Vec<&str> = token.split('.').collect();
    let forged = URL_SAFE_NO_PAD
        .encode(serde_json::to_vec(&with(claims(), "sub", json!("mallory"))).expect("json"));
    format!("{}.{forged}.{}", parts[0], parts[2])
}

fn unlisted_key_same_kid(f: &Fixture) -> String {
    let attacker = SigningKey::generate(KeyKind::Rsa).expect("rsa");
    let attacker = SigningKey::from_pem(
        crate::keys::expose_pem(&attacker),
        Some(f.key.kid().to_owned()),
    )
    .expect("pem");
    attacker.sign("oauth-id-jag+jwt", &claims()).expect("sign")
}

#[tokio::test]
async fn moving_the_clock_expires_a_token() {
    let f = fixture();
    let token = f.key.sign("oauth-id-jag+jwt", &claims()).expect("sign");
    let expect = Expectations::new(ISS, AUD, TypeRule::ID_JAG);
    assert!(f.verifier.verify::<Value>(&token, &expect).await.is_ok());
    f.clock.advance(400);
    assert_eq!(
        f.verifier.verify::<Value>(&token, &expect).await.err(),
        Some(JwtError::Expired)
    );
}

#[rstest]
#[case::at_jwt(Some("at+jwt"), true)]
#[case::application_prefix(Some("application/AT+JWT"), true)]
#[case::okta_absent(None, true)]
#[case::id_jag_is_not_an_access_token(Some("oauth-id-jag+jwt"), false)]
fn access_token_type_rule(#[case] typ: Option<&str>, #[case] accepted: bool) {
    assert_eq!(TypeRule::ACCESS_TOKEN.accepts(typ), accepted);
}

/// A JWKS server on 127.0.0.1:0 that counts how often it is fetched.
async fn jwks_server(jwks: JwkSet) -> (String, Arc<AtomicUsize>) {
    let hits = Arc::new(AtomicUsize::new(0));
    let counter = hits.clone();
    let app = axum::Router::new().route(
        "/keys",
        axum::routing::get(move || {
            let counter = counter.clone();
            let jwks = jwks.clone();
            async move {
                counter.fetch_add(1, Ordering::SeqCst);
                axum::Json(jwks)
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, app).await.ok() });
    (format!("http://{addr}/keys"), hits)
}

#[tokio::test]
async fn remote_jwks_is_fetched_once_then_warm_and_rate_limited() {
    let key = SigningKey::generate(KeyKind::Rsa).expect("key");
    let (url, hits) = jwks_server(jwk_set([&key])).await;
    let remote = Arc::new(RemoteJwks::new(
        reqwest::Client::new(),
        url,
        Duration::from_secs(60),
    ));
    let verifier = JwtVerifier::new(remote, FixedClock::at(NOW));
    let expect = Expectations::new(ISS, AUD, TypeRule::ID_JAG);
    let token = key.sign("oauth-id-jag+jwt", &claims()).expect("sign");
    for _ in 0..100 {
        verifier
            .verify::<Value>(&token, &expect)
            .await
            .expect("valid");
    }
    assert_eq!(
        hits.load(Ordering::SeqCst),
        1,
        "warm verification must not fetch"
    );
    // A flood of unknown kids triggers at most one refetch per interval.
    let stranger = SigningKey::generate(KeyKind::Rsa).expect("key");
    let forged = stranger.sign("oauth-id-jag+jwt", &claims()).expect("sign");
    for _ in 0..20 {
        assert_eq!(
            verifier.verify::<Value>(&forged, &expect).await.err(),
            Some(JwtError::UnknownKid)
        );
    }
    assert_eq!(hits.load(Ordering::SeqCst), 1, "refetch is rate-limited");
}

#[tokio::test]
async fn remote_jwks_picks_up_a_rotated_key_on_unknown_kid() {
    let old = SigningKey::generate(KeyKind::Rsa).expect("key");
    let new = SigningKey::generate(KeyKind::Rsa).expect("key");
    let (url, hits) = jwks_server(jwk_set([&old, &new])).await;
    let remote = Arc::new(RemoteJwks::new(reqwest::Client::new(), url, Duration::ZERO));
    let verifier = JwtVerifier::new(remote, FixedClock::at(NOW));
    let expect = Expectations::new(ISS, AUD, TypeRule::ID_JAG);
    for key in [&old, &new] {
        let token = key.sign("oauth-id-jag+jwt", &claims()).expect("sign");
        verifier
            .verify::<Value>(&token, &expect)
            .await
            .expect("valid");
    }
    assert_eq!(hits.load(Ordering::SeqCst), 1);
}

#[rstest]
#[case::rs256(KeyKind::Rsa)]
#[case::es256(KeyKind::P256)]
#[case::eddsa(KeyKind::Ed25519)]
#[tokio::test]
async fn client_assertions_verify_for_every_key_kind(#[case] kind: KeyKind) {
    let key = Arc::new(SigningKey::generate(kind).expect("key"));
    let clock = FixedClock::at(NOW);
    let signer = crate::assertion::ClientAssertionSigner::new("agent", key.clone(), clock.clone());
    let assertion = signer
        .sign("https://idp.example/oauth2/v1/token")
        .expect("sign");
    let verifier = JwtVerifier::new(Arc::new(StaticKeys::new(&jwk_set([key.as_ref()]))), clock);
    let expect = Expectations::new(
        "agent",
        "https://idp.example/oauth2/v1/token",
        TypeRule::ANY,
    );
    let claims = verifier
        .verify::<crate::claims::ClientAssertionClaims>(
            secrecy::ExposeSecret::expose_secret(&assertion),
            &expect,
        )
        .await
        .expect("valid assertion")
        .claims;
    assert_eq!((claims.sub.as_str(), claims.exp), ("agent", NOW + 60));
}
