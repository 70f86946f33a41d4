//! The memory store, without Bevy: one SQLite file (rusqlite, SQLite compiled in) holding every
//! persona's memories with their embedding vectors.
//!
//! - Every write is one transaction; WAL journal: a kill -9 in the middle of a write loses that
//!   write only, and the file opens.
//! - `secure_delete`: SQLite overwrites deleted content; forgetting everything also checkpoints
//!   the WAL and vacuums, so the forgotten text is no longer anywhere in the files.
//! - The schema is versioned (`PRAGMA user_version`) and migrated on open; a file that SQLite
//!   cannot read or that fails its integrity check is moved aside (never deleted) and a fresh
//!   one started, with a notice for the user. A file from a newer version is refused.
//! - Search is exact (a dot product over every vector of the persona, cached in memory):
//!   measured in `bench --memory`, it stays under the 20 ms goal far past 10 000 memories.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use rusqlite::{Connection, OptionalExtension, Transaction, params};
use serde::{Deserialize, Serialize};

/// Each entry migrates the schema from version `index` to `index + 1`.
const MIGRATIONS: &[&str] = &[
    "CREATE TABLE memories (
        id INTEGER PRIMARY KEY,
        persona TEXT NOT NULL,
        kind TEXT NOT NULL CHECK (kind IN ('fact', 'episode')),
        key TEXT,
        text TEXT NOT NULL,
        importance REAL NOT NULL,
        created INTEGER NOT NULL,
        updated INTEGER NOT NULL,
        embedding BLOB
    );
    CREATE INDEX memories_by_persona ON memories (persona, kind, key);",
    // Finding the same text again without reading every row (`remember`).
    "CREATE INDEX memories_by_text ON memories (persona, kind, text);",
];

/// The schema version this build writes.
pub const SCHEMA_VERSION: u32 = MIGRATIONS.len() as u32;

/// Longest memory text kept (characters); longer input is cut.
pub const MAX_TEXT_CHARS: usize = 2_000;

/// A fact whose vector is at least this close to an older fact of the same persona replaces it
/// (same subject, changed value: "the cat is called Miso" -> "the cat is called Tofu").
pub const REPLACE_SIMILARITY: f32 = 0.95;

#[derive(Debug, thiserror::Error)]
pub enum MemoryError {
    #[error("memory database {path}: {message}")]
    Database { path: PathBuf, message: String },
    #[error(
        "memory database {path} was written by a newer desktop-mate (schema {found}, this one \
         knows {SCHEMA_VERSION}); left untouched"
    )]
    Newer { path: PathBuf, found: u32 },
    #[error("embedding model: {0}")]
    Embedding(String),
    #[error("{0}")]
    Invalid(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MemoryKind {
    /// Something true about the user ("the user's name is Léa").
    Fact,
    /// What a conversation was about.
    Episode,
}

impl MemoryKind {
    pub fn as_str(self) -> &'static str {
        match self {
            MemoryKind::Fact => "fact",
            MemoryKind::Episode => "episode",
        }
    }

    fn parse(text: &str) -> Option<Self> {
        match text {
            "fact" => Some(MemoryKind::Fact),
            "episode" => Some(MemoryKind::Episode),
            _ => None,
        }
    }
}

/// A stored memory.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Memory {
    pub id: i64,
    pub kind: MemoryKind,
    /// What a fact is about (`user.name`), when the writer named it: a fact with the same key
    /// replaces the older one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    pub text: String,
    /// 0..1.
    pub importance: f32,
    /// Unix seconds.
    pub created: i64,
    pub updated: i64,
}

/// A memory to write.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct NewMemory {
    pub kind: MemoryKind,
    #[serde(default)]
    pub key: Option<String>,
    pub text: String,
    #[serde(default = "default_importance")]
    pub importance: f32,
    /// Unix seconds; `None` = now (import keeps the exported times).
    #[serde(default)]
    pub created: Option<i64>,
    #[serde(default)]
    pub updated: Option<i64>,
}

fn default_importance() -> f32 {
    0.5
}

impl NewMemory {
    pub fn new(kind: MemoryKind, text: impl Into<String>) -> Self {
        Self {
            kind,
            key: None,
            text: text.into(),
            importance: default_importance(),
            created: None,
            updated: None,
        }
    }

