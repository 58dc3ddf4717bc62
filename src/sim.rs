//! `dispatch-sim`: a reference core dispatch API for demos and tests.
//!
//! It answers like a real one: `POST /work-orders` takes an order once per `Idempotency-Key`
//! (201, then 409 for the same key), `POST /work-orders/{n}/contacts` takes repeat contacts
//! about orders it has (201, then 409 for the same key; 404 for an order it does not know),
//! `GET /work-orders/{n}` answers a status. Flags inject failures: `--fail-rate` (503s),
//! `--reject-rate` (400s), `--latency-ms` (before anything is done), `--answer-late-ms` (after
//! the request is recorded, before the answer: a core that commits, then answers after the
//! caller's time-out), and `--secret` makes it verify `X-Hotline-Signature` like a strict core
//! would.
//!
//! Every request it accepts is appended to the `--out` file, one JSON object a line:
//!
//! - an order taken for the first time under its key (201): the order object exactly as
//!   received, `number` and all its other fields at top level, plus `"idempotency_key"`. It has
//!   no `repeat` field;
//! - the same key again (409): the same, plus `"repeat": true`, so tests can count
//!   re-deliveries; a check of what reached dispatch skips lines whose `repeat` is true;
//! - a repeat contact (`POST /work-orders/{n}/contacts`):
//!   `{"contact_for": "<n>", "idempotency_key": "<key>", ...the contact body's fields}`. The
//!   body's own `number` is left out (it names the same order as the path), so a line with a
//!   top-level `number` is always an order. A body that is not a JSON object is kept whole as
//!   `"body"`. The same key again (409): the same, plus `"repeat": true`. A contact about an
//!   order the sim does not know is answered 404 and not recorded.
//!
//! The sim sets `idempotency_key`, `repeat` and `contact_for` itself, over any field of the same
//! name in what it received. On start it reads the file back, so a restarted sim still answers
//! 409 for the keys of the orders and contacts it has recorded, and knows those orders.

use actix_web::web::{Bytes, Data, Path};
use actix_web::{HttpRequest, HttpResponse};
use rand::Rng;
use serde_json::json;
use std::collections::{HashMap, HashSet};
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
    /// Added latency per request, before it is looked at.
    pub latency: Duration,
    /// Added latency per accepted request, after it is recorded and before the answer.
    pub answer_late: Duration,
    /// When set, requests must carry a valid signature (else 401).
    pub secret: Option<String>,
}

struct Sim {
    cfg: SimConfig,
    seen: Mutex<Seen>,
    file: Mutex<Option<std::fs::File>>,
}

/// What the sim has recorded.
#[derive(Debug, Default)]
struct Seen {
    /// Order key -> order number.
    orders: HashMap<String, String>,
    /// The numbers of those orders (contacts and status look-ups ask by number).
    numbers: HashSet<String>,
    /// Contact keys.
    contacts: HashSet<String>,
}

impl Seen {
    /// Records an order; whether its key was seen before.
    fn order(&mut self, key: &str, number: &str) -> bool {
        self.numbers.insert(number.to_string());
        self.orders
            .insert(key.to_string(), number.to_string())
            .is_some()
    }
}

