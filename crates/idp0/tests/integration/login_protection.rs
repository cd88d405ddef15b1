//! The login form under attack, through real HTTP and the product's own `idp0::serve`: bounded
//! password checks under a flood (503 + `Retry-After`), brute-force throttling and a temporary
//! lock with an injected clock (429 + `Retry-After`, no Argon2id run, SSO unaffected), and the
//! anti-CSRF token bound to a server key.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use idp0::login_guard::{LoginLimits, ThrottlePolicy};
use protocol::clock::FixedClock;
use rstest::rstest;
use testkit::{Browser, IdpHandle, Pkce, hidden_fields};

const CALLBACK: &str = "http://localhost:3000/callback";

/// An IdP assembled in process with `limits`, served by `idp0::serve` (connect info included).
struct Served {
    idp: idp0::Idp,
    issuer: String,
    password: String,
    _dir: tempfile::TempDir,
    _stop: tokio::sync::oneshot::Sender<()>,
}

async fn serve_with(limits: LoginLimits, clock: Arc<dyn protocol::Clock>) -> Served {
    let dir = tempfile::tempdir().unwrap();
    let dev = devstack::ensure(dir.path(), None).unwrap();
    let mut config = idp0::config::Config::load(&dev.path).unwrap();
    config.login = limits;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let issuer = format!("http://{}", listener.local_addr().unwrap());
    let idp = idp0::Idp::new(idp0::state::IdpParts {
        config,
        issuer: issuer.clone(),
        store: Arc::new(idp0::store::SqliteStore::temporary().await.unwrap()),
        clock,
        keys_dir: None,
        demo_credentials: Vec::new(),
    })
    .unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(idp0::serve(listener, idp.clone(), async move {
        let _ = stopped.await;
    }));
    let password = dev
        .demo_users
        .iter()
        .find(|(u, _)| u == "alice")
        .map(|(_, p)| p.clone())
        .unwrap();
    Served {
        idp,
        issuer,
        password,
        _dir: dir,
        _stop: stop,
    }
}

fn authorize_url(issuer: &str) -> String {
    let pkce = Pkce::new();
    let mut url = url::Url::parse(&format!("{issuer}/oauth2/v1/authorize")).unwrap();
    url.query_pairs_mut()
        .append_pair("client_id", "agent0")
        .append_pair("redirect_uri", CALLBACK)
        .append_pair("response_type", "code")
        .append_pair("scope", "openid")
        .append_pair("state", "s")
        .append_pair("code_challenge", &pkce.challenge)
        .append_pair("code_challenge_method", "S256");
    url.into()
}

/// A genuine login form: its CSRF cookie value and hidden fields, read without a cookie store.
pub(crate) async fn genuine_form(issuer: &str) -> (String, Vec<(String, String)>) {
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let page = http.get(authorize_url(issuer)).send().await.unwrap();
    let cookie = page
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|v| v.strip_prefix("idp0_csrf="))
        .and_then(|v| v.split(';').next())
        .unwrap()
        .to_owned();
    let fields = hidden_fields(&page.text().await.unwrap());
    (cookie, fields)
}

/// A client that keeps no cookies and follows no redirects, shared by a flood's requests (one
/// client per request would measure the clients' TLS root stores, not the server).
fn plain_client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// Posts the login form with exactly this cookie, fields and credentials.
pub(crate) async fn post_login(
    issuer: &str,
    cookie: Option<&str>,
    fields: &[(String, String)],
    credentials: (&str, &str),
    origin: Option<&str>,
) -> reqwest::Response {
    post_login_with(&plain_client(), issuer, cookie, fields, credentials, origin).await
}

async fn post_login_with(
    http: &reqwest::Client,
    issuer: &str,
    cookie: Option<&str>,
    fields: &[(String, String)],
    credentials: (&str, &str),
    origin: Option<&str>,
) -> reqwest::Response {
    let mut form = fields.to_vec();
    form.push(("username".into(), credentials.0.into()));
    form.push(("password".into(), credentials.1.into()));
    let mut request = http.post(format!("{issuer}/login")).form(&form);
    if let Some(cookie) = cookie {
        request = request.header("cookie", format!("idp0_csrf={cookie}"));
    }
    if let Some(origin) = origin {
        request = request.header("origin", origin);
    }
    request.send().await.unwrap()
}

