//! Nuisance-ladder cost for BENCHMARKS.md: decision time per submission and memory with N
//! distinct identities (default 1,000,000), then after the sweep.
//!
//! `cargo run --release --example ladder_mem -- 1000000`

use governor::clock::FakeRelativeClock;
use hotline_adapters::Identity;
use hotline_gateway::pipeline::nuisance::{Ladder, LadderConfig};
use hotline_gateway::store::sqlite::SqliteStore;
use hotline_gateway::store::Store;
use std::sync::Arc;
use std::time::{Duration, Instant};

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        })
        .unwrap_or(0)
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let n: u64 = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(1_000_000);
    let dir = std::env::temp_dir().join(format!("ladder-mem-{}", std::process::id()));
    let store: Arc<dyn Store> = match SqliteStore::open(&dir) {
        Ok(s) => Arc::new(s),
        Err(e) => {
            eprintln!("cannot open a store: {e}");
            return;
        }
    };
    let clock = FakeRelativeClock::default();
    let cfg = LadderConfig {
        quota: 5,
        per: Duration::from_secs(3600),
        warnings: 2,
        steps: vec![Duration::from_secs(3600)],
        allow: vec![],
        max_keys: 2_000_000,
        tz: chrono_tz::Asia::Shanghai,
    };
    let Ok(ladder) = Ladder::with_clock(cfg, store, clock.clone(), 0).await else {
        eprintln!("cannot build the ladder");
        return;
    };
    let ids: Vec<Identity> = (0..n)
        .map(|i| Identity::new(hotline_adapters::IdentityKind::Phone, format!("1{:010}", i)))
        .collect();
    let before = rss_kib();
    let start = Instant::now();
    for id in &ids {
        let _ = ladder.check_identity(id, "web", "", 0).await;
    }
    let per = start.elapsed() / n.max(1) as u32;
    let after = rss_kib();
    println!(
        "{n} distinct identities: {:?} per decision; limiter keys {}; RSS +{} MiB ({} -> {} MiB)",
        per,
        ladder.keys(),
        (after.saturating_sub(before)) / 1024,
        before / 1024,
        after / 1024
    );
    // An hour later every key is back to a full quota: the sweep drops them all.
    clock.advance(Duration::from_secs(3600));
    let start = Instant::now();
    ladder.sweep(3600);
    println!(
        "after the sweep ({:?}): limiter keys {}; RSS {} MiB",
        start.elapsed(),
        ladder.keys(),
        rss_kib() / 1024
    );
    let _ = std::fs::remove_dir_all(&dir);
}
