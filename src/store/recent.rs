//! Which identities may have orders since a given time: a Bloom filter in front of the
//! "recent orders of this person" read that every submission makes (repeat detection, art.
//! 17(5); attaching a photo to the last matter).
//!
//! Why: most submissions come from someone without an open order, and for them the read found
//! nothing, yet it cost 7 % of the gateway's CPU under load (a read transaction, and pages
//! re-read from the WAL because each commit invalidates the read connections' caches). The
//! filter answers "certainly none" from memory; "maybe" still goes to the store, which stays
//! the truth. A Bloom filter has false positives (a read that finds nothing, as before) but no
//! false negatives, so no repeat is ever missed.
//!
//! Only the embedded store uses it: it is the one writer of its file, so every order passes
//! through [`RecentIdentities::note`]. On PostgreSQL other nodes write too.
//!
//! Memory is bounded: two generations of [`CAPACITY`] identities each (~2.4 MiB apiece at a 1 %
//! false-positive rate). When the current one is full it becomes the previous one and the old
//! previous one is dropped; the filter then only answers for look-backs that start after the
//! dropped generation ended, and anything further back goes to the store.

use fastbloom::AtomicBloomFilter;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::RwLock;

/// Identities per generation.
pub const CAPACITY: u64 = 2_000_000;
/// False-positive rate per generation when full.
const FALSE_POSITIVES: f64 = 0.01;
/// The filters' hash seed.
const SEED: u128 = 12345;

struct Generation {
    filter: AtomicBloomFilter,
    count: AtomicU64,
    /// Orders created at or after this (unix seconds) are in this generation or a newer one.
    from: i64,
}

impl Generation {
    fn new(from: i64, capacity: u64) -> Generation {
        Generation {
            // A fixed seed keeps runs repeatable; a crafted collision only costs a read.
            filter: AtomicBloomFilter::with_false_pos(FALSE_POSITIVES)
                .seed(&SEED)
                .expected_items(capacity as usize),
            count: AtomicU64::new(0),
            from,
        }
    }
}

struct Generations {
    current: Generation,
    previous: Option<Generation>,
}

/// The filter. `note` every identity that gets an order before the order is committed; ask
/// [`may_have_since`](Self::may_have_since) before reading.
pub struct RecentIdentities {
    gens: RwLock<Generations>,
    /// Set when the orders already in the store have been noted (see [`loaded`](Self::loaded)).
    ready: AtomicBool,
    /// Set if the load failed or overflowed: the filter then always says "ask the store".
    disabled: AtomicBool,
    capacity: u64,
}

impl Default for RecentIdentities {
    fn default() -> Self {
        RecentIdentities::new()
    }
}

impl RecentIdentities {
    /// An empty filter of [`CAPACITY`] identities per generation, not ready until
    /// [`loaded`](Self::loaded) is called.
    pub fn new() -> RecentIdentities {
        RecentIdentities::with_capacity(CAPACITY)
    }

    /// As [`new`](Self::new) with `capacity` identities per generation.
    pub fn with_capacity(capacity: u64) -> RecentIdentities {
        let capacity = capacity.max(1);
        RecentIdentities {
            gens: RwLock::new(Generations {
                // Until the load says otherwise, it covers nothing.
                current: Generation::new(i64::MAX, capacity),
                previous: None,
            }),
            ready: AtomicBool::new(false),
            disabled: AtomicBool::new(false),
            capacity,
        }
    }

    /// Records that `identity` gets an order created at `at`. Called before the commit, so
    /// a reader that sees the order also sees it here.
    pub fn note(&self, identity: &str, at: i64) {
        let full = {
            let Ok(g) = self.gens.read() else {
                self.disabled.store(true, Ordering::Relaxed);
                return;
            };
            g.current.filter.insert(identity);
            g.current.count.fetch_add(1, Ordering::Relaxed) + 1 >= self.capacity
        };
        if full {
            if let Ok(mut g) = self.gens.write() {
                // Another writer may have rotated already.
                if g.current.count.load(Ordering::Relaxed) >= self.capacity {
                    let next = Generation::new(at, self.capacity);
                    let old = std::mem::replace(&mut g.current, next);
                    g.previous = Some(old);
                }
            }
        }
    }

