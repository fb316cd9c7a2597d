//! kfctl (issue 26, `kubeflow__testing`): a Kubeflow KfDef applies the kustomize folders
//! `kfctl build` committed beside it (`kustomize/<application>/`) to the cluster its
//! `metadata.clusterName` names; applications whose folder is not committed are one note.

mod common;

use common::{at, run_on_files as run};

use serde_json::Value;

const KFDEF: &str = "apiVersion: kfdef.apps.kubeflow.org/v1
kind: KfDef
metadata:
  clusterName: gke_acme_us-east1-d_kf-prod
  name: kf-prod
  namespace: kubeflow
spec:
  applications:
  - kustomizeConfig:
      repoRef:
        name: manifests
        path: jupyter/jupyter-web-app
    name: jupyter-web-app
  - kustomizeConfig:
      repoRef:
        name: manifests
        path: tests/e2e
    name: e2e-tests
  - kustomizeConfig:
      repoRef:
        name: manifests
        path: istio/istio
    name: istio
";

fn deployment(name: &str) -> String {
    format!(
        "apiVersion: apps/v1
kind: Deployment
metadata:
  name: {name}
  namespace: kubeflow
spec:
  template:
    spec:
      containers:
        - name: {name}
          image: gcr.io/acme/{name}:1.0.0
"
    )
}

const KUSTOMIZATION: &str = "apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources:
- deployment.yaml
";

fn placements<'t>(topology: &'t Value, file: &str) -> Vec<&'t Value> {
    topology["placements"]
        .as_array()
        .expect("placements")
        .iter()
        .filter(|p| p["file"] == file)
        .collect()
}

fn files(web: &str, e2e: &str) -> Vec<(&'static str, String)> {
    vec![
        ("kf/kfctl.yaml", KFDEF.to_owned()),
        (
            "kf/kustomize/jupyter-web-app/kustomization.yaml",
            KUSTOMIZATION.to_owned(),
        ),
        (
            "kf/kustomize/jupyter-web-app/deployment.yaml",
            deployment(web),
        ),
        (
            "kf/kustomize/e2e-tests/kustomization.yaml",
            KUSTOMIZATION.to_owned(),
        ),
        ("kf/kustomize/e2e-tests/deployment.yaml", deployment(e2e)),
    ]
}

#[test]
fn a_kfdef_applies_its_built_folders_to_the_cluster_it_names() {
    let owned = files("jupyter-web-app", "e2e-runner");
    let tree: Vec<(&str, &str)> = owned.iter().map(|(p, t)| (*p, t.as_str())).collect();
    let (code, topology) = run("topology", &tree);
    assert_eq!(code, Some(0), "{topology:#}");
    for file in [
        "kf/kustomize/jupyter-web-app/deployment.yaml",
        "kf/kustomize/e2e-tests/deployment.yaml",
    ] {
        let placed = placements(&topology, file);
        assert_eq!(placed.len(), 1, "{file}: {topology:#}");
        assert_eq!(placed[0]["cluster"], "gke_acme_us-east1-d_kf-prod");
        let evidence: Vec<String> = placed[0]["evidence"]
            .as_array()
            .expect("evidence")
            .iter()
            .map(|e| format!("{}:{}", e["file"].as_str().unwrap_or(""), e["line"]))
            .collect();
        // The cluster field, then the application entry that names the folder.
        assert!(
            evidence.contains(&"kf/kfctl.yaml:4".to_owned()),
            "{evidence:?}"
        );
        let app_line = if file.contains("jupyter") { 13 } else { 18 };
        assert!(
            evidence.contains(&format!("kf/kfctl.yaml:{app_line}")),
            "{evidence:?}"
        );
    }
    // istio is built from the manifests repository: the KfDef stands for it, an opaque
    // placement on the cluster with its reason at the istio entry.
    let opaque = placements(&topology, "kf/kfctl.yaml");
    assert_eq!(opaque.len(), 1, "{topology:#}");
    assert_eq!(opaque[0]["cluster"], "gke_acme_us-east1-d_kf-prod");
    assert_eq!(opaque[0]["opaque"], true, "{:#}", opaque[0]);
    let reason = opaque[0]["evidence"]
        .as_array()
        .expect("evidence")
        .iter()
        .find(|e| e["line"] == 23)
        .and_then(|e| e["note"].as_str())
        .unwrap_or("");
    assert!(
        reason.contains("kfctl builds 1 of its applications (istio)"),
        "{reason}"
    );
}

#[test]
fn an_e2e_application_a_kfdef_applies_to_production_is_an_error() {
    let owned = files("jupyter-web-app", "e2e-runner");
    let tree: Vec<(&str, &str)> = owned.iter().map(|(p, t)| (*p, t.as_str())).collect();
    let (code, report) = run("scan", &tree);
    assert_eq!(code, Some(1), "{report:#}");
    assert_eq!(
        at(&report, "nonprod-on-prod-cluster"),
        vec!["kf/kfctl.yaml:18".to_owned()],
        "{report:#}"
    );
}
