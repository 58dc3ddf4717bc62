//! The nuisance quota shared by every gateway node: one GCRA per caller, kept in Redis.
//!
//! - **Same rule as the local limiter.** `governor`'s GCRA as the ladder configures it:
//!   emission interval `T = per / quota` (at least 1 ms), burst `quota`, so a fresh caller gets
//!   `quota` submissions at once and then one per `T`. A refusal says how long until the next
//!   submission would be allowed.
//! - **One atomic script, Redis's clock.** The check is one Lua script (run by `EVALSHA`) that
//!   reads `TIME` inside Redis, so nodes with drifting clocks still share one timeline and two
//!   nodes can never both take the last cell. The key holds the theoretical arrival time (TAT, in
//!   microseconds) and expires when the caller's quota is full again, which is exactly when its
//!   state equals "never seen"; a refusal writes nothing.
//! - **No phone numbers in Redis.** The key is `{prefix}gcra:{hex(SHA-256(identity))}`. A plain
//!   hash of an 11-digit number can be reversed by trying every number, so deployments that treat
//!   Redis as less trusted should give all nodes one secret with [`RedisGcra::with_secret`]
//!   (the hash becomes an HMAC).
//! - **Local over-limit cache.** After Redis refuses a caller until `t`, this node refuses it
//!   until `t` without asking again (a caller redialling in a loop costs Redis nothing). The
//!   answer is the one Redis would give, because a refusal does not change the shared state; only
//!   [`RedisGcra::reset`] can make it wrong, see there.
//! - **Failing fast.** Every call is bounded by the configured timeout. A timeout or error is
//!   [`LimiterError::Unavailable`], the caller (the ladder) then decides with its local limiter.
//!   After a failure Redis is not tried again for [`BACKOFF`]: calls in that window return
//!   `Unavailable` at once, so an outage costs no latency and a recovering Redis is not met by
//!   a reconnect from every submission. Each `Unavailable` is counted in
//!   `hotline_limiter_redis_errors_total`; a warning is logged at most once per backoff period,
//!   never with the identity.
//! - **Connection.** One multiplexed connection per limiter, opened on first use and replaced
//!   after any failure (not `redis::aio::ConnectionManager`: its own retry loop with growing
//!   delays would decide when we reconnect; here the backoff above does). Creating a limiter
//!   does no I/O and needs no runtime, so a Redis that is down at start-up only means the first
//!   checks fall back.

use hmac::{Hmac, Mac};
use redis::aio::MultiplexedConnection;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::future::Future;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

/// How long Redis is left alone after a failure; checks in this window fall back at once.
pub const BACKOFF: Duration = Duration::from_secs(1);

/// Most callers remembered as over the limit on this node (about 60 bytes each).
const DENIED_CAP: usize = 100_000;

/// Shortest wait a refusal reports, so a caller is never told to retry "now".
const MIN_RETRY: Duration = Duration::from_millis(1);

/// GCRA in one step. KEYS\[1\]: the caller's key. ARGV\[1\]: emission interval T, ARGV\[2\]: tolerance
/// tau = T * (burst - 1), both in microseconds. Returns {1, 0} when allowed, {0, wait in µs} when
/// not. Mirrors governor's `Gcra::test_and_update`: allowed iff now >= tat - tau, then
/// tat = max(tat, now) + T.
///
/// Numbers are written with `%.0f`: `tostring` would print a TAT such as 1.7e15 in exponent form
/// and lose digits. Microsecond timestamps stay far below 2^53, so Lua's doubles hold them exactly.
const GCRA_LUA: &str = r"
-- Scripts that read TIME and then write need effects replication; Redis 5+ always does it.
if redis.replicate_commands then redis.replicate_commands() end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local tau = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or '') or now
if tat < now then tat = now end
local earliest = tat - tau
if now < earliest then
  return {0, earliest - now}
end
local new_tat = tat + interval
local ttl_ms = math.ceil((new_tat - now) / 1000)
redis.call('SET', KEYS[1], string.format('%.0f', new_tat), 'PX', string.format('%.0f', ttl_ms))
return {1, 0}
";

/// Decision of one check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Within the quota; the submission has been counted.
    Allow,
    /// Over the quota; nothing was counted.
    Deny {
        /// Time until the next submission would be allowed (at least 1 ms).
        retry_after: Duration,
    },
}

