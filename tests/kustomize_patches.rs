//! kustomize's edits as `kubectl kustomize` builds them: JSON 6902 patches (file and inline,
//! `patches` and `patchesJson6902`), `replacements`, `vars`, local-config objects, a
//! Component's namespace, the old lower-case `nameprefix`. Each repository is small, written
//! to a temporary folder, scanned by the real binary; the finding, its rule and its line are
//! asserted, and silence where the edit makes the object right.

mod common;

use std::path::Path;

use common::{envfence, json_report, write_tree};
use serde_json::Value;

/// Two clusters declared in the config, and one Argo CD Application per environment that
/// reads `app/<env>` and deploys it there.
fn argo_repo(dir: &Path, envs: &[&str]) {
    let mut config = String::from("clusters:\n");
    for env in envs {
        let environment = if *env == "production" {
            "production"
        } else {
            "non-production"
        };
        config.push_str(&format!(
            "  - name: {env}\n    server: https://{env}.k8s.example.com\n    environment: {environment}\n"
        ));
        write_tree(
            dir,
            &[(
                &format!("argocd/{env}.yaml"),
                &format!(
                    "apiVersion: argoproj.io/v1alpha1\nkind: Application\nmetadata:\n  name: shop-{env}\n  namespace: argocd\nspec:\n  source:\n    repoURL: https://git.example.com/platform.git\n    path: app/{env}\n  destination:\n    server: https://{env}.k8s.example.com\n    namespace: shop\n"
                ),
            )],
        );
    }
    write_tree(dir, &[(".envfence.yaml", &config)]);
}

fn run(dir: &Path, command: &str) -> Value {
    let out = envfence()
        .args([command, "--quiet", "--format", "json"])
        .arg(dir)
        .output()
        .expect("runs");
    json_report(&out)
}

/// The findings of a rule, as `file:line`.
fn findings(report: &Value, rule: &str) -> Vec<String> {
    report["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .filter(|f| f["rule"] == rule)
        .map(|f| format!("{}:{}", f["file"].as_str().unwrap_or(""), f["line"]))
        .collect()
}

fn placements<'a>(topology: &'a Value, file: &str) -> Vec<&'a Value> {
    topology["placements"]
        .as_array()
        .expect("placements")
        .iter()
        .filter(|p| p["file"] == file)
        .collect()
}

const DEPLOYMENT_PROD_DB: &str = "apiVersion: apps/v1
kind: Deployment
metadata:
  name: shop
spec:
  template:
    spec:
      containers:
        - name: shop
          image: shop:1.0
          env:
            - name: DATABASE_URL
              value: postgres://shop@orders-db.prod.acme.internal:5432/shop
            - name: CACHE_HOST
              value: cache.prod.acme.internal
";

