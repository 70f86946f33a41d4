//! The download engine against a real HTTP server on 127.0.0.1 (see `support`).

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::http_server::{Behaviour, TestServer, pseudo_random, sha256_hex};
use desktop_mate::hardware::human_bytes;
use desktop_mate::models::{DownloadError, DownloadRequest, FreeSpace, Progress, Stage, download};

const MIB: usize = 1024 * 1024;
const PATH: &str = "/org/model/resolve/main/model.gguf";

fn request(server: &TestServer, dir: &Path, content: &[u8]) -> DownloadRequest {
    DownloadRequest {
        expected_size: Some(content.len() as u64),
        sha256: Some(sha256_hex(content)),
        connect_timeout: Duration::from_secs(5),
        read_timeout: Duration::from_secs(5),
        free_space: FreeSpace::Probe,
        ..DownloadRequest::new(server.url(PATH), dir, "model.gguf")
    }
}

fn run(req: &DownloadRequest) -> (Result<std::path::PathBuf, DownloadError>, Vec<Progress>) {
    let mut seen = Vec::new();
    let result = download(req, &mut |p| seen.push(p), &AtomicBool::new(false));
    (result, seen)
}

fn assert_installed(dir: &Path, content: &[u8]) {
    let on_disk = std::fs::read(dir.join("model.gguf")).expect("final file exists");
    assert!(
        on_disk == content,
        "downloaded bytes differ from the served file"
    );
    assert!(
        !dir.join("model.gguf.part").exists(),
        ".part must be gone after success"
    );
}

#[test]
fn full_download_is_verified_and_renamed() {
    let content = pseudo_random(3 * MIB + 123, 1);
    let server = TestServer::start(content.clone(), vec![]);
    let tmp = tempfile::tempdir().unwrap();
    let req = request(&server, tmp.path(), &content);

    let (result, seen) = run(&req);
    assert_eq!(result.unwrap(), tmp.path().join("model.gguf"));
    assert_installed(tmp.path(), &content);
    assert_eq!(server.requests().len(), 1);
    assert_eq!(
        server.requests()[0].range,
        None,
        "a fresh download sends no Range"
    );

    let last = seen.last().unwrap();
    assert_eq!(last.stage, Stage::Verifying);
    assert_eq!(last.bytes_done, content.len() as u64);
    assert_eq!(last.bytes_total, Some(content.len() as u64));
    assert!(
        seen.windows(2).all(|w| w[0].bytes_done <= w[1].bytes_done),
        "progress never goes back"
    );
    assert!(
        seen.iter()
            .any(|p| p.stage == Stage::Downloading && p.bytes_done == content.len() as u64)
    );

    // Already there: no second request.
    let (again, _) = run(&req);
    assert!(again.is_ok());
    assert_eq!(server.requests().len(), 1);
}

#[test]
fn dropped_connection_is_resumed_with_range() {
    let content = pseudo_random(4 * MIB, 2);
    let cut = MIB + 4321;
    let server = TestServer::start(
        content.clone(),
        vec![Behaviour::DropAfter(cut), Behaviour::Normal],
    );
    let tmp = tempfile::tempdir().unwrap();
    let req = request(&server, tmp.path(), &content);

    let (first, _) = run(&req);
    let err = first.unwrap_err();
    assert!(matches!(err, DownloadError::Interrupted { .. }), "{err:?}");
    assert!(err.to_string().contains("resume"), "{err}");
    let part_len = std::fs::metadata(tmp.path().join("model.gguf.part"))
        .unwrap()
        .len();
    assert_eq!(
        part_len, cut as u64,
        "everything received before the drop is kept"
    );

    let (second, seen) = run(&req);
    second.unwrap();
    assert_installed(tmp.path(), &content);
    let requests = server.requests();
    assert_eq!(requests.len(), 2);
    assert_eq!(
        requests[1].range.as_deref(),
        Some(format!("bytes={cut}-").as_str())
    );
    // The second run starts from the kept bytes.
    let first_download = seen.iter().find(|p| p.stage == Stage::Downloading).unwrap();
    assert!(first_download.bytes_done >= cut as u64);
}

#[test]
fn resume_follows_a_redirect_and_keeps_the_range() {
    // Hugging Face answers /resolve/ with a redirect to its CDN.
    let content = pseudo_random(2 * MIB, 3);
    let server = TestServer::start(
        content.clone(),
        vec![Behaviour::Redirect("/cdn/blob".to_owned())],
    );
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("model.gguf.part"), &content[..MIB]).unwrap();

    run(&request(&server, tmp.path(), &content)).0.unwrap();
    assert_installed(tmp.path(), &content);
    let requests = server.requests();
    assert_eq!(requests.len(), 2);
    assert_eq!(requests[1].path, "/cdn/blob");
    assert_eq!(
        requests[1].range.as_deref(),
        Some(format!("bytes={MIB}-").as_str())
    );
}

