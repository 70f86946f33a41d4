//! The second speech backend: a server speaking OpenAI's `POST /v1/audio/speech` (Kokoro-FastAPI,
//! LocalAI, openedai-speech, OpenAI itself). One request per sentence, WAV back (decoded by
//! hound, tolerant of the streamed WAVs whose header gives no length). The key comes from an
//! environment variable, as for the chat server, and goes only over https or to this machine.
//! Bevy-free.

use std::time::Duration;

use super::VoiceError;
use super::tts::{Audio, SpeechBackend};

/// A sentence's WAV at most (about 10 minutes of 24 kHz 32-bit stereo).
const MAX_AUDIO_BYTES: u64 = 64 * 1024 * 1024;

/// Where the server is and what to ask it (`voice.server`).
#[derive(Debug, Clone, PartialEq)]
pub struct SpeechServer {
    /// Up to and including the version: `http://127.0.0.1:8880/v1`.
    pub base_url: String,
    pub model: String,
    pub voice: String,
    /// The environment variable holding the key (validated by the settings: `*_API_KEY` or
    /// `DESKTOP_MATE_*`, sent only over https or to this machine); read when the voice loads.
    pub api_key_env: Option<String>,
}

/// [`SpeechBackend`] over HTTP.
pub struct OpenAiSpeech {
    server: SpeechServer,
    /// Never printed, never written.
    api_key: Option<String>,
    agent: ureq::Agent,
}

impl OpenAiSpeech {
    /// The key is read from its variable now: one that is not set is an error naming it.
    pub fn new(server: SpeechServer) -> Result<Self, VoiceError> {
        Self::new_with(server, |name| std::env::var(name).ok())
    }

    /// [`OpenAiSpeech::new`] with the environment given by `env`.
    pub fn new_with(
        mut server: SpeechServer,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, VoiceError> {
        server.base_url = server.base_url.trim().trim_end_matches('/').to_owned();
        let api_key = match &server.api_key_env {
            Some(name) => match env(name) {
                Some(key) if !key.trim().is_empty() => Some(key.trim().to_owned()),
                _ => {
                    return Err(VoiceError::BadVoice(format!(
                        "voice.server.api_key_env names {name}, which is not set: set it to \
                         the speech server's API key, or write api_key_env: None"
                    )));
                }
            },
            None => None,
        };
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_connect(Some(Duration::from_secs(5)))
            .timeout_per_read(Some(Duration::from_secs(60)))
            .timeout_per_write(Some(Duration::from_secs(10)))
            .build()
            .into();
        Ok(Self {
            server,
            api_key,
            agent,
        })
    }

    fn url(&self) -> String {
        format!("{}/audio/speech", self.server.base_url)
    }
}

impl SpeechBackend for OpenAiSpeech {
    /// OpenAI's and Kokoro's rate; each answer carries its own.
    fn sample_rate(&self) -> u32 {
        24_000
    }

    fn synthesize(&self, sentence: &str, speed: f32) -> Result<Audio, VoiceError> {
        let url = self.url();
        let body = serde_json::json!({
            "model": self.server.model,
            "input": sentence,
            "voice": self.server.voice,
            "response_format": "wav",
            "speed": speed.clamp(0.25, 4.0),
        })
        .to_string();
        let mut request = self
            .agent
            .post(&url)
            .header("Content-Type", "application/json")
            .header("Accept", "audio/wav");
        if let Some(key) = &self.api_key {
            request = request.header("Authorization", format!("Bearer {key}"));
        }
        let mut response = request.send(&body).map_err(|err| {
            VoiceError::Synthesis(format!(
                "the speech server at {url} cannot be reached: {err}"
            ))
        })?;
        let status = response.status().as_u16();
        let bytes = response
            .body_mut()
            .with_config()
            .limit(MAX_AUDIO_BYTES)
            .read_to_vec()
            .map_err(|err| VoiceError::Synthesis(format!("the speech server at {url}: {err}")))?;
        if !(200..300).contains(&status) {
            let text = String::from_utf8_lossy(&bytes);
            let text = match &self.api_key {
                Some(key) if !key.is_empty() => text.replace(key.as_str(), "<key>"),
                _ => text.into_owned(),
            };
            let detail: String = text.trim().chars().take(200).collect();
            let hint = match status {
                401 | 403 => " (check voice.server.api_key_env and its variable)",
                404 => " (check voice.server.base_url: up to and including /v1)",
                _ => "",
            };
            return Err(VoiceError::Synthesis(format!(
                "the speech server at {url} answered HTTP {status}{hint}: {detail}"
            )));
        }
        Audio::decode_wav(&bytes).map_err(|why| {
            VoiceError::Synthesis(format!(
                "the speech server at {url} did not send WAV audio: {why}"
            ))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_variable_that_is_not_set_is_named() {
        let server = SpeechServer {
            base_url: "http://127.0.0.1:1/v1/".into(),
            model: "kokoro".into(),
            voice: "af_heart".into(),
            api_key_env: Some("DESKTOP_MATE_TEST_NEVER_SET_API_KEY".into()),
        };
        let Err(err) = OpenAiSpeech::new(server) else {
            panic!("a missing key was accepted");
        };
        assert!(
            err.to_string()
                .contains("DESKTOP_MATE_TEST_NEVER_SET_API_KEY"),
            "{err}"
        );
    }
}
