//! VRM 0.x and 1.0 expressions, overrides, material binds, look-at and file refusals on the
//! real sample avatars of ../shared/avatars (see ../shared/README.md) when present.
use crate::support;

use desktop_mate::avatar::expression::{
    ExpressionMap, MaterialColorType, MaterialValues, MorphBind, OverrideMode, Source,
    TextureTransform, index,
};
use desktop_mate::avatar::look_at::{EyeAngles, LookAtKind, LookAtOutput, LookWeights};
use desktop_mate::avatar::vrm_expression::{VrmExpressions, node_mesh, read_expressions};
use desktop_mate::avatar::vrm_file::{
    Glb, VrmError, VrmVersion, check_external_uris, read_glb, write_glb,
};
use desktop_mate::avatar::vrm_import::{NormalizedVrm, normalize_vrm_bytes};
use desktop_mate::config::Expression;
use serde_json::json;

const GODETTE: &str = "Godette_vrm_v4.vrm";
const IS_BINARY: &str = "VRMC_vrm_expressions_isBinary_Overridden.vrm";
const UV_ANIMATION: &str = "VRMC_materials_mtoon_UV_Animation_Test.vrm";
const BLENDER_VRM1: &str = "blender_expression_migration_vrm1.vrm";
const BLENDER_VRM0: &str = "blender_modifier_shapekey_vrm0.vrm";

/// The bytes of `../shared/avatars/<name>`, or `None` (with a note) on machines without it.
fn avatar(name: &str) -> Option<Vec<u8>> {
    let relative = format!("avatars/{name}");
    let Some(path) = support::shared_file(&relative) else {
        eprintln!("../shared/{relative} not here; skipping");
        return None;
    };
    Some(std::fs::read(&path).expect("read a shared avatar"))
}

fn normalized(name: &str) -> Option<NormalizedVrm> {
    Some(normalize_vrm_bytes(&avatar(name)?).expect(name))
}

fn map_of(name: &str) -> Option<(ExpressionMap, VrmExpressions)> {
    let file = normalized(name)?.expressions;
    Some((ExpressionMap::from_expressions(&file), file))
}

fn angles(eye: EyeAngles) -> [f32; 2] {
    [eye.yaw, eye.pitch]
}

fn close(a: f32, b: f32) -> bool {
    (a - b).abs() < 1e-5
}

fn assert_close<const N: usize>(actual: [f32; N], expected: [f32; N], what: &str) {
    assert!(
        actual.iter().zip(expected).all(|(a, e)| close(*a, e)),
        "{what}: {actual:?} != {expected:?}"
    );
}

/// Shown weights with these presets set.
fn shown(weights: &[(Expression, f32)]) -> [f32; Expression::COUNT] {
    let mut shown = [0.0; Expression::COUNT];
    for &(expression, weight) in weights {
        shown[index(expression)] = weight;
    }
    shown
}

fn resolved(map: &ExpressionMap, weights: &[(Expression, f32)], wanted: Expression) -> f32 {
    map.resolve(&shown(weights))[index(wanted)]
}

#[test]
fn versions_are_detected_and_every_sample_loads() {
    for (name, version, expressions) in [
        (GODETTE, VrmVersion::V0, 17),
        (BLENDER_VRM0, VrmVersion::V0, 13),
        (IS_BINARY, VrmVersion::V1, 2),
        (UV_ANIMATION, VrmVersion::V1, 0),
        (BLENDER_VRM1, VrmVersion::V1, 24),
    ] {
        let Some(bytes) = avatar(name) else {
            return;
        };
        let read = normalize_vrm_bytes(&bytes).expect(name);
        assert_eq!(read.version, version, "{name}");
        assert_eq!(read.expressions.version, version, "{name}");
        assert_eq!(read.expressions.expressions.len(), expressions, "{name}");
        assert!(
            read.expressions.notes.is_empty(),
            "{name}: {:?}",
            read.expressions.notes
        );
        if version == VrmVersion::V1 {
            assert!(
                read.changes.is_empty() && read.bytes == bytes,
                "1.0 passes unchanged"
            );
        }
    }
    assert_eq!(VrmVersion::V0.forward_z(), -1.0);
    assert_eq!(VrmVersion::V1.forward_z(), 1.0);
}

