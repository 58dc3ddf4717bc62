//! Open-loop load generator for BENCHMARKS.md: sends web-form POSTs at a fixed rate, each with a
//! distinct phone number and text, and reports latency percentiles measured from each request's
//! *scheduled* start (so a stalled server cannot hide its queueing: no coordinated omission).
//!
//! `cargo run --release --example loadgen -- URL RATE SECONDS`
//!
//! Built like wrk2 rather than on an HTTP client library: one thread keeps a fixed set of
//! keep-alive connections in an epoll set, writes each request when it is due and reads the
//! answers with minimal parsing. The gateway and the generator share two cores here, so what
//! the generator spends is taken from the gateway and shows up as the gateway's latency:
//! - the reqwest version spent ~57 µs of CPU per request;
//! - the next one (a pacing thread handing requests to a tokio runtime) ~80 µs at 5,000/s,
//!   mostly in waking one thread from the other for every request;
//! - this one waits in `epoll_pwait2`, whose timeout is in nanoseconds (tokio's timer ticks in
//!   whole milliseconds, and a request sent late would count as the server's latency), so
//!   due requests and answers wake the same thread.
//!
//! A request waiting for a free connection waits on the clock too. `LOADGEN_TRACE=1` also
//! prints the worst 100 ms windows; `LOADGEN_FIRST=N` numbers the requests (and so their phone
//! numbers) from N, so a second run against the same gateway sends new people. The numbers are
//! scattered over the 10^8 after `137`, as a hotline's callers are; `LOADGEN_PHONES=sequential`
//! counts them up instead (see [`phone`]).

use rustix::event::{epoll, Timespec};
use std::collections::VecDeque;
use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// Connections kept open: enough for ~30 ms of stall at 10,000/s before requests queue here.
const CONNECTIONS: usize = 256;

/// What came back: latency from the due time, whether it was a 202, and when it was due
/// (since the start).
type Outcome = (Duration, bool, Duration);

/// One keep-alive connection and the request on it, if any.
struct Conn {
    stream: TcpStream,
    /// The request in flight: its due time.
    due: Option<Instant>,
    /// Bytes of the request not yet written (the socket buffer was full).
    out: Vec<u8>,
    /// The answer so far.
    buf: Vec<u8>,
}

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
    let first: u64 = std::env::var("LOADGEN_FIRST")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let sequential = std::env::var_os("LOADGEN_PHONES").is_some_and(|v| v == "sequential");
    match run(&addr, &path, rate.max(1), secs, first, sequential) {
        Ok(results) => report(rate, secs, results),
        Err(e) => {
            eprintln!("loadgen: {e}");
            std::process::exit(1);
        }
    }
}

/// Sends `rate * secs` requests on schedule and returns every outcome.
fn run(
    addr: &str,
    path: &str,
    rate: u64,
    secs: u64,
    first: u64,
    sequential: bool,
) -> std::io::Result<Vec<Outcome>> {
    let ep = epoll::create(epoll::CreateFlags::CLOEXEC)?;
    let mut conns = Vec::with_capacity(CONNECTIONS);
    for i in 0..CONNECTIONS {
        conns.push(connect(&ep, addr, i)?);
    }
    let total = rate * secs;
    let interval_ns = 1_000_000_000 / rate;
    // Free connections, used in turn (first freed, first used): every connection stays warm.
    // Taking the most recently freed one left the rest idle for seconds, past the server's
    // keep-alive timeout, and a request sent as the server closed such a connection failed.
    let mut idle: VecDeque<usize> = (0..CONNECTIONS).collect();
    // Requests that are due but found no free connection, with their due time.
    let mut waiting: VecDeque<(u64, Instant)> = VecDeque::new();
    let mut results = Vec::with_capacity(total as usize);
    let mut events = Vec::with_capacity(CONNECTIONS);
    let mut next = 0u64;
    let start = Instant::now();
    let due = |i: u64| start + Duration::from_nanos(interval_ns * i);
    while (results.len() as u64) < total {
        let now = Instant::now();
        while next < total && due(next) <= now {
            waiting.push_back((first + next, due(next)));
            next += 1;
        }
        while !waiting.is_empty() && !idle.is_empty() {
            let (Some((i, at)), Some(c)) = (waiting.pop_front(), idle.pop_front()) else {
                break;
            };
            let conn = &mut conns[c];
            conn.due = Some(at);
            conn.out = request(addr, path, i, sequential);
            if !flush(conn) {
                replace(&mut conns, c, &ep, addr, start, &mut results)?;
                idle.push_back(c);
            }
        }
        // Sleep until the next request is due or an answer arrives.
        let timeout = (next < total).then(|| {
            let d = due(next).saturating_duration_since(Instant::now());
            Timespec {
                tv_sec: d.as_secs() as _,
                tv_nsec: d.subsec_nanos() as _,
            }
        });
        events.clear();
        match epoll::wait(
            &ep,
            rustix::buffer::spare_capacity(&mut events),
            timeout.as_ref(),
        ) {
            Ok(_) => {}
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => return Err(e.into()),
        }
        for ev in &events {
            let c = ev.data.u64() as usize;
            let Some(conn) = conns.get_mut(c) else {
                continue;
            };
            if conn.due.is_none() {
                // An event on an idle connection: nothing to read, or the server closed it
                // (or sent something unasked), and then it is replaced.
                let mut probe = [0u8; 64];
                match conn.stream.read(&mut probe) {
                    Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                    _ => replace(&mut conns, c, &ep, addr, start, &mut results)?,
                }
                continue;
            }
            let ok = flush(conn)
                && match read_answer(conn) {
                    Ok(Some(status)) => {
                        let at = conn.due.take().unwrap_or(start);
                        results.push((at.elapsed(), status == 202, at.duration_since(start)));
                        conn.buf.clear();
                        idle.push_back(c);
                        true
                    }
                    Ok(None) => true,
                    Err(_) => false,
                };
            if !ok {
                replace(&mut conns, c, &ep, addr, start, &mut results)?;
                idle.push_back(c);
            }
        }
    }
    Ok(results)
}

