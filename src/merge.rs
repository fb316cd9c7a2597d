//! `envfence merge`: many JSON reports (schema version 1, one per repository) into one
//! organisation-wide Markdown summary: a row per repository with its counts of unsuppressed
//! findings by severity, how much of it was checked, and its most frequent rules.
//!
//! A report is named after its file: `acme__platform.json` is `acme/platform` (the reusable
//! workflow names each report so, since `/` cannot be part of a file name).

use std::collections::BTreeMap;
use std::fmt::{self, Write as _};
use std::io::{BufReader, Read as _};
use std::path::Path;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};

use crate::output::markdown::escape;

/// The largest report `merge` reads: 512 MiB (a report of a 100,000-object monorepo with a
/// finding on every object is far below this).
pub const MAX_REPORT_SIZE: u64 = 512 << 20;

/// How many rules a row names.
const RULES_SHOWN: usize = 3;

/// One repository's numbers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepositorySummary {
    pub name: String,
    pub errors: usize,
    pub warnings: usize,
    pub notes: usize,
    pub suppressed: usize,
    pub objects: u64,
    pub placed: u64,
    /// Unsuppressed findings per rule, most first.
    pub rules: Vec<(String, usize)>,
}

/// The name a report file stands for: its stem, with `__` read as `/`.
pub fn name_of(path: &Path) -> String {
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    stem.replace("__", "/")
}

/// Reads one JSON report (schema version 1). The error is one line naming the file.
///
/// The report is streamed, never held whole: only the numbers the summary needs are kept
/// (the counts, and a count per rule), so that memory is that of one finding, not of the
/// file (a 500 MB report parsed whole took 8.7 GB).
pub fn read_report(path: &Path) -> anyhow::Result<RepositorySummary> {
    let shown = crate::sanitize::text(&path.display().to_string()).into_owned();
    let file = crate::files::open_regular_file(path, MAX_REPORT_SIZE)
        .map_err(|e| anyhow::anyhow!("cannot read {shown}: {e}"))?;
    // One byte past the cap tells a file that grew since it was opened.
    let mut reader = BufReader::with_capacity(1 << 16, file.take(MAX_REPORT_SIZE + 1));
    let read = {
        let mut json = serde_json::Deserializer::from_reader(&mut reader);
        ReportSeed
            .deserialize(&mut json)
            .and_then(|report| json.end().map(|()| report))
    };
    if reader.get_ref().limit() == 0 {
        let e = crate::files::ReadError::TooLarge {
            size: MAX_REPORT_SIZE + 1,
            cap: MAX_REPORT_SIZE,
        };
        anyhow::bail!("cannot read {shown}: {e}");
    }
    let report = read.map_err(|e| {
        if e.is_io() {
            anyhow::anyhow!("cannot read {shown}: {e}")
        } else {
            anyhow::anyhow!("{shown} is not a JSON report: {e}")
        }
    })?;
    report
        .summary(&name_of(path))
        .map_err(|e| anyhow::anyhow!("{shown}: {e}"))
}

/// The numbers of one parsed report.
pub fn summarise(name: &str, report: &serde_json::Value) -> Result<RepositorySummary, String> {
    ReportSeed
        .deserialize(report)
        .map_err(|e| e.to_string())?
        .summary(name)
}

/// What a report holds that the summary uses, read as it streams by. As `serde_json::Value`
/// reads a report: a key given twice counts its last value, a value of another type than
/// expected counts as absent, and whatever is skipped is still parsed (so a report is
/// refused exactly when it is not JSON).
#[derive(Debug, Default)]
struct Report {
    version: Option<u64>,
    /// `None`: no `findings`, or not a list.
    findings: Option<Findings>,
    objects: Option<u64>,
    placed: Option<u64>,
}

/// The counts of a `findings` list.
#[derive(Debug, Default)]
struct Findings {
    errors: usize,
    warnings: usize,
    notes: usize,
    suppressed: usize,
    rules: BTreeMap<String, usize>,
}