#[test]
fn server_ignoring_range_restarts_from_zero() {
    let content = pseudo_random(2 * MIB, 4);
    let server = TestServer::start(content.clone(), vec![Behaviour::IgnoreRange]);
    let tmp = tempfile::tempdir().unwrap();
    // A part that is NOT a prefix of the file: appending the 200 body would corrupt it.
    std::fs::write(tmp.path().join("model.gguf.part"), vec![0xAB; MIB]).unwrap();

    run(&request(&server, tmp.path(), &content)).0.unwrap();
    assert_installed(tmp.path(), &content);
    assert!(server.requests()[0].range.is_some());
}

#[test]
fn range_not_satisfiable_means_complete_and_is_verified() {
    let content = pseudo_random(MIB, 5);
    let server = TestServer::start(content.clone(), vec![]);
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("model.gguf.part"), &content).unwrap();

    // Size unknown: the engine must ask, and the server answers 416.
    let mut req = request(&server, tmp.path(), &content);
    req.expected_size = None;
    run(&req).0.unwrap();
    assert_installed(tmp.path(), &content);
    let requests = server.requests();
    assert_eq!(requests.len(), 1);
    assert_eq!(
        requests[0].range.as_deref(),
        Some(format!("bytes={MIB}-").as_str())
    );

    // Size known and the part complete: verified without any request.
    std::fs::rename(
        tmp.path().join("model.gguf"),
        tmp.path().join("model.gguf.part"),
    )
    .unwrap();
    run(&request(&server, tmp.path(), &content)).0.unwrap();
    assert_installed(tmp.path(), &content);
    assert_eq!(server.requests().len(), 1);
}

#[test]
fn complete_but_corrupt_part_is_refused_and_removed() {
    let content = pseudo_random(MIB, 6);
    let server = TestServer::start(content.clone(), vec![]);
    let tmp = tempfile::tempdir().unwrap();
    let mut corrupt = content.clone();
    corrupt[1000] ^= 1;
    std::fs::write(tmp.path().join("model.gguf.part"), &corrupt).unwrap();

    let err = run(&request(&server, tmp.path(), &content)).0.unwrap_err();
    assert!(
        matches!(err, DownloadError::ChecksumMismatch { .. }),
        "{err:?}"
    );
    assert!(!tmp.path().join("model.gguf.part").exists());
}

#[test]
fn checksum_mismatch_is_refused_and_part_removed() {
    let content = pseudo_random(2 * MIB, 7);
    let server = TestServer::start(content.clone(), vec![]);
    let tmp = tempfile::tempdir().unwrap();
    let mut req = request(&server, tmp.path(), &content);
    req.sha256 = Some("0".repeat(64));

    let err = run(&req).0.unwrap_err();
    match &err {
        DownloadError::ChecksumMismatch {
            expected, actual, ..
        } => {
            assert_eq!(expected, &"0".repeat(64));
            assert_eq!(actual, &sha256_hex(&content));
        }
        other => panic!("expected a checksum mismatch, got {other:?}"),
    }
    assert!(err.to_string().contains("deleted"), "{err}");
    assert!(
        !tmp.path().join("model.gguf.part").exists(),
        "corrupt part removed"
    );
    assert!(!tmp.path().join("model.gguf").exists(), "nothing installed");
}

#[test]
fn without_sha256_the_size_is_still_checked() {
    let content = pseudo_random(MIB, 8);
    let server = TestServer::start(content.clone(), vec![]);
    let tmp = tempfile::tempdir().unwrap();
    let mut req = request(&server, tmp.path(), &content);
    req.sha256 = None;
    run(&req).0.unwrap();
    assert_installed(tmp.path(), &content);

    // A catalogue size that disagrees with the server is refused before any byte is written.
    let other = tempfile::tempdir().unwrap();
    let mut req = request(&server, other.path(), &content);
    req.sha256 = None;
    req.expected_size = Some(content.len() as u64 + 1);
    let err = run(&req).0.unwrap_err();
    assert!(
        matches!(err, DownloadError::ServerSizeMismatch { .. }),
        "{err:?}"
    );
}

