//! Pushes answered `success` before their intake was stored, kept on the node's disk until it is.
//!
//! WeChat and Weibo do not resend a push answered `success`, and a push whose intake outlasts
//! the reply budget (a store held up by a backup, a checkpoint, a slow disk, a pool that is
//! full) is answered `success` so that the platform does not show the citizen an error. Until
//! 2026-12-07 the intake running on in memory was then the push's only copy, and a kill -9 or a
//! power cut lost it. Now the push is written here first, fsynced, then answered; the entry is
//! removed once its intake is stored, and what is left at start-up is taken again through the
//! pipeline under the push's dedupe key, so a push whose intake was stored after all is
//! answered from its record and makes no second order.
//!
//! One file per push (`<sha-256 of the dedupe key>.json`, written to a temporary name, fsynced,
//! renamed, and the folder fsynced): removing an entry is an unlink, nothing needs compacting,
//! and a write cut short leaves a temporary file that is never read. The folder is the node's
//! own (`pending-pushes` in `storage.path`), also on PostgreSQL: it holds what only this node
//! has answered. The late path is rare (each entry costs two fsyncs), the budget's path is
//! untouched.

use hotline_adapters::Submission;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::io::Write;
use std::path::{Path, PathBuf};

/// What an entry holds: the push as the pipeline got it, and the time it was decided at.
#[derive(Serialize, Deserialize)]
struct Entry {
    t: i64,
    submission: Submission,
}

/// Whether a push's decision means its intake is stored, so its journal entry can go. A
/// social push is answered `Advised` only when the store could not take a possible emergency
/// (`Pipeline::unsaved`: the person was told the number, nothing was stored): its entry stays,
/// to be taken again. Until the merge that made this check, such an entry was removed as done
/// and the push was lost.
pub fn stored(d: &crate::pipeline::Decision) -> bool {
    !matches!(d.outcome, hotline_adapters::Outcome::Advised { .. })
}

/// How long before `storage.retain` runs out an entry is no longer taken again. The replay
/// goes on for a minute after start-up, the retention runs every 10 minutes on every node, and
/// other nodes' clocks may be a minute ahead: an hour keeps the entry's retry record certainly
/// there while it is taken again.
pub const RETAIN_MARGIN: std::time::Duration = std::time::Duration::from_secs(3_600);

/// The folder (in the journal's) that entries past the retention window are moved to, for an
/// operator.
pub const PAST_RETENTION: &str = "past-retention";

/// Whether an entry decided at `t` (unix seconds) may have outlived the retry record that
/// would answer it: `storage.retain` (less [`RETAIN_MARGIN`]) has passed at `now`. The
/// retention deletes retry records older than `retain`, and one whose intake was stored
/// before the process died, replayed without it, would make a second order. Zero `retain`
/// keeps every record.
pub fn past_retention(t: i64, now: i64, retain: std::time::Duration) -> bool {
    if retain.is_zero() {
        return false;
    }
    let window = retain.saturating_sub(RETAIN_MARGIN).as_secs();
    let window = i64::try_from(window).unwrap_or(i64::MAX);
    t < now.saturating_sub(window)
}

/// The folder of pending pushes.
#[derive(Debug, Clone)]
pub struct PushJournal {
    dir: PathBuf,
}

impl PushJournal {
    /// The journal in `dir` (created on first write).
    pub fn new(dir: PathBuf) -> PushJournal {
        PushJournal { dir }
    }

    /// The journal of a store folder (`storage.path`).
    pub fn in_storage(storage: &Path) -> PushJournal {
        PushJournal::new(storage.join("pending-pushes"))
    }

    /// Writes `sub`, decided at `t`, durably; returns the entry's path for [`done`](Self::done).
    /// Blocking (two fsyncs): call it off the async workers.
    pub fn keep(&self, sub: &Submission, t: i64) -> std::io::Result<PathBuf> {
        // What a late reply waits for (see `http::social::EMERGENCY_JOURNAL_WAIT`).
        let started = std::time::Instant::now();
        let kept = self.write(sub, t);
        metrics::histogram!("hotline_push_journal_write_seconds")
            .record(started.elapsed().as_secs_f64());
        kept
    }

