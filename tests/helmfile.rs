//! helmfile (issue 28): each (helmfile, environment) pair is one run; its releases land on the
//! release's `kubeContext`, else `helmDefaults.kubeContext`, else the environment's name (else
//! the file's name), as rendered local charts or opaque placements of remote ones. Each test
//! is a small repository written the way a user would.

mod common;

use common::{
    at, envfence, findings, helm_for_tests, json_report, notes, run_on_files as run, write_tree,
};

use serde_json::Value;

/// The placements of `file` as (cluster, kind/name, opaque).
fn placed(topology: &Value, file: &str) -> Vec<(String, String, bool)> {
    let mut out: Vec<(String, String, bool)> = topology["placements"]
        .as_array()
        .expect("placements")
        .iter()
        .filter(|p| p["file"] == file)
        .map(|p| {
            (
                p["cluster"].as_str().unwrap_or("").to_owned(),
                format!(
                    "{}/{}",
                    p["kind"].as_str().unwrap_or(""),
                    p["name"].as_str().unwrap_or("")
                ),
                p["opaque"] == true,
            )
        })
        .collect();
    out.sort();
    out
}

const CONDITION_HELMFILE: &str = "environments:
  staging:
    values:
      - environments/staging.yaml
  production:
    values:
      - environments/production.yaml
---
releases:
  - name: e2e-runner
    namespace: e2e
    chart: oci://ghcr.io/acme/charts/e2e-runner
    condition: e2eRunner.enabled
  - name: api
    namespace: api
    chart: acme/api
  - name: debug-tools
    namespace: debug
    chart: acme/debug-tools
    installed: false
";

fn condition_repo() -> Vec<(&'static str, &'static str)> {
    vec![
        ("helmfile.yaml", CONDITION_HELMFILE),
        ("environments/staging.yaml", "e2eRunner:\n  enabled: true\n"),
        (
            "environments/production.yaml",
            "# production\ne2eRunner:\n  enabled: true\n",
        ),
    ]
}

#[test]
fn a_release_installed_through_a_condition_is_found_at_the_values_line_that_turns_it_on() {
    let (code, report) = run("scan", &condition_repo());
    assert_eq!(code, Some(1), "{report:#}");
    let found = findings(&report, "nonprod-on-prod-cluster");
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].0, "environments/production.yaml:3");
    assert!(
        found[0].1.contains("HelmfileRelease/e2e-runner (namespace e2e) placed by helmfile release e2e-runner on production cluster production"),
        "{}",
        found[0].1
    );
    // Staging is not production: silence there, and the release that is not installed is
    // nowhere.
    let (_, topology) = run("topology", &condition_repo());
    assert_eq!(
        placed(&topology, "helmfile.yaml"),
        [
            ("production".into(), "HelmfileRelease/api".into(), true),
            (
                "production".into(),
                "HelmfileRelease/e2e-runner".into(),
                true
            ),
            ("staging".into(), "HelmfileRelease/api".into(), true),
            ("staging".into(), "HelmfileRelease/e2e-runner".into(), true),
        ]
    );
}

#[test]
fn a_condition_that_is_false_in_production_keeps_the_release_off_it() {
    let mut files = condition_repo();
    files[2] = (
        "environments/production.yaml",
        "e2eRunner:\n  enabled: false\n",
    );
    let (code, report) = run("scan", &files);
    assert_eq!(code, Some(0), "{report:#}");
    assert!(at(&report, "nonprod-on-prod-cluster").is_empty());
}

const TEMPLATED: &str = "environments:
  dev: {}
  production:
    values:
      - ./env/production.env
---
helmDefaults:
  kubeContext: eks-{{ .Environment.Name }}

