//! The inventory: the clusters a repository names, and the URLs that mean this repository.

pub mod clusters;
pub mod repository;
pub mod selector;
