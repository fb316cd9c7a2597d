//! The template subset ApplicationSets use: `{{key}}` substitution, and with `goTemplate` the
//! Go-template expressions real ApplicationSets write.

use std::collections::BTreeMap;

/// Substitutes `{{key}}` (default mode) or Go template expressions (`goTemplate: true`).
/// An unknown parameter is an error: the value cannot be known statically.
pub fn render(text: &str, params: &BTreeMap<String, String>, go: bool) -> Result<String, String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else {
            return Err(format!("unclosed {{{{ in `{text}`"));
        };
        let expr = after[..end]
            .trim()
            .trim_start_matches('-')
            .trim_end_matches('-')
            .trim();
        let value = if go {
            eval_go(expr, params)
        } else {
            params.get(expr).cloned()
        };
        match value {
            Some(v) => out.push_str(&v),
            None => {
                return Err(format!(
                    "`{{{{{expr}}}}}` in `{text}` cannot be resolved statically"
                ))
            }
        }
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    Ok(out)
}

/// A small subset of Go templates: `.a.b`, `index .a "k"`, `normalize`/`lower`/`upper`
/// (as a function or after a pipe), and `default "x" .a`.
pub(super) fn eval_go(expr: &str, params: &BTreeMap<String, String>) -> Option<String> {
    let mut stages = expr.split('|').map(str::trim);
    let first = stages.next()?;
    let mut value = eval_call(first, params)?;
    for stage in stages {
        value = apply(stage, value)?;
    }
    Some(value)
}

pub(super) fn words(expr: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    for c in expr.chars() {
        match c {
            '"' => {
                quoted = !quoted;
                if !quoted {
                    out.push(std::mem::take(&mut cur));
                }
            }
            ' ' | '\t' if !quoted => {
                if !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                }
            }
            _ => cur.push(c),
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

pub(super) fn eval_call(expr: &str, params: &BTreeMap<String, String>) -> Option<String> {
    let w = words(expr);
    let lookup = |field: &str| -> Option<String> { params.get(field.strip_prefix('.')?).cloned() };
    match w.first().map(String::as_str)? {
        "index" => {
            let base = w.get(1)?.strip_prefix('.')?;
            let keys: Vec<&str> = w[2..].iter().map(String::as_str).collect();
            params.get(&format!("{base}.{}", keys.join("."))).cloned()
        }
        "default" => {
            let fallback = w.get(1)?.clone();
            Some(
                w.get(2)
                    .and_then(|f| lookup(f))
                    .filter(|v| !v.is_empty())
                    .unwrap_or(fallback),
            )
        }
        f @ ("normalize" | "lower" | "upper") => apply(f, lookup(w.get(1)?)?),
        field if field.starts_with('.') && w.len() == 1 => lookup(field),
        _ => None,
    }
}

pub(super) fn apply(function: &str, value: String) -> Option<String> {
    match function {
        "normalize" => Some(normalize(&value)),
        "lower" => Some(value.to_lowercase()),
        "upper" => Some(value.to_uppercase()),
        _ => None,
    }
}

/// Argo CD's `normalize`: lower case, anything but letters, digits, `-` and `.` becomes `-`.
pub(super) fn normalize(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '.' {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn default_mode_substitution() {
        let p = params(&[("cluster", "prod-us"), ("path.basename", "web")]);
        assert_eq!(
            render("apps/{{path.basename}}/{{ cluster }}", &p, false).as_deref(),
            Ok("apps/web/prod-us")
        );
        assert!(render("{{missing}}", &p, false).is_err());
    }

    #[test]
    fn go_template_substitution() {
        let p = params(&[
            ("name", "Prod_EU"),
            ("metadata.labels.env", "production"),
            ("path.segments.1", "web"),
        ]);
        assert_eq!(render("{{.name}}", &p, true).as_deref(), Ok("Prod_EU"));
        assert_eq!(
            render("{{ .name | normalize }}", &p, true).as_deref(),
            Ok("prod-eu")
        );
        assert_eq!(
            render("{{normalize .name}}", &p, true).as_deref(),
            Ok("prod-eu")
        );
        assert_eq!(
            render(r#"{{index .metadata.labels "env"}}"#, &p, true).as_deref(),
            Ok("production")
        );
        assert_eq!(
            render("{{index .path.segments 1}}", &p, true).as_deref(),
            Ok("web")
        );
        assert_eq!(
            render(r#"{{default "x" .nope}}"#, &p, true).as_deref(),
            Ok("x")
        );
        assert!(render("{{.nope}}", &p, true).is_err());
    }
}
