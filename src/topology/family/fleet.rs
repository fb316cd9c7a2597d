//! Rancher Fleet: `GitRepo` objects and `fleet.yaml` bundles. Targets are not read yet: each
//! is a note, and the folders they deploy are named for the coverage report.

use crate::documents::Node;
use crate::location::Location;
use crate::topology::family::{
    api_in, field_text, name_of, note_at, Family, FamilyRoot, NoteContext, Notes,
};
use crate::topology::index;
use crate::topology::Unresolved;

pub struct Fleet;

impl Family for Fleet {
    fn name(&self) -> &'static str {
        "Fleet"
    }

    fn notes(&self, cx: &NoteContext<'_, '_>, out: &mut Notes) {
        let index = cx.index;
        for (_, d) in index.of_kind("GitRepo") {
            if !api_in(d, "fleet.cattle.io") {
                continue;
            }
            let spec = d.root.get("spec");
            let repo = field_text(spec, &["repo"]).unwrap_or("?");
            for path in spec
                .and_then(|s| s.get("paths"))
                .and_then(Node::as_seq)
                .unwrap_or(&[])
                .iter()
                .filter_map(Node::as_str)
                .filter_map(|p| index::join("", p, true))
                .filter(|p| index.is_dir(p))
            {
                out.roots.insert(FamilyRoot {
                    dir: path,
                    family: "Fleet",
                });
            }
            note_at(out, d, d.first_line, format!(
                "Fleet GitRepo {} deploys {repo}; envfence does not read Fleet targets yet, so where it deploys is not known",
                name_of(d)
            ));
        }
        // Bundles: one note each, whatever else was said of the file.
        for f in cx
            .files
            .iter()
            .filter(|f| index::basename(&f.path) == "fleet.yaml")
        {
            out.always.push(Unresolved {
                location: Location::new(&f.path, 1),
                reason: "Fleet bundle: envfence does not read fleet.yaml targets yet, so where Fleet deploys this folder is not known".into(),
            });
        }
        for f in index.files {
            if index::basename(&f.path) == "fleet.yaml" {
                out.roots.insert(FamilyRoot {
                    dir: index::parent(&f.path).to_owned(),
                    family: "Fleet",
                });
            }
        }
    }
}