/// A production overlay that patches the staging component paths of its Applications to the
/// production ones (a JSON patch file, `patches` with `path` and `target`): production gets
/// the production components, and nothing of staging.
#[test]
fn a_json_patch_file_sends_an_application_to_its_production_path() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    write_tree(
        d,
        &[
            (
                ".envfence.yaml",
                "clusters:\n  - name: production\n    server: https://prod.k8s.example.com\n    environment: production\n",
            ),
            (
                "bootstrap/root.yaml",
                "apiVersion: argoproj.io/v1alpha1\nkind: Application\nmetadata:\n  name: root-production\n  namespace: argocd\nspec:\n  source:\n    repoURL: https://git.example.com/platform.git\n    path: apps/production\n  destination:\n    server: https://prod.k8s.example.com\n    namespace: argocd\n",
            ),
            ("apps/base/kustomization.yaml", "resources:\n  - web.yaml\n"),
            (
                "apps/base/web.yaml",
                "apiVersion: argoproj.io/v1alpha1\nkind: Application\nmetadata:\n  name: web\n  namespace: argocd\nspec:\n  source:\n    repoURL: https://git.example.com/platform.git\n    path: components/web/staging\n  destination:\n    server: https://prod.k8s.example.com\n    namespace: web\n",
            ),
            (
                "apps/production/kustomization.yaml",
                "resources:\n  - ../base\npatches:\n  - path: production-paths.yaml\n    target:\n      kind: Application\n      name: web\n",
            ),
            (
                "apps/production/production-paths.yaml",
                "- op: replace\n  path: /spec/source/path\n  value: components/web/production\n",
            ),
            (
                "components/web/staging/deploy.yaml",
                "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web-debug\n  labels:\n    environment: staging\nspec:\n  template:\n    spec:\n      containers:\n        - name: web\n          image: web:1\n",
            ),
            (
                "components/web/production/deploy.yaml",
                "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  template:\n    spec:\n      containers:\n        - name: web\n          image: web:1\n",
            ),
        ],
    );
    let scan = run(d, "scan");
    assert_eq!(
        findings(&scan, "nonprod-on-prod-cluster"),
        Vec::<String>::new()
    );
    let topology = run(d, "topology");
    let prod = placements(&topology, "components/web/production/deploy.yaml");
    assert_eq!(prod.len(), 1, "{topology:#}");
    assert_eq!(prod[0]["cluster"], "production");
    assert!(placements(&topology, "components/web/staging/deploy.yaml").is_empty());
    // The source path is the patch's, at the patch's line, with the patch as a hop.
    let notes: Vec<String> = prod[0]["evidence"]
        .as_array()
        .expect("evidence")
        .iter()
        .map(|e| {
            format!(
                "{}:{} {}",
                e["file"].as_str().unwrap_or(""),
                e["line"],
                e["note"].as_str().unwrap_or("")
            )
        })
        .collect();
    assert!(
        notes.contains(&"apps/production/production-paths.yaml:1 kustomize JSON patch: replace /spec/source/path = components/web/production".to_owned()),
        "{notes:#?}"
    );
    assert!(
        notes.contains(
            &"apps/production/production-paths.yaml:3 source.path components/web/production"
                .to_owned()
        ),
        "{notes:#?}"
    );
}

/// `patchesJson6902` (the older field) patches an ApplicationSet's generator values: the
/// production folder is what it generates Applications for.
#[test]
fn patches_json6902_change_an_applicationset_generator() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    write_tree(
        d,
        &[
            (
                ".envfence.yaml",
                "clusters:\n  - name: production\n    server: https://prod.k8s.example.com\n    environment: production\n",
            ),
            (
                "bootstrap/root.yaml",
                "apiVersion: argoproj.io/v1alpha1\nkind: Application\nmetadata:\n  name: root\n  namespace: argocd\nspec:\n  source:\n    repoURL: https://git.example.com/platform.git\n    path: sets/production\n  destination:\n    server: https://prod.k8s.example.com\n    namespace: argocd\n",
            ),
            ("sets/base/kustomization.yaml", "resources:\n  - appset.yaml\n"),
            (
                "sets/base/appset.yaml",
                "apiVersion: argoproj.io/v1alpha1\nkind: ApplicationSet\nmetadata:\n  name: web\n  namespace: argocd\nspec:\n  generators:\n    - list:\n        elements:\n          - folder: components/web/staging\n  template:\n    metadata:\n      name: web\n    spec:\n      source:\n        repoURL: https://git.example.com/platform.git\n        path: '{{folder}}'\n      destination:\n        server: https://prod.k8s.example.com\n        namespace: web\n",
            ),
            (
                "sets/production/kustomization.yaml",
                "resources:\n  - ../base\npatchesJson6902:\n  - target:\n      group: argoproj.io\n      version: v1alpha1\n      kind: ApplicationSet\n      name: web\n    path: folder.yaml\n",
            ),
            (
                "sets/production/folder.yaml",
                "- op: replace\n  path: /spec/generators/0/list/elements/0/folder\n  value: components/web/production\n",
            ),
            (
                "components/web/staging/deploy.yaml",
                "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web-debug\n  labels:\n    environment: staging\n",
            ),
            (
                "components/web/production/deploy.yaml",
                "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\n",
            ),
        ],
    );
    let scan = run(d, "scan");
    assert_eq!(
        findings(&scan, "nonprod-on-prod-cluster"),
        Vec::<String>::new()
    );
    let topology = run(d, "topology");
    assert_eq!(
        placements(&topology, "components/web/production/deploy.yaml").len(),
        1,
        "{topology:#}"
    );
    assert!(placements(&topology, "components/web/staging/deploy.yaml").is_empty());
}

