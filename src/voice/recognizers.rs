//! The speech recognizers offered for download, each file pinned by size and SHA-256:
//! Moonshine tiny (English) from the Moonshine repository at a fixed commit (its model files
//! are Git LFS objects there, whose pointers give the SHA-256; the same files as in PyPI's
//! `moonshine-voice` 0.1.0, which the tests use), and Whisper base (multilingual) as
//! k2-fsa exported it for sherpa-onnx, from its Hugging Face repository at a fixed commit
//! (sizes and SHA-256 as two independent public manifests pin them; its tokens file is
//! byte for byte the one the tests' own export of the same model makes; docs/listening.md).
//! Bevy-free.

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;

use base64::Engine as _;

use crate::models::{DownloadRequest, Progress, download};

/// Where Moonshine's files are: this + a file's `path` (GitHub serves the LFS object).
pub const MOONSHINE_BASE_URL: &str =
    "https://github.com/moonshine-ai/moonshine/raw/0f7979a9b721257fce6b887d91dbe89dbcd0eb1d/";
/// Where Whisper base's files are: k2-fsa's sherpa-onnx export on Hugging Face, at a commit.
pub const WHISPER_BASE_URL: &str = "https://huggingface.co/csukuangfj/sherpa-onnx-whisper-base/resolve/bb53ee204431c90d314c1cc08d28d23e5b7927cc/";

/// Silero VAD (MIT), which every recognizer needs to find the utterances: `VAD_BASE_URL` +
/// [`VAD`]'s path, the file PyPI's `silero-vad` 6.2.3 ships (the tests' copy), put beside the
/// recognizers' folders as `silero-vad.onnx` when it is not there yet.
pub const VAD_BASE_URL: &str =
    "https://github.com/snakers4/silero-vad/raw/bfdc0193023f121ea5b3cc7b176dbed570a68a59/";
pub const VAD: RecognizerFile = RecognizerFile {
    path: "src/silero_vad/data/silero_vad.onnx",
    bytes: 2_327_524,
    sha256: "1a153a22f4509e292a94e67d6f9b85e8deb25b4988682b7e174c65279d8788e3",
};
/// Its name in the recognizers folder (see [`super::listen::default_recognizers_dir`]).
pub const VAD_FILE: &str = "silero-vad.onnx";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecognizerFile {
    /// Inside the repository.
    pub path: &'static str,
    pub bytes: u64,
    pub sha256: &'static str,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecognizerEntry {
    /// Also its folder in the recognizers folder (see [`super::recognize::default_recognizer`]).
    pub id: &'static str,
    pub name: &'static str,
    pub languages: &'static str,
    pub licence: &'static str,
    /// Where its files are: this + each file's `path`.
    pub base_url: &'static str,
    pub files: &'static [RecognizerFile],
}

impl RecognizerFile {
    /// Its name, in the recognizer's folder and on the server (the path's last part).
    pub fn name(&self) -> &'static str {
        self.path.rsplit('/').next().unwrap_or(self.path)
    }

    /// Its name once laid out for sherpa-onnx: Moonshine's `tokenizer.bin` becomes
    /// `tokens.txt` ([`moonshine_tokens`], in [`pull`]); the others keep theirs and are copied.
    pub fn laid_out_name(&self) -> &'static str {
        match self.name() {
            "tokenizer.bin" => "tokens.txt",
            name => name,
        }
    }
}

impl RecognizerEntry {
    /// Its files' bytes, and the detector's.
    pub fn bytes(&self) -> u64 {
        self.files.iter().map(|file| file.bytes).sum::<u64>() + VAD.bytes
    }

    /// True when it is laid out in `recognizers/ID` with the detector beside it.
    pub fn installed_in(&self, recognizers: &Path) -> bool {
        let folder = recognizers.join(self.id);
        recognizers.join(VAD_FILE).is_file()
            && self
                .files
                .iter()
                .all(|file| folder.join(file.laid_out_name()).is_file())
    }
}

