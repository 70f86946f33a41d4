//! Life without Bevy: auto blink, idle head turns, breathing and the mouth following streamed
//! text. Each is a small state machine advanced by `step(dt)`, so tests drive them with a
//! simulated clock.

use std::collections::VecDeque;

use crate::config::Expression;

/// Eyes close in 50 ms, stay closed 30 ms, open in 80 ms, every 2-5 s (random).
#[derive(Debug, Clone)]
pub struct Blink {
    rng: fastrand::Rng,
    /// Seconds until the next blink starts (while open), or into the running blink.
    clock: f32,
    blinking: bool,
}

impl Blink {
    pub const CLOSE: f32 = 0.05;
    pub const HOLD: f32 = 0.03;
    pub const OPEN: f32 = 0.08;
    pub const MIN_INTERVAL: f32 = 2.0;
    pub const MAX_INTERVAL: f32 = 5.0;

    pub fn new(seed: u64) -> Self {
        let mut rng = fastrand::Rng::with_seed(seed);
        let clock = Self::interval(&mut rng);
        Self {
            rng,
            clock,
            blinking: false,
        }
    }

    fn interval(rng: &mut fastrand::Rng) -> f32 {
        Self::MIN_INTERVAL + rng.f32() * (Self::MAX_INTERVAL - Self::MIN_INTERVAL)
    }

    pub fn duration() -> f32 {
        Self::CLOSE + Self::HOLD + Self::OPEN
    }

    /// Advances by `dt`; returns the blink weight (0 open .. 1 closed). With `allowed` false
    /// (eyes already closed by joy, blinking switched off) no new blink starts.
    pub fn step(&mut self, dt: f32, allowed: bool) -> f32 {
        if self.blinking {
            self.clock += dt;
            if self.clock >= Self::duration() {
                self.blinking = false;
                self.clock = Self::interval(&mut self.rng);
                return 0.0;
            }
            return self.weight();
        }
        self.clock -= dt;
        if self.clock > 0.0 {
            return 0.0;
        }
        if !allowed {
            self.clock = Self::interval(&mut self.rng);
            return 0.0;
        }
        self.blinking = true;
        self.clock = 0.0;
        self.weight()
    }

    fn weight(&self) -> f32 {
        let t = self.clock;
        if t < Self::CLOSE {
            t / Self::CLOSE
        } else if t < Self::CLOSE + Self::HOLD {
            1.0
        } else {
            (1.0 - (t - Self::CLOSE - Self::HOLD) / Self::OPEN).max(0.0)
        }
    }

    pub fn is_blinking(&self) -> bool {
        self.blinking
    }
}

/// Small yaw/pitch changes of the head every 3-10 s, eased.
#[derive(Debug, Clone)]
pub struct IdleHead {
    rng: fastrand::Rng,
    until_next: f32,
    target: (f32, f32),
    /// Current (yaw, pitch) in radians.
    pub angles: (f32, f32),
}

impl IdleHead {
    pub const MAX_YAW: f32 = 0.14;
    pub const MAX_PITCH: f32 = 0.08;
    /// Fraction of the remaining angle covered per second.
    const EASE: f32 = 1.5;

    pub fn new(seed: u64) -> Self {
        Self {
            rng: fastrand::Rng::with_seed(seed),
            until_next: 3.0,
            target: (0.0, 0.0),
            angles: (0.0, 0.0),
        }
    }

    pub fn step(&mut self, dt: f32, enabled: bool) -> (f32, f32) {
        if enabled {
            self.until_next -= dt;
            if self.until_next <= 0.0 {
                self.until_next = 3.0 + self.rng.f32() * 7.0;
                self.target = (
                    (self.rng.f32() * 2.0 - 1.0) * Self::MAX_YAW,
                    (self.rng.f32() * 2.0 - 1.0) * Self::MAX_PITCH,
                );
            }
        } else {
            self.target = (0.0, 0.0);
        }
        let k = 1.0 - (-Self::EASE * dt).exp();
        self.angles.0 += (self.target.0 - self.angles.0) * k;
        self.angles.1 += (self.target.1 - self.angles.1) * k;
        self.angles
    }

