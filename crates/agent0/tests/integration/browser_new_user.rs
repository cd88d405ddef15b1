//! What a new user meets, in headless Chromium: nothing of a logged-out session visible by Back
//! or a restored tab, one-sentence failures, the connections panel during an outage, a docked
//! panel and copyable identifiers, and a 390 px screen.

use std::time::Duration;

use testkit::browser::{Driver, WAIT, artifact, browser, wait_for};
use thirtyfour::prelude::*;

use super::browser::{log_in, send, wait_for_logged_out};
use super::harness::AgentStack;

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
    wait_for_logged_out(stack, browser, "logout did not finish").await?;
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
