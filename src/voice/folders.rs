//! Where voices live and how a setting or an argument names one: a catalogue id (downloaded
//! into the voices folder), a Piper model (prepared once into the voices folder) or a prepared
//! folder.

use std::path::{Path, PathBuf};

use super::{VoiceError, default_voices_dir, piper};

/// In a voice prepared from a Piper model: which files it was made from.
const SOURCE_FILE: &str = "source.txt";

/// A prepared voice folder of the catalogue, when it is installed.
pub fn installed(voices: &Path, id: &str) -> Option<PathBuf> {
    let folder = voices.join(id);
    folder.join(piper::MODEL_FILE).is_file().then_some(folder)
}

/// A prepared voice folder as it is, or a Piper model prepared once into the voices folder
/// (again when the model or its config is not the one the prepared copy was made from).
pub fn resolve(voice: &Path) -> Result<PathBuf, VoiceError> {
    if voice.is_dir() {
        return Ok(voice.to_owned());
    }
    if let Some(id) = voice.to_str()
        && crate::voice::catalogue::find(id).is_some()
    {
        let voices = default_voices_dir()
            .ok_or_else(|| VoiceError::Io("no home folder to keep voices in".into()))?;
        return installed(&voices, id).ok_or_else(|| VoiceError::NotDownloaded(id.to_owned()));
    }
    let config = PathBuf::from(format!("{}.json", voice.display()));
    if !voice.is_file() || !config.is_file() {
        return Err(VoiceError::BadVoice(format!(
            "{} is neither a voice folder nor a Piper model with its .onnx.json beside it",
            voice.display()
        )));
    }
    let name = voice
        .file_stem()
        .and_then(|stem| stem.to_str())
        .filter(|stem| {
            !stem.is_empty()
                && !stem.starts_with('.')
                && stem
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
        })
        .ok_or_else(|| {
            VoiceError::BadVoice(format!(
                "{}: a voice's name is letters, digits, '_', '-' and '.'",
                voice.display()
            ))
        })?;
    let voices = default_voices_dir()
        .ok_or_else(|| VoiceError::Io("no home folder to keep voices in".into()))?;
    let dest = voices.join(name);
    // Prepared from this very file (path, size and times), or prepared again.
    let source = |path: &Path| {
        let meta = std::fs::metadata(path).ok()?;
        Some(format!(
            "{} {} {:?}",
            path.canonicalize().ok()?.display(),
            meta.len(),
            meta.modified().ok()?
        ))
    };
    let stamp = format!(
        "{}\n{}\n",
        source(voice).unwrap_or_default(),
        source(&config).unwrap_or_default()
    );
    let stamp_file = dest.join(SOURCE_FILE);
    let fresh = dest.join(piper::MODEL_FILE).is_file()
        && std::fs::read_to_string(&stamp_file).is_ok_and(|prepared| prepared == stamp);
    if !fresh {
        piper::prepare(voice, &config, &dest)?;
        std::fs::write(&stamp_file, stamp)
            .map_err(|err| VoiceError::Io(format!("{}: {err}", stamp_file.display())))?;
    }
    Ok(dest)
}
