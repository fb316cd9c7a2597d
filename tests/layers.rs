//! The crate's layers hold: a module of the library only refers to modules below it, in the order
//! src/lib.rs's doc comment gives ("Imports only go down these layers"), and inside
//! `src/topology/` the expansions, classifiers and inventory know nothing of the families or the
//! build, and the families know the build only through its `Worklist`.
//!
//! A small scanner reads every `.rs` file of the library (not the binary's `main.rs` and `cli`),
//! leaves out comments, strings and character literals, and expands every `crate::…` path (in
//! `use` trees and in code) and every `super::…`/`self::…` path into the full paths it names.

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};

/// Today's violations, kept until their owners remove them: (file, the path it may still name).
/// Each entry lets only that file name that path (or a path under it); any other violation
/// fails, and so does an entry that no longer matches anything (remove it once its file is
/// fixed).
const KNOWN_VIOLATIONS: &[(&str, &str)] = &[
    // The fake family's unit test (`#[cfg(test)]`) builds a whole topology and draws its graph.
    (
        "src/topology/family/mod.rs",
        "crate::topology::build::build_with_families",
    ),
    (
        "src/topology/family/mod.rs",
        "crate::output::topology::mermaid",
    ),
];

/// The binary crate: `crate::` there is the binary, which sits on top of every layer.
fn is_binary(file: &str) -> bool {
    file == "src/main.rs" || file == "src/cli.rs" || file.starts_with("src/cli/")
}

struct Reference {
    file: String,
    line: usize,
    /// The full path, from the crate root, without the leading `crate`.
    path: Vec<String>,
}

impl Reference {
    fn show(&self) -> String {
        format!(
            "{}:{} → crate::{}",
            self.file,
            self.line,
            self.path.join("::")
        )
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Layer {
    /// The numbered item of lib.rs's list.
    item: usize,
    /// The position after `then`s inside the item; modules of the same item and step are
    /// side by side and may not refer to each other.
    step: usize,
}

/// The layers as src/lib.rs's doc comment lists them: numbered items, lowest first, whose
/// modules are links (`` [`walk`] ``); `then` inside an item orders the modules around it.
fn layers(lib: &str) -> HashMap<String, Layer> {
    let doc: Vec<&str> = lib
        .lines()
        .filter_map(|line| line.strip_prefix("//!"))
        .skip_while(|line| !line.contains("Imports only go down these layers"))
        .skip(1)
        .take_while(|line| !line.trim().is_empty())
        .collect();
    let mut items: Vec<String> = Vec::new();
    for line in doc {
        let trimmed = line.trim();
        let numbered = trimmed
            .split_once(". ")
            .is_some_and(|(number, _)| number.parse::<usize>().is_ok());
        if numbered {
            items.push(String::new());
        }
        let item = items.last_mut().expect("the layer list starts with `1. `");
        item.push(' ');
        item.push_str(trimmed);
    }
    let mut layers = HashMap::new();
    for (index, item) in items.iter().enumerate() {
        let mut step = 0;
        let mut rest = item.as_str();
        let mut first = true;
        while let Some(start) = rest.find("[`") {
            if !first && rest[..start].contains("then") {
                step += 1;
            }
            first = false;
            let after = &rest[start + 2..];
            let end = after.find("`]").expect("a closed module link");
            let module = after[..end].to_string();
            let layer = Layer {
                item: index + 1,
                step,
            };
            assert!(
                layers.insert(module.clone(), layer).is_none(),
                "lib.rs lists `{module}` in two layers"
            );
            rest = &after[end + 2..];
        }
    }
    layers
}

/// `pub mod x;` lines of lib.rs.
fn modules(lib: &str) -> Vec<String> {
    lib.lines()
        .filter_map(|line| line.trim().strip_prefix("pub mod "))
        .map(|rest| rest.trim_end_matches(';').trim().to_string())
        .collect()
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|ext| ext == "rs") {
            out.push(path);
        }
    }
}

/// The module path of a file: `src/topology/build/mod.rs` is `topology::build`.
fn module_of(file: &str) -> Vec<String> {
    let inner = file
        .strip_prefix("src/")
        .unwrap()
        .strip_suffix(".rs")
        .unwrap();
    let mut path: Vec<String> = inner.split('/').map(str::to_string).collect();
    if matches!(path.last().map(String::as_str), Some("mod" | "lib")) {
        path.pop();
    }
    path
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Ident(String),
    Punct(char),
    /// `::`
    Path,
}