#[test]
fn vrm1_presets_map_onto_ours_and_custom_expressions_keep_their_names() {
    let Some((map, file)) = map_of(BLENDER_VRM1) else {
        return;
    };
    let preset_of = |name: &str| {
        file.expressions
            .iter()
            .find(|e| e.name == name)
            .map(|e| e.preset)
    };
    for (key, ours) in [
        ("happy", Expression::Joy),
        ("angry", Expression::Angry),
        ("sad", Expression::Sorrow),
        ("relaxed", Expression::Fun),
        ("surprised", Expression::Surprised),
        ("neutral", Expression::Neutral),
        ("aa", Expression::A),
        ("ih", Expression::I),
        ("ou", Expression::U),
        ("ee", Expression::E),
        ("oh", Expression::O),
        ("blink", Expression::Blink),
        ("blinkLeft", Expression::BlinkL),
        ("blinkRight", Expression::BlinkR),
        ("lookUp", Expression::LookUp),
        ("lookDown", Expression::LookDown),
        ("lookLeft", Expression::LookLeft),
        ("lookRight", Expression::LookRight),
    ] {
        assert_eq!(preset_of(key), Some(Some(ours)), "{key}");
        assert_eq!(map.source(ours), Source::Own, "{key}");
    }
    let custom: Vec<&str> = map.custom_names().collect();
    assert_eq!(
        custom,
        [
            "custom_a", "custom_b", "custom_c", "custom_d", "custom_e", "custom_f"
        ]
    );
    let custom_a = map.custom("custom_a").expect("custom_a");
    assert_eq!(
        custom_a.morphs,
        [MorphBind {
            mesh: 1,
            index: 1,
            weight: 0.5
        }]
    );
    assert_eq!(custom_a.overrides.look_at, OverrideMode::Block);
    assert_eq!(custom_a.overrides.mouth, OverrideMode::Blend);
    let custom_c = map.custom("custom_c").expect("custom_c");
    assert_eq!(
        custom_c.textures[0].target,
        TextureTransform {
            scale: [2.0, 3.0],
            offset: [0.5, 1.5]
        }
    );
    assert!(map.custom("custom_d").is_some_and(|d| d.is_binary));
}

#[test]
fn vrm1_morph_binds_name_a_node_and_resolve_to_its_mesh() {
    let (Some(is_binary), Some((map, _))) = (avatar(IS_BINARY), map_of(BLENDER_VRM1)) else {
        return;
    };
    let json = read_glb(&is_binary).expect("GLB").json;
    // Nodes 22, 24, 25, 26 hold meshes 0-3; node 0 (Head) none; node 99 does not exist.
    assert_eq!(node_mesh(&json, 22), Some(0));
    assert_eq!(node_mesh(&json, 26), Some(3));
    assert_eq!(node_mesh(&json, 0), None);
    assert_eq!(node_mesh(&json, 99), None);
    // happy: node 1 (Mesh2) -> mesh 1, morph 0 at 0.5; custom_e binds the same target twice.
    assert_eq!(
        map.binds(Expression::Joy),
        [MorphBind {
            mesh: 1,
            index: 0,
            weight: 0.5
        }]
    );
    assert_eq!(map.custom("custom_e").map(|e| e.morphs.len()), Some(2));
}

#[test]
fn morph_weights_are_zero_to_one_for_both_versions() {
    let (Some((godette, _)), Some((vrm0, _)), Some((vrm1, _))) =
        (map_of(GODETTE), map_of(BLENDER_VRM0), map_of(BLENDER_VRM1))
    else {
        return;
    };
    // Godette joy: morphs 9 and 10 of mesh 0 at 50 and 25 (of 100).
    let joy: Vec<(usize, usize, f32)> = godette
        .binds(Expression::Joy)
        .iter()
        .map(|b| (b.mesh, b.index, b.weight))
        .collect();
    assert_eq!(joy, [(0, 9, 0.5), (0, 10, 0.25)]);
    let mut face = [0.0; 15];
    let full_joy = godette.resolve(&shown(&[(Expression::Joy, 1.0)]));
    assert!(godette.morph_weights(&full_joy, 0, &mut face));
    assert_close([face[9], face[10]], [0.5, 0.25], "Godette joy");
    // The Blender 0.x export: a at 100 -> 1; the 1.0 export: happy at 0.5.
    assert_eq!(vrm0.binds(Expression::A)[0].weight, 1.0);
    let mut mesh2 = [0.0; 2];
    let joy = vrm1.resolve(&shown(&[(Expression::Joy, 0.8)]));
    assert!(vrm1.morph_weights(&joy, 1, &mut mesh2));
    assert_close(mesh2, [0.4, 0.0], "1.0 happy at 0.8");
}

