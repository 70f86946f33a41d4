//! `desktop-mate motion list`: the motion clips the mascot knows.

use std::process::ExitCode;

use crate::motion::builtin::Role;
use crate::motion::{MotionLibrary, MotionSource};

#[derive(Debug, Clone, clap::Args)]
pub struct MotionArgs {
    #[command(subcommand)]
    pub action: MotionAction,
}

#[derive(Debug, Clone, clap::Subcommand)]
pub enum MotionAction {
    /// Name, length, loop and when each clip plays.
    List {
        /// One JSON array on stdout.
        #[arg(long)]
        json: bool,
    },
}

fn role(role: Role) -> String {
    match role {
        Role::Idle => "idle loop".into(),
        Role::IdleVariation { weight } => format!("idle variation (weight {weight})"),
        Role::Greeting => "greeting at start".into(),
        Role::Gesture(emotion) => format!("gesture for {emotion:?}").to_lowercase(),
        Role::Talking => "while a reply streams".into(),
        Role::Sleepy => "after a while without activity".into(),
        Role::Listening => "while you speak to it".into(),
        Role::Held => "while the window is dragged".into(),
        Role::Landing => "when a drag ends".into(),
        Role::OnRequest => "on request".into(),
    }
}

pub fn run(args: MotionArgs) -> ExitCode {
    let MotionAction::List { json } = args.action;
    let library = MotionLibrary::builtin();
    let rows: Vec<serde_json::Value> = library
        .clips
        .iter()
        .map(|clip| {
            serde_json::json!({
                "name": clip.name,
                "seconds": (clip.clip.duration * 100.0).round() / 100.0,
                "loop": clip.looping,
                "plays": role(clip.role),
                "source": match &clip.source {
                    MotionSource::Builtin => "built-in (CC0)".to_owned(),
                    MotionSource::File(path) => path.display().to_string(),
                },
            })
        })
        .collect();
    if json {
        println!("{}", serde_json::Value::Array(rows));
        return ExitCode::SUCCESS;
    }
    println!("{:<12} {:>7}  {:<5} plays", "name", "seconds", "loop");
    for row in &rows {
        println!(
            "{:<12} {:>7.2}  {:<5} {}",
            row["name"].as_str().unwrap_or_default(),
            row["seconds"].as_f64().unwrap_or_default(),
            if row["loop"].as_bool().unwrap_or_default() {
                "yes"
            } else {
                "no"
            },
            row["plays"].as_str().unwrap_or_default(),
        );
    }
    ExitCode::SUCCESS
}
