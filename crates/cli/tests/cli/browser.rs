//! J1 + J2 through headless Chromium against `secure-agent up` on ports the OS picked: the login
//! prompt, idp0's form on its real port, back to agent0 on its real port, a read and a confirmed
//! write through the chat, and the Managed Connections panel naming the real MCP URL. Nothing here
//! configures the stack but `up`'s own flags. Screenshots land in `target/test-artifacts/`.

use std::time::Duration;

use testkit::browser::thirtyfour::prelude::{By, ElementQueryable, WebDriver, WebDriverResult};
use testkit::browser::thirtyfour::stringmatch::StringMatch;
use testkit::browser::{Driver, WAIT, artifact, browser, wait_for};

use super::up::{Up, has_default_port};

/// Types `message` into agent0's chat and sends it (the J3 browser test too).
pub(super) async fn send(browser: &WebDriver, message: &str) -> WebDriverResult<()> {
    wait_for(browser, "#chat-input")
        .await
        .send_keys(message)
        .await?;
    wait_for(browser, "#send-button").await.click().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn up_on_other_ports_in_headless_chromium() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_owned();
    let up = tokio::task::spawn_blocking(move || Up::start(&path, [0; 4]))
        .await
        .unwrap();
    let password = super::demo_password(dir.path(), "alice");
    let driver = Driver::start();
    let browser = browser(&driver).await;
    let result = journey(&up, &browser, &password).await;
    if result.is_err() {
        let _ = browser
            .screenshot(&artifact("cli-up-other-ports-last-state.png"))
            .await;
    }
    browser.quit().await.unwrap();
    let log = tokio::task::spawn_blocking(move || up.stop())
        .await
        .unwrap();
    result.unwrap();
    assert!(!log.contains("ERROR"), "a clean run logs no error:\n{log}");
}

async fn journey(up: &Up, browser: &WebDriver, password: &str) -> WebDriverResult<()> {
    let agent = format!("http://localhost:{}", up.agent);
    let idp = format!("http://localhost:{}/", up.idp);
    let mcp = format!("http://localhost:{}/mcp", up.mcp);

    // J1: the login prompt, idp0's form on its real port, back to agent0 on its real port.
    browser.goto(&format!("{agent}/")).await?;
    let login = wait_for(browser, "#login-button").await;
    browser
        .screenshot(&artifact("cli-up-other-ports-login-prompt.png"))
        .await?;
    login.click().await?;
    let username = wait_for(browser, "input[name=username]").await;
    let at = browser.current_url().await?;
    assert!(at.as_str().starts_with(&idp), "idp0's form: {at}");
    browser
        .screenshot(&artifact("cli-up-other-ports-login.png"))
        .await?;
    username.send_keys("alice").await?;
    browser
        .find(By::Css("input[name=password]"))
        .await?
        .send_keys(password)
        .await?;
    browser
        .find(By::Css("form button, form input[type=submit]"))
        .await?
        .click()
        .await?;
    browser
        .query(By::Css("#user-name"))
        .with_text(StringMatch::new("Alice").partial())
        .wait(WAIT, Duration::from_millis(100))
        .first()
        .await?;
    let at = browser.current_url().await?;
    assert_eq!(
        (at.host_str(), at.port()),
        (Some("localhost"), Some(up.agent)),
        "back at agent0 on its real port: {at}"
    );

    // J2: a read, then the first write, which asks the person first.
    send(browser, "list my todos").await?;
    wait_for(
        browser,
        ".tool-chip[data-tool='get-todos'][data-state='ok']",
    )
    .await;
    send(browser, "add a todo \"prep the demo\"").await?;
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
    wait_for(
        browser,
        ".tool-chip[data-tool='create-todo'][data-state='ok']",
    )
    .await;
    assert!(
        browser
            .find_all(By::Css(".tool-chip[data-state='error']"))
            .await?
            .is_empty(),
        "no tool call failed"
    );
    browser
        .screenshot(&artifact("cli-up-other-ports-chat.png"))
        .await?;

    // The Managed Connections panel names the MCP server `up` really serves.
    wait_for(browser, "#connections-button")
        .await
        .click()
        .await?;
    let card = wait_for(
        browser,
        ".connection-card[data-name='todo0'][data-state='live']",
    )
    .await;
    let text = card.text().await?;
    assert!(text.contains(&mcp), "todo0 at {mcp}: {text}");
    let page = browser.find(By::Tag("body")).await?.text().await?;
    assert!(
        !has_default_port(&page),
        "a default port in the page: {page}"
    );
    browser
        .screenshot(&artifact("cli-up-other-ports-connections.png"))
        .await?;
    Ok(())
}

#[test]
fn a_default_port_is_told_from_a_longer_one() {
    assert!(has_default_port("http://localhost:5001/mcp"));
    assert!(has_default_port("localhost:3000"));
    assert!(!has_default_port("http://localhost:50012/mcp"));
    assert!(!has_default_port("http://localhost:43000/"));
}
