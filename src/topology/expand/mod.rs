//! Expansion: what a folder becomes before it is placed: kustomize (with its `helmCharts`),
//! the Helm engine that renders local charts, and the values a rendered object came from.

pub mod helm;
pub mod helm_values;
pub mod kustomize;
pub mod kustomize_helm;
