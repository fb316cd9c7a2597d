//! Flattening: one walk of a resolved tree, top-down, into the items an expansion places,
//! applying each kustomization's transforms on the way and stopping at the object budget;
//! with every problem of the tree, each reported once.

use crate::topology::HashSet;
use std::sync::Arc;

use crate::budget::BudgetCut;
use crate::evidence::Evidence;
use crate::location::Location;

use super::edit::Edit;
use super::resolve::{Leaf, Part, Resolved, Transform};
use super::{count_text, Expansion, ImageOverride, Item, ItemSource, Problem};

/// Which limit an expansion runs into first.
#[derive(Debug, Clone, Copy)]
pub(super) enum Budget {
    /// `limits.kustomize-objects`.
    Expansion(usize),
    /// What `limits.expanded-objects` has left for the rest of the scan.
    Scan { left: usize, limit: usize },
}

/// The most items [`flatten`] makes room for before it starts; past that the list grows.
const FIRST_ROOM: usize = 4096;

/// The objects of `root` in order, within the budget, with every problem of the
/// kustomizations it reaches (each reported once, however many paths lead to it).
pub(super) fn flatten(
    root: &Resolved,
    dir: &str,
    budget: Budget,
    local_config: &dyn Fn(&ItemSource) -> bool,
) -> Expansion {
    let limit = match budget {
        Budget::Expansion(limit) => limit,
        Budget::Scan { left, .. } => left,
    };
    let mut walk = Flattener {
        limit,
        edited: 0,
        path: Vec::new(),
        inner: false,
        local_config,
        // Room for what the count says, within the limit and a modest start: a count can be
        // far larger than what memory allows to expand.
        items: Vec::with_capacity(
            usize::try_from(root.count)
                .unwrap_or(limit)
                .min(limit)
                .min(FIRST_ROOM),
        ),
        transforms: Vec::new(),
        images: Vec::new(),
        chain: Vec::new(),
        cut_in: None,
    };
    let complete = walk.visit(root, None);
    let mut problems = Vec::new();
    let mut cuts = Vec::new();
    let mut seen = HashSet::default();
    collect_problems(root, &mut seen, &mut problems);
    if let (false, Budget::Scan { left, limit }) = (complete, budget) {
        let (location, what) = match &root.origin {
            Some(origin) => (origin.clone(), format!("kustomization {}", origin.file)),
            None => (
                Location::new(&Arc::from(dir), 1),
                format!("directory {dir}"),
            ),
        };
        cuts.push(BudgetCut::new(
            crate::budget::Budget::ExpandedObjects,
            Some(location.clone()),
            format!(
                "{what} expands to {} objects; the first {} are placed, the rest are not",
                count_text(root.count),
                count_text(left as u64)
            ),
        ));
        problems.push(Problem {
            location,
            reason: format!(
                "{what} expands to {} objects, but only {} of the scan's {} expanded objects are left (limits.expanded-objects): the first {} are placed, the rest are not",
                count_text(root.count),
                count_text(left as u64),
                count_text(limit as u64),
                count_text(left as u64),
            ),
        });
    } else if !complete {
        // Name the outermost kustomization that alone exceeds the limit, else the directory.
        let (location, what, count) = match walk.cut_in {
            Some(k) if k.count > limit as u64 => match &k.origin {
                Some(origin) => (
                    origin.clone(),
                    format!("kustomization {}", origin.file),
                    k.count,
                ),
                None => (
                    Location::new(&Arc::from(dir), 1),
                    format!("directory {dir}"),
                    k.count,
                ),
            },
            _ => match &root.origin {
                Some(origin) => (
                    origin.clone(),
                    format!("kustomization {}", origin.file),
                    root.count,
                ),
                None => (
                    Location::new(&Arc::from(dir), 1),
                    format!("directory {dir}"),
                    root.count,
                ),
            },
        };
        cuts.push(BudgetCut::new(
            crate::budget::Budget::KustomizeObjects,
            Some(location.clone()),
            format!(
                "{what} expands to {} objects; the first {} are placed, the rest are not",
                count_text(count),
                count_text(limit as u64)
            ),
        ));
        problems.push(Problem {
            location,
            reason: format!(
                "{what} expands to {} objects (each path through shared bases counted); the limit is {} (limits.kustomize-objects): the first {} are placed, the rest are not",
                count_text(count),
                count_text(limit as u64),
                count_text(limit as u64),
            ),
        });
    }
    Expansion {
        items: walk.items,
        problems,
        cuts,
    }
}

/// What the level `root` gathers before its own transforms and edits apply, each item with
/// its path below it, at most `limit` of them: `None` past the limit.
pub(super) fn gather(root: &Resolved, limit: usize) -> Option<Vec<Item>> {
    let never = |_: &ItemSource| false;
    let mut walk = Flattener {
        limit,
        items: Vec::new(),
        transforms: Vec::new(),
        edited: 0,
        path: Vec::new(),
        images: Vec::new(),
        chain: Vec::new(),
        cut_in: None,
        inner: true,
        local_config: &never,
    };
    walk.visit(root, None).then_some(walk.items)
}

/// Every problem of `node` and what it includes, each node visited once.
fn collect_problems(node: &Resolved, seen: &mut HashSet<usize>, out: &mut Vec<Problem>) {
    if !seen.insert(std::ptr::from_ref(node) as usize) {
        return;
    }
    out.extend(node.problems.iter().cloned());
    for part in &node.parts {
        if let Part::Nested { inner, .. } = part {
            collect_problems(inner, seen, out);
        }
    }
}

