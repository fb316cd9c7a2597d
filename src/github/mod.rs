//! `envfence github`: the pull-request bot (DESIGN §9).
//!
//! Read top-down as a run goes: [`actions`] reads the Actions environment and the event
//! payload, and picks the base revision of the diff-aware scan; [`paths`] makes the report's
//! paths relative to the git repository; [`comment`] finds the bot's one marked comment and
//! creates, updates or resolves it through [`api`], which retries what [`retry`] calls
//! transient. The binary prints the annotations and warnings; nothing here prints.

pub mod actions;
pub mod api;
pub mod comment;
pub mod paths;
pub mod retry;