/// A staging overlay built on the production folder replaces the database hosts with staging
/// ones (inline JSON patches): kubectl prints only staging hosts, and so nothing is reported.
/// A patch that writes a production host is reported at the patch's value line.
#[test]
fn inline_json_patches_replace_production_hosts() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    argo_repo(d, &["production", "staging"]);
    let staging = |cache: &str| {
        format!(
            "resources:\n  - ../production\npatches:\n  - target:\n      kind: Deployment\n      name: shop\n    patch: |\n      - op: replace\n        path: /spec/template/spec/containers/0/env/0/value\n        value: postgres://shop@orders-db.staging.acme.internal:5432/shop\n      - op: replace\n        path: /spec/template/spec/containers/0/env/1/value\n        value: {cache}\n"
        )
    };
    write_tree(
        d,
        &[
            (
                "app/production/kustomization.yaml",
                "resources:\n  - deployment.yaml\n",
            ),
            ("app/production/deployment.yaml", DEPLOYMENT_PROD_DB),
            (
                "app/staging/kustomization.yaml",
                &staging("cache.staging.acme.internal"),
            ),
        ],
    );
    let scan = run(d, "scan");
    assert_eq!(
        findings(&scan, "nonprod-uses-prod-config"),
        Vec::<String>::new()
    );
    write_tree(
        d,
        &[(
            "app/staging/kustomization.yaml",
            &staging("cache.prod.acme.internal"),
        )],
    );
    let scan = run(d, "scan");
    assert_eq!(
        findings(&scan, "nonprod-uses-prod-config"),
        vec!["app/staging/kustomization.yaml:13"]
    );
    let f = &scan["findings"][0];
    assert!(
        f["message"]
            .as_str()
            .is_some_and(|m| m.contains("env CACHE_HOST = `cache.prod.acme.internal`")),
        "{f:#}"
    );
}

/// A dev overlay copies the production database host into its Deployment with
/// `replacements` (from a local-config ConfigMap, which kustomize reads but never outputs):
/// reported at the replacement's target field path, and the ConfigMap itself is not placed.
#[test]
fn a_replacement_that_copies_a_production_host_is_reported() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    argo_repo(d, &["dev"]);
    write_tree(
        d,
        &[
            ("app/base/kustomization.yaml", "resources:\n  - deployment.yaml\n"),
            (
                "app/base/deployment.yaml",
                "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: shop\nspec:\n  template:\n    spec:\n      containers:\n        - name: shop\n          image: shop:1.0\n          env:\n            - name: DB_HOST\n              value: localhost\n",
            ),
            (
                "app/dev/db.yaml",
                "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: database\n  annotations:\n    config.kubernetes.io/local-config: \"true\"\ndata:\n  host: orders-db.prod.acme.internal\n",
            ),
            (
                "app/dev/kustomization.yaml",
                "resources:\n  - ../base\n  - db.yaml\nreplacements:\n  - source:\n      kind: ConfigMap\n      name: database\n      fieldPath: data.host\n    targets:\n      - select:\n          kind: Deployment\n          name: shop\n        fieldPaths:\n          - spec.template.spec.containers.[name=shop].env.[name=DB_HOST].value\n",
            ),
        ],
    );
    let scan = run(d, "scan");
    assert_eq!(
        findings(&scan, "nonprod-uses-prod-config"),
        vec!["app/dev/kustomization.yaml:14"]
    );
    let notes: Vec<&str> = scan["findings"][0]["evidence"]
        .as_array()
        .expect("evidence")
        .iter()
        .filter_map(|e| e["note"].as_str())
        .collect();
    assert!(
        notes.contains(&"kustomize replacement: spec.template.spec.containers.[name=shop].env.[name=DB_HOST].value from ConfigMap/database data.host = orders-db.prod.acme.internal"),
        "{notes:#?}"
    );
    let topology = run(d, "topology");
    assert!(
        placements(&topology, "app/dev/db.yaml").is_empty(),
        "{topology:#}"
    );
}

