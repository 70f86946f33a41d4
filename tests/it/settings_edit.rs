//! Saving settings edited in the app changes only the edited values in the file's text.

use std::path::Path;

use desktop_mate::config::{EditError, edit_in_place};
use desktop_mate::config::{Emotion, EmotionExpression, Expression, Settings, Threads};

fn bundled() -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/mascot.ron");
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn parse(text: &str) -> Settings {
    ron::from_str(text).unwrap_or_else(|e| panic!("does not parse: {e}\n{text}"))
}

/// The comment part (from `//` or `/*`) of every line that has one, in order.
fn comments(text: &str) -> Vec<&str> {
    text.lines()
        .filter_map(|line| {
            let at = [line.find("//"), line.find("/*")]
                .into_iter()
                .flatten()
                .min()?;
            // Skip `//` inside a string (an odd number of quotes before it).
            (line[..at].matches('"').count() % 2 == 0).then(|| &line[at..])
        })
        .collect()
}

/// Every item of `needles` occurs in `haystack`, in this order.
fn in_order(haystack: &str, needles: &[&str]) -> bool {
    let mut from = 0;
    for needle in needles {
        match haystack[from..].find(needle) {
            Some(at) => from += at + needle.len(),
            None => return false,
        }
    }
    true
}

/// Lines of `after` that are not in `before` at the same place, after a line-level diff that
/// only allows changed or inserted lines.
fn changed_lines<'a>(before: &str, after: &'a str) -> Vec<&'a str> {
    let before: Vec<&str> = before.lines().collect();
    let after: Vec<&str> = after.lines().collect();
    // Longest common subsequence, then the lines of `after` outside it.
    let (n, m) = (before.len(), after.len());
    let mut lcs = vec![vec![0usize; m + 1]; n + 1];
    for i in (0..n).rev() {
        for j in (0..m).rev() {
            lcs[i][j] = if before[i] == after[j] {
                lcs[i + 1][j + 1] + 1
            } else {
                lcs[i + 1][j].max(lcs[i][j + 1])
            };
        }
    }
    let (mut i, mut j, mut out) = (0, 0, Vec::new());
    while j < m {
        if i < n && before[i] == after[j] {
            i += 1;
            j += 1;
        } else if i < n && lcs[i + 1][j] >= lcs[i][j + 1] {
            i += 1;
        } else {
            out.push(after[j]);
            j += 1;
        }
    }
    out
}

/// Applies `change` to the settings in `text` and checks the invariants every edit keeps.
fn edit(text: &str, change: impl FnOnce(&mut Settings)) -> String {
    let old = parse(text);
    let mut new = old.clone();
    change(&mut new);
    assert_ne!(old, new, "the test change must change something");
    let out = edit_in_place(text, &old, &new).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(parse(&out), new, "{out}");
    assert!(
        in_order(&out, &comments(text)),
        "comments lost or reordered:\n{out}"
    );
    out
}

/// The index of the first line of `text` whose first word is `key:`.
fn line_of(text: &str, key: &str) -> usize {
    text.lines()
        .position(|l| l.trim_start().starts_with(&format!("{key}:")))
        .unwrap_or_else(|| panic!("no `{key}:` line"))
}

/// Checks that the lines of `after` that differ from `before` (same line count) are exactly
/// the lines of `keys`, each rewritten as `indent key: value,` followed by the original
/// line's trailing comment, the comment at its old column when the value kept its length.
fn only_values_changed(before: &str, after: &str, keys: &[(&str, &str)]) {
    let old: Vec<&str> = before.lines().collect();
    let new: Vec<&str> = after.lines().collect();
    assert_eq!(old.len(), new.len(), "{after}");
    let mut expected: Vec<usize> = keys.iter().map(|(k, _)| line_of(before, k)).collect();
    expected.sort_unstable();
    let changed: Vec<usize> = (0..old.len()).filter(|&i| old[i] != new[i]).collect();
    assert_eq!(changed, expected, "{after}");
    for (key, value) in keys {
        let i = line_of(before, key);
        let (was, now) = (old[i], new[i]);
        let indent = &was[..was.len() - was.trim_start().len()];
        assert!(
            now.starts_with(&format!("{indent}{key}: {value},")),
            "{now}"
        );
        if let Some(at) = was.find(" //") {
            let comment = was[at..].trim_start();
            assert!(now.ends_with(comment), "{now}");
            let old_value =
                was[..at].trim_end().trim_end_matches(',').len() - indent.len() - key.len() - 2;
            if old_value == value.len() {
                assert_eq!(now.find(comment), was.find(comment), "{now}");
            }
        }
    }
}

