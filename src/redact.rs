//! Redaction of credentials quoted from repository text.
//!
//! Findings quote values (an env var's URL, a ConfigMap literal) so that a reader sees what
//! was judged; those values may hold credentials, and every output (terminal, JSON, SARIF,
//! annotations, the pull-request comment) ends up in logs and on web pages. [`secrets`] is
//! applied where a finding's text is made ([`crate::findings::Finding::new`] and
//! [`crate::findings::Finding::evidence`]), so every format gets the redacted text, and the
//! topology renderers apply it to the evidence notes they print.
//!
//! What is redacted, always to `****`:
//! - the password of a URL's userinfo: `postgres://orders:****@db.prod:5432/orders` (the host,
//!   which is what findings are about, stays);
//! - a URL's user that looks like a token rather than a name (`https://****@git.prod.example`
//!   for `https://ghp_…@git.prod.example`, the key of a Sentry DSN
//!   `https://****@o123.ingest.sentry.io/456`): one with a known token prefix (`ghp_`, `glpat-`,
//!   …), or of at least 16 characters mixing letters and digits; `git@`, `postgres@`,
//!   `x-access-token:` stay;
//! - a JSON Web Token anywhere: three or more base64url segments joined by `.`, the first
//!   starting `eyJ` (`{"` encoded), the signature possibly empty;
//! - the value after `=` or `:` of a key that names a credential: its last word is one of
//!   `password`, `passwd`, `pwd`, `pass`, `passphrase`, `secret`, `token`, `auth`,
//!   `authorization`, `credential(s)`, `apikey`, or its last two are `api key`, `access
//!   key`, `private key`, `secret key`, `client secret`, `signing key` (in any case, words
//!   split at `_`, `-`, `.` and camelCase humps: `DB_PASSWORD`, `accessToken`, `x-api-key`).
//!   Keys that only refer to a credential (`secretRef`, `secretName`, `PASSWORD_FILE`,
//!   `TOKEN_URL`) end in another word and keep their value, which findings are about. This
//!   covers
//!   `key=value`, `key: value`, `"key": "value"`, the `env NAME = value` of evidence notes and
//!   URL query parameters (`?token=…&x=1`). A value that is itself a URL keeps its host: only
//!   its own userinfo and query parameters are redacted.

use std::borrow::Cow;

/// What replaces a redacted value.
pub const MASK: &str = "****";

/// Single words that make a key a credential's name.
const SECRET_WORDS: &[&str] = &[
    "password",
    "passwd",
    "pwd",
    "pass",
    "passphrase",
    "secret",
    "token",
    "auth",
    "authorization",
    "credential",
    "credentials",
    "apikey",
    "accesskey",
    "privatekey",
    "secretkey",
    "clientsecret",
];

/// Two consecutive words that do (`api_key`, `access-key`, `privateKey` ...).
const SECRET_PAIRS: &[(&str, &str)] = &[
    ("api", "key"),
    ("access", "key"),
    ("private", "key"),
    ("secret", "key"),
    ("client", "secret"),
    ("signing", "key"),
];

/// Prefixes of well-known tokens (GitHub, GitLab, Slack, npm, PyPI, Hugging Face, Stripe).
const TOKEN_PREFIXES: &[&str] = &[
    "ghp_",
    "gho_",
    "ghs_",
    "ghu_",
    "ghr_",
    "github_pat_",
    "glpat-",
    "gldt-",
    "xoxb-",
    "xoxp-",
    "xoxa-",
    "npm_",
    "pypi-",
    "hf_",
    "sk_live_",
    "rk_live_",
];

/// `text` with credentials replaced by [`MASK`]; borrowed when there is nothing to redact.
pub fn secrets(text: &str) -> Cow<'_, str> {
    let text = then(url_passwords(text), keyed_values);
    then(text, jwts)
}

/// Applies `step` to what the previous step gave, borrowing as long as nothing changed.
fn then<'a>(text: Cow<'a, str>, step: fn(&str) -> Cow<'_, str>) -> Cow<'a, str> {
    match text {
        Cow::Borrowed(text) => step(text),
        Cow::Owned(text) => Cow::Owned(step(&text).into_owned()),
    }
}