#[test]
fn binary_expressions_show_fully_above_one_half_and_not_at_all_below() {
    let (Some((sample, _)), Some((blender, _)), Some((godette, _))) =
        (map_of(IS_BINARY), map_of(BLENDER_VRM1), map_of(GODETTE))
    else {
        return;
    };
    assert!(sample.expression(Expression::Blink).is_binary);
    assert_eq!(
        resolved(&sample, &[(Expression::Blink, 0.5)], Expression::Blink),
        0.0
    );
    assert_eq!(
        resolved(&sample, &[(Expression::Blink, 0.51)], Expression::Blink),
        1.0
    );
    // relaxed (our fun) is binary in the Blender export; happy is not.
    assert_eq!(
        resolved(&blender, &[(Expression::Fun, 0.4)], Expression::Fun),
        0.0
    );
    assert_eq!(
        resolved(&blender, &[(Expression::Fun, 0.6)], Expression::Fun),
        1.0
    );
    assert_eq!(
        resolved(&blender, &[(Expression::Joy, 0.4)], Expression::Joy),
        0.4
    );
    // VRM 0.x isBinary too: Godette's blink_l.
    assert_eq!(
        resolved(&godette, &[(Expression::BlinkL, 0.3)], Expression::BlinkL),
        0.0
    );
    assert_eq!(
        resolved(&godette, &[(Expression::Blink, 0.3)], Expression::Blink),
        0.3
    );
}

#[test]
fn override_none_leaves_blink_mouth_and_look_alone() {
    let Some((map, _)) = map_of(BLENDER_VRM1) else {
        return;
    };
    // happy overrides nothing.
    let weights = [
        (Expression::Joy, 1.0),
        (Expression::Blink, 0.7),
        (Expression::A, 0.6),
        (Expression::LookUp, 0.5),
    ];
    let out = map.resolve(&shown(&weights));
    for (expression, weight) in weights {
        assert_eq!(out[index(expression)], weight, "{expression:?}");
    }
}

#[test]
fn override_block_zeroes_the_category_whenever_the_overrider_shows() {
    let Some((map, _)) = map_of(BLENDER_VRM1) else {
        return;
    };
    // sad: overrideMouth block.
    let mouth = [
        (Expression::Sorrow, 0.01),
        (Expression::A, 0.8),
        (Expression::O, 0.3),
    ];
    let out = map.resolve(&shown(&mouth));
    assert_eq!(
        (out[index(Expression::A)], out[index(Expression::O)]),
        (0.0, 0.0)
    );
    assert_eq!(
        out[index(Expression::Sorrow)],
        0.01,
        "the overrider itself shows"
    );
    // surprised: binary with overrideLookAt block, so it blocks only once it shows (> 0.5).
    let look = |surprised: f32| {
        resolved(
            &map,
            &[
                (Expression::Surprised, surprised),
                (Expression::LookUp, 0.5),
            ],
            Expression::LookUp,
        )
    };
    assert_eq!(look(0.4), 0.5);
    assert_eq!(look(0.6), 0.0);
}

#[test]
fn override_blend_attenuates_by_the_overriders_weight() {
    let (Some((blender, _)), Some((sample, _))) = (map_of(BLENDER_VRM1), map_of(IS_BINARY)) else {
        return;
    };
    // sad: overrideLookAt blend -> lookUp * (1 - 0.25).
    let look = resolved(
        &blender,
        &[(Expression::Sorrow, 0.25), (Expression::LookUp, 0.8)],
        Expression::LookUp,
    );
    assert!(close(look, 0.6), "{look}");
    // The conformance sample: happy blends blink, which is binary, so any effect suppresses it.
    let blink = |happy: f32| {
        resolved(
            &sample,
            &[(Expression::Joy, happy), (Expression::Blink, 1.0)],
            Expression::Blink,
        )
    };
    assert_eq!(blink(0.0), 1.0);
    assert_eq!(blink(0.3), 0.0);
    assert_eq!(blink(1.0), 0.0);
    // relaxed: binary with overrideBlink blend: its 0/1 output is what blends.
    let blink = |relaxed: f32| {
        resolved(
            &blender,
            &[(Expression::Fun, relaxed), (Expression::Blink, 0.8)],
            Expression::Blink,
        )
    };
    assert!(close(blink(0.45), 0.8));
    assert_eq!(blink(0.55), 0.0);
}

