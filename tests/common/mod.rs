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

/// Writes a config into `dir` (with `extra` TOML appended) and returns its path.
pub fn write_config(dir: &Path, port: u16, dispatch_url: &str, extra: &str) -> PathBuf {
    // SQLite by default; HOTLINE_TEST_BACKEND=postgres runs the same suite on PostgreSQL.
    let storage = services::storage_toml(dir);
    let cfg = format!(
        r#"
[server]
listen = "127.0.0.1:{port}"
node_id = 7
timezone = "Asia/Shanghai"
workers = 2

[storage]
{storage}

[dispatch]
url = "{dispatch_url}"
secret = "dispatch-secret"
timeout = "2s"
backoff_base = "100ms"
backoff_max = "1s"
breaker_cooldown = "200ms"

[admin]
token = "{ADMIN}"
{extra}
"#
    );
    let path = dir.join("gateway.toml");
    std::fs::write(&path, cfg).expect("write config");
    path
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
        let log = config.with_extension(format!("{}.log", Instant::now().elapsed().as_nanos()));
        let log = unique(&log);
        let out = std::fs::File::create(&log).expect("log file");
        let err = out.try_clone().expect("log file");
        let child = Command::new(BIN)
            .args(["serve", "--config"])
            .arg(&config)
            .env("RUST_LOG", "info")
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
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        matches!(self.child.wait(), Ok(s) if s.success())
    }

    /// The logs so far.
    pub fn logs(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// POSTs JSON to the web form; returns (status, body).
    pub fn submit(&self, body: serde_json::Value) -> (u16, serde_json::Value) {
        let r = client()
            .post(format!("{}/v1/web/submissions", self.url))
            .json(&body)
            .send()
            .expect("submit");
        let status = r.status().as_u16();
        (status, r.json().unwrap_or(serde_json::Value::Null))
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

/// Order lines (first deliveries, not repeats) by key.
pub fn delivered_orders(lines: &[serde_json::Value]) -> Vec<String> {
    lines
        .iter()
        .filter(|l| l["kind"] == "order" && l["repeat"] == false)
        .filter_map(|l| l["key"].as_str().map(String::from))
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
