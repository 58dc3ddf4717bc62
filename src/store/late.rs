//! The store of a node whose database could not be opened at start-up (PostgreSQL down after a
//! power cut, not yet promoted, refusing connections): it serves as a [`BrokenStore`] (every
//! operation `Unavailable` with the reason: intake 503, `/readyz` 503, emergencies answered)
//! until [`LateStore::open`] is given the real store, opened in the background, and from then
//! on is that store. Everything that was handed this store at start-up (the pipeline, the
//! ladder, the relay, the retention, the event sinks, the handlers) uses the real one from that
//! moment without being restarted. Until 2026-12-07 such a node served emergencies only until
//! it was restarted.

use super::broken::BrokenStore;
use super::{
    CallerRecord, DeadFilter, DeadLetter, Delivery, EventRow, Intake, IntakeResult, OpenOrder,
    OrderState, OutboxEntry, OutboxStats, Pruned, RedirectRecord, Scope, Store, StoreError,
    Suspension, Topics, WarnRequest, Warned, Warning,
};
use async_trait::async_trait;
use hotline_adapters::Outcome;
use std::sync::{Arc, OnceLock};

/// A store that is [`BrokenStore`] until it is opened, and then the opened store.
pub struct LateStore {
    real: OnceLock<Arc<dyn Store>>,
    waiting: BrokenStore,
}

impl LateStore {
    /// A store not open yet, refusing everything with `reason`.
    pub fn new(reason: impl Into<String>) -> LateStore {
        LateStore {
            real: OnceLock::new(),
            waiting: BrokenStore::new(reason),
        }
    }

    /// Serves from `store` from now on. Only the first store given counts; `false` for any
    /// later one.
    pub fn open(&self, store: Arc<dyn Store>) -> bool {
        self.real.set(store).is_ok()
    }

    /// Whether the real store serves.
    pub fn is_open(&self) -> bool {
        self.real.get().is_some()
    }

    fn now(&self) -> &dyn Store {
        match self.real.get() {
            Some(s) => s.as_ref(),
            None => &self.waiting,
        }
    }
}

