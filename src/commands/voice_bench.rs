//! `desktop-mate bench --voice VOICE`: the voice's costs — eSpeak NG's phonemes and the
//! synthesis per sentence, the real-time factor, the time from a complete sentence to its first
//! sample, and (with a chat model in the settings) from the user's Enter to the first sample
//! while the reply goes on being generated, as the mascot does it.

use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::time::Instant;

use serde::Serialize;

use crate::llm::contract::{GenerateOptions, ReplyStream};
use crate::llm::conversation::session::ChatSession;
use crate::voice::phonemes::Espeak;
use crate::voice::piper::PiperVoice;
use crate::voice::text::SentenceSplitter;
use crate::voice::tts::SpeechBackend;

#[derive(Debug, Serialize)]
pub struct VoiceReport {
    pub voice: String,
    pub sample_rate: u32,
    pub threads: u32,
    pub load_ms: f64,
    pub sentences: Vec<SentenceRow>,
    /// Synthesis time over audio length, all sentences together (eSpeak included).
    pub real_time_factor: f64,
    /// A complete sentence to its first sample (phonemes + synthesis: VITS makes a sentence in
    /// one pass), median of the sentences.
    pub sentence_to_first_audio_ms: f64,
    pub enter_to_first_audio: Option<EnterReport>,
}

#[derive(Debug, Serialize)]
pub struct SentenceRow {
    pub text: String,
    pub phonemes_ms: f64,
    pub synthesis_ms: f64,
    pub audio_seconds: f64,
}

#[derive(Debug, Serialize)]
pub struct EnterReport {
    pub model: String,
    /// "chat" (the persona's replies), or "completion" when the model's chat replies had
    /// nothing to say (a base model such as Gemma 3 270M): story openings are continued
    /// instead, through the same engine, splitter and voice.
    pub mode: &'static str,
    /// Each message: time to the first token, to the first complete sentence, to its audio.
    pub runs: Vec<EnterRow>,
    pub median_first_token_ms: f64,
    pub median_first_sentence_ms: f64,
    pub median_first_audio_ms: f64,
}

#[derive(Debug, Serialize)]
pub struct EnterRow {
    pub message: String,
    pub first_sentence: String,
    pub first_token_ms: f64,
    pub first_sentence_ms: f64,
    pub first_audio_ms: f64,
}

/// Sentences as replies open and go on: short and long.
const SENTENCES: &[&str] = &[
    "Sure!",
    "Hello there, it is nice to see you again.",
    "I think the weather will be lovely this afternoon, so a walk in the park sounds like a good idea.",
    "What would you like to do next?",
    "Peter and Sarah are coming at seven o'clock, and they are bringing a cake.",
];

pub(crate) fn ms(start: Instant) -> f64 {
    start.elapsed().as_secs_f64() * 1000.0
}

pub(crate) fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied().unwrap_or(f64::NAN)
}

/// The synthesis section; `chat`: a loaded session and its settings for the Enter section.
pub fn bench(
    voice_path: &Path,
    espeak: Espeak,
    chat: Option<ChatBench<'_>>,
) -> Result<VoiceReport, String> {
    let threads = 1;
    let folder = crate::voice::folders::resolve(voice_path).map_err(|err| err.to_string())?;
    let start = Instant::now();
    let voice = PiperVoice::open(&folder, espeak, threads).map_err(|err| err.to_string())?;
    let load_ms = ms(start);
    let voice_name = voice
        .folder()
        .file_name()
        .map_or_else(String::new, |name| name.to_string_lossy().into_owned());
    // One warm-up: onnxruntime's first run allocates.
    voice
        .synthesize("Hello.", 1.0)
        .map_err(|err| err.to_string())?;

    let mut sentences = Vec::new();
    for text in SENTENCES {
        let start = Instant::now();
        // The voice's own language (the synthesis below includes this step again).
        voice.phonemes(text).map_err(|err| err.to_string())?;
        let phonemes_ms = ms(start);
        let start = Instant::now();
        let audio = voice.synthesize(text, 1.0).map_err(|err| err.to_string())?;
        let synthesis_ms = ms(start);
        eprintln!(
            "bench: {:>5.0} ms for {:.2} s of speech: {text:?}",
            synthesis_ms,
            audio.seconds()
        );
        sentences.push(SentenceRow {
            text: (*text).to_owned(),
            phonemes_ms,
            synthesis_ms,
            audio_seconds: audio.seconds(),
        });
    }
    let synthesis: f64 = sentences.iter().map(|row| row.synthesis_ms).sum::<f64>() / 1000.0;
    let audio: f64 = sentences.iter().map(|row| row.audio_seconds).sum();
    let sentence_to_first_audio_ms = median(sentences.iter().map(|row| row.synthesis_ms).collect());
    let enter_to_first_audio = match chat {
        Some(chat) => Some(enter_to_first_audio(&voice, chat)?),
        None => None,
    };
    Ok(VoiceReport {
        voice: voice_name,
        sample_rate: voice.sample_rate(),
        threads,
        load_ms,
        sentences,
        real_time_factor: if audio > 0.0 {
            synthesis / audio
        } else {
            f64::NAN
        },
        sentence_to_first_audio_ms,
        enter_to_first_audio,
    })
}

