//! The shared store for several nodes: PostgreSQL.
//!
//! Every node of a city's deployment points at the same database. What makes that safe:
//!
//! - **Claims with a lease.** A node takes due outbox messages (and events) with
//!   `FOR UPDATE SKIP LOCKED` and stamps them `lease_until_ms`; other nodes skip leased rows until
//!   the lease runs out. A node that dies mid-delivery therefore releases its claims by simply
//!   not renewing them, and any other node delivers those orders (under the same idempotency
//!   key, so dispatch sees at most a repeat it recognises).
//! - **One answer per dedupe key.** `commit_intake` inserts the dedupe row first; a concurrent
//!   commit of the same key on another node blocks on the unique index and then sees the
//!   winner's answer, so a WeChat retry that lands on the other node is still one order.
//! - **Order numbers unique per node.** Each node reserves blocks of sequence numbers per day
//!   (`order_seq`, keyed by day and node id) in a short transaction of its own and hands them out
//!   from memory. A hot counter row inside every intake transaction would serialise all commits
//!   on one row lock; blocks cost a gap of at most [`SEQ_BLOCK`] numbers when a node restarts,
//!   and numbers never repeat. Nor after a restore: a node's first block of a day starts above
//!   the clock's floor ([`super::order_day`]), and each later one above its own last block, so
//!   a database that forgot part of the day (restored, or new) does not hand its numbers out
//!   again. Each node's floor is its own, as its row is: the node id in the number keeps the
//!   nodes apart whatever their sequences.
//! - **Migrations at start-up** under an advisory lock, so two nodes starting together do not
//!   race (see [`MIGRATIONS`]).
//!
//! Durability is PostgreSQL's: a commit returns after its WAL record is flushed
//! (`synchronous_commit = on`, the server default, which every connection sets again when its
//! role or database turned it `off`), and PostgreSQL groups concurrent commits itself, so there
//! is no writer thread here.

use super::{
    event_rows, order_number, CallerRecord, DeadFilter, DeadLetter, Delivery, EventRow, Intake,
    IntakeResult, NextStep, OpenOrder, OrderState, OutboxEntry, OutboxStats, RedirectRecord, Scope,
    Sinks, Store, StoreError, Suspension, Topics, WarnRequest, Warned, Warning, PAGE_REFUSAL_HOLD,
    RULE_WEB,
};
use async_trait::async_trait;
use deadpool_postgres::{GenericClient, Manager, ManagerConfig, Pool, RecyclingMethod};
use hotline_adapters::Outcome;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio_postgres::types::ToSql;

/// Sequence numbers a node reserves at a time.
pub const SEQ_BLOCK: i64 = 100;

/// Connections per node. Intake transactions are short (a few statements on loopback or a LAN);
/// PostgreSQL's default `max_connections` of 100 leaves room for several nodes.
const POOL_SIZE: usize = 16;

