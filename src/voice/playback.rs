//! Sound output: rodio's mixer on an output device (cpal: ALSA on Linux, which PulseAudio and
//! PipeWire serve through their ALSA plugins; WASAPI on Windows). Sentences are queued as they
//! are synthesized; [`SpeakerControls::stop`] drops the queue and silences the device at the
//! mixer's next pass (rodio checks its controls every 5 ms). [`PlayClock`] says which sentence
//! the mixer is reading and where, for the mouth.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use rodio::buffer::SamplesBuffer;
use rodio::cpal::traits::HostTrait;
use rodio::{DeviceTrait, OutputStream, OutputStreamBuilder, Sink, Source};

use super::VoiceError;
use super::tts::Audio;

/// An output device, open. The stream is not `Send` on every platform: keep the `Speaker` on
/// the thread that opened it and hand [`SpeakerControls`] to the others.
pub struct Speaker {
    stream: OutputStream,
    sink: Arc<Sink>,
    clock: Arc<PlayClock>,
}

impl Speaker {
    /// Opens the default output device; no device (a server, a VM without sound) is an error
    /// that says so.
    pub fn open() -> Result<Self, VoiceError> {
        Self::open_device(None)
    }

    /// Opens the output device named `device` (the names [`output_devices`] lists), or the
    /// default one.
    pub fn open_device(device: Option<&str>) -> Result<Self, VoiceError> {
        let no_sound = |err: &dyn std::fmt::Display| VoiceError::NoSound(err.to_string());
        let mut stream = match device {
            None => OutputStreamBuilder::open_default_stream().map_err(|e| no_sound(&e))?,
            Some(name) => {
                let host = rodio::cpal::default_host();
                let found = host
                    .output_devices()
                    .map_err(|e| no_sound(&e))?
                    .find(|d| d.name().is_ok_and(|n| n == name));
                let Some(found) = found else {
                    return Err(VoiceError::NoSound(format!(
                        "no output device named {name:?}; the devices are: {}",
                        output_devices().join(", ")
                    )));
                };
                OutputStreamBuilder::from_device(found)
                    .and_then(|builder| builder.open_stream_or_fallback())
                    .map_err(|e| no_sound(&e))?
            }
        };
        stream.log_on_drop(false);
        let sink = Arc::new(Sink::connect_new(stream.mixer()));
        Ok(Self {
            stream,
            sink,
            clock: Arc::default(),
        })
    }

    /// The device's sample rate (the mixer converts ours to it).
    pub fn device_rate(&self) -> u32 {
        self.stream.config().sample_rate()
    }

    /// Stop, volume and queue length, from any thread.
    pub fn controls(&self) -> SpeakerControls {
        SpeakerControls(Arc::clone(&self.sink))
    }

    /// Which sentence the mixer reads, and where.
    pub fn clock(&self) -> Arc<PlayClock> {
        Arc::clone(&self.clock)
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

    /// As [`Speaker::play`], and while the mixer reads it the clock shows `sentence` (not 0)
    /// and the sample reached.
    pub fn play_tracked(&self, audio: Audio, sentence: u64) {
        if audio.samples.is_empty() || audio.sample_rate == 0 {
            return;
        }
        self.sink.append(Tracked {
            samples: audio.samples,
            rate: audio.sample_rate,
            index: 0,
            sentence,
            clock: Arc::clone(&self.clock),
        });
        self.sink.play();
    }

    /// 0.0-1.0 (more amplifies).
    pub fn set_volume(&self, volume: f32) {
        self.controls().set_volume(volume);
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

/// The speaker's controls, `Send + Sync`.
#[derive(Clone)]
pub struct SpeakerControls(Arc<Sink>);

impl SpeakerControls {
    /// Drops everything queued, the sentence playing included; the device is silent at the
    /// mixer's next pass.
    pub fn stop(&self) {
        self.0.clear();
    }

    /// 0.0-1.0 (more amplifies, up to 2).
    pub fn set_volume(&self, volume: f32) {
        self.0.set_volume(volume.clamp(0.0, 2.0));
    }

    /// Sentences queued, the one playing included.
    pub fn queued(&self) -> usize {
        self.0.len()
    }
}

/// Where the mixer is: the sentence it reads (0 = none yet) and the sample reached, updated
/// every [`PlayClock::STEP`] samples. The device plays what the mixer read a buffer later.
#[derive(Debug, Default)]
pub struct PlayClock {
    /// sentence << 32 | sample (so both change together).
    packed: AtomicU64,
}

impl PlayClock {
    pub const STEP: usize = 64;

    fn set(&self, sentence: u64, sample: usize) {
        let sample = u64::try_from(sample)
            .unwrap_or(u64::MAX)
            .min(u64::from(u32::MAX));
        self.packed
            .store((sentence << 32) | sample, Ordering::Relaxed);
    }

    /// (sentence, sample).
    pub fn now(&self) -> (u64, usize) {
        let packed = self.packed.load(Ordering::Relaxed);
        (packed >> 32, (packed & u64::from(u32::MAX)) as usize)
    }
}

/// A sentence that moves the clock as the mixer reads it.
struct Tracked {
    samples: Vec<f32>,
    rate: u32,
    index: usize,
    sentence: u64,
    clock: Arc<PlayClock>,
}

impl Iterator for Tracked {
    type Item = f32;

    fn next(&mut self) -> Option<f32> {
        let sample = *self.samples.get(self.index)?;
        if self.index.is_multiple_of(PlayClock::STEP) {
            self.clock.set(self.sentence, self.index);
        }
        self.index += 1;
        Some(sample)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = self.samples.len().saturating_sub(self.index);
        (left, Some(left))
    }
}

impl Source for Tracked {
    fn current_span_len(&self) -> Option<usize> {
        Some(self.samples.len().saturating_sub(self.index))
    }

    fn channels(&self) -> rodio::ChannelCount {
        1
    }

    fn sample_rate(&self) -> rodio::SampleRate {
        self.rate
    }

    fn total_duration(&self) -> Option<Duration> {
        Some(Duration::from_secs_f64(
            self.samples.len() as f64 / f64::from(self.rate.max(1)),
        ))
    }
}

/// The output devices' names, for settings and `check`.
pub fn output_devices() -> Vec<String> {
    rodio::cpal::default_host()
        .output_devices()
        .map(|devices| devices.filter_map(|d| d.name().ok()).collect())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_clock_follows_the_samples_the_mixer_reads() {
        let clock = Arc::new(PlayClock::default());
        assert_eq!(clock.now(), (0, 0));
        let mut tracked = Tracked {
            samples: vec![0.5; 1000],
            rate: 22050,
            index: 0,
            sentence: 7,
            clock: Arc::clone(&clock),
        };
        for _ in 0..300 {
            assert_eq!(tracked.next(), Some(0.5));
        }
        assert_eq!(clock.now(), (7, 256));
        assert_eq!(tracked.current_span_len(), Some(700));
        assert_eq!(tracked.by_ref().count(), 700);
        assert_eq!(clock.now(), (7, 960));
    }
}
