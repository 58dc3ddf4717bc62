//! # hotline-gateway
//!
//! The one front door of a city's 12345 government-service hotline. Citizens reach the hotline
//! by phone, web form, WeChat and Weibo; every channel's protocol ends here, every submission
//! becomes normalised work orders (工单), the intake rules of the hotline measures are applied in
//! one place, and orders are handed to the core dispatch system from a durable outbox.
//!
//! ## The data path
//! 1. [`http`] reads a bounded body and headers; a channel adapter in `hotline-adapters`
//!    (pure: no I/O, no clock) verifies, decrypts and parses it into `Submission`s.
//! 2. [`pipeline`] decides, always in this order: emergency redirect > suspended > throttled >
//!    duplicate > accept (split into orders).
//! 3. [`store`] commits orders and their outbox rows durably (group commit). Only then is the
//!    reply rendered: **an acknowledgement is a promise**.
//! 4. [`relay`] delivers committed orders to the dispatch API in the background, with retries,
//!    a circuit breaker and dead letters.
//!
//! ## Code map
//! - `main.rs`: CLI only. [`run`] starts everything on a bound listener (tests bind port 0).
//! - [`config`]: typed config, every problem reported at once, secrets redacted.
//! - [`http`]: routes, the error table ([`http::error`]), handlers per channel.
//! - [`pipeline`]: emergency, category, split, guidance and similarity rules (pure), plus the
//!   nuisance ladder ([`pipeline::nuisance`]).
//! - [`store`]: the [`store::Store`] trait and the embedded SQLite engine.
//! - [`relay`]: outbox → dispatch API.
//! - [`sinks`]: MQTT events and mail, drained from the event outbox the store fills in the same
//!   transaction as each change.
//! - [`sim`]: `dispatch-sim`, a reference dispatch API for demos and tests.
//! - [`messages`]: the sentences citizens read.
//!
//! ## Invariants
//! - `hotline-adapters` depends on no runtime, network, clock or randomness.
//! - A 2xx acknowledgement of a submission is sent only after its orders are durable.
//! - Emergencies are answered even when the caller is suspended, over quota, or the store is down.
//! - Personal data is masked in logs, metrics and events; secrets are never printed.
//! - Retry, replay and restart use the same delivery path as the first attempt.

pub mod background;
pub mod config;
pub mod http;
pub mod journal;
pub mod messages;
pub mod openapi;
pub mod order_text;
pub mod pipeline;
pub mod relay;
pub mod retention;
pub mod sim;
pub mod sinks;
pub mod store;

use config::Config;
use pipeline::{nuisance, Pipeline, PipelineConfig, RuleSet};
use relay::{Relay, RelayConfig, RelayState};
use std::net::TcpListener;
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use store::{Store, StoreError};

