//! The relay: outbox → core dispatch API.
//!
//! One loop per node takes due messages from the store, posts them with their idempotency key
//! and signature, and records each result. Retryable failures (408, 425, 429, 5xx, time-outs,
//! connection errors) are rescheduled with capped exponential backoff and full jitter; other
//! 4xx are parked as dead letters for an operator. A circuit breaker turns an outage into one
//! probe per cool-down instead of a storm. The first attempt, a retry, a replay of a dead letter
//! and the resumption after a restart all go through [`Relay::run`]: there is one delivery path.

use crate::store::{Delivery, OutboxEntry, Store};
use futures_util::stream::{self, StreamExt};
use hmac::{Hmac, Mac};
use rand::Rng;
use sha2::Sha256;
use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{watch, Notify};
// tokio's, not std's: the same monotonic clock, and the one `tokio::time::pause` drives in tests.
use tokio::time::Instant;

/// Most messages taken from the store per round.
pub const BATCH: usize = 256;
/// Pause after a round that was not full (see the end of the loop): at most this much is added
/// to an order's way to dispatch.
const LINGER: Duration = Duration::from_millis(20);

/// Relay settings (from `[dispatch]`). `Debug` shows the URL redacted and not the secret.
#[derive(Debug, Clone)]
pub struct RelayConfig {
    /// Base URL of the dispatch API; empty = hold everything.
    pub url: crate::config::UrlText,
    /// HMAC key; empty = unsigned.
    pub secret: crate::config::Secret,
    /// Per-request time-out.
    pub timeout: Duration,
    /// First backoff step.
    pub backoff_base: Duration,
    /// Backoff cap.
    pub backoff_max: Duration,
    /// Deliveries in flight.
    pub concurrency: usize,
    /// Consecutive failures that open the breaker.
    pub breaker_failures: u32,
    /// How long the breaker stays open.
    pub breaker_cooldown: Duration,
}

/// `sha256=<hex HMAC-SHA256(secret, timestamp + "." + body)>`.
pub fn signature(secret: &str, timestamp: i64, body: &str) -> String {
    // HMAC accepts keys of any length, so this cannot fail; fall back to an empty MAC anyway
    // rather than panic.
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret.as_bytes()) else {
        return String::new();
    };
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body.as_bytes());
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// Shared, observable relay state.
#[derive(Debug)]
pub struct RelayState {
    /// Whether the breaker is open now.
    pub breaker_open: AtomicBool,
    /// Unix milliseconds of the relay loop's last sign of life (for `/readyz`): each turn of
    /// the loop, each finished attempt, and each [`RelayState::heartbeat`] of a long wait.
    alive_at_ms: AtomicI64,
    /// How long without a sign of life means the loop is stuck (see [`stall_limit`]).
    stall_after: Duration,
}

impl Default for RelayState {
    fn default() -> Self {
        RelayState::new(stall_limit(Duration::from_secs(5)))
    }
}

impl RelayState {
    /// A relay state whose loop counts as stuck after `stall_after` without a sign of life.
    pub fn new(stall_after: Duration) -> RelayState {
        RelayState {
            breaker_open: AtomicBool::new(false),
            alive_at_ms: AtomicI64::new(now_ms()),
            stall_after,
        }
    }

    /// Notes a sign of life of the loop.
    fn beat(&self) {
        self.alive_at_ms.store(now_ms(), Ordering::Relaxed);
    }

    /// The longest the loop waits without a sign of life: a third of the stall limit, so a
    /// waiting loop is never mistaken for a stuck one.
    fn heartbeat(&self) -> Duration {
        self.stall_after / 3
    }

    /// Whether the loop has shown a sign of life within the stall limit at `now_ms`. Whether
    /// dispatch answers is not part of it: an outage (breaker open) is what the outbox is for.
    pub fn alive(&self, now_ms: i64) -> bool {
        now_ms - self.alive_at_ms.load(Ordering::Relaxed) < self.stall_after.as_millis() as i64
    }

    /// Milliseconds since the loop's last sign of life at `now_ms` (for the log).
    pub fn silent_for_ms(&self, now_ms: i64) -> i64 {
        now_ms - self.alive_at_ms.load(Ordering::Relaxed)
    }
}

/// How long the relay loop may go without a sign of life before `/readyz` calls it stuck:
/// six dispatch time-outs (30 s at the default 5 s), at least 5 s. Between two signs the loop
/// does one of: a wait of at most a third of this, one attempt (bounded by the time-out) or a
/// store call; only a hung store call or a dead relay thread lasts longer.
pub fn stall_limit(dispatch_timeout: Duration) -> Duration {
    (dispatch_timeout * 6).max(Duration::from_secs(5))
}

/// The delivery loop.
pub struct Relay {
    cfg: RelayConfig,
    store: Arc<dyn Store>,
    client: reqwest::Client,
    /// `cfg.url` parsed once: parsing the whole URL (host and all) for every attempt was a
    /// fifth of the relay's samples under load; each attempt now only sets the path.
    base: Option<reqwest::Url>,
    wake: Arc<Notify>,
    state: Arc<RelayState>,
    /// Outbox ids whose results are being written in the background: the next round skips
    /// them (they are still pending in the store until then).
    recording: Arc<Mutex<HashSet<i64>>>,
}

/// How one attempt ended.
enum Attempt {
    Delivered,
    Retryable(String),
    Permanent(String),
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

impl Relay {
    /// Builds a relay. `wake` is notified by intake so new orders go out at once.
    pub fn new(
        cfg: RelayConfig,
        store: Arc<dyn Store>,
        wake: Arc<Notify>,
        state: Arc<RelayState>,
    ) -> Result<Relay, reqwest::Error> {
        let client = reqwest::Client::builder()
            .timeout(cfg.timeout)
            .connect_timeout(cfg.timeout)
            .pool_max_idle_per_host(cfg.concurrency)
            // Orders go to `dispatch.url` and nowhere else. Followed, a 302 or 303 turns the
            // POST into a GET without the order, and a 200 from the new address counted as
            // delivered; a 307 or 308 sends the order and its signature wherever the answer
            // points. A redirect is answered like an outage instead (see `attempt`).
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        let base = reqwest::Url::parse(&cfg.url).ok();
        Ok(Relay {
            cfg,
            store,
            client,
            base,
            wake,
            state,
            recording: Arc::default(),
        })
    }

