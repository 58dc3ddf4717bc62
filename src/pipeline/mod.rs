//! The intake decisions every channel shares, in one order that never changes:
//! **redirect (emergency) > suspended > throttled > duplicate > accept**.
//!
//! Emergency comes first so that no other rule (a suspension, a quota, back-pressure, a full
//! outbox) can ever stand between a person and 110/119/120/122 (art. 17(1), art. 32).
//! The rule modules (`emergency`, `category`, `split`, `guidance`, `similar`) are pure and
//! data-driven; this module adds the state: the store and the nuisance ladder.

pub mod address;
pub mod category;
pub mod emergency;
pub mod guidance;
pub mod nuisance;
pub mod redis_limiter;
pub mod second_opinion;
pub mod similar;
pub mod split;
pub(crate) mod work_order;

use crate::messages;
use crate::store::{
    Intake, IntakeResult, NewOrder, OpenOrder, OrderReview, RedirectRecord, Scope, Store,
    StoreError,
};
use hotline_adapters::{Category, Channel, IdentityKind, Outcome, Submission};
use serde_json::json;
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, RwLock};
use std::time::Duration;
use work_order::WorkOrderBody;

/// The rule sets, swapped whole on reload so a request sees one consistent set.
pub struct RuleSet {
    /// Emergency redirect rules (art. 17(1)).
    pub emergency: emergency::EmergencyRules,
    /// Category keywords (art. 10).
    pub category: category::CategoryRules,
    /// Guidance for matters outside the hotline's remit (art. 17(2), 17(6)).
    pub guidance: guidance::GuidanceRules,
    /// The second opinion on emergencies the rules did not find (`None`: switched off).
    pub second_opinion: Option<second_opinion::SecondOpinion>,
    /// The rule files that could not be used, each replaced by its compiled-in default, and why
    /// (each names its file). Only [`RuleSet::load_each`] leaves any here (start-up: see
    /// there); [`RuleSet::load`] refuses such a set instead. `/readyz` answers 503 while this
    /// holds anything.
    pub problems: Vec<String>,
}

impl RuleSet {
    /// The compiled-in rules.
    pub fn builtin() -> RuleSet {
        RuleSet {
            second_opinion: Some(second_opinion::SecondOpinion::builtin()),
            ..RuleSet::without_model()
        }
    }

    /// The compiled-in rules, without the second opinion (which takes training).
    fn without_model() -> RuleSet {
        RuleSet {
            emergency: emergency::EmergencyRules::builtin(),
            category: category::CategoryRules::builtin(),
            guidance: guidance::GuidanceRules::builtin(),
            second_opinion: None,
            problems: Vec::new(),
        }
    }

    /// Compiled-in rules, each overridden by its file in `dir` when present. A broken file is an
    /// error naming it (the caller keeps its old rules: reload). `second_opinion` is the model's
    /// threshold, `None` to switch it off; it learns from `emergency-examples.jsonl` in `dir`,
    /// else from the compiled-in examples.
    pub fn load(
        dir: Option<&std::path::Path>,
        second_opinion: Option<f64>,
    ) -> Result<RuleSet, String> {
        let set = RuleSet::load_each(dir, second_opinion);
        if set.problems.is_empty() {
            Ok(set)
        } else {
            Err(set.problems.join("; "))
        }
    }

    /// Like [`RuleSet::load`], but a file that cannot be used is replaced by its compiled-in
    /// default, and every such problem is kept in [`RuleSet::problems`]. For start-up, where the
    /// alternative is no gateway at all: a reload keeps the old rules on a broken file, so one
    /// can sit on disk unnoticed until the next restart, and a gateway that then refuses to
    /// start answers no one, emergencies included (art. 17(1)). Also for `check-config`, which
    /// reports every problem at once.
    pub fn load_each(dir: Option<&std::path::Path>, second_opinion: Option<f64>) -> RuleSet {
        let mut set = RuleSet::without_model();
        let mut problems = Vec::new();
        // The compiled-in model, for a folder without examples or with broken ones.
        let builtin_model = |threshold: f64, problems: &mut Vec<String>| {
            second_opinion::SecondOpinion::builtin()
                .with_threshold(threshold)
                .unwrap_or_else(|e| {
                    problems.push(format!("rules.second_opinion_threshold: {e}"));
                    second_opinion::SecondOpinion::builtin()
                })
        };
        // A named folder that is not there (a volume not mounted, a typo) is a problem like a
        // broken file: not the silent "no file, use the default" of a file left out.
        let dir = dir.filter(|d| match std::fs::metadata(d) {
            Ok(m) if m.is_dir() => true,
            Ok(_) => {
                problems.push(format!("{}: the rules folder is not a folder", d.display()));
                false
            }
            Err(e) => {
                problems.push(format!("{}: the rules folder: {e}", d.display()));
                false
            }
        });
        let Some(dir) = dir else {
            set.second_opinion = second_opinion.map(|t| builtin_model(t, &mut problems));
            set.problems = problems;
            return set;
        };
        // Each file: its text, or `None` when absent (the compiled-in default applies).
        let mut read = |name: &str| -> Option<(String, String)> {
            let p = dir.join(name);
            let shown = p.display().to_string();
            match std::fs::read_to_string(&p) {
                Ok(t) => Some((shown, t)),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
                Err(e) => {
                    problems.push(format!("{shown}: {e}"));
                    None
                }
            }
        };
        let emergency = read("emergency.toml");
        let category = read("categories.toml");
        let guidance = read("guidance.toml");
        let examples = second_opinion
            .is_some()
            .then(|| read("emergency-examples.jsonl"))
            .flatten();
        if let Some((name, t)) = emergency {
            match emergency::EmergencyRules::from_toml_named(&name, &t) {
                Ok(r) => set.emergency = r,
                Err(e) => problems.push(e.to_string()),
            }
        }
        if let Some((name, t)) = category {
            match category::CategoryRules::from_toml_named(&name, &t) {
                Ok(r) => set.category = r,
                Err(e) => problems.push(e.to_string()),
            }
        }
        if let Some((name, t)) = guidance {
            match guidance::GuidanceRules::from_toml_named(&name, &t) {
                Ok(r) => set.guidance = r,
                Err(e) => problems.push(e.to_string()),
            }
        }
        if let Some(threshold) = second_opinion {
            let trained = examples.and_then(|(name, t)| {
                second_opinion::parse_examples(&t)
                    .and_then(|examples| second_opinion::SecondOpinion::train(&examples, threshold))
                    .map_err(|e| problems.push(format!("{name}: {e}")))
                    .ok()
            });
            set.second_opinion =
                Some(trained.unwrap_or_else(|| builtin_model(threshold, &mut problems)));
        }
        set.problems = problems;
        set
    }
}

/// The texts of a submission that are judged: its content, then each structured item's.
fn texts(sub: &Submission) -> impl Iterator<Item = &str> {
    std::iter::once(sub.content.as_str()).chain(sub.items.iter().map(|i| i.content.as_str()))
}

/// The matters of a submission (art. 13), each with its category if the submitter chose one:
/// its structured items, else a conservative split of enumerated free text, else the whole text.
fn matters_of(sub: &Submission) -> Vec<(String, Option<Category>)> {
    if !sub.items.is_empty() {
        sub.items
            .iter()
            .map(|i| (i.content.clone(), i.category.or(sub.category)))
            .collect()
    } else {
        split::split_matters(&sub.content)
            .into_iter()
            .map(|c| (c, sub.category))
            .collect()
    }
}

/// The key under which a submission's answer is remembered: the platform's dedupe key, else
/// the page's client_ref, kept with a digest of everything the form said: the retry (the same
/// body) gets the first answer, while a new text, or the same text from someone else (another
/// name, address or position under a page's fixed ref), is heard afresh; a digest of the text
/// alone merged two neighbours' "路灯不亮" into one order. With the phone given, the key is
/// also per phone. From an anonymous (`ip:`) sender it is not per address, which changes
/// between a try and its retry (Wi-Fi to 4G, the moment a page retries).
///
/// A phone sender's key had no digest until 2026-12-07: a page that reused its ref for a new
/// text got the earlier answer and the new text was dropped, and a possible emergency in it
/// (one the model doubts or suspects, which is decided after this key is read) got the
/// earlier routine answer and no number.
fn dedupe_key_of(sub: &Submission) -> Option<String> {
    use sha2::Digest;
    if let Some(k) = &sub.dedupe_key {
        return Some(k.clone());
    }
    let r = sub.client_ref.as_ref()?;
    // The JSON of the form's fields: unambiguous (strings quoted and escaped, fields in order).
    let said = json!([
        sub.content,
        sub.category,
        sub.items,
        sub.contact,
        sub.location,
        sub.attachments,
        sub.confidential,
    ]);
    let digest = hex::encode(&sha2::Sha256::digest(said.to_string().as_bytes())[..16]);
    if sub.identity.kind != IdentityKind::Ip {
        return Some(format!("web:{}:{r}:{digest}", sub.identity));
    }
    Some(format!("web:ref:{r}:{digest}"))
}