/// Walks a resolved tree top-down, applying the transforms on the way to each object.
struct Flattener<'r> {
    limit: usize,
    items: Vec<Item>,
    /// Transforms of the kustomizations on the current path, outermost first, each with
    /// the depth of [`Flattener::path`] at its node.
    transforms: Vec<(&'r Transform, usize)>,
    /// How many of `transforms` carry edits: the path is only looked at when some do.
    edited: usize,
    /// The position of each part taken on the way down, outermost first: what a level's
    /// edits are keyed by ([`Edits`]), from that level's depth on.
    path: Vec<u32>,
    /// The `images:` overrides on the current path down to each of them, innermost first.
    images: Vec<Option<Arc<[ImageOverride]>>>,
    /// Hops on the current path, outermost first.
    chain: Vec<Evidence>,
    /// The outermost node being walked when the limit was reached.
    cut_in: Option<&'r Resolved>,
    /// The root's own transform and edits are left out (the preparing pass gathers what a
    /// level's edits apply to), and no object is dropped.
    inner: bool,
    /// Objects kustomize never outputs (`config.kubernetes.io/local-config`), by document.
    local_config: &'r dyn Fn(&ItemSource) -> bool,
}

impl<'r> Flattener<'r> {
    /// Returns false once the limit is reached.
    fn visit(&mut self, node: &'r Resolved, outermost: Option<&'r Resolved>) -> bool {
        let outermost = outermost.or(node.origin.as_ref().map(|_| node));
        self.transforms.push((&node.transform, self.path.len()));
        if node.transform.edits.is_some() {
            self.edited += 1;
        }
        let outer = self.images.last().cloned().flatten();
        let own = &node.transform.images;
        self.images.push(match outer {
            _ if own.is_empty() => outer,
            None => Some(Arc::clone(own)),
            Some(outer) => Some(own.iter().chain(outer.iter()).cloned().collect()),
        });
        let mut complete = true;
        for (position, part) in node.parts.iter().enumerate() {
            self.path.push(position as u32);
            match part {
                Part::Object(leaf) => {
                    if self.items.len() >= self.limit {
                        self.cut_in = outermost;
                        complete = false;
                    } else if let Some(item) = self.item(leaf) {
                        self.items.push(item);
                    }
                }
                // An empty base is skipped, so that a walk never wanders through paths that
                // yield nothing (fan-outs of empty bases would be exponential).
                Part::Nested { inner, .. } if inner.count == 0 => {}
                Part::Nested { hop, inner } => {
                    if let Some(hop) = hop {
                        self.chain.push(hop.clone());
                    }
                    complete = self.visit(inner, outermost);
                    if hop.is_some() {
                        self.chain.pop();
                    }
                }
            }
            self.path.pop();
            if !complete {
                break;
            }
        }
        if node.transform.edits.is_some() {
            self.edited -= 1;
        }
        self.transforms.pop();
        self.images.pop();
        complete
    }

    /// The edit of the outermost level that changed this object, with that level's place
    /// among the transforms.
    fn edit(&self) -> Option<(usize, &'r Edit)> {
        if self.edited == 0 {
            return None;
        }
        let first = usize::from(self.inner);
        let root_edits = !self.inner;
        self.transforms
            .iter()
            .enumerate()
            .skip(first)
            .find_map(|(at, (t, depth))| {
                let edits = t.edits.as_deref()?;
                let key = self.path.get(*depth..)?;
                let found = if at == 0 && root_edits {
                    edits.at_root(key)
                } else {
                    edits.at(key)
                };
                found.map(|e| (at, e))
            })
    }

    fn item(&self, leaf: &Leaf) -> Option<Item> {
        let first = usize::from(self.inner);
        let (source, mut namespace, name, upto, hops) = match self.edit() {
            Some((_, e)) if e.deleted => return None,
            Some((at, e)) => (
                ItemSource::Doc(e.doc),
                e.namespace.clone(),
                e.name.clone(),
                // The level's own transforms are in the edit when it came after them.
                if e.after { at } else { at + 1 },
                Some(&e.hops),
            ),
            None => (
                leaf.source.clone(),
                leaf.namespace.clone(),
                None,
                self.transforms.len(),
                None,
            ),
        };
        if !self.inner && (self.local_config)(&source) {
            return None;
        }
        let levels = self.transforms.get(first..upto).unwrap_or(&[]);
        let mut prefix = String::new();
        let mut suffix = String::new();
        for (t, _) in levels {
            prefix.push_str(&t.prefix);
        }
        // Innermost first: outer kustomizations apply last, so their namespace wins.
        for (t, _) in levels.iter().rev() {
            if t.namespace.is_some() {
                namespace.clone_from(&t.namespace);
            }
            suffix.push_str(&t.suffix);
        }
        // Exactly the room the placement's own hops take: these and the object's hop, which
        // placing adds. Grown there, or shrunk when the placement keeps it, the list would be
        // copied (once per placement: 140,000 times at 5,000 apps).
        let mut chain = Vec::with_capacity(
            self.chain.len() + usize::from(leaf.hop.is_some()) + hops.map_or(0, |h| h.len()) + 1,
        );
        chain.extend(self.chain.iter().cloned());
        chain.extend(leaf.hop.iter().cloned());
        if let Some(hops) = hops {
            chain.extend(hops.iter().cloned());
        }
        Some(Item {
            source,
            chain,
            namespace,
            prefix,
            suffix,
            name,
            patch: leaf.patch,
            images: self.images.last().cloned().flatten(),
            origin: leaf.source.clone(),
            path: if self.inner {
                self.path.as_slice().into()
            } else {
                Box::default()
            },
        })
    }
}