/// Why the gateway could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The store could not be opened.
    #[error(transparent)]
    Store(#[from] store::StoreError),
    /// Networking setup failed.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// HTTP client setup failed.
    #[error("http client: {0}")]
    Client(#[from] reqwest::Error),
    /// Another process serves from the same SQLite `storage.path`.
    #[error(transparent)]
    StorageInUse(#[from] store::node_lock::StorageLockError),
}

/// Libraries whose debug output carries the data they handle: tokio-postgres logs every
/// statement's parameters (phone numbers, order texts), lettre the mail it sends, rumqttc and
/// redis their payloads. They stay at `info` whatever `RUST_LOG` asks for, so turning on debug
/// logging to chase a problem never writes personal data to the log: [`QuietLibraries`] holds
/// them there in front of the `RUST_LOG` filter.
const QUIET_LIBRARIES: &[&str] = &["tokio_postgres", "postgres", "lettre", "rumqttc", "redis"];

/// A filter layer in front of the `RUST_LOG` one that drops `debug` and `trace` events of the
/// [`QUIET_LIBRARIES`] (and of their modules). Capping them with `tokio_postgres=info` among
/// `RUST_LOG`'s directives was not enough: a narrower directive wins in an `EnvFilter`, so
/// `RUST_LOG=info,tokio_postgres::query=debug` logged every statement's parameters, the whole
/// work order among them (until 2026-12-07).
pub struct QuietLibraries;

impl QuietLibraries {
    fn allows(meta: &tracing::Metadata<'_>) -> bool {
        *meta.level() <= tracing::Level::INFO
            || !QUIET_LIBRARIES.iter().any(|lib| {
                meta.target()
                    .strip_prefix(lib)
                    .is_some_and(|rest| rest.is_empty() || rest.starts_with("::"))
            })
    }
}

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for QuietLibraries {
    fn register_callsite(
        &self,
        meta: &'static tracing::Metadata<'static>,
    ) -> tracing::subscriber::Interest {
        if Self::allows(meta) {
            tracing::subscriber::Interest::always()
        } else {
            tracing::subscriber::Interest::never()
        }
    }

    fn enabled(
        &self,
        meta: &tracing::Metadata<'_>,
        _: tracing_subscriber::layer::Context<'_, S>,
    ) -> bool {
        Self::allows(meta)
    }
}

/// The process's log subscriber: [`QuietLibraries`] in front of [`log_filter`], then the
/// formatter (`json` or text) writing to `writer`, without [`QuietClientErrors`]' lines.
pub fn log_subscriber<W>(
    rust_log: Option<&str>,
    default: &str,
    json: bool,
    writer: W,
) -> Box<dyn tracing::Subscriber + Send + Sync>
where
    W: for<'w> tracing_subscriber::fmt::MakeWriter<'w> + Send + Sync + 'static,
{
    use tracing_subscriber::layer::SubscriberExt;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(log_filter(rust_log, default))
        .with_writer(writer);
    if json {
        Box::new(
            builder
                .json()
                .finish()
                .with(QuietLibraries)
                .with(QuietClientErrors),
        )
    } else {
        Box::new(
            builder
                .finish()
                .with(QuietLibraries)
                .with(QuietClientErrors),
        )
    }
}

/// The log filter: `RUST_LOG` (or `default`), with `QUIET_LIBRARIES` capped at `info` (which
/// [`QuietLibraries`] enforces whatever else `RUST_LOG` says).
pub fn log_filter(rust_log: Option<&str>, default: &str) -> tracing_subscriber::EnvFilter {
    let base = rust_log
        .and_then(|s| tracing_subscriber::EnvFilter::try_new(s).ok())
        .unwrap_or_else(|| tracing_subscriber::EnvFilter::new(default));
    QUIET_LIBRARIES
        .iter()
        .fold(base, |f, lib| match format!("{lib}=info").parse() {
            Ok(d) => f.add_directive(d),
            Err(_) => f,
        })
}

/// Keeps actix-http's `stream error: request parse error: …` lines (a request head that is
/// no HTTP: a negative or doubled Content-Length, a 100 kB path, `Transfer-Encoding: gzip,
/// chunked`) out of the log: actix answers them 400 and logs each at ERROR, so anyone could
/// write ERROR lines into the gateway's log at will (until 2026-12-07). They are counted in
/// `hotline_http_malformed_requests_total` instead. Every other line of actix-http, its I/O
/// errors included, is logged as before.
pub struct QuietClientErrors;

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for QuietClientErrors {
    fn event_enabled(
        &self,
        event: &tracing::Event<'_>,
        _: tracing_subscriber::layer::Context<'_, S>,
    ) -> bool {
        if event.metadata().target() != "actix_http::h1::dispatcher" {
            return true;
        }
        struct Message(bool);
        impl tracing::field::Visit for Message {
            fn record_debug(&mut self, f: &tracing::field::Field, v: &dyn std::fmt::Debug) {
                if f.name() == "message" {
                    self.0 = format!("{v:?}").starts_with("stream error: request parse error");
                }
            }
        }
        let mut parse_error = Message(false);
        event.record(&mut parse_error);
        if parse_error.0 {
            metrics::counter!("hotline_http_malformed_requests_total").increment(1);
        }
        !parse_error.0
    }
}

static METRICS: OnceLock<metrics_exporter_prometheus::PrometheusHandle> = OnceLock::new();

/// Installs the Prometheus recorder once per process and returns its handle.
pub fn metrics_handle() -> metrics_exporter_prometheus::PrometheusHandle {
    METRICS
        .get_or_init(|| {
            let recorder = metrics_exporter_prometheus::PrometheusBuilder::new()
                .set_buckets(&[
                    0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                ])
                .map(|b| b.build_recorder())
                .unwrap_or_else(|_| {
                    metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder()
                });
            let handle = recorder.handle();
            // Fails only if another recorder is installed; then ours stays empty, which is
            // harmless (tests in one process).
            let _ = metrics::set_global_recorder(recorder);
            handle
        })
        .clone()
}

/// Opens the PostgreSQL store (one attempt).
async fn open_pg(
    cfg: &Config,
    sinks: store::Sinks,
) -> Result<store::postgres::PgStore, StoreError> {
    store::postgres::PgStore::open(
        cfg.storage.url.expose(),
        cfg.server.node_id,
        sinks,
        cfg.derived.lease,
        cfg.storage.ca_file.as_deref(),
    )
    .await
}

/// Opens PostgreSQL again and again until it opens (the whole site came back after a power
/// cut and the database is still starting, a standby not yet promoted, connections refused
/// for a while), then serves from it through `late` and says so on `opened`. Until 2026-12-07
/// a node gave up after 30 s and served emergencies only until it was restarted.
async fn open_later(
    cfg: Arc<Config>,
    sinks: store::Sinks,
    late: Arc<store::late::LateStore>,
    opened: tokio::sync::oneshot::Sender<()>,
) {
    let mut wait = Duration::from_millis(200);
    // The last error logged and when: an outage of hours must not flood the log.
    let mut said: Option<(String, std::time::Instant)> = None;
    loop {
        tokio::time::sleep(wait).await;
        wait = (wait * 2).min(Duration::from_secs(5));
        match open_pg(&cfg, sinks).await {
            Ok(s) => {
                late.open(Arc::new(s));
                tracing::warn!("PostgreSQL is reachable: the store is open, intake resumes.");
                let _ = opened.send(());
                return;
            }
            Err(e) => {
                let text = e.to_string();
                if said
                    .as_ref()
                    .is_none_or(|(t, at)| *t != text || at.elapsed() >= Duration::from_secs(60))
                {
                    tracing::warn!(
                        error = %text,
                        "PostgreSQL not reachable yet; retrying (logged again when the error \
                         changes, or after a minute)."
                    );
                    said = Some((text, std::time::Instant::now()));
                }
            }
        }
    }
}

/// Runs the MQTT sink once this node holds its `server.node_id` (see [`store::node_lock`]):
/// the id is the MQTT client id, and two clients with one id knock each other off the broker
/// several times a second. Stops it when another node turns out to hold the id (this node's
/// session ended and the other took it), and starts it again once this node holds it. A
/// claim merely unknown (the database is away) leaves it running: events come from the store,
/// and a database restart must not make every node's status flap.
async fn mqtt_while_held(
    settings: sinks::mqtt::MqttSettings,
    store: Arc<dyn Store>,
    mut stop: tokio::sync::watch::Receiver<bool>,
    mut claim: store::node_lock::NodeClaim,
) {
    loop {
        tokio::select! {
            _ = claim.until(store::node_lock::Claim::Held, true) => {}
            _ = stop.wait_for(|s| *s) => return,
        }
        let (halt, halted) = tokio::sync::watch::channel(false);
        let sink = sinks::mqtt::run(settings.clone(), store.clone(), halted);
        tokio::pin!(sink);
        let stopping = tokio::select! {
            _ = &mut sink => return,
            _ = stop.wait_for(|s| *s) => true,
            _ = claim.until(store::node_lock::Claim::Clash, true) => false,
        };
        let _ = halt.send(true);
        sink.await;
        if stopping {
            return;
        }
        tracing::warn!(
            node_id = settings.node_id,
            "MQTT stopped: another node holds this node's id; events wait in the store."
        );
    }
}

/// Takes the pushes left in the journal (answered `success` past their reply budget, then the
/// process died before their intake was stored) through the pipeline again, in the background:
/// under its dedupe key, a push stored after all is answered from its record, and one that was
/// not is stored now. An entry goes once its intake is stored; one that still cannot be is
/// tried again for a minute, then kept for the next start.
///
/// An entry older than `retain` (`storage.retain`) is set aside, never taken again
/// ([`journal::PushJournal::set_aside_past_retention`]): its retry record may be gone. Each
/// pass looks again, the retention running meanwhile.
fn replay_late_pushes(pipeline: &Arc<Pipeline>, journal: &journal::PushJournal, retain: Duration) {
    let now = || chrono::Utc::now().timestamp();
    let pending = journal.set_aside_past_retention(journal.pending(), now(), retain);
    if pending.is_empty() {
        return;
    }
    tracing::warn!(
        count = pending.len(),
        "Pushes answered `success` past their reply budget were not stored before the last \
         stop; taking them again."
    );
    let (pipeline, journal) = (pipeline.clone(), journal.clone());
    pipeline.clone().background().spawn(async move {
        let mut pending = pending;
        for pass in 0..12 {
            if pass > 0 {
                tokio::time::sleep(Duration::from_secs(5)).await;
            }
            let mut left = Vec::new();
            for (path, sub, t) in journal.set_aside_past_retention(pending, now(), retain) {
                let (identity, channel_ref) = (sub.identity.masked(), sub.identity.mask_in(&sub.channel_ref));
                match pipeline.submit(sub.clone(), t, pipeline::Policy::WEBHOOK).await {
                    Ok(d) if journal::stored(&d) => {
                        tracing::info!(identity = %identity, channel_ref = %channel_ref, "A push answered past its reply budget is stored.");
                        journal.done(&path);
                    }
                    other => {
                        let e = other.err().map(|e| e.to_string()).unwrap_or_else(|| "the store could not take it".into());
                        tracing::warn!(identity = %identity, channel_ref = %channel_ref, error = %e, "A push answered past its reply budget is not stored yet.");
                        left.push((path, sub, t));
                    }
                }
            }
            if left.is_empty() {
                return;
            }
            pending = left;
        }
        for (path, sub, _) in pending {
            tracing::error!(identity = %sub.identity.masked(), path = %path.display(), "A push answered `success` past its reply budget could not be stored; kept in the journal for the next start.");
        }
    });
}

/// Most client addresses the web form's cap per address holds in memory (as many as the
/// ladder's limiter keys); past it none is counted until a sweep frees room.
const ADDRESS_KEYS: usize = 1_000_000;

/// A cap of `quota` per `nuisance.per` per client address counting `counts` (`None` when
/// `quota` is 0: off), shared through Redis with `[nuisance] backend = "redis"`; when the
/// shared limiter cannot be made, it counts on this node and `off` says so.
fn client_address_cap(
    cfg: &Config,
    quota: u32,
    counts: pipeline::address::Counts,
    off: &str,
) -> Option<pipeline::address::AddressCap> {
    let cap = pipeline::address::AddressCap::new(quota, cfg.derived.nuisance_per, ADDRESS_KEYS)?
        .counting(counts);
    if cfg.nuisance.backend != "redis" {
        return Some(cap);
    }
    Some(match shared_quota(cfg, quota) {
        Ok(shared) => cap.share(shared),
        Err(e) => {
            tracing::error!(error = %e, "{off}");
            cap
        }
    })
}

/// A limiter of `quota` per `nuisance.per` shared through Redis (`[nuisance] backend =
/// "redis"`): the callers' quota, or the web form's cap per address (`web.address_quota`),
/// whose keys (`addr/…`) cannot meet an identity's.
fn shared_quota(cfg: &Config, quota: u32) -> Result<pipeline::redis_limiter::RedisGcra, String> {
    let url = cfg.nuisance.redis_url.expose();
    let shared = pipeline::redis_limiter::RedisGcra::new(
        url,
        "hotline:",
        quota,
        cfg.derived.nuisance_per,
        cfg.derived.redis_timeout,
    )
    .map_err(|e| e.to_string())?
    // Keys in Redis are an HMAC of the identity under a secret all nodes share
    // (`nuisance.redis_key_secret`, else the admin token; none, or a published one, is an
    // ERROR at every start), so a Redis dump does not give phone numbers back by brute force
    // over the 11-digit space. Changing it starts every quota afresh.
    .with_secret(cfg.redis_key_secret().expose().as_bytes());
    match &cfg.nuisance.redis_ca_file {
        None => Ok(shared),
        Some(path) => {
            let pem = std::fs::read(path)
                .map_err(|e| format!("nuisance.redis_ca_file {}: {e}", path.display()))?;
            shared.with_ca(url, pem).map_err(|e| e.to_string())
        }
    }
}

/// Runs the gateway on `listener` until SIGINT/SIGTERM: opens the store, starts the relay and
/// the ladder's sweeper, serves HTTP, and on shutdown finishes in-flight requests, then stops
/// the relay.
pub async fn run(cfg: Config, listener: TcpListener) -> Result<(), StartError> {
    // The recorder first, so what start-up records (the rule problems' gauge) is kept.
    let metrics = metrics_handle();
    // A published secret where others could use it: served (the contract's own example values
    // must keep running), but said loudly at every start (see `config::Derived::cautions`).
    for c in &cfg.derived.cautions {
        tracing::error!(key = %c.key, "{}", c.message);
    }
    let cfg = Arc::new(cfg);
    let events_on = !cfg.mqtt.url.is_empty();
    let mail_on = !cfg.mail.smtp_url.is_empty();
    let sinks = store::Sinks {
        mqtt: events_on,
        mail: mail_on,
    };
    let postgres = cfg.storage.backend == "postgres";
    // One process per storage folder: on SQLite a second `serve` on the same folder would
    // deliver the outbox the first one delivers, and on both backends take the first one's
    // journal of late pushes as left over from a crash (see `store::node_lock`). It stops,
    // since the first one serves. (Until 2026-12-07 only SQLite's folder was locked; on
    // PostgreSQL the folder holds the journal only, which is the node's own all the same.) A
    // folder that cannot be locked for another reason is left to the store's own opening, which
    // says what is wrong and serves emergencies.
    let _storage_lock = match store::node_lock::lock_storage(&cfg.storage.path) {
        Ok(f) => Some(f),
        Err(e @ store::node_lock::StorageLockError::InUse(_)) => {
            tracing::error!(error = %e, "Not starting.");
            return Err(e.into());
        }
        Err(e) => {
            tracing::error!(error = %e, "The storage folder is not locked against a second process.");
            None
        }
    };
    // A store that cannot be opened does not stop the gateway (a crash loop would also stop
    // emergency redirects): it runs on a store that refuses every write with the reason,
    // /readyz says why, intake answers 503, and emergencies are still answered. PostgreSQL is
    // opened again in the background until it opens, and the node then serves from it.
    let mut store_opened = None;
    let store: Arc<dyn Store> = if postgres {
        match open_pg(&cfg, sinks).await {
            Ok(s) => Arc::new(s),
            Err(e) => {
                tracing::error!(error = %e, "PostgreSQL cannot be opened; serving emergencies only (intake answers 503) while it is opened again in the background.");
                let late = Arc::new(store::late::LateStore::new(e.to_string()));
                let (opened, on_open) = tokio::sync::oneshot::channel();
                tokio::spawn(open_later(cfg.clone(), sinks, late.clone(), opened));
                store_opened = Some(on_open);
                late
            }
        }
    } else {
        match store::sqlite::SqliteStore::open_with(
            &cfg.storage.path,
            sinks,
            cfg.derived.commit_interval,
            cfg.derived.cpu_slice,
        ) {
            Ok(s) => Arc::new(s),
            Err(e) => {
                tracing::error!(error = %e, "The store cannot be opened; serving emergencies only until it is fixed.");
                Arc::new(store::broken::BrokenStore::new(e.to_string()))
            }
        }
    };
    // Several nodes on one database: this node's claim on its id (see `store::node_lock`). A
    // node whose store opened waits a moment for the answer, so that it normally starts
    // knowing; one whose database is down does not wait (emergencies first).
    let claim = if postgres {
        let first = if store_opened.is_none() {
            Duration::from_secs(2)
        } else {
            Duration::ZERO
        };
        match store::node_lock::hold_pg(
            cfg.storage.url.expose(),
            cfg.storage.ca_file.as_deref(),
            cfg.server.node_id,
            first,
        )
        .await
        {
            Ok(c) => c,
            Err(e) => {
                tracing::error!(error = %e, "This node's id is not guarded against a second node using it.");
                store::node_lock::NodeClaim::sole()
            }
        }
    } else {
        store::node_lock::NodeClaim::sole()
    };
    let now = chrono::Utc::now().timestamp();
    // A rule file that cannot be used does not stop the gateway either: its compiled-in default
    // serves instead (the emergency rules above all), /readyz says so, and a reload once the
    // file is fixed puts it in force. `check-config` still refuses it.
    let rules = RuleSet::load_each(cfg.rules.dir.as_deref(), cfg.rules.second_opinion());
    for problem in &rules.problems {
        tracing::error!(
            %problem,
            "A rule file cannot be used; its compiled-in default serves until it is fixed and \
             reloaded (POST /admin/v1/rules/reload or SIGHUP)."
        );
    }
    let ladder = nuisance::Ladder::open(
        nuisance::LadderConfig {
            quota: cfg.nuisance.quota,
            per: cfg.derived.nuisance_per,
            warnings: cfg.nuisance.warnings,
            steps: cfg.derived.suspensions.clone(),
            allow: cfg.derived.allow.clone(),
            max_keys: 1_000_000,
            tz: cfg.derived.tz,
        },
        store.clone(),
        now,
    )
    .await?;
    let ladder = if cfg.nuisance.backend == "redis" {
        // Connects lazily: Redis being down at start-up only means local quotas until it is up.
        match shared_quota(&cfg, cfg.nuisance.quota) {
            Ok(shared) => ladder.share_quota(shared),
            Err(e) => {
                tracing::error!(error = %e, "Shared quota off; counting on this node only.");
                ladder
            }
        }
    } else {
        ladder
    };
    // The web form's cap per client address and the cap on status look-ups, each shared like
    // the quota when that is (keys `addr/…` and `look/…`).
    let address_cap = client_address_cap(
        &cfg,
        cfg.derived.address_quota,
        pipeline::address::Counts::SUBMISSIONS,
        "Shared cap per address off; counting on this node only.",
    );
    let lookup_cap = client_address_cap(
        &cfg,
        cfg.derived.lookup_quota,
        pipeline::address::Counts::LOOKUPS,
        "Shared cap on status look-ups off; counting on this node only.",
    );
    let wake = Arc::new(tokio::sync::Notify::new());
    let pipeline = Arc::new(
        Pipeline::new(
            PipelineConfig {
                node_id: cfg.server.node_id,
                tz: cfg.derived.tz,
                high_water: cfg.storage.high_water,
                duplicate_threshold: cfg.rules.duplicate_threshold.unwrap_or(0.75),
                duplicate_window: cfg.derived.duplicate_window,
                attach_window: cfg.derived.attach_window,
                doubt_below: cfg.rules.second_opinion_doubt(),
                origin_key: pipeline::address::OriginKey::new(
                    cfg.redis_key_secret().expose().as_bytes(),
                ),
            },
            rules,
            store.clone(),
            ladder,
            wake.clone(),
        )
        .with_address_cap(address_cap)
        .with_lookup_cap(lookup_cap),
    );
    let relay_state = Arc::new(RelayState::new(relay::stall_limit(
        cfg.derived.dispatch_timeout,
    )));
    let relay = Relay::new(
        RelayConfig {
            url: cfg.dispatch.url.clone(),
            secret: cfg.dispatch.secret.clone(),
            timeout: cfg.derived.dispatch_timeout,
            backoff_base: cfg.derived.backoff_base,
            backoff_max: cfg.derived.backoff_max,
            concurrency: cfg.dispatch.concurrency,
            breaker_failures: cfg.dispatch.breaker_failures,
            breaker_cooldown: cfg.derived.breaker_cooldown,
        },
        store.clone(),
        wake,
        relay_state.clone(),
    )?;
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let relay_done = spawn_relay(relay, stop_rx.clone(), cfg.dispatch.nice)?;
    let mqtt_task = match sinks::mqtt::parse_url(&cfg.mqtt.url) {
        Some(broker) if events_on => Some(tokio::spawn(mqtt_while_held(
            sinks::mqtt::MqttSettings {
                broker,
                ca_file: cfg.mqtt.ca_file.clone(),
                prefix: cfg.mqtt.topic_prefix.clone(),
                client_id: format!("hotline-gateway-{}", cfg.server.node_id),
                node_id: cfg.server.node_id,
                queue_bound: cfg.mqtt.queue_bound,
            },
            store.clone(),
            stop_rx.clone(),
            claim.clone(),
        ))),
        _ => None,
    };
    let mail_task = mail_on.then(|| {
        tokio::spawn(sinks::mail::run(
            sinks::mail::MailSettings {
                smtp_url: cfg.mail.smtp_url.expose().into(),
                from: cfg.mail.from.clone(),
                supervisors: cfg.mail.supervisors.clone(),
                templates: cfg.mail.templates.clone(),
                alerts_per_minute: cfg.mail.alerts_per_minute,
                digest_every: cfg.derived.digest_every,
                tz: cfg.derived.tz,
            },
            store.clone(),
            stop_rx.clone(),
        ))
    });
    let sweeper = {
        let pipeline = pipeline.clone();
        let mut stop = stop_rx.clone();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = stop.changed() => return,
                    // Every 10 s: under a surge of distinct callers the limiter's idle keys
                    // were the bulk of RSS between minute-long sweeps (BENCHMARKS.md). On the
                    // blocking pool, so a long walk over the keys never holds up a request.
                    _ = tokio::time::sleep(Duration::from_secs(10)) => {
                        let pipeline = pipeline.clone();
                        let _ = tokio::task::spawn_blocking(move || {
                            pipeline.ladder.sweep(chrono::Utc::now().timestamp());
                            pipeline.sweep();
                            // The Prometheus recorder keeps every histogram sample until it is
                            // folded into the buckets, which only a scrape of /metrics or this
                            // does (`build_recorder` starts no upkeep of its own). Unscraped, a
                            // gateway grew ~30 bytes per request: 78 to 135 MiB in 200 s at
                            // 9,000 orders/s (BENCHMARKS.md, tenth session).
                            metrics_handle().run_upkeep();
                        })
                        .await;
                    }
                }
            }
        })
    };
    // The gateway's copies of delivered bodies and its retry records, older than
    // `storage.retain`, go (see `retention`): until 2026-12-07 they were kept for ever and
    // the store grew without bound. On every node: on a shared database their steps share
    // the work.
    let pruner = (!cfg.derived.retain.is_zero()).then(|| {
        tokio::spawn(retention::run(
            store.clone(),
            cfg.derived.retain,
            stop_rx.clone(),
        ))
    });
    // Several nodes on one database: suspensions, lifts and links made through another node's
    // admin API reach this node's memory within two seconds (the ringing path decides from
    // memory, so it cannot ask the database every time).
    let refresher = (cfg.storage.backend == "postgres").then(|| {
        let pipeline = pipeline.clone();
        let mut stop = stop_rx.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(2));
            loop {
                tokio::select! {
                    _ = stop.changed() => return,
                    _ = tick.tick() => {
                        if let Err(e) = pipeline.ladder.refresh(chrono::Utc::now().timestamp()).await {
                            tracing::warn!(error = %e, "Suspensions not refreshed from the store.");
                        }
                    }
                }
            }
        })
    });
    let (cti, wechat, weibo) = http::channel_setups(&cfg);
    // SIGHUP reloads the rule files, like the admin endpoint; a broken file keeps the old rules.
    let reloader = {
        let pipeline = pipeline.clone();
        let dir = cfg.rules.dir.clone();
        let second_opinion = cfg.rules.second_opinion();
        tokio::spawn(async move {
            let Ok(mut hup) =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
            else {
                return;
            };
            while hup.recv().await.is_some() {
                match RuleSet::load(dir.as_deref(), second_opinion) {
                    Ok(set) => {
                        pipeline.set_rules(set);
                        tracing::info!("Rules reloaded on SIGHUP.");
                    }
                    Err(e) => {
                        tracing::error!(error = %e, "Rules not reloaded; the old rules stay.")
                    }
                }
            }
        })
    };
    let late_pushes = journal::PushJournal::in_storage(&cfg.storage.path);
    let retain = cfg.derived.retain;
    match store_opened {
        None => replay_late_pushes(&pipeline, &late_pushes, retain),
        // Taken once the store opens: before, each would only fail again.
        Some(on_open) => {
            let (pipeline, journal) = (pipeline.clone(), late_pushes.clone());
            tokio::spawn(async move {
                if on_open.await.is_ok() {
                    replay_late_pushes(&pipeline, &journal, retain);
                }
            });
        }
    }
    let background = pipeline.background().clone();
    let state = actix_web::web::Data::new(http::AppState {
        late_pushes,
        cti,
        wechat,
        weibo,
        status_cache: std::sync::Mutex::new(std::collections::HashMap::new()),
        cfg: cfg.clone(),
        pipeline,
        store,
        relay: relay_state,
        metrics,
        // Status lookups follow no redirect, like the relay: what `dispatch.url` names is
        // the only place asked (a 3xx answers "status unknown here", and the local one shows).
        http: reqwest::Client::builder()
            .timeout(Duration::from_secs(2))
            .redirect(reqwest::redirect::Policy::none())
            .build()?,
        trusted_proxies: cfg.derived.trusted_proxies.clone(),
        node: claim,
    });
    let addr = listener.local_addr()?;
    let slice = cfg.derived.cpu_slice;
    let request_timeout = cfg.derived.request_timeout;
    // What `actix_web::HttpServer::listen` builds, with the client's stream wrapped in a
    // `GuardedStream`, which `HttpServer` has no place for: it bounds the time to a keep-alive
    // connection's next request head, which actix leaves untimed (see `http::conn`).
    let builder = actix_web::dev::Server::build();
    let graceful = builder.graceful_shutdown_signal();
    let mut server = builder
        .max_concurrent_connections(cfg.server.max_connections)
        .shutdown_timeout(SHUTDOWN_GRACE.as_secs())
        // actix-server stops at once on SIGINT (and SIGQUIT), dropping requests in flight,
        // some of them committed without their 202: signals are handled below instead.
        .disable_signals()
        .listen("hotline-gateway", listener, move || {
            use actix_service::ServiceFactoryExt;
            // actix builds the app once on each worker thread, before it takes connections:
            // the place to give that thread its slice.
            shorten_slice(slice, "http worker");
            let graceful = graceful.clone();
            let app = actix_service::IntoServiceFactory::into_factory(app(state.clone()))
                .map_err(|e: actix_web::Error| e.error_response());
            let http = actix_http::HttpService::build()
                .keep_alive(http::conn::KEEP_ALIVE)
                .client_request_timeout(request_timeout)
                .client_disconnect_timeout(Duration::from_secs(1))
                .local_addr(addr)
                // Idle keep-alive connections close at once at a SIGTERM (HttpServer's too).
                .graceful_shutdown_signal(move || {
                    let graceful = graceful.clone();
                    async move { graceful.notified().await }
                })
                .on_connect_ext(|io: &http::conn::GuardedStream, data| {
                    data.insert(io.watch());
                })
                // `HttpServer` puts the listening address here; it only feeds URL generation
                // and `ConnectionInfo`'s fallback for a request without a Host, neither of
                // which the gateway uses.
                .finish(actix_service::map_config(app, |_| {
                    actix_web::dev::AppConfig::default()
                }));
            actix_web::dev::fn_service(move |io: tokio::net::TcpStream| {
                let peer = io.peer_addr().ok();
                let io = http::conn::GuardedStream::new(io, request_timeout);
                std::future::ready(Ok((io, actix_http::Protocol::Http1, peer)))
            })
            .and_then(http)
        })?;
    if cfg.server.workers > 0 {
        server = server.workers(cfg.server.workers);
    }
    tracing::info!(%addr, node = cfg.server.node_id, "Gateway listening.");
    // SIGTERM and SIGINT (Ctrl-C) alike: stop accepting, finish in-flight requests.
    let server = server.run();
    let handle = server.handle();
    let stopper = tokio::spawn(async move {
        stop_signal().await;
        tokio::spawn(async move { handle.stop(true).await });
        // A second signal while the stop waits for requests, background work and the relay
        // (up to a minute or more): stop at once, as SIGKILL would. Nothing acknowledged is
        // lost by that; every 202 was durable before it was sent.
        stop_signal().await;
        tracing::warn!("A second signal: stopping at once.");
        std::process::exit(1);
    });
    server.await?;
    // Pushes answered past their reply budget, and redirect records, may still be on their way
    // to the store: they have no other copy (see `background`).
    let running = background.running();
    if running > 0 {
        tracing::info!(
            running,
            "HTTP stopped; waiting for the work answered before it was stored."
        );
    }
    let unfinished = background.finish(SHUTDOWN_GRACE).await;
    if unfinished > 0 {
        tracing::error!(
            unfinished,
            "Stopping with work answered but not stored: the store did not answer in time. \
             Pushes among it are the WARN lines 'answered `success` before its intake \
             finished' without a later 'is stored' or ERROR line."
        );
    }
    tracing::info!("HTTP stopped; stopping the relay.");
    let _ = stop_tx.send(true);
    let _ = relay_done.await;
    for t in [mqtt_task, mail_task].into_iter().flatten() {
        let _ = t.await;
    }
    sweeper.abort();
    if let Some(p) = pruner {
        p.abort();
    }
    if let Some(r) = refresher {
        r.abort();
    }
    reloader.abort();
    stopper.abort();
    Ok(())
}

