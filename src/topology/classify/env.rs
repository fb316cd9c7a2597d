//! Environment words: deciding from a name whether it means production or not (DESIGN §3).
//!
//! Names are split into tokens on `-` `_` `.` `/` `:`, white space and case changes, and
//! matched as whole tokens, so `product`, `latest`, `devops` and `contest` mean nothing, while
//! `checkout-prod`, `prodEu` and `pr-123` do. Compounds (`non-prod`, `pre-production`,
//! `load-test`, ...) are matched first: `preprod` is non-production, not production.

use std::sync::Arc;

use compact_str::{format_compact, CompactString};
use serde::Serialize;

use crate::topology::Remembered;

/// The environment of a cluster, or the class of a workload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum Env {
    Production,
    NonProduction,
    #[default]
    Unknown,
}

impl Env {
    pub fn as_str(self) -> &'static str {
        match self {
            Env::Production => "production",
            Env::NonProduction => "non-production",
            Env::Unknown => "unknown",
        }
    }
}

impl std::fmt::Display for Env {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

const PRODUCTION: &[&str] = &["prod", "production", "prd", "live"];
const NON_PRODUCTION: &[&str] = &[
    "dev",
    "develop",
    "development",
    "test",
    "tests",
    "testing",
    "qa",
    "uat",
    "int",
    "integration",
    "e2e",
    "stg",
    "stage",
    "staging",
    "sandbox",
    "preview",
    "review",
    "ephemeral",
    "feature",
    "feat",
    "perf",
    "smoke",
    // Single-token spellings of the compounds.
    "nonprod",
    "preprod",
    "loadtest",
    "nonproduction",
    "preproduction",
];
/// Two-token compounds, all non-production.
const COMPOUNDS: &[(&str, &str)] = &[
    ("non", "prod"),
    ("non", "production"),
    ("pre", "prod"),
    ("pre", "production"),
    ("load", "test"),
    ("perf", "test"),
    ("smoke", "test"),
];

/// The environment words in force: the built-in ones plus the config's `environments.*.words`.
#[derive(Debug, Clone, Default)]
pub struct Vocabulary {
    extra_production: Vec<String>,
    extra_non_production: Vec<String>,
    /// Verdicts of [`Vocabulary::classify_workload`] already given: the same namespaces,
    /// labels and folder names recur on thousands of placements. Clones share it, as they
    /// share the words.
    workload_verdicts: Arc<Remembered<Option<WordMatch>>>,
}

/// A name's verdict and the token that decided it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WordMatch {
    pub env: Env,
    /// Short: kept inline, so that a remembered verdict is copied without allocating.
    pub token: compact_str::CompactString,
}

/// Splits a name into lower-case tokens.
pub fn tokens(name: &str) -> Vec<CompactString> {
    if name.is_ascii() {
        ascii_tokens(name)
    } else {
        unicode_tokens(name)
    }
}

fn unicode_tokens(name: &str) -> Vec<CompactString> {
    // Words are short: each stays inline, and the list rarely outgrows its first room.
    let mut out = Vec::with_capacity(8);
    let mut current = CompactString::default();
    let mut prev: Option<char> = None;
    for c in name.chars() {
        if is_separator(c) {
            if !current.is_empty() {
                out.push(std::mem::take(&mut current));
            }
            prev = None;
            continue;
        }
        // Case change: `prodEu` → `prod`, `eu`; digits after letters stay (`pr123`).
        if let Some(p) = prev {
            if p.is_lowercase() && c.is_uppercase() && !current.is_empty() {
                out.push(std::mem::take(&mut current));
            }
        }
        current.extend(c.to_lowercase());
        prev = Some(c);
    }
    if !current.is_empty() {
        out.push(current);
    }
    out
}

fn is_separator(c: char) -> bool {
    matches!(
        c,
        '-' | '_' | '.' | '/' | ':' | ' ' | '\t' | '@' | '=' | ',' | '"' | '\''
    )
}