/// A local-config object is never deployed: its production values are not a dev workload's.
#[test]
fn a_local_config_object_is_not_placed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    argo_repo(d, &["dev"]);
    write_tree(
        d,
        &[
            ("app/dev/kustomization.yaml", "resources:\n  - values.yaml\n  - app.yaml\n"),
            (
                "app/dev/values.yaml",
                "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: values\n  annotations:\n    config.kubernetes.io/local-config: \"true\"\ndata:\n  DATABASE_URL: postgres://orders-db.prod.acme.internal:5432/shop\n",
            ),
            (
                "app/dev/app.yaml",
                "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: app\ndata:\n  DATABASE_URL: postgres://orders-db.dev.acme.internal:5432/shop\n",
            ),
        ],
    );
    let scan = run(d, "scan");
    assert_eq!(
        findings(&scan, "nonprod-uses-prod-config"),
        Vec::<String>::new()
    );
    let topology = run(d, "topology");
    assert!(placements(&topology, "app/dev/values.yaml").is_empty());
    assert_eq!(placements(&topology, "app/dev/app.yaml").len(), 1);
}

/// A staging overlay's ConfigMap generator with `behavior: merge` sets its literal over the
/// production base's key: kustomize's ConfigMap holds only the staging host, and nothing is
/// reported; a literal with a production host is reported at its line.
#[test]
fn a_merging_generator_overrides_the_base_key() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    argo_repo(d, &["production", "staging"]);
    let staging = |host: &str| {
        format!(
            "resources:\n  - ../production\nconfigMapGenerator:\n  - name: shop-config\n    behavior: merge\n    literals:\n      - DATABASE_URL=postgres://{host}:5432/shop\n"
        )
    };
    write_tree(
        d,
        &[
            (
                "app/production/kustomization.yaml",
                "resources:\n  - config.yaml\n",
            ),
            (
                "app/production/config.yaml",
                "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: shop-config\ndata:\n  DATABASE_URL: postgres://orders-db.prod.acme.internal:5432/shop\n",
            ),
            (
                "app/staging/kustomization.yaml",
                &staging("orders-db.staging.acme.internal"),
            ),
        ],
    );
    let scan = run(d, "scan");
    assert_eq!(
        findings(&scan, "nonprod-uses-prod-config"),
        Vec::<String>::new()
    );
    write_tree(
        d,
        &[(
            "app/staging/kustomization.yaml",
            &staging("orders-db.prod.acme.internal"),
        )],
    );
    let scan = run(d, "scan");
    assert_eq!(
        findings(&scan, "nonprod-uses-prod-config"),
        vec!["app/staging/kustomization.yaml:7"]
    );
}

