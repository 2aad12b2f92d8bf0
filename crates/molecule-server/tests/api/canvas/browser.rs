//! A WebDriver client for a real browser: Debian's `chromium`, headless,
//! driven through `chromedriver` over HTTP. Just what the canvas tests
//! use: navigate, find, click, type, run a script, read the console, take
//! a screenshot. A missing browser fails the test with how to install it.

use serde_json::{Value, json};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::{TempDir, eventually};

/// The W3C key for an element reference.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

pub struct Browser {
    http: reqwest::Client,
    session: String,
    driver: Child,
    profile: TempDir,
}

fn program(var: &str, names: &[&str]) -> String {
    if let Ok(p) = std::env::var(var)
        && !p.is_empty()
    {
        return p;
    }
    for name in names {
        for dir in std::env::var("PATH").unwrap_or_default().split(':') {
            let p = std::path::Path::new(dir).join(name);
            if p.is_file() {
                return p.to_string_lossy().into_owned();
            }
        }
    }
    panic!(
        "{} not found (set {var}): the canvas tests need Debian's chromium and chromium-driver \
         (`apt-get install chromium chromium-driver`; `cargo xtask test` installs them)",
        names.join(" or ")
    );
}

impl Browser {
    /// A new headless browser with its own profile, `width`×`height`.
    pub async fn start(width: u32, height: u32) -> Browser {
        let driver_bin = program("MOLECULE_CHROMEDRIVER", &["chromedriver"]);
        let chromium = program("MOLECULE_CHROMIUM", &["chromium", "chromium-browser"]);
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let driver = Command::new(&driver_bin)
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {driver_bin}: {e}"));
        let profile = TempDir::default();
        let mut b = Browser {
            http: reqwest::Client::new(),
            session: format!("http://127.0.0.1:{port}"),
            driver,
            profile,
        };
        let base = b.session.clone();
        let ready = eventually(Duration::from_secs(20), || async {
            let r = b.http.get(format!("{base}/status")).send().await.ok()?;
            let v: Value = r.json().await.ok()?;
            v["value"]["ready"].as_bool().filter(|r| *r)
        })
        .await;
        assert!(
            ready.is_some(),
            "chromedriver did not become ready on port {port}"
        );
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:loggingPrefs": {"browser": "ALL"},
            "goog:chromeOptions": {
                "binary": chromium,
                "args": [
                    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                    "--no-first-run", "--disable-extensions", "--disable-background-networking",
                    format!("--window-size={width},{height}"),
                    format!("--user-data-dir={}", b.profile.0.display()),
                ],
            },
        }}});
        let r = b
            .http
            .post(format!("{base}/session"))
            .json(&caps)
            .send()
            .await
            .expect("new session");
        let v: Value = r.json().await.expect("session answer");
        let id = v["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no browser session: {v}"))
            .to_string();
        b.session = format!("{base}/session/{id}");
        b
    }

    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let url = format!("{}{path}", self.session);
        let mut req = self.http.request(method.clone(), &url);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let r = req
            .send()
            .await
            .unwrap_or_else(|e| panic!("{method} {path}: {e}"));
        let status = r.status();
        let v: Value = r.json().await.unwrap_or(Value::Null);
        assert!(status.is_success(), "{method} {path}: {status} {v}");
        v["value"].clone()
    }

    pub async fn goto(&self, url: &str) {
        self.call(reqwest::Method::POST, "/url", Some(json!({ "url": url })))
            .await;
    }

    /// Run `script` (a function body; `arguments` holds `args`) in the page.
    pub async fn eval(&self, script: &str, args: Value) -> Value {
        self.call(
            reqwest::Method::POST,
            "/execute/sync",
            Some(json!({ "script": script, "args": args })),
        )
        .await
    }

    /// A Chrome DevTools Protocol command (chromedriver passes it on).
    pub async fn cdp(&self, cmd: &str, params: Value) -> Value {
        self.call(
            reqwest::Method::POST,
            "/goog/cdp/execute",
            Some(json!({ "cmd": cmd, "params": params })),
        )
        .await
    }

    /// Run `script` asynchronously: it calls its last argument with the result.
    pub async fn eval_async(&self, script: &str) -> Value {
        self.call(
            reqwest::Method::POST,
            "/execute/async",
            Some(json!({ "script": script, "args": [] })),
        )
        .await
    }

    /// Wait until `script` returns a truthy value; that value.
    pub async fn wait_for(&self, what: &str, within: Duration, script: &str) -> Value {
        let got = eventually(within, || async {
            let v = self.eval(script, json!([])).await;
            let truthy =
                !matches!(v, Value::Null | Value::Bool(false)) && v != json!(0) && v != json!("");
            truthy.then_some(v)
        })
        .await;
        match got {
            Some(v) => v,
            None => {
                let shot = self.profile.0.join("failure.png");
                self.screenshot(&shot).await;
                panic!(
                    "waited {within:?} for {what}; page text: {}",
                    self.eval("return document.body.innerText.slice(0, 3000)", json!([]))
                        .await
                )
            }
        }
    }

    /// The element `css` matches (waits up to 10 s for it).
    pub async fn find(&self, css: &str) -> String {
        let found = eventually(Duration::from_secs(10), || async {
            let url = format!("{}/element", self.session);
            let r = self
                .http
                .post(&url)
                .json(&json!({ "using": "css selector", "value": css }))
                .send()
                .await
                .ok()?;
            if !r.status().is_success() {
                return None;
            }
            let v: Value = r.json().await.ok()?;
            v["value"][ELEMENT].as_str().map(str::to_string)
        })
        .await;
        found.unwrap_or_else(|| panic!("no element matches {css}"))
    }

    /// A real click (the browser's pointer events) on what `css` matches.
    pub async fn click(&self, css: &str) {
        let el = self.find(css).await;
        self.call(
            reqwest::Method::POST,
            &format!("/element/{el}/click"),
            Some(json!({})),
        )
        .await;
    }

    /// A real click on the first element `css` matches whose text is `text`.
    pub async fn click_text(&self, css: &str, text: &str) {
        let script = format!(
            "return [...document.querySelectorAll({})].find(e => e.textContent.trim() === {}) || null",
            super::js(css),
            super::js(text)
        );
        let el = eventually(Duration::from_secs(10), || async {
            let v = self.eval(&script, json!([])).await;
            v[ELEMENT].as_str().map(str::to_string)
        })
        .await
        .unwrap_or_else(|| panic!("no {css} reads {text:?}"));
        self.call(
            reqwest::Method::POST,
            &format!("/element/{el}/click"),
            Some(json!({})),
        )
        .await;
    }

    /// Press the mouse on what `css` matches, move it by (dx, dy) in steps,
    /// release it.
    pub async fn drag(&self, css: &str, dx: i64, dy: i64) {
        let el = self.find(css).await;
        let mut actions = vec![
            json!({"type": "pointerMove", "origin": {ELEMENT: el}, "x": 0, "y": 0}),
            json!({"type": "pointerDown", "button": 0}),
        ];
        for _ in 0..4 {
            actions.push(json!({"type": "pointerMove", "origin": "pointer", "x": dx / 4, "y": dy / 4, "duration": 50}));
        }
        actions.push(json!({"type": "pointerUp", "button": 0}));
        self.call(
            reqwest::Method::POST,
            "/actions",
            Some(json!({"actions": [{
                "type": "pointer", "id": "mouse", "parameters": {"pointerType": "mouse"}, "actions": actions,
            }]})),
        )
        .await;
    }

    /// Resize the window.
    pub async fn resize(&self, width: u32, height: u32) {
        self.call(
            reqwest::Method::POST,
            "/window/rect",
            Some(json!({ "width": width, "height": height })),
        )
        .await;
    }

    /// Type `text` into what `css` matches (after clearing it).
    pub async fn type_into(&self, css: &str, text: &str) {
        let el = self.find(css).await;
        self.call(
            reqwest::Method::POST,
            &format!("/element/{el}/clear"),
            Some(json!({})),
        )
        .await;
        self.call(
            reqwest::Method::POST,
            &format!("/element/{el}/value"),
            Some(json!({ "text": text })),
        )
        .await;
    }

    /// Keys sent to the focused element (`\u{E007}` is Enter).
    pub async fn keys(&self, text: &str) {
        let actions: Vec<Value> = text
            .chars()
            .flat_map(|c| {
                let k = c.to_string();
                [
                    json!({"type": "keyDown", "value": k}),
                    json!({"type": "keyUp", "value": k}),
                ]
            })
            .collect();
        self.call(
            reqwest::Method::POST,
            "/actions",
            Some(json!({"actions": [{"type": "key", "id": "keyboard", "actions": actions}]})),
        )
        .await;
    }

    /// A PNG of the window, written to `path`.
    pub async fn screenshot(&self, path: &std::path::Path) {
        use base64::Engine;
        let v = self.call(reqwest::Method::GET, "/screenshot", None).await;
        let png = base64::engine::general_purpose::STANDARD
            .decode(v.as_str().unwrap_or_default())
            .expect("a base64 PNG");
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).expect("screenshot directory");
        }
        std::fs::write(path, png).expect("write screenshot");
    }

    /// Console messages of level SEVERE (errors, failed loads, CSP
    /// violations) since the last call.
    pub async fn console_errors(&self) -> Vec<String> {
        let v = self
            .call(
                reqwest::Method::POST,
                "/se/log",
                Some(json!({ "type": "browser" })),
            )
            .await;
        v.as_array()
            .into_iter()
            .flatten()
            .filter(|e| e["level"] == "SEVERE")
            .map(|e| e["message"].as_str().unwrap_or_default().to_string())
            .collect()
    }

    pub async fn close(mut self) {
        let _ = self.http.delete(&self.session).send().await;
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // A failed test never reaches close(): stop the driver and every
        // browser process of this profile.
        let _ = self.driver.kill();
        let _ = self.driver.wait();
        let needle = self.profile.0.to_string_lossy().into_owned();
        for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
            let Ok(cmd) = std::fs::read(entry.path().join("cmdline")) else {
                continue;
            };
            if String::from_utf8_lossy(&cmd).contains(&needle) {
                let pid = entry.file_name().to_string_lossy().to_string();
                let _ = Command::new("kill").args(["-9", &pid]).status();
            }
        }
    }
}
