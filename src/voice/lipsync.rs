//! The mouth from the sound: each sentence's audio becomes a track of mouth shapes, 100 per
//! second, read at the sample the speaker plays. How open: the frame's level under the
//! sentence's loudest frame (30 dB of range). Which vowel: the low band's (< 900 Hz)
//! zero-crossing rate estimates the first formant (high: a; middle: e, o; low: i, u), and the
//! share of energy above 1.5 kHz (a high second formant) tells front vowels (i, e) from back
//! ones (u, o).
//! A heuristic in the manner of band-energy lip sync (not phoneme timing); it needs no model and
//! works for any voice and language.

use super::tts::Audio;

/// Mouth frames per second of audio.
pub const FRAMES_PER_SECOND: f32 = 100.0;
/// The weight of a fully open mouth.
const OPEN: f32 = 0.8;
/// Frames this far under the loudest one are a closed mouth.
const RANGE_DB: f32 = 30.0;
/// High-band share of the two bands above which a closed vowel is a front one (i, e).
const FRONT_SHARE: f32 = 0.08;

/// Index of each vowel in a weight array: a, i, u, e, o (the avatar's mouth presets, in the
/// order of `avatar::motion::MOUTH`).
pub const A: usize = 0;
pub const I: usize = 1;
pub const U: usize = 2;
pub const E: usize = 3;
pub const O: usize = 4;

/// Mouth weights (a, i, u, e, o), 0-1 each.
pub type Mouth = [f32; 5];

/// One sentence's mouth, frame by frame.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MouthTrack {
    frames: Vec<Mouth>,
}

/// A second-order filter (the Audio EQ Cookbook's low- and high-pass, Q = 0.707).
struct Biquad {
    b: [f32; 3],
    a: [f32; 2],
    x: [f32; 2],
    y: [f32; 2],
}

impl Biquad {
    fn new(cutoff: f32, rate: f32, high: bool) -> Self {
        let w0 = std::f32::consts::TAU * (cutoff / rate).min(0.49);
        let (sin, cos) = w0.sin_cos();
        let alpha = sin / (2.0 * std::f32::consts::FRAC_1_SQRT_2);
        let a0 = 1.0 + alpha;
        let b = if high {
            [(1.0 + cos) / 2.0, -(1.0 + cos), (1.0 + cos) / 2.0]
        } else {
            [(1.0 - cos) / 2.0, 1.0 - cos, (1.0 - cos) / 2.0]
        };
        Self {
            b: b.map(|b| b / a0),
            a: [-2.0 * cos / a0, (1.0 - alpha) / a0],
            x: [0.0; 2],
            y: [0.0; 2],
        }
    }

    fn step(&mut self, x: f32) -> f32 {
        let y = self.b[0] * x + self.b[1] * self.x[0] + self.b[2] * self.x[1]
            - self.a[0] * self.y[0]
            - self.a[1] * self.y[1];
        self.x = [x, self.x[0]];
        self.y = [y, self.y[0]];
        y
    }
}

struct FrameStats {
    energy: f32,
    low: f32,
    high: f32,
    /// First formant estimate, Hz.
    f1: f32,
}

/// Per 10 ms frame; the energy averaged over 30 ms (the envelope a mouth can follow).
fn frame_stats(audio: &Audio) -> Vec<FrameStats> {
    let mut stats = raw_frame_stats(audio);
    let raw: Vec<f32> = stats.iter().map(|s| s.energy).collect();
    for (n, frame) in stats.iter_mut().enumerate() {
        let window = &raw[n.saturating_sub(1)..(n + 2).min(raw.len())];
        frame.energy = window.iter().sum::<f32>() / window.len() as f32;
    }
    stats
}

