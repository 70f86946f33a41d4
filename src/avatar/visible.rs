//! "Loaded" means "visible": once an avatar is framed, the window is captured every few frames
//! and its drawn pixels counted outside egui's panels. An avatar that draws nothing there
//! (meshes hidden, fully transparent, or somewhere the camera does not see) is replaced by
//! the default avatar with the reason in the window, instead of an empty window that says
//! nothing.

use bevy::prelude::*;
use bevy::render::view::screenshot::{Screenshot, ScreenshotCaptured};
use bevy::window::PrimaryWindow;

use super::hit_mask::HitMask;
use super::loading::{AvatarError, AvatarRoot, LoadAvatar};
use super::source::AvatarFile;
use super::stage::Framed;
use crate::AppSystems;

/// Where egui's panels are, as min and max corners in physical window pixels (max exclusive);
/// the UI writes it every pass. Pixels there are not counted as the avatar's.
#[derive(Resource, Debug, Default, Clone, Copy, PartialEq)]
pub struct PanelArea(pub Option<([u32; 2], [u32; 2])>);

/// On an avatar root once its check has ended: whether it drew pixels.
#[derive(Component, Debug, Clone, Copy, PartialEq, Eq)]
pub struct Seen(pub bool);

/// The check in progress on an avatar root.
#[derive(Component, Debug, Default)]
struct Checking {
    frames: u32,
    blank: u32,
    undecided: u32,
    in_flight: bool,
}

/// Frames between two captures.
const FRAMES_BETWEEN: u32 = 6;
/// Captures without a pixel before the avatar counts as invisible: a frame presented while
/// the window is being configured can come back empty, so one is not enough.
const BLANK_CAPTURES: u32 = 8;
/// Drawn pixels that make an avatar visible (a few stray pixels do not).
const MIN_PIXELS: usize = 64;
/// Captures under panels after which the check gives up.
const UNDECIDED_CAPTURES: u32 = 16;
/// A capture whose panels cover more than this share of the window decides nothing.
const MAX_COVERED: f32 = 0.5;

pub(super) fn plugin(app: &mut App) {
    app.init_resource::<PanelArea>()
        .add_systems(Update, check_visible.in_set(AppSystems::Update));
}

fn check_visible(
    mut commands: Commands,
    mut avatars: Query<(Entity, Option<&mut Checking>), (With<Framed>, Without<Seen>)>,
    windows: Query<&Window, With<PrimaryWindow>>,
) {
    // A hidden window captures nothing: wait until it shows.
    if !windows.single().is_ok_and(|window| window.visible) {
        return;
    }
    for (avatar, checking) in &mut avatars {
        let Some(mut checking) = checking else {
            commands.entity(avatar).insert(Checking::default());
            continue;
        };
        checking.frames += 1;
        // A capture that never reports back is asked for again.
        if checking.frames < FRAMES_BETWEEN || (checking.in_flight && checking.frames < 60) {
            continue;
        }
        checking.frames = 0;
        checking.in_flight = true;
        commands.spawn(Screenshot::primary_window()).observe(
            move |captured: On<ScreenshotCaptured>,
                  panels: Res<PanelArea>,
                  mut avatars: Query<(&mut Checking, &AvatarRoot)>,
                  mut commands: Commands,
                  mut error: ResMut<AvatarError>,
                  mut load: MessageWriter<LoadAvatar>| {
                // The avatar may have been replaced meanwhile.
                let Ok((mut checking, root)) = avatars.get_mut(avatar) else {
                    return;
                };
                checking.in_flight = false;
                let image = &captured.image;
                let Some(mask) = image
                    .data
                    .as_ref()
                    .and_then(|data| HitMask::from_rgba(image.width(), image.height(), data))
                else {
                    return;
                };
                let drawn = mask.drawn_outside(panels.0);
                if drawn >= MIN_PIXELS {
                    debug!("avatar {} visible ({drawn} pixels)", root.file.describe());
                    commands
                        .entity(avatar)
                        .remove::<Checking>()
                        .insert(Seen(true));
                    return;
                }
                // Panels over most of the window: this capture cannot tell; after a while the
                // check gives up rather than keep anyone waiting for it.
                if covered_share(panels.0, mask.size()) > MAX_COVERED {
                    checking.undecided += 1;
                    if checking.undecided >= UNDECIDED_CAPTURES {
                        debug!("avatar visibility not checked: panels cover the window");
                        commands
                            .entity(avatar)
                            .remove::<Checking>()
                            .insert(Seen(true));
                    }
                    return;
                }
                checking.blank += 1;
                if checking.blank < BLANK_CAPTURES {
                    return;
                }
                commands
                    .entity(avatar)
                    .remove::<Checking>()
                    .insert(Seen(false));
                let fallback = root.file != AvatarFile::Default;
                let reason = format!(
                    "avatar {} loaded but draws nothing in the window ({BLANK_CAPTURES} captures \
                     without a pixel: its meshes are hidden, fully transparent or outside the \
                     view){}",
                    root.file.describe(),
                    if fallback {
                        "; showing the default avatar"
                    } else {
                        ""
                    }
                );
                error!("{reason}");
                error.0 = Some(reason);
                if fallback {
                    load.write(LoadAvatar(AvatarFile::Default));
                }
            },
        );
    }
}

/// The share of a `size` window that the panels cover.
fn covered_share(panels: Option<([u32; 2], [u32; 2])>, size: (u32, u32)) -> f32 {
    let Some((min, max)) = panels else {
        return 0.0;
    };
    let (w, h) = (size.0.max(1) as f32, size.1.max(1) as f32);
    let width = (max[0].min(size.0).saturating_sub(min[0])) as f32;
    let height = (max[1].min(size.1).saturating_sub(min[1])) as f32;
    width * height / (w * h)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn panels_cover_their_share_of_the_window() {
        assert_eq!(covered_share(None, (100, 100)), 0.0);
        assert_eq!(covered_share(Some(([0, 0], [50, 100])), (100, 100)), 0.5);
        assert_eq!(covered_share(Some(([50, 0], [400, 400])), (100, 100)), 0.5);
        assert_eq!(
            covered_share(Some(([200, 200], [300, 300])), (100, 100)),
            0.0
        );
    }
}
