//! Chat templates of real model families rendered by `ChatTemplate` (minijinja), compared byte
//! for byte with what Hugging Face transformers renders (tests/data/templates/cases.json,
//! written by scripts/dev/template-vectors.py).

use std::path::{Path, PathBuf};

use desktop_mate::llm::conversation::template::{ChatTemplate, Message, TemplateError};
use serde::Deserialize;

fn data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/templates")
}

fn read(name: &str) -> String {
    let path = data_dir().join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|err| panic!("{}: {err}", path.display()))
}

#[derive(Deserialize)]
struct Cases {
    cases: Vec<Case>,
}

#[derive(Deserialize)]
struct CaseMessage {
    role: String,
    content: String,
}

/// One case of cases.json. `extra` is read straight into a template value, keeping the JSON's
/// key order (tool schemas are printed with `tojson`).
#[derive(Deserialize)]
struct Case {
    name: String,
    template: String,
    bos_token: String,
    eos_token: String,
    messages: Vec<CaseMessage>,
    add_generation_prompt: bool,
    #[serde(default)]
    extra: Option<minijinja::Value>,
    now: String,
    /// The expected rendering's file, or else the expected `raise_exception` text.
    expected: Option<String>,
    error: Option<String>,
}

struct Outcome {
    name: String,
    result: Result<String, TemplateError>,
    case: Case,
}

fn replay_all() -> Vec<Outcome> {
    let doc: Cases = serde_json::from_str(&read("cases.json")).expect("cases.json parses");
    assert!(!doc.cases.is_empty());
    doc.cases
        .into_iter()
        .map(|case| {
            let now: jiff::civil::DateTime = case.now.parse().expect("now is an ISO date-time");
            let messages: Vec<Message> = case
                .messages
                .iter()
                .map(|m| Message::new(&m.role, &m.content))
                .collect();
            let result = ChatTemplate::new(&read(&case.template), &case.bos_token, &case.eos_token)
                .map(|t| t.with_fixed_time(now))
                .and_then(|t| {
                    t.render_with(
                        &messages,
                        case.add_generation_prompt,
                        case.extra.clone().unwrap_or_default(),
                    )
                });
            Outcome {
                name: case.name.clone(),
                result,
                case,
            }
        })
        .collect()
}

#[test]
fn every_template_renders_as_transformers_does() {
    let mut failures = Vec::new();
    let mut families = std::collections::BTreeSet::new();
    for Outcome { name, result, case } in replay_all() {
        families.insert(case.template.clone());
        match (&case.expected, result) {
            (Some(expected), Ok(rendered)) => {
                let expected = read(expected);
                if rendered != expected {
                    failures.push(format!(
                        "{name}: differs\n--- expected\n{expected:?}\n--- rendered\n{rendered:?}"
                    ));
                }
            }
            (Some(_), Err(err)) => failures.push(format!("{name}: {err}")),
            (None, Ok(rendered)) => {
                failures.push(format!("{name}: rendered {rendered:?}, expected an error"));
            }
            (None, Err(TemplateError::Raised(message))) => {
                let expected = case
                    .error
                    .as_deref()
                    .unwrap_or("(no error text in cases.json)");
                if message != expected {
                    failures.push(format!("{name}: raised {message:?}, expected {expected:?}"));
                }
            }
            (None, Err(err)) => failures.push(format!("{name}: {err}, expected raise_exception")),
        }
    }
    assert!(
        families.len() >= 8,
        "only {} template families",
        families.len()
    );
    assert!(
        failures.is_empty(),
        "{} failing case(s):\n{}",
        failures.len(),
        failures.join("\n\n")
    );
}

#[test]
fn gemma_refuses_a_system_message_with_its_own_words() {
    let template = ChatTemplate::new(&read("gemma-2.jinja"), "<bos>", "<eos>").unwrap();
    let err = template
        .render(
            &[
                Message::new("system", "Be nice."),
                Message::new("user", "Hi"),
            ],
            true,
        )
        .unwrap_err();
    assert!(
        matches!(&err, TemplateError::Raised(m) if m == "System role not supported"),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        "the chat template refused the conversation: System role not supported"
    );

    let err = template
        .render(
            &[Message::new("user", "Hi"), Message::new("user", "Hi again")],
            true,
        )
        .unwrap_err();
    assert!(
        matches!(&err, TemplateError::Raised(m) if m == "Conversation roles must alternate user/assistant/user/assistant/..."),
        "{err:?}"
    );
}

#[test]
fn mistral_refuses_roles_that_do_not_alternate() {
    let template = ChatTemplate::new(&read("mistral-nemo.jinja"), "<s>", "</s>").unwrap();
    let err = template
        .render(&[Message::new("assistant", "Hello")], true)
        .unwrap_err();
    match err {
        TemplateError::Raised(message) => assert!(
            message.contains("conversation roles must alternate"),
            "{message}"
        ),
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[test]
fn syntax_errors_are_errors_not_panics() {
    let broken = read("qwen-3.jinja").replacen("{%- endfor %}", "", 1);
    let err = ChatTemplate::new(&broken, "", "<|im_end|>").unwrap_err();
    assert!(matches!(err, TemplateError::Syntax(_)), "{err:?}");
    assert!(err.to_string().contains("syntax error"), "{err}");
    for source in [
        "{{",
        "{% if %}",
        "{% for x in %}{% endfor %}",
        "{{ 'unterminated }}",
        "{% endfor %}",
        "{% raw %}",
    ] {
        let err = ChatTemplate::new(source, "", "").unwrap_err();
        assert!(matches!(err, TemplateError::Syntax(_)), "{source}: {err:?}");
    }
}

#[test]
fn rendering_an_empty_conversation_fails_or_succeeds_without_panicking() {
    // Many templates index messages[0]; an empty conversation must give a result or an error.
    let mut names: Vec<_> = std::fs::read_dir(data_dir())
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.ends_with(".jinja"))
        .collect();
    names.sort();
    for name in names {
        let template = ChatTemplate::new(&read(&name), "<s>", "</s>").unwrap();
        for messages in [vec![], vec![Message::new("tool", "{\"x\": 1}")]] {
            let result = template.render(&messages, true);
            assert!(
                !matches!(result, Err(TemplateError::Panicked(_))),
                "{name}: {result:?}"
            );
        }
    }
}