/// Schema migrations, applied in order at start-up; a version once shipped is never edited (add
/// a new one). Why not refinery or sqlx: both record applied versions but do not serialise two
/// nodes migrating the same database at the same moment; an advisory transaction lock around a
/// dozen lines does, and keeps the dependency count down.
///
/// Each is `(version, readers_from, sql)`: `readers_from` is the oldest schema version a gateway
/// may know and still run on a database migrated this far. An additive migration (a new table,
/// an index) keeps the version before it: in a rolling upgrade a node of the release before
/// that restarts after the first new node migrated still starts, instead of refusing a
/// database "newer than this gateway" and serving emergencies only.
pub const MIGRATIONS: &[(i32, i32, &str)] = &[
    (
        1,
        1,
        r#"
CREATE TABLE orders (
    number      TEXT PRIMARY KEY,
    identity    TEXT NOT NULL,
    category    TEXT NOT NULL,
    content     TEXT NOT NULL,
    created_at  BIGINT NOT NULL
);
CREATE INDEX orders_identity ON orders(identity, created_at);
CREATE TABLE order_seq (
    day   TEXT NOT NULL,
    node  SMALLINT NOT NULL,
    next  BIGINT NOT NULL,
    PRIMARY KEY (day, node)
);
-- state: 0 = pending, 1 = delivered, 2 = dead. lease_until_ms: a node's claim while it delivers.
CREATE TABLE outbox (
    id              BIGSERIAL PRIMARY KEY,
    kind            TEXT NOT NULL,
    key             TEXT NOT NULL UNIQUE,
    path            TEXT NOT NULL,
    body            TEXT NOT NULL,
    state           SMALLINT NOT NULL DEFAULT 0,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_at_ms      BIGINT NOT NULL,
    lease_until_ms  BIGINT NOT NULL DEFAULT 0,
    leased_by       SMALLINT,
    created_at      BIGINT NOT NULL,
    delivered_at    BIGINT,
    last_error      TEXT NOT NULL DEFAULT ''
);
CREATE INDEX outbox_due ON outbox(next_at_ms, id) WHERE state = 0;
CREATE INDEX outbox_dead ON outbox(id) WHERE state = 2;
CREATE TABLE dedupe (
    key         TEXT PRIMARY KEY,
    outcome     TEXT NOT NULL,
    created_at  BIGINT NOT NULL
);
CREATE TABLE redirects (
    id        BIGSERIAL PRIMARY KEY,
    identity  TEXT NOT NULL,
    channel   TEXT NOT NULL,
    number    TEXT NOT NULL,
    reason    TEXT NOT NULL,
    rule      TEXT NOT NULL,
    text      TEXT NOT NULL,
    at        BIGINT NOT NULL
);
CREATE INDEX redirects_identity ON redirects(identity, at);
CREATE TABLE warnings (
    id        BIGSERIAL PRIMARY KEY,
    identity  TEXT NOT NULL,
    at        BIGINT NOT NULL,
    channel   TEXT NOT NULL,
    evidence  TEXT NOT NULL
);
CREATE INDEX warnings_identity ON warnings(identity, at);
CREATE TABLE suspensions (
    id          BIGSERIAL PRIMARY KEY,
    identity    TEXT NOT NULL,
    start       BIGINT NOT NULL,
    until       BIGINT NOT NULL,
    reason      TEXT NOT NULL,
    decided_by  TEXT NOT NULL,
    lifted_at   BIGINT
);
CREATE INDEX suspensions_identity ON suspensions(identity);
CREATE INDEX suspensions_until ON suspensions(until);
CREATE TABLE caller_resets (
    identity  TEXT PRIMARY KEY,
    reset_at  BIGINT NOT NULL
);
CREATE TABLE events (
    id              BIGSERIAL PRIMARY KEY,
    sink            TEXT NOT NULL,
    topic           TEXT NOT NULL,
    payload         TEXT NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_at_ms      BIGINT NOT NULL DEFAULT 0,
    lease_until_ms  BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX events_sink ON events(sink, id);
CREATE TABLE links (
    identity   TEXT PRIMARY KEY,
    canonical  TEXT NOT NULL
);
CREATE TABLE probe (node SMALLINT PRIMARY KEY, at BIGINT NOT NULL);
"#,
    ),
    (
        2,
        1,
        r#"
CREATE TABLE allowed (
    identity  TEXT PRIMARY KEY,
    at        BIGINT NOT NULL
);
CREATE INDEX events_urgent ON events(sink, id) WHERE topic LIKE 'emergency/%';
"#,
    ),
    // The retention (`storage.retain`, see `PgStore::prune_bodies`): where the clearing of
    // delivered bodies has got to, and the retry records by age. Additive: a gateway of
    // schema 2 runs on it (and does not prune).
    (
        3,
        2,
        r#"
CREATE TABLE prune_cursor (
    what   TEXT PRIMARY KEY,
    after  BIGINT NOT NULL
);
INSERT INTO prune_cursor(what, after) VALUES ('outbox', 0);
CREATE INDEX dedupe_created ON dedupe(created_at);
"#,
    ),
    // A page's refusal held for `PAGE_REFUSAL_HOLD` instead of deleted after its commit (see
    // `Claim::keep`): `expires_at` (unix seconds; NULL: kept). Additive, and quick (a column
    // with no default rewrites nothing): a gateway of schema 3 runs on it, reading every row
    // as kept. Beside a new node, such an old node gives a held page refusal to the same page
    // until the retention removes it, instead of hearing it afresh after the hold, and its own
    // page refusals are still deleted after their commit (the old window, on its refusals).
    (
        4,
        3,
        r#"
ALTER TABLE dedupe ADD COLUMN expires_at BIGINT;
"#,
    ),
    // What started a suspension, for operators and the police packet only (see
    // `Suspension::evidence`): the offence's words (an agent's flag, which records no reminder
    // when it suspends) or an operator's note. Additive, and quick (a constant default
    // rewrites nothing since PostgreSQL 11): a gateway of schema 4 runs on it, writing its
    // suspensions with no evidence and never reading the column.
    (
        5,
        4,
        r#"
ALTER TABLE suspensions ADD COLUMN evidence TEXT NOT NULL DEFAULT '';
"#,
    ),
    // Whether the submitter asked for confidentiality (art. 29), kept beside the order: the
    // retention clears the body, until now its only place, and a confidential order was then
    // answered with its category, times and unit (see `OrderState::confidential`). Additive
    // (a constant default rewrites nothing): a gateway of schema 5 runs on it, storing its
    // orders with the default and never reading the column. The orders already there get the
    // flag from their bodies while these still hold it (the body is the gateway's compact
    // JSON: the pattern only meets its top-level member, never text in the matter); this
    // reads the outbox once, with the migration lock and the orders table held.
    (
        6,
        5,
        r#"
ALTER TABLE orders ADD COLUMN confidential BOOLEAN NOT NULL DEFAULT false;
UPDATE orders SET confidential = true WHERE number IN
    (SELECT key FROM outbox WHERE kind = 'order' AND body LIKE '%"confidential":true%');
"#,
    ),
    // Where an order came from, for repeats (`NewOrder::origin`): '' from a verified channel,
    // 'web:…' from the web form (its client address hashed), so a typed phone never finds the
    // orders of that number's calls (the twenty-second session's review, F1). Additive: a
    // gateway of schema 6 runs on it, storing every order with the default, its web orders
    // included (such an order looks verified to the new nodes until the repeat window has
    // passed it). The web orders already there are marked `web:` from their bodies' top-level
    // `"channel":"web"`, as on SQLite (`FILL_WEB_ORIGIN`). Its readers are from 5, the last
    // released schema: 6 landed in the same release, so the nodes still running during the
    // rolling upgrade are of schema 5 (see [`LAST_RELEASED_SCHEMA`]).
    (
        7,
        5,
        r#"
ALTER TABLE orders ADD COLUMN origin TEXT NOT NULL DEFAULT '';
UPDATE orders SET origin = 'web:' WHERE number IN
    (SELECT key FROM outbox WHERE kind = 'order' AND body LIKE '%"channel":"web"%');
"#,
    ),
];

/// The schema of the last release that landed (main's last commit before the migrations after
/// it were written): every migration after it must let that release's nodes run
/// (`readers_from` at most this), or a rolling upgrade stops the old nodes at their next
/// restart (migration 7 was first written with `readers_from` 6, a schema no release had; the
/// twenty-second session's second review). Raise it when a release with newer migrations
/// lands, in the first change that adds one after it.
pub const LAST_RELEASED_SCHEMA: i32 = 5;

/// Advisory lock key for migrations ("12345" on the hotline's number).
const MIGRATION_LOCK: i64 = 12345;

/// One submission in one statement (hence one implicit transaction and one round trip; a
/// BEGIN / statements / COMMIT exchange measured half the rate on this machine, see
/// BENCHMARKS.md). The dedupe claim comes first: a concurrent commit of the same key (the
/// platform's retry on another node) waits on the unique index, then finds it taken, and then
/// nothing else is written. Answers whether the orders were stored.
///
/// A page's refusal whose hold has passed (`expires_at` at or before now, see
/// [`super::Claim::keep`]) counts as no record: the claim takes it over, in the same statement
/// (`DO UPDATE ... WHERE`). On a row another transaction is writing, that waits for it as
/// `DO NOTHING` does, and then evaluates the `WHERE` on the committed row: a refusal still
/// held, or any kept answer, is left as it is and nothing is returned (the row is only
/// locked until this statement's end), so the copy of a page that waited on a refusal's
/// claim gives that refusal. That lock costs a WAL record and a flush where `DO NOTHING`
/// wrote nothing (pgbench: 2 k against 45–70 k tps on a taken key, BENCHMARKS.md); only a
/// copy racing its first delivery comes this far, a retry being answered by `recall` before.
///
/// Parameters: $1 dedupe key (or NULL), $2 its answer, $3 now; $4..$7 the orders' numbers,
/// identities, categories, texts; $8 their dispatch bodies; $9..$11 event sinks, topics,
/// payloads; $12 the orders' confidentiality flags (added in schema 6); $13 their origins
/// (schema 7).
const COMMIT_INTAKE: &str = "\
WITH claim AS ( \
    INSERT INTO dedupe(key, outcome, created_at) SELECT $1::text, $2, $3 WHERE $1 IS NOT NULL \
    ON CONFLICT (key) DO UPDATE SET outcome = $2, created_at = $3, expires_at = NULL \
    WHERE dedupe.expires_at IS NOT NULL AND dedupe.expires_at <= $3 RETURNING 1), \
go AS (SELECT ($1::text IS NULL OR EXISTS (SELECT 1 FROM claim)) AS ok), \
o AS ( \
    INSERT INTO orders(number, identity, category, content, created_at, confidential, origin) \
    SELECT n, i, c, t, $3, s, w \
    FROM unnest($4::text[], $5::text[], $6::text[], $7::text[], $12::bool[], $13::text[]) \
    AS x(n, i, c, t, s, w), go WHERE go.ok RETURNING 1), \
q AS ( \
    INSERT INTO outbox(kind, key, path, body, next_at_ms, created_at) \
    SELECT 'order', k, '/work-orders', b, 0, $3 FROM unnest($4::text[], $8::text[]) \
    AS x(k, b), go WHERE go.ok RETURNING 1), \
e AS ( \
    INSERT INTO events(sink, topic, payload) \
    SELECT s, t, p FROM unnest($9::text[], $10::text[], $11::text[]) AS x(s, t, p), go \
    WHERE go.ok RETURNING 1) \
SELECT ok FROM go";

/// The PostgreSQL store.
pub struct PgStore {
    pool: Pool,
    node_id: u8,
    events: Sinks,
    lease_ms: i64,
    /// Undelivered messages across all nodes: counted in the database every second by a
    /// background task, and moved by this node's own changes in between.
    depth: Arc<AtomicU64>,
    /// This node's reserved order numbers: (day, next, end exclusive).
    seq: Mutex<(String, i64, i64)>,
    counter: tokio::task::JoinHandle<()>,
}

impl Drop for PgStore {
    fn drop(&mut self) {
        self.counter.abort();
    }
}

/// Commits, timing the round trip in `hotline_store_commit_seconds`.
async fn commit(tx: deadpool_postgres::Transaction<'_>) -> Result<(), StoreError> {
    timed_commit(tx.commit()).await.map_err(map_err)
}

/// Awaits a commit round trip (the server's WAL flush, its group commit included) and records
/// how long it took in `hotline_store_commit_seconds`. An intake is one statement in its own
/// transaction, so that statement is its commit.
async fn timed_commit<T>(round_trip: impl std::future::Future<Output = T>) -> T {
    let started = std::time::Instant::now();
    let r = round_trip.await;
    metrics::histogram!("hotline_store_commit_seconds").record(started.elapsed());
    r
}

/// Whether an error with SQLSTATE `code` (`None`: no server error, the connection or the
/// protocol) means "cannot write now" (503 with `Retry-After`) rather than an internal error:
/// the connection, the server's resources or file system, a conflict worth retrying, or a
/// store that only reads. The same conditions on SQLite (`SQLITE_FULL`, `SQLITE_IOERR`,
/// `SQLITE_READONLY`, `SQLITE_CANTOPEN`) are 503 too.
fn unavailable(code: Option<&str>) -> bool {
    let Some(c) = code else {
        return true;
    };
    c.starts_with("08") // connection exception
        || c.starts_with("53") // insufficient resources (53100 disk full, out of memory)
        || c.starts_with("57") // operator intervention (shutdown, cancel)
        || c.starts_with("58") // system error: 58030 an I/O error, 58P01 a file gone
        || c == "40001" // serialization failure
        || c == "40P01" // deadlock
        || c == "25006" // read-only transaction (a standby after fail-over, a read-only database)
        // Insufficient privilege: what PostgreSQL answers for a file on a read-only file system
        // (EROFS, as for EACCES), and for a role that may no longer write; either way the store
        // cannot take writes until someone acts, as with SQLite's read-only file.
        || c == "42501"
}

/// Maps PostgreSQL errors: "cannot write now" (see [`unavailable`]) is 503; the rest is
/// internal. A FATAL (or PANIC) error ends the session: it is about the connection, never a
/// statement's own fault, so it is 503 whatever its code.
fn map_err(e: tokio_postgres::Error) -> StoreError {
    let fatal = e
        .as_db_error()
        .is_some_and(|db| matches!(db.severity(), "FATAL" | "PANIC"));
    let retryable = fatal || unavailable(e.code().map(|c| c.code()));
    if retryable {
        StoreError::Unavailable(error_text(&e))
    } else {
        StoreError::Internal(error_text(&e))
    }
}

/// The error in words: `Display` of a server error says only "db error"; the server's words
/// are in the source.
pub(crate) fn error_text(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{} ({}): {}", db.severity(), db.code().code(), db.message()),
        None => match std::error::Error::source(e) {
            Some(src) => format!("{e}: {src}"),
            None => e.to_string(),
        },
    }
}

/// A connection the pool could not give. Every error in making one (the server refusing
/// connections to the database, `ALLOW_CONNECTIONS false` (55000), a rotated password
/// (28P01), `pg_hba` (28000), a database being dropped or renamed (3D000)) is "cannot write
/// now": 503 with `Retry-After`, and retried at start-up. Until 2026-12-07 those codes were
/// internal errors: 500 without `Retry-After`, and a node starting while the database refused
/// connections served emergencies only until it was restarted.
fn pool_err(e: deadpool_postgres::PoolError) -> StoreError {
    match e {
        deadpool_postgres::PoolError::Backend(e) => StoreError::Unavailable(error_text(&e)),
        other => StoreError::Unavailable(other.to_string()),
    }
}

fn encode<T: serde::Serialize>(v: &T) -> Result<String, StoreError> {
    serde_json::to_string(v).map_err(|e| StoreError::Internal(format!("encode: {e}")))
}

fn decode_outcome(text: &str) -> Result<Outcome, StoreError> {
    serde_json::from_str(text).map_err(|e| StoreError::Internal(format!("bad dedupe record: {e}")))
}

fn count(n: i64) -> u32 {
    n.clamp(0, u32::MAX as i64) as u32
}

fn suspension_row(r: &tokio_postgres::Row) -> Suspension {
    Suspension {
        identity: r.get(0),
        start: r.get(1),
        until: r.get(2),
        reason: r.get(3),
        decided_by: r.get(4),
        lifted_at: r.get(5),
        evidence: r.get(6),
    }
}

/// Inserts the event rows for a state change on `c` (a transaction, usually).
async fn emit<C: GenericClient>(
    c: &C,
    sinks: Sinks,
    topic: &str,
    payload: serde_json::Value,
    now: i64,
    mail_to: Option<&str>,
) -> Result<(), StoreError> {
    let mut batch = EventBatch::default();
    batch.add(sinks, topic, payload, now, mail_to);
    batch.insert(c).await.map_err(map_err)?;
    Ok(())
}

/// Event-outbox rows gathered for one statement.
#[derive(Default)]
struct EventBatch {
    sinks: Vec<&'static str>,
    topics: Vec<String>,
    payloads: Vec<String>,
}

