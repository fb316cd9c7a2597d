//! `envfence render --out DIR`: the objects each cluster receives, written one per file.
//! The demo's files match `kubectl kustomize` of each overlay it places (skipped with a note
//! without kubectl, unless `CI=true`); names that are URLs or hold `../` stay inside DIR;
//! `--base` writes both sides; Helm charts are written as rendered; DIR must be new or empty
//! and outside the repository.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use common::{envfence, fixture, git, helm_for_tests, write_tree};
use serde_yaml::Value;

/// Runs `envfence render -q <repo> --out <out> <extra>`: (exit code, stdout, stderr).
fn render(repo: &Path, out: &Path, extra: &[&str]) -> (Option<i32>, String, String) {
    let output = envfence()
        .args(["render", "-q"])
        .arg(repo)
        .arg("--out")
        .arg(out)
        .args(extra)
        .output()
        .expect("runs");
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// Every file under `dir`, by path relative to it (`/`-separated), parsed.
fn written(dir: &Path) -> BTreeMap<String, Value> {
    let mut found = BTreeMap::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(folder) = pending.pop() {
        for entry in std::fs::read_dir(&folder).expect("read_dir").flatten() {
            let path = entry.path();
            if path.is_dir() {
                pending.push(path);
                continue;
            }
            let text = std::fs::read_to_string(&path).expect("read");
            let value: Value = serde_yaml::from_str(&text)
                .unwrap_or_else(|e| panic!("{} does not parse ({e}):\n{text}", path.display()));
            let rel = path.strip_prefix(dir).expect("under dir");
            let rel: Vec<String> = rel
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect();
            found.insert(rel.join("/"), value);
        }
    }
    found
}

fn kubectl() -> Option<PathBuf> {
    let found = std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|d| d.join("kubectl"))
        .find(|p| p.is_file());
    if found.is_none() {
        assert!(
            std::env::var("CI").is_err(),
            "kubectl not found, and CI is set"
        );
        eprintln!("skipped: kubectl not found");
    }
    found
}

/// The objects `kubectl kustomize` builds from `dir`.
fn kustomize(kubectl: &Path, dir: &Path) -> Vec<Value> {
    let out = std::process::Command::new(kubectl)
        .arg("kustomize")
        .arg(dir)
        .output()
        .expect("kubectl runs");
    assert!(
        out.status.success(),
        "kubectl kustomize {}: {}",
        dir.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    use serde::Deserialize;
    serde_yaml::Deserializer::from_slice(&out.stdout)
        .map(|d| Value::deserialize(d).expect("kubectl's YAML parses"))
        .filter(|v| !v.is_null())
        .collect()
}

/// The names of an overlay's `configMapGenerator` and `secretGenerator` entries.
fn generator_names(overlay: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(overlay.join("kustomization.yaml")).expect("read");
    let k: Value = serde_yaml::from_str(&text).expect("parses");
    ["configMapGenerator", "secretGenerator"]
        .iter()
        .filter_map(|key| k.get(*key)?.as_sequence())
        .flatten()
        .filter_map(|g| Some(g.get("name")?.as_str()?.to_owned()))
        .collect()
}

/// Every string equal to a generated object's name (`checkout-config-dark-mode-gm45fc9gtt`)
/// without its content hash (`checkout-config-dark-mode`), as references are in what
/// envfence writes.
fn rename_references(value: &mut Value, generated: &[(String, String)]) {
    match value {
        Value::String(s) => {
            if let Some((_, base)) = generated.iter().find(|(full, _)| full == s) {
                *s = base.clone();
            }
        }
        Value::Sequence(items) => items
            .iter_mut()
            .for_each(|v| rename_references(v, generated)),
        Value::Mapping(map) => map
            .iter_mut()
            .for_each(|(_, v)| rename_references(v, generated)),
        _ => {}
    }
}

/// Lists of named items (containers, env vars, volumes) in name order: where a patch adds an
/// item, kustomize puts it first and envfence last; the items are the same.
fn sort_named_lists(value: &mut Value) {
    match value {
        Value::Sequence(items) => {
            items.iter_mut().for_each(sort_named_lists);
            let name = |v: &Value| v.get("name").and_then(Value::as_str).map(str::to_owned);
            if items.iter().all(|i| name(i).is_some()) {
                items.sort_by_key(name);
            }
        }
        Value::Mapping(map) => map.iter_mut().for_each(|(_, v)| sort_named_lists(v)),
        _ => {}
    }
}

fn field<'v>(v: &'v Value, path: &[&str]) -> Option<&'v str> {
    let mut node = v;
    for key in path {
        node = node.get(*key)?;
    }
    node.as_str()
}

