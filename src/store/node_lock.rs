//! One process per node identity.
//!
//! - **PostgreSQL**: several nodes share the database, and each must run under its own
//!   `server.node_id` (it is the MQTT client id and the status topic; order numbers are safe
//!   anyway, their blocks are reserved in the database). A node holds a session advisory lock
//!   keyed by its id, on a connection of its own, for as long as it runs ([`hold_pg`]). A node
//!   that finds the lock held by another says so (an ERROR naming the id), is not ready on
//!   `/readyz`, does not connect to MQTT, and keeps trying: it takes over once the other one's
//!   session ends. It never stops serving: emergencies are answered on every node, whatever
//!   its id.
//! - **SQLite**: one process owns `storage.path` ([`lock_storage`]): a second `serve` on the same
//!   folder (a manual start next to systemd's, on another port) served too until 2026-12-07:
//!   both relays delivered the one outbox (a second delivery of 39 of 102 orders in the
//!   reproduction, each a 409 from dispatch logged as "dispatch holds another order under this
//!   key"), both were ready, and each would take the other's journal of late pushes. It now
//!   refuses to start, since the first one serves.
//! - **Both**: on PostgreSQL `storage.path` holds the node's journal of late pushes only, and
//!   it is locked the same way (since 2026-12-07): two nodes started from one config folder
//!   with different ids took each other's entries at start-up as left over from a crash.

use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::sync::watch;

/// What this node knows of its claim on its `server.node_id`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Claim {
    /// This process holds it: it alone runs under the id.
    Held,
    /// Another process holds it: two nodes are configured with one id.
    Clash,
    /// Not known: the database cannot be reached to ask (nor, then, written).
    Unknown,
}

/// This node's claim on its id, as the lock's task keeps it up to date.
#[derive(Clone)]
pub struct NodeClaim(watch::Receiver<Claim>);

impl NodeClaim {
    /// A claim nobody can contest (one node on its own store, whose folder it has locked).
    pub fn sole() -> NodeClaim {
        NodeClaim(watch::channel(Claim::Held).1)
    }

    /// The claim now.
    pub fn now(&self) -> Claim {
        *self.0.borrow()
    }

    /// Waits until the claim is `claim` (`true`) or is no longer (`false`). A claim that can
    /// no longer change (its task is gone) waits for ever once it is not what is asked for.
    pub async fn until(&mut self, claim: Claim, is: bool) {
        if self.0.wait_for(|c| (*c == claim) == is).await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

/// The first key of the node lock (`pg_try_advisory_lock(int4, int4)`, the second is the
/// node id): "hlnd" in ASCII. The two-key form lives apart from the single-key locks the store
/// takes (migrations, suspensions), so the keys cannot meet.
pub const NODE_LOCK_CLASS: i32 = 0x686c_6e64;

/// How often a node whose id is held elsewhere, or that cannot reach the database, tries again.
const RETRY: Duration = Duration::from_secs(2);

/// How soon a node that found its id held asks again before it says so.
const RECHECK: Duration = Duration::from_millis(300);

/// Keepalives on the lock's connection, both ways. The server ends a dead holder's session
/// (a node powered off, a cable pulled) within about 25 s, so that the lock passes on; without
/// them it would wait for the kernel's default of two hours. This node notices a dead server
/// within about as long and stops counting on the lock.
const KEEPALIVE_IDLE: Duration = Duration::from_secs(10);
const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(5);
const KEEPALIVE_RETRIES: u32 = 3;

/// Starts holding node `node_id`'s lock in `url`'s database (TLS as `storage.url` and
/// `storage.ca_file` ask, like the store's connections), on a task of the current runtime that
/// keeps trying for the life of the process. Waits up to `first` for the first answer, so that
/// a node normally starts knowing whether its id is its own.
pub async fn hold_pg(
    url: &str,
    ca_file: Option<&Path>,
    node_id: u8,
    first: Duration,
) -> Result<NodeClaim, crate::store::StoreError> {
    let mut pg: tokio_postgres::Config = url.parse().map_err(|_| {
        crate::store::StoreError::Internal("storage.url is not a PostgreSQL URL".into())
    })?;
    pg.keepalives(true)
        .keepalives_idle(KEEPALIVE_IDLE)
        .keepalives_interval(KEEPALIVE_INTERVAL)
        .keepalives_retries(KEEPALIVE_RETRIES)
        .connect_timeout(Duration::from_secs(5))
        .application_name("hotline-gateway node lock");
    let tls = if pg.get_ssl_mode() == tokio_postgres::config::SslMode::Require {
        Some(super::postgres::tls(ca_file)?)
    } else {
        None
    };
    let (tx, rx) = watch::channel(Claim::Unknown);
    tokio::spawn(keep(pg, tls, node_id, tx));
    let mut first_answer = rx.clone();
    let _ = tokio::time::timeout(first, first_answer.wait_for(|c| *c != Claim::Unknown)).await;
    Ok(NodeClaim(rx))
}

/// Connects to the database for the lock.
async fn connect(
    pg: &tokio_postgres::Config,
    tls: &Option<tokio_postgres_rustls::MakeRustlsConnect>,
) -> Result<(tokio_postgres::Client, tokio::task::JoinHandle<()>), tokio_postgres::Error> {
    fn drive<F>(connection: F) -> tokio::task::JoinHandle<()>
    where
        F: std::future::Future<Output = Result<(), tokio_postgres::Error>> + Send + 'static,
    {
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, "The node lock's connection ended.");
            }
        })
    }
    match tls {
        Some(tls) => {
            let (c, connection) = pg.connect(tls.clone()).await?;
            Ok((c, drive(connection)))
        }
        None => {
            let (c, connection) = pg.connect(tokio_postgres::NoTls).await?;
            Ok((c, drive(connection)))
        }
    }
}

