//! Flux deployers whose source is outside the repository (issue 26): a Kustomization of an
//! OCIRepository, a Bucket or another Git repository, and a HelmRelease of a chart from a Helm
//! or OCI repository, each stand for their payload on their cluster (an opaque placement),
//! classed by their own name, labels, namespace, path or chart. Each test is a small
//! repository written the way a user would.

mod common;

use common::{at, findings, run_on_files as run};

use serde_json::Value;

/// The opaque placement of `name` on `cluster`.
fn opaque<'t>(topology: &'t Value, name: &str, cluster: &str) -> &'t Value {
    topology["placements"]
        .as_array()
        .expect("placements")
        .iter()
        .find(|p| p["name"] == name && p["cluster"] == cluster && p["opaque"] == true)
        .unwrap_or_else(|| panic!("{name} is an opaque placement on {cluster}: {topology:#}"))
}

/// Whether some hop of `placement` says `words`.
fn says(placement: &Value, words: &str) -> bool {
    placement["evidence"]
        .as_array()
        .expect("evidence")
        .iter()
        .any(|e| e["note"].as_str().is_some_and(|n| n.contains(words)))
}

/// An end-to-end suite shipped as an OCI artifact, applied in the production cluster's tree.
const E2E_SUITE: &str = "apiVersion: source.toolkit.fluxcd.io/v1beta2
kind: OCIRepository
metadata:
  name: e2e-suite
  namespace: flux-system
spec:
  interval: 10m
  url: oci://ghcr.io/acme/manifests/e2e-suite
  ref:
    tag: latest
---
apiVersion: kustomize.toolkit.fluxcd.io/v1
kind: Kustomization
metadata:
  name: e2e-suite
  namespace: flux-system
spec:
  interval: 10m
  targetNamespace: e2e
  sourceRef:
    kind: OCIRepository
    name: e2e-suite
  path: ./
  prune: true
";

/// The production web app, from an OCI artifact too: nothing says it is not production.
const WEB: &str = "apiVersion: source.toolkit.fluxcd.io/v1beta2
kind: OCIRepository
metadata:
  name: web
  namespace: flux-system
spec:
  interval: 10m
  url: oci://ghcr.io/acme/manifests/web
  ref:
    semver: '>=1.0.0'
---
apiVersion: kustomize.toolkit.fluxcd.io/v1
kind: Kustomization
metadata:
  name: web
  namespace: flux-system
spec:
  interval: 10m
  targetNamespace: web
  sourceRef:
    kind: OCIRepository
    name: web
  prune: true
";

#[test]
fn an_e2e_suite_from_an_oci_artifact_on_the_production_cluster_is_an_error() {
    let files = [
        ("clusters/production/e2e-suite.yaml", E2E_SUITE),
        ("clusters/production/web.yaml", WEB),
        ("clusters/staging/e2e-suite.yaml", E2E_SUITE),
        ("clusters/staging/web.yaml", WEB),
    ];
    let (code, report) = run("scan", &files);
    assert_eq!(code, Some(1), "{report:#}");
    // Once, at the production Kustomization's path; the staging suite and the production
    // web app are silent.
    assert_eq!(
        at(&report, "nonprod-on-prod-cluster"),
        ["clusters/production/e2e-suite.yaml:23"],
        "{report:#}"
    );
    let (_, message) = &findings(&report, "nonprod-on-prod-cluster")[0];
    assert!(message.contains("Kustomization e2e-suite"), "{message}");
    // A payload with a known destination is an opaque placement, not a note.
    assert!(
        findings(&report, "unresolved-placement").is_empty(),
        "{report:#}"
    );

    let (_, topology) = run("topology", &files);
    let suite = opaque(&topology, "e2e-suite", "production");
    assert_eq!(suite["namespace"], "e2e");
    assert_eq!(suite["workload_class"], "non-production", "{suite:#}");
    assert!(
        says(
            suite,
            "OCIRepository e2e-suite at oci://ghcr.io/acme/manifests/e2e-suite is outside this repository"
        ),
        "{suite:#}"
    );
    // Without a path, the source reference is the deployer's line.
    let web = opaque(&topology, "web", "production");
    assert_eq!(web["deployer"]["line"], 20, "{web:#}");
    assert_ne!(web["workload_class"], "non-production", "{web:#}");
}

