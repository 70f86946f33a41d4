//! Warm-start files (llama.cpp's state file of the persona's evaluated prompt) that a crash,
//! a full disk or a damaged sector can never turn into a bad start.
//!
//! A state has a logical name (`<key>.state`) and two files: the data, which llama.cpp writes
//! and reads, named after its own checksum (`<key>.state.<sha256 prefix>`), and the seal
//! (`<key>.state.sum`: the data's size and SHA-256). llama.cpp writes a new state to a
//! temporary name; it is synced, hashed and renamed to its own data name (the old data file is
//! still there), then the seal is replaced atomically, then the old data file goes. A kill at
//! any point leaves a seal and the data it names: the old pair or the new one.
//!
//! Before llama.cpp reads a state, the data's size is checked against the seal and against a
//! bound from the model's dimensions, then its checksum: a damaged length field (which made
//! llama.cpp allocate gigabytes) or a same-size flip (which made it load a wrong cache, or
//! assert) is refused, the files are removed and the app warms up again. Bevy-free, tested
//! on plain files.

use std::fs;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::config::write_atomic;

/// Hex digits of the checksum in a data file's name.
const NAME_DIGITS: usize = 16;

/// The seal of a state.
pub fn seal_path(state: &Path) -> PathBuf {
    suffixed(state, ".sum")
}

/// Where llama.cpp writes a state before [`seal`] moves it into place.
pub fn temp_path(state: &Path) -> PathBuf {
    suffixed(state, &format!(".{}.tmp", std::process::id()))
}

/// The data file of a state whose SHA-256 is `hex`.
fn data_path(state: &Path, hex: &str) -> PathBuf {
    suffixed(state, &format!(".{}", &hex[..NAME_DIGITS.min(hex.len())]))
}

fn suffixed(state: &Path, suffix: &str) -> PathBuf {
    let mut name = state.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

/// Size and lower-case hex SHA-256 of a file, read in blocks.
fn digest(path: &Path) -> io::Result<(u64, String)> {
    let mut file = fs::File::open(path)?;
    let mut hash = Sha256::new();
    let mut block = vec![0u8; 1 << 20];
    let mut size = 0u64;
    loop {
        let read = file.read(&mut block)?;
        if read == 0 {
            break;
        }
        size += read as u64;
        hash.update(&block[..read]);
    }
    let hex = hash.finalize().iter().map(|b| format!("{b:02x}")).collect();
    Ok((size, hex))
}

/// The size and checksum a seal names (`None`: no seal, or not a seal).
fn read_seal(state: &Path) -> Result<(u64, String), String> {
    let seal_file = seal_path(state);
    let mut seal = Vec::new();
    fs::File::open(&seal_file)
        .and_then(|file| file.take(200).read_to_end(&mut seal))
        .map_err(|e| {
            format!(
                "{} has no seal ({}: {e})",
                state.display(),
                seal_file.display()
            )
        })?;
    let seal = String::from_utf8_lossy(&seal).into_owned();
    seal.trim()
        .split_once(' ')
        .and_then(|(size, hex)| {
            let hex_ok = hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit());
            let size = size.parse::<u64>().ok()?;
            hex_ok.then(|| (size, hex.to_owned()))
        })
        .ok_or_else(|| format!("{}: not a seal", seal_file.display()))
}

