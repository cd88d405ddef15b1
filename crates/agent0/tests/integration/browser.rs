//! J1 and J2 through the real UI in headless Chromium (Debian's `chromium` + `chromidriver`,
//! which `scripts/test.sh` installs): the login prompt, idp0's login form, the header with the
//! person's name, the ID token claims viewer, chat turns with tool chips (one expanded, the
//! step-up marker shown), and the Managed Connections panel with both connections LIVE.
//! Screenshots land in `target/test-artifacts/`.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use thirtyfour::prelude::*;

use super::harness::AgentStack;

const WAIT: Duration = Duration::from_secs(20);

/// A chromedriver child process on a free loopback port, killed on drop.
struct Driver {
    child: Child,
    url: String,
}

impl Driver {
    fn start() -> Self {
        let binary = which("chromedriver").unwrap_or_else(|| {
            panic!(
                "chromedriver is not installed: run ./scripts/test.sh (it installs Debian's \
                 chromium and chromium-driver) or `apt-get install chromium chromium-driver`"
            )
        });
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new(binary)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        Self {
            child,
            url: format!("http://127.0.0.1:{port}"),
        }
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn which(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(name))
            .find(|path| path.is_file())
    })
}

async fn browser(driver: &Driver) -> WebDriver {
    let mut caps = DesiredCapabilities::chrome();
    if let Some(chromium) = which("chromium") {
        caps.set_binary(chromium.to_str().unwrap()).unwrap();
    }
    for arg in [
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--window-size=1280,900",
    ] {
        caps.add_arg(arg).unwrap();
    }
    // chromedriver may take a moment to listen.
    for attempt in 0.. {
        match WebDriver::new(&driver.url, caps.clone()).await {
            Ok(browser) => return browser,
            Err(e) if attempt < 50 => {
                let _ = e;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => panic!("cannot start Chromium through chromedriver: {e}"),
        }
    }
    unreachable!()
}

fn artifact(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/test-artifacts");
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

async fn wait_for(browser: &WebDriver, css: &str) -> WebElement {
    // A panel re-rendered while the query looks at it (the connections refresh after each
    // turn) leaves a stale element behind: look again, within the same overall wait.
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let found = browser
            .query(By::Css(css))
            .wait(
                deadline.saturating_duration_since(std::time::Instant::now()),
                Duration::from_millis(100),
            )
            .and_displayed()
            .first()
            .await;
        match found {
            Ok(element) => return element,
            Err(e)
                if matches!(
                    *e,
                    thirtyfour::error::WebDriverErrorInner::StaleElementReference(..)
                ) && std::time::Instant::now() < deadline =>
            {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => panic!("{css} did not appear: {e}"),
        }
    }
}

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
