//! `envfence github`: the pull-request bot (DESIGN §9).
//!
//! Read top-down as a run goes: [`actions`] reads the Actions environment and the event
//! payload, and picks the base revision of the diff-aware scan; [`paths`] makes the report's
//! paths relative to the git repository; [`comment`] finds the bot's one marked comment and
//! creates, updates or resolves it through [`api`], which retries what [`retry`] calls
//! transient. [`run`] is one whole run, in that order; the binary prints the annotations and
//! warnings it returns, and nothing here prints.

pub mod actions;
pub mod api;
pub mod comment;
pub mod paths;
pub mod retry;

use std::path::Path;

use crate::config::Config;
use crate::output;
use crate::rules::Policies;
use crate::scan::{self, Progress, ScanOptions, ScanReport, Target};

use actions::ActionsEnv;
use comment::{CommentMode, Publish};
use retry::RetryPolicy;

/// The job summary's own limit is 1 MiB; stay clear of it.
const SUMMARY_MAX: usize = 1_000_000;

/// What `envfence github` was asked to do: its command line.
#[derive(Debug, Clone)]
pub struct Request<'a> {
    /// The folder to scan, relative to `GITHUB_WORKSPACE` when that is set.
    pub path: &'a Path,
    pub config: Option<&'a Path>,
    pub policies: Option<&'a Path>,
    pub comment: CommentMode,
    pub sarif: Option<&'a Path>,
    /// Where to write the HTML report; without it, `envfence.html` beside the SARIF file
    /// ([`html_path`]), or nowhere.
    pub html: Option<&'a Path>,
    pub options: ScanOptions,
}

/// The file name of the HTML report beside the SARIF file.
pub const HTML_FILE: &str = "envfence.html";

/// Where the HTML report goes: `--html`, else [`HTML_FILE`] in the SARIF file's folder (never
/// the SARIF file itself), else nowhere.
pub fn html_path(request: &Request) -> Option<std::path::PathBuf> {
    if let Some(html) = request.html {
        return Some(html.to_path_buf());
    }
    let sarif = request.sarif?;
    let name = if sarif.file_name() == Some(std::ffi::OsStr::new(HTML_FILE)) {
        "envfence-report.html"
    } else {
        HTML_FILE
    };
    Some(sarif.with_file_name(name))
}

/// What a run leaves for the binary to print and to judge.
#[derive(Debug)]
pub struct Outcome {
    /// Paths relative to the git repository; statuses against the pull request's base.
    pub report: ScanReport,
    /// Workflow commands for the new findings, for standard output.
    pub annotations: String,
    /// One line each, with the token blanked, for standard error.
    pub warnings: Vec<String>,
}

