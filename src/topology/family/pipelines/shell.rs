//! The little of shell a pipeline reader needs: a script's text split into commands (on
//! newlines, `&&`, `||`, `;`, `&` and `|`, lines continued with `\` joined), each command's
//! words with their quotes removed, and each word's variable references kept apart so that
//! only the ones known statically are substituted. Nothing is executed or expanded beyond
//! that: globs, command substitution and redirections are left as written (a word holding
//! them is unknown when it matters).

use std::collections::BTreeMap;

/// One part of a word: literal text, a shell variable (`$X`, `${X}`), or a GitHub Actions
/// expression (`${{ matrix.env }}`, its inside trimmed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Part {
    Lit(String),
    Var(String),
    Expr(String),
    /// Something no static reading resolves: `$(...)`, backquotes, `$1`, `$@`.
    Dynamic(String),
}

/// A word of a command, its parts in order.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Word(pub Vec<Part>);

/// The variables a word may use: shell variables by name, expressions by their text
/// (`matrix.env`, `env.CLUSTER`).
#[derive(Debug, Clone, Default)]
pub struct Vars {
    pub shell: BTreeMap<String, String>,
    pub expr: BTreeMap<String, String>,
}

impl Word {
    /// The word's text with every reference substituted, or the first reference that is not
    /// known, as written.
    pub fn resolve(&self, vars: &Vars) -> Result<String, String> {
        let mut out = String::new();
        for part in &self.0 {
            match part {
                Part::Lit(s) => out.push_str(s),
                Part::Var(name) => match vars.shell.get(name) {
                    Some(v) => out.push_str(v),
                    None => return Err(format!("${name}")),
                },
                Part::Expr(e) => match vars.expr.get(&normalise_expr(e)) {
                    Some(v) => out.push_str(v),
                    None => return Err(format!("${{{{ {e} }}}}")),
                },
                Part::Dynamic(d) => return Err(d.clone()),
            }
        }
        Ok(out)
    }

    /// The word as written, references included (for notes).
    pub fn written(&self) -> String {
        let mut out = String::new();
        for part in &self.0 {
            match part {
                Part::Lit(s) => out.push_str(s),
                Part::Var(name) => {
                    out.push_str("${");
                    out.push_str(name);
                    out.push('}');
                }
                Part::Expr(e) => {
                    out.push_str("${{ ");
                    out.push_str(e);
                    out.push_str(" }}");
                }
                Part::Dynamic(d) => out.push_str(d),
            }
        }
        out
    }

    /// The literal text when the word has no reference.
    pub fn literal(&self) -> Option<String> {
        self.resolve(&Vars::default()).ok()
    }
}

/// `matrix.env`, `matrix['env']`, ` env.X ` → one spelling.
pub fn normalise_expr(e: &str) -> String {
    let e = e.trim();
    if let Some((head, rest)) = e.split_once('[') {
        let key = rest
            .trim_end_matches(']')
            .trim_matches(|c| c == '\'' || c == '"');
        return format!("{}.{key}", head.trim());
    }
    e.to_owned()
}

/// One command: its words and the file line where it starts. `piped` is true when its
/// input comes from the command before it (`a | b`: `b` is piped).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Command {
    pub words: Vec<Word>,
    pub line: u32,
    pub piped: bool,
}

/// Splits a script into commands. `lines` are the script's lines, each with its file line.
pub fn commands(lines: &[(String, u32)]) -> Vec<Command> {
    let mut out = Vec::new();
    let mut lexer = Lexer::default();
    for (text, line) in lines {
        lexer.line(text, *line, &mut out);
    }
    lexer.end_command(&mut out, false);
    out
}

#[derive(Default)]
struct Lexer {
    words: Vec<Word>,
    word: Vec<Part>,
    lit: String,
    /// The word has begun (an empty quoted string is a word).
    started: bool,
    start_line: Option<u32>,
    quote: Option<char>,
    piped: bool,
    /// The file line being read: a command starts at the line of its first word.
    line: u32,
}

impl Lexer {
    fn begin(&mut self) {
        if self.start_line.is_none() {
            self.start_line = Some(self.line);
        }
        self.started = true;
    }

    fn push_lit(&mut self, c: char) {
        self.begin();
        self.lit.push(c);
        self.started = true;
    }

    fn push_part(&mut self, p: Part) {
        self.begin();
        if !self.lit.is_empty() {
            self.word.push(Part::Lit(std::mem::take(&mut self.lit)));
        }
        self.word.push(p);
        self.started = true;
    }