impl EventBatch {
    fn add(
        &mut self,
        sinks: Sinks,
        topic: &str,
        payload: serde_json::Value,
        now: i64,
        mail_to: Option<&str>,
    ) {
        for (sink, payload) in event_rows(sinks, topic, payload, now, mail_to) {
            self.sinks.push(sink);
            self.topics.push(topic.to_string());
            self.payloads.push(payload);
        }
    }

    async fn insert<C: GenericClient>(&self, c: &C) -> Result<u64, tokio_postgres::Error> {
        if self.sinks.is_empty() {
            return Ok(0);
        }
        let st = c
            .prepare_cached(
                "INSERT INTO events(sink, topic, payload) \
                 SELECT * FROM unnest($1::text[], $2::text[], $3::text[])",
            )
            .await?;
        c.execute(&st, &[&self.sinks, &self.topics, &self.payloads])
            .await
    }
}

impl PgStore {
    /// Connects, applies pending migrations and starts the depth counter. `lease` is how long
    /// this node's claim on a message it is delivering lasts. With `sslmode=require` in the URL
    /// the connection is TLS, verified against `ca_file` (PEM) or else the public web roots.
    pub async fn open(
        url: &str,
        node_id: u8,
        events: Sinks,
        lease: Duration,
        ca_file: Option<&std::path::Path>,
    ) -> Result<PgStore, StoreError> {
        let pg: tokio_postgres::Config = url
            .parse()
            // The parser's message may quote the URL, password included: say less.
            .map_err(|_| StoreError::Internal("storage.url is not a PostgreSQL URL".into()))?;
        let manager_config = ManagerConfig {
            // A connection found closed is replaced before reuse; one that broke silently fails
            // its request with a 503 and is dropped (no test query on every checkout).
            recycling_method: RecyclingMethod::Fast,
        };
        // Each connection is made and driven on the process's shared runtime, not on the HTTP
        // worker's that first asks for it (see `shared_io_runtime`): a worker that stops at a
        // SIGTERM took such connections with it, under another worker's request (a 503
        // "connection closed"; `multinode::a_store_connection_outlives_the_runtime_that_made_it`).
        let rt = crate::shared_io_runtime().map_err(StoreError::Internal)?;
        // TLS only when the URL asks for it: under the default `prefer`, a server with a
        // certificate we cannot verify would otherwise refuse a gateway that never asked for TLS.
        let mgr = if pg.get_ssl_mode() == tokio_postgres::config::SslMode::Require {
            let connect = OnRuntime {
                tls: tls(ca_file)?,
                rt,
            };
            Manager::from_connect(pg, connect, manager_config)
        } else {
            let connect = OnRuntime {
                tls: tokio_postgres::NoTls,
                rt,
            };
            Manager::from_connect(pg, connect, manager_config)
        };
        let pool = Pool::builder(mgr)
            .max_size(POOL_SIZE)
            .runtime(deadpool_postgres::Runtime::Tokio1)
            .wait_timeout(Some(Duration::from_secs(5)))
            .create_timeout(Some(Duration::from_secs(5)))
            .recycle_timeout(Some(Duration::from_secs(5)))
            .build()
            .map_err(|e| StoreError::Internal(format!("pool: {e}")))?;
        migrate(&pool).await?;
        let depth = Arc::new(AtomicU64::new(0));
        count_depth(&pool, &depth).await?;
        let counter = {
            let (pool, depth) = (pool.clone(), depth.clone());
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(Duration::from_secs(1));
                loop {
                    tick.tick().await;
                    if let Err(e) = count_depth(&pool, &depth).await {
                        tracing::debug!(error = %e, "Outbox depth not counted.");
                    }
                }
            })
        };
        Ok(PgStore {
            pool,
            node_id,
            events,
            lease_ms: lease.as_millis().min(i64::MAX as u128) as i64,
            depth,
            seq: Mutex::new((String::new(), 0, 0)),
            counter,
        })
    }

    /// A server setting as this store's connections have it (`current_setting`): what the
    /// gateway runs with, e.g. `synchronous_commit`, which each connection raises from `off`
    /// to `on` when it is made.
    pub async fn setting(&self, name: &str) -> Result<String, StoreError> {
        let c = self.client().await?;
        let row = c
            .query_one("SELECT current_setting($1)", &[&name])
            .await
            .map_err(map_err)?;
        Ok(row.get(0))
    }

    async fn client(&self) -> Result<deadpool_postgres::Object, StoreError> {
        self.pool.get().await.map_err(pool_err)
    }

    /// Takes `n` consecutive order numbers' sequence values for `day`, from this node's block,
    /// reserving a new block (in a transaction of its own) when it runs out.
    ///
    /// A new block starts above the database's row and above the last number this node may
    /// have handed out of `day`: its own blocks' end since it opened, or, the first time it
    /// numbers the day, `clock_floor` (see [`super::order_day`]). The row alone is not to be
    /// trusted: the database may be new (a node moved from SQLite mid-day) or restored to an
    /// earlier point (last night's backup, a PITR restore, even under running nodes), and then
    /// knows nothing of numbers dispatch already holds.
    async fn take_seq(&self, day: &str, n: i64, clock_floor: i64) -> Result<i64, StoreError> {
        let mut floor = clock_floor;
        if let Ok(mut s) = self.seq.lock() {
            if s.0 == day {
                if s.1 + n <= s.2 {
                    let first = s.1;
                    s.1 += n;
                    return Ok(first);
                }
                floor = s.2 - 1;
            }
        }
        let block = SEQ_BLOCK.max(n);
        let c = self.client().await?;
        let st = c
            .prepare_cached(
                "INSERT INTO order_seq(day, node, next) VALUES ($1, $2, $4::BIGINT + $3::BIGINT) \
                 ON CONFLICT (day, node) \
                 DO UPDATE SET next = GREATEST(order_seq.next, $4::BIGINT) + $3::BIGINT \
                 RETURNING next",
            )
            .await
            .map_err(map_err)?;
        // `end` is the last number of the new block.
        let end: i64 = c
            .query_one(&st, &[&day, &(self.node_id as i16), &block, &floor])
            .await
            .map_err(map_err)?
            .get(0);
        let first = end - block + 1;
        if let Ok(mut s) = self.seq.lock() {
            // Requests racing here may each reserve a block; the higher one wins the cache (its
            // end is what the next block must start above) and the other's leftovers are a
            // gap, never a repeat.
            if s.0 != day || end >= s.2 {
                *s = (day.to_string(), first + n, end + 1);
            }
        }
        Ok(first)
    }
}

/// Run on every connection the pool makes, before its first use. A commit is durable only when
/// it waits for its WAL flush, and that is the server's `synchronous_commit`: `off` for the
/// gateway's role or database (or in `options` of `storage.url`) acknowledged commits that a
/// crash of the server then lost, so a 202 was not a promise. `off` is raised to `on` for
/// the session; the other values (`local`, `remote_write`, `on`, `remote_apply`) all flush
/// locally first and are left as the database's owners chose them (waiting for a standby, or
/// not). A session setting: it lasts as long as the connection, since the pool's fast
/// recycling sends nothing (a `DISCARD ALL` or `RESET ALL` would undo it).
const DURABLE_COMMITS: &str = "SELECT set_config('synchronous_commit', 'on', false) \
     WHERE current_setting('synchronous_commit') = 'off'";

/// deadpool's [`deadpool_postgres::Connect`] that makes each connection, and runs it, on
/// `rt` (the process's shared runtime) instead of the caller's runtime; then makes its
/// commits durable ([`DURABLE_COMMITS`]).
struct OnRuntime<T> {
    tls: T,
    rt: tokio::runtime::Handle,
}

impl<T> deadpool_postgres::Connect for OnRuntime<T>
where
    T: tokio_postgres::tls::MakeTlsConnect<tokio_postgres::Socket> + Clone + Sync + Send + 'static,
    T::Stream: Sync + Send,
    T::TlsConnect: Sync + Send,
    <T::TlsConnect as tokio_postgres::tls::TlsConnect<tokio_postgres::Socket>>::Future: Send,
{
    fn connect(
        &self,
        pg: &tokio_postgres::Config,
    ) -> futures_util::future::BoxFuture<
        '_,
        Result<(tokio_postgres::Client, tokio::task::JoinHandle<()>), tokio_postgres::Error>,
    > {
        let (tls, pg) = (self.tls.clone(), pg.clone());
        let rt = self.rt.clone();
        Box::pin(async move {
            let (made, client) = tokio::sync::oneshot::channel();
            let (tls_here, pg_here) = (tls.clone(), pg.clone());
            let task = rt.spawn(async move {
                match pg.connect(tls).await {
                    Ok((c, connection)) => {
                        if made.send(Ok(c)).is_ok() {
                            drive(connection).await;
                        }
                    }
                    Err(e) => {
                        let _ = made.send(Err(e));
                    }
                }
            });
            let (c, task) = match client.await {
                Ok(Ok(c)) => (c, task),
                Ok(Err(e)) => return Err(e),
                // The shared runtime is gone (it never stops; a panic there would do it):
                // connect as deadpool does rather than not at all.
                Err(_) => {
                    let (c, connection) = pg_here.connect(tls_here).await?;
                    (c, tokio::spawn(drive(connection)))
                }
            };
            c.batch_execute(DURABLE_COMMITS).await?;
            Ok((c, task))
        })
    }
}

/// Runs a connection (its socket's reads and writes) until it ends.
async fn drive(connection: impl std::future::Future<Output = Result<(), tokio_postgres::Error>>) {
    if let Err(e) = connection.await {
        tracing::warn!(error = %e, "Store connection ended.");
    }
}