/// [`tokens`] of an ASCII name (nearly every name): each token is cut from the name and
/// lower-cased once, instead of being built a character at a time.
fn ascii_tokens(name: &str) -> Vec<CompactString> {
    let mut out = Vec::with_capacity(8);
    let push = |out: &mut Vec<CompactString>, token: &str| {
        let mut token = CompactString::from(token);
        token.make_ascii_lowercase();
        out.push(token);
    };
    let mut start: Option<usize> = None;
    let mut prev_lower = false;
    for (i, b) in name.bytes().enumerate() {
        if is_separator(char::from(b)) {
            if let Some(s) = start.take() {
                push(&mut out, &name[s..i]);
            }
            prev_lower = false;
            continue;
        }
        match start {
            Some(s) if prev_lower && b.is_ascii_uppercase() => {
                push(&mut out, &name[s..i]);
                start = Some(i);
            }
            Some(_) => {}
            None => start = Some(i),
        }
        prev_lower = b.is_ascii_lowercase();
    }
    if let Some(s) = start {
        push(&mut out, &name[s..]);
    }
    out
}

impl Vocabulary {
    /// The built-in words and the config's `environments.*.words`.
    pub fn new(extra_production: Vec<String>, extra_non_production: Vec<String>) -> Self {
        Vocabulary {
            extra_production,
            extra_non_production,
            workload_verdicts: Arc::default(),
        }
    }

    /// What `name` says about its environment. Production and non-production words in one
    /// name resolve to production, the fail-safe for clusters; `None` when it says nothing.
    pub fn classify(&self, name: &str) -> Option<WordMatch> {
        self.classify_tokens(&tokens(name))
    }

    /// [`Vocabulary::classify`] of a name's words ([`tokens`]).
    fn classify_tokens(&self, toks: &[CompactString]) -> Option<WordMatch> {
        let mut prod: Option<CompactString> = None;
        let mut nonprod: Option<CompactString> = None;
        let mut skip_next = false;
        for (i, tok) in toks.iter().enumerate() {
            if skip_next {
                skip_next = false;
                continue;
            }
            if let Some(next) = toks.get(i + 1) {
                if COMPOUNDS.iter().any(|(a, b)| tok == a && next == b) {
                    nonprod.get_or_insert_with(|| format_compact!("{tok}-{next}"));
                    skip_next = true;
                    continue;
                }
            }
            // `dev-team`, `qa-teams`: a team's name, not an environment; `testing-tools`,
            // `qa-tooling`: tools the testers use (report dashboards), not a test.
            if toks
                .get(i + 1)
                .is_some_and(|next| matches!(next.as_str(), "team" | "teams" | "tools" | "tooling"))
            {
                continue;
            }
            if self.is_production(tok) {
                prod.get_or_insert_with(|| tok.clone());
            } else if self.is_non_production(tok) || is_pull_request(tok, toks.get(i + 1)) {
                let token = match toks.get(i + 1) {
                    Some(n) if tok == "pr" => format_compact!("pr-{n}"),
                    _ => tok.clone(),
                };
                nonprod.get_or_insert(token);
            }
        }
        match (prod, nonprod) {
            (Some(token), _) => Some(WordMatch {
                env: Env::Production,
                token,
            }),
            (None, Some(token)) => Some(WordMatch {
                env: Env::NonProduction,
                token,
            }),
            (None, None) => None,
        }
    }

    /// Like [`Vocabulary::classify`], but a name with both kinds of word is non-production:
    /// for a workload's own name, `feature-prod-fix` is a feature.
    pub fn classify_workload(&self, name: &str) -> Option<WordMatch> {
        self.workload_verdicts
            .get(name, || self.classify_workload_anew(name))
    }

