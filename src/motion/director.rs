//! What the body does, without Bevy: a greeting at start, the idle loop with variations now and
//! then (picked by weight), a gesture once per reply from its emotion, nods while a reply
//! streams, a sleepy loop after a while without activity (ended by the pointer coming near or
//! a message), the listening loop while the user speaks to it and the held loop while the
//! window is dragged. `step` is driven with a simulated clock in tests.

use crate::config::Emotion;

use super::builtin::Role;

/// A clip to start, cross-fading from what plays.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Play {
    pub clip: String,
    pub looping: bool,
}

/// What happened since the last step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// The pointer came near, a message was sent or a reply arrived.
    Activity,
    /// Reply text is streaming.
    Talking,
    /// A reply finished with this emotion.
    Emotion(Emotion),
    /// The window is being dragged (true) or was dropped (false).
    Held(bool),
    /// The user began (true) or stopped (false) speaking to the mascot.
    Listening(bool),
    /// The one-shot clip that was playing ended.
    Finished,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Starting,
    Idle,
    OneShot,
    Sleepy,
    Listening,
    Held,
}

/// Settings of the director (from `motion` settings).
#[derive(Debug, Clone, PartialEq)]
pub struct DirectorSettings {
    /// Seconds without activity before the sleepy loop; `None`: never.
    pub sleep_after: Option<f32>,
    /// Seconds between idle variations (a random time in this range).
    pub variation_every: (f32, f32),
    /// Chance (0-1) that a reply's emotion plays its gesture.
    pub gesture_probability: f32,
}

