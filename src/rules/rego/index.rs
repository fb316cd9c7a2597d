//! Rule indexing: which sets of a package can report anything for a placement, decided
//! before the interpreter is asked.
//!
//! A rule body is a conjunction, so a body that contains `input.cluster.environment ==
//! "production"` produces nothing for a placement whose cluster is not production, whatever
//! the rest of the body says. OPA indexes rules the same way. Most per-placement policies
//! start with such a condition, and asking regorus costs microseconds even when the answer is
//! empty, which over tens of thousands of placements is most of a policy's cost.
//!
//! Only conditions whose outcome is certain from the input alone are used, in literals without
//! `with`: a path of `input` compared with a constant (`==`, `!=`, or `in` a literal set or
//! array of constants), bound to a name (`x := input.a.b`: it must exist), or iterated
//! (`some x in input.a.b`: it must not be empty). Anything else leaves the set evaluated as
//! before, so an index can make a set skipped only where evaluating it would have reported
//! nothing.

use regorus::unstable::{AssignOp, BoolOp, Expr, Literal, Module, Query, Rule, RuleHead};
use regorus::Value;

type Ref<T> = regorus::unstable::Ref<T>;

/// What one body requires of `input`: a path of object keys and a test of the value there.
#[derive(Debug, Clone, PartialEq)]
struct Requirement {
    path: Vec<String>,
    test: Test,
}

#[derive(Debug, Clone, PartialEq)]
enum Test {
    Equals(Value),
    Differs(Value),
    OneOf(Vec<Value>),
    /// Bound to a name (`team := input.object.labels.team`): the value must exist.
    Defined,
    /// Iterated (`some image in input.object.images`): an empty collection binds nothing.
    NotEmpty,
}

impl Requirement {
    /// Whether the condition can hold. An absent value makes the condition undefined, which
    /// fails the body like `false` does.
    fn holds(&self, input: &Value) -> bool {
        let mut value = input;
        for key in &self.path {
            let Ok(map) = value.as_object() else {
                return false;
            };
            match map.get(&Value::from(key.as_str())) {
                Some(next) => value = next,
                None => return false,
            }
        }
        match &self.test {
            Test::Equals(constant) => value == constant,
            Test::Differs(constant) => value != constant,
            Test::OneOf(constants) => constants.contains(value),
            Test::Defined => true,
            Test::NotEmpty => match value {
                Value::Array(items) => !items.is_empty(),
                Value::Set(items) => !items.is_empty(),
                Value::Object(fields) => !fields.is_empty(),
                // Iterating anything else is for the interpreter to judge.
                _ => true,
            },
        }
    }
}

/// Which inputs one set (`deny`, `violation`, `warn`) of a package can report anything for.
#[derive(Debug, Clone, Default)]
pub struct SetIndex {
    /// The requirements of each body of each rule that defines the set; `None` when some
    /// rule cannot be indexed, and the set is always evaluated.
    bodies: Option<Vec<Vec<Requirement>>>,
}

impl SetIndex {
    /// `false` only when evaluating the set for this input certainly reports nothing.
    pub fn may_report(&self, input: &Value) -> bool {
        match &self.bodies {
            None => true,
            Some(bodies) => bodies
                .iter()
                .any(|requirements| requirements.iter().all(|r| r.holds(input))),
        }
    }

    /// Whether every condition reads under one of `keys` of `input` (so that an input holding
    /// only those keys decides as well as the whole one).
    pub fn reads_only(&self, keys: &[&str]) -> bool {
        self.bodies.iter().flatten().flatten().all(|r| {
            r.path
                .first()
                .is_some_and(|key| keys.contains(&key.as_str()))
        })
    }

    fn always() -> SetIndex {
        SetIndex { bodies: None }
    }
}

/// The index of set `set` of package `package` (`envfence.images`), over all loaded modules.
pub fn index(modules: &[Ref<Module>], package: &str, set: &str) -> SetIndex {
    let package: Vec<&str> = package.split('.').collect();
    let mut bodies = Vec::new();
    for module in modules {
        let Some(declared) = path_of(&module.package.refr) else {
            // A package name we cannot read might be this one.
            return SetIndex::always();
        };
        let declared: Vec<&str> = declared.iter().map(String::as_str).collect();
        if declared.len() < package.len() && package.starts_with(&declared) {
            // A rule of an enclosing package may define the set through a longer head
            // (`images.deny contains ...` in `package envfence`).
            if module.policy.iter().any(|r| head_root(r).is_none()) {
                return SetIndex::always();
            }
            continue;
        }
        if declared != package {
            continue;
        }
        for rule in &module.policy {
            match head_root(rule) {
                None => return SetIndex::always(),
                Some(name) if name != set => continue,
                Some(_) => {}
            }
            let Rule::Spec {
                head: RuleHead::Set { .. } | RuleHead::Compr { .. },
                bodies: rule_bodies,
                ..
            } = rule.as_ref()
            else {
                // A default value or a function: always defined, or not a set.
                return SetIndex::always();
            };
            if rule_bodies.is_empty() {
                return SetIndex::always();
            }
            bodies.extend(rule_bodies.iter().map(|b| requirements(&b.query)));
        }
    }
    SetIndex {
        bodies: Some(bodies),
    }
}

