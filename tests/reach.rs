//! Reach (issue 27): repositories that only partly describe how they are delivered. Clusters
//! whose Secrets Terraform creates (the labels the ApplicationSets select on), folders a
//! pipeline applies per cluster (`namespaces/<cluster-host>/<namespace>/`), an app-of-apps
//! chart a bootstrap command installs, nested `overlays/prod/<region>/<cluster>/` layouts,
//! declared `entrypoints:`, and component catalogs consumed elsewhere. Each test is a small
//! repository written the way the issue describes it.

mod common;

use std::path::{Path, PathBuf};

use common::{envfence, json_report, write_tree};
use serde_json::Value;

/// Runs `envfence ARGS DIR` (helm off, no GitHub repository); returns (exit code, stdout).
fn run(dir: &Path, args: &[&str]) -> (Option<i32>, String) {
    let out = envfence()
        .env_remove("GITHUB_REPOSITORY")
        .args(args)
        .arg(dir)
        .output()
        .expect("runs");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

/// `envfence ARGS -q --format json DIR` as JSON.
fn json(dir: &Path, args: &[&str]) -> Value {
    let out = envfence()
        .env_remove("GITHUB_REPOSITORY")
        .args(args)
        .args(["-q", "--format", "json"])
        .arg(dir)
        .output()
        .expect("runs");
    json_report(&out)
}

fn scan_json(dir: &Path) -> Value {
    json(dir, &["scan", "--fail-on", "never"])
}

fn topology(dir: &Path) -> Value {
    json(dir, &["topology"])
}

/// `file:line` of each finding of `rule`, sorted.
fn at(report: &Value, rule: &str) -> Vec<String> {
    let mut out: Vec<String> = findings(report, rule)
        .iter()
        .map(|f| format!("{}:{}", f["file"].as_str().unwrap_or(""), f["line"]))
        .collect();
    out.sort();
    out
}

fn findings<'r>(report: &'r Value, rule: &str) -> Vec<&'r Value> {
    report["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .filter(|f| f["rule"] == rule)
        .collect()
}

