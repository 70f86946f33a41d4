//! Sound output: rodio's mixer on the default output device (cpal: ALSA on Linux, which
//! PulseAudio and PipeWire serve through their ALSA plugins; WASAPI on Windows). Sentences are
//! queued as they are synthesized; [`Speaker::stop`] drops the queue and silences the device at
//! the mixer's next pass (rodio checks its controls every 5 ms).

use std::time::Duration;

use rodio::buffer::SamplesBuffer;
use rodio::{OutputStream, OutputStreamBuilder, Sink};

use super::VoiceError;
use super::tts::Audio;

/// The default output device, open. Not `Send` on every platform: keep it on one thread.
pub struct Speaker {
    stream: OutputStream,
    sink: Sink,
}

impl Speaker {
    /// Opens the default output device; no device (a server, a VM without sound) is an error
    /// that says so.
    pub fn open() -> Result<Self, VoiceError> {
        let mut stream = OutputStreamBuilder::open_default_stream()
            .map_err(|err| VoiceError::NoSound(err.to_string()))?;
        stream.log_on_drop(false);
        let sink = Sink::connect_new(stream.mixer());
        Ok(Self { stream, sink })
    }

    /// The device's sample rate (the mixer converts ours to it).
    pub fn device_rate(&self) -> u32 {
        self.stream.config().sample_rate()
    }

    /// Queues `audio` after what is already queued; playing starts at once if idle.
    pub fn play(&self, audio: &Audio) {
        if audio.samples.is_empty() || audio.sample_rate == 0 {
            return;
        }
        self.sink.append(SamplesBuffer::new(
            1,
            audio.sample_rate,
            audio.samples.clone(),
        ));
        self.sink.play();
    }

    /// 0.0-1.0 (more amplifies).
    pub fn set_volume(&self, volume: f32) {
        self.sink.set_volume(volume.clamp(0.0, 2.0));
    }

    /// Drops everything queued, the sentence playing included.
    pub fn stop(&self) {
        self.sink.clear();
    }

    /// Sentences queued, the one playing included.
    pub fn queued(&self) -> usize {
        self.sink.len()
    }

    /// Position in the sentence playing.
    pub fn position(&self) -> Duration {
        self.sink.get_pos()
    }

    /// Blocks until everything queued has played.
    pub fn wait(&self) {
        self.sink.sleep_until_end();
    }
}
