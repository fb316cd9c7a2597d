//! helmfile: `helmfile.yaml`, `helmfile.yaml.gotmpl` and the files beside them. Releases are
//! rendered by helmfile, not yet by envfence: one note per helmfile, and its folder is named
//! for the coverage report.

use crate::documents::SkipReason;
use crate::location::Location;
use crate::topology::family::{Family, FamilyRoot, NoteContext, Notes};
use crate::topology::index;
use crate::topology::Unresolved;

pub struct Helmfile;

const REASON: &str = "helmfile releases are rendered by helmfile; envfence does not render them";

fn is_helmfile(path: &str) -> bool {
    index::basename(path).starts_with("helmfile")
}

impl Family for Helmfile {
    fn name(&self) -> &'static str {
        "helmfile"
    }

    fn notes(&self, cx: &NoteContext<'_, '_>, out: &mut Notes) {
        // A templated helmfile (`.gotmpl`) is skipped as a template: say so at its top.
        for skip in cx.skipped {
            if matches!(skip.reason, SkipReason::Template(_)) && is_helmfile(&skip.rel_path) {
                out.always.push(Unresolved {
                    location: Location::new(&skip.rel_path, 1),
                    reason: REASON.into(),
                });
            }
        }
        for f in cx.files.iter().filter(|f| is_helmfile(&f.path)) {
            if let Some(entry) = f.documents.iter().find_map(|d| d.root.entry("releases")) {
                out.always.push(Unresolved {
                    location: Location::new(&f.path, entry.key.span.start.line),
                    reason: REASON.into(),
                });
            }
        }
        for f in cx.index.files.iter().filter(|f| is_helmfile(&f.path)) {
            out.roots.insert(FamilyRoot {
                dir: index::parent(&f.path).to_owned(),
                family: "helmfile",
            });
        }
    }
}