/// The idempotency key of a contact about order `number`: taken from the submission's dedupe
/// key when it has one, so that the same push or page decided twice (on two nodes at once, or
/// again after a failure between queuing the contact and remembering the answer) queues one
/// contact, not two under different keys; otherwise fresh (an order can have several contacts).
fn contact_key(number: &str, dedupe_key: Option<&str>) -> String {
    use sha2::Digest;
    match dedupe_key {
        Some(k) => {
            let digest = sha2::Sha256::digest(k.as_bytes());
            format!("{number}-c{}", hex::encode(&digest[..16]))
        }
        None => format!("{number}-c{}", uuid::Uuid::new_v4().simple()),
    }
}

/// Counts a redirect the second opinion overruled, by rule and channel.
fn count_doubt(rule: &str, channel: &'static str) {
    metrics::counter!("hotline_emergency_doubted_total", "rule" => rule.to_string(), "channel" => channel)
        .increment(1);
}

/// Whether the content is the submitter's own words, which a repeat is judged by: not the
/// text a platform or the gateway puts in for a message without any (a voicemail's
/// recording alone, whose every copy reads the same).
fn has_own_words(sub: &Submission) -> bool {
    sub.content != hotline_adapters::cti::RECORDING_ONLY_CONTENT
}

/// The open orders a submission repeats (art. 17(5)): for one matter, those its text is like;
/// for several, one order for each matter when every matter is like one, or is a part of an
/// order its whole text is like (a list sent again, split or whole). A list of which only
/// some matters are old is heard as new: each part is then an order, which is better than one
/// of them lost in a contact. The whole text alone does not decide a list: an old matter told
/// at length with a short new one after it is as like the old order as a repeat is.
fn repeats<'a>(
    recent: &'a [OpenOrder],
    content: &str,
    matters: &[(String, Option<Category>)],
    threshold: f64,
) -> Vec<&'a OpenOrder> {
    let like =
        |o: &OpenOrder, text: &str| similar::matter_similarity(&o.content, text) >= threshold;
    let whole: Vec<_> = recent.iter().filter(|o| like(o, content)).collect();
    if matters.len() < 2 {
        return whole;
    }
    let part_of = |o: &OpenOrder, m: &str| similar::containment(m, &o.content) >= threshold;
    let mut each = Vec::with_capacity(matters.len());
    for (m, _) in matters {
        let found = recent
            .iter()
            .find(|o| like(o, m))
            .or_else(|| whole.iter().copied().find(|o| part_of(o, m)));
        match found {
            Some(o) if !each.iter().any(|e: &&OpenOrder| e.number == o.number) => each.push(o),
            Some(_) => {}
            None => return Vec::new(),
        }
    }
    each
}

/// `d` as said to `sub`'s sender: an anonymous web submitter (`ip:`) over quota is never
/// suspended (`nuisance::suspends`), so its refusal names the wait and no suspension to come
/// (it said "再重复提交1次将被暂停受理" again and again until the twenty-second session's second
/// review). Any other decision as it is.
fn anonymous_wording(sub: &Submission, mut d: Decision) -> Decision {
    if let (IdentityKind::Ip, Outcome::Throttled { retry_after, .. }) =
        (sub.identity.kind, &d.outcome)
    {
        d.message = messages::anonymous_throttled(*retry_after);
    }
    d
}

/// Pipeline settings.
#[derive(Debug, Clone)]
pub struct PipelineConfig {
    /// Node id for order numbers.
    pub node_id: u8,
    /// Local time zone for order numbers and `received_at`.
    pub tz: chrono_tz::Tz,
    /// Undelivered orders above which sheddable channels answer 503.
    pub high_water: u64,
    /// Similarity above which a submission repeats an open order.
    pub duplicate_threshold: f64,
    /// How far back repeats are looked for.
    pub duplicate_window: Duration,
    /// A media- or location-only message this soon after an order is added to it.
    pub attach_window: Duration,
    /// `rules.second_opinion_doubt`: a redirect whose text the second opinion scores below this
    /// becomes an order for urgent review (`-inf`: never; see `Pipeline::doubted`).
    pub doubt_below: f64,
    /// The key of the hash a web order keeps of its client address ([`address::web_origin`]),
    /// derived from `nuisance.redis_key_secret`, else `admin.token`, as the callers' keys in
    /// Redis are, so every node hashes alike.
    pub origin_key: address::OriginKey,
}

/// Why an order is marked for urgent review (`emergency_review` in its body).
#[derive(Debug, Clone, PartialEq)]
struct Review {
    /// The service the text looks like.
    number: String,
    /// The second opinion's log-odds for the text.
    score: f64,
    /// The emergency rule that fired, when the review replaces its redirect (see `doubted`);
    /// `None` when the second opinion suspected what the rules did not find.
    rule: Option<String>,
    /// The rules' emergency, not doubted, in a matter an agent registered (`Policy`): only the
    /// orders whose matter names it are marked.
    sure: bool,
}

impl Review {
    fn suspected(s: second_opinion::Suspicion) -> Review {
        Review {
            number: s.number,
            score: s.score,
            rule: None,
            sure: false,
        }
    }

    /// The review of an emergency the rules found in `text` and the model does not doubt; its
    /// score is the model's (`null` in the work order when the second opinion is off).
    fn sure(rules: &RuleSet, text: &str, r: emergency::Redirect) -> Review {
        let score = rules
            .second_opinion
            .as_ref()
            .map_or(f64::NAN, |m| m.score(text).0);
        Review {
            number: r.number,
            score,
            rule: Some(r.rule),
            sure: true,
        }
    }

    /// Who marked it: `rules` (a redirect the model doubted) or `second_opinion`.
    fn by(&self) -> &'static str {
        if self.rule.is_some() {
            "rules"
        } else {
            "second_opinion"
        }
    }
}

/// Why intake could not give an answer.
#[derive(Debug, thiserror::Error)]
pub enum IntakeError {
    /// The store cannot take writes, or the outbox is over its high-water mark.
    #[error("intake unavailable: {0}")]
    Unavailable(String),
    /// Something that should not happen.
    #[error("internal error: {0}")]
    Internal(String),
}

impl From<StoreError> for IntakeError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Unavailable(m) => IntakeError::Unavailable(m),
            StoreError::Internal(m) => IntakeError::Internal(m),
        }
    }
}

/// How a channel's submissions are treated beyond the rules every channel shares.
#[derive(Debug, Clone, Copy)]
pub struct Policy {
    /// May be refused with 503 when the outbox is over its high-water mark (web and webhook
    /// channels); the phone is never shed.
    pub sheddable: bool,
    /// Counts against the submitter's quota (art. 32). False for matters an agent registers
    /// during a call that was already counted when it rang.
    pub count_quota: bool,
    /// An emergency the rules find becomes an order marked for urgent review, not a redirect.
    /// For matters an agent registers: the agent, not a person in danger, is on the line (often
    /// after the caller hung up), so a transfer would reach no one and the matters typed with
    /// it would be lost (art. 13).
    pub review_emergencies: bool,
}

impl Policy {
    /// Web form, WeChat, Weibo.
    pub const WEBHOOK: Policy = Policy {
        sheddable: true,
        count_quota: true,
        review_emergencies: false,
    };
    /// Agent-registered phone matters.
    pub const AGENT: Policy = Policy {
        sheddable: false,
        count_quota: false,
        review_emergencies: true,
    };
}