    /// True while the head is still turning noticeably.
    pub fn moving(&self) -> bool {
        (self.target.0 - self.angles.0).abs() > 1e-3 || (self.target.1 - self.angles.1).abs() > 1e-3
    }
}

/// Chest rise in metres at time `t`: one breath every 4 s.
pub fn breathing_offset(t: f32) -> f32 {
    0.004 * (t * std::f32::consts::TAU / 4.0).sin()
}

/// The mouth shapes.
pub const MOUTH: [Expression; 5] = [
    Expression::A,
    Expression::I,
    Expression::U,
    Expression::E,
    Expression::O,
];

/// The mouth shape of a character: vowels (English and French accents) open it, consonants
/// and pauses close it.
pub fn vowel(c: char) -> Option<Expression> {
    match c.to_lowercase().next().unwrap_or(c) {
        'a' | 'à' | 'â' | 'ä' => Some(Expression::A),
        'i' | 'î' | 'ï' | 'y' => Some(Expression::I),
        'u' | 'ù' | 'û' | 'ü' | 'w' => Some(Expression::U),
        'e' | 'é' | 'è' | 'ê' | 'ë' => Some(Expression::E),
        'o' | 'ô' | 'ö' => Some(Expression::O),
        _ => None,
    }
}

/// Mouth movement from streamed text: one character every 1/`RATE` s, the mouth easing
/// between shapes; it closes when the text runs out. While the voice speaks, the mouth follows
/// the sound instead ([`LipSync::follow_voice`]).
#[derive(Debug, Clone, Default)]
pub struct LipSync {
    queue: VecDeque<char>,
    current: Option<Expression>,
    clock: f32,
    /// The voice's mouth now (a, i, u, e, o); `Some` = the text is ignored.
    voice: Option<[f32; 5]>,
    /// Shown weight of a, i, u, e, o.
    pub weights: [f32; 5],
}

impl LipSync {
    /// Characters per second: about normal speech.
    pub const RATE: f32 = 14.0;
    const OPEN: f32 = 0.7;
    /// Weight units per second.
    const SPEED: f32 = 10.0;
    /// More than this many seconds of text waiting and the mouth skips ahead.
    const MAX_BACKLOG: f32 = 2.0;

    /// Weight units per second while following the voice (open in about 30 ms).
    const VOICE_SPEED: f32 = 30.0;

    pub fn push(&mut self, text: &str) {
        if self.voice.is_some() {
            return;
        }
        self.queue.extend(text.chars());
        let max = (Self::RATE * Self::MAX_BACKLOG) as usize;
        while self.queue.len() > max {
            self.queue.pop_front();
        }
    }

    pub fn stop(&mut self) {
        self.queue.clear();
        self.current = None;
    }

    /// The voice's mouth now, or `None`: the text drives the mouth again.
    pub fn follow_voice(&mut self, mouth: Option<[f32; 5]>) {
        self.voice = mouth.map(|m| {
            m.map(|w| {
                if w.is_finite() {
                    w.clamp(0.0, 1.0)
                } else {
                    0.0
                }
            })
        });
        if self.voice.is_some() {
            self.stop();
        }
    }

    /// True while the mouth moves or is open.
    pub fn active(&self) -> bool {
        !self.queue.is_empty()
            || self.current.is_some()
            || self.weights.iter().any(|w| *w > 0.0)
            || self.voice.is_some_and(|m| m.iter().any(|w| *w > 0.0))
    }