pub const RECOGNIZERS: &[RecognizerEntry] = &[
    RecognizerEntry {
        id: super::recognize::MOONSHINE_TINY_EN,
        name: "Moonshine tiny",
        languages: "English",
        licence: "MIT",
        base_url: MOONSHINE_BASE_URL,
        files: &[
            RecognizerFile {
                path: "test-assets/tiny-en/encoder_model.ort",
                bytes: 13_281_600,
                sha256: "94e90a4654fc45cdfedb77c4c08e1739f48862998e58fada384b25118134f221",
            },
            RecognizerFile {
                path: "test-assets/tiny-en/decoder_model_merged.ort",
                bytes: 30_412_256,
                sha256: "cf524c4862d36e9e5ab032eddc73637efd822d70e868ac575cf1a46e1e4708a0",
            },
            RecognizerFile {
                path: "test-assets/tiny-en/tokenizer.bin",
                bytes: 249_974,
                sha256: "6884b35fd6377d4c4d32336a0bc152f36b64d1e45b6503683cdc238250a8472d",
            },
        ],
    },
    // The tokens first: the smallest file, and the one a download is checked against first.
    RecognizerEntry {
        id: super::recognize::WHISPER_BASE,
        name: "Whisper base",
        languages: "99 languages (French, Spanish, German...), found by itself",
        licence: "MIT",
        base_url: WHISPER_BASE_URL,
        files: &[
            RecognizerFile {
                path: "base-tokens.txt",
                bytes: 816_730,
                sha256: "b34b360dbb493e781e479794586d661700670d65564001f23024971d1f2fa126",
            },
            RecognizerFile {
                path: "base-encoder.int8.onnx",
                bytes: 29_120_534,
                sha256: "0b8fb1304b6109976038efff5ace81720e00386f3ff6b54ee8c75291ca0a1e11",
            },
            RecognizerFile {
                path: "base-decoder.int8.onnx",
                bytes: 130_672_026,
                sha256: "9759d217388a01b3a4c7c15533201067b48ae819c4daafc8624e64b9409dc02d",
            },
        ],
    },
];

pub fn find(id: &str) -> Option<&'static RecognizerEntry> {
    RECOGNIZERS.iter().find(|entry| entry.id == id)
}

/// Where the files come from: the catalogue's hosts, or one server for all (tests:
/// `DESKTOP_MATE_RECOGNIZER_BASE_URL`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    Catalogue,
    Mirror(String),
}

impl Source {
    /// `DESKTOP_MATE_RECOGNIZER_BASE_URL` when set, else the catalogue's hosts.
    pub fn from_env() -> Self {
        std::env::var("DESKTOP_MATE_RECOGNIZER_BASE_URL")
            .ok()
            .filter(|url| !url.is_empty())
            .map_or(Self::Catalogue, Self::Mirror)
    }

    fn url(&self, base: &str, file: &RecognizerFile) -> String {
        let base = match self {
            Self::Catalogue => base,
            Self::Mirror(mirror) => mirror,
        };
        format!("{}/{}", base.trim_end_matches('/'), file.path)
    }
}

/// Downloads a recognizer of the catalogue into `recognizers/.downloads` (resumable, size and
/// SHA-256 checked: the models' download engine) and lays it out as `recognizers/ID` for
/// sherpa-onnx (Moonshine's `tokens.txt` made from its `tokenizer.bin`), with the detector
/// beside it when it is missing. The folder appears whole or not at all. `progress` gets the
/// bytes done over all files and their total.
pub fn pull(
    recognizers: &Path,
    id: &str,
    source: &Source,
    progress: &mut dyn FnMut(u64, u64),
    cancel: &AtomicBool,
) -> Result<PathBuf, String> {
    let entry = find(id).ok_or_else(|| {
        let ids: Vec<&str> = RECOGNIZERS.iter().map(|entry| entry.id).collect();
        format!("no recognizer {id:?} in the catalogue ({})", ids.join(", "))
    })?;
    let downloads = recognizers.join(".downloads");
    let vad = recognizers.join(VAD_FILE);
    // The detector is fetched only when it is missing.
    let total = entry.bytes() - if vad.is_file() { VAD.bytes } else { 0 };
    let mut before = 0;
    let mut fetch = |base: &str, file: &RecognizerFile| -> Result<PathBuf, String> {
        let name = file.name();
        let mut request =
            DownloadRequest::new(source.url(base, file), &downloads, format!("{id}-{name}"));
        request.expected_size = Some(file.bytes);
        request.sha256 = Some(file.sha256.to_owned());
        let mut report = |p: Progress| progress(before + p.bytes_done, total);
        let path =
            download(&request, &mut report, cancel).map_err(|err| format!("{name}: {err}"))?;
        before += file.bytes;
        Ok(path)
    };
    if !vad.is_file() {
        let path = fetch(VAD_BASE_URL, &VAD)?;
        std::fs::rename(&path, &vad).map_err(|err| format!("{VAD_FILE}: {err}"))?;
    }
    let mut fetched = Vec::new();
    for file in entry.files {
        fetched.push((file, fetch(entry.base_url, file)?));
    }
    let folder = recognizers.join(entry.id);
    let partial = recognizers.join(format!(".{}.partial", entry.id));
    let io = |what: &str, err: std::io::Error| format!("{what}: {err}");
    if partial.exists() {
        std::fs::remove_dir_all(&partial).map_err(|e| io("an earlier attempt's folder", e))?;
    }
    std::fs::create_dir_all(&partial).map_err(|e| io("the recognizer's folder", e))?;
    for (file, path) in &fetched {
        let (name, laid_out) = (file.name(), file.laid_out_name());
        if name == laid_out {
            std::fs::copy(path, partial.join(name)).map_err(|e| io(name, e))?;
        } else {
            // Moonshine's tokenizer.bin, made into the tokens.txt sherpa-onnx reads.
            let bytes = std::fs::read(path).map_err(|e| io(name, e))?;
            std::fs::write(partial.join(laid_out), moonshine_tokens(&bytes)?)
                .map_err(|e| io(laid_out, e))?;
        }
    }
    if folder.exists() {
        std::fs::remove_dir_all(&folder).map_err(|e| io("the old recognizer's folder", e))?;
    }
    std::fs::rename(&partial, &folder).map_err(|e| io("the recognizer's folder", e))?;
    // The folder holds copies: the downloads are not needed any more.
    for (_, path) in &fetched {
        let _ = std::fs::remove_file(path);
    }
    Ok(folder)
}