/// Why the shared limiter gave no decision; the caller decides locally instead.
#[derive(Debug, thiserror::Error)]
pub enum LimiterError {
    /// Redis did not answer in time, failed, or is being left alone after a recent failure.
    #[error("redis unavailable: {0}")]
    Unavailable(String),
}

/// The shared GCRA limiter (see the module documentation).
pub struct RedisGcra {
    client: redis::Client,
    conn_cfg: redis::AsyncConnectionConfig,
    script: redis::Script,
    prefix: String,
    /// Set by [`RedisGcra::with_secret`]: key names are an HMAC of the identity.
    keyed: Option<Hmac<Sha256>>,
    interval_us: u64,
    tau_us: u64,
    timeout: Duration,
    link: Mutex<Link>,
    /// Held while opening a connection, so concurrent checks wait for one connect instead of
    /// each opening their own.
    connecting: tokio::sync::Mutex<()>,
    /// Callers Redis refused, by key digest, until when.
    denied: Mutex<HashMap<[u8; 32], Instant>>,
}

/// The connection and the failure backoff.
#[derive(Default)]
struct Link {
    /// The open connection and its generation; a failed call drops it only if it is still the
    /// one that failed (not a newer one opened since).
    conn: Option<(u64, MultiplexedConnection)>,
    generation: u64,
    down_until: Option<Instant>,
    last_warn: Option<Instant>,
}

/// How one attempt failed.
enum Fail {
    /// Redis is being left alone after a recent failure.
    Backoff,
    /// No answer within the timeout.
    Timeout,
    /// Connecting or the command failed.
    Redis(redis::RedisError),
}

impl RedisGcra {
    /// A limiter allowing `quota` submissions per `per` to each key, shared through the Redis
    /// at `url` (`redis://[:password@]host:port[/db]`). Key names start with `prefix`. Every
    /// call gives up after `timeout` (50–200 ms is sensible: intake waits for it).
    ///
    /// Does no I/O: a Redis that is down at start-up is not an error (the first checks return
    /// [`LimiterError::Unavailable`] and the connection is opened once Redis answers). Only a URL
    /// that cannot be parsed is an error.
    pub fn new(
        url: &str,
        prefix: &str,
        quota: u32,
        per: Duration,
        timeout: Duration,
    ) -> Result<RedisGcra, LimiterError> {
        // The error text never contains the URL, which may carry a password.
        let client = redis::Client::open(url)
            .map_err(|e| LimiterError::Unavailable(format!("bad redis url: {e}")))?;
        // Computed exactly as the ladder configures governor, so both limiters agree.
        let burst = quota.max(1);
        let interval = (per / burst).max(Duration::from_millis(1));
        let interval_us = u64::try_from(interval.as_micros()).unwrap_or(u64::MAX);
        let tau_us = interval_us.saturating_mul(u64::from(burst - 1));
        // Also bound the connection's own waits, so nothing it starts outlives our timeout by
        // much (our `tokio::time::timeout` already bounds what the caller waits).
        let conn_cfg = redis::AsyncConnectionConfig::new()
            .set_connection_timeout(Some(timeout))
            .set_response_timeout(Some(timeout));
        Ok(RedisGcra {
            client,
            conn_cfg,
            script: redis::Script::new(GCRA_LUA),
            prefix: prefix.to_string(),
            keyed: None,
            interval_us,
            tau_us,
            timeout,
            link: Mutex::new(Link::default()),
            connecting: tokio::sync::Mutex::new(()),
            denied: Mutex::new(HashMap::new()),
        })
    }

    /// For a `rediss://` URL: TLS verified against the CA certificate(s) in `ca_pem` (PEM)
    /// instead of the system's roots, the usual case for a city's own Redis.
    pub fn with_ca(mut self, url: &str, ca_pem: Vec<u8>) -> Result<RedisGcra, LimiterError> {
        self.client = redis::Client::build_with_tls(
            url,
            redis::TlsCertificates {
                client_tls: None,
                root_cert: Some(ca_pem),
            },
        )
        .map_err(|e| LimiterError::Unavailable(format!("redis TLS: {e}")))?;
        Ok(self)
    }

