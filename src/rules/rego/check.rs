//! What a policy's text may not do, found before anything is evaluated: call a built-in that
//! reaches outside the process or answers differently from run to run (`rand.intn`,
//! `http.send`, `time.now_ns`, ...), refused with its `file:line:col`; and whether any policy
//! reads the topology under `data.envfence`, which a scan then hands its workers (a large
//! repository's topology is costly to copy, and most policies read only `input`).

use regorus::unstable::{Expr, Literal, LiteralStmt, Module, Query, Rule, RuleHead};
use regorus::utils::{gather_functions, get_path_string, FunctionTable};

type Ref<T> = regorus::unstable::Ref<T>;

/// Built-ins a policy may not call: the network, the clock, randomness and identifiers made
/// per run. regorus is built without most of them, but `rand.intn` comes with its `std`
/// feature, and the others would only fail when a placement reaches them.
const OUTSIDE: [&str; 6] = ["http.", "net.", "rand.", "time.", "uuid.", "opa.runtime"];

/// The keys of `data.envfence` that hold the topology (input.rs): a policy package under
/// `envfence.` is another path there.
const TOPOLOGY_KEYS: [&str; 4] = ["clusters", "placements", "unresolved", "config"];

/// What the static check found over all modules.
#[derive(Debug, Default)]
pub(super) struct Found {
    /// The first call of a refused built-in: `file:line:col: ...`.
    pub refused: Option<String>,
    /// Whether some policy may read the topology under `data.envfence`.
    pub reads_topology: bool,
}

/// Checks `modules`, each shown by the name at the same position in `shown`.
pub(super) fn check(modules: &[Ref<Module>], shown: &[String]) -> Found {
    // An arity conflict is the interpreter's to report; it only hides user functions here.
    let functions = gather_functions(modules).unwrap_or_default();
    let mut found = Found::default();
    for (module, shown) in modules.iter().zip(shown) {
        let Ok(module_path) = get_path_string(&module.package.refr, Some("data")) else {
            continue;
        };
        let mut walk = Walk {
            module_path,
            functions: &functions,
            shown,
            found: &mut found,
        };
        walk.module(module);
        if found.refused.is_some() {
            break;
        }
    }
    found
}

struct Walk<'a> {
    module_path: String,
    functions: &'a FunctionTable,
    shown: &'a str,
    found: &'a mut Found,
}

