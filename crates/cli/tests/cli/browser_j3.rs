//! J3 in headless Chromium against `secure-agent up` (github0 included) on ports the OS picked:
//! alice asks to comment on a pull request at github0, the consent card's Authorize opens idp0's
//! page in a new tab, she approves, signs in to github0 and authorizes there, and back in the chat
//! the comment's chip turns OK by itself; `who am I on GitHub?` shows the GitHub MCP card only
//! then (no card before a GitHub MCP tool is called), and `get_me` resumes after its consent;
//! the Application and GitHub MCP cards LIVE in the connections panel. Screenshots land in
//! `target/test-artifacts/`.

use std::time::Duration;

use testkit::browser::thirtyfour::prelude::{By, ElementQueryable, WebDriver, WebDriverResult};
use testkit::browser::thirtyfour::stringmatch::StringMatch;
use testkit::browser::{Driver, WAIT, artifact, browser, wait_for};

use super::browser::send;
use super::up::Up;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn j3_in_headless_chromium() {
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
        let _ = browser.screenshot(&artifact("cli-j3-last-state.png")).await;
    }
    browser.quit().await.unwrap();
    tokio::task::spawn_blocking(move || up.stop())
        .await
        .unwrap();
    result.unwrap();
}

/// Clicks the Authorize button of `card`, walks the consent in the tab it opens (idp0's Approve,
/// github0's sign-in and Authorize as they come) and comes back to the chat's tab.
async fn authorize(
    browser: &WebDriver,
    card: &str,
    password: &str,
    shot: &str,
) -> WebDriverResult<()> {
    let chat = browser.window().await?;
    let before = browser.windows().await?;
    wait_for(browser, &format!("{card} .consent-authorize"))
        .await
        .click()
        .await?;
    let mut tab = None;
    for _ in 0..100 {
        let now = browser.windows().await?;
        if let Some(new) = now.into_iter().find(|w| !before.contains(w)) {
            tab = Some(new);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    browser
        .switch_to_window(tab.expect("Authorize opens a tab"))
        .await?;
    wait_for(browser, "button[value=approve]")
        .await
        .click()
        .await?;
    // github0: its sign-in (first time), then its consent page (unless already granted), then
    // idp0's callback.
    for _ in 0..50 {
        // Pages change under the reads (redirects): an error is the next page arriving.
        let text = match browser.find(By::Css("body")).await {
            Ok(body) => body.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        };
        if text.contains("Connected") {
            break;
        }
        if let Ok(login) = browser.find(By::Css("input[name=login]")).await {
            login.send_keys("alice").await?;
            browser
                .find(By::Css("input[name=password]"))
                .await?
                .send_keys(password)
                .await?;
            browser
                .screenshot(&artifact(&format!("{shot}-github0-sign-in.png")))
                .await?;
            browser
                .find(By::Css("button[name=commit]"))
                .await?
                .click()
                .await?;
        } else if let Ok(allow) = browser.find(By::Css("button[value=allow]")).await {
            browser
                .screenshot(&artifact(&format!("{shot}-github0-consent.png")))
                .await?;
            allow.click().await?;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    browser
        .query(By::Css("body"))
        .with_text(StringMatch::new("Connected").partial())
        .wait(WAIT, Duration::from_millis(100))
        .first()
        .await?;
    // The callback page closes itself when it can; the chat's tab is where the person goes back.
    if browser.windows().await?.len() > before.len() {
        let _ = browser.close_window().await;
    }
    browser.switch_to_window(chat).await
}

async fn journey(up: &Up, browser: &WebDriver, password: &str) -> WebDriverResult<()> {
    let agent = format!("http://localhost:{}", up.agent);
    let github = up
        .banner
        .iter()
        .find_map(|l| l.split("GitHub sandbox) is at ").nth(1))
        .and_then(|rest| rest.split_whitespace().next())
        .map(|url| url.trim_end_matches('/').to_owned())
        .expect("github0 in up's banner");

    browser.goto(&format!("{agent}/")).await?;
    wait_for(browser, "#login-button").await.click().await?;
    wait_for(browser, "input[name=username]")
        .await
        .send_keys("alice")
        .await?;
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

    // The consent card; Authorize; the comment goes through by itself.
    send(
        browser,
        &format!("comment \"LGTM\" on {github}/acme/widgets/pull/1"),
    )
    .await?;
    let card = ".consent-card[data-connection='github']";
    wait_for(browser, &format!("{card} .consent-authorize")).await;
    browser
        .screenshot(&artifact("cli-j3-consent-card.png"))
        .await?;
    authorize(browser, card, password, "cli-j3").await?;
    wait_for(
        browser,
        ".tool-chip[data-tool='github_comment_on_pr'][data-state='ok']",
    )
    .await;
    browser.screenshot(&artifact("cli-j3-resumed.png")).await?;

    // GitHub MCP: no card so far (agent0 offers its tools as GitHub declares them, asking
    // nothing); calling get_me shows its card, which waits, and the call resumes by itself.
    let mcp_card = ".consent-card[data-connection='github-mcp']";
    assert!(
        browser.find(By::Css(mcp_card)).await.is_err(),
        "no GitHub MCP card before a GitHub MCP tool is called"
    );
    send(browser, "who am I on GitHub?").await?;
    wait_for(browser, &format!("{mcp_card} .consent-authorize")).await;
    authorize(browser, mcp_card, password, "cli-j3-mcp").await?;
    wait_for(browser, ".tool-chip[data-tool='get_me'][data-state='ok']").await;

    // Both GitHub cards LIVE.
    wait_for(browser, "#connections-button")
        .await
        .click()
        .await?;
    wait_for(
        browser,
        ".connection-card[data-kind='application'][data-state='live']",
    )
    .await;
    wait_for(
        browser,
        ".connection-card[data-name='github-mcp'][data-state='live']",
    )
    .await
    .scroll_into_view()
    .await?;
    browser
        .screenshot(&artifact("cli-j3-connections-live.png"))
        .await?;
    Ok(())
}
