//! Durable state: orders, the delivery outbox, dedupe records and redirects.
//!
//! The [`Store`] trait is the seam between the request path and the engine. The embedded engine
//! ([`sqlite::SqliteStore`]) is the default; a PostgreSQL engine for several nodes implements the
//! same trait. Every method that changes state returns only after the change is durable: the
//! HTTP layer turns a returned `Ok` into a 202, so an `Ok` is a promise.

pub mod broken;
pub mod late;
pub mod node_lock;
pub mod postgres;
pub mod recent;
pub mod sqlite;

use async_trait::async_trait;
use hotline_adapters::{OrderRef, Outcome};
use serde::Serialize;

/// Why the store could not do what was asked.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The store cannot take writes now (disk full, read-only, I/O error, writer gone). The
    /// request must be answered 503 and may be retried; nothing was half-written.
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// The store holds damaged data or broke an internal invariant.
    #[error("store error: {0}")]
    Internal(String),
}

/// An order to be stored; its number is assigned inside the committing transaction.
#[derive(Debug, Clone)]
pub struct NewOrder {
    /// Identity of the submitter (`phone:...`), for repeat detection.
    pub identity: String,
    /// Category name.
    pub category: String,
    /// The matter's text.
    pub content: String,
    /// The work order JSON as dispatch will see it, without `number` (see
    /// `body_with`): an object, serialised once by the pipeline.
    pub body: String,
    /// The channel's name, as in the body (the events carry it).
    pub channel: &'static str,
    /// Whether the submitter asked for confidentiality, as in the body (the events carry it).
    pub confidential: bool,
    /// The submitter's e-mail address as in the body, `""` for none (the mail sink's copy).
    pub email: String,
    /// The body's `emergency_review`, if the order needs one.
    pub review: Option<OrderReview>,
    /// Where it came from, for repeat detection: `""` from a verified channel (the phone
    /// network, WeChat, Weibo), `web:…` from the web form with its client address hashed
    /// ([`crate::pipeline::address::web_origin`]). Repeats match only orders of the same
    /// identity and origin ([`Store::recent_orders_of`]).
    pub origin: String,
}

/// A work order's `emergency_review`: a possible emergency a person must look at at once.
///
/// The fields are in alphabetical order, as every object of the work order JSON: the body was
/// built as a `serde_json::Value` before, whose maps sort their keys, and the pipeline's tests
/// check that dispatch still gets the same bytes.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OrderReview {
    /// `rules` when the second opinion doubted a rule's redirect, `second_opinion` when it
    /// suspected what the rules did not find.
    pub by: &'static str,
    /// The service the text looks like (110, 119, 120 or 122).
    pub number: String,
    /// The emergency rule whose redirect was doubted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
    /// The second opinion's log-odds, to two decimals.
    pub score: f64,
    /// The rules' emergency, not doubted, in a matter an agent registered: nobody on the line
    /// was told to dial (the supervisors' alert says so). Not part of the work order.
    #[serde(skip)]
    pub sure: bool,
}

impl NewOrder {
    /// The body with `"number"` as its first member. Order numbers are digits only, so they
    /// need no escaping.
    pub(crate) fn body_with(&self, number: &str) -> String {
        match self.body.strip_prefix('{') {
            Some(rest) if rest.trim_start().starts_with('}') => {
                format!("{{\"number\":\"{number}\"}}")
            }
            Some(rest) => format!("{{\"number\":\"{number}\",{rest}"),
            // Not an object (never built so): send it as it is.
            None => self.body.clone(),
        }
    }

    /// The `orders/accepted` event for this order under `number` (the identity masked).
    pub(crate) fn accepted_event(&self, number: &str) -> serde_json::Value {
        serde_json::json!({
            "number": number,
            "category": self.category,
            "channel": self.channel,
            "identity": masked(&self.identity),
            "confidential": self.confidential,
        })
    }

    /// How the submitter sees this order under `number`.
    pub(crate) fn order_ref(&self, number: &str) -> OrderRef {
        OrderRef {
            number: number.to_string(),
            category: self.category.clone(),
            suspected_emergency: self.review.as_ref().map(|r| r.number.clone()),
        }
    }

    /// The `emergency/suspected` event for this order under `number`, when the second opinion
    /// suspected an emergency the rules did not find: supervisors are alerted to look at once.
    pub(crate) fn suspected_event(&self, number: &str) -> Option<serde_json::Value> {
        self.review.as_ref().map(|review| {
            serde_json::json!({
                "order": number,
                "number": review.number,
                "score": review.score,
                "by": review.by,
                "rule": review.rule,
                "sure": review.sure,
                "category": self.category,
                "channel": self.channel,
                "identity": masked(&self.identity),
            })
        })
    }

    /// The submitter's e-mail address, if one was given: where the mail sink sends the receipt.
    pub(crate) fn email(&self) -> Option<&str> {
        (!self.email.is_empty()).then_some(self.email.as_str())
    }
}

// The events' payloads, defined once for both stores (MQTT subscribers read them). Identities
// leave masked.

impl RedirectRecord {
    /// The `emergency/redirected` event.
    pub(crate) fn event(&self) -> serde_json::Value {
        serde_json::json!({"number": self.number, "reason": self.reason, "rule": self.rule,
                           "channel": self.channel, "identity": masked(&self.identity)})
    }
}

impl Warning {
    /// The `callers/warned` event for `identity`.
    pub(crate) fn event(&self, identity: &str) -> serde_json::Value {
        serde_json::json!({"identity": masked(identity), "channel": self.channel})
    }
}

impl Suspension {
    /// The `callers/suspended` event.
    pub(crate) fn event(&self) -> serde_json::Value {
        serde_json::json!({
            "identity": masked(&self.identity),
            "until": chrono::DateTime::from_timestamp(self.until, 0).unwrap_or_default().to_rfc3339(),
            "reason": self.reason,
            "decided_by": self.decided_by,
            "scope": self.scope().as_str(),
        })
    }

    /// Where it holds: a rule's suspension earned on the web form holds there only.
    pub fn scope(&self) -> Scope {
        Scope::of_decision(&self.decided_by)
    }
}

/// `decided_by` of a suspension the rule started for refusals on the web form: it holds on
/// the web form only ([`Scope::Web`]). The phone a web submitter types is a claim nobody
/// verifies, so what it earns must not stop that number's calls (review finding F2).
pub const RULE_WEB: &str = "rule-web";

