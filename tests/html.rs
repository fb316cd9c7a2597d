//! `scan --format html` opened in headless Chromium: the demo and two shared corpora. Each
//! page must load with no console message and no network request, show every finding's rule
//! and every cluster in its text, and draw a screenshot that is not blank.
//!
//! Requests are read from Chromium's net log: a request the page makes is logged with the
//! page's `file://` network isolation key (the browser's own background requests carry
//! another). Console messages are the `CONSOLE` lines of `--enable-logging=stderr`. A control
//! page with an outside image and a `console.error` proves both detectors see what they
//! should. Without Chromium the tests say they skipped, or fail when `CI=true`.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{corpora, envfence, fixture};

/// `/usr/bin/chromium` (Debian's package, which `.ci/run` installs), else `chromium` on PATH.
fn chromium() -> Option<PathBuf> {
    let found = std::iter::once(PathBuf::from("/usr/bin/chromium"))
        .chain(
            std::env::var_os("PATH")
                .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
                .unwrap_or_default()
                .into_iter()
                .map(|d| d.join("chromium")),
        )
        .find(|p| p.is_file());
    if found.is_none() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "chromium not found, and CI=true: .ci/run installs Debian's chromium package"
        );
        eprintln!("skipped: chromium not found");
    }
    found
}

/// What one headless load of a page shows.
struct Load {
    /// `--dump-dom`: the page as Chromium parsed it.
    dom: String,
    /// URLs the page asked the network for.
    requests: Vec<String>,
    /// Console messages of the page.
    console: Vec<String>,
}

/// A fresh profile per run, every background service Chromium can be told to leave off.
fn headless(chromium: &Path, profile: &Path) -> Command {
    let mut cmd = Command::new(chromium);
    cmd.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--hide-scrollbars",
    ])
    .arg(format!("--user-data-dir={}", profile.display()));
    cmd
}

fn file_url(page: &Path) -> String {
    format!("file://{}", page.display())
}

/// Loads `page` once for its DOM, console and net log.
fn load(chromium: &Path, page: &Path) -> Load {
    let dir = tempfile::tempdir().expect("tempdir");
    let netlog = dir.path().join("netlog.json");
    let out = headless(chromium, &dir.path().join("profile"))
        .args(["--enable-logging=stderr", "--v=0"])
        .arg(format!("--log-net-log={}", netlog.display()))
        .arg("--dump-dom")
        .arg(file_url(page))
        .output()
        .expect("chromium runs");
    assert!(
        out.status.success(),
        "chromium failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let log = std::fs::read_to_string(&netlog).expect("chromium wrote the net log");
    // One event per line; the page's own requests are keyed by its file:// site.
    let requests = log
        .lines()
        .filter(|l| l.contains("\"network_isolation_key\":\"file://"))
        .filter_map(|l| {
            let start = l.find("\"url\":\"")? + 7;
            let end = l[start..].find('"')? + start;
            Some(l[start..end].to_owned())
        })
        .collect();
    let console = String::from_utf8_lossy(&out.stderr)
        .lines()
        .filter(|l| l.contains(":CONSOLE"))
        .map(str::to_owned)
        .collect();
    Load {
        dom: String::from_utf8_lossy(&out.stdout).into_owned(),
        requests,
        console,
    }
}

/// Screenshots `page` at 1280×2000 into `png`, and returns how many distinct colours it has.
fn screenshot(chromium: &Path, page: &Path, png: &Path) -> usize {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = headless(chromium, &dir.path().join("profile"))
        .arg(format!("--screenshot={}", png.display()))
        .arg("--window-size=1280,2000")
        .arg(file_url(page))
        .output()
        .expect("chromium runs");
    assert!(
        out.status.success(),
        "chromium failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let decoder = png::Decoder::new(std::io::BufReader::new(
        std::fs::File::open(png).expect("the screenshot was written"),
    ));
    let mut reader = decoder.read_info().expect("a PNG");
    let mut buf = vec![0; reader.output_buffer_size().expect("a size")];
    let info = reader.next_frame(&mut buf).expect("a frame");
    assert_eq!((info.width, info.height), (1280, 2000));
    let bytes = &buf[..info.buffer_size()];
    let step = (bytes.len() / (info.width as usize * info.height as usize)).max(1);
    bytes
        .chunks(step)
        .map(<[u8]>::to_vec)
        .collect::<std::collections::BTreeSet<_>>()
        .len()
}