impl Report {
    fn summary(self, name: &str) -> Result<RepositorySummary, String> {
        if self.version != Some(u64::from(crate::output::json::SCHEMA_VERSION)) {
            return Err(format!(
                "not an envfence JSON report of schema version {} (`envfence scan --format json`)",
                crate::output::json::SCHEMA_VERSION
            ));
        }
        let findings = self.findings.ok_or("the report has no findings list")?;
        let mut rules: Vec<(String, usize)> = findings.rules.into_iter().collect();
        rules.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        Ok(RepositorySummary {
            name: name.to_owned(),
            errors: findings.errors,
            warnings: findings.warnings,
            notes: findings.notes,
            suppressed: findings.suppressed,
            objects: self.objects.unwrap_or(0),
            placed: self.placed.unwrap_or(0),
            rules,
        })
    }
}

impl Findings {
    fn count(&mut self, finding: Finding) {
        // A diff-aware report lists fixed findings too: they are no longer there.
        if finding.status.as_deref() == Some("fixed") {
            return;
        }
        if finding.suppressed == Some(true) {
            self.suppressed += 1;
            return;
        }
        match finding.severity.as_deref() {
            Some("error") => self.errors += 1,
            Some("warning") => self.warnings += 1,
            _ => self.notes += 1,
        }
        let rule = finding.rule.unwrap_or_else(|| "unknown".to_owned());
        *self.rules.entry(rule).or_default() += 1;
    }
}

/// The fields of one finding the summary reads.
#[derive(Debug, Default)]
struct Finding {
    status: Option<String>,
    suppressed: Option<bool>,
    severity: Option<String>,
    rule: Option<String>,
}

/// A value of any type, of which only a number, a boolean or a string is kept.
enum Scalar {
    Number(u64),
    Bool(bool),
    Text(String),
    Other,
}

impl Scalar {
    fn number(self) -> Option<u64> {
        match self {
            Scalar::Number(n) => Some(n),
            _ => None,
        }
    }

    fn text(self) -> Option<String> {
        match self {
            Scalar::Text(t) => Some(t),
            _ => None,
        }
    }
}

/// Visitor methods for the types a visitor does not look into: each is `$absent`.
macro_rules! other_types {
    ($absent:expr) => {
        fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
            Ok($absent)
        }
        fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
            Ok($absent)
        }
        fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
            Ok($absent)
        }
        fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
            Ok($absent)
        }
        fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
            Ok($absent)
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok($absent)
        }
    };
}

/// `visit_seq` for a visitor that does not look into lists.
macro_rules! other_lists {
    ($absent:expr) => {
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            while seq.next_element_seed(Skip)?.is_some() {}
            Ok($absent)
        }
    };
}

/// `visit_map` for a visitor that does not look into objects.
macro_rules! other_maps {
    ($absent:expr) => {
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            while map.next_key_seed(Skip)?.is_some() {
                map.next_value_seed(Skip)?;
            }
            Ok($absent)
        }
    };
}

/// Skips a value of any type. Not `IgnoredAny`: serde_json skips that without checking its
/// strings or its nesting, and would take reports that `merge` refused before.
#[derive(Clone, Copy)]
struct Skip;

impl<'de> DeserializeSeed<'de> for Skip {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Skip {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any value")
    }
    other_types!(());
    other_lists!(());
    other_maps!(());
}

/// The index of a key among `self.0`, or `None`.
struct Key(&'static [&'static str]);

impl<'de> DeserializeSeed<'de> for Key {
    type Value = Option<usize>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Option<usize>, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Key {
    type Value = Option<usize>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a key")
    }
    fn visit_str<E: de::Error>(self, key: &str) -> Result<Option<usize>, E> {
        Ok(self.0.iter().position(|k| *k == key))
    }
}

impl<'de> DeserializeSeed<'de> for ScalarSeed {
    type Value = Scalar;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Scalar, D::Error> {
        d.deserialize_any(self)
    }
}

struct ScalarSeed;

impl<'de> Visitor<'de> for ScalarSeed {
    type Value = Scalar;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any value")
    }
    fn visit_bool<E: de::Error>(self, b: bool) -> Result<Scalar, E> {
        Ok(Scalar::Bool(b))
    }
    // `-0` is the number 0, as `Value::as_u64` reads it.
    fn visit_i64<E: de::Error>(self, n: i64) -> Result<Scalar, E> {
        Ok(u64::try_from(n).map_or(Scalar::Other, Scalar::Number))
    }
    fn visit_u64<E: de::Error>(self, n: u64) -> Result<Scalar, E> {
        Ok(Scalar::Number(n))
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Scalar, E> {
        Ok(Scalar::Other)
    }
    fn visit_str<E: de::Error>(self, s: &str) -> Result<Scalar, E> {
        Ok(Scalar::Text(s.to_owned()))
    }
    fn visit_unit<E: de::Error>(self) -> Result<Scalar, E> {
        Ok(Scalar::Other)
    }
    other_lists!(Scalar::Other);
    other_maps!(Scalar::Other);
}