    /// Trimmed, cut to [`MAX_TEXT_CHARS`], importance clamped; an empty text is refused.
    fn cleaned(mut self) -> Result<Self, MemoryError> {
        let text = self.text.trim();
        if text.is_empty() {
            return Err(MemoryError::Invalid("a memory's text is empty".into()));
        }
        self.text = text.chars().take(MAX_TEXT_CHARS).collect();
        self.key = self
            .key
            .map(|key| key.trim().to_lowercase())
            .filter(|key| !key.is_empty());
        self.importance = if self.importance.is_finite() {
            self.importance.clamp(0.0, 1.0)
        } else {
            default_importance()
        };
        Ok(self)
    }
}

/// What a write did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Written {
    Added(i64),
    /// An older fact about the same thing now says the new text.
    Replaced(i64),
}

/// One persona's vectors, in memory for search.
#[derive(Debug, Default)]
struct VectorIndex {
    dimension: usize,
    ids: Vec<i64>,
    /// `ids.len() * dimension` values, unit length each.
    values: Vec<f32>,
}

impl VectorIndex {
    fn row(&self, index: usize) -> &[f32] {
        &self.values[index * self.dimension..(index + 1) * self.dimension]
    }
}

pub struct MemoryStore {
    connection: Connection,
    path: PathBuf,
    /// Per persona, built on the first search after a write.
    index: HashMap<String, VectorIndex>,
    /// SQLite's `data_version` when last looked at: it changes when another connection (the
    /// Memory panel, the terminal) commits.
    data_version: i64,
    /// Another connection committed since [`MemoryStore::take_external_change`] last said so.
    external_change: bool,
}

/// An opened store and what the user should be told about it.
pub struct Opened {
    pub store: MemoryStore,
    pub notice: Option<String>,
}

fn db_error(path: &Path) -> impl Fn(rusqlite::Error) -> MemoryError + '_ {
    move |err| MemoryError::Database {
        path: path.to_owned(),
        message: err.to_string(),
    }
}

/// Vector to bytes (little-endian f32) and back.
fn to_blob(vector: &[f32]) -> Vec<u8> {
    vector.iter().flat_map(|v| v.to_le_bytes()).collect()
}

fn from_blob(blob: &[u8]) -> Vec<f32> {
    blob.as_chunks::<4>()
        .0
        .iter()
        .map(|b| f32::from_le_bytes(*b))
        .collect()
}

pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// Unix seconds now (0 before 1970).
pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

impl MemoryStore {
    /// Opens (or creates) the database at `path`. A file SQLite cannot use is moved aside to
    /// `<name>.broken-<unix time>` and a fresh one started; the notice says so.
    pub fn open(path: &Path) -> Result<Opened, MemoryError> {
        Self::create_folder(path)?;
        match Self::open_checked(path) {
            Ok(store) => Ok(Opened {
                store,
                notice: None,
            }),
            Err(err @ MemoryError::Newer { .. }) => Err(err),
            Err(err) => {
                let aside = aside_name(path);
                for suffix in ["", "-wal", "-shm"] {
                    let from = PathBuf::from(format!("{}{suffix}", path.display()));
                    if from.exists() {
                        let to = PathBuf::from(format!("{}{suffix}", aside.display()));
                        std::fs::rename(&from, &to).map_err(|rename| MemoryError::Database {
                            path: path.to_owned(),
                            message: format!("{err}; and it cannot be moved aside: {rename}"),
                        })?;
                    }
                }
                let store = Self::open_checked(path)?;
                let notice = format!(
                    "the memory database could not be read ({err}); it was moved to {} and a \
                     new one started",
                    aside.display()
                );
                tracing::warn!("{notice}");
                Ok(Opened {
                    store,
                    notice: Some(notice),
                })
            }
        }
    }

    /// Opens (or creates) the database without moving an unreadable file aside: for a second
    /// connection (the Memory panel) beside the chat's, which alone repairs.
    pub fn open_as_is(path: &Path) -> Result<Self, MemoryError> {
        Self::create_folder(path)?;
        Self::open_checked(path)
    }