fn values_of(values: &[MaterialValues], material: usize) -> &MaterialValues {
    values
        .iter()
        .find(|v| v.material == material)
        .expect("material in the output")
}

/// The sample's meter bars: their UV scale, and UV offsets showing 0, 0.5 and 1.
const METER_SCALE: f32 = 255.0 / 512.0;
const METER_EMPTY: f32 = 513.0 / 1024.0;
const METER_HALF: f32 = 257.0 / 1024.0;
const METER_FULL: f32 = 1.0 / 1024.0;

#[test]
fn texture_transforms_of_the_is_binary_sample() {
    let Some((map, _)) = map_of(IS_BINARY) else {
        return;
    };
    let texture = |weights: &[(Expression, f32)], material: usize| {
        let out = map.material_values(&map.resolve(&shown(weights)));
        assert_eq!(
            out.iter().map(|v| v.material).collect::<Vec<_>>(),
            [0, 2, 3],
            "every bound material, even at rest"
        );
        let values = values_of(&out, material);
        assert!(values.colors.is_empty());
        let t = values.texture.expect("texture transform");
        [t.scale[0], t.scale[1], t.offset[0], t.offset[1]]
    };
    // At rest: the materials' own KHR_texture_transform.
    assert_close(texture(&[], 0), [0.125, 0.125, 0.0, 0.0], "window at rest");
    assert_close(
        texture(&[], 2),
        [METER_SCALE, 0.0, METER_EMPTY, 0.0],
        "happy meter",
    );
    // happy and blink at 1: happy's cell; blink suppressed (binary, blended by happy).
    let both = [(Expression::Joy, 1.0), (Expression::Blink, 1.0)];
    assert_close(
        texture(&both, 0),
        [0.125, 0.125, 0.875, 0.0],
        "window, happy",
    );
    assert_close(
        texture(&both, 2),
        [METER_SCALE, 0.0, METER_FULL, 0.0],
        "happy meter full",
    );
    assert_close(
        texture(&both, 3),
        [METER_SCALE, 0.0, METER_EMPTY, 0.0],
        "blink meter empty",
    );
    // blink alone.
    let blink = [(Expression::Blink, 1.0)];
    assert_close(
        texture(&blink, 0),
        [0.125, 0.125, 0.0, 0.875],
        "window, blink",
    );
    assert_close(
        texture(&blink, 3),
        [METER_SCALE, 0.0, METER_FULL, 0.0],
        "blink meter",
    );
    // Half happy: halfway between base and target.
    let half = [(Expression::Joy, 0.5)];
    assert_close(
        texture(&half, 0),
        [0.125, 0.125, 0.4375, 0.0],
        "window, half happy",
    );
    assert_close(
        texture(&half, 2),
        [METER_SCALE, 0.0, METER_HALF, 0.0],
        "half meter",
    );
}

#[test]
fn material_colors_move_from_the_base_towards_the_target() {
    let Some((map, _)) = map_of(BLENDER_VRM1) else {
        return;
    };
    let colors = |weights: &[(Expression, f32)]| {
        let out = map.material_values(&map.resolve(&shown(weights)));
        assert_eq!(out.len(), 1, "one material");
        let values = values_of(&out, 0).clone();
        let color = |kind| {
            values
                .colors
                .iter()
                .find(|(k, _)| *k == kind)
                .map(|(_, c)| *c)
                .expect("bound color")
        };
        (
            color(MaterialColorType::Color),
            color(MaterialColorType::EmissionColor),
            values.texture,
        )
    };
    // Base: baseColorFactor 0.8 grey, no emissiveFactor (black).
    let (color, emission, texture) = colors(&[]);
    assert_close(color, [0.8, 0.8, 0.8, 1.0], "base color");
    assert_close(emission, [0.0, 0.0, 0.0, 1.0], "base emission");
    assert_eq!(
        texture,
        Some(TextureTransform::default()),
        "relaxed binds identity UVs"
    );
    // sad at 0.5: emission halfway to blue (its alpha is ignored: RGB property).
    let (_, emission, _) = colors(&[(Expression::Sorrow, 0.5)]);
    assert_close(emission, [0.0, 0.0, 0.5, 1.0], "half sad");
    // surprised (binary) at 0.7: the full target color, alpha included.
    let (color, _, _) = colors(&[(Expression::Surprised, 0.7)]);
    assert_close(color, [0.0, 1.0, 1.0, 0.25], "surprised");
}