    fn write(&self, sub: &Submission, t: i64) -> std::io::Result<PathBuf> {
        std::fs::create_dir_all(&self.dir)?;
        let name = match &sub.dedupe_key {
            Some(key) => hex::encode(&Sha256::digest(key.as_bytes())[..16]),
            None => uuid::Uuid::new_v4().simple().to_string(),
        };
        let path = self.dir.join(format!("{name}.json"));
        let tmp = self.dir.join(format!("{name}.tmp"));
        let entry = Entry {
            t,
            submission: sub.clone(),
        };
        let bytes = serde_json::to_vec(&entry).map_err(std::io::Error::other)?;
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(&bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, &path)?;
        // The rename is durable once the folder is.
        std::fs::File::open(&self.dir)?.sync_all()?;
        Ok(path)
    }

    /// Removes an entry whose intake is stored. A removal that fails only means the push is
    /// taken again at the next start, and answered from its record.
    pub fn done(&self, path: &Path) {
        if let Err(e) = std::fs::remove_file(path) {
            if e.kind() != std::io::ErrorKind::NotFound {
                tracing::warn!(error = %e, path = %path.display(), "A stored push's journal entry was not removed; it is taken again (from its record) at the next start.");
            }
        }
    }

    /// Takes out of `entries` those [`past_retention`] at `now` and moves each to
    /// [`PAST_RETENTION`] in the journal, with an ERROR (identity masked) and
    /// `hotline_late_pushes_past_retention_total`; returns the others, to be taken again.
    ///
    /// Such an entry is never taken again by itself: whether its intake was stored before the
    /// process died cannot be told once the retention deleted its retry record, and a second
    /// order for a push that was stored is as wrong as a lost one. An operator looks the
    /// caller's orders up (`/admin/v1/callers/...`) around the entry's time `t` and submits
    /// the push's text again if none is there. One that cannot be moved stays where it is,
    /// set aside again at the next start.
    pub fn set_aside_past_retention(
        &self,
        entries: Vec<(PathBuf, Submission, i64)>,
        now: i64,
        retain: std::time::Duration,
    ) -> Vec<(PathBuf, Submission, i64)> {
        let (old, keep): (Vec<_>, Vec<_>) = entries
            .into_iter()
            .partition(|(_, _, t)| past_retention(*t, now, retain));
        for (path, sub, t) in old {
            metrics::counter!("hotline_late_pushes_past_retention_total").increment(1);
            let moved = self.move_aside(&path);
            let (identity, channel_ref) = (
                sub.identity.masked(),
                sub.identity.mask_in(&sub.channel_ref),
            );
            let retain = humantime::format_duration(retain).to_string();
            match moved {
                Ok(to) => tracing::error!(
                    identity = %identity, channel_ref = %channel_ref, t, retain = %retain,
                    path = %to.display(),
                    "A push answered `success` past its reply budget was left in the journal \
                     longer than storage.retain: its retry record may be gone, so it is not \
                     taken again (it could make a second order). Moved aside: look the \
                     caller's orders up around its time and submit it again if none is there."
                ),
                Err(e) => tracing::error!(
                    identity = %identity, channel_ref = %channel_ref, t, retain = %retain,
                    path = %path.display(), error = %e,
                    "A push answered `success` past its reply budget was left in the journal \
                     longer than storage.retain and is not taken again; it could not be moved \
                     aside and stays in place."
                ),
            }
        }
        keep
    }

    /// Moves an entry into [`PAST_RETENTION`] durably; its new path.
    fn move_aside(&self, path: &Path) -> std::io::Result<PathBuf> {
        let aside = self.dir.join(PAST_RETENTION);
        std::fs::create_dir_all(&aside)?;
        let name = path
            .file_name()
            .ok_or_else(|| std::io::Error::other("an entry without a file name"))?;
        let to = aside.join(name);
        std::fs::rename(path, &to)?;
        // Both folders' entries changed; a move lost in a power cut is only made again.
        std::fs::File::open(&aside)?.sync_all()?;
        std::fs::File::open(&self.dir)?.sync_all()?;
        Ok(to)
    }

