//! Real headless Chromium (Debian `chromium` + `chromium-driver`) driven over WebDriver
//! with fantoccini. Screenshots go to `test-artifacts/browser/` in the workspace.

use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::elements::Element;
use fantoccini::{Client, ClientBuilder, Locator};

use crate::servers::free_port;

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// chromedriver on a free port, killed on drop.
pub struct Browser {
    pub client: Client,
    driver: Child,
    shots: PathBuf,
    step: usize,
}

impl Browser {
    /// Starts chromedriver and a headless Chromium session. Panics with the setup command
    /// when they are missing: browser tests must not pass without a real browser.
    pub async fn start(name: &str) -> Self {
        for path in [CHROMIUM, CHROMEDRIVER] {
            assert!(
                std::path::Path::new(path).exists(),
                "{path} missing: run `scripts/setup.sh browser` (make test does)"
            );
        }
        let port = free_port();
        // chromedriver and the Chromium it starts share a process group, killed as a whole.
        let driver = Command::new(CHROMEDRIVER)
            .process_group(0)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts");
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "chromedriver did not listen");
            std::thread::sleep(Duration::from_millis(100));
        }
        let mut caps = serde_json::Map::new();
        caps.insert(
            "goog:chromeOptions".to_string(),
            serde_json::json!({
                "binary": CHROMIUM,
                "args": ["--headless", "--no-sandbox", "--disable-gpu",
                         "--disable-background-networking", "--disable-component-update",
                         "--no-first-run", "--window-size=1366,900",
                         "--disable-dev-shm-usage"]
            }),
        );
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        let client = ClientBuilder::new(connector)
            .capabilities(caps)
            .connect(&format!("http://127.0.0.1:{port}"))
            .await
            .expect("a Chromium session");
        let shots = crate::workspace().join("test-artifacts/browser").join(name);
        std::fs::create_dir_all(&shots).expect("artifact dir");
        Self {
            client,
            driver,
            shots,
            step: 0,
        }
    }

    /// Saves a numbered screenshot of the page.
    pub async fn shot(&mut self, label: &str) {
        self.step += 1;
        let png = self.client.screenshot().await.expect("screenshot");
        let path = self.shots.join(format!("{:02}-{label}.png", self.step));
        std::fs::write(&path, png).expect("write screenshot");
    }

    /// Waits for `css` to match, polling. Every WebDriver error is retried until the
    /// deadline: a lookup that races a navigation (a script reloading the page, a form
    /// post) is answered with an error that is not a failure of the page.
    pub async fn wait_css(&self, css: &str, timeout: Duration) -> Element {
        let deadline = Instant::now() + timeout;
        loop {
            match self.client.find(Locator::Css(css)).await {
                Ok(element) => return element,
                Err(e) if Instant::now() >= deadline => panic!("waiting for {css}: {e}"),
                Err(_) => tokio::time::sleep(Duration::from_millis(250)).await,
            }
        }
    }

    /// Waits until `script` returns `true`.
    pub async fn wait_js(&self, script: &str, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(serde_json::Value::Bool(true)) = self.client.execute(script, vec![]).await {
                return;
            }
            assert!(Instant::now() < deadline, "waiting for: {script}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Runs `script` and returns its value.
    pub async fn js(&self, script: &str) -> serde_json::Value {
        self.client
            .execute(script, vec![])
            .await
            .unwrap_or_else(|e| panic!("{script}: {e}"))
    }

    /// Clicks the element `css` matches (now).
    pub async fn click(&self, css: &str) {
        self.client
            .find(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("{css}: {e}"))
            .click()
            .await
            .unwrap_or_else(|e| panic!("clicking {css}: {e}"));
    }

    /// Types `text` into the element `css` matches (now).
    pub async fn send_keys(&self, css: &str, text: &str) {
        self.client
            .find(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("{css}: {e}"))
            .send_keys(text)
            .await
            .unwrap_or_else(|e| panic!("typing into {css}: {e}"));
    }

    /// Opens `url`, which redirects to the login page, and signs in as `name`; the app
    /// then returns to `url`.
    pub async fn sign_in(&self, url: &str, name: &str, password: &str) {
        self.client.goto(url).await.expect("open the page");
        self.wait_css("#login-name", Duration::from_secs(60))
            .await
            .send_keys(name)
            .await
            .expect("type the name");
        self.send_keys("#login-password", password).await;
        self.click("#login-submit").await;
    }

    pub async fn close(self) {
        let _ = self.client.clone().close().await;
    }

    fn kill(&mut self) {
        let group = format!("-{}", self.driver.id());
        let _ = Command::new("kill").args(["-KILL", "--", &group]).status();
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        self.kill();
    }
}