/// Cluster name → environment of a topology.
fn clusters(t: &Value) -> Vec<(String, String)> {
    t["clusters"]
        .as_array()
        .expect("clusters")
        .iter()
        .map(|c| {
            (
                c["name"].as_str().unwrap_or("").to_owned(),
                c["environment"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect()
}

/// The clusters an object of `file` is placed on.
fn placed_on(t: &Value, file: &str) -> Vec<String> {
    let mut out: Vec<String> = t["placements"]
        .as_array()
        .expect("placements")
        .iter()
        .filter(|p| p["file"] == file)
        .map(|p| p["cluster"].as_str().unwrap_or("").to_owned())
        .collect();
    out.sort();
    out.dedup();
    out
}

/// The evidence of the first placement of `file`, as `file:line note`.
fn evidence_of(t: &Value, file: &str) -> Vec<String> {
    let p = t["placements"]
        .as_array()
        .expect("placements")
        .iter()
        .find(|p| p["file"] == file)
        .unwrap_or_else(|| panic!("{file} is not placed: {t:#}"));
    p["evidence"]
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
        .collect()
}

fn coverage(report: &Value) -> (u64, u64) {
    let c = &report["summary"]["coverage"];
    (
        c["placed"].as_u64().expect("placed"),
        c["objects"].as_u64().expect("objects"),
    )
}

fn notes(report: &Value) -> Vec<(String, String)> {
    findings(report, "unresolved-placement")
        .iter()
        .map(|f| {
            (
                format!("{}:{}", f["file"].as_str().unwrap_or(""), f["line"]),
                f["message"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect()
}

/// The line of `needle` in `text` (1-based).
fn line_of(text: &str, needle: &str) -> usize {
    text.lines()
        .position(|l| l == needle)
        .unwrap_or_else(|| panic!("no line {needle:?} in:\n{text}"))
        + 1
}

// ---------------------------------------------------------------------------------------
// The multi-tenant platform layout: `namespaces/live.<domain>/<namespace>/`, no config.
// ---------------------------------------------------------------------------------------

/// Namespaces of the platform: (name, is-production, environment-name). The last one's
/// labels contradict each other, as 34 of the real repository's do.
const TENANTS: &[(&str, bool, &str)] = &[
    ("payments", true, "production"),
    ("payments-dev", false, "development"),
    ("checkout", true, "production"),
    ("checkout-staging", false, "staging"),
    ("search", true, "production"),
    ("search-dev", false, "development"),
    ("ledger", true, "production"),
    ("ledger-uat", false, "uat"),
    ("web", true, "production"),
    ("web-test", false, "test"),
    ("orders", true, "production"),
    ("orders-dev", false, "development"),
    ("billing", true, "production"),
    ("billing-dev", false, "development"),
    ("catalog", true, "production"),
    ("catalog-dev", false, "development"),
    ("reports", true, "production"),
    ("reports-dev", false, "development"),
    ("identity", true, "production"),
    ("identity-staging", false, "staging"),
    ("notify", true, "production"),
    ("notify-dev", false, "development"),
    ("data", true, "production"),
    ("data-dev", false, "development"),
    ("analytics", true, "dev"),
];

const HOST: &str = "live.cloud-platform.example.org";

/// The platform repository: three objects per namespace, a CI workflow that applies the
/// folders, and a small tools folder nothing applies.
fn platform_repo(dir: &Path) {
    let mut files: Vec<(String, String)> = Vec::new();
    for (ns, prod, env) in TENANTS {
        let base = format!("namespaces/{HOST}/{ns}");
        files.push((
            format!("{base}/00-namespace.yaml"),
            format!(
                "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {ns}\n  labels:\n    example.org/is-production: \"{prod}\"\n    example.org/environment-name: {env}\n"
            ),
        ));
        files.push((
            format!("{base}/01-rbac.yaml"),
            format!(
                "apiVersion: rbac.authorization.k8s.io/v1\nkind: RoleBinding\nmetadata:\n  name: {ns}-admin\n  namespace: {ns}\nroleRef:\n  apiGroup: rbac.authorization.k8s.io\n  kind: ClusterRole\n  name: admin\nsubjects:\n  - kind: Group\n    name: {ns}\n"
            ),
        ));
        files.push((
            format!("{base}/02-limitrange.yaml"),
            format!(
                "apiVersion: v1\nkind: LimitRange\nmetadata:\n  name: limitrange\n  namespace: {ns}\nspec:\n  limits: []\n"
            ),
        ));
        files.push((format!("{base}/resources/main.tf"), "# terraform\n".into()));
    }
    files.push((
        ".github/workflows/apply.yaml".into(),
        "name: apply\non: push\njobs:\n  apply:\n    runs-on: ubuntu-latest\n    steps:\n      - run: ./bin/apply-namespaces\n".into(),
    ));
    files.push((
        "tools/debug/pod.yaml".into(),
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: debug\nspec:\n  containers:\n    - name: debug\n      image: busybox\n".into(),
    ));
    let files: Vec<(&str, &str)> = files
        .iter()
        .map(|(p, c)| (p.as_str(), c.as_str()))
        .collect();
    write_tree(dir, &files);
}

/// With no config, the scan says what to add; `envfence init` writes it as an active entry
/// with its reason, and the scan with that config places at least 90% of the objects, each
/// with the declared entry point in its evidence.
#[test]
fn the_platform_layout_is_placed_with_one_command() {
    let dir = tempfile::tempdir().expect("tempdir");
    platform_repo(dir.path());
    let objects = TENANTS.len() * 3 + 1;

    let (code, text) = run(dir.path(), &["scan", "-q"]);
    assert_eq!(code, Some(0), "{text}");
    let lines: Vec<&str> = text.lines().collect();
    // Nothing is placed; only the namespace whose labels contradict each other is reported
    // (a label finding needs no placement).
    assert!(
        lines.iter().any(|l| l.starts_with(&format!(
            "Placed 0 of {objects} Kubernetes objects on 0 clusters"
        ))),
        "{text}"
    );
    let advice = lines
        .iter()
        .position(|l| {
            *l == "To place the largest unplaced folders, add to .envfence.yaml (`envfence init` writes these):"
        })
        .unwrap_or_else(|| panic!("{text}"));
    assert_eq!(
        &lines[advice + 1..advice + 4],
        [
            "  entrypoints:",
            &format!("    - path: \"namespaces/{HOST}\"   # {} objects: its folder is named like a cluster's API host, one folder per namespace below it", TENANTS.len() * 3),
            &format!("      cluster: \"{HOST}\""),
        ],
        "{text}"
    );
    // The same advice in the pull-request comment, as lines of YAML.
    let (_, markdown) = run(dir.path(), &["scan", "-q", "--format", "markdown"]);
    assert!(
        markdown.contains(&format!(
            "<pre>\nentrypoints:\n  - path: \"namespaces/{HOST}\"   # {} objects",
            TENANTS.len() * 3
        )),
        "{markdown}"
    );

    // `envfence init` writes the entry, active, with its reason.
    let out = envfence()
        .args(["init", "--quiet"])
        .arg(dir.path())
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(0));
    let config = std::fs::read_to_string(dir.path().join(".envfence.yaml")).expect("init wrote it");
    let entry = line_of(&config, &format!("  - path: \"namespaces/{HOST}\""));
    assert_eq!(
        config.lines().nth(entry - 2),
        Some(
            format!(
                "  # {} objects: its folder is named like a cluster's API host, one folder per namespace below it",
                TENANTS.len() * 3
            )
            .as_str()
        ),
        "{config}"
    );
    assert_eq!(
        config.lines().nth(entry),
        Some(format!("    cluster: \"{HOST}\"").as_str()),
        "{config}"
    );
    // The tools folder stays a commented suggestion.
    assert!(
        config.contains("#   - glob: \"tools/debug/**\"   # 1 object\n"),
        "{config}"
    );

    // Applied as written: at least 90% placed, on one production cluster, each object with
    // the declared entry point first in its evidence.
    let report = scan_json(dir.path());
    let (placed, total) = coverage(&report);
    assert_eq!(total, objects as u64);
    assert!(placed * 10 >= total * 9, "{placed} of {total}");
    let t = topology(dir.path());
    assert_eq!(clusters(&t), [(HOST.to_owned(), "production".to_owned())]);
    let evidence = evidence_of(
        &t,
        &format!("namespaces/{HOST}/payments-dev/00-namespace.yaml"),
    );
    assert_eq!(
        evidence[0],
        format!(
            ".envfence.yaml:{entry} declared entry point: folder namespaces/{HOST} is delivered to cluster {HOST} from outside the repository"
        ),
        "{evidence:?}"
    );
    // The non-production namespaces on that production cluster are now judged.
    assert!(
        at(&report, "nonprod-on-prod-cluster")
            .iter()
            .any(|l| l.starts_with(&format!("namespaces/{HOST}/payments-dev/"))),
        "{report:#}"
    );
    // Nothing left to advise at this coverage.
    let (_, text) = run(dir.path(), &["scan", "-q", "--fail-on", "never"]);
    assert!(
        !text.contains("To place the largest unplaced folders"),
        "{text}"
    );
}

/// A folder named after a known cluster's API host or name lands on it, with the inference
/// in the evidence; a host nothing declares invents no cluster.
#[test]
fn folders_named_after_a_cluster_land_on_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let deployment =
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\n  namespace: shop\n";
    write_tree(
        dir.path(),
        &[
            ("namespaces/live.example.org/shop/deploy.yaml", deployment),
            ("namespaces/staging-eu/shop/deploy.yaml", deployment),
            ("namespaces/dev.example.org/shop/deploy.yaml", deployment),
            ("clusters/prod-us/namespaces/shop/deploy.yaml", deployment),
            (
                ".envfence.yaml",
                "clusters:\n  - name: live\n    server: https://api.live.example.org:6443\n  - name: staging-eu\n",
            ),
        ],
    );
    let t = topology(dir.path());
    assert_eq!(
        placed_on(&t, "namespaces/live.example.org/shop/deploy.yaml"),
        ["live"]
    );
    assert_eq!(
        evidence_of(&t, "namespaces/live.example.org/shop/deploy.yaml")[0],
        "namespaces/live.example.org/shop/deploy.yaml:1 no deployer reaches namespaces/live.example.org; its folder is named after the API host of cluster live"
    );
    assert_eq!(
        placed_on(&t, "namespaces/staging-eu/shop/deploy.yaml"),
        ["staging-eu"]
    );
    assert_eq!(
        evidence_of(&t, "namespaces/staging-eu/shop/deploy.yaml")[0],
        "namespaces/staging-eu/shop/deploy.yaml:1 no deployer reaches namespaces/staging-eu; its folder is named after cluster staging-eu"
    );
    // `clusters/<name>/namespaces/` is the cluster's own tree.
    assert_eq!(
        placed_on(&t, "clusters/prod-us/namespaces/shop/deploy.yaml"),
        ["prod-us"]
    );
    // A host no cluster has: not placed, and no cluster made up for it.
    assert!(placed_on(&t, "namespaces/dev.example.org/shop/deploy.yaml").is_empty());
    let names: Vec<String> = clusters(&t).into_iter().map(|(n, _)| n).collect();
    assert_eq!(names, ["live", "staging-eu", "prod-us"], "{t:#}");
}

// ---------------------------------------------------------------------------------------
// Nested layouts: `overlays/prod/<region>/<cluster>/`.
// ---------------------------------------------------------------------------------------

fn namespace_base(name: &str) -> [(String, String); 2] {
    [
        (
            format!("cluster-scope/base/namespaces/{name}/kustomization.yaml"),
            "resources:\n  - namespace.yaml\n".to_owned(),
        ),
        (
            format!("cluster-scope/base/namespaces/{name}/namespace.yaml"),
            format!("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {name}\n"),
        ),
    ]
}

/// The deepest folder below `overlays/prod/` is the cluster and `prod` its environment: an
/// Argo CD Application reaches one of them, the other is inferred, and no cluster is named
/// `prod`.
#[test]
fn in_a_nested_layout_the_deepest_folder_is_the_cluster() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut files: Vec<(String, String)> = Vec::new();
    for ns in ["web", "web-dev", "monitoring"] {
        files.extend(namespace_base(ns));
    }
    files.extend([
        (
            "argocd/smaug.yaml".to_owned(),
            "apiVersion: argoproj.io/v1alpha1\nkind: Application\nmetadata:\n  name: cluster-resources-smaug\nspec:\n  source:\n    repoURL: https://github.com/acme/apps.git\n    path: cluster-scope/overlays/prod/moc/smaug\n  destination:\n    name: smaug\n".to_owned(),
        ),
        (
            "cluster-scope/overlays/prod/common/kustomization.yaml".to_owned(),
            "resources:\n  - ../../../base/namespaces/monitoring\n".to_owned(),
        ),
        (
            "cluster-scope/overlays/prod/moc/smaug/kustomization.yaml".to_owned(),
            "resources:\n  - ../../common\n  - ../../../../base/namespaces/web\n".to_owned(),
        ),
        (
            "cluster-scope/overlays/prod/osc/osc-cl1/kustomization.yaml".to_owned(),
            "resources:\n  - ../../common\n  - ../../../../base/namespaces/web-dev\n".to_owned(),
        ),
    ]);
    let files: Vec<(&str, &str)> = files
        .iter()
        .map(|(p, c)| (p.as_str(), c.as_str()))
        .collect();
    write_tree(dir.path(), &files);
    let t = topology(dir.path());
    let names = clusters(&t);
    assert!(
        names.contains(&("osc-cl1".to_owned(), "production".to_owned())),
        "{names:?}"
    );
    assert!(!names.iter().any(|(n, _)| n == "prod"), "{names:?}");
    let cl1 = t["clusters"]
        .as_array()
        .expect("clusters")
        .iter()
        .find(|c| c["name"] == "osc-cl1")
        .expect("osc-cl1");
    assert_eq!(
        cl1["declared_in"][0]["file"],
        "cluster-scope/overlays/prod/osc/osc-cl1/kustomization.yaml"
    );
    // The Application's cluster keeps its own objects; the shared base lands on both.
    assert_eq!(
        placed_on(&t, "cluster-scope/base/namespaces/web/namespace.yaml"),
        ["smaug"]
    );
    assert_eq!(
        placed_on(
            &t,
            "cluster-scope/base/namespaces/monitoring/namespace.yaml"
        ),
        ["osc-cl1", "smaug"]
    );
    assert_eq!(
        evidence_of(&t, "cluster-scope/base/namespaces/web-dev/namespace.yaml")[0],
        "cluster-scope/overlays/prod/osc/osc-cl1/kustomization.yaml:1 no deployer reaches cluster-scope/overlays/prod/osc/osc-cl1; below the environment folder cluster-scope/overlays/prod/ its deepest folder names cluster osc-cl1"
    );
    // A dev namespace on the inferred production cluster is judged there.
    let report = scan_json(dir.path());
    let errors = findings(&report, "nonprod-on-prod-cluster");
    assert_eq!(errors.len(), 1, "{report:#}");
    assert_eq!(errors[0]["cluster"], "osc-cl1");
    assert_eq!(
        at(&report, "nonprod-on-prod-cluster"),
        ["cluster-scope/base/namespaces/web-dev/kustomization.yaml:2"]
    );
}

// ---------------------------------------------------------------------------------------
// ApplicationSets selecting clusters that Terraform creates.
// ---------------------------------------------------------------------------------------

const ADDONS_APPSET: &str = r#"apiVersion: argoproj.io/v1alpha1
kind: ApplicationSet
metadata:
  name: addons-cert-manager
spec:
  generators:
    - merge:
        mergeKeys: [server]
        generators:
          - clusters:
              values:
                addonChart: cert-manager
              selector:
                matchExpressions:
                  - key: akuity.io/argo-cd-cluster-name
                    operator: NotIn
                    values: [in-cluster]
                  - key: enable_cert_manager
                    operator: In
                    values: ['true']
                  - key: aws_cluster_name
                    operator: DoesNotExist
          - clusters:
              selector:
                matchLabels:
                  environment: staging
              values:
                addonChartVersion: v1.13.1
          - clusters:
              selector:
                matchLabels:
                  environment: prod
              values:
                addonChartVersion: v1.13.2
  template:
    metadata:
      name: addon-{{name}}-{{values.addonChart}}
    spec:
      project: default
      sources:
        - repoURL: '{{metadata.annotations.addons_repo_url}}'
          targetRevision: '{{metadata.annotations.addons_repo_revision}}'
          ref: values
        - chart: '{{values.addonChart}}'
          repoURL: https://charts.jetstack.io
          targetRevision: '{{values.addonChartVersion}}'
      destination:
        namespace: cert-manager
        name: '{{name}}'
"#;

const WORKLOADS_APPSET: &str = r#"apiVersion: argoproj.io/v1alpha1
kind: ApplicationSet
metadata:
  name: workloads
spec:
  generators:
    - clusters:
        selector:
          matchLabels:
            workloads: "true"
  template:
    metadata:
      name: workloads-{{name}}
    spec:
      project: default
      source:
        repoURL: https://github.com/acme/platform.git
        path: workloads/{{metadata.labels.environment}}
      destination:
        namespace: shop
        name: '{{name}}'
"#;

fn deployment(name: &str) -> String {
    format!(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {name}\nspec:\n  template:\n    spec:\n      containers:\n        - name: {name}\n          image: nginx\n"
    )
}

/// One note per ApplicationSet whose selectors match nothing (not one per child of its merge
/// generator); the summary says which clusters and labels to declare; `envfence init`
/// writes them, and with them the ApplicationSets place their Applications.
#[test]
fn selectors_of_clusters_created_elsewhere_are_declared_by_init() {
    let dir = tempfile::tempdir().expect("tempdir");
    let prod = deployment("web");
    let staging = deployment("web");
    write_tree(
        dir.path(),
        &[
            ("bootstrap/addons/cert-manager.yaml", ADDONS_APPSET),
            ("bootstrap/workloads.yaml", WORKLOADS_APPSET),
            ("workloads/prod/deployment.yaml", &prod),
            ("workloads/staging/deployment.yaml", &staging),
        ],
    );
    let report = scan_json(dir.path());
    assert_eq!(
        notes(&report),
        [
            (
                "bootstrap/addons/cert-manager.yaml:13".to_owned(),
                "ApplicationSet addons-cert-manager: the selectors of its clusters generators ({akuity.io/argo-cd-cluster-name NotIn [in-cluster], enable_cert_manager In [true], aws_cluster_name DoesNotExist}, {environment=staging}, {environment=prod}) match no cluster declared in this repository (Argo CD cluster Secrets, .envfence.yaml clusters), so where these Applications go is not known".to_owned()
            ),
            (
                "bootstrap/workloads.yaml:8".to_owned(),
                "clusters generator: the selector {workloads=true} matches no cluster declared in this repository (Argo CD cluster Secrets, .envfence.yaml clusters), so where these Applications go is not known".to_owned()
            ),
        ]
    );
    let (_, text) = run(dir.path(), &["scan", "-q"]);
    let lines: Vec<&str> = text.lines().collect();
    let first = lines
        .iter()
        .position(|l| {
            *l == "4 cluster selectors match no cluster known here (first at bootstrap/addons/cert-manager.yaml:13); declare the clusters they ask for in .envfence.yaml (`envfence init` writes these):"
        })
        .unwrap_or_else(|| panic!("{text}"));
    assert_eq!(
        &lines[first + 1..],
        [
            "  clusters:",
            "    - name: \"staging\"",
            "      labels: {\"enable_cert_manager\": \"true\", \"environment\": \"staging\", \"workloads\": \"true\"}",
            "      annotations: {\"addons_repo_revision\": \"\", \"addons_repo_url\": \"\"}",
            "    - name: \"prod\"",
            "      labels: {\"enable_cert_manager\": \"true\", \"environment\": \"prod\", \"workloads\": \"true\"}",
            "      annotations: {\"addons_repo_revision\": \"\", \"addons_repo_url\": \"\"}",
        ],
        "{text}"
    );
    // No `paths:` guess for folders the ApplicationSets will place once the clusters exist.
    assert!(!text.contains("paths:"), "{text}");

    let out = envfence()
        .args(["init", "--quiet"])
        .arg(dir.path())
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(0));
    let config = std::fs::read_to_string(dir.path().join(".envfence.yaml")).expect("written");
    let prod_at = line_of(&config, "  - name: \"prod\"");
    assert_eq!(
        config.lines().skip(prod_at).take(4).collect::<Vec<_>>(),
        [
            "    labels:",
            "      \"enable_cert_manager\": \"true\"",
            "      \"environment\": \"prod\"",
            "      \"workloads\": \"true\"",
        ],
        "{config}"
    );
    assert!(
        config.contains("  # prod: asked for by the cluster selectors at bootstrap/addons/cert-manager.yaml:13, bootstrap/addons/cert-manager.yaml:30, bootstrap/workloads.yaml:8\n"),
        "{config}"
    );

    // With the declared clusters, the selectors match and the Applications are placed.
    let report = scan_json(dir.path());
    assert!(notes(&report).is_empty(), "{:?}", notes(&report));
    let t = topology(dir.path());
    assert_eq!(placed_on(&t, "workloads/prod/deployment.yaml"), ["prod"]);
    assert_eq!(
        placed_on(&t, "workloads/staging/deployment.yaml"),
        ["staging"]
    );
    // Each cluster gets its own cert-manager Application (no `server` to merge on: the
    // declared clusters' parameter sets are kept apart).
    assert_eq!(
        placed_on(&t, "bootstrap/addons/cert-manager.yaml"),
        ["prod", "staging"]
    );
    assert_eq!(
        clusters(&t),
        [
            ("staging".to_owned(), "non-production".to_owned()),
            ("prod".to_owned(), "production".to_owned())
        ]
    );
}

// ---------------------------------------------------------------------------------------
// An app-of-apps chart that a bootstrap command installs.
// ---------------------------------------------------------------------------------------

/// A stand-in for helm 3 outside the repository: `version` says v3, `template` prints each
/// template of the staged chart under its `# Source:` line with `{{ .Values.x }}` replaced.
fn fake_helm(dir: &Path) -> PathBuf {
    let path = dir.join("helm");
    std::fs::write(
        &path,
        "#!/bin/sh\nPATH=/usr/bin:/bin\nif [ \"$1\" = version ]; then echo v3.14.0; exit 0; fi\nfor a in \"$@\"; do chart=\"$a\"; done\nname=$(sed -n 's/^name: *//p' \"$chart/Chart.yaml\")\nfor f in \"$chart\"/templates/*.yaml; do\n  echo '---'\n  echo \"# Source: $name/templates/$(basename \"$f\")\"\n  sed 's/{{ *\\.Values\\.[a-zA-Z]* *}}/rendered/g' \"$f\"\ndone\n",
    )
    .expect("write helm");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    path
}

fn application(name: &str, path: &str) -> String {
    format!(
        "apiVersion: argoproj.io/v1alpha1\nkind: Application\nmetadata:\n  name: {name}\n  namespace: argocd\n  labels:\n    team: {{{{ .Values.team }}}}\nspec:\n  project: default\n  source:\n    repoURL: https://github.com/acme/platform.git\n    path: {path}\n  destination:\n    server: https://kubernetes.default.svc\n    namespace: shop\n"
    )
}

const JOB: &str = "apiVersion: batch/v1\nkind: Job\nmetadata:\n  name: web-e2e\nspec:\n  template:\n    spec:\n      containers:\n        - name: e2e\n          image: cypress/included\n";

fn app_of_apps_repo(dir: &Path) {
    let web = application("web", "apps/web");
    let e2e = application("web-e2e", "apps/web-e2e");
    let tools = application("tools", "apps/tools");
    let web_deployment = deployment("web");
    let tools_deployment = deployment("tools");
    write_tree(
        dir,
        &[
            (
                "envs/prod/Chart.yaml",
                "apiVersion: v2\nname: app-of-apps\nversion: 0.1.0\n",
            ),
            ("envs/prod/values.yaml", "team: shop\n"),
            ("envs/prod/templates/web.yaml", &web),
            ("envs/prod/templates/web-e2e.yaml", &e2e),
            ("apps/web/deployment.yaml", &web_deployment),
            ("apps/web-e2e/job.yaml", JOB),
            // A chart outside any environment folder that nothing here installs.
            (
                "bootstrap/Chart.yaml",
                "apiVersion: v2\nname: bootstrap\nversion: 0.1.0\n",
            ),
            ("bootstrap/values-mgmt.yaml", "team: platform\n"),
            ("bootstrap/templates/tools.yaml", &tools),
            ("apps/tools/deployment.yaml", &tools_deployment),
        ],
    );
}

/// The chart in `envs/prod` is found by the folder convention and rendered; its
/// Applications and what they deploy are judged on `prod`. A chart nothing installs is one
/// note that says so, not one per template about rendering.
#[test]
fn an_app_of_apps_chart_in_an_environment_folder_is_installed_there() {
    let repo = tempfile::tempdir().expect("tempdir");
    app_of_apps_repo(repo.path());
    let bin = tempfile::tempdir().expect("tempdir");
    let helm = fake_helm(bin.path());
    let out = envfence()
        .env("ENVFENCE_HELM", &helm)
        .args(["scan", "-q", "--format", "json", "--fail-on", "never"])
        .arg(repo.path())
        .output()
        .expect("runs");
    let report = json_report(&out);
    assert_eq!(
        at(&report, "nonprod-on-prod-cluster"),
        ["envs/prod/templates/web-e2e.yaml:14"],
        "{report:#}"
    );
    let error = findings(&report, "nonprod-on-prod-cluster")[0];
    assert_eq!(error["cluster"], "prod");
    assert_eq!(
        error["evidence"][0]["note"],
        "no deployer reaches envs/prod; the folder envs/prod names cluster prod"
    );
    assert_eq!(
        notes(&report),
        [(
            "bootstrap/Chart.yaml:1".to_owned(),
            "chart bootstrap, whose templates define Argo CD Applications (1 template), is installed by nothing in this repository, so where they deploy is not known; if something outside the repository installs it (a bootstrap command, Terraform), declare it under entrypoints: in .envfence.yaml with the cluster it is installed on".to_owned()
        )]
    );
    for (_, message) in notes(&report) {
        assert!(!message.contains("does not render templates"), "{message}");
    }

    // Without helm the chart is still found, and its one note says why it is not rendered.
    let report = scan_json(repo.path());
    assert_eq!(
        notes(&report),
        [
            (
                "bootstrap/Chart.yaml:1".to_owned(),
                "chart bootstrap, whose templates define Argo CD Applications (1 template), is installed by nothing envfence could read (envs/prod, which it could not render, may install it), so where they deploy is not known; if something outside the repository installs it (a bootstrap command, Terraform), declare it under entrypoints: in .envfence.yaml with the cluster it is installed on".to_owned()
            ),
            (
                "envs/prod/Chart.yaml:1".to_owned(),
                "chart envs/prod is not rendered: chart rendering is off (--helm off or ENVFENCE_HELM=off); to render it, drop that setting and have helm 3 on PATH or pass --helm PATH".to_owned()
            ),
        ]
    );

    // Declared as an entry point with its values file, the bootstrap chart is installed on
    // its cluster, and its Applications say so.
    write_tree(
        repo.path(),
        &[(
            ".envfence.yaml",
            "entrypoints:\n  - path: bootstrap\n    cluster: mgmt\n    namespace: argocd\n    values: [values-mgmt.yaml]\n",
        )],
    );
    let out = envfence()
        .env("ENVFENCE_HELM", &helm)
        .args(["topology", "-q", "--format", "json"])
        .arg(repo.path())
        .output()
        .expect("runs");
    let t = json_report(&out);
    assert_eq!(placed_on(&t, "apps/tools/deployment.yaml"), ["mgmt"]);
    let evidence = evidence_of(&t, "apps/tools/deployment.yaml");
    assert_eq!(
        evidence[..2],
        [
            ".envfence.yaml:2 declared entry point: chart bootstrap is delivered to cluster mgmt from outside the repository".to_owned(),
            "bootstrap/values-mgmt.yaml:1 values file bootstrap/values-mgmt.yaml (entrypoints values)".to_owned(),
        ],
        "{evidence:?}"
    );
}

// ---------------------------------------------------------------------------------------
// Declared entry points.
// ---------------------------------------------------------------------------------------

/// A folder (with the namespace of objects that set none) and a root Application file, each
/// delivered to a named cluster; a path that is not in the repository is a note at its line.
#[test]
fn entry_points_deliver_folders_and_root_deployers() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = "apiVersion: argoproj.io/v1alpha1\nkind: Application\nmetadata:\n  name: root\nspec:\n  source:\n    repoURL: https://github.com/acme/platform.git\n    path: apps\n  destination:\n    server: https://kubernetes.default.svc\n";
    let web = deployment("web");
    let job = JOB.replace("web-e2e", "smoke-test");
    write_tree(
        dir.path(),
        &[
            ("bootstrap/root.yaml", root),
            ("apps/web.yaml", &web),
            ("platform/base/job.yaml", &job),
            (
                ".envfence.yaml",
                "clusters:\n  - name: prod-eu\n    environment: production\nentrypoints:\n  - path: bootstrap/root.yaml\n    cluster: prod-eu\n  - path: platform/base/\n    cluster: prod-eu\n    namespace: platform\n  - path: legacy\n    cluster: prod-eu\n",
            ),
        ],
    );
    let t = topology(dir.path());
    assert_eq!(placed_on(&t, "apps/web.yaml"), ["prod-eu"]);
    let evidence = evidence_of(&t, "apps/web.yaml");
    assert_eq!(
        evidence[0],
        ".envfence.yaml:5 declared entry point: root deployer bootstrap/root.yaml is delivered to cluster prod-eu from outside the repository"
    );
    assert!(
        evidence.iter().any(|e| e.starts_with(
            "bootstrap/root.yaml:10 destination.server=https://kubernetes.default.svc"
        )),
        "{evidence:?}"
    );
    let job = t["placements"]
        .as_array()
        .expect("placements")
        .iter()
        .find(|p| p["file"] == "platform/base/job.yaml")
        .expect("the job is placed");
    assert_eq!(job["cluster"], "prod-eu");
    assert_eq!(job["namespace"], "platform");
    assert_eq!(
        job["evidence"][0]["note"],
        "declared entry point: folder platform/base is delivered to cluster prod-eu from outside the repository"
    );
    assert_eq!(job["evidence"][0]["line"], 7);
    let report = scan_json(dir.path());
    assert_eq!(
        at(&report, "nonprod-on-prod-cluster"),
        ["platform/base/job.yaml:1"]
    );
    assert_eq!(
        notes(&report),
        [(
            ".envfence.yaml:10".to_owned(),
            "entry point legacy is not a file or folder of this repository, so nothing is delivered to cluster prod-eu".to_owned()
        )]
    );
}

/// A folder entry point (and a folder named after a cluster) is applied one namespace folder
/// at a time, as a pipeline applies it: a tree larger than the per-directory budget is
/// placed whole, and the scan is complete.
#[test]
fn a_tree_of_namespaces_is_not_cut_by_the_per_directory_budget() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut files: Vec<(String, String)> = Vec::new();
    for root in ["namespaces/live.example.org", "namespaces/dev-eu"] {
        for ns in ["a", "b", "c", "d"] {
            for object in ["one", "two", "three"] {
                files.push((
                    format!("{root}/{ns}/{object}.yaml"),
                    format!("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {object}\n  namespace: {ns}\n"),
                ));
            }
        }
    }
    files.push((
        ".envfence.yaml".into(),
        "clusters:\n  - name: dev-eu\nentrypoints:\n  - path: namespaces/live.example.org\n    cluster: live\nlimits:\n  kustomize-objects: 5\n".into(),
    ));
    let files: Vec<(&str, &str)> = files
        .iter()
        .map(|(p, c)| (p.as_str(), c.as_str()))
        .collect();
    write_tree(dir.path(), &files);
    let out = envfence()
        .args(["scan", "-q", "--format", "json"])
        .arg(dir.path())
        .output()
        .expect("runs");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report = json_report(&out);
    assert_eq!(coverage(&report), (24, 24));
    assert!(
        report["summary"]["incomplete"]
            .as_array()
            .is_none_or(|cuts| cuts.is_empty()),
        "{report:#}"
    );
}

/// Entry points are checked like the rest of the config: inside the repository, with a
/// cluster, no unknown key; each error names its line.
#[test]
fn entry_point_mistakes_name_their_line() {
    for (config, expected) in [
        (
            "entrypoints:\n  - path: ../elsewhere\n    cluster: prod\n",
            ".envfence.yaml:2: entry point `../elsewhere` must be a path inside the repository",
        ),
        (
            "entrypoints:\n  - path: envs/prod\n    cluster: \"\"\n",
            ".envfence.yaml:2: an entry point needs the cluster it is delivered to",
        ),
        (
            "entrypoints:\n  - path: envs/prod\n    cluster: prod\n    valuess: [a.yaml]\n",
            ".envfence.yaml:4:5: entrypoints[0]: unknown field `valuess`",
        ),
    ] {
        let dir = tempfile::tempdir().expect("tempdir");
        write_tree(dir.path(), &[(".envfence.yaml", config)]);
        let out = envfence()
            .args(["scan", "-q"])
            .arg(dir.path())
            .output()
            .expect("runs");
        assert_eq!(out.status.code(), Some(2), "{config}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(expected), "{config}: {stderr}");
    }
}

// ---------------------------------------------------------------------------------------
// Component catalogs.
// ---------------------------------------------------------------------------------------

/// A catalog of components with overlays named after channels and variants invents no
/// cluster and no tier warning, and the summary says what it looks like.
#[test]
fn a_component_catalog_invents_no_clusters() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut files: Vec<(String, String)> = Vec::new();
    for component in ["rhacs-operator", "gitops-operator", "cert-manager-operator"] {
        files.push((
            format!("{component}/operator/base/kustomization.yaml"),
            "resources:\n  - subscription.yaml\n".into(),
        ));
        files.push((
            format!("{component}/operator/base/subscription.yaml"),
            format!("apiVersion: operators.coreos.com/v1alpha1\nkind: Subscription\nmetadata:\n  name: {component}\n  namespace: openshift-operators\nspec:\n  channel: stable\n"),
        ));
        for channel in [
            "stable",
            "latest",
            "fast",
            "tech-preview",
            "dev-preview",
            "alpha",
        ] {
            files.push((
                format!("{component}/operator/overlays/{channel}/kustomization.yaml"),
                format!("resources:\n  - ../../base\npatches:\n  - target:\n      kind: Subscription\n    patch: |-\n      - op: replace\n        path: /spec/channel\n        value: {channel}\n"),
            ));
        }
    }
    files.extend([
        (
            "rhacs-operator/instance/base/kustomization.yaml".to_owned(),
            "resources:\n  - central.yaml\n".to_owned(),
        ),
        (
            "rhacs-operator/instance/base/central.yaml".to_owned(),
            "apiVersion: platform.stackrox.io/v1alpha1\nkind: Central\nmetadata:\n  name: central\n  namespace: stackrox\n".to_owned(),
        ),
        (
            "rhacs-operator/instance/overlays/internal-registry-integration/kustomization.yaml".to_owned(),
            "resources:\n  - ../../base\n  - job.yaml\n".to_owned(),
        ),
        (
            "rhacs-operator/instance/overlays/internal-registry-integration/job.yaml".to_owned(),
            "apiVersion: batch/v1\nkind: Job\nmetadata:\n  name: registry-integration\n  namespace: stackrox\n".to_owned(),
        ),
        (
            "rhacs-operator/instance/overlays/default/kustomization.yaml".to_owned(),
            "resources:\n  - ../../base\n".to_owned(),
        ),
        (
            "cert-manager-operator/instance/overlays/clustered-ephemeral-tls-letsencrypt/issuer.yaml".to_owned(),
            "apiVersion: cert-manager.io/v1\nkind: ClusterIssuer\nmetadata:\n  name: letsencrypt\n".to_owned(),
        ),
    ]);
    let files: Vec<(&str, &str)> = files
        .iter()
        .map(|(p, c)| (p.as_str(), c.as_str()))
        .collect();
    write_tree(dir.path(), &files);
    let t = topology(dir.path());
    assert!(clusters(&t).is_empty(), "{t:#}");
    let report = scan_json(dir.path());
    assert!(findings(&report, "workload-outside-its-tier").is_empty());
    assert!(
        report["findings"].as_array().expect("findings").is_empty(),
        "{report:#}"
    );
    let (code, text) = run(dir.path(), &["scan", "-q"]);
    assert_eq!(code, Some(0));
    assert!(
        text.lines().any(|l| l == "This repository looks like a component catalog consumed elsewhere: nothing in it deploys anything, and its overlays are named after variants (such as clustered-ephemeral-tls-letsencrypt, dev-preview, internal-registry-integration), not environments, so no cluster is inferred from them. Scan the repository that deploys these components."),
        "{text}"
    );
    assert!(
        !text.contains("To place the largest unplaced folders"),
        "{text}"
    );
}