    /// Names keys by HMAC-SHA-256 of the identity under `secret` instead of plain SHA-256, so
    /// the hashes in Redis cannot be reversed by hashing every phone number. Every node sharing
    /// the quota must use the same secret; changing it starts every caller on a fresh quota.
    pub fn with_secret(mut self, secret: &[u8]) -> RedisGcra {
        match Hmac::<Sha256>::new_from_slice(secret) {
            Ok(mac) => self.keyed = Some(mac),
            // HMAC takes keys of any length, so this does not happen; if it did, keys would stay
            // plain hashes, which is still no raw number in Redis.
            Err(_) => tracing::error!("HMAC key rejected; limiter keys stay plain SHA-256."),
        }
        self
    }

    /// One submission of `key` (an identity such as `phone:13800000000`). `Allow` has counted
    /// it; `Deny` counted nothing. An error means Redis gave no answer within the timeout (or is
    /// in its backoff after a failure): decide locally.
    pub async fn check(&self, key: &str) -> Result<Decision, LimiterError> {
        let digest = self.digest(key);
        if let Some(d) = self.cached_deny(&digest) {
            return Ok(d);
        }
        let rkey = self.redis_key(&digest);
        let script = &self.script;
        let (interval, tau) = (self.interval_us, self.tau_us);
        let (allowed, wait_us): (i64, i64) = self
            .call(move |mut c| async move {
                script
                    .key(&rkey)
                    .arg(interval)
                    .arg(tau)
                    .invoke_async(&mut c)
                    .await
            })
            .await?;
        if allowed == 1 {
            return Ok(Decision::Allow);
        }
        let retry_after = Duration::from_micros(u64::try_from(wait_us).unwrap_or(0)).max(MIN_RETRY);
        self.remember_deny(digest, retry_after);
        Ok(Decision::Deny { retry_after })
    }

    /// Forgets a key's state (an operator lifted a suspension): the next check on any node
    /// starts a fresh quota, except that another node which refused this key itself keeps
    /// refusing it from its local cache until that refusal's `retry_after` is over (at most one
    /// emission interval, `per / quota`).
    pub async fn reset(&self, key: &str) -> Result<(), LimiterError> {
        let digest = self.digest(key);
        // Forget locally even if Redis fails, so this node at least asks Redis again.
        self.lock_denied().remove(&digest);
        let rkey = self.redis_key(&digest);
        self.call(move |mut c| async move {
            redis::cmd("DEL").arg(&rkey).query_async::<()>(&mut c).await
        })
        .await
    }

    /// Forgets this node's cached refusal of `key` (a lift made on another node, which has
    /// reset the key in Redis itself).
    pub fn forget_local(&self, key: &str) {
        let digest = self.digest(key);
        self.lock_denied().remove(&digest);
    }

    /// Runs `op` on the connection within the timeout and the backoff rules.
    async fn call<T, F, Fut>(&self, op: F) -> Result<T, LimiterError>
    where
        F: FnOnce(MultiplexedConnection) -> Fut,
        Fut: Future<Output = redis::RedisResult<T>>,
    {
        if self.backing_off() {
            return Err(self.skipped());
        }
        // Which connection the attempt used, so a failure drops that one and no newer one.
        let mut used = None;
        let attempt = async {
            let (generation, conn) = self.connection().await?;
            used = Some(generation);
            op(conn).await.map_err(Fail::Redis)
        };
        let result = match tokio::time::timeout(self.timeout, attempt).await {
            Ok(r) => r,
            Err(_) => Err(Fail::Timeout),
        };
        match result {
            Ok(v) => Ok(v),
            Err(Fail::Backoff) => Err(self.skipped()),
            Err(Fail::Timeout) => {
                Err(self.failed(used, format!("no answer within {:?}", self.timeout)))
            }
            Err(Fail::Redis(e)) => Err(self.failed(used, e.to_string())),
        }
    }

