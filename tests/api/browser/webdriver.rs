//! A minimal W3C WebDriver client for the browser tests, on `reqwest` and `serde_json`.
//!
//! [`Browser::start`] runs `chromedriver --port=<free port>` as a child process, waits until it
//! answers `GET /status`, and opens one session of headless Chromium (`/usr/bin/chromium`).
//! Every method is one WebDriver command (<https://www.w3.org/TR/webdriver2/>); a failure names
//! the command and carries the driver's error code and message. Dropping the [`Browser`] ends
//! the session (so Chromium exits) and kills chromedriver.

use std::fmt;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;
use reqwest::Method;
use serde_json::{Value, json};

/// The key under which WebDriver returns an element reference.
const ELEMENT_KEY: &str = "element-6066-11e4-a52e-4f735466cecf";
/// How long a "find element" command waits for the element to appear.
const IMPLICIT_WAIT_MS: u64 = 10_000;

/// A WebDriver command that failed, and why.
#[derive(Debug)]
pub struct WebDriverError {
    /// The command, e.g. `Find Element (css "#username")`.
    pub command: String,
    /// The driver's error code and message, or the transport error.
    pub reason: String,
}

impl fmt::Display for WebDriverError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "WebDriver command {} failed: {}",
            self.command, self.reason
        )
    }
}

impl std::error::Error for WebDriverError {}

pub type Result<T> = std::result::Result<T, WebDriverError>;

fn fail<T>(command: impl Into<String>, reason: impl Into<String>) -> Result<T> {
    Err(WebDriverError {
        command: command.into(),
        reason: reason.into(),
    })
}

/// An element of the current page, as WebDriver refers to it. Two are equal when they are the
/// same element, however they were found.
#[derive(Clone, Debug)]
pub struct Element {
    id: String,
    /// How it was found, for error messages.
    pub found_by: String,
}

impl PartialEq for Element {
    fn eq(&self, other: &Self) -> bool {
        self.id == other.id
    }
}

impl Eq for Element {}