/// The decision maker shared by every channel.
pub struct Pipeline {
    cfg: PipelineConfig,
    rules: RwLock<Arc<RuleSet>>,
    store: Arc<dyn Store>,
    /// The nuisance ladder (art. 32).
    pub ladder: nuisance::Ladder,
    /// The web form's cap per client address (`web.address_quota`); `None`: off.
    address_cap: Option<address::AddressCap>,
    /// The cap on status look-ups per client address (`web.lookup_quota`); `None`: off.
    lookup_cap: Option<address::AddressCap>,
    wake: Arc<tokio::sync::Notify>,
    /// One lock per dedupe key in use, so concurrent retries of one push (platforms resend
    /// while the first attempt is still running) are decided once, not raced.
    key_locks: KeyLocks,
    /// Dedupe keys of the pushes redirected lately, so that a platform's retry of one is not
    /// recorded (and announced) a second time: the rules answer it again before any store read.
    redirected: std::sync::Mutex<HashSet<String>>,
    /// Where work that outlives its request runs (redirect records, late webhook intakes).
    background: crate::background::Background,
}

/// Exclusive use of a dedupe key, from [`Pipeline::lock_key`]. Letting go removes the key's
/// lock from the map when nobody else holds or awaits it: every call and push has a key of its
/// own, and keeping them until the periodic sweep grew RSS by ~150 bytes per event (30 MiB in
/// ten seconds of ringing calls, BENCHMARKS.md).
pub struct KeyGuard<'a> {
    map: &'a KeyLocks,
    key: String,
    guard: Option<tokio::sync::OwnedMutexGuard<()>>,
}

type KeyLocks = std::sync::Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>;

impl<'a> KeyGuard<'a> {
    async fn lock(map: &'a KeyLocks, key: &str) -> KeyGuard<'a> {
        let lock = match map.lock() {
            Ok(mut m) => m.entry(key.to_string()).or_default().clone(),
            Err(_) => Arc::new(tokio::sync::Mutex::new(())),
        };
        KeyGuard {
            map,
            key: key.to_string(),
            guard: Some(lock.lock_owned().await),
        }
    }
}

impl Drop for KeyGuard<'_> {
    fn drop(&mut self) {
        // Release first, so the map's Arc is the last one unless someone cloned it to wait;
        // waiters clone under the map's mutex, so the count read under it cannot be stale.
        drop(self.guard.take());
        if let Ok(mut map) = self.map.lock() {
            if map
                .get(&self.key)
                .is_some_and(|l| Arc::strong_count(l) == 1)
            {
                map.remove(&self.key);
            }
        }
    }
}

/// Counts the rule files in force that fell back to their compiled-in default
/// (`hotline_rules_problems`, 0 once a reload has used them all), for an alert that does not
/// depend on someone reading the start-up log.
fn note_rule_problems(rules: &RuleSet) {
    metrics::gauge!("hotline_rules_problems").set(rules.problems.len() as f64);
}

/// Most keys held in [`Pipeline`]'s set of redirected pushes before it is cleared.
const REDIRECTED_CAP: usize = 10_000;

/// What one submission produced: the outcome and the citizen-facing message.
#[derive(Debug, Clone)]
pub struct Decision {
    /// What was decided.
    pub outcome: Outcome,
    /// A sentence in Chinese for the citizen.
    pub message: String,
}

impl Pipeline {
    /// Builds the pipeline. `wake` is notified after each commit so the relay sends at once.
    pub fn new(
        cfg: PipelineConfig,
        rules: RuleSet,
        store: Arc<dyn Store>,
        ladder: nuisance::Ladder,
        wake: Arc<tokio::sync::Notify>,
    ) -> Pipeline {
        note_rule_problems(&rules);
        Pipeline {
            cfg,
            rules: RwLock::new(Arc::new(rules)),
            store,
            ladder,
            address_cap: None,
            lookup_cap: None,
            wake,
            key_locks: std::sync::Mutex::new(HashMap::new()),
            redirected: std::sync::Mutex::new(HashSet::new()),
            background: crate::background::Background::new(),
        }
    }

    /// Caps web form submissions per client address (see [`address`]); without it (or with
    /// `None`: `web.address_quota = 0`) only each identity's quota counts.
    pub fn with_address_cap(mut self, cap: Option<address::AddressCap>) -> Pipeline {
        self.address_cap = cap;
        self
    }

    /// Caps status look-ups (`GET /v1/orders/{number}`) per client address (see
    /// [`address`]; made with [`address::Counts::LOOKUPS`], so look-ups and submissions do not
    /// spend each other's budget); `None` (`web.lookup_quota = 0`): not capped.
    pub fn with_lookup_cap(mut self, cap: Option<address::AddressCap>) -> Pipeline {
        self.lookup_cap = cap;
        self
    }

    /// Counts a status look-up from `client_ip` (as `http::client_ip` gives it) against
    /// `web.lookup_quota`: `Some(seconds)` to wait when it is over. Every look-up counts,
    /// one answered 404 too: walking the sequential numbers mostly hits 404s (the privacy
    /// review's F4). An address on the allow list (`ip:…`) is not capped, as for submissions.
    pub async fn over_lookup_cap(&self, client_ip: &str) -> Option<u64> {
        let cap = self.lookup_cap.as_ref()?;
        let address = address::address_key(client_ip)?;
        let retry_after = self
            .over_cap(cap, client_ip, &address, "web.lookup_quota")
            .await?;
        metrics::counter!("hotline_web_lookup_throttled_total").increment(1);
        Some(retry_after)
    }

    /// Counts a status query by order number from `identity` (a WeChat follower, a Weibo fan,
    /// a caller at the IVR) against `web.lookup_quota`, per sender as the web counts per
    /// address, in the same cap: `Some(seconds)` to wait when it is over. A chat query makes no
    /// submission, so nothing else counted it, and one account could walk a day's sequential
    /// numbers (until 2026-12-07). Identities (`wechat:…`) and addresses (`203.0.113.9`,
    /// `2001:db8::/64`) never look alike, so their counts never meet. An identity on the allow
    /// list is not capped.
    pub async fn over_query_cap(&self, identity: &str) -> Option<u64> {
        let cap = self.lookup_cap.as_ref()?;
        if self.ladder.is_allowed(identity) {
            return None;
        }
        let retry_after = cap.check(identity).await?;
        metrics::counter!("hotline_status_query_throttled_total").increment(1);
        tracing::debug!(
            retry_after,
            "Status query over its sender's web.lookup_quota."
        );
        Some(retry_after)
    }

    /// Counts a request from `client_ip` (its cap key `address`, as [`address::address_key`]
    /// gives it) against `cap` (the one `key` configures):
    /// `Some(seconds)` to wait when it is over (nothing counted then). An address on the allow
    /// list (`ip:…` in `nuisance.allow` or the operators' list) is not capped; a typed phone on
    /// it is not enough, since anyone can type it.
    async fn over_cap(
        &self,
        cap: &address::AddressCap,
        client_ip: &str,
        address: &str,
        key: &'static str,
    ) -> Option<u64> {
        if self.ladder.is_allowed(&format!("ip:{client_ip}")) {
            return None;
        }
        let retry_after = cap.check(address).await?;
        tracing::debug!(
            address = %hotline_adapters::mask::mask_ip(address),
            retry_after,
            key,
            "Request over its client address's cap."
        );
        Some(retry_after)
    }

    /// Work that outlives its request, which a graceful shutdown waits for.
    pub fn background(&self) -> &crate::background::Background {
        &self.background
    }