/// Where a reminder or suspension (art. 32) holds.
///
/// The web form's identity is the phone the submitter typed (the contract), which anyone can
/// type. So reminders and suspensions earned on the web form hold on the web form only, while
/// those earned where the platform vouches for the identity (the carrier's caller id, WeChat's
/// openid, Weibo's uid) and operators' decisions hold everywhere, the web form included.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scope {
    /// Every channel (`decided_by` `rule` or `operator`).
    All,
    /// The web form only (`decided_by` [`RULE_WEB`]; warnings with channel `web`).
    Web,
}

impl Scope {
    /// The scope of a contact on `channel` (`web`, `cti`, `wechat`, `weibo`): what it earns
    /// holds there, and what holds there stops it.
    pub fn of_channel(channel: &str) -> Scope {
        if channel == "web" {
            Scope::Web
        } else {
            Scope::All
        }
    }

    /// The scope of a suspension decided by `decided_by`.
    pub fn of_decision(decided_by: &str) -> Scope {
        if decided_by == RULE_WEB {
            Scope::Web
        } else {
            Scope::All
        }
    }

    /// `all` or `web`, as the admin API and events say it.
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::All => "all",
            Scope::Web => "web",
        }
    }

    /// The `decided_by` of a suspension the rule starts in this scope.
    pub fn rule(self) -> &'static str {
        match self {
            Scope::All => "rule",
            Scope::Web => RULE_WEB,
        }
    }
}

/// One submission's orders, committed in one transaction with its dedupe record.
#[derive(Debug, Clone)]
pub struct Intake {
    /// Local date `YYYYMMDD` in the hotline's time zone: the order numbers' prefix.
    pub day: String,
    /// This node's id, part of the order numbers.
    pub node_id: u8,
    /// The clock's floor under `day`'s sequence ([`order_day`]): the store numbers from above it
    /// the first time it numbers `day` since it opened, whatever it remembers of the day.
    pub seq_floor: i64,
    /// Key under which a retry of the same push is recognised.
    pub dedupe_key: Option<String>,
    /// The orders, in item order.
    pub orders: Vec<NewOrder>,
    /// Unix seconds.
    pub now: i64,
}

/// What committing an intake did.
#[derive(Debug, Clone, PartialEq)]
pub enum IntakeResult {
    /// Newly stored as these orders.
    Stored(Vec<OrderRef>),
    /// The dedupe key was already known (a retry): the first answer, nothing new stored.
    Replayed(Outcome),
}

/// A message waiting in the outbox for the dispatch API.
#[derive(Debug, Clone)]
pub struct OutboxEntry {
    /// Row id.
    pub id: i64,
    /// `order` or `contact`.
    pub kind: String,
    /// Idempotency key (the order number, or number + contact id).
    pub key: String,
    /// Path below `dispatch.url` (`/work-orders`).
    pub path: String,
    /// The JSON body, exactly as it will be signed and sent.
    pub body: String,
    /// Attempts so far.
    pub attempts: u32,
}

/// The result of one delivery attempt.
#[derive(Debug, Clone)]
pub enum Delivery {
    /// 2xx or 409.
    Delivered,
    /// Try again at `next_at_ms`.
    Retry {
        /// Unix milliseconds of the next attempt.
        next_at_ms: i64,
        /// Why it failed.
        error: String,
    },
    /// A permanent refusal (4xx): parked until an operator replays it.
    Dead {
        /// Why.
        error: String,
    },
}

/// A parked message, for the admin API.
#[derive(Debug, Clone, Serialize)]
pub struct DeadLetter {
    /// Idempotency key (the order number for orders).
    pub key: String,
    /// `order` or `contact`.
    pub kind: String,
    /// Attempts made.
    pub attempts: u32,
    /// Why it was parked.
    pub last_error: String,
    /// When it was first queued (unix seconds).
    pub created_at: i64,
}

/// Which dead letters an operator replays at once (`POST /admin/v1/outbox/dead/replay`); a
/// field left out does not narrow the choice, so the empty filter takes them all.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DeadFilter {
    /// The HTTP status dispatch refused them with (401 after a rotated secret).
    pub status: Option<u16>,
    /// `order` or `contact`.
    pub kind: Option<String>,
    /// Queued at or after (unix seconds).
    pub since: Option<i64>,
    /// Queued before (unix seconds).
    pub until: Option<i64>,
}

impl DeadFilter {
    /// The `LIKE` pattern of the status, as [`crate::relay`] writes a refusal's error
    /// (`HTTP 401: …`).
    pub(crate) fn error_pattern(&self) -> Option<String> {
        self.status.map(|s| format!("HTTP {s}:%"))
    }
}

/// How far another clock may be ahead of this one before a time it wrote counts as written by a
/// clock that was wrong ([`Store::reschedule_future`]): nodes' clocks under NTP agree within
/// milliseconds, so a minute keeps a node from taking another's fresh claim.
pub const CLOCK_SLACK_MS: i64 = 60_000;

/// A step back of the wall clock between two looks larger than this makes a queue's reader
/// look for times written before it ([`ClockWatch`]).
pub const CLOCK_STEP_MS: i64 = 1_000;

/// How often a queue's reader looks for times written by a clock that was ahead anyway: a node
/// whose clock was ahead may never come back to see its own step, and its rows sit in the
/// shared store.
pub const CLOCK_CHECK_EVERY: std::time::Duration = std::time::Duration::from_secs(300);

/// When a queue's reader (the relay for the outbox, each sink for its events) should look for
/// retry times and claims written by a clock that was ahead of this one
/// ([`Store::reschedule_future`], [`Store::reschedule_future_events`]): at its first look,
/// when the wall clock stepped back since the last one, and every [`CLOCK_CHECK_EVERY`]
/// (measured on the monotonic clock, which no step moves).
#[derive(Debug, Default)]
pub struct ClockWatch {
    checked: Option<std::time::Instant>,
    last_now_ms: Option<i64>,
}

impl ClockWatch {
    /// A watch that calls for a look at once.
    pub fn new() -> ClockWatch {
        ClockWatch::default()
    }

    /// Whether to look now, the wall clock reading `now_ms`; a `true` counts as the look.
    pub fn due(&mut self, now_ms: i64) -> bool {
        let stepped_back = self
            .last_now_ms
            .is_some_and(|last| now_ms < last.saturating_sub(CLOCK_STEP_MS));
        self.last_now_ms = Some(now_ms);
        let look = stepped_back
            || self
                .checked
                .is_none_or(|at| at.elapsed() >= CLOCK_CHECK_EVERY);
        if look {
            self.checked = Some(std::time::Instant::now());
        }
        look
    }
}

