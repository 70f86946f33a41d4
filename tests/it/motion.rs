//! Motion clips (VRMA): the built-in files, the shared Blender add-on clips read against an
//! independent reader (the `gltf` crate), and poses on real avatars in the real app (snapshot
//! with `--pose-out`), plus pixels of the rendered clips.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use bevy::math::{Quat, Vec3};
use desktop_mate::motion::builtin::{BUILTIN, MOTIONS_DIR};
use desktop_mate::motion::vrma::{bone_from_name, read_vrma};

use crate::support;

#[test]
fn builtin_motions_are_reproduced_by_the_generator() {
    let built = crate::motions_generator::build();
    assert_eq!(
        built.len(),
        BUILTIN.len(),
        "one table row per generated clip"
    );
    for (name, bytes) in built {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join(MOTIONS_DIR)
            .join(format!("{name}.vrma"));
        let committed = std::fs::read(&path).expect("the committed clip");
        let embedded = BUILTIN
            .iter()
            .find(|m| m.name == name)
            .unwrap_or_else(|| panic!("{name} is not in the built-in table"));
        assert_eq!(committed, embedded.bytes, "the binary embeds {name}");
        assert!(
            bytes == committed,
            "the generator's {name} differs from {}: run `cargo run --example make_motions` and \
             commit the result",
            path.display()
        );
    }
}

/// A VRMA read by the `gltf` crate: the rest world transforms of its nodes and the animated
/// local rotations, to compute normalized turns independently of `desktop_mate::motion`.
struct Reference {
    parents: Vec<Option<usize>>,
    rest: Vec<(Vec3, Quat)>,
    rotations: HashMap<usize, (Vec<f32>, Vec<Quat>)>,
    bones: HashMap<String, usize>,
}

impl Reference {
    fn read(path: &Path) -> Self {
        let gltf = gltf::Gltf::from_slice(&std::fs::read(path).expect("read")).expect("gltf");
        let blob = gltf.blob.clone().expect("a GLB binary chunk");
        let document = gltf.document;
        let count = document.nodes().count();
        let mut parents = vec![None; count];
        let mut rest = vec![(Vec3::ZERO, Quat::IDENTITY); count];
        for node in document.nodes() {
            for child in node.children() {
                parents[child.index()] = Some(node.index());
            }
            let (t, r, _) = node.transform().decomposed();
            rest[node.index()] = (Vec3::from(t), Quat::from_array(r));
        }
        let mut rotations = HashMap::new();
        for channel in document
            .animations()
            .next()
            .expect("an animation")
            .channels()
        {
            let reader = channel.reader(|_| Some(blob.as_slice()));
            if let Some(gltf::animation::util::ReadOutputs::Rotations(values)) =
                reader.read_outputs()
            {
                let times: Vec<f32> = reader.read_inputs().expect("times").collect();
                let values = values.into_f32().map(Quat::from_array).collect();
                rotations.insert(channel.target().node().index(), (times, values));
            }
        }
        let extension = document
            .extension_value("VRMC_vrm_animation")
            .expect("extension");
        let bones = extension["humanoid"]["humanBones"]
            .as_object()
            .expect("bones")
            .iter()
            .map(|(name, bone)| (name.clone(), bone["node"].as_u64().expect("node") as usize))
            .collect();
        Self {
            parents,
            rest,
            rotations,
            bones,
        }
    }

    fn local(&self, node: usize, key: Option<usize>) -> Quat {
        match (key, self.rotations.get(&node)) {
            (Some(key), Some((_, values))) => values[key],
            _ => self.rest[node].1,
        }
    }

    /// World rotation of `node`, at rest (`None`) or at key `key` of every animated node.
    fn world(&self, node: usize, key: Option<usize>) -> Quat {
        let mut rotation = self.local(node, key);
        let mut current = self.parents[node];
        while let Some(parent) = current {
            rotation = self.local(parent, key) * rotation;
            current = self.parents[parent];
        }
        rotation
    }

    /// The bone's world turn from rest at key `key`: the normalized world rotation.
    fn turn(&self, bone: &str, key: usize) -> Quat {
        let node = self.bones[bone];
        self.world(node, Some(key)) * self.world(node, None).inverse()
    }

    fn key_time(&self, bone: &str, key: usize) -> f32 {
        self.rotations[&self.bones[bone]].0[key]
    }
}

/// Half a turn about Y: the clip's +Z-forward axes to avatar space (-Z forward).
fn flip(q: Quat) -> Quat {
    Quat::from_xyzw(-q.x, q.y, -q.z, q.w)
}

