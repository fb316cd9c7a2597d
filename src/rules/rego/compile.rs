//! Compiling: policies into one regorus engine, on a thread of its own within the compile
//! time budget, with what the text declares (`heads.rs`) and each set's index (`index.rs`).

use std::collections::BTreeMap;
use std::num::NonZeroU32;
use std::time::Duration;

use regorus::Value;

use super::heads::scan_heads;
use super::{
    depth, index, memory, Metadata, Package, RegoPolicies, Source, TestRule, PREFIX,
    REPOSITORY_PACKAGE,
};

/// Wall time one evaluation (one package's rules for one placement, or the repository-level
/// evaluation of one package) may take.
pub const EVALUATION_TIME_BUDGET: Duration = Duration::from_secs(2);

/// Wall time compiling a scan's policies may take.
pub const COMPILE_TIME_BUDGET: Duration = Duration::from_secs(10);

fn new_engine() -> regorus::Engine {
    let mut engine = regorus::Engine::new();
    // OPA's behaviour: a built-in given the wrong types is undefined, not an error.
    engine.set_strict_builtin_errors(false);
    engine.set_execution_timer_config(regorus::utils::limits::ExecutionTimerConfig {
        limit: EVALUATION_TIME_BUDGET,
        check_interval: NonZeroU32::new(1024).unwrap_or(NonZeroU32::MIN),
    });
    engine
}

/// A regorus error on one line: `file:line:col: message` when it points into a policy (its
/// own form is a source excerpt over several lines), else its first line.
pub(super) fn one_line(shown: &str, error: &anyhow::Error) -> String {
    let text = format!("{error:#}");
    let lines: Vec<&str> = text.lines().map(str::trim).collect();
    let at = lines.iter().find_map(|l| l.strip_prefix("--> "));
    let message = lines
        .iter()
        .rev()
        .find_map(|l| l.strip_prefix("error: "))
        .or_else(|| {
            lines
                .iter()
                .find(|l| !l.is_empty() && !l.starts_with("-->"))
                .copied()
        })
        .unwrap_or("unknown error");
    let line = match at {
        Some(at) => format!("{at}: {message}"),
        None if message.starts_with(shown) => message.to_owned(),
        None => format!("{shown}: {message}"),
    };
    crate::sanitize::text(&line).into_owned()
}

impl RegoPolicies {
    /// Compiles the sources. A file that does not compile is an error naming its
    /// `file:line:col`; so is one that nests too deeply ([`depth`]), and compiling that takes
    /// longer than [`COMPILE_TIME_BUDGET`] is an error too.
    ///
    /// regorus's parser takes time exponential in how deeply arrays, sets and objects nest
    /// (about twice as long per level: 1.7 s for one expression 16 levels deep), and it cannot
    /// be interrupted. So it runs on a thread of its own, and the scan stops waiting at the
    /// budget; the thread is left to end with the process.
    pub fn compile(sources: &[Source]) -> anyhow::Result<RegoPolicies> {
        let owned = sources.to_vec();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::Builder::new()
            .name("envfence-rego-compile".into())
            .spawn(move || {
                let _ = tx.send(Self::compile_here(&owned));
            })?;
        match rx.recv_timeout(COMPILE_TIME_BUDGET) {
            Ok(compiled) => compiled,
            Err(_) => anyhow::bail!(
                "policies did not compile within {} s (the compile time budget; deeply nested \
                 arrays, sets or objects take the parser exponential time)",
                COMPILE_TIME_BUDGET.as_secs()
            ),
        }
    }

    fn compile_here(sources: &[Source]) -> anyhow::Result<RegoPolicies> {
        let mut engine = new_engine();
        let mut packages: BTreeMap<String, Package> = BTreeMap::new();
        let mut tests = Vec::new();
        for source in sources {
            if let Some(at) = depth::check(&source.text) {
                anyhow::bail!("{}:{at}", source.shown);
            }
            let package = engine
                .add_policy(source.shown.clone(), source.text.clone())
                .map_err(|e| anyhow::anyhow!("{}", one_line(&source.shown, &e)))?;
            let package = package.strip_prefix("data.").unwrap_or(&package).to_owned();
            let heads = scan_heads(&source.text);
            for name in heads.tests {
                tests.push(TestRule {
                    package: package.clone(),
                    name,
                });
            }
            if !package.starts_with(PREFIX) {
                continue;
            }
            let entry = packages.entry(package.clone()).or_insert_with(|| Package {
                name: package.clone(),
                file: source.shown.clone(),
                repository: package == REPOSITORY_PACKAGE
                    || package.starts_with(&format!("{REPOSITORY_PACKAGE}.")),
                sets: Vec::new(),
                metadata: Metadata::default(),
                indexes: Vec::new(),
            });
            if entry.metadata == Metadata::default() {
                entry.metadata = heads.package_metadata;
            }
            for (set, metadata) in heads.sets {
                match entry.sets.iter_mut().find(|(s, _)| *s == set) {
                    Some((_, m)) if *m == Metadata::default() => *m = metadata,
                    Some(_) => {}
                    None => entry.sets.push((set, metadata)),
                }
            }
        }
        let modules = engine.get_modules().clone();
        for package in packages.values_mut() {
            package.indexes = package
                .sets
                .iter()
                .map(|(set, _)| index::index(&modules, &package.name, set))
                .collect();
        }
        let mut policies = RegoPolicies {
            engine,
            packages: packages.into_values().collect(),
            tests,
        };
        policies.check_compiles()?;
        Ok(policies)
    }

    /// regorus resolves names (unknown functions, unsafe variables) when it first evaluates:
    /// evaluate every set once on an empty input so those errors stop the run up front.
    fn check_compiles(&mut self) -> anyhow::Result<()> {
        self.engine.set_input(Value::new_object());
        let mut paths: Vec<(String, String)> = Vec::new();
        for p in &self.packages {
            for (set, _) in &p.sets {
                paths.push((format!("data.{}.{set}", p.name), p.file.clone()));
            }
        }
        for t in &self.tests {
            paths.push((format!("data.{}.{}", t.package, t.name), String::new()));
        }
        if let Some((path, file)) = paths.first() {
            let engine = &mut self.engine;
            if let Err(e) = memory::watch(|| engine.eval_rule(path.clone())) {
                if is_compile_error(&e) {
                    anyhow::bail!("{}", one_line(file, &e));
                }
            }
        }
        Ok(())
    }
}

/// Whether an evaluation error is about the policy's text rather than the input.
fn is_compile_error(e: &anyhow::Error) -> bool {
    let text = format!("{e:#}");
    text.lines()
        .next()
        .is_some_and(|l| l.contains(".rego:") || l.contains("error:"))
}
