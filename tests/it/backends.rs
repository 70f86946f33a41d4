//! llama.cpp's modules chosen at run time: the CPU module this machine's CPU and OS run best,
//! a forced old-CPU module, and the Vulkan module on Mesa's CPU Vulkan driver (lavapipe).
use std::path::Path;

use crate::cli::{check_json, desktop_mate_with_env as run, json_of};
use crate::support::shared_file;

/// The `backends` part of `check --json` with these environment variables.
fn check(env: &[(&str, &str)]) -> serde_json::Value {
    check_json(env)["backends"].clone()
}

/// Greedy continuation on the real stories model; `(text, stderr)`.
fn greedy(model: &Path, settings: &str, env: &[(&str, &str)]) -> (String, String) {
    let home = tempfile::tempdir().expect("temp dir");
    let config = home.path().join("mascot.ron");
    std::fs::write(&config, settings).expect("write");
    let output = run(
        &[
            "chat",
            "--json",
            "--raw",
            "--temperature",
            "0",
            "--max-tokens",
            "24",
            "--prompt",
            "Once upon a time",
            "--config",
            config.to_str().expect("utf8"),
            "--model",
            model.to_str().expect("utf8"),
        ],
        home.path(),
        env,
    );
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(output.status.success(), "{stderr}");
    let text = json_of(&output)["text"].as_str().expect("text").to_owned();
    (text, stderr)
}

/// ggml's x86 score of each CPU module (ggml/src/CMakeLists.txt variants, weights from
/// ggml-cpu/arch/x86/cpu-feats.cpp), computed here from /proc/cpuinfo: 0 when a flag is missing.
#[cfg(all(target_os = "linux", target_arch = "x86_64"))]
fn expected_x86_scores(flags: &[&str]) -> Vec<(&'static str, i64)> {
    const AVX512: &[&str] = &["avx512f", "avx512cd", "avx512vl", "avx512dq", "avx512bw"];
    // (cpuinfo flags, score bit) in ggml's order.
    let feature = |name: &str| -> (Vec<&'static str>, i64) {
        match name {
            "FMA" => (vec!["fma"], 1),
            "F16C" => (vec!["f16c"], 1 << 1),
            "SSE42" => (vec!["sse4_2"], 1 << 2),
            "BMI2" => (vec!["bmi2"], 1 << 3),
            "AVX" => (vec!["avx"], 1 << 4),
            "AVX2" => (vec!["avx2"], 1 << 5),
            "AVX_VNNI" => (vec!["avx_vnni"], 1 << 6),
            "AVX512" => (AVX512.to_vec(), 1 << 7),
            "AVX512_VBMI" => (vec!["avx512vbmi"], 1 << 8),
            "AVX512_BF16" => (vec!["avx512_bf16"], 1 << 9),
            "AVX512_VNNI" => (vec!["avx512_vnni"], 1 << 10),
            "AMX_INT8" => (vec!["amx_int8"], 1 << 11),
            "AMX_TILE" => (vec!["amx_tile"], 0),
            other => panic!("unknown feature {other}"),
        }
    };
    let variants: [(&str, &str); 14] = [
        ("x64", ""),
        ("sse42", "SSE42"),
        ("sandybridge", "SSE42 AVX"),
        ("ivybridge", "SSE42 AVX F16C"),
        ("piledriver", "SSE42 AVX F16C FMA"),
        ("haswell", "SSE42 AVX F16C FMA AVX2 BMI2"),
        ("skylakex", "SSE42 AVX F16C FMA AVX2 BMI2 AVX512"),
        (
            "cannonlake",
            "SSE42 AVX F16C FMA AVX2 BMI2 AVX512 AVX512_VBMI",
        ),
        (
            "cascadelake",
            "SSE42 AVX F16C FMA AVX2 BMI2 AVX512 AVX512_VNNI",
        ),
        (
            "icelake",
            "SSE42 AVX F16C FMA AVX2 BMI2 AVX512 AVX512_VBMI AVX512_VNNI",
        ),
        (
            "cooperlake",
            "SSE42 AVX F16C FMA AVX2 BMI2 AVX512 AVX512_VNNI AVX512_BF16",
        ),
        (
            "zen4",
            "SSE42 AVX F16C FMA AVX2 BMI2 AVX512 AVX512_VBMI AVX512_VNNI AVX512_BF16",
        ),
        ("alderlake", "SSE42 AVX F16C FMA AVX2 BMI2 AVX_VNNI"),
        (
            "sapphirerapids",
            "SSE42 AVX F16C FMA AVX2 BMI2 AVX512 AVX512_VBMI AVX512_VNNI AVX512_BF16 AMX_TILE AMX_INT8",
        ),
    ];
    variants
        .iter()
        .map(|(name, features)| {
            let mut score = 1;
            for (needed, bit) in features.split_whitespace().map(feature) {
                if !needed.iter().all(|f| flags.contains(f)) {
                    return (*name, 0);
                }
                score += bit;
            }
            (*name, score)
        })
        .collect()
}