    fn create_folder(path: &Path) -> Result<(), MemoryError> {
        match path.parent() {
            Some(parent) => std::fs::create_dir_all(parent).map_err(|err| MemoryError::Database {
                path: path.to_owned(),
                message: format!("cannot create its folder: {err}"),
            }),
            None => Ok(()),
        }
    }

    fn open_checked(path: &Path) -> Result<Self, MemoryError> {
        let err = db_error(path);
        let mut connection = Connection::open(path).map_err(&err)?;
        connection
            .busy_timeout(std::time::Duration::from_secs(5))
            .map_err(&err)?;
        // Reading the schema is the first real read: a file that is not a database fails here.
        let version: u32 = connection
            .query_row("PRAGMA user_version", [], |row| row.get(0))
            .map_err(&err)?;
        if version > SCHEMA_VERSION {
            return Err(MemoryError::Newer {
                path: path.to_owned(),
                found: version,
            });
        }
        let check: String = connection
            .query_row("PRAGMA quick_check", [], |row| row.get(0))
            .map_err(&err)?;
        if check != "ok" {
            return Err(MemoryError::Database {
                path: path.to_owned(),
                message: format!("integrity check: {check}"),
            });
        }
        connection
            .execute_batch(
                "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; \
                 PRAGMA secure_delete = ON;",
            )
            .map_err(&err)?;
        let tx = connection.transaction().map_err(&err)?;
        for (from, migration) in MIGRATIONS.iter().enumerate().skip(version as usize) {
            tx.execute_batch(migration).map_err(&err)?;
            tx.pragma_update(None, "user_version", from as u32 + 1)
                .map_err(&err)?;
        }
        tx.commit().map_err(&err)?;
        let data_version = connection
            .query_row("PRAGMA data_version", [], |row| row.get(0))
            .map_err(&err)?;
        Ok(Self {
            connection,
            path: path.to_owned(),
            index: HashMap::new(),
            data_version,
            external_change: false,
        })
    }

    /// Drops the search index when another connection has committed since the last look
    /// (its rows may be edited, forgotten or new).
    fn follow_other_writers(&mut self) -> Result<(), MemoryError> {
        let version: i64 = self
            .connection
            .query_row("PRAGMA data_version", [], |row| row.get(0))
            .map_err(self.err())?;
        if version != self.data_version {
            self.data_version = version;
            self.index.clear();
            self.external_change = true;
        }
        Ok(())
    }

    /// True once after another connection (the Memory panel, the terminal) has changed the
    /// file: memories it edited or imported may need their vectors
    /// ([`MemoryEngine::embed_missing`](super::engine::MemoryEngine::embed_missing)).
    pub fn take_external_change(&mut self) -> Result<bool, MemoryError> {
        self.follow_other_writers()?;
        Ok(std::mem::take(&mut self.external_change))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn err(&self) -> impl Fn(rusqlite::Error) -> MemoryError + '_ {
        db_error(&self.path)
    }