/// The TLS connector for `sslmode=require`: the certificate chain is verified against `ca_file`
/// (a private CA, the usual case for a city's database) or the public web roots.
pub(crate) fn tls(
    ca_file: Option<&std::path::Path>,
) -> Result<tokio_postgres_rustls::MakeRustlsConnect, StoreError> {
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    match ca_file {
        Some(path) => {
            let certs = rustls::pki_types::CertificateDer::pem_file_iter(path)
                .and_then(|it| it.collect::<Result<Vec<_>, _>>())
                .map_err(|e| {
                    StoreError::Internal(format!("storage.ca_file {}: {e}", path.display()))
                })?;
            let (added, _) = roots.add_parsable_certificates(certs);
            if added == 0 {
                return Err(StoreError::Internal(format!(
                    "storage.ca_file {} holds no certificate",
                    path.display()
                )));
            }
        }
        None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
    }
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| StoreError::Internal(format!("TLS: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(tokio_postgres_rustls::MakeRustlsConnect::new(config))
}

async fn migrate(pool: &Pool) -> Result<(), StoreError> {
    let mut c = pool.get().await.map_err(pool_err)?;
    let tx = c.transaction().await.map_err(map_err)?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .await
        .map_err(map_err)?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, \
         applied_at TIMESTAMPTZ NOT NULL DEFAULT now())",
    )
    .await
    .map_err(map_err)?;
    // Only when missing: ALTER TABLE needs the table's owner even when it changes nothing,
    // and a role that may only use the schema must still open it.
    let has_readers_from = tx
        .query_opt(
            "SELECT 1 FROM information_schema.columns WHERE table_schema = current_schema() \
             AND table_name = 'schema_migrations' AND column_name = 'readers_from'",
            &[],
        )
        .await
        .map_err(map_err)?
        .is_some();
    if !has_readers_from {
        tx.batch_execute("ALTER TABLE schema_migrations ADD COLUMN readers_from INTEGER")
            .await
            .map_err(map_err)?;
    }
    // A version recorded without `readers_from` (before 2026-12-07) needs a reader of itself.
    let row = tx
        .query_one(
            "SELECT COALESCE(MAX(version), 0), \
             COALESCE(MAX(COALESCE(readers_from, version)), 0) FROM schema_migrations",
            &[],
        )
        .await
        .map_err(map_err)?;
    let (have, needed): (i32, i32) = (row.get(0), row.get(1));
    let latest = MIGRATIONS.last().map(|m| m.0).unwrap_or(0);
    if needed > latest {
        return Err(StoreError::Internal(format!(
            "the database is at schema version {have}, which needs a gateway of version \
             {needed} or later (this one is {latest}); run the newer gateway or restore a \
             matching backup"
        )));
    }
    if have > latest {
        tracing::info!(
            have,
            latest,
            "The database was migrated by a newer gateway, in a way this one can still run on."
        );
    }
    for (version, readers_from, sql) in MIGRATIONS.iter().filter(|m| m.0 > have) {
        tx.batch_execute(sql).await.map_err(map_err)?;
        tx.execute(
            "INSERT INTO schema_migrations(version, readers_from) VALUES ($1, $2)",
            &[version, readers_from],
        )
        .await
        .map_err(map_err)?;
        tracing::info!(version, "Database migration applied.");
    }
    commit(tx).await
}

async fn count_depth(pool: &Pool, depth: &AtomicU64) -> Result<(), StoreError> {
    let c = pool.get().await.map_err(pool_err)?;
    let n: i64 = c
        .query_one("SELECT COUNT(*) FROM outbox WHERE state = 0", &[])
        .await
        .map_err(map_err)?
        .get(0);
    depth.store(n.max(0) as u64, Ordering::Relaxed);
    Ok(())
}

/// The answer under `key` as it stands at `now`: a page's refusal whose hold has passed is none.
async fn recall_in<C: GenericClient>(
    c: &C,
    key: &str,
    now: i64,
) -> Result<Option<Outcome>, StoreError> {
    let st = c
        .prepare_cached(
            "SELECT outcome FROM dedupe WHERE key = $1 AND (expires_at IS NULL OR expires_at > $2)",
        )
        .await
        .map_err(map_err)?;
    match c.query_opt(&st, &[&key, &now]).await.map_err(map_err)? {
        // An empty outcome is a claim by a commit still in flight (never visible outside it).
        Some(r) => {
            let text: String = r.get(0);
            if text.is_empty() {
                Ok(None)
            } else {
                decode_outcome(&text).map(Some)
            }
        }
        None => Ok(None),
    }
}

/// The reminders that count for an identity since a time: those after its last lift's reset
/// (`warnings_since`, and `warn`'s count under the suspension lock); `$3` false leaves out
/// those given on the web form (see [`Scope`]).
const WARNINGS_SINCE: &str = "SELECT COUNT(*) FROM warnings WHERE identity = $1 AND at >= $2 \
     AND at > COALESCE((SELECT reset_at FROM caller_resets WHERE identity = $1), -1) \
     AND ($3 OR channel <> 'web')";

/// The next rule suspension of `identity` on the ladder `next`, recorded in `tx` with its
/// event, unless one is active that holds where it would, which is returned instead
/// (`false`). The caller holds the identity's suspension lock. `scope` is where the offence
/// came (see [`Scope`]), as for [`Store::record_suspension`]: the web form's records
/// [`RULE_WEB`], counts its step among every rule suspension and is stopped by any active
/// one; a verified channel's records `rule`, counts only those and is not stopped by a
/// web-only one (a typed number cannot lengthen or stand in for the caller's own ladder).
async fn suspend_in(
    tx: &deadpool_postgres::Transaction<'_>,
    sinks: Sinks,
    identity: &str,
    next: &NextStep,
    w: &Warning,
    scope: Scope,
) -> Result<(Suspension, bool), StoreError> {
    let web = scope == Scope::Web;
    let active = tx
        .query_opt(ACTIVE_RULE_SUSPENSION, &[&identity, &w.at, &web])
        .await
        .map_err(map_err)?;
    if let Some(row) = active {
        return Ok((suspension_row(&row), false));
    }
    let before: i64 = tx
        .query_one(SUSPENSION_COUNT, &[&identity, &web])
        .await
        .map_err(map_err)?
        .get(0);
    let s = Suspension {
        identity: identity.to_string(),
        start: w.at,
        until: w.at.saturating_add(next.length(count(before))),
        reason: next.reason.clone(),
        // The offence's own words, which this step records no reminder to keep (the flag that
        // suspends): the warning's evidence, for operators only.
        evidence: w.evidence.clone(),
        decided_by: scope.rule().into(),
        lifted_at: None,
    };
    emit(tx, sinks, "callers/suspended", s.event(), s.start, None).await?;
    insert_suspension(tx, &s).await?;
    Ok((s, true))
}

/// Inserts a suspension row (its event is the caller's to emit).
async fn insert_suspension<C: GenericClient>(c: &C, s: &Suspension) -> Result<(), StoreError> {
    c.execute(
        "INSERT INTO suspensions(identity, start, until, reason, decided_by, evidence) \
         VALUES ($1, $2, $3, $4, $5, $6)",
        &[
            &s.identity,
            &s.start,
            &s.until,
            &s.reason,
            &s.decided_by,
            &s.evidence,
        ],
    )
    .await
    .map_err(map_err)?;
    Ok(())
}

/// The active suspension (the longest) that stops the rule's next one for an identity at a
/// time (`record_suspension` and `warn`'s suspension, under the lock); `$3` false (a verified
/// channel's offence) leaves out the web form's own, which holds on the form only.
const ACTIVE_RULE_SUSPENSION: &str =
    "SELECT identity, start, until, reason, decided_by, lifted_at, evidence FROM suspensions \
     WHERE identity = $1 AND until > $2 AND lifted_at IS NULL \
     AND ($3 OR decided_by <> 'rule-web') ORDER BY until DESC LIMIT 1";

/// The rule suspensions that set an identity's next step in a scope (`suspension_count`, and
/// `warn`'s suspension under the lock); `$2` false leaves out the web form's (see [`Scope`]).
const SUSPENSION_COUNT: &str = "SELECT COUNT(*) FROM suspensions WHERE identity = $1 \
     AND (decided_by = 'rule' OR ($2 AND decided_by = 'rule-web'))";

#[async_trait]
impl Store for PgStore {
    async fn commit_intake(&self, intake: Intake) -> Result<IntakeResult, StoreError> {
        let n = intake.orders.len() as i64;
        // Numbers are taken before the transaction: a failed commit leaves a gap, not a repeat.
        let first = self.take_seq(&intake.day, n, intake.seq_floor).await?;
        // Everything the transaction writes is built first, so its statements can be sent in
        // one pipeline: one round trip for the lot instead of one per row.
        let mut orders: [Vec<String>; 4] = Default::default();
        let mut bodies = Vec::with_capacity(intake.orders.len());
        let mut confidential = Vec::with_capacity(intake.orders.len());
        let mut origins = Vec::with_capacity(intake.orders.len());
        let mut events = EventBatch::default();
        let mut refs = Vec::with_capacity(intake.orders.len());
        for (i, o) in intake.orders.into_iter().enumerate() {
            let number = order_number(&intake.day, intake.node_id, first + i as i64);
            bodies.push(o.body_with(&number));
            confidential.push(o.confidential);
            events.add(
                self.events,
                "orders/accepted",
                o.accepted_event(&number),
                intake.now,
                o.email(),
            );
            if let Some(ev) = o.suspected_event(&number) {
                events.add(self.events, "emergency/suspected", ev, intake.now, None);
            }
            refs.push(o.order_ref(&number));
            origins.push(o.origin);
            for (col, v) in orders
                .iter_mut()
                .zip([number, o.identity, o.category, o.content])
            {
                col.push(v);
            }
        }
        let outcome = encode(&Outcome::Accepted {
            orders: refs.clone(),
        })?;
        let c = self.client().await?;
        let st = c.prepare_cached(COMMIT_INTAKE).await.map_err(map_err)?;
        let [numbers, identities, categories, contents] = &orders;
        let params: [&(dyn ToSql + Sync); 13] = [
            &intake.dedupe_key,
            &outcome,
            &intake.now,
            numbers,
            identities,
            categories,
            contents,
            &bodies,
            &events.sinks,
            &events.topics,
            &events.payloads,
            &confidential,
            &origins,
        ];
        let stored: bool = timed_commit(c.query_one(&st, &params))
            .await
            .map_err(map_err)?
            .get(0);
        if !stored {
            // The key was taken: by an earlier delivery of the same push, or by its retry
            // racing us on another node (the claim waited for that commit). Its answer stands.
            metrics::counter!("hotline_dedupe_races_total").increment(1);
            let earlier = match &intake.dedupe_key {
                Some(key) => recall_in(&c, key, intake.now).await?,
                None => None,
            };
            return match earlier {
                Some(o) => Ok(IntakeResult::Replayed(o)),
                None => Err(StoreError::Unavailable(
                    "a concurrent commit of the same submission is in flight".into(),
                )),
            };
        }
        self.depth.fetch_add(n as u64, Ordering::Relaxed);
        Ok(IntakeResult::Stored(refs))
    }