releases:
  - name: preview-web
    namespace: web
    chart: bitnami/nginx
    installed: {{ or (eq .Environment.Name \"dev\") (eq .Environment.Name \"production\") }}
  - name: tools
    chart: acme/tools
    kubeContext: {{ .Environment.Name }}-tools
{{- if ne .Environment.Name \"production\" }}
  - name: sandbox-debug
    chart: acme/debug
{{- end }}
  - name: api
    chart: acme/api
    installed: {{ eq (env \"DEPLOY_API\") \"yes\" }}
";

#[test]
fn a_templated_helmfile_is_evaluated_per_environment_on_its_kube_context() {
    let files = [("deploy/helmfile.yaml.gotmpl", TEMPLATED)];
    let (_, topology) = run("topology", &files);
    assert_eq!(
        placed(&topology, "deploy/helmfile.yaml.gotmpl"),
        [
            ("dev-tools".into(), "HelmfileRelease/tools".into(), true),
            ("eks-dev".into(), "HelmfileRelease/api".into(), true),
            ("eks-dev".into(), "HelmfileRelease/preview-web".into(), true),
            (
                "eks-dev".into(),
                "HelmfileRelease/sandbox-debug".into(),
                true
            ),
            ("eks-production".into(), "HelmfileRelease/api".into(), true),
            (
                "eks-production".into(),
                "HelmfileRelease/preview-web".into(),
                true
            ),
            (
                "production-tools".into(),
                "HelmfileRelease/tools".into(),
                true
            ),
        ]
    );
    let notes = notes(&topology);
    // `env` is a placeholder: whether `api` is installed is not known, and said.
    assert!(
        notes.contains(&"deploy/helmfile.yaml.gotmpl:24 whether helmfile release api is installed in environment production is not known statically; it is placed as if installed".to_owned()),
        "{notes:#?}"
    );
    // A values file the repository does not hold is a note at its entry.
    assert!(
        notes.contains(&"deploy/helmfile.yaml.gotmpl:5 values file ./env/production.env of helmfile environment production is not in this repository: the values it sets are opaque".to_owned()),
        "{notes:#?}"
    );
    // The evidence points at the helmfile lines: environment, kubeContext, release.
    let p = topology["placements"]
        .as_array()
        .expect("placements")
        .iter()
        .find(|p| p["name"] == "preview-web" && p["cluster"] == "eks-production")
        .expect("preview-web on eks-production");
    let chain: Vec<String> = p["evidence"]
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
    assert_eq!(
        &chain[..3],
        [
            "deploy/helmfile.yaml.gotmpl:3 helmfile run for environment production",
            "deploy/helmfile.yaml.gotmpl:8 helmDefaults.kubeContext=eks-production",
            "deploy/helmfile.yaml.gotmpl:11 helmfile release preview-web (chart bitnami/nginx)",
        ]
    );
    // preview-web on the production cluster is the finding.
    let (_, report) = run("scan", &files);
    assert_eq!(
        at(&report, "nonprod-on-prod-cluster"),
        ["deploy/helmfile.yaml.gotmpl:11"]
    );
}

#[test]
fn env_never_reads_envfences_own_environment() {
    let dir = tempfile::tempdir().expect("tempdir");
    write_tree(dir.path(), &[("deploy/helmfile.yaml.gotmpl", TEMPLATED)]);
    let out = envfence()
        .env("DEPLOY_API", "yes")
        .args(["topology", "-q", "--format", "json"])
        .arg(dir.path())
        .output()
        .expect("runs");
    let topology = json_report(&out);
    assert!(
        notes(&topology).iter().any(|n| n.contains(
            "whether helmfile release api is installed in environment dev is not known statically"
        )),
        "{:#?}",
        notes(&topology)
    );
}

#[test]
fn one_helmfile_per_cluster_places_its_remote_releases_on_that_cluster() {
    let files = [
        (
            "clusters/publick8s.yaml",
            "repositories:\n  - name: jenkins-infra\n    url: https://jenkins-infra.github.io/helm-charts\nreleases:\n  - name: jenkins-weekly\n    namespace: jenkins-weekly\n    chart: jenkins-infra/jenkins\n    values:\n      - ../config/publick8s/jenkins.yaml\n",
        ),
        ("config/publick8s/jenkins.yaml", "controller:\n  replicas: 1\n"),
    ];
    let (_, topology) = run("topology", &files);
    assert_eq!(
        placed(&topology, "clusters/publick8s.yaml"),
        [(
            "publick8s".into(),
            "HelmfileRelease/jenkins-weekly".into(),
            true
        )]
    );
    let (code, report) = run("scan", &files);
    assert_eq!(code, Some(0), "{report:#}");
}

#[test]
fn an_expression_beyond_the_subset_makes_the_release_opaque_with_a_note() {
    let files = [
        (
            "helmfile.yaml",
            "environments:\n  production: {}\n---\nreleases:\n  - name: web\n    chart: ./charts/web\n    values:\n      - values.yaml.gotmpl\n",
        ),
        ("values.yaml.gotmpl", "a: 1\nb: {{ .Values | toYaml }}\n"),
        ("charts/web/Chart.yaml", "apiVersion: v2\nname: web\nversion: 0.1.0\n"),
        (
            "charts/web/templates/cm.yaml",
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: web\n",
        ),
    ];
    let (_, topology) = run("topology", &files);
    assert_eq!(
        placed(&topology, "helmfile.yaml"),
        [("production".into(), "HelmfileRelease/web".into(), true)]
    );
    assert!(
        notes(&topology).contains(&"values.yaml.gotmpl:2 values.yaml.gotmpl is not evaluated for helmfile environment production: `{{ .Values | toYaml }}` is beyond the template subset envfence evaluates".to_owned()),
        "{:#?}",
        notes(&topology)
    );
}

#[test]
fn template_evaluation_stops_at_its_step_budget() {
    let items: String = (0..60).map(|i| format!("    - i{i}\n")).collect();
    let values = format!("items:\n{items}");
    let helmfile = "environments:\n  production:\n    values:\n      - env.yaml\n---\nreleases:\n{{- range .Values.items }}{{ range $.Values.items }}{{ range $.Values.items }}\n  - name: x\n    chart: acme/x\n{{- end }}{{ end }}{{ end }}\n";
    let files = [
        ("helmfile.yaml.gotmpl", helmfile),
        ("env.yaml", values.as_str()),
    ];
    let (code, report) = run("scan", &files);
    assert_eq!(code, Some(3), "{report:#}");
    let cuts = report["incomplete"].as_array().cloned().unwrap_or_default();
    assert!(
        cuts.iter().any(
            |c| c["budget"] == "helmfile template steps" && c["file"] == "helmfile.yaml.gotmpl"
        ),
        "{report:#}"
    );
}

#[test]
fn a_local_chart_renders_with_the_releases_evaluated_values() {
    let Some(helm) = helm_for_tests() else { return };
    let dir = tempfile::tempdir().expect("tempdir");
    write_tree(
        dir.path(),
        &[
            (
                "helmfile/helmfile.yaml",
                "environments:\n  staging:\n    values: [env/staging.yaml]\n  production:\n    values: [env/production.yaml]\n---\nreleases:\n  - name: web\n    namespace: web\n    chart: ./charts/web\n    values:\n      - values/web.yaml.gotmpl\n",
            ),
            ("helmfile/env/staging.yaml", "stage: qa\n"),
            ("helmfile/env/production.yaml", "stage: live\n"),
            (
                "helmfile/values/web.yaml.gotmpl",
                "name: {{ .Release.Name }}-{{ .Values.stage }}\n{{- if eq .Environment.Name \"staging\" }}\ntest: true\n{{- end }}\n",
            ),
            ("helmfile/charts/web/Chart.yaml", "apiVersion: v2\nname: web\nversion: 0.1.0\n"),
            ("helmfile/charts/web/values.yaml", "name: web\ntest: false\n"),
            (
                "helmfile/charts/web/templates/cm.yaml",
                "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Values.name }}\n",
            ),
            (
                "helmfile/charts/web/templates/test.yaml",
                "{{- if .Values.test }}\napiVersion: batch/v1\nkind: Job\nmetadata:\n  name: smoke-test\n{{- end }}\n",
            ),
        ],
    );
    let out = envfence()
        .env("ENVFENCE_HELM", &helm)
        .args(["topology", "-q", "--format", "json"])
        .arg(dir.path())
        .output()
        .expect("runs");
    let topology = json_report(&out);
    let mut rendered: Vec<(String, String)> = topology["placements"]
        .as_array()
        .expect("placements")
        .iter()
        .filter(|p| {
            p["file"]
                .as_str()
                .is_some_and(|f| f.starts_with("helmfile/charts/web/templates/"))
        })
        .map(|p| {
            (
                p["cluster"].as_str().unwrap_or("").to_owned(),
                format!(
                    "{}/{}",
                    p["kind"].as_str().unwrap_or(""),
                    p["name"].as_str().unwrap_or("")
                ),
            )
        })
        .collect();
    rendered.sort();
    assert_eq!(
        rendered,
        [
            ("production".into(), "ConfigMap/web-live".into()),
            ("staging".into(), "ConfigMap/web-qa".into()),
            ("staging".into(), "Job/smoke-test".into()),
        ],
        "{topology:#}"
    );
}