/// Whether a URL's user part is a token rather than a name: a known token prefix, or at least
/// 16 characters mixing letters and digits (a Sentry DSN's 32 hex digits, a bare API key).
fn user_is_token(user: &str) -> bool {
    if user.is_empty() || user == MASK {
        return false;
    }
    TOKEN_PREFIXES.iter().any(|p| user.starts_with(p))
        || (user.chars().count() >= 16
            && user.chars().any(|c| c.is_ascii_digit())
            && user.chars().any(|c| c.is_ascii_alphabetic()))
}

/// Whether a key (`DB_PASSWORD`, `accessToken`, `x-api-key`) names a credential: by its last
/// word or two, so that `secretRef` or `PASSWORD_FILE`, which name where a credential is,
/// do not.
pub fn is_secret_key(key: &str) -> bool {
    let words = key_words(key);
    match words.as_slice() {
        [.., last] if SECRET_WORDS.contains(&last.as_str()) => true,
        [.., a, b] => SECRET_PAIRS.contains(&(a.as_str(), b.as_str())),
        _ => false,
    }
}

/// A key's words, lower-cased: split at punctuation and at camelCase humps.
fn key_words(key: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut current = String::new();
    let mut prev_lower = false;
    for c in key.chars() {
        if !c.is_ascii_alphanumeric() {
            if !current.is_empty() {
                words.push(std::mem::take(&mut current));
            }
            prev_lower = false;
            continue;
        }
        if c.is_ascii_uppercase() && prev_lower && !current.is_empty() {
            words.push(std::mem::take(&mut current));
        }
        prev_lower = c.is_ascii_lowercase() || c.is_ascii_digit();
        current.push(c.to_ascii_lowercase());
    }
    if !current.is_empty() {
        words.push(current);
    }
    words
}

/// Characters that end a URL's authority (RFC 3986), or the URL itself in prose.
fn ends_authority(c: char) -> bool {
    matches!(
        c,
        '/' | '?' | '#' | '`' | '"' | '\'' | '<' | '>' | ')' | ']' | '}' | ','
    ) || c.is_whitespace()
        || c.is_control()
}

/// Replaces the password of every `scheme://user:password@host`, and the user when it is a
/// token (`scheme://token@host`).
fn url_passwords(text: &str) -> Cow<'_, str> {
    if !text.contains("://") {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    let mut changed = false;
    while let Some(at) = rest.find("://") {
        let start = at + 3;
        out.push_str(&rest[..start]);
        let after = &rest[start..];
        let end = after.find(ends_authority).unwrap_or(after.len());
        let authority = &after[..end];
        match authority.rfind('@') {
            Some(at_sign) => {
                let userinfo = &authority[..at_sign];
                let (user, password) = match userinfo.split_once(':') {
                    Some((user, password)) => (user, Some(password)),
                    None => (userinfo, None),
                };
                let mask_user = user_is_token(user);
                let mask_password = password.is_some_and(|p| !p.is_empty() && p != MASK);
                if mask_user || mask_password {
                    out.push_str(if mask_user { MASK } else { user });
                    if let Some(password) = password {
                        out.push(':');
                        out.push_str(if mask_password { MASK } else { password });
                    }
                    out.push_str(&authority[at_sign..]);
                    changed = true;
                } else {
                    out.push_str(authority);
                }
            }
            None => out.push_str(authority),
        }
        rest = &after[end..];
    }
    out.push_str(rest);
    if changed {
        Cow::Owned(out)
    } else {
        Cow::Borrowed(text)
    }
}

fn is_base64url(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'-' || b == b'_'
}

