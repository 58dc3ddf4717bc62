//! The embedded store: SQLite in WAL mode with `synchronous=FULL`, written by one thread that
//! commits in groups.
//!
//! Why one writer thread: SQLite allows one writer at a time anyway, and funnelling every change
//! through one thread lets concurrent requests share a transaction, hence one fsync (group
//! commit). The thread takes the first waiting operation, then everything else already queued
//! (up to [`MAX_GROUP`]), runs them all, commits once, and only then answers every caller.
//! Should one operation fail, the group is rolled back and run again with a SAVEPOINT per
//! operation, so the failing one is undone alone and the others still commit. If the commit fails
//! (disk full, read-only file system) every caller in the group gets `Unavailable`: nobody is
//! told "stored" for something that is not on disk.

use super::recent::RecentIdentities;
use super::walk_step;
use super::{
    event_rows, CallerRecord, DeadFilter, DeadLetter, Delivery, EventRow, Intake, IntakeResult,
    OpenOrder, OrderState, OutboxEntry, OutboxStats, Pruned, RedirectRecord, Scope, Store,
    StoreError, Suspension, Topics, Walk, WarnRequest, Warned, Warning, CLOCK_SLACK_MS,
    PAGE_REFUSAL_HOLD, RULE_WEB,
};
pub use super::{order_number, Sinks};
use async_trait::async_trait;
use hotline_adapters::Outcome;
use rusqlite::{params, Connection, OptionalExtension};
use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc, PoisonError};
use tokio::sync::oneshot;

/// Most operations committed in one transaction.
pub const MAX_GROUP: usize = 512;

