//! Puts llama.cpp's shared libraries and backend modules next to the executables.
//!
//! llama-cpp-sys-2's `dynamic-backends` feature builds libllama / libggml / libggml-base as
//! shared libraries and ggml's CPU code as one module per SIMD level (libggml-cpu-*.so), but
//! copies only the unversioned `libX.so` symlinks next to the executables, whose targets
//! (`libX.so.0`, the names the executables ask for) stay in its build folder. We copy the real
//! files under their soname, and the modules, into target/<profile>/ and its deps/ (test
//! binaries), and link the executables with rpath `$ORIGIN`, so `target/debug/desktop-mate`
//! runs as it will ship: a folder with the executable, the libraries and the modules.

use std::path::{Path, PathBuf};

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=DEP_LLAMA_BACKENDS_DIR");
    let os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    if os == "linux" {
        println!("cargo:rustc-link-arg=-Wl,-rpath,$ORIGIN");
    } else if os == "macos" {
        println!("cargo:rustc-link-arg=-Wl,-rpath,@executable_path");
    }
    // Windows looks next to the executable by itself.

    let Some(backends) = std::env::var_os("DEP_LLAMA_BACKENDS_DIR").map(PathBuf::from) else {
        println!(
            "cargo:warning=llama-cpp-sys-2 did not say where its modules are; \
             copy its libraries next to the executable by hand"
        );
        return;
    };
    let Some(llama_out) = backends.parent() else {
        return;
    };
    // OUT_DIR = target/[triple/]<profile>/build/desktop-mate-<hash>/out
    let Some(profile_dir) = std::env::var_os("OUT_DIR")
        .map(PathBuf::from)
        .and_then(|out| out.ancestors().nth(3).map(Path::to_path_buf))
    else {
        return;
    };
    let mut files: Vec<(PathBuf, String)> = Vec::new();
    for dir in [
        llama_out.join("lib"),
        llama_out.join("lib64"),
        llama_out.join("bin"),
    ] {
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            // libllama.so.0 (the soname, a symlink to libllama.so.0.6.0) or llama.dll.
            let soname = name.contains(".so.") && name.matches('.').count() == 2;
            if soname || name.ends_with(".dll") || name.ends_with(".dylib") {
                files.push((entry.path(), name));
            }
        }
    }
    for entry in std::fs::read_dir(&backends).into_iter().flatten().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        files.push((entry.path(), name));
    }
    // examples/ too: llama-cpp-sys-2 hard-links its `libX.so` symlinks there when the folder
    // exists, and without their targets beside them they dangle; the next run of its build
    // script then fails ("File exists") when it links them again.
    for dest in [
        profile_dir.clone(),
        profile_dir.join("deps"),
        profile_dir.join("examples"),
    ] {
        if std::fs::create_dir_all(&dest).is_err() {
            continue;
        }
        for (source, name) in &files {
            println!("cargo:rerun-if-changed={}", source.display());
            let target = dest.join(name);
            if let Err(err) = copy_if_changed(source, &target) {
                println!(
                    "cargo:warning=cannot copy {} to {}: {err}",
                    source.display(),
                    target.display()
                );
            }
        }
    }
}

/// Copies the file `source` points to (symlinks followed) unless `target` has the same size
/// and is not older; replaces a symlink or an older file at `target`.
fn copy_if_changed(source: &Path, target: &Path) -> std::io::Result<()> {
    let from = std::fs::metadata(source)?;
    if let Ok(to) = std::fs::symlink_metadata(target)
        && to.is_file()
        && to.len() == from.len()
        && to.modified()? >= from.modified()?
    {
        return Ok(());
    }
    let partial = target.with_extension("part");
    std::fs::copy(source, &partial)?;
    std::fs::rename(&partial, target)
}
