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
//!
//! Imports only go down these layers, lowest first, and never in a circle:
//! 1. [`vocabulary`] (rule ids, severities, tiers, purposes), [`location`] (a file and line),
//!    [`files`] (bounded reads of one file), [`sanitize`] (text safe for a terminal),
//!    [`redact`] (credentials masked) and [`background`], which import nothing of the crate;
//!    then [`evidence`] (typed hops of an evidence chain, and their words) and [`budget`] (the
//!    limits that bound a scan, and the record of one that cut it short);
//! 2. [`documents`];
//! 3. [`config`], then [`walk`] (which leaves out what the config excludes), then [`git`];
//! 4. [`topology`];
//! 5. [`findings`], then [`rules`], then [`suppressions`];
//! 6. [`scan`];
//! 7. [`output`];
//! 8. [`github`], [`init`] and [`merge`]; the `envfence` binary on top.

#![forbid(unsafe_code)]

pub mod background;
pub mod budget;
pub mod config;
pub mod documents;
pub mod evidence;
pub mod files;
pub mod findings;
pub mod git;
pub mod github;
pub mod init;
pub mod location;
pub mod merge;
pub mod output;
pub mod redact;
pub mod rules;
pub mod sanitize;
pub mod scan;
pub mod suppressions;
pub mod topology;
pub mod vocabulary;
pub mod walk;