/// The lock's task: connect, take the lock or learn who has it, hold it while the connection
/// lasts, and start over when it ends.
async fn keep(
    pg: tokio_postgres::Config,
    tls: Option<tokio_postgres_rustls::MakeRustlsConnect>,
    node_id: u8,
    tx: watch::Sender<Claim>,
) {
    let set = |c: Claim| {
        metrics::gauge!("hotline_node_id_held").set(if c == Claim::Held { 1.0 } else { 0.0 });
        tx.send_replace(c)
    };
    // When a connection that would not come up was last logged: a long outage must not flood.
    let mut warned: Option<tokio::time::Instant> = None;
    loop {
        let (client, mut connection) = match connect(&pg, &tls).await {
            Ok(c) => c,
            Err(e) => {
                if set(Claim::Unknown) == Claim::Held
                    || warned.is_none_or(|w| w.elapsed() >= Duration::from_secs(60))
                {
                    tracing::warn!(
                        error = %super::postgres::error_text(&e),
                        node_id,
                        "Cannot reach PostgreSQL to hold this node's id; trying again \
                         (logged again at most once a minute)."
                    );
                    warned = Some(tokio::time::Instant::now());
                }
                tokio::time::sleep(RETRY).await;
                continue;
            }
        };
        warned = None;
        // The server's side of the keepalives (anyone may set them for their session). Without
        // them the lock still works; only a dead holder's session lasts longer.
        if let Err(e) = client
            .batch_execute(&format!(
                "SET tcp_keepalives_idle = {}; SET tcp_keepalives_interval = {}; \
                 SET tcp_keepalives_count = {KEEPALIVE_RETRIES}",
                KEEPALIVE_IDLE.as_secs(),
                KEEPALIVE_INTERVAL.as_secs()
            ))
            .await
        {
            tracing::warn!(error = %super::postgres::error_text(&e), "The node lock's session keeps the server's keepalive settings.");
        }
        let mut seen_taken = false;
        loop {
            let taken = client
                .query_one(
                    "SELECT pg_try_advisory_lock($1, $2)",
                    &[&NODE_LOCK_CLASS, &i32::from(node_id)],
                )
                .await
                .map(|row| row.get::<_, bool>(0));
            match taken {
                Ok(true) => {
                    if set(Claim::Held) == Claim::Clash {
                        tracing::warn!(
                            node_id,
                            "This node now holds server.node_id = {node_id}: the other node \
                             that ran under it is gone. Ready, and connecting to MQTT."
                        );
                    }
                    // Held for as long as the session lasts: nothing more to ask.
                    let _ = (&mut connection).await;
                    set(Claim::Unknown);
                    tracing::warn!(
                        node_id,
                        "The connection holding this node's id ended; taking it again."
                    );
                    break;
                }
                Ok(false) if !seen_taken => {
                    // Once more before saying so: a node restarted at once (kill, then start)
                    // may find its old session still ending.
                    seen_taken = true;
                    tokio::select! {
                        _ = tokio::time::sleep(RECHECK) => {}
                        _ = &mut connection => break,
                    }
                }
                Ok(false) => {
                    if set(Claim::Clash) != Claim::Clash {
                        metrics::counter!("hotline_node_id_clashes_total").increment(1);
                        tracing::error!(
                            node_id,
                            "Another node runs with server.node_id = {node_id} on this \
                             database: every node needs an id of its own (two with one id \
                             knock each other off MQTT). This node is not ready on /readyz and \
                             stays off MQTT; it still answers, emergencies included, and takes \
                             over the id when the other node stops. Give one of them another \
                             server.node_id."
                        );
                    }
                    tokio::select! {
                        _ = tokio::time::sleep(RETRY) => {}
                        _ = &mut connection => break,
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %super::postgres::error_text(&e), node_id, "Cannot ask PostgreSQL for this node's id; trying again.");
                    break;
                }
            }
        }
        drop(client);
        connection.abort();
        set(Claim::Unknown);
        tokio::time::sleep(RETRY).await;
    }
}