/// A whole report: `None` unless it is an object.
struct ReportSeed;

impl<'de> DeserializeSeed<'de> for ReportSeed {
    type Value = Report;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Report, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for ReportSeed {
    type Value = Report;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a report")
    }
    other_types!(Report::default());
    other_lists!(Report::default());
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Report, A::Error> {
        let mut report = Report::default();
        while let Some(key) = map.next_key_seed(Key(&["version", "findings", "summary"]))? {
            match key {
                Some(0) => report.version = map.next_value_seed(ScalarSeed)?.number(),
                Some(1) => report.findings = map.next_value_seed(FindingsSeed)?,
                Some(2) => {
                    let (objects, placed) = map.next_value_seed(SummarySeed)?;
                    report.objects = objects;
                    report.placed = placed;
                }
                _ => map.next_value_seed(Skip)?,
            }
        }
        Ok(report)
    }
}

/// The `findings` list, counted one finding at a time: `None` unless it is a list.
struct FindingsSeed;

impl<'de> DeserializeSeed<'de> for FindingsSeed {
    type Value = Option<Findings>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Option<Findings>, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for FindingsSeed {
    type Value = Option<Findings>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a list of findings")
    }
    other_types!(None);
    other_maps!(None);
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Option<Findings>, A::Error> {
        let mut findings = Findings::default();
        while let Some(finding) = seq.next_element_seed(FindingSeed)? {
            findings.count(finding);
        }
        Ok(Some(findings))
    }
}

/// One finding; one that is not an object has none of its fields (a note of rule `unknown`).
struct FindingSeed;

impl<'de> DeserializeSeed<'de> for FindingSeed {
    type Value = Finding;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Finding, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for FindingSeed {
    type Value = Finding;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a finding")
    }
    other_types!(Finding::default());
    other_lists!(Finding::default());
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Finding, A::Error> {
        let mut finding = Finding::default();
        while let Some(key) =
            map.next_key_seed(Key(&["status", "suppressed", "severity", "rule"]))?
        {
            let value = if key.is_some() {
                map.next_value_seed(ScalarSeed)?
            } else {
                map.next_value_seed(Skip)?;
                continue;
            };
            match key {
                Some(0) => finding.status = value.text(),
                Some(1) => {
                    finding.suppressed = match value {
                        Scalar::Bool(b) => Some(b),
                        _ => None,
                    }
                }
                Some(2) => finding.severity = value.text(),
                _ => finding.rule = value.text(),
            }
        }
        Ok(finding)
    }
}

/// `summary.coverage`'s `objects` and `placed`.
struct SummarySeed;

impl<'de> DeserializeSeed<'de> for SummarySeed {
    type Value = (Option<u64>, Option<u64>);
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for SummarySeed {
    type Value = (Option<u64>, Option<u64>);
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a summary")
    }
    other_types!((None, None));
    other_lists!((None, None));
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut coverage = (None, None);
        while let Some(key) = map.next_key_seed(Key(&["coverage"]))? {
            match key {
                Some(_) => coverage = map.next_value_seed(CoverageSeed)?,
                None => map.next_value_seed(Skip)?,
            }
        }
        Ok(coverage)
    }
}

/// `coverage`'s `objects` and `placed`.
struct CoverageSeed;

impl<'de> DeserializeSeed<'de> for CoverageSeed {
    type Value = (Option<u64>, Option<u64>);
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for CoverageSeed {
    type Value = (Option<u64>, Option<u64>);
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a coverage")
    }
    other_types!((None, None));
    other_lists!((None, None));
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let (mut objects, mut placed) = (None, None);
        while let Some(key) = map.next_key_seed(Key(&["objects", "placed"]))? {
            match key {
                Some(0) => objects = map.next_value_seed(ScalarSeed)?.number(),
                Some(_) => placed = map.next_value_seed(ScalarSeed)?.number(),
                None => map.next_value_seed(Skip)?,
            }
        }
        Ok((objects, placed))
    }
}

