//! `envfence github` against a fake GitHub: a wiremock server on 127.0.0.1 that keeps issue
//! comments in memory (list with pagination, create, update), or fixed answers for the
//! failure cases. The repository under test is a real git repository in a temp folder.

mod common;

use std::io::{Read as _, Write as _};
use std::path::PathBuf;
use std::process::Output;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{envfence, git, write_tree};
use serde_json::{json, Value};
use wiremock::matchers::{body_string_contains, header, method, path, path_regex};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

const TOKEN: &str = "ghs_FAKEtoken0123456789abcdefSECRET";
const REPO: &str = "acme/gitops";
const NUMBER: u64 = 7;
const COMMENTS: &str = "/repos/acme/gitops/issues/7/comments";
const RUN_URL: &str = "https://github.test/acme/gitops/actions/runs/99";
const BOT: &str = "github-actions[bot]";

const CONFIG: &str = "\
clusters:
  - name: prod-eu
    server: https://prod-eu.k8s.example.com
    environment: production
";

const DEPLOYMENT: &str = "\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: login
";

/// An Argo CD Application that sends `workloads/login` to the production cluster under a
/// feature name: a `nonprod-on-prod-cluster` error.
fn feature_app(name: &str) -> String {
    format!(
        "apiVersion: argoproj.io/v1alpha1\nkind: Application\nmetadata:\n  name: {name}\n  namespace: argocd\nspec:\n  source:\n    repoURL: https://git.example.com/platform.git\n    path: workloads/login\n  destination:\n    name: prod-eu\n    namespace: {name}\n"
    )
}

/// A repository whose base commit is clean and whose pull request adds `apps`.
struct Fixture {
    _dir: tempfile::TempDir,
    repo: PathBuf,
    event: PathBuf,
    summary: PathBuf,
    output: PathBuf,
    base: String,
}

impl Fixture {
    fn new(apps: &[&str]) -> Fixture {
        let dir = tempfile::tempdir().expect("tempdir");
        let repo = dir.path().join("repo");
        std::fs::create_dir_all(&repo).expect("mkdir");
        git(&repo, &["init", "-q"]);
        write_tree(
            &repo,
            &[
                (".envfence.yaml", CONFIG),
                ("workloads/login/deployment.yaml", DEPLOYMENT),
            ],
        );
        git(&repo, &["add", "-A"]);
        git(&repo, &["commit", "-q", "-m", "base"]);
        let base = git(&repo, &["rev-parse", "HEAD"]);
        let fixture = Fixture {
            event: dir.path().join("event.json"),
            summary: dir.path().join("summary.md"),
            output: dir.path().join("output.txt"),
            _dir: dir,
            repo,
            base,
        };
        fixture.commit_apps(apps, "the pull request");
        fixture
    }

    /// Makes the current head the pull request's base: what it has is on the base branch.
    fn base_here(&mut self) {
        self.base = git(&self.repo, &["rev-parse", "HEAD"]);
    }

    /// Makes `apps/` hold exactly `apps`, commits, and points the event at the new head.
    fn commit_apps(&self, apps: &[&str], message: &str) {
        let dir = self.repo.join("apps");
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("mkdir");
        for app in apps {
            std::fs::write(dir.join(format!("{app}.yaml")), feature_app(app)).expect("write");
        }
        std::fs::write(dir.join(".keep"), "").expect("write");
        git(&self.repo, &["add", "-A"]);
        git(
            &self.repo,
            &["commit", "-q", "--allow-empty", "-m", message],
        );
        let head = git(&self.repo, &["rev-parse", "HEAD"]);
        let event = json!({
            "action": "synchronize",
            "number": NUMBER,
            "pull_request": {
                "number": NUMBER,
                "base": { "sha": self.base, "ref": "main" },
                "head": { "sha": head, "ref": "feature" }
            },
            "repository": { "full_name": REPO }
        });
        std::fs::write(&self.event, event.to_string()).expect("write");
    }

    fn run(&self, server: &MockServer, args: &[&str]) -> Output {
        let out = self
            .command(&server.uri())
            .args(args)
            .output()
            .expect("runs");
        self.assert_no_token(&out);
        out
    }

    /// `envfence github --quiet` for this pull request, against the API at `api_url`.
    fn command(&self, api_url: &str) -> assert_cmd::Command {
        let mut cmd = bot();
        cmd.env("GITHUB_EVENT_NAME", "pull_request")
            .env("GITHUB_EVENT_PATH", &self.event)
            .env("GITHUB_REPOSITORY", REPO)
            .env("GITHUB_API_URL", api_url)
            .env("GITHUB_TOKEN", TOKEN)
            .env("GITHUB_STEP_SUMMARY", &self.summary)
            .env("GITHUB_OUTPUT", &self.output)
            .env("GITHUB_WORKSPACE", &self.repo)
            .env("GITHUB_SERVER_URL", "https://github.test")
            .env("GITHUB_RUN_ID", "99")
            .env("ENVFENCE_GITHUB_RETRY_BASE_MS", "10")
            .args(["github", "--quiet"]);
        cmd
    }

    fn summary(&self) -> String {
        std::fs::read_to_string(&self.summary).unwrap_or_default()
    }

    fn outputs(&self) -> String {
        std::fs::read_to_string(&self.output).unwrap_or_default()
    }

    fn assert_no_token(&self, out: &Output) {
        for (what, text) in [
            ("stdout", String::from_utf8_lossy(&out.stdout).into_owned()),
            ("stderr", String::from_utf8_lossy(&out.stderr).into_owned()),
            ("summary", self.summary()),
            ("outputs", self.outputs()),
        ] {
            assert!(
                !text.contains(TOKEN),
                "the token leaked into {what}:\n{text}"
            );
        }
    }
}

