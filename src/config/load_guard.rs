//! The crash-loop guard: what was being loaded when the app last stopped.
//!
//! Before the app loads a file a stranger may have made (an avatar, a model), it writes what
//! it is loading to `loading.ron` beside `state.ron`, synced; when the load ends (shown, or
//! refused with a message) the entry goes. A file that kills the process while it loads leaves
//! its entry behind, and every later start skips that file, says so in the window and offers
//! one click to try again ([`RetrySkipped`]). A file that crashes the app crashes it once, not
//! at every start. The writes happen at the start and end of a load only (a few per session).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use bevy::prelude::{Message, Resource};
use serde::{Deserialize, Serialize};

use super::files::{MAX_TEXT_FILE_BYTES, read_text_file, write_atomic};

pub const GUARD_FILE_NAME: &str = "loading.ron";

/// Environment variable for the crash tests only: `avatar`, `model` or `voice` makes the process abort
/// right after it recorded that load, as a file that crashes the loader would.
pub const CRASH_TEST_VARIABLE: &str = "DESKTOP_MATE_TEST_CRASH_WHILE_LOADING";

/// What the guard watches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Guarded {
    Avatar,
    Model,
    Voice,
}

impl Guarded {
    pub fn noun(self) -> &'static str {
        match self {
            Guarded::Avatar => "avatar",
            Guarded::Model => "model",
            Guarded::Voice => "voice",
        }
    }
}

/// The user asks to load a skipped file again.
#[derive(Message, Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetrySkipped(pub Guarded);

#[derive(Debug, Default)]
struct Entries {
    /// Loading now, in this run.
    loading: BTreeMap<Guarded, PathBuf>,
    /// Was loading when an earlier run stopped: not loaded again until the user says so.
    skipped: BTreeMap<Guarded, PathBuf>,
}

/// Shared by the frame loop and the loading threads.
#[derive(Resource, Debug, Clone, Default)]
pub struct LoadGuard(Arc<Inner>);

#[derive(Debug, Default)]
struct Inner {
    path: Option<PathBuf>,
    entries: Mutex<Entries>,
}

impl Drop for Inner {
    /// The app is closing normally (the last holder lets go): a load cut short by quitting
    /// did not crash anything, so it is not skipped next time. A crash never gets here (an
    /// abort, a signal), nor does a panic that unwinds.
    fn drop(&mut self) {
        if std::thread::panicking() {
            return;
        }
        let entries = self.entries.get_mut().unwrap_or_else(|e| e.into_inner());
        if !entries.loading.is_empty() {
            entries.loading.clear();
            persist(self.path.as_deref(), entries);
        }
    }
}

impl LoadGuard {
    /// The guard file beside a settings file; what it still names was loading when an
    /// earlier run stopped, and is skipped at this start.
    pub fn beside(settings_path: Option<&Path>) -> Self {
        let path = settings_path.map(|p| p.with_file_name(GUARD_FILE_NAME));
        let skipped = path
            .as_deref()
            .and_then(|p| read_text_file(p, MAX_TEXT_FILE_BYTES).ok())
            .and_then(|text| ron::from_str::<BTreeMap<Guarded, PathBuf>>(&text).ok())
            .unwrap_or_default();
        Self(Arc::new(Inner {
            path,
            entries: Mutex::new(Entries {
                loading: BTreeMap::new(),
                skipped,
            }),
        }))
    }

    fn lock(&self) -> MutexGuard<'_, Entries> {
        // A panic elsewhere while holding it leaves plain data: keep using it.
        self.0.entries.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn persist(&self, entries: &Entries) {
        persist(self.0.path.as_deref(), entries);
    }

    /// Everything skipped at this start, for the window.
    pub fn all_skipped(&self) -> Vec<(Guarded, PathBuf)> {
        self.lock()
            .skipped
            .iter()
            .map(|(what, path)| (*what, path.clone()))
            .collect()
    }

    /// True when `path` must not be loaded as `what` now: an earlier run stopped loading it.
    pub fn should_skip(&self, what: Guarded, path: &Path) -> bool {
        self.lock().skipped.get(&what).is_some_and(|p| p == path)
    }

    /// `path` starts loading as `what` (another file than a skipped one, or a retry): recorded
    /// and synced before the first byte of it is read.
    pub fn begin(&self, what: Guarded, path: &Path) {
        {
            let mut entries = self.lock();
            entries.skipped.remove(&what);
            entries.loading.insert(what, path.to_owned());
            self.persist(&entries);
        }
        if std::env::var(CRASH_TEST_VARIABLE).is_ok_and(|v| v == what.noun()) {
            eprintln!(
                "{CRASH_TEST_VARIABLE}: aborting while loading the {}",
                what.noun()
            );
            std::process::abort();
        }
    }