    /// The open connection, or a new one.
    async fn connection(&self) -> Result<(u64, MultiplexedConnection), Fail> {
        let open = self.lock_link().conn.clone();
        if let Some(c) = open {
            return Ok(c);
        }
        let _one = self.connecting.lock().await;
        {
            let link = self.lock_link();
            if let Some(c) = link.conn.clone() {
                return Ok(c);
            }
            // The connect we waited for failed: do not try again at once.
            if link.down_until.is_some_and(|t| Instant::now() < t) {
                return Err(Fail::Backoff);
            }
        }
        // Opened on the process's shared runtime, whose thread drives it: opened on the HTTP
        // worker's runtime that asked first, it died when that worker stopped at a SIGTERM,
        // under the other workers' checks (see `crate::shared_io_runtime`).
        let (client, cfg) = (self.client.clone(), self.conn_cfg.clone());
        let conn = crate::on_shared_io(async move {
            client
                .get_multiplexed_async_connection_with_config(&cfg)
                .await
        })
        .await
        .unwrap_or_else(|| {
            Err(redis::RedisError::from((
                redis::ErrorKind::Io,
                "the shared runtime dropped the connect",
            )))
        })
        .map_err(Fail::Redis)?;
        let mut link = self.lock_link();
        link.generation += 1;
        let c = (link.generation, conn);
        link.conn = Some(c.clone());
        Ok(c)
    }

    fn backing_off(&self) -> bool {
        self.lock_link()
            .down_until
            .is_some_and(|t| Instant::now() < t)
    }

    /// A call not sent because Redis failed recently.
    fn skipped(&self) -> LimiterError {
        metrics::counter!("hotline_limiter_redis_errors_total").increment(1);
        LimiterError::Unavailable("not tried: backing off after a recent failure".into())
    }

    /// A call that failed: drop its connection (a timed-out or broken one cannot be trusted;
    /// a server error such as READONLY after a failover also calls for a fresh connection)
    /// and start the backoff.
    fn failed(&self, used: Option<u64>, reason: String) -> LimiterError {
        let now = Instant::now();
        let warn = {
            let mut link = self.lock_link();
            if link.conn.as_ref().is_some_and(|(g, _)| Some(*g) == used) {
                link.conn = None;
            }
            link.down_until = Some(now + BACKOFF);
            // Concurrent calls fail together; one line per period is enough.
            let warn = link
                .last_warn
                .is_none_or(|t| now.duration_since(t) >= BACKOFF);
            if warn {
                link.last_warn = Some(now);
            }
            warn
        };
        metrics::counter!("hotline_limiter_redis_errors_total").increment(1);
        if warn {
            tracing::warn!(
                error = %reason,
                backoff_ms = BACKOFF.as_millis() as u64,
                "Shared quota in Redis unavailable; the local limiter decides meanwhile."
            );
        }
        LimiterError::Unavailable(reason)
    }

    fn digest(&self, identity: &str) -> [u8; 32] {
        match &self.keyed {
            Some(mac) => {
                let mut mac = mac.clone();
                mac.update(identity.as_bytes());
                mac.finalize().into_bytes().into()
            }
            None => Sha256::digest(identity.as_bytes()).into(),
        }
    }

    fn redis_key(&self, digest: &[u8; 32]) -> String {
        format!("{}gcra:{}", self.prefix, hex::encode(digest))
    }

    fn cached_deny(&self, digest: &[u8; 32]) -> Option<Decision> {
        let mut denied = self.lock_denied();
        let until = *denied.get(digest)?;
        let now = Instant::now();
        if now < until {
            return Some(Decision::Deny {
                retry_after: (until - now).max(MIN_RETRY),
            });
        }
        denied.remove(digest);
        None
    }

    fn remember_deny(&self, digest: [u8; 32], retry_after: Duration) {
        let mut denied = self.lock_denied();
        if denied.len() >= DENIED_CAP {
            let now = Instant::now();
            denied.retain(|_, until| *until > now);
            // Still mostly full (a flood of distinct callers): start over rather than sweep on
            // every insert. Forgotten callers are only asked about in Redis again.
            if denied.len() >= DENIED_CAP * 3 / 4 {
                denied.clear();
            }
        }
        denied.insert(digest, Instant::now() + retry_after);
    }

    // A panic while holding either lock leaves its map or link consistent (each update is a
    // single assignment), so a poisoned lock is used as is rather than failing every check.
    fn lock_link(&self) -> MutexGuard<'_, Link> {
        self.link.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn lock_denied(&self) -> MutexGuard<'_, HashMap<[u8; 32], Instant>> {
        self.denied.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use std::process::{Child, Command, Stdio};

    const PHONE: &str = "phone:13800000000";

    /// A private `redis-server` on a loopback port, killed on drop. Fails the test (never skips)
    /// when it cannot be started.
    struct Server {
        child: Child,
        port: u16,
    }

