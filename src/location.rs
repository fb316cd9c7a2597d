//! Where something is in the repository: a file and line ([`Location`]), and one hop of the
//! evidence chain ([`crate::evidence`] builds on it). Below the topology and the findings,
//! which both point at lines; imports nothing of the crate.

use std::fmt;
use std::sync::Arc;

/// A file and line: where a finding points, or one hop of an evidence chain.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Location {
    /// Repository-relative, `/`-separated.
    pub file: Arc<str>,
    /// 1-based.
    pub line: u32,
    pub end_line: u32,
    /// 1-based column, where known.
    pub column: Option<u32>,
}

impl Location {
    pub fn new(file: &Arc<str>, line: u32) -> Self {
        Location {
            file: Arc::clone(file),
            line,
            end_line: line,
            column: None,
        }
    }

    pub fn with_column(mut self, column: u32) -> Self {
        self.column = Some(column);
        self
    }

    pub fn with_end_line(mut self, end_line: u32) -> Self {
        self.end_line = end_line.max(self.line);
        self
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.file, self.line)?;
        if let Some(col) = self.column {
            write!(f, ":{col}")?;
        }
        Ok(())
    }
}