/// `vars` substitute `$(NAME)` in env values with the field they name, at the top of the
/// build: a dev overlay whose var reads the production database host is reported, on the
/// env value's line.
#[test]
fn vars_substitute_env_values() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    argo_repo(d, &["dev"]);
    write_tree(
        d,
        &[
            (
                "app/dev/kustomization.yaml",
                "resources:\n  - db.yaml\n  - deployment.yaml\nvars:\n  - name: DB_HOST\n    objref:\n      kind: ConfigMap\n      name: database\n      apiVersion: v1\n    fieldref:\n      fieldpath: data.host\n",
            ),
            (
                "app/dev/db.yaml",
                "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: database\ndata:\n  host: orders-db.prod.acme.internal\n",
            ),
            (
                "app/dev/deployment.yaml",
                "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: shop\nspec:\n  template:\n    spec:\n      containers:\n        - name: shop\n          image: shop:1.0\n          env:\n            - name: DATABASE_URL\n              value: postgres://$(DB_HOST):5432/shop\n",
            ),
        ],
    );
    let scan = run(d, "scan");
    let lines = findings(&scan, "nonprod-uses-prod-config");
    assert!(
        lines.contains(&"app/dev/deployment.yaml:13".to_owned()),
        "{lines:?}"
    );
    let messages: Vec<&str> = scan["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .filter_map(|f| f["message"].as_str())
        .collect();
    assert!(
        messages.iter().any(|m| m
            .contains("env DATABASE_URL = `postgres://orders-db.prod.acme.internal:5432/shop`")),
        "{messages:#?}"
    );
}

/// A Component's `namespace` applies to what its includer gathered; a cluster-scoped object
/// keeps its file's namespace; the old lower-case `nameprefix` names objects.
#[test]
fn component_namespace_cluster_scoped_namespace_and_lower_case_prefix() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    argo_repo(d, &["production"]);
    write_tree(
        d,
        &[
            (
                "app/production/kustomization.yaml",
                "nameprefix: prod-\nresources:\n  - deployment.yaml\n  - role.yaml\ncomponents:\n  - ../../components/prod-namespace\n",
            ),
            (
                "app/production/deployment.yaml",
                "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: shop\n",
            ),
            (
                "app/production/role.yaml",
                "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata:\n  name: reader\n  namespace: kept\n",
            ),
            (
                "components/prod-namespace/kustomization.yaml",
                "apiVersion: kustomize.config.k8s.io/v1alpha1\nkind: Component\nnamespace: shop-production\n",
            ),
        ],
    );
    let topology = run(d, "topology");
    let deployment = placements(&topology, "app/production/deployment.yaml");
    assert_eq!(deployment.len(), 1, "{topology:#}");
    assert_eq!(deployment[0]["name"], "prod-shop");
    assert_eq!(deployment[0]["namespace"], "shop-production");
    let role = placements(&topology, "app/production/role.yaml");
    assert_eq!(role[0]["name"], "prod-reader");
    assert_eq!(role[0]["namespace"], "kept");
}

/// A JSON patch that does not apply (kustomize's build fails) is said, at its line, and the
/// object is taken unpatched.
#[test]
fn a_json_patch_that_does_not_apply_is_a_note() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    argo_repo(d, &["production"]);
    write_tree(
        d,
        &[
            (
                "app/production/kustomization.yaml",
                "resources:\n  - deployment.yaml\npatches:\n  - target:\n      kind: Deployment\n    patch: |\n      - op: replace\n        path: /spec/template/spec/containers/3/image\n        value: shop:2\n",
            ),
            ("app/production/deployment.yaml", DEPLOYMENT_PROD_DB),
        ],
    );
    let topology = run(d, "topology");
    let notes: Vec<String> = topology["unresolved"]
        .as_array()
        .expect("unresolved")
        .iter()
        .map(|u| {
            format!(
                "{}:{} {}",
                u["file"].as_str().unwrap_or(""),
                u["line"],
                u["reason"].as_str().unwrap_or("")
            )
        })
        .collect();
    assert!(
        notes.iter().any(|n| n.starts_with(
            "app/production/kustomization.yaml:7 JSON patch on Deployment/shop does not apply"
        )),
        "{notes:#?}"
    );
    assert_eq!(
        placements(&topology, "app/production/deployment.yaml").len(),
        1
    );
}