    fn end_word(&mut self) {
        if !self.lit.is_empty() {
            self.word.push(Part::Lit(std::mem::take(&mut self.lit)));
        }
        if self.started {
            self.words.push(Word(std::mem::take(&mut self.word)));
        }
        self.started = false;
    }

    fn end_command(&mut self, out: &mut Vec<Command>, pipe_follows: bool) {
        self.end_word();
        if !self.words.is_empty() {
            out.push(Command {
                words: std::mem::take(&mut self.words),
                line: self.start_line.unwrap_or(0),
                piped: self.piped,
            });
        }
        self.start_line = None;
        self.piped = pipe_follows;
    }

    fn line(&mut self, text: &str, line: u32, out: &mut Vec<Command>) {
        let chars: Vec<char> = text.chars().collect();
        let mut i = 0;
        self.line = line;
        while i < chars.len() {
            let c = chars[i];
            match self.quote {
                Some('\'') => {
                    if c == '\'' {
                        self.quote = None;
                    } else {
                        self.push_lit(c);
                    }
                    i += 1;
                    continue;
                }
                Some(_) => {
                    if c == '"' {
                        self.quote = None;
                        i += 1;
                        continue;
                    }
                    if c == '\\' && i + 1 < chars.len() {
                        self.push_lit(chars[i + 1]);
                        i += 2;
                        continue;
                    }
                    if c == '$' {
                        i = self.dollar(&chars, i);
                        continue;
                    }
                    if c == '`' {
                        i = self.backquote(&chars, i);
                        continue;
                    }
                    self.push_lit(c);
                    i += 1;
                    continue;
                }
                None => {}
            }
            match c {
                '\'' | '"' => {
                    self.quote = Some(c);
                    self.begin();
                    i += 1;
                }
                '\\' if i + 1 == chars.len() => {
                    // A continued line: the command goes on with the next line.
                    self.end_word();
                    return;
                }
                '\\' => {
                    self.push_lit(chars[i + 1]);
                    i += 2;
                }
                '#' if !self.started => {
                    // A comment runs to the end of the line.
                    break;
                }
                ' ' | '\t' => {
                    self.end_word();
                    i += 1;
                }
                ';' => {
                    self.end_command(out, false);
                    i += 1;
                }
                '&' | '|' => {
                    let double = chars.get(i + 1) == Some(&c);
                    let pipe = c == '|' && !double;
                    self.end_command(out, pipe);
                    i += if double { 2 } else { 1 };
                }
                '$' => i = self.dollar(&chars, i),
                '`' => i = self.backquote(&chars, i),
                _ => {
                    self.push_lit(c);
                    i += 1;
                }
            }
        }
        if self.quote.is_none() {
            // A command ends with its line unless a pipe or `&&` left it open.
            let open = self.words.is_empty() && self.word.is_empty() && self.lit.is_empty();
            if !open {
                self.end_command(out, false);
            }
        } else {
            self.push_lit('\n');
        }
    }

    /// A `$` at `i`: a variable, an expression, or something dynamic. Returns the next index.
    fn dollar(&mut self, chars: &[char], i: usize) -> usize {
        let rest = &chars[i + 1..];
        if rest.starts_with(&['{', '{']) {
            let body: String = rest[2..].iter().collect();
            if let Some(end) = body.find("}}") {
                let expr = body[..end].trim().to_owned();
                self.push_part(Part::Expr(expr));
                return i + 3 + body[..end].chars().count() + 2;
            }
        }
        if rest.first() == Some(&'{') {
            if let Some(end) = rest.iter().position(|&c| c == '}') {
                let name: String = rest[1..end].iter().collect();
                if is_name(&name) {
                    self.push_part(Part::Var(name));
                } else {
                    self.push_part(Part::Dynamic(format!("${{{name}}}")));
                }
                return i + 2 + end;
            }
        }
        if rest.first() == Some(&'(') {
            // `$(...)`, nested parentheses counted.
            let mut depth = 0usize;
            for (k, &c) in rest.iter().enumerate() {
                if c == '(' {
                    depth += 1;
                } else if c == ')' {
                    depth -= 1;
                    if depth == 0 {
                        let text: String = chars[i..i + 2 + k].iter().collect();
                        self.push_part(Part::Dynamic(text));
                        return i + 2 + k;
                    }
                }
            }
            let text: String = chars[i..].iter().collect();
            self.push_part(Part::Dynamic(text));
            return chars.len();
        }
        let name: String = rest
            .iter()
            .take_while(|c| c.is_ascii_alphanumeric() || **c == '_')
            .collect();
        if name.is_empty() {
            match rest.first() {
                Some(c) if "@*#?!$-".contains(*c) => {
                    self.push_part(Part::Dynamic(format!("${c}")));
                    return i + 2;
                }
                _ => {
                    self.push_lit('$');
                    return i + 1;
                }
            }
        }
        if name.starts_with(|c: char| c.is_ascii_digit()) {
            self.push_part(Part::Dynamic(format!("${name}")));
        } else {
            self.push_part(Part::Var(name.clone()));
        }
        i + 1 + name.chars().count()
    }

