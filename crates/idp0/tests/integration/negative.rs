//! Bad input at the token endpoint, one named case each (rstest): every refusal is an RFC 6749
//! §5.2 JSON body with the right code and status and `Cache-Control: no-store`. Tokens are signed
//! with real keys; forged ones are built the way an attacker would.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use protocol::assertion::ClientAssertionSigner;
use protocol::keys::{KeyKind, SigningKey};
use protocol::oauth::CLIENT_ASSERTION_TYPE_JWT_BEARER;
use rstest::rstest;
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Value, json};
use testkit::{Browser, IdpHandle};

use super::flow::RESOURCE;

const TOKEN_EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
const JWT_BEARER: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";
const ID_JAG: &str = "urn:ietf:params:oauth:token-type:id-jag";
const ID_TOKEN: &str = "urn:ietf:params:oauth:token-type:id_token";

/// A running IdP with alice logged in.
pub struct Ctx {
    pub idp: IdpHandle,
    pub id_token: SecretString,
    pub now: i64,
}

pub async fn ctx() -> Ctx {
    let idp = IdpHandle::start().await.unwrap();
    let tokens = idp.login(&Browser::new(), "alice").await.unwrap();
    let now = protocol::clock::system().now();
    Ctx {
        idp,
        id_token: tokens.id_token.unwrap(),
        now,
    }
}

impl Ctx {
    fn alice_id(&self) -> String {
        idp0::config::user_id_for("alice")
    }

    fn assertion(&self, audience: &str) -> String {
        let signer = ClientAssertionSigner::new(
            "agent0-agent",
            self.idp.agent_key(),
            protocol::clock::system(),
        );
        signer.sign(audience).unwrap().expose_secret().to_owned()
    }

    /// Signs arbitrary claims with the org AS key.
    fn org_signed(&self, typ: &str, claims: &Value) -> String {
        self.idp
            .idp
            .org
            .keys
            .signing_key()
            .sign(typ, claims)
            .unwrap()
    }

    fn id_token_claims(&self) -> Value {
        json!({"iss": self.idp.issuer, "sub": self.alice_id(), "aud": "agent0", "iat": self.now, "exp": self.now + 600})
    }

    fn id_jag_claims(&self) -> Value {
        json!({"iss": self.idp.issuer, "sub": self.alice_id(), "aud": self.idp.todo0_issuer(), "client_id": "agent0-agent",
               "jti": uuid::Uuid::new_v4().to_string(), "iat": self.now, "exp": self.now + 300, "resource": RESOURCE,
               "scope": "mcp:connect mcp:tools:read"})
    }

    /// The form of a token exchange by the agent, with `subject` as the subject token.
    fn exchange(&self, subject: &str) -> Req {
        let endpoint = self.idp.org_token_endpoint();
        Req::form(
            &endpoint,
            vec![
                ("grant_type", TOKEN_EXCHANGE.into()),
                ("requested_token_type", ID_JAG.into()),
                ("subject_token", subject.into()),
                ("subject_token_type", ID_TOKEN.into()),
                ("audience", self.idp.todo0_issuer()),
                ("resource", RESOURCE.into()),
                ("scope", "mcp:connect mcp:tools:read".into()),
                ("client_id", "agent0-agent".into()),
                (
                    "client_assertion_type",
                    CLIENT_ASSERTION_TYPE_JWT_BEARER.into(),
                ),
                ("client_assertion", self.assertion(&endpoint)),
            ],
        )
    }

    fn good_exchange(&self) -> Req {
        self.exchange(self.id_token.expose_secret())
    }

    /// The form of an ID-JAG redemption by the agent.
    fn redeem(&self, assertion: &str) -> Req {
        let endpoint = self.idp.todo0_token_endpoint();
        Req::form(
            &endpoint,
            vec![
                ("grant_type", JWT_BEARER.into()),
                ("assertion", assertion.into()),
                ("client_id", "agent0-agent".into()),
                (
                    "client_assertion_type",
                    CLIENT_ASSERTION_TYPE_JWT_BEARER.into(),
                ),
                ("client_assertion", self.assertion(&endpoint)),
            ],
        )
    }
}

