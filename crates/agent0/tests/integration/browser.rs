//! J1 and J2 through the real UI in headless Chromium (Debian's `chromium` + `chromidriver`,
//! which `scripts/test.sh` installs): the login prompt, idp0's login form, the header with the
//! person's name, the ID token claims viewer, chat turns with tool chips (one expanded, the
//! step-up marker shown), and the Managed Connections panel with both connections LIVE.
//! Screenshots land in `target/test-artifacts/`. The helpers here serve the other browser tests
//! (`browser_conveniences`, `browser_new_user`) too.

use std::time::Duration;

use testkit::browser::{Driver, WAIT, artifact, browser, wait_for};
use thirtyfour::prelude::*;

use super::harness::AgentStack;

/// `user`'s subject (from a login of their own beside the browser's).
pub(crate) async fn subject(stack: &AgentStack, user: &str) -> String {
    let person = stack.login(user).await;
    let (_, status) = person.get("/auth/status").await;
    status["user"]["sub"].as_str().unwrap().to_owned()
}

pub(crate) async fn send(browser: &WebDriver, message: &str) {
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
    wait_for_logged_out(
        stack,
        browser,
        "the login button did not come back after logout",
    )
    .await?;
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

/// Waits until the page is back at agent0 showing its login button after a logout (the page
/// navigates away to idp0 and back, so elements found on the way go stale: poll).
pub(crate) async fn wait_for_logged_out(
    stack: &AgentStack,
    browser: &WebDriver,
    what: &str,
) -> WebDriverResult<()> {
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
            return Ok(());
        }
        assert!(std::time::Instant::now() < deadline, "{what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits until the element at `css` holds `text` (a re-rendered element is looked up again).
pub(crate) async fn wait_for_text(browser: &WebDriver, css: &str, text: &str) -> WebElement {
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
pub(crate) async fn wait_until(browser: &WebDriver, script: &str, what: &str) {
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
pub(crate) async fn log_in_in_browser(stack: &AgentStack, browser: &WebDriver, user: &str) {
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

/// Logs `user` in through the page and idp0's form.
pub(crate) async fn log_in(
    browser: &WebDriver,
    stack: &AgentStack,
    user: &str,
) -> WebDriverResult<()> {
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