    /// Waits for exclusive use of a dedupe key on this node.
    pub async fn lock_key(&self, key: &str) -> KeyGuard<'_> {
        KeyGuard::lock(&self.key_locks, key).await
    }

    /// The answer given earlier under a dedupe key, from the store, as it stands at `now`.
    pub async fn recall(&self, key: &str, now: i64) -> Result<Option<Outcome>, StoreError> {
        self.store.recall(key.to_string(), now).await
    }

    /// Drops key locks nobody holds (called periodically): a backstop for waiters that were
    /// cancelled, which leave their entry behind.
    pub fn sweep(&self) {
        if let Ok(mut map) = self.key_locks.lock() {
            map.retain(|_, l| Arc::strong_count(l) > 1);
            map.shrink_to_fit();
        }
        for cap in [&self.address_cap, &self.lookup_cap].into_iter().flatten() {
            cap.sweep();
        }
    }

    /// The rules in force.
    pub fn rules(&self) -> Arc<RuleSet> {
        match self.rules.read() {
            Ok(g) => g.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }

    /// Replaces the rules (reload). The old set stays in use by requests already holding it.
    pub fn set_rules(&self, rules: RuleSet) {
        note_rule_problems(&rules);
        match self.rules.write() {
            Ok(mut g) => *g = Arc::new(rules),
            Err(p) => *p.into_inner() = Arc::new(rules),
        }
    }

    /// The store behind the pipeline.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// The refusal over the cap per address: 429 `throttled` with `retry_after`, and
    /// `warnings_left` the full `nuisance.warnings`, because no reminder is recorded and none
    /// is used (an address is not a person, and a reminder on the typed phone would punish the
    /// number's owner for a stranger's flood). Nothing is stored: no reminder, no suspension,
    /// no answer under the page's key (its retry after the wait is heard afresh).
    fn address_refusal(&self, retry_after: u64) -> Decision {
        metrics::counter!("hotline_web_address_throttled_total").increment(1);
        Decision {
            outcome: Outcome::Throttled {
                retry_after,
                warnings_left: self.ladder.warnings(),
            },
            message: messages::address_throttled(retry_after),
        }
    }

    /// Answers an emergency: the outcome at once; recording, the dedupe record and events
    /// follow in the background so that a store outage never delays a person in danger.
    pub fn redirect(
        &self,
        identity: &str,
        channel: &str,
        text: &str,
        r: emergency::Redirect,
        now: i64,
        dedupe_key: Option<String>,
    ) -> Decision {
        let outcome = Outcome::Redirected {
            number: r.number.clone(),
            reason: r.reason.clone(),
        };
        let message = messages::for_outcome(&outcome, self.cfg.tz);
        // A platform's retry of a push already redirected here (the rules run before the
        // retry record is read, see `submit`): the same answer, without a second record, event
        // and mail. A retry reaching another node, or this one after a restart, is recorded
        // again: the redirect is never held up to find out.
        let answered_before = dedupe_key.as_ref().is_some_and(|k| {
            self.redirected.lock().is_ok_and(|mut m| {
                if m.len() >= REDIRECTED_CAP {
                    m.clear();
                }
                !m.insert(k.clone())
            })
        });
        if answered_before {
            metrics::counter!("hotline_retries_answered_total", "channel" => channel.to_string())
                .increment(1);
            return Decision { outcome, message };
        }
        let masked = hotline_adapters::Identity::parse(identity)
            .map(|i| i.masked())
            .unwrap_or_else(|| "***".into());
        tracing::warn!(channel, identity = %masked, number = %r.number, rule = %r.rule, "Emergency redirected.");
        metrics::counter!("hotline_redirects_total", "number" => r.number.clone(), "channel" => channel.to_string())
            .increment(1);
        let store = self.store.clone();
        let rec = RedirectRecord {
            identity: identity.to_string(),
            channel: channel.to_string(),
            number: r.number,
            reason: r.reason,
            rule: r.rule,
            text: text.to_string(),
            at: now,
        };
        let remember = dedupe_key.map(|k| (k, outcome.clone()));
        // Not on the caller's runtime: an HTTP worker's stops at a SIGTERM once its requests
        // are answered, and this record comes after the answer (see `crate::background`).
        self.background.spawn(async move {
            if let Err(e) = store.record_redirect(rec).await {
                tracing::error!(error = %e, "Cannot record an emergency redirect.");
            }
            if let Some((k, o)) = remember {
                let _ = store.remember(k, o, now).await;
            }
        });
        Decision { outcome, message }
    }

    /// Step 1 of [`submit`](Self::submit): the redirect when a text of the submission is an
    /// emergency, else the review of a redirect the second opinion strongly doubts, if any
    /// (that text becomes an order for urgent review, see `doubted`; any other text of the
    /// submission the rules are sure of still redirects).
    fn emergency(
        &self,
        rules: &RuleSet,
        sub: &Submission,
        now: i64,
        dedupe_key: &Option<String>,
        policy: Policy,
    ) -> Result<Decision, Option<Review>> {
        let mut doubted: Option<Review> = None;
        for text in texts(sub) {
            if let Some(r) = rules.emergency.check(text) {
                match self.doubted(rules, sub, text, &r, now) {
                    Some(review) => {
                        doubted.get_or_insert(review);
                    }
                    // Not doubted, but registered by an agent: an order for urgent review, and
                    // the review names the emergency the rules are sure of (see `Policy`).
                    None if policy.review_emergencies => {
                        if doubted.as_ref().is_none_or(|d| !d.sure) {
                            doubted = Some(Review::sure(rules, text, r));
                        }
                    }
                    None => {
                        let who = sub.identity.to_string();
                        return Ok(self.redirect(
                            &who,
                            sub.channel.as_str(),
                            text,
                            r,
                            now,
                            dedupe_key.clone(),
                        ));
                    }
                }
            }
        }
        Err(doubted)
    }

    /// The emergency rules, for a submission refused for a field (a web form with a
    /// mistyped e-mail address, say) whose text could still be read: `Ok` with the redirect,
    /// recorded as any other, when the rules find an emergency the second opinion does not
    /// overrule. Otherwise the refusal stands: `Err(Some(number))` when the text is still a
    /// possible emergency (the rules' redirect the model doubts, or the model's suspicion),
    /// whose refusal then begins with the number to dial; `Err(None)` for anything else. A
    /// possible emergency is not an order here (the form is refused): it gets its order for
    /// urgent review once the form is sent again, corrected. Until 2026-12-07 it got the
    /// refusal alone, and a person in danger was asked to fix an e-mail address first.
    pub fn redirect_if_emergency(
        &self,
        sub: &Submission,
        now: i64,
    ) -> Result<Decision, Option<String>> {
        let rules = self.rules();
        match self.emergency(&rules, sub, now, &dedupe_key_of(sub), Policy::WEBHOOK) {
            Ok(redirected) => Ok(redirected),
            Err(Some(doubted)) => Err(Some(doubted.number)),
            Err(None) => Err(rules
                .second_opinion
                .as_ref()
                .and_then(|m| texts(sub).find_map(|t| m.check(t)))
                .map(|s| s.number)),
        }
    }

    /// Decides about one submission and makes the decision durable before returning.
    pub async fn submit(
        &self,
        sub: Submission,
        now: i64,
        policy: Policy,
    ) -> Result<Decision, IntakeError> {
        self.submit_from(sub, now, policy, None).await
    }

    /// As [`submit`](Self::submit), for a submission that came from the client address
    /// `client_ip` (as `http::client_ip` establishes it: the web form), which is counted
    /// against the cap per address (`web.address_quota`, see [`address`]) besides the
    /// identity's quota: the web form's typed phone is nobody's proof.
    pub async fn submit_from(
        &self,
        sub: Submission,
        now: i64,
        policy: Policy,
        client_ip: Option<&str>,
    ) -> Result<Decision, IntakeError> {
        // A platform retry (or a page's resubmission with the same client_ref) gets the first
        // answer, from the store, so it holds across restarts and nodes.
        let dedupe_key = dedupe_key_of(&sub);
        // The client address's key, read once: the cap per address counts it, and repeats
        // are looked for among the orders of the same origin only (see
        // `address::web_origin`): the web form's identity is typed.
        let address = client_ip.and_then(address::address_key);
        let origin = match sub.channel {
            Channel::Web => address::web_origin(address.as_deref(), &self.cfg.origin_key),
            Channel::Wechat | Channel::Weibo | Channel::Cti => String::new(),
        };
        let rules = self.rules();

        // 1. Emergency: first of all, before the key lock and the store read below (art. 17).
        // The rules need no I/O, so a store that is slow or locked cannot hold up the answer to
        // a person in danger (a WeChat push would otherwise get the bare `success` of its reply
        // budget), and an earlier answer under the same key cannot stand in for it (a page
        // that reuses its client_ref for a new text).
        let doubted = match self.emergency(&rules, &sub, now, &dedupe_key, policy) {
            Ok(redirected) => return Ok(redirected),
            Err(doubted) => doubted,
        };

        let _guard = match &dedupe_key {
            Some(k) => Some(self.lock_key(k).await),
            None => None,
        };
        if let Some(key) = &dedupe_key {
            match self.recall(key, now).await {
                Ok(Some(outcome)) => {
                    metrics::counter!("hotline_retries_answered_total", "channel" => sub.channel.as_str())
                        .increment(1);
                    let message = messages::for_outcome(&outcome, self.cfg.tz);
                    return Ok(anonymous_wording(&sub, Decision { outcome, message }));
                }
                Ok(None) => {}
                // A store that cannot be read must not keep a doubted emergency from its order
                // (art. 17). Deciding afresh is safe: anything else is refused at its commit,
                // and the commit checks the key again in the same transaction.
                Err(e) => tracing::warn!(error = %e, "Retry record unreadable; deciding afresh."),
            }
        }
        // A doubted redirect is still treated as an emergency until its order is made: never
        // counted, refused or shed.
        let overruled = doubted.is_some();
        if let Some(rule) = doubted
            .as_ref()
            .filter(|d| !d.sure)
            .and_then(|d| d.rule.as_deref())
        {
            count_doubt(rule, sub.channel.as_str());
        }

        // A photo or location alone, shortly after a matter, belongs to that matter: it is sent
        // to dispatch as an update of the order, not as a new order, and not counted.
        // (A shared location's only text is its own label.)
        // Not on the web form, which always carries a matter: a page that puts the place in
        // `content` too (the address of the matter is its matter) is telling something new.
        let no_text = sub.content.is_empty() || sub.content == sub.location.address;
        let media_only = sub.channel != Channel::Web
            && no_text
            && sub.items.is_empty()
            && (!sub.attachments.is_empty() || sub.location.lat.is_some());
        if media_only {
            // Not from a suspended sender (art. 32): a suspension stops every non-emergency
            // contact, so the photo gets the suspension's answer, as a text would. Nothing is
            // counted, as for any supplement.
            let refusal = (!overruled)
                .then(|| {
                    let scope = Scope::of_channel(sub.channel.as_str());
                    self.ladder.refusal_if_suspended(&sub.identity, scope, now)
                })
                .flatten();
            if let Some(outcome) = refusal {
                return self.answer(sub.dedupe_key.as_ref(), outcome, now).await;
            }
            let since = now - self.cfg.attach_window.as_secs() as i64;
            let recent = self
                .store
                .recent_orders_of(sub.identity.to_string(), String::new(), since)
                .await?;
            if let Some(o) = recent.first() {
                let body = json!({
                    "number": o.number,
                    "kind": "supplement",
                    "channel": sub.channel.as_str(),
                    "channel_ref": sub.channel_ref,
                    "received_at": self.local_time(sub.received_at),
                    "attachments": sub.attachments,
                    "location": {"address": sub.location.address, "lat": sub.location.lat, "lon": sub.location.lon},
                });
                self.store
                    .enqueue_contact(
                        o.number.clone(),
                        contact_key(&o.number, dedupe_key.as_deref()),
                        body,
                        None,
                        now,
                    )
                    .await?;
                self.wake.notify_one();
                let outcome = Outcome::Attached {
                    orders: vec![hotline_adapters::OrderRef {
                        number: o.number.clone(),
                        category: o.category.clone(),
                        suspected_emergency: None,
                    }],
                };
                return self.answer(dedupe_key.as_ref(), outcome, now).await;
            }
        }

        // 2-3. Suspension and quota (art. 32). A matter an agent registered during a call was
        // counted when the call rang; it is not counted again. A suspended sender is told so
        // even while intake sheds; a shed submission is not counted: the 503 asks the person
        // to send it again, and a quota spent on unheard submissions would end, after the
        // reminders, in a suspension of someone the hotline never heard.
        if policy.count_quota && !overruled {
            let scope = Scope::of_channel(sub.channel.as_str());
            if let Some(outcome) = self.ladder.refusal_if_suspended(&sub.identity, scope, now) {
                return self.answer(sub.dedupe_key.as_ref(), outcome, now).await;
            }
        }
        // The second opinion (see below), asked here already when the submission would be
        // shed: a suspected emergency is never shed, like the rules' (art. 17). It was asked
        // only after the shed check, so a text only the model found got a bare 503 and no
        // number while the outbox was over its mark (until 2026-12-07). Asked at most once.
        let ask = || {
            rules
                .second_opinion
                .as_ref()
                .and_then(|m| texts(&sub).find_map(|t| m.check(t)))
                .map(Review::suspected)
        };
        let mut asked: Option<Option<Review>> = None;
        if policy.sheddable && !overruled && self.store.depth() > self.cfg.high_water {
            let suspected = ask();
            if suspected.is_none() {
                metrics::counter!("hotline_shed_total", "channel" => sub.channel.as_str())
                    .increment(1);
                return Err(IntakeError::Unavailable(
                    "the outbox is over its high-water mark".into(),
                ));
            }
            asked = Some(suspected);
        }
        // The client address's cap (web form): after the emergency rules, a suspension and
        // shedding, like the identity's quota, and before it, so a flood of made-up phones
        // from one address is stopped before each number gets its own quota (and a limiter
        // key of the ladder's). Nothing is recorded for it (see `address_refusal`). As for
        // shedding, a text the second opinion suspects is not refused: the address may be a
        // whole campus's, kept busy by others than the person in danger.
        if policy.count_quota && !overruled {
            let over = match (&self.address_cap, client_ip, &address) {
                (Some(cap), Some(ip), Some(address)) => {
                    self.over_cap(cap, ip, address, "web.address_quota").await
                }
                _ => None,
            };
            if let Some(retry_after) = over {
                let suspected = asked.take().unwrap_or_else(ask);
                if suspected.is_none() {
                    return Ok(self.address_refusal(retry_after));
                }
                asked = Some(suspected);
            }
        }
        let refusal = if policy.count_quota && !overruled {
            // The key is claimed before a reminder is recorded: the same push or page may have
            // been taken on another node meanwhile (a page's retry through a balancer), and
            // then its answer is given and nothing recorded. A platform's refusal stays
            // remembered; a page's is held by the store for `PAGE_REFUSAL_HOLD` only (see
            // below).
            let claim = dedupe_key.clone().map(|k| (k, sub.dedupe_key.is_some()));
            match self.ladder.count(&sub, now, claim).await {
                Ok(r) => r,
                // A reminder the store cannot record: a suspected emergency still gets its
                // number (see `unsaved`); the model is asked for that, not to let it through.
                Err(e) => {
                    let suspected = asked.take().unwrap_or_else(ask);
                    return self.unsaved(e.into(), suspected.as_ref(), &sub);
                }
            }
        } else {
            None
        };
        if let Some(outcome) = refusal {
            // A platform's retry of a refused push gets the same refusal and is not counted
            // twice. A page's client_ref is not kept for a refusal: the store holds it for
            // `PAGE_REFUSAL_HOLD` (10 s, written by `Store::warn` with the reminder), so a
            // double-click is answered by the `recall` above and not counted twice, and the
            // person sending the same page again after the wait (or after an operator's lift)
            // is heard afresh.
            let d = self.answer(sub.dedupe_key.as_ref(), outcome, now).await?;
            return Ok(anonymous_wording(&sub, d));
        }

        // The second opinion, asked only for a matter that will be heard (the rules found
        // nothing, and neither an attachment nor a refusal answered it). It can only add: a
        // suspected emergency is still an order (see `second_opinion`), made a new one even when
        // it looks like a repeat or like a matter for guidance, so that a person sees it at once.
        let suspicion = doubted.or_else(|| asked.unwrap_or_else(ask));

        // 4. Repeat of an open matter (art. 17(5)).
        // A possible emergency is decided one at a time per sender on this node, from the
        // read of its recent orders to its commit: the same text sent again while the first
        // is still being stored (a late reply said "not saved yet", see below) then finds
        // the first's order instead of reading the orders before either is committed.
        let _emergency_guard = match &suspicion {
            Some(_) => Some(
                self.lock_key(&format!("possible-emergency:{}", sub.identity))
                    .await,
            ),
            None => None,
        };
        let matters = matters_of(&sub);
        let since = now - self.cfg.duplicate_window.as_secs() as i64;
        let recent = match self
            .store
            .recent_orders_of(sub.identity.to_string(), origin.clone(), since)
            .await
        {
            Ok(recent) => recent,
            Err(e) => return self.unsaved(e.into(), suspicion.as_ref(), &sub),
        };
        // A possible emergency is made a new order even when it is like an open one (see the
        // second opinion, above), unless it is the same words as one: a person told that it
        // was "not saved yet" (`messages::unsaved_emergency`: a late reply whose journal write
        // was slow, while its intake went on and stored it) sends the same text again, and
        // that is the order already made and marked for urgent review, not a second one.
        // Until 2026-12-07 it made a second order. Its supervisors are alerted again with the
        // repeat, and the reply names the number first (`Duplicate` with `suspected_emergency`).
        let threshold = match &suspicion {
            None => self.cfg.duplicate_threshold,
            Some(_) => 1.0,
        };
        let matches = if has_own_words(&sub) {
            repeats(&recent, &sub.content, &matters, threshold)
        } else {
            Vec::new()
        };
        if !matches.is_empty() {
            let orders: Vec<_> = matches
                .iter()
                .map(|o| hotline_adapters::OrderRef {
                    number: o.number.clone(),
                    category: o.category.clone(),
                    suspected_emergency: suspicion.as_ref().map(|s| s.number.clone()),
                })
                .collect();
            for o in &matches {
                let mut body = json!({
                    "number": o.number,
                    "channel": sub.channel.as_str(),
                    "channel_ref": sub.channel_ref,
                    "received_at": self.local_time(sub.received_at),
                    "content": sub.content,
                });
                // Who sent the repeat, as a work order names its submitter: the same identity
                // may be another person (neighbours behind one address), or the same person
                // with a name or e-mail the first submission lacked.
                if !sub.contact.name.is_empty() || !sub.contact.email.is_empty() {
                    body["submitter"] = json!({
                        "identity": sub.identity.to_string(),
                        "name": sub.contact.name,
                        "phone": sub.contact.phone,
                        "email": sub.contact.email,
                    });
                }
                // What came with the repeat (a photo, a recording, a place) goes with it.
                if !sub.attachments.is_empty() {
                    body["attachments"] = json!(sub.attachments);
                }
                if sub.location.lat.is_some() || !sub.location.address.is_empty() {
                    body["location"] = json!({"address": sub.location.address, "lat": sub.location.lat, "lon": sub.location.lon});
                }
                let alert = suspicion.as_ref().map(|s| {
                    body["emergency_review"] =
                        json!({"by": s.by(), "number": s.number, "rule": s.rule});
                    metrics::counter!("hotline_emergency_suspected_total", "number" => s.number.clone(), "channel" => sub.channel.as_str(), "by" => s.by())
                        .increment(1);
                    json!({
                        "order": o.number, "number": s.number, "score": s.score, "by": s.by(),
                        "rule": s.rule, "sure": s.sure, "category": o.category,
                        "channel": sub.channel.as_str(), "identity": sub.identity.masked(),
                    })
                });
                self.store
                    .enqueue_contact(
                        o.number.clone(),
                        contact_key(&o.number, dedupe_key.as_deref()),
                        body,
                        alert,
                        now,
                    )
                    .await?;
            }
            self.wake.notify_one();
            let outcome = Outcome::Duplicate { orders };
            return self.answer(dedupe_key.as_ref(), outcome, now).await;
        }

        // 5. Matters outside the hotline's remit (art. 17(2), 17(6)): a rule may answer with
        // guidance only; by default the order is accepted with a handling hint. Guidance only
        // when every matter is one to inform about: a message with another matter too is taken
        // whole, the informed one with its hint (art. 13: the other matter is not lost).
        let inform = if sub.items.is_empty() && suspicion.is_none() {
            matters
                .iter()
                .map(|(m, _)| {
                    rules
                        .guidance
                        .check(m)
                        .filter(|g| g.action == guidance::GuidanceAction::Inform)
                })
                .collect::<Option<Vec<_>>>()
                .and_then(|all| all.into_iter().next())
        } else {
            None
        };
        if let Some(g) = inform {
            metrics::counter!("hotline_informed_total", "rule" => g.rule.clone()).increment(1);
            // The guidance goes into the outcome, so a retry (or another node's answer to
            // the same push) reads the same words.
            let outcome = Outcome::Informed {
                guidance: g.message,
            };
            return self.answer(dedupe_key.as_ref(), outcome, now).await;
        }

        // 6. Accept: one order per matter.
        let orders = self.orders_for(&sub, matters, &rules, suspicion.as_ref(), &origin)?;
        let (day, seq_floor) = crate::store::order_day(now, self.cfg.tz);
        let intake = Intake {
            day,
            node_id: self.cfg.node_id,
            seq_floor,
            dedupe_key,
            orders,
            now,
        };
        let committed = match self.store.commit_intake(intake).await {
            Ok(c) => c,
            Err(e) => return self.unsaved(e.into(), suspicion.as_ref(), &sub),
        };
        let outcome = match committed {
            IntakeResult::Stored(refs) => {
                self.wake.notify_one();
                if let Some(s) = &suspicion {
                    let masked = sub.identity.masked();
                    tracing::warn!(channel = sub.channel.as_str(), identity = %masked, number = %s.number, score = s.score, rule = s.rule.as_deref().unwrap_or(""), "Possible emergency accepted for urgent review.");
                    metrics::counter!("hotline_emergency_suspected_total", "number" => s.number.clone(), "channel" => sub.channel.as_str(), "by" => s.by())
                        .increment(1);
                }
                for r in &refs {
                    metrics::counter!("hotline_orders_accepted_total", "channel" => sub.channel.as_str(), "category" => r.category.clone()).increment(1);
                }
                Outcome::Accepted { orders: refs }
            }
            IntakeResult::Replayed(o) => o,
        };
        let message = messages::for_outcome(&outcome, self.cfg.tz);
        Ok(Decision { outcome, message })
    }

    /// Sends `body` to dispatch as a contact about order `number` (a `supplement`: what came
    /// after the order was made, such as a voicemail's transcription), once per `key`: the
    /// same step decided again queues nothing more. `alert`: the `emergency/suspected` event
    /// for supervisors when what came names an emergency (emitted with the contact, counted).
    pub async fn supplement(
        &self,
        number: &str,
        key: &str,
        body: serde_json::Value,
        alert: Option<serde_json::Value>,
        now: i64,
    ) -> Result<(), IntakeError> {
        if let Some(a) = &alert {
            let label = |k: &str| a[k].as_str().unwrap_or_default().to_string();
            metrics::counter!("hotline_emergency_suspected_total", "number" => label("number"), "channel" => label("channel"), "by" => label("by"))
                .increment(1);
        }
        self.store
            .enqueue_contact(
                number.to_string(),
                contact_key(number, Some(key)),
                body,
                alert,
                now,
            )
            .await?;
        self.wake.notify_one();
        Ok(())
    }

    /// Remembers `outcome` under the dedupe key, if there is one, and answers with what stands
    /// under it: on several nodes, another may have decided the same push at the same moment
    /// and remembered its answer first. One push gets one answer.
    async fn answer(
        &self,
        key: Option<&String>,
        outcome: Outcome,
        now: i64,
    ) -> Result<Decision, IntakeError> {
        let outcome = match key {
            Some(k) => self
                .store
                .remember(k.clone(), outcome.clone(), now)
                .await?
                .unwrap_or(outcome),
            None => outcome,
        };
        let message = messages::for_outcome(&outcome, self.cfg.tz);
        Ok(Decision { outcome, message })
    }

    /// The answer when the store cannot take a submission (`e`: a damaged store, a full disk,
    /// a lock held past the busy timeout) that carries a `review`: a possible emergency, which
    /// the rules redirect and the model doubts, or the model suspects, or an agent's matter the
    /// rules are sure of. Its order cannot be made, so the person is told the number to dial
    /// instead of a bare 503 (art. 17(1)): on the phone as the doubted IVR speech is
    /// (`Outcome::Advised`: `continue` with the number and `possible_emergency`, TwiML `<Say>`),
    /// on written channels with the number first and that the matter was not kept. Until
    /// 2026-12-07 these got 503 with no number, the doubted one less than a sure emergency
    /// gets, and a Twilio voicemail that named a fire a JSON 503 on which Twilio hangs up.
    /// Anything else, and any other error, stays the error.
    fn unsaved(
        &self,
        e: IntakeError,
        review: Option<&Review>,
        sub: &Submission,
    ) -> Result<Decision, IntakeError> {
        let (IntakeError::Unavailable(why), Some(review)) = (&e, review) else {
            return Err(e);
        };
        let masked = sub.identity.masked();
        tracing::warn!(channel = sub.channel.as_str(), identity = %masked, number = %review.number, by = review.by(), error = %why, "Possible emergency not stored (store unavailable); told the number to dial.");
        metrics::counter!("hotline_emergency_unsaved_total", "number" => review.number.clone(), "channel" => sub.channel.as_str())
            .increment(1);
        let outcome = Outcome::Advised {
            number: review.number.clone(),
        };
        let message = if sub.channel == Channel::Cti {
            messages::for_outcome(&outcome, self.cfg.tz)
        } else {
            messages::unsaved_emergency(&review.number)
        };
        Ok(Decision { outcome, message })
    }

    /// The number a possible emergency in `sub` points to, found without any I/O: the rules'
    /// (sure, or doubted by the model) or the second opinion's. For a reply that must leave
    /// before the pipeline has finished (a platform's reply budget, see `http::social`), so
    /// that it can still name the number. `None`: nothing in it looks like an emergency.
    pub fn possible_emergency(&self, sub: &Submission) -> Option<String> {
        let rules = self.rules();
        texts(sub)
            .find_map(|t| rules.emergency.check(t).map(|r| r.number))
            .or_else(|| {
                let model = rules.second_opinion.as_ref()?;
                texts(sub).find_map(|t| model.check(t)).map(|s| s.number)
            })
    }

    /// The second opinion's score for `text`, which the rules redirect with `r`, when it is
    /// below `rules.second_opinion_doubt`: the model overrules the redirect, and
    /// `hotline_emergency_doubted_total` counts it. `None` when it does not, or when the second
    /// opinion is off.
    pub fn doubts(
        &self,
        rules: &RuleSet,
        text: &str,
        r: &emergency::Redirect,
        channel: &'static str,
    ) -> Option<f64> {
        let score = self.doubt_score(rules, text)?;
        count_doubt(&r.rule, channel);
        Some(score)
    }

    /// As [`doubts`](Self::doubts), without counting: `submit` counts once it knows the text
    /// is heard afresh, not a platform's or a page's retry answered from its record.
    fn doubt_score(&self, rules: &RuleSet, text: &str) -> Option<f64> {
        rules
            .second_opinion
            .as_ref()?
            .doubts(text, self.cfg.doubt_below)
    }

    /// Whether the second opinion overrules the rules' redirect of `text`: only for a sender
    /// who is not suspended (whose message would otherwise not be heard at all), and only when
    /// the model scores the text below `rules.second_opinion_doubt`. Written channels and the
    /// matters an agent registers during a call come here (an agent's registration the rules
    /// would redirect is one the agent, on the line, chose to register). A caller's speech is
    /// doubted in the telephony handler, which tells the caller the number instead of
    /// transferring the call (`Outcome::Advised`); keys pressed never are.
    /// The rules' false redirects are mostly routine matters told in emergency words (a
    /// fire last month, a question about calling 120, a car crash's insurance): a redirect
    /// makes no order, so such a person is turned away. Doubted, the text is taken as an order
    /// marked for urgent review, supervisors are alerted, and the answer still names the number
    /// to dial if the danger is happening now (BENCHMARKS.md, "Emergency detection quality").
    fn doubted(
        &self,
        rules: &RuleSet,
        sub: &Submission,
        text: &str,
        r: &emergency::Redirect,
        now: i64,
    ) -> Option<Review> {
        // Suspension first: a memory look-up, where scoring reads the whole text.
        if self
            .ladder
            .suspension_in(
                &sub.identity.to_string(),
                Scope::of_channel(sub.channel.as_str()),
                now,
            )
            .is_some()
        {
            return None;
        }
        let score = self.doubt_score(rules, text)?;
        Some(Review {
            number: r.number.clone(),
            score,
            rule: Some(r.rule.clone()),
            sure: false,
        })
    }

    /// Splits a submission into work orders (art. 13): structured items first, else a
    /// conservative split of enumerated free text, else one order.
    fn orders_for(
        &self,
        sub: &Submission,
        matters: Vec<(String, Option<Category>)>,
        rules: &RuleSet,
        suspicion: Option<&Review>,
        origin: &str,
    ) -> Result<Vec<NewOrder>, IntakeError> {
        // Every order of the submission carries the review: it is one person's one message
        // (save the agent's, see `each`).
        let review = suspicion.map(|s| OrderReview {
            by: s.by(),
            number: s.number.clone(),
            rule: s.rule.clone(),
            score: (s.score * 100.0).round() / 100.0,
            sure: s.sure,
        });
        let count = matters.len();
        // An emergency an agent registered with other matters marks the matters that name it;
        // all of them when none does on its own (it was named in the whole text only).
        let each = suspicion.is_some_and(|s| s.sure)
            && matters
                .iter()
                .any(|(m, _)| rules.emergency.check(m).is_some());
        let submission_id = uuid::Uuid::new_v4().simple().to_string();
        let identity = sub.identity.to_string();
        let received_at = self.local_time(sub.received_at);
        matters
            .into_iter()
            .enumerate()
            .map(|(i, (content, explicit))| {
                let category = explicit.unwrap_or_else(|| rules.category.classify(&content));
                let guidance = rules.guidance.check(&content);
                let review = review
                    .as_ref()
                    .filter(|_| !each || rules.emergency.check(&content).is_some());
                let body = WorkOrderBody {
                    category: category.as_str(),
                    content: &content,
                    emergency_review: review,
                    handling_hint: guidance.as_ref(),
                    item: work_order::Item {
                        count,
                        index: i + 1,
                    },
                    submission_id: &submission_id,
                    ..WorkOrderBody::common(sub, &identity, &received_at)
                };
                let body = serde_json::to_string(&body)
                    .map_err(|e| IntakeError::Internal(format!("encode a work order: {e}")))?;
                Ok(NewOrder {
                    identity: identity.clone(),
                    category: category.as_str().to_string(),
                    content,
                    body,
                    channel: sub.channel.as_str(),
                    confidential: sub.confidential,
                    email: sub.contact.email.clone(),
                    review: review.cloned(),
                    origin: origin.to_string(),
                })
            })
            .collect()
    }

    fn local_time(&self, t: i64) -> String {
        crate::messages::rfc3339(t, self.cfg.tz)
    }
}

