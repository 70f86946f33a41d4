//! A VRM file as the app imports it: checked ([`super::vrm_file`]'s refusals), its expressions
//! and look-at read, and its bytes made ready for bevy_vrm.

use super::look_at::LookAt;
use super::vrm_expression::{VrmExpressions, read_expressions};
use super::vrm_file::{
    VrmError, VrmVersion, check_external_uris, check_has_mesh, check_texture_sizes, normalize_vrm0,
    read_glb, vrm_version, write_glb,
};

/// A VRM file checked and made ready for bevy_vrm, with what the app drives itself.
#[derive(Debug, Clone, PartialEq)]
pub struct NormalizedVrm {
    pub bytes: Vec<u8>,
    pub version: VrmVersion,
    /// What was changed, for the log.
    pub changes: Vec<String>,
    /// Its expressions (both versions in one shape), read while the JSON is parsed anyway.
    pub expressions: VrmExpressions,
    /// Its look-at settings.
    pub look_at: LookAt,
}

/// Reads a VRM 0.x or 1.0 file: refuses external uris and mesh-less files, reads expressions
/// and look-at, and returns the bytes ready for bevy_vrm (0.x normalized, 1.0 unchanged).
pub fn normalize_vrm_bytes(bytes: &[u8]) -> Result<NormalizedVrm, VrmError> {
    let mut glb = read_glb(bytes)?;
    check_external_uris(&glb.json)?;
    check_texture_sizes(&glb)?;
    let version = vrm_version(&glb.json)?;
    check_has_mesh(&glb.json)?;
    let expressions = read_expressions(&glb.json)?;
    let look_at = LookAt::read(&glb.json)?;
    let changes = match version {
        VrmVersion::V0 => normalize_vrm0(&mut glb.json),
        VrmVersion::V1 => Vec::new(),
    };
    let bytes = if changes.is_empty() {
        bytes.to_vec()
    } else {
        write_glb(&glb)
    };
    Ok(NormalizedVrm {
        bytes,
        version,
        changes,
        expressions,
        look_at,
    })
}
