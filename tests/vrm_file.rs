//! VRM parsing on the real Godette avatar (../shared, CC-BY) when present.

mod support;

use desktop_mate::avatar::vrm_file::{blend_shape_groups, normalize_vrm_bytes, read_glb};

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
    let (fixed, changes) = normalize_vrm_bytes(&bytes).expect("normalize");
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