/// The file in `storage.path` that the serving process holds locked.
pub fn lock_file(storage: &Path) -> PathBuf {
    storage.join("gateway.lock")
}

/// Why the storage folder could not be locked.
#[derive(Debug, thiserror::Error)]
pub enum StorageLockError {
    /// Another process serves from the folder.
    #[error(
        "another hotline-gateway process already serves from {0} (it holds {0}/gateway.lock); \
         this one stops, since that one serves. Stop it first, or give this one another \
         storage.path"
    )]
    InUse(String),
    /// The lock file could not be opened or locked.
    #[error("cannot lock {path}: {error}")]
    Io {
        /// The lock file.
        path: String,
        /// What the system said.
        error: std::io::Error,
    },
}

/// Takes `storage`'s lock for this process (an exclusive `flock` on `gateway.lock`, made if
/// missing); it lasts as long as the returned file is open. The kernel drops it when the
/// process ends, however it ends, so no stale lock is ever left behind.
#[cfg(target_os = "linux")]
pub fn lock_storage(storage: &Path) -> Result<std::fs::File, StorageLockError> {
    use rustix::fs::{flock, FlockOperation};
    let path = lock_file(storage);
    let io = |error| StorageLockError::Io {
        path: path.display().to_string(),
        error,
    };
    std::fs::create_dir_all(storage).map_err(io)?;
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(io)?;
    match flock(&file, FlockOperation::NonBlockingLockExclusive) {
        Ok(()) => Ok(file),
        Err(rustix::io::Errno::WOULDBLOCK) => {
            Err(StorageLockError::InUse(storage.display().to_string()))
        }
        Err(e) => Err(io(e.into())),
    }
}

/// Elsewhere than Linux the folder is not locked.
#[cfg(not(target_os = "linux"))]
pub fn lock_storage(storage: &Path) -> Result<std::fs::File, StorageLockError> {
    std::fs::create_dir_all(storage).map_err(|error| StorageLockError::Io {
        path: storage.display().to_string(),
        error,
    })?;
    std::fs::File::open(storage).map_err(|error| StorageLockError::Io {
        path: storage.display().to_string(),
        error,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A second lock on one folder is refused while the first is held, and taken once it is
    /// let go (the kernel's `flock`: per open file, so this works within one process too).
    #[test]
    fn a_storage_folder_serves_one_process_at_a_time() {
        let dir = tempfile::tempdir().unwrap();
        let first = lock_storage(dir.path()).unwrap();
        match lock_storage(dir.path()) {
            Err(StorageLockError::InUse(p)) => assert_eq!(p, dir.path().display().to_string()),
            other => panic!("a second lock: {other:?}"),
        }
        drop(first);
        lock_storage(dir.path()).unwrap();
    }

    #[tokio::test]
    async fn a_sole_claim_is_held_and_never_lost() {
        let mut claim = NodeClaim::sole();
        assert_eq!(claim.now(), Claim::Held);
        claim.until(Claim::Held, true).await;
        let lost =
            tokio::time::timeout(Duration::from_millis(50), claim.until(Claim::Held, false)).await;
        assert!(lost.is_err(), "a sole claim is never lost");
    }
}
