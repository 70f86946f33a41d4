//! Models for the chat, without Bevy: the curated catalogue (config/models.ron) and the
//! download engine (resume, sha256, free-space check, atomic move into the models folder).
//! The `model` command and the chat panel's first-run catalogue use it.

pub mod catalogue;
pub mod download;

pub use catalogue::{Catalogue, CatalogueEntry, fits_machine};
pub use download::{
    DownloadError, DownloadRequest, FreeSpace, InstalledModel, Progress, Stage, default_models_dir,
    download, installed, remove,
};
