//! The Memory panel's side of the memory: a thread with its own connection to the database
//! (SQLite's WAL lets it read and write beside the chat's), fed requests by the panel and
//! answering with the persona's memories as they are after each one. The chat's connection
//! notices those writes ([`MemoryStore::take_external_change`]) and computes the vectors of
//! what was edited or imported before its next recall. Nothing here runs on the frame loop.

use std::path::{Path, PathBuf};
use std::thread;

use bevy::prelude::*;
use crossbeam_channel::{Receiver, Sender};

use super::engine::MemoryEngine;
use super::store::{Memory, MemoryError, MemoryStore, now};
use crate::AppSystems;

pub(super) fn plugin(app: &mut App) {
    app.init_resource::<MemoryView>()
        .insert_resource(MemoryBrowser::spawn())
        .add_systems(Update, receive.in_set(AppSystems::ReadChannels));
}

/// Most memories a list shows (the newest that match).
pub const LIST_LIMIT: usize = 500;

/// Which memory: the database file and the persona.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub database: PathBuf,
    pub persona: String,
}

/// What the panel asks for. Every request is answered with the list for `query`.
#[derive(Debug, Clone, PartialEq)]
pub enum BrowseAction {
    /// Only list.
    List,
    Edit {
        id: i64,
        text: String,
    },
    Forget {
        id: i64,
    },
    ForgetAll,
    /// Write every memory to a new file beside the database.
    Export,
    /// Add the memories of an export or a JSON array of `{text, kind}`.
    Import {
        path: PathBuf,
    },
    /// Download the catalogue's embedding model and make its GGUF (a minute or so).
    PullEmbedding,
}

#[derive(Debug, Clone)]
pub struct BrowseRequest {
    pub target: Target,
    /// Only memories whose text contains it (any case); empty = all.
    pub query: String,
    pub action: BrowseAction,
}

/// The answer to one request.
#[derive(Debug, Clone, PartialEq)]
pub struct Browsed {
    /// The newest memories that match the query, at most [`LIST_LIMIT`].
    pub memories: Vec<Memory>,
    /// How many memories the persona has in all.
    pub total: usize,
    /// What the action did, or why it did not.
    pub outcome: Option<Result<String, String>>,
    /// The answer to [`BrowseAction::PullEmbedding`].
    pub pulled: bool,
}

/// Runs one request on `engine` (opened for `request.target`).
pub fn serve(engine: &mut MemoryEngine, request: &BrowseRequest) -> Result<Browsed, MemoryError> {
    let persona = engine.persona().to_owned();
    let outcome = match &request.action {
        BrowseAction::List => None,
        BrowseAction::Edit { id, text } => Some(match engine.store.edit(*id, text, None) {
            Ok(true) => Ok("changed".to_owned()),
            Ok(false) => Err(format!("memory {id} is no longer there")),
            Err(err) => Err(err.to_string()),
        }),
        BrowseAction::Forget { id } => Some(match engine.store.forget(*id) {
            Ok(true) => Ok("forgotten".to_owned()),
            Ok(false) => Err(format!("memory {id} is no longer there")),
            Err(err) => Err(err.to_string()),
        }),
        BrowseAction::ForgetAll => Some(
            engine
                .store
                .forget_all(&persona)
                .map(|n| format!("forgot all {n} memories of {persona}"))
                .map_err(|e| e.to_string()),
        ),
        BrowseAction::Export => {
            let path = export_path(&request.target.database, &persona, now());
            Some(
                engine
                    .write_export(&path)
                    .map(|n| format!("wrote {n} memories to {}", path.display()))
                    .map_err(|e| e.to_string()),
            )
        }
        BrowseAction::Import { path } => Some(
            engine
                .import(path)
                .map(|n| format!("imported {n} memories from {}", path.display()))
                .map_err(|e| e.to_string()),
        ),
        BrowseAction::PullEmbedding => Some(pull_embedding()),
    };
    let all = engine.store.list(&persona)?;
    let wanted = request.query.trim().to_lowercase();
    let memories = all
        .iter()
        .filter(|m| wanted.is_empty() || m.text.to_lowercase().contains(&wanted))
        .take(LIST_LIMIT)
        .cloned()
        .collect();
    Ok(Browsed {
        memories,
        total: all.len(),
        outcome,
        pulled: request.action == BrowseAction::PullEmbedding,
    })
}