/// `envfence` without the GitHub variables of the environment the tests run in (they may
/// run in Actions themselves).
fn bot() -> assert_cmd::Command {
    let mut cmd = envfence();
    for (key, _) in std::env::vars() {
        if key.starts_with("GITHUB_") || key.starts_with("ENVFENCE_") {
            cmd.env_remove(key);
        }
    }
    cmd
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The comments of the fake pull request.
#[derive(Clone, Default)]
struct Store(Arc<Mutex<Vec<Value>>>);

impl Store {
    fn add(&self, author: &str, body: &str) -> u64 {
        let mut comments = self.0.lock().expect("lock");
        let id = 1000 + comments.len() as u64;
        comments.push(json!({
            "id": id,
            "html_url": format!("https://github.test/acme/gitops/pull/7#issuecomment-{id}"),
            "body": body,
            "user": { "login": author },
        }));
        id
    }

    fn all(&self) -> Vec<Value> {
        self.0.lock().expect("lock").clone()
    }

    fn by(&self, author: &str) -> Vec<Value> {
        self.all()
            .into_iter()
            .filter(|c| c["user"]["login"] == author)
            .collect()
    }
}

/// `GET .../comments?per_page=100&page=N`, with a `Link: rel="next"` while more remain.
struct ListComments(Store);

impl Respond for ListComments {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let page: usize = request
            .url
            .query_pairs()
            .find(|(k, _)| k == "page")
            .and_then(|(_, v)| v.parse().ok())
            .unwrap_or(1);
        let all = self.0.all();
        let start = (page - 1) * 100;
        let slice: Vec<Value> = all.iter().skip(start).take(100).cloned().collect();
        let mut response = ResponseTemplate::new(200).set_body_json(slice);
        if all.len() > start + 100 {
            let mut next = request.url.clone();
            next.set_query(Some(&format!("per_page=100&page={}", page + 1)));
            response = response.insert_header("link", format!("<{next}>; rel=\"next\""));
        }
        response
    }
}

struct CreateComment(Store, &'static str);

impl Respond for CreateComment {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let payload: Value = serde_json::from_slice(&request.body).expect("JSON body");
        let body = payload["body"].as_str().expect("body").to_owned();
        let id = self.0.add(self.1, &body);
        let created = self.0.all().into_iter().find(|c| c["id"] == id);
        ResponseTemplate::new(201).set_body_json(created)
    }
}

struct UpdateComment(Store);

impl Respond for UpdateComment {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let id: u64 = request
            .url
            .path()
            .rsplit('/')
            .next()
            .and_then(|s| s.parse().ok())
            .expect("comment id");
        let payload: Value = serde_json::from_slice(&request.body).expect("JSON body");
        let mut comments = (self.0).0.lock().expect("lock");
        match comments.iter_mut().find(|c| c["id"] == id) {
            Some(c) => {
                c["body"] = payload["body"].clone();
                ResponseTemplate::new(200).set_body_json(c.clone())
            }
            None => ResponseTemplate::new(404).set_body_json(json!({"message": "Not Found"})),
        }
    }
}

/// A fake GitHub that keeps comments in `store`. `login` is what `GET /user` says; `None`
/// answers 403 as GitHub does for the workflow's installation token.
async fn fake_github(store: &Store, login: Option<&'static str>) -> MockServer {
    let server = MockServer::start().await;
    let user = match login {
        Some(login) => ResponseTemplate::new(200).set_body_json(json!({ "login": login })),
        None => ResponseTemplate::new(403)
            .set_body_json(json!({ "message": "Resource not accessible by integration" })),
    };
    Mock::given(method("GET"))
        .and(path("/user"))
        .respond_with(user)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(COMMENTS))
        .and(header("authorization", format!("Bearer {TOKEN}").as_str()))
        .respond_with(ListComments(store.clone()))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path(COMMENTS))
        .and(header("authorization", format!("Bearer {TOKEN}").as_str()))
        .respond_with(CreateComment(store.clone(), login.unwrap_or(BOT)))
        .mount(&server)
        .await;
    Mock::given(method("PATCH"))
        .and(path_regex(r"^/repos/acme/gitops/issues/comments/\d+$"))
        .and(header("authorization", format!("Bearer {TOKEN}").as_str()))
        .respond_with(UpdateComment(store.clone()))
        .mount(&server)
        .await;
    server
}

/// `GET /user` refused, as GitHub refuses the workflow's installation token: the bot's
/// login is then `github-actions[bot]`.
async fn refuse_user(server: &MockServer) {
    Mock::given(method("GET"))
        .and(path("/user"))
        .respond_with(
            ResponseTemplate::new(403)
                .set_body_json(json!({ "message": "Resource not accessible by integration" })),
        )
        .mount(server)
        .await;
}

async fn requests(server: &MockServer, verb: &str) -> Vec<Request> {
    server
        .received_requests()
        .await
        .unwrap_or_default()
        .into_iter()
        .filter(|r| r.method.as_str() == verb)
        .collect()
}

fn sent_body(request: &Request) -> String {
    let payload: Value = serde_json::from_slice(&request.body).expect("JSON body");
    payload["body"].as_str().expect("body").to_owned()
}

#[tokio::test]
async fn one_comment_created_then_resolved_in_place() {
    let fx = Fixture::new(&["feature-login"]);
    let store = Store::default();
    let server = fake_github(&store, None).await;

    let out = fx.run(&server, &[]);
    assert_eq!(out.status.code(), Some(1), "stderr: {}", stderr(&out));
    assert!(
        stdout(&out).starts_with("::error file=apps/feature-login.yaml,line=11,"),
        "{}",
        stdout(&out)
    );
    let ours = store.by(BOT);
    assert_eq!(ours.len(), 1);
    let body = ours[0]["body"].as_str().expect("body");
    assert!(
        body.starts_with("<!-- envfence:report -->\n## ❌ envfence: 1 error"),
        "{body}"
    );
    let head = git(&fx.repo, &["rev-parse", "HEAD"]);
    assert!(
        body.contains(&format!("`nonprod-on-prod-cluster` | [apps/feature-login.yaml:11](https://github.test/acme/gitops/blob/{head}/apps/feature-login.yaml#L11)")),
        "{body}"
    );
    let url = ours[0]["html_url"].as_str().expect("url");
    assert!(
        fx.outputs().contains(&format!("comment-url={url}\n")),
        "{}",
        fx.outputs()
    );
    assert!(fx.outputs().starts_with("findings=1\nsarif-file=\n"));
    assert!(fx.summary().contains("## ❌ envfence: 1 error"));

    // A commit that removes the feature Application.
    fx.commit_apps(&[], "remove the feature app");
    let out = fx.run(&server, &[]);
    assert_eq!(out.status.code(), Some(0), "stderr: {}", stderr(&out));
    assert_eq!(stdout(&out), "", "nothing new to annotate");
    assert_eq!(store.all().len(), 1, "still exactly one comment");
    let body = store.all()[0]["body"].as_str().expect("body").to_owned();
    assert!(body.contains("**Resolved**"), "{body}");
    assert!(!body.contains("nonprod-on-prod-cluster` |"));
    assert_eq!(requests(&server, "POST").await.len(), 1);
    assert_eq!(requests(&server, "PATCH").await.len(), 1);
    let outputs = fx.outputs();
    assert!(outputs.contains("findings=0\n"), "{outputs}");
    assert!(
        outputs.ends_with(&format!("comment-url={url}\n")),
        "{outputs}"
    );
    // The job summary gets each run's report.
    let summary = fx.summary();
    assert_eq!(summary.matches("<!-- envfence:report -->").count(), 2);
    assert!(summary.contains("**Resolved**"));
}