/// A warmed-up chat session (system prompt in the cache) and how to answer.
pub struct ChatBench<'a> {
    pub model: String,
    pub session: ChatSession,
    pub persona: &'a crate::config::PersonaSettings,
    pub options: GenerateOptions,
}

const MESSAGES: [&str; 4] = [
    "Hello! How are you today?",
    "What did you do this morning?",
    "Tell me something nice.",
    "Do you like music?",
];

/// For a model whose chat replies are empty: openings it continues.
const OPENINGS: [&str; 4] = [
    "Once upon a time",
    "The little robot looked at the sky and",
    "Every morning, my grandmother",
    "The best thing about music is",
];

/// Enter to the first sample: the reply streams on this thread; the first complete sentence is
/// synthesized on another while the reply goes on (as the mascot does), on 2 cores sharing them.
fn enter_to_first_audio(
    voice: &PiperVoice,
    mut chat: ChatBench<'_>,
) -> Result<EnterReport, String> {
    let mut mode = "chat";
    let mut runs = Vec::new();
    for message in MESSAGES {
        match first_audio(voice, &mut chat, message, false)? {
            Some(run) => runs.push(run),
            None => {
                mode = "completion";
                break;
            }
        }
    }
    if mode == "completion" {
        runs.clear();
        for opening in OPENINGS {
            let run = first_audio(voice, &mut chat, opening, true)?
                .ok_or_else(|| format!("the model continued {opening:?} with nothing to say"))?;
            runs.push(run);
        }
    }
    Ok(EnterReport {
        model: chat.model,
        mode,
        median_first_token_ms: median(runs.iter().map(|run| run.first_token_ms).collect()),
        median_first_sentence_ms: median(runs.iter().map(|run| run.first_sentence_ms).collect()),
        median_first_audio_ms: median(runs.iter().map(|run| run.first_audio_ms).collect()),
        runs,
    })
}

/// One message, from its Enter to its first sample; `None` when the reply said nothing.
fn first_audio(
    voice: &PiperVoice,
    chat: &mut ChatBench<'_>,
    message: &str,
    completion: bool,
) -> Result<Option<EnterRow>, String> {
    let never = AtomicBool::new(false);
    let start = Instant::now();
    let mut first_token = None;
    let mut first_sentence: Option<(f64, String)> = None;
    let mut splitter = SentenceSplitter::default();
    let first_audio = std::thread::scope(|scope| -> Result<Option<f64>, String> {
        let mut synthesis = None;
        let mut on_text = |piece: &str| {
            first_token.get_or_insert_with(|| ms(start));
            if first_sentence.is_none()
                && let Some(sentence) = splitter.push(piece).into_iter().next()
            {
                first_sentence = Some((ms(start), sentence.clone()));
                synthesis =
                    Some(scope.spawn(move || voice.synthesize(&sentence, 1.0).map(|_| ms(start))));
            }
        };
        let mut stream = ReplyStream {
            cancel: &never,
            on_text: &mut on_text,
        };
        let reply = if completion {
            chat.session
                .complete(message, &chat.options, &mut stream)
                .map(|_| ())
        } else {
            chat.session
                .send(chat.persona, message, &chat.options, &mut stream)
                .map(|_| ())
        };
        reply.map_err(|err| err.to_string())?;
        if first_sentence.is_none()
            && let Some(sentence) = splitter.finish().into_iter().next()
        {
            first_sentence = Some((ms(start), sentence.clone()));
            synthesis =
                Some(scope.spawn(move || voice.synthesize(&sentence, 1.0).map(|_| ms(start))));
        }
        match synthesis {
            Some(handle) => handle
                .join()
                .map_err(|_| "the synthesis thread panicked".to_owned())?
                .map(Some)
                .map_err(|err| err.to_string()),
            None => Ok(None),
        }
    })?;
    let (Some(first_audio), Some((first_sentence_ms, sentence))) = (first_audio, first_sentence)
    else {
        return Ok(None);
    };
    eprintln!(
        "bench: Enter -> first audio {first_audio:.0} ms (first sentence at {first_sentence_ms:.0} ms: {sentence:?})"
    );
    Ok(Some(EnterRow {
        message: message.to_owned(),
        first_sentence: sentence,
        first_token_ms: first_token.unwrap_or(f64::NAN),
        first_sentence_ms,
        first_audio_ms: first_audio,
    }))
}