    async fn remember(
        &self,
        key: String,
        outcome: Outcome,
        now: i64,
    ) -> Result<Option<Outcome>, StoreError> {
        let text = encode(&outcome)?;
        let c = self.client().await?;
        let st = c
            .prepare_cached(
                "INSERT INTO dedupe(key, outcome, created_at) VALUES ($1, $2, $3) \
                 ON CONFLICT (key) DO UPDATE SET outcome = $2, created_at = $3, expires_at = NULL \
                 WHERE dedupe.expires_at IS NOT NULL AND dedupe.expires_at <= $3",
            )
            .await
            .map_err(map_err)?;
        let inserted = c
            .execute(&st, &[&key, &text, &now])
            .await
            .map_err(map_err)?;
        // Another node remembered its answer first (the same push decided on two nodes at
        // once): that one stands.
        if inserted == 0 {
            return recall_in(&c, &key, now).await;
        }
        Ok(None)
    }

    async fn recall(&self, key: String, now: i64) -> Result<Option<Outcome>, StoreError> {
        let c = self.client().await?;
        recall_in(&c, &key, now).await
    }

    async fn record_redirect(&self, r: RedirectRecord) -> Result<(), StoreError> {
        let mut c = self.client().await?;
        let tx = c.transaction().await.map_err(map_err)?;
        emit(
            &tx,
            self.events,
            "emergency/redirected",
            r.event(),
            r.at,
            None,
        )
        .await?;
        tx.execute(
            "INSERT INTO redirects(identity, channel, number, reason, rule, text, at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
            &[
                &r.identity,
                &r.channel,
                &r.number,
                &r.reason,
                &r.rule,
                &r.text,
                &r.at,
            ],
        )
        .await
        .map_err(map_err)?;
        commit(tx).await
    }

    async fn enqueue_contact(
        &self,
        number: String,
        key: String,
        body: serde_json::Value,
        alert: Option<serde_json::Value>,
        now: i64,
    ) -> Result<(), StoreError> {
        let text = encode(&body)?;
        let path = format!("/work-orders/{number}/contacts");
        let mut c = self.client().await?;
        let tx = c.transaction().await.map_err(map_err)?;
        let added = tx
            .execute(
                "INSERT INTO outbox(kind, key, path, body, next_at_ms, created_at) \
                 VALUES ('contact', $1, $2, $3, 0, $4) ON CONFLICT (key) DO NOTHING",
                &[&key, &path, &text, &now],
            )
            .await
            .map_err(map_err)?;
        // Once, with the contact: a retry that queues nothing alerts nobody again.
        if let (1, Some(alert)) = (added, alert) {
            emit(&tx, self.events, "emergency/suspected", alert, now, None).await?;
        }
        commit(tx).await?;
        self.depth.fetch_add(added, Ordering::Relaxed);
        Ok(())
    }

    async fn due(&self, now_ms: i64, limit: usize) -> Result<Vec<OutboxEntry>, StoreError> {
        let c = self.client().await?;
        // A contact waits while its order's message is pending or dead (see `Store::due`),
        // whichever node holds it. Its order's key is the number in its path,
        // `/work-orders/{number}/contacts` (13 characters before the number, 9 after). A
        // scalar sub-select, not NOT EXISTS: it stays one probe of the key's unique index per
        // contact row the scan meets (none for an order's), where an EXISTS may be planned
        // as a hash over every pending row.
        let st = c
            .prepare_cached(
                "UPDATE outbox SET lease_until_ms = $3, leased_by = $4 WHERE id IN ( \
                   SELECT id FROM outbox m WHERE state = 0 AND next_at_ms <= $1 \
                   AND lease_until_ms <= $1 AND (kind <> 'contact' OR \
                   COALESCE((SELECT o.state FROM outbox o \
                    WHERE o.key = substr(m.path, 14, length(m.path) - 22)), 1) NOT IN (0, 2)) \
                   ORDER BY next_at_ms, id LIMIT $2 FOR UPDATE SKIP LOCKED) \
                 RETURNING id, kind, key, path, body, attempts",
            )
            .await
            .map_err(map_err)?;
        let lease_until = now_ms.saturating_add(self.lease_ms);
        let rows = c
            .query(
                &st,
                &[
                    &now_ms,
                    &(limit as i64),
                    &lease_until,
                    &(self.node_id as i16),
                ],
            )
            .await
            .map_err(map_err)?;
        let mut due: Vec<OutboxEntry> = rows
            .iter()
            .map(|r| OutboxEntry {
                id: r.get(0),
                kind: r.get(1),
                key: r.get(2),
                path: r.get(3),
                body: r.get(4),
                attempts: r.get::<_, i32>(5).max(0) as u32,
            })
            .collect();
        // RETURNING does not keep the sub-select's order; oldest first is the contract.
        due.sort_by_key(|e| e.id);
        Ok(due)
    }

    async fn reschedule_future(&self, now_ms: i64, horizon_ms: i64) -> Result<u64, StoreError> {
        // A claim running past now + lease was stamped by a clock ahead of this one; ended, the
        // row is taken again by the next round (under the same key, should it be in flight).
        let lease_horizon = now_ms
            .saturating_add(self.lease_ms)
            .saturating_add(super::CLOCK_SLACK_MS);
        let c = self.client().await?;
        c.execute(
            "UPDATE outbox SET \
             next_at_ms = CASE WHEN next_at_ms > $2 THEN $1 ELSE next_at_ms END, \
             lease_until_ms = CASE WHEN lease_until_ms > $3 THEN 0 ELSE lease_until_ms END \
             WHERE state = 0 AND (next_at_ms > $2 OR lease_until_ms > $3)",
            &[&now_ms, &horizon_ms, &lease_horizon],
        )
        .await
        .map_err(map_err)
    }

    fn due_claims(&self) -> bool {
        // A taken row is leased to this node, and `due` leaves leased rows out.
        true
    }

