//! The nuisance ladder (article 32): quota → reminders → growing suspensions → operator lift.
//!
//! - The quota is a GCRA per identity (`governor`'s keyed limiter): `quota` submissions per
//!   `per`, refilled evenly. The clock is a type parameter so tests drive it by hand.
//! - Over quota, a submission is refused with a reminder and a warning is stored with time,
//!   channel and evidence. With `warnings = 2`, the first two refusals within `per` are
//!   reminders (`warnings_left` 1, then 0); the next refusal starts a suspension.
//! - Suspension lengths follow `suspensions`: the n-th rule-decided suspension of an identity
//!   takes step n, capped at the last step. Suspensions are stored durably and mirrored in memory,
//!   so the ringing path of a phone call decides from memory.
//! - A lift by an operator ends the suspension, resets the warnings and starts a fresh quota
//!   (by moving the identity to a new limiter key: governor has no per-key reset).
//! - Emergencies never reach the ladder: the pipeline checks them first.
//! - Where a step holds ([`Scope`]): the web form's identity is a phone the submitter typed,
//!   which nobody verifies, so what the web form earns (its quota, reminders and suspensions,
//!   `decided_by` [`RULE_WEB`]) holds on the web form only. What the carrier's caller id,
//!   WeChat or Weibo earn, and operators' decisions, hold everywhere, the web form included.
//!   Until 2026-12-07 anyone could type a citizen's number into the form six times and have
//!   that number's calls rejected at ringing (review finding F2).
//!   Nor does a typed phone stop a flood: each made-up number is a fresh identity with a fresh
//!   quota, so the web form also caps each client address (`web.address_quota`, see
//!   [`crate::pipeline::address`]), which records nothing here.
//! - Memory is bounded: [`Ladder::sweep`] drops idle limiter keys, and past `max_keys` the
//!   quota is not counted (nobody is refused by it) until a sweep frees room.

use crate::pipeline::redis_limiter::{Decision, RedisGcra};
use crate::store::{Claim, NextStep, Store, StoreError, Suspension, WarnRequest, Warned, Warning};
pub use crate::store::{Scope, RULE_WEB};
use governor::clock::{Clock, DefaultClock};
use governor::middleware::NoOpMiddleware;
use governor::state::keyed::DashMapStateStore;
use governor::{Quota, RateLimiter};
use hotline_adapters::{Identity, IdentityKind, Outcome, Submission};
use std::collections::{HashMap, HashSet};
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

/// Ladder settings (from `[nuisance]`).
#[derive(Debug, Clone)]
pub struct LadderConfig {
    /// Submissions per identity per `per`.
    pub quota: u32,
    /// The quota's period, also the window in which warnings count.
    pub per: Duration,
    /// Reminders before a suspension.
    pub warnings: u32,
    /// Successive suspension lengths; the last repeats.
    pub steps: Vec<Duration>,
    /// Identities never throttled.
    pub allow: Vec<Identity>,
    /// Most distinct limiter keys before new identities share coarse buckets.
    pub max_keys: usize,
    /// The hotline's time zone, for the `until` a suspended person is shown.
    pub tz: chrono_tz::Tz,
}

/// The limiter key: a keyed 64-bit hash of the identity plus its reset epoch. A hash instead of
/// the identity string keeps a million keys in about half the memory (measured in
/// BENCHMARKS.md); the hasher's random keys make collisions impossible to aim at.
type Key = (u64, u32);

/// The ladder, generic over the limiter's clock (the real one by default).
pub struct Ladder<C: Clock + Clone = DefaultClock> {
    cfg: LadderConfig,
    limiter: RateLimiter<Key, DashMapStateStore<Key>, C, NoOpMiddleware<C::Instant>>,
    clock: C,
    /// `nuisance.allow`: permanent, not changed by the admin API.
    configured: HashSet<String>,
    /// The operators' allow list, mirrored from the store (shared by every node).
    allowed: RwLock<HashSet<String>>,
    epochs: Mutex<HashMap<String, u32>>,
    /// Active suspensions by the ladder they stop and where they hold: a ladder may have a
    /// web-only one and one for every channel at once (each ends on its own).
    active: RwLock<HashMap<(String, Scope), Suspension>>,
    hasher: std::hash::RandomState,
    /// Identities linked to another (same person by phone and WeChat): they share its ladder.
    links: RwLock<HashMap<String, String>>,
    store: Arc<dyn Store>,
    /// The quota shared by several nodes (Redis), when configured; the local limiter above is
    /// then the fallback for when Redis cannot be reached.
    shared: Option<RedisGcra>,
    /// Counts this node's own changes to `active`, `links` and `allowed` (bumped under their
    /// write locks, after the change is stored), so a [`refresh`](Self::refresh) knows which of
    /// them its picture of the store may lack.
    changes: std::sync::atomic::AtomicU64,
    /// This node's own changes, by their `changes` count, kept while a refresh may not have
    /// seen them in the store: each refresh applies the store's picture, then these again on
    /// top. Only kept once refreshes run (several nodes); each refresh drops those it read.
    local: Mutex<Vec<(u64, Local)>>,
    /// Whether [`refresh`](Self::refresh) runs (several nodes), so that `local` is kept.
    refreshing: std::sync::atomic::AtomicBool,
    /// One async lock per identity being escalated now, so concurrent refusals of one caller
    /// decide its next step one after another (else each would pass the memory check and
    /// record its own suspension). Only refusals take these; entries go when the last holder
    /// does, so the map holds identities mid-escalation, not every caller seen.
    escalating: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    /// Lifts already applied here, by identity: the time of each one's reset, so that a lift
    /// made through another node's admin API starts the caller's quota afresh on this node
    /// once, at the next [`refresh`](Self::refresh).
    resets_applied: Mutex<HashMap<String, i64>>,
}

/// How far back [`Ladder::refresh`] looks for lifts made on other nodes: well over its period
/// (2 s), so a slow round misses none.
const RESETS_LOOKBACK: i64 = 120;

/// Most local changes kept for the next refresh; a store that cannot be read for long (its
/// refreshes fail) must not grow them without end. Past it the oldest go: a lost one is only
/// missing from memory until a refresh reads it from the store.
const LOCAL_CAP: usize = 100_000;

/// One change this node made to its memory of the ladder (after storing it).
#[derive(Debug, Clone)]
enum Local {
    /// A suspension took effect on the ladder `0`.
    Suspended(String, Suspension),
    /// The ladder `0`'s suspension was lifted.
    Lifted(String),
    /// Identity `0` was linked to `1`'s ladder.
    Linked(String, String),
    /// Identity `0` was put on the operators' allow list (`true`) or taken off.
    Allowed(String, bool),
}

/// The store's picture of the ladders, read by a refresh before it replaces memory.
struct Picture {
    /// This node's changes counted before the reads began (the picture has them).
    seen: u64,
    links: HashMap<String, String>,
    active: HashMap<(String, Scope), Suspension>,
    allowed: HashSet<String>,
}

/// The memory [`Local`] changes apply to, each write-locked.
struct Memory<'a> {
    links: &'a mut HashMap<String, String>,
    active: &'a mut HashMap<(String, Scope), Suspension>,
    allowed: &'a mut HashSet<String>,
}

impl Local {
    /// Applies the change to memory: the same code for the change itself and for putting it
    /// back on top of a refreshed picture.
    fn apply(&self, m: &mut Memory<'_>) {
        match self {
            Local::Suspended(id, s) => {
                if s.decided_by != "rule" && s.scope() == Scope::All {
                    // An operator's decision ended whatever was active (see
                    // `Store::record_suspension`), the web form's included.
                    m.active.remove(&(id.clone(), Scope::Web));
                }
                m.active.insert((id.clone(), s.scope()), s.clone());
            }
            Local::Lifted(id) => {
                m.active.remove(&(id.clone(), Scope::All));
                m.active.remove(&(id.clone(), Scope::Web));
            }
            Local::Linked(id, target) => {
                // Whatever was linked to `id` follows it.
                for v in m.links.values_mut() {
                    if v == id {
                        *v = target.clone();
                    }
                }
                m.links.insert(id.clone(), target.clone());
                // A suspension of `id` now stops the shared ladder: it was kept under its own
                // name, which no look-up reads once the identity is linked, and so a link
                // freed a suspended caller.
                let rows = m.active.drain().map(|(_, s)| s).collect();
                *m.active = by_ladder(rows, m.links);
            }
            Local::Allowed(id, true) => {
                m.allowed.insert(id.clone());
            }
            Local::Allowed(id, false) => {
                m.allowed.remove(id);
            }
        }
    }
}