#[test]
fn shared_blender_clips_read_as_an_independent_reader_sees_them() {
    let Some(path) = support::shared_file("animations/hips_spine_twisting.vrma") else {
        return;
    };
    let reference = Reference::read(&path);
    let clip = read_vrma(&std::fs::read(&path).expect("read")).expect("clip");
    assert!(
        (clip.duration - 59.966_67).abs() < 1e-3,
        "{}",
        clip.duration
    );
    // The normalized world turn of each bone = the product of the normalized local rotations
    // along its chain (every bone of the chain is in the clip).
    let chains: [&[&str]; 3] = [
        &["hips", "spine", "chest", "neck", "head"],
        &["hips", "spine", "chest", "leftUpperArm"],
        &["hips", "rightUpperLeg", "rightLowerLeg"],
    ];
    for key in [0, 137, 901, 1799] {
        let time = reference.key_time("hips", key);
        for chain in chains {
            let product = chain.iter().fold(Quat::IDENTITY, |world, bone| {
                world
                    * clip
                        .rotation(bone_from_name(bone).expect("bone"), time)
                        .unwrap_or(Quat::IDENTITY)
            });
            let last = chain.last().expect("bone");
            let expected = reference.turn(last, key);
            assert!(
                product.angle_between(expected) < 1e-3,
                "{last} at {time}s: {product:?} vs {expected:?}"
            );
        }
    }
    let Some(nop) = support::shared_file("animations/nop.vrma") else {
        return;
    };
    let nop = read_vrma(&std::fs::read(&nop).expect("read")).expect("nop clip");
    for (bone, track) in &nop.rotations {
        let turn = track.values[0];
        assert!(
            turn.angle_between(Quat::IDENTITY) < 1e-3,
            "nop.vrma turns {bone}: {turn:?}"
        );
    }
}