    /// Writes one memory in one transaction. A fact with the key of an older fact, or whose
    /// vector is within [`REPLACE_SIMILARITY`] of one, replaces it.
    pub fn remember(
        &mut self,
        persona: &str,
        memory: NewMemory,
        embedding: Option<&[f32]>,
    ) -> Result<Written, MemoryError> {
        let memory = memory.cleaned()?;
        // The same text again (a statement repeated, notes on a conversation told twice) is
        // the old memory, made recent: never a second copy that recall would show twice.
        let replaced = match self.same_text(persona, &memory)? {
            Some(id) => Some(id),
            None => match memory.kind {
                MemoryKind::Fact => self.same_fact(persona, &memory, embedding)?,
                MemoryKind::Episode => None,
            },
        };
        let stamp = now();
        let updated = memory.updated.unwrap_or(stamp);
        let blob = embedding.map(to_blob);
        let path = self.path.clone();
        let err = db_error(&path);
        let tx = self.connection.transaction().map_err(&err)?;
        let written = match replaced {
            Some(id) => {
                tx.execute(
                    "UPDATE memories SET text = ?1, key = COALESCE(?2, key), importance = \
                     MAX(importance, ?3), updated = ?4, embedding = ?5 WHERE id = ?6",
                    params![
                        memory.text,
                        memory.key,
                        memory.importance,
                        updated,
                        blob,
                        id
                    ],
                )
                .map_err(&err)?;
                Written::Replaced(id)
            }
            None => Written::Added(insert(&tx, persona, &memory, stamp, blob).map_err(&err)?),
        };
        tx.commit().map_err(&err)?;
        // Keep a built index current rather than reading every vector again.
        if let Some(index) = self.index.get_mut(persona) {
            match (written, embedding) {
                (_, Some(vector)) if index.dimension != vector.len() && !index.ids.is_empty() => {
                    self.index.remove(persona);
                }
                (Written::Added(id), Some(vector)) => {
                    index.dimension = vector.len();
                    index.ids.push(id);
                    index.values.extend_from_slice(vector);
                }
                (Written::Replaced(id), Some(vector)) => {
                    index.dimension = vector.len();
                    match index.ids.iter().position(|known| *known == id) {
                        Some(row) => index.values[row * vector.len()..(row + 1) * vector.len()]
                            .copy_from_slice(vector),
                        None => {
                            index.ids.push(id);
                            index.values.extend_from_slice(vector);
                        }
                    }
                }
                (Written::Replaced(_), None) => {
                    self.index.remove(persona);
                }
                (Written::Added(_), None) => {}
            }
        }
        Ok(written)
    }

    /// The memory of the same kind that already says exactly this.
    fn same_text(&self, persona: &str, memory: &NewMemory) -> Result<Option<i64>, MemoryError> {
        self.connection
            .query_row(
                "SELECT id FROM memories WHERE persona = ?1 AND kind = ?2 AND text = ?3 \
                 ORDER BY updated DESC LIMIT 1",
                params![persona, memory.kind.as_str(), memory.text],
                |row| row.get(0),
            )
            .optional()
            .map_err(self.err())
    }

    /// The older fact the new one replaces, if any.
    fn same_fact(
        &mut self,
        persona: &str,
        memory: &NewMemory,
        embedding: Option<&[f32]>,
    ) -> Result<Option<i64>, MemoryError> {
        if let Some(key) = &memory.key {
            let found = self
                .connection
                .query_row(
                    "SELECT id FROM memories WHERE persona = ?1 AND kind = 'fact' AND key = ?2 \
                     ORDER BY updated DESC LIMIT 1",
                    params![persona, key],
                    |row| row.get(0),
                )
                .optional()
                .map_err(self.err())?;
            if found.is_some() {
                return Ok(found);
            }
        }
        let Some(embedding) = embedding else {
            return Ok(None);
        };
        let facts = self.fact_ids(persona)?;
        let index = self.index_for(persona)?;
        let mut best: Option<(i64, f32)> = None;
        for (row, id) in index.ids.iter().enumerate() {
            if !facts.contains(id) || index.dimension != embedding.len() {
                continue;
            }
            let similarity = dot(index.row(row), embedding);
            if similarity >= REPLACE_SIMILARITY && best.is_none_or(|(_, s)| similarity > s) {
                best = Some((*id, similarity));
            }
        }
        Ok(best.map(|(id, _)| id))
    }

    fn fact_ids(&self, persona: &str) -> Result<std::collections::HashSet<i64>, MemoryError> {
        let mut statement = self
            .connection
            .prepare("SELECT id FROM memories WHERE persona = ?1 AND kind = 'fact'")
            .map_err(self.err())?;
        let ids = statement
            .query_map([persona], |row| row.get(0))
            .map_err(self.err())?
            .collect::<Result<_, _>>()
            .map_err(self.err())?;
        Ok(ids)
    }