/// A request to send.
pub struct Req {
    pub url: String,
    pub fields: Vec<(&'static str, String)>,
    pub basic: Option<(String, String)>,
    pub raw: Option<(String, Vec<u8>)>,
    pub send_twice: bool,
}

impl Req {
    pub fn form(url: &str, fields: Vec<(&'static str, String)>) -> Self {
        Self {
            url: url.into(),
            fields,
            basic: None,
            raw: None,
            send_twice: false,
        }
    }

    fn set(mut self, name: &'static str, value: &str) -> Self {
        self.fields.retain(|(n, _)| *n != name);
        self.fields.push((name, value.into()));
        self
    }

    fn without(mut self, name: &str) -> Self {
        self.fields.retain(|(n, _)| *n != name);
        self
    }

    fn twice(mut self) -> Self {
        self.send_twice = true;
        self
    }

    /// Sends (twice if asked) and returns the last status, headers and JSON body.
    pub async fn send(&self) -> (u16, reqwest::header::HeaderMap, Value) {
        let http = reqwest::Client::new();
        let mut last = None;
        for _ in 0..if self.send_twice { 2 } else { 1 } {
            let mut request = http.post(&self.url);
            request = match &self.raw {
                Some((content_type, body)) => request
                    .header("content-type", content_type)
                    .body(body.clone()),
                None => request.form(&self.fields),
            };
            if let Some((id, secret)) = &self.basic {
                request = request.basic_auth(id, Some(secret));
            }
            last = Some(request.send().await.unwrap());
        }
        let response = last.unwrap();
        let (status, headers) = (response.status().as_u16(), response.headers().clone());
        (
            status,
            headers,
            response.json().await.unwrap_or(Value::Null),
        )
    }
}

fn forged(header: Value, claims: &Value) -> String {
    let enc = |v: &Value| URL_SAFE_NO_PAD.encode(serde_json::to_vec(v).unwrap());
    format!(
        "{}.{}.{}",
        enc(&header),
        enc(claims),
        URL_SAFE_NO_PAD.encode(b"sig")
    )
}

fn hmac_signed(kid: &str, claims: &Value, secret: &[u8]) -> String {
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
    header.kid = Some(kid.into());
    jsonwebtoken::encode(
        &header,
        claims,
        &jsonwebtoken::EncodingKey::from_secret(secret),
    )
    .unwrap()
}

/// A token correctly signed by `key` whose header also carries `crit` (RFC 7515 §4.1.11), so a
/// refusal can only come from the header.
fn signed_with_crit(key: &SigningKey, typ: &str, claims: &Value) -> String {
    let header = json!({"alg": key.alg(), "kid": key.kid(), "typ": typ, "crit": ["exp"], "exp": 0});
    let enc = |v: &Value| URL_SAFE_NO_PAD.encode(serde_json::to_vec(v).unwrap());
    let message = format!("{}.{}", enc(&header), enc(claims));
    let pem = protocol::keys::expose_pem(key).as_bytes();
    let encoding = jsonwebtoken::EncodingKey::from_rsa_pem(pem)
        .or_else(|_| jsonwebtoken::EncodingKey::from_ec_pem(pem))
        .or_else(|_| jsonwebtoken::EncodingKey::from_ed_pem(pem))
        .unwrap();
    let signature = jsonwebtoken::crypto::sign(message.as_bytes(), &encoding, key.alg()).unwrap();
    format!("{message}.{signature}")
}

fn with(mut value: Value, key: &str, new: Value) -> Value {
    value[key] = new;
    value
}

type Build = fn(&Ctx) -> Req;

#[rstest]
// Malformed requests.
#[case::json_instead_of_a_form(|c: &Ctx| { let mut r = c.good_exchange(); r.raw = Some(("application/json".into(), b"{}".to_vec())); r }, 400, "invalid_request")]
#[case::oversized_body(|c: &Ctx| { let mut r = c.good_exchange(); r.raw = Some(("application/x-www-form-urlencoded".into(), vec![b'a'; 100 * 1024])); r }, 400, "invalid_request")]
#[case::repeated_parameter(|c: &Ctx| { let mut r = c.good_exchange(); r.fields.push(("scope", "mcp:connect".into())); r }, 400, "invalid_request")]
#[case::missing_grant_type(|c: &Ctx| c.good_exchange().without("grant_type"), 400, "invalid_request")]
#[case::unsupported_grant_type(|c: &Ctx| c.good_exchange().set("grant_type", "password"), 400, "unsupported_grant_type")]
// Client authentication.
#[case::replayed_client_assertion_jti(|c: &Ctx| c.good_exchange().twice(), 401, "invalid_client")]
#[case::client_assertion_for_another_audience(|c: &Ctx| { let a = c.assertion("https://elsewhere.example/token"); c.good_exchange().set("client_assertion", &a) }, 401, "invalid_client")]
#[case::client_assertion_alg_none(|c: &Ctx| { let a = forged(json!({"alg": "none", "kid": c.idp.agent_key().kid()}), &json!({"iss": "agent0-agent", "sub": "agent0-agent", "aud": c.idp.org_token_endpoint(), "jti": "x", "exp": c.now + 60})); c.good_exchange().set("client_assertion", &a) }, 401, "invalid_client")]
#[case::client_assertion_hmac_with_public_key(|c: &Ctx| { let jwk = serde_json::to_vec(c.idp.agent_key().public_jwk()).unwrap(); let a = hmac_signed(c.idp.agent_key().kid(), &json!({"iss": "agent0-agent", "sub": "agent0-agent", "aud": c.idp.org_token_endpoint(), "jti": "h", "exp": c.now + 60}), &jwk); c.good_exchange().set("client_assertion", &a) }, 401, "invalid_client")]
#[case::client_assertion_unknown_kid(|c: &Ctx| { let stranger = SigningKey::generate(KeyKind::Rsa).unwrap(); let a = stranger.sign("JWT", &json!({"iss": "agent0-agent", "sub": "agent0-agent", "aud": c.idp.org_token_endpoint(), "jti": "k", "exp": c.now + 60})).unwrap(); c.good_exchange().set("client_assertion", &a) }, 401, "invalid_client")]
#[case::client_assertion_lives_too_long(|c: &Ctx| { let a = c.idp.agent_key().sign("JWT", &json!({"iss": "agent0-agent", "sub": "agent0-agent", "aud": c.idp.org_token_endpoint(), "jti": "long", "iat": c.now, "exp": c.now + 3600})).unwrap(); c.good_exchange().set("client_assertion", &a) }, 401, "invalid_client")]
#[case::client_assertion_with_crit_header(|c: &Ctx| { let a = signed_with_crit(&c.idp.agent_key(), "JWT", &json!({"iss": "agent0-agent", "sub": "agent0-agent", "aud": c.idp.org_token_endpoint(), "jti": "crit", "iat": c.now, "exp": c.now + 60})); c.good_exchange().set("client_assertion", &a) }, 401, "invalid_client")]
#[case::client_secret_for_a_private_key_jwt_client(|c: &Ctx| c.good_exchange().without("client_assertion").without("client_assertion_type").set("client_secret", "guess"), 401, "invalid_client")]
#[case::wrong_basic_secret(|c: &Ctx| { let mut r = c.good_exchange().without("client_assertion").without("client_assertion_type").without("client_id"); r.basic = Some(("agent0".into(), "wrong".into())); r }, 401, "invalid_client")]
#[case::two_client_authentication_methods(|c: &Ctx| { let mut r = c.good_exchange(); r.basic = Some(("agent0".into(), "x".into())); r }, 400, "invalid_request")]
// The subject token (step 1).
#[case::id_token_from_another_issuer(|c: &Ctx| { let other = SigningKey::generate(KeyKind::Rsa).unwrap(); let t = other.sign("JWT", &with(c.id_token_claims(), "iss", json!("https://evil.example"))).unwrap(); c.exchange(&t) }, 400, "invalid_grant")]
#[case::expired_id_token(|c: &Ctx| { let t = c.org_signed("JWT", &with(c.id_token_claims(), "exp", json!(c.now - 3600))); c.exchange(&t) }, 400, "invalid_grant")]
#[case::not_yet_valid_id_token(|c: &Ctx| { let t = c.org_signed("JWT", &with(c.id_token_claims(), "nbf", json!(c.now + 3600))); c.exchange(&t) }, 400, "invalid_grant")]
#[case::id_token_for_an_unlinked_client(|c: &Ctx| { let t = c.org_signed("JWT", &with(c.id_token_claims(), "aud", json!("todo0"))); c.exchange(&t) }, 400, "invalid_grant")]
#[case::id_token_with_unknown_kid(|c: &Ctx| { let other = SigningKey::generate(KeyKind::Rsa).unwrap(); let t = other.sign("JWT", &c.id_token_claims()).unwrap(); c.exchange(&t) }, 400, "invalid_grant")]
#[case::id_token_alg_none(|c: &Ctx| { let t = forged(json!({"alg": "none", "kid": c.idp.idp.org.keys.signing_key().kid()}), &c.id_token_claims()); c.exchange(&t) }, 400, "invalid_grant")]
#[case::id_token_hmac_signed(|c: &Ctx| { let key = c.idp.idp.org.keys.signing_key(); let jwk = serde_json::to_vec(key.public_jwk()).unwrap(); let t = hmac_signed(key.kid(), &c.id_token_claims(), &jwk); c.exchange(&t) }, 400, "invalid_grant")]
#[case::unsupported_subject_token_type(|c: &Ctx| c.good_exchange().set("subject_token_type", "urn:ietf:params:oauth:token-type:access_token"), 400, "invalid_request")]
#[case::unsupported_requested_token_type(|c: &Ctx| c.good_exchange().set("requested_token_type", "urn:ietf:params:oauth:token-type:access_token"), 400, "invalid_request")]
#[case::audience_names_no_known_server(|c: &Ctx| c.good_exchange().set("audience", "https://unknown.example/oauth2/x"), 400, "invalid_target")]
#[case::resource_not_served_by_the_audience(|c: &Ctx| c.good_exchange().set("resource", "https://other.example/mcp"), 400, "invalid_target")]
#[case::unknown_scope(|c: &Ctx| c.good_exchange().set("scope", "mcp:connect admin:everything"), 400, "invalid_scope")]
#[case::id_jag_requested_at_a_custom_server(|c: &Ctx| { let mut r = c.good_exchange(); r.url = c.idp.todo0_token_endpoint(); let a = c.assertion(&r.url); r.set("client_assertion", &a) }, 400, "unsupported_grant_type")]
// The ID-JAG (step 2).
#[case::id_jag_with_crit_header(|c: &Ctx| { let j = signed_with_crit(c.idp.idp.org.keys.signing_key(), "oauth-id-jag+jwt", &c.id_jag_claims()); c.redeem(&j) }, 400, "invalid_grant")]
#[case::id_token_with_crit_header(|c: &Ctx| { let t = signed_with_crit(c.idp.idp.org.keys.signing_key(), "JWT", &c.id_token_claims()); c.exchange(&t) }, 400, "invalid_grant")]
#[case::id_jag_issued_to_another_client(|c: &Ctx| { let j = c.org_signed("oauth-id-jag+jwt", &with(c.id_jag_claims(), "client_id", json!("todo0"))); c.redeem(&j) }, 400, "invalid_grant")]
#[case::id_jag_for_another_server(|c: &Ctx| { let j = c.org_signed("oauth-id-jag+jwt", &with(c.id_jag_claims(), "aud", json!(c.idp.issuer.clone()))); c.redeem(&j) }, 400, "invalid_grant")]
#[case::id_jag_with_two_audiences(|c: &Ctx| { let j = c.org_signed("oauth-id-jag+jwt", &with(c.id_jag_claims(), "aud", json!([c.idp.todo0_issuer(), "x"]))); c.redeem(&j) }, 400, "invalid_grant")]
#[case::id_token_presented_as_id_jag(|c: &Ctx| c.redeem(c.id_token.expose_secret()), 400, "invalid_grant")]
#[case::expired_id_jag(|c: &Ctx| { let j = c.org_signed("oauth-id-jag+jwt", &with(c.id_jag_claims(), "exp", json!(c.now - 120))); c.redeem(&j) }, 400, "invalid_grant")]
#[case::id_jag_for_another_resource(|c: &Ctx| { let j = c.org_signed("oauth-id-jag+jwt", &with(c.id_jag_claims(), "resource", json!("https://other.example/mcp"))); c.redeem(&j) }, 400, "invalid_grant")]
#[case::id_jag_redeemed_at_the_org_server(|c: &Ctx| { let j = c.org_signed("oauth-id-jag+jwt", &c.id_jag_claims()); let mut r = c.redeem(&j); r.url = c.idp.org_token_endpoint(); let a = c.assertion(&r.url); r.set("client_assertion", &a) }, 400, "unsupported_grant_type")]
#[tokio::test]
async fn token_endpoint_refuses(#[case] build: Build, #[case] status: u16, #[case] error: &str) {
    let c = ctx().await;
    let (got, headers, body) = build(&c).send().await;
    assert_eq!(
        (got, body["error"].as_str()),
        (status, Some(error)),
        "body: {body}"
    );
    assert!(body["error_description"].is_string());
    assert_eq!(
        headers.get("cache-control").map(|v| v.to_str().unwrap()),
        Some("no-store")
    );
    if error == "invalid_client"
        && c.good_exchange().basic.is_none()
        && headers.contains_key("www-authenticate")
    {
        assert!(
            headers["www-authenticate"]
                .to_str()
                .unwrap()
                .starts_with("Basic")
        );
    }
    // The same IdP still serves a correct request: nothing was left broken.
    let (ok, _, body) = c.good_exchange().send().await;
    assert_eq!(ok, 200, "a good request after the bad one: {body}");
}

#[tokio::test]
async fn a_basic_auth_failure_carries_a_basic_challenge() {
    let c = ctx().await;
    let mut r = c
        .good_exchange()
        .without("client_assertion")
        .without("client_assertion_type")
        .without("client_id");
    r.basic = Some(("agent0".into(), "wrong".into()));
    let (status, headers, _) = r.send().await;
    assert_eq!(status, 401);
    assert!(
        headers["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with("Basic realm=")
    );
}

#[tokio::test]
async fn a_refused_redemption_leaves_the_id_jag_unspent() {
    let c = ctx().await;
    let jag = c.org_signed("oauth-id-jag+jwt", &c.id_jag_claims());
    let (status, _, body) = c.redeem(&jag).set("scope", "mcp:tools:delete").send().await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_scope"))
    );
    let (status, _, body) = c.redeem(&jag).send().await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["scope"], "mcp:connect mcp:tools:read");
}

#[tokio::test]
async fn a_replayed_id_jag_is_invalid_grant() {
    let c = ctx().await;
    let jag = c.org_signed("oauth-id-jag+jwt", &c.id_jag_claims());
    assert_eq!(c.redeem(&jag).send().await.0, 200);
    // A fresh client assertion, the same ID-JAG.
    let (status, headers, body) = c.redeem(&jag).send().await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant")),
        "{body}"
    );
    assert_eq!(headers["cache-control"], "no-store");
}