/// The name a rule defines when its head is a plain name (`deny contains ...`, `deny[msg]`);
/// `None` for a longer head (`a.b contains ...`), which this index does not follow.
fn head_root(rule: &Ref<Rule>) -> Option<String> {
    let refr = match rule.as_ref() {
        Rule::Spec { head, .. } => match head {
            RuleHead::Compr { refr, .. }
            | RuleHead::Set { refr, .. }
            | RuleHead::Func { refr, .. } => refr,
        },
        Rule::Default { refr, .. } => refr,
    };
    match refr.as_ref() {
        Expr::Var { span, .. } => Some(span.text().to_owned()),
        // `deny[msg] { ... }` in Rego v0.
        Expr::RefBrack { refr, .. } => match refr.as_ref() {
            Expr::Var { span, .. } => Some(span.text().to_owned()),
            _ => None,
        },
        _ => None,
    }
}

/// `a.b.c` as its parts; `None` for anything but names joined by dots.
fn path_of(expr: &Expr) -> Option<Vec<String>> {
    match expr {
        Expr::Var { span, .. } => Some(vec![span.text().to_owned()]),
        Expr::RefDot { refr, field, .. } => {
            let mut path = path_of(refr)?;
            path.push(field.0.text().to_owned());
            Some(path)
        }
        _ => None,
    }
}

/// The conditions on `input` that a body's every match requires.
fn requirements(query: &Ref<Query>) -> Vec<Requirement> {
    query
        .stmts
        .iter()
        .filter(|stmt| stmt.with_mods.is_empty())
        .filter_map(|stmt| match &stmt.literal {
            Literal::Expr { expr, .. } => requirement(expr),
            Literal::SomeIn { collection, .. } => Some(Requirement {
                path: input_path(collection)?,
                test: Test::NotEmpty,
            }),
            _ => None,
        })
        .collect()
}

fn requirement(expr: &Expr) -> Option<Requirement> {
    match expr {
        Expr::BoolExpr { op, lhs, rhs, .. } => {
            let (path, constant) = match (input_path(lhs), constant(rhs)) {
                (Some(path), Some(constant)) => (path, constant),
                _ => (input_path(rhs)?, constant(lhs)?),
            };
            let test = match op {
                BoolOp::Eq => Test::Equals(constant),
                BoolOp::Ne => Test::Differs(constant),
                _ => return None,
            };
            Some(Requirement { path, test })
        }
        Expr::AssignExpr {
            op: AssignOp::ColEq,
            lhs,
            rhs,
            ..
        } if matches!(lhs.as_ref(), Expr::Var { .. }) => Some(Requirement {
            path: input_path(rhs)?,
            test: Test::Defined,
        }),
        Expr::Membership {
            key: None,
            value,
            collection,
            ..
        } => {
            let items = match collection.as_ref() {
                Expr::Set { items, .. } | Expr::Array { items, .. } => items,
                _ => return None,
            };
            let constants = items
                .iter()
                .map(|item| constant(item))
                .collect::<Option<Vec<_>>>()?;
            Some(Requirement {
                path: input_path(value)?,
                test: Test::OneOf(constants),
            })
        }
        _ => None,
    }
}

/// The keys of `input.a.b` or `input["a"].b`; `None` for any other expression.
fn input_path(expr: &Expr) -> Option<Vec<String>> {
    match expr {
        Expr::Var { span, .. } if span.text() == "input" => Some(Vec::new()),
        Expr::RefDot { refr, field, .. } => {
            let mut path = input_path(refr)?;
            path.push(field.0.text().to_owned());
            Some(path)
        }
        Expr::RefBrack { refr, index, .. } => {
            let (Expr::String { value, .. } | Expr::RawString { value, .. }) = index.as_ref()
            else {
                return None;
            };
            let mut path = input_path(refr)?;
            path.push(value.as_string().ok()?.to_string());
            Some(path)
        }
        _ => None,
    }
}

