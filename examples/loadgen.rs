//! Open-loop load generator for BENCHMARKS.md: sends web-form POSTs at a fixed rate, each with a
//! distinct phone number and text, and reports latency percentiles measured from each request's
//! *scheduled* start (so a stalled server cannot hide its queueing: no coordinated omission).
//!
//! `cargo run --release --example loadgen -- URL RATE SECONDS`

use std::time::{Duration, Instant};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let url = args
        .get(1)
        .cloned()
        .unwrap_or_else(|| "http://127.0.0.1:8080/v1/web/submissions".into());
    let rate: u64 = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(1000);
    let secs: u64 = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(10);
    let Ok(rt) = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    else {
        eprintln!("cannot start a runtime");
        std::process::exit(2);
    };
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(256)
        .build()
        .unwrap_or_default();
    let total = rate * secs;
    let interval = Duration::from_nanos(1_000_000_000 / rate.max(1));
    let start = Instant::now();
    let mut handles = Vec::with_capacity(total as usize);
    // Paced from this thread with the OS's sleep, not tokio's: tokio's timer ticks in whole
    // milliseconds, so a request was sent up to 1 ms after its scheduled time and that wait
    // counted as the server's latency (about +0.5 ms at every percentile).
    for i in 0..total {
        let scheduled = start + interval * i as u32;
        if let Some(wait) = scheduled.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        let client = client.clone();
        let url = url.clone();
        handles.push(rt.spawn(async move {
            let body = format!(
                r#"{{"content":"定速第{i}号：道路井盖缺失，存在安全隐患","phone":"137{:08}"}}"#,
                i % 100_000_000
            );
            let r = client
                .post(&url)
                .header("content-type", "application/json")
                .body(body)
                .send()
                .await;
            let ok = matches!(&r, Ok(resp) if resp.status().as_u16() == 202);
            (scheduled.elapsed(), ok)
        }));
    }
    let mut lat = Vec::with_capacity(handles.len());
    let mut failed = 0;
    rt.block_on(async {
        for h in handles {
            if let Ok((d, ok)) = h.await {
                lat.push(d);
                if !ok {
                    failed += 1;
                }
            }
        }
    });
    lat.sort();
    let p = |q: f64| {
        lat.get(((lat.len() as f64 * q) as usize).min(lat.len().saturating_sub(1)))
            .copied()
            .unwrap_or_default()
    };
    println!(
        "fixed rate {rate}/s for {secs}s: {} requests, {failed} not 202, p50 {:.2?} p90 {:.2?} p99 {:.2?} max {:.2?}",
        lat.len(),
        p(0.50),
        p(0.90),
        p(0.99),
        lat.last().copied().unwrap_or_default()
    );
}