/// The reason given to a person suspended by the rule, in words they can read; it names the
/// configured quota period `per` (warnings count within it), so the person is told the window
/// that actually applied.
pub fn rule_reason(per: Duration) -> String {
    format!(
        "在{}内多次重复占用热线资源，经提醒后仍未改正（《管理办法》第三十二条）",
        period_words(per)
    )
}

/// The reason of a suspension an offence led to (an agent's abuse flag, a long call with no
/// matter): not worded for the quota, since the person need not have submitted anything; the
/// offence itself follows it (`扰乱热线秩序…：话务员标记：辱骂`, see [`flagged_offence`]).
pub fn offence_reason() -> &'static str {
    "扰乱热线秩序，经提醒后仍未改正（《管理办法》第三十二条）"
}

/// The reason the web form gives a typed phone whose suspension holds everywhere (see
/// `Ladder::refusal_if_suspended`): whoever typed it may not be the person.
pub fn typed_phone_reason() -> &'static str {
    "违反热线使用规定（《管理办法》第三十二条）"
}

/// Kinds of offence an agent's flag may name, as the words in the flag that mean them and the
/// word the person hears: the public part of a flag's suspension reason is built from these
/// alone (see [`flagged_offence`]).
const FLAG_KINDS: [(&[&str], &str); 6] = [
    (&["辱骂", "谩骂", "骂人", "脏话", "侮辱"], "辱骂"),
    (&["威胁", "恐吓"], "威胁"),
    (&["骚扰"], "骚扰"),
    (&["占线", "不说话", "无声"], "恶意占线"),
    (&["纠缠"], "无理纠缠"),
    (&["谎报", "虚假", "假报"], "谎报"),
];

/// What the person (and the events and mail that carry a suspension's reason) is told of an
/// agent's flag: the kinds of offence its text names, in fixed words (`话务员标记：辱骂、威胁`),
/// or a fixed sentence when it names none. The agent's own words stay in the warning's
/// evidence, which only operators read.
///
/// Until 2026-12-07 the flag's text itself became the public reason (phone numbers, e-mails
/// and ids masked): an agent's note such as "来电人威胁邻居欧阳娜娜（朝阳区建国路88号…），话务员
/// 王小明工号1234被辱骂" was read to the flagged caller, given to anyone who typed the caller's
/// number into the web form, and published on MQTT and in the supervisors' mail, with the
/// neighbour's name and address and the agent's name and badge (the privacy review's F1).
pub fn flagged_offence(flag: &str) -> String {
    let kinds: Vec<&str> = FLAG_KINDS
        .iter()
        .filter(|(words, _)| words.iter().any(|w| flag.contains(w)))
        .map(|(_, kind)| *kind)
        .collect();
    if kinds.is_empty() {
        "话务员标记的扰乱热线秩序行为".to_string()
    } else {
        format!("话务员标记：{}", kinds.join("、"))
    }
}

/// A period as a person says it: 一小时, 2小时, 30分钟, 一天.
fn period_words(per: Duration) -> String {
    let secs = per.as_secs().max(1);
    let (n, unit) = if secs % 86_400 == 0 {
        (secs / 86_400, "天")
    } else if secs % 3600 == 0 {
        (secs / 3600, "小时")
    } else if secs % 60 == 0 {
        (secs / 60, "分钟")
    } else {
        (secs, "秒")
    };
    match (n, unit) {
        (1, "天") => "一天".into(),
        (1, "小时") => "一小时".into(),
        _ => format!("{n}{unit}"),
    }
}

impl Ladder<DefaultClock> {
    /// A ladder on the real clock, with the active suspensions loaded from the store.
    pub async fn open(
        cfg: LadderConfig,
        store: Arc<dyn Store>,
        now: i64,
    ) -> Result<Ladder<DefaultClock>, StoreError> {
        Ladder::with_clock(cfg, store, DefaultClock::default(), now).await
    }
}

impl<C: Clock + Clone> Ladder<C> {
    /// A ladder on the given clock.
    pub async fn with_clock(
        cfg: LadderConfig,
        store: Arc<dyn Store>,
        clock: C,
        now: i64,
    ) -> Result<Ladder<C>, StoreError> {
        let per_cell = cfg.per / cfg.quota.max(1);
        let burst = NonZeroU32::new(cfg.quota.max(1)).unwrap_or(NonZeroU32::MIN);
        let quota = Quota::with_period(per_cell.max(Duration::from_millis(1)))
            .unwrap_or_else(|| Quota::per_hour(burst))
            .allow_burst(burst);
        let limiter = RateLimiter::new(quota, DashMapStateStore::default(), clock.clone());
        // An unreadable store must not stop the gateway (emergencies need none): start empty.
        let links: HashMap<String, String> = store
            .links()
            .await
            .unwrap_or_default()
            .into_iter()
            .collect();
        let active = by_ladder(
            store.active_suspensions(now).await.unwrap_or_else(|e| {
                tracing::error!(error = %e, "Suspensions not loaded.");
                Vec::new()
            }),
            &links,
        );
        let configured = cfg.allow.iter().map(|i| i.to_string()).collect();
        let allowed = store.allowed().await.unwrap_or_else(|e| {
            tracing::error!(error = %e, "Operators' allow list not loaded.");
            Vec::new()
        });
        Ok(Ladder {
            links: RwLock::new(links),
            hasher: std::hash::RandomState::new(),
            cfg,
            limiter,
            clock,
            configured,
            allowed: RwLock::new(allowed.into_iter().collect()),
            epochs: Mutex::new(HashMap::new()),
            active: RwLock::new(active),
            store,
            shared: None,
            changes: std::sync::atomic::AtomicU64::new(0),
            local: Mutex::new(Vec::new()),
            refreshing: std::sync::atomic::AtomicBool::new(false),
            resets_applied: Mutex::new(HashMap::new()),
            escalating: Mutex::new(HashMap::new()),
        })
    }

    /// Counts the quota in Redis, shared by every node, instead of in this node's memory.
    pub fn share_quota(mut self, shared: RedisGcra) -> Self {
        self.shared = Some(shared);
        self
    }

    /// Reloads active suspensions, links and the allow list from the store. Several nodes
    /// share one store; a node calls this every few seconds so a suspension, lift, link or
    /// allow-list entry made through another node's admin API holds here too.
    ///
    /// The store's picture replaces memory, and this node's own changes that the picture may
    /// lack (made since the reads began) are applied again on top. Until 2026-12-07 a refresh
    /// that saw such a change threw its whole picture away: a node suspending callers of a
    /// flood in most rounds kept a stale memory for 10 s, 30 s and more, so another node's
    /// lift was not seen and an allow-listed caller was warned and suspended.
    pub async fn refresh(&self, now: i64) -> Result<(), StoreError> {
        let picture = self.read_picture(now).await?;
        self.apply_picture(picture);
        Ok(())
    }

    /// A refresh's first half: reads the store's picture (the slow part, and the one other
    /// nodes' writes and this node's own changes can overlap).
    async fn read_picture(&self, now: i64) -> Result<Picture, StoreError> {
        use std::sync::atomic::Ordering;
        self.refreshing.store(true, Ordering::SeqCst);
        // Every change counted up to here was stored before the reads below begin (each is
        // counted after its store write), so the picture has it.
        let seen = self.changes.load(Ordering::SeqCst);
        let links: HashMap<String, String> = self.store.links().await?.into_iter().collect();
        let active = by_ladder(self.store.active_suspensions(now).await?, &links);
        let allowed: HashSet<String> = self.store.allowed().await?.into_iter().collect();
        // A lift made on another node resets the caller's quota there; here this node's own
        // limiter (and its cache of Redis refusals) would still refuse, and each refusal after
        // the lift would be a new warning towards the next, longer suspension.
        for (id, at) in self.store.resets_since(now - RESETS_LOOKBACK).await? {
            if self.note_reset(&id, at) {
                self.fresh_quota(&id);
            }
        }
        Ok(Picture {
            seen,
            links,
            active,
            allowed,
        })
    }