/// A string, boolean or null literal: compared exactly, as Rego compares them. Numbers are
/// left out (Rego compares them by value across representations).
fn constant(expr: &Expr) -> Option<Value> {
    match expr {
        Expr::String { value, .. }
        | Expr::RawString { value, .. }
        | Expr::Bool { value, .. }
        | Expr::Null { value, .. } => Some(value.clone()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn modules(policies: &[&str]) -> Vec<Ref<Module>> {
        let mut engine = regorus::Engine::new();
        for (i, text) in policies.iter().enumerate() {
            engine
                .add_policy(format!("p{i}.rego"), (*text).to_owned())
                .expect("policy compiles");
        }
        engine.get_modules().clone()
    }

    fn input(json: &str) -> Value {
        Value::from_json_str(json).expect("json")
    }

    const PROD: &str = r#"{"cluster": {"environment": "production", "tier": "production"}, "object": {"kind": "Job"}}"#;
    const DEV: &str = r#"{"cluster": {"environment": "non-production", "tier": null}, "object": {"kind": "Deployment"}}"#;

    #[test]
    fn a_body_that_requires_production_is_skipped_elsewhere() {
        let m = modules(&[r#"package envfence.images
deny contains "x" if {
    input.cluster.environment == "production"
    some image in input.object.images
}"#]);
        let index = index(&m, "envfence.images", "deny");
        let with_images = |environment: &str, images: &str| {
            input(&format!(
                r#"{{"cluster": {{"environment": "{environment}"}}, "object": {{"images": {images}}}}}"#
            ))
        };
        let one = r#"[{"image": "a:latest"}]"#;
        assert!(index.may_report(&with_images("production", one)));
        assert!(!index.may_report(&with_images("non-production", one)));
        // An absent value fails the condition as `false` does.
        assert!(!index.may_report(&input(r#"{"object": {"images": [1]}}"#)));
        // Nothing to iterate over: nothing to report.
        assert!(!index.may_report(&with_images("production", "[]")));
        assert!(!index.may_report(&input(r#"{"cluster": {"environment": "production"}}"#)));
    }

    #[test]
    fn a_value_bound_to_a_name_must_exist() {
        let m = modules(&[r#"package envfence.team_jobs
deny contains team if {
    team := input.object.labels.team
}"#]);
        let index = index(&m, "envfence.team_jobs", "deny");
        assert!(!index.may_report(&input(r#"{"object": {"labels": {}}}"#)));
        assert!(index.may_report(&input(r#"{"object": {"labels": {"team": "qa"}}}"#)));
    }

    #[test]
    fn any_body_that_may_match_keeps_the_set() {
        let m = modules(&[
            r#"package envfence.p
deny contains "a" if { "production" == input.cluster.environment }
deny contains "b" if { input.object.kind in {"Job", "CronJob"} }"#,
            r#"package envfence.p
warn contains "c" if { input.cluster.tier != null }"#,
        ]);
        let deny = index(&m, "envfence.p", "deny");
        assert!(deny.may_report(&input(PROD)));
        assert!(!deny.may_report(&input(DEV)));
        let dev_job =
            r#"{"cluster": {"environment": "non-production"}, "object": {"kind": "CronJob"}}"#;
        assert!(deny.may_report(&input(dev_job)));
        let warn = index(&m, "envfence.p", "warn");
        assert!(warn.may_report(&input(PROD)));
        assert!(!warn.may_report(&input(DEV)));
    }

    #[test]
    fn conditions_it_cannot_decide_keep_the_set() {
        let cases = [
            // Not an equality on input.
            r#"package envfence.p
deny contains "a" if { startswith(input.cluster.environment, "prod") }"#,
            // Negated.
            r#"package envfence.p
deny contains "a" if { not input.cluster.environment == "non-production" }"#,
            // The input is replaced for this literal.
            r#"package envfence.p
deny contains "a" if { input.cluster.environment == "production" with input as {"cluster": {"environment": "production"}} }"#,
            // A number, compared by value in Rego.
            r#"package envfence.p
deny contains "a" if { input.object.line == 1.0 }"#,
            // A rule of an enclosing package can define the set through a longer head.
            r#"package envfence
p.deny contains "a" if { true }"#,
            // No body: always defined.
            r#"package envfence.p
deny := {"a"}"#,
        ];
        for policy in cases {
            let m = modules(&[
                policy,
                r#"package envfence.p
deny contains "z" if { input.cluster.environment == "production" }"#,
            ]);
            let index = index(&m, "envfence.p", "deny");
            assert!(index.may_report(&input(DEV)), "{policy}");
        }
    }

    #[test]
    fn other_packages_and_sets_do_not_count() {
        let m = modules(&[
            r#"package envfence.other
deny contains "a" if { true }"#,
            r#"package envfence.p
warn contains "a" if { true }
deny contains "b" if { input["cluster"].environment == "production" }"#,
        ]);
        assert!(!index(&m, "envfence.p", "deny").may_report(&input(DEV)));
    }
}
