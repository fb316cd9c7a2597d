//! Loading: the `.rego` files of a policy folder, read like its YAML policy files.

use super::{RegoPolicies, TestOutcome};

/// A `.rego` file: the name it is shown by, and its text.
#[derive(Debug, Clone)]
pub struct Source {
    pub shown: String,
    pub text: String,
}

/// Whether a file is a policy test (`*_test.rego`), loaded only by `envfence test-policies`.
pub fn is_test_file(path: &std::path::Path) -> bool {
    path.file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.ends_with("_test.rego"))
}

/// The `.rego` files of a policy folder, in name order, read like the folder's YAML policy
/// files (confined to the repository when the folder is in it). `*_test.rego` files are left
/// out unless `with_tests`.
pub fn read_files(
    dir: &std::path::Path,
    repository: &crate::config::Repository,
    confined: bool,
    with_tests: bool,
) -> anyhow::Result<Vec<Source>> {
    use crate::config::shown_path;
    let entries = std::fs::read_dir(dir)
        .map_err(|e| anyhow::anyhow!("cannot read policies {}: {e}", shown_path(dir)))?;
    let mut paths: Vec<std::path::PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "rego"))
        .filter(|p| with_tests || !is_test_file(p))
        .collect();
    paths.sort();
    paths
        .into_iter()
        .map(|path| {
            let shown = shown_path(&path);
            let text = repository
                .read(&path, confined)
                .map_err(|cause| anyhow::anyhow!("cannot read {shown}: {cause}"))?;
            Ok(Source { shown, text })
        })
        .collect()
}

/// The policy files of `--policies DIR` that a scan evaluates.
pub fn read_dir(
    dir: &std::path::Path,
    repository: &crate::config::Repository,
    confined: bool,
) -> anyhow::Result<Vec<Source>> {
    read_files(dir, repository, confined, false)
}

/// `envfence test-policies DIR`: compiles every `.rego` file of `dir` (tests included) and
/// runs the `test_` rules.
pub fn test_dir(dir: &std::path::Path) -> anyhow::Result<Vec<TestOutcome>> {
    let repository = crate::config::Repository::at(std::path::Path::new("."));
    let sources = read_files(dir, &repository, false, true)?;
    anyhow::ensure!(
        !sources.is_empty(),
        "no .rego files in {}",
        crate::config::shown_path(dir)
    );
    RegoPolicies::compile(&sources)?.run_tests()
}