/// The file's tokens with their lines; comments, strings and character literals are dropped
/// (lifetimes are kept as an identifier after `'`, which no path starts with).
fn tokens(text: &str) -> Vec<(Token, usize)> {
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let mut line = 1;
    let mut i = 0;
    let at = |i: usize| chars.get(i).copied().unwrap_or('\0');
    while i < chars.len() {
        let c = chars[i];
        if c == '\n' {
            line += 1;
            i += 1;
        } else if c.is_whitespace() {
            i += 1;
        } else if c == '/' && at(i + 1) == '/' {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
        } else if c == '/' && at(i + 1) == '*' {
            let mut depth = 0;
            loop {
                if at(i) == '/' && at(i + 1) == '*' {
                    depth += 1;
                    i += 2;
                } else if at(i) == '*' && at(i + 1) == '/' {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else if i >= chars.len() {
                    break;
                } else {
                    if chars[i] == '\n' {
                        line += 1;
                    }
                    i += 1;
                }
            }
        } else if c == '"' || ((c == 'r' || c == 'b') && is_raw_or_byte_string(&chars, i)) {
            // A string: plain, byte, raw (`r#"…"#`) or raw byte.
            let mut j = i;
            if chars[j] == 'b' {
                j += 1;
            }
            let raw = chars[j] == 'r';
            let mut hashes = 0;
            if raw {
                j += 1;
                while chars[j] == '#' {
                    hashes += 1;
                    j += 1;
                }
            }
            j += 1; // the opening quote
            loop {
                if j >= chars.len() {
                    break;
                }
                let d = chars[j];
                if d == '\n' {
                    line += 1;
                }
                if !raw && d == '\\' {
                    if at(j + 1) == '\n' {
                        line += 1;
                    }
                    j += 2;
                    continue;
                }
                if d == '"' && (0..hashes).all(|k| at(j + 1 + k) == '#') {
                    j += 1 + hashes;
                    break;
                }
                j += 1;
            }
            i = j;
        } else if c == '\'' {
            // A character literal ('x', '\n', '\u{1b}') or a lifetime ('a).
            if at(i + 1) == '\\' {
                let mut j = i + 2;
                while j < chars.len() && !(chars[j] == '\'' && chars[j - 1] != '\\') {
                    j += 1;
                }
                i = j + 1;
            } else if at(i + 2) == '\'' {
                i += 3;
            } else {
                i += 1;
            }
        } else if c.is_alphanumeric() || c == '_' {
            let start = i;
            while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            let word: String = chars[start..i].iter().collect();
            // `$crate` in a macro is not this file's path.
            if start > 0 && chars[start - 1] == '$' {
                out.push((Token::Punct('$'), line));
            } else {
                out.push((Token::Ident(word), line));
            }
        } else if c == ':' && at(i + 1) == ':' {
            out.push((Token::Path, line));
            i += 2;
        } else {
            out.push((Token::Punct(c), line));
            i += 1;
        }
    }
    out
}

fn is_raw_or_byte_string(chars: &[char], i: usize) -> bool {
    if i > 0 && (chars[i - 1].is_alphanumeric() || chars[i - 1] == '_') {
        return false;
    }
    let mut j = i;
    if chars.get(j) == Some(&'b') {
        j += 1;
    }
    if chars.get(j) == Some(&'r') {
        j += 1;
        while chars.get(j) == Some(&'#') {
            j += 1;
        }
    }
    j > i && chars.get(j) == Some(&'"')
}

/// Expands the path tree at `tokens[*pos]` (after a `::`): segments, `{…}` groups, `self`, `*`
/// and `as` aliases. Each full path goes to `out` with the line of its last segment.
fn path_tree(
    tokens: &[(Token, usize)],
    pos: &mut usize,
    prefix: &[String],
    out: &mut Vec<(Vec<String>, usize)>,
) {
    let mut path = prefix.to_vec();
    let mut line = tokens.get(*pos).map_or(0, |t| t.1);
    loop {
        match tokens.get(*pos) {
            Some((Token::Ident(word), at)) => {
                if word != "self" {
                    path.push(word.clone());
                }
                line = *at;
                *pos += 1;
            }
            Some((Token::Punct('{'), _)) => {
                *pos += 1;
                loop {
                    match tokens.get(*pos) {
                        Some((Token::Punct('}'), _)) | None => {
                            *pos += 1;
                            return;
                        }
                        Some((Token::Punct(','), _)) => *pos += 1,
                        _ => {
                            let before = *pos;
                            path_tree(tokens, pos, &path, out);
                            if *pos == before {
                                *pos += 1;
                            }
                        }
                    }
                }
            }
            Some((Token::Punct('*'), _)) => {
                *pos += 1;
                break;
            }
            _ => break,
        }
        if tokens.get(*pos).map(|t| &t.0) == Some(&Token::Path) {
            *pos += 1;
        } else {
            break;
        }
    }
    if tokens.get(*pos).map(|t| &t.0) == Some(&Token::Ident("as".into())) {
        *pos += 2;
    }
    out.push((path, line));
}

/// Every path from the crate root that the file names, with its line. `super::` and `self::` are
/// resolved from the file's module and the inline `mod x { … }` blocks around them.
fn references(file: &str, text: &str) -> Vec<Reference> {
    let tokens = tokens(text);
    let module = module_of(file);
    // Inline modules open around a position: (their name, the brace depth inside them).
    let mut inline: Vec<(String, usize)> = Vec::new();
    let mut depth = 0;
    let mut found = Vec::new();
    let mut i = 0;
    while i < tokens.len() {
        let (token, _) = &tokens[i];
        match token {
            Token::Punct('{') => {
                depth += 1;
                if i >= 2 {
                    if let (Token::Ident(name), Token::Ident(keyword)) =
                        (&tokens[i - 1].0, &tokens[i - 2].0)
                    {
                        if keyword == "mod" {
                            inline.push((name.clone(), depth));
                        }
                    }
                }
                i += 1;
                continue;
            }
            Token::Punct('}') => {
                if inline.last().is_some_and(|(_, d)| *d == depth) {
                    inline.pop();
                }
                depth -= 1;
                i += 1;
                continue;
            }
            _ => {}
        }
        let starts_path = i == 0 || tokens[i - 1].0 != Token::Path;
        let root = match token {
            Token::Ident(word)
                if starts_path && tokens.get(i + 1).map(|t| &t.0) == Some(&Token::Path) =>
            {
                let mut here = module.clone();
                here.extend(inline.iter().map(|(name, _)| name.clone()));
                match word.as_str() {
                    "crate" => Some((Vec::new(), i + 2)),
                    "self" => Some((here, i + 2)),
                    "super" => {
                        let mut j = i;
                        while tokens.get(j).map(|t| &t.0) == Some(&Token::Ident("super".into()))
                            && tokens.get(j + 1).map(|t| &t.0) == Some(&Token::Path)
                        {
                            here.pop();
                            j += 2;
                        }
                        Some((here, j))
                    }
                    _ => None,
                }
            }
            _ => None,
        };
        match root {
            Some((prefix, mut pos)) => {
                let mut paths = Vec::new();
                path_tree(&tokens, &mut pos, &prefix, &mut paths);
                for (path, line) in paths {
                    found.push(Reference {
                        file: file.to_string(),
                        line,
                        path,
                    });
                }
                i = pos.max(i + 1);
            }
            None => i += 1,
        }
    }
    found
}

fn library_references() -> Vec<Reference> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    rust_files(&root.join("src"), &mut files);
    files.sort();
    let mut all = Vec::new();
    for path in files {
        let file = path
            .strip_prefix(root)
            .unwrap()
            .to_string_lossy()
            .replace('\\', "/");
        if is_binary(&file) {
            continue;
        }
        let text = fs::read_to_string(&path).unwrap();
        all.extend(references(&file, &text));
    }
    all
}