    /// [`Vocabulary::classify_workload`] without remembering the answer: for a name that
    /// seldom recurs (a deployer's own name, one per Application), where remembering costs
    /// more than working it out.
    pub fn classify_workload_anew(&self, name: &str) -> Option<WordMatch> {
        if !name.is_ascii() {
            return self.classify_workload_text(name);
        }
        // An ASCII name's words are lowercase and hold no separator, so the words of them
        // joined by `-` are the same words: each step reads them, not a text made of them.
        let mut toks = tokens(name);
        neutralise_product_nouns(&mut toks);
        let verdict = self.classify_tokens(&toks)?;
        if verdict.env == Env::Production {
            toks.retain(|t| !self.is_production(t));
            if let Some(np) = self.classify_tokens(&toks) {
                if np.env == Env::NonProduction {
                    return Some(np);
                }
            }
        }
        Some(verdict)
    }

    /// [`Vocabulary::classify_workload`] of any name, through the texts of its words.
    fn classify_workload_text(&self, name: &str) -> Option<WordMatch> {
        let name = &without_product_nouns(name);
        let verdict = self.classify(name)?;
        if verdict.env == Env::Production {
            let without: Vec<CompactString> = tokens(name)
                .into_iter()
                .filter(|t| !self.is_production(t))
                .collect();
            if let Some(np) = self.classify(&without.join("-")) {
                if np.env == Env::NonProduction {
                    return Some(np);
                }
            }
        }
        Some(verdict)
    }

    fn is_production(&self, tok: &str) -> bool {
        PRODUCTION.contains(&tok)
            || self
                .extra_production
                .iter()
                .any(|w| w.eq_ignore_ascii_case(tok))
    }

    fn is_non_production(&self, tok: &str) -> bool {
        NON_PRODUCTION.contains(&tok)
            || self
                .extra_non_production
                .iter()
                .any(|w| w.eq_ignore_ascii_case(tok))
    }
}

/// `preview` and `review` are also nouns of product and task names (`content-preview`,
/// `send-review-reminders`): in a workload's name they mark an environment only as its first
/// word (`preview-pr-42`, `review-app`) or before an id (`web-preview-42`). Elsewhere they
/// are replaced by a neutral word.
fn without_product_nouns(name: &str) -> String {
    let mut toks = tokens(name);
    neutralise_product_nouns(&mut toks);
    toks.iter()
        .map(CompactString::as_str)
        .collect::<Vec<_>>()
        .join("-")
}

/// The words of [`without_product_nouns`]: `preview` and `review` that mark no environment
/// become `word`.
fn neutralise_product_nouns(toks: &mut [CompactString]) {
    let has_digit = |t: &CompactString| t.chars().any(|c| c.is_ascii_digit());
    for i in 0..toks.len() {
        // The next word is read before it is changed; `word` has no digit either.
        let marks_env = i == 0 || toks.get(i + 1).is_some_and(has_digit);
        if matches!(toks[i].as_str(), "preview" | "review") && !marks_env {
            toks[i] = CompactString::const_new("word");
        }
    }
}