#[async_trait]
impl Store for LateStore {
    async fn commit_intake(&self, intake: Intake) -> Result<IntakeResult, StoreError> {
        self.now().commit_intake(intake).await
    }
    async fn remember(
        &self,
        key: String,
        outcome: Outcome,
        now: i64,
    ) -> Result<Option<Outcome>, StoreError> {
        self.now().remember(key, outcome, now).await
    }
    async fn recall(&self, key: String, now: i64) -> Result<Option<Outcome>, StoreError> {
        self.now().recall(key, now).await
    }
    async fn record_redirect(&self, r: RedirectRecord) -> Result<(), StoreError> {
        self.now().record_redirect(r).await
    }
    async fn enqueue_contact(
        &self,
        number: String,
        key: String,
        body: serde_json::Value,
        alert: Option<serde_json::Value>,
        now: i64,
    ) -> Result<(), StoreError> {
        self.now()
            .enqueue_contact(number, key, body, alert, now)
            .await
    }
    async fn due(&self, now_ms: i64, limit: usize) -> Result<Vec<OutboxEntry>, StoreError> {
        self.now().due(now_ms, limit).await
    }
    async fn reschedule_future(&self, now_ms: i64, horizon_ms: i64) -> Result<u64, StoreError> {
        self.now().reschedule_future(now_ms, horizon_ms).await
    }
    fn due_claims(&self) -> bool {
        self.now().due_claims()
    }
    async fn record(&self, results: Vec<(i64, Delivery)>, now: i64) -> Result<(), StoreError> {
        self.now().record(results, now).await
    }
    fn record_chunk(&self) -> usize {
        self.now().record_chunk()
    }
    async fn outbox_stats(&self, now: i64) -> Result<OutboxStats, StoreError> {
        self.now().outbox_stats(now).await
    }
    async fn retry_dead(&self, key: String, now_ms: i64) -> Result<bool, StoreError> {
        self.now().retry_dead(key, now_ms).await
    }
    async fn dead_letters(
        &self,
        limit: usize,
        before: Option<String>,
    ) -> Result<Vec<DeadLetter>, StoreError> {
        self.now().dead_letters(limit, before).await
    }
    async fn retry_dead_matching(
        &self,
        filter: DeadFilter,
        now_ms: i64,
    ) -> Result<u64, StoreError> {
        self.now().retry_dead_matching(filter, now_ms).await
    }
    async fn order_state(&self, number: String) -> Result<Option<OrderState>, StoreError> {
        self.now().order_state(number).await
    }
    async fn recent_orders_of(
        &self,
        identity: String,
        origin: String,
        since: i64,
    ) -> Result<Vec<OpenOrder>, StoreError> {
        self.now().recent_orders_of(identity, origin, since).await
    }
    async fn record_warning(&self, identity: String, w: Warning) -> Result<(), StoreError> {
        self.now().record_warning(identity, w).await
    }
    async fn warnings_since(
        &self,
        identity: String,
        since: i64,
        scope: Scope,
    ) -> Result<u32, StoreError> {
        self.now().warnings_since(identity, since, scope).await
    }
    async fn warn(&self, req: WarnRequest) -> Result<Warned, StoreError> {
        self.now().warn(req).await
    }
    async fn record_suspension(&self, s: Suspension) -> Result<Option<Suspension>, StoreError> {
        self.now().record_suspension(s).await
    }
    async fn suspension_count(&self, identity: String, scope: Scope) -> Result<u32, StoreError> {
        self.now().suspension_count(identity, scope).await
    }
    async fn lift_suspension(&self, identity: String, now: i64) -> Result<bool, StoreError> {
        self.now().lift_suspension(identity, now).await
    }
    async fn active_suspensions(&self, now: i64) -> Result<Vec<Suspension>, StoreError> {
        self.now().active_suspensions(now).await
    }
    async fn caller_record(&self, identity: String) -> Result<CallerRecord, StoreError> {
        self.now().caller_record(identity).await
    }
    async fn record_link(&self, identity: String, canonical: String) -> Result<(), StoreError> {
        self.now().record_link(identity, canonical).await
    }
    async fn links(&self) -> Result<Vec<(String, String)>, StoreError> {
        self.now().links().await
    }
    async fn set_allowed(
        &self,
        identity: String,
        allowed: bool,
        at: i64,
    ) -> Result<(), StoreError> {
        self.now().set_allowed(identity, allowed, at).await
    }
    async fn allowed(&self) -> Result<Vec<String>, StoreError> {
        self.now().allowed().await
    }
    async fn resets_since(&self, since: i64) -> Result<Vec<(String, i64)>, StoreError> {
        self.now().resets_since(since).await
    }
    async fn due_events(
        &self,
        sink: &'static str,
        topics: Topics,
        now_ms: i64,
        limit: usize,
    ) -> Result<Vec<EventRow>, StoreError> {
        self.now().due_events(sink, topics, now_ms, limit).await
    }
    async fn hold_events(
        &self,
        held: Vec<(i64, i64)>,
        hold: std::time::Duration,
    ) -> Result<(i64, Vec<i64>), StoreError> {
        self.now().hold_events(held, hold).await
    }
    async fn ack_events(&self, ids: Vec<i64>) -> Result<(), StoreError> {
        self.now().ack_events(ids).await
    }
    async fn retry_event(
        &self,
        id: i64,
        next_at_ms: i64,
        payload: Option<String>,
    ) -> Result<(), StoreError> {
        self.now().retry_event(id, next_at_ms, payload).await
    }
    async fn defer_event(&self, id: i64, next_at_ms: i64) -> Result<(), StoreError> {
        self.now().defer_event(id, next_at_ms).await
    }
    async fn trim_events(&self, sink: &'static str, bound: u64) -> Result<u64, StoreError> {
        self.now().trim_events(sink, bound).await
    }
    async fn record_breaker(&self, open: bool, now: i64) -> Result<(), StoreError> {
        self.now().record_breaker(open, now).await
    }
    async fn prune(&self, now: i64, before: i64, limit: usize) -> Result<Pruned, StoreError> {
        self.now().prune(now, before, limit).await
    }
    fn depth(&self) -> u64 {
        self.now().depth()
    }
    async fn probe_write(&self) -> Result<(), StoreError> {
        self.now().probe_write().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Refuses with its reason until opened, then is the opened store; a second store given
    /// later does not replace the first.
    #[tokio::test]
    async fn a_late_store_is_unavailable_until_opened_then_the_real_one() {
        let late = LateStore::new("PostgreSQL not reachable: connection refused");
        match late.probe_write().await {
            Err(StoreError::Unavailable(e)) => assert!(e.contains("connection refused"), "{e}"),
            other => panic!("before it opens: {other:?}"),
        }
        assert!(!late.is_open());
        let dir = tempfile::tempdir().unwrap();
        let real = super::super::sqlite::SqliteStore::open(dir.path()).unwrap();
        assert!(late.open(Arc::new(real)));
        assert!(late.is_open());
        late.probe_write().await.unwrap();
        assert!(late.links().await.unwrap().is_empty());
        assert!(!late.open(Arc::new(BrokenStore::new("later"))));
        late.probe_write().await.unwrap();
    }
}