    /// The persona's vectors, read once after each write.
    fn index_for(&mut self, persona: &str) -> Result<&VectorIndex, MemoryError> {
        self.follow_other_writers()?;
        if !self.index.contains_key(persona) {
            let mut index = VectorIndex::default();
            let mut statement = self
                .connection
                .prepare(
                    "SELECT id, embedding FROM memories WHERE persona = ?1 AND embedding IS NOT \
                     NULL ORDER BY id",
                )
                .map_err(db_error(&self.path))?;
            let mut rows = statement.query([persona]).map_err(db_error(&self.path))?;
            while let Some(row) = rows.next().map_err(db_error(&self.path))? {
                let id: i64 = row.get(0).map_err(db_error(&self.path))?;
                let blob: Vec<u8> = row.get(1).map_err(db_error(&self.path))?;
                let vector = from_blob(&blob);
                if index.dimension == 0 {
                    index.dimension = vector.len();
                }
                // Vectors of another model (another dimension) are skipped until re-embedded.
                if vector.len() == index.dimension && index.dimension > 0 {
                    index.ids.push(id);
                    index.values.extend_from_slice(&vector);
                }
            }
            drop(rows);
            drop(statement);
            self.index.insert(persona.to_owned(), index);
        }
        Ok(&self.index[persona])
    }

    /// The `limit` memories closest to `query` (a unit vector), with their similarity.
    pub fn nearest(
        &mut self,
        persona: &str,
        query: &[f32],
        limit: usize,
    ) -> Result<Vec<(i64, f32)>, MemoryError> {
        let index = self.index_for(persona)?;
        if index.dimension != query.len() {
            return Ok(Vec::new());
        }
        let mut scored: Vec<(i64, f32)> = index
            .ids
            .iter()
            .enumerate()
            .map(|(row, id)| (*id, dot(index.row(row), query)))
            .collect();
        let limit = limit.min(scored.len());
        if limit == 0 {
            return Ok(Vec::new());
        }
        scored.select_nth_unstable_by(limit - 1, |a, b| b.1.total_cmp(&a.1));
        scored.truncate(limit);
        scored.sort_by(|a, b| b.1.total_cmp(&a.1));
        Ok(scored)
    }

    fn read(row: &rusqlite::Row) -> rusqlite::Result<Memory> {
        let kind: String = row.get(1)?;
        Ok(Memory {
            id: row.get(0)?,
            kind: MemoryKind::parse(&kind).unwrap_or(MemoryKind::Fact),
            key: row.get(2)?,
            text: row.get(3)?,
            importance: row.get(4)?,
            created: row.get(5)?,
            updated: row.get(6)?,
        })
    }

    const COLUMNS: &str = "id, kind, key, text, importance, created, updated";

    /// The persona's memories, newest first.
    pub fn list(&self, persona: &str) -> Result<Vec<Memory>, MemoryError> {
        let mut statement = self
            .connection
            .prepare(&format!(
                "SELECT {} FROM memories WHERE persona = ?1 ORDER BY updated DESC, id DESC",
                Self::COLUMNS
            ))
            .map_err(self.err())?;
        statement
            .query_map([persona], Self::read)
            .map_err(self.err())?
            .collect::<Result<_, _>>()
            .map_err(self.err())
    }

    pub fn get(&self, id: i64) -> Result<Option<Memory>, MemoryError> {
        self.connection
            .query_row(
                &format!("SELECT {} FROM memories WHERE id = ?1", Self::COLUMNS),
                [id],
                Self::read,
            )
            .optional()
            .map_err(self.err())
    }

    /// The memories of these ids, in the same order (missing ones left out).
    pub fn get_many(&self, ids: &[i64]) -> Result<Vec<Memory>, MemoryError> {
        ids.iter()
            .filter_map(|id| self.get(*id).transpose())
            .collect()
    }

    /// Memories without a vector (imported, or written while no embedding model was there).
    pub fn without_vectors(&self, persona: &str) -> Result<Vec<(i64, String)>, MemoryError> {
        let mut statement = self
            .connection
            .prepare("SELECT id, text FROM memories WHERE persona = ?1 AND embedding IS NULL")
            .map_err(self.err())?;
        statement
            .query_map([persona], |row| Ok((row.get(0)?, row.get(1)?)))
            .map_err(self.err())?
            .collect::<Result<_, _>>()
            .map_err(self.err())
    }

    pub fn set_vector(&mut self, id: i64, vector: &[f32]) -> Result<(), MemoryError> {
        self.connection
            .execute(
                "UPDATE memories SET embedding = ?1 WHERE id = ?2",
                params![to_blob(vector), id],
            )
            .map_err(db_error(&self.path))?;
        self.index.clear();
        Ok(())
    }