/// Runs the simulator on `listener` until SIGINT/SIGTERM.
pub async fn run(cfg: SimConfig, listener: std::net::TcpListener) -> std::io::Result<()> {
    // Rebuild the seen keys so a restarted sim still answers 409 for known orders.
    let seen = match cfg.out.as_ref().map(std::fs::File::open) {
        Some(Ok(f)) => seen_keys(std::io::BufReader::new(f)),
        _ => Seen::default(),
    };
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

/// The orders (key -> number) and contact keys of every line in a file the sim wrote (contact
/// lines have no top-level `number`, and a `contact_for`).
fn seen_keys(file: impl BufRead) -> Seen {
    let mut seen = Seen::default();
    for line in file.lines().map_while(Result::ok) {
        if let Ok(v) = serde_json::from_str::<serde_json::Value>(&line) {
            match (v["idempotency_key"].as_str(), v["number"].as_str()) {
                (Some(k), Some(n)) => {
                    seen.order(k, n);
                }
                (Some(k), None) if v["contact_for"].is_string() => {
                    seen.contacts.insert(k.to_string());
                }
                _ => {}
            }
        }
    }
    seen
}

impl Sim {
    async fn gate(&self, req: &HttpRequest, body: &Bytes) -> Option<HttpResponse> {
        pause(self.cfg.latency).await;
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

    /// Waits `--answer-late-ms` after a request is recorded. Whether the caller is still there
    /// does not matter: what was recorded stays recorded, as in a core that committed first.
    async fn answer_late(&self) {
        pause(self.cfg.answer_late).await;
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

/// Sleeps `d`; zero (the flag unset) does not yield at all.
async fn pause(d: Duration) {
    if !d.is_zero() {
        tokio::time::sleep(d).await;
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
        seen.order(&key, &number)
    };
    sim.append(order_line(order, &key, repeat));
    sim.answer_late().await;
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
    let repeat = {
        let Ok(mut seen) = sim.seen.lock() else {
            return HttpResponse::InternalServerError().finish();
        };
        // A real dispatch cannot attach a contact to an order it does not have.
        if !seen.numbers.contains(number.as_str()) {
            return HttpResponse::NotFound().json(json!({"error": "unknown order"}));
        }
        !seen.contacts.insert(key.clone())
    };
    let mut line = contact_line(number.as_str(), &key, contact);
    if repeat {
        line["repeat"] = json!(true);
    }
    sim.append(line);
    sim.answer_late().await;
    if repeat {
        HttpResponse::Conflict().json(json!({"status": "recorded"}))
    } else {
        HttpResponse::Created().json(json!({"status": "recorded"}))
    }
}

/// An order's line: the order as received plus its key, and `"repeat": true` for a key already
/// seen. (`order` is an object: its `number` was read.)
fn order_line(mut order: serde_json::Value, key: &str, repeat: bool) -> serde_json::Value {
    if let Some(fields) = order.as_object_mut() {
        fields.insert("idempotency_key".into(), json!(key));
        if repeat {
            fields.insert("repeat".into(), json!(true));
        } else {
            fields.remove("repeat");
        }
    }
    order
}

/// A repeat contact's line: never a top-level `number`, so it cannot pass for an order.
fn contact_line(number: &str, key: &str, contact: serde_json::Value) -> serde_json::Value {
    let mut line = match contact {
        serde_json::Value::Object(fields) => fields,
        serde_json::Value::Null => serde_json::Map::new(),
        other => serde_json::Map::from_iter([("body".to_string(), other)]),
    };
    line.remove("number");
    line.remove("repeat");
    line.insert("contact_for".into(), json!(number));
    line.insert("idempotency_key".into(), json!(key));
    serde_json::Value::Object(line)
}

async fn get_order(number: Path<String>, sim: Data<Sim>) -> HttpResponse {
    let known = sim
        .seen
        .lock()
        .map(|s| s.numbers.contains(number.as_str()))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_lines_are_the_order_with_its_key() {
        let order = json!({"number": "A1", "content": "路灯坏了", "item": {"index": 1}});
        let first = order_line(order.clone(), "A1", false);
        assert_eq!(
            first,
            json!({"number": "A1", "content": "路灯坏了", "item": {"index": 1}, "idempotency_key": "A1"})
        );
        assert!(first.get("repeat").is_none(), "{first}");
        let again = order_line(order, "A1", true);
        assert_eq!(again["number"], "A1");
        assert_eq!(again["repeat"], true);
        assert_eq!(again["idempotency_key"], "A1");
    }

    #[test]
    fn contact_lines_have_no_number() {
        let body = json!({"number": "A1", "kind": "supplement", "content": "还没修"});
        let line = contact_line("A1", "A1-c1", body);
        assert_eq!(
            line,
            json!({"contact_for": "A1", "idempotency_key": "A1-c1", "kind": "supplement", "content": "还没修"})
        );
        let odd = contact_line("A1", "k", json!([1, 2]));
        assert_eq!(
            odd,
            json!({"contact_for": "A1", "idempotency_key": "k", "body": [1, 2]})
        );
        assert!(contact_line("A1", "k", serde_json::Value::Null)
            .get("number")
            .is_none());
    }

    #[test]
    fn seen_keys_come_from_order_lines_only() {
        let file = [
            order_line(json!({"number": "A1"}), "A1", false),
            order_line(json!({"number": "A1"}), "A1", true),
            contact_line("A2", "A2-c1", json!({"number": "A2"})),
            order_line(json!({"number": "B7"}), "kb", false),
        ]
        .iter()
        .map(|l| format!("{l}\n"))
        .collect::<String>()
            + "not json\n";
        let seen = seen_keys(file.as_bytes());
        assert_eq!(seen.orders.len(), 2, "{seen:?}");
        assert_eq!(seen.orders["A1"], "A1");
        assert_eq!(seen.orders["kb"], "B7");
        assert!(seen.numbers.contains("B7") && !seen.numbers.contains("A2"));
        assert!(seen.contacts.contains("A2-c1"), "{seen:?}");
    }
}