fn lib_rs() -> String {
    fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("src/lib.rs")).unwrap()
}

#[test]
fn lib_rs_places_every_module_in_a_layer() {
    let lib = lib_rs();
    let layers = layers(&lib);
    let modules = modules(&lib);
    let unplaced: Vec<&String> = modules
        .iter()
        .filter(|m| !layers.contains_key(*m))
        .collect();
    assert!(
        unplaced.is_empty(),
        "lib.rs's layer list leaves out {unplaced:?}"
    );
    let unknown: Vec<&String> = layers.keys().filter(|m| !modules.contains(m)).collect();
    assert!(
        unknown.is_empty(),
        "lib.rs's layer list names no such module: {unknown:?}"
    );
    // The list as read, so a rewording that the reader misunderstands shows here.
    let layer = |m: &str| layers[m];
    assert_eq!(layer("vocabulary").item, 1);
    assert_eq!(layer("background"), layer("vocabulary"));
    assert!(layer("config").step < layer("walk").step && layer("walk").step < layer("git").step);
    assert!(layer("findings").step < layer("rules").step);
    assert!(layer("rules").step < layer("suppressions").step);
    assert_eq!(layer("github"), layer("merge"));
    assert!(layer("scan").item < layer("output").item);
}

fn allowed(reference: &Reference, (file, target): &(&str, &str)) -> bool {
    let target: Vec<&str> = target.split("::").skip(1).collect();
    *file == reference.file
        && reference.path.len() >= target.len()
        && reference.path.iter().zip(&target).all(|(a, b)| a == b)
}