    impl Server {
        async fn start() -> Server {
            Server::start_on(free_port()).await
        }

        async fn start_on(port: u16) -> Server {
            let child = Command::new("/usr/bin/redis-server")
                .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
                .args(["--save", "", "--appendonly", "no"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("redis-server must be installed at /usr/bin/redis-server");
            let mut server = Server { child, port };
            server.wait_ready().await;
            server
        }

        fn url(&self) -> String {
            format!("redis://127.0.0.1:{}/", self.port)
        }

        async fn wait_ready(&mut self) {
            let deadline = Instant::now() + Duration::from_secs(10);
            loop {
                if let Some(status) = self.child.try_wait().unwrap() {
                    panic!("redis-server on port {} exited: {status}", self.port);
                }
                if let Ok(mut c) = raw(&self.url()).await {
                    let pong: redis::RedisResult<String> =
                        redis::cmd("PING").query_async(&mut c).await;
                    if pong.is_ok() {
                        return;
                    }
                }
                assert!(
                    Instant::now() < deadline,
                    "redis-server on port {} did not answer PING",
                    self.port
                );
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }

    impl Drop for Server {
        fn drop(&mut self) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }

    fn free_port() -> u16 {
        std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
    }

    async fn raw(url: &str) -> redis::RedisResult<MultiplexedConnection> {
        redis::Client::open(url)?
            .get_multiplexed_async_connection()
            .await
    }

    async fn keys(url: &str) -> Vec<String> {
        let mut c = raw(url).await.unwrap();
        redis::cmd("KEYS")
            .arg("*")
            .query_async(&mut c)
            .await
            .unwrap()
    }

    fn limiter(url: &str, prefix: &str, quota: u32, per: Duration) -> RedisGcra {
        RedisGcra::new(url, prefix, quota, per, Duration::from_millis(200)).unwrap()
    }

    fn retry(d: Decision) -> Duration {
        match d {
            Decision::Deny { retry_after } => retry_after,
            Decision::Allow => panic!("expected Deny, got Allow"),
        }
    }

    /// The connection belongs to no HTTP worker: one opened while serving a worker whose
    /// runtime then stops (each actix worker stops its own at a SIGTERM) still serves the
    /// others. Before, its driver task died with that runtime and every other worker's checks
    /// fell back to the local limiter.
    #[test]
    fn the_connection_outlives_the_runtime_that_opened_it() {
        let b = tokio::runtime::Runtime::new().unwrap();
        let s = b.block_on(Server::start());
        let g = limiter(&s.url(), "rt:", 5, Duration::from_secs(60));
        let a = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        assert_eq!(a.block_on(g.check(PHONE)).unwrap(), Decision::Allow);
        drop(a);
        assert_eq!(b.block_on(g.check(PHONE)).unwrap(), Decision::Allow);
        // Both checks counted in Redis, against one quota.
        for _ in 0..3 {
            assert_eq!(b.block_on(g.check(PHONE)).unwrap(), Decision::Allow);
        }
        assert!(matches!(
            b.block_on(g.check(PHONE)).unwrap(),
            Decision::Deny { .. }
        ));
    }

    #[tokio::test]
    async fn quota_then_deny_with_time_to_next_cell() {
        let s = Server::start().await;
        let g = limiter(&s.url(), "t1:", 3, Duration::from_secs(60));
        for _ in 0..3 {
            assert_eq!(g.check(PHONE).await.unwrap(), Decision::Allow);
        }
        let wait = retry(g.check(PHONE).await.unwrap());
        assert!(
            wait >= Duration::from_secs(19) && wait <= Duration::from_secs(20),
            "{wait:?}"
        );
        // Another caller has its own quota.
        assert_eq!(g.check("phone:13900000000").await.unwrap(), Decision::Allow);
    }

    #[tokio::test]
    async fn refills_one_cell_per_interval() {
        let s = Server::start().await;
        // T = 200 ms.
        let g = limiter(&s.url(), "t1b:", 2, Duration::from_millis(400));
        assert_eq!(g.check(PHONE).await.unwrap(), Decision::Allow);
        assert_eq!(g.check(PHONE).await.unwrap(), Decision::Allow);
        let wait = retry(g.check(PHONE).await.unwrap());
        assert!(wait <= Duration::from_millis(200), "{wait:?}");
        // Waiting what the refusal said is enough, for exactly one more.
        tokio::time::sleep(wait).await;
        assert_eq!(g.check(PHONE).await.unwrap(), Decision::Allow);
        assert!(matches!(
            g.check(PHONE).await.unwrap(),
            Decision::Deny { .. }
        ));
    }

    #[tokio::test]
    async fn two_nodes_share_one_quota() {
        let s = Server::start().await;
        let a = limiter(&s.url(), "t2:", 3, Duration::from_secs(60));
        let b = limiter(&s.url(), "t2:", 3, Duration::from_secs(60));
        assert_eq!(a.check(PHONE).await.unwrap(), Decision::Allow);
        assert_eq!(b.check(PHONE).await.unwrap(), Decision::Allow);
        assert_eq!(a.check(PHONE).await.unwrap(), Decision::Allow);
        assert!(matches!(
            b.check(PHONE).await.unwrap(),
            Decision::Deny { .. }
        ));
        assert!(matches!(
            a.check(PHONE).await.unwrap(),
            Decision::Deny { .. }
        ));
    }

    #[tokio::test]
    async fn reset_gives_a_fresh_quota() {
        let s = Server::start().await;
        let a = limiter(&s.url(), "t3:", 2, Duration::from_secs(60));
        let b = limiter(&s.url(), "t3:", 2, Duration::from_secs(60));
        a.check(PHONE).await.unwrap();
        a.check(PHONE).await.unwrap();
        // Now also in a's local over-limit cache; reset must clear that too.
        assert!(matches!(
            a.check(PHONE).await.unwrap(),
            Decision::Deny { .. }
        ));
        a.reset(PHONE).await.unwrap();
        assert!(keys(&s.url()).await.is_empty());
        assert_eq!(a.check(PHONE).await.unwrap(), Decision::Allow);
        assert_eq!(b.check(PHONE).await.unwrap(), Decision::Allow);
        assert!(matches!(
            a.check(PHONE).await.unwrap(),
            Decision::Deny { .. }
        ));
    }

    #[tokio::test]
    async fn key_expires_when_quota_is_full_again() {
        let s = Server::start().await;
        let g = limiter(&s.url(), "t4:", 3, Duration::from_secs(60));
        let mut c = raw(&s.url()).await.unwrap();
        g.check(PHONE).await.unwrap();
        let key = keys(&s.url()).await.pop().unwrap();
        let pttl: i64 = redis::cmd("PTTL")
            .arg(&key)
            .query_async(&mut c)
            .await
            .unwrap();
        // One cell used: full again after one interval (20 s).
        assert!(pttl > 19_000 && pttl <= 20_000, "{pttl}");
        g.check(PHONE).await.unwrap();
        g.check(PHONE).await.unwrap();
        let pttl: i64 = redis::cmd("PTTL")
            .arg(&key)
            .query_async(&mut c)
            .await
            .unwrap();
        assert!(pttl > 59_000 && pttl <= 60_000, "{pttl}");
        // A refusal leaves the state (and so the expiry) alone.
        g.check(PHONE).await.unwrap();
        let again: i64 = redis::cmd("PTTL")
            .arg(&key)
            .query_async(&mut c)
            .await
            .unwrap();
        assert!(again <= pttl, "{again} > {pttl}");
    }

    #[tokio::test]
    async fn redis_holds_no_raw_identity() {
        let s = Server::start().await;
        let g = limiter(&s.url(), "t6:", 3, Duration::from_secs(60));
        g.check(PHONE).await.unwrap();
        let stored = keys(&s.url()).await;
        assert_eq!(stored.len(), 1);
        let key = &stored[0];
        assert!(!key.contains("13800000000"), "{key}");
        let hash = key.strip_prefix("t6:gcra:").unwrap();
        assert_eq!(hash.len(), 64);
        assert!(hash.bytes().all(|b| b.is_ascii_hexdigit()));
        let mut c = raw(&s.url()).await.unwrap();
        let value: String = redis::cmd("GET")
            .arg(key)
            .query_async(&mut c)
            .await
            .unwrap();
        assert!(value.bytes().all(|b| b.is_ascii_digit()), "{value}");

        // With a secret the key differs from the plain hash, and nodes with the same secret
        // still share it.
        let k1 = limiter(&s.url(), "t6:", 3, Duration::from_secs(60)).with_secret(b"s3cret");
        let k2 = limiter(&s.url(), "t6:", 3, Duration::from_secs(60)).with_secret(b"s3cret");
        k1.check(PHONE).await.unwrap();
        k2.check(PHONE).await.unwrap();
        let mut all = keys(&s.url()).await;
        all.sort();
        assert_eq!(all.len(), 2);
        assert!(all.iter().all(|k| !k.contains("13800000000")));
    }

    #[tokio::test]
    async fn over_limit_is_answered_locally() {
        let s = Server::start().await;
        let g = limiter(&s.url(), "t7:", 1, Duration::from_secs(60));
        g.check(PHONE).await.unwrap();
        let first = retry(g.check(PHONE).await.unwrap());
        // Behind the limiter's back: Redis now has no state, yet this node still refuses,
        // so it did not ask Redis.
        let mut c = raw(&s.url()).await.unwrap();
        let _: i64 = redis::cmd("DEL")
            .arg(keys(&s.url()).await)
            .query_async(&mut c)
            .await
            .unwrap();
        let second = retry(g.check(PHONE).await.unwrap());
        assert!(second <= first);
        assert!(keys(&s.url()).await.is_empty());
    }

    #[tokio::test]
    async fn redis_down_fails_fast_and_recovers() {
        let s = Server::start().await;
        let port = s.port;
        let g = limiter(&s.url(), "t5:", 100, Duration::from_secs(60));
        assert_eq!(g.check(PHONE).await.unwrap(), Decision::Allow);

        drop(s);
        let started = Instant::now();
        assert!(matches!(
            g.check(PHONE).await,
            Err(LimiterError::Unavailable(_))
        ));
        // In the backoff: not even tried.
        assert!(matches!(
            g.check(PHONE).await,
            Err(LimiterError::Unavailable(_))
        ));
        assert!(g.reset(PHONE).await.is_err());
        // Loose bound: the point is "about the timeout", not a stalled intake.
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{:?}",
            started.elapsed()
        );

        let s = Server::start_on(port).await;
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            match g.check(PHONE).await {
                Ok(d) => {
                    // A fresh server: a fresh quota.
                    assert_eq!(d, Decision::Allow);
                    break;
                }
                Err(e) => assert!(Instant::now() < deadline, "not recovered: {e}"),
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert_eq!(keys(&s.url()).await.len(), 1);
    }

    #[tokio::test]
    async fn hung_redis_times_out() {
        let s = Server::start().await;
        let g = limiter(&s.url(), "t10:", 100, Duration::from_secs(60));
        assert_eq!(g.check(PHONE).await.unwrap(), Decision::Allow);
        let signal = |sig: &str| {
            let ok = Command::new("kill")
                .args([sig, &s.child.id().to_string()])
                .status()
                .unwrap()
                .success();
            assert!(ok, "kill {sig}");
        };
        // Stopped, the server keeps its socket open but never answers: only our timeout ends
        // the call.
        signal("-STOP");
        let started = Instant::now();
        let r = g.check(PHONE).await;
        let took = started.elapsed();
        signal("-CONT");
        assert!(matches!(r, Err(LimiterError::Unavailable(_))), "{r:?}");
        assert!(took < Duration::from_secs(2), "{took:?}");

        let deadline = Instant::now() + Duration::from_secs(10);
        while let Err(e) = g.check(PHONE).await {
            assert!(Instant::now() < deadline, "not recovered: {e}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    #[tokio::test]
    async fn redis_down_at_start_is_not_an_error() {
        let url = format!("redis://127.0.0.1:{}/", free_port());
        let g = limiter(&url, "t8:", 3, Duration::from_secs(60));
        assert!(matches!(
            g.check(PHONE).await,
            Err(LimiterError::Unavailable(_))
        ));
        assert!(RedisGcra::new(
            "no scheme here",
            "x:",
            3,
            Duration::from_secs(1),
            Duration::from_millis(100)
        )
        .is_err());
    }

    #[test]
    fn check_can_be_spawned() {
        fn assert_send<T: Send>(_: &T) {}
        let g = limiter("redis://127.0.0.1:1/", "t9:", 1, Duration::from_secs(1));
        assert_send(&g.check(PHONE));
        assert_send(&g.reset(PHONE));
        fn assert_sync<T: Send + Sync>() {}
        assert_sync::<RedisGcra>();
    }
}
