//! A placement's evidence chain: the hops from the cluster down to the object.

use std::sync::Arc;

use crate::evidence::Evidence;

/// A placement's evidence: the hops its delivery shares with every object it places (one
/// allocation per delivery, not per object), then the object's own hops.
#[derive(Debug, Clone, Default)]
pub struct EvidenceChain {
    shared: Arc<[Evidence]>,
    own: Box<[Evidence]>,
}

impl EvidenceChain {
    pub fn new(shared: Arc<[Evidence]>, own: Vec<Evidence>) -> Self {
        EvidenceChain {
            shared,
            own: own.into_boxed_slice(),
        }
    }

    /// Every hop, outermost first.
    pub fn iter(
        &self,
    ) -> std::iter::Chain<std::slice::Iter<'_, Evidence>, std::slice::Iter<'_, Evidence>> {
        self.shared.iter().chain(self.own.iter())
    }

    pub fn len(&self) -> usize {
        self.shared.len() + self.own.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn to_vec(&self) -> Vec<Evidence> {
        self.iter().cloned().collect()
    }

    /// The hops this placement does not share with the rest of its delivery.
    pub(crate) fn own(&self) -> &[Evidence] {
        &self.own
    }

    /// Adds a hop after the object's own: what decided its class, when that is not on the
    /// way to it (its Namespace's environment label).
    pub(crate) fn push(&mut self, hop: Evidence) {
        let mut own = std::mem::take(&mut self.own).into_vec();
        own.push(hop);
        self.own = own.into_boxed_slice();
    }
}

impl From<Vec<Evidence>> for EvidenceChain {
    fn from(own: Vec<Evidence>) -> Self {
        EvidenceChain {
            shared: Arc::from(Vec::new()),
            own: own.into_boxed_slice(),
        }
    }
}

impl<'a> IntoIterator for &'a EvidenceChain {
    type Item = &'a Evidence;
    type IntoIter =
        std::iter::Chain<std::slice::Iter<'a, Evidence>, std::slice::Iter<'a, Evidence>>;
    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}
