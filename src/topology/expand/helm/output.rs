//! Helm's output as placed files: `helm template` output split at each `# Source:` document,
//! each rendered line aligned with the template line it comes from, and an object that only
//! the values name anchored at that values line. Findings on rendered objects point at these
//! lines, so the alignment is kept in one place with its tests.

use std::collections::HashMap;
use std::io::Read;
use std::path::Path;
use std::sync::Arc;

use crate::documents::{self, SourceFile};
use crate::topology::expand::helm::RenderRequest;
use crate::topology::index::{self, DocRef};

/// Work one render's placing may do on top of parsing, in line comparisons (a long line or
/// a scan of a whole template counts as one per 64 bytes): aligning lines with their template
/// and looking for names in the template. Past it, lines stay at the last line aligned and
/// objects at their template: a hostile output (a million lines that match nothing in a
/// 5,000-line template) cannot take minutes. Honest renders use a small fraction of it.
const MAX_PLACING_WORK: u64 = 20_000_000;

/// A template of more lines than this is not aligned with (its objects are at its line 1).
const MAX_TEMPLATE_LINES: usize = 5000;

/// A chunk of more lines than this is not aligned with its template (all at its first line).
const MAX_ALIGNED_LINES: usize = 200_000;

/// The output held more objects than the render may yield.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TooManyObjects;

/// Splits `helm template` output at each `# Source:` document into files placed like
/// manifests: at the template (lines aligned with its text), or at the values-file line that
/// names an object which only the values define.
///
/// `templates` holds the text of the chart's template and CRD files (by path inside the chart)
/// as they were handed to helm: a `# Source:` line is the chart's own output, so the path it
/// names is only looked up there, never opened. One that is not among them (a packaged
/// subchart, or a path with `..`) is placed at the chart's `Chart.yaml`, line 1.
///
/// At most `max_objects` objects: an output with more is refused whole, as soon as it is seen
/// ([`TooManyObjects`]). Public for the bounded fuzz tests of this reader.
pub fn split_output(
    root: &Path,
    r: &RenderRequest,
    text: &str,
    templates: &HashMap<String, String>,
    max_objects: usize,
) -> Result<Vec<SourceFile>, TooManyObjects> {
    let value_files = ValueLines::read(root, r);
    let mut work = Work(MAX_PLACING_WORK);
    let mut prepared: HashMap<&str, Prepared<'_>> = HashMap::new();
    let no_template = Prepared::EMPTY;
    let mut out = Vec::new();
    for chunk in chunks(text) {
        let Some(source) = chunk.source else { continue };
        // `# Source: <chart name>/templates/x.yaml`: the first segment is the chart's name.
        let within = source.split_once('/').map_or(source, |(_, rest)| rest);
        let plain = within
            .split('/')
            .all(|seg| !seg.is_empty() && seg != "." && seg != "..");
        let template_text = templates.get(within).filter(|_| plain);
        let template = match template_text {
            Some(_) => index::join(&r.chart, within, false).unwrap_or_default(),
            // A packaged subchart, or a path the chart made up: point at the chart itself.
            None => format!("{}/Chart.yaml", r.chart)
                .trim_start_matches('/')
                .to_owned(),
        };
        let path: Arc<str> = Arc::from(template.as_str());
        let template = match template_text {
            Some(text) => &*prepared
                .entry(within)
                .or_insert_with(|| Prepared::new(text)),
            None => &no_template,
        };
        let map = align(&chunk.lines, template, &mut work);
        // A trailing newline: a block scalar that ends the input needs its line break.
        let body = format!("{}\n", chunk.lines.join("\n"));
        let Some(file) = documents::load_rendered(&path, &body, &|line| map.line(line)) else {
            continue;
        };
        for doc in split_documents(file) {
            if out.len() >= max_objects {
                return Err(TooManyObjects);
            }
            out.push(anchor_to_values(
                doc,
                template.text,
                &value_files,
                &mut work,
            ));
        }
    }
    Ok(out)
}

/// What is left of [`MAX_PLACING_WORK`].
struct Work(u64);

impl Work {
    /// Takes `amount`; false (and nothing taken) once it is spent.
    fn take(&mut self, amount: usize) -> bool {
        let amount = u64::try_from(amount).unwrap_or(u64::MAX);
        match self.0.checked_sub(amount) {
            Some(left) => {
                self.0 = left;
                true
            }
            None => {
                self.0 = 0;
                false
            }
        }
    }
}

/// A template's lines, trimmed once for every chunk it rendered; none when it has more than
/// [`MAX_TEMPLATE_LINES`] (it is not aligned with).
struct Prepared<'t> {
    text: &'t str,
    /// Each line, trimmed.
    trimmed: Vec<&'t str>,
    /// Each line, trimmed and without a leading `- `.
    keyed: Vec<&'t str>,
}