/// Outbox figures for the admin API, `/metrics` and back-pressure.
#[derive(Debug, Clone, Serialize)]
pub struct OutboxStats {
    /// Messages not yet delivered (excluding dead letters).
    pub depth: u64,
    /// Age in seconds of the oldest undelivered message; negative when it was queued by a clock
    /// ahead of this one (a clock stepped back since): shown, not hidden as 0 as it was until
    /// 2026-12-07.
    pub oldest_age_s: Option<i64>,
    /// Number of dead letters (listed, a page at a time, by [`Store::dead_letters`]).
    pub dead: u64,
}

/// What one step of the retention pruned (see [`Store::prune`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pruned {
    /// Bodies of delivered outbox messages cleared.
    pub bodies: u64,
    /// Retry records (`dedupe`) deleted.
    pub dedupe: u64,
    /// Whether more may be left to prune now: the step took all it was allowed of either.
    pub more: bool,
    /// Outbox messages dated more than [`CLOCK_SLACK_MS`] ahead of the clock that the walk
    /// passed, keeping their bodies (a clock that was ahead wrote them; see [`walk_step`]).
    pub future: u64,
}

/// What the retention's walk of the outbox (by id) does with one message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Walk {
    /// Older than the horizon: its body may be cleared (if delivered).
    Clear,
    /// Dated ahead of the clock: passed, body kept. Until 2026-12-07 the walk stopped at it as
    /// at any young message, and one row written by a clock a year ahead stopped the clearing
    /// of every body for that year, silently (the review of 2026-12-07, finding 5).
    PassFuture,
    /// Young: the walk stops here; the messages after it are younger still.
    Stop,
}

/// The walk's decision for a message queued at `created` (unix seconds) when the clock reads
/// `now` and bodies queued before `before` may be cleared.
pub(crate) fn walk_step(created: i64, now: i64, before: i64) -> Walk {
    if created < before {
        Walk::Clear
    } else if created > now.saturating_add(CLOCK_SLACK_MS / 1000) {
        Walk::PassFuture
    } else {
        Walk::Stop
    }
}

/// An order's state as the gateway knows it.
#[derive(Debug, Clone, Serialize)]
pub struct OrderState {
    /// Order number.
    pub number: String,
    /// Category name.
    pub category: String,
    /// `queued`, `delivered` or `dead` (held for an operator).
    pub delivery: String,
    /// Unix seconds of intake.
    pub created_at: i64,
    /// Unix seconds of delivery to dispatch.
    pub delivered_at: Option<i64>,
    /// The order as it is posted to dispatch (JSON): its submitter's personal data is masked
    /// wherever dispatch's status text echoes it ([`crate::order_text::mask_order_data`]). Never
    /// shown.
    #[serde(skip)]
    pub sent: String,
    /// Whether the submitter asked for the order to be kept confidential (art. 29), as stored
    /// beside the order when it was taken: the retention (`storage.retain`) clears `sent` and
    /// leaves this. An order stored by a gateway before 2026-12-07 may say `false` here and
    /// hold the flag in `sent` only: ask [`OrderState::is_confidential`], which reads both.
    pub confidential: bool,
}

impl OrderState {
    /// Whether the order is to be kept confidential: its stored flag, or, for an order
    /// stored without one (before 2026-12-07, or by an older node beside a newer one), the
    /// flag in its body while the retention has not cleared it.
    pub fn is_confidential(&self) -> bool {
        self.confidential || body_is_confidential(&self.sent)
    }
}

/// Whether a work order's body (`sent`, as posted to dispatch) says `"confidential": true`:
/// the member itself, never text in the matter that reads like it. `""` (a body the
/// retention cleared) says no.
fn body_is_confidential(sent: &str) -> bool {
    serde_json::from_str::<serde_json::Value>(sent)
        .ok()
        .and_then(|v| v.get("confidential")?.as_bool())
        .unwrap_or(false)
}

/// An earlier order that a repeat may match.
#[derive(Debug, Clone)]
pub struct OpenOrder {
    /// Order number.
    pub number: String,
    /// Category name.
    pub category: String,
    /// Its text.
    pub content: String,
}

/// A recorded emergency redirect (art. 17(1)).
#[derive(Debug, Clone, Serialize)]
pub struct RedirectRecord {
    /// Identity of the person (unmasked in the store; masked on the way out).
    pub identity: String,
    /// Channel name.
    pub channel: String,
    /// 110/119/120/122.
    pub number: String,
    /// Reason given.
    pub reason: String,
    /// Which rule fired.
    pub rule: String,
    /// The text that triggered it.
    pub text: String,
    /// Unix seconds.
    pub at: i64,
}

/// A recorded reminder (art. 32): a refused submission over quota.
#[derive(Debug, Clone, Serialize)]
pub struct Warning {
    /// Unix seconds.
    pub at: i64,
    /// Channel of the refused submission.
    pub channel: String,
    /// What was refused (the first 200 characters), as evidence.
    pub evidence: String,
}

/// A dedupe key that [`Store::warn`] claims before it records a reminder.
#[derive(Debug, Clone)]
pub struct Claim {
    /// The submission's dedupe key (a platform's push, a page's client_ref).
    pub key: String,
    /// The refusal's `retry_after`, for the answer remembered under the key.
    pub retry_after: u64,
    /// Whether the refusal stays remembered under the key (a platform's push: its retry gets
    /// the same refusal) or only for [`PAGE_REFUSAL_HOLD`] (a page's client_ref: sent again
    /// after that, it is heard afresh).
    ///
    /// A page's refusal is held, not deleted, so that a commit of the same page on another node
    /// that waited on the claim meanwhile finds it and gives the refusal too. Until 2026-12-07
    /// (PostgreSQL) the claim was deleted right after the refusal's commit, and a copy that
    /// woke only after that deletion answered 503 or stored the order (the README's "known
    /// window", seen twice in CI). A row whose hold has passed counts as absent wherever the
    /// key is claimed or read ([`Store::commit_intake`], [`Store::remember`],
    /// [`Store::recall`], [`Store::warn`]).
    ///
    /// Both engines hold it (SQLite since 2026-12-07, `dedupe.expires_at`): the same page sent
    /// twice within the hold (a double-click, a browser's resend) is refused and counted once,
    /// its second copy given the held refusal. Until then SQLite kept no page refusal, and the
    /// copy, which its key lock serialises behind the first on one node, was refused and
    /// counted again (two reminders for one page; once on PostgreSQL).
    pub keep: bool,
}

