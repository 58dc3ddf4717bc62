//! Open-loop load generator for BENCHMARKS.md: sends web-form POSTs at a fixed rate, each with a
//! distinct phone number and text, and reports latency percentiles measured from each request's
//! *scheduled* start (so a stalled server cannot hide its queueing: no coordinated omission).
//!
//! `cargo run --release --example loadgen -- URL RATE SECONDS`
//!
//! Built like wrk2 rather than on an HTTP client library: a pacing thread schedules requests, and
//! a fixed set of keep-alive connections on one thread writes them and reads the answers with
//! minimal parsing. The gateway and the generator share two cores here, and the reqwest version
//! spent ~57 µs of CPU per request (half a core at 7,700/s) that the real, remote clients never
//! take from the gateway. A request waiting for a free connection waits on the clock too.
//! `LOADGEN_TRACE=1` also prints the worst 100 ms windows; `LOADGEN_FIRST=N` numbers the requests
//! (and so their phone numbers) from N, so a second run against the same gateway sends new people.

use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Connections kept open: enough for ~30 ms of stall at 10,000/s before requests queue here.
const CONNECTIONS: usize = 256;

/// One scheduled request: its index and when it was due.
type Job = (u64, Instant);
/// What came back: latency from the due time, whether it was a 202, and when it was due.
type Outcome = (Duration, bool, Duration);

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let url = args
        .get(1)
        .cloned()
        .unwrap_or_else(|| "http://127.0.0.1:8080/v1/web/submissions".into());
    let rate: u64 = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(1000);
    let secs: u64 = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(10);
    let Some((addr, path)) = url
        .strip_prefix("http://")
        .and_then(|rest| rest.split_once('/'))
        .map(|(a, p)| (a.to_string(), format!("/{p}")))
    else {
        eprintln!("URL must be http://HOST:PORT/PATH");
        std::process::exit(2);
    };
    let Ok(rt) = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    else {
        eprintln!("cannot start a runtime");
        std::process::exit(2);
    };
    let total = rate * secs;
    let first: u64 = std::env::var("LOADGEN_FIRST")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let (job_tx, job_rx) = tokio::sync::mpsc::unbounded_channel::<Job>();
    let (out_tx, mut out_rx) = tokio::sync::mpsc::unbounded_channel::<Outcome>();
    let jobs = std::sync::Arc::new(tokio::sync::Mutex::new(job_rx));
    let start = Instant::now();
    // Paced from an OS thread with the OS's sleep: tokio's timer ticks in whole milliseconds,
    // and a request sent late by the generator must not count as the server's latency.
    let interval = Duration::from_nanos(1_000_000_000 / rate.max(1));
    let pacer = std::thread::spawn(move || {
        for i in 0..total {
            let due = start + interval * i as u32;
            if let Some(wait) = due.checked_duration_since(Instant::now()) {
                std::thread::sleep(wait);
            }
            if job_tx.send((first + i, due)).is_err() {
                return;
            }
        }
    });
    let results = rt.block_on(async move {
        let mut conns = Vec::with_capacity(CONNECTIONS);
        for _ in 0..CONNECTIONS {
            let (jobs, out, addr, path) =
                (jobs.clone(), out_tx.clone(), addr.clone(), path.clone());
            conns.push(tokio::spawn(async move {
                let mut conn: Option<tokio::net::TcpStream> = None;
                let mut buf = Vec::with_capacity(4096);
                loop {
                    let next = jobs.lock().await.recv().await;
                    let Some((i, due)) = next else { return };
                    let ok = match send(&mut conn, &addr, &path, i, &mut buf).await {
                        Ok(status) => status == 202,
                        Err(_) => {
                            conn = None;
                            false
                        }
                    };
                    let _ = out.send((due.elapsed(), ok, due.duration_since(start)));
                }
            }));
        }
        drop(out_tx);
        let mut results = Vec::with_capacity(total as usize);
        while let Some(r) = out_rx.recv().await {
            results.push(r);
        }
        results
    });
    let _ = pacer.join();
    report(rate, secs, results);
}

/// Sends request `i` on `conn` (connecting first if needed) and returns the answer's status.
async fn send(
    conn: &mut Option<tokio::net::TcpStream>,
    addr: &str,
    path: &str,
    i: u64,
    buf: &mut Vec<u8>,
) -> std::io::Result<u16> {
    if conn.is_none() {
        let s = tokio::net::TcpStream::connect(addr).await?;
        s.set_nodelay(true)?;
        *conn = Some(s);
    }
    let Some(s) = conn.as_mut() else {
        return Err(std::io::ErrorKind::NotConnected.into());
    };
    let body = format!(
        r#"{{"content":"定速第{i}号：道路井盖缺失，存在安全隐患","phone":"137{:08}"}}"#,
        i % 100_000_000
    );
    let req = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).await?;
    buf.clear();
    // Read the head, then as much body as Content-Length says.
    let head_end = loop {
        if let Some(p) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break p + 4;
        }
        read_more(s, buf).await?;
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    while buf.len() < head_end + length {
        read_more(s, buf).await?;
    }
    Ok(status)
}

async fn read_more(s: &mut tokio::net::TcpStream, buf: &mut Vec<u8>) -> std::io::Result<()> {
    let mut chunk = [0u8; 4096];
    let n = s.read(&mut chunk).await?;
    if n == 0 {
        return Err(std::io::ErrorKind::UnexpectedEof.into());
    }
    buf.extend_from_slice(&chunk[..n]);
    Ok(())
}

fn report(rate: u64, secs: u64, results: Vec<Outcome>) {
    let failed = results.iter().filter(|r| !r.1).count();
    if std::env::var_os("LOADGEN_TRACE").is_some() {
        let mut windows = std::collections::BTreeMap::new();
        for (d, _, at) in &results {
            let w = windows
                .entry(at.as_millis() / 100)
                .or_insert(Duration::ZERO);
            *w = (*w).max(*d);
        }
        let mut worst: Vec<_> = windows.into_iter().collect();
        worst.sort_by_key(|(_, d)| std::cmp::Reverse(*d));
        for (w, d) in worst.iter().take(12) {
            eprintln!("  at {:.1}s max {:.2?}", *w as f64 / 10.0, d);
        }
    }
    let mut lat: Vec<Duration> = results.iter().map(|r| r.0).collect();
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