impl<'t> Prepared<'t> {
    const EMPTY: Prepared<'static> = Prepared {
        text: "",
        trimmed: Vec::new(),
        keyed: Vec::new(),
    };

    fn new(text: &'t str) -> Self {
        if text.lines().nth(MAX_TEMPLATE_LINES).is_some() {
            return Prepared {
                text,
                trimmed: Vec::new(),
                keyed: Vec::new(),
            };
        }
        let trimmed: Vec<&str> = text.lines().map(str::trim).collect();
        let keyed = trimmed.iter().map(|t| t.trim_start_matches("- ")).collect();
        Prepared {
            text,
            trimmed,
            keyed,
        }
    }
}

struct Chunk<'a> {
    source: Option<&'a str>,
    lines: Vec<&'a str>,
}

/// The documents of helm's output, each with the template it came from, one at a time (a
/// huge output is never held as chunks all at once).
fn chunks(text: &str) -> impl Iterator<Item = Chunk<'_>> {
    let mut lines = text.lines().peekable();
    let mut first = true;
    std::iter::from_fn(move || {
        // A chunk starts at the text's start or at a `---` line, and runs to the next `---`.
        if !first {
            lines.next_if(|l| *l == "---")?;
        } else if lines.peek().is_none() {
            return None;
        } else {
            lines.next_if(|l| *l == "---");
        }
        first = false;
        let mut chunk = Chunk {
            source: None,
            lines: Vec::new(),
        };
        while let Some(line) = lines.next_if(|l| *l != "---") {
            if chunk.lines.is_empty() && chunk.source.is_none() {
                if let Some(source) = line.strip_prefix("# Source: ") {
                    chunk.source = Some(source.trim());
                    continue;
                }
            }
            chunk.lines.push(line);
        }
        Some(chunk)
    })
}

/// For each rendered line (from 1), the template line it comes from: rising, so kept as the
/// first rendered line of each run of one template line.
/// A line past the chunk's end is at line 1.
struct LineMap {
    runs: Vec<(u32, u32)>,
    lines: usize,
}

impl LineMap {
    fn line(&self, rendered: u32) -> u32 {
        if rendered == 0 || rendered as usize > self.lines {
            return 1;
        }
        let at = self.runs.partition_point(|&(from, _)| from <= rendered);
        at.checked_sub(1).map_or(1, |i| self.runs[i].1)
    }
}

/// For each rendered line, the template line it most likely comes from: the same text, else
/// the same key, searching forward from the previous match; else the previous match.
fn align(rendered: &[&str], template: &Prepared<'_>, work: &mut Work) -> LineMap {
    let mut runs = vec![(1u32, 1u32)];
    let lines = rendered.len();
    if template.trimmed.is_empty() || lines > MAX_ALIGNED_LINES {
        return LineMap { runs, lines };
    }
    let mut cursor = 0usize;
    let key_of = |line: &str| -> Option<String> {
        let t = line.trim().trim_start_matches("- ");
        let (k, _) = t.split_once(':')?;
        (!k.is_empty() && !k.contains(' ') && !k.contains("{{")).then(|| format!("{k}:"))
    };
    'lines: for (n, line) in rendered.iter().enumerate() {
        let t = line.trim();
        if t.is_empty() {
            continue;
        }
        let mut found = None;
        for (i, candidate) in template.trimmed.iter().enumerate().skip(cursor) {
            // Text of the same length is compared byte by byte.
            let cost = if candidate.len() == t.len() {
                1 + t.len() / 64
            } else {
                1
            };
            if !work.take(cost) {
                break 'lines;
            }
            if *candidate == t {
                found = Some(i);
                break;
            }
        }
        if let (None, Some(key)) = (found, key_of(line)) {
            for (i, candidate) in template.keyed.iter().enumerate().skip(cursor) {
                if !work.take(1 + key.len() / 64) {
                    break 'lines;
                }
                if candidate.starts_with(key.as_str()) {
                    found = Some(i);
                    break;
                }
            }
        }
        if let Some(i) = found {
            cursor = i + 1;
            let from = u32::try_from(n + 1).unwrap_or(u32::MAX);
            runs.push((from, u32::try_from(i + 1).unwrap_or(u32::MAX)));
        }
    }
    LineMap { runs, lines }
}

/// One file per document, so that each can be placed at its own location.
fn split_documents(file: SourceFile) -> Vec<SourceFile> {
    let SourceFile {
        path,
        kind,
        documents,
        problem,
    } = file;
    documents
        .iter()
        .filter(|d| d.is_manifest())
        .map(|d| {
            let mut d = d.clone();
            d.index = 0;
            SourceFile {
                path: Arc::clone(&path),
                kind,
                documents: Arc::new([d]),
                problem: problem.clone(),
            }
        })
        .collect()
}

/// The values files of a render, each line by its text (trimmed, without a leading `- `):
/// where a name is first spelled, the last file first (it wins in helm), so that each object
/// is looked up at once rather than by reading every file again.
struct ValueLines {
    files: Vec<Arc<str>>,
    /// Line text → (index in `files`, line from 1), the earliest of the latest file.
    lines: HashMap<String, (usize, u32)>,
}

