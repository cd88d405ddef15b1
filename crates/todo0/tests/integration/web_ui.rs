//! The page as a person meets it, over real HTTP: the app's own stylesheet (served as CSS, the
//! only style source the CSP allows, no inline styles or scripts), each todo's id as the agent
//! and the API use it, the open / done / all counts and the filter links that work without
//! JavaScript, and `Cache-Control: no-store` on every page and API answer that depends on the
//! session or the token, so nothing of a logged-out session comes back by Back or a restored tab.

use reqwest::StatusCode;
use reqwest::header::{CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE, LOCATION};
use secrecy::ExposeSecret;
use testkit::Browser;
use todo0::domain::Filter;

use super::{ALL, App, Person};

const STYLESHEET: &str = "/assets/todo0.css";

fn header<'a>(response: &'a reqwest::Response, name: &reqwest::header::HeaderName) -> &'a str {
    response
        .headers()
        .get(name)
        .unwrap_or_else(|| panic!("no {name} on {}", response.url()))
        .to_str()
        .unwrap()
}

/// `GET path` in `person`'s browser (with the session cookie): the response.
async fn get(person: &Person, path: &str) -> reqwest::Response {
    person
        .browser
        .http
        .get(format!("{}{path}", person.url))
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn the_stylesheet_is_served_as_css_and_is_the_only_style_the_policy_allows() {
    let app = App::start().await;
    let css = reqwest::get(app.at(STYLESHEET)).await.unwrap();
    assert_eq!(css.status(), StatusCode::OK);
    assert_eq!(header(&css, &CONTENT_TYPE), "text/css; charset=utf-8");
    assert_eq!(css.headers()["x-content-type-options"], "nosniff");
    assert_eq!(
        header(&css, &CACHE_CONTROL),
        "no-cache",
        "the same for everyone: revalidated, never no-store"
    );
    let css = css.text().await.unwrap();
    for rule in [
        "@media (prefers-color-scheme: dark)",
        ":focus-visible",
        "--accent: #4f46e5",
        "@media (max-width: 560px)",
    ] {
        assert!(css.contains(rule), "{rule}");
    }

    let welcome = reqwest::get(app.at("/")).await.unwrap();
    let csp = header(&welcome, &CONTENT_SECURITY_POLICY).to_owned();
    assert!(
        csp.starts_with("default-src 'none'; style-src 'self'; form-action 'self'"),
        "{csp}"
    );
    assert!(!csp.contains("unsafe-inline") && !csp.contains("script-src"));
    let page = welcome.text().await.unwrap();
    assert!(page.contains(&format!("<link rel=\"stylesheet\" href=\"{STYLESHEET}\">")));
    assert!(page.contains("<a class=\"button primary large\" href=\"/login\">Log in</a>"));
    for banned in ["<style", "style=", "<script"] {
        assert!(!page.contains(banned), "{banned}");
    }

    let favicon = reqwest::get(app.at("/favicon.ico")).await.unwrap();
    assert_eq!(favicon.status(), StatusCode::NO_CONTENT);
}

#[tokio::test]
async fn the_list_shows_ids_counts_and_filter_links_for_open_and_done_todos() {
    let app = App::start().await;
    let alice = app.login("alice").await;
    let bob = app.login("bob").await;
    let owner = alice.owner().await;
    let add = |person: &'static str, title: &'static str| {
        let who = if person == "alice" { &alice } else { &bob };
        async move {
            let added = who
                .submit("/todos", &[("csrf_token", &who.csrf), ("title", title)])
                .await;
            assert_eq!(added.status(), StatusCode::SEE_OTHER);
        }
    };
    add("alice", "write slides").await;
    add("bob", "bob's secret plan").await;
    add("alice", "book room").await;
    add("alice", "send invite").await;
    let todos = app
        .stack
        .store
        .list(&owner, &Filter::default())
        .await
        .unwrap();
    let ids: Vec<i64> = todos.iter().map(|t| t.id).collect();
    assert_eq!(ids.len(), 3);
    let booked = ids[1];
    let done = alice
        .submit(
            &format!("/todos/{booked}/complete"),
            &[("csrf_token", &alice.csrf)],
        )
        .await;
    assert_eq!(done.status(), StatusCode::SEE_OTHER);

    // All: every id as "#N", the same number the MCP tools and the REST API use.
    let page = alice.page().await;
    for todo in &todos {
        assert!(
            page.contains(&format!(
                "<span class=\"todo-id\">#{}</span><span class=\"todo-title\">{}",
                todo.id, todo.title
            )),
            "{page}"
        );
    }
    assert!(!page.contains("secret plan"), "only Alice's own todos");
    assert!(page.contains(&format!("<li class=\"todo done\" id=\"todo-{booked}\">")));
    assert!(page.contains(&format!(
        "Reopen<span class=\"visually-hidden\"> #{booked}</span>"
    )));
    assert!(page.contains(&format!(
        "Mark done<span class=\"visually-hidden\"> #{}</span>",
        ids[0]
    )));
    assert!(page.contains(&format!(
        "Delete<span class=\"visually-hidden\"> #{}</span>",
        ids[2]
    )));
    let links = [
        "<a class=\"filter\" href=\"/\" aria-current=\"page\">All <span class=\"count\">3</span></a>",
        "<a class=\"filter\" href=\"/?show=open\">Open <span class=\"count\">2</span></a>",
        "<a class=\"filter\" href=\"/?show=done\">Done <span class=\"count\">1</span></a>",
    ];
    for link in links {
        assert!(page.contains(link), "{link}");
    }
    assert!(page.contains("2 open, 1 done, 3 in all."));
    assert!(page.contains("<label class=\"field-label\" for=\"new-title\">New todo</label>"));

    // The filter links work without JavaScript: the query parameter picks the todos, the
    // counts stay those of all of them, and the current filter is marked for screen readers.
    let open = get(&alice, "/?show=open").await;
    assert_eq!(open.status(), StatusCode::OK);
    let open = open.text().await.unwrap();
    assert!(open.contains("write slides") && open.contains("send invite"));
    assert!(!open.contains("book room"));
    assert!(open.contains(
        "<a class=\"filter\" href=\"/?show=open\" aria-current=\"page\">Open <span class=\"count\">2</span></a>"
    ));
    assert!(open.contains("<a class=\"filter\" href=\"/\">All <span class=\"count\">3</span></a>"));
    assert_eq!(open.matches("aria-current").count(), 1);

    let done = get(&alice, "/?show=done").await.text().await.unwrap();
    assert!(done.contains(&format!(
        "#{booked}</span><span class=\"todo-title\">book room"
    )));
    assert!(!done.contains("write slides") && !done.contains("send invite"));
    assert!(done.contains("href=\"/?show=done\" aria-current=\"page\""));
    assert_eq!(
        get(&alice, "/?show=all").await.text().await.unwrap(),
        page,
        "all is the default"
    );

    // Bob sees only his own todo, counted alone.
    let bobs = bob.page().await;
    assert!(bobs.contains("bob&#39;s secret plan") && !bobs.contains("write slides"));
    assert!(bobs.contains("1 open, 0 done, 1 in all."));
    let nothing_done = get(&bob, "/?show=done").await.text().await.unwrap();
    assert!(nothing_done.contains("Nothing done yet."));

    // An unknown filter is refused with a page that says what went wrong.
    let bogus = alice
        .browser
        .http
        .get(format!("{}/?show=everything", alice.url))
        .header("accept", "text/html")
        .send()
        .await
        .unwrap();
    assert_eq!(bogus.status(), StatusCode::BAD_REQUEST);
    let bogus = bogus.text().await.unwrap();
    assert!(
        bogus.contains("role=\"alert\"") && bogus.contains("show only all, open or done todos")
    );
}

#[tokio::test]
async fn every_page_and_api_answer_with_personal_data_is_no_store() {
    let app = App::start().await;
    let no_store = |response: &reqwest::Response| {
        assert_eq!(
            header(response, &CACHE_CONTROL),
            "no-store",
            "{} {}",
            response.status(),
            response.url()
        );
    };

    // Logged out: the welcome page, the login redirect, refusals.
    let stranger = Browser::new();
    for path in ["/", "/login", "/todos", "/session", "/todos/1"] {
        let response = stranger.http.get(app.at(path)).send().await.unwrap();
        no_store(&response);
    }

    // Signed in with the cookie: the pages, the JSON API, the form's redirect, errors.
    let alice = app.login("alice").await;
    let added = alice
        .submit(
            "/todos",
            &[("csrf_token", &alice.csrf), ("title", "private")],
        )
        .await;
    assert_eq!(added.status(), StatusCode::SEE_OTHER);
    assert_eq!(added.headers()[LOCATION], "/");
    no_store(&added);
    let id = app
        .stack
        .store
        .list(&alice.owner().await, &Filter::default())
        .await
        .unwrap()[0]
        .id;
    for path in [
        "/".to_owned(),
        "/?show=open".to_owned(),
        "/?show=done".to_owned(),
        "/?show=nonsense".to_owned(),
        "/session".to_owned(),
        "/todos".to_owned(),
        format!("/todos/{id}"),
        "/todos/999999".to_owned(),
        "/openapi.json".to_owned(),
        "/health".to_owned(),
    ] {
        let response = get(&alice, &path).await;
        no_store(&response);
    }
    let page = get(&alice, "/").await;
    assert!(header(&page, &CONTENT_TYPE).starts_with("text/html"));
    assert!(page.text().await.unwrap().contains("private"));
    let json = alice
        .browser
        .http
        .get(app.at("/todos"))
        .header("accept", "application/json")
        .send()
        .await
        .unwrap();
    assert!(header(&json, &CONTENT_TYPE).starts_with("application/json"));
    no_store(&json);

    // With an access token, as the agent calls it.
    let token = app.stack.mcp_token("alice", ALL).await.unwrap();
    let client = reqwest::Client::new();
    for path in ["/todos".to_owned(), format!("/todos/{id}")] {
        let response = client
            .get(app.at(&path))
            .bearer_auth(token.expose_secret())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        no_store(&response);
    }
    let created = client
        .post(app.at("/todos"))
        .bearer_auth(token.expose_secret())
        .json(&serde_json::json!({"title": "by token"}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), StatusCode::CREATED);
    no_store(&created);

    // Logging out: the redirect, and what the old tab gets when it asks again.
    let out = alice
        .submit("/logout", &[("csrf_token", &alice.csrf)])
        .await;
    assert_eq!(out.status(), StatusCode::SEE_OTHER);
    no_store(&out);
    let after = get(&alice, "/").await;
    no_store(&after);
    let after = after.text().await.unwrap();
    assert!(after.contains("Log in") && !after.contains("private"));
}

#[tokio::test]
async fn every_response_carries_the_security_headers_once() {
    let app = App::start().await;
    let stranger = Browser::new();
    let page = |path: &str| {
        stranger
            .http
            .get(app.at(path))
            .header("accept", "text/html")
            .send()
    };
    let responses = [
        page("/").await.unwrap(),
        page(STYLESHEET).await.unwrap(),
        page("/no/such/page").await.unwrap(),
        page("/todos/not-a-number").await.unwrap(),
        reqwest::get(app.at("/todos")).await.unwrap(),
        reqwest::get(app.at("/health")).await.unwrap(),
    ];
    let csp = header(&responses[0], &CONTENT_SECURITY_POLICY).to_owned();
    assert!(
        csp.starts_with("default-src 'none'; style-src 'self';"),
        "{csp}"
    );
    for response in &responses {
        let at = format!("{} {}", response.status(), response.url());
        for (name, value) in [
            ("content-security-policy", csp.as_str()),
            ("x-content-type-options", "nosniff"),
            ("x-frame-options", "DENY"),
            ("referrer-policy", "no-referrer"),
        ] {
            let values: Vec<_> = response.headers().get_all(name).iter().collect();
            assert_eq!(values, [value], "{name} on {at}");
        }
    }
    assert_eq!(header(&responses[1], &CACHE_CONTROL), "no-cache", "its own");
    for response in responses
        .iter()
        .filter(|r| !r.url().path().ends_with(".css"))
    {
        assert_eq!(
            header(response, &CACHE_CONTROL),
            "no-store",
            "{}",
            response.url()
        );
    }
}
