//! Test harness: the real binary on free loopback ports, a real dispatch-sim, wait-until helpers.
//! Every process is killed when its guard drops, so a failing test leaves nothing running.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design
#![allow(dead_code)]

pub mod services;

use std::io::BufRead;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The gateway binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_hotline-gateway");

/// A free loopback port (bound then released; the OS will not hand it out again at once).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// Polls `f` every 20 ms until it returns `Some`, or panics after `limit` saying what it waited for.
pub fn wait_until<T>(what: &str, limit: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = f() {
            return v;
        }
        if start.elapsed() > limit {
            panic!("timed out after {limit:?} waiting for {what}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A blocking HTTP client with a short time-out.
pub fn client() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("client")
}

/// A running gateway process.
pub struct Gateway {
    /// Its child process.
    pub child: Child,
    /// `http://127.0.0.1:PORT`
    pub url: String,
    /// The config file it runs with.
    pub config: PathBuf,
    /// Captured stderr+stdout lines (logs), for privacy assertions.
    pub log: PathBuf,
}

/// Default admin token in test configs.
pub const ADMIN: &str = "test-admin-token";

/// A routine matter told in emergency words (the insurer of last year's crash): the rules
/// redirect it to 122 (rule `traffic`), the second opinion strongly doubts it.
/// `a_redirect_the_second_opinion_doubts_is_an_order_for_urgent_review` checks both first, so
/// the tests that use it cannot pass by losing their premise.
pub const DOUBTED: &str = "去年出的车祸到现在对方保险公司还拖着不赔我该找哪个部门";

/// A current emergency the rules redirect (120, rule `medical`) and the second opinion doubts,
/// written to mix a routine question with it (the emergency review of 2026-12-07).
pub const DOUBTED_NOW: &str = "我想问一下120急救车多少钱，我爸现在昏迷了";

/// An emergency the rules miss and the second opinion suspects (110).
pub const SUSPECTED: &str = "有人撬我家门，现在就在门外，我一个人在家";

/// Writes a config into `dir` (with `extra` TOML appended) and returns its path.
pub fn write_config(dir: &Path, port: u16, dispatch_url: &str, extra: &str) -> PathBuf {
    // SQLite by default; HOTLINE_TEST_BACKEND=postgres runs the same suite on PostgreSQL.
    let node = NodeConfig {
        storage: services::storage_toml(dir),
        ..NodeConfig::default()
    };
    node.write(dir, port, dispatch_url, extra)
}

/// What differs between the nodes of a test: id, `[storage]` body and `[dispatch]` lines.
pub struct NodeConfig {
    /// `server.node_id`.
    pub node_id: u8,
    /// The body of the `[storage]` table.
    pub storage: String,
    /// Lines of the `[dispatch]` table besides url, secret and backoff.
    pub dispatch: String,
}

impl Default for NodeConfig {
    fn default() -> Self {
        NodeConfig {
            node_id: 7,
            storage: "path = \"data\"".into(),
            dispatch: "timeout = \"2s\"".into(),
        }
    }
}

impl NodeConfig {
    /// Writes the config into `dir/gateway.toml` and returns its path.
    pub fn write(&self, dir: &Path, port: u16, dispatch_url: &str, extra: &str) -> PathBuf {
        let NodeConfig {
            node_id,
            storage,
            dispatch,
        } = self;
        let cfg = format!(
            r#"
[server]
listen = "127.0.0.1:{port}"
node_id = {node_id}
timezone = "Asia/Shanghai"
workers = 2

[storage]
{storage}

[dispatch]
url = "{dispatch_url}"
secret = "dispatch-secret"
backoff_base = "100ms"
backoff_max = "1s"
breaker_cooldown = "200ms"
{dispatch}

[admin]
token = "{ADMIN}"
{extra}
"#
        );
        let path = dir.join("gateway.toml");
        std::fs::write(&path, cfg).expect("write config");
        path
    }
}

impl Gateway {
    /// Starts the gateway with a config in `dir` and waits until it answers `/healthz`.
    pub fn start(dir: &Path, dispatch_url: &str, extra: &str) -> Gateway {
        let port = free_port();
        let config = write_config(dir, port, dispatch_url, extra);
        Gateway::start_with(config, port)
    }

    /// Starts the gateway on an existing config file (port must match its `listen`).
    pub fn start_with(config: PathBuf, port: u16) -> Gateway {
        Gateway::start_with_env(config, port, &[])
    }

    /// Starts the gateway on an existing config file with `HOTLINE__…` overrides in `env` (and
    /// `RUST_LOG`, `info` unless `env` says otherwise); it is reached at 127.0.0.1:`port`.
    pub fn start_with_env(config: PathBuf, port: u16, env: &[(&str, &str)]) -> Gateway {
        let log = config.with_extension(format!("{}.log", Instant::now().elapsed().as_nanos()));
        let log = unique(&log);
        let out = std::fs::File::create(&log).expect("log file");
        let err = out.try_clone().expect("log file");
        let child = Command::new(BIN)
            .args(["serve", "--config"])
            .arg(&config)
            .env("RUST_LOG", "info")
            .envs(env.iter().copied())
            .stdout(Stdio::from(out))
            .stderr(Stdio::from(err))
            .spawn()
            .expect("spawn gateway");
        let url = format!("http://127.0.0.1:{port}");
        let mut g = Gateway {
            child,
            url,
            config,
            log,
        };
        g.wait_healthy();
        g
    }

    fn wait_healthy(&mut self) {
        let c = client();
        let url = format!("{}/healthz", self.url);
        let child = &mut self.child;
        let log = self.log.clone();
        wait_until(
            "the gateway to answer /healthz",
            Duration::from_secs(30),
            || {
                if let Ok(Some(status)) = child.try_wait() {
                    panic!(
                        "gateway exited with {status}: {}",
                        std::fs::read_to_string(&log).unwrap_or_default()
                    );
                }
                c.get(&url).send().ok().filter(|r| r.status().is_success())
            },
        );
    }

    /// Port it listens on.
    pub fn port(&self) -> u16 {
        self.url
            .rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .unwrap_or(0)
    }

    /// SIGKILL: no shutdown code runs, as in a power cut of the process.
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM and wait for exit; returns whether it exited successfully.
    pub fn terminate(&mut self) -> bool {
        self.stop_with("TERM")
    }

    /// Sends SIGTERM and returns at once.
    pub fn sigterm(&self) {
        self.signal("TERM");
    }

    /// Sends a signal by name (`TERM`, `INT`, `HUP`) and returns at once.
    pub fn signal(&self, name: &str) {
        let _ = Command::new("kill")
            .args([&format!("-{name}"), &self.child.id().to_string()])
            .status();
    }

    /// Sends a signal by name and waits for exit; returns whether it exited successfully.
    pub fn stop_with(&mut self, name: &str) -> bool {
        self.signal(name);
        matches!(self.child.wait(), Ok(s) if s.success())
    }

    /// Waits up to `limit` for the process to exit; returns whether it exited successfully.
    pub fn wait_exit(&mut self, limit: Duration) -> bool {
        let child = &mut self.child;
        wait_until("the gateway to exit", limit, || {
            child.try_wait().ok().flatten()
        })
        .success()
    }

    /// The Prometheus text of `/metrics`.
    pub fn metrics(&self) -> String {
        client()
            .get(format!("{}/metrics", self.url))
            .send()
            .and_then(|r| r.text())
            .expect("GET /metrics")
    }

    /// The logs so far.
    pub fn logs(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// POSTs JSON to the web form; returns (status, body).
    pub fn submit(&self, body: serde_json::Value) -> (u16, serde_json::Value) {
        self.submit_from(None, body)
    }

    /// As [`submit`](Self::submit), forwarded for the client address `from` (the gateway
    /// believes it only from a `web.trusted_proxies` peer).
    pub fn submit_from(
        &self,
        from: Option<&str>,
        body: serde_json::Value,
    ) -> (u16, serde_json::Value) {
        let mut req = client().post(format!("{}/v1/web/submissions", self.url));
        if let Some(from) = from {
            req = req.header("x-forwarded-for", from);
        }
        let r = req.json(&body).send().expect("submit");
        let status = r.status().as_u16();
        (status, r.json().unwrap_or(serde_json::Value::Null))
    }

    /// Suspends `identity` (`phone:…`, `wechat:…`) through the admin API, as an operator would;
    /// panics unless the gateway answers 200.
    pub fn suspend(&self, identity: &str, duration: &str, reason: &str) {
        let r = client()
            .put(format!(
                "{}/admin/v1/callers/{identity}/suspension",
                self.url
            ))
            .bearer_auth(ADMIN)
            .json(&serde_json::json!({"duration": duration, "reason": reason}))
            .send()
            .expect("admin put");
        assert_eq!(r.status().as_u16(), 200, "suspend {identity}");
    }

    /// POST an admin path with the token, no body; the answer's status.
    pub fn admin_post(&self, path: &str) -> u16 {
        client()
            .post(format!("{}{path}", self.url))
            .bearer_auth(ADMIN)
            .send()
            .expect("admin post")
            .status()
            .as_u16()
    }

    /// GET an admin path with the token.
    pub fn admin_get(&self, path: &str) -> serde_json::Value {
        client()
            .get(format!("{}{path}", self.url))
            .bearer_auth(ADMIN)
            .send()
            .and_then(|r| r.json())
            .expect("admin get")
    }
}

fn unique(p: &Path) -> PathBuf {
    let mut n = 0;
    loop {
        let candidate = p.with_extension(format!("{n}.log"));
        if !candidate.exists() {
            return candidate;
        }
        n += 1;
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A running dispatch-sim.
pub struct Sim {
    /// Its child process.
    pub child: Child,
    /// `http://127.0.0.1:PORT`
    pub url: String,
    /// Its JSON-lines output.
    pub out: PathBuf,
}

impl Sim {
    /// Starts `dispatch-sim` on `port` with extra flags, writing to `out`.
    pub fn start(port: u16, out: &Path, flags: &[&str]) -> Sim {
        let child = Command::new(BIN)
            .args([
                "dispatch-sim",
                "--listen",
                &format!("127.0.0.1:{port}"),
                "--out",
            ])
            .arg(out)
            .args(flags)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn dispatch-sim");
        let url = format!("http://127.0.0.1:{port}");
        let c = client();
        wait_until("dispatch-sim to listen", Duration::from_secs(30), || {
            c.get(format!("{url}/work-orders/0")).send().ok()
        });
        Sim {
            child,
            url,
            out: out.to_path_buf(),
        }
    }

    /// Every line the sim recorded.
    pub fn lines(&self) -> Vec<serde_json::Value> {
        read_lines(&self.out)
    }

    /// Waits (up to 30 s) until the order `number` has reached the sim; returns its line.
    pub fn wait_order(&self, number: &str) -> serde_json::Value {
        wait_until(
            &format!("order {number} at dispatch"),
            Duration::from_secs(30),
            || {
                self.lines()
                    .into_iter()
                    .find(|l| is_order(l) && l["number"] == number)
            },
        )
    }

    /// Stops the sim.
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Reads a JSON-lines file (missing file = no lines).
pub fn read_lines(path: &Path) -> Vec<serde_json::Value> {
    let Ok(f) = std::fs::File::open(path) else {
        return Vec::new();
    };
    std::io::BufReader::new(f)
        .lines()
        .map_while(Result::ok)
        .filter_map(|l| serde_json::from_str(&l).ok())
        .collect()
}

// The sim's lines (src/sim.rs): an order is the order object as received plus
// `idempotency_key` (and `"repeat": true` when its key came again, answered 409); a repeat
// contact is `{"contact_for", "idempotency_key", ...the contact's fields}`, with no `number`.

/// Whether a sim line records an order (first delivery or repeat): it has a top-level `number`.
pub fn is_order(l: &serde_json::Value) -> bool {
    l["number"].is_string()
}

/// Whether a sim line records an order's first delivery under its key (no `"repeat": true`).
pub fn is_first_delivery(l: &serde_json::Value) -> bool {
    is_order(l) && l["repeat"] != true
}

/// Whether a sim line records an order whose key the sim had seen before (answered 409).
pub fn is_repeat(l: &serde_json::Value) -> bool {
    is_order(l) && l["repeat"] == true
}

/// Whether a sim line records a repeat contact (`POST /work-orders/{n}/contacts`).
pub fn is_contact(l: &serde_json::Value) -> bool {
    l["contact_for"].is_string()
}

/// Order lines (first deliveries, not repeats) by key.
pub fn delivered_orders(lines: &[serde_json::Value]) -> Vec<String> {
    lines
        .iter()
        .filter(|l| is_first_delivery(l))
        .filter_map(|l| l["idempotency_key"].as_str().map(String::from))
        .collect()
}

impl Drop for Sim {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The order numbers of an answer's `orders` array (web form, CTI).
pub fn numbers(body: &serde_json::Value) -> Vec<String> {
    body["orders"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|o| o["number"].as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

/// Runs a peer written by others (tests/peers/SCRIPT: wechatpy, twilio…) with `args`, `input` as
/// JSON on stdin, and returns its JSON answer. scripts/test installs the PyPI packages they use.
pub fn run_peer(script: &str, args: &[&str], input: &serde_json::Value) -> serde_json::Value {
    use std::io::Write;
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/peers")
        .join(script);
    let mut child = Command::new("python3")
        .arg(&path)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 must be installed (scripts/test installs the peers' packages)");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input.to_string().as_bytes())
        .expect("write to the peer");
    let out = child.wait_with_output().expect("peer output");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "peer {script} failed ({}); are wechatpy==1.8.18, cryptography and twilio installed \
         (scripts/test does it)?\n{stderr}",
        out.status
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "peer {script} printed no JSON ({e}): {}\n{stderr}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}

/// Asserts a web answer made an order for urgent review: the order is flagged with the
/// emergency `number`, and the message first tells the person to dial it.
pub fn assert_urgent_review(b: &serde_json::Value, number: &str) {
    assert_eq!(b["orders"][0]["suspected_emergency"], number, "{b}");
    let advice = format!("您反映的情况可能是紧急情况：如果危险正在发生，请立即拨打{number}。");
    assert!(
        b["message"].as_str().unwrap_or("").starts_with(&advice),
        "{b}"
    );
}