/// What the pipeline modules' tests share.
#[cfg(test)]
pub(crate) mod test_support {
    /// An everyday complaint (street light, barbecue smoke) that holds emergency-sounding words
    /// (油烟, 烟味) and no emergency.
    pub const EVERYDAY: &str = "您好，我想反映一下我们小区的问题，小区门口的路灯坏了很久了，晚上很黑，\
                                老人出行不方便，另外楼下饭店油烟很大，每天晚上烧烤到很晚，烟味飘到家里，\
                                希望有关部门尽快处理。";

    /// `text` without punctuation or spaces, as speech recognition gives it.
    pub fn unpunctuated(text: &str) -> String {
        text.chars().filter(|c| c.is_alphanumeric()).collect()
    }

    /// `text` repeated and cut to `len` characters.
    pub fn cycled(text: &str, len: usize) -> String {
        text.chars().cycle().take(len).collect()
    }

    /// Times `n` calls of `f` (for the ignored timing tests): microseconds per call, and how
    /// many calls returned true.
    pub fn micros_per_call(n: usize, mut f: impl FnMut() -> bool) -> (f64, usize) {
        let t0 = std::time::Instant::now();
        let hits = (0..n).filter(|_| f()).count();
        (t0.elapsed().as_secs_f64() * 1e6 / n as f64, hits)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_second_opinion_loads_off_built_in_or_from_the_rules_folder() {
        let scene = "工地上有个师傅从架子上掉下来了 躺着一动不动";
        let examples = |set: &RuleSet| set.second_opinion.as_ref().map(|m| m.examples());
        let off = RuleSet::load(None, None).ok();
        assert_eq!(off.as_ref().map(examples), Some(None), "switched off");
        let on = RuleSet::load(None, Some(second_opinion::DEFAULT_THRESHOLD)).ok();
        let built_in = second_opinion::SecondOpinion::builtin().examples();
        assert_eq!(on.as_ref().map(examples), Some(Some(built_in)));
        let strict = RuleSet::load(None, Some(1e9)).ok();
        let check = |set: &RuleSet| set.second_opinion.as_ref().and_then(|m| m.check(scene));
        assert!(on.as_ref().and_then(check).is_some());
        assert_eq!(
            strict.as_ref().and_then(check),
            None,
            "the threshold applies"
        );

        // A folder's examples replace the compiled-in ones.
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("emergency-examples.jsonl");
        std::fs::write(
            &file,
            "{\"text\":\"着火了\",\"expect\":[\"119\"]}\n{\"text\":\"路灯坏了\",\"expect\":[]}\n",
        )
        .unwrap();
        let own = RuleSet::load(Some(dir.path()), Some(0.0)).ok();
        assert_eq!(own.as_ref().map(examples), Some(Some(2)));
        // A broken file is an error naming it and the line, unless the model is off.
        std::fs::write(&file, "{\"text\":\"路灯坏了\",\"expect\":[]}\nnot json\n").unwrap();
        let err = RuleSet::load(Some(dir.path()), Some(0.0))
            .err()
            .unwrap_or_default();
        assert!(
            err.contains("emergency-examples.jsonl") && err.contains("line 2"),
            "{err}"
        );
        assert!(RuleSet::load(Some(dir.path()), None).is_ok());
    }

    #[test]
    fn a_broken_file_falls_back_alone_and_is_named() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("emergency.toml"), "[[rule\n").unwrap();
        std::fs::write(
            dir.path().join("guidance.toml"),
            "version = 1\n[[rule]]\nname = \"lottery\"\naction = \"inform\"\n\
             tag = \"guidance:lottery\"\nmessage = \"兑奖请联系彩票中心。\"\nkeywords = [\"彩票\"]\n",
        )
        .unwrap();
        let set = RuleSet::load_each(Some(dir.path()), None);
        assert_eq!(set.problems.len(), 1, "{:?}", set.problems);
        assert!(
            set.problems[0].contains("emergency.toml"),
            "{:?}",
            set.problems
        );
        // The broken file's compiled-in default, the good file's own rules.
        assert!(set.emergency.check("楼下着火了").is_some());
        assert_eq!(
            set.emergency.check("楼下着火了").map(|r| r.number),
            emergency::EmergencyRules::builtin()
                .check("楼下着火了")
                .map(|r| r.number)
        );
        assert!(set.guidance.check("彩票中奖了去哪里兑奖").is_some());
        // A reload refuses the same folder, naming the file.
        let err = RuleSet::load(Some(dir.path()), None)
            .err()
            .unwrap_or_default();
        assert!(err.contains("emergency.toml"), "{err}");
    }

    fn held(map: &KeyLocks) -> usize {
        map.lock().map(|m| m.len()).unwrap_or(usize::MAX)
    }

    #[tokio::test]
    async fn a_key_lock_leaves_the_map_when_released() {
        let map = KeyLocks::default();
        let a = KeyGuard::lock(&map, "wechat:1").await;
        let b = KeyGuard::lock(&map, "wechat:2").await;
        assert_eq!(held(&map), 2);
        drop(a);
        assert_eq!(held(&map), 1);
        drop(b);
        assert_eq!(held(&map), 0);
    }

    #[tokio::test]
    async fn a_waiter_gets_the_key_after_the_holder_and_the_entry_goes_with_the_last() {
        let map = Arc::new(KeyLocks::default());
        let first = KeyGuard::lock(&map, "call:7").await;
        let (tx, rx) = tokio::sync::oneshot::channel();
        let waiter = {
            let map = map.clone();
            tokio::spawn(async move {
                let g = KeyGuard::lock(&map, "call:7").await;
                let _ = tx.send(());
                // Hold it until the test has looked at the map.
                tokio::task::yield_now().await;
                drop(g);
                held(&map)
            })
        };
        // The waiter is queued on the same lock: releasing must keep the entry for it.
        while map
            .lock()
            .map(|m| m.get("call:7").map_or(0, Arc::strong_count))
            .unwrap_or(0)
            < 3
        {
            tokio::task::yield_now().await;
        }
        drop(first);
        assert_eq!(held(&map), 1, "the waiter still needs the entry");
        assert!(rx.await.is_ok(), "the waiter got the key");
        assert_eq!(
            waiter.await.ok(),
            Some(0),
            "the last holder removed the entry"
        );
    }

    fn open(number: &str, content: &str) -> OpenOrder {
        OpenOrder {
            number: number.into(),
            category: "complaint".into(),
            content: content.into(),
        }
    }

    /// A list of matters sent again repeats the orders made of it, one by one; a list of which
    /// one matter is new is heard afresh (art. 13, 17(5)).
    #[test]
    fn a_list_sent_again_repeats_each_of_its_orders() {
        let list = "一是暖气不热，二是物业不接电话，三是垃圾没人清运";
        let mut sub = Submission::new(
            hotline_adapters::Channel::Web,
            hotline_adapters::Identity::new(hotline_adapters::IdentityKind::Phone, "13900000001"),
            0,
            list,
        );
        let matters = matters_of(&sub);
        assert_eq!(matters.len(), 3, "{matters:?}");
        let recent: Vec<_> = matters
            .iter()
            .enumerate()
            .map(|(i, (m, _))| open(&format!("n{i}"), m))
            .collect();
        let found: Vec<_> = repeats(&recent, list, &matters, 0.75)
            .iter()
            .map(|o| o.number.as_str())
            .collect();
        assert_eq!(found, ["n0", "n1", "n2"]);
        // One matter new: no repeat, all three are heard.
        sub.content = "一是暖气不热，二是物业不接电话，三是楼下广场舞太吵".into();
        let matters = matters_of(&sub);
        assert!(repeats(&recent, &sub.content, &matters, 0.75).is_empty());
        // A single matter like one of them is still a repeat of that one.
        let single = [("暖气不热".to_string(), None)];
        let found = repeats(&recent[..1], "暖气不热", &single, 0.75);
        assert_eq!(found.len(), 1);
    }

    /// An old matter told again at length with a new one after it: the whole text is as like
    /// the old order as a repeat, but the new matter is in no order, so both are heard (it
    /// used to become a contact on the street light's order, and no order was made for it).
    /// The same list sent again whole, to an order made of it whole, is still a repeat.
    #[test]
    fn an_old_matter_with_a_new_one_after_it_is_heard() {
        let old = "河西区友谊路某某里小区3号楼门口的路灯坏了一个多星期了，晚上特别黑，老人孩子出行很不安全，请尽快安排维修。";
        let text = format!("{old}还有一件事，楼下的井盖也丢了，很危险");
        let sub = Submission::new(
            hotline_adapters::Channel::Web,
            hotline_adapters::Identity::new(hotline_adapters::IdentityKind::Phone, "13900000001"),
            0,
            text.clone(),
        );
        let matters = matters_of(&sub);
        assert_eq!(matters.len(), 2, "{matters:?}");
        assert!(
            similar::similarity(old, &text) >= 0.75,
            "the premise: the whole text is like the old order"
        );
        let recent = [open("n0", old)];
        let found: Vec<_> = repeats(&recent, &text, &matters, 0.75)
            .iter()
            .map(|o| o.number.as_str())
            .collect();
        assert!(found.is_empty(), "the new matter was swallowed: {found:?}");
        // An order made of the whole list (before it was split, or by an agent) covers each.
        let whole = [open("n1", &text)];
        let found: Vec<_> = repeats(&whole, &text, &matters, 0.75)
            .iter()
            .map(|o| o.number.as_str())
            .collect();
        assert_eq!(found, ["n1"]);
    }

    /// One push decided twice queues one contact per order; contacts without a dedupe key, and
    /// the same push's contacts about two orders, have keys of their own.
    #[test]
    fn a_contact_key_follows_the_push_it_came_from() {
        let a = contact_key("2026120701000001", Some("wechat:main:msg:1:o:2"));
        assert_eq!(
            a,
            contact_key("2026120701000001", Some("wechat:main:msg:1:o:2"))
        );
        assert!(a.starts_with("2026120701000001-c") && a.len() == "2026120701000001-c".len() + 32);
        assert_ne!(
            a,
            contact_key("2026120701000001", Some("wechat:main:msg:3:o:2"))
        );
        assert_ne!(
            a,
            contact_key("2026120701000002", Some("wechat:main:msg:1:o:2"))
        );
        assert_ne!(
            contact_key("2026120701000001", None),
            contact_key("2026120701000001", None)
        );
    }

    /// A voicemail with nothing but its recording carries the gateway's placeholder text, the
    /// same for every one: not the caller's words, so never judged a repeat by them.
    #[test]
    fn a_recording_without_words_is_never_a_repeat_by_its_placeholder() {
        let mut sub = Submission::new(
            hotline_adapters::Channel::Cti,
            hotline_adapters::Identity::new(hotline_adapters::IdentityKind::Phone, "13900000041"),
            0,
            hotline_adapters::cti::RECORDING_ONLY_CONTENT,
        );
        assert!(!has_own_words(&sub));
        sub.content = "电话留言：路灯不亮".into();
        assert!(has_own_words(&sub));
    }
}