    pub fn step(&mut self, dt: f32) -> [f32; 5] {
        if let Some(target) = self.voice {
            let max_step = Self::VOICE_SPEED * dt;
            for (weight, target) in self.weights.iter_mut().zip(target) {
                *weight += (target - *weight).clamp(-max_step, max_step);
            }
            return self.weights;
        }
        self.clock -= dt;
        while self.clock <= 0.0 {
            match self.queue.pop_front() {
                Some(c) => {
                    self.current = vowel(c);
                    self.clock += 1.0 / Self::RATE;
                }
                None => {
                    self.current = None;
                    self.clock = 0.0;
                    break;
                }
            }
        }
        let max_step = Self::SPEED * dt;
        for (shape, weight) in MOUTH.iter().zip(self.weights.iter_mut()) {
            let target = if self.current == Some(*shape) {
                Self::OPEN
            } else {
                0.0
            };
            let delta = target - *weight;
            *weight = if delta.abs() <= max_step {
                target
            } else {
                *weight + max_step.copysign(delta)
            };
        }
        self.weights
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blink_intervals_and_durations_stay_in_bounds_over_a_minute() {
        let mut blink = Blink::new(7);
        let dt = 1.0 / 120.0;
        let mut starts = Vec::new();
        let mut closed_for = 0.0f32;
        let mut was_blinking = false;
        for frame in 0..(60 * 120) {
            let weight = blink.step(dt, true);
            assert!((0.0..=1.0).contains(&weight));
            if blink.is_blinking() && !was_blinking {
                starts.push(frame as f32 * dt);
            }
            if weight >= 1.0 {
                closed_for += dt;
            }
            was_blinking = blink.is_blinking();
        }
        assert!(
            (12..=30).contains(&starts.len()),
            "{} blinks in a minute",
            starts.len()
        );
        for pair in starts.windows(2) {
            let gap = pair[1] - pair[0];
            assert!(
                (Blink::MIN_INTERVAL..=Blink::MAX_INTERVAL + Blink::duration() + 2.0 * dt)
                    .contains(&gap),
                "gap {gap}"
            );
        }
        let hold = closed_for / starts.len() as f32;
        assert!(
            (0.02..=0.05).contains(&hold),
            "eyes fully closed {hold} s per blink"
        );
    }

    #[test]
    fn no_blink_starts_while_not_allowed() {
        let mut blink = Blink::new(1);
        for _ in 0..600 {
            assert_eq!(blink.step(0.1, false), 0.0);
        }
    }

    #[test]
    fn idle_head_stays_small_and_returns_when_switched_off() {
        let mut head = IdleHead::new(3);
        for _ in 0..(60 * 30) {
            let (yaw, pitch) = head.step(1.0 / 30.0, true);
            assert!(yaw.abs() <= IdleHead::MAX_YAW && pitch.abs() <= IdleHead::MAX_PITCH);
        }
        for _ in 0..(10 * 30) {
            head.step(1.0 / 30.0, false);
        }
        assert!(head.angles.0.abs() < 1e-3 && head.angles.1.abs() < 1e-3);
    }

    #[test]
    fn mouth_follows_vowels_and_closes_when_text_ends() {
        let mut lips = LipSync::default();
        lips.push("Bonjour, été");
        let dt = 1.0 / 60.0;
        let mut opened = std::collections::BTreeSet::new();
        for _ in 0..120 {
            let weights = lips.step(dt);
            for (shape, weight) in MOUTH.iter().zip(weights) {
                if weight > 0.3 {
                    opened.insert(*shape);
                }
            }
        }
        assert!(opened.contains(&Expression::O) && opened.contains(&Expression::E));
        assert!(!opened.contains(&Expression::A), "no a in the text");
        assert!(!lips.active(), "closed once the text is spoken");
        assert_eq!(lips.weights, [0.0; 5]);

        // The voice speaks: its mouth is followed and text is ignored until it lets go.
        lips.follow_voice(Some([0.8, 0.0, 0.0, 0.0, 0.0]));
        lips.push("ooooo");
        for _ in 0..6 {
            lips.step(1.0 / 120.0);
        }
        assert!(
            lips.weights[0] > 0.79 && lips.weights[4] == 0.0,
            "{:?}",
            lips.weights
        );
        lips.follow_voice(None);
        lips.push("o");
        let mut opened = 0.0f32;
        for _ in 0..60 {
            opened = opened.max(lips.step(1.0 / 120.0)[4]);
        }
        assert!(opened > 0.5, "the text drives the mouth again");
    }
}