/// Opens connection `i` (blocking connect, then non-blocking) and adds it to the epoll set,
/// edge-triggered: every new answer wakes the loop once.
fn connect(ep: &impl std::os::fd::AsFd, addr: &str, i: usize) -> std::io::Result<Conn> {
    let stream = TcpStream::connect(addr)?;
    stream.set_nodelay(true)?;
    stream.set_nonblocking(true)?;
    epoll::add(
        ep,
        &stream,
        epoll::EventData::new_u64(i as u64),
        epoll::EventFlags::IN | epoll::EventFlags::OUT | epoll::EventFlags::ET,
    )?;
    Ok(Conn {
        stream,
        due: None,
        out: Vec::new(),
        buf: Vec::with_capacity(1024),
    })
}

/// Counts the request on connection `c`, if any, as failed and puts a new connection in its
/// place.
fn replace(
    conns: &mut [Conn],
    c: usize,
    ep: &impl std::os::fd::AsFd,
    addr: &str,
    start: Instant,
    results: &mut Vec<Outcome>,
) -> std::io::Result<()> {
    if let Some(at) = conns[c].due.take() {
        results.push((at.elapsed(), false, at.duration_since(start)));
    }
    conns[c] = connect(ep, addr, c)?;
    Ok(())
}

/// The eight digits after `137` for request `i`: distinct for 10^8 requests. Scattered by
/// default (`i` times an odd multiplier not divisible by 5 is a bijection modulo 10^8), because
/// a hotline's callers arrive in no order and every index keyed by caller then takes its
/// inserts at random places; `LOADGEN_PHONES=sequential` numbers them in order, as the
/// generator did before 2026-12-06 (every such index then only appends).
fn phone(i: u64, sequential: bool) -> u64 {
    const SPACE: u64 = 100_000_000;
    if sequential {
        i % SPACE
    } else {
        (i % SPACE) * 73_939_133 % SPACE
    }
}

/// The POST for request `i`.
fn request(addr: &str, path: &str, i: u64, sequential: bool) -> Vec<u8> {
    let body = format!(
        r#"{{"content":"定速第{i}号：道路井盖缺失，存在安全隐患","phone":"137{:08}"}}"#,
        phone(i, sequential)
    );
    format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// Writes what is left of the request; false if the connection failed.
fn flush(conn: &mut Conn) -> bool {
    while !conn.out.is_empty() {
        match conn.stream.write(&conn.out) {
            Ok(0) => return false,
            Ok(n) => {
                conn.out.drain(..n);
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => return true,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(_) => return false,
        }
    }
    true
}

/// Reads what has arrived; the status once the whole answer (head and Content-Length bytes of
/// body) is in.
fn read_answer(conn: &mut Conn) -> std::io::Result<Option<u16>> {
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(status) = complete(&conn.buf) {
            return Ok(Some(status));
        }
        match conn.stream.read(&mut chunk) {
            Ok(0) => return Err(ErrorKind::UnexpectedEof.into()),
            Ok(n) => conn.buf.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == ErrorKind::WouldBlock => return Ok(None),
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

/// The status of a complete answer in `buf`, or None while it is still arriving.
fn complete(buf: &[u8]) -> Option<u16> {
    let head_end = buf.windows(4).position(|w| w == b"\r\n\r\n")? + 4;
    let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    if buf.len() < head_end + length {
        return None;
    }
    Some(
        head.split_whitespace()
            .nth(1)
            .and_then(|c| c.parse().ok())
            .unwrap_or(0),
    )
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