/// Moonshine's `tokenizer.bin` as the `tokens.txt` sherpa-onnx reads: each token's bytes in
/// base64 and its id, a line each (as sherpa-onnx's scripts/moonshine/v2/generate_tokens.py
/// writes it). In the file each token is its length (one byte under 128, else two: the low
/// seven bits, then the rest) and its bytes; a zero length is an empty token.
pub fn moonshine_tokens(bin: &[u8]) -> Result<String, String> {
    let mut out = String::new();
    let mut at = 0;
    let mut id = 0usize;
    while at < bin.len() {
        let first = usize::from(bin[at]);
        at += 1;
        let length = if first < 128 {
            first
        } else {
            let high = *bin
                .get(at)
                .ok_or("tokenizer.bin ends inside a token's length")?;
            at += 1;
            usize::from(high) * 128 + (first - 128)
        };
        let token = bin
            .get(at..at + length)
            .ok_or("tokenizer.bin ends inside a token")?;
        at += length;
        out.push_str(&base64::engine::general_purpose::STANDARD.encode(token));
        out.push(' ');
        out.push_str(&id.to_string());
        out.push('\n');
        id += 1;
    }
    if id == 0 {
        return Err("tokenizer.bin holds no token".into());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_entry_is_pinned() {
        for entry in RECOGNIZERS {
            for file in entry.files {
                assert_eq!(file.sha256.len(), 64, "{}", file.path);
                assert!(
                    file.sha256
                        .chars()
                        .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
                );
                assert!(file.bytes > 0);
            }
        }
        assert!(find("moonshine-tiny-en").is_some());
        // Whisper base is the folder a language other than English looks for.
        assert!(find(crate::voice::recognize::default_recognizer("fr")).is_some());
        assert!(find(crate::voice::recognize::default_recognizer("en")).is_some());
    }

    #[test]
    fn installed_means_every_file_laid_out_and_the_detector() {
        let dir = tempfile::tempdir().expect("temp dir");
        let whisper = find(crate::voice::recognize::WHISPER_BASE).expect("in the catalogue");
        let moonshine = find(crate::voice::recognize::MOONSHINE_TINY_EN).expect("in it");
        let folder = dir.path().join(whisper.id);
        std::fs::create_dir_all(&folder).expect("folder");
        for name in [
            "base-tokens.txt",
            "base-encoder.int8.onnx",
            "base-decoder.int8.onnx",
        ] {
            std::fs::write(folder.join(name), b"x").expect("file");
        }
        assert!(!whisper.installed_in(dir.path()), "no detector yet");
        std::fs::write(dir.path().join(VAD_FILE), b"x").expect("detector");
        assert!(whisper.installed_in(dir.path()));
        std::fs::remove_file(folder.join("base-decoder.int8.onnx")).expect("remove");
        assert!(!whisper.installed_in(dir.path()), "a file missing");
        let folder = dir.path().join(moonshine.id);
        std::fs::create_dir_all(&folder).expect("folder");
        for name in [
            "encoder_model.ort",
            "decoder_model_merged.ort",
            "tokenizer.bin",
        ] {
            std::fs::write(folder.join(name), b"x").expect("file");
        }
        assert!(
            !moonshine.installed_in(dir.path()),
            "tokenizer.bin is not tokens.txt"
        );
        std::fs::write(folder.join("tokens.txt"), b"x").expect("tokens");
        assert!(moonshine.installed_in(dir.path()));
    }

    #[test]
    fn tokens_are_read_with_one_and_two_byte_lengths() {
        let long = vec![b'a'; 130];
        let mut bin = vec![0, 2, b'h', b'i', 128 + 2, 1];
        bin.extend(&long);
        let tokens = moonshine_tokens(&bin).expect("tokens");
        let lines: Vec<&str> = tokens.lines().collect();
        assert_eq!(lines.len(), 3);
        assert_eq!(lines[0], " 0");
        assert_eq!(lines[1], "aGk= 1");
        let (encoded, id) = lines[2].split_once(' ').expect("a line");
        assert_eq!(id, "2");
        assert_eq!(
            base64::engine::general_purpose::STANDARD
                .decode(encoded)
                .expect("base64"),
            long
        );
        assert!(moonshine_tokens(&[5, b'x']).is_err(), "cut short");
        assert!(moonshine_tokens(&[200]).is_err(), "length cut short");
        assert!(moonshine_tokens(&[]).is_err());
    }
}