#[tokio::test]
async fn a_changed_report_updates_the_comment_and_an_unchanged_one_is_left() {
    let fx = Fixture::new(&["feature-login"]);
    let store = Store::default();
    let server = fake_github(&store, Some("envfence-bot")).await;
    fx.run(&server, &[]);
    fx.commit_apps(&["feature-login", "feature-signup"], "another feature app");
    let out = fx.run(&server, &[]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(store.all().len(), 1);
    let body = store.all()[0]["body"].as_str().expect("body").to_owned();
    assert!(body.contains("## ❌ envfence: 2 errors"), "{body}");
    assert!(body.contains("apps/feature-signup.yaml:11"));
    assert_eq!(requests(&server, "PATCH").await.len(), 1);

    // The same report again: GitHub is only read.
    let quiet = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/user"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"login": "envfence-bot"})))
        .mount(&quiet)
        .await;
    Mock::given(method("GET"))
        .and(path(COMMENTS))
        .respond_with(ResponseTemplate::new(200).set_body_json(store.all()))
        .expect(1)
        .mount(&quiet)
        .await;
    Mock::given(method("PATCH"))
        .respond_with(ResponseTemplate::new(500))
        .expect(0)
        .mount(&quiet)
        .await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(500))
        .expect(0)
        .mount(&quiet)
        .await;
    let out = fx.run(&quiet, &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(fx
        .outputs()
        .ends_with("comment-url=https://github.test/acme/gitops/pull/7#issuecomment-1000\n"));
    quiet.verify().await;
}

#[tokio::test]
async fn findings_already_on_the_base_branch_are_not_reported_again() {
    let mut fx = Fixture::new(&["feature-login"]);
    fx.base_here();
    fx.commit_apps(&["feature-login", "feature-signup"], "another feature app");
    let store = Store::default();
    let server = fake_github(&store, None).await;

    let out = fx.run(&server, &[]);
    assert_eq!(out.status.code(), Some(1), "stderr: {}", stderr(&out));
    let annotations = stdout(&out);
    assert_eq!(annotations.lines().count(), 1, "{annotations}");
    assert!(annotations.starts_with("::error file=apps/feature-signup.yaml,line=11,"));
    let body = store.by(BOT)[0]["body"].as_str().expect("body").to_owned();
    assert!(body.contains("## ❌ envfence: 1 error"), "{body}");
    assert!(body.contains("apps/feature-signup.yaml:11"), "{body}");
    assert!(!body.contains("apps/feature-login.yaml"), "{body}");
    assert!(fx.outputs().starts_with("findings=1\n"), "{}", fx.outputs());

    // Only an existing finding left: nothing fails, and a pull request that never introduced
    // anything gets no comment.
    let mut fx = Fixture::new(&["feature-login"]);
    fx.base_here();
    fx.commit_apps(&["feature-login"], "touch nothing that matters");
    let store = Store::default();
    let server = fake_github(&store, None).await;
    let out = fx.run(&server, &["--fail-on", "info"]);
    assert_eq!(out.status.code(), Some(0), "stderr: {}", stderr(&out));
    assert_eq!(stdout(&out), "");
    assert!(store.all().is_empty());
}

#[tokio::test]
async fn a_clean_pull_request_gets_no_comment_unless_always() {
    let fx = Fixture::new(&[]);
    let store = Store::default();
    let server = fake_github(&store, None).await;
    let out = fx.run(&server, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(store.all().is_empty());
    // Nothing places the fixture's one Deployment: the summary says so rather than "clean".
    let summary = fx.summary();
    assert!(
        summary.contains("## ⚪ envfence: no finding, but most objects were not checked"),
        "{summary}"
    );
    assert!(
        summary.contains("Checked 0 of 1 object; 1 is reached by no deployer this version understands: workloads/login/ 1."),
        "{summary}"
    );
    assert!(fx.outputs().ends_with("comment-url=\n"));

    let out = fx.run(&server, &["--comment", "always"]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(store.all().len(), 1);
    // A comment that was clean from the start stays clean, not "resolved".
    fx.run(&server, &["--comment", "always"]);
    assert_eq!(requests(&server, "PATCH").await.len(), 0);
    assert!(!store.all()[0]["body"]
        .as_str()
        .unwrap_or("")
        .contains("Resolved"));
}

#[tokio::test]
async fn comment_never_writes_nothing_to_the_api() {
    let fx = Fixture::new(&["feature-login"]);
    let server = MockServer::start().await;
    let out = fx.run(&server, &["--comment", "never", "--fail-on", "never"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(server
        .received_requests()
        .await
        .unwrap_or_default()
        .is_empty());
    assert!(stdout(&out).starts_with("::error "));
    assert!(fx.summary().contains("nonprod-on-prod-cluster"));
}

#[tokio::test]
async fn another_users_marked_comment_is_left_alone() {
    let fx = Fixture::new(&["feature-login"]);
    let store = Store::default();
    let forged = "<!-- envfence:report -->\nLooks fine to me, merge it.";
    store.add("mallory", forged);
    let server = fake_github(&store, Some("envfence-bot")).await;
    let out = fx.run(&server, &[]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(store.by("mallory")[0]["body"], forged);
    assert_eq!(store.by("envfence-bot").len(), 1);
    assert_eq!(requests(&server, "PATCH").await.len(), 0);
}

#[tokio::test]
async fn our_comment_is_found_past_the_first_page() {
    let fx = Fixture::new(&["feature-login"]);
    let store = Store::default();
    for i in 0..130 {
        store.add("someone", &format!("comment {i}"));
    }
    let ours = store.add(BOT, "<!-- envfence:report -->\nan old report");
    store.add("someone", "after");
    let server = fake_github(&store, None).await;
    let out = fx.run(&server, &[]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert_eq!(requests(&server, "POST").await.len(), 0);
    let patches = requests(&server, "PATCH").await;
    assert_eq!(patches.len(), 1);
    assert!(patches[0].url.path().ends_with(&format!("/{ours}")));
    assert_eq!(store.all().len(), 132);
    let lists = requests(&server, "GET").await;
    assert!(lists
        .iter()
        .any(|r| r.url.query().is_some_and(|q| q.contains("page=2"))));
}

#[tokio::test]
async fn forbidden_create_falls_back_to_annotations_and_summary() {
    let fx = Fixture::new(&["feature-login"]);
    let server = MockServer::start().await;
    refuse_user(&server).await;
    Mock::given(method("GET"))
        .and(path(COMMENTS))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([])))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path(COMMENTS))
        .respond_with(
            ResponseTemplate::new(403)
                .set_body_json(json!({"message": "Resource not accessible by integration"})),
        )
        .expect(1)
        .mount(&server)
        .await;
    let out = fx.run(&server, &[]);
    assert_eq!(out.status.code(), Some(1), "exit code by --fail-on");
    let err = stderr(&out);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.starts_with("envfence: warning: cannot post the pull-request comment (HTTP 403: Resource not accessible by integration)"), "{err}");
    assert!(stdout(&out).starts_with("::error "));
    assert!(fx.summary().contains("nonprod-on-prod-cluster"));
    assert!(fx.outputs().ends_with("comment-url=\n"));
    server.verify().await;

    let out = fx.run(&server, &["--fail-on", "never", "--comment", "never"]);
    assert_eq!(out.status.code(), Some(0));
}

#[tokio::test]
async fn a_body_refused_as_too_long_is_sent_again_short() {
    let fx = Fixture::new(&["feature-login"]);
    let server = MockServer::start().await;
    refuse_user(&server).await;
    Mock::given(method("GET"))
        .and(path(COMMENTS))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([])))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(body_string_contains("<details>"))
        .respond_with(
            ResponseTemplate::new(422).set_body_json(json!({"message": "Validation Failed"})),
        )
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(201).set_body_json(json!({
            "id": 5, "html_url": "https://github.test/c/5", "body": "x", "user": {"login": BOT}
        })))
        .expect(1)
        .mount(&server)
        .await;
    let out = fx.run(&server, &[]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert_eq!(stderr(&out), "");
    let posts = requests(&server, "POST").await;
    let short = sent_body(&posts[1]);
    assert!(
        short.starts_with("<!-- envfence:report -->\n## ❌ envfence: 1 error"),
        "{short}"
    );
    assert!(short.contains(RUN_URL), "{short}");
    assert!(short.len() < 500);
    assert!(fx
        .outputs()
        .ends_with("comment-url=https://github.test/c/5\n"));
}

#[tokio::test]
async fn a_long_report_is_cut_between_findings() {
    let apps: Vec<String> = (0..150).map(|i| format!("feature-login-{i:03}")).collect();
    let refs: Vec<&str> = apps.iter().map(String::as_str).collect();
    let fx = Fixture::new(&refs);
    let store = Store::default();
    let server = fake_github(&store, None).await;
    let out = fx.run(&server, &[]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let body = store.all()[0]["body"].as_str().expect("body").to_owned();
    assert!(body.len() <= 65_000, "{}", body.len());
    assert!(
        body.contains("## ❌ envfence: 150 errors"),
        "the headline counts everything"
    );
    assert!(body.contains("more findings are left out"), "{body}");
    assert!(body.contains(RUN_URL));
    assert_eq!(
        body.matches("<details>").count(),
        body.matches("</details>").count()
    );
    assert_eq!(body.matches("```").count() % 2, 0);
    // The job summary has room for all of them.
    assert!(!fx.summary().contains("left out"));
}

/// Every location links to its line at the pull request's head commit, on the server of
/// GITHUB_SERVER_URL; many findings of one cause read as one row, the rest behind <details>.
#[tokio::test]
async fn locations_link_to_the_head_and_many_findings_are_grouped() {
    let apps: Vec<String> = (0..50).map(|i| format!("feature-login-{i:02}")).collect();
    let refs: Vec<&str> = apps.iter().map(String::as_str).collect();
    let fx = Fixture::new(&refs);
    let head = git(&fx.repo, &["rev-parse", "HEAD"]);
    let store = Store::default();
    let server = fake_github(&store, None).await;
    let out = fx.run(&server, &[]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let body = store.all()[0]["body"].as_str().expect("body").to_owned();
    let blob = format!("https://github.test/acme/gitops/blob/{head}");
    for text in [&body, &fx.summary()] {
        let group = format!("| 🔴 | `nonprod-on-prod-cluster` | prod-eu (production) | 50 | [apps/feature-login-00.yaml:11]({blob}/apps/feature-login-00.yaml#L11) |");
        let at = text
            .find(&group)
            .unwrap_or_else(|| panic!("no group row:\n{text}"));
        let details = text
            .find(" findings, with evidence</summary>")
            .expect("the findings behind <details>");
        assert!(at < details, "{text}");
        assert!(
            text.contains(&format!(
                "| [apps/feature-login-07.yaml:11]({blob}/apps/feature-login-07.yaml#L11) |"
            )),
            "{text}"
        );
        // Inside <summary> Markdown is not read: an HTML link.
        assert!(
            text.contains(&format!("<a href=\"{blob}/apps/feature-login-07.yaml#L11\">apps/feature-login-07.yaml:11</a>")),
            "{text}"
        );
        // Evidence lines link too.
        assert!(text.contains("- [apps/feature-login-07.yaml:"), "{text}");
        assert_eq!(
            text.matches("<details>").count(),
            text.matches("</details>").count()
        );
    }
    // The comment is cut to GitHub's size, between findings; the job summary has them all.
    assert!(
        body.contains("<details><summary>All 50 findings, with evidence</summary>")
            || (body.contains(" of the 50 findings, with evidence</summary>")
                && body.contains("more findings are left out")),
        "{body}"
    );
    assert!(fx
        .summary()
        .contains("<details><summary>All 50 findings, with evidence</summary>"));
    assert!(fx.summary().contains(&format!(
        "| [apps/feature-login-49.yaml:11]({blob}/apps/feature-login-49.yaml#L11) |"
    )));

    // A few findings: one row each, no grouping; another server (GitHub Enterprise).
    let fx = Fixture::new(&["feature-a", "feature-b"]);
    let head = git(&fx.repo, &["rev-parse", "HEAD"]);
    let store = Store::default();
    let server = fake_github(&store, None).await;
    let out = fx
        .command(&server.uri())
        .env("GITHUB_SERVER_URL", "https://git.acme.example/")
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let body = store.all()[0]["body"].as_str().expect("body").to_owned();
    assert!(!body.contains("All 2 findings"), "{body}");
    assert!(
        body.contains(&format!("[apps/feature-b.yaml:11](https://git.acme.example/acme/gitops/blob/{head}/apps/feature-b.yaml#L11)")),
        "{body}"
    );
}

#[tokio::test]
async fn rate_limits_are_waited_out() {
    let fx = Fixture::new(&["feature-login"]);
    let store = Store::default();
    let server = MockServer::start().await;
    refuse_user(&server).await;
    Mock::given(method("GET"))
        .and(path(COMMENTS))
        .respond_with(
            ResponseTemplate::new(403)
                .set_body_json(json!({"message": "You have exceeded a secondary rate limit."})),
        )
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path(COMMENTS))
        .respond_with(
            ResponseTemplate::new(429)
                .insert_header("retry-after", "1")
                .set_body_json(json!({"message": "slow down"})),
        )
        .up_to_n_times(1)
        .mount(&server)
        .await;
    // Then it behaves.
    Mock::given(method("GET"))
        .and(path(COMMENTS))
        .respond_with(ListComments(store.clone()))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path(COMMENTS))
        .respond_with(CreateComment(store.clone(), BOT))
        .mount(&server)
        .await;
    let started = std::time::Instant::now();
    let out = fx.run(&server, &[]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert_eq!(stderr(&out), "");
    assert!(
        started.elapsed() >= std::time::Duration::from_secs(1),
        "retry-after honoured"
    );
    assert_eq!(requests(&server, "POST").await.len(), 2);
    assert_eq!(store.all().len(), 1);
}

#[tokio::test]
async fn a_create_that_failed_but_landed_is_not_posted_twice() {
    let fx = Fixture::new(&["feature-login"]);
    let server = MockServer::start().await;
    refuse_user(&server).await;
    Mock::given(method("GET"))
        .and(path(COMMENTS))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([])))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    // The 502 came after GitHub stored the comment: the second listing shows it.
    Mock::given(method("GET"))
        .and(path(COMMENTS))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([{
            "id": 77, "html_url": "https://github.test/c/77",
            "body": "<!-- envfence:report -->\nsomething", "user": {"login": BOT}
        }])))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(502))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("PATCH"))
        .and(path("/repos/acme/gitops/issues/comments/77"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "id": 77, "html_url": "https://github.test/c/77", "body": "x", "user": {"login": BOT}
        })))
        .mount(&server)
        .await;
    let out = fx.run(&server, &[]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert_eq!(stderr(&out), "");
    assert!(fx
        .outputs()
        .ends_with("comment-url=https://github.test/c/77\n"));
    server.verify().await;
}

