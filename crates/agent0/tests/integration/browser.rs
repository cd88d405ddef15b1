//! J1 and J2 through the real UI in headless Chromium (Debian's `chromium` + `chromidriver`,
//! which `scripts/test.sh` installs): the login prompt, idp0's login form, the header with the
//! person's name, the ID token claims viewer, chat turns with tool chips (one expanded, the
//! step-up marker shown), and the Managed Connections panel with both connections LIVE.
//! Screenshots land in `target/test-artifacts/`.

use std::time::Duration;

use testkit::browser::{Driver, WAIT, artifact, browser, wait_for};
use thirtyfour::prelude::*;

use super::harness::AgentStack;

/// `user`'s subject (from a login of their own beside the browser's).
async fn subject(stack: &AgentStack, user: &str) -> String {
    let person = stack.login(user).await;
    let (_, status) = person.get("/auth/status").await;
    status["user"]["sub"].as_str().unwrap().to_owned()
}

async fn send(browser: &WebDriver, message: &str) {
    let input = wait_for(browser, "#chat-input").await;
    input.send_keys(message).await.unwrap();
    wait_for(browser, "#send-button")
        .await
        .click()
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn j1_and_j2_in_headless_chromium() {
    let stack = AgentStack::start().await;
    let driver = Driver::start();
    let browser = browser(&driver).await;
    let result = journey(&stack, &browser).await;
    let _ = browser.screenshot(&artifact("agent0-last-state.png")).await;
    browser.quit().await.unwrap();
    result.unwrap();
}

async fn journey(stack: &AgentStack, browser: &WebDriver) -> WebDriverResult<()> {
    // J1: nobody is logged in; "Log in" goes through idp0's form and back to the chat.
    browser.goto(&stack.base).await?;
    wait_for(browser, "#login-button").await.click().await?;
    let username = wait_for(browser, "input[name=username]").await;
    assert!(
        browser
            .current_url()
            .await?
            .as_str()
            .starts_with(&stack.stack.idp.issuer)
    );
    username.send_keys("alice").await?;
    browser
        .find(By::Css("input[name=password]"))
        .await?
        .send_keys(stack.stack.idp.password("alice"))
        .await?;
    browser
        .find(By::Css("form button, form input[type=submit]"))
        .await?
        .click()
        .await?;
    let name = wait_for(browser, "#user-name").await;
    browser
        .query(By::Css("#user-name"))
        .with_text(thirtyfour::stringmatch::StringMatch::new("Alice").partial())
        .wait(WAIT, Duration::from_millis(100))
        .first()
        .await?;
    assert!(name.text().await?.contains("Alice"));
    assert!(
        browser
            .current_url()
            .await?
            .as_str()
            .starts_with(&stack.base)
    );

    // The key icon shows the ID token's claims, never the token.
    wait_for(browser, "#claims-button").await.click().await?;
    let claims = wait_for(browser, "#claims-panel").await;
    let text = claims.text().await?;
    assert!(
        text.contains("sub") && text.contains(&stack.stack.idp.issuer),
        "{text}"
    );
    assert!(
        !browser.source().await?.contains("eyJ"),
        "no JWT in the page"
    );
    browser
        .action_chain()
        .send_keys(Key::Escape)
        .perform()
        .await?;

    // J2: list, then add (a step-up), through the chat.
    send(browser, "list my todos").await;
    wait_for(
        browser,
        ".tool-chip[data-tool='get-todos'][data-state='ok']",
    )
    .await;
    // The first write needs a scope not yet approved here: a card, approved by a click.
    send(browser, "add a todo \"prep the demo\"").await;
    let card = wait_for(
        browser,
        ".confirm-card[data-tool='create-todo'][data-state='pending']",
    )
    .await;
    assert!(card.text().await?.contains("prep the demo"));
    card.find(By::Css(".confirm-approve"))
        .await?
        .click()
        .await?;
    let chip = wait_for(
        browser,
        ".tool-chip[data-tool='create-todo'][data-state='ok']",
    )
    .await;
    chip.find(By::Css(".step-up-marker")).await?;
    chip.find(By::Css("summary")).await?.click().await?;
    let expanded = chip.text().await?.to_lowercase();
    assert!(
        expanded.contains("arguments") && expanded.contains("prep the demo"),
        "{expanded}"
    );
    browser.screenshot(&artifact("agent0-j2-chat.png")).await?;

    // Deleting is destructive: the card names the tool and its arguments, and nothing is
    // deleted until Approve is clicked.
    let owner = todo0::domain::Owner::new(subject(stack, "alice").await).unwrap();
    let id = stack
        .stack
        .store
        .list(&owner, &todo0::domain::Filter::default())
        .await
        .unwrap()[0]
        .id;
    send(browser, &format!("delete todo {id}")).await;
    let card = wait_for(
        browser,
        ".confirm-card[data-tool='delete-todo'][data-state='pending']",
    )
    .await;
    let text = card.text().await?;
    assert!(
        text.contains("delete-todo") && text.contains(&format!("\"id\": {id}")),
        "{text}"
    );
    card.find(By::Css(".confirm-deny")).await?;
    browser
        .screenshot(&artifact("agent0-confirm-card.png"))
        .await?;
    assert_eq!(
        stack
            .stack
            .store
            .list(&owner, &todo0::domain::Filter::default())
            .await
            .unwrap()
            .len(),
        1,
        "nothing deleted before the click"
    );
    card.find(By::Css(".confirm-approve"))
        .await?
        .click()
        .await?;
    wait_for(
        browser,
        ".tool-chip[data-tool='delete-todo'][data-state='ok']",
    )
    .await;
    assert!(
        stack
            .stack
            .store
            .list(&owner, &todo0::domain::Filter::default())
            .await
            .unwrap()
            .is_empty(),
        "the todo is gone"
    );
    browser
        .screenshot(&artifact("agent0-confirm-approved.png"))
        .await?;

    // The Managed Connections panel: both connections LIVE.
    wait_for(browser, "#connections-button")
        .await
        .click()
        .await?;
    wait_for(
        browser,
        ".connection-card[data-name='authorization_server'][data-state='live']",
    )
    .await;
    let card = wait_for(
        browser,
        ".connection-card[data-name='todo0'][data-state='live']",
    )
    .await;
    let text = card.text().await?;
    assert!(
        text.contains("LIVE") && text.contains(&stack.stack.mcp_url),
        "{text}"
    );
    browser
        .screenshot(&artifact("agent0-j2-connections.png"))
        .await?;
    browser
        .action_chain()
        .send_keys(Key::Escape)
        .perform()
        .await?;

    // A phone-sized screen still shows the chat and its controls.
    browser.set_window_rect(0, 0, 375, 740).await?;
    wait_for(browser, "#chat-input").await;
    wait_for(browser, "#send-button").await;
    browser.screenshot(&artifact("agent0-phone.png")).await?;

    // Logout: the page posts a form, agent0 redirects straight to idp0's end-session endpoint
    // (allowed by the CSP's form-action) and idp0 back to the app, logged out.
    browser.set_window_rect(0, 0, 1280, 900).await?;
    wait_for(browser, "#logout-button").await.click().await?;
    // The page navigates away and back, so elements found on the way go stale: poll.
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let shown = match browser.find(By::Css("#login-button")).await {
            Ok(button) => button.is_displayed().await.unwrap_or(false),
            Err(_) => false,
        };
        if shown
            && browser
                .current_url()
                .await?
                .as_str()
                .starts_with(&stack.base)
        {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the login button did not come back after logout"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        browser
            .current_url()
            .await?
            .as_str()
            .starts_with(&stack.base)
    );
    assert!(
        !browser.source().await?.contains("eyJ"),
        "no JWT in the page"
    );
    Ok(())
}

/// Waits until the element at `css` holds `text` (a re-rendered element is looked up again).
async fn wait_for_text(browser: &WebDriver, css: &str, text: &str) -> WebElement {
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        if let Ok(element) = browser.find(By::Css(css)).await
            && element.text().await.is_ok_and(|t| t.contains(text))
        {
            return element;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{css} did not come to hold {text:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits until `script` (a JS expression) is true in the page.
async fn wait_until(browser: &WebDriver, script: &str, what: &str) {
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let ok = browser
            .execute(&format!("return Boolean({script});"), Vec::new())
            .await
            .is_ok_and(|r| r.json().as_bool() == Some(true));
        if ok {
            return;
        }
        assert!(std::time::Instant::now() < deadline, "{what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Through idp0's form when it asks (its own session may answer at once).
async fn log_in_in_browser(stack: &AgentStack, browser: &WebDriver, user: &str) {
    wait_for(browser, "#login-button")
        .await
        .click()
        .await
        .unwrap();
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        if let Ok(username) = browser.find(By::Css("input[name=username]")).await {
            username.send_keys(user).await.unwrap();
            browser
                .find(By::Css("input[name=password]"))
                .await
                .unwrap()
                .send_keys(stack.stack.idp.password(user))
                .await
                .unwrap();
            browser
                .find(By::Css("form button, form input[type=submit]"))
                .await
                .unwrap()
                .click()
                .await
                .unwrap();
            break;
        }
        if browser
            .find(By::Css("#user-name"))
            .await
            .is_ok_and(|_| true)
            && browser
                .current_url()
                .await
                .unwrap()
                .as_str()
                .starts_with(&stack.base)
            && browser
                .execute("return document.body.dataset.view;", Vec::new())
                .await
                .is_ok_and(|r| r.json().as_str() == Some("chat"))
        {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no login form, no chat"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    wait_until(
        browser,
        "document.body.dataset.view === 'chat'",
        "the chat did not come back after login",
    )
    .await;
}

/// The sample's conveniences: copying claims, a one-line outcome on each tool chip, past
/// conversations reopened and exported, the status line while agent0 is down, and a message
/// sent as the session ended re-sent once after the new login.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conveniences_in_headless_chromium() {
    let mut stack = AgentStack::start().await;
    let driver = Driver::start();
    let browser = browser(&driver).await;
    let result = conveniences(&mut stack, &browser).await;
    let _ = browser
        .screenshot(&artifact("agent0-conveniences-last-state.png"))
        .await;
    browser.quit().await.unwrap();
    result.unwrap();
}

async fn conveniences(stack: &mut AgentStack, browser: &WebDriver) -> WebDriverResult<()> {
    browser.goto(&stack.base).await?;
    log_in_in_browser(stack, browser, "alice").await;

    // Claims: copy one value, and all of them as JSON; each says "Copied".
    wait_for(browser, "#claims-button").await.click().await?;
    wait_for(browser, "tr[data-claim='sub'] .claim-copy")
        .await
        .click()
        .await?;
    wait_for_text(browser, "tr[data-claim='sub'] .claim-copy", "Copied").await;
    wait_for(browser, ".claims-copy-all").await.click().await?;
    wait_for_text(browser, ".claims-copy-all", "Copied").await;
    browser
        .screenshot(&artifact("agent0-claims-copied.png"))
        .await?;
    browser
        .action_chain()
        .send_keys(Key::Escape)
        .perform()
        .await?;

    // Tool chips say what happened while collapsed.
    send(browser, "list my todos").await;
    wait_for_text(
        browser,
        ".tool-chip[data-tool='get-todos'][data-state='ok'] .tool-outcome",
        "no todos",
    )
    .await;
    send(browser, "add a todo \"prep the demo\"").await;
    wait_for(
        browser,
        ".confirm-card[data-tool='create-todo'][data-state='pending'] .confirm-approve",
    )
    .await
    .click()
    .await?;
    let created = wait_for(
        browser,
        ".tool-chip[data-tool='create-todo'][data-state='ok'] .tool-outcome",
    )
    .await;
    let created = created.text().await?;
    assert!(
        created.starts_with('#') && created.ends_with(" created"),
        "{created}"
    );
    browser
        .screenshot(&artifact("agent0-tool-outcomes.png"))
        .await?;

    // A new conversation, then the first one reopened from the list and continued.
    wait_for(browser, "#new-conversation").await.click().await?;
    wait_until(
        browser,
        "document.querySelectorAll('#messages .message').length === 0",
        "the new conversation is not empty",
    )
    .await;
    send(browser, "list my todos").await;
    wait_for_text(
        browser,
        ".tool-chip[data-tool='get-todos'][data-state='ok'] .tool-outcome",
        "1 todo",
    )
    .await;
    wait_for(browser, "#history-button").await.click().await?;
    wait_until(
        browser,
        "document.querySelectorAll('#history-content .history-item').length === 2",
        "two past conversations are listed",
    )
    .await;
    // The open one is marked (its place in the list is the API test's business: a turn just
    // streamed may still be on its way to the store). The list may be drawn twice while the
    // dialog opens, so its text is waited for rather than read once.
    wait_until(
        browser,
        "(() => { const i = document.querySelector(\
         '#history-content .history-item:not([data-current])'); return !!i && \
         i.textContent.includes('list my todos') && i.textContent.includes('2 turns'); })()",
        "the older conversation is listed with its two turns",
    )
    .await;
    let older_item = browser
        .find(By::Css(
            "#history-content .history-item:not([data-current])",
        ))
        .await?;
    browser
        .find(By::Css(
            "#history-content .history-item[data-current='true']",
        ))
        .await?;
    let md = older_item
        .find(By::Css("a[data-format='md']"))
        .await?
        .attr("href")
        .await?
        .unwrap_or_default();
    assert!(md.ends_with("/export?format=md"), "{md}");
    older_item.find(By::Css("a[data-format='json']")).await?;
    // The export link answers a download, never cached.
    let headers = browser
        .execute_async(
            "const done = arguments[arguments.length - 1];
             fetch(arguments[0]).then(r => done([r.status, r.headers.get('content-disposition'),
               r.headers.get('cache-control')]));",
            vec![serde_json::Value::String(md.clone())],
        )
        .await?
        .json()
        .clone();
    assert_eq!(headers[0], 200, "{headers}");
    assert!(
        headers[1].as_str().unwrap_or("").starts_with("attachment"),
        "{headers}"
    );
    assert_eq!(headers[2], "no-store");
    browser.screenshot(&artifact("agent0-history.png")).await?;
    older_item
        .find(By::Css(".history-open"))
        .await?
        .click()
        .await?;
    wait_for_text(browser, "#messages", "prep the demo").await;
    send(browser, "list my todos").await;
    wait_until(
        browser,
        "document.querySelectorAll(\"#messages .tool-chip[data-tool='get-todos'][data-state='ok']\").length === 2",
        "the reopened conversation was not continued",
    )
    .await;
    let person = stack.login("alice").await;
    let (_, list) = person.get("/api/conversations").await;
    assert_eq!(list["conversations"][0]["turns"], 3, "{list}");
    assert_eq!(list["conversations"][0]["title"], "list my todos");

    // A connection whose last use failed (`unreachable` in /api/connections/status; the
    // page's own fetch answers it here) is named in the status line, cleared when it recovers.
    browser
        .execute(
            "window.__realFetch = window.fetch;
             window.fetch = (url, init) => String(url).endsWith('/api/connections/status')
               ? Promise.resolve(new Response(JSON.stringify({connections: [{name: 'todo0',
                   label: 'todo0', state: 'unreachable', lastFailureAt: '2026-12-04T20:00:00Z'}]}),
                   {status: 200, headers: {'Content-Type': 'application/json'}}))
               : window.__realFetch(url, init);
             window.dispatchEvent(new Event('focus'));",
            Vec::new(),
        )
        .await?;
    wait_for_text(browser, "#status-line", "todo0 is unreachable").await;
    browser
        .screenshot(&artifact("agent0-status-line-connection.png"))
        .await?;
    browser
        .execute(
            "window.fetch = window.__realFetch; window.dispatchEvent(new Event('focus'));",
            Vec::new(),
        )
        .await?;
    wait_until(
        browser,
        "document.getElementById('status-line').hidden",
        "the status line did not clear after the connection recovered",
    )
    .await;

    // agent0 goes away: the status line says so before anything is sent, and clears after.
    stack.stop().await;
    browser
        .execute("window.dispatchEvent(new Event('focus'));", Vec::new())
        .await?;
    wait_for_text(browser, "#status-line", "agent0 is not answering").await;
    browser
        .screenshot(&artifact("agent0-status-line.png"))
        .await?;
    // A new agent0 knows no sessions: this browser's login has ended, unknown to the page.
    stack.start_again().await;
    browser
        .execute("window.dispatchEvent(new Event('focus'));", Vec::new())
        .await?;
    wait_until(
        browser,
        "document.getElementById('status-line').hidden",
        "the status line did not clear",
    )
    .await;

    // A message sent now meets the ended session: kept (this tab only), and re-sent once
    // after the new login.
    send(browser, "add a todo \"after the login\"").await;
    wait_for(browser, "#login-button").await;
    wait_until(
        browser,
        "(sessionStorage.getItem('agent0.unsent') || '').includes('after the login')",
        "the unsent message was not kept",
    )
    .await;
    log_in_in_browser(stack, browser, "alice").await;
    wait_for(browser, ".resent-note").await;
    wait_for(
        browser,
        ".confirm-card[data-tool='create-todo'][data-state='pending']",
    )
    .await;
    wait_for_text(browser, "#messages", "after the login").await;
    wait_until(
        browser,
        "sessionStorage.getItem('agent0.unsent') === null",
        "the re-sent message was not forgotten",
    )
    .await;
    browser
        .screenshot(&artifact("agent0-resent-after-login.png"))
        .await?;

    // Someone else's kept message is dropped, not sent.
    browser
        .execute(
            "sessionStorage.setItem('agent0.unsent', JSON.stringify({sub: 'someone-else', \
             text: 'not yours', conversationId: null, at: Date.now()}));",
            Vec::new(),
        )
        .await?;
    browser.refresh().await?;
    wait_until(
        browser,
        "document.body.dataset.view === 'chat' && sessionStorage.getItem('agent0.unsent') === null",
        "another person's kept message was not dropped",
    )
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(!browser.source().await?.contains("not yours"));
    Ok(())
}

/// Logs `user` in through the page and idp0's form.
async fn log_in(browser: &WebDriver, stack: &AgentStack, user: &str) -> WebDriverResult<()> {
    browser.goto(&stack.base).await?;
    wait_for(browser, "#login-button").await.click().await?;
    wait_for(browser, "input[name=username]")
        .await
        .send_keys(user)
        .await?;
    browser
        .find(By::Css("input[name=password]"))
        .await?
        .send_keys(stack.stack.idp.password(user))
        .await?;
    browser
        .find(By::Css("form button, form input[type=submit]"))
        .await?
        .click()
        .await?;
    wait_for(browser, "#user-name").await;
    Ok(())
}

/// Whether `css` has no horizontal overflow (nothing wider than its box).
async fn fits(browser: &WebDriver, css: &str) -> WebDriverResult<bool> {
    let ret = browser
        .execute(
            "const n = document.querySelector(arguments[0]); \
             return !!n && n.scrollWidth <= n.clientWidth + 1;",
            vec![serde_json::json!(css)],
        )
        .await?;
    Ok(ret.json().as_bool().unwrap_or(false))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_a_new_user_meets_in_headless_chromium() {
    let (mut stack, switch) = super::outages::stack_with_switch(std::sync::Arc::new(
        agent0::llm::offline::OfflineModel::new(),
    ))
    .await;
    let driver = Driver::start();
    let browser = browser(&driver).await;
    let result = new_user(&mut stack, switch, &browser).await;
    let _ = browser
        .screenshot(&artifact("agent0-new-user-last-state.png"))
        .await;
    browser.quit().await.unwrap();
    result.unwrap();
}

async fn new_user(
    stack: &mut AgentStack,
    mut switch: super::outages::Switch,
    browser: &WebDriver,
) -> WebDriverResult<()> {
    log_in(browser, stack, "alice").await?;
    send(browser, "list my todos").await;
    wait_for(
        browser,
        ".tool-chip[data-tool='get-todos'][data-state='ok']",
    )
    .await;

    // Item 5: the panel docks beside the chat (remembered), and says LIVE.
    wait_for(browser, "#connections-button")
        .await
        .click()
        .await?;
    wait_for(browser, "#connections-dock").await.click().await?;
    wait_for(
        browser,
        ".connection-card[data-name='todo0'][data-state='live']",
    )
    .await;
    let docked = browser
        .execute(
            "const p = document.getElementById('connections-panel'); \
             return [p.open, p.matches(':modal'), localStorage.getItem('agent0.connectionsDocked')];",
            Vec::new(),
        )
        .await?;
    assert_eq!(
        docked.json(),
        &serde_json::json!([true, false, "true"]),
        "docked: open, not modal, remembered"
    );

    // todo0 stops: one sentence in the chat, UNREACHABLE with both times in the panel.
    switch.off().await;
    send(browser, "list my todos").await;
    wait_for(
        browser,
        ".tool-chip[data-tool='get-todos'][data-state='error']",
    )
    .await;
    let card = wait_for(
        browser,
        ".connection-card[data-name='todo0'][data-state='unreachable']",
    )
    .await;
    let text = card.text().await?;
    assert!(
        text.contains("UNREACHABLE")
            && text.contains("Last failure")
            && text.contains("Last success"),
        "{text}"
    );
    assert!(!text.contains("Connected and working"), "{text}");
    let chat = wait_for(browser, "#messages").await.text().await?;
    for internal in ["rmcp::", "reqwest", "Transport", "error sending request"] {
        assert!(!chat.contains(internal), "{internal} shown: {chat}");
    }
    // The reply says it; the chip (its one-line summary, its folded detail) is where the
    // failure belongs; there is no second error box.
    assert!(
        chat.contains("Todo0 MCP Server is not answering; try again in a moment."),
        "{chat}"
    );
    let boxes = browser
        .find_all(By::Css("#messages .message.error"))
        .await?;
    assert!(boxes.is_empty(), "no error box: {chat}");
    browser
        .screenshot(&artifact("agent0-connections-unreachable.png"))
        .await?;

    // Identifiers copy on click, with a visible confirmation.
    card.find(By::Css(".copy-value")).await?.click().await?;
    let note = wait_for(browser, ".connection-card[data-name='todo0'] .copy-note").await;
    assert_eq!(note.text().await?, "copied");

    // todo0 is back: the next success is LIVE again.
    switch.on().await;
    send(browser, "list my todos").await;
    wait_for(
        browser,
        ".connection-card[data-name='todo0'][data-state='live']",
    )
    .await;

    // Item 10: on a 390 px screen claim names and URLs wrap without overflowing.
    browser.set_window_rect(0, 0, 390, 844).await?;
    wait_for(browser, "#connections-button")
        .await
        .click()
        .await?;
    wait_for(browser, ".connection-card[data-name='todo0'] .identifier").await;
    assert!(
        fits(browser, "#connections-content").await?,
        "identifiers fit at 390 px"
    );
    browser
        .screenshot(&artifact("agent0-390-connections.png"))
        .await?;
    browser
        .action_chain()
        .send_keys(Key::Escape)
        .perform()
        .await?;
    wait_for(browser, "#claims-button").await.click().await?;
    wait_for(browser, ".claims-table").await;
    browser
        .screenshot(&artifact("agent0-390-claims.png"))
        .await?;
    let overflow = browser
        .execute(
            "const n = document.querySelector('#claims-content'); \
             const wide = [...n.querySelectorAll('*')].filter((e) => e.getBoundingClientRect().right > n.getBoundingClientRect().right + 1) \
               .map((e) => e.tagName + '.' + e.className + ':' + (e.textContent || '').slice(0, 40)); \
             return [n.scrollWidth, n.clientWidth, wide.slice(0, 8)];",
            Vec::new(),
        )
        .await?;
    assert!(
        fits(browser, "#claims-content").await?,
        "claims fit at 390 px: {:?}",
        overflow.json()
    );
    browser
        .action_chain()
        .send_keys(Key::Escape)
        .perform()
        .await?;

    // Item 3: a page shown again from the browser's cache (`pageshow` with `persisted`) after
    // its session ended elsewhere (here: agent0 restarted, sessions lost) asks again and
    // keeps nothing of the person on screen.
    browser.set_window_rect(0, 0, 1280, 900).await?;
    assert!(
        !browser
            .find_all(By::Css("#messages .message"))
            .await?
            .is_empty()
    );
    stack.restart().await;
    browser
        .execute(
            "window.dispatchEvent(new PageTransitionEvent('pageshow', { persisted: true }));",
            Vec::new(),
        )
        .await?;
    wait_for(browser, "#login-button").await;
    let left = browser
        .execute(
            "return [document.getElementById('user-name').textContent, \
             document.getElementById('messages').childElementCount];",
            Vec::new(),
        )
        .await?;
    assert_eq!(
        left.json(),
        &serde_json::json!(["", 0]),
        "nothing of the ended session"
    );
    browser
        .screenshot(&artifact("agent0-restored-after-session-ended.png"))
        .await?;

    // Log in again, chat, log out, then Back: no name, no conversation.
    // (idp0 still knows her: single sign-on, no form.)
    wait_for(browser, "#login-button").await.click().await?;
    browser
        .query(By::Css("#user-name"))
        .with_text(thirtyfour::stringmatch::StringMatch::new("Alice").partial())
        .wait(WAIT, Duration::from_millis(100))
        .first()
        .await?;
    send(browser, "list my todos").await;
    wait_for(
        browser,
        ".tool-chip[data-tool='get-todos'][data-state='ok']",
    )
    .await;
    wait_for(browser, "#logout-button").await.click().await?;
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let shown = match browser.find(By::Css("#login-button")).await {
            Ok(button) => button.is_displayed().await.unwrap_or(false),
            Err(_) => false,
        };
        if shown
            && browser
                .current_url()
                .await?
                .as_str()
                .starts_with(&stack.base)
        {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "logout did not finish"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    browser.back().await?;
    // Back may land on idp0's end-session step first; agent0's page is one more step back.
    for _ in 0..3 {
        tokio::time::sleep(Duration::from_millis(500)).await;
        if browser
            .current_url()
            .await?
            .as_str()
            .starts_with(&stack.base)
        {
            break;
        }
        browser.back().await?;
    }
    assert!(
        browser
            .current_url()
            .await?
            .as_str()
            .starts_with(&stack.base)
    );
    wait_for(browser, "#login-button").await;
    let left = browser
        .execute(
            "return [document.getElementById('user-name').textContent, \
             document.getElementById('messages').childElementCount, \
             document.body.innerText];",
            Vec::new(),
        )
        .await?;
    let left = left.json().clone();
    assert_eq!(left[0], "", "no name after Back: {left}");
    assert_eq!(left[1], 0, "no conversation after Back: {left}");
    let page = left[2].as_str().unwrap_or_default();
    assert!(
        !page.contains("Alice") && !page.contains("list my todos"),
        "{page}"
    );
    browser
        .screenshot(&artifact("agent0-back-after-logout.png"))
        .await?;
    Ok(())
}
