//! `impact.json` and `impact.md` of `segflow impact`, and the folder's manifest.

use std::path::Path;

use super::{Templates, write_file, write_json};
use crate::analysis::impact::Impact;
use crate::error::Result;
use crate::run_folder::MANIFEST;
use crate::run_folder::impact::{IMPACT_JSON, IMPACT_MD, ImpactManifest};

/// Write `impact.json` (the whole document) and `impact.md` (a pull-request comment) into `dir`;
/// the files written.
pub fn write_impact(dir: &Path, impact: &Impact, templates: &Templates) -> Result<Vec<String>> {
    write_json(&dir.join(IMPACT_JSON), impact)?;
    let mut text = templates.render("impact.md.j2", &minijinja::context! { impact => impact })?;
    if !text.ends_with('\n') {
        text.push('\n');
    }
    write_file(&dir.join(IMPACT_MD), text.as_bytes())?;
    Ok(vec![IMPACT_JSON.into(), IMPACT_MD.into()])
}

/// Write the impact folder's `manifest.json`.
pub fn write_impact_manifest(dir: &Path, manifest: &ImpactManifest) -> Result<()> {
    write_json(&dir.join(MANIFEST), manifest)
}
