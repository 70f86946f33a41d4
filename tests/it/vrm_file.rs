//! VRM parsing on the real Godette avatar (../shared, CC-BY) when present.
use crate::support;

use desktop_mate::avatar::vrm_expression::read_expressions;
use desktop_mate::avatar::vrm_file::{VrmVersion, read_glb};
use desktop_mate::avatar::vrm_import::{NormalizedVrm, normalize_vrm_bytes};
use desktop_mate::config::Expression;

#[test]
fn godette_blend_shapes_and_look_at_curves() {
    let Some(path) = support::shared_file("avatars/Godette_vrm_v4.vrm") else {
        eprintln!("../shared/avatars/Godette_vrm_v4.vrm not here; unit tests cover the parser");
        return;
    };
    let bytes = std::fs::read(&path).expect("read");
    let glb = read_glb(&bytes).expect("GLB");
    let groups = read_expressions(&glb.json).expect("VRM 0.x");
    assert_eq!(groups.version, VrmVersion::V0);
    let groups = &groups.expressions;
    assert_eq!(groups.len(), 17);
    let presets: Vec<Expression> = groups.iter().filter_map(|g| g.preset).collect();
    for preset in desktop_mate::avatar::expression::EXPRESSIONS {
        if preset == Expression::Surprised {
            assert!(!presets.contains(&preset), "Godette has no surprised");
        } else {
            assert!(presets.contains(&preset), "{preset:?} in {presets:?}");
        }
    }
    let count = |p: Expression| {
        groups
            .iter()
            .find(|g| g.preset == Some(p))
            .map(|g| g.morph_binds.len())
    };
    assert_eq!(count(Expression::Neutral), Some(0));
    assert_eq!(count(Expression::A), Some(1));
    assert_eq!(count(Expression::Blink), Some(2));
    assert_eq!(count(Expression::Angry), Some(4));
    // 0-100 in the file, 0-1 once read.
    assert!(
        groups
            .iter()
            .flat_map(|g| &g.morph_binds)
            .all(|b| (0.0..=1.0).contains(&b.weight))
    );

    // The exporter's 12-number curves (and the missing one) are fixed, the rest kept.
    let NormalizedVrm {
        bytes: fixed,
        changes,
        expressions: normalized,
        ..
    } = normalize_vrm_bytes(&bytes).expect("normalize");
    assert_eq!(&normalized.expressions, groups, "read while normalizing");
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
    assert_eq!(
        &read_expressions(&fixed.json)
            .expect("expressions")
            .expressions,
        groups
    );
}

#[test]
fn default_avatar_file_is_reproduced_by_the_generator() {
    use crate::default_avatar_generator::build;
    use desktop_mate::avatar::default_avatar::{DEFAULT_AVATAR, DEFAULT_AVATAR_PATH};
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

    let expressions = read_expressions(&glb.json).expect("expressions");
    let groups = &expressions.expressions;
    assert_eq!(groups.len(), 18);
    let group = |name: &str| groups.iter().find(|g| g.name == name).expect(name);
    assert_eq!(group("Neutral").morph_binds.len(), 0);
    assert_eq!(group("Blink").morph_binds.len(), 2);
    let joy = group("Joy");
    assert_eq!(joy.preset, Some(Expression::Joy));
    assert_eq!(
        joy.morph_binds
            .iter()
            .map(|b| (b.mesh, b.index, b.weight))
            .collect::<Vec<_>>(),
        [(1, 2, 1.0), (1, 11, 1.0)]
    );
    // VRM 0.x has no surprised preset: an `unknown` group matched by its name.
    assert_eq!(group("Surprised").preset, None);
    let map = ExpressionMap::from_expressions(&expressions);
    for expression in EXPRESSIONS {
        assert_eq!(map.source(expression), Source::Own, "{expression:?}");
    }
}

#[test]
fn godette_lacks_surprised_and_gets_the_documented_fallback() {
    use desktop_mate::avatar::expression::{ExpressionMap, Source};
    let Some(path) = support::shared_file("avatars/Godette_vrm_v4.vrm") else {
        return;
    };
    let glb = read_glb(&std::fs::read(path).expect("read")).expect("GLB");
    let map = ExpressionMap::from_expressions(&read_expressions(&glb.json).expect("expressions"));
    assert_eq!(
        map.source(Expression::Surprised),
        Source::Fallback(&[Expression::O])
    );
    assert_eq!(map.binds(Expression::Surprised), map.binds(Expression::O));
    assert_eq!(map.source(Expression::Joy), Source::Own);
}
