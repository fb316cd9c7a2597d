//! Config Sync (Anthos Config Management): `RootSync`/`RepoSync`, `ClusterSelector`s and
//! hierarchical repositories. Not followed yet: each is a note at its own line, and the
//! folders they sync are named for the coverage report.

use crate::documents::{Document, Node};
use crate::topology::family::{
    api_in, field_text, name_of, note_at, Family, FamilyRoot, NoteContext, Notes,
};
use crate::topology::index;

pub struct ConfigSync;

impl Family for ConfigSync {
    fn name(&self) -> &'static str {
        "Config Sync"
    }

    fn notes(&self, cx: &NoteContext<'_, '_>, out: &mut Notes) {
        let index = cx.index;
        for kind in ["RootSync", "RepoSync"] {
            for (_, d) in index.of_kind(kind) {
                if !api_in(d, "configsync.gke.io") {
                    continue;
                }
                let spec = d.root.get("spec");
                let source = source_of(spec);
                if let Some(dir) = field_text(spec, &["git", "dir"])
                    .and_then(|dir| index::join("", dir, true))
                    .filter(|dir| index.is_dir(dir))
                {
                    out.roots.insert(FamilyRoot {
                        dir,
                        family: "Config Sync",
                    });
                }
                note_at(out, d, d.first_line, format!(
                    "Config Sync {kind} {} syncs {source}; envfence does not follow Config Sync yet, so what it deploys and where is not known",
                    name_of(d)
                ));
            }
        }
        for (_, d) in index.of_kind("ClusterSelector") {
            if api_in(d, "configmanagement.gke.io") {
                note_at(out, d, d.first_line, format!(
                    "Config Sync ClusterSelector {} picks clusters by label; envfence does not evaluate Config Sync selectors yet, so the objects that name it are placed on no cluster",
                    name_of(d)
                ));
            }
        }
        for (_, d) in index.of_kind("Repo") {
            if api_in(d, "configmanagement.gke.io") {
                hierarchical_repository(cx, d, out);
            }
        }
    }
}

/// The hierarchical layout: `<root>/system/repo.yaml` beside `namespaces/` or `cluster/`.
fn hierarchical_repository(cx: &NoteContext<'_, '_>, d: &Document, out: &mut Notes) {
    let system = index::parent(&d.file);
    if index::basename(system) != "system" {
        return;
    }
    let root = index::parent(system);
    let under = |sub: &str| {
        cx.index.is_dir(&if root.is_empty() {
            sub.to_owned()
        } else {
            format!("{root}/{sub}")
        })
    };
    if !(under("namespaces") || under("cluster")) {
        return;
    }
    out.roots.insert(FamilyRoot {
        dir: root.to_owned(),
        family: "Config Sync",
    });
    let shown = if root.is_empty() {
        String::new()
    } else {
        format!("{root}/")
    };
    note_at(out, d, d.first_line, format!(
        "Config Sync hierarchical repository ({shown}namespaces/, {shown}cluster/, {shown}system/): envfence does not follow Config Sync yet, so its objects are placed on no cluster"
    ));
}

/// What a RootSync or RepoSync reads, for its note.
fn source_of(spec: Option<&Node>) -> String {
    match field_text(spec, &["sourceType"]).unwrap_or("git") {
        "oci" => format!(
            "the OCI image {}",
            field_text(spec, &["oci", "image"]).unwrap_or("?")
        ),
        "helm" => format!(
            "the Helm chart {} of {}",
            field_text(spec, &["helm", "chart"]).unwrap_or("?"),
            field_text(spec, &["helm", "repo"]).unwrap_or("?")
        ),
        _ => format!(
            "{} (dir {})",
            field_text(spec, &["git", "repo"]).unwrap_or("?"),
            field_text(spec, &["git", "dir"]).unwrap_or("/")
        ),
    }
}