/// The chromedriver process; killed when dropped.
struct Driver {
    child: Child,
    /// chromedriver's stdout and stderr, quoted when it does not start.
    log: tempfile::NamedTempFile,
    port: u16,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One WebDriver session of headless Chromium.
pub struct Browser {
    http: reqwest::Client,
    base: String,
    /// `None` once the session is deleted.
    session: Option<String>,
    // Declared last: dropped (killed) after `Drop for Browser` has ended the session.
    driver: Driver,
}

impl Browser {
    /// Starts `chromedriver` (the binary at `chromedriver`) and opens a session.
    pub async fn start(chromedriver: &Path) -> Result<Self> {
        let start = format!("Start chromedriver ({})", chromedriver.display());
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .or_else(|e| fail(&start, format!("no free port: {e}")))?;
        let log = tempfile::NamedTempFile::new()
            .or_else(|e| fail(&start, format!("no log file: {e}")))?;
        let (out, err) = match (log.reopen(), log.reopen()) {
            (Ok(o), Ok(e)) => (o, e),
            (Err(e), _) | (_, Err(e)) => return fail(&start, format!("no log file: {e}")),
        };
        let child = Command::new(chromedriver)
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .or_else(|e| fail(&start, e.to_string()))?;
        let mut browser = Self {
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(120))
                .build()
                .or_else(|e| fail(&start, e.to_string()))?,
            base: format!("http://127.0.0.1:{port}"),
            session: None,
            driver: Driver { child, log, port },
        };
        browser.wait_until_ready(&start).await?;
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "pageLoadStrategy": "normal",
            "timeouts": {"implicit": IMPLICIT_WAIT_MS, "pageLoad": 60_000, "script": 30_000},
            "goog:chromeOptions": {
                "binary": "/usr/bin/chromium",
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1280,900"],
            },
        }}});
        let value = browser
            .call(Method::POST, "/session", Some(caps), "New Session")
            .await?;
        match value["sessionId"].as_str() {
            Some(id) => browser.session = Some(id.to_owned()),
            None => return fail("New Session", format!("no sessionId in {value}")),
        }
        Ok(browser)
    }

    /// Polls `GET /status` until chromedriver is ready (at most 30 s).
    async fn wait_until_ready(&mut self, command: &str) -> Result<()> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(Some(status)) = self.driver.child.try_wait() {
                let log = std::fs::read_to_string(self.driver.log.path()).unwrap_or_default();
                return fail(command, format!("chromedriver exited ({status}): {log}"));
            }
            let url = format!("{}/status", self.base);
            if let Ok(resp) = self.http.get(&url).send().await
                && let Ok(body) = resp.json::<Value>().await
                && body["value"]["ready"] == true
            {
                return Ok(());
            }
            if Instant::now() > deadline {
                let log = std::fs::read_to_string(self.driver.log.path()).unwrap_or_default();
                return fail(command, format!("not ready after 30 s: {log}"));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Sends one command; answers its `value`, or the driver's error.
    async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
        command: &str,
    ) -> Result<Value> {
        let url = format!("{}{path}", self.base);
        let mut req = self.http.request(method.clone(), &url);
        // WebDriver wants a JSON body on every POST, `{}` when the command takes no parameters.
        if method == Method::POST {
            req = req.json(&body.unwrap_or_else(|| json!({})));
        }
        let resp = match req.send().await {
            Ok(r) => r,
            Err(e) => return fail(command, format!("{method} {url}: {e}")),
        };
        let status = resp.status();
        let text = match resp.text().await {
            Ok(t) => t,
            Err(e) => return fail(command, format!("{method} {url}: reading the answer: {e}")),
        };
        let Ok(mut answer) = serde_json::from_str::<Value>(&text) else {
            return fail(
                command,
                format!("{method} {url}: {status}, not JSON: {text}"),
            );
        };
        let value = answer["value"].take();
        if status.is_success() {
            return Ok(value);
        }
        // The message can end with a long native stack trace: keep its first lines.
        let message: String = value["message"]
            .as_str()
            .unwrap_or("")
            .lines()
            .take(3)
            .collect::<Vec<_>>()
            .join(" / ");
        fail(
            command,
            format!(
                "{} ({status}): {message}",
                value["error"].as_str().unwrap_or("?")
            ),
        )
    }

    fn session_path(&self, rest: &str) -> String {
        format!(
            "/session/{}{rest}",
            self.session.as_deref().unwrap_or("deleted")
        )
    }

    async fn session_call(
        &self,
        method: Method,
        rest: &str,
        body: Option<Value>,
        command: &str,
    ) -> Result<Value> {
        if self.session.is_none() {
            return fail(command, "the session was deleted");
        }
        self.call(method, &self.session_path(rest), body, command)
            .await
    }

    async fn string(&self, rest: &str, command: &str) -> Result<String> {
        let value = self.session_call(Method::GET, rest, None, command).await?;
        match value.as_str() {
            Some(s) => Ok(s.to_owned()),
            None => fail(command, format!("expected a string, got {value}")),
        }
    }

    /// Navigate To `url`; returns when the page has loaded.
    pub async fn goto(&self, url: &str) -> Result<()> {
        let command = format!("Navigate To ({url})");
        self.session_call(Method::POST, "/url", Some(json!({"url": url})), &command)
            .await
            .map(drop)
    }

    /// Get Current URL.
    pub async fn current_url(&self) -> Result<String> {
        self.string("/url", "Get Current URL").await
    }

    /// Get Title.
    pub async fn title(&self) -> Result<String> {
        self.string("/title", "Get Title").await
    }

    /// Get Page Source (the current DOM, serialised).
    pub async fn source(&self) -> Result<String> {
        self.string("/source", "Get Page Source").await
    }

    fn element_of(value: &Value, found_by: &str, command: &str) -> Result<Element> {
        match value[ELEMENT_KEY].as_str() {
            Some(id) => Ok(Element {
                id: id.to_owned(),
                found_by: found_by.to_owned(),
            }),
            None => fail(command, format!("not an element reference: {value}")),
        }
    }

    /// Find Element by CSS selector (waits up to the implicit wait for it to appear).
    pub async fn find(&self, css: &str) -> Result<Element> {
        let command = format!("Find Element (css {css:?})");
        let body = json!({"using": "css selector", "value": css});
        let value = self
            .session_call(Method::POST, "/element", Some(body), &command)
            .await?;
        Self::element_of(&value, css, &command)
    }

    /// Find Elements by CSS selector. When none match, this waits the whole implicit wait.
    pub async fn find_all(&self, css: &str) -> Result<Vec<Element>> {
        let command = format!("Find Elements (css {css:?})");
        let body = json!({"using": "css selector", "value": css});
        let value = self
            .session_call(Method::POST, "/elements", Some(body), &command)
            .await?;
        let Some(list) = value.as_array() else {
            return fail(command, format!("expected a list, got {value}"));
        };
        list.iter()
            .map(|v| Self::element_of(v, css, &command))
            .collect()
    }

    /// Find Elements From Element: the elements matching `css` inside `parent`.
    pub async fn find_all_in(&self, parent: &Element, css: &str) -> Result<Vec<Element>> {
        let found_by = format!("{} {css}", parent.found_by);
        let command = format!("Find Elements From Element (css {found_by:?})");
        let body = json!({"using": "css selector", "value": css});
        let rest = format!("/element/{}/elements", parent.id);
        let value = self
            .session_call(Method::POST, &rest, Some(body), &command)
            .await?;
        let Some(list) = value.as_array() else {
            return fail(command, format!("expected a list, got {value}"));
        };
        list.iter()
            .map(|v| Self::element_of(v, &found_by, &command))
            .collect()
    }

    /// The element matching `css` whose visible text is `text` (e.g. a button by its label).
    pub async fn find_by_text(&self, css: &str, text: &str) -> Result<Element> {
        let deadline = Instant::now() + Duration::from_millis(IMPLICIT_WAIT_MS);
        loop {
            let mut seen = Vec::new();
            for el in self.find_all(css).await? {
                let t = self.text(&el).await?;
                if t.trim() == text {
                    return Ok(Element {
                        found_by: format!("{css} with text {text:?}"),
                        ..el
                    });
                }
                seen.push(t);
            }
            if Instant::now() > deadline {
                return fail(
                    format!("Find Element (css {css:?} with text {text:?})"),
                    format!("no such element; texts seen: {seen:?}"),
                );
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Get Active Element: the element that has the keyboard focus.
    pub async fn active_element(&self) -> Result<Element> {
        let command = "Get Active Element";
        let value = self
            .session_call(Method::GET, "/element/active", None, command)
            .await?;
        Self::element_of(&value, "the active element", command)
    }

    /// Element Send Keys: focuses the element and types `text` into it.
    pub async fn send_keys(&self, el: &Element, text: &str) -> Result<()> {
        let command = format!("Element Send Keys ({})", el.found_by);
        let rest = format!("/element/{}/value", el.id);
        self.session_call(Method::POST, &rest, Some(json!({"text": text})), &command)
            .await
            .map(drop)
    }

    /// Element Click; returns once a navigation it started has loaded.
    pub async fn click(&self, el: &Element) -> Result<()> {
        let command = format!("Element Click ({})", el.found_by);
        let rest = format!("/element/{}/click", el.id);
        self.session_call(Method::POST, &rest, None, &command)
            .await
            .map(drop)
    }

    /// Get Element Text (the rendered, visible text).
    pub async fn text(&self, el: &Element) -> Result<String> {
        let command = format!("Get Element Text ({})", el.found_by);
        self.string(&format!("/element/{}/text", el.id), &command)
            .await
    }

    /// Get Element Attribute; `None` when the element has no such attribute.
    pub async fn attribute(&self, el: &Element, name: &str) -> Result<Option<String>> {
        let command = format!("Get Element Attribute ({}, {name})", el.found_by);
        let rest = format!("/element/{}/attribute/{name}", el.id);
        let value = self
            .session_call(Method::GET, &rest, None, &command)
            .await?;
        Ok(value.as_str().map(str::to_owned))
    }

    /// Get Element Tag Name.
    pub async fn tag_name(&self, el: &Element) -> Result<String> {
        let command = format!("Get Element Tag Name ({})", el.found_by);
        self.string(&format!("/element/{}/name", el.id), &command)
            .await
    }

    /// Perform Actions: presses `keys` in order (e.g. [`SHIFT`], [`TAB`]), releases them in
    /// reverse, on whatever has the focus.
    pub async fn press_keys(&self, keys: &[&str]) -> Result<()> {
        let command = format!("Perform Actions (keys {keys:?})");
        let down = keys.iter().map(|k| json!({"type": "keyDown", "value": k}));
        let up = keys
            .iter()
            .rev()
            .map(|k| json!({"type": "keyUp", "value": k}));
        let body = json!({"actions": [{
            "type": "key",
            "id": "keyboard",
            "actions": down.chain(up).collect::<Vec<_>>(),
        }]});
        self.session_call(Method::POST, "/actions", Some(body), &command)
            .await?;
        self.session_call(Method::DELETE, "/actions", None, "Release Actions")
            .await
            .map(drop)
    }

    /// Presses and releases one key.
    pub async fn press_key(&self, key: &str) -> Result<()> {
        self.press_keys(&[key]).await
    }

    /// Get Named Cookie's value (HttpOnly cookies included); `None` when there is none.
    pub async fn cookie(&self, name: &str) -> Result<Option<String>> {
        let command = format!("Get Named Cookie ({name})");
        match self
            .session_call(Method::GET, &format!("/cookie/{name}"), None, &command)
            .await
        {
            Ok(value) => Ok(value["value"].as_str().map(str::to_owned)),
            Err(e) if e.reason.starts_with("no such cookie") => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Take Screenshot of the viewport, written as a PNG file to `path`.
    pub async fn screenshot(&self, path: &Path) -> Result<()> {
        let command = format!("Take Screenshot ({})", path.display());
        let b64 = self.string("/screenshot", &command).await?;
        let png = base64::engine::general_purpose::STANDARD
            .decode(b64.as_bytes())
            .or_else(|e| fail(&command, format!("not base64: {e}")))?;
        std::fs::write(path, png).or_else(|e| fail(&command, e.to_string()))
    }

    /// Execute Script (synchronous): runs `script` as a function body with no arguments and
    /// answers what it returns. WebDriver runs it outside the page's Content-Security-Policy.
    pub async fn execute(&self, script: &str) -> Result<Value> {
        let command = format!("Execute Script ({script:?})");
        let body = json!({"script": script, "args": []});
        self.session_call(Method::POST, "/execute/sync", Some(body), &command)
            .await
    }

    /// Set Window Rect: resizes the window (the viewport is a little smaller).
    pub async fn set_window_size(&self, width: u32, height: u32) -> Result<()> {
        let command = format!("Set Window Rect ({width}x{height})");
        let body = json!({"width": width, "height": height});
        self.session_call(Method::POST, "/window/rect", Some(body), &command)
            .await
            .map(drop)
    }

    /// A screenshot of the whole page: grows the window to the page's height (at most 8000 px),
    /// takes the screenshot, then restores the window's size.
    pub async fn screenshot_full_page(&self, path: &Path) -> Result<()> {
        let command = "Get Window Rect";
        let rect = self
            .session_call(Method::GET, "/window/rect", None, command)
            .await?;
        let (Some(width), Some(height)) = (rect["width"].as_u64(), rect["height"].as_u64()) else {
            return fail(command, format!("no size in {rect}"));
        };
        let size = |v: u64| u32::try_from(v).unwrap_or(u32::MAX);
        let page = self
            .execute("return document.documentElement.scrollHeight;")
            .await?
            .as_u64()
            .unwrap_or(height);
        // The window's frame takes some pixels off the viewport; add them back.
        let inner = self
            .execute("return window.innerHeight;")
            .await?
            .as_u64()
            .unwrap_or(height);
        let wanted = (page + height.saturating_sub(inner)).clamp(height, 8000);
        self.set_window_size(size(width), size(wanted)).await?;
        let shot = self.screenshot(path).await;
        self.set_window_size(size(width), size(height)).await?;
        shot
    }

    /// Polls the current URL until `pred` holds (at most 20 s); answers the URL.
    pub async fn wait_for_url(&self, what: &str, pred: impl Fn(&str) -> bool) -> Result<String> {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let url = self.current_url().await?;
            if pred(&url) {
                return Ok(url);
            }
            if Instant::now() > deadline {
                return fail(
                    format!("Get Current URL (waiting for {what})"),
                    format!("still at {url} after 20 s"),
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Delete Session: Chromium exits. Dropping the browser does this too, without the error.
    pub async fn quit(mut self) -> Result<()> {
        let result = self
            .session_call(Method::DELETE, "", None, "Delete Session")
            .await;
        self.session = None;
        result.map(drop)
    }
}

impl Drop for Browser {
    /// Ends the session with a blocking HTTP request (no runtime is needed in `drop`), so that
    /// Chromium exits; then the driver field kills chromedriver.
    fn drop(&mut self) {
        let Some(id) = self.session.take() else {
            return;
        };
        let port = self.driver.port;
        if let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) {
            let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
            let request = format!(
                "DELETE /session/{id} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\
                 Content-Length: 0\r\nConnection: close\r\n\r\n"
            );
            if stream.write_all(request.as_bytes()).is_ok() {
                let _ = stream.read_to_end(&mut Vec::new());
            }
        }
    }
}

/// The WebDriver key value of Tab.
pub const TAB: &str = "\u{E004}";
/// The WebDriver key value of Shift.
pub const SHIFT: &str = "\u{E008}";
/// The WebDriver key value of Enter.
pub const ENTER: &str = "\u{E007}";
