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