/// The edits stay within the object budget: a kustomization that gathers more objects than
/// `limits.kustomize-objects` keeps its objects unpatched, says so, and the scan exits 3.
#[test]
fn edits_of_a_kustomization_over_the_object_limit_are_left_out() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    argo_repo(d, &["production"]);
    let mut objects = String::new();
    for i in 0..5 {
        objects.push_str(&format!(
            "---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c{i}\ndata:\n  a: b\n"
        ));
    }
    write_tree(
        d,
        &[
            (".envfence.yaml", "clusters:\n  - name: production\n    server: https://production.k8s.example.com\n    environment: production\nlimits:\n  kustomize-objects: 3\n"),
            (
                "app/production/kustomization.yaml",
                "resources:\n  - objects.yaml\npatches:\n  - target:\n      kind: ConfigMap\n    patch: |\n      - op: add\n        path: /data/c\n        value: d\n",
            ),
            ("app/production/objects.yaml", &objects),
        ],
    );
    let out = envfence()
        .args(["topology", "--quiet", "--format", "json"])
        .arg(d)
        .output()
        .expect("runs");
    let topology = json_report(&out);
    let reasons: Vec<&str> = topology["unresolved"]
        .as_array()
        .expect("unresolved")
        .iter()
        .filter_map(|u| u["reason"].as_str())
        .collect();
    assert!(
        reasons.iter().any(|r| r.contains("gathers more than 3 objects (limits.kustomize-objects): its edits (JSON patches, replacements, labels, vars) are not applied")),
        "{reasons:#?}"
    );
    let scan = envfence()
        .args(["scan", "--quiet", "--format", "json"])
        .arg(d)
        .output()
        .expect("runs");
    assert_eq!(scan.status.code(), Some(3));
}

/// A diff-aware scan: the change is to an object that an overlay's edits copy (here its
/// `commonLabels`), so the base is judged with its own objects, not the head's copies, and
/// the production host the change brings into the staging overlay is a new finding.
#[test]
fn a_change_to_an_edited_object_is_new_in_a_diff_scan() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    common::git(d, &["init", "-q"]);
    argo_repo(d, &["production", "staging"]);
    let deployment = |cache: &str| DEPLOYMENT_PROD_DB.replace("cache.prod.acme.internal", cache);
    write_tree(
        d,
        &[
            (
                "app/production/kustomization.yaml",
                "resources:\n  - deployment.yaml\n",
            ),
            (
                "app/production/deployment.yaml",
                &deployment("cache.acme.internal").replace(
                    "postgres://shop@orders-db.prod.acme.internal:5432/shop",
                    "postgres://shop@orders-db.acme.internal:5432/shop",
                ),
            ),
            (
                "app/staging/kustomization.yaml",
                "resources:\n  - ../production\ncommonLabels:\n  team: shop\n",
            ),
        ],
    );
    common::git(d, &["add", "-A"]);
    common::git(d, &["commit", "-q", "-m", "base"]);
    let base = common::git(d, &["rev-parse", "HEAD"]);
    write_tree(
        d,
        &[(
            "app/production/deployment.yaml",
            &deployment("cache.prod.acme.internal").replace(
                "postgres://shop@orders-db.prod.acme.internal:5432/shop",
                "postgres://shop@orders-db.acme.internal:5432/shop",
            ),
        )],
    );
    common::git(d, &["add", "-A"]);
    common::git(d, &["commit", "-q", "-m", "head"]);
    let out = envfence()
        .current_dir(d)
        .args(["scan", "--quiet", "--format", "json", "--base", &base, "."])
        .output()
        .expect("runs");
    let report = json_report(&out);
    let new: Vec<String> = report["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .filter(|f| f["status"] == "new" && f["rule"] == "nonprod-uses-prod-config")
        .map(|f| format!("{}:{}", f["file"].as_str().unwrap_or(""), f["line"]))
        .collect();
    assert_eq!(new, vec!["app/production/deployment.yaml:15"], "{report:#}");
}