#[tokio::test]
async fn without_a_token_the_run_still_reports() {
    let fx = Fixture::new(&["feature-login"]);
    let server = MockServer::start().await;
    let out = bot()
        .env("GITHUB_EVENT_NAME", "pull_request")
        .env("GITHUB_EVENT_PATH", &fx.event)
        .env("GITHUB_REPOSITORY", REPO)
        .env("GITHUB_API_URL", server.uri())
        .env("GITHUB_STEP_SUMMARY", &fx.summary)
        .env("GITHUB_WORKSPACE", &fx.repo)
        .args(["github", "-q"])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).starts_with("envfence: warning: GITHUB_TOKEN is not set"));
    assert!(stdout(&out).starts_with("::error "));
    assert!(fx.summary().contains("nonprod-on-prod-cluster"));
    assert!(server
        .received_requests()
        .await
        .unwrap_or_default()
        .is_empty());
}

#[test]
fn a_push_scans_everything_and_paths_start_at_the_repository() {
    let dir = tempfile::tempdir().expect("tempdir");
    let repo = dir.path();
    git(repo, &["init", "-q"]);
    write_tree(
        repo,
        &[
            ("deploy/.envfence.yaml", CONFIG),
            ("deploy/workloads/login/deployment.yaml", DEPLOYMENT),
            (
                "deploy/apps/feature-login.yaml",
                &feature_app("feature-login"),
            ),
        ],
    );
    let summary = repo.join("summary.md");
    let sarif = repo.join("out.sarif");
    let out = bot()
        .env("GITHUB_EVENT_NAME", "push")
        .env("GITHUB_WORKSPACE", repo)
        .env("GITHUB_STEP_SUMMARY", &summary)
        .env("GITHUB_API_URL", "http://127.0.0.1:9")
        .env("GITHUB_TOKEN", TOKEN)
        .args(["github", "-q", "deploy", "--sarif"])
        .arg(&sarif)
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert_eq!(stderr(&out), "", "no API call on a push");
    assert!(
        stdout(&out).starts_with("::error file=deploy/apps/feature-login.yaml,line=11,"),
        "{}",
        stdout(&out)
    );
    let summary = std::fs::read_to_string(&summary).expect("summary");
    assert!(summary.contains("deploy/apps/feature-login.yaml:11"));
    let sarif = std::fs::read_to_string(&sarif).expect("sarif");
    let sarif: Value = serde_json::from_str(&sarif).expect("SARIF is JSON");
    assert_eq!(
        sarif["runs"][0]["results"][0]["locations"][0]["physicalLocation"]["artifactLocation"]
            ["uri"],
        "deploy/apps/feature-login.yaml"
    );
}

