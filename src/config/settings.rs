//! The typed settings. Every key has a serde default, so a settings file only needs the keys
//! a user wants to change; unknown keys are rejected so a typo is reported instead of ignored.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;

use bevy::prelude::Resource;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// All settings of the mascot, as stored in `mascot.ron`.
#[derive(Resource, Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    pub window: WindowSettings,
    pub avatar: AvatarSettings,
    pub motion: MotionSettings,
    pub llm: LlmSettings,
    pub persona: PersonaSettings,
    pub chat: ChatSettings,
    pub memory: MemorySettings,
    pub voice: VoiceSettings,
    pub listen: ListenSettings,
    pub diagnostics: DiagnosticsSettings,
    pub desktop: DesktopSettings,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WindowSettings {
    /// Logical size of the mascot window, in pixels.
    pub width: u32,
    pub height: u32,
    /// Top-left corner on the desktop; `None` lets the OS place the window.
    pub position: Option<(i32, i32)>,
    /// Avatar scale (mouse wheel over the avatar changes it).
    pub scale: f32,
    pub always_on_top: bool,
    /// Let clicks on transparent pixels pass through to the desktop.
    pub click_through: bool,
    /// A taskbar (and Alt-Tab) entry for the mascot window; off = skip it where the platform
    /// allows (X11 `_NET_WM_STATE_SKIP_TASKBAR`, Windows).
    pub show_in_taskbar: bool,
    /// Frame cap while nothing moves, and while the avatar animates or text streams.
    pub idle_fps: f32,
    pub active_fps: f32,
}

impl Default for WindowSettings {
    fn default() -> Self {
        Self {
            width: 400,
            height: 600,
            position: None,
            scale: 1.0,
            always_on_top: true,
            click_through: true,
            show_in_taskbar: true,
            idle_fps: 30.0,
            active_fps: 60.0,
        }
    }
}

/// The moods the chat can express. Model output can only ever select one of these.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Emotion {
    Neutral,
    Joy,
    Angry,
    Sorrow,
    Fun,
    Surprised,
}

impl Emotion {
    pub const ALL: [Emotion; 6] = {
        use Emotion::*;
        [Neutral, Joy, Angry, Sorrow, Fun, Surprised]
    };
}

/// Declares [`Expression`] from one list of its variants, and [`Expression::ALL`] /
/// [`Expression::COUNT`] from the same list: every table indexed by a preset is sized by
/// `COUNT`, and every per-preset property is an exhaustive `match`, so a new preset is a compile
/// error until each of them has it.
macro_rules! expression_presets {
    ($($variant:ident),* $(,)?) => {
        /// VRM 0.x blend-shape presets the avatar can show.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(rename_all = "snake_case")]
        pub enum Expression {
            $($variant),*
        }

        impl Expression {
            /// Every preset, in the order of the discriminants (`ALL[e as usize] == e`).
            pub const ALL: [Expression; [$(Expression::$variant),*].len()] =
                [$(Expression::$variant),*];
            /// How many presets there are: the size of every per-preset table.
            pub const COUNT: usize = Self::ALL.len();
        }
    };
}

expression_presets!(
    Neutral, Joy, Angry, Sorrow, Fun, Surprised, Blink, BlinkL, BlinkR, A, I, U, E, O, LookUp,
    LookDown, LookLeft, LookRight,
);

/// How strongly one emotion shows on the face: intensity (0-100) x `multiplier`,
/// applied only when the intensity reaches `threshold`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmotionExpression {
    pub expression: Expression,
    pub multiplier: f32,
    pub threshold: f32,
}

impl EmotionExpression {
    const fn new(expression: Expression, multiplier: f32, threshold: f32) -> Self {
        Self {
            expression,
            multiplier,
            threshold,
        }
    }
}

