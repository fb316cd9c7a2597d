//! Kargo (issue 26): a Stage classifies the Argo CD Applications it promotes into (an
//! `argocd-update` step, `promotionMechanisms.argoCDAppUpdates`, or the Application's
//! `kargo.akuity.io/authorized-stage` annotation), by its name, labels and place in the
//! promotion graph; Kargo's own objects are not Kubernetes objects. Each test is a small
//! repository written the way a user would.

mod common;

use common::{at, findings, placement, run_on_files as run};

use serde_json::Value;

/// The evidence of a placement as "file:line note".
fn chain(placement: &Value) -> Vec<String> {
    placement["evidence"]
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

const PROD_CLUSTER: &str = "apiVersion: v1
kind: Secret
metadata:
  name: prod-eu
  namespace: argocd
  labels:
    argocd.argoproj.io/secret-type: cluster
    env: production
stringData:
  name: prod-eu
  server: https://prod-eu.k8s.example.com
";

fn deployment(name: &str) -> String {
    format!(
        "apiVersion: apps/v1
kind: Deployment
metadata:
  name: {name}
spec:
  template:
    spec:
      containers:
        - name: {name}
          image: ghcr.io/acme/{name}:1.0.0
"
    )
}

/// A Project, a Warehouse, and Stages `test` → `prod`.
const PIPELINE: &str = "apiVersion: kargo.akuity.io/v1alpha1
kind: Project
metadata:
  name: kargo-demo
---
apiVersion: kargo.akuity.io/v1alpha1
kind: Warehouse
metadata:
  name: guestbook
  namespace: kargo-demo
spec:
  subscriptions:
    - image:
        repoURL: ghcr.io/acme/guestbook
---
apiVersion: kargo.akuity.io/v1alpha1
kind: Stage
metadata:
  name: test
  namespace: kargo-demo
spec:
  requestedFreight:
    - origin:
        kind: Warehouse
        name: guestbook
      sources:
        direct: true
---
apiVersion: kargo.akuity.io/v1alpha1
kind: Stage
metadata:
  name: prod
  namespace: kargo-demo
spec:
  requestedFreight:
    - origin:
        kind: Warehouse
        name: guestbook
      sources:
        stages:
          - test
";

/// One Application per stage, each authorized for its Stage; nothing in the Applications'
/// names, paths or namespaces says an environment. The `test` one is sent to production.
const PER_STAGE: &str = "apiVersion: argoproj.io/v1alpha1
kind: ApplicationSet
metadata:
  name: guestbook
  namespace: argocd
spec:
  generators:
    - list:
        elements:
          - app: guestbook-blue
            stage: test
            cluster: prod-eu
          - app: guestbook-green
            stage: prod
            cluster: prod-eu
  template:
    metadata:
      name: '{{app}}'
      annotations:
        kargo.akuity.io/authorized-stage: 'kargo-demo:{{stage}}'
    spec:
      project: default
      source:
        repoURL: https://github.com/acme/gitops.git
        path: 'apps/{{app}}'
      destination:
        name: '{{cluster}}'
        namespace: guestbook
";

#[test]
fn a_test_stage_whose_application_goes_to_production_is_an_error_at_its_destination() {
    let blue = deployment("guestbook-blue");
    let green = deployment("guestbook-green");
    let files = [
        ("kargo/pipeline.yaml", PIPELINE),
        ("argocd/guestbook.yaml", PER_STAGE),
        ("clusters/prod-eu.yaml", PROD_CLUSTER),
        ("apps/guestbook-blue/deployment.yaml", blue.as_str()),
        ("apps/guestbook-green/deployment.yaml", green.as_str()),
    ];
    let (code, report) = run("scan", &files);
    assert_eq!(code, Some(1), "{report:#}");
    let errors = findings(&report, "nonprod-on-prod-cluster");
    // Once, at the template's destination; the prod stage's Application is silent.
    assert_eq!(
        at(&report, "nonprod-on-prod-cluster"),
        ["argocd/guestbook.yaml:27"],
        "{report:#}"
    );
    assert!(
        errors[0].1.contains("Application guestbook-blue")
            && errors[0].1.contains("Kargo Stage name test"),
        "{errors:?}"
    );
    // Kargo's own objects are not Kubernetes objects: two Deployments, the ApplicationSet
    // and the cluster Secret.
    assert_eq!(report["summary"]["coverage"]["objects"], 4, "{report:#}");

    let (_, topology) = run("topology", &files);
    let hops = chain(placement(
        &topology,
        "apps/guestbook-blue/deployment.yaml",
        "prod-eu",
    ));
    let position = |prefix: &str| {
        hops.iter()
            .position(|h| h.starts_with(prefix))
            .unwrap_or_else(|| panic!("no hop {prefix}: {hops:#?}"))
    };
    // Stage → Application → destination.
    let stage = position("kargo/pipeline.yaml:19 Kargo Stage kargo-demo:test promotes into Application guestbook-blue");
    let annotation = position("argocd/guestbook.yaml:20 Application guestbook-blue is authorized for Kargo Stage kargo-demo:test");
    let destination = position("argocd/guestbook.yaml:27 destination.name=prod-eu");
    assert!(stage < annotation && annotation < destination, "{hops:#?}");
    let green = placement(&topology, "apps/guestbook-green/deployment.yaml", "prod-eu");
    assert_eq!(green["workload_class"], "production", "{green:#}");
    assert_eq!(green["workload_class_reason"], "Kargo Stage name prod");
}

/// Stages `qa` → `prod` → `smoke-test` of project `shop`: `qa` updates its Application
/// through a variable, `prod` the way Kargo before 1.0 did, `smoke-test` through a
/// PromotionTask.
const SHOP: &str = "apiVersion: kargo.akuity.io/v1alpha1
kind: Stage
metadata:
  name: qa
  namespace: shop
spec:
  requestedFreight:
    - origin:
        kind: Warehouse
        name: checkout
      sources:
        direct: true
  promotionTemplate:
    spec:
      vars:
        - name: app
          value: checkout-eu
      steps:
        - uses: argocd-update
          config:
            apps:
              - name: ${{ vars.app }}
---
apiVersion: kargo.akuity.io/v1alpha1
kind: Stage
metadata:
  name: prod
  namespace: shop
spec:
  subscriptions:
    upstreamStages:
      - name: qa
  promotionMechanisms:
    argoCDAppUpdates:
      - appName: checkout-main
        appNamespace: argocd
---
apiVersion: kargo.akuity.io/v1alpha1
kind: Stage
metadata:
  name: smoke-test
  namespace: shop
spec:
  requestedFreight:
    - origin:
        kind: Warehouse
        name: checkout
      sources:
        stages:
          - prod
  promotionTemplate:
    spec:
      steps:
        - task:
            name: update-app
          vars:
            - name: app
              value: checkout-us
";

const TASK: &str = "apiVersion: kargo.akuity.io/v1alpha1
kind: PromotionTask
metadata:
  name: update-app
  namespace: shop
spec:
  vars:
    - name: app
  steps:
    - uses: argocd-update
      config:
        apps:
          - name: ${{ vars.app }}
            namespace: argocd
";

fn application(name: &str) -> String {
    format!(
        "apiVersion: argoproj.io/v1alpha1
kind: Application
metadata:
  name: {name}
  namespace: argocd
spec:
  project: default
  source:
    repoURL: https://github.com/acme/gitops.git
    path: apps/{name}
  destination:
    name: prod-eu
    namespace: checkout
"
    )
}

#[test]
fn stages_classify_by_name_and_by_their_place_in_the_promotion_graph() {
    let apps: Vec<(String, String, String)> = ["checkout-eu", "checkout-main", "checkout-us"]
        .iter()
        .map(|n| {
            (
                format!("argocd/{n}.yaml"),
                application(n),
                format!("apps/{n}/deployment.yaml"),
            )
        })
        .collect();
    let deployments: Vec<String> = ["checkout-eu", "checkout-main", "checkout-us"]
        .iter()
        .map(|n| deployment(n))
        .collect();
    let mut files: Vec<(&str, &str)> = vec![
        ("kargo/stages.yaml", SHOP),
        ("kargo/task.yaml", TASK),
        ("clusters/prod-eu.yaml", PROD_CLUSTER),
    ];
    for ((app_file, app, deployment_file), deployment) in apps.iter().zip(&deployments) {
        files.push((app_file.as_str(), app.as_str()));
        files.push((deployment_file.as_str(), deployment.as_str()));
    }
    let (code, report) = run("scan", &files);
    assert_eq!(code, Some(1), "{report:#}");
    // Only the qa Stage's Application, at its destination line.
    assert_eq!(
        at(&report, "nonprod-on-prod-cluster"),
        ["argocd/checkout-eu.yaml:12"],
        "{report:#}"
    );
    assert!(
        findings(&report, "nonprod-on-prod-cluster")[0]
            .1
            .contains("Kargo Stage name qa"),
        "{report:#}"
    );
    // Every Stage found its Application: no note.
    assert!(
        findings(&report, "unresolved-placement").is_empty(),
        "{report:#}"
    );

    let (_, topology) = run("topology", &files);
    let eu = placement(&topology, "apps/checkout-eu/deployment.yaml", "prod-eu");
    assert!(
        chain(eu).contains(
            &"kargo/stages.yaml:22 Kargo Stage shop:qa promotes into Application checkout-eu (argocd-update step)".to_owned()
        ),
        "{eu:#}"
    );
    let main = placement(&topology, "apps/checkout-main/deployment.yaml", "prod-eu");
    assert_eq!(main["workload_class_reason"], "Kargo Stage name prod");
    assert!(
        chain(main).contains(
            &"kargo/stages.yaml:35 Kargo Stage shop:prod promotes into Application checkout-main (promotionMechanisms.argoCDAppUpdates)".to_owned()
        ),
        "{main:#}"
    );
    // A stage fed from prod is not a test, whatever its name.
    let us = placement(&topology, "apps/checkout-us/deployment.yaml", "prod-eu");
    assert_eq!(us["workload_class"], "production", "{us:#}");
    assert_eq!(
        us["workload_class_reason"],
        "Kargo Stage smoke-test is fed from production Stage prod"
    );
    assert!(
        chain(us).contains(
            &"kargo/task.yaml:13 Kargo Stage shop:smoke-test promotes into Application checkout-us (argocd-update step)".to_owned()
        ),
        "{us:#}"
    );
}

#[test]
fn a_stage_whose_application_is_not_here_is_a_note_at_its_line() {
    let stages = "apiVersion: kargo.akuity.io/v1alpha1
kind: Stage
metadata:
  name: dev
  namespace: shop
spec:
  promotionTemplate:
    spec:
      steps:
        - uses: argocd-update
          config:
            apps:
              - name: checkout-dev
              - name: ${{ outputs.render.app }}
---
apiVersion: kargo.akuity.io/v1alpha1
kind: Stage
metadata:
  name: staging
  namespace: shop
spec:
  promotionTemplate:
    spec:
      steps:
        - uses: git-clone
        - uses: git-push
";
    let (code, report) = run("scan", &[("kargo/stages.yaml", stages)]);
    assert_eq!(code, Some(0), "{report:#}");
    let notes = findings(&report, "unresolved-placement");
    assert_eq!(
        notes.iter().map(|(l, _)| l.as_str()).collect::<Vec<_>>(),
        [
            "kargo/stages.yaml:13",
            "kargo/stages.yaml:14",
            "kargo/stages.yaml:16",
        ],
        "{notes:#?}"
    );
    assert!(
        notes[0]
            .1
            .contains("Application checkout-dev, which no Application"),
        "{notes:#?}"
    );
    assert!(
        notes[1].1.contains("`${{ outputs.render.app }}`"),
        "{notes:#?}"
    );
    assert!(
        notes[2]
            .1
            .contains("Kargo Stage staging updates no Argo CD Application"),
        "{notes:#?}"
    );
    // Stages are not Kubernetes objects: nothing to place.
    assert_eq!(report["summary"]["coverage"]["objects"], 0, "{report:#}");
}