/// `desktop-mate snapshot` of `avatar` holding `motion` at `at`: the PNG and the bones.
fn posed(dir: &Path, avatar: Option<&Path>, motion: &str, at: f32) -> (PathBuf, Pose) {
    let out = dir.join(format!("{motion}-{at}.png"));
    let pose_out = dir.join(format!("{motion}-{at}.json"));
    let config = dir.join("mascot.ron");
    std::fs::write(&config, "()").expect("settings");
    let mut command = Command::new(env!("CARGO_BIN_EXE_desktop-mate"));
    command
        .args(["snapshot", "--no-chat", "--size", "400x600", "--config"])
        .arg(&config)
        .arg("--out")
        .arg(&out)
        .arg("--pose-out")
        .arg(&pose_out)
        .args(["--motion", motion, "--at", &format!("{at:?}")])
        .env("HOME", dir);
    if let Some(avatar) = avatar {
        command.arg("--avatar").arg(avatar);
    }
    let _one_at_a_time = support::one_window_at_a_time();
    let output = command.output().expect("run snapshot");
    assert!(
        output.status.success(),
        "snapshot --motion {motion} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&pose_out).expect("pose file")).expect("json");
    (out, Pose(json))
}

struct Pose(serde_json::Value);

impl Pose {
    fn quat(&self, bone: &str, key: &str) -> Quat {
        let v = &self.0["bones"][bone][key];
        let f = |i: usize| v[i].as_f64().unwrap_or_else(|| panic!("{bone}.{key}")) as f32;
        Quat::from_xyzw(f(0), f(1), f(2), f(3))
    }

    fn vec3(&self, bone: &str, key: &str) -> Vec3 {
        let v = &self.0["bones"][bone][key];
        let f = |i: usize| v[i].as_f64().unwrap_or_else(|| panic!("{bone}.{key}")) as f32;
        Vec3::new(f(0), f(1), f(2))
    }

    fn position(&self, bone: &str) -> Vec3 {
        self.vec3(bone, "position")
    }

    /// The bone's world turn from its rest.
    fn turn(&self, bone: &str) -> Quat {
        self.quat(bone, "rotation") * self.quat(bone, "rest_rotation").inverse()
    }

    fn has(&self, bone: &str) -> bool {
        self.0["bones"].get(bone).is_some()
    }
}

#[test]
fn a_clip_poses_vrm1_and_vrm0_avatars_as_the_file_says() {
    if !support::display_available() {
        return;
    }
    let (Some(clip_path), Some(vrm1), Some(vrm0)) = (
        support::shared_file("animations/hips_spine_twisting.vrma"),
        support::shared_file("avatars/VRMC_vrm_expressions_isBinary_Overridden.vrm"),
        support::shared_file("avatars/Godette_vrm_v4.vrm"),
    ) else {
        return;
    };
    let reference = Reference::read(&clip_path);
    let dir = tempfile::tempdir().expect("temp dir");
    let clip = clip_path.to_str().expect("utf8");
    let key = 450;
    let time = reference.key_time("hips", key);
    let mut turns: Vec<HashMap<&str, Quat>> = Vec::new();
    for avatar in [&vrm1, &vrm0] {
        let (_, pose) = posed(dir.path(), Some(avatar), clip, time);
        let mut seen = HashMap::new();
        for bone in [
            "hips",
            "spine",
            "chest",
            "neck",
            "head",
            "leftUpperArm",
            "rightUpperArm",
        ] {
            if !pose.has(bone) {
                continue;
            }
            // World rotation relative to the avatar = the clip's world turn (in avatar space,
            // facing -Z) times the bone's rest world rotation.
            let expected = flip(reference.turn(bone, key)) * pose.quat(bone, "rest_rotation");
            let got = pose.quat(bone, "rotation");
            assert!(
                got.angle_between(expected) < 1e-3,
                "{} {bone} at {time}s: {got:?} vs {expected:?}",
                avatar.display()
            );
            seen.insert(bone, pose.turn(bone));
        }
        // Where the arm and head point: their rest direction turned by the clip.
        for (from, to) in [
            ("leftUpperArm", "leftLowerArm"),
            ("rightUpperArm", "rightLowerArm"),
            ("neck", "head"),
        ] {
            if !(pose.has(from) && pose.has(to)) {
                continue;
            }
            let rest =
                (pose.vec3(to, "rest_position") - pose.vec3(from, "rest_position")).normalize();
            let posed = (pose.position(to) - pose.position(from)).normalize();
            let expected = flip(reference.turn(from, key)) * rest;
            let degrees = posed.angle_between(expected).to_degrees();
            assert!(
                degrees < 2.0,
                "{} {from}: {posed} vs {expected} ({degrees:.2}°)",
                avatar.display()
            );
        }
        turns.push(seen);
    }
    // The same clip turns the bones of a 0.x avatar (which faces -Z in its file) the same way
    // in the world as those of the 1.0 one.
    for (bone, turn) in &turns[0] {
        let Some(other) = turns[1].get(bone) else {
            continue;
        };
        let degrees = turn.angle_between(*other).to_degrees();
        assert!(degrees < 2.0, "{bone}: {degrees:.2}° apart");
    }
    assert!(turns[1].contains_key("leftUpperArm") && turns[1].contains_key("head"));
}

fn differing(a: &image::RgbaImage, b: &image::RgbaImage) -> usize {
    a.pixels().zip(b.pixels()).filter(|(p, q)| p != q).count()
}

#[test]
fn clips_move_the_rendered_body_and_the_wave_raises_the_hand() {
    if !support::display_available() {
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let rgba = |path: &Path| image::open(path).expect("PNG").to_rgba8();
    let godette = support::shared_file("avatars/Godette_vrm_v4.vrm");
    for avatar in [None, godette.as_deref()] {
        let (first, _) = posed(dir.path(), avatar, "idle", 0.0);
        let first = rgba(&first);
        let (later, _) = posed(dir.path(), avatar, "idle", 1.0);
        let changed = differing(&first, &rgba(&later));
        assert!(
            changed > 200,
            "{avatar:?}: idle at 0 s and 1 s differ by {changed} pixels"
        );
        // The wave: the right hand (the viewer's left) above the shoulders.
        let (wave, pose) = posed(dir.path(), avatar, "greeting", 1.3);
        let wave = rgba(&wave);
        assert!(
            pose.position("rightHand").y > pose.position("rightUpperArm").y + 0.05,
            "{avatar:?}: the hand is not above the shoulder"
        );
        // The raised arm: pixels drawn with the wave and not without, in the window's upper
        // left quarter (the character's right is the viewer's left).
        let (width, height) = wave.dimensions();
        let raised = (0..height / 2)
            .flat_map(|y| (0..width / 2).map(move |x| (x, y)))
            .filter(|&(x, y)| wave.get_pixel(x, y)[3] == 255 && first.get_pixel(x, y)[3] == 0)
            .count();
        assert!(
            raised > 300,
            "{avatar:?}: {raised} pixels up left drawn by the wave only"
        );
    }
}

#[test]
fn a_dropped_vrma_joins_the_library_and_a_broken_one_says_why() {
    use bevy::prelude::Entity;
    use bevy::window::FileDragAndDrop;
    use desktop_mate::avatar::AvatarError;
    use desktop_mate::config::AppState;
    use desktop_mate::motion::{MotionLibrary, MotionSource};
    let (mut app, _face, dir) = support::face_app("()", std::time::Duration::from_millis(16));
    app.update();
    let before = app.world().resource::<MotionLibrary>().clips.len();
    let clip = dir.path().join("wave2.VRMA");
    std::fs::write(&clip, BUILTIN[4].bytes).expect("write");
    let broken = dir.path().join("broken.vrma");
    std::fs::write(&broken, &BUILTIN[4].bytes[..300]).expect("write");
    for path in [&clip, &broken] {
        app.world_mut().write_message(FileDragAndDrop::DroppedFile {
            window: Entity::PLACEHOLDER,
            path_buf: path.clone(),
        });
    }
    assert!(support::update_until(
        &mut app,
        std::time::Duration::from_secs(10),
        |world| {
            world.resource::<MotionLibrary>().clips.len() > before
                && world.resource::<AvatarError>().0.is_some()
        }
    ));
    let world = app.world();
    let library = world.resource::<MotionLibrary>();
    let added = library
        .get("wave2")
        .expect("the dropped clip, by its file name");
    assert_eq!(added.source, MotionSource::File(clip.clone()));
    assert!(added.clip.duration > 2.0);
    let error = world
        .resource::<AvatarError>()
        .0
        .clone()
        .unwrap_or_default();
    assert!(
        error.contains("broken.vrma") && error.contains("truncated"),
        "{error}"
    );
    // A clip is not an avatar.
    assert_eq!(world.resource::<AppState>().avatar, None);
}

#[test]
fn motion_list_names_the_builtin_clips() {
    let output = Command::new(env!("CARGO_BIN_EXE_desktop-mate"))
        .args(["motion", "list", "--json"])
        .output()
        .expect("run");
    assert!(output.status.success());
    let rows: serde_json::Value = serde_json::from_slice(&output.stdout).expect("json");
    let names: Vec<&str> = rows
        .as_array()
        .expect("array")
        .iter()
        .filter_map(|r| r["name"].as_str())
        .collect();
    for name in ["idle", "greeting", "joy", "sleepy", "held"] {
        assert!(names.contains(&name), "{names:?}");
    }
    let idle = &rows[0];
    assert_eq!(idle["loop"], true);
    assert_eq!(idle["seconds"], 4.0);
}

#[test]
fn a_bad_motion_for_a_snapshot_is_refused_with_the_names() {
    if !support::display_available() {
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let bad = dir.path().join("broken.vrma");
    std::fs::write(&bad, b"glTF not really").expect("write");
    for (motion, expected) in [
        ("dance", "no motion called"),
        (bad.to_str().expect("utf8"), "not a VRMA file"),
    ] {
        let output = Command::new(env!("CARGO_BIN_EXE_desktop-mate"))
            .args(["snapshot", "--out"])
            .arg(dir.path().join("x.png"))
            .args(["--motion", motion])
            .env("HOME", dir.path())
            .output()
            .expect("run");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{motion}: {stderr}");
        assert!(stderr.contains(expected), "{motion}: {stderr}");
    }
}

#[test]
fn spring_bones_swing_when_the_window_is_dragged_and_settle() {
    use bevy::prelude::*;
    use bevy::window::{PrimaryWindow, WindowMoved};
    use bevy_vrm::spring_bones::{
        SpringBonePlugin, SpringBones, SpringChain, SpringJoint, SpringSettings,
    };
    use desktop_mate::avatar::{AvatarCamera, Framed};
    let (mut app, _face, _dir) = support::face_app("()", std::time::Duration::from_millis(16));
    app.add_plugins((bevy::transform::TransformPlugin, SpringBonePlugin));
    let world = app.world_mut();
    let window = world.spawn((Window::default(), PrimaryWindow)).id();
    world.spawn((
        AvatarCamera,
        Transform::from_xyz(0.0, 1.0, 5.0),
        Projection::Perspective(PerspectiveProjection {
            fov: 0.35,
            ..default()
        }),
    ));
    world.spawn(Framed {
        min: Vec3::ZERO,
        max: Vec3::new(0.5, 2.0, 0.2),
    });
    // A strand of hair: a bone hanging from the head, its tail 0.2 m below.
    let head = world.spawn(Transform::from_xyz(0.0, 1.5, 0.0)).id();
    let bone = world.spawn((Transform::default(), ChildOf(head))).id();
    let tail = world
        .spawn((Transform::from_xyz(0.0, -0.2, 0.0), ChildOf(bone)))
        .id();
    world.spawn(SpringBones(vec![SpringChain {
        joints: vec![SpringJoint {
            bone,
            tail,
            settings: SpringSettings {
                stiffness: 1.0,
                drag_force: 0.4,
                gravity_power: 0.0,
                gravity_dir: Vec3::NEG_Y,
                hit_radius: 0.0,
            },
        }],
    }]));
    let tail_x = |app: &App| {
        app.world()
            .get::<GlobalTransform>(tail)
            .expect("tail")
            .translation()
            .x
    };
    let move_to = |app: &mut App, x: i32| {
        app.world_mut().write_message(WindowMoved {
            window,
            position: IVec2::new(x, 100),
        });
        app.update();
    };
    for _ in 0..20 {
        app.update();
    }
    move_to(&mut app, 100);
    let still = tail_x(&app);
    assert!(
        still.abs() < 1e-4,
        "at rest the tail hangs straight: {still}"
    );
    // The window is dragged 60 px to the right over three frames: the tail lags to the left.
    for x in [120, 140, 160] {
        move_to(&mut app, x);
    }
    app.update();
    let swung = tail_x(&app);
    assert!(swung < -0.01, "the tail lags behind the drag: x = {swung}");
    // Then it settles.
    for _ in 0..300 {
        app.update();
    }
    let settled = tail_x(&app);
    assert!(settled.abs() < 0.002, "the tail settles: x = {settled}");
}

/// The idle clip with one more node animated all along: named `name`, registered in the
/// extension at `extension` (a JSON pointer under `VRMC_vrm_animation`) as `entry`, its `path`
/// keyed with `key` (3 or 4 floats) at every time of the clip.
fn idle_with_node(
    name: &str,
    extension: &str,
    entry: impl Fn(usize) -> serde_json::Value,
    path: &str,
    key: &[f32],
) -> Vec<u8> {
    use desktop_mate::avatar::vrm_file::{read_glb, write_glb};
    let mut glb = read_glb(BUILTIN[0].bytes).expect("idle clip");
    let json = &mut glb.json;
    let times = json["accessors"][0]["count"].as_u64().expect("count") as usize;
    let bin = glb.bin.as_mut().expect("binary chunk");
    let offset = bin.len();
    for _ in 0..times {
        for v in key {
            bin.extend_from_slice(&v.to_le_bytes());
        }
    }
    json["buffers"][0]["byteLength"] = serde_json::json!(bin.len());
    let push = |json: &mut serde_json::Value, key: &str, value: serde_json::Value| {
        let list = json[key].as_array_mut().expect("list");
        list.push(value);
        list.len() - 1
    };
    let view = push(
        json,
        "bufferViews",
        serde_json::json!({"buffer": 0, "byteOffset": offset, "byteLength": times * key.len() * 4}),
    );
    let kind = if key.len() == 4 { "VEC4" } else { "VEC3" };
    let accessor = push(
        json,
        "accessors",
        serde_json::json!({"bufferView": view, "componentType": 5126, "count": times, "type": kind}),
    );
    let node = push(json, "nodes", serde_json::json!({ "name": name }));
    json["extensions"]["VRMC_vrm_animation"][extension] = entry(node);
    let animation = &mut json["animations"][0];
    let sampler = push(
        animation,
        "samplers",
        serde_json::json!({"input": 0, "output": accessor}),
    );
    push(
        animation,
        "channels",
        serde_json::json!({"sampler": sampler, "target": {"node": node, "path": path}}),
    );
    write_glb(&glb)
}

/// The idle clip with a `happy` expression track at `weight` all along.
fn idle_with_happy(weight: f32) -> Vec<u8> {
    idle_with_node(
        "happy",
        "expressions",
        |node| serde_json::json!({"preset": {"happy": {"node": node}}}),
        "translation",
        &[weight, 0.0, 0.0],
    )
}

#[test]
fn a_clips_expression_track_shows_on_the_face() {
    if !support::display_available() {
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let clip = read_vrma(&idle_with_happy(1.0)).expect("the clip reads");
    assert_eq!(clip.expressions["happy"].sample(1.0), Some(1.0));
    let mut shots = Vec::new();
    for weight in [0.0, 1.0] {
        let path = dir.path().join(format!("happy{weight}.vrma"));
        std::fs::write(&path, idle_with_happy(weight)).expect("write");
        let (png, _) = posed(dir.path(), None, path.to_str().expect("utf8"), 1.0);
        shots.push(image::open(&png).expect("PNG").to_rgba8());
    }
    // The body is posed the same; the face (joy: closed eyes, open smile) differs.
    let changed = differing(&shots[0], &shots[1]);
    assert!(
        changed > 300,
        "{changed} pixels differ with the clip's happy track"
    );
}

/// The idle clip with a lookAt track turning the gaze `yaw` degrees (to the character's
/// left when positive) all along.
fn idle_looking(yaw: f32) -> Vec<u8> {
    let half = yaw.to_radians() / 2.0;
    idle_with_node(
        "lookAt",
        "lookAt",
        |node| serde_json::json!({ "node": node }),
        "rotation",
        &[0.0, half.sin(), 0.0, half.cos()],
    )
}

#[test]
fn a_clips_look_at_track_points_the_eyes() {
    let clip = read_vrma(&idle_looking(30.0)).expect("the clip reads");
    let gaze = clip
        .look_at
        .as_ref()
        .and_then(|t| t.sample(1.0))
        .expect("a lookAt track");
    assert!(
        (gaze.x - 30.0).abs() < 1e-3 && gaze.y.abs() < 1e-3,
        "yaw 30 degrees to the left, level: {gaze}"
    );
    if !support::display_available() {
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let mut shots = Vec::new();
    for yaw in [-30.0, 30.0] {
        let path = dir.path().join(format!("look{yaw}.vrma"));
        std::fs::write(&path, idle_looking(yaw)).expect("write");
        let (png, _) = posed(dir.path(), None, path.to_str().expect("utf8"), 1.0);
        shots.push(image::open(&png).expect("PNG").to_rgba8());
    }
    // The body is posed the same; the eyes look the other way.
    let changed = differing(&shots[0], &shots[1]);
    assert!(
        changed > 50,
        "{changed} pixels differ between looking left and right"
    );
}

#[test]
fn a_kept_clip_joins_the_idle_set_and_comes_back_at_the_next_start() {
    use bevy::prelude::Entity;
    use bevy::window::FileDragAndDrop;
    use desktop_mate::config::{AppState, Overrides};
    use desktop_mate::motion::{EditMotion, KEPT, MotionLibrary};
    let dir = tempfile::tempdir().expect("temp dir");
    let settings = dir.path().join("mascot.ron");
    std::fs::write(&settings, "()").expect("settings");
    let clip = dir.path().join("bow.vrma");
    std::fs::write(&clip, BUILTIN[5].bytes).expect("write");
    let start = || {
        let mut app = desktop_mate::headless_app(desktop_mate::config::load_with(
            Some(&settings),
            None,
            Overrides::default(),
        ));
        app.update();
        app
    };
    let mut app = start();
    app.world_mut().write_message(FileDragAndDrop::DroppedFile {
        window: Entity::PLACEHOLDER,
        path_buf: clip.clone(),
    });
    let limit = std::time::Duration::from_secs(10);
    assert!(support::update_until(&mut app, limit, |w| w
        .resource::<MotionLibrary>()
        .get("bow")
        .is_some()));
    app.world_mut().write_message(EditMotion::Keep {
        clip: "bow".into(),
        keep: true,
    });
    app.update();
    assert_eq!(
        app.world().resource::<AppState>().kept_motions,
        vec![clip.clone()]
    );
    let state_file = dir.path().join("state.ron");
    let saved = std::fs::read_to_string(&state_file).expect("state.ron written");
    assert!(saved.contains("bow.vrma"), "{saved}");
    drop(app);

    // The next start reads it into the idle set without playing it.
    let mut app = start();
    assert!(support::update_until(&mut app, limit, |w| w
        .resource::<MotionLibrary>()
        .get("bow")
        .is_some_and(|c| c.role == KEPT)));
    app.world_mut()
        .write_message(EditMotion::Remove("bow".into()));
    app.update();
    assert!(app.world().resource::<MotionLibrary>().get("bow").is_none());
    assert!(app.world().resource::<AppState>().kept_motions.is_empty());
    // The user's settings file is never written for it.
    assert_eq!(std::fs::read_to_string(&settings).expect("settings"), "()");
}