#[test]
fn bundled_file_one_value_changes_one_line() {
    let original = bundled();
    let out = edit(&original, |s| {
        s.llm.sampling.temperature = if s.llm.sampling.temperature == 1.3 {
            1.4
        } else {
            1.3
        }
    });
    let new = parse(&out).llm.sampling.temperature.to_string();
    // Exactly one line differs: the temperature's, with its comment kept.
    only_values_changed(&original, &out, &[("temperature", &new)]);
    // Every comment (whole-line or trailing) is still there, in order.
    assert_eq!(comments(&original), comments(&out));
    assert_eq!(original.ends_with('\n'), out.ends_with('\n'));
}

#[test]
fn bundled_file_several_changes() {
    let original = bundled();
    let out = edit(&original, |s| {
        s.window.position = Some((10, 20));
        s.llm.n_threads = Threads::Count(3);
        s.llm.model_path = Some("/models/a b.gguf".into());
        s.persona.name = "Zed // ) \"quoted\"".into();
        s.llm.n_ctx = 3;
    });
    only_values_changed(
        &original,
        &out,
        &[
            ("position", "Some((10, 20))"),
            ("n_threads", "3"),
            ("model_path", "Some(\"/models/a b.gguf\")"),
            ("name", "\"Zed // ) \\\"quoted\\\"\""),
            ("n_ctx", "3"),
        ],
    );

    // One entry of the map: only its line changes.
    let out = edit(&original, |s| {
        s.avatar.emotions.get_mut(&Emotion::Joy).unwrap().threshold = 12.5;
    });
    let joy = parse(&original).avatar.emotions[&Emotion::Joy];
    assert_eq!(
        changed_lines(&original, &out),
        [format!(
            "            joy: (expression: joy, multiplier: {:?}, threshold: 12.5),",
            joy.multiplier
        )]
    );
}

#[test]
fn no_change_is_byte_identical() {
    let original = bundled();
    let settings = parse(&original);
    assert_eq!(
        edit_in_place(&original, &settings, &settings).unwrap(),
        original
    );
    let hand = HAND_WRITTEN.replace('\n', "\r\n");
    let settings = parse(&hand);
    assert_eq!(edit_in_place(&hand, &settings, &settings).unwrap(), hand);
}

/// Keys out of the canonical order, many missing, odd comments, no outer struct name on the
/// bundled file but one here, a field without a trailing comma, an inline struct.
const HAND_WRITTEN: &str = r##"// My mascot, my rules.
Settings(
    /* the model first, because I care about it most */
    llm: (
        n_threads: "auto", // "auto" or a number
        sampling: (
            top_p: 0.9, // nucleus
            temperature: 0.7 // no trailing comma here
        ),
        profile: balanced,
    ),
    persona: (
        // a name with tricky characters
        name: "Mate // not a comment ) (",
        system_prompt: r#"Say "hi" // then ) stop"#,
    ),
    window: (
        height: 500, /* nested /* comment */ here */
        position: None, // the OS decides
        width: 300,
    ),
    avatar: (
        emotions: {
            // my tuned faces
            joy: (expression: joy, multiplier: 1.0, threshold: 30.0),
            neutral: (expression: neutral, multiplier: 0.5, threshold: 0.0), // calm
        },
        transition_speed: 2.0,
    ),
    diagnostics: (overlay_visible: true, overlay_key: "F6"), // inline on purpose
)
"##;

const SECTION_ORDER: [&str; 5] = ["llm:", "persona:", "window:", "avatar:", "diagnostics:"];