    async fn record(&self, results: Vec<(i64, Delivery)>, now: i64) -> Result<(), StoreError> {
        // One statement per kind of result over arrays, not one per message: a relay round of
        // 256 results is three statements in one pipeline.
        let (mut ok, mut retry_ids, mut retry_at, mut retry_err) = (vec![], vec![], vec![], vec![]);
        let (mut dead_ids, mut dead_err) = (vec![], vec![]);
        for (id, d) in results {
            match d {
                Delivery::Delivered => ok.push(id),
                Delivery::Retry { next_at_ms, error } => {
                    retry_ids.push(id);
                    retry_at.push(next_at_ms);
                    retry_err.push(error);
                }
                Delivery::Dead { error } => {
                    dead_ids.push(id);
                    dead_err.push(error);
                }
            }
        }
        let mut c = self.client().await?;
        let tx = c.transaction().await.map_err(map_err)?;
        let delivered = tx
            .prepare_cached(
                "UPDATE outbox o SET state = 1, attempts = o.attempts + 1, delivered_at = $2, \
                 last_error = '', lease_until_ms = 0 FROM unnest($1::bigint[]) AS d(id) \
                 WHERE o.id = d.id AND o.state = 0 RETURNING o.key, o.kind, '', o.path",
            )
            .await
            .map_err(map_err)?;
        let retry = tx
            .prepare_cached(
                "UPDATE outbox o SET attempts = o.attempts + 1, next_at_ms = d.at, \
                 last_error = d.err, lease_until_ms = 0 \
                 FROM unnest($1::bigint[], $2::bigint[], $3::text[]) AS d(id, at, err) \
                 WHERE o.id = d.id AND o.state = 0 AND o.leased_by = $4",
            )
            .await
            .map_err(map_err)?;
        let dead = tx
            .prepare_cached(
                "UPDATE outbox o SET state = 2, attempts = o.attempts + 1, last_error = d.err, \
                 lease_until_ms = 0 FROM unnest($1::bigint[], $2::text[]) AS d(id, err) \
                 WHERE o.id = d.id AND o.state = 0 AND o.leased_by = $3 \
                 RETURNING o.key, o.kind, d.err, o.path",
            )
            .await
            .map_err(map_err)?;
        // Rows another node recorded first (its lease ran out while we delivered) are not
        // returned, so they are neither counted nor announced twice. A retry or a refusal is
        // written only while the row is still ours: once our lease ran out and another node
        // took the row, it is delivering it now, and our stale result would have cleared its
        // lease (a third node could then post it too) or parked an order it may yet deliver.
        // A delivery is written whoever holds the row: dispatch has the order, and the other
        // node's attempt is then answered 409 and finds nothing left to record.
        let node = self.node_id as i16;
        let ok_params: [&(dyn ToSql + Sync); 2] = [&ok, &now];
        let retry_params: [&(dyn ToSql + Sync); 4] = [&retry_ids, &retry_at, &retry_err, &node];
        let dead_params: [&(dyn ToSql + Sync); 3] = [&dead_ids, &dead_err, &node];
        let (delivered, _, dead) = tokio::try_join!(
            tx.query(&delivered, &ok_params),
            tx.execute(&retry, &retry_params),
            tx.query(&dead, &dead_params),
        )
        .map_err(map_err)?;
        let done = (delivered.len() + dead.len()) as u64;
        let mut events = EventBatch::default();
        for (rows, is_dead) in [(&delivered, false), (&dead, true)] {
            for r in rows.iter() {
                let (key, kind, error, path): (&str, &str, &str, &str) =
                    (r.get(0), r.get(1), r.get(2), r.get(3));
                if let Some((topic, payload)) = super::outbox_event(kind, key, path, is_dead, error)
                {
                    events.add(self.events, topic, payload, now, None);
                }
            }
        }
        events.insert(&tx).await.map_err(map_err)?;
        commit(tx).await?;
        let _ = self
            .depth
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |d| {
                Some(d.saturating_sub(done))
            });
        Ok(())
    }

    async fn outbox_stats(&self, now: i64) -> Result<OutboxStats, StoreError> {
        let c = self.client().await?;
        let r = c
            .query_one(
                "SELECT COUNT(*), MIN(created_at) FROM outbox WHERE state = 0",
                &[],
            )
            .await
            .map_err(map_err)?;
        let (depth, oldest): (i64, Option<i64>) = (r.get(0), r.get(1));
        let dead: i64 = c
            .query_one("SELECT COUNT(*) FROM outbox WHERE state = 2", &[])
            .await
            .map_err(map_err)?
            .get(0);
        Ok(OutboxStats {
            depth: depth.max(0) as u64,
            oldest_age_s: oldest.map(|o| now - o),
            dead: dead.max(0) as u64,
        })
    }

    async fn retry_dead(&self, key: String, now_ms: i64) -> Result<bool, StoreError> {
        let c = self.client().await?;
        let n = c
            // The order's dead contacts with it (see `Store::retry_dead`), found by their
            // path: a key range is not safe under the database's collation.
            .execute(
                "UPDATE outbox SET state = 0, next_at_ms = $2, attempts = 0, lease_until_ms = 0 \
                 WHERE state = 2 AND (key = $1 OR kind = 'contact' \
                 AND path = '/work-orders/' || $1 || '/contacts')",
                &[&key, &now_ms],
            )
            .await
            .map_err(map_err)?;
        if n > 0 {
            self.depth.fetch_add(n, Ordering::Relaxed);
        }
        Ok(n > 0)
    }

    async fn dead_letters(
        &self,
        limit: usize,
        before: Option<String>,
    ) -> Result<Vec<DeadLetter>, StoreError> {
        let c = self.client().await?;
        let limit = limit as i64;
        Ok(c.query(
            "SELECT key, kind, attempts, last_error, created_at FROM outbox \
                 WHERE state = 2 AND ($2::text IS NULL OR id < \
                   COALESCE((SELECT id FROM outbox WHERE key = $2), 0)) \
                 ORDER BY id DESC LIMIT $1",
            &[&limit, &before],
        )
        .await
        .map_err(map_err)?
        .iter()
        .map(|r| DeadLetter {
            key: r.get(0),
            kind: r.get(1),
            attempts: r.get::<_, i32>(2).max(0) as u32,
            last_error: r.get(3),
            created_at: r.get(4),
        })
        .collect())
    }

    async fn retry_dead_matching(
        &self,
        filter: DeadFilter,
        now_ms: i64,
    ) -> Result<u64, StoreError> {
        let c = self.client().await?;
        let n = c
            // The matching rows, and the dead contacts of the matching orders with them (see
            // `Store::retry_dead`); the sub-select sees the statement's snapshot, orders dead.
            .execute(
                "UPDATE outbox m SET state = 0, next_at_ms = $1, attempts = 0, lease_until_ms = 0 \
                 WHERE state = 2 AND (($2::text IS NULL OR last_error LIKE $2) \
                 AND ($3::text IS NULL OR kind = $3) \
                 AND ($4::bigint IS NULL OR created_at >= $4) \
                 AND ($5::bigint IS NULL OR created_at < $5) OR kind = 'contact' AND EXISTS ( \
                   SELECT 1 FROM outbox o \
                   WHERE o.key = substr(m.path, 14, length(m.path) - 22) \
                   AND o.state = 2 AND o.kind = 'order' \
                   AND ($2::text IS NULL OR o.last_error LIKE $2) \
                   AND ($3::text IS NULL OR $3 = 'order') \
                   AND ($4::bigint IS NULL OR o.created_at >= $4) \
                   AND ($5::bigint IS NULL OR o.created_at < $5)))",
                &[
                    &now_ms,
                    &filter.error_pattern(),
                    &filter.kind,
                    &filter.since,
                    &filter.until,
                ],
            )
            .await
            .map_err(map_err)?;
        self.depth.fetch_add(n, Ordering::Relaxed);
        Ok(n)
    }

    async fn order_state(&self, number: String) -> Result<Option<OrderState>, StoreError> {
        let c = self.client().await?;
        let row = c
            .query_opt(
                "SELECT o.number, o.category, o.created_at, x.state, x.delivered_at, x.body, \
                 o.confidential FROM orders o JOIN outbox x ON x.key = o.number \
                 WHERE o.number = $1",
                &[&number],
            )
            .await
            .map_err(map_err)?;
        Ok(row.map(|r| OrderState {
            number: r.get(0),
            category: r.get(1),
            created_at: r.get(2),
            delivery: match r.get::<_, i16>(3) {
                0 => "queued",
                1 => "delivered",
                _ => "held",
            }
            .into(),
            delivered_at: r.get(4),
            sent: r.get(5),
            confidential: r.get(6),
        }))
    }

    async fn recent_orders_of(
        &self,
        identity: String,
        origin: String,
        since: i64,
    ) -> Result<Vec<OpenOrder>, StoreError> {
        let c = self.client().await?;
        let st = c
            .prepare_cached(
                "SELECT number, category, content FROM orders \
                 WHERE identity = $1 AND created_at >= $2 AND origin = $3 \
                 AND NOT EXISTS (SELECT 1 FROM outbox WHERE key = orders.number AND state = 2) \
                 ORDER BY created_at DESC LIMIT 50",
            )
            .await
            .map_err(map_err)?;
        Ok(c.query(&st, &[&identity, &since, &origin])
            .await
            .map_err(map_err)?
            .iter()
            .map(|r| OpenOrder {
                number: r.get(0),
                category: r.get(1),
                content: r.get(2),
            })
            .collect())
    }

    async fn record_warning(&self, identity: String, w: Warning) -> Result<(), StoreError> {
        let mut c = self.client().await?;
        let tx = c.transaction().await.map_err(map_err)?;
        emit(
            &tx,
            self.events,
            "callers/warned",
            w.event(&identity),
            w.at,
            None,
        )
        .await?;
        tx.execute(
            "INSERT INTO warnings(identity, at, channel, evidence) VALUES ($1, $2, $3, $4)",
            &[&identity, &w.at, &w.channel, &w.evidence],
        )
        .await
        .map_err(map_err)?;
        commit(tx).await
    }

    async fn warnings_since(
        &self,
        identity: String,
        since: i64,
        scope: Scope,
    ) -> Result<u32, StoreError> {
        let web = scope == Scope::Web;
        let c = self.client().await?;
        let n: i64 = c
            .query_one(WARNINGS_SINCE, &[&identity, &since, &web])
            .await
            .map_err(map_err)?
            .get(0);
        Ok(count(n))
    }

    async fn warn(&self, req: WarnRequest) -> Result<Warned, StoreError> {
        let WarnRequest {
            identity,
            warning: w,
            weight,
            limit,
            since,
            claim,
            next,
        } = req;
        let mut c = self.client().await?;
        let tx = c.transaction().await.map_err(map_err)?;
        // The same lock as `record_suspension`: the count and the inserts of one node cannot
        // interleave with another's. (Until 2026-12-07 the count and the insert were separate
        // statements: two nodes refusing one caller at once recorded three reminders with
        // `warnings = 2`, and both said one was left.)
        tx.execute(
            "SELECT pg_advisory_xact_lock(hashtext('suspension:' || $1))",
            &[&identity],
        )
        .await
        .map_err(map_err)?;
        // The key is claimed first, before the count: a commit of the same key on another node
        // that is in flight is waited for (the unique index), and then its answer stands and
        // nothing is recorded; a commit that comes while this claim is held waits for it, and
        // then finds this transaction's answer (written into the claim before the commit). The
        // empty outcome is the in-flight marker `recall_in` reads as nothing. Until the review
        // of 2026-12-07 the claim came after the count, and none was taken when the reminders
        // were used up: the same page sent to two nodes at once was accepted on one and
        // suspended (15 of 30 trials) or reminded (7 of 30) on the other.
        // A page's refusal is held for `PAGE_REFUSAL_HOLD` (its `expires_at`), not deleted:
        // see `Claim::keep`. One whose hold has passed is taken over, as `COMMIT_INTAKE` does.
        let mut claimed = None;
        if let Some(cl) = claim {
            let expires_at = (!cl.keep).then(|| w.at.saturating_add(PAGE_REFUSAL_HOLD));
            let inserted = tx
                .execute(
                    "INSERT INTO dedupe(key, outcome, created_at, expires_at) \
                     VALUES ($1, '', $2, $3) \
                     ON CONFLICT (key) DO UPDATE SET outcome = '', created_at = $2, \
                     expires_at = $3 \
                     WHERE dedupe.expires_at IS NOT NULL AND dedupe.expires_at <= $2",
                    &[&cl.key, &w.at, &expires_at],
                )
                .await
                .map_err(map_err)?;
            if inserted == 0 {
                if let Some(earlier) = recall_in(&tx, &cl.key, w.at).await? {
                    return Ok(Warned::Answered(earlier));
                }
            } else {
                claimed = Some(cl);
            }
        }
        // Counted in the scope of the channel (see `Scope`): the web form's count all the
        // reminders, the verified channels' not those the web form gave.
        let scope = Scope::of_channel(&w.channel);
        let web = scope == Scope::Web;
        let before: i64 = tx
            .query_one(WARNINGS_SINCE, &[&identity, &since, &web])
            .await
            .map_err(map_err)?
            .get(0);
        let before = count(before);
        let weight = weight.max(1);
        let (answer, warned) = if before >= limit {
            let Some(next) = next else {
                return Ok(Warned::Exhausted);
            };
            let (suspension, recorded) =
                suspend_in(&tx, self.events, &identity, &next, &w, scope).await?;
            let answer = suspension.answer(next.tz);
            (
                answer,
                Warned::Suspended {
                    suspension,
                    recorded,
                },
            )
        } else {
            let mut events = EventBatch::default();
            for _ in 0..weight {
                events.add(
                    self.events,
                    "callers/warned",
                    w.event(&identity),
                    w.at,
                    None,
                );
            }
            events.insert(&tx).await.map_err(map_err)?;
            tx.execute(
                "INSERT INTO warnings(identity, at, channel, evidence) \
                 SELECT $1, $2, $3, $4 FROM generate_series(1, $5)",
                &[&identity, &w.at, &w.channel, &w.evidence, &(weight as i32)],
            )
            .await
            .map_err(map_err)?;
            let answer = Outcome::Throttled {
                retry_after: claimed.as_ref().map_or(0, |c| c.retry_after),
                warnings_left: limit.saturating_sub(before + weight),
            };
            (answer, Warned::Recorded { before })
        };
        let answer = encode(&answer)?;
        if let Some(cl) = &claimed {
            tx.execute(
                "UPDATE dedupe SET outcome = $2 WHERE key = $1",
                &[&cl.key, &answer],
            )
            .await
            .map_err(map_err)?;
        }
        // A page's refusal stays under its key until its hold passes (it is not deleted after
        // the commit as it was until 2026-12-07: a copy of the page that waited on the claim
        // and woke after that deletion answered 503 or stored the order).
        commit(tx).await?;
        Ok(warned)
    }

    async fn record_suspension(&self, s: Suspension) -> Result<Option<Suspension>, StoreError> {
        let mut c = self.client().await?;
        let tx = c.transaction().await.map_err(map_err)?;
        if s.decided_by == "rule" || s.decided_by == RULE_WEB {
            let web = s.scope() == Scope::Web;
            // Several nodes: the identity's suspensions are decided one transaction at a time
            // (the lock ends with the transaction), so the second sees the first's row.
            tx.execute(
                "SELECT pg_advisory_xact_lock(hashtext('suspension:' || $1))",
                &[&s.identity],
            )
            .await
            .map_err(map_err)?;
            let active = tx
                .query_opt(ACTIVE_RULE_SUSPENSION, &[&s.identity, &s.start, &web])
                .await
                .map_err(map_err)?;
            if let Some(row) = active {
                commit(tx).await?;
                return Ok(Some(suspension_row(&row)));
            }
        } else {
            // An operator's decision replaces what is active (a 30-day suspension cut to an
            // hour): the earlier one ends now, so another node's refresh does not bring it
            // back.
            tx.execute(
                "UPDATE suspensions SET until = $2 \
                 WHERE identity = $1 AND lifted_at IS NULL AND until > $2",
                &[&s.identity, &s.start],
            )
            .await
            .map_err(map_err)?;
        }
        emit(
            &tx,
            self.events,
            "callers/suspended",
            s.event(),
            s.start,
            None,
        )
        .await?;
        insert_suspension(&tx, &s).await?;
        commit(tx).await?;
        Ok(None)
    }

    async fn suspension_count(&self, identity: String, scope: Scope) -> Result<u32, StoreError> {
        let web = scope == Scope::Web;
        let c = self.client().await?;
        let n: i64 = c
            .query_one(SUSPENSION_COUNT, &[&identity, &web])
            .await
            .map_err(map_err)?
            .get(0);
        Ok(count(n))
    }

    async fn lift_suspension(&self, identity: String, now: i64) -> Result<bool, StoreError> {
        let mut c = self.client().await?;
        let tx = c.transaction().await.map_err(map_err)?;
        let n = tx
            .execute(
                "UPDATE suspensions SET lifted_at = $2, until = LEAST(until, $2) \
                 WHERE identity = $1 AND lifted_at IS NULL AND until > $2",
                &[&identity, &now],
            )
            .await
            .map_err(map_err)?;
        tx.execute(
            "INSERT INTO caller_resets(identity, reset_at) VALUES ($1, $2) \
             ON CONFLICT (identity) DO UPDATE SET reset_at = $2",
            &[&identity, &now],
        )
        .await
        .map_err(map_err)?;
        commit(tx).await?;
        Ok(n > 0)
    }

    async fn active_suspensions(&self, now: i64) -> Result<Vec<Suspension>, StoreError> {
        let c = self.client().await?;
        Ok(c.query(
            "SELECT identity, start, until, reason, decided_by, lifted_at, evidence FROM suspensions \
                 WHERE until > $1 AND lifted_at IS NULL",
            &[&now],
        )
        .await
        .map_err(map_err)?
        .iter()
        .map(suspension_row)
        .collect())
    }

    async fn caller_record(&self, identity: String) -> Result<CallerRecord, StoreError> {
        let c = self.client().await?;
        let id: &(dyn ToSql + Sync) = &identity;
        let warnings = c
            .query(
                "SELECT at, channel, evidence FROM warnings WHERE identity = $1 \
                 ORDER BY at DESC, id DESC LIMIT 100",
                &[id],
            )
            .await
            .map_err(map_err)?
            .iter()
            .map(|r| Warning {
                at: r.get(0),
                channel: r.get(1),
                evidence: r.get(2),
            })
            .collect();
        let suspensions = c
            .query(
                "SELECT identity, start, until, reason, decided_by, lifted_at, evidence FROM suspensions \
                 WHERE identity = $1 ORDER BY start DESC, id DESC",
                &[id],
            )
            .await
            .map_err(map_err)?
            .iter()
            .map(suspension_row)
            .collect();
        let orders = c
            .query(
                "SELECT number, category, content, created_at FROM orders WHERE identity = $1 \
                 ORDER BY created_at DESC LIMIT 50",
                &[id],
            )
            .await
            .map_err(map_err)?
            .iter()
            .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3)))
            .collect();
        let redirects = c
            .query(
                "SELECT identity, channel, number, reason, rule, text, at FROM redirects \
                 WHERE identity = $1 ORDER BY at DESC LIMIT 50",
                &[id],
            )
            .await
            .map_err(map_err)?
            .iter()
            .map(|r| RedirectRecord {
                identity: r.get(0),
                channel: r.get(1),
                number: r.get(2),
                reason: r.get(3),
                rule: r.get(4),
                text: r.get(5),
                at: r.get(6),
            })
            .collect();
        let reset_at = c
            .query_opt(
                "SELECT reset_at FROM caller_resets WHERE identity = $1",
                &[id],
            )
            .await
            .map_err(map_err)?
            .map(|r| r.get(0));
        Ok(CallerRecord {
            warnings,
            reset_at,
            suspensions,
            orders,
            redirects,
        })
    }

    async fn due_events(
        &self,
        sink: &'static str,
        topics: Topics,
        now_ms: i64,
        limit: usize,
    ) -> Result<Vec<EventRow>, StoreError> {
        // Claimed like outbox messages, so two nodes never publish or mail the same event at
        // once; the lease is measured on this node's wall clock (the callers may pass a far
        // future `now_ms` to mean "everything").
        let wall = chrono::Utc::now().timestamp_millis();
        let c = self.client().await?;
        let st = c
            .prepare_cached(match topics {
                Topics::All => {
                    "UPDATE events SET lease_until_ms = $4 WHERE id IN ( \
                       SELECT id FROM events WHERE sink = $1 AND next_at_ms <= $2 \
                       AND lease_until_ms <= $5 ORDER BY id LIMIT $3 FOR UPDATE SKIP LOCKED) \
                     RETURNING id, topic, payload, attempts, lease_until_ms"
                }
                Topics::Emergency => {
                    "UPDATE events SET lease_until_ms = $4 WHERE id IN ( \
                       SELECT id FROM events WHERE sink = $1 AND topic LIKE 'emergency/%' \
                       AND next_at_ms <= $2 AND lease_until_ms <= $5 \
                       ORDER BY id LIMIT $3 FOR UPDATE SKIP LOCKED) \
                     RETURNING id, topic, payload, attempts, lease_until_ms"
                }
            })
            .await
            .map_err(map_err)?;
        let rows = c
            .query(
                &st,
                &[
                    &sink,
                    &now_ms,
                    &(limit as i64),
                    &wall.saturating_add(self.lease_ms),
                    &wall,
                ],
            )
            .await
            .map_err(map_err)?;
        let mut out: Vec<EventRow> = rows
            .iter()
            .map(|r| EventRow {
                id: r.get(0),
                topic: r.get(1),
                payload: r.get(2),
                attempts: r.get::<_, i32>(3).max(0) as u32,
                lease: r.get(4),
            })
            .collect();
        out.sort_by_key(|e| e.id);
        Ok(out)
    }

    async fn hold_events(
        &self,
        held: Vec<(i64, i64)>,
        hold: Duration,
    ) -> Result<(i64, Vec<i64>), StoreError> {
        // Compare and set: an event is renewed only while its lease is still the one this node
        // set. Another node takes an event only once its lease has run out on that node's
        // clock, and stamps it with its own clock plus the lease, which is later than the one
        // it found: so a lease that is still ours was never taken.
        let wall = chrono::Utc::now().timestamp_millis();
        let hold_ms = hold.as_millis().min(i64::MAX as u128) as i64;
        let until = wall.saturating_add(hold_ms.max(self.lease_ms));
        let (ids, leases): (Vec<i64>, Vec<i64>) = held.into_iter().unzip();
        let c = self.client().await?;
        let st = c
            .prepare_cached(
                "UPDATE events e SET lease_until_ms = $3 \
                 FROM unnest($1::bigint[], $2::bigint[]) AS h(id, lease) \
                 WHERE e.id = h.id AND e.lease_until_ms = h.lease RETURNING e.id",
            )
            .await
            .map_err(map_err)?;
        let rows = c
            .query(&st, &[&ids, &leases, &until])
            .await
            .map_err(map_err)?;
        Ok((until, rows.iter().map(|r| r.get(0)).collect()))
    }

    async fn reschedule_future_events(
        &self,
        sink: &'static str,
        now_ms: i64,
        horizon_ms: i64,
        hold: Duration,
    ) -> Result<u64, StoreError> {
        // A claim runs at most `hold` or the lease from the clock that set it (`due_events`,
        // `hold_events`); one running further was stamped by a clock ahead of this one, and
        // ended, the event is taken again by the next round.
        let hold_ms = hold.as_millis().min(i64::MAX as u128) as i64;
        let lease_horizon = now_ms
            .saturating_add(hold_ms.max(self.lease_ms))
            .saturating_add(super::CLOCK_SLACK_MS);
        let c = self.client().await?;
        c.execute(
            "UPDATE events SET \
             next_at_ms = CASE WHEN next_at_ms > $3 THEN $2 ELSE next_at_ms END, \
             lease_until_ms = CASE WHEN lease_until_ms > $4 THEN 0 ELSE lease_until_ms END \
             WHERE sink = $1 AND (next_at_ms > $3 OR lease_until_ms > $4)",
            &[&sink, &now_ms, &horizon_ms, &lease_horizon],
        )
        .await
        .map_err(map_err)
    }

    async fn ack_events(&self, ids: Vec<i64>) -> Result<(), StoreError> {
        let c = self.client().await?;
        c.execute("DELETE FROM events WHERE id = ANY($1)", &[&ids])
            .await
            .map_err(map_err)?;
        Ok(())
    }

    async fn retry_event(
        &self,
        id: i64,
        next_at_ms: i64,
        payload: Option<String>,
    ) -> Result<(), StoreError> {
        let c = self.client().await?;
        c.execute(
            "UPDATE events SET attempts = attempts + 1, next_at_ms = $2, lease_until_ms = 0, \
             payload = COALESCE($3, payload) WHERE id = $1",
            &[&id, &next_at_ms, &payload],
        )
        .await
        .map_err(map_err)?;
        Ok(())
    }

    async fn defer_event(&self, id: i64, next_at_ms: i64) -> Result<(), StoreError> {
        let c = self.client().await?;
        c.execute(
            "UPDATE events SET next_at_ms = $2, lease_until_ms = 0 WHERE id = $1",
            &[&id, &next_at_ms],
        )
        .await
        .map_err(map_err)?;
        Ok(())
    }

    async fn trim_events(&self, sink: &'static str, bound: u64) -> Result<u64, StoreError> {
        let c = self.client().await?;
        c.execute(
            "DELETE FROM events WHERE id IN (SELECT id FROM events WHERE sink = $1 \
             ORDER BY id DESC OFFSET $2)",
            &[&sink, &(bound.min(i64::MAX as u64) as i64)],
        )
        .await
        .map_err(map_err)
    }

    async fn record_link(&self, identity: String, canonical: String) -> Result<(), StoreError> {
        let mut c = self.client().await?;
        let tx = c.transaction().await.map_err(map_err)?;
        // Re-point whatever was linked to `identity`, so links never chain.
        tx.execute(
            "UPDATE links SET canonical = $2 WHERE canonical = $1",
            &[&identity, &canonical],
        )
        .await
        .map_err(map_err)?;
        tx.execute(
            "INSERT INTO links(identity, canonical) VALUES ($1, $2) \
             ON CONFLICT (identity) DO UPDATE SET canonical = $2",
            &[&identity, &canonical],
        )
        .await
        .map_err(map_err)?;
        commit(tx).await
    }

    async fn links(&self) -> Result<Vec<(String, String)>, StoreError> {
        let c = self.client().await?;
        Ok(c.query("SELECT identity, canonical FROM links", &[])
            .await
            .map_err(map_err)?
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect())
    }

    async fn set_allowed(
        &self,
        identity: String,
        allowed: bool,
        at: i64,
    ) -> Result<(), StoreError> {
        let c = self.client().await?;
        if allowed {
            c.execute(
                "INSERT INTO allowed(identity, at) VALUES ($1, $2) \
                 ON CONFLICT (identity) DO NOTHING",
                &[&identity, &at],
            )
            .await
        } else {
            c.execute("DELETE FROM allowed WHERE identity = $1", &[&identity])
                .await
        }
        .map_err(map_err)?;
        Ok(())
    }

    async fn allowed(&self) -> Result<Vec<String>, StoreError> {
        let c = self.client().await?;
        Ok(c.query("SELECT identity FROM allowed", &[])
            .await
            .map_err(map_err)?
            .iter()
            .map(|r| r.get(0))
            .collect())
    }

    async fn resets_since(&self, since: i64) -> Result<Vec<(String, i64)>, StoreError> {
        let c = self.client().await?;
        Ok(c.query(
            "SELECT identity, reset_at FROM caller_resets WHERE reset_at >= $1",
            &[&since],
        )
        .await
        .map_err(map_err)?
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect())
    }

    async fn record_breaker(&self, open: bool, now: i64) -> Result<(), StoreError> {
        let c = self.client().await?;
        emit(
            &c,
            self.events,
            "dispatch/breaker",
            serde_json::json!({"open": open, "node": self.node_id}),
            now,
            None,
        )
        .await
    }

    async fn prune(
        &self,
        now: i64,
        before: i64,
        limit: usize,
    ) -> Result<super::Pruned, StoreError> {
        let (bodies, more_bodies, future) = self.prune_bodies(now, before, limit).await?;
        // The retry records go by their age's index: one dated ahead is never in the way.
        let (dedupe, more_dedupe) = self.prune_dedupe(before, limit).await?;
        Ok(super::Pruned {
            bodies,
            dedupe,
            more: more_bodies || more_dedupe,
            future,
        })
    }

    fn depth(&self) -> u64 {
        self.depth.load(Ordering::Relaxed)
    }

    async fn probe_write(&self) -> Result<(), StoreError> {
        let now = chrono::Utc::now().timestamp();
        let c = self.client().await?;
        c.execute(
            "INSERT INTO probe(node, at) VALUES ($1, $2) ON CONFLICT (node) DO UPDATE SET at = $2",
            &[&(self.node_id as i16), &now],
        )
        .await
        .map_err(map_err)?;
        Ok(())
    }
}