/// `pr` followed by a number (`pr-123`), or `pr123`.
fn is_pull_request(tok: &str, next: Option<&CompactString>) -> bool {
    let all_digits = |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_digit());
    (tok == "pr" && next.is_some_and(|n| all_digits(n)))
        || tok.strip_prefix("pr").is_some_and(all_digits)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Env {
        Vocabulary::default()
            .classify(name)
            .map_or(Env::Unknown, |m| m.env)
    }

    #[test]
    fn tokenises_on_separators_and_case() {
        assert_eq!(
            tokens("prodEu-1.k8s/x:y"),
            vec!["prod", "eu", "1", "k8s", "x", "y"]
        );
        assert_eq!(tokens("PR-481"), vec!["pr", "481"]);
        assert_eq!(tokens("ProdéEu"), vec!["prodé", "eu"]);
    }

    #[test]
    fn ascii_names_split_as_any_name_does() {
        for name in [
            "prodEu-1.k8s/x:y",
            "PR-481",
            "FeatureXYZBranch",
            "aB",
            "Ab",
            "--a--",
            "pr123",
            "web-preview-42",
            "UAT_Env",
            "",
            "a b\tc@d=e,f\"g'h",
            "HTTPServer2Go",
        ] {
            assert_eq!(ascii_tokens(name), unicode_tokens(name), "{name}");
        }
    }

    #[test]
    fn production_words() {
        for name in [
            "prod-eu",
            "production",
            "eu-prd-1",
            "live",
            "prodEu",
            "https://prod-us.k8s.acme.io",
        ] {
            assert_eq!(env(name), Env::Production, "{name}");
        }
    }

    #[test]
    fn non_production_words_and_compounds() {
        for name in [
            "staging-eu",
            "dev",
            "checkout-feature-dark-mode",
            "pr-123",
            "preview-pr481",
            "e2e",
            "preprod",
            "pre-prod",
            "pre-production",
            "non-prod",
            "nonprod",
            "load-test",
            "loadtest",
            "perf-test",
            "smoke-test",
            "integration",
            "qa",
        ] {
            assert_eq!(env(name), Env::NonProduction, "{name}");
        }
    }

    #[test]
    fn look_alikes_are_not_environment_words() {
        for name in [
            "product",
            "latest",
            "devops",
            "contest",
            "load-balancer",
            "products-api",
            "pr-review-bot-x",
            "dev-team",
            "qa-teams",
            "testing-tools",
            "qa-tooling",
        ] {
            let verdict = env(name);
            assert!(
                verdict == Env::Unknown || name == "pr-review-bot-x",
                "{name}: {verdict:?}"
            );
        }
        // `review` is a word, so the bot's name does count.
        assert_eq!(env("pr-review-bot-x"), Env::NonProduction);
        assert_eq!(env("pr"), Env::Unknown);
    }

    #[test]
    fn conflicts() {
        assert_eq!(env("prod-staging"), Env::Production);
        let v = Vocabulary::default();
        assert_eq!(
            v.classify_workload("feature-prod-fix").map(|m| m.env),
            Some(Env::NonProduction)
        );
        assert_eq!(
            v.classify_workload("payments-prod").map(|m| m.env),
            Some(Env::Production)
        );
    }

    #[test]
    fn preview_and_review_inside_a_name_are_nouns() {
        let v = Vocabulary::default();
        let class = |n: &str| v.classify_workload(n).map(|m| m.env);
        for name in [
            "govspeak-preview",
            "signon-app-content-preview",
            "whitehall-admin-send-review-reminders",
        ] {
            assert_eq!(class(name), None, "{name}");
        }
        for name in [
            "preview",
            "preview-pr-42",
            "review-app",
            "web-preview-42",
            "pr-7-preview",
        ] {
            assert_eq!(class(name), Some(Env::NonProduction), "{name}");
        }
        // Cluster names keep every word.
        assert_eq!(env("eks-preview"), Env::NonProduction);
    }

    #[test]
    fn config_words_extend_the_vocabulary() {
        let v = Vocabulary::new(vec!["emea".into()], vec!["sbx".into()]);
        assert_eq!(v.classify("emea-1").map(|m| m.env), Some(Env::Production));
        assert_eq!(
            v.classify("team-sbx").map(|m| m.env),
            Some(Env::NonProduction)
        );
    }

    #[test]
    fn an_ascii_workload_name_is_judged_as_the_text_of_its_words_would_be() {
        let v = Vocabulary::new(vec!["emea".into()], vec!["sbx".into()]);
        for name in [
            "feature-prod-fix",
            "payments-prod",
            "content-preview",
            "preview-pr-42",
            "web-preview-42",
            "pr-7-preview",
            "send-review-reminders",
            "prodEu-stagingApi",
            "svc-00069-dev-1",
            "PR123-Prod",
            "qa-team-prod",
            "prod-qa-tools",
            "emea-sbx",
            "Prod_Review.preview",
            "a..b__c",
            "---",
            "",
        ] {
            assert_eq!(
                v.classify_workload_anew(name),
                v.classify_workload_text(name),
                "{name}"
            );
        }
        // The two readings differ in how they get there, not in what they find.
        assert_eq!(
            v.classify_workload_anew("feature-prod-fix")
                .map(|m| m.token),
            Some(CompactString::from("feature"))
        );
    }
}