/// How long a page's refusal over quota stays under its client_ref (see [`Claim::keep`]).
///
/// Why 10 s: the copies of the page that wait on the claim (on other nodes) wake within
/// milliseconds of the refusal's commit, and the order of a second on each side (times are
/// whole seconds, nodes' clocks agree within milliseconds under NTP) still leaves them well
/// inside it; a person's double-click within it gets the same refusal and is not counted
/// twice, which is kinder. It is short against any sensible quota's `retry_after` (an hour's
/// quota of a few), so a page sent again after the wait is heard afresh; with a quota whose
/// `retry_after` is shorter than this, the page sent again within the hold is given the same
/// refusal once more.
pub const PAGE_REFUSAL_HOLD: i64 = 10;

/// One step of the ladder for [`Store::warn`] to count and record: a reminder, or with the
/// reminders used up the next step (under the claim of the submission's key, if it has one).
#[derive(Debug, Clone)]
pub struct WarnRequest {
    /// The (canonical) identity the reminder is for.
    pub identity: String,
    /// The reminder: when, on which channel (its scope, see [`Scope::of_channel`]) and its
    /// evidence.
    pub warning: Warning,
    /// How many reminders it counts for (at least one): an agent's flag counts two.
    pub weight: u32,
    /// The reminders allowed in the window; at that many, the next step is a suspension.
    pub limit: u32,
    /// The window's start (unix seconds): reminders before it no longer count.
    pub since: i64,
    /// The submission's dedupe key, claimed before anything is counted, if it has one.
    pub claim: Option<Claim>,
    /// The ladder's next step, for a store shared by several nodes to record when the
    /// reminders are used up ([`Warned::Suspended`]); without it, or on a store that leaves it
    /// to the caller, [`Warned::Exhausted`].
    pub next: Option<NextStep>,
}

/// The next step of the ladder, for [`Store::warn`] to record when the reminders are used up,
/// under the same claim and lock as the count.
#[derive(Debug, Clone)]
pub struct NextStep {
    /// The ladder's suspension lengths in seconds: an identity's n-th rule suspension lasts
    /// `steps[n]`, the last one repeating.
    pub steps: Vec<i64>,
    /// Why, in words a citizen can read.
    pub reason: String,
    /// The time zone the answer's `until` is written in.
    pub tz: chrono_tz::Tz,
}

impl NextStep {
    /// The length of the suspension after `before` rule suspensions (an hour if the ladder is
    /// empty).
    pub fn length(&self, before: u32) -> i64 {
        let last = self.steps.len().saturating_sub(1);
        self.steps
            .get((before as usize).min(last))
            .copied()
            .unwrap_or(3600)
    }
}

impl Suspension {
    /// The answer a submission refused by this suspension gets.
    pub fn answer(&self, tz: chrono_tz::Tz) -> Outcome {
        Outcome::Suspended {
            until: crate::messages::rfc3339(self.until, tz),
            reason: self.reason.clone(),
        }
    }
}

/// What [`Store::warn`] did.
#[derive(Debug, Clone, PartialEq)]
pub enum Warned {
    /// The reminders were recorded; `before` were in the window already.
    Recorded {
        /// Reminders in the window before these.
        before: u32,
    },
    /// The window holds its limit of reminders already: nothing was recorded, the next step
    /// is a suspension (a store that was given no [`NextStep`], or does not record it).
    Exhausted,
    /// The window held its limit of reminders: the next step of the ladder was recorded in the
    /// same transaction as the claim (`recorded`), or the active suspension another node
    /// recorded meanwhile stands (`!recorded`).
    Suspended {
        /// The suspension that stands.
        suspension: Suspension,
        /// Whether this call recorded it.
        recorded: bool,
    },
    /// An answer stood under the claimed key (the same push or page, decided on another node):
    /// nothing was recorded, and that answer is the one to give.
    Answered(Outcome),
}

/// A suspension (art. 32), decided by a rule or an operator.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Suspension {
    /// Whose.
    pub identity: String,
    /// Unix seconds.
    pub start: i64,
    /// Unix seconds.
    pub until: i64,
    /// Why, in words a citizen can read.
    pub reason: String,
    /// What started it, for operators and the police packet only (the admin caller view and
    /// evidence packet): a rule's offence in its own words (an agent's flag with the agent and
    /// note, `话务员A017标记：…`; a long call, `通话45分钟未登记诉求`; the submission over
    /// quota), as its reminders keep theirs, or an operator's `note`; empty when none was
    /// given or the row is older than the column. Never in the event, the answer, the mail or
    /// anything a citizen sees: [`Suspension::event`] and [`Suspension::answer`] leave it out.
    ///
    /// Until 2026-12-07 a suspension kept no evidence: the flag that suspends records no
    /// reminder, so once its words left the public reason (privacy review F1) they were kept
    /// nowhere.
    pub evidence: String,
    /// `rule`, [`RULE_WEB`] (the rule, on the web form: it holds there only) or `operator`.
    pub decided_by: String,
    /// When an operator lifted it, if one did.
    pub lifted_at: Option<i64>,
}

/// Everything recorded about one caller, for operators and evidence packets.
#[derive(Debug, Clone, Serialize)]
pub struct CallerRecord {
    /// Warnings, newest first (at most 100), those before the last reset included: the
    /// evidence packet shows that reminders came first (art. 32), whatever a lift reset.
    pub warnings: Vec<Warning>,
    /// When an operator's lift last reset the ladder (unix seconds): warnings up to then no
    /// longer count, and the caller view leaves them out.
    pub reset_at: Option<i64>,
    /// All suspensions, newest first.
    pub suspensions: Vec<Suspension>,
    /// Orders of this identity, newest first (at most 50).
    pub orders: Vec<(String, String, String, i64)>,
    /// Emergency redirects of this identity, newest first (at most 50).
    pub redirects: Vec<RedirectRecord>,
}

/// An event waiting in the event outbox for the MQTT broker.
#[derive(Debug, Clone)]
pub struct EventRow {
    /// Row id.
    pub id: i64,
    /// Topic below the prefix (`orders/accepted`).
    pub topic: String,
    /// JSON payload, personal data already masked (a mail receipt also carries `to`).
    pub payload: String,
    /// Attempts so far (mail).
    pub attempts: u32,
    /// This node's claim on the event where nodes share events: when it runs out (unix ms on
    /// this node's clock), as [`Store::hold_events`] renews it. 0 where they are not shared.
    pub lease: i64,
}

