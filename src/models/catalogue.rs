//! The curated list of models the mascot offers to download (`catalogue.ron`).

use std::collections::HashSet;
use std::path::Path;

use serde::Deserialize;

/// The catalogue shipped inside the binary.
pub const BUILTIN_CATALOGUE_RON: &str = include_str!("../../config/models.ron");

const GIB: u64 = 1024 * 1024 * 1024;
const MIB: u64 = 1024 * 1024;

/// RAM left to the OS, the desktop and the mascot itself when judging whether a model fits.
pub const RAM_MARGIN_BYTES: u64 = GIB;

fn default_revision() -> String {
    "main".to_owned()
}

/// One downloadable model.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CatalogueEntry {
    /// Short stable name (`qwen2.5-1.5b`), used in settings and on the command line.
    pub id: String,
    /// Display name.
    pub name: String,
    /// Hugging Face repository, `owner/name`.
    pub repo: String,
    /// Commit or branch the file is fetched from; `main` when not given.
    #[serde(default = "default_revision")]
    pub revision: String,
    /// File name in the repository and on disk.
    pub file: String,
    /// Exact size in bytes.
    pub size_bytes: u64,
    /// Lower-case hex SHA-256 of the file; `None` when it could not be confirmed
    /// (the download is then checked by size only and logged as unverified).
    pub sha256: Option<String>,
    pub licence: String,
    /// Memory the model needs resident (weights + KV cache at a 4k context), in MiB.
    pub ram_mib: u64,
    /// One line for the picker.
    pub good_for: String,
}

impl CatalogueEntry {
    pub fn url(&self) -> String {
        format!(
            "https://huggingface.co/{}/resolve/{}/{}",
            self.repo, self.revision, self.file
        )
    }