fn relaxed_throttle() -> ThrottlePolicy {
    ThrottlePolicy {
        free_failures: 10_000,
        max_delay_seconds: 1,
        lock_after: 10_000,
        lock_seconds: 1,
        forget_after_seconds: 1,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_hundred_concurrent_wrong_passwords_run_at_most_n_checks_then_503_with_retry_after() {
    const N: usize = 2;
    let wait = Duration::from_millis(250);
    // Throttling off, so every request reaches the password gate.
    let served = serve_with(
        LoginLimits {
            max_concurrent_checks: N,
            max_waiting_checks: 1_000,
            check_wait: wait,
            account: relaxed_throttle(),
            address: relaxed_throttle(),
        },
        protocol::clock::system(),
    )
    .await;
    let (cookie, fields) = genuine_form(&served.issuer).await;
    let started = Instant::now();
    let http = plain_client();
    let posts: Vec<_> = (0..200)
        .map(|i| {
            let (issuer, cookie, fields) = (served.issuer.clone(), cookie.clone(), fields.clone());
            let http = http.clone();
            tokio::spawn(async move {
                let user = if i % 2 == 0 {
                    "alice".to_owned()
                } else {
                    format!("nobody{i}")
                };
                let response = post_login_with(
                    &http,
                    &issuer,
                    Some(&cookie),
                    &fields,
                    (&user, "wrong"),
                    None,
                )
                .await;
                let retry_after = response
                    .headers()
                    .get("retry-after")
                    .map(|v| v.to_str().unwrap().to_owned());
                (response.status().as_u16(), retry_after, started.elapsed())
            })
        })
        .collect();
    let mut by_status: HashMap<u16, usize> = HashMap::new();
    for post in posts {
        let (status, retry_after, elapsed) = post.await.unwrap();
        assert!(matches!(status, 401 | 503), "status {status}");
        if status == 503 {
            assert_eq!(retry_after.as_deref(), Some("1"), "503 says when to retry");
        }
        assert!(
            elapsed < wait + Duration::from_secs(20),
            "answered within the deadline: {elapsed:?}"
        );
        *by_status.entry(status).or_default() += 1;
    }
    let gate = &served.idp.password_gate;
    assert!(
        gate.peak_concurrency() <= N,
        "at most {N} Argon2id checks at once, saw {}",
        gate.peak_concurrency()
    );
    assert!(
        by_status.get(&401).copied().unwrap_or(0) >= 1,
        "{by_status:?}"
    );
    assert!(
        by_status.get(&503).copied().unwrap_or(0) >= 1,
        "200 checks of ≈19 MiB cannot all run within {wait:?} on {N} slots: {by_status:?}"
    );
    // The gate empties: a correct login works right after the flood.
    let (cookie, fields) = genuine_form(&served.issuer).await;
    let ok = post_login(
        &served.issuer,
        Some(&cookie),
        &fields,
        ("alice", &served.password),
        None,
    )
    .await;
    assert_eq!(ok.status(), 303, "the right password after the flood");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_flood_with_default_limits_is_mostly_throttled_before_argon2() {
    // A frozen clock: no delay expires while the flood is in flight.
    let served = serve_with(LoginLimits::default(), FixedClock::frozen_now()).await;
    let (cookie, fields) = genuine_form(&served.issuer).await;
    let http = plain_client();
    let posts: Vec<_> = (0..200)
        .map(|_| {
            let (issuer, cookie, fields) = (served.issuer.clone(), cookie.clone(), fields.clone());
            let http = http.clone();
            tokio::spawn(async move {
                post_login_with(
                    &http,
                    &issuer,
                    Some(&cookie),
                    &fields,
                    ("alice", "wrong"),
                    None,
                )
                .await
                .status()
                .as_u16()
            })
        })
        .collect();
    let mut throttled = 0;
    for post in posts {
        let status = post.await.unwrap();
        assert!(matches!(status, 401 | 429 | 503), "status {status}");
        throttled += usize::from(status == 429);
    }
    let checks = served.idp.password_gate.checks_started();
    assert!(
        checks <= 5,
        "only the 5 free attempts on alice reach Argon2id, saw {checks}"
    );
    assert_eq!(throttled, 195);
}

/// The login page's status and `Retry-After`, for `password`, in `browser`.
async fn attempt(
    idp: &IdpHandle,
    browser: &Browser,
    password: &str,
) -> (u16, Option<String>, String) {
    let url = idp.authorize_url("agent0", CALLBACK, "openid", &Pkce::new(), "s", "n");
    let form = browser
        .http
        .get(&url)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let response = browser
        .submit_login(&url, &form, "alice", password)
        .await
        .unwrap();
    let retry_after = response
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_owned());
    let status = response.status().as_u16();
    (
        status,
        retry_after,
        response.text().await.unwrap_or_default(),
    )
}

#[tokio::test]
async fn repeated_failures_slow_then_lock_the_account_even_for_the_right_password() {
    let dir = tempfile::tempdir().unwrap();
    let clock = FixedClock::frozen_now();
    let idp = IdpHandle::start_in(dir.path(), clock.clone())
        .await
        .unwrap();
    // Alice is already signed in in her own browser.
    let alices_browser = Browser::new();
    idp.login(&alices_browser, "alice").await.unwrap();
    let right = idp.password("alice");
    let attacker = Browser::new();
    let gate = &idp.idp.password_gate;

    // Five free failures.
    for _ in 0..5 {
        assert_eq!(attempt(&idp, &attacker, "wrong").await.0, 401);
    }
    // Then a growing delay: the sixth right away is refused without an Argon2id check.
    let checks = gate.checks_started();
    let (status, retry_after, page) = attempt(&idp, &attacker, "wrong").await;
    assert_eq!((status, retry_after.as_deref()), (429, Some("1")));
    assert!(page.contains("Too many failed sign-in attempts"), "{page}");
    assert_eq!(
        gate.checks_started(),
        checks,
        "no Argon2id for a throttled attempt"
    );
    // Spaced out, the failures continue up to the lock.
    for _ in 5..10 {
        clock.advance(60);
        assert_eq!(attempt(&idp, &attacker, "wrong").await.0, 401);
    }
    // Locked: even the right password is refused, with a Retry-After of the lock.
    let checks = gate.checks_started();
    let (status, retry_after, _) = attempt(&idp, &attacker, &right).await;
    assert_eq!((status, retry_after.as_deref()), (429, Some("300")));
    clock.advance(299);
    assert_eq!(attempt(&idp, &attacker, &right).await.0, 429);
    assert_eq!(gate.checks_started(), checks);

    // Alice's existing SSO session is unaffected (prompt=none still answers with a code).
    let mut silent =
        url::Url::parse(&idp.authorize_url("agent0", CALLBACK, "openid", &Pkce::new(), "s", "n"))
            .unwrap();
    silent.query_pairs_mut().append_pair("prompt", "none");
    let code = alices_browser.authorize(silent.as_str(), None).await;
    assert!(code.is_ok(), "SSO is unaffected by the lock: {code:?}");

    // The lock expires; the right password works and clears the count.
    clock.advance(1);
    let url = idp.authorize_url("agent0", CALLBACK, "openid", &Pkce::new(), "s", "n");
    let code = Browser::new()
        .authorize(&url, Some(("alice", &right)))
        .await;
    assert!(code.is_ok(), "after the lock: {code:?}");
    for _ in 0..5 {
        assert_eq!(
            attempt(&idp, &attacker, "wrong").await.0,
            401,
            "count was reset"
        );
    }
}

#[tokio::test]
async fn unknown_usernames_are_locked_the_same_way() {
    let dir = tempfile::tempdir().unwrap();
    let clock = FixedClock::frozen_now();
    let idp = IdpHandle::start_in(dir.path(), clock.clone())
        .await
        .unwrap();
    let browser = Browser::new();
    let url = idp.authorize_url("agent0", CALLBACK, "openid", &Pkce::new(), "s", "n");
    let mut statuses = Vec::new();
    for _ in 0..6 {
        let form = browser
            .http
            .get(&url)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let response = browser
            .submit_login(&url, &form, "mallory", "x")
            .await
            .unwrap();
        statuses.push(response.status().as_u16());
    }
    assert_eq!(
        statuses,
        [401, 401, 401, 401, 401, 429],
        "no hint who exists"
    );
}

fn with_csrf(fields: &[(String, String)], value: &str) -> Vec<(String, String)> {
    fields
        .iter()
        .map(|(k, v)| {
            let v = if k == "csrf" {
                value.to_owned()
            } else {
                v.clone()
            };
            (k.clone(), v)
        })
        .collect()
}

/// How an attacker builds the cookie and field.
#[derive(Debug, Clone, Copy)]
enum Forgery {
    /// The old double-submit: a page that can set a cookie for the host sets it and the field.
    MatchingPair,
    GenuineCookieAsField,
    ForgedCookieWithGenuineField,
    NoCookie,
    MadeUpMac,
    GenuinePairFromAForeignOrigin,
    GenuinePairFromAnOpaqueOrigin,
}

type Forged = (Option<String>, Vec<(String, String)>, Option<&'static str>);

fn forge(how: Forgery, cookie: &str, fields: &[(String, String)]) -> Forged {
    match how {
        Forgery::MatchingPair => (Some("forged".into()), with_csrf(fields, "forged"), None),
        Forgery::GenuineCookieAsField => (Some(cookie.into()), with_csrf(fields, cookie), None),
        Forgery::ForgedCookieWithGenuineField => (Some("forged".into()), fields.to_vec(), None),
        Forgery::NoCookie => (None, fields.to_vec(), None),
        Forgery::MadeUpMac => (
            Some(cookie.into()),
            with_csrf(
                fields,
                "1800000000.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
            ),
            None,
        ),
        Forgery::GenuinePairFromAForeignOrigin => (
            Some(cookie.into()),
            fields.to_vec(),
            Some("http://localhost:9999"),
        ),
        Forgery::GenuinePairFromAnOpaqueOrigin => {
            (Some(cookie.into()), fields.to_vec(), Some("null"))
        }
    }
}

#[rstest]
#[case::forged_matching_cookie_and_field(Forgery::MatchingPair)]
#[case::genuine_cookie_as_field(Forgery::GenuineCookieAsField)]
#[case::forged_cookie_with_genuine_field(Forgery::ForgedCookieWithGenuineField)]
#[case::no_cookie(Forgery::NoCookie)]
#[case::made_up_mac(Forgery::MadeUpMac)]
#[case::genuine_pair_from_a_foreign_origin(Forgery::GenuinePairFromAForeignOrigin)]
#[case::genuine_pair_from_an_opaque_origin(Forgery::GenuinePairFromAnOpaqueOrigin)]
#[tokio::test]
async fn a_login_csrf_pair_not_made_by_idp0_is_refused(#[case] how: Forgery) {
    let served = serve_with(LoginLimits::default(), protocol::clock::system()).await;
    let (cookie, fields) = genuine_form(&served.issuer).await;
    let (forged_cookie, forged_fields, origin) = forge(how, &cookie, &fields);
    let checks = served.idp.password_gate.checks_started();
    let response = post_login(
        &served.issuer,
        forged_cookie.as_deref(),
        &forged_fields,
        ("alice", &served.password),
        origin,
    )
    .await;
    assert_eq!(response.status(), 403);
    assert!(
        response.headers().get("location").is_none(),
        "no code issued"
    );
    assert_eq!(
        served.idp.password_gate.checks_started(),
        checks,
        "no password check"
    );
    // The genuine pair, same-origin, still works.
    let ok = post_login(
        &served.issuer,
        Some(&cookie),
        &fields,
        ("alice", &served.password),
        Some(&served.issuer),
    )
    .await;
    assert_eq!(ok.status(), 303);
    assert!(location_of(&ok).starts_with(CALLBACK));
}

/// A page on another local port can fetch idp0's form itself and plant the genuine cookie and
/// token in the browser, and a form post need not carry `Origin`: the browser's
/// `Sec-Fetch-Site` (which no page can set) decides. Another port is `same-site`, not
/// `same-origin`.
#[rstest]
#[case::cross_site("cross-site", 403)]
#[case::another_port_on_the_same_host("same-site", 403)]
#[case::same_origin("same-origin", 303)]
#[case::typed_by_the_person("none", 303)]
#[tokio::test]
async fn a_genuine_pair_posted_without_origin_counts_sec_fetch_site(
    #[case] site: &str,
    #[case] status: u16,
) {
    let served = serve_with(LoginLimits::default(), protocol::clock::system()).await;
    let (cookie, fields) = genuine_form(&served.issuer).await;
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert("sec-fetch-site", site.parse().unwrap());
    let browser = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .default_headers(headers)
        .build()
        .unwrap();
    let checks = served.idp.password_gate.checks_started();
    let response = post_login_with(
        &browser,
        &served.issuer,
        Some(&cookie),
        &fields,
        ("alice", &served.password),
        None,
    )
    .await;
    assert_eq!(response.status(), status, "Sec-Fetch-Site: {site}");
    if status == 403 {
        assert!(
            response.headers().get("location").is_none(),
            "no code issued"
        );
        assert_eq!(
            served.idp.password_gate.checks_started(),
            checks,
            "no password check"
        );
    } else {
        assert!(location_of(&response).starts_with(CALLBACK));
    }
}

fn location_of(response: &reqwest::Response) -> String {
    response.headers()["location"].to_str().unwrap().to_owned()
}

#[tokio::test]
async fn the_real_login_flow_still_works_through_the_browser() {
    let idp = IdpHandle::start().await.unwrap();
    let url = idp.authorize_url("agent0", CALLBACK, "openid", &Pkce::new(), "s", "n");
    // Browsers send `Origin: null` on form posts from a `no-referrer` page, which the form
    // refuses; the page must let them send the real origin.
    let page = reqwest::get(&url).await.unwrap();
    assert_eq!(page.headers()["referrer-policy"], "same-origin");
    let response = Browser::new()
        .authorize(&url, Some(("alice", &idp.password("alice"))))
        .await;
    assert!(response.is_ok(), "{response:?}");
}

/// The security headers come from tower-http layers on every response, once each: the pages'
/// CSP, nosniff, DENY and `same-origin`; pages are also never cached, while the discovery
/// document keeps its own `max-age`.
#[tokio::test]
async fn every_response_carries_the_security_headers_once() {
    let idp = IdpHandle::start().await.unwrap();
    let login_page = idp.authorize_url("agent0", CALLBACK, "openid", &Pkce::new(), "s", "n");
    let discovery = format!("{}/.well-known/openid-configuration", idp.issuer);
    let mut responses = Vec::new();
    for url in [
        login_page,
        discovery,
        format!("{}/oauth2/v1/keys", idp.issuer),
        format!("{}/health", idp.issuer),
        format!("{}/", idp.issuer),
        format!("{}/no/such/page", idp.issuer),
    ] {
        responses.push(reqwest::get(&url).await.unwrap());
    }
    for response in &responses {
        let at = format!("{} {}", response.status(), response.url());
        for (name, value) in [
            ("content-security-policy", idp0::html::CSP),
            ("x-content-type-options", "nosniff"),
            ("x-frame-options", "DENY"),
            ("referrer-policy", "same-origin"),
        ] {
            let values: Vec<_> = response.headers().get_all(name).iter().collect();
            assert_eq!(values, [value], "{name} on {at}");
        }
    }
    assert_eq!(
        responses[0].headers()["cache-control"],
        "no-store",
        "the login page"
    );
    assert_eq!(
        responses[1].headers()["cache-control"],
        "max-age=300",
        "discovery"
    );
}