    /// A refresh's second half: the picture replaces memory, with this node's changes made
    /// since its reads began applied again on top.
    fn apply_picture(&self, picture: Picture) {
        let Picture {
            seen,
            mut links,
            mut active,
            mut allowed,
        } = picture;
        // The same lock order as `link` (links, then active), then the allow list; local
        // changes take these write locks before they are logged, so none is applied in
        // between.
        let (Ok(mut l), Ok(mut a), Ok(mut al), Ok(mut log)) = (
            self.links.write(),
            self.active.write(),
            self.allowed.write(),
            self.local.lock(),
        ) else {
            return;
        };
        let mut m = Memory {
            links: &mut links,
            active: &mut active,
            allowed: &mut allowed,
        };
        log.retain(|(n, _)| *n > seen);
        for (_, change) in log.iter() {
            change.apply(&mut m);
        }
        *l = links;
        *a = active;
        *al = allowed;
    }

    /// Applies a local change to memory, counts it and keeps it for the next refresh.
    fn change(&self, change: Local) {
        use std::sync::atomic::Ordering;
        let (Ok(mut links), Ok(mut active), Ok(mut allowed)) = (
            self.links.write(),
            self.active.write(),
            self.allowed.write(),
        ) else {
            return;
        };
        change.apply(&mut Memory {
            links: &mut links,
            active: &mut active,
            allowed: &mut allowed,
        });
        let n = self.changes.fetch_add(1, Ordering::SeqCst) + 1;
        if self.refreshing.load(Ordering::SeqCst) {
            if let Ok(mut log) = self.local.lock() {
                if log.len() >= LOCAL_CAP {
                    log.drain(..LOCAL_CAP / 2);
                }
                log.push((n, change));
            }
        }
    }

    /// Whether `id` is over its quota now: `Some(seconds until the next submission is
    /// allowed)`. Asks Redis when the quota is shared; when Redis cannot answer, this node's
    /// own limiter decides, so intake keeps accepting (a caller may then get up to one quota
    /// per node until Redis is back; that is the price of never refusing on an outage).
    async fn over_quota(&self, id: &str) -> Option<u64> {
        if let Some(shared) = &self.shared {
            match shared.check(id).await {
                Ok(Decision::Allow) => return None,
                Ok(Decision::Deny { retry_after }) => {
                    return Some(retry_after.as_secs().max(1));
                }
                Err(_) => {
                    // RedisGcra logs and counts the error itself; this counts the decisions
                    // taken locally instead.
                    metrics::counter!("hotline_limiter_fallback_total").increment(1);
                }
            }
        }
        // A full limiter decides nothing: see `key`.
        let key = self.key(id)?;
        match self.limiter.check_key(&key) {
            Ok(()) => None,
            Err(not_until) => Some(not_until.wait_time_from(self.clock.now()).as_secs().max(1)),
        }
    }

    /// The limiter key of `identity`; `None` once the limiter holds `max_keys` keys.
    fn key(&self, identity: &str) -> Option<Key> {
        let epoch = self
            .epochs
            .lock()
            .map(|m| m.get(identity).copied().unwrap_or(0))
            .unwrap_or(0);
        let hash = std::hash::BuildHasher::hash_one(&self.hasher, identity);
        // Bounded memory: once the map is full (a flood of distinct identities, such as made-up
        // phone numbers on the web form), nobody is counted until the next sweep frees room,
        // and `hotline_limiter_overflow_total` says so (governor cannot tell whether a key is
        // already present). Identities used to share 1024 coarse buckets instead, which filled
        // at once: innocent callers were then refused, warned and suspended for the flood's
        // sake. As with Redis down, the hotline keeps accepting rather than refusing everyone.
        if self.limiter.len() >= self.cfg.max_keys {
            metrics::counter!("hotline_limiter_overflow_total").increment(1);
            return None;
        }
        Some((hash, epoch))
    }

    /// The identity whose ladder this one shares (itself unless linked).
    pub fn canonical(&self, identity: &str) -> String {
        self.links
            .read()
            .ok()
            .and_then(|l| l.get(identity).cloned())
            .unwrap_or_else(|| identity.to_string())
    }

    /// Links `identity` to `to` (the same person): from now on they share `to`'s ladder.
    /// Links do not chain: linking to an identity that is itself linked uses its target.
    pub async fn link(&self, identity: &Identity, to: &Identity) -> Result<String, StoreError> {
        let target = self.canonical(&to.to_string());
        let id = identity.to_string();
        self.store.record_link(id.clone(), target.clone()).await?;
        self.change(Local::Linked(id, target.clone()));
        Ok(target)
    }

    /// Identities linked to `canonical`.
    pub fn linked_to(&self, canonical: &str) -> Vec<String> {
        self.links
            .read()
            .map(|l| {
                let mut v: Vec<String> = l
                    .iter()
                    .filter(|(_, t)| t.as_str() == canonical)
                    .map(|(k, _)| k.clone())
                    .collect();
                v.sort();
                v
            })
            .unwrap_or_default()
    }

    /// The active suspension of an identity (or of the identity it is linked to) that holds
    /// on every channel, from memory: the one a call, WeChat or Weibo is refused for. A
    /// suspension the web form earned is not one (see [`suspension_in`](Self::suspension_in)).
    pub fn suspension(&self, identity: &str, now: i64) -> Option<Suspension> {
        self.suspension_in(identity, Scope::All, now)
    }

    /// The active suspension of an identity (or of the identity it is linked to) that holds
    /// in `scope`, from memory: for [`Scope::Web`] the web form's own or one for every
    /// channel, whichever ends later.
    pub fn suspension_in(&self, identity: &str, scope: Scope, now: i64) -> Option<Suspension> {
        let id = self.canonical(identity);
        let map = self.active.read().ok()?;
        let live = |sc: Scope| map.get(&(id.clone(), sc)).filter(|s| s.until > now);
        let all = live(Scope::All);
        match scope {
            Scope::All => all.cloned(),
            Scope::Web => match (all, live(Scope::Web)) {
                (Some(a), Some(w)) if w.until > a.until => Some(w.clone()),
                (Some(a), _) => Some(a.clone()),
                (None, w) => w.cloned(),
            },
        }
    }

    /// What the operators' view shows as active: the suspension for every channel if there
    /// is one, else the web form's own.
    pub fn suspension_shown(&self, identity: &str, now: i64) -> Option<Suspension> {
        self.suspension(identity, now).or_else(|| {
            let id = self.canonical(identity);
            let map = self.active.read().ok()?;
            map.get(&(id, Scope::Web))
                .filter(|s| s.until > now)
                .cloned()
        })
    }

    /// Whether an identity is on the allow list (the config's or the operators').
    pub fn is_allowed(&self, identity: &str) -> bool {
        self.configured.contains(identity)
            || self
                .allowed
                .read()
                .map(|a| a.contains(identity))
                .unwrap_or(false)
    }

    /// The identity whose ladder decides about `identity` (itself unless linked), or `None`
    /// for one on the allow list.
    fn ladder_of(&self, identity: &Identity) -> Option<String> {
        let raw = identity.to_string();
        let id = self.canonical(&raw);
        (!(self.is_allowed(&id) || self.is_allowed(&raw))).then_some(id)
    }

    /// The refusal for a suspended identity (or one linked to it), without counting anything:
    /// for contacts that never count against the quota but must not reach an order from a
    /// suspended sender (a photo or location that would supplement one), and for submissions
    /// asked this before intake sheds (see [`count`](Self::count)). `scope`: where the contact
    /// came ([`Scope::of_channel`]); a web-only suspension refuses the web form only.
    pub fn refusal_if_suspended(
        &self,
        identity: &Identity,
        scope: Scope,
        now: i64,
    ) -> Option<Outcome> {
        let id = self.ladder_of(identity)?;
        self.suspension_in(&id, scope, now)
            .map(|s| suspended(&s, self.cfg.tz, identity, scope))
    }

    /// Decides about a (non-emergency) submission: `None` lets it through; otherwise the
    /// refusal to answer with. Counts the submission against the quota either way.
    pub async fn check(&self, sub: &Submission, now: i64) -> Result<Option<Outcome>, StoreError> {
        self.check_identity(&sub.identity, sub.channel.as_str(), &sub.content, now)
            .await
    }

    /// As [`check`](Self::check), for a contact that is not a submission (a ringing call).
    pub async fn check_identity(
        &self,
        identity: &Identity,
        channel: &str,
        evidence: &str,
        now: i64,
    ) -> Result<Option<Outcome>, StoreError> {
        if let Some(refusal) = self.refusal_if_suspended(identity, Scope::of_channel(channel), now)
        {
            return Ok(Some(refusal));
        }
        self.count_identity(identity, channel, evidence, now, None)
            .await
    }

