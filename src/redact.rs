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

/// `text` with credentials replaced by [`MASK`]; borrowed when there is nothing to redact.
pub fn secrets(text: &str) -> Cow<'_, str> {
    match url_passwords(text) {
        Cow::Borrowed(text) => keyed_values(text),
        Cow::Owned(text) => Cow::Owned(keyed_values(&text).into_owned()),
    }
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

/// Replaces the password of every `scheme://user:password@host`.
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
                match userinfo.split_once(':') {
                    Some((user, password)) if !password.is_empty() && password != MASK => {
                        out.push_str(user);
                        out.push(':');
                        out.push_str(MASK);
                        out.push_str(&authority[at_sign..]);
                        changed = true;
                    }
                    _ => out.push_str(authority),
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
    fn key_words_split_at_humps_and_punctuation() {
        assert_eq!(key_words("accessToken"), vec!["access", "token"]);
        assert_eq!(key_words("X_API-KEY"), vec!["x", "api", "key"]);
        assert!(is_secret_key("privateKey") && is_secret_key("PASSWD"));
        assert!(!is_secret_key("keyboard") && !is_secret_key("passage"));
    }
}