#[test]
fn vrm0_material_values_become_color_and_texture_binds() {
    let Some(bytes) = avatar(GODETTE) else {
        return;
    };
    // Godette has no material values: give her joy two, the way UniVRM 0.x writes them.
    let mut glb = read_glb(&bytes).expect("GLB");
    let joy = glb
        .json
        .pointer_mut("/extensions/VRM/blendShapeMaster/blendShapeGroups/7")
        .expect("joy group");
    assert_eq!(joy["presetName"], "joy");
    joy["materialValues"] = json!([
        {"materialName": "Face", "propertyName": "_Color", "targetValue": [1, 0, 0, 1]},
        {"materialName": "Body", "propertyName": "_MainTex_ST", "targetValue": [2, 2, 0.5, 0.25]},
        {"materialName": "Body", "propertyName": "_OutlineWidth", "targetValue": [1, 0, 0, 0]},
    ]);
    let file = read_expressions(&glb.json).expect("expressions");
    assert_eq!(
        file.notes.len(),
        1,
        "the unsupported property: {:?}",
        file.notes
    );
    let map = ExpressionMap::from_expressions(&file);
    let out = map.material_values(&map.resolve(&shown(&[(Expression::Joy, 0.5)])));
    // Face _Color: white (its MToon _Color) halfway to red.
    assert_eq!(values_of(&out, 0).colors[0].0, MaterialColorType::Color);
    assert_close(
        values_of(&out, 0).colors[0].1,
        [1.0, 0.5, 0.5, 1.0],
        "face color",
    );
    // Body _MainTex_ST (Unity: scale 2,2 offset 0.5,0.25) -> glTF offset y 1 - 0.25 - 2.
    let t = values_of(&out, 1).texture.expect("body uv");
    assert_close(
        [t.scale[0], t.scale[1], t.offset[0], t.offset[1]],
        [1.5, 1.5, 0.25, -0.625],
        "body uv halfway",
    );
    // Godette's face MToon shade color is the base of a shade bind.
    assert_close(
        file.materials[0].color(MaterialColorType::ShadeColor),
        [0.827, 0.7359541, 0.85, 1.0],
        "face _ShadeColor",
    );
}

#[test]
fn vrm0_look_at_reads_type_ranges_and_full_curves() {
    let (Some(godette), Some(blender)) = (normalized(GODETTE), normalized(BLENDER_VRM0)) else {
        return;
    };
    let look = godette.look_at;
    assert_eq!(
        look.kind,
        LookAtKind::Expression,
        "lookAtTypeName BlendShape"
    );
    assert_close(
        look.offset_from_head,
        [0.0, 0.146, -0.122],
        "firstPersonBoneOffset",
    );
    assert_eq!(
        look.horizontal_outer.curve.len(),
        3,
        "12-number curve kept whole"
    );
    assert!(look.horizontal_inner.curve.is_empty(), "no curve: linear");
    assert_eq!(
        (
            look.horizontal_outer.input_max,
            look.horizontal_outer.output_scale
        ),
        (90.0, 7.1)
    );
    // Down: linear curve, yRange 3.9 -> 9 degrees is 0.39. Up: 18 degrees through the
    // exporter's ease-in curve (0.0296) times yRange 2.9. Right: outer curve at 4.5 degrees.
    let LookAtOutput::Expressions(down) = look.apply(-4.5, 9.0) else {
        panic!("expression look-at");
    };
    assert!(
        close(down.down, 0.39) && down.up == 0.0 && down.left == 0.0,
        "{down:?}"
    );
    assert!(close(down.right, 0.3647693), "{down:?}");
    let up = look.look_weights(0.0, -18.0);
    assert!(close(up.up, 0.0858956), "{up:?}");

    let look = blender.look_at;
    assert_eq!(look.kind, LookAtKind::Bone);
    assert_close(look.offset_from_head, [0.0, 0.0, 0.0], "zero offset");
    let (left, right) = look.eye_angles(45.0, -9.0);
    assert_close(
        angles(left),
        [5.0, -1.0],
        "left eye looking left (outer) and up",
    );
    assert_close(angles(right), [5.0, -1.0], "right eye (inner)");
}