/// The old app's tuned table.
pub fn default_emotion_table() -> BTreeMap<Emotion, EmotionExpression> {
    use Emotion as Em;
    use Expression as Ex;
    BTreeMap::from([
        (Em::Neutral, EmotionExpression::new(Ex::Neutral, 0.5, 0.0)),
        (Em::Joy, EmotionExpression::new(Ex::Joy, 1.0, 30.0)),
        (Em::Angry, EmotionExpression::new(Ex::Angry, 0.8, 40.0)),
        (Em::Sorrow, EmotionExpression::new(Ex::Sorrow, 0.9, 35.0)),
        (Em::Fun, EmotionExpression::new(Ex::Fun, 1.1, 30.0)),
        (
            Em::Surprised,
            EmotionExpression::new(Ex::Surprised, 1.2, 25.0),
        ),
    ])
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AvatarSettings {
    /// A VRM 0.x file; `None` shows the built-in default avatar.
    pub vrm_path: Option<PathBuf>,
    /// Expression easing speed, in weight units per second (1.0 = a full change takes 1 s).
    pub transition_speed: f32,
    pub auto_blink: bool,
    pub head_motion: bool,
    pub breathing: bool,
    pub look_at_cursor: bool,
    pub emotions: BTreeMap<Emotion, EmotionExpression>,
}

impl Default for AvatarSettings {
    fn default() -> Self {
        Self {
            vrm_path: None,
            transition_speed: 4.0,
            auto_blink: true,
            head_motion: true,
            breathing: true,
            look_at_cursor: true,
            emotions: default_emotion_table(),
        }
    }
}

/// The body's motion clips (src/motion/).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MotionSettings {
    /// Motion clips pose the body (idle loop, greeting, gestures); off = the still pose with
    /// breathing and head turns only.
    pub enabled: bool,
    /// Now and then an idle variation (look around, stretch, fidget) instead of the loop.
    pub idle_variations: bool,
    /// A gesture once per reply from its emotion (joy, anger, sorrow, fun, surprise).
    pub gestures: bool,
    /// Seconds without activity before the sleepy pose; 0 = never.
    pub sleep_after_secs: f32,
}

impl Default for MotionSettings {
    fn default() -> Self {
        Self {
            enabled: true,
            idle_variations: true,
            gestures: true,
            sleep_after_secs: 300.0,
        }
    }
}

/// How layers are split between GPU and CPU.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Profile {
    /// Every layer on the GPU.
    Performance,
    /// About half of the layers on the GPU.
    Balanced,
    /// Everything on the CPU.
    CpuFallback,
    /// Chosen from free VRAM (NVML), the model's size and its layer count; CPU without an NVIDIA GPU.
    #[default]
    Auto,
}

impl Profile {
    pub const ALL: [Profile; 4] = [
        Profile::Auto,
        Profile::Performance,
        Profile::Balanced,
        Profile::CpuFallback,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Profile::Performance => "performance",
            Profile::Balanced => "balanced",
            Profile::CpuFallback => "cpu_fallback",
            Profile::Auto => "auto",
        }
    }
}

impl fmt::Display for Profile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `"auto"` (physical cores, capped by the available parallelism) or a fixed count.
/// Written as the string `"auto"` or a number in RON.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Threads {
    #[default]
    Auto,
    Count(u16),
}

impl Serialize for Threads {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Threads::Auto => serializer.serialize_str("auto"),
            Threads::Count(n) => serializer.serialize_u16(*n),
        }
    }
}