/// The demo: for each kustomize overlay it places on a cluster, `kubectl kustomize` of the
/// overlay gives exactly the objects written for that cluster at those names, content
/// compared as parsed YAML; every other file of the cluster is a deployer's own object.
#[test]
fn demo_objects_match_kubectl_kustomize_of_each_overlay() {
    let Some(kubectl) = kubectl() else { return };
    let tmp = tempfile::tempdir().expect("tempdir");
    let out = tmp.path().join("objects");
    let demo = fixture("demo");
    let (code, stdout, stderr) = render(&demo, &out, &[]);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(
        stdout.starts_with("wrote ") && stdout.contains(" clusters to "),
        "{stdout}"
    );
    let files = written(&out);
    // Which overlay lands where, as the demo's Applications, ApplicationSet and Flux
    // Kustomizations say.
    let overlays: &[(&str, &str)] = &[
        ("dev-us", "apps/checkout/overlays/dev"),
        ("prod-us", "apps/checkout/overlays/production"),
        ("prod-us", "apps/checkout/overlays/feature-dark-mode"),
        ("dev-us", "apps/orders/overlays/dev"),
        ("prod-us", "apps/orders/overlays/production"),
        ("prod-eu", "apps/payments/overlays/production"),
        ("prod-eu", "apps/payments/overlays/preview-pr-481"),
        ("staging-eu", "apps/payments/overlays/staging"),
    ];
    assert!(
        stdout.contains("objects made by kustomize generators not written"),
        "{stdout}"
    );
    let mut explained: Vec<&str> = Vec::new();
    for (cluster, overlay) in overlays {
        let objects = kustomize(&kubectl, &demo.join(overlay));
        assert!(!objects.is_empty(), "{overlay}");
        // Generators' objects (`configMapGenerator`) are not written: their content is not
        // resolved offline, and references to them lack kustomize's content hash.
        let generators = generator_names(&demo.join(overlay));
        let generated: Vec<(String, String)> = objects
            .iter()
            .filter_map(|o| {
                let name = field(o, &["metadata", "name"])?;
                generators.iter().find(|g| name.contains(g.as_str()))?;
                // The name without kustomize's content hash (`-gm45fc9gtt`).
                let (unhashed, _) = name.rsplit_once('-')?;
                matches!(field(o, &["kind"]), Some("ConfigMap" | "Secret"))
                    .then(|| (name.to_owned(), unhashed.to_owned()))
            })
            .collect();
        for mut object in objects {
            let name = field(&object, &["metadata", "name"]).unwrap_or_default();
            if let Some((full, _)) = generated.iter().find(|(full, _)| full == name) {
                let kind = field(&object, &["kind"])
                    .unwrap_or_default()
                    .to_ascii_lowercase();
                assert!(
                    files
                        .keys()
                        .all(|p| !p.ends_with(&format!("/{kind}-{full}.yaml"))),
                    "{full} is written"
                );
                continue;
            }
            rename_references(&mut object, &generated);
            sort_named_lists(&mut object);
            let kind = field(&object, &["kind"]).expect("kind");
            let name = field(&object, &["metadata", "name"]).expect("name");
            let file_name = format!("{}-{name}.yaml", kind.to_ascii_lowercase());
            // At its namespace's folder when it has one; else the deployer's namespace.
            let candidates: Vec<(&String, &Value)> = files
                .iter()
                .filter(|(path, _)| {
                    let parts: Vec<&str> = path.split('/').collect();
                    parts.len() == 3
                        && parts[0] == *cluster
                        && parts[2] == file_name
                        && match field(&object, &["metadata", "namespace"]) {
                            Some(ns) => parts[1] == ns,
                            None if kind == "Namespace" => parts[1] == "_cluster",
                            None => true,
                        }
                })
                .collect();
            let same: Vec<&&String> = candidates
                .iter()
                .filter(|(_, v)| {
                    let mut v = (*v).clone();
                    sort_named_lists(&mut v);
                    v == object
                })
                .map(|(p, _)| p)
                .collect();
            assert_eq!(
                same.len(),
                1,
                "{overlay} on {cluster}: {kind}/{name} is written as {candidates:#?}, kubectl kustomize gives {object:#?}"
            );
            explained.push(same[0]);
        }
    }
    // Nothing else on those clusters but the deployers' own objects (Flux's, Argo CD's).
    let deployer_kinds = [
        "Kustomization",
        "GitRepository",
        "Application",
        "ApplicationSet",
    ];
    for (path, value) in &files {
        let cluster = path.split('/').next().unwrap_or_default();
        if !overlays.iter().any(|(c, _)| *c == cluster) || explained.contains(&path.as_str()) {
            continue;
        }
        let kind = field(value, &["kind"]).unwrap_or_default();
        assert!(
            deployer_kinds.contains(&kind),
            "{path} comes from no overlay: {value:#?}"
        );
    }
}