/// The retention's steps (see [`Store::prune`]), each in a short transaction of its own.
impl PgStore {
    /// Clears the bodies of delivered messages queued before `before`, walking the outbox by
    /// id from where the last step stopped (`prune_cursor`), as on SQLite: it passes every
    /// message older than `before` (a pending one keeps its body) and every message dated
    /// ahead of `now` (a clock that was ahead wrote it; it keeps its body, see
    /// [`super::walk_step`]), and stops at the first younger one.
    /// The cursor's row is taken with `SKIP LOCKED`: while one node takes a step, another
    /// node's step finds it taken and leaves the bodies to it. Ids are handed out before
    /// their rows commit, so a smaller id may become visible after a larger one; the walk
    /// passes only rows older than `before` (a day at least), long committed.
    async fn prune_bodies(
        &self,
        now: i64,
        before: i64,
        limit: usize,
    ) -> Result<(u64, bool, u64), StoreError> {
        let mut c = self.client().await?;
        let tx = c.transaction().await.map_err(map_err)?;
        let Some(cursor) = tx
            .query_opt(
                "SELECT after FROM prune_cursor WHERE what = 'outbox' FOR UPDATE SKIP LOCKED",
                &[],
            )
            .await
            .map_err(map_err)?
        else {
            return Ok((0, false, 0));
        };
        let after: i64 = cursor.get(0);
        let rows = tx
            .query(
                "SELECT id, created_at FROM outbox WHERE id > $1 ORDER BY id LIMIT $2",
                &[&after, &(limit as i64)],
            )
            .await
            .map_err(map_err)?;
        let (mut upto, mut future) = (after, 0);
        let mut more = rows.len() == limit;
        for r in &rows {
            let (id, created): (i64, i64) = (r.get(0), r.get(1));
            match super::walk_step(created, now, before) {
                super::Walk::Stop => {
                    more = false;
                    break;
                }
                super::Walk::PassFuture => future += 1,
                super::Walk::Clear => {}
            }
            upto = id;
        }
        if upto == after {
            return Ok((0, false, 0));
        }
        // `state = 1` again: a dead letter passed may have been replayed since;
        // `created_at < $3`: a message dated ahead, passed, keeps its body. The length
        // from the value's header, without fetching a large body from its TOAST table.
        let cleared = tx
            .execute(
                "UPDATE outbox SET body = '' \
                 WHERE id > $1 AND id <= $2 AND state = 1 AND octet_length(body) > 0 \
                 AND created_at < $3",
                &[&after, &upto, &before],
            )
            .await
            .map_err(map_err)?;
        tx.execute(
            "UPDATE prune_cursor SET after = $1 WHERE what = 'outbox'",
            &[&upto],
        )
        .await
        .map_err(map_err)?;
        commit(tx).await?;
        Ok((cleared, more, future))
    }