/// The durable state the gateway needs. Implementations must make every write durable before
/// returning `Ok`, and must map "cannot write now" to [`StoreError::Unavailable`].
#[async_trait]
pub trait Store: Send + Sync {
    /// Stores a submission's orders and their outbox messages in one transaction, with its dedupe
    /// record. A known dedupe key returns the first answer instead (unless it is a page's
    /// refusal whose hold has passed at the intake's `now`: see [`Claim::keep`]).
    async fn commit_intake(&self, intake: Intake) -> Result<IntakeResult, StoreError>;
    /// Remembers the answer given under a dedupe key when no order was made (redirect, refusal).
    /// `Some(earlier)` when an answer was remembered under the key first (another node decided
    /// the same push at the same moment): that one stands, and is the one to give, so that a
    /// push gets one answer. (A page's refusal whose hold has passed at `now` is not one: it
    /// is replaced.)
    async fn remember(
        &self,
        key: String,
        outcome: Outcome,
        now: i64,
    ) -> Result<Option<Outcome>, StoreError>;
    /// The answer given earlier under a dedupe key, as it stands at `now` (unix seconds): a
    /// page's refusal whose hold has passed by then counts as none (see [`Claim::keep`]).
    async fn recall(&self, key: String, now: i64) -> Result<Option<Outcome>, StoreError>;
    /// Records an emergency redirect.
    async fn record_redirect(&self, r: RedirectRecord) -> Result<(), StoreError>;
    /// Queues a repeat contact about an open order (art. 17(5)) under the idempotency `key`;
    /// nothing when a contact with that key is queued already (the same push decided twice).
    /// `alert`, when given, is an `emergency/suspected` event emitted in the same transaction
    /// (a voicemail's words naming an emergency, after its order was made).
    async fn enqueue_contact(
        &self,
        number: String,
        key: String,
        body: serde_json::Value,
        alert: Option<serde_json::Value>,
        now: i64,
    ) -> Result<(), StoreError>;
    /// Outbox messages due at `now_ms`, oldest first. A contact is not due while its order's
    /// own message is pending: dispatch answers a contact about an order it does not know yet
    /// with 404, which parks it as a dead letter. After an outage the order may be waiting
    /// out its backoff while the contact, queued later, is due at once, and on several nodes
    /// one may post the contact while another is still posting the order. Once the order is
    /// delivered the contact goes. While the order is a dead letter the contact waits too
    /// (pending, counted in the depth): dispatch would answer it 404, and until 2026-12-07 it
    /// then became a dead letter of its own that replaying the order did not replay, so the
    /// photo a citizen was told was added never reached the handler. Replaying the order
    /// replays its dead contacts with it (`retry_dead`, `retry_dead_matching`).
    async fn due(&self, now_ms: i64, limit: usize) -> Result<Vec<OutboxEntry>, StoreError>;
    /// Makes every pending message scheduled after `horizon_ms` due at `now_ms`, and ends every
    /// claim on one that lasts past `now_ms` + the lease + [`CLOCK_SLACK_MS`] (PostgreSQL); how
    /// many it changed. No retry is scheduled further ahead than the backoff cap and no claim
    /// lasts longer than the lease, so such a time was written by a clock that was ahead of
    /// this one: a clock stepped back (a VM's wrong RTC at boot, then NTP; an operator's
    /// typo) or another node's clock. Until 2026-12-07 those orders, answered 202, waited out
    /// the whole step, days, unseen (`oldest_age_s` 0, `/readyz` ready). The relay calls it at
    /// start-up, when it sees its clock step back, and every few minutes (a node that wrote
    /// them may never come back to see its own step).
    async fn reschedule_future(&self, _now_ms: i64, _horizon_ms: i64) -> Result<u64, StoreError> {
        Ok(0)
    }
    /// [`reschedule_future`](Self::reschedule_future) for a sink's events (`mqtt`, `mail`):
    /// makes due at `now_ms` each of the sink's events put off past `horizon_ms`, and ends
    /// every claim on one that lasts past `now_ms` + `hold` (or the store's lease, whichever is
    /// longer, as [`hold_events`](Self::hold_events) sets them) + [`CLOCK_SLACK_MS`]
    /// (PostgreSQL); how many it changed. The sink passes the furthest it ever puts an event
    /// off (a mail's backoff cap, a digest's interval) as the horizon, so such a time was
    /// written by a clock that was ahead: until 2026-12-07 an alert retried or claimed
    /// before a clock step back waited out the whole step, days, unseen. Each sink calls it
    /// when its [`ClockWatch`] says so.
    async fn reschedule_future_events(
        &self,
        sink: &'static str,
        now_ms: i64,
        horizon_ms: i64,
        hold: std::time::Duration,
    ) -> Result<u64, StoreError> {
        let _ = (sink, now_ms, horizon_ms, hold);
        Ok(0)
    }
    /// Whether [`due`](Self::due) claims what it returns, so that messages taken earlier and
    /// not yet recorded are not returned again (PostgreSQL leases them). The relay then asks
    /// for exactly a round's worth; otherwise it asks for more and leaves those out itself.
    fn due_claims(&self) -> bool {
        false
    }
    /// Records the results of delivery attempts, by outbox row id.
    async fn record(&self, results: Vec<(i64, Delivery)>, now: i64) -> Result<(), StoreError>;
    /// How many results the relay should pass to [`record`](Self::record) at a time. On an
    /// engine whose writes queue behind one writer with intake, a round's results in one
    /// operation would hold up the requests committed with it.
    fn record_chunk(&self) -> usize {
        usize::MAX
    }
    /// Outbox figures.
    async fn outbox_stats(&self, now: i64) -> Result<OutboxStats, StoreError>;
    /// Puts a dead letter back in the queue, and with an order, in the same statement, its
    /// dead contacts (parked beside it before 2026-12-07, or by a node of that release): they
    /// then wait for the order again. `false` when there is no such dead letter.
    async fn retry_dead(&self, key: String, now_ms: i64) -> Result<bool, StoreError>;
    /// One page of dead letters, newest first: at most `limit`, those parked before the dead
    /// letter `before` (its key) when one is given, so an operator can read them all.
    async fn dead_letters(
        &self,
        limit: usize,
        before: Option<String>,
    ) -> Result<Vec<DeadLetter>, StoreError>;
    /// Puts every dead letter `filter` takes back in the queue, in one statement, with the
    /// dead contacts of every order it takes (as `retry_dead`); how many.
    async fn retry_dead_matching(&self, filter: DeadFilter, now_ms: i64)
        -> Result<u64, StoreError>;
    /// What the gateway knows of an order.
    async fn order_state(&self, number: String) -> Result<Option<OrderState>, StoreError>;
    /// Orders of an identity created since `since` (unix seconds), newest first, that may be
    /// open: not those dispatch refused (dead letters, until replayed), which a repeat must not
    /// be merged into (art. 17(5)); the citizen who heard nothing sends the matter again.
    ///
    /// Only orders of `origin` ([`NewOrder::origin`]): a web form's typed phone must not find
    /// the orders of that number's calls, nor of other addresses' web submissions under it
    /// (the twenty-second session's review, F1).
    async fn recent_orders_of(
        &self,
        identity: String,
        origin: String,
        since: i64,
    ) -> Result<Vec<OpenOrder>, StoreError>;
    /// Records a warning for an identity.
    async fn record_warning(&self, identity: String, w: Warning) -> Result<(), StoreError>;
    /// Warnings of an identity since `since`, and after its last reset, that hold in `scope`:
    /// for [`Scope::All`] not those given on the web form (its phone is only typed), for
    /// [`Scope::Web`] all of them.
    async fn warnings_since(
        &self,
        identity: String,
        since: i64,
        scope: Scope,
    ) -> Result<u32, StoreError>;
    /// Records `req.weight` reminders for `req.identity` (each the warning `req.warning`, with
    /// its event) unless `req.limit` are in the window since `req.since` (after its last
    /// reset) already, and then claims `req.claim`'s key (the window counts the warnings that
    /// hold in the scope of the warning's channel, see
    /// [`warnings_since`](Self::warnings_since)): when an answer stands under it (the same push
    /// or page taken on another node meanwhile), that is returned and nothing is recorded. See
    /// [`WarnRequest`] for each part. On several nodes the count,
    /// the claim and the inserts are one transaction under the identity's suspension lock, so
    /// two nodes refusing one caller at once do not both record its last reminder.
    /// With `req.next`, a store shared by several nodes records the suspension that follows
    /// used-up reminders in that transaction too, the key claimed before the count, so a copy
    /// another node took meanwhile is answered as it was and nothing is recorded
    /// ([`Warned::Suspended`]). That suspension holds in the scope of the warning's channel, exactly
    /// as [`record_suspension`](Self::record_suspension)'s would: on the web form it is
    /// [`RULE_WEB`] and any active suspension stops it; on a verified channel it is `rule`,
    /// its step counts only the rule's for every channel, and an active web-only suspension
    /// does not stop it.
    /// This default suits one node (its escalation lock serialises the steps): it leaves the
    /// suspension to the caller ([`Warned::Exhausted`]), and holds no page's refusal under its
    /// key, which an engine does in its own `warn` (see [`Claim::keep`]).
    async fn warn(&self, req: WarnRequest) -> Result<Warned, StoreError> {
        let WarnRequest {
            identity,
            warning: w,
            weight,
            limit,
            since,
            claim,
            next: _,
        } = req;
        let scope = Scope::of_channel(&w.channel);
        let before = self.warnings_since(identity.clone(), since, scope).await?;
        if before >= limit {
            return Ok(Warned::Exhausted);
        }
        if let Some(c) = &claim {
            if let Some(o) = self.recall(c.key.clone(), w.at).await? {
                return Ok(Warned::Answered(o));
            }
        }
        for _ in 0..weight.max(1) {
            self.record_warning(identity.clone(), w.clone()).await?;
        }
        Ok(Warned::Recorded { before })
    }
    /// Records a suspension, with its event. A rule's suspension (`decided_by` `rule` or
    /// [`RULE_WEB`]) is not recorded while the identity has an active one that holds where it
    /// would, which is returned instead: two nodes escalating one caller at once (each before
    /// its refresh has seen the other's) record one step of the ladder, not two. (An active
    /// web-only suspension does not stop the rule's suspension for every channel.) An operator's is always recorded, and ends any active one
    /// at its start: it replaces it (a suspension shortened on review stays short).
    async fn record_suspension(&self, s: Suspension) -> Result<Option<Suspension>, StoreError>;
    /// How many suspensions the rule has started for an identity that hold in `scope`
    /// (lifted ones included): the step of its next one. The web form's count the steps of
    /// every channel; the others' do not count the web form's, so typing someone's number
    /// into the form cannot make their next suspension longer.
    async fn suspension_count(&self, identity: String, scope: Scope) -> Result<u32, StoreError>;
    /// Ends an identity's active suspensions now and resets its warnings. `false` if none was active.
    async fn lift_suspension(&self, identity: String, now: i64) -> Result<bool, StoreError>;
    /// Suspensions still running at `now` (to fill the in-memory cache at start-up).
    async fn active_suspensions(&self, now: i64) -> Result<Vec<Suspension>, StoreError>;
    /// Everything recorded about one identity.
    async fn caller_record(&self, identity: String) -> Result<CallerRecord, StoreError>;
    /// Links an identity to another's ladder.
    async fn record_link(&self, identity: String, canonical: String) -> Result<(), StoreError>;
    /// Every link (identity, canonical).
    async fn links(&self) -> Result<Vec<(String, String)>, StoreError>;
    /// Puts an identity on the operators' allow list (`allowed`) or takes it off. Durable and
    /// shared: every node reads the list at its refresh, and it outlives restarts.
    async fn set_allowed(&self, identity: String, allowed: bool, at: i64)
        -> Result<(), StoreError>;
    /// The identities on the operators' allow list.
    async fn allowed(&self) -> Result<Vec<String>, StoreError>;
    /// Identities an operator lifted (reset) at or after `since`, with the time of the reset.
    async fn resets_since(&self, since: i64) -> Result<Vec<(String, i64)>, StoreError>;
    /// Events due for a sink (`mqtt`, `mail`), oldest first (none when the sink is off):
    /// all of them, or only the emergency alerts (`emergency/*`), which the mail sender asks
    /// for before anything else it mails.
    async fn due_events(
        &self,
        sink: &'static str,
        topics: Topics,
        now_ms: i64,
        limit: usize,
    ) -> Result<Vec<EventRow>, StoreError>;
    /// Renews this node's claim on events it took with [`due_events`](Self::due_events) and
    /// has not settled yet, each given with its [`EventRow::lease`], for at least `hold` from
    /// now (and at least the store's own lease). Returns the new lease and the events still
    /// held: one whose claim ran out and that another node took since (or that is gone) is
    /// not, and is that node's now. A sink renews before each step that may be slow (a mail
    /// sent), so that no other node takes an event it is still working on and does it again;
    /// where events are not shared (one node), all are held.
    async fn hold_events(
        &self,
        held: Vec<(i64, i64)>,
        hold: std::time::Duration,
    ) -> Result<(i64, Vec<i64>), StoreError> {
        let _ = hold;
        Ok((0, held.into_iter().map(|(id, _)| id).collect()))
    }
    /// Removes handled events.
    async fn ack_events(&self, ids: Vec<i64>) -> Result<(), StoreError>;
    /// Schedules another attempt at an event (a mail the SMTP server did not take), replacing
    /// its payload when one is given: a mail event keeps in it which recipients are done, so
    /// they are not sent the mail again.
    async fn retry_event(
        &self,
        id: i64,
        next_at_ms: i64,
        payload: Option<String>,
    ) -> Result<(), StoreError>;
    /// Puts an event off until `next_at_ms` without counting an attempt: an alert over the
    /// rate limit, a suspension waiting for its digest. (Counted, deferrals made the next real
    /// failure back off for minutes and could give an alert up on its first one.)
    async fn defer_event(&self, id: i64, next_at_ms: i64) -> Result<(), StoreError>;
    /// Drops a sink's oldest events beyond `bound`; returns how many were dropped.
    async fn trim_events(&self, sink: &'static str, bound: u64) -> Result<u64, StoreError>;
    /// Records that the dispatch circuit breaker opened or closed (an alert for supervisors).
    async fn record_breaker(&self, open: bool, now: i64) -> Result<(), StoreError>;
    /// One step of the retention (`storage.retain`, see [`crate::retention`]): clears the
    /// bodies of at most `limit` delivered outbox messages queued before `before` (unix
    /// seconds), keeping their rows (key, state, `delivered_at`: status look-ups, contacts'
    /// keys and waiting contacts read them), and deletes at most `limit` retry records made
    /// before it. Pending and dead messages are never touched. Each step reads only the rows
    /// it may prune next, never the whole table; on several nodes sharing a store, steps
    /// running at once on two nodes share the work. A store that keeps everything prunes
    /// nothing. `now` (unix seconds) is the clock's reading: a message or record dated more
    /// than [`CLOCK_SLACK_MS`] ahead of it (a clock that was ahead wrote it) is passed, not
    /// waited for, and keeps its body ([`Pruned::future`] counts the messages).
    async fn prune(&self, now: i64, before: i64, limit: usize) -> Result<Pruned, StoreError> {
        let _ = (now, before, limit);
        Ok(Pruned::default())
    }
    /// Undelivered messages, from memory (cheap enough for every request).
    fn depth(&self) -> u64;
    /// Proves the store takes writes now (for `/readyz`).
    async fn probe_write(&self) -> Result<(), StoreError>;
}

/// Which sinks record events (a sink that is off records nothing, so nothing piles up).
#[derive(Debug, Clone, Copy, Default)]
pub struct Sinks {
    /// MQTT events.
    pub mqtt: bool,
    /// Mail notices (receipts and supervisor alerts).
    pub mail: bool,
}

impl Sinks {
    /// Whether any sink records events (if none, an event's payload need not be built).
    pub fn any(self) -> bool {
        self.mqtt || self.mail
    }
}

/// `YYYYMMDD` + two-digit node id + a sequence of at least six digits: 16 digits a day until a
/// node takes its millionth order that day, readable on the phone in four groups of four.
pub fn order_number(day: &str, node_id: u8, seq: i64) -> String {
    format!("{day}{node_id:02}{seq:06}")
}

/// Order numbers a node is assumed to take per second at most, on average from the start of
/// the local day (or from its last restart that day) until the moment its store is lost or
/// restored: see [`order_day`].
pub const SEQ_PER_SECOND: i64 = 10;

/// The longest local day (a day whose clocks go back an hour): the floor stays below 1,000,000,
/// so order numbers keep their 16 digits.
const LONGEST_DAY_SECS: i64 = 25 * 3600;

/// The local date `YYYYMMDD` in `tz` at `now` (unix seconds), the order numbers' prefix, and
/// the clock's floor under that day's sequence: seconds since the day began, times
/// [`SEQ_PER_SECOND`].
///
/// Why a floor: the sequence lives in the store, and a store that forgot part of today (the
/// file moved aside after damage, last night's backup or a PITR restore, a node moved from
/// SQLite to PostgreSQL mid-day) would hand out today's numbers again. The number is
/// dispatch's idempotency key, and dispatch answers the old order's key with 409, which the
/// relay must take as delivered: the new matter would never reach a handler, and
/// `GET /v1/orders/{n}` would show its submitter someone else's order. So a store numbers a day
/// from at least this floor the first time it numbers that day after opening: a number handed
/// out earlier is below it as long as the node took fewer than [`SEQ_PER_SECOND`] orders a
/// second on average since the day began or since its last restart. A restart therefore makes
/// the day's numbers jump (at noon, to `…432001`); they stay unique and 16 digits long.
pub fn order_day(now: i64, tz: chrono_tz::Tz) -> (String, i64) {
    use chrono::{TimeZone, Timelike};
    let local = chrono::DateTime::from_timestamp(now, 0)
        .unwrap_or_default()
        .with_timezone(&tz);
    let date = local.date_naive();
    // Elapsed time, not the wall clock: in a day whose clocks go back, the repeated hour must
    // not lower the floor. Where a change of time skips midnight itself, the wall clock is the
    // nearest measure (it overstates the time since the day began: a higher floor, still unique).
    let start = tz
        .from_local_datetime(&date.and_time(chrono::NaiveTime::MIN))
        .earliest()
        .map_or_else(
            || now - i64::from(local.num_seconds_from_midnight()),
            |t| t.timestamp(),
        );
    let elapsed = (now - start).clamp(0, LONGEST_DAY_SECS - 1);
    (date.format("%Y%m%d").to_string(), elapsed * SEQ_PER_SECOND)
}

/// The event for an outbox message delivered (`dead` false) or parked as a dead letter, with
/// its topic, defined once for both stores. An order's: `orders/delivered` or `orders/dead`
/// with its `number` (and `"kind": "order"` on the latter). A contact's only when it is parked
/// (dispatch does not know its order, or refused it): `orders/dead` with `"kind": "contact"`,
/// its key as `number` (what `POST /admin/v1/outbox/dead/{key}/retry` takes), and
/// `contact_for`, the order it is about, so supervisors learn of a citizen's repeat that
/// reached no handler.
pub(crate) fn outbox_event(
    kind: &str,
    key: &str,
    path: &str,
    dead: bool,
    error: &str,
) -> Option<(&'static str, serde_json::Value)> {
    match (kind, dead) {
        ("order", false) => Some((
            "orders/delivered",
            serde_json::json!({"number": key, "error": ""}),
        )),
        ("order", true) => Some((
            "orders/dead",
            serde_json::json!({"number": key, "key": key, "kind": "order", "error": error}),
        )),
        // `number` stays an order number (digits, as every event's), the order the contact is
        // about; `key` is the dead letter's, which `…/dead/{key}/retry` takes.
        ("contact", true) => {
            let order = path
                .strip_prefix("/work-orders/")
                .and_then(|p| p.strip_suffix("/contacts"))
                .unwrap_or_default();
            Some((
                "orders/dead",
                serde_json::json!({"number": order, "key": key, "kind": "contact",
                                   "error": error}),
            ))
        }
        _ => None,
    }
}

/// Which due events [`Store::due_events`] takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Topics {
    /// Every topic.
    All,
    /// `emergency/*` only (a partial index keeps them cheap to find behind any backlog).
    Emergency,
}