/// References from a module to one that is not below it in lib.rs's list.
fn layer_violations(references: &[Reference]) -> Vec<(&Reference, String)> {
    let layers = layers(&lib_rs());
    let mut violations = Vec::new();
    for reference in references {
        let from = &module_of(&reference.file)[0];
        let Some(to) = reference.path.first() else {
            continue;
        };
        if from == to {
            continue;
        }
        let (Some(a), Some(b)) = (layers.get(from), layers.get(to)) else {
            continue; // not a module of lib.rs: a path that does not compile
        };
        if (b.item, b.step) >= (a.item, a.step) {
            let why = format!(
                "`{from}` is layer {}.{}, `{to}` is {}.{}",
                a.item, a.step, b.item, b.step
            );
            violations.push((reference, why));
        }
    }
    violations
}

/// The parts of `src/topology/` that `topology::x` names, through mod.rs's `pub use part::{x}`
/// re-exports (`topology::argo` is the families', `topology::build_with` the build's).
fn topology_reexports() -> HashMap<String, String> {
    let text =
        fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("src/topology/mod.rs"))
            .unwrap();
    let mut direct: HashMap<String, String> = HashMap::new();
    for line in text.lines() {
        let Some(used) = line.strip_prefix("pub use ") else {
            continue;
        };
        let Some((part, names)) = used.trim_end_matches(';').split_once("::") else {
            continue;
        };
        for name in names.trim_matches(|c| c == '{' || c == '}').split(',') {
            let name = name.trim();
            if !name.is_empty() && name != "self" {
                direct.insert(name.to_string(), part.to_string());
            }
        }
    }
    // `pub use clusters::{Cluster, …}` where `clusters` is itself `inventory::clusters`.
    let mut resolved = HashMap::new();
    for name in direct.keys() {
        let mut part = &direct[name];
        while let Some(next) = direct.get(part).filter(|next| *next != part) {
            part = next;
        }
        resolved.insert(name.clone(), part.clone());
    }
    resolved
}

/// References inside `src/topology/` from expand, classify or inventory to the families or the
/// build, and from the families to the build other than `build::Worklist`.
fn topology_violations(references: &[Reference]) -> Vec<(&Reference, String)> {
    let reexports = topology_reexports();
    let mut violations = Vec::new();
    for reference in references {
        let from = module_of(&reference.file);
        if from.first().map(String::as_str) != Some("topology") {
            continue;
        }
        let part = from.get(1).map(String::as_str);
        let path: Vec<&str> = reference.path.iter().map(String::as_str).collect();
        let target = match path.as_slice() {
            ["topology", name, ..] => reexports.get(*name).map_or(*name, String::as_str),
            _ => continue,
        };
        let forbidden = match (part, target, path.get(2).copied()) {
            (Some("expand" | "classify" | "inventory"), "family" | "build", _) => true,
            (Some("family"), "build", Some("Worklist")) => false,
            (Some("family"), "build", _) => true,
            _ => false,
        };
        if forbidden {
            let why = format!(
                "`topology::{}` may not name `topology::{target}`",
                part.unwrap()
            );
            violations.push((reference, why));
        }
    }
    violations
}