#[test]
fn the_base_of_a_merge_checkout_is_its_first_parent() {
    let dir = tempfile::tempdir().expect("tempdir");
    let repo = dir.path();
    git(repo, &["init", "-q"]);
    write_tree(repo, &[("a.yaml", "a: 1\n")]);
    git(repo, &["add", "-A"]);
    git(repo, &["commit", "-q", "-m", "base"]);
    let old_base = git(repo, &["rev-parse", "HEAD"]);
    git(repo, &["checkout", "-q", "-b", "feature"]);
    write_tree(repo, &[("b.yaml", "b: 1\n")]);
    git(repo, &["add", "-A"]);
    git(repo, &["commit", "-q", "-m", "feature"]);
    let head = git(repo, &["rev-parse", "HEAD"]);
    git(repo, &["checkout", "-q", "main"]);
    write_tree(repo, &[("c.yaml", "c: 1\n")]);
    git(repo, &["add", "-A"]);
    git(repo, &["commit", "-q", "-m", "main moved on"]);
    let main = git(repo, &["rev-parse", "HEAD"]);
    let pr = envfence::github::actions::PullRequest {
        number: 1,
        base_sha: old_base.clone(),
        head_sha: head.clone(),
        repository: None,
    };
    // On the PR's own head, the event's base.
    git(repo, &["checkout", "-q", "feature"]);
    assert_eq!(
        envfence::github::actions::base_revision(repo, &pr),
        old_base
    );
    // On GitHub's merge commit (main + feature), main as merged.
    git(repo, &["checkout", "-q", "main"]);
    git(repo, &["merge", "-q", "--no-ff", "--no-edit", "feature"]);
    assert_eq!(envfence::github::actions::base_revision(repo, &pr), main);
}

