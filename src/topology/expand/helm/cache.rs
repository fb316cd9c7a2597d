//! Content keys of renders: a request's inputs (chart files, values, parameters, flags)
//! hashed, so that the same content is rendered once per scan and a diff-aware scan reuses
//! the other side's render of an unchanged chart.

use std::path::Path;

use sha2::{Digest, Sha256};

use crate::topology::expand::helm::runner::confined;
use crate::topology::expand::helm::{RenderRequest, ValuesInput};

/// The hash of everything a render reads: chart folder (its `digest`), value file contents,
/// inline values, parameters, release and namespace.
pub(super) fn content_hash(root: &Path, r: &RenderRequest, digest: &[u8; 32]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(digest);
    h.update(r.chart.as_bytes());
    h.update([0]);
    h.update(r.release.as_bytes());
    h.update([0]);
    h.update(r.namespace.as_deref().unwrap_or("").as_bytes());
    for v in &r.values {
        h.update([1]);
        match v {
            ValuesInput::File(f) => h.update(std::fs::read(root.join(f)).unwrap_or_default()),
            ValuesInput::Inline(text) => h.update(text.as_bytes()),
        }
    }
    for (k, v, s) in &r.set {
        h.update([2, u8::from(*s)]);
        h.update(k.as_bytes());
        h.update([0]);
        h.update(v.as_bytes());
    }
    h.update(format!("{:?}", r.flags).as_bytes());
    h.finalize().into()
}

/// The hash of a chart folder's files (paths and contents, after symlinks), the same for a
/// working tree and a copy read from git; an error when the chart is not confined.
pub(super) fn chart_digest(root: &Path, chart: &str) -> Result<[u8; 32], String> {
    let chart_dir = root.join(chart);
    confined(root, &chart_dir)?;
    let mut h = Sha256::new();
    let walk = walkdir::WalkDir::new(&chart_dir)
        .follow_links(true)
        .sort_by_file_name();
    for entry in walk.into_iter().filter_map(Result::ok) {
        if !entry.file_type().is_file() {
            continue;
        }
        let rel = entry
            .path()
            .strip_prefix(&chart_dir)
            .unwrap_or(entry.path());
        h.update(rel.to_string_lossy().as_bytes());
        h.update([0]);
        let bytes = std::fs::read(entry.path()).map_err(|e| {
            format!(
                "{}: cannot read it ({e}); the chart is not rendered",
                rel.display()
            )
        })?;
        h.update((bytes.len() as u64).to_le_bytes());
        h.update(bytes);
    }
    Ok(h.finalize().into())
}