const APP_OF_URL: &str = "\
apiVersion: argoproj.io/v1alpha1
kind: Application
metadata:
  name: odd
  namespace: argocd
spec:
  project: default
  source:
    repoURL: https://git.example.com/platform/gitops.git
    path: apps/odd
  destination:
    server: https://10.0.0.1:6443
    namespace: odd
";

/// A cluster named by its URL, names with `../`, `/` and a leading dot: every file stays
/// inside DIR under a safe name, and two names that map to one path are both written.
#[test]
fn unsafe_names_stay_inside_the_folder() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let repo = tmp.path().join("repo");
    write_tree(
        &repo,
        &[
            ("argocd/odd.yaml", APP_OF_URL),
            (
                "apps/odd/objects.yaml",
                "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ../../escape\n  namespace: ../up\ndata: {a: '1'}\n\
                 ---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: .hidden\ndata: {b: '2'}\n\
                 ---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: web?\ndata: {c: '3'}\n\
                 ---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: web*\ndata: {c: '4'}\n",
            ),
        ],
    );
    let out = tmp.path().join("out");
    let (code, _stdout, stderr) = render(&repo, &out, &[]);
    assert_eq!(code, Some(0), "{stderr}");
    let files = written(&out);
    let paths: Vec<&str> = files.keys().map(String::as_str).collect();
    let cluster = "https___10.0.0.1_6443";
    for expected in [
        format!("{cluster}/_._up/configmap-.._.._escape.yaml"),
        format!("{cluster}/odd/configmap-.hidden.yaml"),
        format!("{cluster}/odd/configmap-web_.yaml"),
        format!("{cluster}/odd/configmap-web__2.yaml"),
    ] {
        assert!(
            paths.contains(&expected.as_str()),
            "{expected} not in {paths:#?}"
        );
    }
    // The two `web` maps are both there, each whole.
    let c = |p: &str| files[&format!("{cluster}/odd/{p}")]["data"]["c"].clone();
    let mut values = [c("configmap-web_.yaml"), c("configmap-web__2.yaml")];
    values.sort_by_key(|v| v.as_str().map(str::to_owned));
    assert_eq!(values, [Value::from("3"), Value::from("4")]);
    assert!(
        stderr.contains("2 different objects map to") && stderr.contains("configmap-web_.yaml"),
        "{stderr}"
    );
    // Nothing was written beside the folder.
    let beside: Vec<String> = std::fs::read_dir(tmp.path())
        .expect("read_dir")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(beside.len(), 2, "{beside:?}");
}

fn commit_all(dir: &Path, message: &str) -> String {
    git(dir, &["add", "-A"]);
    git(dir, &["commit", "-q", "--allow-empty", "-m", message]);
    git(dir, &["rev-parse", "HEAD"])
}

fn deployment(image: &str) -> String {
    format!(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  template:\n    spec:\n      containers:\n        - name: web\n          image: {image}\n"
    )
}

const OVERLAY: &str = "\
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
namespace: web
resources: [../../base]
";

const CONFIG: &str = "clusters:\n  - name: prod-eu\n    environment: production\n";

const FLUX: &str = "\
apiVersion: kustomize.toolkit.fluxcd.io/v1
kind: Kustomization
metadata:
  name: web
  namespace: flux-system
spec:
  path: ./apps/web/overlays/production
  sourceRef: {kind: GitRepository, name: flux-system}
";

