//! The store the gateway runs on when its real store cannot be opened (damaged file, missing
//! permissions, no disk). Every operation answers `Unavailable` with the reason, so the gateway
//! stays up instead of crash-looping: `/readyz` reports the reason, intake answers 503 (nothing
//! is acknowledged that is not kept), and emergencies are still redirected, which needs no
//! store. Operators fix or restore the store and restart.

use super::{
    CallerRecord, Delivery, EventRow, Intake, IntakeResult, OpenOrder, OrderState, OutboxEntry,
    OutboxStats, RedirectRecord, Scope, Store, StoreError, Suspension, Topics, Warning,
};
use async_trait::async_trait;
use hotline_adapters::Outcome;

/// A store that refuses everything, with the reason it could not be opened.
pub struct BrokenStore {
    reason: String,
}

impl BrokenStore {
    /// A broken store that reports `reason`.
    pub fn new(reason: impl Into<String>) -> BrokenStore {
        BrokenStore {
            reason: reason.into(),
        }
    }

    fn no<T>(&self) -> Result<T, StoreError> {
        Err(StoreError::Unavailable(self.reason.clone()))
    }
}

#[async_trait]
impl Store for BrokenStore {
    async fn commit_intake(&self, _: Intake) -> Result<IntakeResult, StoreError> {
        self.no()
    }
    async fn remember(&self, _: String, _: Outcome, _: i64) -> Result<Option<Outcome>, StoreError> {
        self.no()
    }
    async fn recall(&self, _: String, _: i64) -> Result<Option<Outcome>, StoreError> {
        self.no()
    }
    async fn record_redirect(&self, _: RedirectRecord) -> Result<(), StoreError> {
        self.no()
    }
    async fn enqueue_contact(
        &self,
        _: String,
        _: String,
        _: serde_json::Value,
        _: Option<serde_json::Value>,
        _: i64,
    ) -> Result<(), StoreError> {
        self.no()
    }
    async fn due(&self, _: i64, _: usize) -> Result<Vec<OutboxEntry>, StoreError> {
        self.no()
    }
    async fn record(&self, _: Vec<(i64, Delivery)>, _: i64) -> Result<(), StoreError> {
        self.no()
    }
    async fn outbox_stats(&self, _: i64) -> Result<OutboxStats, StoreError> {
        self.no()
    }
    async fn retry_dead(&self, _: String, _: i64) -> Result<bool, StoreError> {
        self.no()
    }
    async fn dead_letters(
        &self,
        _: usize,
        _: Option<String>,
    ) -> Result<Vec<super::DeadLetter>, StoreError> {
        self.no()
    }
    async fn retry_dead_matching(&self, _: super::DeadFilter, _: i64) -> Result<u64, StoreError> {
        self.no()
    }
    async fn order_state(&self, _: String) -> Result<Option<OrderState>, StoreError> {
        self.no()
    }
    async fn recent_orders_of(
        &self,
        _: String,
        _: String,
        _: i64,
    ) -> Result<Vec<OpenOrder>, StoreError> {
        self.no()
    }
    async fn record_warning(&self, _: String, _: Warning) -> Result<(), StoreError> {
        self.no()
    }
    async fn warnings_since(&self, _: String, _: i64, _: Scope) -> Result<u32, StoreError> {
        self.no()
    }
    async fn record_suspension(&self, _: Suspension) -> Result<Option<Suspension>, StoreError> {
        self.no()
    }
    async fn suspension_count(&self, _: String, _: Scope) -> Result<u32, StoreError> {
        self.no()
    }
    async fn lift_suspension(&self, _: String, _: i64) -> Result<bool, StoreError> {
        self.no()
    }
    async fn active_suspensions(&self, _: i64) -> Result<Vec<Suspension>, StoreError> {
        self.no()
    }
    async fn caller_record(&self, _: String) -> Result<CallerRecord, StoreError> {
        self.no()
    }
    async fn record_link(&self, _: String, _: String) -> Result<(), StoreError> {
        self.no()
    }
    async fn links(&self) -> Result<Vec<(String, String)>, StoreError> {
        self.no()
    }
    async fn set_allowed(&self, _: String, _: bool, _: i64) -> Result<(), StoreError> {
        self.no()
    }
    async fn allowed(&self) -> Result<Vec<String>, StoreError> {
        self.no()
    }
    async fn resets_since(&self, _: i64) -> Result<Vec<(String, i64)>, StoreError> {
        self.no()
    }
    async fn due_events(
        &self,
        _: &'static str,
        _: Topics,
        _: i64,
        _: usize,
    ) -> Result<Vec<EventRow>, StoreError> {
        self.no()
    }
    async fn ack_events(&self, _: Vec<i64>) -> Result<(), StoreError> {
        self.no()
    }
    async fn retry_event(&self, _: i64, _: i64, _: Option<String>) -> Result<(), StoreError> {
        self.no()
    }
    async fn defer_event(&self, _: i64, _: i64) -> Result<(), StoreError> {
        self.no()
    }
    async fn trim_events(&self, _: &'static str, _: u64) -> Result<u64, StoreError> {
        self.no()
    }
    async fn record_breaker(&self, _: bool, _: i64) -> Result<(), StoreError> {
        self.no()
    }
    fn depth(&self) -> u64 {
        0
    }
    async fn probe_write(&self) -> Result<(), StoreError> {
        self.no()
    }
}