/// Masks an identity string for events.
pub(crate) fn masked(identity: &str) -> String {
    hotline_adapters::Identity::parse(identity)
        .map(|i| i.masked())
        .unwrap_or_else(|| "***".into())
}

/// Topics that become mail: receipts (`orders/accepted`, only with a submitter address) and
/// supervisor alerts.
const MAIL_TOPICS: &[&str] = &[
    "orders/accepted",
    "orders/dead",
    "emergency/redirected",
    "emergency/suspected",
    "callers/suspended",
    "dispatch/breaker",
];

/// The event-outbox rows `(sink, payload)` for one state change, for each sink that is on.
/// Every engine writes them in the same transaction as the change, so an event is never lost and
/// never invented. `mail_to` is the submitter's address for a receipt; it goes into the mail row
/// only, never into MQTT.
pub(crate) fn event_rows(
    sinks: Sinks,
    topic: &str,
    mut payload: serde_json::Value,
    now: i64,
    mail_to: Option<&str>,
) -> Vec<(&'static str, String)> {
    let mut rows = Vec::new();
    if !sinks.any() {
        return rows;
    }
    if let Some(o) = payload.as_object_mut() {
        o.insert(
            "event_id".into(),
            uuid::Uuid::new_v4().simple().to_string().into(),
        );
        o.insert("event".into(), topic.into());
        o.insert(
            "at".into(),
            chrono::DateTime::from_timestamp(now, 0)
                .unwrap_or_default()
                .to_rfc3339()
                .into(),
        );
    }
    if sinks.mqtt && topic != "dispatch/breaker" {
        rows.push(("mqtt", payload.to_string()));
    }
    let receipt_without_address = topic == "orders/accepted" && mail_to.is_none_or(str::is_empty);
    if sinks.mail && MAIL_TOPICS.contains(&topic) && !receipt_without_address {
        if let (Some(o), Some(to)) = (payload.as_object_mut(), mail_to) {
            o.insert("to".into(), to.into());
        }
        rows.push(("mail", payload.to_string()));
    }
    rows
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A queue is looked over at its reader's first look, after a step back of the wall
    /// clock, and not at every round in between (the periodic look is timed on the monotonic
    /// clock, not waited for here).
    #[test]
    fn a_clock_watch_looks_first_and_after_a_step_back() {
        let mut w = ClockWatch::new();
        let now = 1_800_000_000_000;
        assert!(w.due(now), "the first look");
        assert!(!w.due(now + 10), "time going on is no step");
        assert!(
            !w.due(now + 10 - CLOCK_STEP_MS),
            "a jitter within CLOCK_STEP_MS"
        );
        assert!(w.due(now - 86_400_000), "a day back");
        assert!(!w.due(now - 86_400_000 + 5));
    }

    #[test]
    fn a_dead_contact_is_announced_with_the_order_it_is_about() {
        let (topic, v) = outbox_event(
            "contact",
            "2026120707000001-cab12",
            "/work-orders/2026120707000001/contacts",
            true,
            "HTTP 404: unknown order",
        )
        .unwrap();
        assert_eq!(topic, "orders/dead");
        assert_eq!(v["kind"], "contact");
        assert_eq!(v["number"], "2026120707000001", "an order number, digits");
        assert_eq!(v["key"], "2026120707000001-cab12");
        assert!(outbox_event("contact", "k", "/work-orders/1/contacts", false, "").is_none());
        let (topic, v) = outbox_event("order", "1", "/work-orders", true, "HTTP 400").unwrap();
        assert_eq!(
            (topic, &v["kind"]),
            ("orders/dead", &serde_json::json!("order"))
        );
    }

    /// Unix seconds of a local time in `tz`.
    fn at(tz: chrono_tz::Tz, local: &str) -> i64 {
        use chrono::TimeZone;
        let t = chrono::NaiveDateTime::parse_from_str(local, "%Y-%m-%d %H:%M:%S").unwrap();
        tz.from_local_datetime(&t).earliest().unwrap().timestamp()
    }

    #[test]
    fn the_clocks_floor_counts_ten_a_second_since_the_local_day_began() {
        let sh = chrono_tz::Asia::Shanghai;
        let day = |local| order_day(at(sh, local), sh);
        assert_eq!(day("2026-11-29 00:00:00"), ("20261129".into(), 0));
        assert_eq!(day("2026-11-29 12:00:00"), ("20261129".into(), 432_000));
        assert_eq!(day("2026-11-29 23:59:59"), ("20261129".into(), 863_990));
        // The local date, not UTC's (07:59 in Shanghai is 23:59 the day before in UTC).
        assert_eq!(day("2026-11-30 07:59:00").0, "20261130");
        // A day whose clocks go back (Berlin, 25 October 2026, 03:00 -> 02:00): the repeated
        // hour does not lower the floor, and the day's last second keeps it below 1,000,000.
        let berlin = chrono_tz::Europe::Berlin;
        let first = order_day(at(berlin, "2026-10-25 02:30:00"), berlin).1;
        let again = order_day(at(berlin, "2026-10-25 02:30:00") + 3600, berlin).1;
        assert_eq!(again - first, 36_000);
        let last = order_day(at(berlin, "2026-10-25 23:59:59"), berlin);
        assert_eq!(last, ("20261025".into(), 899_990));
        assert_eq!(order_number(&last.0, 99, last.1 + 1).len(), 16);
    }
}