/// Replaces every JSON Web Token: base64url segments joined by `.`, at least three (JWS; a JWE
/// has five), the first starting `eyJ` and not inside a longer word; the third (the signature)
/// may be empty (an unsigned token).
fn jwts(text: &str) -> Cow<'_, str> {
    if !text.contains("eyJ") {
        return Cow::Borrowed(text);
    }
    let bytes = text.as_bytes();
    let mut out = String::new();
    let mut copied = 0;
    let mut search = 0;
    while let Some(found) = text[search..].find("eyJ") {
        let start = search + found;
        search = start + 3;
        if start > 0 && is_base64url(bytes[start - 1]) {
            continue;
        }
        let segment_end = |from: usize| {
            let mut end = from;
            while end < bytes.len() && is_base64url(bytes[end]) {
                end += 1;
            }
            end
        };
        let mut end = segment_end(start);
        let mut segments = 1;
        while bytes.get(end) == Some(&b'.') {
            let next = segment_end(end + 1);
            let empty = next == end + 1;
            // An empty segment only as the signature (and last); otherwise the dot ends a
            // sentence.
            if empty && segments != 2 {
                break;
            }
            segments += 1;
            end = next;
            if empty {
                break;
            }
        }
        if segments < 3 || end - start < 16 {
            continue;
        }
        out.push_str(&text[copied..start]);
        out.push_str(MASK);
        copied = end;
        search = end;
    }
    if copied == 0 {
        return Cow::Borrowed(text);
    }
    out.push_str(&text[copied..]);
    Cow::Owned(out)
}

fn is_key_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.')
}

