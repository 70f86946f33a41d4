//! Sound output: rodio's mixer on an output device (cpal: ALSA on Linux, which PulseAudio and
//! PipeWire serve through their ALSA plugins; WASAPI on Windows). Sentences are queued as they
//! are synthesized; [`SpeakerControls::stop`] ends every queued sentence at the next sample the
//! mixer reads (a stop epoch each sentence checks), without waiting on the mixer: rodio's
//! `Sink::clear` blocks its caller until the last source ends and leaves a skip pending when
//! a sentence ends on its own meanwhile. [`PlayClock`] says which sentence the mixer is reading
//! and where, for the mouth.

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
    /// Raised by every stop: a sentence queued under an older value ends at once.
    epoch: Arc<AtomicU64>,
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
            epoch: Arc::default(),
        })
    }

    /// The device's sample rate (the mixer converts ours to it).
    pub fn device_rate(&self) -> u32 {
        self.stream.config().sample_rate()
    }

    /// Stop, volume and queue length, from any thread.
    pub fn controls(&self) -> SpeakerControls {
        SpeakerControls {
            sink: Arc::clone(&self.sink),
            epoch: Arc::clone(&self.epoch),
        }
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
        self.sink.append(Stoppable::new(
            SamplesBuffer::new(1, audio.sample_rate, audio.samples.clone()),
            &self.epoch,
        ));
        self.sink.play();
    }

    /// As [`Speaker::play`], and while the mixer reads it the clock shows `sentence` (not 0)
    /// and the sample reached.
    pub fn play_tracked(&self, audio: Audio, sentence: u64) {
        if audio.samples.is_empty() || audio.sample_rate == 0 {
            return;
        }
        let tracked = Tracked {
            samples: audio.samples,
            rate: audio.sample_rate,
            index: 0,
            sentence,
            clock: Arc::clone(&self.clock),
        };
        self.sink.append(Stoppable::new(tracked, &self.epoch));
        self.sink.play();
    }

    /// 0.0-1.0 (more amplifies).
    pub fn set_volume(&self, volume: f32) {
        self.controls().set_volume(volume);
    }

    /// Ends everything queued, the sentence playing included.
    pub fn stop(&self) {
        self.controls().stop();
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
pub struct SpeakerControls {
    sink: Arc<Sink>,
    epoch: Arc<AtomicU64>,
}

impl SpeakerControls {
    /// Ends everything queued, the sentence playing included, at the next sample the mixer
    /// reads; returns at once (safe on the frame loop).
    pub fn stop(&self) {
        self.epoch.fetch_add(1, Ordering::SeqCst);
    }

    /// 0.0-1.0 (more amplifies, up to 2).
    pub fn set_volume(&self, volume: f32) {
        self.sink.set_volume(volume.clamp(0.0, 2.0));
    }

    /// Sentences queued, the one playing included (a stopped one until the mixer reaches it).
    pub fn queued(&self) -> usize {
        self.sink.len()
    }
}

/// A source that ends when the speaker's stop epoch moves past the one it was queued under.
struct Stoppable<S> {
    inner: S,
    queued_under: u64,
    epoch: Arc<AtomicU64>,
}

impl<S> Stoppable<S> {
    fn new(inner: S, epoch: &Arc<AtomicU64>) -> Self {
        Self {
            inner,
            queued_under: epoch.load(Ordering::SeqCst),
            epoch: Arc::clone(epoch),
        }
    }

    fn stopped(&self) -> bool {
        self.epoch.load(Ordering::Relaxed) != self.queued_under
    }
}

impl<S: Source> Iterator for Stoppable<S> {
    type Item = f32;

    fn next(&mut self) -> Option<f32> {
        if self.stopped() {
            return None;
        }
        self.inner.next()
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        if self.stopped() {
            return (0, Some(0));
        }
        self.inner.size_hint()
    }
}

impl<S: Source> Source for Stoppable<S> {
    fn current_span_len(&self) -> Option<usize> {
        self.inner.current_span_len()
    }

    fn channels(&self) -> rodio::ChannelCount {
        self.inner.channels()
    }

    fn sample_rate(&self) -> rodio::SampleRate {
        self.inner.sample_rate()
    }

    fn total_duration(&self) -> Option<Duration> {
        self.inner.total_duration()
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

    #[test]
    fn a_stop_ends_what_was_queued_before_it_and_not_what_comes_after() {
        let epoch = Arc::new(AtomicU64::new(0));
        let queued = |epoch: &Arc<AtomicU64>| {
            Stoppable::new(SamplesBuffer::new(1, 16000, vec![0.25; 100]), epoch)
        };
        let mut before = queued(&epoch);
        assert_eq!(before.by_ref().take(10).count(), 10);
        epoch.fetch_add(1, Ordering::SeqCst);
        assert_eq!(before.next(), None, "stopped mid-sentence");
        assert_eq!(before.size_hint(), (0, Some(0)));
        let after = queued(&epoch);
        assert_eq!(after.count(), 100, "queued after the stop: played whole");
    }
}