#[test]
fn hand_written_file_each_kind_of_edit() {
    let mut text = HAND_WRITTEN.to_owned();

    // A present value.
    let out = edit(&text, |s| s.window.height = 720);
    assert_eq!(
        changed_lines(&text, &out),
        ["        height: 720, /* nested /* comment */ here */"]
    );
    text = out;

    // A missing value, after a field without a trailing comma.
    let out = edit(&text, |s| s.llm.sampling.max_tokens = 512);
    assert!(
        out.contains(
            "            temperature: 0.7, // no trailing comma here\n            max_tokens: 512,\n        ),\n"
        ),
        "{out}"
    );
    text = out;

    // None -> Some((10, 20)).
    let out = edit(&text, |s| s.window.position = Some((10, 20)));
    assert_eq!(
        changed_lines(&text, &out),
        ["        position: Some((10, 20)), // the OS decides"]
    );
    text = out;

    // One map entry.
    let out = edit(&text, |s| {
        s.avatar.emotions.get_mut(&Emotion::Joy).unwrap().multiplier = 1.5;
    });
    assert_eq!(
        changed_lines(&text, &out),
        ["            joy: (expression: joy, multiplier: 1.5, threshold: 30.0),"]
    );
    assert!(out.contains("            // my tuned faces\n"));
    text = out;

    // A string with `//` and `)`, next to a raw string holding the same.
    let out = edit(&text, |s| s.persona.name = "Zed // still ) text (".into());
    assert_eq!(
        changed_lines(&text, &out),
        ["        name: \"Zed // still ) text (\","]
    );
    assert!(out.contains(r##"system_prompt: r#"Say "hi" // then ) stop"#,"##));
    text = out;

    // "auto" -> 3.
    let out = edit(&text, |s| s.llm.n_threads = Threads::Count(3));
    assert_eq!(
        changed_lines(&text, &out),
        ["        n_threads: 3, // \"auto\" or a number"]
    );
    text = out;

    // A value missing from an inline struct, plus a present one there.
    let out = edit(&text, |s| {
        s.diagnostics.overlay_key = "F7".into();
        s.diagnostics.sample_interval_secs = 2.0;
    });
    assert_eq!(
        changed_lines(&text, &out),
        [
            "    diagnostics: (overlay_visible: true, overlay_key: \"F7\", sample_interval_secs: 2.0), // inline on purpose"
        ]
    );
    text = out;

    // A whole missing section, inserted at the top level with only the changed key.
    let out = edit(&text, |s| s.chat.turns_kept = 50);
    assert_eq!(
        changed_lines(&text, &out),
        ["    chat: (", "        turns_kept: 50,", "    ),"]
    );
    assert!(out.ends_with("    ),\n)\n"), "{out}");
    text = out;

    // A nested struct missing inside a missing section is written as a nested block.
    let out = edit(&text, |s| {
        s.window.scale = 2.0;
        s.llm.use_mlock = true;
    });
    assert_eq!(
        changed_lines(&text, &out),
        ["        use_mlock: true,", "        scale: 2.0,"]
    );
    text = out;

    assert!(in_order(&text, &SECTION_ORDER));
    assert!(in_order(&text, &["n_threads:", "sampling:", "profile:"]));
    assert!(in_order(&text, &["top_p:", "temperature:", "max_tokens:"]));
    assert!(in_order(
        &text,
        &["height:", "position:", "width:", "scale:"]
    ));
    assert_eq!(comments(HAND_WRITTEN), comments(&text));
}

fn fun() -> EmotionExpression {
    EmotionExpression {
        expression: Expression::Fun,
        multiplier: 1.1,
        threshold: 30.0,
    }
}

#[test]
fn map_entries_added_and_removed_in_place() {
    let out = edit(HAND_WRITTEN, |s| {
        s.avatar.emotions.insert(Emotion::Fun, fun());
    });
    assert_eq!(
        changed_lines(HAND_WRITTEN, &out),
        ["            fun: (expression: fun, multiplier: 1.1, threshold: 30.0),"]
    );
    assert!(out.contains(
        "(expression: neutral, multiplier: 0.5, threshold: 0.0), // calm\n            fun: "
    ));

    // Removing an entry takes its line, with its own trailing comment, and nothing else.
    let old = parse(HAND_WRITTEN);
    let mut new = old.clone();
    new.avatar.emotions.remove(&Emotion::Neutral);
    new.avatar.emotions.insert(Emotion::Fun, fun());
    let out = edit_in_place(HAND_WRITTEN, &old, &new).unwrap();
    assert_eq!(parse(&out), new);
    let expected = HAND_WRITTEN.replace(
        "            neutral: (expression: neutral, multiplier: 0.5, threshold: 0.0), // calm\n",
        "            fun: (expression: fun, multiplier: 1.1, threshold: 30.0),\n",
    );
    assert_eq!(out, expected);
}

#[test]
fn one_line_map_with_new_key_set_is_replaced_whole() {
    let text = "(\n    avatar: (\n        // one line\n        emotions: {joy: (expression: joy, multiplier: 1.0, threshold: 30.0)}, // mine\n    ),\n)\n";
    let out = edit(text, |s| {
        s.avatar.emotions.insert(Emotion::Fun, fun());
    });
    assert_eq!(
        changed_lines(text, &out),
        [
            "        emotions: {joy: (expression: joy, multiplier: 1.0, threshold: 30.0), fun: (expression: fun, multiplier: 1.1, threshold: 30.0)}, // mine"
        ]
    );
}

#[test]
fn missing_map_is_inserted_multi_line() {
    let text = "(\n    avatar: (\n        breathing: false,\n    ),\n)\n";
    let out = edit(text, |s| {
        s.avatar.emotions.remove(&Emotion::Angry);
    });
    assert!(
        out.starts_with(
            "(\n    avatar: (\n        breathing: false,\n        emotions: {\n            neutral: (expression: neutral, multiplier: 0.5, threshold: 0.0),\n"
        ),
        "{out}"
    );
    assert!(
        out.ends_with("threshold: 25.0),\n        },\n    ),\n)\n"),
        "{out}"
    );
}

#[test]
fn missing_section_with_nested_struct() {
    let text = "// only a comment\n(\n    window: (width: 300),\n)\n";
    let out = edit(text, |s| s.llm.sampling.seed = Some(7));
    assert_eq!(
        out,
        "// only a comment\n(\n    window: (width: 300),\n    llm: (\n        sampling: (\n            seed: Some(7),\n        ),\n    ),\n)\n"
    );
}

#[test]
fn empty_struct_and_no_trailing_comma_and_crlf() {
    let out = edit("()", |s| s.chat.turns_kept = 5);
    assert_eq!(out, "(\n    chat: (\n        turns_kept: 5,\n    ),\n)");

    let text = "(\r\n\tpersona: (\r\n\t\tname: \"A\"\r\n\t)\r\n)\r\n";
    let out = edit(text, |s| {
        s.persona.system_prompt = "be nice".into();
        s.window.width = 640;
    });
    assert_eq!(
        out,
        "(\r\n\tpersona: (\r\n\t\tname: \"A\",\r\n\t\tsystem_prompt: \"be nice\",\r\n\t),\r\n\twindow: (\r\n\t\twidth: 640,\r\n\t),\r\n)\r\n"
    );

    let text = "Settings(window: (width: 300), llm: (n_ctx: 1024,))";
    let out = edit(text, |s| {
        s.window.height = 200;
        s.llm.n_batch = 64;
    });
    assert_eq!(
        out,
        "Settings(window: (width: 300, height: 200), llm: (n_ctx: 1024, n_batch: 64,))"
    );
}

#[test]
fn stale_or_unverifiable_edits_are_errors() {
    let original = bundled();
    let mut old = parse(&original);
    let new = old.clone();
    old.window.width = 1;
    assert!(matches!(
        edit_in_place(&original, &old, &new),
        Err(EditError::Stale)
    ));

    // NaN never reads back equal: the function refuses rather than writing a file.
    let old = parse(&original);
    let mut new = old.clone();
    new.llm.sampling.temperature = f32::NAN;
    match edit_in_place(&original, &old, &new) {
        Err(EditError::Verify(why)) => assert!(why.contains("NaN"), "{why}"),
        other => panic!("{other:?}"),
    }

    assert!(matches!(
        edit_in_place("(window: (width: ))", &old, &new),
        Err(EditError::Original(_))
    ));
}

/// Every value of the settings differs from the defaults (and from the bundled file).
fn everything_changed() -> Settings {
    let mut s = Settings::default();
    s.window.width = 800;
    s.window.height = 900;
    s.window.position = Some((-5, 7));
    s.window.scale = 0.5;
    s.window.always_on_top = false;
    s.window.click_through = false;
    s.window.idle_fps = 10.0;
    s.window.active_fps = 120.0;
    s.avatar.vrm_path = Some("C:\\avatars\\a \"b\".vrm".into());
    s.avatar.transition_speed = 9.5;
    s.avatar.auto_blink = false;
    s.avatar.head_motion = false;
    s.avatar.breathing = false;
    s.avatar.look_at_cursor = false;
    s.avatar.emotions.remove(&Emotion::Sorrow);
    if let Some(joy) = s.avatar.emotions.get_mut(&Emotion::Joy) {
        joy.expression = Expression::Fun;
    }
    s.llm.model_path = Some("/m/x.gguf".into());
    s.llm.profile = desktop_mate::config::Profile::CpuFallback;
    s.llm.n_gpu_layers = Some(12);
    s.llm.n_ctx = 8192;
    s.llm.n_batch = 256;
    s.llm.n_threads = Threads::Count(4);
    s.llm.n_threads_batch = Threads::Count(2);
    s.llm.use_mmap = false;
    s.llm.use_mlock = true;
    s.llm.warm_up = false;
    s.llm.sampling.temperature = 0.0;
    s.llm.sampling.top_k = 0;
    s.llm.sampling.top_p = 0.5;
    s.llm.sampling.min_p = 0.0;
    s.llm.sampling.repeat_penalty = 1.0;
    s.llm.sampling.seed = Some(42);
    s.llm.sampling.max_tokens = 64;
    s.persona.name = "r#\"x\"# /* not a comment */".into();
    s.persona.system_prompt = "line one\nline two // )".into();
    s.chat.history_file = Some("/h.jsonl".into());
    s.chat.turns_kept = 3;
    s.diagnostics.sample_interval_secs = 0.25;
    s.diagnostics.overlay_visible = true;
    s.diagnostics.overlay_key = "F12".into();
    s.diagnostics.overlay_position = Some((1.5, -2.0));
    s.diagnostics.recording_path = Some("/r.csv".into());
    s
}

#[test]
fn every_key_changed_at_once_and_back() {
    let odd = "#![enable(implicit_some)]\n// it's a ( weird \"comment\n/* ) } ] ' */\nSettings( window: WindowSettings( width: 1, ), r#chat: (turns_kept: 2 /* ( */)\n)";
    for text in [
        bundled(),
        HAND_WRITTEN.to_owned(),
        "()".to_owned(),
        odd.to_owned(),
    ] {
        let old = parse(&text);
        let new = everything_changed();
        let out = edit_in_place(&text, &old, &new).unwrap_or_else(|e| panic!("{e}\n{text}"));
        assert_eq!(parse(&out), new, "{out}");
        assert!(in_order(&out, &comments(&text)), "{out}");
        // And back again, to the old values (keys now all present).
        let back = edit_in_place(&out, &new, &old).unwrap_or_else(|e| panic!("{e}\n{out}"));
        assert_eq!(parse(&back), old, "{back}");
    }
}

#[test]
fn a_server_backend_is_kept_and_can_be_switched_in_place() {
    use desktop_mate::config::Backend;
    let server = "(\n    llm: (\n        backend: OpenAi(base_url: \"http://127.0.0.1:11434/v1\", model: \"llama3.2\"), // mine\n        warm_up: true,\n    ),\n)\n";
    // Another value changes; the backend's text stays as written.
    let out = edit(server, |s| s.llm.warm_up = false);
    assert!(
        out.contains(
            "backend: OpenAi(base_url: \"http://127.0.0.1:11434/v1\", model: \"llama3.2\"), // mine"
        ),
        "{out}"
    );
    // The backend itself is one value.
    let out = edit(server, |s| s.llm.backend = Backend::Local);
    assert!(out.contains("backend: Local, // mine"), "{out}");
    let out = edit(&bundled(), |s| {
        s.llm.backend = Backend::OpenAi {
            base_url: "http://127.0.0.1:1234/v1".into(),
            model: "qwen3".into(),
            api_key_env: Some("LMSTUDIO_API_KEY".into()),
        }
    });
    assert!(out.contains("http://127.0.0.1:1234/v1"), "{out}");
}