/// Waits for SIGTERM or SIGINT. Without them (they cannot be installed), it waits forever and
/// says so: the gateway then stops only by SIGKILL, which loses nothing acknowledged.
async fn stop_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    match (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) {
        (Ok(mut term), Ok(mut int)) => {
            let name = tokio::select! {
                _ = term.recv() => "SIGTERM",
                _ = int.recv() => "SIGINT",
            };
            tracing::info!(signal = name, "Stopping: finishing the requests in flight.");
        }
        (Err(e), _) | (_, Err(e)) => {
            tracing::error!(error = %e, "Cannot listen for SIGTERM/SIGINT; only SIGKILL stops the gateway.");
            std::future::pending::<()>().await;
        }
    }
}

/// How long a graceful shutdown waits for in-flight requests, and then again for the work
/// they left running in the background.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(30);

/// Runs the relay on a thread (and runtime) of its own, `nice` steps below the rest of the
/// process (Linux niceness): intake and delivery share the cores, and when they compete the citizen waiting
/// for a 202 goes first. Orders wait in the durable outbox meanwhile, so a relay that lags in a
/// surge only delivers later; at nice 10 it still gets about a tenth of a contended core, so it
/// never stops. Answers when the relay has stopped.
fn spawn_relay(
    relay: Relay,
    stop: tokio::sync::watch::Receiver<bool>,
    nice: i32,
) -> Result<tokio::sync::oneshot::Receiver<()>, StartError> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .thread_name("relay-blocking")
        .build()?;
    let (done, stopped) = tokio::sync::oneshot::channel();
    let (lowered, wait_lowered) = std::sync::mpsc::channel();
    std::thread::Builder::new()
        .name("relay".into())
        .spawn(move || {
            lower_priority(nice);
            let _ = lowered.send(());
            rt.block_on(relay.run(stop));
            let _ = done.send(());
        })?;
    // Intake opens only once the relay runs at its priority: a thread that had not yet been
    // scheduled would otherwise compete at the intake's for its first moments (seen in CI).
    let _ = wait_lowered.recv();
    Ok(stopped)
}