#[test]
fn not_enough_space_is_refused_before_downloading() {
    let content = pseudo_random(3 * MIB, 9);
    let server = TestServer::start(content.clone(), vec![]);
    let tmp = tempfile::tempdir().unwrap();
    let mut req = request(&server, tmp.path(), &content);
    req.free_space = FreeSpace::Assume(MIB as u64);

    let err = run(&req).0.unwrap_err();
    assert!(
        matches!(err, DownloadError::InsufficientSpace { needed, available, .. }
            if needed == content.len() as u64 && available == MIB as u64),
        "{err:?}"
    );
    let msg = err.to_string();
    assert!(
        msg.contains("not enough free disk space") && msg.contains(&human_bytes(MIB as u64)),
        "{msg}"
    );
    assert!(
        server.requests().is_empty(),
        "no request when the file cannot fit"
    );

    // Only the remaining bytes of a resumed download have to fit.
    std::fs::write(tmp.path().join("model.gguf.part"), &content[..2 * MIB]).unwrap();
    run(&req).0.unwrap();
    assert_installed(tmp.path(), &content);
}

/// A real 1 MiB tmpfs (needs root and `mount`; skipped otherwise): statvfs reports the
/// shortage, and when the check is overridden the write itself hits ENOSPC.
#[cfg(target_os = "linux")]
#[test]
fn real_small_tmpfs_is_detected_and_disk_full_keeps_the_part() {
    let content = pseudo_random(3 * MIB, 10);
    let server = TestServer::start(content.clone(), vec![]);
    let tmp = tempfile::tempdir().unwrap();
    let mount_point = tmp.path().join("small");
    std::fs::create_dir(&mount_point).unwrap();
    let Some(_mounted) = Tmpfs::mount(&mount_point, "1m") else {
        crate::support::missing(
            "tmpfs",
            "tmpfs mount (needs root and mount; covered by FreeSpace::Assume)",
        );
        return;
    };
    let models = mount_point.join("models");

    let err = run(&request(&server, &models, &content)).0.unwrap_err();
    assert!(
        matches!(err, DownloadError::InsufficientSpace { .. }),
        "{err:?}"
    );
    assert!(server.requests().is_empty());

    let mut req = request(&server, &models, &content);
    req.free_space = FreeSpace::Assume(u64::MAX);
    let err = run(&req).0.unwrap_err();
    match &err {
        DownloadError::DiskFull { bytes_done, .. } => {
            let part = std::fs::metadata(models.join("model.gguf.part"))
                .unwrap()
                .len();
            assert_eq!(part, *bytes_done, "what fitted is kept for resuming");
            assert!(part > 0 && part <= MIB as u64);
        }
        other => panic!("expected DiskFull, got {other:?}"),
    }
    assert!(err.to_string().contains("full"), "{err}");
}

#[cfg(target_os = "linux")]
struct Tmpfs(std::path::PathBuf);

#[cfg(target_os = "linux")]
impl Tmpfs {
    fn mount(at: &Path, size: &str) -> Option<Self> {
        let status = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(at)
            .stderr(std::process::Stdio::null())
            .status()
            .ok()?;
        status.success().then(|| Self(at.to_owned()))
    }
}

#[cfg(target_os = "linux")]
impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg(&self.0).status();
    }
}

#[test]
fn http_errors_name_the_url_and_status() {
    let content = pseudo_random(1024, 11);
    let server = TestServer::start(
        content.clone(),
        vec![
            Behaviour::Status(404),
            Behaviour::Status(401),
            Behaviour::Status(503),
            Behaviour::Status(418),
        ],
    );
    let tmp = tempfile::tempdir().unwrap();
    let req = request(&server, tmp.path(), &content);
    let url = req.url.clone();

    let err = run(&req).0.unwrap_err();
    assert!(matches!(err, DownloadError::NotFound { .. }), "{err:?}");
    assert!(
        err.to_string().contains(&url) && err.to_string().contains("404"),
        "{err}"
    );
    let err = run(&req).0.unwrap_err();
    assert!(
        matches!(err, DownloadError::Unauthorized { status: 401, .. }),
        "{err:?}"
    );
    assert!(
        err.to_string().contains(&url) && err.to_string().contains("401"),
        "{err}"
    );
    let err = run(&req).0.unwrap_err();
    assert!(
        matches!(err, DownloadError::ServerError { status: 503, .. }),
        "{err:?}"
    );
    assert!(
        err.to_string().contains(&url) && err.to_string().contains("503"),
        "{err}"
    );
    let err = run(&req).0.unwrap_err();
    assert!(
        matches!(err, DownloadError::UnexpectedStatus { status: 418, .. }),
        "{err:?}"
    );
    assert!(!tmp.path().join("model.gguf").exists());
}