fn raw_frame_stats(audio: &Audio) -> Vec<FrameStats> {
    if audio.sample_rate == 0 {
        return Vec::new();
    }
    let rate = audio.sample_rate as f32;
    let hop = (rate / FRAMES_PER_SECOND).round().max(1.0) as usize;
    let mut low_pass = Biquad::new(900.0, rate, false);
    let mut high_pass = Biquad::new(1500.0, rate, true);
    let mut previous_low = 0.0f32;
    audio
        .samples
        .chunks(hop)
        .map(|chunk| {
            let (mut energy, mut low, mut high, mut crossings) = (0.0, 0.0, 0.0, 0u32);
            for &x in chunk {
                let x = if x.is_finite() {
                    x.clamp(-1.0, 1.0)
                } else {
                    0.0
                };
                let l = low_pass.step(x);
                let h = high_pass.step(x);
                energy += x * x;
                low += l * l;
                high += h * h;
                if (l >= 0.0) != (previous_low >= 0.0) {
                    crossings += 1;
                }
                previous_low = l;
            }
            let n = chunk.len() as f32;
            FrameStats {
                energy: energy / n,
                low: low / n,
                high: high / n,
                f1: crossings as f32 * rate / (2.0 * n),
            }
        })
        .collect()
}

impl MouthTrack {
    pub fn from_audio(audio: &Audio) -> Self {
        let stats = frame_stats(audio);
        let peak = stats.iter().map(|s| s.energy).fold(0.0f32, f32::max);
        if peak <= 1e-9 {
            return Self {
                frames: vec![[0.0; 5]; stats.len()],
            };
        }
        let frames = stats
            .iter()
            .map(|s| {
                // Amplitude under the loudest frame's, its square root: the mouth opens with the
                // level and quiet consonants still show; nothing under RANGE_DB.
                let ratio = (s.energy / peak).sqrt();
                let open = if ratio < 10f32.powf(-RANGE_DB / 20.0) {
                    0.0
                } else {
                    (ratio.sqrt() * 1.2).min(1.0) * OPEN
                };
                let mut mouth = [0.0; 5];
                mouth[vowel(s)] = open;
                mouth
            })
            .collect();
        Self { frames }
    }

    /// The mouth `seconds` into the sentence (between frames: both blended); closed outside.
    pub fn at(&self, seconds: f32) -> Mouth {
        let position = seconds * FRAMES_PER_SECOND;
        if !position.is_finite() || position < 0.0 {
            return [0.0; 5];
        }
        let index = position.floor() as usize;
        let Some(current) = self.frames.get(index) else {
            return [0.0; 5];
        };
        let next = self.frames.get(index + 1).copied().unwrap_or([0.0; 5]);
        let t = position - index as f32;
        std::array::from_fn(|k| current[k] * (1.0 - t) + next[k] * t)
    }

    pub fn seconds(&self) -> f32 {
        self.frames.len() as f32 / FRAMES_PER_SECOND
    }
}

/// The vowel a frame sounds like.
fn vowel(s: &FrameStats) -> usize {
    let front = s.high / (s.low + s.high + 1e-12);
    match (s.f1, front > FRONT_SHARE) {
        (f1, _) if f1 > 620.0 => A,
        (f1, true) if f1 < 380.0 => I,
        (_, true) => E,
        (f1, false) if f1 < 400.0 => U,
        (_, false) => O,
    }
}

/// The sound's envelope: RMS over 30 ms, per mouth frame (10 ms), for tests and the bench.
pub fn envelope(audio: &Audio) -> Vec<f32> {
    frame_stats(audio).iter().map(|s| s.energy.sqrt()).collect()
}