/// A runtime on a thread of its own for the life of the process, for the connections every
/// HTTP worker shares (the PostgreSQL pool's, the Redis limiter's, the status lookups' client).
///
/// A connection's socket and driver task belong to the runtime they were made on, and actix
/// runs one runtime per HTTP worker: made while serving worker A, a shared connection died
/// when A stopped its runtime at a SIGTERM (each worker stops once its own requests are done),
/// under another worker's request still using it. Made here, it lives as long as the process.
/// The thread only moves bytes between the sockets and the waiting requests.
pub(crate) fn shared_io_runtime() -> Result<tokio::runtime::Handle, String> {
    static RT: std::sync::OnceLock<Result<tokio::runtime::Handle, String>> =
        std::sync::OnceLock::new();
    RT.get_or_init(|| {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| format!("cannot build the shared connections' runtime: {e}"))?;
        let handle = rt.handle().clone();
        std::thread::Builder::new()
            .name("shared-io".into())
            .spawn(move || rt.block_on(std::future::pending::<()>()))
            .map_err(|e| format!("cannot start the shared connections' thread: {e}"))?;
        Ok(handle)
    })
    .clone()
}

/// Runs `work` on [`shared_io_runtime`] and waits for it, so that the connection it opens lives
/// there; on the caller's runtime where that one could not be started. `None` only if the
/// shared runtime dropped the work (it never stops; a panic there would do it).
pub(crate) async fn on_shared_io<F>(work: F) -> Option<F::Output>
where
    F: std::future::Future + Send + 'static,
    F::Output: Send + 'static,
{
    match shared_io_runtime() {
        Ok(rt) => rt.spawn(work).await.ok(),
        Err(_) => Some(work.await),
    }
}