#[test]
fn server_that_never_answers_times_out() {
    let content = pseudo_random(1024, 12);
    let server = TestServer::start(content.clone(), vec![Behaviour::Silent]);
    let tmp = tempfile::tempdir().unwrap();
    let mut req = request(&server, tmp.path(), &content);
    req.read_timeout = Duration::from_millis(700);

    let started = Instant::now();
    let err = run(&req).0.unwrap_err();
    assert!(matches!(err, DownloadError::ReadTimeout { .. }), "{err:?}");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "took {:?}",
        started.elapsed()
    );
    let msg = err.to_string();
    assert!(
        msg.contains(&req.url) && msg.contains("no data for 0.7 s"),
        "{msg}"
    );
}

#[test]
fn stalled_body_times_out_and_keeps_the_part() {
    let content = pseudo_random(MIB, 13);
    let server = TestServer::start(
        content.clone(),
        vec![Behaviour::Slow {
            chunk: 64 * 1024,
            pause: Duration::from_secs(3),
        }],
    );
    let tmp = tempfile::tempdir().unwrap();
    let mut req = request(&server, tmp.path(), &content);
    req.read_timeout = Duration::from_millis(700);

    let err = run(&req).0.unwrap_err();
    assert!(matches!(err, DownloadError::ReadTimeout { .. }), "{err:?}");
    assert!(
        std::fs::metadata(tmp.path().join("model.gguf.part"))
            .unwrap()
            .len()
            > 0
    );
}

#[test]
fn refused_connection_is_a_clear_network_error() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let tmp = tempfile::tempdir().unwrap();
    let req = DownloadRequest::new(
        format!("http://127.0.0.1:{port}/m.gguf"),
        tmp.path(),
        "m.gguf",
    );
    let err = run(&req).0.unwrap_err();
    assert!(matches!(err, DownloadError::Network { .. }), "{err:?}");
    assert!(err.to_string().contains(&req.url), "{err}");
}

#[test]
fn cancel_keeps_the_part_and_a_later_call_resumes() {
    let content = pseudo_random(2 * MIB, 14);
    let server = TestServer::start(
        content.clone(),
        vec![Behaviour::Slow {
            chunk: 32 * 1024,
            pause: Duration::from_millis(10),
        }],
    );
    let tmp = tempfile::tempdir().unwrap();
    let req = request(&server, tmp.path(), &content);

    let cancel = AtomicBool::new(false);
    let mut seen = Vec::new();
    let err = download(
        &req,
        &mut |p| {
            if p.bytes_done >= 256 * 1024 {
                cancel.store(true, Ordering::Relaxed);
            }
            seen.push(p);
        },
        &cancel,
    )
    .unwrap_err();
    let DownloadError::Cancelled { part, bytes_done } = &err else {
        panic!("expected Cancelled, got {err:?}");
    };
    let kept = std::fs::metadata(part).unwrap().len();
    assert_eq!(kept, *bytes_done);
    assert!(
        kept >= 256 * 1024 && kept < content.len() as u64,
        "kept {kept}"
    );
    assert!(!tmp.path().join("model.gguf").exists());
    assert!(
        seen.iter()
            .any(|p| p.bytes_per_second > 0.0 && p.eta.is_some()),
        "speed and ETA are reported while downloading"
    );

    run(&req).0.unwrap();
    assert_installed(tmp.path(), &content);
    let requests = server.requests();
    assert_eq!(requests.len(), 2);
    assert_eq!(
        requests[1].range.as_deref(),
        Some(format!("bytes={kept}-").as_str())
    );
}

#[test]
fn a_second_concurrent_download_of_the_same_file_is_refused() {
    let content = pseudo_random(MIB, 15);
    let server = TestServer::start(
        content.clone(),
        vec![Behaviour::Slow {
            chunk: 16 * 1024,
            pause: Duration::from_millis(20),
        }],
    );
    let tmp = tempfile::tempdir().unwrap();
    let req = request(&server, tmp.path(), &content);
    let started = AtomicBool::new(false);
    std::thread::scope(|s| {
        let first = s.spawn(|| {
            download(
                &req,
                &mut |_| started.store(true, Ordering::Relaxed),
                &AtomicBool::new(false),
            )
        });
        while !started.load(Ordering::Relaxed) {
            std::thread::sleep(Duration::from_millis(5));
        }
        let err = run(&req).0.unwrap_err();
        assert!(
            matches!(err, DownloadError::AlreadyInProgress { .. }),
            "{err:?}"
        );
        first.join().unwrap().unwrap();
    });
    assert_installed(tmp.path(), &content);
}

