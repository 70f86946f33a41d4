//! Sound input: a microphone through cpal (ALSA on Linux, which PulseAudio and PipeWire serve
//! through their ALSA plugins; WASAPI on Windows), as mono samples in chunks on a channel.
//! Bevy-free. The audio stays in memory: nothing here writes it anywhere.

use crossbeam_channel::{Receiver, Sender};
use rodio::cpal;
use rodio::cpal::traits::{DeviceTrait, HostTrait, StreamTrait};

use super::VoiceError;

/// Chunks waiting for the listener; when it falls this far behind, newer chunks are dropped
/// rather than memory growing (about 10 s at common callback sizes).
const QUEUE_CHUNKS: usize = 1000;

/// An open input device. The stream is not `Send` on every platform: keep the `Microphone` on
/// the thread that opened it; the samples arrive on [`Microphone::chunks`].
pub struct Microphone {
    stream: cpal::Stream,
    chunks: Receiver<Vec<f32>>,
    sample_rate: u32,
    name: String,
}

impl Microphone {
    /// Opens the input device named `device` (the names [`input_devices`] lists) or the
    /// default one, and starts capturing. No input device is an error that says so.
    pub fn open(device: Option<&str>) -> Result<Self, VoiceError> {
        let no_mic = |err: &dyn std::fmt::Display| VoiceError::NoMicrophone(err.to_string());
        let host = cpal::default_host();
        let found = match device {
            None => host.default_input_device(),
            Some(name) => host
                .input_devices()
                .map_err(|e| no_mic(&e))?
                .find(|d| d.name().is_ok_and(|n| n == name)),
        };
        let Some(found) = found else {
            return Err(VoiceError::NoMicrophone(match device {
                Some(name) => format!(
                    "no input device named {name:?}; the devices are: {}",
                    input_devices().join(", ")
                ),
                None => "no input device".into(),
            }));
        };
        let name = found.name().unwrap_or_else(|_| "microphone".into());
        let supported = found.default_input_config().map_err(|e| no_mic(&e))?;
        let config = supported.config();
        let (tx, chunks) = crossbeam_channel::bounded(QUEUE_CHUNKS);
        let stream = match supported.sample_format() {
            cpal::SampleFormat::F32 => build::<f32>(&found, &config, tx),
            cpal::SampleFormat::I16 => build::<i16>(&found, &config, tx),
            cpal::SampleFormat::U16 => build::<u16>(&found, &config, tx),
            cpal::SampleFormat::I32 => build::<i32>(&found, &config, tx),
            cpal::SampleFormat::U8 => build::<u8>(&found, &config, tx),
            cpal::SampleFormat::I8 => build::<i8>(&found, &config, tx),
            other => {
                return Err(VoiceError::NoMicrophone(format!(
                    "{name}: samples as {other} are not supported"
                )));
            }
        }
        .map_err(|e| no_mic(&e))?;
        stream.play().map_err(|e| no_mic(&e))?;
        Ok(Self {
            stream,
            chunks,
            sample_rate: config.sample_rate.0,
            name,
        })
    }

    /// Mono chunks as the device delivers them, at [`Microphone::sample_rate`].
    pub fn chunks(&self) -> &Receiver<Vec<f32>> {
        &self.chunks
    }

    pub fn sample_rate(&self) -> u32 {
        self.sample_rate
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Stops capturing (the device is released when the `Microphone` is dropped).
    pub fn pause(&self) {
        let _ = self.stream.pause();
    }
}

fn build<T>(
    device: &cpal::Device,
    config: &cpal::StreamConfig,
    tx: Sender<Vec<f32>>,
) -> Result<cpal::Stream, cpal::BuildStreamError>
where
    T: cpal::SizedSample,
    f32: cpal::FromSample<T>,
{
    let channels = usize::from(config.channels.max(1));
    device.build_input_stream(
        config,
        move |data: &[T], _: &cpal::InputCallbackInfo| {
            let mono: Vec<f32> = data
                .chunks(channels)
                .map(|frame| {
                    frame
                        .iter()
                        .map(|&sample| cpal::Sample::to_sample::<f32>(sample))
                        .sum::<f32>()
                        / frame.len() as f32
                })
                .collect();
            // A full queue (the listener stalled): this chunk is dropped, the device goes on.
            let _ = tx.try_send(mono);
        },
        |err| tracing::warn!("microphone: {err}"),
        None,
    )
}

/// The input devices' names (for the settings and error messages).
pub fn input_devices() -> Vec<String> {
    cpal::default_host()
        .input_devices()
        .map(|devices| devices.filter_map(|d| d.name().ok()).collect())
        .unwrap_or_default()
}