/// Gives the calling thread `slice` of CPU per turn (`server.cpu_slice`; zero leaves the
/// kernel's default). For the threads a waiting person's answer passes through: the HTTP
/// workers and the store writer. Where the kernel refuses, the thread keeps its default and
/// the gateway works as before, a little slower to answer under contention.
pub(crate) fn shorten_slice(slice: Duration, thread: &'static str) {
    if slice.is_zero() {
        return;
    }
    if let Err(e) = hotline_sched::set_current_thread_slice(slice) {
        tracing::warn!(error = %e, thread, "The thread keeps the kernel's default CPU slice.");
    }
}

/// Adds `nice` to the calling thread's niceness (threads it starts inherit it). On Linux the
/// niceness is per thread, so the TID aims at this thread alone.
#[cfg(target_os = "linux")]
pub(crate) fn lower_priority(nice: i32) {
    if nice == 0 {
        return;
    }
    let tid = rustix::thread::gettid();
    let now = rustix::process::getpriority_process(Some(tid)).unwrap_or(0);
    if let Err(e) = rustix::process::setpriority_process(Some(tid), now.saturating_add(nice)) {
        tracing::warn!(error = %e, "The relay runs at the intake's priority.");
    }
}

#[cfg(not(target_os = "linux"))]
pub(crate) fn lower_priority(_nice: i32) {}