    /// The load of `what` ended (loaded, or refused with a message).
    pub fn end(&self, what: Guarded) {
        let mut entries = self.lock();
        if entries.loading.remove(&what).is_some() {
            self.persist(&entries);
        }
    }

    /// The user asks to load the skipped file again: it is no longer skipped. Returns it.
    pub fn retry(&self, what: Guarded) -> Option<PathBuf> {
        let mut entries = self.lock();
        let path = entries.skipped.remove(&what);
        self.persist(&entries);
        path
    }
}

/// Writes what is loading and what is still skipped (a later start skips both); no file when
/// there is neither.
fn persist(path: Option<&Path>, entries: &Entries) {
    let Some(path) = path else { return };
    let mut all = entries.skipped.clone();
    all.extend(entries.loading.iter().map(|(w, p)| (*w, p.clone())));
    let result = if all.is_empty() {
        match std::fs::remove_file(path) {
            Err(err) if err.kind() != std::io::ErrorKind::NotFound => Err(err),
            _ => Ok(()),
        }
    } else {
        let text = ron::ser::to_string_pretty(&all, ron::ser::PrettyConfig::new())
            .map_err(std::io::Error::other)
            .map(|body| {
                format!(
                    "// What desktop-mate was loading when it last stopped; skipped at the next start.\n{body}\n"
                )
            });
        text.and_then(|text| write_atomic(path, &text))
    };
    if let Err(err) = result {
        tracing::warn!(
            "cannot write {}: {err}; a file that crashes the app while loading may do it again at the next start",
            path.display()
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_load_that_never_ended_is_skipped_at_the_next_start_until_retried() {
        let dir = tempfile::tempdir().expect("temp dir");
        let settings = dir.path().join("mascot.ron");
        let avatar = dir.path().join("crashes.vrm");
        let model = dir.path().join("fine.gguf");

        let first = LoadGuard::beside(Some(&settings));
        assert!(first.all_skipped().is_empty());
        first.begin(Guarded::Model, &model);
        first.end(Guarded::Model);
        assert!(
            !dir.path().join(GUARD_FILE_NAME).exists(),
            "nothing left when every load ended"
        );
        first.begin(Guarded::Avatar, &avatar);
        // The process dies here (no destructor runs): the entry stays on disk.
        std::mem::forget(first);

        let second = LoadGuard::beside(Some(&settings));
        assert!(second.should_skip(Guarded::Avatar, &avatar));
        assert!(!second.should_skip(Guarded::Model, &model));
        assert!(
            !second.should_skip(Guarded::Avatar, &model),
            "only that file"
        );
        assert_eq!(
            second.all_skipped(),
            vec![(Guarded::Avatar, avatar.clone())]
        );
        // Still skipped at the start after (the user did not ask to retry).
        let third = LoadGuard::beside(Some(&settings));
        assert!(third.should_skip(Guarded::Avatar, &avatar));
        // Quitting normally while a load is under way does not make it skipped.
        let quitting = LoadGuard::beside(Some(&settings));
        let model = dir.path().join("slow.gguf");
        quitting.begin(Guarded::Model, &model);
        drop(quitting);
        assert!(!LoadGuard::beside(Some(&settings)).should_skip(Guarded::Model, &model));
        // One click: tried again, and skipped no more once it loads.
        assert_eq!(third.retry(Guarded::Avatar), Some(avatar.clone()));
        third.begin(Guarded::Avatar, &avatar);
        third.end(Guarded::Avatar);
        let fourth = LoadGuard::beside(Some(&settings));
        assert!(fourth.all_skipped().is_empty());
        assert!(!dir.path().join(GUARD_FILE_NAME).exists());
    }

    #[test]
    fn another_file_for_the_same_slot_clears_the_skip_and_no_folder_means_no_guard() {
        let dir = tempfile::tempdir().expect("temp dir");
        let settings = dir.path().join("mascot.ron");
        let bad = dir.path().join("bad.vrm");
        let other = dir.path().join("other.vrm");
        let crashed = LoadGuard::beside(Some(&settings));
        crashed.begin(Guarded::Avatar, &bad);
        std::mem::forget(crashed);
        let guard = LoadGuard::beside(Some(&settings));
        assert!(guard.should_skip(Guarded::Avatar, &bad));
        guard.begin(Guarded::Avatar, &other);
        guard.end(Guarded::Avatar);
        assert!(LoadGuard::beside(Some(&settings)).all_skipped().is_empty());
        // A damaged guard file skips nothing.
        std::fs::write(dir.path().join(GUARD_FILE_NAME), "{garbage").expect("write");
        assert!(LoadGuard::beside(Some(&settings)).all_skipped().is_empty());
        let nowhere = LoadGuard::beside(None);
        nowhere.begin(Guarded::Model, &bad);
        nowhere.end(Guarded::Model);
        assert!(nowhere.all_skipped().is_empty());
    }
}
