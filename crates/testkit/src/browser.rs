//! Headless Chromium for the browser journeys: Debian's `chromedriver` on a free loopback port,
//! Chromium with the flags this machine needs, a wait that survives re-rendered elements, and
//! screenshots kept in `target/test-artifacts/`.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use thirtyfour::prelude::{
    By, ChromiumLikeCapabilities, DesiredCapabilities, ElementQueryable, WebDriver, WebElement,
};

/// How long a journey waits for something to appear.
pub const WAIT: Duration = Duration::from_secs(20);

/// A chromedriver child process on a free loopback port, killed on drop.
pub struct Driver {
    child: Child,
    /// Where chromedriver listens, `http://127.0.0.1:PORT`.
    pub url: String,
}

impl Driver {
    /// Starts chromedriver; panics with how to install it when it is missing.
    pub fn start() -> Self {
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

/// `name` on `PATH`, if it is there.
pub fn which(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(name))
            .find(|path| path.is_file())
    })
}

/// A new headless Chromium session through `driver` (1280×900).
pub async fn browser(driver: &Driver) -> WebDriver {
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
            Err(_) if attempt < 50 => tokio::time::sleep(Duration::from_millis(100)).await,
            Err(e) => panic!("cannot start Chromium through chromedriver: {e}"),
        }
    }
    unreachable!()
}

/// Where a screenshot called `name` is kept: `target/test-artifacts/<name>` in the workspace.
pub fn artifact(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/test-artifacts");
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

/// Waits (up to [`WAIT`]) for a displayed element matching `css`; panics naming it otherwise.
pub async fn wait_for(browser: &WebDriver, css: &str) -> WebElement {
    // A panel re-rendered while the query looks at it (the connections refresh after each
    // turn) leaves a stale element behind: look again, within the same overall wait.
    let deadline = Instant::now() + WAIT;
    loop {
        let found = browser
            .query(By::Css(css))
            .wait(
                deadline.saturating_duration_since(Instant::now()),
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
                ) && Instant::now() < deadline =>
            {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => panic!("{css} did not appear: {e}"),
        }
    }
}

/// The WebDriver client the journeys drive Chromium with, so a crate's tests need only testkit.
pub use thirtyfour;