    /// Deletes retry records made before `before`, oldest first, through their age's index;
    /// rows another node is deleting at the same moment are skipped, not waited for.
    async fn prune_dedupe(&self, before: i64, limit: usize) -> Result<(u64, bool), StoreError> {
        let c = self.client().await?;
        let deleted = c
            .execute(
                "DELETE FROM dedupe WHERE key IN (SELECT key FROM dedupe WHERE created_at < $1 \
                 ORDER BY created_at LIMIT $2 FOR UPDATE SKIP LOCKED)",
                &[&before, &(limit as i64)],
            )
            .await
            .map_err(map_err)?;
        Ok((deleted, deleted as usize == limit))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A rolling upgrade: the previous release's nodes keep running on a database this release
    /// migrated, so no migration after [`LAST_RELEASED_SCHEMA`] may ask for a newer reader.
    #[test]
    fn the_last_releases_nodes_can_read_every_newer_migration() {
        for (version, readers_from, _) in MIGRATIONS {
            if *version > LAST_RELEASED_SCHEMA {
                assert!(
                    *readers_from <= LAST_RELEASED_SCHEMA,
                    "migration {version} needs readers from {readers_from}"
                );
            }
        }
    }

    #[test]
    fn what_sqlite_answers_503_for_answers_503_here_too() {
        assert!(unavailable(None), "the connection");
        for code in [
            "08006", // connection failure
            "53100", // disk full (ENOSPC)
            "58030", // I/O error (EIO)
            "58P01", // a relation's file is gone (ENOENT)
            "25006", // a read-only transaction: a standby, default_transaction_read_only
            "42501", // a read-only file system (EROFS), or a role that may no longer write
            "57P01", // the server shuts down
        ] {
            assert!(unavailable(Some(code)), "{code}");
        }
        for code in ["23505", "42P01", "XX001", "22P02"] {
            assert!(!unavailable(Some(code)), "{code}");
        }
    }
}
