//! The web form's cap per client address (`web.address_quota`), on top of each identity's
//! quota; a second instance caps status look-ups per address (`web.lookup_quota`, see
//! [`Counts::LOOKUPS`]), with its own budget and Redis keys (`look/<address>`).
//!
//! - **Why.** A web submitter who types a phone is `phone:<number>`, and nobody verifies the
//!   number: one machine typing a new number each time had a fresh quota each time, and so
//!   flooded the dispatch core with made-up orders, never refused (until 2026-12-07). The
//!   address the gateway already trusts for `ip:` identities (the peer, or the right-most
//!   untrusted X-Forwarded-For hop behind `web.trusted_proxies`) is what the submitter cannot
//!   make up, so it is counted too.
//! - **The key.** An IPv4 address as it is; an IPv6 address by its /64, since one subscriber
//!   (one home, one phone) gets a whole /64 and picks any address in it. An address that cannot
//!   be read (no peer) is not counted: it would put every such request in one bucket.
//! - **The rule.** A GCRA as the ladder's: `address_quota` submissions per `nuisance.per`,
//!   refilled evenly, a fresh address getting the whole burst. Shared through Redis with
//!   `nuisance.backend = "redis"` (key `addr/<address>`, named by the same HMAC as callers'
//!   quotas, so no address is in Redis in the clear); when Redis cannot answer, this node's own
//!   limiter decides, as for the ladder.
//! - **Bounded memory.** Past `max_keys` addresses nobody is counted here until a sweep frees
//!   room (`hotline_web_address_overflow_total` says so): refusing everyone would shut the form
//!   for the flood's sake (the ladder's rule, see `nuisance::Ladder::key`).
//! - **What a refusal is.** Nothing else: no reminder, no suspension, for nobody. An address is
//!   not a person (a whole campus may stand behind it), and a reminder on the typed phone would
//!   punish the number's owner for a stranger's flood. The pipeline decides where it is asked
//!   (after the emergency rules, a suspension and shedding, before the identity's quota).

use crate::pipeline::redis_limiter::{Decision, RedisGcra};
use governor::clock::{Clock, DefaultClock};
use governor::middleware::NoOpMiddleware;
use governor::state::keyed::DashMapStateStore;
use governor::{Quota, RateLimiter};
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::time::Duration;

/// The cap's key of a client address as `http::client_ip` gives it: the IPv4 address, or the
/// IPv6 address's /64 (`2001:db8:1:2::/64`); `None` for one that is no address (`unknown`).
pub fn address_key(client_ip: &str) -> Option<String> {
    match client_ip.trim().parse::<IpAddr>().ok()?.to_canonical() {
        IpAddr::V4(v4) => Some(v4.to_string()),
        IpAddr::V6(v6) => {
            let net = ipnet::Ipv6Net::new(v6, 64).ok()?.trunc();
            Some(net.to_string())
        }
    }
}

/// The key of the hash a web order keeps of its client address ([`web_origin`]): SipHash-2-4's
/// 128 bits, derived once from a secret the nodes share (HMAC-SHA256 of a fixed label), so
/// every node hashes an address alike.
#[derive(Clone)]
pub struct OriginKey {
    k0: u64,
    k1: u64,
}

impl OriginKey {
    /// The key derived from `secret` (`nuisance.redis_key_secret`, else `admin.token`).
    pub fn new(secret: &[u8]) -> OriginKey {
        use hmac::Mac;
        let words = match hmac::Hmac::<sha2::Sha256>::new_from_slice(secret) {
            Ok(mut mac) => {
                mac.update(b"hotline-gateway web origin");
                let d = mac.finalize().into_bytes();
                let word = |i: usize| {
                    let mut b = [0u8; 8];
                    b.copy_from_slice(&d[i..i + 8]);
                    u64::from_le_bytes(b)
                };
                (word(0), word(8))
            }
            // HMAC takes a key of any length; this cannot happen.
            Err(_) => (0, 0),
        };
        OriginKey {
            k0: words.0,
            k1: words.1,
        }
    }
}

impl std::fmt::Debug for OriginKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("OriginKey(..)")
    }
}

/// Where a web submission came from, as its orders keep it for repeat detection
/// (`orders.origin`): `web:` and a keyed hash of its client address's key `address` (as
/// [`address_key`] gives it; SipHash-2-4 under `key`, 64 bits in hex), or `web:` alone when
/// the address could not be read.
/// Orders from the verified channels keep `""`.
///
/// Why: a web submitter's phone is typed, and anyone may type anyone's. Repeats were looked
/// for by identity alone, so a stranger typing a caller's number and a paraphrase of their
/// matter was told "duplicate" with the number of the caller's order (a confidential report
/// too), had their text sent to dispatch as the caller's contact on it, and a stranger's
/// made-up order swallowed the caller's later call about the same thing (the twenty-second
/// session's review, F1). Repeats now match only orders of the same origin: a verified
/// channel's among the verified channels', a web form's among the web form's from the same
/// address. The address is kept as a hash, not in the clear: it is needed only to compare.
/// SipHash, not HMAC-SHA256 (the first cut): this runs on every web submission, and the HMAC
/// cost 17 k instructions a post (12 % of the HTTP workers', counted by `bench/callgrind`).
pub fn web_origin(address: Option<&str>, key: &OriginKey) -> String {
    use std::hash::Hasher;
    let Some(address) = address else {
        return "web:".to_string();
    };
    let mut h = siphasher::sip::SipHasher24::new_with_keys(key.k0, key.k1);
    h.write(address.as_bytes());
    format!("web:{:016x}", h.finish())
}

