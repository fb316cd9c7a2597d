//! `docs/rules/<id>.md` is generated from `policies/<id>.yaml`; this test fails when a page
//! drifts from its policy. `ENVFENCE_BLESS=1 cargo test --test rule_docs` regenerates them.

mod common;

use common::repo_root;
use envfence::rules::{doc_page, Policies, RuleId};

#[test]
fn rule_pages_match_the_policies() {
    let policies = Policies::builtin().expect("policies");
    let dir = repo_root().join("docs").join("rules");
    let bless = std::env::var_os("ENVFENCE_BLESS").is_some();
    let mut drifted = Vec::new();
    for rule in RuleId::ALL {
        let page = doc_page(rule, policies.get(rule).expect("policy"));
        let path = dir.join(format!("{}.md", rule.as_str()));
        if bless {
            std::fs::create_dir_all(&dir).expect("docs/rules");
            std::fs::write(&path, &page).expect("write");
        } else if std::fs::read_to_string(&path).ok().as_deref() != Some(page.as_str()) {
            drifted.push(path.display().to_string());
        }
    }
    assert!(
        drifted.is_empty(),
        "out of date (run ENVFENCE_BLESS=1 cargo test --test rule_docs): {drifted:?}"
    );
}