/// The `method` label of the request metrics. Any token is a valid HTTP method, and an
/// unauthenticated client could otherwise add a series to /metrics per request: the label is
/// one of a fixed set.
fn method_label(method: &actix_web::http::Method) -> &'static str {
    use actix_web::http::Method;
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        Method::PATCH => "PATCH",
        _ => "other",
    }
}

/// The actix app: routes, a JSON 404, request metrics.
pub fn app(
    state: actix_web::web::Data<http::AppState>,
) -> actix_web::App<
    impl actix_web::dev::ServiceFactory<
        actix_web::dev::ServiceRequest,
        Config = (),
        Response = actix_web::dev::ServiceResponse<impl actix_web::body::MessageBody>,
        Error = actix_web::Error,
        InitError = (),
    >,
> {
    use actix_web::dev::Service;
    actix_web::App::new()
        .app_data(state)
        .configure(http::routes)
        .default_service(actix_web::web::to(|| async {
            Err::<actix_web::HttpResponse, _>(http::error::ApiError::NotFound("route"))
        }))
        .wrap_fn(|req, srv| {
            let start = std::time::Instant::now();
            let route = req.match_pattern().unwrap_or_else(|| "unmatched".into());
            let method = method_label(req.method());
            // The connection's watch (see `http::conn`), absent under a plain `HttpServer`.
            let watch = req
                .conn_data::<std::rc::Rc<http::conn::Watch>>()
                .cloned();
            if let Some(w) = &watch {
                w.request_started();
            }
            let fut = srv.call(req);
            async move {
                let res = fut.await;
                if let Some(w) = watch {
                    w.answered();
                }
                let res = res?;
                let status = res.status().as_u16().to_string();
                metrics::histogram!("hotline_http_request_duration_seconds", "route" => route.clone(), "method" => method)
                    .record(start.elapsed().as_secs_f64());
                metrics::counter!("hotline_http_requests_total", "route" => route, "method" => method, "status" => status)
                    .increment(1);
                Ok(res)
            }
        })
}