const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS orders (
    number      TEXT PRIMARY KEY,
    identity    TEXT NOT NULL,
    category    TEXT NOT NULL,
    content     TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    -- Whether the submitter asked for confidentiality (art. 29), kept when the retention clears
    -- the body that also says so; a store made before 2026-12-07 gets the column (its orders'
    -- flags read from their bodies) from `add_columns`.
    confidential INTEGER NOT NULL DEFAULT 0,
    -- Where it came from, for repeats (`NewOrder::origin`): '' from a verified channel, 'web:…'
    -- from the web form; a store made before 2026-12-07 gets it from `add_columns`.
    origin       TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS orders_identity ON orders(identity, created_at);
CREATE TABLE IF NOT EXISTS order_seq (
    day   TEXT PRIMARY KEY,
    next  INTEGER NOT NULL
);
-- state: 0 = pending, 1 = delivered, 2 = dead
CREATE TABLE IF NOT EXISTS outbox (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    kind         TEXT NOT NULL,
    key          TEXT NOT NULL UNIQUE,
    path         TEXT NOT NULL,
    body         TEXT NOT NULL,
    state        INTEGER NOT NULL DEFAULT 0,
    attempts     INTEGER NOT NULL DEFAULT 0,
    next_at_ms   INTEGER NOT NULL,
    created_at   INTEGER NOT NULL,
    delivered_at INTEGER,
    last_error   TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS outbox_due ON outbox(state, next_at_ms);
CREATE TABLE IF NOT EXISTS dedupe (
    key         TEXT PRIMARY KEY,
    outcome     TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    -- A page's refusal is held until then (unix seconds; NULL: kept, see `Claim::keep`); a
    -- store made before 2026-12-07 gets the column from `add_columns`.
    expires_at  INTEGER
);
CREATE TABLE IF NOT EXISTS redirects (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    identity  TEXT NOT NULL,
    channel   TEXT NOT NULL,
    number    TEXT NOT NULL,
    reason    TEXT NOT NULL,
    rule      TEXT NOT NULL,
    text      TEXT NOT NULL,
    at        INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS warnings (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    identity  TEXT NOT NULL,
    at        INTEGER NOT NULL,
    channel   TEXT NOT NULL,
    evidence  TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS warnings_identity ON warnings(identity, at);
CREATE TABLE IF NOT EXISTS suspensions (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    identity    TEXT NOT NULL,
    start       INTEGER NOT NULL,
    until       INTEGER NOT NULL,
    reason      TEXT NOT NULL,
    decided_by  TEXT NOT NULL,
    lifted_at   INTEGER,
    -- What started it, for operators only (see `Suspension::evidence`); a store made before
    -- 2026-12-07 gets the column from `add_columns`.
    evidence    TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS suspensions_identity ON suspensions(identity);
CREATE INDEX IF NOT EXISTS suspensions_until ON suspensions(until);
-- A lift resets the warning count: warnings before reset_at no longer count.
CREATE TABLE IF NOT EXISTS caller_resets (
    identity  TEXT PRIMARY KEY,
    reset_at  INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS redirects_identity ON redirects(identity, at);
-- The event outbox: written in the same transaction as the state change it reports, so an
-- event is never lost and never invented; the MQTT publisher drains it.
-- One row per sink (mqtt, mail) so each drains at its own pace.
CREATE TABLE IF NOT EXISTS events (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    sink        TEXT NOT NULL,
    topic       TEXT NOT NULL,
    payload     TEXT NOT NULL,
    attempts    INTEGER NOT NULL DEFAULT 0,
    next_at_ms  INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS events_sink ON events(sink, next_at_ms, id);
CREATE INDEX IF NOT EXISTS events_urgent ON events(sink, id) WHERE topic LIKE 'emergency/%';
CREATE TABLE IF NOT EXISTS links (
    identity   TEXT PRIMARY KEY,
    canonical  TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS allowed (
    identity   TEXT PRIMARY KEY,
    at         INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS probe (id INTEGER PRIMARY KEY, at INTEGER NOT NULL);
-- How far the retention (storage.retain) has cleared delivered bodies: every outbox row up to
-- `after` (its id) was delivered and cleared, or parked as a dead letter, when it was passed.
CREATE TABLE IF NOT EXISTS prune_cursor (
    what   TEXT PRIMARY KEY,
    after  INTEGER NOT NULL
);
"#;

/// An operation run on the writer thread, answered after the group's commit.
///
/// Operations must be re-runnable (`FnMut`, SQL effects only): a group first runs without
/// savepoints and, should any operation fail, is rolled back and run again with one savepoint
/// per operation (see [`run_group`]).
trait Op: Send {
    /// Runs the operation; `isolated` wraps it in its own savepoint. False if it failed.
    fn run(&mut self, conn: &Connection, isolated: bool) -> bool;
    fn finish(self: Box<Self>, commit: Result<(), String>);
}

struct TypedOp<T, F> {
    f: F,
    out: Option<Result<T, StoreError>>,
    tx: oneshot::Sender<Result<T, StoreError>>,
}

impl<T, F> Op for TypedOp<T, F>
where
    T: Send,
    F: FnMut(&Connection) -> Result<T, StoreError> + Send,
{
    fn run(&mut self, conn: &Connection, isolated: bool) -> bool {
        // Isolated: a savepoint of its own, so a failing operation is rolled back alone.
        if isolated {
            if let Err(e) = exec(conn, "SAVEPOINT op", []) {
                self.out = Some(Err(map_err(e)));
                return false;
            }
        }
        let r = (self.f)(conn);
        let ok = r.is_ok();
        let end = match (isolated, ok) {
            (false, _) => Ok(()),
            (true, true) => exec(conn, "RELEASE op", []).map(drop),
            (true, false) => exec(conn, "ROLLBACK TO op", [])
                .and_then(|_| exec(conn, "RELEASE op", []).map(drop)),
        };
        self.out = Some(match end {
            Ok(()) => r,
            Err(e) => Err(map_err(e)),
        });
        ok
    }

    fn finish(self: Box<Self>, commit: Result<(), String>) {
        let r = match commit {
            Ok(()) => self
                .out
                .unwrap_or_else(|| Err(StoreError::Internal("operation did not run".into()))),
            Err(e) => Err(StoreError::Unavailable(e)),
        };
        let _ = self.tx.send(r);
    }
}

/// Maps SQLite errors: anything about space, permissions or I/O is "cannot write now" (503),
/// and so is a damaged file (SQLITE_CORRUPT, SQLITE_NOTADB), which no retry of the request
/// can mend either; its message starts with [`DAMAGED`], so the store notices it (see
/// [`Damage`]). The rest is internal: until 2026-12-07 a damaged page met at runtime was too,
/// and the citizen got a 500 labelled `rejected` instead of a 503 to retry.
fn map_err(e: rusqlite::Error) -> StoreError {
    use rusqlite::ErrorCode::*;
    if is_damage(&e) {
        return StoreError::Unavailable(format!("{DAMAGED}{e}"));
    }
    match e.sqlite_error_code() {
        Some(
            DiskFull | ReadOnly | SystemIoFailure | CannotOpen | DatabaseBusy | DatabaseLocked,
        ) => StoreError::Unavailable(e.to_string()),
        _ => StoreError::Internal(e.to_string()),
    }
}

/// Whether SQLite says the file is damaged.
fn is_damage(e: &rusqlite::Error) -> bool {
    use rusqlite::ErrorCode::*;
    matches!(e.sqlite_error_code(), Some(DatabaseCorrupt | NotADatabase))
}

/// How the message of an error that says the file is damaged starts.
const DAMAGED: &str = "the store's file is damaged: ";

/// A group's error as the writer reports it to each operation (marked like [`map_err`]'s).
fn group_error(e: rusqlite::Error) -> String {
    if is_damage(&e) {
        format!("{DAMAGED}{e}")
    } else {
        e.to_string()
    }
}

/// Whether the store has been found damaged: by the check after it was opened
/// ([`check_in_background`]) or by SQLite answering any statement so. From then on every
/// operation answers `Unavailable`, as a store that could not be opened does
/// ([`super::broken`]): `/readyz` answers 503, intake 503 (emergencies are still redirected),
/// and nothing more is written into a damaged file, which could spread the damage. Until the
/// file is restored and the gateway restarted.
#[derive(Debug, Default)]
struct Damage {
    found: AtomicBool,
}

impl Damage {
    /// The refusal of every operation once damage was found.
    fn refusal<T>(&self) -> Option<Result<T, StoreError>> {
        self.found.load(Ordering::Relaxed).then(|| {
            Err(StoreError::Unavailable(format!(
                "{DAMAGED}found earlier (see the log); restore it from backup and restart"
            )))
        })
    }

    /// Notes damage that an operation's result reports.
    fn note<T>(&self, r: &Result<T, StoreError>) {
        if let Err(StoreError::Unavailable(m)) = r {
            if let Some(detail) = m.strip_prefix(DAMAGED) {
                self.found_now(detail);
            }
        }
    }

    /// Marks the store damaged; logged once.
    fn found_now(&self, detail: &str) {
        if !self.found.swap(true, Ordering::Relaxed) {
            tracing::error!(
                %detail,
                "The store is damaged: intake answers 503 and emergencies are still \
                 redirected. Move the file aside, restore it from backup and restart."
            );
            metrics::counter!("hotline_store_damaged_total").increment(1);
        }
    }
}

/// The embedded SQLite store.
pub struct SqliteStore {
    tx: mpsc::Sender<Box<dyn Op>>,
    depth: Arc<AtomicU64>,
    events: Sinks,
    /// Read-only connections. WAL lets readers run beside the writer, so look-ups on the
    /// request path (repeats, dedupe records) never queue behind a group's fsync.
    readers: Arc<Vec<std::sync::Mutex<Connection>>>,
    next_reader: std::sync::atomic::AtomicUsize,
    stop_checkpoints: Arc<AtomicBool>,
    /// Who may have recent orders, so most submissions skip the read (see [`super::recent`]).
    recent: Arc<RecentIdentities>,
    /// Whether the file was found damaged.
    damage: Arc<Damage>,
}

impl Drop for SqliteStore {
    fn drop(&mut self) {
        self.stop_checkpoints.store(true, Ordering::Relaxed);
    }
}

/// Read connections per store.
const READERS: usize = 4;

/// How often the checkpoint thread copies the WAL back into the database.
const CHECKPOINT_EVERY: std::time::Duration = std::time::Duration::from_millis(500);

/// At most this many more checkpoint passes on the thread before the writer copies the rest.
const CATCH_UP_PASSES: usize = 3;

/// A pass (checkpoint and sync) shorter than this left the writer little enough to copy.
const CAUGHT_UP: std::time::Duration = std::time::Duration::from_millis(2);

/// How far back the start-up load of [`RecentIdentities`] reaches: longer than any sensible
/// `rules.duplicate_window` (a longer one just reads the store every time, as before).
const RECENT_LOOKBACK_SECS: i64 = 31 * 24 * 3600;

impl SqliteStore {
    /// Opens (or creates) the store in `dir`, checks it, and starts the writer thread.
    /// Events are not recorded (no broker configured).
    pub fn open(dir: &Path) -> Result<SqliteStore, StoreError> {
        SqliteStore::open_with(
            dir,
            Sinks::default(),
            std::time::Duration::ZERO,
            std::time::Duration::ZERO,
        )
    }

    /// As [`open`](Self::open); `events` says which sinks record state changes, and
    /// `commit_interval` is `storage.commit_interval`: the shortest time from one group
    /// commit's start to the next (zero: no pause); `cpu_slice` is `server.cpu_slice`, the
    /// writer thread's CPU slice (zero: the kernel's default), since every answer waits for it.
    pub fn open_with(
        dir: &Path,
        events: Sinks,
        commit_interval: std::time::Duration,
        cpu_slice: std::time::Duration,
    ) -> Result<SqliteStore, StoreError> {
        std::fs::create_dir_all(dir).map_err(|e| {
            StoreError::Unavailable(format!("cannot create {}: {e}", dir.display()))
        })?;
        let path = dir.join("gateway.db");
        let conn = open_writer(&path)?;
        let depth: i64 = conn
            .query_row("SELECT COUNT(*) FROM outbox WHERE state = 0", [], |r| {
                r.get(0)
            })
            .map_err(|e| damaged(&path, e))?;
        let depth = Arc::new(AtomicU64::new(depth.max(0) as u64));
        // Checkpoints (copying the WAL back into the database, with an fsync) used to run inside
        // whichever commit crossed the auto-checkpoint size, stalling every request in that
        // group for tens of milliseconds (visible as p99 spikes). A thread of its own runs them
        // in PASSIVE mode, which never blocks the writer.
        //
        // That thread alone never lets the WAL start over: SQLite rewinds it only when a write
        // transaction begins with every frame copied back, and under steady load the writer
        // has always committed a few more while the thread copied. The WAL then grew to the
        // auto-checkpoint backstop (100,000 pages, 400 MB), and every ~4 s at 5,000 orders/s
        // the backstop ran in the writer's commit path: a stall of 30-60 ms, fsync of the
        // database included. So after each of its checkpoints the thread asks the writer to
        // copy the frames it added meanwhile (the few milliseconds the thread took), between
        // two groups: a pause of 1-3 ms, mostly the database's fsync, twice a second under
        // load. The writer's next transaction then starts the WAL over at its beginning, in
        // blocks the file already has (~70-110 MB at 5,000 orders/s instead of 412 MB, and a
        // restart after kill -9 reads only the frames since). The backstop stays for a
        // thread that falls behind.
        //
        // SQLite syncs the database file at the end of a checkpoint only when no frame was
        // added while it copied, which under load is never true on this thread: the writer's
        // short remainder then paid the fsync of everything the thread had copied (5-10 ms at
        // 2,600 orders/s, twice a second, with every request behind it waiting). So the thread
        // syncs the database file itself after copying (fsync is per file, not per descriptor),
        // and the writer's remainder flushes only its own few pages. Before asking, the thread
        // catches up with up to three shorter passes (see the loop), so that the remainder is
        // a couple of milliseconds' commits rather than all those of its first pass and sync.
        // Shared with the writer, which opens it again should the store have been read-only.
        let checkpointer = Arc::new(std::sync::Mutex::new(
            Connection::open(&path).map_err(map_err)?,
        ));
        let db_file = std::fs::File::open(&path)
            .map_err(|e| StoreError::Unavailable(format!("cannot open {}: {e}", path.display())))?;
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        let finish = Arc::new(AtomicBool::new(false));
        let finish_req = finish.clone();
        let thread_conn = checkpointer.clone();
        std::thread::Builder::new()
            .name("store-checkpoint".into())
            .spawn(move || {
                let sync = || {
                    let started = std::time::Instant::now();
                    if let Err(e) = db_file.sync_all() {
                        // The writer's remainder syncs the file anyway; only slower.
                        tracing::warn!(error = %e, "Database file sync failed; will retry.");
                    }
                    metrics::histogram!("hotline_store_checkpoint_seconds", "by" => "sync")
                        .record(started.elapsed());
                };
                while !stopped.load(Ordering::Relaxed) {
                    std::thread::sleep(CHECKPOINT_EVERY);
                    let mut pass = std::time::Instant::now();
                    if checkpoint(&lock(&thread_conn), "thread") == 0 {
                        continue;
                    }
                    sync();
                    // Catching up before the writer's turn: what the writer must copy is what
                    // it committed while this pass copied and synced, and each pass copies
                    // only what the one before left, so two or three shrink the writer's pause
                    // (3.6-4 ms twice a second at 6,900 orders/s, when the first pass and its
                    // sync took ~18 ms; BENCHMARKS.md, fifteenth session).
                    for _ in 0..CATCH_UP_PASSES {
                        if pass.elapsed() < CAUGHT_UP {
                            break;
                        }
                        pass = std::time::Instant::now();
                        checkpoint(&lock(&thread_conn), "catch-up");
                        sync();
                    }
                    finish_req.store(true, Ordering::Relaxed);
                }
            })
            .map_err(|e| StoreError::Internal(format!("cannot start checkpointer: {e}")))?;
        let mut readers = Vec::with_capacity(READERS);
        for _ in 0..READERS {
            readers.push(std::sync::Mutex::new(open_reader(&path)?));
        }
        let readers = Arc::new(readers);
        if read_only(&conn) {
            tracing::error!(path = %path.display(), "The store is read-only: intake answers 503 until it can be written (tried every second).");
        }
        let (tx, rx) = mpsc::channel::<Box<dyn Op>>();
        let others = Others {
            path: path.clone(),
            readers: readers.clone(),
            checkpointer,
        };
        std::thread::Builder::new()
            .name("store-writer".into())
            .spawn(move || {
                crate::shorten_slice(cpu_slice, "store writer");
                writer(Some(conn), &others, rx, finish, commit_interval)
            })
            .map_err(|e| StoreError::Internal(format!("cannot start writer: {e}")))?;
        let recent = Arc::new(RecentIdentities::new());
        load_recent(&path, recent.clone())?;
        let damage = Arc::new(Damage::default());
        check_in_background(&path, damage.clone(), CHECK_BUDGET)?;
        Ok(SqliteStore {
            tx,
            depth,
            events,
            readers,
            next_reader: std::sync::atomic::AtomicUsize::new(0),
            stop_checkpoints: stop,
            recent,
            damage,
        })
    }

    /// Runs `f` on the writer thread inside the next group commit.
    async fn call<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnMut(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        if let Some(refused) = self.damage.refusal() {
            return refused;
        }
        let (tx, rx) = oneshot::channel();
        let op = TypedOp { f, out: None, tx };
        self.tx
            .send(Box::new(op))
            .map_err(|_| StoreError::Unavailable("store writer stopped".into()))?;
        let r = rx
            .await
            .map_err(|_| StoreError::Unavailable("store writer stopped".into()))?;
        self.damage.note(&r);
        r
    }
}

impl SqliteStore {
    /// A short indexed read on the request path: run inline when a read connection is free
    /// (tens of microseconds; a hop to the blocking pool cost more than the read itself in
    /// profiles), else on the blocking pool like any other read.
    async fn read_quick<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        if let Some(refused) = self.damage.refusal() {
            return refused;
        }
        let start = self.next_reader.fetch_add(1, Ordering::Relaxed);
        for i in 0..self.readers.len() {
            if let Some(Ok(conn)) = self
                .readers
                .get((start + i) % self.readers.len())
                .map(|m| m.try_lock())
            {
                let r = f(&conn);
                self.damage.note(&r);
                return r;
            }
        }
        self.read(f).await
    }

    /// Runs a read on one of the read connections, on the blocking pool.
    async fn read<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        if let Some(refused) = self.damage.refusal() {
            return refused;
        }
        let readers = self.readers.clone();
        let start = self.next_reader.fetch_add(1, Ordering::Relaxed);
        let r = tokio::task::spawn_blocking(move || {
            // Take a free connection if there is one, else wait for the next in turn.
            for i in 0..readers.len() {
                if let Some(Ok(conn)) = readers
                    .get((start + i) % readers.len())
                    .map(|m| m.try_lock())
                {
                    return f(&conn);
                }
            }
            match readers.get(start % readers.len().max(1)).map(|m| m.lock()) {
                Some(Ok(conn)) => f(&conn),
                _ => Err(StoreError::Internal("read connection poisoned".into())),
            }
        })
        .await
        .map_err(|e| StoreError::Internal(format!("read task failed: {e}")))?;
        self.damage.note(&r);
        r
    }
}

/// Clears the bodies of the delivered messages in an id range (the retention's step).
/// `state = 1` again: a dead letter passed may have been replayed since. `+state`: a plain
/// `state = 1` let SQLite pick the `outbox_due` index and read every delivered row's entry
/// (20 ms for a step of 16 rows in a store of 200,000, on the writer thread) instead of the
/// range of ids (0.4 ms for 256).
/// `created_at < ?3`: a message dated ahead of the clock (a clock that was ahead wrote it),
/// which the walk passes, keeps its body; its true age is unknown.
const CLEAR_BODIES: &str = "UPDATE outbox SET body = '' \
     WHERE id > ?1 AND id <= ?2 AND +state = 1 AND body <> '' AND +created_at < ?3";

/// Deletes the old retry records in a rowid range (the retention's step).
const DELETE_DEDUPE: &str =
    "DELETE FROM dedupe WHERE rowid >= ?1 AND rowid <= ?2 AND created_at < ?3";

/// The retention's steps (see [`Store::prune`]). Each finds its rows on a read connection
/// and hands the writer one statement over a range of row ids (at most `limit` rows), so a
/// step adds a fraction of a millisecond to the group commit it joins.
impl SqliteStore {
    /// Clears the bodies of delivered messages queued before `before`, walking the outbox by
    /// id from where the last step stopped (the `prune_cursor` table). The walk passes every
    /// message older than `before`, and every message dated ahead of `now` (a clock that was
    /// ahead wrote it: it keeps its body, see [`walk_step`]), and stops at the first younger one. It used to stop at a
    /// pending one too (it would be delivered, then cleared), but a contact waiting for a dead
    /// order stays pending until an operator replays it, and it held the walk for good (the
    /// merge review of 2026-12-07): now a pending message that old (a month-long outage, a
    /// contact of a dead order) keeps its body once delivered, as a dead letter passed and
    /// replayed later does: one body each, in exchange for never reading pruned rows again (an index of the rows still to clear would cost every
    /// delivery an index write on the writer thread).
    async fn prune_bodies(
        &self,
        now: i64,
        before: i64,
        limit: usize,
    ) -> Result<(u64, bool, u64), StoreError> {
        let (after, upto, more, future) = self
            .read(move |conn| {
                let after: i64 = conn
                    .query_row(
                        "SELECT after FROM prune_cursor WHERE what = 'outbox'",
                        [],
                        |r| r.get(0),
                    )
                    .optional()
                    .map_err(sql)?
                    .unwrap_or(0);
                let mut st = conn
                    .prepare_cached(
                        "SELECT id, created_at FROM outbox WHERE id > ?1 ORDER BY id LIMIT ?2",
                    )
                    .map_err(sql)?;
                let mut rows = st.query(params![after, limit as i64]).map_err(sql)?;
                let (mut upto, mut walked, mut future) = (after, 0, 0);
                while let Some(r) = rows.next().map_err(sql)? {
                    let (id, created): (i64, i64) =
                        (r.get(0).map_err(sql)?, r.get(1).map_err(sql)?);
                    match walk_step(created, now, before) {
                        Walk::Stop => return Ok((after, upto, false, future)),
                        Walk::PassFuture => future += 1,
                        Walk::Clear => {}
                    }
                    upto = id;
                    walked += 1;
                }
                Ok((after, upto, walked == limit, future))
            })
            .await?;
        if upto == after {
            return Ok((0, false, 0));
        }
        let cleared = self
            .call(move |conn| {
                let n = exec(conn, CLEAR_BODIES, params![after, upto, before]).map_err(sql)?;
                exec(
                    conn,
                    "INSERT INTO prune_cursor(what, after) VALUES ('outbox', ?1) \
                     ON CONFLICT(what) DO UPDATE SET after = MAX(after, excluded.after)",
                    [upto],
                )
                .map_err(sql)?;
                Ok(n as u64)
            })
            .await?;
        Ok((cleared, more, future))
    }

    /// Deletes retry records made before `before`, oldest first: in the order they were
    /// written (by rowid, which SQLite gives as one more than the largest), so the oldest are
    /// always at the front of the table and no index on their age is needed. A record younger
    /// than `before` among the front rows (a clock set back) stays until it is old.
    async fn prune_dedupe(
        &self,
        now: i64,
        before: i64,
        limit: usize,
    ) -> Result<(u64, bool), StoreError> {
        let ahead = now.saturating_add(CLOCK_SLACK_MS / 1000);
        let front = self
            .read(move |conn| {
                // Records dated ahead of the clock are left out of the front: 128 of them at
                // the front (a clock a year ahead) held every deletion until that date. They
                // are read again at each step, which costs little: there are few, and the
                // scan by rowid never needs an index on their age.
                let mut st = conn
                    .prepare_cached(
                        "SELECT rowid, created_at FROM dedupe WHERE created_at <= ?2 \
                         ORDER BY rowid LIMIT ?1",
                    )
                    .map_err(sql)?;
                let rows = st
                    .query_map(params![limit as i64, ahead], |r| {
                        Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?))
                    })
                    .map_err(sql)?;
                rows.collect::<Result<Vec<_>, _>>().map_err(sql)
            })
            .await?;
        let old = || {
            front
                .iter()
                .filter(|(_, at)| *at < before)
                .map(|(id, _)| *id)
        };
        let (Some(first), Some(last)) = (old().min(), old().max()) else {
            return Ok((0, false));
        };
        let more = front.len() == limit && front.last().is_some_and(|(_, at)| *at < before);
        let deleted = self
            .call(move |conn| exec(conn, DELETE_DEDUPE, params![first, last, before]).map_err(sql))
            .await?;
        Ok((deleted as u64, more))
    }
}

/// Notes the identities of the orders of the last [`RECENT_LOOKBACK_SECS`] in the filter, on a
/// thread of its own so start-up does not wait (until it is done every look-up reads the store).
/// The writer notes new orders meanwhile, so nothing committed during the load is missed.
fn load_recent(path: &Path, recent: Arc<RecentIdentities>) -> Result<(), StoreError> {
    let from = chrono::Utc::now().timestamp() - RECENT_LOOKBACK_SECS;
    recent.begin_load(from);
    let path = path.to_path_buf();
    std::thread::Builder::new()
        .name("store-recent".into())
        .spawn(move || {
            let scan = || -> Result<u64, StoreError> {
                let conn = open_reader(&path)?;
                // The (identity, created_at) index holds both columns: a scan of it never
                // touches the table.
                let mut st = conn
                    .prepare(
                        "SELECT identity FROM orders INDEXED BY orders_identity \
                         WHERE created_at >= ?1",
                    )
                    .map_err(sql)?;
                let mut rows = st.query([from]).map_err(sql)?;
                let mut n = 0;
                while let Some(r) = rows.next().map_err(sql)? {
                    let identity: String = r.get(0).map_err(sql)?;
                    recent.note(&identity, from);
                    n += 1;
                }
                Ok(n)
            };
            match scan() {
                Ok(n) => tracing::debug!(orders = n, "Recent identities loaded."),
                Err(e) => {
                    tracing::warn!(error = %e, "Cannot load recent identities; every look-up reads the store.");
                    recent.disable();
                }
            }
            recent.loaded();
        })
        .map(drop)
        .map_err(|e| StoreError::Internal(format!("cannot start the recent-identities load: {e}")))
}

fn damaged(path: &Path, e: rusqlite::Error) -> StoreError {
    let detail = |m: &str| {
        format!(
            "the store at {} is damaged or not a gateway store ({m}); move it aside and restore \
             from backup",
            path.display()
        )
    };
    match map_err(e) {
        StoreError::Internal(m) => StoreError::Internal(detail(&m)),
        StoreError::Unavailable(m) if m.starts_with(DAMAGED) => {
            StoreError::Unavailable(detail(&m[DAMAGED.len()..]))
        }
        other => other,
    }
}

/// The longest the check after opening may read the store: it holds one read transaction,
/// and the WAL cannot start over until that ends. `PRAGMA quick_check` read a 0.9 GB store in
/// about 1 s from the page cache and 12 s from this project's disk; a larger or slower store
/// is checked this far only (logged).
const CHECK_BUDGET: std::time::Duration = std::time::Duration::from_secs(30);

/// Checks the store at `path` with `PRAGMA quick_check` on a thread of its own, at a lower CPU
/// priority, for at most `budget`, and marks `damage` if it finds any. In the background
/// because the check reads every page: at start-up it held up emergency redirects for as long
/// (12 s per GB from disk). Pages that intake never touches (old orders, their index) are
/// found damaged here, not when a citizen asks for such an order.
fn check_in_background(
    path: &Path,
    damage: Arc<Damage>,
    budget: std::time::Duration,
) -> Result<(), StoreError> {
    let conn = open_reader(path)?;
    let interrupt = conn.get_interrupt_handle();
    let (done, finished) = mpsc::channel::<()>();
    std::thread::Builder::new()
        .name("store-check".into())
        .spawn(move || {
            if finished.recv_timeout(budget) == Err(mpsc::RecvTimeoutError::Timeout) {
                interrupt.interrupt();
            }
        })
        .map_err(|e| StoreError::Internal(format!("cannot start the store check: {e}")))?;
    std::thread::Builder::new()
        .name("store-check".into())
        .spawn(move || {
            crate::lower_priority(10);
            let started = std::time::Instant::now();
            let problems: rusqlite::Result<Vec<String>> = conn
                .prepare("PRAGMA quick_check(10)")
                .and_then(|mut st| st.query_map([], |r| r.get(0))?.collect());
            let _ = done.send(());
            let took_ms = started.elapsed().as_millis() as u64;
            match problems {
                Ok(p) if p.iter().all(|l| l == "ok") => {
                    tracing::info!(took_ms, "Store checked: no damage found.")
                }
                Ok(p) => damage.found_now(&p.join("; ")),
                Err(e) if is_damage(&e) => damage.found_now(&e.to_string()),
                Err(e) if e.sqlite_error_code() == Some(rusqlite::ErrorCode::OperationInterrupted) => {
                    tracing::warn!(took_ms, "Store check stopped at its time budget; the rest of the file was not checked.")
                }
                Err(e) => tracing::warn!(error = %e, "Store check failed."),
            }
        })
        .map(drop)
        .map_err(|e| StoreError::Internal(format!("cannot start the store check: {e}")))
}

/// The writer thread: takes what is queued, commits it as one group, answers, repeats.
///
/// `interval` (`storage.commit_interval`, 1 ms by default) paces the groups under steady
/// load: a small group (fewer than [`PACED_BELOW`] operations queued) starts no sooner than that
/// after the previous one started, and takes whatever arrived meanwhile. An operation arriving
/// after a quiet spell, or a group already that big, is committed at once. Each
/// fsync is work for the VM's host too, and on this project's VM the host throttled the whole
/// VM for it: at 3,200 orders/s, 1 ms cut the steal from 0.5-0.8 s to 0.02-0.06 s per 10 s,
/// the p99 from 16-37 ms to 11-14 ms and disk writes by a fifth (BENCHMARKS.md). At lower
/// rates it can add up to that millisecond to an answer.
fn writer(
    mut conn: Option<Connection>,
    others: &Others,
    rx: mpsc::Receiver<Box<dyn Op>>,
    finish: Arc<AtomicBool>,
    interval: std::time::Duration,
) {
    let mut group: Vec<Box<dyn Op>> = Vec::with_capacity(MAX_GROUP);
    let mut last_start: Option<std::time::Instant> = None;
    let mut last_reopen: Option<std::time::Instant> = None;
    while let Ok(first) = rx.recv() {
        // A store that was read-only when it was opened (a read-only mount, say) is never
        // written through those connections, even once the file system is writable again.
        // Try again, at most once a second, before a group; meanwhile groups answer 503.
        if conn.as_ref().is_none_or(read_only)
            && last_reopen.is_none_or(|t| t.elapsed() >= REOPEN_EVERY)
        {
            last_reopen = Some(std::time::Instant::now());
            others.reopen(&mut conn);
        }
        group.push(first);
        take_queued(&rx, &mut group);
        // Pacing is for small groups, to put more orders in each fsync. A group that is already
        // this big shares its fsync enough, and waiting would only leave the cores idle: under
        // wrk's 32 connections the writer slept a third of every millisecond while the cores
        // were 30 % idle (BENCHMARKS.md, ninth session).
        if let Some(wait) = pacing(group.len(), last_start.map(|t| t.elapsed()), interval) {
            std::thread::sleep(wait);
            take_queued(&rx, &mut group);
        }
        let started = std::time::Instant::now();
        last_start = Some(started);
        let commit = match &conn {
            Some(c) => run_group(c, &mut group, started),
            None => Err("the store could not be opened".to_string()),
        };
        // How long every operation of the group waited for its commit (SQL and fsync): the
        // first thing to look at when answers slow down and the disk is suspected.
        metrics::histogram!("hotline_store_commit_seconds").record(started.elapsed());
        if let Err(e) = &commit {
            tracing::error!(error = %e, ops = group.len(), "Store commit failed; answering 503.");
            metrics::counter!("hotline_store_commit_failures_total").increment(1);
        }
        metrics::histogram!("hotline_store_group_size").record(group.len() as f64);
        for op in group.drain(..) {
            op.finish(commit.clone());
        }
        // After the answers are out: the checkpoint thread's remainder (see `open_with`).
        if finish.swap(false, Ordering::Relaxed) {
            if let Some(c) = &conn {
                checkpoint(c, "writer");
            }
        }
    }
}

/// How often the writer tries to reopen a store it could only open read-only.
const REOPEN_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

/// Opens the writer's connection to the store at `path`, with the schema in place.
///
/// The writer's WAL frames go to the file in one write a commit instead of two a frame
/// (hotline-walbuf: 40 system calls for a group of 20 pages cost five times one). It needs
/// synchronous=FULL, set here: every commit then syncs before it is published.
fn open_writer(path: &Path) -> Result<Connection, StoreError> {
    hotline_walbuf::register().map_err(StoreError::Internal)?;
    let conn = Connection::open_with_flags_and_vfs(
        path,
        rusqlite::OpenFlags::default(),
        hotline_walbuf::NAME,
    )
    .map_err(map_err)?;
    // A page cache of 512 KiB, not SQLite's 2 MB: a commit in which a B-tree balance swapped
    // two pages scans the cache's whole hash table (SQLite parks a page at the lock-byte page
    // number for a moment, and the commit truncates the cache back to the database's size),
    // which was 4 % of the writer's CPU. The pages the writer needs again (interior pages, the
    // ends the inserts append to) fit; the random leaves of the caller index miss in any size,
    // and the OS caches the file. At 8,600 orders/s, ten pairs: p99 lower in eight
    // (BENCHMARKS.md, thirteenth session); a 16 MB cache was slower.
    conn.execute_batch(
        "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA busy_timeout=5000; \
         PRAGMA wal_autocheckpoint=100000; PRAGMA cache_size=-512;",
    )
    .map_err(|e| damaged(path, e))?;
    conn.execute_batch(SCHEMA).map_err(|e| damaged(path, e))?;
    add_columns(&conn).map_err(|e| damaged(path, e))?;
    conn.set_prepared_statement_cache_capacity(64);
    Ok(conn)
}

/// Columns added to a table after its first release, as `(table, column, definition,
/// fill)`: `CREATE TABLE IF NOT EXISTS` leaves an existing table as it is, so a store made
/// before gets them here. Additive only (SQLite's `ADD COLUMN` with a constant default
/// rewrites nothing), so an older gateway still runs on the store: it names its columns and
/// leaves the new ones to their default. `fill` (`""`: none) runs once, in the transaction
/// that adds the column, to set it on the rows already there.
const ADDED_COLUMNS: &[(&str, &str, &str, &str)] = &[
    ("suspensions", "evidence", "TEXT NOT NULL DEFAULT ''", ""),
    (
        "orders",
        "confidential",
        "INTEGER NOT NULL DEFAULT 0",
        FILL_CONFIDENTIAL,
    ),
    (
        "orders",
        "origin",
        "TEXT NOT NULL DEFAULT ''",
        FILL_WEB_ORIGIN,
    ),
    // A page's refusal held for `PAGE_REFUSAL_HOLD` (2026-12-07): NULL, an older row's, is kept.
    ("dedupe", "expires_at", "INTEGER", ""),
];

/// Marks the orders stored before `orders.origin` that came from the web form (their bodies'
/// top-level `"channel":"web"`; text in the matter is escaped and never matches) as of an
/// unknown web origin (`web:`), so that no verified channel's submission is taken for a
/// repeat of one (whose phone was only typed) after the upgrade, and no later web submission
/// either (the address was not kept). A body the retention cleared reads as verified; it is
/// older than the repeat window by then.
const FILL_WEB_ORIGIN: &str = "UPDATE orders SET origin = 'web:' WHERE number IN \
     (SELECT key FROM outbox WHERE kind = 'order' AND body LIKE '%\"channel\":\"web\"%')";

/// Sets `orders.confidential` on the orders stored before the column whose bodies say
/// `"confidential":true`, while the bodies still hold it: once the retention has cleared a
/// body, its flag would be lost. The body is the gateway's own compact JSON, whose members
/// are written without spaces and whose strings escape every quote, so the pattern only
/// meets the top-level member, never the matter's text. One read of the outbox, once, at the
/// first start of the release that adds the column: the start waits for it (not measured on
/// a large store; bodies older than `storage.retain` are cleared, so the outbox holds about
/// that long's worth of them).
const FILL_CONFIDENTIAL: &str = "UPDATE orders SET confidential = 1 WHERE number IN \
     (SELECT key FROM outbox WHERE kind = 'order' AND body LIKE '%\"confidential\":true%')";

/// Adds the [`ADDED_COLUMNS`] a store made before them lacks.
fn add_columns(conn: &Connection) -> rusqlite::Result<()> {
    for (table, column, definition, fill) in ADDED_COLUMNS {
        let has: bool = conn.query_row(
            "SELECT EXISTS (SELECT 1 FROM pragma_table_info(?1) WHERE name = ?2)",
            params![table, column],
            |r| r.get(0),
        )?;
        if !has {
            // One transaction: a crash between the two would leave the column there and the
            // old rows unfilled for good (the column is never added again).
            conn.execute_batch(&format!(
                "BEGIN IMMEDIATE; ALTER TABLE {table} ADD COLUMN {column} {definition}; \
                 {fill}; COMMIT;"
            ))?;
        }
    }
    Ok(())
}

/// Opens one of the store's read-only connections.
fn open_reader(path: &Path) -> Result<Connection, StoreError> {
    let r = Connection::open_with_flags(
        path,
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(map_err)?;
    // Point reads (a retry's dedupe record, a caller's recent orders) land on a random
    // leaf whatever the cache holds; the interior pages fit in far less than SQLite's
    // default 2 MB, times four connections, and the OS caches the file anyway.
    r.execute_batch("PRAGMA busy_timeout=5000; PRAGMA cache_size=-512;")
        .map_err(map_err)?;
    Ok(r)
}

/// Whether SQLite opened the store read-only: the file or its file system was read-only at
/// the time, and a connection opened so never writes.
fn read_only(conn: &Connection) -> bool {
    conn.is_readonly(rusqlite::DatabaseName::Main)
        .unwrap_or(false)
}

/// Locks a connection shared between threads. A poisoned lock only means a thread panicked
/// holding it; the connection itself is whole.
fn lock(m: &std::sync::Mutex<Connection>) -> std::sync::MutexGuard<'_, Connection> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The store's connections besides the writer's, for the writer to open again.
struct Others {
    path: std::path::PathBuf,
    readers: Arc<Vec<std::sync::Mutex<Connection>>>,
    checkpointer: Arc<std::sync::Mutex<Connection>>,
}

impl Others {
    /// Opens the writer's connection and all the others again, once the store's file can be
    /// opened for writing. All at once: SQLite shares a file's locks and its WAL index among
    /// every connection to it in the process, and one that opened the WAL index while it was
    /// read-only keeps it so for all of them until the last one closes. So every connection
    /// closes first (the readers and the checkpointer wait on their locks meanwhile), then
    /// every one opens again. `writer` is `None` only if its connection cannot be opened at
    /// all; its groups then answer 503.
    fn reopen(&self, writer: &mut Option<Connection>) {
        if std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&self.path)
            .is_err()
        {
            return;
        }
        let mut readers: Vec<_> = self.readers.iter().map(lock).collect();
        let mut checkpointer = lock(&self.checkpointer);
        // Close each by putting a stand-in in its place: an in-memory database, which holds no
        // file open. Nothing can use one while the locks are held; should a real connection
        // not open again below, its reads fail ("no such table") rather than wait forever. A
        // stand-in that cannot be made leaves the old connection open: the writer's new one
        // may then still be read-only, and the next try closes it.
        let slots = readers
            .iter_mut()
            .map(|g| &mut **g)
            .chain(std::iter::once(&mut *checkpointer));
        for slot in slots {
            if let Ok(stand_in) = Connection::open_in_memory() {
                *slot = stand_in;
            }
        }
        *writer = None;
        match open_writer(&self.path) {
            Ok(w) => {
                if !read_only(&w) {
                    tracing::info!("The store takes writes again.");
                }
                *writer = Some(w);
            }
            Err(e) => {
                tracing::warn!(error = %e, "Cannot open the store again; intake answers 503.")
            }
        }
        forget_numbers();
        for slot in readers.iter_mut() {
            match open_reader(&self.path) {
                Ok(r) => **slot = r,
                Err(e) => tracing::warn!(error = %e, "Cannot open a store reader again."),
            }
        }
        match Connection::open(&self.path) {
            Ok(c) => *checkpointer = c,
            Err(e) => tracing::warn!(error = %e, "Cannot open the checkpoint connection again."),
        }
    }
}

/// Moves what is queued into `group`, up to [`MAX_GROUP`], without waiting.
fn take_queued(rx: &mpsc::Receiver<Box<dyn Op>>, group: &mut Vec<Box<dyn Op>>) {
    while group.len() < MAX_GROUP {
        match rx.try_recv() {
            Ok(op) => group.push(op),
            Err(_) => break,
        }
    }
}

/// A group with at least this many operations queued starts at once, without the pacing of
/// `storage.commit_interval`.
const PACED_BELOW: usize = 8;

/// How long the writer waits before it starts a group of `queued` operations, `since_last`
/// after the previous group started (`None`: this is the first).
fn pacing(
    queued: usize,
    since_last: Option<std::time::Duration>,
    interval: std::time::Duration,
) -> Option<std::time::Duration> {
    if queued >= PACED_BELOW {
        return None;
    }
    since_last
        .and_then(|t| interval.checked_sub(t))
        .filter(|w| !w.is_zero())
}

/// Runs a PASSIVE checkpoint and returns how many WAL frames have been copied back so far
/// (0 when the WAL is empty or the checkpoint failed; a failure is logged and the next one
/// retries). `by` labels its duration in `hotline_store_checkpoint_seconds`: "thread" for the
/// checkpoint thread's first pass, "catch-up" for its shorter passes after it, "writer" for the
/// remainder the writer copies between two groups (which the next group waits for); the
/// thread's own syncs of the database file are "sync".
fn checkpoint(conn: &Connection, by: &'static str) -> i64 {
    let started = std::time::Instant::now();
    let copied = conn
        .query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| r.get(2))
        .unwrap_or_else(|e| {
            tracing::warn!(error = %e, "WAL checkpoint failed; will retry.");
            0
        });
    metrics::histogram!("hotline_store_checkpoint_seconds", "by" => by).record(started.elapsed());
    copied
}

/// Runs a group in one transaction. The fast way has no savepoints: they cost a copy of every
/// page an operation touches into a sub-journal, plus two statements, per operation (~5 % of
/// the gateway's CPU under load). Operations almost never fail; when one does, the whole group
/// is rolled back and run again with a savepoint per operation, so the failing one is undone
/// alone and the others still commit. An error that takes SQLite's whole transaction with it
/// (a full disk, an I/O error) fails the group instead, in either run: see
/// [`transaction_alive`] (a flag read after each operation, no SQL).
/// `started` is when the writer began the group (its one clock reading, also used for pacing and
/// `hotline_store_commit_seconds`).
fn run_group(
    conn: &Connection,
    group: &mut [Box<dyn Op>],
    started: std::time::Instant,
) -> Result<(), String> {
    // BEGIN and COMMIT through the statement cache: `execute_batch` parsed and prepared each
    // again for every group, 3.5 % of the writer's instructions (bench/callgrind).
    exec(conn, "BEGIN IMMEDIATE", []).map_err(group_error)?;
    let mut clean = true;
    for op in group.iter_mut() {
        let ok = op.run(conn, false);
        transaction_alive(conn)?;
        if !ok {
            clean = false;
            break;
        }
    }
    if !clean {
        metrics::counter!("hotline_store_group_reruns_total").increment(1);
        // The numbers the first attempt took are rolled back with it: take them again.
        forget_numbers();
        conn.execute_batch("ROLLBACK; BEGIN IMMEDIATE")
            .map_err(|e| {
                let _ = conn.execute_batch("ROLLBACK");
                group_error(e)
            })?;
        for op in group.iter_mut() {
            op.run(conn, true);
            transaction_alive(conn)?;
        }
    }
    let statements = started.elapsed();
    let commit = save_numbers(conn)
        .and_then(|()| exec(conn, "COMMIT", []).map(drop))
        .map_err(|e| {
            let _ = conn.execute_batch("ROLLBACK");
            forget_numbers();
            group_error(e)
        });
    // A rare commit of 100-250 ms holds up every request at once (BENCHMARKS.md, "Not
    // explained"); say where its time went: the operations' statements, or the COMMIT (WAL
    // write and fsync).
    let total = started.elapsed();
    if total >= SLOW_COMMIT {
        tracing::warn!(
            ops = group.len(),
            total_ms = total.as_millis() as u64,
            statements_ms = statements.as_millis() as u64,
            commit_ms = (total - statements).as_millis() as u64,
            rerun = !clean,
            "Slow store commit: every request in the group waited for it."
        );
    }
    commit
}

/// Fails the group when SQLite has rolled back its whole transaction. A full disk or an I/O
/// error (`SQLITE_FULL`, `SQLITE_IOERR`) in a statement without a statement journal (a
/// single-row insert) does that, not just the statement, and the connection is back in
/// autocommit with every savepoint gone. Running on would commit each later operation alone:
/// its `SAVEPOINT op` would begin a transaction and its `RELEASE op` commit it, while the
/// group's COMMIT then failed and answered it 503 (a web form sent again made a second order).
/// So nothing more runs and every operation of the group is answered 503; the numbers taken
/// are taken again by the next group.
fn transaction_alive(conn: &Connection) -> Result<(), String> {
    if conn.is_autocommit() {
        forget_numbers();
        return Err("SQLite rolled back the group's transaction (full disk or I/O error)".into());
    }
    Ok(())
}

/// The order sequences as the writer thread holds them: the last number handed out per day,
/// committed or in the group being built. An upsert of `order_seq` for every intake cost the
/// writer as much as half of the order's two inserts (BENCHMARKS.md, twelfth session); now a
/// group reads a day's row once and writes it once, before it commits.
#[derive(Default)]
struct Sequences {
    /// The last number handed out, per day.
    last: HashMap<String, i64>,
    /// The days this group has taken numbers of, to write before it commits.
    moved: Vec<String>,
}

thread_local! {
    /// The writer thread's [`Sequences`]; only operations running on it touch `order_seq`.
    static SEQUENCES: std::cell::RefCell<Sequences> = std::cell::RefCell::default();
    /// Per day, the clock's floor ([`super::order_day`]) when this writer first numbered it:
    /// each store has a writer thread of its own, so this is "since the store opened". Not
    /// forgotten with [`SEQUENCES`] after a rollback: the day's row is read again then, and
    /// flooring it with the clock of that later moment would make the numbers jump for nothing.
    static FLOORS: std::cell::RefCell<HashMap<String, i64>> = std::cell::RefCell::default();
}

/// Takes `n` numbers of `day`'s sequence for the group being built and returns the first.
/// A number taken by an operation that is then rolled back alone (in its savepoint) is not
/// handed out again: a gap, never a repeat. The first time this writer numbers `day`, the
/// sequence continues from at least `floor`, the clock's (see [`super::order_day`]): the file
/// may be new, or a backup, and not know what was handed out today before it.
fn take_numbers(conn: &Connection, day: &str, n: i64, floor: i64) -> Result<i64, StoreError> {
    SEQUENCES.with(|s| {
        let mut s = s.borrow_mut();
        if !s.last.contains_key(day) {
            let saved: i64 = conn
                .prepare_cached("SELECT next FROM order_seq WHERE day = ?1")
                .and_then(|mut st| st.query_row([day], |r| r.get(0)).optional())
                .map_err(sql)?
                .unwrap_or(0);
            let floor = FLOORS.with(|f| *f.borrow_mut().entry(day.to_string()).or_insert(floor));
            s.last.insert(day.to_string(), saved.max(floor));
        }
        if !s.moved.iter().any(|d| d == day) {
            s.moved.push(day.to_string());
        }
        // Present: inserted above if it was not. No allocation once the day is known.
        let last = s.last.get_mut(day).map_or(0, |last| {
            *last += n;
            *last - n
        });
        Ok(last + 1)
    })
}

/// Writes the sequences the group moved, in its transaction.
fn save_numbers(conn: &Connection) -> rusqlite::Result<()> {
    SEQUENCES.with(|s| {
        let mut s = s.borrow_mut();
        let Sequences { last, moved } = &mut *s;
        for day in moved.drain(..) {
            let next = last.get(&day).copied().unwrap_or(0);
            exec(
                conn,
                "INSERT INTO order_seq(day, next) VALUES (?1, ?2) \
                 ON CONFLICT(day) DO UPDATE SET next = ?2",
                params![day, next],
            )?;
        }
        Ok(())
    })
}

/// Forgets what the sequences hold, after a rollback: the next group reads them again.
fn forget_numbers() {
    SEQUENCES.with(|s| *s.borrow_mut() = Sequences::default());
}

/// A group commit at least this long is logged with where its time went.
const SLOW_COMMIT: std::time::Duration = std::time::Duration::from_millis(100);

/// An identity's active suspension at a time (the longest), for [`Store::record_suspension`];
/// `?3` true (the rule on the web form) takes web-only ones too, false only those that hold
/// everywhere.
const ACTIVE_SUSPENSION_SQLITE: &str =
    "SELECT identity, start, until, reason, decided_by, lifted_at, evidence FROM suspensions \
     WHERE identity = ?1 AND until > ?2 AND lifted_at IS NULL \
     AND (?3 OR decided_by <> 'rule-web') ORDER BY until DESC LIMIT 1";

fn suspension_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Suspension> {
    Ok(Suspension {
        identity: r.get(0)?,
        start: r.get(1)?,
        until: r.get(2)?,
        reason: r.get(3)?,
        decided_by: r.get(4)?,
        lifted_at: r.get(5)?,
        evidence: r.get(6)?,
    })
}

/// `execute` through the statement cache: the writer runs the same few statements thousands of
/// times a second, and parsing them each time showed up in profiles.
fn exec<P: rusqlite::Params>(conn: &Connection, sql: &str, p: P) -> rusqlite::Result<usize> {
    conn.prepare_cached(sql)?.execute(p)
}

fn sql(e: rusqlite::Error) -> StoreError {
    map_err(e)
}

/// Appends the rows [`super::event_rows`] builds for a state change, in the current transaction.
fn emit(
    conn: &Connection,
    sinks: Sinks,
    topic: &str,
    payload: serde_json::Value,
    now: i64,
    mail_to: Option<&str>,
) -> Result<(), StoreError> {
    for (sink, payload) in event_rows(sinks, topic, payload, now, mail_to) {
        exec(
            conn,
            "INSERT INTO events(sink, topic, payload) VALUES (?1, ?2, ?3)",
            params![sink, topic, payload],
        )
        .map_err(sql)?;
    }
    Ok(())
}

/// Records one reminder for `identity`, with its event.
fn warning_in(
    conn: &Connection,
    events: Sinks,
    identity: &str,
    w: &Warning,
) -> Result<(), StoreError> {
    emit(
        conn,
        events,
        "callers/warned",
        w.event(identity),
        w.at,
        None,
    )?;
    exec(
        conn,
        "INSERT INTO warnings(identity, at, channel, evidence) VALUES (?1, ?2, ?3, ?4)",
        params![identity, w.at, w.channel, w.evidence],
    )
    .map_err(sql)?;
    Ok(())
}

/// The answer under `key` as it stands at `now`: a page's refusal whose hold has passed
/// (`expires_at` at or before `now`, see [`super::Claim::keep`]) is none. One point read of
/// the key's index, as before the column.
fn recall_in(conn: &Connection, key: &str, now: i64) -> Result<Option<Outcome>, StoreError> {
    let text: Option<String> = conn
        .prepare_cached(RECALL)
        .and_then(|mut st| st.query_row(params![key, now], |r| r.get(0)).optional())
        .map_err(sql)?;
    match text {
        None => Ok(None),
        Some(t) => serde_json::from_str(&t)
            .map(Some)
            .map_err(|e| StoreError::Internal(format!("bad dedupe record: {e}"))),
    }
}

/// [`recall_in`]'s statement: $1 the key, $2 now.
const RECALL: &str =
    "SELECT outcome FROM dedupe WHERE key = ?1 AND (expires_at IS NULL OR expires_at > ?2)";

/// Writes an answer under a key: $1 key, $2 answer, $3 now, $4 when its hold ends (NULL: kept).
/// A row already there stands, unless it is a page's refusal whose hold has passed: that counts
/// as absent and is taken over, in the same statement, as PostgreSQL's `COMMIT_INTAKE` does.
/// The row taken over is given the next rowid, as a new row would be: the retention deletes
/// retry records in rowid order, oldest first ([`SqliteStore::prune_dedupe`]), and a row
/// keeping its old rowid with a new `created_at` would sit among the oldest while younger.
const REMEMBER: &str = "INSERT INTO dedupe(key, outcome, created_at, expires_at) \
     VALUES (?1, ?2, ?3, ?4) ON CONFLICT(key) DO UPDATE SET outcome = excluded.outcome, \
     created_at = excluded.created_at, expires_at = excluded.expires_at, \
     rowid = (SELECT MAX(rowid) FROM dedupe) + 1 \
     WHERE dedupe.expires_at IS NOT NULL AND dedupe.expires_at <= excluded.created_at";

/// Writes `o` under `key` at `now` (see [`REMEMBER`]), held until `expires_at` if given (a
/// page's refusal), else kept. Whether it was written: `false` when an answer stands there.
fn remember_in(
    conn: &Connection,
    key: &str,
    o: &Outcome,
    now: i64,
    expires_at: Option<i64>,
) -> Result<bool, StoreError> {
    let text =
        serde_json::to_string(o).map_err(|e| StoreError::Internal(format!("encode: {e}")))?;
    let n = exec(conn, REMEMBER, params![key, text, now, expires_at]).map_err(sql)?;
    Ok(n > 0)
}

#[async_trait]
impl Store for SqliteStore {
    async fn commit_intake(&self, intake: Intake) -> Result<IntakeResult, StoreError> {
        let depth = self.depth.clone();
        let events = self.events;
        let recent = self.recent.clone();
        let n = intake.orders.len() as u64;
        // The bodies arrive as JSON text, written on the request's thread: the writer thread
        // serialises every commit, so work done there is work no other request can overlap
        // with. What it does per order is what needs the order number.
        let Intake {
            day,
            node_id,
            seq_floor,
            dedupe_key,
            orders,
            now,
        } = intake;
        let r = self
            .call(move |conn| {
                // A page's refusal whose hold has passed is no answer: the page is heard
                // afresh, and its answer takes the row over below.
                if let Some(key) = &dedupe_key {
                    if let Some(o) = recall_in(conn, key, now)? {
                        return Ok(IntakeResult::Replayed(o));
                    }
                }
                let first = take_numbers(conn, &day, orders.len() as i64, seq_floor)?;
                let mut refs = Vec::with_capacity(orders.len());
                for (i, o) in orders.iter().enumerate() {
                    let number = order_number(&day, node_id, first + i as i64);
                    // Before the commit: whoever can read this order finds it noted.
                    recent.note(&o.identity, now);
                    exec(
                        conn,
                        "INSERT INTO orders(number, identity, category, content, created_at, \
                         confidential, origin) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                        params![
                            number,
                            o.identity,
                            o.category,
                            o.content,
                            now,
                            o.confidential,
                            o.origin
                        ],
                    )
                    .map_err(sql)?;
                    exec(
                        conn,
                        "INSERT INTO outbox(kind, key, path, body, next_at_ms, created_at) \
                         VALUES ('order', ?1, '/work-orders', ?2, 0, ?3)",
                        params![number, o.body_with(&number), now],
                    )
                    .map_err(sql)?;
                    if events.any() {
                        emit(
                            conn,
                            events,
                            "orders/accepted",
                            o.accepted_event(&number),
                            now,
                            o.email(),
                        )?;
                        if let Some(ev) = o.suspected_event(&number) {
                            emit(conn, events, "emergency/suspected", ev, now, None)?;
                        }
                    }
                    refs.push(o.order_ref(&number));
                }
                if let Some(key) = &dedupe_key {
                    let outcome = Outcome::Accepted {
                        orders: refs.clone(),
                    };
                    remember_in(conn, key, &outcome, now, None)?;
                }
                Ok(IntakeResult::Stored(refs))
            })
            .await?;
        if matches!(r, IntakeResult::Stored(_)) {
            depth.fetch_add(n, Ordering::Relaxed);
        }
        Ok(r)
    }

    async fn remember(
        &self,
        key: String,
        outcome: Outcome,
        now: i64,
    ) -> Result<Option<Outcome>, StoreError> {
        self.call(move |conn| {
            // Not written: an answer was there first (a page's refusal still held, or any kept
            // answer), and stands.
            if !remember_in(conn, &key, &outcome, now, None)? {
                return recall_in(conn, &key, now);
            }
            Ok(None)
        })
        .await
    }

    async fn recall(&self, key: String, now: i64) -> Result<Option<Outcome>, StoreError> {
        // A page's refusal is held for `PAGE_REFUSAL_HOLD` (see `warn` below): read at `now`,
        // one whose hold has passed is no answer.
        self.read_quick(move |conn| recall_in(conn, &key, now))
            .await
    }

    async fn record_redirect(&self, r: RedirectRecord) -> Result<(), StoreError> {
        let events = self.events;
        self.call(move |conn| {
            emit(conn, events, "emergency/redirected", r.event(), r.at, None)?;
            exec(
                conn,
                "INSERT INTO redirects(identity, channel, number, reason, rule, text, at) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![r.identity, r.channel, r.number, r.reason, r.rule, r.text, r.at],
            )
            .map_err(sql)?;
            Ok(())
        })
        .await
    }

    async fn enqueue_contact(
        &self,
        number: String,
        key: String,
        body: serde_json::Value,
        alert: Option<serde_json::Value>,
        now: i64,
    ) -> Result<(), StoreError> {
        let depth = self.depth.clone();
        let events = self.events;
        let added = self
            .call(move |conn| {
                let text = serde_json::to_string(&body)
                    .map_err(|e| StoreError::Internal(format!("encode: {e}")))?;
                let added = exec(
                    conn,
                    "INSERT OR IGNORE INTO outbox(kind, key, path, body, next_at_ms, created_at) \
                     VALUES ('contact', ?1, ?2, ?3, 0, ?4)",
                    params![key, format!("/work-orders/{number}/contacts"), text, now],
                )
                .map_err(sql)?;
                // Once, with the contact: a retry that queues nothing alerts nobody again.
                if let (1, Some(alert)) = (added, &alert) {
                    emit(
                        conn,
                        events,
                        "emergency/suspected",
                        alert.clone(),
                        now,
                        None,
                    )?;
                }
                Ok(added)
            })
            .await?;
        depth.fetch_add(added as u64, Ordering::Relaxed);
        Ok(())
    }

    async fn due(&self, now_ms: i64, limit: usize) -> Result<Vec<OutboxEntry>, StoreError> {
        self.read(move |conn| {
            // A contact waits while its order's message is pending or dead (see `Store::due`). Its
            // order's key is the number in its path, `/work-orders/{number}/contacts` (13
            // characters before the number, 9 after), found through the key's unique index:
            // one index look-up per contact row the scan meets, none for an order's row.
            let mut stmt = conn
                .prepare_cached(
                    "SELECT id, kind, key, path, body, attempts FROM outbox AS m \
                     WHERE state = 0 AND next_at_ms <= ?1 AND (kind <> 'contact' OR \
                     IFNULL((SELECT o.state FROM outbox AS o \
                      WHERE o.key = substr(m.path, 14, length(m.path) - 22)), 1) NOT IN (0, 2)) \
                     ORDER BY next_at_ms, id LIMIT ?2",
                )
                .map_err(sql)?;
            let rows = stmt
                .query_map(params![now_ms, limit as i64], |r| {
                    Ok(OutboxEntry {
                        id: r.get(0)?,
                        kind: r.get(1)?,
                        key: r.get(2)?,
                        path: r.get(3)?,
                        body: r.get(4)?,
                        attempts: r.get::<_, i64>(5)?.max(0) as u32,
                    })
                })
                .map_err(sql)?;
            rows.collect::<Result<Vec<_>, _>>().map_err(sql)
        })
        .await
    }

    async fn reschedule_future(&self, now_ms: i64, horizon_ms: i64) -> Result<u64, StoreError> {
        // A range of the `outbox_due` index (state, next_at_ms): nothing to read when no clock
        // was wrong.
        let changed = self
            .call(move |conn| {
                exec(
                    conn,
                    "UPDATE outbox SET next_at_ms = ?1 WHERE state = 0 AND next_at_ms > ?2",
                    params![now_ms, horizon_ms],
                )
                .map_err(sql)
            })
            .await?;
        Ok(changed as u64)
    }

    fn record_chunk(&self) -> usize {
        // Sixteen updates add ~0.2 ms to the commit group they join; a round's 100-250 added
        // 1-3 ms (BENCHMARKS.md, ninth session).
        16
    }

    async fn record(&self, results: Vec<(i64, Delivery)>, now: i64) -> Result<(), StoreError> {
        let done = results
            .iter()
            .filter(|(_, d)| !matches!(d, Delivery::Retry { .. }))
            .count() as u64;
        let events = self.events;
        self.call(move |conn| {
            for (id, d) in &results {
                if events.any() && !matches!(d, Delivery::Retry { .. }) {
                    let row: Option<(String, String, String)> = conn
                        .query_row(
                            "SELECT kind, key, path FROM outbox WHERE id = ?1 AND state = 0",
                            [id],
                            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
                        )
                        .optional()
                        .map_err(sql)?;
                    let error = match d {
                        Delivery::Dead { error } => Some(error.as_str()),
                        _ => None,
                    };
                    let event = row.and_then(|(kind, key, path)| {
                        super::outbox_event(
                            &kind,
                            &key,
                            &path,
                            error.is_some(),
                            error.unwrap_or(""),
                        )
                    });
                    if let Some((topic, payload)) = event {
                        emit(conn, events, topic, payload, now, None)?;
                    }
                }
                match d {
                    Delivery::Delivered => exec(
                        conn,
                        "UPDATE outbox SET state = 1, attempts = attempts + 1, \
                         delivered_at = ?2, last_error = '' WHERE id = ?1 AND state = 0",
                        params![id, now],
                    ),
                    Delivery::Retry { next_at_ms, error } => exec(
                        conn,
                        "UPDATE outbox SET attempts = attempts + 1, next_at_ms = ?2, \
                         last_error = ?3 WHERE id = ?1 AND state = 0",
                        params![id, next_at_ms, error],
                    ),
                    Delivery::Dead { error } => exec(
                        conn,
                        "UPDATE outbox SET state = 2, attempts = attempts + 1, \
                         last_error = ?2 WHERE id = ?1 AND state = 0",
                        params![id, error],
                    ),
                }
                .map_err(sql)?;
            }
            Ok(())
        })
        .await?;
        let _ = self
            .depth
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |d| {
                Some(d.saturating_sub(done))
            });
        Ok(())
    }

    async fn prune(&self, now: i64, before: i64, limit: usize) -> Result<Pruned, StoreError> {
        let (bodies, more_bodies, future) = self.prune_bodies(now, before, limit).await?;
        let (dedupe, more_dedupe) = self.prune_dedupe(now, before, limit).await?;
        Ok(Pruned {
            bodies,
            dedupe,
            more: more_bodies || more_dedupe,
            future,
        })
    }

    async fn outbox_stats(&self, now: i64) -> Result<OutboxStats, StoreError> {
        self.read(move |conn| {
            let (depth, oldest): (i64, Option<i64>) = conn
                .query_row(
                    "SELECT COUNT(*), MIN(created_at) FROM outbox WHERE state = 0",
                    [],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .map_err(sql)?;
            let dead: i64 = conn
                .query_row("SELECT COUNT(*) FROM outbox WHERE state = 2", [], |r| {
                    r.get(0)
                })
                .map_err(sql)?;
            Ok(OutboxStats {
                depth: depth.max(0) as u64,
                oldest_age_s: oldest.map(|o| now - o),
                dead: dead.max(0) as u64,
            })
        })
        .await
    }

    async fn retry_dead(&self, key: String, now_ms: i64) -> Result<bool, StoreError> {
        let changed = self
            .call(move |conn| {
                // The order's dead contacts with it (see `Store::retry_dead`): its contact keys
                // are `{number}-c…`, a range of the key's unique index.
                exec(
                    conn,
                    "UPDATE outbox SET state = 0, next_at_ms = ?2, attempts = 0 \
                     WHERE state = 2 AND (key = ?1 OR (key > ?1 || '-' AND key < ?1 || '.' \
                     AND kind = 'contact' AND path = '/work-orders/' || ?1 || '/contacts'))",
                    params![key, now_ms],
                )
                .map_err(sql)
            })
            .await?;
        if changed > 0 {
            self.depth.fetch_add(changed as u64, Ordering::Relaxed);
        }
        Ok(changed > 0)
    }

    async fn dead_letters(
        &self,
        limit: usize,
        before: Option<String>,
    ) -> Result<Vec<DeadLetter>, StoreError> {
        self.read(move |conn| {
            let mut stmt = conn
                .prepare_cached(
                    "SELECT key, kind, attempts, last_error, created_at FROM outbox \
                     WHERE state = 2 AND (?2 IS NULL OR id < \
                       COALESCE((SELECT id FROM outbox WHERE key = ?2), 0)) \
                     ORDER BY id DESC LIMIT ?1",
                )
                .map_err(sql)?;
            let page = stmt
                .query_map(params![limit as i64, before], |r| {
                    Ok(DeadLetter {
                        key: r.get(0)?,
                        kind: r.get(1)?,
                        attempts: r.get::<_, i64>(2)?.max(0) as u32,
                        last_error: r.get(3)?,
                        created_at: r.get(4)?,
                    })
                })
                .map_err(sql)?
                .collect::<Result<Vec<_>, _>>()
                .map_err(sql);
            page
        })
        .await
    }

    async fn retry_dead_matching(
        &self,
        filter: DeadFilter,
        now_ms: i64,
    ) -> Result<u64, StoreError> {
        let changed = self
            .call(move |conn| {
                // The matching rows, and the dead contacts of the matching orders with them
                // (see `Store::retry_dead`). SQLite decides which rows an UPDATE changes before
                // changing any, so the sub-select sees the orders still dead.
                exec(
                    conn,
                    "UPDATE outbox AS m SET state = 0, next_at_ms = ?1, attempts = 0 \
                     WHERE state = 2 AND ((?2 IS NULL OR last_error LIKE ?2) \
                     AND (?3 IS NULL OR kind = ?3) AND (?4 IS NULL OR created_at >= ?4) \
                     AND (?5 IS NULL OR created_at < ?5) OR kind = 'contact' AND EXISTS ( \
                       SELECT 1 FROM outbox AS o \
                       WHERE o.key = substr(m.path, 14, length(m.path) - 22) \
                       AND o.state = 2 AND o.kind = 'order' \
                       AND (?2 IS NULL OR o.last_error LIKE ?2) \
                       AND (?3 IS NULL OR ?3 = 'order') AND (?4 IS NULL OR o.created_at >= ?4) \
                       AND (?5 IS NULL OR o.created_at < ?5)))",
                    params![
                        now_ms,
                        filter.error_pattern(),
                        filter.kind,
                        filter.since,
                        filter.until
                    ],
                )
                .map_err(sql)
            })
            .await?;
        self.depth.fetch_add(changed as u64, Ordering::Relaxed);
        Ok(changed as u64)
    }

    async fn order_state(&self, number: String) -> Result<Option<OrderState>, StoreError> {
        self.read(move |conn| {
            conn.query_row(
                "SELECT o.number, o.category, o.created_at, x.state, x.delivered_at, x.body, \
                 o.confidential FROM orders o JOIN outbox x ON x.key = o.number \
                 WHERE o.number = ?1",
                [&number],
                |r| {
                    let state: i64 = r.get(3)?;
                    Ok(OrderState {
                        number: r.get(0)?,
                        category: r.get(1)?,
                        created_at: r.get(2)?,
                        delivery: match state {
                            0 => "queued",
                            1 => "delivered",
                            _ => "held",
                        }
                        .into(),
                        delivered_at: r.get(4)?,
                        sent: r.get(5)?,
                        confidential: r.get(6)?,
                    })
                },
            )
            .optional()
            .map_err(sql)
        })
        .await
    }

    async fn recent_orders_of(
        &self,
        identity: String,
        origin: String,
        since: i64,
    ) -> Result<Vec<OpenOrder>, StoreError> {
        if self.recent.may_have_since(&identity, since) == Some(false) {
            metrics::counter!("hotline_recent_reads_skipped_total").increment(1);
            return Ok(Vec::new());
        }
        self.read_quick(move |conn| {
            let mut stmt = conn
                .prepare_cached(
                    "SELECT number, category, content FROM orders \
                     WHERE identity = ?1 AND created_at >= ?2 AND origin = ?3 \
                     AND NOT EXISTS (SELECT 1 FROM outbox WHERE key = orders.number AND state = 2) \
                     ORDER BY created_at DESC LIMIT 50",
                )
                .map_err(sql)?;
            let rows = stmt
                .query_map(params![identity, since, origin], |r| {
                    Ok(OpenOrder {
                        number: r.get(0)?,
                        category: r.get(1)?,
                        content: r.get(2)?,
                    })
                })
                .map_err(sql)?;
            rows.collect::<Result<Vec<_>, _>>().map_err(sql)
        })
        .await
    }

    async fn record_warning(&self, identity: String, w: Warning) -> Result<(), StoreError> {
        let events = self.events;
        self.call(move |conn| warning_in(conn, events, &identity, &w))
            .await
    }

    /// The trait's default, with one change: a page's refusal is held under its key for
    /// [`PAGE_REFUSAL_HOLD`], written with the reminders in one operation of the writer, as on
    /// PostgreSQL. The next copy of the page (a double-click, a browser's resend), which the
    /// pipeline's key lock holds until this is answered, finds it and is given the same
    /// refusal without being counted; after the hold the page is heard afresh. Until
    /// 2026-12-07 SQLite held no page refusal, and such a copy was refused and counted again:
    /// two reminders for one page, a suspension one click sooner.
    ///
    /// The count is read first, outside the writer: one node's escalation lock serialises the
    /// steps of an identity, so nothing counts in between (see the default). With the reminders
    /// used up the suspension is left to the caller ([`Warned::Exhausted`]), which refuses the
    /// page's copies by the suspension itself.
    async fn warn(&self, req: WarnRequest) -> Result<Warned, StoreError> {
        let WarnRequest {
            identity,
            warning: w,
            weight,
            limit,
            since,
            claim,
            next: _,
        } = req;
        let scope = Scope::of_channel(&w.channel);
        let before = self.warnings_since(identity.clone(), since, scope).await?;
        if before >= limit {
            return Ok(Warned::Exhausted);
        }
        let weight = weight.max(1);
        let events = self.events;
        self.call(move |conn| {
            // An answer under the key (a held refusal of the same page, its order) stands.
            if let Some(c) = &claim {
                if let Some(o) = recall_in(conn, &c.key, w.at)? {
                    return Ok(Warned::Answered(o));
                }
            }
            for _ in 0..weight {
                warning_in(conn, events, &identity, &w)?;
            }
            // The refusal the pipeline gives for `Recorded` (see `Ladder::escalate`). A push's
            // is remembered by the pipeline after this, and kept.
            if let Some(c) = claim.as_ref().filter(|c| !c.keep) {
                let refusal = Outcome::Throttled {
                    retry_after: c.retry_after,
                    warnings_left: limit.saturating_sub(before + weight),
                };
                let until = w.at.saturating_add(PAGE_REFUSAL_HOLD);
                remember_in(conn, &c.key, &refusal, w.at, Some(until))?;
            }
            Ok(Warned::Recorded { before })
        })
        .await
    }

    async fn warnings_since(
        &self,
        identity: String,
        since: i64,
        scope: Scope,
    ) -> Result<u32, StoreError> {
        let web = scope == Scope::Web;
        self.read(move |conn| {
            let n: i64 = conn
                .query_row(
                    "SELECT COUNT(*) FROM warnings WHERE identity = ?1 AND at >= ?2 AND at > \
                     COALESCE((SELECT reset_at FROM caller_resets WHERE identity = ?1), -1) \
                     AND (?3 OR channel <> 'web')",
                    params![identity, since, web],
                    |r| r.get(0),
                )
                .map_err(sql)?;
            Ok(n.max(0) as u32)
        })
        .await
    }

    async fn record_suspension(&self, s: Suspension) -> Result<Option<Suspension>, StoreError> {
        let events = self.events;
        // One writer thread: the look-up and the insert cannot interleave with another's.
        self.call(move |conn| {
            if s.decided_by == "rule" || s.decided_by == RULE_WEB {
                let web = s.scope() == Scope::Web;
                let active = conn
                    .prepare_cached(ACTIVE_SUSPENSION_SQLITE)
                    .and_then(|mut q| {
                        q.query_row(params![s.identity, s.start, web], suspension_row)
                    })
                    .optional()
                    .map_err(sql)?;
                if active.is_some() {
                    return Ok(active);
                }
            } else {
                // An operator's decision replaces what is active (a 30-day suspension cut to
                // an hour): the earlier one ends now, so a restart or another node does not
                // bring it back.
                exec(
                    conn,
                    "UPDATE suspensions SET until = ?2 \
                     WHERE identity = ?1 AND lifted_at IS NULL AND until > ?2",
                    params![s.identity, s.start],
                )
                .map_err(sql)?;
            }
            emit(conn, events, "callers/suspended", s.event(), s.start, None)?;
            exec(
                conn,
                "INSERT INTO suspensions(identity, start, until, reason, decided_by, evidence) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![
                    s.identity,
                    s.start,
                    s.until,
                    s.reason,
                    s.decided_by,
                    s.evidence
                ],
            )
            .map_err(sql)?;
            Ok(None)
        })
        .await
    }

    async fn suspension_count(&self, identity: String, scope: Scope) -> Result<u32, StoreError> {
        let web = scope == Scope::Web;
        self.read(move |conn| {
            let n: i64 = conn
                .query_row(
                    "SELECT COUNT(*) FROM suspensions WHERE identity = ?1 \
                     AND (decided_by = 'rule' OR (?2 AND decided_by = 'rule-web'))",
                    params![identity, web],
                    |r| r.get(0),
                )
                .map_err(sql)?;
            Ok(n.max(0) as u32)
        })
        .await
    }

    async fn lift_suspension(&self, identity: String, now: i64) -> Result<bool, StoreError> {
        self.call(move |conn| {
            let n = conn
                .execute(
                    "UPDATE suspensions SET lifted_at = ?2, until = MIN(until, ?2) \
                     WHERE identity = ?1 AND lifted_at IS NULL AND until > ?2",
                    params![identity, now],
                )
                .map_err(sql)?;
            exec(
                conn,
                "INSERT INTO caller_resets(identity, reset_at) VALUES (?1, ?2) \
                 ON CONFLICT(identity) DO UPDATE SET reset_at = ?2",
                params![identity, now],
            )
            .map_err(sql)?;
            Ok(n > 0)
        })
        .await
    }

    async fn active_suspensions(&self, now: i64) -> Result<Vec<Suspension>, StoreError> {
        self.read(move |conn| {
            let mut stmt = conn
                .prepare_cached(
                    "SELECT identity, start, until, reason, decided_by, lifted_at, evidence FROM suspensions \
                     WHERE until > ?1 AND lifted_at IS NULL",
                )
                .map_err(sql)?;
            let rows = stmt.query_map([now], suspension_row).map_err(sql)?;
            rows.collect::<Result<Vec<_>, _>>().map_err(sql)
        })
        .await
    }

    async fn caller_record(&self, identity: String) -> Result<CallerRecord, StoreError> {
        self.read(move |conn| {
            let mut stmt = conn
                .prepare_cached(
                    "SELECT at, channel, evidence FROM warnings WHERE identity = ?1 \
                     ORDER BY at DESC, id DESC LIMIT 100",
                )
                .map_err(sql)?;
            let warnings = stmt
                .query_map([&identity], |r| {
                    Ok(Warning {
                        at: r.get(0)?,
                        channel: r.get(1)?,
                        evidence: r.get(2)?,
                    })
                })
                .map_err(sql)?
                .collect::<Result<Vec<_>, _>>()
                .map_err(sql)?;
            let mut stmt = conn
                .prepare_cached(
                    "SELECT identity, start, until, reason, decided_by, lifted_at, evidence FROM suspensions \
                     WHERE identity = ?1 ORDER BY start DESC, id DESC",
                )
                .map_err(sql)?;
            let suspensions = stmt
                .query_map([&identity], suspension_row)
                .map_err(sql)?
                .collect::<Result<Vec<_>, _>>()
                .map_err(sql)?;
            let mut stmt = conn
                .prepare_cached(
                    "SELECT number, category, content, created_at FROM orders WHERE identity = ?1 \
                     ORDER BY created_at DESC LIMIT 50",
                )
                .map_err(sql)?;
            let orders = stmt
                .query_map([&identity], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
                })
                .map_err(sql)?
                .collect::<Result<Vec<_>, _>>()
                .map_err(sql)?;
            let mut stmt = conn
                .prepare_cached(
                    "SELECT identity, channel, number, reason, rule, text, at FROM redirects \
                     WHERE identity = ?1 ORDER BY at DESC LIMIT 50",
                )
                .map_err(sql)?;
            let redirects = stmt
                .query_map([&identity], |r| {
                    Ok(RedirectRecord {
                        identity: r.get(0)?,
                        channel: r.get(1)?,
                        number: r.get(2)?,
                        reason: r.get(3)?,
                        rule: r.get(4)?,
                        text: r.get(5)?,
                        at: r.get(6)?,
                    })
                })
                .map_err(sql)?
                .collect::<Result<Vec<_>, _>>()
                .map_err(sql)?;
            let reset_at = conn
                .prepare_cached("SELECT reset_at FROM caller_resets WHERE identity = ?1")
                .and_then(|mut q| q.query_row([&identity], |r| r.get(0)))
                .optional()
                .map_err(sql)?;
            Ok(CallerRecord {
                warnings,
                reset_at,
                suspensions,
                orders,
                redirects,
            })
        })
        .await
    }

    async fn due_events(
        &self,
        sink: &'static str,
        topics: Topics,
        now_ms: i64,
        limit: usize,
    ) -> Result<Vec<EventRow>, StoreError> {
        self.read(move |conn| {
            let mut stmt = conn
                .prepare_cached(match topics {
                    Topics::All => {
                        "SELECT id, topic, payload, attempts FROM events \
                         WHERE sink = ?1 AND next_at_ms <= ?2 ORDER BY id LIMIT ?3"
                    }
                    Topics::Emergency => {
                        // The planner would rather range over every due event of the sink
                        // (events_sink), a backlog's worth between two messages.
                        "SELECT id, topic, payload, attempts FROM events INDEXED BY events_urgent \
                         WHERE sink = ?1 AND topic LIKE 'emergency/%' AND next_at_ms <= ?2 \
                         ORDER BY id LIMIT ?3"
                    }
                })
                .map_err(sql)?;
            let rows = stmt
                .query_map(params![sink, now_ms, limit as i64], |r| {
                    Ok(EventRow {
                        id: r.get(0)?,
                        topic: r.get(1)?,
                        payload: r.get(2)?,
                        attempts: r.get::<_, i64>(3)?.max(0) as u32,
                        lease: 0,
                    })
                })
                .map_err(sql)?;
            rows.collect::<Result<Vec<_>, _>>().map_err(sql)
        })
        .await
    }

    async fn reschedule_future_events(
        &self,
        sink: &'static str,
        now_ms: i64,
        horizon_ms: i64,
        _hold: std::time::Duration,
    ) -> Result<u64, StoreError> {
        // One node takes its events without a claim; a range of the `events_sink` index
        // (sink, next_at_ms, id): nothing to read when no clock was wrong.
        let changed = self
            .call(move |conn| {
                exec(
                    conn,
                    "UPDATE events SET next_at_ms = ?1 WHERE sink = ?2 AND next_at_ms > ?3",
                    params![now_ms, sink, horizon_ms],
                )
                .map_err(sql)
            })
            .await?;
        Ok(changed as u64)
    }

    async fn ack_events(&self, ids: Vec<i64>) -> Result<(), StoreError> {
        self.call(move |conn| {
            for id in &ids {
                exec(conn, "DELETE FROM events WHERE id = ?1", [id]).map_err(sql)?;
            }
            Ok(())
        })
        .await
    }

    async fn retry_event(
        &self,
        id: i64,
        next_at_ms: i64,
        payload: Option<String>,
    ) -> Result<(), StoreError> {
        self.call(move |conn| {
            exec(
                conn,
                "UPDATE events SET attempts = attempts + 1, next_at_ms = ?2, \
                 payload = COALESCE(?3, payload) WHERE id = ?1",
                params![id, next_at_ms, payload],
            )
            .map_err(sql)?;
            Ok(())
        })
        .await
    }

    async fn defer_event(&self, id: i64, next_at_ms: i64) -> Result<(), StoreError> {
        self.call(move |conn| {
            exec(
                conn,
                "UPDATE events SET next_at_ms = ?2 WHERE id = ?1",
                params![id, next_at_ms],
            )
            .map_err(sql)?;
            Ok(())
        })
        .await
    }

    async fn trim_events(&self, sink: &'static str, bound: u64) -> Result<u64, StoreError> {
        self.call(move |conn| {
            let n = conn
                .execute(
                    "DELETE FROM events WHERE sink = ?1 AND id IN (SELECT id FROM events \
                     WHERE sink = ?1 ORDER BY id DESC LIMIT -1 OFFSET ?2)",
                    params![sink, bound as i64],
                )
                .map_err(sql)?;
            Ok(n as u64)
        })
        .await
    }

    async fn record_link(&self, identity: String, canonical: String) -> Result<(), StoreError> {
        self.call(move |conn| {
            // Re-point whatever was linked to `identity`, so links never chain.
            exec(
                conn,
                "UPDATE links SET canonical = ?2 WHERE canonical = ?1",
                params![identity, canonical],
            )
            .map_err(sql)?;
            exec(
                conn,
                "INSERT INTO links(identity, canonical) VALUES (?1, ?2) \
                 ON CONFLICT(identity) DO UPDATE SET canonical = ?2",
                params![identity, canonical],
            )
            .map_err(sql)?;
            Ok(())
        })
        .await
    }

    async fn links(&self) -> Result<Vec<(String, String)>, StoreError> {
        self.read(move |conn| {
            let mut stmt = conn
                .prepare_cached("SELECT identity, canonical FROM links")
                .map_err(sql)?;
            let rows = stmt
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
                .map_err(sql)?;
            rows.collect::<Result<Vec<_>, _>>().map_err(sql)
        })
        .await
    }

    async fn set_allowed(
        &self,
        identity: String,
        allowed: bool,
        at: i64,
    ) -> Result<(), StoreError> {
        self.call(move |conn| {
            if allowed {
                exec(
                    conn,
                    "INSERT INTO allowed(identity, at) VALUES (?1, ?2) \
                     ON CONFLICT(identity) DO NOTHING",
                    params![identity, at],
                )
            } else {
                exec(
                    conn,
                    "DELETE FROM allowed WHERE identity = ?1",
                    params![identity],
                )
            }
            .map_err(sql)?;
            Ok(())
        })
        .await
    }

    async fn allowed(&self) -> Result<Vec<String>, StoreError> {
        self.read(move |conn| {
            let mut stmt = conn
                .prepare_cached("SELECT identity FROM allowed")
                .map_err(sql)?;
            let rows = stmt.query_map([], |r| r.get(0)).map_err(sql)?;
            rows.collect::<Result<Vec<_>, _>>().map_err(sql)
        })
        .await
    }

    async fn resets_since(&self, since: i64) -> Result<Vec<(String, i64)>, StoreError> {
        self.read(move |conn| {
            let mut stmt = conn
                .prepare_cached("SELECT identity, reset_at FROM caller_resets WHERE reset_at >= ?1")
                .map_err(sql)?;
            let rows = stmt
                .query_map([since], |r| Ok((r.get(0)?, r.get(1)?)))
                .map_err(sql)?;
            rows.collect::<Result<Vec<_>, _>>().map_err(sql)
        })
        .await
    }

    async fn record_breaker(&self, open: bool, now: i64) -> Result<(), StoreError> {
        let events = self.events;
        self.call(move |conn| {
            emit(
                conn,
                events,
                "dispatch/breaker",
                serde_json::json!({"open": open}),
                now,
                None,
            )
        })
        .await
    }

    fn depth(&self) -> u64 {
        self.depth.load(Ordering::Relaxed)
    }

    async fn probe_write(&self) -> Result<(), StoreError> {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or_default();
        self.call(move |conn| {
            exec(
                conn,
                "INSERT INTO probe(id, at) VALUES (1, ?1) ON CONFLICT(id) DO UPDATE SET at = ?1",
                [now],
            )
            .map_err(sql)?;
            Ok(())
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::NewOrder;

    /// A store in `dir` recording events for `sinks`, committing each group at once.
    fn with_sinks(dir: &Path, sinks: Sinks) -> SqliteStore {
        SqliteStore::open_with(
            dir,
            sinks,
            std::time::Duration::ZERO,
            std::time::Duration::ZERO,
        )
        .unwrap()
    }

    fn intake(key: Option<&str>, n: usize) -> Intake {
        Intake {
            day: "20261129".into(),
            node_id: 1,
            seq_floor: 0,
            dedupe_key: key.map(String::from),
            orders: (0..n)
                .map(|i| NewOrder {
                    identity: "phone:13800000000".into(),
                    category: "complaint".into(),
                    content: format!("matter {i}"),
                    body: format!(r#"{{"content":"matter {i}"}}"#),
                    channel: "web",
                    confidential: false,
                    email: String::new(),
                    review: None,
                    origin: String::new(),
                })
                .collect(),
            now: 1_764_400_000,
        }
    }

    /// An operation inserting `x` into `t`, then failing if `fail`; counts its runs.
    fn insert_op(
        x: i64,
        fail: bool,
        runs: Arc<AtomicU64>,
    ) -> (Box<dyn Op>, oneshot::Receiver<Result<(), StoreError>>) {
        let (tx, rx) = oneshot::channel();
        let f = move |conn: &Connection| {
            runs.fetch_add(1, Ordering::Relaxed);
            exec(conn, "INSERT INTO t(x) VALUES (?1)", [x]).map_err(sql)?;
            if fail {
                return Err(StoreError::Internal("boom".into()));
            }
            Ok(())
        };
        (Box::new(TypedOp { f, out: None, tx }), rx)
    }

    /// An in-memory database with the table `t(x)` the test operations write.
    fn table() -> Connection {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch("CREATE TABLE t(x INTEGER)").unwrap();
        conn
    }

    /// Runs a group as the writer does and answers its operations.
    fn commit_group(conn: &Connection, mut group: Vec<Box<dyn Op>>) -> Result<(), String> {
        let commit = run_group(conn, &mut group, std::time::Instant::now());
        for op in group {
            op.finish(commit.clone());
        }
        commit
    }

    fn values(conn: &Connection) -> Vec<i64> {
        let mut st = conn.prepare("SELECT x FROM t ORDER BY x").unwrap();
        let rows = st.query_map([], |r| r.get(0)).unwrap();
        rows.map(|r| r.unwrap()).collect()
    }

    #[test]
    fn a_failing_operation_is_undone_alone_and_the_rest_of_its_group_commits() {
        let conn = table();
        let runs = Arc::new(AtomicU64::new(0));
        let (a, mut ra) = insert_op(1, false, runs.clone());
        let (b, mut rb) = insert_op(2, true, Arc::new(AtomicU64::new(0)));
        let (c, mut rc) = insert_op(3, false, Arc::new(AtomicU64::new(0)));
        assert!(commit_group(&conn, vec![a, b, c]).is_ok());
        assert!(matches!(ra.try_recv(), Ok(Ok(()))));
        assert!(matches!(rb.try_recv(), Ok(Err(StoreError::Internal(_)))));
        assert!(matches!(rc.try_recv(), Ok(Ok(()))));
        assert_eq!(
            values(&conn),
            vec![1, 3],
            "the failed operation's insert is undone"
        );
        assert_eq!(
            runs.load(Ordering::Relaxed),
            2,
            "the group was run again, isolated"
        );
    }

    /// An operation writing a 100 KB blob into `big(b)`.
    fn big_op() -> (Box<dyn Op>, oneshot::Receiver<Result<(), StoreError>>) {
        let (tx, rx) = oneshot::channel();
        let f = |conn: &Connection| {
            exec(conn, "INSERT INTO big(b) VALUES (zeroblob(100000))", []).map_err(sql)?;
            Ok(())
        };
        (Box::new(TypedOp { f, out: None, tx }), rx)
    }

    /// A full disk in a group run again with savepoints: SQLite rolls back the whole
    /// transaction, and the operations after the full one must not commit on their own while
    /// the group is answered 503.
    #[test]
    fn a_full_disk_while_a_group_is_run_again_stores_none_of_it() {
        let conn = table();
        conn.execute_batch("CREATE TABLE big(b BLOB)").unwrap();
        // Room for a few small rows in the pages there are, not for the blob: SQLITE_FULL.
        let pages: i64 = conn
            .query_row("PRAGMA page_count", [], |r| r.get(0))
            .unwrap();
        conn.query_row(&format!("PRAGMA max_page_count = {}", pages + 2), [], |r| {
            r.get::<_, i64>(0)
        })
        .unwrap();
        let runs = || Arc::new(AtomicU64::new(0));
        let (a, mut ra) = insert_op(1, false, runs());
        // Fails: the group is rolled back and run again, one savepoint per operation.
        let (b, mut rb) = insert_op(2, true, runs());
        let (c, mut rc) = big_op();
        let (d, mut rd) = insert_op(4, false, runs());
        assert!(commit_group(&conn, vec![a, b, c, d]).is_err());
        assert!(matches!(rd.try_recv(), Ok(Err(StoreError::Unavailable(_)))));
        assert_eq!(
            values(&conn),
            Vec::<i64>::new(),
            "the operation after the full disk is not stored behind its 503"
        );
        for r in [&mut ra, &mut rb, &mut rc] {
            assert!(matches!(r.try_recv(), Ok(Err(StoreError::Unavailable(_)))));
        }
        // The connection is left as a group finds it: the next one commits.
        let (e, mut re) = insert_op(5, false, runs());
        assert!(commit_group(&conn, vec![e]).is_ok());
        assert!(matches!(re.try_recv(), Ok(Ok(()))));
        assert_eq!(values(&conn), vec![5]);
    }

    #[test]
    fn a_clean_group_runs_each_operation_once() {
        let conn = table();
        let runs = Arc::new(AtomicU64::new(0));
        let (a, mut ra) = insert_op(1, false, runs.clone());
        let (b, mut rb) = insert_op(2, false, runs.clone());
        assert!(commit_group(&conn, vec![a, b]).is_ok());
        assert!(matches!(ra.try_recv(), Ok(Ok(()))));
        assert!(matches!(rb.try_recv(), Ok(Ok(()))));
        assert_eq!(values(&conn), vec![1, 2]);
        assert_eq!(runs.load(Ordering::Relaxed), 2);
    }

    #[test]
    fn order_bodies_get_their_number_first() {
        let mut o = intake(None, 1).orders.remove(0);
        let v: serde_json::Value = serde_json::from_str(&o.body_with("2026112901000001")).unwrap();
        assert_eq!(v["number"], "2026112901000001");
        assert_eq!(v["content"], "matter 0");
        assert_eq!(o.accepted_event("2026112901000001")["channel"], "web");
        o.body = "{}".into();
        assert_eq!(o.body_with("1"), r#"{"number":"1"}"#);
        o.body = " { } ".into();
        assert_eq!(
            o.body_with("1"),
            " { } ",
            "not starting with a brace: sent as it is"
        );
    }

    /// Waits until the start-up load of the recent-identities filter is done.
    async fn recent_loaded(s: &SqliteStore) {
        for _ in 0..500 {
            if s.recent
                .may_have_since("phone:nobody", chrono::Utc::now().timestamp())
                .is_some()
            {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        panic!("the recent-identities load did not finish");
    }

    #[tokio::test]
    async fn recent_orders_are_found_after_a_restart_and_absent_callers_skip_the_read() {
        let dir = tempfile::tempdir().unwrap();
        let now = chrono::Utc::now().timestamp();
        let since = now - 7 * 24 * 3600;
        {
            let s = SqliteStore::open(dir.path()).unwrap();
            let mut i = intake(None, 1);
            i.now = now;
            s.commit_intake(i).await.unwrap();
            // Noted at commit: found before and after the load finishes.
            assert_eq!(
                s.recent_orders_of("phone:13800000000".into(), String::new(), since)
                    .await
                    .unwrap()
                    .len(),
                1
            );
            recent_loaded(&s).await;
            assert_eq!(
                s.recent_orders_of("phone:13800000000".into(), String::new(), since)
                    .await
                    .unwrap()
                    .len(),
                1
            );
        }
        // After a restart the filter is rebuilt from the store.
        let s = SqliteStore::open(dir.path()).unwrap();
        recent_loaded(&s).await;
        assert_eq!(
            s.recent.may_have_since("phone:13800000000", since),
            Some(true)
        );
        assert_eq!(
            s.recent_orders_of("phone:13800000000".into(), String::new(), since)
                .await
                .unwrap()
                .len(),
            1
        );
        assert_eq!(
            s.recent.may_have_since("phone:13900000000", since),
            Some(false)
        );
        assert!(s
            .recent_orders_of("phone:13900000000".into(), String::new(), since)
            .await
            .unwrap()
            .is_empty());
        // A look-back beyond what the filter covers reads the store.
        assert_eq!(
            s.recent
                .may_have_since("phone:13900000000", now - 400 * 24 * 3600),
            None
        );
    }

    /// An operation taking `n` numbers of day "d", then failing if `fail`; sends the first.
    fn numbers_op(n: i64, fail: bool) -> (Box<dyn Op>, oneshot::Receiver<Result<i64, StoreError>>) {
        let (tx, rx) = oneshot::channel();
        let f = move |conn: &Connection| {
            let first = take_numbers(conn, "d", n, 0)?;
            if fail {
                return Err(StoreError::Internal("boom".into()));
            }
            Ok(first)
        };
        (Box::new(TypedOp { f, out: None, tx }), rx)
    }

    #[test]
    fn a_group_takes_numbers_once_and_a_rolled_back_operation_leaves_a_gap() {
        forget_numbers();
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(SCHEMA).unwrap();
        let saved = |conn: &Connection| -> i64 {
            conn.query_row("SELECT next FROM order_seq WHERE day = 'd'", [], |r| {
                r.get(0)
            })
            .unwrap()
        };
        // The middle operation fails: the group runs again, each in a savepoint.
        let (a, mut ra) = numbers_op(2, false);
        let (b, mut rb) = numbers_op(2, true);
        let (c, mut rc) = numbers_op(2, false);
        commit_group(&conn, vec![a, b, c]).unwrap();
        assert_eq!(
            ra.try_recv().unwrap().unwrap(),
            1,
            "taken again from the start"
        );
        assert!(rb.try_recv().unwrap().is_err());
        assert_eq!(
            rc.try_recv().unwrap().unwrap(),
            5,
            "3 and 4 are a gap, never a repeat"
        );
        assert_eq!(
            saved(&conn),
            6,
            "one write of the sequence, before the commit"
        );
        let (d, mut rd) = numbers_op(1, false);
        commit_group(&conn, vec![d]).unwrap();
        assert_eq!(rd.try_recv().unwrap().unwrap(), 7);
        // As after a restart: read from the table again.
        forget_numbers();
        let (e, mut re) = numbers_op(1, false);
        commit_group(&conn, vec![e]).unwrap();
        assert_eq!(re.try_recv().unwrap().unwrap(), 8);
        assert_eq!(saved(&conn), 8);
        // A group that cannot commit leaves the table as it was and the next group reads it.
        conn.execute_batch("CREATE TRIGGER no_seq BEFORE UPDATE ON order_seq BEGIN SELECT RAISE(ABORT, 'full'); END;")
            .unwrap();
        let (f, mut rf) = numbers_op(1, false);
        assert!(commit_group(&conn, vec![f]).is_err());
        assert!(rf.try_recv().unwrap().is_err());
        conn.execute_batch("DROP TRIGGER no_seq").unwrap();
        assert_eq!(saved(&conn), 8);
        let (g, mut rg) = numbers_op(1, false);
        commit_group(&conn, vec![g]).unwrap();
        assert_eq!(rg.try_recv().unwrap().unwrap(), 9);
    }

    /// A store made before suspensions kept their evidence gets the column when it is opened:
    /// its suspensions read with none, and new ones keep theirs (only the caller record shows
    /// it; the `callers/suspended` event leaves it out).
    #[tokio::test]
    async fn a_store_made_before_the_evidence_column_gets_it_and_old_rows_read_empty() {
        let dir = tempfile::tempdir().unwrap();
        {
            let conn = Connection::open(dir.path().join("gateway.db")).unwrap();
            conn.execute_batch(
                "CREATE TABLE suspensions (id INTEGER PRIMARY KEY AUTOINCREMENT, \
                 identity TEXT NOT NULL, start INTEGER NOT NULL, until INTEGER NOT NULL, \
                 reason TEXT NOT NULL, decided_by TEXT NOT NULL, lifted_at INTEGER); \
                 INSERT INTO suspensions(identity, start, until, reason, decided_by) \
                 VALUES ('phone:13800000077', 10, 4000000000, '旧的', 'rule');",
            )
            .unwrap();
        }
        let s = SqliteStore::open(dir.path()).unwrap();
        let old = s.active_suspensions(20).await.unwrap();
        assert_eq!(
            (old[0].reason.as_str(), old[0].evidence.as_str()),
            ("旧的", "")
        );
        let new = Suspension {
            identity: "phone:13800000078".into(),
            start: 30,
            until: 4_000_000_000,
            reason: "扰乱热线秩序".into(),
            evidence: "话务员A017标记：威胁邻居".into(),
            decided_by: "rule".into(),
            lifted_at: None,
        };
        assert_eq!(s.record_suspension(new.clone()).await.unwrap(), None);
        let rec = s.caller_record(new.identity.clone()).await.unwrap();
        assert_eq!(rec.suspensions, vec![new.clone()]);
        assert!(!new.event().to_string().contains("A017"));
        drop(s);
        // Opened again, the column is there already: nothing is added twice.
        let s = SqliteStore::open(dir.path()).unwrap();
        let active = s.active_suspensions(40).await.unwrap();
        assert!(active.contains(&new), "{active:?}");
    }

    /// A store made before orders kept their confidentiality flag in a column of their own
    /// gets the column when it is opened, set on the orders whose bodies say so; the flag then
    /// outlives the retention's clearing of those bodies (until 2026-12-07 the body was its
    /// only place, and a cleared confidential order was answered with its category, times and
    /// unit). New orders store their flag as they are taken.
    #[tokio::test]
    async fn a_store_made_before_the_confidential_column_gets_it_from_the_bodies() {
        let dir = tempfile::tempdir().unwrap();
        {
            let conn = Connection::open(dir.path().join("gateway.db")).unwrap();
            conn.execute_batch(
                r#"CREATE TABLE orders (number TEXT PRIMARY KEY, identity TEXT NOT NULL,
                   category TEXT NOT NULL, content TEXT NOT NULL, created_at INTEGER NOT NULL);
                 CREATE TABLE outbox (id INTEGER PRIMARY KEY AUTOINCREMENT, kind TEXT NOT NULL,
                   key TEXT NOT NULL UNIQUE, path TEXT NOT NULL, body TEXT NOT NULL,
                   state INTEGER NOT NULL DEFAULT 0, attempts INTEGER NOT NULL DEFAULT 0,
                   next_at_ms INTEGER NOT NULL, created_at INTEGER NOT NULL,
                   delivered_at INTEGER, last_error TEXT NOT NULL DEFAULT '');
                 INSERT INTO orders VALUES
                   ('2026112801000001', 'phone:13800000081', 'report', '举报', 10),
                   ('2026112801000002', 'phone:13800000082', 'complaint', '路灯', 10),
                   ('2026112801000003', 'phone:13800000083', 'complaint', '井盖', 10);
                 INSERT INTO outbox(kind, key, path, body, state, next_at_ms, created_at,
                   delivered_at) VALUES
                   ('order', '2026112801000001', '/work-orders',
                    '{"number":"2026112801000001","category":"report","confidential":true}',
                    1, 0, 10, 11),
                   ('order', '2026112801000002', '/work-orders',
                    '{"number":"2026112801000002","confidential":false,"content":"\"confidential\":true"}',
                    1, 0, 10, 11),
                   ('order', '2026112801000003', '/work-orders', '', 1, 0, 10, 11);"#,
            )
            .unwrap();
        }
        let s = SqliteStore::open(dir.path()).unwrap();
        let state = |n: &'static str| {
            let s = &s;
            async move { s.order_state(n.into()).await.unwrap().unwrap() }
        };
        let flags = || async {
            let mut out = vec![];
            for n in ["2026112801000001", "2026112801000002", "2026112801000003"] {
                let st = state(n).await;
                out.push((st.confidential, st.is_confidential()));
            }
            out
        };
        // Filled from the bodies: the flag, not text in the matter that reads like it; a body
        // the retention had cleared before the upgrade holds nothing to fill from.
        let want = vec![(true, true), (false, false), (false, false)];
        assert_eq!(flags().await, want);
        // The retention clears the delivered bodies; the flag stays.
        let pruned = s.prune(1_000, 500, 128).await.unwrap();
        assert_eq!(pruned.bodies, 2);
        assert_eq!(state("2026112801000001").await.sent, "");
        assert_eq!(flags().await, want);
        // A new order keeps its flag in the column.
        let mut new = intake(None, 2);
        new.orders[0].confidential = true;
        new.orders[0].body = r#"{"confidential":true}"#.into();
        let IntakeResult::Stored(refs) = s.commit_intake(new).await.unwrap() else {
            panic!("stored");
        };
        let (secret, open) = (refs[0].number.clone(), refs[1].number.clone());
        assert!(
            s.order_state(secret.clone())
                .await
                .unwrap()
                .unwrap()
                .confidential
        );
        assert!(
            !s.order_state(open.clone())
                .await
                .unwrap()
                .unwrap()
                .confidential
        );
        drop(s);
        // Opened again, the column is there already: nothing is added or filled twice.
        let s = SqliteStore::open(dir.path()).unwrap();
        assert!(s.order_state(secret).await.unwrap().unwrap().confidential);
        assert!(!s.order_state(open).await.unwrap().unwrap().confidential);
        assert!(
            s.order_state("2026112801000001".into())
                .await
                .unwrap()
                .unwrap()
                .confidential
        );
    }

    #[tokio::test]
    async fn numbers_continue_across_reopen_and_dedupe_replays() {
        let dir = tempfile::tempdir().unwrap();
        let first = {
            let s = SqliteStore::open(dir.path()).unwrap();
            let r = s.commit_intake(intake(Some("k1"), 2)).await.unwrap();
            let IntakeResult::Stored(refs) = r else {
                panic!("not stored")
            };
            assert_eq!(refs[0].number, "2026112901000001");
            assert_eq!(refs[1].number, "2026112901000002");
            assert_eq!(s.depth(), 2);
            let again = s.commit_intake(intake(Some("k1"), 2)).await.unwrap();
            assert!(matches!(
                again,
                IntakeResult::Replayed(Outcome::Accepted { .. })
            ));
            assert_eq!(s.depth(), 2, "a replay stores nothing");
            refs
        };
        let s = SqliteStore::open(dir.path()).unwrap();
        assert_eq!(s.depth(), 2, "depth is rebuilt from disk");
        let IntakeResult::Stored(refs) = s.commit_intake(intake(None, 1)).await.unwrap() else {
            panic!("not stored")
        };
        assert_eq!(refs[0].number, "2026112901000003");
        assert_ne!(refs[0].number, first[0].number);
    }

    /// The first number of `intake` under `floor`, as committed by `s`.
    async fn first_number(s: &SqliteStore, floor: i64, n: usize) -> String {
        let intake = Intake {
            seq_floor: floor,
            ..intake(None, n)
        };
        match s.commit_intake(intake).await.unwrap() {
            IntakeResult::Stored(refs) => refs[0].number.clone(),
            IntakeResult::Replayed(o) => panic!("replayed: {o:?}"),
        }
    }

    /// A store that does not know the day's earlier numbers (a new file after the damaged one
    /// was moved aside, a backup) numbers the day from the clock's floor: it used to start at 1
    /// again, and dispatch took the new orders for the old ones it held under those numbers.
    #[tokio::test]
    async fn a_new_or_reopened_store_numbers_the_day_above_the_clocks_floor() {
        let dir = tempfile::tempdir().unwrap();
        {
            let s = SqliteStore::open(dir.path()).unwrap();
            assert_eq!(first_number(&s, 432_000, 2).await, "2026112901432001");
            // Floored once since it opened: later intakes continue the sequence, so the
            // quiet hours before a busy one are not used up by jumps to the clock.
            assert_eq!(first_number(&s, 432_500, 1).await, "2026112901432003");
        }
        {
            // A restart later that day: above its own numbers and the clock's floor.
            let s = SqliteStore::open(dir.path()).unwrap();
            assert_eq!(first_number(&s, 500_000, 1).await, "2026112901500001");
        }
        {
            // A floor below what the store has saved (a clock set back): the saved row wins.
            let s = SqliteStore::open(dir.path()).unwrap();
            assert_eq!(first_number(&s, 10, 1).await, "2026112901500002");
        }
        // Moved aside, as the README advises for a damaged store: the clock alone.
        std::fs::rename(dir.path().join("gateway.db"), dir.path().join("damaged.db")).unwrap();
        for wal in ["gateway.db-wal", "gateway.db-shm"] {
            let _ = std::fs::remove_file(dir.path().join(wal));
        }
        let s = SqliteStore::open(dir.path()).unwrap();
        assert_eq!(first_number(&s, 510_000, 1).await, "2026112901510001");
    }

    #[tokio::test]
    async fn delivery_results_move_entries_and_dead_letters_replay() {
        let dir = tempfile::tempdir().unwrap();
        let s = SqliteStore::open(dir.path()).unwrap();
        s.commit_intake(intake(None, 3)).await.unwrap();
        let due = s.due(0, 10).await.unwrap();
        assert_eq!(due.len(), 3);
        assert!(due[0].body.contains("\"number\":\"2026112901000001\""));
        s.record(
            vec![
                (due[0].id, Delivery::Delivered),
                (
                    due[1].id,
                    Delivery::Retry {
                        next_at_ms: 5_000,
                        error: "503".into(),
                    },
                ),
                (
                    due[2].id,
                    Delivery::Dead {
                        error: "400".into(),
                    },
                ),
            ],
            1,
        )
        .await
        .unwrap();
        assert_eq!(s.depth(), 1);
        assert_eq!(s.due(4_999, 10).await.unwrap().len(), 0);
        assert_eq!(s.due(5_000, 10).await.unwrap().len(), 1);
        let stats = s.outbox_stats(10).await.unwrap();
        assert_eq!((stats.depth, stats.dead), (1, 1));
        let dead = s.dead_letters(10, None).await.unwrap();
        assert_eq!(dead[0].key, due[2].key);
        assert!(s.retry_dead(due[2].key.clone(), 0).await.unwrap());
        assert!(!s.retry_dead("nope".into(), 0).await.unwrap());
        assert_eq!(s.depth(), 2);
        let st = s.order_state(due[0].key.clone()).await.unwrap().unwrap();
        assert_eq!(st.delivery, "delivered");
    }

    /// The retention (`storage.retain`) clears the bodies of old delivered messages, in
    /// steps, and deletes old retry records; pending and dead messages, younger ones and every
    /// row's key, state and delivery time stay, so status look-ups and waiting contacts still
    /// read them. Until 2026-12-07 nothing was ever removed and the store grew without bound.
    #[tokio::test]
    async fn the_retention_clears_old_delivered_bodies_and_retry_records_only() {
        let dir = tempfile::tempdir().unwrap();
        let s = SqliteStore::open(dir.path()).unwrap();
        let old = 1_764_400_000;
        let young = old + 40 * 86_400;
        let before = old + 1;
        s.commit_intake(intake(Some("web:old"), 4)).await.unwrap();
        s.remember("cti:old".into(), Outcome::Nothing, old)
            .await
            .unwrap();
        let due = s.due(0, 10).await.unwrap();
        let pending = |id| {
            (
                id,
                Delivery::Retry {
                    next_at_ms: 0,
                    error: "503".into(),
                },
            )
        };
        let dead = |id| {
            (
                id,
                Delivery::Dead {
                    error: "HTTP 400: no".into(),
                },
            )
        };
        let results = vec![
            (due[0].id, Delivery::Delivered),
            (due[1].id, Delivery::Delivered),
            dead(due[2].id),
            pending(due[3].id),
        ];
        s.record(results, old + 5).await.unwrap();
        let younger = Intake {
            now: young,
            ..intake(Some("web:young"), 1)
        };
        s.commit_intake(younger).await.unwrap();
        s.remember("cti:young".into(), Outcome::Nothing, young)
            .await
            .unwrap();
        let young_id = s.due(0, 10).await.unwrap().last().unwrap().id;
        s.record(vec![(young_id, Delivery::Delivered)], young + 1)
            .await
            .unwrap();
        let (number, contact) = (due[0].key.clone(), format!("{}-c1", due[0].key));
        let bodies = || {
            let c = Connection::open(dir.path().join("gateway.db")).unwrap();
            let mut st = c
                .prepare("SELECT body <> '' FROM outbox ORDER BY id")
                .unwrap();
            let v: Vec<bool> = st
                .query_map([], |r| r.get(0))
                .unwrap()
                .map(Result::unwrap)
                .collect();
            v
        };

        // Steps of two: the first takes two of each and says there may be more.
        let step = s.prune(young, before, 2).await.unwrap();
        assert_eq!(
            step,
            Pruned {
                bodies: 2,
                dedupe: 2,
                more: true,
                future: 0
            }
        );
        assert_eq!(
            bodies(),
            [false, false, true, true, true],
            "delivered and old only"
        );
        // The walk passes the dead letter and the pending message (both keep their bodies:
        // it used to stop at the pending one, which a contact of a dead order stays for good)
        // and stops at the young one; the young records stay.
        let mut rest = Pruned::default();
        loop {
            let step = s.prune(young, before, 2).await.unwrap();
            rest.bodies += step.bodies;
            rest.dedupe += step.dedupe;
            if !step.more {
                break;
            }
        }
        assert_eq!((rest.bodies, rest.dedupe), (0, 0));
        let cursor: i64 = Connection::open(dir.path().join("gateway.db"))
            .unwrap()
            .query_row(
                "SELECT after FROM prune_cursor WHERE what = 'outbox'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(cursor, due[3].id, "the walk is past the pending message");
        assert_eq!(bodies(), [false, false, true, true, true]);
        assert_eq!(s.recall("web:old".into(), young).await.unwrap(), None);
        assert_eq!(s.recall("cti:old".into(), young).await.unwrap(), None);
        assert!(s.recall("web:young".into(), young).await.unwrap().is_some());
        assert_eq!(
            s.recall("cti:young".into(), young).await.unwrap(),
            Some(Outcome::Nothing)
        );

        // A pruned order still answers its status, and a contact about it is still sent.
        let st = s.order_state(number.clone()).await.unwrap().unwrap();
        assert_eq!(
            (st.delivery.as_str(), st.delivered_at),
            ("delivered", Some(old + 5))
        );
        s.enqueue_contact(
            number.clone(),
            contact.clone(),
            serde_json::json!({}),
            None,
            young,
        )
        .await
        .unwrap();
        let due_now = s.due(0, 10).await.unwrap();
        let keys: Vec<&str> = due_now.iter().map(|e| e.key.as_str()).collect();
        assert_eq!(keys, [due[3].key.as_str(), contact.as_str()]);
        assert!(
            due_now[0].body.contains("matter 3"),
            "a pending body is whole"
        );
        // The same contact again queues nothing: its key is still known.
        s.enqueue_contact(number, contact, serde_json::json!({}), None, young)
            .await
            .unwrap();
        assert_eq!(s.due(0, 10).await.unwrap().len(), 2);
        // The dead letter is replayed whole.
        assert!(s.retry_dead(due[2].key.clone(), 0).await.unwrap());
        let replayed = s.due(0, 10).await.unwrap();
        assert!(replayed
            .iter()
            .any(|e| e.key == due[2].key && e.body.contains("matter 2")));

        // Delivered later, the message that was pending when the walk passed it keeps its
        // body (the price of never stopping at a pending message), and the walk stops at the
        // young order.
        s.record(vec![(due[3].id, Delivery::Delivered)], young)
            .await
            .unwrap();
        let step = s.prune(young, before, 256).await.unwrap();
        assert_eq!(
            step,
            Pruned {
                bodies: 0,
                dedupe: 0,
                more: false,
                future: 0
            }
        );
        assert_eq!(bodies(), [false, false, true, true, true, true]);
        // Later, the young ones go too.
        let step = s.prune(young + 1, young + 1, 256).await.unwrap();
        assert_eq!(
            step,
            Pruned {
                bodies: 1,
                dedupe: 2,
                more: false,
                future: 0
            }
        );
        assert_eq!(bodies(), [false, false, true, true, false, true]);
    }

    /// One outbox message and 130 retry records written by a clock a year ahead no longer stop
    /// the retention: the walk passes the message (it keeps its body, and is counted) and the
    /// records, and clears and deletes the old ones behind them. Until 2026-12-07 the walk
    /// stopped at the message, and the 128 records at the front of the table hid the old ones
    /// behind them, until that date (the review of 2026-12-07, finding 5).
    #[tokio::test]
    async fn the_retention_passes_rows_dated_ahead_of_the_clock() {
        let dir = tempfile::tempdir().unwrap();
        let s = SqliteStore::open(dir.path()).unwrap();
        let old = intake(None, 1).now;
        let now = old + 2 * 86_400;
        let (before, ahead) = (now - 86_400, now + 365 * 86_400);
        let future = Intake {
            now: ahead,
            ..intake(None, 1)
        };
        s.commit_intake(future).await.unwrap();
        for i in 0..130 {
            s.remember(format!("web:ahead{i}"), Outcome::Nothing, ahead)
                .await
                .unwrap();
        }
        s.commit_intake(intake(None, 3)).await.unwrap();
        for i in 0..6 {
            s.remember(format!("web:old{i}"), Outcome::Nothing, old)
                .await
                .unwrap();
        }
        let due = s.due(0, 10).await.unwrap();
        assert_eq!(due.len(), 4);
        let delivered = due.iter().map(|e| (e.id, Delivery::Delivered)).collect();
        s.record(delivered, old + 5).await.unwrap();

        let mut done = Pruned::default();
        for _ in 0..10 {
            let step = s.prune(now, before, 128).await.unwrap();
            done.bodies += step.bodies;
            done.dedupe += step.dedupe;
            done.future += step.future;
            if !step.more {
                break;
            }
        }
        assert_eq!((done.bodies, done.dedupe, done.future), (3, 6, 1));
        let c = Connection::open(dir.path().join("gateway.db")).unwrap();
        let kept: Vec<bool> = c
            .prepare("SELECT body <> '' FROM outbox ORDER BY id")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        assert_eq!(
            kept,
            [true, false, false, false],
            "the one dated ahead keeps its body"
        );
        let left: i64 = c
            .query_row(
                "SELECT COUNT(*) FROM dedupe WHERE created_at < ?1",
                [before],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(
            left, 0,
            "no old retry record is left behind the ones dated ahead"
        );
        // The walk is past them: the next run reads nothing again, and warns no more.
        assert_eq!(s.prune(now, before, 128).await.unwrap(), Pruned::default());
    }

    /// A page's refusal over quota (warned with a page's claim), as `warn` is asked for it.
    fn page_refusal(key: &str, identity: &str, now: i64, limit: u32) -> WarnRequest {
        WarnRequest {
            identity: identity.into(),
            warning: Warning {
                at: now,
                channel: "web".into(),
                evidence: "小区门口的路灯坏了一个星期".into(),
            },
            weight: 1,
            limit,
            since: 0,
            claim: Some(super::super::Claim {
                key: key.into(),
                retry_after: 600,
                keep: false,
            }),
            next: None,
        }
    }

    /// A page refused over quota, and copies of it: one committed at once (the page's copy
    /// behind the key lock), a double-click at the hold's last second read and refused again,
    /// are each given the refusal, and nothing is stored or counted; after the hold
    /// (`PAGE_REFUSAL_HOLD`) the page is heard afresh and stored, and its answer is kept.
    /// On a store made before the column, which gains it and reads its old rows as kept. Until
    /// 2026-12-07 SQLite held no page refusal: the copy was stored, or refused and counted
    /// again (two reminders for one page), as the PostgreSQL tests of `tests/multinode.rs`
    /// (`a_pages_refusal_is_the_answer_to_its_copies_until_its_hold_passes`) show it is not.
    #[tokio::test]
    async fn a_pages_refusal_is_the_answer_to_its_copies_until_its_hold_passes() {
        let dir = tempfile::tempdir().unwrap();
        {
            let conn = Connection::open(dir.path().join("gateway.db")).unwrap();
            conn.execute_batch(
                "CREATE TABLE dedupe (key TEXT PRIMARY KEY, outcome TEXT NOT NULL, \
                 created_at INTEGER NOT NULL);",
            )
            .unwrap();
            let old = serde_json::to_string(&Outcome::Nothing).unwrap();
            conn.execute("INSERT INTO dedupe VALUES ('web:old', ?1, 10)", [old])
                .unwrap();
        }
        let s = SqliteStore::open(dir.path()).unwrap();
        let (identity, key, at) = ("phone:13800000000", "web:page-1", 1_764_400_000);
        assert_eq!(
            s.recall("web:old".into(), at).await.unwrap(),
            Some(Outcome::Nothing),
            "an older store's rows are kept"
        );
        let refusal = Outcome::Throttled {
            retry_after: 600,
            warnings_left: 1,
        };
        let warnings = || s.warnings_since(identity.into(), 0, Scope::Web);
        assert_eq!(
            s.warn(page_refusal(key, identity, at, 2)).await.unwrap(),
            Warned::Recorded { before: 0 }
        );
        // The copy committed at once, and a double-click at the hold's last second.
        for now in [at, at + PAGE_REFUSAL_HOLD - 1] {
            let copy = Intake {
                now,
                ..intake(Some(key), 1)
            };
            assert_eq!(
                s.commit_intake(copy).await.unwrap(),
                IntakeResult::Replayed(refusal.clone()),
                "a copy at +{}s",
                now - at
            );
            assert_eq!(
                s.recall(key.into(), now).await.unwrap(),
                Some(refusal.clone())
            );
            assert_eq!(
                s.warn(page_refusal(key, identity, now, 2)).await.unwrap(),
                Warned::Answered(refusal.clone()),
                "a copy refused at +{}s is not counted",
                now - at
            );
        }
        assert_eq!(warnings().await.unwrap(), 1, "one reminder for one page");
        assert_eq!(s.depth(), 0, "nothing stored within the hold");
        // The hold has passed: no answer any more, and the page is heard afresh.
        let after = at + PAGE_REFUSAL_HOLD;
        assert_eq!(s.recall(key.into(), after).await.unwrap(), None);
        let copy = Intake {
            now: after + 1,
            ..intake(Some(key), 1)
        };
        let IntakeResult::Stored(refs) = s.commit_intake(copy).await.unwrap() else {
            panic!("the page is stored after the hold");
        };
        let accepted = Outcome::Accepted { orders: refs };
        // ... and its answer stands, far past the hold, against a late refusal too.
        let late = after + 3600;
        assert_eq!(
            s.recall(key.into(), late).await.unwrap(),
            Some(accepted.clone())
        );
        assert_eq!(
            s.warn(page_refusal(key, identity, late, 2)).await.unwrap(),
            Warned::Answered(accepted)
        );
        assert_eq!(warnings().await.unwrap(), 1);
        // A push's refusal (kept) is left to the pipeline to remember, as before.
        let push = WarnRequest {
            claim: Some(super::super::Claim {
                key: "wechat:msg-1".into(),
                retry_after: 600,
                keep: true,
            }),
            ..page_refusal("", identity, late, 5)
        };
        assert_eq!(s.warn(push).await.unwrap(), Warned::Recorded { before: 1 });
        assert_eq!(s.recall("wechat:msg-1".into(), late).await.unwrap(), None);
    }

    /// A remembered answer (a redirect of the same page) and a new refusal take over a page's
    /// refusal whose hold has passed, and leave one still held; the retention deletes a held
    /// refusal by its age, as any retry record, and a record taken over is dated and placed as
    /// a new one (the walk's front is the oldest by rowid: taken over in its old place, it
    /// held a walk of one row at a time back until its new date was old).
    #[tokio::test]
    async fn a_pages_refusal_past_its_hold_is_taken_over_and_pruned_by_its_age() {
        let dir = tempfile::tempdir().unwrap();
        let s = SqliteStore::open(dir.path()).unwrap();
        let (identity, at) = ("phone:13800000001", 1_764_400_000);
        let refusal = |left| Outcome::Throttled {
            retry_after: 600,
            warnings_left: left,
        };
        let refuse = |key: &str, now| s.warn(page_refusal(key, identity, now, 5));
        assert_eq!(
            refuse("web:a", at).await.unwrap(),
            Warned::Recorded { before: 0 }
        );
        assert_eq!(
            refuse("web:b", at).await.unwrap(),
            Warned::Recorded { before: 1 }
        );
        // Within the hold: the refusal stands against a remembered answer and a new refusal.
        let redirect = Outcome::Nothing;
        assert_eq!(
            s.remember("web:a".into(), redirect.clone(), at + 1)
                .await
                .unwrap(),
            Some(refusal(4))
        );
        assert_eq!(
            refuse("web:b", at + 1).await.unwrap(),
            Warned::Answered(refusal(3))
        );
        // Past it: taken over, and what took it over is kept.
        let past = at + PAGE_REFUSAL_HOLD;
        assert_eq!(
            s.remember("web:a".into(), redirect.clone(), past)
                .await
                .unwrap(),
            None
        );
        assert_eq!(
            s.recall("web:a".into(), past + 86_400).await.unwrap(),
            Some(redirect)
        );
        // The retention, one row a step: the held refusal of `web:b` (made at `at`) goes
        // first; `web:a`, taken over at `past`, is young and stays.
        let step = s.prune(past, past, 1).await.unwrap();
        assert_eq!(step.dedupe, 1, "{step:?}");
        assert_eq!(s.recall("web:b".into(), at).await.unwrap(), None);
        assert!(s.recall("web:a".into(), past).await.unwrap().is_some());
        // Sent again, the page is refused afresh and held again.
        assert_eq!(
            refuse("web:b", past).await.unwrap(),
            Warned::Recorded { before: 2 }
        );
        assert_eq!(
            s.recall("web:b".into(), past).await.unwrap(),
            Some(refusal(2))
        );
    }

    /// The retention's writes on the writer thread go by a range of row ids, never through
    /// an index that holds every delivered message (see [`CLEAR_BODIES`]).
    #[test]
    fn the_retentions_writes_search_a_range_of_row_ids() {
        let dir = tempfile::tempdir().unwrap();
        let conn = open_writer(&dir.path().join("gateway.db")).unwrap();
        for (stmt, table) in [(CLEAR_BODIES, "outbox"), (DELETE_DEDUPE, "dedupe")] {
            let plan: Vec<String> = conn
                .prepare(&format!("EXPLAIN QUERY PLAN {stmt}"))
                .unwrap()
                .query_map(rusqlite::params_from_iter(vec![0; 3]), |r| r.get(3))
                .unwrap()
                .map(Result::unwrap)
                .collect();
            assert_eq!(
                plan,
                [format!(
                    "SEARCH {table} USING INTEGER PRIMARY KEY (rowid>? AND rowid<?)"
                )],
                "{stmt}"
            );
        }
        // A retry's read, on every intake with a key, is still one look-up of the key.
        let plan: String = conn
            .query_row(
                &format!("EXPLAIN QUERY PLAN {RECALL}"),
                params!["k", 0],
                |r| r.get(3),
            )
            .unwrap();
        assert_eq!(
            plan,
            "SEARCH dedupe USING INDEX sqlite_autoindex_dedupe_1 (key=?)"
        );
    }

    /// A contact that carries an alert (a voicemail's words naming an emergency, after its
    /// order was made) emits it with the contact, once: the same contact again alerts nobody.
    #[tokio::test]
    async fn a_contact_with_an_alert_emits_it_once_and_a_deferral_counts_no_attempt() {
        let dir = tempfile::tempdir().unwrap();
        let sinks = Sinks {
            mqtt: false,
            mail: true,
        };
        let s = with_sinks(dir.path(), sinks);
        let alert = serde_json::json!({"order": "2026120707000001", "number": "119",
                                       "by": "rules", "sure": true, "channel": "cti"});
        for _ in 0..2 {
            s.enqueue_contact(
                "2026120707000001".into(),
                "2026120707000001-ct1".into(),
                serde_json::json!({"kind": "supplement", "content": "楼下着火了"}),
                Some(alert.clone()),
                2,
            )
            .await
            .unwrap();
        }
        let urgent = s
            .due_events("mail", Topics::Emergency, i64::MAX, 10)
            .await
            .unwrap();
        assert_eq!(urgent.len(), 1, "{urgent:?}");
        assert_eq!(urgent[0].topic, "emergency/suspected");
        // Put off (an alert over the rate limit) it counts no attempt; failed, it does.
        let id = urgent[0].id;
        s.defer_event(id, 5_000).await.unwrap();
        let due = |at| s.due_events("mail", Topics::Emergency, at, 10);
        assert!(due(4_999).await.unwrap().is_empty());
        assert_eq!(due(5_000).await.unwrap()[0].attempts, 0);
        s.retry_event(id, 5_000, None).await.unwrap();
        assert_eq!(due(5_000).await.unwrap()[0].attempts, 1);
        // A contact without one emits nothing.
        s.enqueue_contact("2".into(), "2-c1".into(), serde_json::json!({}), None, 3)
            .await
            .unwrap();
        assert_eq!(
            s.due_events("mail", Topics::All, i64::MAX, 10)
                .await
                .unwrap()
                .len(),
            1
        );
    }

    /// Events put off by a clock that was ahead (a VM's wrong RTC at boot, corrected by NTP;
    /// an operator's typo) are due again once the sink looks (`reschedule_future_events`):
    /// until 2026-12-07 an alert mail retried 30 days ahead of this clock waited 30 days. An
    /// event put off within the horizon, and another sink's, are left as they are.
    #[tokio::test]
    async fn events_put_off_by_a_clock_that_was_ahead_are_due_again() {
        let dir = tempfile::tempdir().unwrap();
        let sinks = Sinks {
            mqtt: true,
            mail: true,
        };
        let s = with_sinks(dir.path(), sinks);
        let alert = serde_json::json!({"order": "2026120707000001", "number": "119",
                                       "by": "rules", "sure": true, "channel": "cti"});
        for (order, alert) in [("1", Some(alert.clone())), ("2", Some(alert))] {
            s.enqueue_contact(
                order.into(),
                format!("{order}-ct1"),
                serde_json::json!({"kind": "supplement", "content": "楼下着火了"}),
                alert,
                2,
            )
            .await
            .unwrap();
        }
        let now = 1_800_000_000_000i64;
        let day = 86_400_000i64;
        let mail = s.due_events("mail", Topics::All, now, 10).await.unwrap();
        assert_eq!(mail.len(), 2, "{mail:?}");
        // One retried by a clock 30 days ahead, one within the horizon (a digest's wait).
        s.retry_event(mail[0].id, now + 30 * day, None)
            .await
            .unwrap();
        s.defer_event(mail[1].id, now + 1_000).await.unwrap();
        let mqtt = s
            .due_events("mqtt", Topics::All, i64::MAX, 10)
            .await
            .unwrap();
        s.defer_event(mqtt[0].id, now + 30 * day).await.unwrap();
        assert!(
            s.due_events("mail", Topics::All, now + 1_000, 10)
                .await
                .unwrap()
                .iter()
                .all(|e| e.id != mail[0].id),
            "the step's reproduction: not due for 30 days"
        );
        let hold = std::time::Duration::from_secs(40);
        assert_eq!(
            s.reschedule_future_events("mail", now, now + 3_600_000, hold)
                .await
                .unwrap(),
            1
        );
        let due = s.due_events("mail", Topics::All, now, 10).await.unwrap();
        assert_eq!(
            due.iter().map(|e| e.id).collect::<Vec<_>>(),
            [mail[0].id],
            "due now, with its attempt counted; the other still waits its second"
        );
        assert_eq!(due[0].attempts, 1);
        assert!(
            s.due_events("mqtt", Topics::All, now, 10)
                .await
                .unwrap()
                .iter()
                .all(|e| e.id != mqtt[0].id),
            "another sink's events are that sink's to look at"
        );
        assert_eq!(
            s.reschedule_future_events("mail", now, now + 3_600_000, hold)
                .await
                .unwrap(),
            0,
            "nothing left to change"
        );
    }

    /// A repeat contact is not posted before its order: dispatch answers a contact about an
    /// order it does not know with 404, which would park the contact as a dead letter. After
    /// an outage the order waits out its backoff while the contact, queued later, is due at
    /// once (and would be the breaker's probe).
    #[tokio::test]
    async fn a_contact_waits_until_its_order_is_delivered() {
        let dir = tempfile::tempdir().unwrap();
        let s = SqliteStore::open(dir.path()).unwrap();
        s.commit_intake(intake(None, 2)).await.unwrap();
        let orders = s.due(0, 10).await.unwrap();
        let (retried, refused) = (orders[0].clone(), orders[1].clone());
        s.record(
            vec![
                (
                    retried.id,
                    Delivery::Retry {
                        next_at_ms: 60_000,
                        error: "HTTP 503".into(),
                    },
                ),
                (
                    refused.id,
                    Delivery::Dead {
                        error: "HTTP 422".into(),
                    },
                ),
            ],
            1,
        )
        .await
        .unwrap();
        for order in [&retried, &refused] {
            let body = serde_json::json!({"number": order.key, "content": "again"});
            s.enqueue_contact(
                order.key.clone(),
                format!("{}-c1", order.key),
                body,
                None,
                2,
            )
            .await
            .unwrap();
        }
        let keys = |due: Vec<OutboxEntry>| due.into_iter().map(|e| e.key).collect::<Vec<_>>();
        assert!(
            keys(s.due(1_000, 10).await.unwrap()).is_empty(),
            "the contacts wait for their orders' retry, and while the order is dead"
        );
        assert_eq!(
            keys(s.due(60_000, 10).await.unwrap()),
            std::slice::from_ref(&retried.key),
            "the order is retried; its contact still waits for the result"
        );
        s.record(vec![(retried.id, Delivery::Delivered)], 60)
            .await
            .unwrap();
        assert_eq!(
            keys(s.due(60_000, 10).await.unwrap()),
            [format!("{}-c1", retried.key)],
            "once the order is delivered, its contact goes"
        );
    }

    /// A contact about a dead order waits for it (dispatch would answer it 404), and replaying
    /// the order, by key or by a filter, replays the contacts parked beside it (by a release
    /// before 2026-12-07, which posted them): before, the order was delivered and the photo the
    /// citizen was told was added stayed a dead letter.
    #[tokio::test]
    async fn replaying_an_order_replays_its_dead_contacts() {
        let dir = tempfile::tempdir().unwrap();
        let s = SqliteStore::open(dir.path()).unwrap();
        s.commit_intake(intake(None, 3)).await.unwrap();
        let orders = s.due(0, 10).await.unwrap();
        let keys = |due: Vec<OutboxEntry>| due.into_iter().map(|e| e.key).collect::<Vec<_>>();
        let mut refusals = Vec::new();
        for (o, status) in orders.iter().zip([400, 400, 422]) {
            let body = serde_json::json!({"number": o.key, "content": "photo"});
            let (number, key) = (o.key.clone(), format!("{}-c1", o.key));
            s.enqueue_contact(number, key, body, None, 2).await.unwrap();
            let error = format!("HTTP {status}: refused");
            refusals.push((o.id, Delivery::Dead { error }));
        }
        s.record(refusals, 2).await.unwrap();
        assert!(
            keys(s.due(1_000, 10).await.unwrap()).is_empty(),
            "a contact waits while its order is dead"
        );
        // As the release before parked them: posted, and refused 404.
        s.call(|conn| {
            exec(
                conn,
                "UPDATE outbox SET state = 2, last_error = 'HTTP 404: unknown order' \
                 WHERE kind = 'contact'",
                [],
            )
            .map_err(sql)
        })
        .await
        .unwrap();
        assert!(s.retry_dead(orders[0].key.clone(), 3_000).await.unwrap());
        async fn dead(s: &SqliteStore) -> Vec<String> {
            let letters = s.dead_letters(10, None).await.unwrap();
            let mut keys: Vec<String> = letters.into_iter().map(|d| d.key).collect();
            keys.sort();
            keys
        }
        let c1 = |o: &OutboxEntry| format!("{}-c1", o.key);
        let mut left = vec![orders[1].key.clone(), c1(&orders[1])];
        left.extend([orders[2].key.clone(), c1(&orders[2])]);
        left.sort();
        assert_eq!(
            dead(&s).await,
            left,
            "the order's contact is replayed with it"
        );
        assert_eq!(
            keys(s.due(3_000, 10).await.unwrap()),
            [orders[0].key.clone()],
            "and waits for it again"
        );
        let filter = DeadFilter {
            status: Some(400),
            ..DeadFilter::default()
        };
        assert_eq!(s.retry_dead_matching(filter, 3_000).await.unwrap(), 2);
        let mut left = vec![orders[2].key.clone(), c1(&orders[2])];
        left.sort();
        assert_eq!(
            dead(&s).await,
            left,
            "a filter's orders take their contacts"
        );
    }

    #[tokio::test]
    async fn concurrent_commits_share_groups_and_all_succeed() {
        let dir = tempfile::tempdir().unwrap();
        let s = Arc::new(SqliteStore::open(dir.path()).unwrap());
        let mut handles = Vec::new();
        for _ in 0..200 {
            let s = s.clone();
            handles.push(tokio::spawn(async move {
                s.commit_intake(intake(None, 1)).await
            }));
        }
        let mut numbers = std::collections::HashSet::new();
        for h in handles {
            let IntakeResult::Stored(refs) = h.await.unwrap().unwrap() else {
                panic!("not stored")
            };
            numbers.insert(refs[0].number.clone());
        }
        assert_eq!(numbers.len(), 200, "every number unique");
    }

    /// How many times the WAL has started over: SQLite adds one to the checkpoint sequence in
    /// the WAL header (bytes 12..16, big-endian) each time.
    fn wal_restarts(dir: &Path) -> u32 {
        let mut head = [0u8; 16];
        match std::fs::File::open(dir.join("gateway.db-wal"))
            .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut head))
        {
            Ok(()) => u32::from_be_bytes([head[12], head[13], head[14], head[15]]),
            Err(_) => 0,
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn commit_interval_holds_the_next_group_back_and_loses_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let interval = std::time::Duration::from_millis(40);
        let s = Arc::new(
            SqliteStore::open_with(
                dir.path(),
                Sinks::default(),
                interval,
                std::time::Duration::ZERO,
            )
            .unwrap(),
        );
        let started = std::time::Instant::now();
        s.commit_intake(intake(None, 1)).await.unwrap();
        // A few intakes right behind the first (fewer than a group that goes at once): none may
        // commit before the interval is over (a lower bound only: how soon after is the
        // machine's business), and all are stored.
        let rest: Vec<_> = (0..PACED_BELOW - 1)
            .map(|_| {
                let s = s.clone();
                tokio::spawn(async move { s.commit_intake(intake(None, 1)).await })
            })
            .collect();
        for r in rest {
            assert!(matches!(r.await.unwrap(), Ok(IntakeResult::Stored(_))));
        }
        assert!(started.elapsed() >= interval, "{:?}", started.elapsed());
        assert_eq!(s.depth(), PACED_BELOW as u64);
    }

    #[test]
    fn only_small_groups_wait_for_the_commit_interval() {
        let ms = std::time::Duration::from_millis;
        let us = std::time::Duration::from_micros;
        // A small group waits out the rest of the interval since the last one started...
        assert_eq!(pacing(1, Some(us(200)), ms(1)), Some(us(800)));
        assert_eq!(pacing(PACED_BELOW - 1, Some(us(200)), ms(1)), Some(us(800)));
        // ...but not once the interval is over, nor as the first group, nor with no interval.
        assert_eq!(pacing(1, Some(ms(1)), ms(1)), None);
        assert_eq!(pacing(1, Some(ms(3)), ms(1)), None);
        assert_eq!(pacing(1, None, ms(1)), None);
        assert_eq!(pacing(1, Some(us(200)), ms(0)), None);
        // A group this big already shares its fsync widely: it starts at once.
        assert_eq!(pacing(PACED_BELOW, Some(us(200)), ms(1)), None);
        assert_eq!(pacing(MAX_GROUP, Some(us(1)), ms(50)), None);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_wal_starts_over_while_writes_never_stop() {
        // With the checkpoint thread alone the WAL only started over at the auto-checkpoint
        // backstop (~400 MB), the writer having always added frames while the thread copied.
        let dir = tempfile::tempdir().unwrap();
        let s = Arc::new(SqliteStore::open(dir.path()).unwrap());
        let stop = Arc::new(AtomicBool::new(false));
        let mut writers = Vec::new();
        // Enough concurrent intakes that the writer thread never waits for work.
        for _ in 0..32 {
            let (s, stop) = (s.clone(), stop.clone());
            writers.push(tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    s.commit_intake(intake(None, 1)).await.unwrap();
                }
            }));
        }
        let wal = dir.path().join("gateway.db-wal");
        let first = wal_restarts(dir.path());
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
        let mut largest = 0;
        while wal_restarts(dir.path()) < first + 3 {
            assert!(
                std::time::Instant::now() < deadline,
                "the WAL never started over"
            );
            largest = largest.max(std::fs::metadata(&wal).map(|m| m.len()).unwrap_or(0));
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        stop.store(true, Ordering::Relaxed);
        for w in writers {
            w.await.unwrap();
        }
        assert!(
            largest < 128 << 20,
            "the WAL grew to {largest} bytes before starting over"
        );
    }

    #[tokio::test]
    async fn a_read_only_store_is_unavailable_and_recovers() {
        // A live store cannot be remounted read-only on Linux while the file is open for
        // writing, and root ignores file modes; SQLite's query_only gives the same error code
        // (SQLITE_READONLY) that a read-only file system would.
        let dir = tempfile::tempdir().unwrap();
        let s = SqliteStore::open(dir.path()).unwrap();
        s.call(|c| c.execute_batch("PRAGMA query_only = ON").map_err(sql))
            .await
            .unwrap();
        let err = s.commit_intake(intake(None, 1)).await.unwrap_err();
        assert!(matches!(err, StoreError::Unavailable(_)), "{err}");
        assert_eq!(s.depth(), 0, "nothing counted as stored");
        assert!(s.probe_write().await.is_err(), "readiness sees it");
        drop(s);
        // Writable again (a new connection): the refused intake left nothing behind.
        let s = SqliteStore::open(dir.path()).unwrap();
        assert_eq!(s.depth(), 0);
        let IntakeResult::Stored(refs) = s.commit_intake(intake(None, 1)).await.unwrap() else {
            panic!("not stored")
        };
        assert_eq!(refs[0].number, "2026112901000001", "no number was used up");
    }

    #[test]
    fn damage_sqlite_reports_is_unavailable_and_refuses_what_follows() {
        let corrupt = || {
            rusqlite::Error::SqliteFailure(
                rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_CORRUPT),
                Some("database disk image is malformed".into()),
            )
        };
        // A 503 to retry later, not a 500 (a bug of ours, as it was taken for until 2026-12-07).
        let e = map_err(corrupt());
        assert!(
            matches!(&e, StoreError::Unavailable(m) if m.starts_with(DAMAGED)),
            "{e}"
        );
        assert!(group_error(corrupt()).starts_with(DAMAGED));
        let full = rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_FULL),
            None,
        );
        assert!(!group_error(full).starts_with(DAMAGED));
        // Noted once met, the store refuses everything after it.
        let damage = Damage::default();
        damage.note::<()>(&Err(StoreError::Unavailable("disk full".into())));
        assert!(damage.refusal::<()>().is_none(), "a full disk is no damage");
        damage.note::<()>(&Err(e));
        assert!(matches!(
            damage.refusal::<()>(),
            Some(Err(StoreError::Unavailable(_)))
        ));
    }

    #[tokio::test]
    async fn a_page_damaged_while_closed_is_found_after_opening() {
        let dir = tempfile::tempdir().unwrap();
        let s = SqliteStore::open(dir.path()).unwrap();
        for _ in 0..40 {
            let mut i = intake(None, 5);
            for o in &mut i.orders {
                o.content = "路灯坏了".repeat(40);
            }
            s.commit_intake(i).await.unwrap();
        }
        drop(s);
        let db = dir.path().join("gateway.db");
        let (page, size) = {
            let c = Connection::open(&db).unwrap();
            c.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)").unwrap();
            let size: u64 = c.query_row("PRAGMA page_size", [], |r| r.get(0)).unwrap();
            let page: u64 = c
                .query_row(
                    "SELECT pageno FROM dbstat WHERE name = 'orders' AND pagetype = 'leaf' \
                     ORDER BY pageno LIMIT 1 OFFSET 2",
                    [],
                    |r| r.get(0),
                )
                .unwrap();
            (page, size)
        };
        let mut file = std::fs::read(&db).unwrap();
        let at = ((page - 1) * size) as usize;
        file[at..at + size as usize].fill(0);
        std::fs::write(&db, file).unwrap();
        let s = SqliteStore::open(dir.path()).unwrap();
        for _ in 0..500 {
            if s.probe_write().await.is_err() {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        let err = s.commit_intake(intake(None, 1)).await.unwrap_err();
        assert!(matches!(err, StoreError::Unavailable(_)), "{err}");
        assert!(matches!(
            s.order_state("2026112901000001".into()).await,
            Err(StoreError::Unavailable(_))
        ));
    }

    #[test]
    fn a_file_that_is_not_a_store_is_reported_as_damaged() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("gateway.db"), vec![0x42u8; 8192]).unwrap();
        let err = SqliteStore::open(dir.path()).err().unwrap();
        assert!(err.to_string().contains("damaged"), "{err}");
    }
}