/// Pearson correlation of two series (0 when one is flat).
pub fn correlation(a: &[f32], b: &[f32]) -> f32 {
    let n = a.len().min(b.len());
    if n < 2 {
        return 0.0;
    }
    let mean = |x: &[f32]| x[..n].iter().sum::<f32>() / n as f32;
    let (ma, mb) = (mean(a), mean(b));
    let (mut sab, mut saa, mut sbb) = (0.0, 0.0, 0.0);
    for (x, y) in a[..n].iter().zip(&b[..n]) {
        sab += (x - ma) * (y - mb);
        saa += (x - ma) * (x - ma);
        sbb += (y - mb) * (y - mb);
    }
    if saa <= 0.0 || sbb <= 0.0 {
        return 0.0;
    }
    sab / (saa * sbb).sqrt()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A steady vowel: two formants (sines) over a 120 Hz voice.
    fn vowel_sound(f1: f32, f2: f32, seconds: f32) -> Audio {
        let rate = 22050;
        let samples = (0..(seconds * rate as f32) as usize)
            .map(|n| {
                let t = n as f32 / rate as f32;
                let tau = std::f32::consts::TAU;
                0.3 * (tau * f1 * t).sin()
                    + 0.15 * (tau * f2 * t).sin()
                    + 0.05 * (tau * 120.0 * t).sin()
            })
            .collect();
        Audio {
            samples,
            sample_rate: rate,
        }
    }

    fn main_vowel(audio: &Audio) -> usize {
        let track = MouthTrack::from_audio(audio);
        let mouth = track.at(track.seconds() / 2.0);
        let (index, weight) =
            mouth.iter().enumerate().fold(
                (0, 0.0f32),
                |best, (k, w)| if *w > best.1 { (k, *w) } else { best },
            );
        assert!(weight > 0.5, "open mid-vowel: {mouth:?}");
        index
    }

    #[test]
    fn formants_pick_the_vowel() {
        assert_eq!(main_vowel(&vowel_sound(750.0, 1200.0, 0.3)), A);
        assert_eq!(main_vowel(&vowel_sound(280.0, 2300.0, 0.3)), I);
        assert_eq!(main_vowel(&vowel_sound(300.0, 800.0, 0.3)), U);
        assert_eq!(main_vowel(&vowel_sound(480.0, 2000.0, 0.3)), E);
        assert_eq!(main_vowel(&vowel_sound(500.0, 850.0, 0.3)), O);
    }

    #[test]
    fn silence_and_quiet_close_the_mouth_and_the_level_opens_it() {
        let mut audio = Audio::silence(0.2, 22050);
        audio.append(&vowel_sound(750.0, 1200.0, 0.2), 0.0);
        let quiet: Vec<f32> = vowel_sound(750.0, 1200.0, 0.2)
            .samples
            .iter()
            .map(|x| x * 0.01)
            .collect();
        audio.samples.extend(quiet);
        let track = MouthTrack::from_audio(&audio);
        assert!((track.seconds() - 0.6).abs() < 0.02);
        assert_eq!(track.at(0.1), [0.0; 5], "silence");
        assert!(track.at(0.3)[A] > 0.7, "loud a: {:?}", track.at(0.3));
        assert!(
            track.at(0.5).iter().all(|w| *w < 0.2),
            "40 dB down: {:?}",
            track.at(0.5)
        );
        assert_eq!(track.at(0.7), [0.0; 5], "after the end");
        assert_eq!(track.at(-1.0), [0.0; 5]);
        assert_eq!(MouthTrack::from_audio(&Audio::default()).at(0.0), [0.0; 5]);
    }

    #[test]
    fn hostile_samples_give_a_closed_or_bounded_mouth() {
        let audio = Audio {
            samples: vec![f32::NAN, f32::INFINITY, 1e30, -1e30, 0.0],
            sample_rate: 22050,
        };
        let track = MouthTrack::from_audio(&audio);
        for w in track.at(0.0) {
            assert!(w.is_finite() && (0.0..=1.0).contains(&w));
        }
    }

    #[test]
    fn correlation_of_known_series() {
        let a = [1.0, 2.0, 3.0, 4.0];
        assert!((correlation(&a, &[2.0, 4.0, 6.0, 8.0]) - 1.0).abs() < 1e-6);
        assert!((correlation(&a, &[4.0, 3.0, 2.0, 1.0]) + 1.0).abs() < 1e-6);
        assert_eq!(correlation(&a, &[1.0; 4]), 0.0);
    }
}
