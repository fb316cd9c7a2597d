//! envfence keeps non-production workloads out of production.
//!
//! The library reads top-down as the data flows:
//! [`walk`] finds the files → [`documents`] parses them into line-accurate documents →
//! [`topology`] works out which cluster each document lands on → [`rules`] turn them into
//! [`findings`] → [`output`] renders a report. [`scan`] runs the pipeline; [`config`] is the
//! optional `.envfence.yaml`; [`git`] reads revisions from git objects for diff-aware scans;
//! [`github`] is the pull-request bot around a diff-aware scan; [`init`] writes a starter
//! config from the topology; [`merge`] sums many JSON reports into one organisation summary.
//! Library code never prints; the `envfence` binary is thin glue.

#![forbid(unsafe_code)]

pub mod background;
pub mod config;
pub mod documents;
pub mod findings;
pub mod git;
pub mod github;
pub mod init;
pub mod merge;
pub mod output;
pub mod redact;
pub mod rules;
pub mod scan;
pub mod suppressions;
pub mod topology;
pub mod walk;