    /// Counts a submission whose sender [`refusal_if_suspended`](Self::refusal_if_suspended)
    /// has let through: `None`, or the reminder or suspension it brings. The pipeline asks the
    /// two apart, so that a submission shed in between is not counted.
    ///
    /// `claim`: the submission's dedupe key, when it has one, and whether a refusal stays
    /// remembered under it (see [`Claim`]). Before a reminder is recorded the key is claimed:
    /// when the same push or page was taken on another node meanwhile, its answer is returned
    /// and nothing is recorded.
    pub async fn count(
        &self,
        sub: &Submission,
        now: i64,
        claim: Option<(String, bool)>,
    ) -> Result<Option<Outcome>, StoreError> {
        self.count_identity(
            &sub.identity,
            sub.channel.as_str(),
            &sub.content,
            now,
            claim,
        )
        .await
    }

    /// As [`count`](Self::count), for any contact. A suspension another request made since
    /// the caller asked is found by `escalate`, under the caller's escalation lock.
    async fn count_identity(
        &self,
        identity: &Identity,
        channel: &str,
        evidence: &str,
        now: i64,
        claim: Option<(String, bool)>,
    ) -> Result<Option<Outcome>, StoreError> {
        let Some(id) = self.ladder_of(identity) else {
            return Ok(None);
        };
        let Some(retry_after) = self
            .over_quota(&quota_key(&id, Scope::of_channel(channel)))
            .await
        else {
            return Ok(None);
        };
        let outcome = self
            .escalate(
                identity,
                &id,
                channel,
                evidence,
                1,
                retry_after,
                rule_reason(self.cfg.per),
                now,
                claim.map(|(key, keep)| Claim {
                    key,
                    retry_after,
                    keep,
                }),
            )
            .await?;
        Ok(Some(outcome))
    }

    /// Records an offence that is not a submission (art. 32): a long call with no registered
    /// matter (weight 1) or abuse flagged by an agent (weight 2, so it escalates faster). Like a
    /// refusal over quota, it is a reminder while reminders are left, else a suspension.
    /// `evidence` is kept for operators and the police packet; `public` is what the suspension's
    /// reason says, which the person hears and events and mail carry: it names the offence, not
    /// who reported it, and any phone number, e-mail or openid in it is masked.
    pub async fn offence(
        &self,
        identity: &Identity,
        channel: &str,
        evidence: &str,
        public: &str,
        weight: u32,
        now: i64,
    ) -> Result<Outcome, StoreError> {
        let id = self.canonical(&identity.to_string());
        if self.is_allowed(&id) {
            return Ok(Outcome::Nothing);
        }
        // An offence where the platform vouches for the caller is not stopped by a web-only
        // suspension: it climbs the ladder for every channel, which the form's steps did not.
        let scope = Scope::of_channel(channel);
        if let Some(s) = self.suspension_in(&id, scope, now) {
            return Ok(suspended(&s, self.cfg.tz, identity, scope));
        }
        // With ids: an agent may type the caller's WeChat id as well as a number.
        let public = hotline_adapters::mask::scrub_text_and_ids(public);
        let reason = format!(
            "{}：{}",
            offence_reason(),
            public.chars().take(100).collect::<String>()
        );
        self.escalate(
            identity, &id, channel, evidence, weight, 0, reason, now, None,
        )
        .await
    }

    /// One step up the ladder for the (canonical) identity `id`: a reminder (recorded `weight`
    /// times, with evidence) while reminders are left within the window, else a suspension of
    /// the next length. The one place both refusals over quota and offences go through.
    /// `channel` decides where the step holds ([`Scope::of_channel`]): the reminders counted,
    /// the suspension that stops it and the one it starts.
    #[allow(clippy::too_many_arguments)]
    async fn escalate(
        &self,
        identity: &Identity,
        id: &str,
        channel: &str,
        evidence: &str,
        weight: u32,
        retry_after: u64,
        reason: String,
        now: i64,
        claim: Option<Claim>,
    ) -> Result<Outcome, StoreError> {
        let scope = Scope::of_channel(channel);
        let turn = self.escalation_turn(id);
        let _held = turn.lock.lock().await;
        // Another request of this caller may have suspended it while this one waited.
        if let Some(s) = self.suspension_in(id, scope, now) {
            return Ok(suspended(&s, self.cfg.tz, identity, scope));
        }
        let weight = weight.max(1);
        let window_start = now - self.cfg.per.as_secs() as i64;
        let w = Warning {
            at: now,
            channel: channel.to_string(),
            evidence: evidence_of(evidence),
        };
        // Counted and recorded in one step of the store (on several nodes, one transaction
        // under the caller's lock, the key claimed first, the suspension in it too: see
        // `Store::warn`).
        let key = claim.as_ref().map(|c| c.key.clone());
        let next = NextStep {
            steps: self
                .cfg
                .steps
                .iter()
                .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
                .collect(),
            reason: reason.clone(),
            tz: self.cfg.tz,
        };
        match self
            .store
            .warn(WarnRequest {
                identity: id.to_string(),
                warning: w,
                weight,
                limit: self.cfg.warnings,
                since: window_start,
                claim,
                // An address is not a person (see `suspends`): no suspension in the count's
                // transaction either.
                next: suspends(identity).then_some(next),
            })
            .await?
        {
            Warned::Answered(earlier) => return Ok(earlier),
            Warned::Suspended {
                suspension,
                recorded,
            } => {
                self.noted_suspension(identity, &suspension, recorded);
                return Ok(suspended(&suspension, self.cfg.tz, identity, scope));
            }
            Warned::Recorded { before } => {
                metrics::counter!("hotline_callers_warned_total", "channel" => channel.to_string())
                    .increment(1);
                tracing::info!(identity = %identity.masked(), channel, "Caller reminded (art. 32).");
                return Ok(Outcome::Throttled {
                    retry_after,
                    warnings_left: self.cfg.warnings.saturating_sub(before + weight),
                });
            }
            Warned::Exhausted => {}
        }
        // Nor is a suspension started for a push or page another node took meanwhile.
        if let Some(key) = key {
            if let Some(earlier) = self.store.recall(key, now).await? {
                return Ok(earlier);
            }
        }
        if !suspends(identity) {
            return Ok(Outcome::Throttled {
                retry_after,
                warnings_left: 0,
            });
        }
        // The offence's words go with the suspension, as with its reminders: the flag that
        // suspends records no reminder, and its reason says only the kind of offence.
        let s = self
            .suspend(
                identity,
                None,
                reason,
                evidence_of(evidence),
                scope.rule(),
                now,
            )
            .await?;
        Ok(suspended(&s, self.cfg.tz, identity, scope))
    }

