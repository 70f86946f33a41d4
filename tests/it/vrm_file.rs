//! VRM parsing on the real Godette avatar (../shared, CC-BY) when present.
use crate::support;

use desktop_mate::avatar::vrm_file::{
    NormalizedVrm, blend_shape_groups, normalize_vrm_bytes, read_glb,
};

#[test]
fn godette_blend_shapes_and_look_at_curves() {
    let Some(path) = support::shared_file("avatars/Godette_vrm_v4.vrm") else {
        eprintln!("../shared/avatars/Godette_vrm_v4.vrm not here; unit tests cover the parser");
        return;
    };
    let bytes = std::fs::read(&path).expect("read");
    let glb = read_glb(&bytes).expect("GLB");
    let groups = blend_shape_groups(&glb.json).expect("VRM 0.x");
    assert_eq!(groups.len(), 17);
    let presets: Vec<&str> = groups.iter().map(|g| g.preset.as_str()).collect();
    for preset in [
        "neutral",
        "a",
        "i",
        "u",
        "e",
        "o",
        "blink",
        "blink_l",
        "blink_r",
        "joy",
        "angry",
        "sorrow",
        "fun",
        "lookup",
        "lookdown",
        "lookleft",
        "lookright",
    ] {
        assert!(presets.contains(&preset), "{preset} in {presets:?}");
    }
    assert!(!presets.contains(&"surprised"));
    let count = |p: &str| groups.iter().find(|g| g.preset == p).map(|g| g.binds.len());
    assert_eq!(count("neutral"), Some(0));
    assert_eq!(count("a"), Some(1));
    assert_eq!(count("blink"), Some(2));
    assert_eq!(count("angry"), Some(4));
    assert!(
        groups
            .iter()
            .flat_map(|g| &g.binds)
            .all(|b| (0.0..=100.0).contains(&b.weight))
    );

    // The exporter's 12-number curves (and the missing one) are fixed, the rest kept.
    let NormalizedVrm {
        bytes: fixed,
        changes,
        groups: normalized_groups,
    } = normalize_vrm_bytes(&bytes).expect("normalize");
    assert_eq!(normalized_groups, groups, "read while normalizing");
    assert_eq!(changes.len(), 3, "{changes:?}");
    let fixed = read_glb(&fixed).expect("still a GLB");
    assert_eq!(fixed.bin, glb.bin);
    for curve in [
        "lookAtHorizontalInner",
        "lookAtHorizontalOuter",
        "lookAtVerticalDown",
        "lookAtVerticalUp",
    ] {
        let len = fixed.json["extensions"]["VRM"]["firstPerson"][curve]["curve"]
            .as_array()
            .map(Vec::len);
        assert_eq!(len, Some(8), "{curve}");
    }
    assert_eq!(blend_shape_groups(&fixed.json).expect("groups"), groups);
}

#[test]
fn default_avatar_file_is_reproduced_by_the_generator() {
    use desktop_mate::avatar::default_avatar::{DEFAULT_AVATAR, DEFAULT_AVATAR_PATH, build};
    let committed =
        std::fs::read(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(DEFAULT_AVATAR_PATH))
            .expect("the committed default avatar");
    assert_eq!(
        committed, DEFAULT_AVATAR,
        "the binary embeds the committed file"
    );
    assert!(
        build() == committed,
        "the generator's output differs from {DEFAULT_AVATAR_PATH}: run \
         `cargo run --example make_default_avatar` and commit the result"
    );
}

#[test]
fn default_avatar_is_valid_gltf_with_humanoid_bones_and_every_preset() {
    use desktop_mate::avatar::default_avatar::{DEFAULT_AVATAR, MORPH_TARGETS};
    use desktop_mate::avatar::expression::{EXPRESSIONS, ExpressionMap, Source};

    // The glTF crate bevy_gltf uses validates the document (accessors, bounds, indices).
    let document = gltf::Gltf::from_slice(DEFAULT_AVATAR).expect("valid glTF 2.0");
    assert_eq!(document.skins().count(), 1);
    let face = document.meshes().nth(1).expect("face mesh");
    assert_eq!(face.name(), Some("Face"));
    for primitive in face.primitives() {
        assert_eq!(primitive.morph_targets().count(), MORPH_TARGETS.len());
    }

    let glb = read_glb(DEFAULT_AVATAR).expect("GLB");
    let changes = normalize_vrm_bytes(DEFAULT_AVATAR)
        .expect("VRM 0.x")
        .changes;
    assert!(
        changes.is_empty(),
        "nothing to fix in our own file: {changes:?}"
    );
    let vrm = &glb.json["extensions"]["VRM"];
    let bones: Vec<&str> = vrm["humanoid"]["humanBones"]
        .as_array()
        .expect("bones")
        .iter()
        .filter_map(|b| b["bone"].as_str())
        .collect();
    // The bones VRM 0.x requires.
    for bone in [
        "hips",
        "spine",
        "chest",
        "neck",
        "head",
        "leftUpperArm",
        "leftLowerArm",
        "leftHand",
        "rightUpperArm",
        "rightLowerArm",
        "rightHand",
        "leftUpperLeg",
        "leftLowerLeg",
        "leftFoot",
        "rightUpperLeg",
        "rightLowerLeg",
        "rightFoot",
    ] {
        assert!(bones.contains(&bone), "{bone} in {bones:?}");
    }
    assert!(
        vrm["materialProperties"]
            .as_array()
            .expect("materials")
            .iter()
            .all(|m| m["shader"] == "VRM/MToon")
    );
    assert_eq!(
        vrm["secondaryAnimation"]["boneGroups"]
            .as_array()
            .map(Vec::len),
        Some(1),
        "the ponytail spring bones"
    );

    let groups = blend_shape_groups(&glb.json).expect("groups");
    assert_eq!(groups.len(), 18);
    let group = |name: &str| groups.iter().find(|g| g.name == name).expect(name);
    assert_eq!(group("Neutral").binds.len(), 0);
    assert_eq!(group("Blink").binds.len(), 2);
    let joy = group("Joy");
    assert_eq!(joy.preset, "joy");
    assert_eq!(
        joy.binds
            .iter()
            .map(|b| (b.mesh, b.index, b.weight))
            .collect::<Vec<_>>(),
        [(1, 2, 100.0), (1, 11, 100.0)]
    );
    // VRM 0.x has no surprised preset: an `unknown` group matched by its name.
    assert_eq!(group("Surprised").preset, "unknown");
    let map = ExpressionMap::from_groups(&groups);
    for expression in EXPRESSIONS {
        assert_eq!(map.source(expression), Source::Own, "{expression:?}");
    }
}

#[test]
fn godette_lacks_surprised_and_gets_the_documented_fallback() {
    use desktop_mate::avatar::expression::{ExpressionMap, Source};
    use desktop_mate::config::Expression;
    let Some(path) = support::shared_file("avatars/Godette_vrm_v4.vrm") else {
        return;
    };
    let glb = read_glb(&std::fs::read(path).expect("read")).expect("GLB");
    let map = ExpressionMap::from_groups(&blend_shape_groups(&glb.json).expect("groups"));
    assert_eq!(
        map.source(Expression::Surprised),
        Source::Fallback(&[Expression::O])
    );
    assert_eq!(map.binds(Expression::Surprised), map.binds(Expression::O));
    assert_eq!(map.source(Expression::Joy), Source::Own);
}
