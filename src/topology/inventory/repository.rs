//! Which `repoURL` is "this repository" (docs/decisions.md): the config's `repository.urls`,
//! the `origin` remote of the scanned root and `GITHUB_REPOSITORY`, compared after
//! normalising (scheme, user, `git@host:` form, case of the host, `.git` suffix, trailing `/`).
//!
//! A URL that matches none of them is not known to be another repository: mirrors and forks
//! are common, and a copy of a repository has no remote. When the path it names exists here it
//! is read from here and the evidence says that was assumed; otherwise the deployer's payload
//! is outside the repository and it becomes an opaque placement.

use crate::config::Config;

#[derive(Debug, Default, Clone)]
pub struct ThisRepository {
    /// (normalised URL, where it was found).
    urls: Vec<(String, String)>,
}

/// What a `repoURL` is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RepoMatch {
    /// One of this repository's URLs; the string says which source declared it.
    This(String),
    /// Not known to be this repository.
    Unknown,
}

impl ThisRepository {
    pub fn from_config(config: &Config) -> ThisRepository {
        let mut urls: Vec<(String, String)> = config
            .repository
            .urls
            .iter()
            .map(|u| (normalise_url(u), "repository.urls in the config".to_owned()))
            .collect();
        urls.extend(
            config
                .detected_urls
                .iter()
                .map(|(u, from)| (normalise_url(u), from.clone())),
        );
        ThisRepository { urls }
    }

    pub fn classify(&self, url: Option<&str>) -> RepoMatch {
        // Without a known URL nothing matches: no need to normalise (once per Application).
        let Some(url) = url.filter(|_| !self.urls.is_empty()) else {
            return RepoMatch::Unknown;
        };
        let want = normalise_url(url);
        self.urls
            .iter()
            .find(|(u, _)| *u == want)
            .map_or(RepoMatch::Unknown, |(_, from)| {
                RepoMatch::This(from.clone())
            })
    }
}

/// `https://GitHub.com/acme/platform.git/`, `git@github.com:acme/platform`,
/// `ssh://git@github.com/acme/platform.git` → `github.com/acme/platform`.
pub fn normalise_url(url: &str) -> String {
    let url = url.trim().trim_matches(|c| c == '\'' || c == '"');
    let (rest, scp) = match url.split_once("://") {
        Some((_, rest)) => (rest, false),
        None => (url, true),
    };
    // user@host
    let rest = match rest.split_once('@') {
        Some((user, host)) if !user.contains('/') => host,
        _ => rest,
    };
    // `host:path` (scp-like) and `host:port/path`.
    let (host, path) = match rest.split_once('/') {
        Some((host, path)) if !(scp && host.contains(':')) => (host, path.to_owned()),
        _ => match rest.split_once(':') {
            Some((host, path)) => (host, path.to_owned()),
            None => (rest, String::new()),
        },
    };
    let host = host
        .rsplit_once(':')
        .filter(|(_, port)| port.chars().all(|c| c.is_ascii_digit()))
        .map_or(host, |(h, _)| h)
        .to_ascii_lowercase();
    let path = path.trim_matches('/');
    let path = path
        .strip_suffix(".git")
        .unwrap_or(path)
        .trim_end_matches('/');
    format!("{host}/{path}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_normalise_to_one_form() {
        let want = "github.com/acme/platform";
        for url in [
            "https://github.com/acme/platform",
            "https://GitHub.com/acme/platform.git",
            "https://github.com/acme/platform/",
            "git@github.com:acme/platform.git",
            "ssh://git@github.com/acme/platform.git",
            "ssh://git@github.com:22/acme/platform",
            "http://user@github.com/acme/platform.git",
            "'https://github.com/acme/platform.git'",
        ] {
            assert_eq!(normalise_url(url), want, "{url}");
        }
        assert_ne!(normalise_url("https://github.com/acme/other"), want);
    }

    #[test]
    fn config_and_detected_urls_are_this_repository() {
        let mut config = Config::default();
        config.repository.urls = vec!["https://github.com/acme/platform.git".into()];
        config.detected_urls = vec![("git@github.com:acme/mirror".into(), "origin".into())];
        let this = ThisRepository::from_config(&config);
        assert!(matches!(
            this.classify(Some("git@github.com:acme/platform")),
            RepoMatch::This(_)
        ));
        assert_eq!(
            this.classify(Some("https://github.com/acme/mirror")),
            RepoMatch::This("origin".into())
        );
        assert_eq!(
            this.classify(Some("https://github.com/other/repo")),
            RepoMatch::Unknown
        );
    }
}