/// The catalogue's embedding model into the models folder (`memory pull`'s work).
fn pull_embedding() -> Result<String, String> {
    let entry = super::embedders::EMBEDDERS
        .first()
        .ok_or("no embedding model in the catalogue")?;
    let path = super::embedders::pull_to_models_dir(entry.id, &mut |_, _| {})?;
    info!("memory: embedding model {}", path.display());
    Ok(format!(
        "{} is ready: memories are searched by meaning from the next start",
        entry.name
    ))
}

/// `memory-export-<persona>-<unix time>.json` beside the database (letters and digits of
/// the persona's name only).
pub fn export_path(database: &Path, persona: &str, time: i64) -> PathBuf {
    let name: String = persona
        .chars()
        .map(|c| if c.is_alphanumeric() { c } else { '-' })
        .take(40)
        .collect();
    let folder = database.parent().unwrap_or(Path::new("."));
    folder.join(format!("memory-export-{name}-{time}.json"))
}

/// The panel's requests in, the answers out; the thread lives as long as the app.
#[derive(Resource)]
pub struct MemoryBrowser {
    send: Sender<BrowseRequest>,
    receive: Receiver<Result<Browsed, String>>,
}

impl MemoryBrowser {
    fn spawn() -> Self {
        let (send, requests) = crossbeam_channel::unbounded::<BrowseRequest>();
        let (answers, receive) = crossbeam_channel::unbounded();
        let worker = move || {
            let mut opened: Option<(Target, MemoryEngine)> = None;
            for request in requests {
                let answer = browse(&mut opened, &request);
                if answers.send(answer).is_err() {
                    break;
                }
            }
        };
        if let Err(err) = thread::Builder::new()
            .name("memory-browser".into())
            .spawn(worker)
        {
            warn!("memory panel: no thread ({err})");
        }
        Self { send, receive }
    }

    pub fn request(&self, request: BrowseRequest) -> bool {
        self.send.send(request).is_ok()
    }
}

/// Opens the database for the request's target (again when it changed), then serves it.
fn browse(
    opened: &mut Option<(Target, MemoryEngine)>,
    request: &BrowseRequest,
) -> Result<Browsed, String> {
    if opened.as_ref().is_none_or(|(t, _)| *t != request.target) {
        *opened = None;
        // The chat's connection alone moves an unreadable file aside.
        let store = MemoryStore::open_as_is(&request.target.database).map_err(|e| e.to_string())?;
        let engine = MemoryEngine::new(store, None, &request.target.persona);
        *opened = Some((request.target.clone(), engine));
    }
    let Some((_, engine)) = opened.as_mut() else {
        return Err("the memory is not open".into());
    };
    serve(engine, request).map_err(|e| e.to_string())
}

/// What the Memory panel shows: the last answer, and the requests still on their way.
#[derive(Resource, Debug, Default)]
pub struct MemoryView {
    pub memories: Vec<Memory>,
    pub total: usize,
    /// The last action's outcome or the last failure, for the panel's status line.
    pub message: Option<Result<String, String>>,
    /// Requests sent and not yet answered.
    pub pending: usize,
    /// An answer has come since the panel opened.
    pub listed: bool,
    /// The embedding model is being downloaded and made.
    pub pulling: bool,
}

impl MemoryView {
    /// Sends a request and counts it as pending.
    pub fn send(&mut self, browser: &MemoryBrowser, request: BrowseRequest) {
        if browser.request(request) {
            self.pending += 1;
        } else {
            self.message = Some(Err("the memory panel's thread has stopped".into()));
        }
    }
}