/// The text of `dom` without tags and with the entities this page uses decoded.
fn text_of(dom: &str) -> String {
    let mut text = String::with_capacity(dom.len());
    let mut in_tag = false;
    for c in dom.chars() {
        match c {
            '<' => in_tag = true,
            '>' if in_tag => {
                in_tag = false;
                text.push(' ');
            }
            c if !in_tag => text.push(c),
            _ => {}
        }
    }
    text.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&amp;", "&")
}

/// The JSON report of `repo`: the findings' rule ids and the clusters.
fn expected(repo: &Path) -> (Vec<String>, Vec<String>) {
    let out = envfence()
        .args(["scan", "--quiet", "--format", "json"])
        .arg(repo)
        .output()
        .expect("runs");
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON report");
    let rules = report["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .filter(|f| f["suppressed"] != true)
        .map(|f| f["rule"].as_str().expect("rule").to_owned())
        .collect();
    let out = envfence()
        .args(["topology", "--quiet", "--format", "json"])
        .arg(repo)
        .output()
        .expect("runs");
    let topology: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON topology");
    let clusters = topology["clusters"]
        .as_array()
        .expect("clusters")
        .iter()
        .map(|c| c["name"].as_str().expect("name").to_owned())
        .collect();
    (rules, clusters)
}

/// The HTML report of `repo`, written to `page`.
fn write_page(repo: &Path, page: &Path) -> String {
    let out = envfence()
        .args(["scan", "--quiet", "--format", "html", "--output"])
        .arg(page)
        .arg(repo)
        .env_remove("GITHUB_REPOSITORY")
        .env_remove("GITHUB_SERVER_URL")
        .env_remove("GITHUB_SHA")
        .env_remove("GITHUB_RUN_ID")
        .output()
        .expect("runs");
    assert!(
        matches!(out.status.code(), Some(0 | 1)),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::read_to_string(page).expect("the page was written")
}

/// Every `src=` and `href=` of the page: none may point outside it (the page links files
/// only when the Actions variables name a repository, and this test unsets them).
fn assert_self_contained(html: &str) {
    for attribute in ["src=", "href=", "url(", "@import"] {
        for (at, _) in html.match_indices(attribute) {
            let value = &html[at..(at + 80).min(html.len())];
            assert!(
                !value.contains("http:") && !value.contains("https:") && !value.contains("//"),
                "an outside reference: {value}"
            );
        }
    }
    assert!(!html.contains("<script"), "the page has no script");
}

/// Checks one repository's page end to end; returns the screenshot's path.
fn check(chromium: &Path, repo: &Path, dir: &Path, name: &str) -> PathBuf {
    let page = dir.join(format!("{name}.html"));
    let html = write_page(repo, &page);
    assert_self_contained(&html);
    let (rules, clusters) = expected(repo);
    assert!(!clusters.is_empty(), "{name}: the test needs clusters");
    let loaded = load(chromium, &page);
    assert_eq!(loaded.requests, Vec::<String>::new(), "{name}: requests");
    assert_eq!(loaded.console, Vec::<String>::new(), "{name}: console");
    let text = text_of(&loaded.dom);
    for rule in &rules {
        assert!(text.contains(rule.as_str()), "{name}: rule {rule} missing");
    }
    for cluster in &clusters {
        assert!(
            text.contains(cluster.as_str()),
            "{name}: cluster {cluster} missing"
        );
    }
    assert!(text.contains("Findings ("), "{name}");
    assert!(text.contains("Coverage"), "{name}");
    let png = dir.join(format!("{name}.png"));
    let colours = screenshot(chromium, &page, &png);
    assert!(colours > 1, "{name}: the screenshot is blank");
    png
}

#[test]
fn the_detectors_see_a_request_and_a_console_error() {
    let Some(chromium) = chromium() else { return };
    let dir = tempfile::tempdir().expect("tempdir");
    let page = dir.path().join("control.html");
    std::fs::write(
        &page,
        "<!DOCTYPE html><html><body><p>control</p><img src=\"http://127.0.0.1:9/x.png\"><script>console.error(\"control-error\")</script></body></html>",
    )
    .expect("write");
    let loaded = load(&chromium, &page);
    assert_eq!(loaded.requests, vec!["http://127.0.0.1:9/x.png".to_owned()]);
    assert!(
        loaded.console.iter().any(|l| l.contains("control-error")),
        "{:?}",
        loaded.console
    );
    assert!(text_of(&loaded.dom).contains("control"));
}

#[test]
fn the_demo_report_loads_clean_in_chromium() {
    let Some(chromium) = chromium() else { return };
    let dir = tempfile::tempdir().expect("tempdir");
    let png = check(&chromium, &fixture("demo"), dir.path(), "demo");
    // The closing note of the work shows this page: keep a copy when asked.
    if let Some(keep) = std::env::var_os("ENVFENCE_HTML_SCREENSHOT") {
        std::fs::copy(&png, keep).expect("copy the screenshot");
    }
}

#[test]
fn two_corpus_reports_load_clean_in_chromium() {
    let Some(chromium) = chromium() else { return };
    let Some(corpora) = corpora() else {
        eprintln!("skipped: ../shared/corpora is not present");
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    for name in [
        "fluxcd__flux2-hub-spoke-example",
        "GoogleCloudPlatform__csp-config-management",
    ] {
        let repo = corpora.join(name);
        assert!(repo.is_dir(), "{name} is not in ../shared/corpora");
        check(&chromium, &repo, dir.path(), name);
    }
}

#[test]
fn hostile_names_stay_text() {
    let Some(chromium) = chromium() else { return };
    let dir = tempfile::tempdir().expect("tempdir");
    let repo = dir.path().join("repo");
    common::write_tree(
        &repo,
        &[
            (
                ".envfence.yaml",
                "clusters:\n  - name: prod-eu\n    server: https://prod-eu.example.com\n    environment: production\n",
            ),
            (
                "apps/feature-x.yaml",
                "apiVersion: argoproj.io/v1alpha1\nkind: Application\nmetadata:\n  name: \"feature-<script>alert(1)</script>\"\n  namespace: argocd\nspec:\n  source:\n    repoURL: https://git.example.com/p.git\n    path: \"w/<img src=x onerror=alert(2)>\"\n  destination:\n    name: prod-eu\n    namespace: \"feature-'\\\"&x\"\n",
            ),
            (
                "w/<img src=x onerror=alert(2)>/d.yaml",
                "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\n",
            ),
        ],
    );
    let page = dir.path().join("hostile.html");
    let html = write_page(&repo, &page);
    assert!(!html.contains("<script>alert"), "{html}");
    assert!(!html.contains("<img src=x"), "{html}");
    assert!(
        html.contains("feature-&lt;script&gt;alert(1)&lt;/script&gt;"),
        "{html}"
    );
    let loaded = load(&chromium, &page);
    assert_eq!(loaded.requests, Vec::<String>::new());
    assert_eq!(loaded.console, Vec::<String>::new());
    let text = text_of(&loaded.dom);
    assert!(text.contains("feature-<script>alert(1)</script>"), "{text}");
    assert!(text.contains("nonprod-on-prod-cluster"), "{text}");
}