/// The organisation-wide Markdown summary: repositories with errors first, then warnings,
/// then the rest, each group by name.
pub fn render(summaries: &[RepositorySummary]) -> String {
    let mut rows: Vec<&RepositorySummary> = summaries.iter().collect();
    rows.sort_by(|a, b| {
        (b.errors > 0, b.warnings > 0)
            .cmp(&(a.errors > 0, a.warnings > 0))
            .then_with(|| a.name.cmp(&b.name))
    });
    let failing = rows.iter().filter(|r| r.errors > 0).count();
    let mut out = String::new();
    let _ = writeln!(
        out,
        "## envfence: {} repositor{}, {} with errors\n",
        rows.len(),
        if rows.len() == 1 { "y" } else { "ies" },
        failing
    );
    out.push_str(
        "| | repository | errors | warnings | notes | checked | most frequent rules |\n\
         |---|---|---:|---:|---:|---|---|\n",
    );
    let (mut errors, mut warnings, mut notes, mut objects, mut placed) = (0, 0, 0, 0, 0);
    for row in &rows {
        let icon = if row.errors > 0 {
            "❌"
        } else if row.warnings > 0 {
            "⚠️"
        } else if row.objects > 0 && row.placed * 2 >= row.objects {
            "✅"
        } else {
            // Not enough of it was checked to call it clean (as in the pull-request comment).
            "⚪"
        };
        let rules: Vec<String> = row
            .rules
            .iter()
            .take(RULES_SHOWN)
            .map(|(rule, n)| format!("`{}` {n}", escape(rule)))
            .collect();
        let _ = writeln!(
            out,
            "| {icon} | {} | {} | {} | {} | {} of {} objects | {} |",
            escape(&row.name),
            row.errors,
            row.warnings,
            row.notes,
            row.placed,
            row.objects,
            rules.join(", ")
        );
        errors += row.errors;
        warnings += row.warnings;
        notes += row.notes;
        objects += row.objects;
        placed += row.placed;
    }
    let _ = writeln!(
        out,
        "| | **total** | **{errors}** | **{warnings}** | **{notes}** | {placed} of {objects} objects | |"
    );
    let suppressed: usize = rows.iter().map(|r| r.suppressed).sum();
    if suppressed > 0 {
        let _ = writeln!(
            out,
            "\n{suppressed} suppressed finding{} not counted.",
            if suppressed == 1 { "" } else { "s" }
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_stand_for_repositories() {
        assert_eq!(name_of(Path::new("r/acme__platform.json")), "acme/platform");
        assert_eq!(name_of(Path::new("demo.json")), "demo");
    }

    #[test]
    fn counts_skip_fixed_and_suppressed_findings() {
        let report = serde_json::json!({
            "version": 1,
            "findings": [
                {"rule": "a", "severity": "error", "status": "new", "suppressed": false},
                {"rule": "a", "severity": "error", "status": "existing", "suppressed": false},
                {"rule": "b", "severity": "warning", "status": "fixed", "suppressed": false},
                {"rule": "b", "severity": "warning", "status": "new", "suppressed": true},
                {"rule": "c", "severity": "info", "status": "new", "suppressed": false},
            ],
            "summary": {"coverage": {"objects": 10, "placed": 4}}
        });
        let s = summarise("x", &report).expect("valid");
        assert_eq!((s.errors, s.warnings, s.notes, s.suppressed), (2, 0, 1, 1));
        assert_eq!(s.rules, vec![("a".to_owned(), 2), ("c".to_owned(), 1)]);
        assert!(summarise("x", &serde_json::json!({"version": 2})).is_err());
    }

    #[test]
    fn repositories_with_errors_come_first_and_names_are_escaped() {
        let row = |name: &str, errors| RepositorySummary {
            name: name.to_owned(),
            errors,
            warnings: 0,
            notes: 0,
            suppressed: 0,
            objects: 4,
            placed: 4,
            rules: Vec::new(),
        };
        let out = render(&[row("a", 0), row("z|<b>", 2)]);
        let z = out.find("z&#124;&lt;b&gt;").expect("escaped");
        let a = out.find("| ✅ | a |").expect("clean row");
        assert!(z < a, "{out}");
        assert!(out.contains("| | **total** | **2** |"), "{out}");
    }
}
