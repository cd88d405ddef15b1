//! The sample's conveniences in headless Chromium: copying claims, tool-chip outcomes, past
//! conversations reopened and exported, the status line, re-sending after a new login.

use std::time::Duration;

use testkit::browser::{Driver, artifact, browser, wait_for};
use thirtyfour::prelude::*;

use super::browser::{log_in_in_browser, send, wait_for_text, wait_until};
use super::harness::AgentStack;

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