    /// Changes a memory's text (and vector); false when there is no such memory.
    pub fn edit(
        &mut self,
        id: i64,
        text: &str,
        vector: Option<&[f32]>,
    ) -> Result<bool, MemoryError> {
        let cleaned = NewMemory::new(MemoryKind::Fact, text).cleaned()?;
        let changed = self
            .connection
            .execute(
                "UPDATE memories SET text = ?1, embedding = ?2, updated = ?3 WHERE id = ?4",
                params![cleaned.text, vector.map(to_blob), now(), id],
            )
            .map_err(db_error(&self.path))?;
        self.index.clear();
        Ok(changed > 0)
    }

    /// Deletes one memory; false when there was none.
    pub fn forget(&mut self, id: i64) -> Result<bool, MemoryError> {
        let deleted = self
            .connection
            .execute("DELETE FROM memories WHERE id = ?1", [id])
            .map_err(db_error(&self.path))?;
        self.index.clear();
        self.scrub()?;
        Ok(deleted > 0)
    }

    /// Deletes every memory of the persona, and leaves no trace of them in the files.
    pub fn forget_all(&mut self, persona: &str) -> Result<usize, MemoryError> {
        let deleted = self
            .connection
            .execute("DELETE FROM memories WHERE persona = ?1", [persona])
            .map_err(db_error(&self.path))?;
        self.index.clear();
        self.scrub()?;
        Ok(deleted)
    }

    /// Copies the WAL back and empties it, then rebuilds the file without free pages. Another
    /// connection reading at that moment (the Memory panel, the chat) keeps the WAL: the
    /// checkpoint is tried again for up to 5 s.
    fn scrub(&mut self) -> Result<(), MemoryError> {
        self.checkpoint()?;
        self.connection
            .execute_batch("VACUUM;")
            .map_err(db_error(&self.path))?;
        self.checkpoint()
    }

    fn checkpoint(&mut self) -> Result<(), MemoryError> {
        for _ in 0..250 {
            let busy: i64 = self
                .connection
                .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |row| row.get(0))
                .map_err(db_error(&self.path))?;
            if busy == 0 {
                return Ok(());
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        Err(MemoryError::Database {
            path: self.path.clone(),
            message: "another connection kept the journal busy: forgotten text may remain in \
                      memory.sqlite-wal until the next forget"
                .into(),
        })
    }

    /// Writes many memories in one transaction (import); returns how many were added.
    pub fn remember_all(
        &mut self,
        persona: &str,
        memories: Vec<(NewMemory, Option<Vec<f32>>)>,
    ) -> Result<usize, MemoryError> {
        let path = self.path.clone();
        let err = db_error(&path);
        let tx: Transaction = self.connection.transaction().map_err(&err)?;
        let stamp = now();
        let mut added = 0;
        for (memory, vector) in memories {
            let memory = memory.cleaned()?;
            let blob = vector.as_deref().map(to_blob);
            insert(&tx, persona, &memory, stamp, blob).map_err(&err)?;
            added += 1;
        }
        tx.commit().map_err(&err)?;
        self.index.remove(persona);
        Ok(added)
    }

    /// The persona's memories counted up to `limit` (never reads past it: cheap on any store).
    pub fn count_at_most(&self, persona: &str, limit: usize) -> Result<usize, MemoryError> {
        self.connection
            .query_row(
                "SELECT COUNT(*) FROM (SELECT 1 FROM memories WHERE persona = ?1 LIMIT ?2)",
                params![persona, limit as i64],
                |row| row.get::<_, i64>(0),
            )
            .map(|n| n as usize)
            .map_err(self.err())
    }

    pub fn count(&self, persona: &str) -> Result<usize, MemoryError> {
        self.connection
            .query_row(
                "SELECT COUNT(*) FROM memories WHERE persona = ?1",
                [persona],
                |row| row.get::<_, i64>(0),
            )
            .map(|n| n as usize)
            .map_err(self.err())
    }
}

/// Inserts a cleaned memory (times default to `stamp`); returns its id.
fn insert(
    tx: &Transaction,
    persona: &str,
    memory: &NewMemory,
    stamp: i64,
    blob: Option<Vec<u8>>,
) -> rusqlite::Result<i64> {
    tx.execute(
        "INSERT INTO memories (persona, kind, key, text, importance, created, updated, \
         embedding) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        params![
            persona,
            memory.kind.as_str(),
            memory.key,
            memory.text,
            memory.importance,
            memory.created.unwrap_or(stamp),
            memory.updated.or(memory.created).unwrap_or(stamp),
            blob
        ],
    )?;
    Ok(tx.last_insert_rowid())
}