#[cfg(all(target_os = "linux", target_arch = "x86_64"))]
#[test]
fn the_best_cpu_module_this_cpu_runs_is_chosen_with_ggml_scores() {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").expect("cpuinfo");
    let flags: Vec<&str> = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("flags"))
        .and_then(|l| l.split_once(':'))
        .map(|(_, f)| f.split_whitespace().collect())
        .expect("flags line");
    let expected = expected_x86_scores(&flags);
    let report = check(&[]);
    let candidates = report["cpu_candidates"].as_array().expect("candidates");
    assert_eq!(candidates.len(), 14, "every x86 module ships: {report}");
    for (name, score) in &expected {
        let found = candidates
            .iter()
            .find(|c| c["name"] == *name)
            .unwrap_or_else(|| panic!("module {name} missing: {report}"));
        assert_eq!(found["score"].as_i64(), Some(*score), "{name}: {found}");
    }
    // AMX needs the kernel's permission on top of CPUID; this VM's CPU has none, so the best
    // is the highest score among the rest.
    let amx_advertised = flags.contains(&"amx_int8");
    let best = expected
        .iter()
        .filter(|(name, score)| *score > 0 && (amx_advertised || *name != "sapphirerapids"))
        .max_by_key(|(_, score)| *score)
        .map(|(name, _)| *name)
        .expect("x64 always runs");
    if !amx_advertised {
        assert_eq!(report["cpu_variant"].as_str(), Some(best), "{report}");
    }
    eprintln!(
        "chosen: {} ({})",
        report["cpu_variant"], report["cpu_reason"]
    );
    assert!(report["load_ms"].as_f64().expect("load_ms") > 0.0);
}

#[test]
fn a_forced_old_cpu_module_gives_the_same_greedy_text() {
    let Some(model) = shared_file("models/stories260K.gguf") else {
        eprintln!("skipped: ../shared/models/stories260K.gguf not here");
        return;
    };
    let settings = "(llm: (n_threads: 2, n_threads_batch: 2))";
    let (best, _) = greedy(&model, settings, &[]);
    assert!(
        best.starts_with(", there was a little girl named Lily"),
        "{best}"
    );
    for variant in ["sse42", "x64"] {
        let env = [("DESKTOP_MATE_CPU_VARIANT", variant)];
        assert_eq!(check(&env)["cpu_variant"].as_str(), Some(variant));
        let (text, _) = greedy(&model, settings, &env);
        assert_eq!(text, best, "{variant}");
    }
}

#[test]
fn an_unknown_or_unusable_forced_module_falls_back_with_a_reason() {
    let report = check(&[("DESKTOP_MATE_CPU_VARIANT", "pentium4")]);
    let chosen = report["cpu_variant"].as_str().expect("a module");
    assert_ne!(chosen, "pentium4");
    let reason = report["cpu_reason"].as_str().expect("reason");
    assert!(reason.contains("pentium4: no such module"), "{reason}");
}