#[cfg(test)]
mod tests {
    use actix_web::http::Method;
    use std::io::Write;
    use std::sync::{Arc, Mutex};

    #[test]
    fn method_labels_are_a_fixed_set() {
        assert_eq!(super::method_label(&Method::GET), "GET");
        assert_eq!(super::method_label(&Method::PATCH), "PATCH");
        for odd in ["FOOBAR123", "get", "TRACE", "CONNECT", "PROPFIND"] {
            let m = Method::from_bytes(odd.as_bytes()).unwrap();
            assert_eq!(super::method_label(&m), "other", "{odd}");
        }
    }

    /// A log sink the test can read back.
    #[derive(Clone, Default)]
    struct Buf(Arc<Mutex<Vec<u8>>>);
    impl Write for Buf {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// actix-http's ERROR line for a request that is no HTTP is not logged (anyone could write
    /// ERROR lines so until 2026-12-07); its other lines are.
    #[test]
    fn a_client_s_malformed_request_writes_no_error_line() {
        let buf = Buf::default();
        let sink = buf.clone();
        let subscriber = super::log_subscriber(None, "info", false, move || sink.clone());
        tracing::subscriber::with_default(subscriber, || {
            tracing::error!(
                target: "actix_http::h1::dispatcher",
                "stream error: request parse error: invalid content-length header"
            );
            tracing::error!(target: "actix_http::h1::dispatcher", "stream error: I/O error: boom");
            tracing::error!(target: "hotline_gateway::relay", "request parse error of ours");
        });
        let text = String::from_utf8_lossy(&buf.0.lock().unwrap()).to_string();
        assert!(!text.contains("content-length"), "{text}");
        assert!(text.contains("I/O error: boom"), "{text}");
        assert!(text.contains("request parse error of ours"), "{text}");
    }

