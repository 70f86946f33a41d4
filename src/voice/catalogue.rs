//! The voices offered for download: Piper voices from rhasspy/piper-voices (tag v1.0.0), each
//! file pinned by size and SHA-256 (read from the repository's Git LFS pointers and checked
//! against rhasspy's voices.json digests; docs/voice.md). Bevy-free.

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;

use super::piper;
use crate::models::{DownloadRequest, Progress, download};

/// Where the files are: `BASE_URL` + an entry's `path` + `.onnx` / `.onnx.json`.
pub const BASE_URL: &str = "https://huggingface.co/rhasspy/piper-voices/resolve/v1.0.0/";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VoiceEntry {
    /// Piper's name, also the voice's folder: `en_US-joe-medium`.
    pub id: &'static str,
    pub language: &'static str,
    pub licence: &'static str,
    pub sample_rate: u32,
    /// Inside the repository, without the extension.
    pub path: &'static str,
    pub model_bytes: u64,
    pub model_sha256: &'static str,
    pub config_bytes: u64,
    pub config_sha256: &'static str,
}

/// English and French, two or more of each; licences that allow any use (lessac's Blizzard
/// licence, amy's unknown one and tom's AGPL are left out).
pub const VOICES: &[VoiceEntry] = &[
    VoiceEntry {
        id: "en_US-joe-medium",
        language: "English (US)",
        licence: "CC0-1.0",
        sample_rate: 22_050,
        path: "en/en_US/joe/medium/en_US-joe-medium",
        model_bytes: 63_201_294,
        model_sha256: "58afce0321b8d9c46d7cdf9c16500cc55a793b4220212dba6b70fb788b3baf06",
        config_bytes: 4_794,
        config_sha256: "3d6d5410b3795cb1950595247ef8f06190719e6fdbfa3a2356d8ec368e1aad33",
    },
    VoiceEntry {
        id: "en_GB-alba-medium",
        language: "English (UK)",
        licence: "CC-BY-4.0",
        sample_rate: 22_050,
        path: "en/en_GB/alba/medium/en_GB-alba-medium",
        model_bytes: 63_201_294,
        model_sha256: "401369c4a81d09fdd86c32c5c864440811dbdcc66466cde2d64f7133a66ad03b",
        config_bytes: 4_888,
        config_sha256: "aa965a2f02ecced632c2694e1fc72bbff6d65f265fab567ca945918c73dd89f4",
    },
    VoiceEntry {
        id: "fr_FR-siwis-medium",
        language: "French",
        licence: "CC-BY-4.0",
        sample_rate: 22_050,
        path: "fr/fr_FR/siwis/medium/fr_FR-siwis-medium",
        model_bytes: 63_201_294,
        model_sha256: "641d1ab097da2b81128c076810edb052b385decc8be3381814802a64a73baf99",
        config_bytes: 4_875,
        config_sha256: "39479916c2db192b5ac9764daddd0c744d83e023ad890c6976c0633ae4df8959",
    },
    VoiceEntry {
        id: "fr_FR-gilles-low",
        language: "French",
        licence: "CC0-1.0",
        sample_rate: 16_000,
        path: "fr/fr_FR/gilles/low/fr_FR-gilles-low",
        model_bytes: 63_104_526,
        model_sha256: "5cd711846720e261c2a176f6924c198a7424d0a75dd4b0a5357a5fb9cb739285",
        config_bytes: 4_158,
        config_sha256: "5a47cc0789e91267d17666bbec842dd92950669271a09023eb6970ee364cf88a",
    },
    VoiceEntry {
        id: "fr_FR-upmc-medium",
        language: "French",
        licence: "CC-BY-SA-4.0",
        sample_rate: 22_050,
        path: "fr/fr_FR/upmc/medium/fr_FR-upmc-medium",
        model_bytes: 76_733_615,
        model_sha256: "9abb3800c199148897a9ed64e100d224f3de83579f100044174ad19418f1786f",
        config_bytes: 4_996,
        config_sha256: "e8636ec15dfd5d72db37a02cb5320a20f2b8d339f2a0e4337da64c58a33a5868",
    },
];

pub fn find(id: &str) -> Option<&'static VoiceEntry> {
    VOICES.iter().find(|voice| voice.id == id)
}

/// Downloads a voice of the catalogue into `voices/.downloads` (resumable, size and SHA-256
/// checked: the models' download engine) and prepares it as `voices/ID`. `progress` gets the
/// file's name and its progress.
pub fn pull(
    voices: &Path,
    id: &str,
    base_url: &str,
    progress: &mut dyn FnMut(&str, Progress),
    cancel: &AtomicBool,
) -> Result<PathBuf, String> {
    let voice = find(id).ok_or_else(|| {
        let ids: Vec<&str> = VOICES.iter().map(|voice| voice.id).collect();
        format!("no voice {id:?} in the catalogue ({})", ids.join(", "))
    })?;
    let downloads = voices.join(".downloads");
    let mut fetch = |suffix: &str, bytes: u64, sha256: &str| -> Result<PathBuf, String> {
        let file_name = format!("{}{suffix}", voice.id);
        let mut request = DownloadRequest::new(
            format!("{}/{}{suffix}", base_url.trim_end_matches('/'), voice.path),
            &downloads,
            file_name.clone(),
        );
        request.expected_size = Some(bytes);
        request.sha256 = Some(sha256.to_owned());
        let mut report = |p: Progress| progress(&file_name, p);
        download(&request, &mut report, cancel)
            .map_err(|err| format!("{}{suffix}: {err}", voice.id))
    };
    let model = fetch(".onnx", voice.model_bytes, voice.model_sha256)?;
    let config = fetch(".onnx.json", voice.config_bytes, voice.config_sha256)?;
    let folder = voices.join(voice.id);
    piper::prepare(&model, &config, &folder).map_err(|err| err.to_string())?;
    // The prepared folder holds a copy: the downloads are not needed any more.
    for file in [&model, &config] {
        let _ = std::fs::remove_file(file);
    }
    Ok(folder)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_entry_is_pinned_and_named_after_its_file() {
        for voice in VOICES {
            for sha in [voice.model_sha256, voice.config_sha256] {
                assert_eq!(sha.len(), 64, "{}", voice.id);
                assert!(
                    sha.chars()
                        .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
                );
            }
            assert!(voice.path.ends_with(voice.id), "{}", voice.id);
            assert!(voice.model_bytes > 1 << 20 && voice.config_bytes < 1 << 20);
        }
        let french = VOICES.iter().filter(|v| v.id.starts_with("fr_")).count();
        let english = VOICES.iter().filter(|v| v.id.starts_with("en_")).count();
        assert!(french >= 2 && english >= 2);
    }
}
