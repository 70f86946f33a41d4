//! `desktop-mate say "TEXT" --voice VOICE --out FILE.wav`: speaks text with a voice, for users
//! trying voices and for tests. The text goes through the same sentence splitter and cleaning
//! as a streamed reply (emotion tags, markdown and emoji are not spoken).

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::voice::VoiceError;
use crate::voice::phonemes::Espeak;
use crate::voice::piper::PiperVoice;
use crate::voice::playback::Speaker;
use crate::voice::text::SentenceSplitter;
use crate::voice::tts::{Audio, SpeechBackend};

/// Silence between two sentences, as a reader pauses.
const SENTENCE_GAP_SECONDS: f32 = 0.25;

#[derive(Debug, Clone, clap::Args)]
pub struct SayArgs {
    /// What to say. Markdown, emoji and emotion tags (`[joy]`) are not spoken.
    pub text: String,
    /// A voice: a catalogue id (`voice list`, downloaded with `voice pull`), a Piper model
    /// (`NAME.onnx` with `NAME.onnx.json` beside it, prepared once into the voices folder) or a
    /// prepared voice folder.
    #[arg(long, env = "DESKTOP_MATE_VOICE")]
    pub voice: PathBuf,
    /// Write the speech to this WAV file (16-bit mono) instead of playing it.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// 1.0 is the voice's own pace (0.5-2.0).
    #[arg(long, default_value_t = 1.0)]
    pub speed: f32,
    /// The eSpeak NG program (default: `espeak-ng` on the PATH).
    #[arg(long, env = "DESKTOP_MATE_ESPEAK_NG")]
    pub espeak_ng: Option<PathBuf>,
    /// One JSON object on stdout: each sentence as spoken, its length and synthesis time.
    #[arg(long)]
    pub json: bool,
    /// Stop the speakers this long after the first sentence starts playing (what the chat's
    /// Stop does; for the test that measures how fast the sound ends), then wait a second in
    /// silence. Counted from the mixer's first sample, not from the queuing: a loaded machine
    /// can open the stream late (a cold CI run heard 860 ms of a 1500 ms wait).
    #[arg(long, value_name = "MS", hide = true)]
    pub stop_after_ms: Option<u64>,
}

pub fn run(args: SayArgs) -> ExitCode {
    match say(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("say: {err}");
            ExitCode::from(2)
        }
    }
}

fn say(args: &SayArgs) -> Result<(), VoiceError> {
    // Without --out the sound device is opened first: no device is said before any work.
    let speaker = match &args.out {
        Some(_) => None,
        None => Some(Speaker::open()?),
    };
    let espeak = Espeak::locate(args.espeak_ng.as_deref())?;
    let started = Instant::now();
    let folder = crate::voice::folders::resolve(&args.voice)?;
    let voice = PiperVoice::open(&folder, espeak, 1)?;
    let load_ms = started.elapsed().as_secs_f64() * 1000.0;

    let mut splitter = SentenceSplitter::default();
    let mut sentences = splitter.push(&args.text);
    sentences.extend(splitter.finish());
    let mut all = Audio {
        samples: Vec::new(),
        sample_rate: voice.sample_rate(),
    };
    let mut rows = Vec::new();
    let mut stopper = None;
    let stopped = Arc::new(AtomicBool::new(false));
    for (n, sentence) in sentences.iter().enumerate() {
        if stopped.load(Ordering::SeqCst) {
            break;
        }
        let started = Instant::now();
        let audio = voice.synthesize(sentence, args.speed)?;
        let synth_ms = started.elapsed().as_secs_f64() * 1000.0;
        rows.push(serde_json::json!({
            "text": sentence,
            "seconds": round(audio.seconds()),
            "synthesis_ms": round(synth_ms),
        }));
        // Sentence N plays while N+1 is synthesized.
        if let Some(speaker) = &speaker {
            speaker.play_tracked(audio.clone(), n as u64 + 1);
            speaker.play(&Audio::silence(SENTENCE_GAP_SECONDS, audio.sample_rate));
            if let (Some(after), None) = (args.stop_after_ms, &stopper) {
                stopper = Some(stop_after(speaker, Duration::from_millis(after), &stopped));
            }
            // Queued as the stop came: it ends this sentence too (a sentence queued after a
            // stop would play).
            if stopped.load(Ordering::SeqCst) {
                speaker.stop();
            }
        }
        all.append(&audio, SENTENCE_GAP_SECONDS);
    }
    match (&args.out, &speaker) {
        (Some(out), _) => all.write_wav(out)?,
        (None, Some(speaker)) => match stopper {
            Some(stopper) => {
                let _ = stopper.join();
                std::thread::sleep(Duration::from_secs(1));
            }
            None => speaker.wait(),
        },
        (None, None) => {}
    }
    let out = args.out.as_ref().map_or_else(
        || "the speakers".to_owned(),
        |out| out.display().to_string(),
    );
    let synth_ms: f64 = rows
        .iter()
        .filter_map(|row| row["synthesis_ms"].as_f64())
        .sum();
    if args.json {
        println!(
            "{}",
            serde_json::json!({
                "voice": folder.display().to_string(),
                "out": out,
                "sample_rate": all.sample_rate,
                "seconds": round(all.seconds()),
                "load_ms": round(load_ms),
                "real_time_factor": if all.seconds() > 0.0 { round(synth_ms / 1000.0 / all.seconds()) } else { 0.0 },
                "sentences": rows,
            })
        );
    } else {
        eprintln!(
            "say: {} sentence(s), {:.1} s of speech in {} ({:.0} ms to synthesize)",
            sentences.len(),
            all.seconds(),
            out,
            synth_ms
        );
    }
    Ok(())
}

fn round(value: f64) -> f64 {
    (value * 1000.0).round() / 1000.0
}

/// Stops `speaker` `after` its mixer read the first sentence's first sample (or 10 s after
/// now if it never does), while the caller goes on synthesizing; `stopped` is set first, so
/// the caller queues no more and stops what it queued meanwhile.
fn stop_after(
    speaker: &Speaker,
    after: Duration,
    stopped: &Arc<AtomicBool>,
) -> std::thread::JoinHandle<()> {
    let (clock, controls, stopped) = (speaker.clock(), speaker.controls(), stopped.clone());
    std::thread::spawn(move || {
        let waiting = Instant::now();
        while clock.now().0 == 0 && waiting.elapsed() < Duration::from_secs(10) {
            std::thread::sleep(Duration::from_millis(1));
        }
        std::thread::sleep(after);
        stopped.store(true, Ordering::SeqCst);
        controls.stop();
    })
}