/// Replaces the value of every `key=value` / `key: value` whose key names a credential.
fn keyed_values(text: &str) -> Cow<'_, str> {
    let bytes = text.as_bytes();
    let mut out = String::new();
    // Text up to `copied` is in `out` already.
    let mut copied = 0;
    let mut i = 0;
    while i < bytes.len() {
        let sep = bytes[i];
        if sep != b'=' && sep != b':' {
            i += 1;
            continue;
        }
        // The key: skip spaces and a closing quote before the separator, then take the run
        // of key characters.
        let mut key_end = i;
        while key_end > 0 && bytes[key_end - 1] == b' ' {
            key_end -= 1;
        }
        if key_end > 0 && matches!(bytes[key_end - 1], b'"' | b'\'') {
            key_end -= 1;
        }
        let mut key_start = key_end;
        while key_start > 0 && is_key_char(bytes[key_start - 1] as char) {
            key_start -= 1;
        }
        let key = &text[key_start..key_end];
        // A URL's `user:password@` was handled by `url_passwords`, keeping the host.
        let userinfo = text[..key_start].ends_with("://");
        if key.is_empty() || userinfo || !is_secret_key(key) {
            i += 1;
            continue;
        }
        // `::` and `=>` are not separators of a value.
        if bytes.get(i + 1).is_some_and(|&b| b == b':' || b == b'>') {
            i += 2;
            continue;
        }
        let mut v = i + 1;
        while v < bytes.len() && bytes[v] == b' ' {
            v += 1;
        }
        let (value_start, value_end, next) = match bytes.get(v) {
            Some(&q @ (b'"' | b'\'' | b'`')) => match text[v + 1..].find(q as char) {
                Some(len) => (v + 1, v + 1 + len, v + 2 + len),
                None => (v + 1, text.len(), text.len()),
            },
            Some(_) => {
                let len = text[v..]
                    .find(|c: char| {
                        c.is_whitespace()
                            || c.is_control()
                            || matches!(c, '&' | ',' | ';' | ')' | ']' | '}' | '"' | '\'' | '`')
                    })
                    .unwrap_or(text.len() - v);
                (v, v + len, v + len)
            }
            None => (v, v, v),
        };
        let value = &text[value_start..value_end];
        if value.is_empty() || value == MASK || value.contains("://") {
            i = next.max(i + 1);
            continue;
        }
        out.push_str(&text[copied..value_start]);
        out.push_str(MASK);
        copied = value_end;
        i = next.max(i + 1);
    }
    if copied == 0 {
        return Cow::Borrowed(text);
    }
    out.push_str(&text[copied..]);
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_passwords_are_masked_and_hosts_kept() {
        assert_eq!(
            secrets("env ORDERS_DB_URL = postgres://orders:orders@orders-db.prod:5432/orders"),
            "env ORDERS_DB_URL = postgres://orders:****@orders-db.prod:5432/orders"
        );
        assert_eq!(
            secrets("`https://x-access-token:ghs_abc@github.com/o/r.git` and redis://:pw@cache"),
            "`https://x-access-token:****@github.com/o/r.git` and redis://:****@cache"
        );
        // No password, or no userinfo: unchanged (and not copied).
        for text in [
            "ssh://git@github.com/o/r",
            "https://host:8443/x?to=a@b.example",
            "plain text",
        ] {
            assert!(matches!(secrets(text), Cow::Borrowed(_)), "{text}");
        }
    }

    #[test]
    fn values_of_secret_keys_are_masked() {
        assert_eq!(
            secrets("env DB_PASSWORD = hunter2"),
            "env DB_PASSWORD = ****"
        );
        assert_eq!(
            secrets("jdbc:postgresql://db.prod/orders?user=app&password=s3cr3t&ssl=true"),
            "jdbc:postgresql://db.prod/orders?user=app&password=****&ssl=true"
        );
        assert_eq!(
            secrets(r#"{"apiKey": "abc123", "name": "x"}"#),
            r#"{"apiKey": "****", "name": "x"}"#
        );
        assert_eq!(
            secrets("literal client_secret=`a b c` kept"),
            "literal client_secret=`****` kept"
        );
        assert_eq!(secrets("x-auth-token: abc"), "x-auth-token: ****");
        // A URL under a secret-looking key keeps its host.
        assert_eq!(
            secrets("env AUTH_URL = https://u:p@auth.prod.example/login"),
            "env AUTH_URL = https://u:****@auth.prod.example/login"
        );
        // Not credentials.
        for text in [
            "author: someone",
            "env ORDERS_DB_URL = https://db.prod",
            "host orders-db.prod is production",
            "keys: a, b",
            "token::path",
            "secretRef = shop-prod-credentials",
            "vault.hashicorp.com/agent-inject-secret-db = secret/data/prod/reporting",
            "PASSWORD_FILE=/run/secrets/db",
        ] {
            assert_eq!(secrets(text), text);
        }
    }

    #[test]
    fn token_users_dsns_and_jwts_are_masked() {
        assert_eq!(
            secrets("env GIT_URL = https://ghp_abcdefghij0123456789@git.prod.example/x"),
            "env GIT_URL = https://****@git.prod.example/x"
        );
        assert_eq!(
            secrets("dsn https://0123456789abcdef0123456789abcdef@o123.ingest.sentry.io/456 ok"),
            "dsn https://****@o123.ingest.sentry.io/456 ok"
        );
        // A token user with a password: both masked.
        assert_eq!(
            secrets("https://ghp_short:x-oauth-basic@github.com/o/r"),
            "https://****:****@github.com/o/r"
        );
        let jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NSJ9.c2lnbmF0dXJlX2J5dGVz-_x";
        assert_eq!(
            secrets(&format!("env SESSION = {jwt}. Next")),
            "env SESSION = ****. Next"
        );
        assert_eq!(
            secrets(&format!(
                "\"{jwt}\", unsigned eyJhbGciOiJub25lIn0.eyJzdWIiOiIxIn0."
            )),
            "\"****\", unsigned ****"
        );
        // Names, not tokens; and `eyJ` that is not a token.
        for text in [
            "ssh://git@github.com/o/r",
            "postgres://postgres@db.prod/orders",
            "https://deploy-bot@git.example/x",
            "see eyJhbGciOiJIUzI1NiJ9 alone",
            "keyJar.eyJx.y",
            "eyJ.a.b",
        ] {
            assert!(matches!(secrets(text), Cow::Borrowed(_)), "{text}");
        }
    }

    #[test]
    fn key_words_split_at_humps_and_punctuation() {
        assert_eq!(key_words("accessToken"), vec!["access", "token"]);
        assert_eq!(key_words("X_API-KEY"), vec!["x", "api", "key"]);
        assert!(is_secret_key("privateKey") && is_secret_key("PASSWD"));
        assert!(!is_secret_key("keyboard") && !is_secret_key("passage"));
    }
}
