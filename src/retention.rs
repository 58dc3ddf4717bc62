//! The retention of the gateway's working copies (`storage.retain`).
//!
//! The store kept every message it delivered to dispatch, body and all, and every retry record
//! (`dedupe`), for ever: ~130,000 orders left a 108 MB outbox on PostgreSQL, most of it bodies
//! dispatch had long had. A hotline's front door whose disk fills over the years answers every
//! citizen 503. Neither is a record of the hotline (dispatch holds the orders, and the gateway
//! keeps its own orders table): a delivered body is read by nothing once delivered (the relay
//! reads pending ones, a replay dead ones), and a retry record only answers a platform's or a
//! page's retry, or a call's later steps, all within hours.
//!
//! So a task clears, older than `retain`, the bodies of delivered messages (the row stays: its
//! key, state and `delivered_at` answer status look-ups, keep a contact's key unique and tell
//! a waiting contact that its order went) and deletes the retry records. Pending and dead
//! messages keep their bodies whatever their age: they are still to be sent. It works in
//! steps of at most [`BATCH`] rows with a [`PAUSE`] between them, since on SQLite each step joins a
//! group commit that citizens wait for; each engine finds the next rows without reading the
//! ones it already pruned (see [`Store::prune`]).

use crate::store::{Pruned, Store, StoreError};
use std::sync::Arc;
use std::time::Duration;

/// `storage.retain` by default.
pub const DEFAULT_RETAIN: Duration = Duration::from_secs(30 * 86_400);

/// The shortest `storage.retain` other than zero (see `config::Config::validate`).
pub const MIN_RETAIN: Duration = Duration::from_secs(86_400);

/// Rows one step clears or deletes at most, of each kind. On SQLite, in a store of 200,000
/// delivered orders of 1 KB, 128 bodies cleared took 0.2 ms of the writer's time (0.4 ms for
/// 256) and 128 retry records deleted 0.8 ms (1.8 ms for 256: their keys' index entries lie
/// all over it), plus the pages they dirty in the group's commit. With [`PAUSE`], at most
/// ~1,300 rows of each a second: a million-row store of a release without retention is
/// pruned in about 13 minutes after the upgrade.
pub const BATCH: usize = 128;

/// The pause between two steps of a run.
pub const PAUSE: Duration = Duration::from_millis(100);

/// The first run, after start-up.
const FIRST_AFTER: Duration = Duration::from_secs(5);

/// The time between two runs.
const EVERY: Duration = Duration::from_secs(600);

/// Prunes what is older than `retain` now and then until `stop` says so. Zero `retain`
/// keeps everything (the task is then not started).
pub async fn run(
    store: Arc<dyn Store>,
    retain: Duration,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let mut wait = FIRST_AFTER;
    loop {
        tokio::select! {
            _ = stop.changed() => return,
            _ = tokio::time::sleep(wait) => {}
        }
        wait = EVERY;
        let now = chrono::Utc::now().timestamp();
        let before = now - retain.as_secs() as i64;
        let (done, error) = pass(&*store, now, before, BATCH, PAUSE, &mut stop).await;
        if done.future > 0 {
            // Once per run that meets them: the walk passes them and never reads them again.
            tracing::warn!(
                messages = done.future,
                "Store pruning passed outbox messages dated ahead of this clock (a clock was \
                 ahead when they were written); their bodies are kept. Check the nodes' clocks."
            );
        }
        if done.bodies + done.dedupe > 0 {
            tracing::info!(
                bodies = done.bodies,
                retry_records = done.dedupe,
                retain = %humantime::format_duration(retain),
                "Store pruned: bodies of messages delivered to dispatch cleared and retry \
                 records deleted, older than storage.retain."
            );
        }
        if let Some(e) = error {
            tracing::warn!(error = %e, "Store not pruned further; tried again at the next run.");
        }
    }
}

/// One run: steps of at most `batch` rows, `pause` apart, until nothing made before `before`
/// (unix seconds) is left to prune, the store fails, or `stop` says so. What it pruned is
/// counted in `hotline_store_pruned_total` as it goes, and the messages dated ahead of `now`
/// that it passed in `hotline_store_prune_future_total`.
pub async fn pass(
    store: &dyn Store,
    now: i64,
    before: i64,
    batch: usize,
    pause: Duration,
    stop: &mut tokio::sync::watch::Receiver<bool>,
) -> (Pruned, Option<StoreError>) {
    let mut done = Pruned::default();
    loop {
        let step = match store.prune(now, before, batch).await {
            Ok(step) => step,
            Err(e) => return (done, Some(e)),
        };
        metrics::counter!("hotline_store_pruned_total", "what" => "outbox_body")
            .increment(step.bodies);
        metrics::counter!("hotline_store_pruned_total", "what" => "dedupe").increment(step.dedupe);
        done.bodies += step.bodies;
        metrics::counter!("hotline_store_prune_future_total").increment(step.future);
        done.dedupe += step.dedupe;
        done.future += step.future;
        if !step.more || *stop.borrow() {
            return (done, None);
        }
        tokio::select! {
            _ = stop.changed() => return (done, None),
            _ = tokio::time::sleep(pause) => {}
        }
    }
}