#[test]
fn rejects_path_like_file_names() {
    let tmp = tempfile::tempdir().unwrap();
    let req = DownloadRequest::new("http://127.0.0.1:9/x", tmp.path(), "../evil.gguf");
    assert!(matches!(
        run(&req).0,
        Err(DownloadError::InvalidFileName(_))
    ));
}

#[test]
fn model_pull_downloads_a_url_and_list_and_rm_see_it() {
    let content = pseudo_random(MIB + 7, 9);
    let server = TestServer::start(content.clone(), vec![]);
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_str().unwrap();
    let model = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_desktop-mate"))
            .arg("model")
            .args(args)
            .env("HOME", tmp.path())
            .output()
            .expect("run desktop-mate model")
    };
    let out = model(&["--dir", dir, "pull", &server.url(PATH)]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        tmp.path().join("model.gguf").display().to_string(),
        "prints the model's path"
    );
    assert_installed(tmp.path(), &content);

    let out = model(&["--dir", dir, "list"]);
    assert!(out.status.success());
    let listing = String::from_utf8_lossy(&out.stdout);
    assert!(listing.contains("qwen2.5-1.5b"), "{listing}");
    assert!(
        listing.contains("also downloaded:") && listing.contains("model.gguf"),
        "{listing}"
    );

    let out = model(&["--dir", dir, "rm", "model.gguf"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!tmp.path().join("model.gguf").exists());

    let out = model(&["--dir", dir, "pull", "no-such-model"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("is not in the catalogue"));
}

#[test]
fn the_chat_panel_download_fetches_remembers_and_loads_the_model() {
    use bevy::prelude::*;
    use desktop_mate::config::{self, AppState, Overrides, StateFile};
    use desktop_mate::llm::{LlmStatus, ModelDownloads, StartDownload};
    use desktop_mate::models::Catalogue;

    let tmp = tempfile::tempdir().unwrap();
    let model = tmp.path().join("served.gguf");
    crate::support::write_tiny_llama(&model, 21);
    let content = std::fs::read(&model).unwrap();
    let server = TestServer::start(content.clone(), vec![]);
    let catalogue = Catalogue::parse(&format!(
        r#"(models: [(id: "tiny", name: "Tiny", repo: "org/model", revision: "main",
            file: "tiny.gguf", size_bytes: {}, sha256: Some("{}"), licence: "MIT",
            ram_mib: 1, good_for: "tests")])"#,
        content.len(),
        sha256_hex(&content)
    ))
    .expect("catalogue");
    let settings = tmp.path().join("mascot.ron");
    std::fs::write(
        &settings,
        "(llm: (n_ctx: 256, n_batch: 64, n_threads: 1, warm_up: false))",
    )
    .unwrap();
    let mut loaded = config::load_with(Some(&settings), None, Overrides::default());
    loaded.settings.chat.history_file = Some(tmp.path().join("history.jsonl"));
    let mut app = desktop_mate::headless_app(loaded);
    let models = tmp.path().join("models");
    app.insert_resource(ModelDownloads::new(
        catalogue,
        Some(models.clone()),
        server.url(""),
    ));
    app.update();
    assert_eq!(*app.world().resource::<LlmStatus>(), LlmStatus::NoModel);
    app.world_mut().write_message(StartDownload("tiny".into()));
    let ready = crate::support::update_until(&mut app, Duration::from_secs(60), |w| {
        *w.resource::<LlmStatus>() == LlmStatus::Ready
    });
    assert!(ready, "{:?}", app.world().resource::<LlmStatus>());
    assert_eq!(std::fs::read(models.join("tiny.gguf")).unwrap(), content);
    assert_eq!(
        server.requests()[0].path,
        "/org/model/resolve/main/tiny.gguf"
    );
    let expected = Some(models.join("tiny.gguf"));
    assert_eq!(app.world().resource::<AppState>().model, expected);
    let (saved, problem) = StateFile::beside(Some(&settings)).load();
    assert_eq!(
        (saved.model, problem),
        (expected, None),
        "remembered for the next start"
    );
    assert_eq!(
        std::fs::read_to_string(&settings).unwrap(),
        "(llm: (n_ctx: 256, n_batch: 64, n_threads: 1, warm_up: false))",
        "the user's settings file is not touched"
    );
}