impl Walk<'_> {
    fn module(&mut self, module: &Module) {
        for import in &module.imports {
            self.reference(&import.refr);
        }
        for rule in &module.policy {
            match rule.as_ref() {
                Rule::Spec { head, bodies, .. } => {
                    match head {
                        RuleHead::Compr { refr, assign, .. } => {
                            self.expr(refr);
                            if let Some(a) = assign {
                                self.expr(&a.value);
                            }
                        }
                        RuleHead::Set { refr, key, .. } => {
                            self.expr(refr);
                            if let Some(k) = key {
                                self.expr(k);
                            }
                        }
                        RuleHead::Func {
                            refr, args, assign, ..
                        } => {
                            self.expr(refr);
                            args.iter().for_each(|a| self.expr(a));
                            if let Some(a) = assign {
                                self.expr(&a.value);
                            }
                        }
                    }
                    for body in bodies {
                        if let Some(a) = &body.assign {
                            self.expr(&a.value);
                        }
                        self.query(&body.query);
                    }
                }
                Rule::Default {
                    refr, args, value, ..
                } => {
                    self.expr(refr);
                    args.iter().for_each(|a| self.expr(a));
                    self.expr(value);
                }
            }
        }
    }

    fn query(&mut self, query: &Query) {
        for stmt in &query.stmts {
            self.statement(stmt);
        }
    }

    fn statement(&mut self, stmt: &LiteralStmt) {
        match &stmt.literal {
            Literal::SomeVars { .. } => {}
            Literal::SomeIn {
                key,
                value,
                collection,
                ..
            } => {
                if let Some(k) = key {
                    self.expr(k);
                }
                self.expr(value);
                self.expr(collection);
            }
            Literal::Expr { expr, .. } | Literal::NotExpr { expr, .. } => self.expr(expr),
            Literal::Every { domain, query, .. } => {
                self.expr(domain);
                self.query(query);
            }
        }
        for with in &stmt.with_mods {
            self.expr(&with.refr);
            // `with f as rand.intn` calls the built-in through `f`.
            self.callee(&with.r#as);
            self.expr(&with.r#as);
        }
    }

    fn expr(&mut self, expr: &Expr) {
        if self.found.refused.is_some() {
            return;
        }
        match expr {
            Expr::Var { .. } | Expr::RefDot { .. } | Expr::RefBrack { .. } => {
                self.reference(expr);
            }
            Expr::Array { items, .. } | Expr::Set { items, .. } => {
                items.iter().for_each(|i| self.expr(i));
            }
            Expr::Object { fields, .. } => {
                for (_, key, value) in fields {
                    self.expr(key);
                    self.expr(value);
                }
            }
            Expr::ArrayCompr { term, query, .. } | Expr::SetCompr { term, query, .. } => {
                self.expr(term);
                self.query(query);
            }
            Expr::ObjectCompr {
                key, value, query, ..
            } => {
                self.expr(key);
                self.expr(value);
                self.query(query);
            }
            Expr::Call { fcn, params, .. } => {
                self.callee(fcn);
                self.expr(fcn);
                params.iter().for_each(|p| self.expr(p));
            }
            Expr::UnaryExpr { expr, .. } => self.expr(expr),
            Expr::BinExpr { lhs, rhs, .. }
            | Expr::BoolExpr { lhs, rhs, .. }
            | Expr::ArithExpr { lhs, rhs, .. }
            | Expr::AssignExpr { lhs, rhs, .. } => {
                self.expr(lhs);
                self.expr(rhs);
            }
            Expr::Membership {
                key,
                value,
                collection,
                ..
            } => {
                if let Some(k) = key {
                    self.expr(k);
                }
                self.expr(value);
                self.expr(collection);
            }
            // Scalars.
            _ => {}
        }
    }

    /// A function called by this name: refused when it is a built-in of [`OUTSIDE`]. The
    /// interpreter looks a name up as a function of the calling package first, then as a
    /// built-in; a package's own function of the same name is its own.
    fn callee(&mut self, fcn: &Expr) {
        let Ok(name) = get_path_string(fcn, None) else {
            return;
        };
        let refused = OUTSIDE
            .iter()
            .any(|o| name == *o || (o.ends_with('.') && name.starts_with(o)));
        let own = self
            .functions
            .contains_key(&format!("{}.{name}", self.module_path));
        if refused && !own && !name.starts_with("data.") && self.found.refused.is_none() {
            // Where the name starts: its first part.
            let mut root = fcn;
            while let Expr::RefDot { refr, .. } | Expr::RefBrack { refr, .. } = root {
                root = refr;
            }
            let span = root.span();
            self.found.refused = Some(format!(
                "{}:{}:{}: `{name}` is not available to envfence policies: they read only the \
                 topology, with no network, clock, random or UUID built-ins \
                 (docs/policies-rego.md)",
                self.shown, span.line, span.col
            ));
        }
    }

    /// A reference (`data.envfence.placements[c]`, `input.object`, `x`): notes a read of the
    /// topology, and walks its dynamic parts.
    fn reference(&mut self, expr: &Expr) {
        // The parts from the root, `None` for a part known only when evaluating.
        let mut parts: Vec<Option<&str>> = Vec::new();
        let mut at = expr;
        loop {
            match at {
                Expr::RefDot { refr, field, .. } => {
                    parts.push(Some(field.0.text()));
                    at = refr;
                }
                Expr::RefBrack { refr, index, .. } => {
                    match index.as_ref() {
                        Expr::String { span, .. } => parts.push(Some(span.text())),
                        other => {
                            parts.push(None);
                            self.expr(other);
                        }
                    }
                    at = refr;
                }
                Expr::Var { span, .. } => {
                    if span.text() == "data" {
                        parts.reverse();
                        if reads_topology(&parts) {
                            self.found.reads_topology = true;
                        }
                    }
                    return;
                }
                // A reference into a call's result, a comprehension, ...
                other => return self.expr(other),
            }
        }
    }
}

/// Whether a reference to `data` with these parts can reach the topology: `data`,
/// `data.envfence`, `data.envfence.placements...`, or a part known only when evaluating.
fn reads_topology(parts: &[Option<&str>]) -> bool {
    match parts {
        [] | [None, ..] | [Some("envfence")] | [Some("envfence"), None, ..] => true,
        [Some("envfence"), Some(key), ..] => TOPOLOGY_KEYS.contains(key),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn found(texts: &[&str]) -> Found {
        let mut engine = regorus::Engine::new();
        let mut shown = Vec::new();
        for (i, text) in texts.iter().enumerate() {
            let name = format!("p{i}.rego");
            engine
                .add_policy(name.clone(), (*text).to_owned())
                .expect("parses");
            shown.push(name);
        }
        check(engine.get_modules(), &shown)
    }

    #[test]
    fn outside_built_ins_are_refused_where_they_are_called() {
        let f = found(&[
            "package envfence.r\n\ndeny contains x if {\n\tx := rand.intn(\"k\", 10)\n}\n",
        ]);
        let refused = f.refused.expect("refused");
        // Columns as regorus counts them: a tab is four.
        assert!(
            refused.starts_with("p0.rego:4:10: `rand.intn`"),
            "{refused}"
        );
        for call in [
            "http.send({})",
            "time.now_ns()",
            "uuid.rfc4122(\"a\")",
            "opa.runtime()",
        ] {
            let text = format!("package envfence.r\n\nallow if {{\n\t{call}\n}}\n");
            assert!(found(&[&text]).refused.is_some(), "{call}");
        }
        // A package's own function of that name is its own; other built-ins are fine.
        let own = "package envfence.r\n\nintn(a, b) := 4\n\ndeny contains x if {\n\tx := sprintf(\"%d\", [intn(1, 2)])\n}\n";
        assert!(found(&[own]).refused.is_none());
        assert!(found(&["package envfence.r\n\nx := trim_space(\" a \")\n"])
            .refused
            .is_none());
    }

    #[test]
    fn reads_of_the_topology_are_noticed() {
        let reads = |body: &str| {
            found(&[&format!(
                "package envfence.r\n\nimport data.envfence.images\n\nx if {{\n\t{body}\n}}\n"
            )])
            .reads_topology
        };
        assert!(reads(
            "some p in data.envfence.placements[input.cluster.name]"
        ));
        assert!(reads("data.envfence[input.k]"));
        assert!(reads("walk(data, [p, v])"));
        assert!(reads("data.envfence.config.rules"));
        assert!(!reads("input.object.kind == \"Job\""));
        assert!(!reads("count(images.deny) == 0"));
        assert!(!reads("count(data.envfence.images.deny) == 0"));
        assert!(found(&["package envfence.r\n\nimport data.envfence\n"]).reads_topology);
    }
}