fn receive(browser: Res<MemoryBrowser>, mut view: ResMut<MemoryView>) {
    for answer in browser.receive.try_iter() {
        view.pending = view.pending.saturating_sub(1);
        view.listed = true;
        match answer {
            Ok(browsed) => {
                if browsed.pulled {
                    view.pulling = false;
                }
                if let Some(Ok(done)) = &browsed.outcome {
                    info!("memory panel: {done}");
                }
                view.memories = browsed.memories;
                view.total = browsed.total;
                if browsed.outcome.is_some() {
                    view.message = browsed.outcome;
                }
            }
            Err(err) => {
                warn!("memory panel: {err}");
                view.message = Some(Err(err));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::memory::store::{MemoryKind, NewMemory};

    fn request(target: &Target, query: &str, action: BrowseAction) -> BrowseRequest {
        BrowseRequest {
            target: target.clone(),
            query: query.into(),
            action,
        }
    }

    /// The panel's whole round: list, search, edit, forget one, export, forget all, import
    /// the export back; the file is never overwritten and an unknown id is an error.
    #[test]
    fn the_panels_requests_change_the_file_and_answer_with_the_list() {
        let dir = tempfile::tempdir().expect("temp dir");
        let target = Target {
            database: dir.path().join("memory.sqlite"),
            persona: "Mate".into(),
        };
        let mut opened = None;
        {
            let mut store = MemoryStore::open(&target.database).expect("open").store;
            for text in ["Has a cat called Miso", "Works nights", "Likes green tea"] {
                store
                    .remember("Mate", NewMemory::new(MemoryKind::Fact, text), None)
                    .expect("w");
            }
            store
                .remember(
                    "Other",
                    NewMemory::new(MemoryKind::Fact, "Not Mate's"),
                    None,
                )
                .expect("w");
        }
        let all = browse(&mut opened, &request(&target, "", BrowseAction::List)).expect("list");
        assert_eq!(all.total, 3);
        assert_eq!(all.outcome, None);
        assert_eq!(all.memories[0].text, "Likes green tea", "newest first");
        let tea =
            browse(&mut opened, &request(&target, " TEA ", BrowseAction::List)).expect("search");
        assert_eq!(tea.memories.len(), 1);
        let id = tea.memories[0].id;

        let edited = browse(
            &mut opened,
            &request(
                &target,
                "",
                BrowseAction::Edit {
                    id,
                    text: "Likes black tea".into(),
                },
            ),
        )
        .expect("edit");
        assert_eq!(edited.outcome, Some(Ok("changed".into())));
        assert!(edited.memories.iter().any(|m| m.text == "Likes black tea"));
        let forgot = browse(
            &mut opened,
            &request(&target, "", BrowseAction::Forget { id }),
        )
        .expect("forget");
        assert_eq!(forgot.total, 2);
        let again = browse(
            &mut opened,
            &request(&target, "", BrowseAction::Forget { id }),
        )
        .expect("answer");
        assert!(matches!(again.outcome, Some(Err(ref e)) if e.contains("no longer there")));

        let exported =
            browse(&mut opened, &request(&target, "", BrowseAction::Export)).expect("export");
        let Some(Ok(said)) = exported.outcome else {
            panic!("{:?}", exported.outcome);
        };
        let files: Vec<PathBuf> = std::fs::read_dir(dir.path())
            .expect("dir")
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.to_string_lossy().contains("memory-export-Mate-"))
            .collect();
        assert_eq!(files.len(), 1, "{said}");
        assert!(said.contains("wrote 2 memories"), "{said}");
        let export = files[0].clone();
        let before = std::fs::read(&export).expect("read");
        // The same second: the name is taken, the file stays as it was.
        let time = export
            .file_stem()
            .and_then(|s| s.to_str())
            .and_then(|s| s.rsplit('-').next())
            .and_then(|t| t.parse::<i64>().ok())
            .expect("time in the name");
        assert_eq!(export_path(&target.database, "Mate", time), export);
        let engine = opened.take().expect("opened").1;
        assert!(engine.write_export(&export).is_err());
        assert_eq!(std::fs::read(&export).expect("read"), before);
        opened = Some((target.clone(), engine));

        let cleared = browse(&mut opened, &request(&target, "", BrowseAction::ForgetAll))
            .expect("forget all");
        assert_eq!(cleared.total, 0);
        assert_eq!(
            cleared.outcome,
            Some(Ok("forgot all 2 memories of Mate".into()))
        );
        let back = browse(
            &mut opened,
            &request(&target, "", BrowseAction::Import { path: export }),
        )
        .expect("import");
        assert_eq!(back.total, 2, "{:?}", back.outcome);
        let bad = browse(
            &mut opened,
            &request(
                &target,
                "",
                BrowseAction::Import {
                    path: dir.path().join("missing.json"),
                },
            ),
        )
        .expect("answer");
        assert!(matches!(bad.outcome, Some(Err(ref e)) if e.contains("missing.json")));
        // Another persona's memories were never touched.
        let other = Target {
            persona: "Other".into(),
            ..target
        };
        let theirs = browse(&mut opened, &request(&other, "", BrowseAction::List)).expect("l");
        assert_eq!(theirs.total, 1);
    }

    #[test]
    fn export_names_keep_letters_and_digits_only() {
        let path = export_path(Path::new("/data/memory.sqlite"), "Ma/te ../x", 7);
        assert_eq!(path, Path::new("/data/memory-export-Ma-te----x-7.json"));
    }
}