#[tokio::test]
async fn github_enterprise_paths_keep_the_api_prefix() {
    let fx = Fixture::new(&["feature-login"]);
    let server = MockServer::start().await;
    let comments = format!("/api/v3{COMMENTS}");
    Mock::given(method("GET"))
        .and(path("/api/v3/user"))
        .respond_with(
            ResponseTemplate::new(401).set_body_json(json!({"message": "Bad credentials"})),
        )
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(comments.as_str()))
        .and(header("authorization", format!("Bearer {TOKEN}").as_str()))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([])))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path(comments.as_str()))
        .and(header("authorization", format!("Bearer {TOKEN}").as_str()))
        .respond_with(ResponseTemplate::new(201).set_body_json(json!({
            "id": 9, "html_url": "https://ghe.test/acme/gitops/pull/7#issuecomment-9",
            "body": "x", "user": {"login": BOT}
        })))
        .expect(1)
        .mount(&server)
        .await;
    let out = bot()
        .env("GITHUB_EVENT_NAME", "pull_request")
        .env("GITHUB_EVENT_PATH", &fx.event)
        .env("GITHUB_REPOSITORY", REPO)
        .env("GITHUB_API_URL", format!("{}/api/v3/", server.uri()))
        .env("GITHUB_TOKEN", TOKEN)
        .env("GITHUB_WORKSPACE", &fx.repo)
        .args(["github", "-q"])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert_eq!(stderr(&out), "");
    server.verify().await;
}

#[test]
fn a_pull_request_event_without_its_payload_is_an_error() {
    let fx = Fixture::new(&[]);
    let out = bot()
        .env("GITHUB_EVENT_NAME", "pull_request")
        .env("GITHUB_EVENT_PATH", fx.repo.join("missing.json"))
        .env("GITHUB_WORKSPACE", &fx.repo)
        .args(["github", "-q"])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(
        err.starts_with("envfence: error: cannot read the event payload"),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1);
}

#[tokio::test]
async fn a_transient_failure_of_get_user_creates_and_edits_nothing() {
    let fx = Fixture::new(&["feature-login"]);
    let store = Store::default();
    // Another workflow's marked report, under the login the bot would have assumed.
    let theirs = "<!-- envfence:report -->\nanother workflow's report";
    store.add(BOT, theirs);
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/user"))
        .respond_with(ResponseTemplate::new(502))
        .expect(5)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(COMMENTS))
        .respond_with(ListComments(store.clone()))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(201))
        .expect(0)
        .mount(&server)
        .await;
    Mock::given(method("PATCH"))
        .respond_with(ResponseTemplate::new(200))
        .expect(0)
        .mount(&server)
        .await;
    let out = fx.run(&server, &[]);
    assert_eq!(out.status.code(), Some(1), "by --fail-on: {}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.starts_with(
            "envfence: warning: cannot tell which login the token acts as (GET /user: HTTP 502)"
        ) && err.contains("no pull-request comment was created or edited"),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        stdout(&out).contains("\n::warning title=envfence github::cannot tell which login"),
        "{}",
        stdout(&out)
    );
    assert!(fx
        .summary()
        .contains("no pull-request comment was created or edited"));
    assert!(fx.outputs().ends_with("comment-url=\n"));
    assert_eq!(store.by(BOT)[0]["body"], theirs);
    server.verify().await;
}

