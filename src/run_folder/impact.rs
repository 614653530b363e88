//! The folder `segflow impact` writes: `impact.json`, `impact.md` and a manifest saying it is an
//! impact folder, so that `--replace` knows segflow wrote it.

use serde::{Deserialize, Serialize};

/// The impact document.
pub const IMPACT_JSON: &str = "impact.json";
/// The pull-request comment.
pub const IMPACT_MD: &str = "impact.md";
/// `kind` of an impact folder's manifest.
pub const IMPACT_KIND: &str = "impact";

/// `manifest.json` of an impact folder.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ImpactManifest {
    /// segflow's version.
    pub segflow_version: String,
    /// Always `impact`.
    pub kind: String,
    /// The pipeline file (current version).
    pub pipeline_file: String,
    /// The base version: `REF:path` or a file.
    pub base: String,
    /// The as-of date both versions ran at.
    pub as_of: String,
    /// Files written into the folder.
    pub outputs: Vec<String>,
}