/// The nodes kustomize's edits copy are bounded by `limits.expanded-objects` (20 nodes per
/// object): past them the rest is left unedited, the kustomization says so, and the scan
/// exits 3.
#[test]
fn edits_stop_at_the_node_budget() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let mut objects = String::new();
    for i in 0..10 {
        objects.push_str(&format!(
            "---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c{i}\ndata:\n"
        ));
        for k in 0..60 {
            objects.push_str(&format!("  k{k}: v\n"));
        }
    }
    write_tree(
        d,
        &[
            (
                ".envfence.yaml",
                "clusters:\n  - name: production\n    server: https://production.k8s.example.com\n    environment: production\nlimits:\n  expanded-objects: 30\n",
            ),
            (
                "argocd/production.yaml",
                "apiVersion: argoproj.io/v1alpha1\nkind: Application\nmetadata:\n  name: shop\n  namespace: argocd\nspec:\n  source:\n    repoURL: https://git.example.com/platform.git\n    path: app/production\n  destination:\n    server: https://production.k8s.example.com\n    namespace: shop\n",
            ),
            (
                "app/production/kustomization.yaml",
                "resources:\n  - objects.yaml\ncommonLabels:\n  team: shop\n",
            ),
            ("app/production/objects.yaml", &objects),
        ],
    );
    let out = envfence()
        .args(["scan", "--quiet", "--format", "json"])
        .arg(d)
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(3));
    let topology = run(d, "topology");
    let notes: Vec<String> = topology["unresolved"]
        .as_array()
        .expect("unresolved")
        .iter()
        .map(|u| {
            format!(
                "{}:{} {}",
                u["file"].as_str().unwrap_or(""),
                u["line"],
                u["reason"].as_str().unwrap_or("")
            )
        })
        .collect();
    assert!(
        notes.iter().any(|n| n.starts_with("app/production/kustomization.yaml:1 kustomize edits may copy at most 600 nodes of documents in one scan")),
        "{notes:#?}"
    );
    // Every object is still placed.
    assert_eq!(
        placements(&topology, "app/production/objects.yaml").len(),
        10
    );
}

/// The host a production overlay gives its Ingress with a JSON patch is a production host:
/// a preview Ingress that claims it is reported (the edited Ingress is the one production
/// serves, not the base's placeholder).
#[test]
fn a_host_a_json_patch_gives_a_production_ingress_is_a_production_host() {
    let ingress = |name: &str, host: &str| {
        format!(
            "apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata:\n  name: {name}\nspec:\n  rules:\n    - host: {host}\n      http:\n        paths:\n          - path: /\n            pathType: Prefix\n            backend:\n              service:\n                name: frontend\n                port:\n                  number: 80\n"
        )
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    write_tree(
        d,
        &[
            (
                ".envfence.yaml",
                "clusters:\n  - name: prod\n    environment: production\n  - name: preview\n    environment: non-production\n",
            ),
            ("clusters/prod/kustomization.yaml", "resources:\n  - ../../shop/overlays/production\n"),
            ("clusters/preview/kustomization.yaml", "resources:\n  - ../../shop/overlays/preview\n"),
            ("shop/base/kustomization.yaml", "resources:\n  - ingress.yaml\n"),
            ("shop/base/ingress.yaml", &ingress("shop", "shop.placeholder.invalid")),
            (
                "shop/overlays/production/kustomization.yaml",
                "resources:\n  - ../../base\npatches:\n  - target:\n      kind: Ingress\n      name: shop\n    patch: |\n      - op: replace\n        path: /spec/rules/0/host\n        value: shop.example.com\n",
            ),
            (
                "shop/overlays/preview/kustomization.yaml",
                "namespace: shop-preview\nresources:\n  - ingress.yaml\n",
            ),
            ("shop/overlays/preview/ingress.yaml", &ingress("shop-preview", "shop.example.com")),
        ],
    );
    let scan = run(d, "scan");
    assert_eq!(
        findings(&scan, "nonprod-uses-prod-config"),
        vec!["shop/overlays/preview/ingress.yaml:7"]
    );
    let f = &scan["findings"][0];
    assert!(
        f["message"].as_str().is_some_and(
            |m| m.contains("host shop.example.com is served by production Ingress/shop")
        ),
        "{f:#}"
    );
}
