//! Kargo: `Stage`s and `Warehouse`s promote freight into Argo CD Applications. Not followed
//! yet: each is a note at its own line.

use crate::topology::family::{api_in, name_of, note_at, Family, NoteContext, Notes};

pub struct Kargo;

impl Family for Kargo {
    fn name(&self) -> &'static str {
        "Kargo"
    }

    fn notes(&self, cx: &NoteContext<'_, '_>, out: &mut Notes) {
        for kind in ["Stage", "Warehouse"] {
            for (_, d) in cx.index.of_kind(kind) {
                if api_in(d, "kargo.akuity.io") {
                    note_at(out, d, d.first_line, format!(
                        "Kargo {kind} {}: envfence does not follow Kargo promotions yet, so what it deploys and where is not known",
                        name_of(d)
                    ));
                }
            }
        }
    }
}