    /// The escalation lock of `id`, shared with whoever else is escalating it now.
    fn escalation_turn(&self, id: &str) -> EscalationTurn<'_> {
        let lock = match self.escalating.lock() {
            Ok(mut map) => map.entry(id.to_string()).or_default().clone(),
            // A poisoned map (a panic elsewhere) must not stop the ladder: escalate unserialised.
            Err(_) => Arc::default(),
        };
        EscalationTurn {
            map: &self.escalating,
            id: id.to_string(),
            lock,
        }
    }

    /// Starts a suspension. `length` `None` takes the identity's next step on the ladder (of
    /// the scope `decided_by` names: [`RULE_WEB`] holds on the web form only). `reason` is
    /// public (the person hears it, events and mail carry it); `evidence` is kept for
    /// operators only (see [`Suspension::evidence`]).
    pub async fn suspend(
        &self,
        identity: &Identity,
        length: Option<Duration>,
        reason: String,
        evidence: String,
        decided_by: &str,
        now: i64,
    ) -> Result<Suspension, StoreError> {
        let id = self.canonical(&identity.to_string());
        let length = match length {
            Some(l) => l,
            None => {
                let scope = Scope::of_decision(decided_by);
                let n = self.store.suspension_count(id.clone(), scope).await? as usize;
                let last = self.cfg.steps.len().saturating_sub(1);
                self.cfg
                    .steps
                    .get(n.min(last))
                    .copied()
                    .unwrap_or(Duration::from_secs(3600))
            }
        };
        let s = Suspension {
            identity: id.clone(),
            start: now,
            until: now.saturating_add(i64::try_from(length.as_secs()).unwrap_or(i64::MAX)),
            reason,
            evidence,
            decided_by: decided_by.to_string(),
            lifted_at: None,
        };
        let recorded = self.store.record_suspension(s.clone()).await?;
        if let Some(active) = recorded {
            // Another node suspended the caller since this one's refresh: that step stands.
            self.noted_suspension(identity, &active, false);
            return Ok(active);
        }
        self.noted_suspension(identity, &s, true);
        Ok(s)
    }

    /// Applies a suspension the store holds now to this node's picture; one this node
    /// `recorded` is counted and logged (another node's, which stood, was counted there).
    fn noted_suspension(&self, identity: &Identity, s: &Suspension, recorded: bool) {
        self.change(Local::Suspended(s.identity.clone(), s.clone()));
        if recorded {
            let decided_by = s.decided_by.as_str();
            metrics::counter!("hotline_callers_suspended_total", "decided_by" => decided_by.to_string())
                .increment(1);
            tracing::warn!(identity = %identity.masked(), until = s.until, decided_by, "Caller suspended.");
        }
    }

    /// Lifts an identity's suspension, resets its warnings and gives it a fresh quota.
    pub async fn lift(&self, identity: &Identity, now: i64) -> Result<bool, StoreError> {
        let id = self.canonical(&identity.to_string());
        let mut was = self.store.lift_suspension(id.clone(), now).await?;
        // A suspension recorded under an identity since linked stops the same ladder: it is
        // lifted with it, or the next refresh would bring it back.
        for linked in self.linked_to(&id) {
            was |= self.store.lift_suspension(linked, now).await?;
        }
        self.change(Local::Lifted(id.clone()));
        if let Some(shared) = &self.shared {
            for scope in [Scope::All, Scope::Web] {
                if let Err(e) = shared.reset(&quota_key(&id, scope)).await {
                    tracing::warn!(error = %e, "Shared quota not reset; it refills on its own.");
                }
            }
        }
        self.note_reset(&id, now);
        self.fresh_quota(&id);
        Ok(was)
    }

    /// Records that the lift of `id` at `at` is applied here; `false` if it already was.
    /// Entries older than the look-back go, so the map holds only the last minutes' lifts.
    fn note_reset(&self, id: &str, at: i64) -> bool {
        let Ok(mut m) = self.resets_applied.lock() else {
            return false;
        };
        if m.get(id) == Some(&at) {
            return false;
        }
        let oldest = at - 2 * RESETS_LOOKBACK;
        m.retain(|_, t| *t >= oldest);
        m.insert(id.to_string(), at);
        true
    }

    /// Starts `id` on a fresh quota on this node: a new limiter key (governor has no per-key
    /// reset) and no cached Redis refusal.
    fn fresh_quota(&self, id: &str) {
        // Both of its quotas: the web form's and every other channel's.
        for key in [quota_key(id, Scope::All), quota_key(id, Scope::Web)] {
            if let Some(shared) = &self.shared {
                shared.forget_local(&key);
            }
            if let Ok(mut e) = self.epochs.lock() {
                *e.entry(key.into_owned()).or_insert(0) += 1;
            }
        }
    }

    /// Puts an identity on the operators' allow list, or takes it off (`allowed == false`):
    /// stored first, so it holds on every node (at their next refresh) and after a restart.
    /// `nuisance.allow` entries stay allowed whatever is set here.
    pub async fn allow(
        &self,
        identity: &Identity,
        allowed: bool,
        now: i64,
    ) -> Result<(), StoreError> {
        let id = identity.to_string();
        self.store.set_allowed(id.clone(), allowed, now).await?;
        self.change(Local::Allowed(id, allowed));
        Ok(())
    }

    /// Drops idle limiter keys and expired suspensions from memory.
    pub fn sweep(&self, now: i64) {
        self.limiter.retain_recent();
        self.limiter.shrink_to_fit();
        if let Ok(mut map) = self.active.write() {
            map.retain(|_, s| s.until > now);
        }
        metrics::gauge!("hotline_limiter_keys").set(self.limiter.len() as f64);
    }

    /// Distinct limiter keys held now.
    pub fn keys(&self) -> usize {
        self.limiter.len()
    }

    /// `nuisance.warnings`: the reminders before a suspension.
    pub fn warnings(&self) -> u32 {
        self.cfg.warnings
    }
}

/// A hold on one identity's escalation lock; dropping it (also when the request is cancelled)
/// removes the map entry once nobody else holds or waits for it.
struct EscalationTurn<'a> {
    map: &'a Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    id: String,
    lock: Arc<tokio::sync::Mutex<()>>,
}

impl Drop for EscalationTurn<'_> {
    fn drop(&mut self) {
        if let Ok(mut map) = self.map.lock() {
            // Clones are only made under this map lock, so two (the map's and ours) means no
            // one else has it.
            if Arc::strong_count(&self.lock) == 2 {
                map.remove(&self.id);
            }
        }
    }
}

/// The quota (limiter) key of the ladder `id` for contacts in `scope`. The web form counts
/// apart: submissions under a typed phone must not spend that number's quota for its calls,
/// which would remind and then suspend the citizen on their next calls. Borrowed for every
/// channel but the web form: the quota is asked on every request.
fn quota_key(id: &str, scope: Scope) -> std::borrow::Cow<'_, str> {
    match scope {
        Scope::All => std::borrow::Cow::Borrowed(id),
        Scope::Web => std::borrow::Cow::Owned(format!("web/{id}")),
    }
}

/// Active suspensions by the ladder they stop (an identity's own, or the one it is linked to)
/// and where they hold. Where two meet (a suspended identity linked to another), the later
/// end stands.
fn by_ladder(
    rows: Vec<Suspension>,
    links: &HashMap<String, String>,
) -> HashMap<(String, Scope), Suspension> {
    let mut by: HashMap<(String, Scope), Suspension> = HashMap::with_capacity(rows.len());
    for s in rows {
        let ladder = (
            links
                .get(&s.identity)
                .cloned()
                .unwrap_or_else(|| s.identity.clone()),
            s.scope(),
        );
        match by.get(&ladder) {
            Some(held) if held.until >= s.until => {}
            _ => {
                by.insert(ladder, s);
            }
        }
    }
    by
}

/// An offence's evidence as a reminder and a suspension keep it: its first 200 characters.
fn evidence_of(evidence: &str) -> String {
    evidence.chars().take(200).collect()
}

/// Whether the rule's ladder may suspend `identity` once its reminders are used up: not an
/// anonymous web submitter (`ip:`), which stays refused over quota (429, no reminders left)
/// instead. Everyone behind one address (a campus, a company, a carrier's CGNAT) is that one
/// identity, and one person's flood there got all of them suspended for growing periods, an
/// hour, a day, a week, a month (the twenty-second session's review, F3), although an address
/// is not a person: the cap per address never suspends for that reason (see
/// `pipeline::address`). The quota still holds; an operator may still suspend an address.
fn suspends(identity: &Identity) -> bool {
    identity.kind != IdentityKind::Ip
}