/// `--base`: both sides written, under `base/` and `head/`; the changed object differs and
/// the same object of both sides is the same.
#[test]
fn base_writes_both_sides() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let repo = tmp.path().join("repo");
    std::fs::create_dir_all(&repo).expect("mkdir");
    git(&repo, &["init", "-q"]);
    write_tree(
        &repo,
        &[
            (".envfence.yaml", CONFIG),
            ("clusters/prod-eu/web.yaml", FLUX),
            ("apps/web/base/kustomization.yaml", "resources: [deployment.yaml, service.yaml]\n"),
            ("apps/web/base/deployment.yaml", &deployment("web:1.0")),
            (
                "apps/web/base/service.yaml",
                "apiVersion: v1\nkind: Service\nmetadata:\n  name: web\nspec:\n  ports: [{port: 80}]\n",
            ),
            ("apps/web/overlays/production/kustomization.yaml", OVERLAY),
        ],
    );
    let base = commit_all(&repo, "base");
    write_tree(
        &repo,
        &[("apps/web/base/deployment.yaml", &deployment("web:2.0"))],
    );
    let head = commit_all(&repo, "head");
    let out = tmp.path().join("out");
    let (code, stdout, stderr) = render(&repo, &out, &["--base", &base, "--head", &head]);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(
        stdout.contains("(base)") && stdout.contains("(head)"),
        "{stdout}"
    );
    let files = written(&out);
    let image = |side: &str| {
        files[&format!("{side}/prod-eu/web/deployment-web.yaml")]["spec"]["template"]["spec"]
            ["containers"][0]["image"]
            .clone()
    };
    assert_eq!(image("base"), Value::from("web:1.0"));
    assert_eq!(image("head"), Value::from("web:2.0"));
    let service = |side: &str| files[&format!("{side}/prod-eu/web/service-web.yaml")].clone();
    assert_eq!(service("base"), service("head"));
    assert_eq!(service("head")["metadata"]["namespace"], Value::from("web"));
    // The working tree as head: the same as the head commit.
    let out2 = tmp.path().join("out2");
    let (code, _, stderr) = render(&repo, &out2, &["--base", "HEAD~1"]);
    assert_eq!(code, Some(0), "{stderr}");
    let files2 = written(&out2);
    assert_eq!(
        files2["head/prod-eu/web/deployment-web.yaml"],
        files["head/prod-eu/web/deployment-web.yaml"]
    );
}

/// Secrets are written with their keys but never their values.
#[test]
fn secret_values_are_redacted() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let repo = tmp.path().join("repo");
    write_tree(
        &repo,
        &[
            (".envfence.yaml", CONFIG),
            (
                "clusters/prod-eu/secret.yaml",
                "apiVersion: v1\nkind: Secret\nmetadata:\n  name: db\n  namespace: web\ndata:\n  password: aHVudGVyMg==\nstringData:\n  token: ghp_abcdefghijklmnop\n",
            ),
        ],
    );
    let out = tmp.path().join("out");
    let (code, _, stderr) = render(&repo, &out, &[]);
    assert_eq!(code, Some(0), "{stderr}");
    let text = std::fs::read_to_string(out.join("prod-eu/web/secret-db.yaml")).expect("written");
    assert!(
        !text.contains("aHVudGVyMg==") && !text.contains("ghp_"),
        "{text}"
    );
    let value: Value = serde_yaml::from_str(&text).expect("parses");
    assert_eq!(value["data"]["password"], Value::from("cmVkYWN0ZWQ="));
    assert_eq!(value["stringData"]["token"], Value::from("****"));
}

/// A non-empty folder, and one inside the repository, are refused with exit 2 and one line.
#[test]
fn refuses_a_non_empty_folder_and_one_inside_the_repository() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let repo = tmp.path().join("repo");
    write_tree(
        &repo,
        &[
            (".envfence.yaml", CONFIG),
            ("clusters/prod-eu/web.yaml", &deployment("web:1")),
        ],
    );
    let out = tmp.path().join("out");
    write_tree(&out, &[("keep.txt", "mine")]);
    let (code, stdout, stderr) = render(&repo, &out, &[]);
    assert_eq!(code, Some(2), "{stdout}{stderr}");
    assert!(stderr.contains("is not empty"), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert_eq!(
        std::fs::read_to_string(out.join("keep.txt")).expect("kept"),
        "mine"
    );
    assert_eq!(std::fs::read_dir(&out).expect("read").count(), 1);

    let inside = repo.join("rendered");
    let (code, _, stderr) = render(&repo, &inside, &[]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("inside the scanned repository"), "{stderr}");
    assert!(!inside.exists());

    // An empty folder is fine.
    let empty = tmp.path().join("empty");
    std::fs::create_dir_all(&empty).expect("mkdir");
    let (code, stdout, stderr) = render(&repo, &empty, &[]);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(
        stdout.starts_with("wrote 1 object for 1 cluster to "),
        "{stdout}"
    );
    assert!(empty.join("prod-eu/_unset/deployment-web.yaml").is_file());
}

