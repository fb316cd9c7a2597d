//! Which objects a kustomize patch target, replacement source or replacement target selects:
//! `group`, `version`, `kind`, `name` and `namespace` as anchored regular expressions, matched
//! against the object's identity as first written or as it stands now (kustomize tries both),
//! and `labelSelector`/`annotationSelector` in Kubernetes' selector syntax.

use std::collections::BTreeMap;

use crate::documents::Node;
use crate::topology::HashMap;

/// A selector as written (`target:`, `select:`, `source:`).
#[derive(Debug, Clone, Default)]
pub(super) struct Selector {
    group: Option<String>,
    version: Option<String>,
    kind: Option<String>,
    name: Option<String>,
    namespace: Option<String>,
    labels: Option<String>,
    annotations: Option<String>,
}

impl Selector {
    pub(super) fn read(node: &Node) -> Selector {
        let text = |k: &str| {
            node.get(k)
                .and_then(Node::as_str)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
        };
        Selector {
            group: text("group"),
            version: text("version"),
            kind: text("kind"),
            name: text("name"),
            namespace: text("namespace"),
            labels: text("labelSelector"),
            annotations: text("annotationSelector"),
        }
    }

    /// The object a strategic-merge patch without a target is for: its own kind, name and
    /// namespace (as literal text), and its API group.
    pub(super) fn of_object(patch: &Node) -> Selector {
        let text = |path: &[&str]| {
            let mut node = patch;
            for key in path {
                node = node.get(key)?;
            }
            node.as_str().map(regex::escape)
        };
        let (group, version) = patch
            .get("apiVersion")
            .and_then(Node::as_str)
            .map(group_version)
            .map_or((None, None), |(g, v)| {
                (Some(regex::escape(g)), Some(regex::escape(v)))
            });
        Selector {
            group,
            version,
            kind: text(&["kind"]),
            name: text(&["metadata", "name"]),
            namespace: text(&["metadata", "namespace"]),
            labels: None,
            annotations: None,
        }
    }

    /// `Deployment/web`, for messages.
    pub(super) fn describe(&self) -> String {
        let mut out = self.kind.clone().unwrap_or_else(|| "*".into());
        if let Some(name) = &self.name {
            out.push('/');
            out.push_str(name);
        }
        out
    }
}

/// An object as a selector sees it.
pub(super) struct Candidate<'a> {
    pub api_version: &'a str,
    pub kind: &'a str,
    /// The name and namespace the object was written with.
    pub original: (&'a str, &'a str),
    /// Its name and namespace now.
    pub current: (&'a str, &'a str),
    pub labels: &'a BTreeMap<String, String>,
    pub annotations: &'a BTreeMap<String, String>,
}

/// Compiled patterns, by their text: a pattern is compiled once per scan.
#[derive(Default)]
pub(super) struct Patterns(HashMap<String, Option<regex::Regex>>);

impl Patterns {
    /// Whether `pattern` matches all of `text` (kustomize anchors its patterns). A pattern
    /// that does not compile matches only itself.
    fn whole(&mut self, pattern: &str, text: &str) -> bool {
        if pattern == text {
            return true;
        }
        let compiled = self.0.entry(pattern.to_owned()).or_insert_with(|| {
            regex::RegexBuilder::new(&format!("^(?:{pattern})$"))
                .size_limit(1 << 20)
                .build()
                .ok()
        });
        compiled.as_ref().is_some_and(|re| re.is_match(text))
    }
}

/// `apps/v1` → (`apps`, `v1`); `v1` → (``, `v1`).
fn group_version(api_version: &str) -> (&str, &str) {
    api_version.split_once('/').unwrap_or(("", api_version))
}

/// Whether the namespace pattern matches `namespace` (none is `default`).
fn namespace_matches(patterns: &mut Patterns, pattern: &str, namespace: &str) -> bool {
    let namespace = if namespace.is_empty() {
        "default"
    } else {
        namespace
    };
    let pattern = if pattern.is_empty() {
        "default"
    } else {
        pattern
    };
    patterns.whole(pattern, namespace)
}