#[test]
fn vrm1_look_at_follows_the_range_maps() {
    let (Some(sample), Some(blender)) = (normalized(IS_BINARY), normalized(BLENDER_VRM1)) else {
        return;
    };
    let look = sample.look_at;
    assert_eq!(look.kind, LookAtKind::Expression);
    assert_close(
        look.offset_from_head,
        [0.0, 0.06, 0.0],
        "offsetFromHeadBone",
    );
    assert_eq!(
        look.apply(45.0, -30.0),
        LookAtOutput::Expressions(LookWeights {
            up: 30.0 / 90.0,
            down: 0.0,
            left: 0.5,
            right: 0.0
        })
    );
    assert_eq!(
        look.look_weights(-200.0, 0.0).right,
        1.0,
        "clamped at inputMaxValue"
    );

    let look = blender.look_at;
    assert_eq!(look.kind, LookAtKind::Bone);
    assert_eq!(
        (look.vertical_up.input_max, look.vertical_up.output_scale),
        (90.0, 10.0)
    );
    // Looking right: inward for the left eye, outward for the right one; down is positive.
    let LookAtOutput::Bones {
        left_eye,
        right_eye,
    } = look.apply(-9.0, 18.0)
    else {
        panic!("bone look-at");
    };
    assert_close(angles(left_eye), [-1.0, 2.0], "left eye");
    assert_close(angles(right_eye), [-1.0, 2.0], "right eye");
}

/// A real avatar with its glTF JSON edited.
fn edited(name: &str, edit: impl FnOnce(&mut serde_json::Value)) -> Option<Vec<u8>> {
    let mut glb: Glb = read_glb(&avatar(name)?).expect("GLB");
    edit(&mut glb.json);
    Some(write_glb(&glb))
}

#[test]
fn uris_outside_the_file_are_refused_before_loading() {
    let Some(bytes) = avatar(GODETTE) else {
        return;
    };
    let relative = edited(GODETTE, |json| {
        json["buffers"][0]["uri"] = json!("../secret.bin");
    });
    assert_eq!(
        normalize_vrm_bytes(&relative.expect("edited")).err(),
        Some(VrmError::ExternalUri {
            kind: "buffer",
            index: 0,
            uri: "../secret.bin".into()
        })
    );
    let message = VrmError::ExternalUri {
        kind: "image",
        index: 3,
        uri: "/dev/zero".into(),
    }
    .to_string();
    assert!(
        message.contains("image 3") && message.contains("/dev/zero"),
        "{message}"
    );
    let json = read_glb(&bytes).expect("GLB").json;
    for uri in [
        json!("file:///etc/passwd"),
        json!("/dev/zero"),
        json!("C:\\Windows\\win.ini"),
        json!("https://example.com/t.png"),
        json!("DATA:image/png;base64,AAAA"),
        json!(42),
    ] {
        let mut json = json.clone();
        json["images"][4]["uri"] = uri.clone();
        assert!(
            matches!(
                check_external_uris(&json),
                Err(VrmError::ExternalUri {
                    kind: "image",
                    index: 4,
                    ..
                })
            ),
            "{uri}"
        );
    }
    let mut embedded = json.clone();
    embedded["images"][4]["uri"] = json!("data:image/png;base64,AAAA");
    assert_eq!(check_external_uris(&embedded), Ok(()));
    assert_eq!(
        check_external_uris(&json),
        Ok(()),
        "bufferView images are fine"
    );
}

#[test]
fn files_without_a_mesh_are_refused() {
    let unplaced = edited(BLENDER_VRM1, |json| {
        for node in json["nodes"].as_array_mut().into_iter().flatten() {
            node.as_object_mut().map(|n| n.remove("mesh"));
        }
    });
    let Some(unplaced) = unplaced else {
        return;
    };
    assert_eq!(normalize_vrm_bytes(&unplaced).err(), Some(VrmError::NoMesh));
    let no_meshes = edited(BLENDER_VRM0, |json| {
        json.as_object_mut().map(|j| j.remove("meshes"));
    });
    assert_eq!(
        normalize_vrm_bytes(&no_meshes.expect("edited")).err(),
        Some(VrmError::NoMesh)
    );
}

#[test]
fn godette_keeps_the_vrm0_fallbacks() {
    let Some((map, _)) = map_of(GODETTE) else {
        return;
    };
    assert_eq!(
        map.source(Expression::Surprised),
        Source::Fallback(&[Expression::O])
    );
    assert_eq!(map.binds(Expression::Surprised), map.binds(Expression::O));
    assert_eq!(map.source(Expression::Joy), Source::Own);
    assert_eq!(map.custom_names().count(), 0);
}