/// A server on 127.0.0.1 that answers every request with its headers and then one body byte
/// every half second, for ever: each read is quick, the answer never ends. Returns its URL
/// and the request lines it received.
fn trickling_server() -> (String, Arc<Mutex<Vec<String>>>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("address"));
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = Arc::clone(&seen);
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let log = Arc::clone(&log);
            std::thread::spawn(move || {
                let mut head = Vec::new();
                let mut byte = [0u8; 1];
                while !head.ends_with(b"\r\n\r\n") {
                    match stream.read(&mut byte) {
                        Ok(1) => head.push(byte[0]),
                        _ => return,
                    }
                }
                let line = String::from_utf8_lossy(&head)
                    .lines()
                    .next()
                    .unwrap_or("")
                    .to_owned();
                log.lock().expect("lock").push(line);
                let headers = "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 1000000\r\n\r\n";
                if stream.write_all(headers.as_bytes()).is_err() {
                    return;
                }
                loop {
                    std::thread::sleep(Duration::from_millis(500));
                    if stream
                        .write_all(b" ")
                        .and_then(|()| stream.flush())
                        .is_err()
                    {
                        return;
                    }
                }
            });
        }
    });
    (url, seen)
}

#[test]
fn a_trickling_api_cannot_hang_the_run() {
    let fx = Fixture::new(&["feature-login"]);
    let (url, seen) = trickling_server();
    let started = Instant::now();
    let out = fx
        .command(&url)
        // Shortened deadlines: 1.5 s a request (a byte arrives every 0.5 s, so no read
        // times out), 4 s for the run.
        .env("ENVFENCE_GITHUB_REQUEST_TIMEOUT_MS", "1500")
        .env("ENVFENCE_GITHUB_TIMEOUT", "4")
        .timeout(Duration::from_secs(30))
        .output()
        .expect("runs");
    let elapsed = started.elapsed();
    fx.assert_no_token(&out);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(elapsed < Duration::from_secs(15), "took {elapsed:?}");
    let err = stderr(&out);
    assert!(
        err.contains("cannot tell which login the token acts as")
            && err.contains("no complete answer")
            && err.contains("no pull-request comment was created or edited"),
        "{err}"
    );
    assert!(stdout(&out).contains("::warning title=envfence github::"));
    assert!(fx
        .summary()
        .contains("no pull-request comment was created or edited"));
    let seen = seen.lock().expect("lock").clone();
    assert!(!seen.is_empty());
    assert!(
        seen.iter().all(|line| line.starts_with("GET /user ")),
        "nothing but GET /user: {seen:?}"
    );
}

#[tokio::test]
async fn a_token_that_cannot_be_a_header_is_refused_without_a_panic() {
    let fx = Fixture::new(&["feature-login"]);
    let store = Store::default();
    let server = fake_github(&store, None).await;
    let bad = "ghs_BADtoken\u{1}SECRET";
    let out = fx
        .command(&server.uri())
        .env("GITHUB_TOKEN", bad)
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.starts_with("envfence: warning: GITHUB_TOKEN holds a character that cannot be sent in an HTTP header"),
        "{err}"
    );
    for text in [err.as_str(), &stdout(&out), &fx.summary()] {
        assert!(!text.contains("BADtoken"), "the token leaked: {text}");
    }
    assert!(stdout(&out).contains("::warning title=envfence github::GITHUB_TOKEN holds"));
    assert!(fx.summary().contains("GITHUB_TOKEN holds a character"));
    assert!(fx.summary().contains("nonprod-on-prod-cluster"));
    assert!(server
        .received_requests()
        .await
        .unwrap_or_default()
        .is_empty());
}

#[tokio::test]
async fn an_oversized_answer_is_not_read_nor_retried() {
    let fx = Fixture::new(&["feature-login"]);
    let server = MockServer::start().await;
    let huge = format!("{{\"login\":\"{}\"}}", "x".repeat(11 << 20));
    Mock::given(method("GET"))
        .and(path("/user"))
        .respond_with(ResponseTemplate::new(200).set_body_string(huge))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(201))
        .expect(0)
        .mount(&server)
        .await;
    Mock::given(method("PATCH"))
        .respond_with(ResponseTemplate::new(200))
        .expect(0)
        .mount(&server)
        .await;
    let out = fx.run(&server, &[]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("over the 10485760-byte cap")
            && err.contains("no pull-request comment was created or edited"),
        "{err}"
    );
    server.verify().await;
}

/// A pull request that only edits a chart's values file: the bot renders the chart on both
/// sides (the base from git objects) and reports the Application the edit adds, at its line.
#[tokio::test]
async fn a_values_change_of_a_local_chart_is_reported() {
    let Some(helm) = common::helm_for_tests() else {
        return;
    };
    let template = "{{- range .Values.apps }}\n---\napiVersion: argoproj.io/v1alpha1\nkind: Application\nmetadata:\n  name: {{ .name }}\n  namespace: argocd\nspec:\n  destination:\n    name: prod-eu\n    namespace: {{ .name }}\n  source:\n    repoURL: https://charts.example.com\n    chart: {{ .name }}\n    targetRevision: 1.0.0\n{{- end }}\n";
    let installer = "apiVersion: argoproj.io/v1alpha1\nkind: Application\nmetadata:\n  name: apps-prod\n  namespace: argocd\nspec:\n  destination:\n    name: prod-eu\n    namespace: argocd\n  source:\n    repoURL: https://git.example.com/platform.git\n    path: charts/apps\n    helm:\n      valueFiles:\n        - values-prod.yaml\n";
    let values = "apps:\n  - name: frontend\n";
    let mut fx = Fixture::new(&[]);
    write_tree(
        &fx.repo,
        &[
            (
                "charts/apps/Chart.yaml",
                "apiVersion: v2\nname: apps\nversion: 0.1.0\n",
            ),
            ("charts/apps/values.yaml", "apps: []\n"),
            ("charts/apps/values-prod.yaml", values),
            ("charts/apps/templates/apps.yaml", template),
            ("argo/apps-prod.yaml", installer),
        ],
    );
    fx.commit_apps(&[], "a chart of applications");
    fx.base_here();
    std::fs::write(
        fx.repo.join("charts/apps/values-prod.yaml"),
        format!("{values}  - name: integration-tests\n"),
    )
    .expect("write");
    fx.commit_apps(&[], "integration tests on production");
    let store = Store::default();
    let server = fake_github(&store, None).await;

    let out = fx
        .command(&server.uri())
        .env("ENVFENCE_HELM", &helm)
        .output()
        .expect("runs");
    fx.assert_no_token(&out);
    assert_eq!(out.status.code(), Some(1), "stderr: {}", stderr(&out));
    let annotations = stdout(&out);
    let errors: Vec<&str> = annotations
        .lines()
        .filter(|l| l.starts_with("::error"))
        .collect();
    assert_eq!(errors.len(), 1, "{annotations}");
    assert!(
        errors[0].starts_with("::error file=charts/apps/values-prod.yaml,line=3,"),
        "{annotations}"
    );
    let body = store.by(BOT)[0]["body"].as_str().expect("body").to_owned();
    assert!(body.contains("integration-tests"), "{body}");
    assert!(body.contains("charts/apps/values-prod.yaml:3"), "{body}");
}