    pub fn ram_needed_bytes(&self) -> u64 {
        self.ram_mib * MIB
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Catalogue {
    pub models: Vec<CatalogueEntry>,
}

#[derive(Debug, thiserror::Error)]
pub enum CatalogueError {
    #[error("cannot read model catalogue {path}: {source}")]
    Read {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("model catalogue is not valid RON: {0}")]
    Parse(#[from] ron::error::SpannedError),
    #[error("model catalogue entry {id:?}: {problem}")]
    Invalid { id: String, problem: String },
}

impl Catalogue {
    /// The catalogue compiled into the binary.
    pub fn builtin() -> Self {
        Self::parse(BUILTIN_CATALOGUE_RON).expect("the built-in catalogue.ron is checked by tests")
    }

    pub fn parse(text: &str) -> Result<Self, CatalogueError> {
        let catalogue: Catalogue = ron::from_str(text)?;
        catalogue.validate()?;
        Ok(catalogue)
    }

    pub fn load(path: &Path) -> Result<Self, CatalogueError> {
        let text = crate::config::read_text_file(path, crate::config::MAX_TEXT_FILE_BYTES)
            .map_err(|source| CatalogueError::Read {
                path: path.to_owned(),
                source,
            })?;
        Self::parse(&text)
    }

    pub fn get(&self, id: &str) -> Option<&CatalogueEntry> {
        self.models.iter().find(|m| m.id == id)
    }

    pub fn by_file(&self, file: &str) -> Option<&CatalogueEntry> {
        self.models.iter().find(|m| m.file == file)
    }

    fn validate(&self) -> Result<(), CatalogueError> {
        let mut ids = HashSet::new();
        let mut files = HashSet::new();
        for m in &self.models {
            let bad = |problem: &str| CatalogueError::Invalid {
                id: m.id.clone(),
                problem: problem.to_owned(),
            };
            if m.id.is_empty() || !ids.insert(m.id.as_str()) {
                return Err(bad("id is empty or used twice"));
            }
            if !files.insert(m.file.as_str()) {
                return Err(bad("file name used by two entries"));
            }
            if !is_plain_file_name(&m.file) || !m.file.ends_with(".gguf") {
                return Err(bad("file must be a plain *.gguf file name"));
            }
            if m.repo.split('/').count() != 2 {
                return Err(bad("repo must be owner/name"));
            }
            if m.size_bytes == 0 {
                return Err(bad("size_bytes must not be 0"));
            }
            if let Some(sha) = &m.sha256
                && !is_sha256_hex(sha)
            {
                return Err(bad("sha256 must be 64 lower-case hex digits"));
            }
        }
        Ok(())
    }
}

/// A bare file name: no folder, no `..`, nothing a path could escape with.
pub(crate) fn is_plain_file_name(name: &str) -> bool {
    !name.is_empty()
        && name != "."
        && name != ".."
        && !name.contains(['/', '\\', '\0'])
        && Path::new(name).file_name().is_some_and(|f| f == name)
}

pub(crate) fn is_sha256_hex(s: &str) -> bool {
    s.len() == 64
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// The entries that fit this machine: resident memory need <= total RAM - 1 GiB margin, or
/// <= free VRAM (llama.cpp offloads the whole model when it fits). Keeps catalogue order.
pub fn fits_machine(
    catalogue: &Catalogue,
    total_ram_bytes: u64,
    free_vram_bytes: Option<u64>,
) -> Vec<&CatalogueEntry> {
    let ram_budget = total_ram_bytes.saturating_sub(RAM_MARGIN_BYTES);
    catalogue
        .models
        .iter()
        .filter(|m| {
            let need = m.ram_needed_bytes();
            need <= ram_budget || free_vram_bytes.is_some_and(|vram| need <= vram)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_catalogue_parses_and_has_the_six_models() {
        let c = Catalogue::builtin();
        let ids: Vec<&str> = c.models.iter().map(|m| m.id.as_str()).collect();
        for id in [
            "qwen2.5-0.5b",
            "qwen2.5-1.5b",
            "llama3.2-1b",
            "llama3.2-3b",
            "gemma3-1b",
            "smollm2-1.7b",
        ] {
            assert!(ids.contains(&id), "{id} missing from {ids:?}");
        }
        for m in &c.models {
            assert!(m.url().starts_with("https://huggingface.co/"));
            assert!(
                m.url()
                    .ends_with(&format!("/resolve/{}/{}", m.revision, m.file))
            );
            assert!(m.file.contains("Q4_K_M") || m.file.contains("q4_k_m"));
            assert!(
                m.ram_needed_bytes() > m.size_bytes,
                "{} needs more RAM than its file",
                m.id
            );
        }
    }

    #[test]
    fn revision_defaults_to_main_and_sha_may_be_absent() {
        let c = Catalogue::parse(
            r#"(models: [(id: "x", name: "X", repo: "o/r", file: "x.gguf", size_bytes: 5,
                sha256: None, licence: "MIT", ram_mib: 1, good_for: "tests")])"#,
        )
        .unwrap();
        assert_eq!(
            c.models[0].url(),
            "https://huggingface.co/o/r/resolve/main/x.gguf"
        );
        assert_eq!(c.models[0].sha256, None);
    }

    #[test]
    fn rejects_bad_entries() {
        let entry = |file: &str, sha: &str| {
            format!(
                r#"(models: [(id: "x", name: "X", repo: "o/r", file: "{file}", size_bytes: 5,
                sha256: {sha}, licence: "MIT", ram_mib: 1, good_for: "t")])"#
            )
        };
        assert!(Catalogue::parse(&entry("../x.gguf", "None")).is_err());
        assert!(Catalogue::parse(&entry("x.bin", "None")).is_err());
        assert!(Catalogue::parse(&entry("x.gguf", r#"Some("ABC")"#)).is_err());
        assert!(Catalogue::parse(&entry("x.gguf", "None")).is_ok());
        let unknown_field = r#"(models: [(id: "x", name: "X", repo: "o/r", file: "x.gguf",
            size_bytes: 5, sha256: None, licence: "MIT", ram_mib: 1, good_for: "t", extra: 1)])"#;
        assert!(Catalogue::parse(unknown_field).is_err());
    }

    #[test]
    fn fits_machine_uses_ram_margin_or_vram() {
        let c = Catalogue::builtin();
        let ids = |v: Vec<&CatalogueEntry>| v.into_iter().map(|m| m.id.clone()).collect::<Vec<_>>();
        // 2 GiB total RAM leaves 1 GiB: only the 1024 MiB model fits.
        assert_eq!(ids(fits_machine(&c, 2 * GIB, None)), vec!["qwen2.5-0.5b"]);
        // Exactly at the boundary: 3 GiB - 1 GiB = 2048 MiB fits the 2048 MiB models.
        let at_3 = ids(fits_machine(&c, 3 * GIB, None));
        assert!(at_3.contains(&"qwen2.5-1.5b".to_owned()));
        assert!(!at_3.contains(&"llama3.2-3b".to_owned()));
        // Little RAM but a 4 GiB GPU: everything fits in VRAM.
        assert_eq!(fits_machine(&c, GIB, Some(4 * GIB)).len(), c.models.len());
        // Nothing fits a machine with less than the margin.
        assert!(fits_machine(&c, GIB / 2, None).is_empty());
        assert_eq!(fits_machine(&c, 16 * GIB, None).len(), c.models.len());
    }
}
