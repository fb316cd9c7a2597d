//! Budgets: the limits that keep a hostile repository from exhausting memory or time
//! (docs/security.md lists each with its per-item and scan-wide values), and the record of a
//! scan that one of them cut short.
//!
//! A cut is never silent: the part that hit a budget records a [`BudgetCut`], the scan's
//! summary carries them all, every output format says so in its first lines, and the scan
//! exits 3 (DESIGN §7: 2 wins over 3, 3 over 1; `--fail-on never` keeps 0). Imports only
//! [`crate::location`].

use std::fmt;

use crate::location::Location;

/// One budget: what it bounds, by the name users find in docs/security.md and the config.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Budget {
    /// `limits.appset-parameter-sets`: parameter sets one ApplicationSet may yield.
    AppsetParameterSets,
    /// `limits.kustomize-objects`: objects one directory may expand to.
    KustomizeObjects,
    /// `limits.expanded-objects`: objects all expansions of a scan may yield together.
    ExpandedObjects,
    /// `helm template` runs one scan may make.
    HelmRenders,
    /// Time one render, or all renders of a scan together, may take.
    HelmRenderTime,
    /// Memory one `helm template` child may use.
    HelmMemory,
    /// Bytes or objects all renders of a scan may yield together.
    HelmOutput,
    /// Time one Rego evaluation, or all evaluations of a scan together, may take.
    RegoTime,
    /// Memory the Rego evaluations may use.
    RegoMemory,
    /// A Rego evaluation that crashed (a panic or a stack overflow inside the interpreter).
    RegoCrash,
    /// Steps one evaluation of a helmfile template (a helmfile or a values file, for one
    /// environment) may take.
    HelmfileTemplateSteps,
    /// Files one git revision may list (`scan --base`).
    RevisionFiles,
    /// Files the working tree may list.
    WorkingTreeFiles,
    /// Matrix combinations of one CI pipeline job.
    PipelineMatrix,
    /// Shell lines read from one CI pipeline file, each matrix combination counted.
    PipelineLines,
    /// Configs one Skaffold root may deploy, over all its profile runs and `requires`.
    SkaffoldRuns,
}

impl Budget {
    /// The budget's name as docs/security.md and the config spell it.
    pub fn name(self) -> &'static str {
        match self {
            Budget::AppsetParameterSets => "limits.appset-parameter-sets",
            Budget::KustomizeObjects => "limits.kustomize-objects",
            Budget::ExpandedObjects => "limits.expanded-objects",
            Budget::HelmRenders => "helm renders",
            Budget::HelmRenderTime => "helm render time",
            Budget::HelmMemory => "helm memory",
            Budget::HelmOutput => "helm rendered output",
            Budget::RegoTime => "rego evaluation time",
            Budget::RegoMemory => "rego evaluation memory",
            Budget::RegoCrash => "rego evaluation crash",
            Budget::HelmfileTemplateSteps => "helmfile template steps",
            Budget::RevisionFiles => "revision files",
            Budget::WorkingTreeFiles => "working tree files",
            Budget::PipelineMatrix => "pipeline matrix combinations",
            Budget::PipelineLines => "pipeline shell lines",
            Budget::SkaffoldRuns => "skaffold config runs",
        }
    }
}

impl fmt::Display for Budget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A budget that cut a scan short: which, where (when one file is to blame) and what was left
/// out, in one line.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct BudgetCut {
    pub budget: Budget,
    pub location: Option<Location>,
    /// What the budget left out, e.g. "the first 100,000 objects are placed, the rest are not".
    pub detail: String,
}

impl BudgetCut {
    pub fn new(budget: Budget, location: Option<Location>, detail: impl Into<String>) -> Self {
        BudgetCut {
            budget,
            location,
            detail: detail.into(),
        }
    }
}

impl fmt::Display for BudgetCut {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.budget)?;
        if let Some(at) = &self.location {
            write!(f, " at {at}")?;
        }
        write!(f, ": {}", self.detail)
    }
}

/// The cuts of a scan in a stable order, each once (a cut seen by both sides of a diff-aware
/// scan, or by two rounds of rendering, is one cut).
pub fn settle(cuts: &mut Vec<BudgetCut>) {
    cuts.sort();
    cuts.dedup();
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn a_cut_names_its_budget_and_place_in_one_line() {
        let cut = BudgetCut::new(
            Budget::ExpandedObjects,
            Some(Location::new(&Arc::from("apps/kustomization.yaml"), 3)),
            "the first 10 objects are placed, the rest are not",
        );
        assert_eq!(
            cut.to_string(),
            "limits.expanded-objects at apps/kustomization.yaml:3: the first 10 objects are placed, the rest are not"
        );
    }

    #[test]
    fn settled_cuts_are_sorted_and_distinct() {
        let a = BudgetCut::new(Budget::RegoTime, None, "x");
        let b = BudgetCut::new(Budget::AppsetParameterSets, None, "y");
        let mut cuts = vec![a.clone(), b.clone(), a.clone()];
        settle(&mut cuts);
        assert_eq!(cuts, vec![b, a]);
    }
}