#[test]
fn a_bucket_or_another_git_repository_is_opaque_too() {
    let bucket = "apiVersion: source.toolkit.fluxcd.io/v1
kind: Bucket
metadata:
  name: load-tests
  namespace: flux-system
spec:
  interval: 10m
  endpoint: s3.amazonaws.com
  bucketName: acme-load-tests
---
apiVersion: kustomize.toolkit.fluxcd.io/v1
kind: Kustomization
metadata:
  name: load-tests
  namespace: flux-system
spec:
  interval: 10m
  sourceRef:
    kind: Bucket
    name: load-tests
  path: ./k6
";
    let git = "apiVersion: source.toolkit.fluxcd.io/v1
kind: GitRepository
metadata:
  name: preview-env
  namespace: flux-system
spec:
  interval: 1m
  url: https://github.com/acme/preview-env
  ref:
    branch: main
---
apiVersion: kustomize.toolkit.fluxcd.io/v1
kind: Kustomization
metadata:
  name: preview-env
  namespace: flux-system
spec:
  interval: 10m
  sourceRef:
    kind: GitRepository
    name: preview-env
  path: ./deploy/pr-482
";
    let files = [
        ("clusters/production/load-tests.yaml", bucket),
        ("clusters/production/preview.yaml", git),
    ];
    let (code, report) = run("scan", &files);
    assert_eq!(code, Some(1), "{report:#}");
    assert_eq!(
        at(&report, "nonprod-on-prod-cluster"),
        [
            "clusters/production/load-tests.yaml:21",
            "clusters/production/preview.yaml:22",
        ],
        "{report:#}"
    );
    let (_, topology) = run("topology", &files);
    assert!(
        says(
            opaque(&topology, "load-tests", "production"),
            "Bucket load-tests at s3.amazonaws.com/acme-load-tests is outside this repository"
        ),
        "{topology:#}"
    );
}

#[test]
fn a_helm_release_of_a_remote_chart_stands_for_it() {
    let repository = "apiVersion: source.toolkit.fluxcd.io/v1
kind: HelmRepository
metadata:
  name: podinfo
  namespace: flux-system
spec:
  url: https://stefanprodan.github.io/podinfo
";
    let podinfo = "apiVersion: helm.toolkit.fluxcd.io/v2
kind: HelmRelease
metadata:
  name: podinfo
  namespace: podinfo
spec:
  interval: 10m
  chart:
    spec:
      chart: podinfo
      version: 6.5.4
      sourceRef:
        kind: HelmRepository
        name: podinfo
        namespace: flux-system
";
    let k6 = "apiVersion: source.toolkit.fluxcd.io/v1beta2
kind: OCIRepository
metadata:
  name: k6-operator
  namespace: flux-system
spec:
  url: oci://ghcr.io/grafana/helm-charts/k6-operator
  ref:
    tag: 3.9.0
---
apiVersion: helm.toolkit.fluxcd.io/v2
kind: HelmRelease
metadata:
  name: checkout-load-test
  namespace: load-testing
spec:
  interval: 10m
  chartRef:
    kind: OCIRepository
    name: k6-operator
    namespace: flux-system
";
    let files = [
        ("clusters/production/sources.yaml", repository),
        ("clusters/production/podinfo.yaml", podinfo),
        ("clusters/production/k6.yaml", k6),
    ];
    let (code, report) = run("scan", &files);
    assert_eq!(code, Some(1), "{report:#}");
    // The load test, at its chart reference; podinfo says nothing of another environment.
    assert_eq!(
        at(&report, "nonprod-on-prod-cluster"),
        ["clusters/production/k6.yaml:18"],
        "{report:#}"
    );
    let (_, topology) = run("topology", &files);
    let load = opaque(&topology, "checkout-load-test", "production");
    assert!(
        says(
            load,
            "its chart comes from OCIRepository k6-operator at oci://ghcr.io/grafana/helm-charts/k6-operator"
        ),
        "{load:#}"
    );
    let podinfo = opaque(&topology, "podinfo", "production");
    assert!(
        says(
            podinfo,
            "its chart podinfo comes from HelmRepository podinfo at https://stefanprodan.github.io/podinfo"
        ),
        "{podinfo:#}"
    );
    // The HelmRelease stands for its chart in its own namespace: it is placed once there,
    // and its document still counts as placed.
    let placements_of_podinfo = topology["placements"]
        .as_array()
        .expect("placements")
        .iter()
        .filter(|p| p["file"] == "clusters/production/podinfo.yaml")
        .count();
    assert_eq!(placements_of_podinfo, 1, "{topology:#}");
    let coverage = &report["summary"]["coverage"];
    assert_eq!(coverage["placed"], coverage["objects"], "{coverage:#}");
}