impl<'de> Deserialize<'de> for Threads {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ThreadsVisitor;
        impl serde::de::Visitor<'_> for ThreadsVisitor {
            type Value = Threads;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("\"auto\" or a number of threads")
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Threads, E> {
                u16::try_from(v)
                    .map(Threads::Count)
                    .map_err(|_| E::invalid_value(serde::de::Unexpected::Unsigned(v), &self))
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Threads, E> {
                u16::try_from(v)
                    .map(Threads::Count)
                    .map_err(|_| E::invalid_value(serde::de::Unexpected::Signed(v), &self))
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Threads, E> {
                if v.eq_ignore_ascii_case("auto") {
                    Ok(Threads::Auto)
                } else {
                    Err(E::invalid_value(serde::de::Unexpected::Str(v), &self))
                }
            }
        }
        deserializer.deserialize_any(ThreadsVisitor)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SamplingSettings {
    /// 0 = greedy (always the most likely token).
    pub temperature: f32,
    /// 0 disables top-k.
    pub top_k: u32,
    pub top_p: f32,
    pub min_p: f32,
    /// 1.0 disables the penalty.
    pub repeat_penalty: f32,
    /// `None` = a new random seed for each reply.
    pub seed: Option<u32>,
    pub max_tokens: u32,
}

impl Default for SamplingSettings {
    fn default() -> Self {
        Self {
            temperature: 0.7,
            top_k: 40,
            top_p: 0.95,
            min_p: 0.05,
            repeat_penalty: 1.1,
            seed: None,
            max_tokens: 256,
        }
    }
}

/// Which program writes the replies.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub enum Backend {
    /// llama.cpp in this process, with `model_path` and the settings below.
    #[default]
    Local,
    /// Any server speaking OpenAI's chat completions API (Ollama, LM Studio, llama-server,
    /// vLLM, OpenAI itself). Only `sampling` and `warm_up` of the settings below apply.
    OpenAi {
        /// Up to and including the version, e.g. `http://127.0.0.1:11434/v1`.
        base_url: String,
        /// The server's name for the model, e.g. `llama3.2`.
        model: String,
        /// The environment variable holding the API key, read at load (the key itself is
        /// never written in the settings); `None` = no key (most local servers).
        #[serde(default)]
        api_key_env: Option<String>,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LlmSettings {
    /// llama.cpp in this process or an OpenAI-compatible server.
    pub backend: Backend,
    /// A GGUF model file; `None` = no chat until one is chosen.
    pub model_path: Option<PathBuf>,
    pub profile: Profile,
    /// Overrides the profile's layer choice when set.
    pub n_gpu_layers: Option<u32>,
    pub n_ctx: u32,
    pub n_batch: u32,
    pub n_threads: Threads,
    /// Threads for prompt processing; `auto` follows the same rule as `n_threads`.
    pub n_threads_batch: Threads,
    pub use_mmap: bool,
    pub use_mlock: bool,
    /// Evaluate the system prompt at load so the first reply is as fast as later ones.
    pub warm_up: bool,
    pub sampling: SamplingSettings,
}

impl Default for LlmSettings {
    fn default() -> Self {
        Self {
            backend: Backend::Local,
            model_path: None,
            profile: Profile::Auto,
            n_gpu_layers: None,
            n_ctx: 4096,
            n_batch: 512,
            n_threads: Threads::Auto,
            n_threads_batch: Threads::Auto,
            use_mmap: true,
            use_mlock: false,
            warm_up: true,
            sampling: SamplingSettings::default(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PersonaSettings {
    pub name: String,
    pub system_prompt: String,
}

impl Default for PersonaSettings {
    fn default() -> Self {
        Self {
            name: "Mate".into(),
            system_prompt:
                "You are Mate, a cheerful desktop companion. Answer briefly and kindly. \
                Start every reply with one emotion tag among [neutral], [joy], [angry], [sorrow], \
                [fun] or [surprised]."
                    .into(),
        }
    }
}

/// Long-term memory (src/memory/): `memory.sqlite` beside the chat history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MemorySettings {
    /// Keep what the user tells about themselves and recall it before each reply; off = the
    /// memory is neither read nor written.
    pub enabled: bool,
    /// An embedding GGUF (all-MiniLM-L6-v2) to search memories by meaning; `None` = by words.
    pub embedding_model: Option<PathBuf>,
    /// Tokens of memories put in front of a message at most.
    pub budget_tokens: u32,
    /// Seconds without a message after a reply before the chat model writes down, beside the
    /// conversation, the facts and a summary of the turns since its last notes; 0 = never
    /// (only the user's first-person statements are kept).
    pub notes_after_secs: u32,
}

impl Default for MemorySettings {
    fn default() -> Self {
        Self {
            enabled: true,
            embedding_model: None,
            budget_tokens: 128,
            notes_after_secs: 30,
        }
    }
}

/// The voice (src/voice/, docs/voice.md): replies spoken sentence by sentence as they stream.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct VoiceSettings {
    /// Speak the replies; off = text only (the mouth follows the text).
    pub enabled: bool,
    /// A catalogue id (`desktop-mate voice list`, downloaded in F2 or with `voice pull`), a
    /// Piper model `NAME.onnx` (its `.onnx.json` beside it) or a prepared voice folder.
    pub voice: String,
    /// 1.0 is the voice's own pace.
    pub speed: f32,
    /// 1.0 is the voice as synthesized.
    pub volume: f32,
    /// An output device by name (`desktop-mate check` lists them); `None` = the default one.
    pub device: Option<String>,
    /// The eSpeak NG program; `None` = found on the PATH (Windows: also Program Files).
    pub espeak_ng: Option<PathBuf>,
    /// A server speaking OpenAI's `/v1/audio/speech` instead of a local voice (`voice.voice`
    /// and `espeak_ng` then do not apply); `None` = the local voice.
    pub server: Option<SpeechServerSettings>,
}

/// An OpenAI-compatible speech server (Kokoro-FastAPI, LocalAI, openedai-speech, OpenAI).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SpeechServerSettings {
    /// Up to and including the version, e.g. `http://127.0.0.1:8880/v1`.
    pub base_url: String,
    /// The server's model, e.g. `kokoro` or `tts-1`.
    pub model: String,
    /// The server's voice, e.g. `af_heart` or `alloy`.
    pub voice: String,
    /// The environment variable holding the API key (as `llm.backend.api_key_env`); `None` =
    /// no key (most local servers).
    #[serde(default)]
    pub api_key_env: Option<String>,
}

impl Default for VoiceSettings {
    fn default() -> Self {
        Self {
            enabled: false,
            voice: "en_US-joe-medium".into(),
            speed: 1.0,
            volume: 1.0,
            device: None,
            espeak_ng: None,
            server: None,
        }
    }
}

/// Listening (src/voice/listen.rs, docs/listening.md): the user talks, the words go to the chat.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ListenSettings {
    /// Listen on the microphone while the push-to-talk key (`desktop.hotkeys.push_to_talk`) or
    /// the chat panel's Talk button is held.
    pub enabled: bool,
    /// Also listen without a key: the voice activity detector starts and ends each utterance.
    pub hands_free: bool,
    /// Send what was heard at once; off = put it in the chat input to edit first.
    pub send_at_once: bool,
    /// Show the words heard so far while the user speaks (the utterance is recognized again
    /// about twice a second: off saves that work on a slow machine).
    pub partial_words: bool,
    /// Hands-free, speaking while the mascot talks stops its reply and voice. Off = the
    /// microphone is muted while the mascot speaks (it would hear itself through speakers);
    /// on for headphones or an echo-cancelling microphone.
    pub barge_in: bool,
    /// `auto` or the language spoken (`en`, `fr`, ...): faster and surer when set.
    pub language: String,
    /// An input device by name (`desktop-mate listen --devices` lists them); `None` = the default.
    pub device: Option<String>,
    /// A speech recognizer exported for sherpa-onnx (a folder: Moonshine or Whisper); `None` =
    /// `recognizers/moonshine-tiny-en` in the data folder when `language` is `en`, else
    /// `recognizers/whisper-base`.
    pub recognizer: Option<PathBuf>,
    /// Silero VAD's model; `None` = `recognizers/silero-vad.onnx` in the data folder.
    pub vad: Option<PathBuf>,
}

impl Default for ListenSettings {
    fn default() -> Self {
        Self {
            enabled: false,
            hands_free: false,
            send_at_once: true,
            partial_words: true,
            barge_in: false,
            language: "auto".into(),
            device: None,
            recognizer: None,
            vad: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ChatSettings {
    /// `None` = `history.jsonl` in the user's data folder.
    pub history_file: Option<PathBuf>,
    /// Turns (user + reply) kept in the prompt; older ones stay in the history file.
    pub turns_kept: u32,
    /// Make every reply start with one emotion tag such as `[joy]` (a grammar constrains the
    /// first tokens); off = the model may or may not write one, the keyword analyser decides.
    pub tag_grammar: bool,
    /// Keep the warmed-up state (the persona in the KV cache) on disk, in the user cache
    /// folder, and load it at the next start instead of evaluating the persona again (same
    /// model file, settings and prompt).
    pub warm_start: bool,
}

impl Default for ChatSettings {
    fn default() -> Self {
        Self {
            history_file: None,
            turns_kept: 20,
            tag_grammar: true,
            warm_start: true,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DiagnosticsSettings {
    /// Seconds between two samples of RAM/CPU/GPU metrics.
    pub sample_interval_secs: f32,
    pub overlay_visible: bool,
    /// Name of the key toggling the overlay (a Bevy `KeyCode` name such as "F3").
    pub overlay_key: String,
    /// Top-left corner of the overlay in the window (logical pixels), where it was last
    /// dragged; `None` = the top-right corner.
    pub overlay_position: Option<(f32, f32)>,
    /// CSV file samples are recorded to when recording is on; `None` = the user's data folder.
    pub recording_path: Option<PathBuf>,
}

impl Default for DiagnosticsSettings {
    fn default() -> Self {
        Self {
            sample_interval_secs: 1.0,
            overlay_visible: false,
            overlay_key: "F3".into(),
            overlay_position: None,
            recording_path: None,
        }
    }
}

/// The mascot's life on the desktop beyond its window: start with the system, global hotkeys.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DesktopSettings {
    /// Start the mascot when the user logs in (XDG autostart entry, Windows Run key, macOS
    /// login item).
    pub autostart: bool,
    pub hotkeys: HotkeySettings,
}

/// System-wide shortcuts such as `"Ctrl+Alt+Shift+C"` (modifiers first, then one key);
/// `None` = no shortcut for that action.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HotkeySettings {
    /// Switch click-through off (the whole window catches clicks) and on again.
    pub click_through: Option<String>,
    /// Hide the mascot, or show it again (interactive).
    pub show_hide: Option<String>,
    /// Open or close the chat panel (showing the mascot).
    pub chat: Option<String>,
    /// Voice on (`voice.enabled`) or off: off silences it at once.
    pub voice: Option<String>,
    /// Hold to talk (`listen.enabled`): the words said while it is held go to the chat.
    pub push_to_talk: Option<String>,
}

impl Default for HotkeySettings {
    fn default() -> Self {
        // Three modifiers: common apps and desktops bind Ctrl+Alt+letter and Ctrl+Shift+letter,
        // rarely all three with these letters.
        Self {
            click_through: Some("Ctrl+Alt+Shift+C".into()),
            show_hide: Some("Ctrl+Alt+Shift+H".into()),
            chat: Some("Ctrl+Alt+Shift+T".into()),
            voice: Some("Ctrl+Alt+Shift+V".into()),
            push_to_talk: Some("Ctrl+Alt+Shift+M".into()),
        }
    }
}

impl HotkeySettings {
    /// `(key path, shortcut)` of each set shortcut, in file order.
    pub fn entries(&self) -> Vec<(&'static str, &str)> {
        [
            ("desktop.hotkeys.click_through", &self.click_through),
            ("desktop.hotkeys.show_hide", &self.show_hide),
            ("desktop.hotkeys.chat", &self.chat),
            ("desktop.hotkeys.voice", &self.voice),
            ("desktop.hotkeys.push_to_talk", &self.push_to_talk),
        ]
        .into_iter()
        .filter_map(|(key, value)| value.as_deref().map(|v| (key, v)))
        .collect()
    }
}