impl Selector {
    /// Whether this selector picks `c`.
    pub(super) fn selects(&self, c: &Candidate<'_>, patterns: &mut Patterns) -> bool {
        let (group, version) = group_version(c.api_version);
        let mut field = |want: &Option<String>, have: &str| {
            want.as_deref().is_none_or(|w| patterns.whole(w, have))
        };
        if !field(&self.group, group) || !field(&self.version, version) {
            return false;
        }
        if !field(&self.kind, c.kind) {
            return false;
        }
        let id_matches = |(name, namespace): (&str, &str), patterns: &mut Patterns| {
            self.name.as_deref().is_none_or(|w| patterns.whole(w, name))
                && self
                    .namespace
                    .as_deref()
                    .is_none_or(|w| namespace_matches(patterns, w, namespace))
        };
        if !id_matches(c.original, patterns) && !id_matches(c.current, patterns) {
            return false;
        }
        let labels_ok = self
            .labels
            .as_deref()
            .is_none_or(|s| label_selector_matches(s, c.labels));
        let annotations_ok = self
            .annotations
            .as_deref()
            .is_none_or(|s| label_selector_matches(s, c.annotations));
        labels_ok && annotations_ok
    }
}

/// Splits a selector on the commas that are not inside `( )`.
fn requirements(selector: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut depth = 0usize;
    let mut start = 0;
    for (i, c) in selector.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth = depth.saturating_sub(1),
            ',' if depth == 0 => {
                out.push(selector[start..i].trim());
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(selector[start..].trim());
    out.into_iter().filter(|r| !r.is_empty()).collect()
}

/// Kubernetes' label selector syntax: `a=b`, `a==b`, `a!=b`, `a in (x,y)`, `a notin (x)`,
/// `a`, `!a`, all of them required.
pub(super) fn label_selector_matches(selector: &str, labels: &BTreeMap<String, String>) -> bool {
    requirements(selector).into_iter().all(|r| {
        let set = |list: &str| -> Vec<String> {
            list.trim()
                .trim_start_matches('(')
                .trim_end_matches(')')
                .split(',')
                .map(|v| v.trim().to_owned())
                .collect()
        };
        if let Some((key, rest)) = r.split_once(" notin ") {
            return labels
                .get(key.trim())
                .is_none_or(|v| !set(rest).contains(v));
        }
        if let Some((key, rest)) = r.split_once(" in ") {
            return labels
                .get(key.trim())
                .is_some_and(|v| set(rest).contains(v));
        }
        if let Some((key, value)) = r.split_once("!=") {
            return labels.get(key.trim()).is_none_or(|v| v != value.trim());
        }
        if let Some((key, value)) = r.split_once("==").or_else(|| r.split_once('=')) {
            return labels.get(key.trim()).is_some_and(|v| v == value.trim());
        }
        match r.strip_prefix('!') {
            Some(key) => !labels.contains_key(key.trim()),
            None => labels.contains_key(r),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn label_selectors() {
        let l = labels(&[("app", "web"), ("tier", "front")]);
        assert!(label_selector_matches("app=web", &l));
        assert!(label_selector_matches("app==web,tier", &l));
        assert!(label_selector_matches("app in (web, api),!debug", &l));
        assert!(label_selector_matches("tier notin (back)", &l));
        assert!(!label_selector_matches("app!=web", &l));
        assert!(!label_selector_matches("app in (api)", &l));
        assert!(!label_selector_matches("debug", &l));
    }

    #[test]
    fn names_match_as_anchored_patterns_on_either_identity() {
        let none = BTreeMap::new();
        let c = Candidate {
            api_version: "apps/v1",
            kind: "Deployment",
            original: ("web", ""),
            current: ("dev-web", "shop"),
            labels: &none,
            annotations: &none,
        };
        let mut p = Patterns::default();
        let sel = |name: &str, ns: Option<&str>| Selector {
            kind: Some("Deployment".into()),
            group: Some("apps".into()),
            name: Some(name.into()),
            namespace: ns.map(str::to_owned),
            ..Selector::default()
        };
        assert!(sel("web", None).selects(&c, &mut p));
        assert!(sel("dev-web", Some("shop")).selects(&c, &mut p));
        assert!(sel("(api|web)", Some("default")).selects(&c, &mut p));
        assert!(!sel("we", None).selects(&c, &mut p));
        // The original name with the current namespace is neither identity.
        assert!(!sel("web", Some("shop")).selects(&c, &mut p));
    }
}