    fn backquote(&mut self, chars: &[char], i: usize) -> usize {
        let end = chars[i + 1..]
            .iter()
            .position(|&c| c == '`')
            .map_or(chars.len(), |p| i + 2 + p);
        let text: String = chars[i..end].iter().collect();
        self.push_part(Part::Dynamic(text));
        end
    }
}

fn is_name(s: &str) -> bool {
    !s.is_empty()
        && !s.starts_with(|c: char| c.is_ascii_digit())
        && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Whether `word` is a variable assignment (`NAME=value`), with its name and value.
pub fn assignment(word: &Word) -> Option<(String, Word)> {
    let Some(Part::Lit(first)) = word.0.first() else {
        return None;
    };
    let (name, rest) = first.split_once('=')?;
    if !is_name(name) {
        return None;
    }
    let mut value = Vec::new();
    if !rest.is_empty() {
        value.push(Part::Lit(rest.to_owned()));
    }
    value.extend(word.0[1..].iter().cloned());
    Some((name.to_owned(), Word(value)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(text: &str) -> Vec<(Vec<String>, u32, bool)> {
        let lines: Vec<(String, u32)> = text
            .lines()
            .enumerate()
            .map(|(i, l)| (l.to_owned(), 10 + i as u32))
            .collect();
        commands(&lines)
            .into_iter()
            .map(|c| (c.words.iter().map(Word::written).collect(), c.line, c.piped))
            .collect()
    }

    #[test]
    fn commands_split_on_operators_and_lines() {
        let got = split("cd deploy && kubectl apply -k overlays/prod; echo done\n# a comment\nkustomize build . | kubectl apply -f -");
        let words: Vec<Vec<String>> = got.iter().map(|c| c.0.clone()).collect();
        assert_eq!(
            words,
            vec![
                vec!["cd", "deploy"],
                vec!["kubectl", "apply", "-k", "overlays/prod"],
                vec!["echo", "done"],
                vec!["kustomize", "build", "."],
                vec!["kubectl", "apply", "-f", "-"],
            ]
        );
        assert_eq!(got[0].1, 10);
        assert_eq!(got[3].1, 12);
        assert!(got[4].2 && !got[3].2);
    }

    #[test]
    fn continued_lines_are_one_command_at_its_first_line() {
        let got = split("helm upgrade --install web ./chart \\\n  -f values-prod.yaml \\\n  --kube-context prod\necho x");
        assert_eq!(
            got[0].0,
            vec![
                "helm",
                "upgrade",
                "--install",
                "web",
                "./chart",
                "-f",
                "values-prod.yaml",
                "--kube-context",
                "prod"
            ]
        );
        assert_eq!(got[0].1, 10);
        assert_eq!(got[1].1, 13);
    }

    #[test]
    fn quotes_and_references_are_kept_apart() {
        let lines = vec![(
            "kubectl apply -k \"overlays/${{ matrix.env }}\" --context=$CTX '$NOT' $(date)"
                .to_owned(),
            1,
        )];
        let c = &commands(&lines)[0];
        let mut vars = Vars::default();
        vars.expr.insert("matrix.env".into(), "prod".into());
        assert_eq!(c.words[3].resolve(&vars), Ok("overlays/prod".into()));
        assert_eq!(c.words[4].resolve(&vars), Err("$CTX".into()));
        vars.shell.insert("CTX".into(), "eu".into());
        assert_eq!(c.words[4].resolve(&vars), Ok("--context=eu".into()));
        assert_eq!(c.words[5].resolve(&vars), Ok("$NOT".into()));
        assert_eq!(c.words[6].resolve(&vars), Err("$(date)".into()));
    }

    #[test]
    fn an_assignment_is_a_name_and_a_value() {
        let lines = vec![("OVERLAY=overlays/$ENV".to_owned(), 1)];
        let c = &commands(&lines)[0];
        let (name, value) = assignment(&c.words[0]).expect("an assignment");
        assert_eq!(name, "OVERLAY");
        assert_eq!(value.written(), "overlays/${ENV}");
    }
}