/// Moves the state llama.cpp wrote at `temp` into place as `state`'s data, synced, then
/// replaces the seal (atomically) and removes the data it named before.
pub fn seal(temp: &Path, state: &Path) -> io::Result<()> {
    let result = (|| {
        // Write access: Windows' FlushFileBuffers refuses a handle opened to read.
        fs::OpenOptions::new().write(true).open(temp)?.sync_all()?;
        let (size, hex) = digest(temp)?;
        let data = data_path(state, &hex);
        fs::rename(temp, &data)?;
        let before = read_seal(state).ok().map(|(_, hex)| data_path(state, &hex));
        write_atomic(&seal_path(state), &format!("{size} {hex}\n"))?;
        if let Some(before) = before.filter(|b| *b != data) {
            let _ = fs::remove_file(before);
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = fs::remove_file(temp);
    }
    result
}

/// Removes a state: its seal, its data files and temporary files left by a crash.
pub fn remove(state: &Path) {
    let _ = fs::remove_file(seal_path(state));
    let (Some(dir), Some(name)) = (state.parent(), state.file_name()) else {
        return;
    };
    let prefix = format!("{}.", name.to_string_lossy());
    for entry in fs::read_dir(dir).into_iter().flatten().flatten() {
        if entry.file_name().to_string_lossy().starts_with(&prefix) {
            let _ = fs::remove_file(entry.path());
        }
    }
}

/// The data file to hand to llama.cpp, once checked: it exists, its size is the seal's and at
/// most `max_bytes`, its checksum is the seal's. `Err` says why not (missing, no seal,
/// damaged).
pub fn verify(state: &Path, max_bytes: u64) -> Result<PathBuf, String> {
    let (size, hex) = read_seal(state)?;
    let data = data_path(state, &hex);
    let meta = fs::metadata(&data).map_err(|e| format!("{}: {e}", data.display()))?;
    if !meta.is_file() {
        return Err(format!("{} is not a file", data.display()));
    }
    if meta.len() != size {
        return Err(format!(
            "{} has {} bytes, its seal says {size}",
            data.display(),
            meta.len()
        ));
    }
    if size > max_bytes {
        return Err(format!(
            "{} has {size} bytes, more than this model's state can take ({max_bytes})",
            data.display()
        ));
    }
    let (_, actual) = digest(&data).map_err(|e| format!("{}: {e}", data.display()))?;
    if actual != hex {
        return Err(format!(
            "{}: checksum differs from its seal (damaged)",
            data.display()
        ));
    }
    Ok(data)
}

/// The logical names of the states kept in a folder (one per seal), newest first.
pub fn states_in(dir: &Path) -> Vec<PathBuf> {
    let mut states: Vec<(std::time::SystemTime, PathBuf)> = fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let name = entry.file_name().to_string_lossy().into_owned();
            let logical = name.strip_suffix(".sum")?.to_owned();
            let modified = entry.metadata().ok()?.modified().ok()?;
            Some((modified, dir.join(logical)))
        })
        .collect();
    states.sort_by_key(|(modified, _)| std::cmp::Reverse(*modified));
    states.into_iter().map(|(_, path)| path).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn save(state: &Path, contents: &[u8]) {
        let temp = temp_path(state);
        fs::write(&temp, contents).expect("write");
        seal(&temp, state).expect("seal");
        assert!(!temp.exists(), "the temporary file is moved into place");
    }

    fn files(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(dir)
            .expect("list")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn a_sealed_state_verifies_and_any_damage_is_refused() {
        let dir = tempfile::tempdir().expect("temp dir");
        let state = dir.path().join("abc.state");
        let contents: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
        save(&state, &contents);
        let data = verify(&state, 1 << 20).expect("verifies");
        assert_eq!(fs::read(&data).expect("read"), contents);

        // The same size, one byte flipped (a damaged sector).
        let mut flipped = contents.clone();
        flipped[50_000] ^= 0x40;
        fs::write(&data, &flipped).expect("write");
        let err = verify(&state, 1 << 20).expect_err("flipped byte");
        assert!(err.contains("checksum"), "{err}");

        // Truncated (a crash while copying), or bigger than the model's state can be (a
        // damaged length field's allocation): refused before it is read.
        fs::write(&data, &contents[..1000]).expect("write");
        let err = verify(&state, 1 << 20).expect_err("truncated");
        assert!(err.contains("seal says 100000"), "{err}");
        save(&state, &contents);
        let err = verify(&state, 10_000).expect_err("too big");
        assert!(err.contains("more than"), "{err}");

        // No seal (an older version's file), a damaged seal, no data.
        fs::write(seal_path(&state), "\u{0}\u{1}garbage").expect("write");
        let err = verify(&state, 1 << 20).expect_err("bad seal");
        assert!(err.contains("not a seal"), "{err}");
        fs::remove_file(seal_path(&state)).expect("remove seal");
        let err = verify(&state, 1 << 20).expect_err("no seal");
        assert!(err.contains("no seal"), "{err}");

        fs::write(temp_path(&state), b"left by a crash").expect("write");
        remove(&state);
        assert_eq!(files(dir.path()), Vec::<String>::new(), "nothing left");
        assert!(verify(&state, 1 << 20).is_err(), "missing");
    }

    #[test]
    fn a_new_state_replaces_the_old_one_and_a_pair_always_exists() {
        let dir = tempfile::tempdir().expect("temp dir");
        let state = dir.path().join("abc.state");
        save(&state, b"first state");
        let first = verify(&state, 1 << 20).expect("first");
        save(&state, b"the second, longer state");
        let second = verify(&state, 1 << 20).expect("second");
        assert_ne!(first, second);
        assert!(
            !first.exists(),
            "the old data is removed once the seal moved on"
        );
        assert_eq!(
            fs::read(&second).expect("read"),
            b"the second, longer state"
        );
        assert_eq!(files(dir.path()).len(), 2, "one seal, one data file");
        // The same content again: the same data file, still valid.
        save(&state, b"the second, longer state");
        assert_eq!(verify(&state, 1 << 20), Ok(second));
        assert_eq!(states_in(dir.path()), vec![state]);
    }
}