fn aside_name(path: &Path) -> PathBuf {
    PathBuf::from(format!("{}.broken-{}", path.display(), now()))
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::memory::embed::unit;

    #[test]
    fn the_same_text_again_is_the_old_memory_made_recent() {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut store = MemoryStore::open(&dir.path().join("m.sqlite"))
            .expect("open")
            .store;
        let said = || NewMemory::new(MemoryKind::Fact, "The user said: \"I work nights\"");
        let Written::Added(id) = store.remember("Mate", said(), None).expect("write") else {
            panic!("a first memory is added");
        };
        let mut later = said();
        let minute_later = now() + 60;
        later.updated = Some(minute_later);
        assert_eq!(
            store.remember("Mate", later, None).expect("write"),
            Written::Replaced(id),
            "no second copy, without a vector too"
        );
        let episode = NewMemory::new(MemoryKind::Episode, "The user said: \"I work nights\"");
        assert!(
            matches!(store.remember("Mate", episode, None), Ok(Written::Added(_))),
            "another kind is another memory"
        );
        let listed = store.list("Mate").expect("list");
        assert_eq!(listed.len(), 2, "{listed:?}");
        let fact = listed.iter().find(|m| m.id == id).expect("the fact");
        assert_eq!(fact.updated, minute_later, "made recent");
    }

    #[test]
    fn a_database_of_the_first_schema_is_migrated_with_its_memories() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("m.sqlite");
        {
            let connection = Connection::open(&path).expect("create");
            connection.execute_batch(MIGRATIONS[0]).expect("schema 1");
            connection
                .execute(
                    "INSERT INTO memories (persona, kind, text, importance, created, updated) \
                     VALUES ('Mate', 'fact', 'Has a cat called Miso', 0.5, 1, 1)",
                    [],
                )
                .expect("a memory");
            connection
                .pragma_update(None, "user_version", 1)
                .expect("version 1");
        }
        let opened = MemoryStore::open(&path).expect("open");
        assert_eq!(opened.notice, None, "nothing moved aside");
        let mut store = opened.store;
        let version: u32 = store
            .connection
            .query_row("PRAGMA user_version", [], |row| row.get(0))
            .expect("version");
        assert_eq!(version, SCHEMA_VERSION);
        let indexes: i64 = store
            .connection
            .query_row(
                "SELECT COUNT(*) FROM sqlite_master WHERE name = 'memories_by_text'",
                [],
                |row| row.get(0),
            )
            .expect("schema");
        assert_eq!(indexes, 1, "the text index was added");
        let cat = NewMemory::new(MemoryKind::Fact, "Has a cat called Miso");
        assert!(
            matches!(store.remember("Mate", cat, None), Ok(Written::Replaced(_))),
            "the old row is found by its text"
        );
        assert_eq!(store.count("Mate").expect("count"), 1);
    }

    #[test]
    fn facts_with_the_same_key_or_a_close_vector_replace_older_ones() {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut store = MemoryStore::open(&dir.path().join("m.sqlite"))
            .expect("open")
            .store;
        let mut cat = NewMemory::new(MemoryKind::Fact, "The user's cat is called Miso");
        cat.key = Some("user.cat".into());
        let Written::Added(id) = store.remember("Mate", cat.clone(), None).expect("write") else {
            panic!("a first fact is added");
        };
        cat.text = "The user's cat is called Tofu".into();
        assert_eq!(
            store.remember("Mate", cat, None).expect("write"),
            Written::Replaced(id)
        );
        let near = unit(&[1.0, 0.0, 0.05]);
        let far = unit(&[0.0, 1.0, 0.0]);
        let a = NewMemory::new(MemoryKind::Fact, "Works nights");
        let Written::Added(night) = store
            .remember("Mate", a, Some(&unit(&[1.0, 0.0, 0.0])))
            .expect("w")
        else {
            panic!("added");
        };
        let b = NewMemory::new(MemoryKind::Fact, "Works days now");
        assert_eq!(
            store.remember("Mate", b, Some(&near)).expect("w"),
            Written::Replaced(night)
        );
        let c = NewMemory::new(MemoryKind::Fact, "Likes tea");
        assert!(matches!(
            store.remember("Mate", c, Some(&far)).expect("w"),
            Written::Added(_)
        ));
        // Another persona's memories are its own.
        let d = NewMemory::new(MemoryKind::Fact, "Works nights");
        assert!(matches!(
            store.remember("Other", d, Some(&near)).expect("w"),
            Written::Added(_)
        ));
        let texts: Vec<String> = store
            .list("Mate")
            .expect("list")
            .into_iter()
            .map(|m| m.text)
            .collect();
        assert_eq!(texts.len(), 3, "{texts:?}");
        assert!(texts.contains(&"The user's cat is called Tofu".to_owned()));
        assert!(texts.contains(&"Works days now".to_owned()));
        assert_eq!(
            store.nearest("Mate", &far, 1).expect("search")[0].0,
            store.list("Mate").expect("l")[0].id
        );
        assert!(
            store
                .remember("Mate", NewMemory::new(MemoryKind::Fact, "  "), None)
                .is_err()
        );
    }

    /// The chat's connection sees what the Memory panel's connection changed: a forgotten
    /// memory is no longer found by vector, an edited one is reported for its new vector.
    #[test]
    fn another_connections_writes_reach_the_search() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("m.sqlite");
        let mut chat = MemoryStore::open(&path).expect("open").store;
        let cat = unit(&[1.0, 0.0, 0.0]);
        let tea = unit(&[0.0, 1.0, 0.0]);
        chat.remember(
            "Mate",
            NewMemory::new(MemoryKind::Fact, "Has a cat"),
            Some(&cat),
        )
        .expect("w");
        let Written::Added(tea_id) = chat
            .remember(
                "Mate",
                NewMemory::new(MemoryKind::Fact, "Likes tea"),
                Some(&tea),
            )
            .expect("w")
        else {
            panic!("added");
        };
        assert_eq!(chat.nearest("Mate", &tea, 1).expect("search")[0].0, tea_id);
        assert!(!chat.take_external_change().expect("look"), "own writes");

        let mut panel = MemoryStore::open(&path).expect("open").store;
        assert!(panel.forget(tea_id).expect("forget"));
        let found = chat.nearest("Mate", &tea, 5).expect("search");
        assert!(found.iter().all(|(id, _)| *id != tea_id), "{found:?}");
        assert!(chat.take_external_change().expect("look"));
        assert!(!chat.take_external_change().expect("look"), "said once");

        let id = panel.list("Mate").expect("list")[0].id;
        assert!(panel.edit(id, "Has two cats", None).expect("edit"));
        assert!(chat.take_external_change().expect("look"));
        assert_eq!(
            chat.without_vectors("Mate").expect("missing"),
            [(id, "Has two cats".to_owned())]
        );
    }

    #[test]
    fn a_file_that_is_not_a_database_is_moved_aside_and_a_newer_one_is_refused() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("m.sqlite");
        std::fs::write(&path, vec![0x5a; 8192]).expect("write junk");
        let opened = MemoryStore::open(&path).expect("a fresh store");
        let notice = opened.notice.expect("a notice");
        assert!(notice.contains("moved to"), "{notice}");
        let aside: Vec<_> = std::fs::read_dir(dir.path())
            .expect("list")
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().contains(".broken-"))
            .collect();
        assert_eq!(aside.len(), 1);
        assert_eq!(
            std::fs::read(aside[0].path()).expect("kept"),
            vec![0x5a; 8192]
        );
        drop(opened.store);
        let newer = Connection::open(&path).expect("open");
        newer
            .pragma_update(None, "user_version", SCHEMA_VERSION + 1)
            .expect("bump");
        drop(newer);
        assert!(matches!(
            MemoryStore::open(&path),
            Err(MemoryError::Newer { .. })
        ));
    }
}