    /// Narrower directives (`tokio_postgres::query=debug`) win over `tokio_postgres=info` in
    /// an `EnvFilter`: until 2026-12-07 they logged every statement's parameters.
    #[test]
    fn debug_logging_never_turns_on_the_libraries_that_log_their_data() {
        // Each with whether our own debug lines are on.
        for (rust_log, ours) in [
            ("debug", true),
            ("trace,tokio_postgres=trace,lettre=debug", true),
            ("info,tokio_postgres::query=debug", false),
            (
                "tokio_postgres::query=trace,lettre::transport::smtp=trace,hotline_gateway=debug",
                true,
            ),
            (
                "debug,rumqttc::state=trace,redis::cmd=debug,postgres::config=trace",
                true,
            ),
            ("info,tokio_postgres[query]=trace,[{sql}]=trace", false),
        ] {
            for json in [false, true] {
                let buf = Buf::default();
                let sink = buf.clone();
                let subscriber =
                    super::log_subscriber(Some(rust_log), "info", json, move || sink.clone());
                tracing::subscriber::with_default(subscriber, || {
                    tracing::debug!(target: "tokio_postgres::query", "parameters: [13800138000]");
                    tracing::trace!(target: "tokio_postgres", "parameters: [13800138001]");
                    tracing::debug!(target: "lettre::transport::smtp", "DATA a@b.cn");
                    tracing::debug!(target: "rumqttc::state", "payload 13800138002");
                    tracing::debug!(target: "redis::cmd", "SET 13800138003");
                    tracing::debug!(target: "postgres::config", "password=S3cret");
                    tracing::info!(target: "tokio_postgres::connection", "a library's info line");
                    tracing::debug!(target: "hotline_gateway::relay", "our own debug line");
                });
                let text = String::from_utf8_lossy(&buf.0.lock().unwrap()).to_string();
                assert_eq!(
                    text.contains("our own debug line"),
                    ours,
                    "{rust_log}: {text}"
                );
                assert!(text.contains("a library's info line"), "{rust_log}: {text}");
                for secret in ["1380013800", "a@b.cn", "S3cret"] {
                    assert!(!text.contains(secret), "{rust_log}: {text}");
                }
            }
        }
    }
}
