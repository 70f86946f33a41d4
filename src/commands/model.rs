//! `desktop-mate model list|pull|rm`: the curated catalogue in the terminal, downloads with a
//! progress bar (resumable: Ctrl-C keeps the partial file and the next `pull` continues it).

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use indicatif::{ProgressBar, ProgressStyle};

use crate::hardware::{HardwareReport, human_bytes};
use crate::models::{
    Catalogue, DownloadRequest, Progress, Stage, default_models_dir, download, fits_machine,
    installed, remove,
};

#[derive(Debug, Clone, clap::Args)]
pub struct ModelArgs {
    /// The models folder (default: `models` in the user's data folder).
    #[arg(long, global = true, value_name = "DIR")]
    pub dir: Option<PathBuf>,
    #[command(subcommand)]
    pub action: ModelAction,
}

#[derive(Debug, Clone, clap::Subcommand)]
pub enum ModelAction {
    /// The catalogue: size, RAM needed, whether it fits this machine and is downloaded.
    List,
    /// Download a catalogue model by its id, or a GGUF by its https URL.
    Pull {
        /// A catalogue id (`qwen2.5-1.5b`) or a URL ending in `.gguf`.
        name: String,
    },
    /// Delete a downloaded catalogue model (and any partial download of it).
    Rm {
        /// A catalogue id.
        name: String,
    },
}

pub fn run(args: ModelArgs) -> ExitCode {
    let Some(dir) = args.dir.or_else(default_models_dir) else {
        eprintln!("error: no data folder on this system: pass --dir DIR");
        return ExitCode::from(2);
    };
    let catalogue = Catalogue::builtin();
    let result = match args.action {
        ModelAction::List => list(&catalogue, &dir),
        ModelAction::Pull { name } => pull(&catalogue, &dir, &name),
        ModelAction::Rm { name } => remove(&dir, &catalogue, &name).map(|freed| {
            println!("removed {name} ({} freed)", human_bytes(freed));
        }),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err}");
            ExitCode::FAILURE
        }
    }
}

fn list(catalogue: &Catalogue, dir: &std::path::Path) -> Result<(), crate::models::DownloadError> {
    let hardware = HardwareReport::probe();
    let free_vram = hardware.gpu.as_ref().map(|g| g.vram_free_bytes);
    let fitting = fits_machine(catalogue, hardware.memory.total_bytes, free_vram);
    let present = installed(dir, catalogue)?;
    println!(
        "{:<16} {:>9} {:>9}  {:<4} {:<10} good for",
        "id", "size", "RAM", "fits", "downloaded"
    );
    for entry in &catalogue.models {
        let fits = fitting.iter().any(|f| f.id == entry.id);
        let here = present.iter().any(|m| m.path.ends_with(&entry.file));
        println!(
            "{:<16} {:>9} {:>9}  {:<4} {:<10} {}",
            entry.id,
            human_bytes(entry.size_bytes),
            human_bytes(entry.ram_needed_bytes()),
            if fits { "yes" } else { "no" },
            if here { "yes" } else { "" },
            entry.good_for
        );
    }
    for other in present.iter().filter(|m| !m.in_catalogue) {
        println!("also downloaded: {}", other.path.display());
    }
    println!("models folder: {}", dir.display());
    Ok(())
}

fn pull(
    catalogue: &Catalogue,
    dir: &std::path::Path,
    name: &str,
) -> Result<(), crate::models::DownloadError> {
    let request = match catalogue.get(name) {
        Some(entry) => DownloadRequest::for_entry(entry, dir),
        None if name.starts_with("https://") || name.starts_with("http://") => {
            let file = name
                .rsplit('/')
                .next()
                .and_then(|f| f.split(['?', '#']).next())
                .unwrap_or_default();
            DownloadRequest::new(name, dir, file)
        }
        None => {
            return Err(crate::models::DownloadError::UnknownModel(name.to_owned()));
        }
    };
    // Ctrl-C: stop (the partial file stays for the next `pull`).
    let cancel = Arc::new(AtomicBool::new(false));
    {
        let cancel = Arc::clone(&cancel);
        if let Err(err) = ctrlc::set_handler(move || cancel.store(true, Ordering::SeqCst)) {
            tracing::warn!("Ctrl-C will end the program instead of pausing the download: {err}");
        }
    }
    let bar = ProgressBar::new(request.expected_size.unwrap_or(0));
    bar.set_style(
        ProgressStyle::with_template(
            "{msg:10} [{bar:30}] {bytes}/{total_bytes} {binary_bytes_per_sec} ETA {eta}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> "),
    );
    let mut on_progress = |p: Progress| {
        if let Some(total) = p.bytes_total {
            bar.set_length(total);
        }
        bar.set_position(p.bytes_done);
        bar.set_message(match p.stage {
            Stage::Rehashing => "checking",
            Stage::Downloading => "downloading",
            Stage::Verifying => "verifying",
        });
    };
    let result = download(&request, &mut on_progress, &cancel);
    bar.finish_and_clear();
    let path = result?;
    println!("{}", path.display());
    eprintln!(
        "downloaded: start with `desktop-mate --model {}`, or set llm.model_path in mascot.ron",
        path.display()
    );
    Ok(())
}
