//! Report paths relative to the git repository. The scan's paths are relative to the folder
//! it was pointed at; GitHub places annotations, comments and code-scanning results by
//! repository path, so a scan of a subfolder gets the subfolder put in front.

use std::path::Path;
use std::sync::Arc;

use crate::scan::ScanReport;

/// The folder `root` as a `/`-separated path inside its git repository's work tree: `None`
/// outside a repository, `Some("")` at its top.
pub fn repository_prefix(root: &Path) -> Option<String> {
    let root = std::fs::canonicalize(root).ok()?;
    let git = crate::git::GitRepo::open(&root).ok()?;
    Some(git.prefix().trim_end_matches('/').to_owned())
}

/// Puts `prefix` (a folder inside the repository) in front of every path of the report's
/// findings: primary locations, evidence and subjects.
pub fn prefix_paths(report: &mut ScanReport, prefix: &str) {
    let prefix = prefix.trim_matches('/');
    if prefix.is_empty() {
        return;
    }
    let join = |file: &Arc<str>| -> Arc<str> { Arc::from(format!("{prefix}/{file}")) };
    for finding in &mut report.findings {
        finding.location.file = join(&finding.location.file);
        for evidence in &mut finding.evidence {
            evidence.location.file = join(&evidence.location.file);
        }
        if let Some((file, _)) = &mut finding.subject {
            *file = join(file);
        }
    }
    // The change per cluster links its objects, deployers, paths and causes the same way.
    for cluster in report
        .changes
        .iter_mut()
        .flat_map(|c| c.clusters.iter_mut())
    {
        for d in &mut cluster.deliveries {
            d.location.file = join(&d.location.file);
        }
        for o in &mut cluster.objects {
            o.location.file = join(&o.location.file);
            for at in o
                .path
                .iter_mut()
                .map(|e| &mut e.location)
                .chain(&mut o.causes)
            {
                at.file = join(&at.file);
            }
        }
    }
}