/// The cap per client address (see the module documentation), generic over the limiter's
/// clock so tests drive it by hand.
pub struct AddressCap<C: Clock + Clone = DefaultClock> {
    limiter: RateLimiter<u64, DashMapStateStore<u64>, C, NoOpMiddleware<C::Instant>>,
    clock: C,
    max_keys: usize,
    /// Keys are a keyed hash of the address: the same memory for an IPv6 /64 as for IPv4, and
    /// collisions cannot be aimed at (the keys are random).
    hasher: std::hash::RandomState,
    /// The cap shared by several nodes (Redis), when configured; the local limiter above is
    /// then the fallback for when Redis cannot be reached.
    shared: Option<RedisGcra>,
    /// What it caps: its Redis key prefix and its metrics' names ([`Counts::SUBMISSIONS`] or
    /// [`Counts::LOOKUPS`]), so two caps on one address never spend each other's budget.
    counts: Counts,
}

/// What an [`AddressCap`] counts: its keys in Redis (`<prefix>/<address>`) and its metrics.
#[derive(Debug, Clone, Copy)]
pub struct Counts {
    /// The Redis key's prefix.
    pub prefix: &'static str,
    /// The counter of submissions let through uncounted because the cap was full.
    pub overflow_metric: &'static str,
    /// The gauge of addresses held.
    pub keys_metric: &'static str,
}

impl Counts {
    /// Web form submissions (`web.address_quota`).
    pub const SUBMISSIONS: Counts = Counts {
        prefix: "addr",
        overflow_metric: "hotline_web_address_overflow_total",
        keys_metric: "hotline_web_address_keys",
    };
    /// Status look-ups (`web.lookup_quota`, `GET /v1/orders/{number}`): their own budget
    /// (until 2026-12-07 they had none, and one loop over a day's numbers listed every order).
    pub const LOOKUPS: Counts = Counts {
        prefix: "look",
        overflow_metric: "hotline_web_lookup_overflow_total",
        keys_metric: "hotline_web_lookup_keys",
    };
}

impl AddressCap<DefaultClock> {
    /// A cap of `quota` submissions per `per` to each address, on the real clock; `None` when
    /// `quota` is 0 (`web.address_quota = 0`: off).
    pub fn new(quota: u32, per: Duration, max_keys: usize) -> Option<AddressCap<DefaultClock>> {
        AddressCap::with_clock(quota, per, max_keys, DefaultClock::default())
    }
}

impl<C: Clock + Clone> AddressCap<C> {
    /// As [`AddressCap::new`], on the given clock.
    pub fn with_clock(
        quota: u32,
        per: Duration,
        max_keys: usize,
        clock: C,
    ) -> Option<AddressCap<C>> {
        let burst = NonZeroU32::new(quota)?;
        // Computed exactly as the ladder and `RedisGcra` compute theirs, so all agree.
        let cell = (per / quota).max(Duration::from_millis(1));
        let rule = Quota::with_period(cell)
            .unwrap_or_else(|| Quota::per_hour(burst))
            .allow_burst(burst);
        Some(AddressCap {
            limiter: RateLimiter::new(rule, DashMapStateStore::default(), clock.clone()),
            clock,
            max_keys,
            hasher: std::hash::RandomState::new(),
            shared: None,
            counts: Counts::SUBMISSIONS,
        })
    }

    /// Counts something else than web form submissions (see [`Counts`]).
    pub fn counting(mut self, counts: Counts) -> Self {
        self.counts = counts;
        self
    }

    /// Counts the cap in Redis, shared by every node, instead of in this node's memory. The
    /// limiter must have been made with this cap's quota and period.
    pub fn share(mut self, shared: RedisGcra) -> Self {
        self.shared = Some(shared);
        self
    }