    /// Runs until `shutdown` turns true. Messages in flight at shutdown finish their attempt,
    /// and the results being written are written.
    pub async fn run(self, shutdown: watch::Receiver<bool>) {
        let mut writing = None;
        self.rounds(shutdown, &mut writing).await;
        if let Some(w) = writing {
            let _ = w.await;
        }
    }

    /// The delivery loop. A round's results are written in the background, a chunk at a time
    /// (see [`Store::record_chunk`]), while the next round is sent: at most one round is being
    /// written, and `writing` is its task.
    async fn rounds(
        &self,
        mut shutdown: watch::Receiver<bool>,
        writing: &mut Option<tokio::task::JoinHandle<bool>>,
    ) {
        let mut consecutive_failures: u32 = 0;
        // When the open breaker lets a probe through, on the monotonic clock: on the wall
        // clock, a step back while it was open (NTP, an operator) stopped all delivery for as
        // long as the step.
        let mut open_until: Option<Instant> = None;
        let mut cooldown = self.cfg.breaker_cooldown;
        // When to look the outbox over for times written by a clock ahead of ours.
        let mut clock = crate::store::ClockWatch::new();
        loop {
            if *shutdown.borrow() {
                return;
            }
            self.state.beat();
            if self.cfg.url.is_empty() {
                // No dispatch configured: orders stay queued until one is (a restart). Commits'
                // wake-ups are ignored: each cost a round here, ~4 % of a core at 7 k orders/s.
                let idle = Duration::from_secs(5).min(self.state.heartbeat());
                if wait_timeout(&mut shutdown, idle).await {
                    return;
                }
                continue;
            }
            let now = now_ms();
            if clock.due(now) {
                self.reschedule_future(now).await;
            }
            let mut probing = false;
            if let Some(until) = open_until {
                let left = until.saturating_duration_since(Instant::now());
                if !left.is_zero() {
                    // In heartbeats, each a sign of life at the top of the loop: a cool-down
                    // grows to `backoff_max` (5 min), and waited out at once it made /readyz
                    // call the relay stuck on every node during any outage longer than 30 s.
                    if wait_timeout(&mut shutdown, left.min(self.state.heartbeat())).await {
                        return;
                    }
                    continue;
                }
                probing = true;
            }
            let limit = if probing {
                // One message probes the breaker: nothing else may be in the way.
                if let Some(w) = writing.take() {
                    let _ = w.await;
                }
                1
            } else {
                BATCH
            };
            // The previous round's messages are still pending while their results are being
            // written. A store that claims what it hands out (PostgreSQL leases it) leaves
            // them out itself: asking it for more took that many more, and rounds grew by a
            // batch each time until they outlived the lease. Any other store is asked for that
            // many more and they are left out here; there, a message taken and not sent (past
            // `limit`, when some of them were already written) is merely taken next round.
            let skip = if self.store.due_claims() {
                HashSet::new()
            } else {
                self.recording_now()
            };
            let due = match self.store.due(now, limit + skip.len()).await {
                Ok(d) => d
                    .into_iter()
                    .filter(|e| !skip.contains(&e.id))
                    .take(limit)
                    .collect::<Vec<_>>(),
                Err(e) => {
                    tracing::warn!(error = %e, "Relay cannot read the outbox; retrying.");
                    if wait_timeout(&mut shutdown, Duration::from_secs(1)).await {
                        return;
                    }
                    continue;
                }
            };
            if due.is_empty() {
                // Nothing due: sleep until woken by intake, or poll for scheduled retries.
                if wait(&mut shutdown, &self.wake, Duration::from_millis(500)).await {
                    return;
                }
                continue;
            }
            let this = &self;
            let results: Vec<(OutboxEntry, Attempt)> = stream::iter(due)
                .map(|e| async move {
                    let a = this.attempt(&e).await;
                    // A round of a full batch against a dispatch that never answers takes
                    // BATCH / concurrency time-outs (40 s by default); each attempt's end is a
                    // sign of life.
                    this.state.beat();
                    (e, a)
                })
                .buffer_unordered(self.cfg.concurrency)
                .collect()
                .await;
            let mut records = Vec::with_capacity(results.len());
            let mut round_failed = false;
            let mut round_ok = false;
            let now = now_ms();
            for (e, a) in results {
                let d = match a {
                    Attempt::Delivered => {
                        round_ok = true;
                        metrics::counter!("hotline_dispatch_attempts_total", "result" => "delivered")
                            .increment(1);
                        Delivery::Delivered
                    }
                    Attempt::Permanent(error) => {
                        round_ok = true; // the API answered: it is up
                        metrics::counter!("hotline_dispatch_attempts_total", "result" => "dead")
                            .increment(1);
                        tracing::warn!(key = %e.key, %error, "Dispatch refused a message; parked as a dead letter.");
                        Delivery::Dead { error }
                    }
                    Attempt::Retryable(error) => {
                        round_failed = true;
                        metrics::counter!("hotline_dispatch_attempts_total", "result" => "retry")
                            .increment(1);
                        let delay = backoff(
                            self.cfg.backoff_base,
                            self.cfg.backoff_max,
                            e.attempts,
                            &mut rand::thread_rng(),
                        );
                        Delivery::Retry {
                            next_at_ms: now + delay.as_millis() as i64,
                            error,
                        }
                    }
                };
                records.push((e.id, d));
            }
            let records_len = records.len();
            let previous_written = match writing.take() {
                Some(previous) => previous.await.unwrap_or(false),
                None => true,
            };
            *writing = Some(self.write_in_background(records, now / 1000));
            // A store that cannot write: pause before the messages are taken (and sent) again.
            if !previous_written && wait_timeout(&mut shutdown, Duration::from_secs(1)).await {
                return;
            }
            if round_failed && !round_ok {
                consecutive_failures = consecutive_failures.saturating_add(1);
            } else if round_ok {
                consecutive_failures = 0;
            }
            if round_ok {
                if open_until.take().is_some() {
                    tracing::info!("Dispatch answers again; circuit breaker closed.");
                    let _ = self.store.record_breaker(false, now / 1000).await;
                }
                self.state.breaker_open.store(false, Ordering::Relaxed);
                cooldown = self.cfg.breaker_cooldown;
            } else if probing || consecutive_failures >= self.cfg.breaker_failures {
                if open_until.is_none() {
                    tracing::warn!("Dispatch is failing; circuit breaker open.");
                    let _ = self.store.record_breaker(true, now / 1000).await;
                }
                open_until = Some(Instant::now() + cooldown);
                // Each failed probe doubles the cool-down, up to the backoff cap.
                cooldown = (cooldown * 2).min(self.cfg.backoff_max.max(self.cfg.breaker_cooldown));
                self.state.breaker_open.store(true, Ordering::Relaxed);
            }
            metrics::gauge!("hotline_dispatch_breaker_open").set(if open_until.is_some() {
                1.0
            } else {
                0.0
            });
            // Under steady intake every commit wakes the relay, and rounds of a handful of
            // orders each cost a claim and a record per handful. A short pause after a partial
            // round lets the next one gather more; a full round goes on at once (a backlog).
            if records_len < BATCH && wait_timeout(&mut shutdown, LINGER).await {
                return;
            }
        }
    }