impl Default for DirectorSettings {
    fn default() -> Self {
        Self {
            sleep_after: Some(300.0),
            variation_every: (12.0, 30.0),
            gesture_probability: 1.0,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Director {
    rng: fastrand::Rng,
    settings: DirectorSettings,
    clips: Vec<(String, Role)>,
    mode: Mode,
    /// Seconds since the last activity.
    quiet: f32,
    /// Seconds until the next idle variation.
    until_variation: f32,
    /// Seconds until a talking nod may start again.
    until_nod: f32,
}

impl Director {
    /// A director choosing among `clips` (name, role).
    pub fn new(seed: u64, settings: DirectorSettings, clips: Vec<(String, Role)>) -> Self {
        let mut rng = fastrand::Rng::with_seed(seed);
        let until_variation = Self::next_variation(&mut rng, &settings);
        Self {
            rng,
            settings,
            clips,
            mode: Mode::Starting,
            quiet: 0.0,
            until_variation,
            until_nod: 0.0,
        }
    }

    fn next_variation(rng: &mut fastrand::Rng, settings: &DirectorSettings) -> f32 {
        let (min, max) = settings.variation_every;
        min + rng.f32() * (max - min).max(0.0)
    }

    fn first(&self, role: Role) -> Option<String> {
        self.clips
            .iter()
            .find(|(_, r)| *r == role)
            .map(|(name, _)| name.clone())
    }

    fn pick_variation(&mut self) -> Option<String> {
        let variations: Vec<(&String, u32)> = self
            .clips
            .iter()
            .filter_map(|(name, role)| match role {
                Role::IdleVariation { weight } if *weight > 0 => Some((name, *weight)),
                _ => None,
            })
            .collect();
        let total: u32 = variations.iter().map(|(_, w)| w).sum();
        if total == 0 {
            return None;
        }
        let mut ticket = self.rng.u32(0..total);
        for (name, weight) in variations {
            if ticket < weight {
                return Some(name.clone());
            }
            ticket -= weight;
        }
        None
    }

    fn idle(&mut self) -> Option<Play> {
        self.mode = Mode::Idle;
        self.first(Role::Idle).map(|clip| Play {
            clip,
            looping: true,
        })
    }

    /// The loop of `role` in `mode`, if there is a clip for it (the mode stays otherwise).
    fn looped(&mut self, role: Role, mode: Mode) -> Option<Play> {
        let clip = self.first(role)?;
        self.mode = mode;
        Some(Play {
            clip,
            looping: true,
        })
    }

    fn once(&mut self, clip: Option<String>) -> Option<Play> {
        let clip = clip?;
        self.mode = Mode::OneShot;
        Some(Play {
            clip,
            looping: false,
        })
    }

    /// Advances by `dt` seconds with what happened meanwhile; returns the clip to start, if
    /// the body should change what it does.
    pub fn step(&mut self, dt: f32, events: &[Event]) -> Option<Play> {
        self.quiet += dt;
        self.until_nod -= dt;
        let mut play = None;
        if self.mode == Mode::Starting {
            play = match self.first(Role::Greeting) {
                Some(greeting) => self.once(Some(greeting)),
                None => self.idle(),
            };
        }
        for event in events {
            match *event {
                Event::Held(true) => {
                    self.quiet = 0.0;
                    if let Some(held) = self.looped(Role::Held, Mode::Held) {
                        play = Some(held);
                    }
                }
                Event::Held(false) if self.mode == Mode::Held => {
                    self.quiet = 0.0;
                    play = match self.first(Role::Landing) {
                        Some(landing) => self.once(Some(landing)),
                        None => self.idle(),
                    };
                }
                Event::Held(false) => {}
                _ if self.mode == Mode::Held => {}
                Event::Listening(true) => {
                    self.quiet = 0.0;
                    if let Some(listening) = self.looped(Role::Listening, Mode::Listening) {
                        play = Some(listening);
                    }
                }
                Event::Listening(false) => {
                    self.quiet = 0.0;
                    if self.mode == Mode::Listening {
                        play = self.idle();
                    }
                }
                // Listening: the loop holds until the user stops.
                _ if self.mode == Mode::Listening => {}
                Event::Activity => {
                    self.quiet = 0.0;
                    if self.mode == Mode::Sleepy {
                        play = self.idle();
                    }
                }
                Event::Talking => {
                    self.quiet = 0.0;
                    if matches!(self.mode, Mode::Idle | Mode::Sleepy) && self.until_nod <= 0.0 {
                        self.until_nod = 6.0 + self.rng.f32() * 6.0;
                        play = self.once(self.first(Role::Talking));
                    }
                }
                Event::Emotion(emotion) => {
                    self.quiet = 0.0;
                    if emotion != Emotion::Neutral
                        && self.rng.f32() < self.settings.gesture_probability
                        && let Some(clip) = self.first(Role::Gesture(emotion))
                    {
                        play = self.once(Some(clip));
                    }
                }
                // A one-shot ended: ours, or one asked from outside (F4, a dropped clip).
                Event::Finished => play = self.idle(),
            }
        }
        if play.is_some() {
            return play;
        }
        match self.mode {
            Mode::Idle => {
                if let Some(after) = self.settings.sleep_after
                    && self.quiet >= after
                    && let Some(sleepy) = self.looped(Role::Sleepy, Mode::Sleepy)
                {
                    return Some(sleepy);
                }
                self.until_variation -= dt;
                if self.until_variation <= 0.0 {
                    self.until_variation = Self::next_variation(&mut self.rng, &self.settings);
                    let variation = self.pick_variation();
                    return self.once(variation);
                }
                None
            }
            _ => None,
        }
    }

    /// The clips to choose among changed (one kept in the idle set, one removed).
    pub fn set_clips(&mut self, clips: Vec<(String, Role)>) {
        self.clips = clips;
    }

    /// True while the sleepy loop plays.
    pub fn sleeping(&self) -> bool {
        self.mode == Mode::Sleepy
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::motion::builtin::BUILTIN;

    fn director(settings: DirectorSettings) -> Director {
        let clips = BUILTIN
            .iter()
            .map(|m| (m.name.to_owned(), m.role))
            .collect();
        Director::new(7, settings, clips)
    }

    fn once(clip: &str) -> Option<Play> {
        Some(Play {
            clip: clip.into(),
            looping: false,
        })
    }

    fn looped(clip: &str) -> Option<Play> {
        Some(Play {
            clip: clip.into(),
            looping: true,
        })
    }

    #[test]
    fn greets_then_idles_and_gestures_once_per_emotion() {
        let mut d = director(DirectorSettings::default());
        assert_eq!(d.step(0.016, &[]), once("greeting"));
        assert_eq!(d.step(0.016, &[]), None);
        assert_eq!(d.step(0.016, &[Event::Finished]), looped("idle"));
        assert_eq!(d.step(0.016, &[Event::Emotion(Emotion::Joy)]), once("joy"));
        assert_eq!(d.step(0.016, &[Event::Finished]), looped("idle"));
        assert_eq!(
            d.step(0.016, &[Event::Emotion(Emotion::Sorrow)]),
            once("sorrow")
        );
        assert_eq!(d.step(0.016, &[Event::Emotion(Emotion::Neutral)]), None);
    }

    #[test]
    fn variations_come_now_and_then_picked_by_weight() {
        let mut d = director(DirectorSettings {
            sleep_after: None,
            ..DirectorSettings::default()
        });
        d.step(0.0, &[]);
        d.step(0.0, &[Event::Finished]);
        let mut seen = std::collections::HashMap::<String, u32>::new();
        let mut clock = 0.0;
        let mut last = 0.0;
        let mut gaps = Vec::new();
        while clock < 20_000.0 {
            clock += 0.5;
            if let Some(play) = d.step(0.5, &[])
                && !play.looping
            {
                *seen.entry(play.clip).or_default() += 1;
                gaps.push(clock - last);
                last = clock;
                d.step(0.0, &[Event::Finished]);
            }
        }
        assert!(gaps.iter().all(|g| (12.0..=30.5).contains(g)), "{gaps:?}");
        let (look, stretch, fidget) = (seen["look_around"], seen["stretch"], seen["fidget"]);
        // Weights 3 : 1 : 2.
        assert!(look > fidget && fidget > stretch, "{seen:?}");
        let ratio = f64::from(look) / f64::from(stretch);
        assert!((2.0..4.5).contains(&ratio), "{seen:?}");
    }

    #[test]
    fn sleeps_after_the_quiet_time_and_wakes_on_activity() {
        let mut d = director(DirectorSettings {
            sleep_after: Some(60.0),
            variation_every: (1000.0, 1000.0),
            ..DirectorSettings::default()
        });
        d.step(0.0, &[]);
        d.step(0.0, &[Event::Finished]);
        for _ in 0..59 {
            assert_eq!(d.step(1.0, &[]), None);
        }
        assert_eq!(d.step(1.0, &[]), looped("sleepy"));
        assert!(d.sleeping());
        assert_eq!(d.step(1.0, &[Event::Activity]), looped("idle"));
        assert!(!d.sleeping());
    }

    #[test]
    fn held_while_dragged_then_lands_and_idles() {
        let mut d = director(DirectorSettings::default());
        d.step(0.0, &[]);
        assert_eq!(d.step(0.1, &[Event::Held(true)]), looped("held"));
        // Nothing else interrupts the held loop.
        assert_eq!(d.step(0.1, &[Event::Emotion(Emotion::Joy)]), None);
        assert_eq!(d.step(0.1, &[Event::Held(false)]), once("landing"));
        assert_eq!(d.step(0.1, &[Event::Finished]), looped("idle"));
    }

    #[test]
    fn listens_while_the_user_speaks_then_idles() {
        let mut d = director(DirectorSettings::default());
        d.step(0.1, &[]);
        d.step(0.1, &[Event::Finished]);
        assert_eq!(d.step(0.1, &[Event::Listening(true)]), looped("listening"));
        // The reply it was giving stops; no nod or gesture over the user's words.
        assert_eq!(d.step(0.1, &[Event::Talking]), None);
        assert_eq!(d.step(0.1, &[Event::Emotion(Emotion::Joy)]), None);
        assert_eq!(d.step(100.0, &[]), None, "no variation while listening");
        assert_eq!(d.step(0.1, &[Event::Listening(false)]), looped("idle"));
        // Dragged while listening: held wins, and landing idles.
        d.step(0.1, &[Event::Listening(true)]);
        assert_eq!(d.step(0.1, &[Event::Held(true)]), looped("held"));
    }

    #[test]
    fn talking_nods_at_most_every_six_seconds() {
        let mut d = director(DirectorSettings::default());
        d.step(0.0, &[]);
        d.step(0.0, &[Event::Finished]);
        assert_eq!(d.step(0.1, &[Event::Talking]), once("nod"));
        d.step(0.0, &[Event::Finished]);
        assert_eq!(d.step(1.0, &[Event::Talking]), None);
    }
}