const CHART_DEPLOYMENT: &str = r#"apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ .Release.Name }}
spec:
  template:
    spec:
      containers:
        - name: web
          image: "nginx:{{ .Values.tag }}"
"#;

/// A chart an Application installs: its objects are written as helm renders them, with the
/// Application's values.
#[test]
fn helm_chart_objects_are_written_as_rendered() {
    let Some(helm) = helm_for_tests() else { return };
    let tmp = tempfile::tempdir().expect("tempdir");
    let repo = tmp.path().join("repo");
    write_tree(
        &repo,
        &[
            (".envfence.yaml", CONFIG),
            ("charts/web/Chart.yaml", "apiVersion: v2\nname: web\nversion: 0.1.0\n"),
            ("charts/web/values.yaml", "tag: stable\n"),
            ("charts/web/values-qa.yaml", "tag: qa\n"),
            ("charts/web/templates/deployment.yaml", CHART_DEPLOYMENT),
            (
                "apps/web-qa.yaml",
                "apiVersion: argoproj.io/v1alpha1\nkind: Application\nmetadata:\n  name: web-qa\nspec:\n  destination:\n    name: prod-eu\n    namespace: web\n  source:\n    repoURL: https://example.com/repo.git\n    path: charts/web\n    helm:\n      valueFiles:\n        - values-qa.yaml\n",
            ),
        ],
    );
    let out = tmp.path().join("out");
    let output = envfence()
        .env("ENVFENCE_HELM", &helm)
        .args(["render", "-q"])
        .arg(&repo)
        .arg("--out")
        .arg(&out)
        .output()
        .expect("runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    let files = written(&out);
    let deployment = &files["prod-eu/web/deployment-web-qa.yaml"];
    assert_eq!(
        deployment["spec"]["template"]["spec"]["containers"][0]["image"],
        Value::from("nginx:qa"),
        "{files:#?}"
    );
    assert_eq!(deployment["metadata"]["name"], Value::from("web-qa"));
}

/// One object two deployers deliver to the same cluster and namespace from two copies of its
/// file, the same both times: one file, and no note.
#[test]
fn an_object_delivered_twice_alike_is_one_file() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let repo = tmp.path().join("repo");
    let flux = |name: &str| {
        FLUX.replace("name: web\n", &format!("name: {name}\n"))
            .replace("./apps/web/overlays/production", &format!("./apps/{name}"))
    };
    let object = deployment("web:1.0").replacen("name: web\n", "name: web\n  namespace: web\n", 1);
    write_tree(
        &repo,
        &[
            (".envfence.yaml", CONFIG),
            ("clusters/prod-eu/web-a.yaml", &flux("web-a")),
            ("clusters/prod-eu/web-b.yaml", &flux("web-b")),
            ("apps/web-a/deployment.yaml", &object),
            ("apps/web-b/deployment.yaml", &object),
        ],
    );
    let topology = envfence()
        .args(["topology", "-q", "--format", "json"])
        .arg(&repo)
        .output()
        .expect("runs");
    let topology: serde_json::Value = serde_json::from_slice(&topology.stdout).expect("json");
    let placed = topology["placements"]
        .as_array()
        .expect("placements")
        .iter()
        .filter(|p| p["kind"] == "Deployment")
        .count();
    assert_eq!(placed, 2, "two deliveries of the Deployment");
    let out = tmp.path().join("out");
    let (code, stdout, stderr) = render(&repo, &out, &[]);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stderr.is_empty(), "{stderr}");
    let files = written(&out);
    let deployments: Vec<&String> = files.keys().filter(|p| p.contains("deployment-")).collect();
    assert_eq!(deployments, ["prod-eu/web/deployment-web.yaml"], "{stdout}");

    // Different content at the same path: both written, numbered, and said so.
    write_tree(
        &repo,
        &[(
            "apps/web-b/deployment.yaml",
            &object.replace("web:1.0", "web:2.0"),
        )],
    );
    let out = tmp.path().join("out2");
    let (code, _, stderr) = render(&repo, &out, &[]);
    assert_eq!(code, Some(0), "{stderr}");
    let files = written(&out);
    let deployments: Vec<&String> = files.keys().filter(|p| p.contains("deployment-")).collect();
    assert_eq!(
        deployments,
        [
            "prod-eu/web/deployment-web.yaml",
            "prod-eu/web/deployment-web_2.yaml"
        ]
    );
    assert!(
        stderr
            .contains("envfence: note: 2 different objects map to prod-eu/web/deployment-web.yaml"),
        "{stderr}"
    );
}