/// The answer to `identity` refused in `scope` by the suspension `s`.
///
/// The web form's phone is typed: anyone may type a number to see whether it is suspended. A
/// suspension that holds everywhere (an operator's, or one earned on a verified channel) is
/// refused there with fixed words ([`typed_phone_reason`]), not its own reason, which an
/// operator writes for the person (the twenty-second session's review, F2: "多次在电话中辱骂
/// 话务员并威胁工作人员" was shown to whoever typed the number). Its end is still said: the
/// person who did type their own number needs it, and it tells a stranger no more than that.
fn suspended(s: &Suspension, tz: chrono_tz::Tz, identity: &Identity, scope: Scope) -> Outcome {
    let mut refusal = s.answer(tz);
    if scope == Scope::Web
        && identity.kind == IdentityKind::Phone
        && Scope::of_decision(&s.decided_by) != Scope::Web
    {
        if let Outcome::Suspended { reason, .. } = &mut refusal {
            *reason = typed_phone_reason().to_string();
        }
    }
    refusal
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::sqlite::SqliteStore;
    use governor::clock::FakeRelativeClock;
    use hotline_adapters::Channel;

    /// An agent's flag is told in fixed words: the kinds of offence it names, else a fixed
    /// sentence; nothing else the agent wrote.
    #[test]
    fn a_flag_is_told_by_the_kinds_of_offence_it_names() {
        assert_eq!(flagged_offence("辱骂话务员"), "话务员标记：辱骂");
        assert_eq!(
            flagged_offence("来电人恐吓邻居张三（建国路88号），还骂人"),
            "话务员标记：辱骂、威胁"
        );
        assert_eq!(
            flagged_offence("打来不说话，一天二十次"),
            "话务员标记：恶意占线"
        );
        assert_eq!(
            flagged_offence("住在幸福小区3号楼的李四"),
            "话务员标记的扰乱热线秩序行为"
        );
        assert_eq!(flagged_offence(""), "话务员标记的扰乱热线秩序行为");
    }

    /// The tests' ladder: a quota of 3 an hour, two reminders, then 1 h and 24 h.
    fn config() -> LadderConfig {
        LadderConfig {
            quota: 3,
            per: Duration::from_secs(3600),
            warnings: 2,
            steps: vec![Duration::from_secs(3600), Duration::from_secs(86400)],
            allow: vec![],
            max_keys: 1000,
            tz: chrono_tz::Asia::Shanghai,
        }
    }

    async fn ladder(dir: &std::path::Path, clock: FakeRelativeClock) -> Ladder<FakeRelativeClock> {
        let store: Arc<dyn Store> = Arc::new(SqliteStore::open(dir).unwrap());
        let cfg = LadderConfig {
            allow: vec![Identity::parse("phone:12300000000").unwrap()],
            ..config()
        };
        Ladder::with_clock(cfg, store, clock, 0).await.unwrap()
    }

    /// A node's ladder on `store`, with the tests' config (several share one store).
    async fn node(store: &Arc<dyn Store>, clock: &FakeRelativeClock) -> Ladder<FakeRelativeClock> {
        Ladder::with_clock(config(), store.clone(), clock.clone(), 0)
            .await
            .unwrap()
    }

    /// A submission from `id` on the channel that vouches for it (a phone's calls, WeChat's
    /// openid): its steps hold everywhere. (See `web_sub` for the web form's.)
    fn sub(id: &str) -> Submission {
        let channel = if id.starts_with("wechat:") {
            Channel::Wechat
        } else {
            Channel::Cti
        };
        Submission::new(channel, Identity::parse(id).unwrap(), 0, "噪音")
    }

    /// A web form's submission under the phone or address `id` (typed, never verified).
    fn web_sub(id: &str) -> Submission {
        Submission::new(Channel::Web, Identity::parse(id).unwrap(), 0, "网页")
    }

    /// Drives `n` submissions at time `now` and names each answer.
    async fn drive(l: &Ladder<FakeRelativeClock>, id: &str, n: usize, now: i64) -> Vec<String> {
        let mut out = Vec::new();
        for _ in 0..n {
            out.push(match l.check(&sub(id), now).await.unwrap() {
                None => "ok".to_string(),
                Some(Outcome::Throttled { warnings_left, .. }) => format!("warn{warnings_left}"),
                Some(Outcome::Suspended { .. }) => "suspended".to_string(),
                Some(o) => format!("{o:?}"),
            });
        }
        out
    }

    /// Drives `n` web form submissions under `id` at `now` and names each answer.
    async fn drive_web(l: &Ladder<FakeRelativeClock>, id: &str, n: usize, now: i64) -> Vec<String> {
        let mut out = Vec::new();
        for _ in 0..n {
            out.push(name(l.check(&web_sub(id), now).await.unwrap()));
        }
        out
    }

    fn name(o: Option<Outcome>) -> String {
        match o {
            None => "ok".to_string(),
            Some(Outcome::Throttled { warnings_left, .. }) => format!("warn{warnings_left}"),
            Some(Outcome::Suspended { .. }) => "suspended".to_string(),
            Some(o) => format!("{o:?}"),
        }
    }

    /// Review finding F2: the web form's quota, reminders and suspension under a typed phone
    /// hold on the web form only. The number's calls keep their own quota and reminders and
    /// are not refused, also after a restart; the web form stays refused. Until 2026-12-07 six
    /// posts under someone's number had that number's calls rejected at ringing.
    #[tokio::test]
    async fn the_web_forms_steps_under_a_typed_phone_hold_on_the_web_form_only() {
        let dir = tempfile::tempdir().unwrap();
        let l = ladder(dir.path(), FakeRelativeClock::default()).await;
        let victim = "phone:13200000001";
        let id = Identity::parse(victim).unwrap();
        assert_eq!(
            drive_web(&l, victim, 6, 0).await,
            ["ok", "ok", "ok", "warn1", "warn0", "suspended"]
        );
        let web = l.suspension_in(victim, Scope::Web, 1).unwrap();
        assert_eq!((web.decided_by.as_str(), web.until), (RULE_WEB, 3600));
        assert!(l.suspension(victim, 1).is_none(), "not for every channel");
        assert!(l.refusal_if_suspended(&id, Scope::All, 1).is_none());
        // The phone's own calls: a full quota, then the first of their own two reminders.
        let mut calls = Vec::new();
        for _ in 0..4 {
            calls.push(name(l.check_identity(&id, "cti", "来电", 2).await.unwrap()));
        }
        assert_eq!(calls, ["ok", "ok", "ok", "warn1"]);
        // The web form stays refused, with the web form's suspension.
        assert_eq!(drive_web(&l, victim, 1, 3).await, ["suspended"]);
        assert_eq!(
            l.suspension_shown(victim, 3).map(|s| s.decided_by),
            Some(RULE_WEB.to_string())
        );
        // The scope is the store's: it holds after a restart.
        drop(l);
        let l = ladder(dir.path(), FakeRelativeClock::default()).await;
        assert!(l.suspension(victim, 10).is_none(), "after a restart");
        assert!(l.suspension_in(victim, Scope::Web, 10).is_some());
    }

    /// An offence where the platform vouches for the caller (an agent's flag on a call) meets
    /// a web-only suspension: it is not answered with the web form's suspension, it climbs the
    /// ladder for every channel from its own first step (the web form's steps do not make it
    /// longer), and the longer of the two then refuses the web form.
    #[tokio::test]
    async fn a_verified_offence_climbs_its_own_ladder_past_a_web_only_suspension() {
        let dir = tempfile::tempdir().unwrap();
        let l = ladder(dir.path(), FakeRelativeClock::default()).await;
        let victim = "phone:13200000002";
        let id = Identity::parse(victim).unwrap();
        drive_web(&l, victim, 6, 0).await;
        assert!(l.suspension_in(victim, Scope::Web, 1).is_some());
        // Weight 2 spends the two reminders; the next flag suspends.
        let first = l
            .offence(&id, "cti", "agent a7", "辱骂", 2, 10)
            .await
            .unwrap();
        assert!(
            matches!(
                first,
                Outcome::Throttled {
                    warnings_left: 0,
                    ..
                }
            ),
            "{first:?}"
        );
        let second = l
            .offence(&id, "cti", "agent a7", "辱骂", 2, 20)
            .await
            .unwrap();
        assert!(matches!(second, Outcome::Suspended { .. }), "{second:?}");
        let all = l.suspension(victim, 21).unwrap();
        assert_eq!(
            (all.decided_by.as_str(), all.until),
            ("rule", 20 + 3600),
            "the first step, recorded beside the web form's"
        );
        assert_eq!(
            l.suspension_in(victim, Scope::Web, 21).map(|s| s.until),
            Some(20 + 3600),
            "the later end refuses the web form"
        );
        assert_eq!(
            l.suspension_shown(victim, 21).map(|s| s.decided_by),
            Some("rule".to_string())
        );
    }

    /// An operator's suspension ends the web form's (it replaces what is active) and holds
    /// everywhere; a lift ends both kinds and gives both quotas afresh.
    #[tokio::test]
    async fn an_operators_suspension_and_lift_cover_the_web_forms_own() {
        let dir = tempfile::tempdir().unwrap();
        let l = ladder(dir.path(), FakeRelativeClock::default()).await;
        let victim = "phone:13200000003";
        let id = Identity::parse(victim).unwrap();
        drive_web(&l, victim, 6, 0).await;
        l.suspend(
            &id,
            Some(Duration::from_secs(600)),
            "复核".into(),
            String::new(),
            "operator",
            10,
        )
        .await
        .unwrap();
        for scope in [Scope::All, Scope::Web] {
            assert_eq!(
                l.suspension_in(victim, scope, 11).map(|s| s.until),
                Some(610),
                "{scope:?}"
            );
        }
        l.refresh(12).await.unwrap();
        assert_eq!(
            l.suspension_in(victim, Scope::Web, 13).map(|s| s.until),
            Some(610),
            "the web form's own stays ended after a refresh"
        );
        assert!(l.lift(&id, 20).await.unwrap());
        l.refresh(21).await.unwrap();
        assert!(l.suspension_in(victim, Scope::Web, 22).is_none());
        assert_eq!(drive_web(&l, victim, 3, 22).await, ["ok", "ok", "ok"]);
        assert_eq!(drive(&l, victim, 3, 22).await, ["ok", "ok", "ok"]);
    }

    /// Several nodes: a web-only suspension made on node A reaches node B's memory with its
    /// scope at B's refresh: B refuses the web form and lets the phone's calls ring.
    #[tokio::test]
    async fn a_refresh_carries_a_suspensions_scope_to_other_nodes() {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn Store> = Arc::new(SqliteStore::open(dir.path()).unwrap());
        let clock = FakeRelativeClock::default();
        let a = node(&store, &clock).await;
        let b = node(&store, &clock).await;
        let victim = "phone:13200000004";
        drive_web(&a, victim, 6, 0).await;
        b.refresh(5).await.unwrap();
        let id = Identity::parse(victim).unwrap();
        assert!(b.refusal_if_suspended(&id, Scope::All, 6).is_none());
        assert!(matches!(
            b.refusal_if_suspended(&id, Scope::Web, 6),
            Some(Outcome::Suspended { .. })
        ));
    }

    #[tokio::test]
    async fn quota_then_two_reminders_then_growing_suspensions() {
        let dir = tempfile::tempdir().unwrap();
        let clock = FakeRelativeClock::default();
        let l = ladder(dir.path(), clock.clone()).await;
        let id = "phone:13800000000";
        assert_eq!(
            drive(&l, id, 6, 0).await,
            ["ok", "ok", "ok", "warn1", "warn0", "suspended"]
        );
        let s = l.suspension(id, 1).unwrap();
        assert_eq!(s.until, 3600, "first step is one hour");
        assert_eq!(s.decided_by, "rule");
        // Still suspended inside the hour, whatever the quota.
        assert_eq!(drive(&l, id, 1, 3599).await, ["suspended"]);
        // After it ends and the quota refills, the ladder starts again; the next suspension
        // takes the next step.
        clock.advance(Duration::from_secs(2 * 3600));
        let later = 2 * 3600;
        assert_eq!(
            drive(&l, id, 6, later).await,
            ["ok", "ok", "ok", "warn1", "warn0", "suspended"]
        );
        assert_eq!(l.suspension(id, later).unwrap().until, later + 86400);
        // Capped at the last step.
        clock.advance(Duration::from_secs(2 * 86400));
        let later2 = later + 2 * 86400;
        drive(&l, id, 6, later2).await;
        assert_eq!(l.suspension(id, later2).unwrap().until, later2 + 86400);
    }

    /// An offence's reason is read to the person and published: an openid and a full-width
    /// number in it are masked too (until 2026-12-07 only ASCII numbers and e-mails were).
    #[tokio::test]
    async fn an_offences_reason_masks_openids_and_full_width_numbers() {
        let dir = tempfile::tempdir().unwrap();
        let l = ladder(dir.path(), FakeRelativeClock::default()).await;
        let id = Identity::parse("phone:13600000011").unwrap();
        let public = "来电人手机１３６００００００２１，微信 oUpF8uMuAJO_M2pxb1Q9zNjWeS6o 反复骚扰";
        for _ in 0..4 {
            l.offence(&id, "cti", "agent a7", public, 2, 0)
                .await
                .unwrap();
        }
        let reason = l.suspension("phone:13600000011", 1).unwrap().reason;
        assert!(
            reason.contains("１３６****００２１") && reason.contains("微信 oUpF***6o 反复骚扰"),
            "{reason}"
        );
    }

    /// Two nodes on one store: a caller suspended through node B and lifted through node A's
    /// admin API starts afresh on B too, once B has refreshed. B's own limiter used to stay
    /// spent, so the caller's next requests on B were refused again, each refusal a warning
    /// after the lift, and the third a suspension of the next, longer step.
    #[tokio::test]
    async fn a_lift_on_one_node_gives_a_fresh_quota_on_the_others() {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn Store> = Arc::new(SqliteStore::open(dir.path()).unwrap());
        let clock = FakeRelativeClock::default();
        let a = node(&store, &clock).await;
        let b = node(&store, &clock).await;
        let id = "phone:13800000004";
        assert_eq!(
            drive(&b, id, 6, 100).await,
            ["ok", "ok", "ok", "warn1", "warn0", "suspended"]
        );
        assert!(a.lift(&Identity::parse(id).unwrap(), 200).await.unwrap());
        b.refresh(201).await.unwrap();
        assert_eq!(drive(&b, id, 3, 202).await, ["ok", "ok", "ok"]);
        assert_eq!(
            store.suspension_count(id.into(), Scope::All).await.unwrap(),
            1
        );
        // A later refresh does not reset the quota again.
        b.refresh(203).await.unwrap();
        assert_eq!(drive(&b, id, 1, 204).await, ["warn1"]);
    }

    /// An operator who shortens a suspension on review replaces it: the earlier, longer one
    /// does not come back after a restart (it stayed active in the store, and the reload took
    /// it back).
    #[tokio::test]
    async fn an_operators_suspension_replaces_the_active_one() {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn Store> = Arc::new(SqliteStore::open(dir.path()).unwrap());
        let clock = FakeRelativeClock::default();
        let l = node(&store, &clock).await;
        let id = Identity::parse("phone:13800000008").unwrap();
        for (at, length) in [(0, 30 * 86400), (10, 3600)] {
            l.suspend(
                &id,
                Some(Duration::from_secs(length)),
                "复核".into(),
                String::new(),
                "operator",
                at,
            )
            .await
            .unwrap();
        }
        assert_eq!(
            l.suspension(&id.to_string(), 20).map(|s| s.until),
            Some(3610)
        );
        let restarted = Ladder::with_clock(config(), store, clock, 3700)
            .await
            .unwrap();
        assert!(
            restarted.suspension(&id.to_string(), 3700).is_none(),
            "the 30-day suspension came back"
        );
    }

    /// An operator links a suspended identity to another (the same person): the suspension
    /// stops the shared ladder, across a refresh, until lifted through either identity. The
    /// link used to free the caller: the suspension stayed under a name no look-up read.
    #[tokio::test]
    async fn a_suspension_holds_across_a_link_until_lifted() {
        let dir = tempfile::tempdir().unwrap();
        let l = ladder(dir.path(), FakeRelativeClock::default()).await;
        let (wx, phone) = (
            Identity::parse("wechat:oLinkSusp_Aa1Ss5Dd9Ff3Gg7").unwrap(),
            Identity::parse("phone:13800000006").unwrap(),
        );
        l.suspend(
            &wx,
            Some(Duration::from_secs(86400)),
            "恶意骚扰".into(),
            String::new(),
            "operator",
            0,
        )
        .await
        .unwrap();
        l.link(&wx, &phone).await.unwrap();
        for who in [&wx, &phone] {
            assert!(
                matches!(
                    l.check_identity(who, "web", "又来了", 10).await.unwrap(),
                    Some(Outcome::Suspended { .. })
                ),
                "{who} after the link"
            );
        }
        l.refresh(20).await.unwrap();
        assert!(
            l.suspension(&wx.to_string(), 21).is_some(),
            "after a refresh"
        );
        assert!(l.suspension(&phone.to_string(), 21).is_some());
        assert!(l.lift(&phone, 30).await.unwrap());
        l.refresh(31).await.unwrap();
        assert!(
            l.suspension(&wx.to_string(), 32).is_none(),
            "the lift holds after a refresh"
        );
    }

    /// Two nodes on one store. Node B's refresh has read the store's picture, which has A's
    /// suspension; B suspends a caller of its own before the picture is applied. Both hold
    /// afterwards. Until 2026-12-07 a refresh that overlapped a local change threw its whole
    /// picture away, so a node suspending a flood's callers in most rounds kept missing other
    /// nodes' changes. (The several-nodes test that steered the rounds with PostgreSQL table
    /// locks was timing-dependent; the two halves of a refresh are driven here instead.)
    #[tokio::test]
    async fn a_refresh_keeps_other_nodes_changes_while_this_node_suspends() {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn Store> = Arc::new(SqliteStore::open(dir.path()).unwrap());
        let clock = FakeRelativeClock::default();
        let a = node(&store, &clock).await;
        let b = node(&store, &clock).await;
        let (other, own) = (
            Identity::parse("phone:13966250001").unwrap(),
            Identity::parse("phone:13966250002").unwrap(),
        );
        let hour = Some(Duration::from_secs(3600));
        a.suspend(
            &other,
            hour,
            "另一节点".into(),
            String::new(),
            "operator",
            10,
        )
        .await
        .unwrap();
        let picture = b.read_picture(20).await.unwrap();
        b.suspend(&own, hour, "本节点".into(), String::new(), "operator", 21)
            .await
            .unwrap();
        b.apply_picture(picture);
        for (who, whose) in [(&other, "the other node's"), (&own, "its own")] {
            assert!(
                b.suspension(&who.to_string(), 22).is_some(),
                "{whose} suspension after the refresh"
            );
        }
        // The next refresh reads both from the store and keeps them.
        b.refresh(23).await.unwrap();
        assert!(b.suspension(&own.to_string(), 24).is_some());
        assert!(b.suspension(&other.to_string(), 24).is_some());
    }

    /// Two nodes on one store, each over the caller's quota before its refresh has seen the
    /// other's suspension (a caller flooding a load balancer): one step of the ladder is
    /// recorded, not two, so the caller's next suspension is the second step, not the third.
    #[tokio::test]
    async fn two_nodes_suspending_one_caller_at_once_record_one_step() {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn Store> = Arc::new(SqliteStore::open(dir.path()).unwrap());
        let clock = FakeRelativeClock::default();
        let a = node(&store, &clock).await;
        let b = node(&store, &clock).await;
        let id = "phone:13800000005";
        assert_eq!(
            drive(&a, id, 5, 0).await,
            ["ok", "ok", "ok", "warn1", "warn0"]
        );
        // B has its own quota; the reminders are shared through the store.
        assert_eq!(
            drive(&b, id, 3, 10).await,
            ["ok", "ok", "ok"],
            "B's own quota"
        );
        assert_eq!(drive(&a, id, 1, 20).await, ["suspended"]);
        assert_eq!(drive(&b, id, 1, 21).await, ["suspended"]);
        assert_eq!(
            store.suspension_count(id.into(), Scope::All).await.unwrap(),
            1,
            "one suspension recorded for both nodes"
        );
        assert_eq!(
            b.suspension(id, 22).map(|s| s.until),
            Some(20 + 3600),
            "B holds A's suspension"
        );
        // An operator's suspension on top of a rule's is recorded all the same.
        b.suspend(
            &Identity::parse(id).unwrap(),
            Some(Duration::from_secs(600)),
            "测试".into(),
            String::new(),
            "operator",
            30,
        )
        .await
        .unwrap();
        assert_eq!(
            store
                .caller_record(id.into())
                .await
                .unwrap()
                .suspensions
                .len(),
            2
        );
    }

    #[tokio::test]
    async fn concurrent_refusals_suspend_once_and_take_the_first_step() {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn Store> = Arc::new(SqliteStore::open(dir.path()).unwrap());
        let cfg = LadderConfig {
            steps: vec![
                Duration::from_secs(3600),
                Duration::from_secs(86400),
                Duration::from_secs(30 * 86400),
            ],
            ..config()
        };
        let clock = FakeRelativeClock::default();
        let l = Ladder::with_clock(cfg, store.clone(), clock.clone(), 0)
            .await
            .unwrap();
        let id = "phone:13800000002";
        assert_eq!(
            drive(&l, id, 5, 0).await,
            ["ok", "ok", "ok", "warn1", "warn0"]
        );
        // Five requests in flight as the caller crosses into suspension.
        let s = sub(id);
        let answers = tokio::join!(
            l.check(&s, 0),
            l.check(&s, 0),
            l.check(&s, 0),
            l.check(&s, 0),
            l.check(&s, 0)
        );
        for a in [answers.0, answers.1, answers.2, answers.3, answers.4] {
            assert!(
                matches!(a.unwrap(), Some(Outcome::Suspended { .. })),
                "every one is refused"
            );
        }
        assert_eq!(
            store.suspension_count(id.into(), Scope::All).await.unwrap(),
            1,
            "one suspension recorded, not one per request"
        );
        assert_eq!(l.suspension(id, 1).unwrap().until, 3600, "the first step");
        // The next offence takes the second step, not one further along.
        clock.advance(Duration::from_secs(2 * 3600));
        let later = 2 * 3600;
        drive(&l, id, 6, later).await;
        assert_eq!(l.suspension(id, later).unwrap().until, later + 86400);
        assert!(
            l.escalating.lock().unwrap().is_empty(),
            "escalation locks are not kept once done"
        );
    }

    #[tokio::test]
    async fn lift_resets_warnings_and_quota_and_allow_list_passes() {
        let dir = tempfile::tempdir().unwrap();
        let clock = FakeRelativeClock::default();
        let l = ladder(dir.path(), clock.clone()).await;
        let id = "phone:13800000001";
        drive(&l, id, 6, 10).await;
        assert!(l.suspension(id, 11).is_some());
        assert!(l.lift(&Identity::parse(id).unwrap(), 12).await.unwrap());
        assert!(l.suspension(id, 13).is_none());
        assert_eq!(
            drive(&l, id, 5, 13).await,
            ["ok", "ok", "ok", "warn1", "warn0"],
            "fresh quota and fresh warnings after a lift"
        );
        assert!(drive(&l, "phone:12300000000", 20, 0)
            .await
            .iter()
            .all(|r| r == "ok"));
    }

    #[tokio::test]
    async fn suspensions_survive_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        {
            let l = ladder(dir.path(), FakeRelativeClock::default()).await;
            drive(&l, "wechat:oAbcdefgh", 6, 100).await;
        }
        let l = ladder(dir.path(), FakeRelativeClock::default()).await;
        assert!(l.suspension("wechat:oAbcdefgh", 200).is_some());
    }

    #[test]
    fn the_rule_reason_names_the_configured_period() {
        for (secs, want) in [
            (3600, "在一小时内"),
            (7200, "在2小时内"),
            (1800, "在30分钟内"),
            (86_400, "在一天内"),
            (90, "在90秒内"),
        ] {
            let reason = rule_reason(Duration::from_secs(secs));
            assert!(reason.starts_with(want), "{secs}: {reason}");
        }
    }

    #[tokio::test]
    async fn a_suspension_by_the_rule_says_the_configured_period() {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn Store> = Arc::new(SqliteStore::open(dir.path()).unwrap());
        let cfg = LadderConfig {
            per: Duration::from_secs(600),
            steps: vec![Duration::from_secs(3600)],
            ..config()
        };
        let l = Ladder::with_clock(cfg, store, FakeRelativeClock::default(), 0)
            .await
            .unwrap();
        let id = "phone:13800000003";
        drive(&l, id, 6, 0).await;
        let reason = l.suspension(id, 1).unwrap().reason;
        assert!(reason.starts_with("在10分钟内"), "{reason}");
        assert!(!reason.contains("一小时"), "{reason}");
    }

    #[tokio::test]
    async fn memory_is_capped_and_swept() {
        let dir = tempfile::tempdir().unwrap();
        let clock = FakeRelativeClock::default();
        let store: Arc<dyn Store> = Arc::new(SqliteStore::open(dir.path()).unwrap());
        let cfg = LadderConfig {
            per: Duration::from_secs(60),
            steps: vec![Duration::from_secs(60)],
            max_keys: 100,
            ..config()
        };
        let l = Ladder::with_clock(cfg, store.clone(), clock.clone(), 0)
            .await
            .unwrap();
        for i in 0..1500 {
            let id = format!("ip:10.0.{}.{}", i / 256, i % 256);
            l.check(
                &Submission::new(Channel::Web, Identity::parse(&id).unwrap(), 0, "x"),
                0,
            )
            .await
            .unwrap();
        }
        assert!(l.keys() <= 100, "keys: {}", l.keys());
        // A caller arriving while the limiter is full is not refused, warned or suspended for
        // the flood's sake (identities used to share 1024 buckets, which the flood used up): not
        // counted at all, so not even past the quota (3) of its own.
        let innocent = Submission::new(
            Channel::Web,
            Identity::parse("phone:13800000099").unwrap(),
            0,
            "x",
        );
        for _ in 0..4 {
            assert_eq!(l.check(&innocent, 0).await.unwrap(), None);
        }
        assert_eq!(
            store
                .warnings_since("phone:13800000099".into(), 0, Scope::Web)
                .await
                .unwrap(),
            0
        );
        clock.advance(Duration::from_secs(3600));
        l.sweep(3600);
        assert_eq!(l.keys(), 0, "idle keys are swept");
    }
}