    /// Counts one submission from `key` (see [`address_key`]): `None` lets it through,
    /// `Some(seconds)` refuses it until then (at least 1). A refusal counts nothing.
    pub async fn check(&self, key: &str) -> Option<u64> {
        if let Some(shared) = &self.shared {
            match shared.check(&format!("{}/{key}", self.counts.prefix)).await {
                Ok(Decision::Allow) => return None,
                Ok(Decision::Deny { retry_after }) => return Some(retry_after.as_secs().max(1)),
                // `RedisGcra` logs and counts the error; this counts the local decision.
                Err(_) => metrics::counter!("hotline_limiter_fallback_total").increment(1),
            }
        }
        // Bounded memory: past `max_keys` nobody is counted (governor cannot tell whether a
        // key is already present), as for the ladder: never refuse everyone when full.
        if self.limiter.len() >= self.max_keys {
            metrics::counter!(self.counts.overflow_metric).increment(1);
            return None;
        }
        let hash = std::hash::BuildHasher::hash_one(&self.hasher, key);
        match self.limiter.check_key(&hash) {
            Ok(()) => None,
            Err(not_until) => Some(not_until.wait_time_from(self.clock.now()).as_secs().max(1)),
        }
    }

    /// Drops idle keys (an address whose burst is full again is as good as never seen).
    pub fn sweep(&self) {
        self.limiter.retain_recent();
        self.limiter.shrink_to_fit();
        metrics::gauge!(self.counts.keys_metric).set(self.limiter.len() as f64);
    }

    /// Distinct addresses held now.
    pub fn keys(&self) -> usize {
        self.limiter.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use governor::clock::FakeRelativeClock;

    #[test]
    fn ipv4_is_keyed_by_its_address_and_ipv6_by_its_64() {
        assert_eq!(address_key("203.0.113.9").as_deref(), Some("203.0.113.9"));
        // Seen through a dual-stack listener, IPv4 is still itself.
        assert_eq!(
            address_key("::ffff:203.0.113.9").as_deref(),
            Some("203.0.113.9")
        );
        let a = address_key("2001:db8:1:2:aaaa::1").unwrap();
        assert_eq!(a, "2001:db8:1:2::/64");
        assert_eq!(address_key("2001:db8:1:2:ffff:ffff:ffff:fffe").unwrap(), a);
        assert_ne!(address_key("2001:db8:1:3::1").unwrap(), a);
        assert_eq!(address_key("unknown"), None);
        assert_eq!(address_key(""), None);
    }

    #[tokio::test]
    async fn an_address_gets_its_quota_then_waits_and_another_is_counted_apart() {
        let clock = FakeRelativeClock::default();
        let cap = AddressCap::with_clock(4, Duration::from_secs(3600), 100, clock.clone())
            .expect("a cap");
        for i in 0..4 {
            assert_eq!(cap.check("203.0.113.1").await, None, "submission {i}");
        }
        // One cell is 15 minutes: the refusal says when the next one is allowed.
        assert_eq!(cap.check("203.0.113.1").await, Some(900));
        assert_eq!(cap.check("203.0.113.2").await, None);
        clock.advance(Duration::from_secs(900));
        assert_eq!(cap.check("203.0.113.1").await, None);
        assert_eq!(cap.check("203.0.113.1").await, Some(900));
    }

    #[test]
    fn a_web_origin_is_the_addresss_keyed_hash_the_same_for_one_64() {
        let k = OriginKey::new(b"k");
        let origin = |ip: &str, k: &OriginKey| web_origin(address_key(ip).as_deref(), k);
        let a = origin("2001:db8:1:2::1", &k);
        assert_eq!(a, origin("2001:db8:1:2:ffff::9", &k));
        assert_ne!(a, origin("2001:db8:1:3::1", &k));
        assert_ne!(a, origin("2001:db8:1:2::1", &OriginKey::new(b"other key")));
        // The same secret gives the same hash on every node and after a restart.
        assert_eq!(a, origin("2001:db8:1:2::1", &OriginKey::new(b"k")));
        let v4 = origin("203.0.113.9", &k);
        assert!(v4.starts_with("web:") && v4.len() == 4 + 16, "{v4}");
        assert!(!v4.contains("203.0.113.9"));
        assert_eq!(web_origin(None, &k), "web:");
        assert_eq!(origin("unknown", &k), "web:");
        assert!(!format!("{k:?}").contains(&k.k0.to_string()));
    }

    #[test]
    fn zero_is_off() {
        assert!(AddressCap::new(0, Duration::from_secs(3600), 100).is_none());
    }

    #[tokio::test]
    async fn a_full_cap_counts_nobody_rather_than_refusing_everyone() {
        let clock = FakeRelativeClock::default();
        let cap =
            AddressCap::with_clock(1, Duration::from_secs(3600), 2, clock.clone()).expect("a cap");
        assert_eq!(cap.check("198.51.100.1").await, None);
        assert_eq!(cap.check("198.51.100.2").await, None);
        // Full: a new address is let through (not counted), and so is one already held.
        for _ in 0..3 {
            assert_eq!(cap.check("198.51.100.3").await, None);
            assert_eq!(cap.check("198.51.100.1").await, None);
        }
        // A sweep frees the room once they are idle (governor drops a key a cell after its
        // burst is full again).
        clock.advance(Duration::from_secs(7200));
        cap.sweep();
        assert_eq!(cap.keys(), 0);
        assert_eq!(cap.check("198.51.100.1").await, None);
        assert!(cap.check("198.51.100.1").await.is_some());
    }
}