/// Issue 25: a pull request whose scan a budget cut short exits 3, and the comment and the
/// job summary say so at the top, above the verdict; the annotations begin with it.
#[tokio::test]
async fn an_incomplete_scan_says_so_at_the_top_of_the_comment_and_exits_3() {
    let fx = Fixture::new(&["feature-login", "feature-search"]);
    // The head lowers the scan's object budget to one: the second delivery is cut.
    write_tree(
        &fx.repo,
        &[(
            ".envfence.yaml",
            &format!("{CONFIG}limits:\n  expanded-objects: 1\n"),
        )],
    );
    git(&fx.repo, &["commit", "-q", "-am", "a lower budget"]);
    fx.commit_apps(&["feature-login", "feature-search"], "the pull request");
    let store = Store::default();
    let server = fake_github(&store, None).await;

    let out = fx.run(&server, &[]);
    assert_eq!(out.status.code(), Some(3), "stderr: {}", stderr(&out));
    assert!(
        stdout(&out).starts_with(
            "::error title=envfence%3A scan incomplete::Incomplete: a budget cut this scan short"
        ),
        "{}",
        stdout(&out)
    );
    let ours = store.by(BOT);
    assert_eq!(ours.len(), 1);
    let body = ours[0]["body"].as_str().expect("body");
    assert!(
        body.starts_with(
            "<!-- envfence:report -->\n> [!WARNING]\n> **Incomplete: a budget cut this scan short"
        ),
        "{body}"
    );
    assert!(body.contains("limits.expanded-objects"), "{body}");
    assert!(fx
        .summary()
        .contains("> **Incomplete: a budget cut this scan short"));
    // `--fail-on never` reports the same and keeps 0.
    let out = fx.run(&server, &["--fail-on", "never"]);
    assert_eq!(out.status.code(), Some(0), "stderr: {}", stderr(&out));
}

/// The HTML report beside the SARIF file: the comment and the job summary link the run's page,
/// where the action uploads it; the page itself is written, with links to the head commit.
#[tokio::test]
async fn the_comment_links_the_run_page_where_the_html_report_is() {
    let fx = Fixture::new(&["feature-login"]);
    let store = Store::default();
    let server = fake_github(&store, None).await;
    let reports = tempfile::tempdir().expect("tempdir");
    let sarif = reports.path().join("envfence.sarif");
    let out = fx.run(&server, &["--sarif", &sarif.to_string_lossy()]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let link = format!("Full report (HTML): an artifact on the [workflow run's page]({RUN_URL}).");
    let body = store.by(BOT)[0]["body"].as_str().expect("body").to_owned();
    assert!(body.contains(&link), "{body}");
    assert!(fx.summary().contains(&link), "{}", fx.summary());
    let html = reports.path().join("envfence.html");
    assert!(
        fx.outputs()
            .contains(&format!("\nhtml-file={}\n", html.display())),
        "{}",
        fx.outputs()
    );
    let page = std::fs::read_to_string(&html).expect("the HTML report is written");
    let head = git(&fx.repo, &["rev-parse", "HEAD"]);
    assert!(page.starts_with("<!DOCTYPE html>"), "{page}");
    assert!(
        page.contains(&format!(
            "<a href=\"https://github.test/acme/gitops/blob/{head}/apps/feature-login.yaml#L11\">"
        )),
        "{page}"
    );
    assert!(page.contains(&format!("<a href=\"{RUN_URL}\">")), "{page}");
    assert!(!page.contains(TOKEN));
}

/// Without a run id, a run id that is not digits, or a server that is not https, there is no
/// run link; without an HTML report there is nothing to point to.
#[tokio::test]
async fn no_run_link_without_a_valid_run_or_a_report() {
    let fx = Fixture::new(&["feature-login"]);
    let html = fx.repo.parent().expect("parent").join("report.html");
    for (run_id, server_url, html_arg) in [
        (None, "https://github.test", true),
        (Some("99; rm -rf /"), "https://github.test", true),
        (Some("99"), "http://github.test", true),
        (Some("99"), "https://github.test", false),
    ] {
        let store = Store::default();
        let server = fake_github(&store, None).await;
        let mut cmd = fx.command(&server.uri());
        cmd.env("GITHUB_SERVER_URL", server_url);
        match run_id {
            Some(id) => cmd.env("GITHUB_RUN_ID", id),
            None => cmd.env_remove("GITHUB_RUN_ID"),
        };
        if html_arg {
            cmd.arg("--html").arg(&html);
        }
        let out = cmd.output().expect("runs");
        assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
        let body = store.by(BOT)[0]["body"].as_str().expect("body").to_owned();
        assert!(
            !body.contains("Full report"),
            "{run_id:?} {server_url}: {body}"
        );
        assert!(
            !body.contains("actions/runs"),
            "{run_id:?} {server_url}: {body}"
        );
        if html_arg {
            let page = std::fs::read_to_string(&html).expect("written");
            assert!(!page.contains("actions/runs"), "{page}");
        } else {
            // Neither --html nor --sarif: no report, and an empty output.
            assert!(
                fx.outputs()
                    .contains("sarif-file=\nhtml-file=\ncomment-url="),
                "{}",
                fx.outputs()
            );
        }
    }
}