/// One run of the bot: scan (diff-aware on a pull request), write SARIF when asked, publish
/// the comment, append the job summary and the step outputs. Problems with the GitHub API are
/// warnings; only usage, configuration and I/O problems are errors.
pub fn run(
    request: &Request,
    env: &ActionsEnv,
    progress: &(dyn Fn(Progress) + Sync),
) -> anyhow::Result<Outcome> {
    let mut warnings = Vec::new();
    let path = match &env.workspace {
        Some(workspace) if request.path.is_relative() => workspace.join(request.path),
        _ => request.path.to_path_buf(),
    };
    let target = Target::resolve(&path)?;
    let config = Config::discover(&target.display_root, request.config)?;
    let mut policies = Policies::builtin()?;
    if let Some(dir) = &config.policies {
        policies.apply_dir(&target.display_root.join(dir), &target.display_root)?;
    }
    if let Some(dir) = request.policies {
        policies.apply_dir(dir, &target.display_root)?;
    }
    policies.apply_config(&config);
    let pull_request = actions::pull_request(env)?;
    let mut report = match &pull_request {
        Some(pr) => {
            let revisions = scan::Revisions {
                base: actions::base_revision(&target.root, pr),
                head: None,
            };
            // The git errors say what to fetch; this says which revision the event named.
            scan::diff_scan(
                &target,
                &config,
                &policies,
                &request.options,
                &revisions,
                progress,
            )
            .map_err(|e| {
                e.context(format!(
                    "cannot compare with the pull request's base {}",
                    revisions.base
                ))
            })?
        }
        None => scan::scan(&target, &config, &policies, &request.options, progress)?,
    };
    if let Some(prefix) = paths::repository_prefix(&target.root) {
        paths::prefix_paths(&mut report, &prefix);
    }

    if let Some(sarif) = request.sarif {
        // Never through a symlink: `envfence.sarif` may be one the pull request committed.
        crate::files::open_for_writing(sarif, crate::files::WriteMode::Truncate)
            .and_then(|mut file| {
                std::io::Write::write_all(
                    &mut file,
                    output::sarif::render(&report, &policies).as_bytes(),
                )
            })
            .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", sarif.display()))?;
    }

    let run_url = env.run_url();
    // Locations link to the pull request's head commit (a push: the pushed commit).
    let head = pull_request.as_ref().map(|pr| pr.head_sha.as_str());
    let blob_url = env.blob_url(head.or(env.sha.as_deref()));

    // Written before the comment, which links the run's page only when there is a report
    // for the run to keep.
    let html = html_path(request);
    if let Some(html) = &html {
        let page = output::html::render(
            &report,
            &output::html::HtmlOptions {
                blob_url: blob_url.as_deref(),
                run_url: run_url.as_deref(),
            },
        );
        // Never through a symlink: the pull request may have committed one at this path.
        crate::files::open_for_writing(html, crate::files::WriteMode::Truncate)
            .and_then(|mut file| std::io::Write::write_all(&mut file, page.as_bytes()))
            .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", html.display()))?;
    }
    let report_url = run_url.as_deref().filter(|_| html.is_some());
    let mut comment_url = None;
    let mut resolved = false;
    if let (Some(pr), true) = (&pull_request, request.comment != CommentMode::Never) {
        let repository = env.repository.clone().or_else(|| pr.repository.clone());
        match (&env.token, repository) {
            (None, _) => warnings.push(
                "GITHUB_TOKEN is not set: no pull-request comment; the findings are in the annotations and the job summary"
                    .to_owned(),
            ),
            (Some(_), None) => {
                warnings.push("GITHUB_REPOSITORY is not set: no pull-request comment".to_owned())
            }
            (Some(_), Some(repo)) if !actions::valid_repository(&repo) => warnings.push(format!(
                "GITHUB_REPOSITORY `{repo}` is not owner/name: no pull-request comment"
            )),
            // Checked before any client exists: the HTTP client panics on such a header.
            (Some(token), Some(_)) if !token.is_header_safe() => warnings.push(
                "GITHUB_TOKEN holds a character that cannot be sent in an HTTP header (a control character, a space or a non-ASCII letter): no pull-request comment; the findings are in the annotations and the job summary"
                    .to_owned(),
            ),
            (Some(token), Some(repo)) => {
                let mut policy = RetryPolicy::default();
                if let Some(base) = env.retry_base {
                    policy.base = base;
                }
                if let Some(run) = env.run_timeout {
                    policy.run_timeout = run;
                }
                if let Some(request) = env.request_timeout {
                    policy.request_timeout = request;
                }
                policy.request_timeout = policy.request_timeout.min(policy.run_timeout);
                let outcome = comment::publish(
                    &report,
                    &Publish {
                        api_url: &env.api_url,
                        token,
                        repository: &repo,
                        number: pr.number,
                        mode: request.comment,
                        fallback_login: env.bot_login.as_deref(),
                        run_url: run_url.as_deref(),
                        blob_url: blob_url.as_deref(),
                        report_url,
                        policy,
                    },
                );
                warnings.extend(outcome.warnings);
                comment_url = outcome.url;
                resolved = outcome.resolved;
            }
        }
    }

    // One line each, with the token blanked should any text echo it.
    for warning in &mut warnings {
        *warning = warning.replace(['\n', '\r'], " ");
        if let Some(token) = &env.token {
            if !token.expose().is_empty() {
                *warning = warning.replace(token.expose(), "***");
            }
        }
    }

    if let Some(summary) = &env.step_summary {
        let mut body = output::markdown::render_comment(
            &report,
            &output::markdown::CommentOptions {
                resolved,
                max_len: Some(SUMMARY_MAX),
                run_url: run_url.as_deref(),
                blob_url: blob_url.as_deref(),
                report_url,
            },
        );
        for warning in &warnings {
            body.push_str(&summary_note(warning));
        }
        actions::append_summary(summary, &body)?;
    }
    if let Some(outputs) = &env.output {
        let sarif = request
            .sarif
            .map(|p| p.to_string_lossy().into_owned())
            .unwrap_or_default();
        actions::append_outputs(
            outputs,
            &[
                ("findings", &comment::new_findings(&report).to_string()),
                ("sarif-file", &sarif),
                (
                    "html-file",
                    &html
                        .as_ref()
                        .map(|p| p.to_string_lossy().into_owned())
                        .unwrap_or_default(),
                ),
                ("comment-url", comment_url.as_deref().unwrap_or("")),
            ],
        )?;
    }

    let mut annotations = output::github::render(&report);
    for warning in &warnings {
        annotations.push_str(&warning_command(warning));
    }
    Ok(Outcome {
        annotations,
        report,
        warnings,
    })
}

/// A warning as a workflow command, so that it shows on the run's page: `%`, CR and LF
/// escaped as the runner expects, and `##[` broken so no legacy command hides in it.
fn warning_command(warning: &str) -> String {
    let message = warning
        .replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
        .replace("##[", "#\u{200B}#[");
    format!("::warning title=envfence github::{message}\n")
}

/// A warning as a line of the job summary, with HTML neutralised.
fn summary_note(warning: &str) -> String {
    let text = warning
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;");
    format!("\n> **envfence github:** {text}\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warnings_become_one_escaped_command_and_note() {
        assert_eq!(
            warning_command("50% done\n##[error]x"),
            "::warning title=envfence github::50%25 done%0A#\u{200B}#[error]x\n"
        );
        assert_eq!(
            summary_note("a <b>"),
            "\n> **envfence github:** a &lt;b&gt;\n"
        );
    }
}