#[test]
fn an_empty_module_folder_is_a_clear_error_not_a_crash() {
    let empty = tempfile::tempdir().expect("temp dir");
    let home = tempfile::tempdir().expect("temp dir");
    let dir = empty.path().to_str().expect("utf8");
    let output = run(
        &["check"],
        home.path(),
        &[("DESKTOP_MATE_BACKENDS_DIR", dir)],
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains("CPU modules (ggml-cpu-*) are not in") && stdout.contains(dir),
        "{stdout}"
    );
}

/// The Vulkan module `scripts/build-backend-module.sh vulkan` built into the cache.
#[cfg(target_os = "linux")]
fn vulkan_module() -> Option<std::path::PathBuf> {
    if let Some(path) = std::env::var_os("DESKTOP_MATE_VULKAN_MODULE") {
        return Some(std::path::PathBuf::from(path));
    }
    let home = std::env::var_os("HOME")?;
    let root = Path::new(&home).join(".cache/desktop-mate/backend-modules");
    std::fs::read_dir(root)
        .ok()?
        .filter_map(Result::ok)
        .map(|e| e.path().join("libggml-vulkan.so"))
        .find(|p| p.is_file())
}

#[cfg(target_os = "linux")]
#[test]
fn vulkan_offload_on_lavapipe_gives_the_cpu_text() {
    let Some(model) = shared_file("models/stories260K.gguf") else {
        eprintln!("skipped: ../shared/models/stories260K.gguf not here");
        return;
    };
    let Some(vulkan) = vulkan_module() else {
        crate::support::missing(
            "vulkan",
            "llama.cpp Vulkan module libggml-vulkan.so (scripts/build-backend-module.sh vulkan)",
        );
        return;
    };
    // The shipped modules plus the Vulkan one, in one folder.
    let cpu_dir = std::path::PathBuf::from(check(&[])["dir"].as_str().expect("dir"));
    let modules = tempfile::tempdir().expect("temp dir");
    for entry in std::fs::read_dir(&cpu_dir).expect("modules") {
        let path = entry.expect("entry").path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if name.starts_with("libggml-cpu-") {
            std::os::unix::fs::symlink(&path, modules.path().join(name)).expect("link");
        }
    }
    std::os::unix::fs::symlink(&vulkan, modules.path().join("libggml-vulkan.so")).expect("link");
    let dir = modules.path().to_str().expect("utf8");
    let env = [
        ("DESKTOP_MATE_BACKENDS_DIR", dir),
        ("DESKTOP_MATE_GPU_BACKEND", "vulkan"),
        // ggml-vulkan skips CPU-type devices such as lavapipe unless they are named.
        ("GGML_VK_VISIBLE_DEVICES", "0"),
        // llama.cpp's "offloaded N/N layers to GPU" line.
        ("RUST_LOG", "info"),
    ];
    let report = check(&env);
    assert_eq!(report["gpu_module"], "vulkan", "{report}");
    let device = report["gpu_devices"][0]["description"]
        .as_str()
        .unwrap_or("");
    assert!(device.contains("llvmpipe"), "{report}");

    let settings = "(llm: (profile: performance, n_threads: 2, n_threads_batch: 2))";
    let (on_cpu, _) = greedy(&model, settings, &[("DESKTOP_MATE_GPU_BACKEND", "none")]);
    let (on_vulkan, log) = greedy(&model, settings, &env);
    assert!(
        log.contains("offloaded 6/6 layers to GPU"),
        "every layer on the Vulkan device: {log}"
    );
    assert_eq!(on_vulkan, on_cpu);

    // cpu_fallback with the Vulkan module loaded: no layer, and no KV cache or compute
    // buffer, on the device (the model gets no GPU device at all).
    let cpu_only = "(llm: (profile: cpu_fallback, n_threads: 2, n_threads_batch: 2))";
    let (text, log) = greedy(&model, cpu_only, &env);
    assert_eq!(text, on_cpu);
    assert!(log.contains("offloaded 0/6 layers to GPU"), "{log}");
    assert!(
        !log.contains("Vulkan0"),
        "nothing allocated on the device: {log}"
    );
}