impl ValueLines {
    /// A values file larger than this is not read for anchoring.
    const MAX_BYTES: u64 = 16 * 1024 * 1024;

    fn read(root: &Path, r: &RenderRequest) -> Self {
        let files: Vec<Arc<str>> = r.value_files().map(Arc::from).collect();
        let mut lines = HashMap::new();
        for (k, path) in files.iter().enumerate().rev() {
            let mut bytes = Vec::new();
            let read = std::fs::File::open(root.join(&**path))
                .and_then(|f| f.take(Self::MAX_BYTES + 1).read_to_end(&mut bytes));
            if read.is_err() || bytes.len() as u64 > Self::MAX_BYTES {
                continue;
            }
            let text = String::from_utf8(bytes).unwrap_or_default();
            for (i, l) in text.lines().enumerate() {
                let t = l.trim().trim_start_matches("- ");
                let line = u32::try_from(i + 1).unwrap_or(u32::MAX);
                lines.entry(t.to_owned()).or_insert((k, line));
            }
        }
        // Later files first: the smallest rank wins.
        let rank = files.len();
        let lines = lines
            .into_iter()
            .map(|(t, (k, line))| (t, (rank - 1 - k, line)))
            .collect();
        ValueLines { files, lines }
    }

    /// The values line that first spells one of `wanted`, the last file first.
    fn find(&self, wanted: &[String]) -> Option<(Arc<str>, u32)> {
        let (rank, line) = wanted.iter().filter_map(|w| self.lines.get(w)).min()?;
        let file = self.files.get(self.files.len() - 1 - rank)?;
        Some((Arc::clone(file), *line))
    }
}

/// An object whose name the template does not spell but a values file does (one entry of a
/// `range` over the values) is shown at that values line: that is the line to change.
fn anchor_to_values(
    mut file: SourceFile,
    template: &str,
    value_files: &ValueLines,
    work: &mut Work,
) -> SourceFile {
    let Some(name) = file.documents.first().and_then(|d| d.id.name.clone()) else {
        return file;
    };
    if value_files.files.is_empty() || !work.take(1 + template.len() / 64) {
        return file;
    }
    // Whether a line of the template spells the name: a name without line breaks is in a
    // line exactly when it is in the text.
    let spelled = if name.contains(['\n', '\r']) {
        template.lines().any(|l| l.contains(name.as_str()))
    } else {
        template.contains(name.as_str())
    };
    if spelled {
        return file;
    }
    let wanted = [
        format!("name: {name}"),
        format!("name: \"{name}\""),
        format!("name: '{name}'"),
        format!("{name}:"),
        format!("\"{name}\":"),
    ];
    if let Some((path, line)) = value_files.find(&wanted) {
        file.path = Arc::clone(&path);
        for d in Arc::make_mut(&mut file.documents) {
            documents::move_to(d, &path, line);
        }
    }
    file
}

/// The rendered documents of a render, as references.
pub fn rendered_docs(files: &[usize]) -> Vec<DocRef> {
    files.iter().map(|&file| DocRef::new(file, 0)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn helm_output_splits_at_sources() {
        let text = "---\n# Source: web/templates/a.yaml\napiVersion: v1\nkind: ConfigMap\n---\n# Source: web/templates/b.yaml\napiVersion: v1\nkind: Service\n";
        let c: Vec<Chunk<'_>> = chunks(text).collect();
        assert_eq!(c.len(), 2);
        assert_eq!(c[0].source, Some("web/templates/a.yaml"));
        assert_eq!(c[1].lines, vec!["apiVersion: v1", "kind: Service"]);
    }

    #[test]
    fn lines_align_with_the_template() {
        let template = [
            "apiVersion: v1",
            "kind: ConfigMap",
            "metadata:",
            "  name: {{ .Release.Name }}",
            "data:",
            "  url: {{ .Values.url }}",
        ];
        let rendered = [
            "apiVersion: v1",
            "kind: ConfigMap",
            "metadata:",
            "  name: web",
            "data:",
            "  url: https://x",
        ];
        let text = template.join("\n");
        let template = Prepared::new(&text);
        let map = align(&rendered, &template, &mut Work(MAX_PLACING_WORK));
        let lines: Vec<u32> = (1..=6).map(|n| map.line(n)).collect();
        assert_eq!(lines, vec![1, 2, 3, 4, 5, 6]);
        assert_eq!(map.line(7), 1, "past the end");
    }

    /// Once the work is spent, lines stay where the last match left them.
    #[test]
    fn alignment_stops_when_its_work_is_spent() {
        let template = ["a: 1", "b: 2", "c: 3"];
        let rendered = ["a: 1", "b: 2", "c: 3"];
        let text = template.join("\n");
        let template = Prepared::new(&text);
        let map = align(&rendered, &template, &mut Work(1));
        let lines: Vec<u32> = (1..=3).map(|n| map.line(n)).collect();
        assert_eq!(lines, vec![1, 1, 1]);
    }
}