fn assert_none_new(violations: &[(&Reference, String)], what: &str) {
    let new: Vec<String> = violations
        .iter()
        .filter(|(reference, _)| {
            !KNOWN_VIOLATIONS
                .iter()
                .any(|known| allowed(reference, known))
        })
        .map(|(reference, why)| format!("{} ({why})", reference.show()))
        .collect();
    assert!(new.is_empty(), "{what}:\n{}", new.join("\n"));
}

#[test]
fn modules_only_refer_to_lower_layers() {
    let references = library_references();
    assert_none_new(
        &layer_violations(&references),
        "references that do not go down the layers of src/lib.rs's doc comment",
    );
}

#[test]
fn topology_parts_only_refer_to_lower_parts() {
    let references = library_references();
    assert_none_new(
        &topology_violations(&references),
        "in src/topology/, expand, classify and inventory may not name the families or the \
         build, and the families may name the build only as `build::Worklist`",
    );
}

#[test]
fn every_known_violation_is_still_there() {
    let references = library_references();
    let mut violations = layer_violations(&references);
    violations.extend(topology_violations(&references));
    let gone: Vec<_> = KNOWN_VIOLATIONS
        .iter()
        .filter(|known| {
            !violations
                .iter()
                .any(|(reference, _)| allowed(reference, known))
        })
        .collect();
    assert!(
        gone.is_empty(),
        "fixed; remove from KNOWN_VIOLATIONS: {gone:?}"
    );
}

#[test]
fn the_scanner_reads_paths() {
    let text = r##"
        //! crate::output in a doc comment
        use crate::{documents::Document, topology::{self, build::Worklist}};
        use super::super::family::{argo::*, Root as R};
        fn f<'a>(x: &'a str) -> char {
            let _ = "crate::scan in a string";
            let _ = r#"crate::git "quoted""#;
            /* crate::merge /* nested */ crate::init */
            crate::rules::run(x);
            '"'
        }
        mod tests {
            use super::Helper;
        }
    "##;
    let found: Vec<String> = references("src/topology/expand/kustomize/mod.rs", text)
        .iter()
        .map(|r| format!("{}:{}", r.line, r.path.join("::")))
        .collect();
    assert_eq!(
        found,
        [
            "3:documents::Document",
            "3:topology",
            "3:topology::build::Worklist",
            "4:topology::family::argo",
            "4:topology::family::Root",
            "9:rules::run",
            "13:topology::expand::kustomize::Helper",
        ]
    );
}

#[test]
fn the_checks_catch_what_they_should() {
    let sources = [
        ("src/config.rs", "use crate::walk::Walk;"),
        ("src/walk.rs", "use crate::{config::Config, documents};"),
        ("src/location.rs", "fn f() { crate::files::read(); }"),
        (
            "src/topology/expand/helm/mod.rs",
            "use crate::topology::{argo, index};",
        ),
        ("src/topology/classify/mod.rs", "use super::build_with;"),
        (
            "src/topology/family/flux/mod.rs",
            "use crate::topology::build::Worklist;",
        ),
        (
            "src/topology/family/flux/mod.rs",
            "use super::super::build::placed::Key;",
        ),
        (
            "src/topology/build/mod.rs",
            "use crate::topology::family::Family;",
        ),
    ];
    let references: Vec<Reference> = sources
        .iter()
        .flat_map(|(file, text)| references(file, text))
        .collect();
    let shown = |violations: Vec<(&Reference, String)>| -> Vec<String> {
        violations.iter().map(|(r, _)| r.show()).collect()
    };
    assert_eq!(
        shown(layer_violations(&references)),
        [
            "src/config.rs:1 → crate::walk::Walk",
            "src/location.rs:1 → crate::files::read",
        ]
    );
    assert_eq!(
        shown(topology_violations(&references)),
        [
            "src/topology/expand/helm/mod.rs:1 → crate::topology::argo",
            "src/topology/classify/mod.rs:1 → crate::topology::build_with",
            "src/topology/family/flux/mod.rs:1 → crate::topology::build::placed::Key",
        ]
    );
}