    /// `Some(false)`: `identity` certainly has no order created at or after `since`.
    /// `Some(true)`: it may have. `None`: the filter cannot tell (not loaded yet, disabled, or
    /// `since` is older than what the filter covers); ask the store.
    pub fn may_have_since(&self, identity: &str, since: i64) -> Option<bool> {
        if !self.ready.load(Ordering::Acquire) || self.disabled.load(Ordering::Relaxed) {
            return None;
        }
        let g = self.gens.read().ok()?;
        let covers_from = g.previous.as_ref().map_or(g.current.from, |p| p.from);
        if since < covers_from {
            return None;
        }
        Some(
            g.current.filter.contains(identity)
                || g.previous
                    .as_ref()
                    .is_some_and(|p| p.filter.contains(identity)),
        )
    }

    /// Starts the load: from now on the filter covers orders created at or after `from`, once
    /// every such order already in the store has been noted and [`loaded`](Self::loaded) called.
    pub fn begin_load(&self, from: i64) {
        if let Ok(mut g) = self.gens.write() {
            g.current.from = from;
        }
    }

    /// The load has noted every order created since `from` that was in the store when it began;
    /// orders committed meanwhile were noted by the writer.
    pub fn loaded(&self) {
        let overflowed = self
            .gens
            .read()
            .map(|g| g.previous.is_some())
            .unwrap_or(true);
        if overflowed {
            // A load larger than a generation rotated in no particular time order, so the
            // generations' `from` marks would be wrong: stay out of the way instead.
            self.disable();
        }
        self.ready.store(true, Ordering::Release);
    }

    /// The filter will not answer any more (a failed load).
    pub fn disable(&self) {
        self.disabled.store(true, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A filter whose (empty) load covers everything since 0.
    fn loaded_empty(capacity: u64) -> RecentIdentities {
        let f = RecentIdentities::with_capacity(capacity);
        f.begin_load(0);
        f.loaded();
        f
    }

    #[test]
    fn unknown_until_loaded_then_certain_about_absent_identities() {
        let f = RecentIdentities::new();
        f.note("phone:13800000000", 100);
        assert_eq!(f.may_have_since("phone:13800000000", 50), None);
        f.begin_load(10);
        f.note("phone:13900000000", 20);
        f.loaded();
        assert_eq!(f.may_have_since("phone:13800000000", 50), Some(true));
        assert_eq!(f.may_have_since("phone:13900000000", 10), Some(true));
        assert_eq!(f.may_have_since("phone:13700000000", 50), Some(false));
        // A look-back older than the load's start is not covered.
        assert_eq!(f.may_have_since("phone:13700000000", 9), None);
    }

    #[test]
    fn no_false_negatives_among_many() {
        let f = loaded_empty(CAPACITY);
        for i in 0..50_000 {
            f.note(&format!("phone:1380{i:07}"), 1);
        }
        for i in 0..50_000 {
            assert_eq!(
                f.may_have_since(&format!("phone:1380{i:07}"), 0),
                Some(true)
            );
        }
        let false_pos = (0..10_000)
            .filter(|i| f.may_have_since(&format!("phone:1390{i:07}"), 0) == Some(true))
            .count();
        assert!(false_pos < 100, "{false_pos} false positives in 10,000");
    }

    #[test]
    fn a_full_generation_rotates_and_narrows_what_is_covered() {
        let f = loaded_empty(10);
        for i in 0..10 {
            f.note(&format!("a{i}"), 100);
        }
        // Rotated at 100: the previous generation still covers everything since 0.
        assert_eq!(f.may_have_since("a3", 0), Some(true));
        for i in 0..10 {
            f.note(&format!("b{i}"), 200);
        }
        // Rotated again at 200: the generation that started at 0 is gone.
        assert_eq!(f.may_have_since("a3", 50), None);
        assert_eq!(f.may_have_since("b3", 150), Some(true));
        assert_eq!(f.may_have_since("c3", 150), Some(false));
    }

    #[test]
    fn a_load_larger_than_a_generation_disables_the_filter() {
        let f = RecentIdentities::with_capacity(10);
        f.begin_load(0);
        for i in 0..25 {
            f.note(&format!("a{i}"), 5);
        }
        f.loaded();
        assert_eq!(f.may_have_since("zzz", 0), None);
    }

    #[test]
    fn a_disabled_filter_always_defers_to_the_store() {
        let f = RecentIdentities::new();
        f.begin_load(0);
        f.disable();
        f.loaded();
        assert_eq!(f.may_have_since("phone:13800000000", 0), None);
    }
}