    /// The entries left, each with its path; an entry that cannot be read is logged and left
    /// in place for an operator, and a temporary file (a write cut short, never answered) is
    /// removed.
    pub fn pending(&self) -> Vec<(PathBuf, Submission, i64)> {
        let Ok(dir) = std::fs::read_dir(&self.dir) else {
            return Vec::new();
        };
        let mut found = Vec::new();
        for path in dir.flatten().map(|e| e.path()) {
            match path.extension().and_then(|e| e.to_str()) {
                Some("json") => {}
                Some("tmp") => {
                    let _ = std::fs::remove_file(&path);
                    continue;
                }
                _ => continue,
            }
            let entry = std::fs::read(&path)
                .map_err(|e| e.to_string())
                .and_then(|b| serde_json::from_slice::<Entry>(&b).map_err(|e| e.to_string()));
            match entry {
                Ok(e) => found.push((path, e.submission, e.t)),
                Err(e) => {
                    tracing::error!(error = %e, path = %path.display(), "A push answered `success` past its reply budget cannot be read from the journal; left in place.")
                }
            }
        }
        found.sort_by_key(|(_, _, t)| *t);
        found
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hotline_adapters::{Channel, Identity, IdentityKind};

    #[test]
    fn an_entry_is_kept_until_done_and_a_torn_write_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let j = PushJournal::new(dir.path().join("p"));
        assert!(j.pending().is_empty(), "no folder yet");
        let id = Identity {
            kind: IdentityKind::Wechat,
            value: "oUser".into(),
        };
        let mut sub = Submission::new(Channel::Wechat, id, 5, "路灯坏了");
        sub.dedupe_key = Some("wechat:gh:1".into());
        let path = j.keep(&sub, 7).unwrap();
        assert_eq!(
            j.keep(&sub, 7).unwrap(),
            path,
            "a push's retry is one entry"
        );
        std::fs::write(dir.path().join("p").join("x.tmp"), b"{").unwrap();
        let left = j.pending();
        assert_eq!(left.len(), 1);
        assert_eq!((&left[0].1, left[0].2), (&sub, 7));
        assert!(!dir.path().join("p").join("x.tmp").exists());
        j.done(&path);
        assert!(j.pending().is_empty());
    }

    /// An entry older than `storage.retain` (less the margin) is not taken again: its retry
    /// record may be gone and the push would make a second order. It is moved aside for an
    /// operator; a younger one is taken again, and with `retain` zero all are. The entry's time
    /// is in the file, so the test writes an old one instead of waiting a day.
    #[test]
    fn an_entry_past_the_retention_window_is_set_aside_not_taken_again() {
        let dir = tempfile::tempdir().unwrap();
        let j = PushJournal::new(dir.path().join("p"));
        let day = 86_400;
        let now = 1_800_000_000;
        let retain = std::time::Duration::from_secs(30 * day as u64);
        let margin = RETAIN_MARGIN.as_secs() as i64;
        let push = |key: &str| {
            let id = Identity {
                kind: IdentityKind::Wechat,
                value: "oUser".into(),
            };
            let mut sub = Submission::new(Channel::Wechat, id, 5, "路灯坏了");
            sub.dedupe_key = Some(key.into());
            sub
        };
        let old = j.keep(&push("wechat:gh:old"), now - 31 * day).unwrap();
        let edge = j
            .keep(&push("wechat:gh:edge"), now - 30 * day + margin - 1)
            .unwrap();
        let young = j
            .keep(&push("wechat:gh:young"), now - 30 * day + margin)
            .unwrap();
        assert!(!past_retention(
            now - 365 * day,
            now,
            std::time::Duration::ZERO
        ));
        let all = j.pending();
        assert_eq!(all.len(), 3);
        assert_eq!(
            j.set_aside_past_retention(all.clone(), now, std::time::Duration::ZERO)
                .len(),
            3,
            "retain 0s keeps every retry record"
        );
        let left = j.set_aside_past_retention(all, now, retain);
        assert_eq!(
            left.iter().map(|(p, _, _)| p.clone()).collect::<Vec<_>>(),
            [young]
        );
        let aside = dir.path().join("p").join(PAST_RETENTION);
        for p in [&old, &edge] {
            assert!(!p.exists(), "{}", p.display());
            assert!(aside.join(p.file_name().unwrap()).exists());
        }
        assert_eq!(
            j.pending().len(),
            1,
            "the next start sees only the young one"
        );
    }

    /// A push told the number because the store could not take it (`Advised`) is not stored:
    /// its entry stays to be taken again (the merge review of 2026-12-07 saw it removed and
    /// the push lost). Anything else the pipeline answers with is a stored decision.
    #[test]
    fn only_a_stored_decision_lets_its_entry_go() {
        use crate::pipeline::Decision;
        use hotline_adapters::Outcome;
        let d = |outcome| Decision {
            outcome,
            message: String::new(),
        };
        assert!(!super::stored(&d(Outcome::Advised {
            number: "119".into()
        })));
        assert!(super::stored(&d(Outcome::Nothing)));
    }
}