    /// The ids whose results are being written now.
    fn recording_now(&self) -> HashSet<i64> {
        self.recording
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Writes a round's results on a task of their own, a chunk at a time, and then lets the
    /// next rounds take those ids again (delivered ones are no longer due by then). The task
    /// says whether every result was written.
    fn write_in_background(
        &self,
        records: Vec<(i64, Delivery)>,
        now: i64,
    ) -> tokio::task::JoinHandle<bool> {
        let ids: Vec<i64> = records.iter().map(|(id, _)| *id).collect();
        self.recording
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend(ids.iter().copied());
        let (store, recording) = (self.store.clone(), self.recording.clone());
        let chunk = store.record_chunk().max(1);
        tokio::spawn(async move {
            let mut written = true;
            let mut rest = records.into_iter().peekable();
            while rest.peek().is_some() {
                let part: Vec<_> = rest.by_ref().take(chunk).collect();
                if let Err(e) = store.record(part, now).await {
                    // The attempts happened but their results are not stored: the messages
                    // stay pending and are sent again; the idempotency key makes that harmless.
                    tracing::error!(error = %e, "Relay cannot record delivery results.");
                    written = false;
                    break;
                }
            }
            let mut set = recording.lock().unwrap_or_else(|e| e.into_inner());
            for id in ids {
                set.remove(&id);
            }
            written
        })
    }

    async fn attempt(&self, e: &OutboxEntry) -> Attempt {
        let ts = chrono::Utc::now().timestamp();
        // The configuration check accepts only http(s) URLs; one that still does not parse
        // fails every attempt as retryable, as a connection error did before.
        let Some(base) = &self.base else {
            return Attempt::Retryable("dispatch.url does not parse".into());
        };
        let url = dispatch_url(base, &e.path);
        let mut req = self
            .client
            .post(url)
            .header("content-type", "application/json")
            .header("idempotency-key", &e.key)
            .header("x-hotline-timestamp", ts.to_string())
            .body(e.body.clone());
        if !self.cfg.secret.is_empty() {
            req = req.header(
                "x-hotline-signature",
                signature(self.cfg.secret.expose(), ts, &e.body),
            );
        }
        match req.send().await {
            Ok(resp) => {
                let s = resp.status();
                if s.is_success() || s.as_u16() == 409 {
                    if s.as_u16() == 409 && e.attempts == 0 {
                        conflict_on_first_attempt(e);
                    }
                    Attempt::Delivered
                } else if s.is_redirection() {
                    // Not a refusal of this order: dispatch has moved, or `dispatch.url` is
                    // wrong. Kept and retried like an outage, so nothing waits for a replay
                    // once the address is fixed.
                    Attempt::Retryable(format!(
                        "HTTP {}: a redirect, not followed (check dispatch.url)",
                        s.as_u16()
                    ))
                } else if matches!(s.as_u16(), 408 | 425 | 429) || s.is_server_error() {
                    // 408 (the server gave up waiting for the request) and 425 (too early to
                    // take it) say nothing against the order, and RFC 9110 lets a client
                    // repeat the request: a time-out like our own, retried and counted
                    // against the breaker like a 5xx, not parked for an operator.
                    Attempt::Retryable(format!("HTTP {}", s.as_u16()))
                } else {
                    let body = resp.text().await.unwrap_or_default();
                    Attempt::Permanent(refusal(s.as_u16(), &body, &e.body))
                }
            }
            Err(err) if err.is_timeout() => Attempt::Retryable("time-out".into()),
            Err(err) => Attempt::Retryable(connection_error(err)),
        }
    }
}

/// Dispatch answered 409 to a message the gateway has no record of sending. Delivered, as the
/// contract says; but only an attempt whose result was lost (sent, then a crash or a lease run
/// out before it was recorded) explains it innocently. Otherwise dispatch holds another order
/// under this key, a reused order number (see `store::order_day`), and the new matter reaches
/// no handler: logged and counted in `hotline_dispatch_first_attempt_conflicts_total`, so an
/// operator can compare dispatch's order with the gateway's.
fn conflict_on_first_attempt(e: &OutboxEntry) {
    metrics::counter!("hotline_dispatch_first_attempt_conflicts_total", "kind" => e.kind.clone())
        .increment(1);
    tracing::warn!(
        key = %e.key,
        kind = %e.kind,
        "Dispatch answered 409 to the first recorded attempt: taken as delivered. Unless an \
         earlier attempt's result was lost, dispatch holds another order under this key."
    );
}

/// The address of `path` (`/work-orders`, `/work-orders/{n}`) at the dispatch API whose base
/// URL is `base`: the path goes after the base's own path, and the base's query stays a query
/// (`https://core/api?key=K` gives `https://core/api/work-orders/1?key=K`). Deliveries and
/// status look-ups both build their addresses here, so they cannot disagree; `set_path` also
/// percent-encodes a `?` or `#` in `path`, which therefore cannot change the query.
pub fn dispatch_url(base: &reqwest::Url, path: &str) -> reqwest::Url {
    let mut url = base.clone();
    url.set_path(&format!("{}{}", base.path().trim_end_matches('/'), path));
    url
}

/// Longest excerpt of a refusal's body that is kept.
const REFUSAL_EXCERPT_CHARS: usize = 200;

/// Longest start of a refusal's body that is masked and scrubbed before the excerpt is cut:
/// [`crate::order_text::mask_order_text`] looks for every run the body shares with the order,
/// which costs time in the length of both, and dispatch's body is read whole. Masking may
/// shorten the text (a quoted address becomes `***`), so this is several times the excerpt.
const REFUSAL_SCAN_CHARS: usize = 1000;

/// Longest word (letters, digits, `@._-+%`) dropped at the end of a body cut at
/// [`REFUSAL_SCAN_CHARS`]: a number or an address cut in half there is not masked whole.
const REFUSAL_CUT_WORD_CHARS: usize = 64;

/// The dead letter's error for a non-retryable answer to the order `sent`: the status and the
/// start of the body. This one string is what the WARN log, the outbox's `last_error` (admin
/// API), the `orders/dead` event and the supervisors' mail show, and dispatch APIs echo the
/// fields they refuse: the personal data the order carried is masked wherever it appears, and
/// any part of it (a road, a building, a name quoted from the matter) and every house number
/// ([`crate::order_text::mask_order_text`], as a status shown to a citizen is), then the body
/// is scrubbed of numbers, addresses and other opaque ids (typed full-width or in Chinese
/// numerals too), before it is cut, so a value cut in half at the limit is not left readable.
/// Until 2026-12-07 only the order's values written whole were masked here, and the review's
/// `建国路88号华贸中心门口…3号楼1502室的欧阳…` passed (F3).
fn refusal(status: u16, body: &str, sent: &str) -> String {
    let mut scanned: String = body.chars().take(REFUSAL_SCAN_CHARS).collect();
    if scanned.len() < body.len() {
        let word = |c: &char| c.is_alphanumeric() || "@._-+%＠．".contains(*c);
        let cut: usize = scanned
            .chars()
            .rev()
            .take(REFUSAL_CUT_WORD_CHARS)
            .take_while(word)
            .map(char::len_utf8)
            .sum();
        scanned.truncate(scanned.len() - cut);
    }
    let masked = crate::order_text::mask_order_text(&scanned, sent);
    let scrubbed = hotline_adapters::mask::scrub_text_and_ids(&masked);
    let excerpt: String = scrubbed.chars().take(REFUSAL_EXCERPT_CHARS).collect();
    format!("HTTP {status}: {excerpt}")
}

/// A connection error without the URL's query, which may hold an API key; reqwest has already
/// moved any `user:password@` into the Authorization header.
fn connection_error(err: reqwest::Error) -> String {
    let url = err.url().map(|u| crate::config::redact_url(u.as_str()));
    let err = err.without_url();
    match url {
        Some(url) => format!("connection: {err} for url ({url})"),
        None => format!("connection: {err}"),
    }
}

impl Relay {
    /// Makes due now what is scheduled further ahead than any retry is (a clock that was ahead
    /// wrote it), saying so: a clock step is worth an operator's look.
    async fn reschedule_future(&self, now: i64) {
        let cap = i64::try_from(self.cfg.backoff_max.as_millis()).unwrap_or(i64::MAX);
        let horizon = now
            .saturating_add(cap)
            .saturating_add(crate::store::CLOCK_SLACK_MS);
        match self.store.reschedule_future(now, horizon).await {
            Ok(0) => {}
            Ok(count) => tracing::warn!(
                count,
                "Outbox messages were scheduled or claimed further ahead than any retry or \
                 lease, by a clock that was ahead of this one (a clock step back); they are due now."
            ),
            // Looked at again at the next check; nothing is lost meanwhile.
            Err(e) => tracing::warn!(error = %e, "Outbox not checked for a clock step back."),
        }
    }
}

/// Full-jitter backoff: uniform in `[base/2, min(max, base * 2^attempts)]`. The floor keeps a
/// flapping API from being hit again at once.
pub fn backoff(base: Duration, max: Duration, attempts: u32, rng: &mut impl Rng) -> Duration {
    let exp = base.saturating_mul(1u32 << attempts.min(20)).min(max);
    let lo = (base / 2).min(exp);
    let lo_ms = lo.as_millis() as u64;
    let hi_ms = (exp.as_millis() as u64).max(lo_ms);
    Duration::from_millis(rng.gen_range(lo_ms..=hi_ms))
}

/// Waits for a wake-up, the time-out or shutdown; true means shut down.
async fn wait(shutdown: &mut watch::Receiver<bool>, wake: &Notify, d: Duration) -> bool {
    tokio::select! {
        _ = shutdown.changed() => true,
        _ = wake.notified() => false,
        _ = tokio::time::sleep(d) => false,
    }
}

async fn wait_timeout(shutdown: &mut watch::Receiver<bool>, d: Duration) -> bool {
    tokio::select! {
        _ = shutdown.changed() => true,
        _ = tokio::time::sleep(d) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{
        CallerRecord, EventRow, Intake, IntakeResult, OpenOrder, OrderState, OutboxStats,
        RedirectRecord, StoreError, Suspension, Warning,
    };
    use hotline_adapters::Outcome;
    use rand::SeedableRng;

    #[test]
    fn signature_matches_a_known_hmac() {
        // python3: hmac.new(b"key", b'1700000000.{"a":1}', hashlib.sha256).hexdigest()
        assert_eq!(
            signature("key", 1_700_000_000, r#"{"a":1}"#),
            "sha256=a438e398bfafc57e4396bb7fc2304422f0f768e965d073ca313cb52e22e6ad03"
        );
    }

    #[test]
    fn a_refusal_keeps_the_status_and_masks_what_dispatch_echoes() {
        let e = refusal(
            422,
            r#"{"error":"invalid contact","phone":"13912345678","email":"alice@example.cn"}"#,
            "{}",
        );
        assert!(e.starts_with("HTTP 422: "), "{e}");
        assert!(
            e.contains("139****5678") && e.contains("a***@example.cn"),
            "{e}"
        );
        assert!(!e.contains("13912345678") && !e.contains("alice"), "{e}");
        // Scrubbed before it is cut: a number at the limit is not left half readable. (A space
        // before it: glued to the x's, the whole would be masked as one opaque id.)
        let e = refusal(400, &format!("{} 13912345678", "x".repeat(194)), "{}");
        assert!(!e.contains("13912"), "{e}");
        assert_eq!(
            e.chars().count(),
            "HTTP 400: ".len() + REFUSAL_EXCERPT_CHARS
        );
    }

    #[test]
    fn a_refusal_masks_the_submitters_identity_that_dispatch_echoes() {
        let sent = |identity: &str| format!(r#"{{"submitter":{{"identity":"{identity}"}}}}"#);
        for (identity, raw, masked) in [
            (
                "wechat:oUpF8uMuAJO_M2pxb1Q9zNjWeS6o",
                "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o",
                "oUpF***6o",
            ),
            // Without a digit it does not look like an id, but it is the order's identity.
            (
                "wechat:oUpFuMuAJOMpxbQzNjWeSo",
                "oUpFuMuAJOMpxbQzNjWeSo",
                "oUpF***So",
            ),
            ("weibo:5012345678", "5012345678", "5012***78"),
            ("ip:203.0.113.9", "203.0.113.9", "203.0.113.*"),
        ] {
            let body = format!(r#"{{"error":"submitter {identity} is blocked ({raw})"}}"#);
            let e = refusal(422, &body, &sent(identity));
            assert!(e.starts_with("HTTP 422: "), "{e}");
            assert!(!e.contains(raw), "{identity}: {e}");
            assert!(e.contains(masked), "{identity}: {e}");
        }
        // An openid of another identity than the order's is masked too.
        let e = refusal(
            422,
            r#"{"error":"duplicate of wechat:oAbC1dEfG2hIjK3lMnO4pQrS5tUv"}"#,
            &sent("phone:13912345678"),
        );
        assert!(e.contains("wechat:oAbC***Uv"), "{e}");
    }

    #[test]
    fn a_refusal_masks_the_name_phone_email_and_address_the_order_carried() {
        let sent = r#"{"confidential":true,"submitter":{"identity":"phone:13912345678",
            "name":"张三丰","phone":"13912345678","email":"zsf@wudang.cn"},
            "location":{"address":"和平路12号3单元501"}}"#;
        let e = refusal(
            422,
            r#"{"error":"submitter.name 张三丰 does not match the resident register for 和平路12号3单元501 (zsf@wudang.cn)"}"#,
            sent,
        );
        assert!(e.starts_with("HTTP 422: "), "{e}");
        for raw in ["张三丰", "和平路", "3单元501", "zsf@"] {
            assert!(!e.contains(raw), "{raw}: {e}");
        }
        assert!(e.contains("张**") && e.contains("z***@wudang.cn"), "{e}");
        // A one-character name is not masked everywhere it stands.
        let e = refusal(422, "张 is not valid", r#"{"submitter":{"name":"张"}}"#);
        assert!(e.contains("张 is not valid"), "{e}");
    }

    /// The review's dead letters (2026-12-07): dispatch echoed the order's text, where the
    /// citizen had typed a number full-width or with dots and an e-mail with a full-width `＠`;
    /// the log, `last_error`, `orders/dead` and the mail showed them whole.
    #[test]
    fn a_refusal_masks_numbers_and_addresses_typed_full_width_or_dotted() {
        let e = refusal(
            422,
            r#"{"error":"内容含有联系方式，不予受理: 我的电话１３５１２３４５６７８，邮箱 dl.user＠qq.com，联系 135.1234.0002 或 135 1234 0003"}"#,
            r#"{"number":"2026120707784681","submitter":{"identity":"phone:13512340004","phone":"13512340004"}}"#,
        );
        for raw in ["１２３４５６７８", "dl.user", "135.1234.0002", "1234 0003"] {
            assert!(!e.contains(raw), "{raw}: {e}");
        }
        assert!(
            e.contains("１３５****５６７８")
                && e.contains("d***@qq.com")
                && e.contains("135.****.0002"),
            "{e}"
        );
    }

    /// The privacy review's F3 (2026-12-07): dispatch echoed the matter, which quotes the
    /// address in the citizen's own words, and the parts of the address and the name that were
    /// not the whole value passed into the WARN log, `last_error`, `orders/dead` and the mail.
    #[test]
    fn a_refusal_masks_any_part_of_the_address_name_or_matter_it_quotes() {
        let sent = r#"{"content":"建国路88号华贸中心门口路灯坏了，3号楼1502室的欧阳也反映过",
            "submitter":{"identity":"phone:13912345670","name":"欧阳娜娜","phone":"13912345670"},
            "location":{"address":"朝阳区建国路88号华贸中心3号楼1502室"}}"#;
        let e = refusal(
            400,
            "rejected: name=欧阳娜娜 addr=朝阳区建国路88号华贸中心3号楼1502室 content=建国路88号华贸中心门口路灯坏了，3号楼1502室的欧阳也反映过 idno=110101199003071234 phone=13912345670",
            sent,
        );
        assert!(
            e.starts_with("HTTP 400: rejected: name=欧*** addr=*** content=***"),
            "{e}"
        );
        for raw in [
            "建国路",
            "华贸",
            "1502",
            "欧阳也",
            "88",
            "娜娜",
            "路灯坏了",
            "199003",
        ] {
            assert!(!e.contains(raw), "{raw}: {e}");
        }
        // Dispatch's own words, quoting the address in part: the district stays readable.
        let e = refusal(422, "地址不在本辖区：华贸中心3号楼（朝阳区），请核实", sent);
        assert_eq!(e, "HTTP 422: 地址不在本辖区：***（朝阳区），请核实");
        // The review's English order (cfg/s5): `at Jianguo Road 88` was in the clear.
        let sent = r#"{"content":"Mr Ouyang Nana at Jianguo Road 88 says the lamp is out",
            "submitter":{"identity":"phone:13912345679","name":"Ouyang Nana"},
            "location":{"address":"Jianguo Road 88, Flat 1502"}}"#;
        let e = refusal(
            400,
            "rejected: name=Ouyang Nana content=Mr Ouyang Nana at Jianguo Road 88 says",
            sent,
        );
        for raw in ["Jianguo", "Ouyang", "Nana", "88"] {
            assert!(!e.contains(raw), "{raw}: {e}");
        }
    }

    /// A long body is masked from its start only ([`REFUSAL_SCAN_CHARS`]), and a word cut in
    /// half there is dropped: masking shortened what came before it, so the cut shows in the
    /// excerpt, and half a number would not be masked.
    #[test]
    fn a_long_refusal_drops_the_word_its_scan_cuts() {
        let address = "朝阳区建国路88号华贸中心3号楼1502室";
        let sent = format!(r#"{{"location":{{"address":"{address}"}}}}"#);
        let mut body = format!("{address} ").repeat(45);
        body.push_str("电话号码是：");
        assert_eq!(body.chars().count(), 996);
        body.push_str("13912345678 and more");
        body.push_str(&"x".repeat(5000));
        let e = refusal(400, &body, &sent);
        assert!(e.ends_with("*** 电话号码是："), "{e}");
        assert!(!e.contains("1391"), "{e}");
    }

    /// Reads one request, head and body, so the client does not see a reset mid-request;
    /// returns its request line.
    fn read_request(sock: &std::net::TcpStream) -> String {
        use std::io::{BufRead, BufReader, Read};
        let mut reader = BufReader::new(sock);
        let mut line = String::new();
        let _ = reader.read_line(&mut line);
        let mut len = 0;
        loop {
            let mut h = String::new();
            if reader.read_line(&mut h).unwrap_or(0) == 0 || h == "\r\n" {
                break;
            }
            if let Some(v) = h.to_ascii_lowercase().strip_prefix("content-length:") {
                len = v.trim().parse().unwrap_or(0);
            }
        }
        let _ = reader.take(len).read_to_end(&mut Vec::new());
        line.trim_end().to_string()
    }

    /// Answers one HTTP request on a local port with `status` and `body`; the base URL.
    fn answer_once(status: &'static str, body: &'static str) -> String {
        use std::io::Write;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        std::thread::spawn(move || {
            let Ok((mut sock, _)) = listener.accept() else {
                return;
            };
            read_request(&sock);
            let _ = write!(
                sock,
                "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
        });
        url
    }

    /// A dispatch URL that redirects: a POST gets `status` with `Location: /moved` on the same
    /// server, and whatever comes to `/moved` gets 200. The receiver yields the request line of
    /// each request the server saw.
    fn redirecting(status: &'static str) -> (String, std::sync::mpsc::Receiver<String>) {
        use std::io::Write;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let (seen, requests) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for sock in listener.incoming().take(2) {
                let Ok(mut sock) = sock else { return };
                let line = read_request(&sock);
                let answer = if line.starts_with("POST ") {
                    format!("HTTP/1.1 {status}\r\nlocation: /moved\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
                } else {
                    "HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\n{}"
                        .to_string()
                };
                let _ = seen.send(line);
                let _ = sock.write_all(answer.as_bytes());
            }
        });
        (url, requests)
    }

    fn relay_to(url: String) -> Relay {
        let cfg = RelayConfig {
            url: url.into(),
            secret: "s".into(),
            timeout: Duration::from_secs(5),
            backoff_base: Duration::from_secs(1),
            backoff_max: Duration::from_secs(60),
            concurrency: 1,
            breaker_failures: 5,
            breaker_cooldown: Duration::from_secs(1),
        };
        let store = Arc::new(crate::store::broken::BrokenStore::new("unused"));
        Relay::new(cfg, store, Arc::default(), Arc::default()).unwrap()
    }

    fn entry() -> OutboxEntry {
        OutboxEntry {
            id: 1,
            kind: "order".into(),
            key: "2026112901000123".into(),
            path: "/work-orders".into(),
            body: r#"{"phone":"13912345678"}"#.into(),
            attempts: 0,
        }
    }

    #[tokio::test]
    async fn a_dead_letter_error_never_carries_the_echoed_phone_or_email() {
        let url = answer_once(
            "400 Bad Request",
            r#"{"error":"phone 13912345678 is not allowed for alice@example.cn"}"#,
        );
        match relay_to(url).attempt(&entry()).await {
            Attempt::Permanent(e) => {
                assert!(e.starts_with("HTTP 400: "), "{e}");
                assert!(
                    e.contains("139****5678") && e.contains("a***@example.cn"),
                    "{e}"
                );
                assert!(!e.contains("13912345678") && !e.contains("alice"), "{e}");
            }
            Attempt::Delivered | Attempt::Retryable(_) => panic!("not a permanent refusal"),
        }
    }

    #[test]
    fn a_409_to_a_first_attempt_is_delivered_and_counted() {
        let recorder = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
        let handle = recorder.handle();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let conflict = |attempts| {
            let url = answer_once("409 Conflict", "{}");
            let e = OutboxEntry {
                attempts,
                ..entry()
            };
            metrics::with_local_recorder(&recorder, || rt.block_on(relay_to(url).attempt(&e)))
        };
        let counted = "hotline_dispatch_first_attempt_conflicts_total{kind=\"order\"} 1";
        // After an attempt whose answer was lost (a time-out), 409 is what dispatch should say.
        assert!(matches!(conflict(2), Attempt::Delivered));
        assert!(!handle.render().contains(counted), "{}", handle.render());
        // To the first attempt: still delivered (the contract), but counted.
        assert!(matches!(conflict(0), Attempt::Delivered));
        assert!(handle.render().contains(counted), "{}", handle.render());
    }

    #[tokio::test]
    async fn a_408_or_425_from_dispatch_is_retried_not_parked() {
        // Each says "not now", nothing about the order: parked as dead letters, orders waited
        // for an operator's replay after a slow moment at dispatch.
        for status in ["408 Request Timeout", "425 Too Early"] {
            let url = answer_once(status, r#"{"error":"try again"}"#);
            match relay_to(url).attempt(&entry()).await {
                Attempt::Retryable(e) => assert_eq!(e, format!("HTTP {}", &status[..3])),
                Attempt::Delivered => panic!("{status}: counted as delivered"),
                Attempt::Permanent(e) => panic!("{status}: parked as a dead letter: {e}"),
            }
        }
    }

    #[tokio::test]
    async fn a_redirect_is_not_followed_and_the_order_stays_to_be_retried() {
        // Followed, a 302 or 303 turns the POST into a GET without the order, and the new
        // address's 200 would count as delivered; a 307 would send the order and its signature
        // wherever dispatch pointed. Neither happens: the order stays pending, retried.
        for status in ["302 Found", "303 See Other", "307 Temporary Redirect"] {
            let (url, requests) = redirecting(status);
            match relay_to(url).attempt(&entry()).await {
                Attempt::Retryable(e) => {
                    let code = &status[..3];
                    assert!(e.starts_with(&format!("HTTP {code}")), "{e}");
                    assert!(e.contains("dispatch.url"), "{e}");
                }
                Attempt::Delivered => panic!("{status}: a redirect counted as delivered"),
                Attempt::Permanent(e) => panic!("{status}: parked as a dead letter: {e}"),
            }
            let seen: Vec<String> = requests.try_iter().collect();
            assert_eq!(seen, ["POST /work-orders HTTP/1.1"], "{status}");
        }
    }

    #[tokio::test]
    async fn a_connection_error_does_not_show_the_urls_query_or_password() {
        // A port nobody listens on: bind, note it, close.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let url = format!("http://user:pa55word@127.0.0.1:{port}/api?key=k3y-s3cret");
        match relay_to(url).attempt(&entry()).await {
            Attempt::Retryable(e) => {
                assert!(e.starts_with("connection: "), "{e}");
                assert!(e.contains(&format!("127.0.0.1:{port}")), "{e}");
                assert!(!e.contains("k3y-s3cret") && !e.contains("pa55word"), "{e}");
            }
            Attempt::Delivered | Attempt::Permanent(_) => panic!("not a connection error"),
        }
    }

    #[test]
    fn relay_config_debug_hides_the_secret_and_the_urls_credentials() {
        let relay = relay_to("https://user:pa55word@dispatch.example/api?key=k3y".into());
        let shown = format!("{:?}", relay.cfg);
        assert!(shown.contains("dispatch.example"), "{shown}");
        for secret in ["pa55word", "k3y", "secret: \"s\""] {
            assert!(!shown.contains(secret), "{secret} in {shown}");
        }
    }

    /// A store with one message always due, which notes how many messages each round asks
    /// for and each breaker change; nothing else is needed by the relay loop.
    #[derive(Default)]
    struct AlwaysDue {
        asked: Mutex<Vec<usize>>,
        breaker: Mutex<Vec<bool>>,
        asked_again: Notify,
    }

    impl AlwaysDue {
        fn asked(&self) -> Vec<usize> {
            self.asked.lock().unwrap().clone()
        }
    }

    fn unused<T>() -> Result<T, crate::store::StoreError> {
        Err(crate::store::StoreError::Unavailable(
            "not used by the relay".into(),
        ))
    }

    #[async_trait::async_trait]
    impl Store for AlwaysDue {
        async fn due(&self, _: i64, limit: usize) -> Result<Vec<OutboxEntry>, StoreError> {
            self.asked.lock().unwrap().push(limit);
            self.asked_again.notify_one();
            Ok(vec![entry()])
        }
        async fn record(&self, _: Vec<(i64, Delivery)>, _: i64) -> Result<(), StoreError> {
            Ok(())
        }
        async fn record_breaker(&self, open: bool, _: i64) -> Result<(), StoreError> {
            self.breaker.lock().unwrap().push(open);
            Ok(())
        }
        async fn set_allowed(&self, _: String, _: bool, _: i64) -> Result<(), StoreError> {
            unused()
        }
        async fn allowed(&self) -> Result<Vec<String>, StoreError> {
            unused()
        }
        fn depth(&self) -> u64 {
            1
        }
        async fn commit_intake(&self, _: Intake) -> Result<IntakeResult, StoreError> {
            unused()
        }
        async fn remember(
            &self,
            _: String,
            _: Outcome,
            _: i64,
        ) -> Result<Option<Outcome>, StoreError> {
            unused()
        }
        async fn recall(&self, _: String, _: i64) -> Result<Option<Outcome>, StoreError> {
            unused()
        }
        async fn record_redirect(&self, _: RedirectRecord) -> Result<(), StoreError> {
            unused()
        }
        async fn enqueue_contact(
            &self,
            _: String,
            _: String,
            _: serde_json::Value,
            _: Option<serde_json::Value>,
            _: i64,
        ) -> Result<(), StoreError> {
            unused()
        }
        async fn outbox_stats(&self, _: i64) -> Result<OutboxStats, StoreError> {
            unused()
        }
        async fn retry_dead(&self, _: String, _: i64) -> Result<bool, StoreError> {
            unused()
        }
        async fn dead_letters(
            &self,
            _: usize,
            _: Option<String>,
        ) -> Result<Vec<crate::store::DeadLetter>, StoreError> {
            unused()
        }
        async fn retry_dead_matching(
            &self,
            _: crate::store::DeadFilter,
            _: i64,
        ) -> Result<u64, StoreError> {
            unused()
        }
        async fn order_state(&self, _: String) -> Result<Option<OrderState>, StoreError> {
            unused()
        }
        async fn recent_orders_of(
            &self,
            _: String,
            _: String,
            _: i64,
        ) -> Result<Vec<OpenOrder>, StoreError> {
            unused()
        }
        async fn record_warning(&self, _: String, _: Warning) -> Result<(), StoreError> {
            unused()
        }
        async fn warnings_since(
            &self,
            _: String,
            _: i64,
            _: crate::store::Scope,
        ) -> Result<u32, StoreError> {
            unused()
        }
        async fn record_suspension(&self, _: Suspension) -> Result<Option<Suspension>, StoreError> {
            unused()
        }
        async fn suspension_count(
            &self,
            _: String,
            _: crate::store::Scope,
        ) -> Result<u32, StoreError> {
            unused()
        }
        async fn lift_suspension(&self, _: String, _: i64) -> Result<bool, StoreError> {
            unused()
        }
        async fn active_suspensions(&self, _: i64) -> Result<Vec<Suspension>, StoreError> {
            unused()
        }
        async fn caller_record(&self, _: String) -> Result<CallerRecord, StoreError> {
            unused()
        }
        async fn record_link(&self, _: String, _: String) -> Result<(), StoreError> {
            unused()
        }
        async fn links(&self) -> Result<Vec<(String, String)>, StoreError> {
            unused()
        }
        async fn resets_since(&self, _: i64) -> Result<Vec<(String, i64)>, StoreError> {
            unused()
        }
        async fn due_events(
            &self,
            _: &'static str,
            _: crate::store::Topics,
            _: i64,
            _: usize,
        ) -> Result<Vec<EventRow>, StoreError> {
            unused()
        }
        async fn ack_events(&self, _: Vec<i64>) -> Result<(), StoreError> {
            unused()
        }
        async fn retry_event(&self, _: i64, _: i64, _: Option<String>) -> Result<(), StoreError> {
            unused()
        }
        async fn defer_event(&self, _: i64, _: i64) -> Result<(), StoreError> {
            unused()
        }
        async fn trim_events(&self, _: &'static str, _: u64) -> Result<u64, StoreError> {
            unused()
        }
        async fn probe_write(&self) -> Result<(), StoreError> {
            unused()
        }
    }

    #[tokio::test(start_paused = true)]
    async fn the_breakers_cool_down_runs_on_the_monotonic_clock() {
        // With tokio's clock paused, it jumps to the next timer whenever every task waits,
        // while the wall clock stands still: to a cool-down counted on the wall clock, that is
        // a clock stepped back by as much as tokio's went forward, and no probe ever came.
        let cooldown = Duration::from_secs(3600);
        let cfg = RelayConfig {
            // Every attempt fails at once, as retryable, without the network.
            url: "not a URL".into(),
            secret: "".into(),
            timeout: Duration::from_secs(5),
            backoff_base: Duration::from_secs(1),
            backoff_max: cooldown,
            concurrency: 1,
            breaker_failures: 1,
            breaker_cooldown: cooldown,
        };
        let store = Arc::new(AlwaysDue::default());
        let relay = Relay::new(cfg, store.clone(), Arc::default(), Arc::default()).unwrap();
        let (stop, shutdown) = watch::channel(false);
        let running = tokio::spawn(relay.run(shutdown));
        // The first round fails and opens the breaker; once the cool-down has passed, a probe
        // round asks for one message. Bounded by two cool-downs of tokio's clock, which the
        // paused runtime reaches at once.
        let probe = async {
            while !store.asked().contains(&1) {
                store.asked_again.notified().await;
            }
        };
        let probed = tokio::time::timeout(2 * cooldown, probe).await;
        assert!(
            probed.is_ok(),
            "no probe: rounds asked for {:?}",
            store.asked()
        );
        assert_eq!(store.asked()[..2], [BATCH, 1]);
        assert_eq!(*store.breaker.lock().unwrap(), [true]);
        stop.send(true).unwrap();
        running.await.unwrap();
    }

    #[test]
    fn dispatch_urls_keep_the_base_path_and_query() {
        let url = |base: &str, path: &str| {
            dispatch_url(&reqwest::Url::parse(base).unwrap(), path).to_string()
        };
        assert_eq!(
            url(
                "https://core.example/api?key=K",
                "/work-orders/2026112901000123"
            ),
            "https://core.example/api/work-orders/2026112901000123?key=K"
        );
        assert_eq!(
            url("http://127.0.0.1:9090/?k=v", "/work-orders"),
            "http://127.0.0.1:9090/work-orders?k=v"
        );
        assert_eq!(
            url("http://127.0.0.1:9090", "/work-orders/1/contacts"),
            "http://127.0.0.1:9090/work-orders/1/contacts"
        );
        // A path cannot become a query.
        assert_eq!(
            url("http://h/api/?key=K", "/work-orders/1?key=evil"),
            "http://h/api/work-orders/1%3Fkey=evil?key=K"
        );
    }

    #[test]
    fn backoff_grows_is_capped_and_never_zero() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let base = Duration::from_secs(1);
        let max = Duration::from_secs(60);
        for attempts in 0..30 {
            for _ in 0..50 {
                let d = backoff(base, max, attempts, &mut rng);
                assert!(d >= Duration::from_millis(500), "{d:?}");
                assert!(d <= max, "{d:?}");
                let cap = base.saturating_mul(1 << attempts.min(20)).min(max);
                assert!(d <= cap, "attempt {attempts}: {d:?} > {cap:?}");
            }
        }
    }
}
