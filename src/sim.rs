//! `dispatch-sim`: a reference core dispatch API for demos and tests.
//!
//! It answers like a real one: `POST /work-orders` takes an order once per `Idempotency-Key`
//! (201, then 409 for the same key), `POST /work-orders/{n}/contacts` takes repeat contacts,
//! `GET /work-orders/{n}` answers a status. Every request it accepts is appended to a JSON-lines
//! file (with `"repeat": true` for a key it had already seen), so tests can count deliveries per
//! key. Flags inject failures: `--fail-rate` (503s), `--reject-rate` (400s), `--latency-ms`, and
//! `--secret` makes it verify `X-Hotline-Signature` like a strict core would.

use actix_web::web::{Bytes, Data, Path};
use actix_web::{HttpRequest, HttpResponse};
use rand::Rng;
use serde_json::json;
use std::collections::HashMap;
use std::io::{BufRead, Write};
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

/// Simulator settings (the CLI flags).
#[derive(Debug, Clone, Default)]
pub struct SimConfig {
    /// JSON-lines file of accepted requests (appended; read back at start).
    pub out: Option<PathBuf>,
    /// Fraction (0..1) of requests answered 503.
    pub fail_rate: f64,
    /// Fraction (0..1) of orders answered 400 (permanent refusal).
    pub reject_rate: f64,
    /// Added latency per request.
    pub latency: Duration,
    /// When set, requests must carry a valid signature (else 401).
    pub secret: Option<String>,
}

struct Sim {
    cfg: SimConfig,
    seen: Mutex<HashMap<String, String>>,
    file: Mutex<Option<std::fs::File>>,
}

/// Runs the simulator on `listener` until SIGINT/SIGTERM.
pub async fn run(cfg: SimConfig, listener: std::net::TcpListener) -> std::io::Result<()> {
    let mut seen = HashMap::new();
    if let Some(path) = &cfg.out {
        // Rebuild the seen keys so a restarted sim still answers 409 for known orders.
        if let Ok(f) = std::fs::File::open(path) {
            for line in std::io::BufReader::new(f).lines().map_while(Result::ok) {
                if let Ok(v) = serde_json::from_str::<serde_json::Value>(&line) {
                    if let (Some(k), Some(n)) = (v["key"].as_str(), v["order"]["number"].as_str()) {
                        seen.insert(k.to_string(), n.to_string());
                    }
                }
            }
        }
    }
    let file = match &cfg.out {
        Some(p) => Some(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(p)?,
        ),
        None => None,
    };
    let sim = Data::new(Sim {
        cfg,
        seen: Mutex::new(seen),
        file: Mutex::new(file),
    });
    actix_web::HttpServer::new(move || {
        actix_web::App::new()
            .app_data(sim.clone())
            .app_data(actix_web::web::PayloadConfig::new(1 << 20))
            .route("/work-orders", actix_web::web::post().to(post_order))
            .route(
                "/work-orders/{number}/contacts",
                actix_web::web::post().to(post_contact),
            )
            .route("/work-orders/{number}", actix_web::web::get().to(get_order))
    })
    .listen(listener)?
    .run()
    .await
}

impl Sim {
    async fn gate(&self, req: &HttpRequest, body: &Bytes) -> Option<HttpResponse> {
        if !self.cfg.latency.is_zero() {
            tokio::time::sleep(self.cfg.latency).await;
        }
        if let Some(secret) = &self.cfg.secret {
            let ts = header(req, "x-hotline-timestamp");
            let sig = header(req, "x-hotline-signature");
            let ok = ts
                .parse::<i64>()
                .map(|t| crate::relay::signature(secret, t, &String::from_utf8_lossy(body)) == sig)
                .unwrap_or(false);
            if !ok {
                return Some(HttpResponse::Unauthorized().json(json!({"error": "bad signature"})));
            }
        }
        if self.cfg.fail_rate > 0.0 && rand::thread_rng().gen_bool(self.cfg.fail_rate.min(1.0)) {
            return Some(HttpResponse::ServiceUnavailable().json(json!({"error": "injected"})));
        }
        None
    }

    fn append(&self, line: serde_json::Value) {
        // One `write` per line: `writeln!` on a `File` with a JSON value issued a system call
        // per formatted fragment (dozens per order), which made the sim, not the gateway, the
        // bottleneck of drain benchmarks. One call also keeps each line whole for readers.
        let mut text = line.to_string();
        text.push('\n');
        if let Ok(mut guard) = self.file.lock() {
            if let Some(f) = guard.as_mut() {
                let _ = f.write_all(text.as_bytes());
            }
        }
    }
}

fn header(req: &HttpRequest, name: &str) -> String {
    req.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string()
}

async fn post_order(req: HttpRequest, body: Bytes, sim: Data<Sim>) -> HttpResponse {
    if let Some(r) = sim.gate(&req, &body).await {
        return r;
    }
    let key = header(&req, "idempotency-key");
    let Ok(order) = serde_json::from_slice::<serde_json::Value>(&body) else {
        return HttpResponse::BadRequest().json(json!({"error": "invalid JSON"}));
    };
    let Some(number) = order["number"].as_str().map(String::from) else {
        return HttpResponse::UnprocessableEntity().json(json!({"error": "number missing"}));
    };
    if key.is_empty() {
        return HttpResponse::BadRequest().json(json!({"error": "Idempotency-Key missing"}));
    }
    if sim.cfg.reject_rate > 0.0 && rand::thread_rng().gen_bool(sim.cfg.reject_rate.min(1.0)) {
        return HttpResponse::BadRequest().json(json!({"error": "injected rejection"}));
    }
    let repeat = {
        let Ok(mut seen) = sim.seen.lock() else {
            return HttpResponse::InternalServerError().finish();
        };
        seen.insert(key.clone(), number.clone()).is_some()
    };
    sim.append(json!({"kind": "order", "key": key, "repeat": repeat, "order": order}));
    if repeat {
        HttpResponse::Conflict().json(json!({"number": number, "status": "accepted"}))
    } else {
        HttpResponse::Created().json(json!({"number": number, "status": "accepted"}))
    }
}

async fn post_contact(
    req: HttpRequest,
    number: Path<String>,
    body: Bytes,
    sim: Data<Sim>,
) -> HttpResponse {
    if let Some(r) = sim.gate(&req, &body).await {
        return r;
    }
    let contact: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
    let key = header(&req, "idempotency-key");
    sim.append(
        json!({"kind": "contact", "key": key, "number": number.as_str(), "contact": contact}),
    );
    HttpResponse::Created().json(json!({"status": "recorded"}))
}

async fn get_order(number: Path<String>, sim: Data<Sim>) -> HttpResponse {
    let known = sim
        .seen
        .lock()
        .map(|s| s.values().any(|n| n == number.as_str()))
        .unwrap_or(false);
    if known {
        HttpResponse::Ok().json(json!({
            "number": number.as_str(),
            "status": "processing",
            "unit": "市12345热线派单中心",
            "updated_at": chrono::Utc::now().to_rfc3339(),
        }))
    } else {
        HttpResponse::NotFound().json(json!({"error": "unknown order"}))
    }
}
