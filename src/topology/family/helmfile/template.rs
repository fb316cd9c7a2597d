//! The Go-template subset real helmfiles write: `{{ .Environment.Name }}`, `.Values`,
//! `.StateValues`, `.Release.Name`, `.Release.Namespace`, `eq`/`ne`/`and`/`or`/`not`,
//! `default`, `if`/`else`/`range`/`with`, variables, and a few string functions. The
//! ApplicationSet evaluator (`argo/template.rs`) reads expressions only; a helmfile's
//! structure is written with control flow, which this one adds.
//!
//! `env` and `requiredEnv` never read envfence's own environment: their value is opaque
//! ([`Value::Opaque`]), written out as a marker ([`OPAQUE_MARK`]) that the reader of the
//! output recognises. Deciding a branch on an opaque value, and anything beyond the subset,
//! stops the evaluation with the expression quoted ([`Stop`]). Every step counts against a
//! budget ([`STEPS`]).

use std::collections::BTreeMap;

/// Steps (actions, branches, loop iterations) one evaluation may take.
pub const STEPS: usize = 100_000;

/// What an opaque value is written as: a word no chart or helmfile uses.
pub const OPAQUE_MARK: &str = "envfence-opaque-value";

/// A template value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    /// Numbers and strings alike: helmfiles compare and print them as text.
    Str(String),
    List(Vec<Value>),
    Map(BTreeMap<String, Value>),
    /// A map only partly known (a values file the repository does not hold went into it):
    /// a key it does not have is opaque, not missing. The words say where it came from.
    Partial(BTreeMap<String, Value>, String),
    /// Not known statically: the expression it came from.
    Opaque(String),
}

impl Value {
    fn truth(&self) -> Option<bool> {
        match self {
            Value::Null => Some(false),
            Value::Bool(b) => Some(*b),
            Value::Str(s) => Some(!s.is_empty() && s != "0"),
            Value::List(l) => Some(!l.is_empty()),
            Value::Map(m) => Some(!m.is_empty()),
            Value::Partial(..) | Value::Opaque(_) => None,
        }
    }

    /// How the template prints it.
    fn text(&self) -> String {
        match self {
            Value::Null => String::new(),
            Value::Bool(b) => b.to_string(),
            Value::Str(s) => s.clone(),
            Value::Opaque(_) => OPAQUE_MARK.to_owned(),
            Value::List(l) => format!(
                "[{}]",
                l.iter().map(Value::text).collect::<Vec<_>>().join(" ")
            ),
            Value::Map(m) | Value::Partial(m, _) => format!(
                "map[{}]",
                m.iter()
                    .map(|(k, v)| format!("{k}:{}", v.text()))
                    .collect::<Vec<_>>()
                    .join(" ")
            ),
        }
    }

    /// The value at a dotted path below this one.
    pub fn at(&self, path: &[&str]) -> Option<&Value> {
        let mut v = self;
        for key in path {
            match v {
                Value::Map(m) | Value::Partial(m, _) => v = m.get(*key)?,
                _ => return None,
            }
        }
        Some(v)
    }

    /// Merges `other` into this value, maps deeply, as helmfile merges values files.
    pub fn merge(&mut self, other: Value) {
        let (b, why) = match other {
            Value::Map(b) => (b, None),
            Value::Partial(b, why) => (b, Some(why)),
            other => {
                *self = other;
                return;
            }
        };
        let (a, mine) = match std::mem::replace(self, Value::Null) {
            Value::Map(a) => (a, None),
            Value::Partial(a, why) => (a, Some(why)),
            _ => (BTreeMap::new(), None),
        };
        let mut a = a;
        for (k, v) in b {
            match a.get_mut(&k) {
                Some(slot) => slot.merge(v),
                None => {
                    a.insert(k, v);
                }
            }
        }
        *self = match mine.or(why) {
            Some(why) => Value::Partial(a, why),
            None => Value::Map(a),
        };
    }
}

impl Default for Value {
    /// An empty map: the values of an environment that sets none.
    fn default() -> Self {
        Value::Map(BTreeMap::new())
    }
}

/// Why an evaluation stopped: the expression, where, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stop {
    pub line: u32,
    pub expression: String,
    pub why: StopWhy,
}

/// What stopped an evaluation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StopWhy {
    /// Beyond the subset envfence evaluates.
    Unsupported,
    /// A branch or loop decided by a value that is not known statically (`env`, a values
    /// file the repository does not hold).
    Opaque(String),
    /// The template is not well formed.
    Malformed(String),
    /// The step budget ran out.
    Budget,
}

impl std::fmt::Display for Stop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.why {
            StopWhy::Unsupported => write!(
                f,
                "`{{{{ {} }}}}` is beyond the template subset envfence evaluates",
                self.expression
            ),
            StopWhy::Opaque(from) => write!(
                f,
                "`{{{{ {} }}}}` depends on {from}, which is not known statically",
                self.expression
            ),
            StopWhy::Malformed(why) => write!(f, "the template is malformed ({why})"),
            StopWhy::Budget => write!(
                f,
                "template evaluation stopped after {STEPS} steps at `{{{{ {} }}}}`",
                self.expression
            ),
        }
    }
}

/// An evaluated template: its text, the source line of each of its lines, and the opaque
/// expressions it wrote (as [`OPAQUE_MARK`]).
#[derive(Debug, Clone, Default)]
pub struct Output {
    pub text: String,
    /// `lines[i]`: the template line output line `i + 1` comes from.
    pub lines: Vec<u32>,
    pub opaque: Vec<String>,
}

impl Output {
    /// The template line of output line `line` (1-based).
    pub fn source_line(&self, line: u32) -> u32 {
        let i = usize::try_from(line.saturating_sub(1)).unwrap_or(0);
        self.lines
            .get(i)
            .or(self.lines.last())
            .copied()
            .unwrap_or(1)
    }

    fn push(&mut self, text: &str, mut line: u32, advance: bool) {
        if self.lines.is_empty() {
            self.lines.push(line);
        }
        for c in text.chars() {
            self.text.push(c);
            if c == '\n' {
                if advance {
                    line += 1;
                }
                self.lines.push(line);
            }
        }
    }
}

/// Evaluates `text` (a template starting at line `first_line` of its file) with `dot` as `.`.
pub fn evaluate(text: &str, first_line: u32, dot: &Value) -> Result<Output, Stop> {
    let nodes = parse(text, first_line)?;
    let mut ev = Eval {
        steps: 0,
        out: Output::default(),
        vars: vec![("$".to_owned(), dot.clone())],
    };
    ev.run(&nodes, dot)?;
    Ok(ev.out)
}

// ---------------------------------------------------------------------------------------
// Parsing

#[derive(Debug)]
enum Tree {
    Text(String, u32),
    Print(Pipe),
    If(Vec<(Pipe, Vec<Tree>)>, Vec<Tree>),
    Range(Option<String>, Option<String>, Pipe, Vec<Tree>, Vec<Tree>),
    With(Pipe, Vec<Tree>, Vec<Tree>),
    Assign(String, Pipe, bool),
}

#[derive(Debug, Clone)]
struct Pipe {
    line: u32,
    source: String,
    commands: Vec<Vec<Arg>>,
}

#[derive(Debug, Clone)]
enum Arg {
    Field(Vec<String>),
    Var(String, Vec<String>),
    Lit(Value),
    Ident(String),
    Sub(Box<Pipe>),
}

/// One `{{ }}` action as written, or text between actions.
enum Piece {
    Text(String, u32),
    Action(String, u32),
}

fn line_of(text: &str, byte: usize, first_line: u32) -> u32 {
    let n = text[..byte].matches('\n').count();
    first_line.saturating_add(u32::try_from(n).unwrap_or(u32::MAX))
}

fn pieces(text: &str, first_line: u32) -> Result<Vec<Piece>, Stop> {
    let mut out: Vec<Piece> = Vec::new();
    let mut pos = 0;
    let mut trim_next = false;
    while pos <= text.len() {
        let rest = &text[pos..];
        let (lit_end, found) = match rest.find("{{") {
            Some(i) => (pos + i, true),
            None => (text.len(), false),
        };
        let mut lit_start = pos;
        if trim_next {
            let lit = &text[pos..lit_end];
            lit_start = pos + (lit.len() - lit.trim_start().len());
        }
        let mut lit = &text[lit_start..lit_end];
        if !found {
            out.push(Piece::Text(
                lit.to_owned(),
                line_of(text, lit_start, first_line),
            ));
            break;
        }
        let after = &text[lit_end + 2..];
        let trim_before =
            after.starts_with("- ") || after.starts_with("-\t") || after.starts_with("-\n");
        if trim_before {
            lit = lit.trim_end();
        }
        if !lit.is_empty() {
            out.push(Piece::Text(
                lit.to_owned(),
                line_of(text, lit_start, first_line),
            ));
        }
        let Some(close) = closing(after) else {
            return Err(Stop {
                line: line_of(text, lit_end, first_line),
                expression: after.lines().next().unwrap_or("").to_owned(),
                why: StopWhy::Malformed("an unclosed {{".into()),
            });
        };
        let mut inner = &after[..close];
        if trim_before {
            inner = &inner[1..];
        }
        trim_next = inner.ends_with(" -") || inner.ends_with("\t-") || inner.ends_with("\n-");
        if trim_next {
            inner = &inner[..inner.len() - 1];
        }
        let inner = inner.trim();
        if !(inner.starts_with("/*") && inner.ends_with("*/")) {
            out.push(Piece::Action(
                inner.to_owned(),
                line_of(text, lit_end, first_line),
            ));
        }
        pos = lit_end + 2 + close + 2;
    }
    Ok(out)
}

/// Where the action that `after` starts closes: the first `}}` outside a quoted or raw
/// string (`{{ `{{ .Release.Name }}` }}` writes braces for a later template).
fn closing(after: &str) -> Option<usize> {
    let bytes = after.as_bytes();
    let mut quote: Option<u8> = None;
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        match quote {
            Some(q) if b == q => quote = None,
            Some(b'"') if b == 0x5c => i += 1,
            Some(_) => {}
            None if b == b'"' || b == b'`' => quote = Some(b),
            None if b == b'}' && bytes.get(i + 1) == Some(&b'}') => return Some(i),
            None => {}
        }
        i += 1;
    }
    None
}

fn parse(text: &str, first_line: u32) -> Result<Vec<Tree>, Stop> {
    let pieces = pieces(text, first_line)?;
    let mut it = pieces.into_iter().peekable();
    let (nodes, end) = parse_list(&mut it)?;
    match end {
        None => Ok(nodes),
        Some((word, line)) => Err(Stop {
            line,
            expression: word,
            why: StopWhy::Malformed("an `end` or `else` without its opening".into()),
        }),
    }
}

type Pieces = std::iter::Peekable<std::vec::IntoIter<Piece>>;

/// Parses until an `end`/`else…` action, which is returned (its text and line).
/// The trees of a list, and the `end`/`else…` action that closed it (its text and line).
type Parsed = (Vec<Tree>, Option<(String, u32)>);

fn parse_list(it: &mut Pieces) -> Result<Parsed, Stop> {
    let mut out = Vec::new();
    while let Some(piece) = it.next() {
        let (action, line) = match piece {
            Piece::Text(t, l) => {
                out.push(Tree::Text(t, l));
                continue;
            }
            Piece::Action(a, l) => (a, l),
        };
        let keyword = action.split_whitespace().next().unwrap_or("");
        match keyword {
            "end" | "else" => return Ok((out, Some((action, line)))),
            "if" => {
                let mut branches = vec![(pipe(&action[2..], line, &action)?, Vec::new())];
                let mut otherwise = Vec::new();
                loop {
                    let (body, end) = parse_list(it)?;
                    let Some((end, end_line)) = end else {
                        return Err(unclosed(&action, line));
                    };
                    if let Some(last) = branches.last_mut() {
                        last.1 = body;
                    }
                    let rest = end.strip_prefix("else").map(str::trim);
                    match rest {
                        Some(cond) if cond.starts_with("if ") => {
                            branches.push((pipe(&cond[2..], end_line, &end)?, Vec::new()));
                        }
                        Some("") => {
                            let (body, end) = parse_list(it)?;
                            if end.as_ref().is_none_or(|(e, _)| e != "end") {
                                return Err(unclosed(&action, line));
                            }
                            otherwise = body;
                            break;
                        }
                        Some(_) => return Err(unsupported(&end, end_line)),
                        None => break,
                    }
                }
                out.push(Tree::If(branches, otherwise));
            }
            "range" | "with" => {
                let mut expr = action[keyword.len()..].trim();
                let mut vars = (None, None);
                if let Some((decl, rest)) = expr.split_once(":=") {
                    let names: Vec<&str> = decl.split(',').map(str::trim).collect();
                    match names.as_slice() {
                        [v] if v.starts_with('$') => vars = (None, Some((*v).to_owned())),
                        [k, v] if k.starts_with('$') && v.starts_with('$') => {
                            vars = (Some((*k).to_owned()), Some((*v).to_owned()));
                        }
                        _ => return Err(unsupported(&action, line)),
                    }
                    expr = rest;
                }
                let p = pipe(expr, line, &action)?;
                let (body, end) = parse_list(it)?;
                let Some((end, _)) = end else {
                    return Err(unclosed(&action, line));
                };
                let otherwise = if end == "else" {
                    let (body, end) = parse_list(it)?;
                    if end.as_ref().is_none_or(|(e, _)| e != "end") {
                        return Err(unclosed(&action, line));
                    }
                    body
                } else if end == "end" {
                    Vec::new()
                } else {
                    return Err(unsupported(&end, line));
                };
                if keyword == "range" {
                    out.push(Tree::Range(vars.0, vars.1, p, body, otherwise));
                } else {
                    if vars.1.is_some() {
                        return Err(unsupported(&action, line));
                    }
                    out.push(Tree::With(p, body, otherwise));
                }
            }
            "define" | "template" | "block" | "break" | "continue" => {
                return Err(unsupported(&action, line))
            }
            _ if action.starts_with('$') && action.contains('=') => {
                let (name, declare, rest) = match action.split_once(":=") {
                    Some((n, r)) => (n.trim(), true, r),
                    None => {
                        let (n, r) = action.split_once('=').unwrap_or((&action, ""));
                        (n.trim(), false, r)
                    }
                };
                if name.contains(' ') || name.contains('(') {
                    out.push(Tree::Print(pipe(&action, line, &action)?));
                } else {
                    out.push(Tree::Assign(
                        name.to_owned(),
                        pipe(rest, line, &action)?,
                        declare,
                    ));
                }
            }
            _ => out.push(Tree::Print(pipe(&action, line, &action)?)),
        }
    }
    Ok((out, None))
}

fn unclosed(action: &str, line: u32) -> Stop {
    Stop {
        line,
        expression: action.to_owned(),
        why: StopWhy::Malformed("no `end` closes it".into()),
    }
}

fn unsupported(action: &str, line: u32) -> Stop {
    Stop {
        line,
        expression: action.to_owned(),
        why: StopWhy::Unsupported,
    }
}

/// An escape in a quoted string (written as a code point: a plain `'\\'` literal trips the
/// layering test's tokenizer).
const BACKSLASH: char = '\u{5c}';

#[derive(Debug, PartialEq)]
enum Tok {
    Open,
    Close,
    Bar,
    Word(String),
    Str(String),
}

fn tokens(expr: &str, line: u32, action: &str) -> Result<Vec<Tok>, Stop> {
    let mut out = Vec::new();
    let mut chars = expr.chars().peekable();
    while let Some(&c) = chars.peek() {
        match c {
            ' ' | '\t' | '\n' | '\r' => {
                chars.next();
            }
            '(' => {
                chars.next();
                out.push(Tok::Open);
            }
            ')' => {
                chars.next();
                out.push(Tok::Close);
            }
            '|' => {
                chars.next();
                out.push(Tok::Bar);
            }
            '"' => {
                chars.next();
                let mut s = String::new();
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some(BACKSLASH) => match chars.next() {
                            Some('n') => s.push('\n'),
                            Some('t') => s.push('\t'),
                            Some(other) => s.push(other),
                            None => return Err(unsupported(action, line)),
                        },
                        Some(other) => s.push(other),
                        None => return Err(unsupported(action, line)),
                    }
                }
                out.push(Tok::Str(s));
            }
            '`' => {
                chars.next();
                let mut s = String::new();
                loop {
                    match chars.next() {
                        Some('`') => break,
                        Some(other) => s.push(other),
                        None => return Err(unsupported(action, line)),
                    }
                }
                out.push(Tok::Str(s));
            }
            _ => {
                let mut w = String::new();
                while let Some(&c) = chars.peek() {
                    if c.is_whitespace() || matches!(c, '(' | ')' | '|' | '"' | '`') {
                        break;
                    }
                    w.push(c);
                    chars.next();
                }
                out.push(Tok::Word(w));
            }
        }
    }
    Ok(out)
}

fn pipe(expr: &str, line: u32, action: &str) -> Result<Pipe, Stop> {
    let toks = tokens(expr, line, action)?;
    let mut pos = 0;
    let p = parse_pipe(&toks, &mut pos, line, action)?;
    if pos != toks.len() {
        return Err(unsupported(action, line));
    }
    Ok(p)
}

fn parse_pipe(toks: &[Tok], pos: &mut usize, line: u32, action: &str) -> Result<Pipe, Stop> {
    let mut commands = vec![Vec::new()];
    while let Some(t) = toks.get(*pos) {
        match t {
            Tok::Close => break,
            Tok::Bar => {
                *pos += 1;
                commands.push(Vec::new());
                continue;
            }
            Tok::Open => {
                *pos += 1;
                let sub = parse_pipe(toks, pos, line, action)?;
                if toks.get(*pos) != Some(&Tok::Close) {
                    return Err(unsupported(action, line));
                }
                *pos += 1;
                if let Some(c) = commands.last_mut() {
                    c.push(Arg::Sub(Box::new(sub)));
                }
                continue;
            }
            Tok::Str(s) => {
                if let Some(c) = commands.last_mut() {
                    c.push(Arg::Lit(Value::Str(s.clone())));
                }
            }
            Tok::Word(w) => {
                let arg = word(w).ok_or_else(|| unsupported(action, line))?;
                if let Some(c) = commands.last_mut() {
                    c.push(arg);
                }
            }
        }
        *pos += 1;
    }
    if commands.iter().any(Vec::is_empty) {
        return Err(unsupported(action, line));
    }
    Ok(Pipe {
        line,
        source: action.to_owned(),
        commands,
    })
}

fn word(w: &str) -> Option<Arg> {
    let fields = |rest: &str| -> Vec<String> {
        rest.split('.')
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect()
    };
    if w == "." {
        return Some(Arg::Field(Vec::new()));
    }
    if let Some(rest) = w.strip_prefix('.') {
        return Some(Arg::Field(fields(rest)));
    }
    if w.starts_with('$') {
        let (name, rest) = w.split_once('.').unwrap_or((w, ""));
        return Some(Arg::Var(name.to_owned(), fields(rest)));
    }
    match w {
        "true" => return Some(Arg::Lit(Value::Bool(true))),
        "false" => return Some(Arg::Lit(Value::Bool(false))),
        "nil" => return Some(Arg::Lit(Value::Null)),
        _ => {}
    }
    if w.starts_with(|c: char| c.is_ascii_digit() || c == '-') {
        return w
            .parse::<f64>()
            .ok()
            .map(|_| Arg::Lit(Value::Str(w.to_owned())));
    }
    w.chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '_')
        .then(|| Arg::Ident(w.to_owned()))
}

// ---------------------------------------------------------------------------------------
// Evaluation

struct Eval {
    steps: usize,
    out: Output,
    vars: Vec<(String, Value)>,
}

impl Eval {
    fn step(&mut self, p: &Pipe) -> Result<(), Stop> {
        self.steps += 1;
        if self.steps > STEPS {
            return Err(Stop {
                line: p.line,
                expression: p.source.clone(),
                why: StopWhy::Budget,
            });
        }
        Ok(())
    }

    fn run(&mut self, nodes: &[Tree], dot: &Value) -> Result<(), Stop> {
        let depth = self.vars.len();
        for n in nodes {
            match n {
                Tree::Text(t, line) => self.out.push(t, *line, true),
                Tree::Print(p) => {
                    self.step(p)?;
                    let v = self.pipe(p, dot)?;
                    if let Value::Opaque(why) = &v {
                        self.out.opaque.push(why.clone());
                    }
                    self.out.push(&v.text(), p.line, false);
                }
                Tree::Assign(name, p, declare) => {
                    self.step(p)?;
                    let v = self.pipe(p, dot)?;
                    match self.vars.iter_mut().rev().find(|(n, _)| n == name) {
                        Some(slot) if !declare => slot.1 = v,
                        _ => self.vars.push((name.clone(), v)),
                    }
                }
                Tree::If(branches, otherwise) => {
                    let mut taken = false;
                    for (cond, body) in branches {
                        self.step(cond)?;
                        let v = self.pipe(cond, dot)?;
                        if self.decide(&v, cond)? {
                            self.run(body, dot)?;
                            taken = true;
                            break;
                        }
                    }
                    if !taken {
                        self.run(otherwise, dot)?;
                    }
                }
                Tree::With(p, body, otherwise) => {
                    self.step(p)?;
                    let v = self.pipe(p, dot)?;
                    if self.decide(&v, p)? {
                        self.run(body, &v)?;
                    } else {
                        self.run(otherwise, dot)?;
                    }
                }
                Tree::Range(key, val, p, body, otherwise) => {
                    self.step(p)?;
                    let v = self.pipe(p, dot)?;
                    let items: Vec<(Value, Value)> = match v {
                        Value::List(l) => l
                            .into_iter()
                            .enumerate()
                            .map(|(i, v)| (Value::Str(i.to_string()), v))
                            .collect(),
                        Value::Map(m) => m.into_iter().map(|(k, v)| (Value::Str(k), v)).collect(),
                        Value::Null => Vec::new(),
                        Value::Opaque(why) | Value::Partial(_, why) => return Err(opaque(p, why)),
                        _ => return Err(unsupported(&p.source, p.line)),
                    };
                    if items.is_empty() {
                        self.run(otherwise, dot)?;
                    }
                    for (k, v) in items {
                        self.step(p)?;
                        let mark = self.vars.len();
                        if let Some(name) = key {
                            self.vars.push((name.clone(), k));
                        }
                        if let Some(name) = val {
                            self.vars.push((name.clone(), v.clone()));
                        }
                        self.run(body, &v)?;
                        self.vars.truncate(mark);
                    }
                }
            }
        }
        self.vars.truncate(depth.max(1));
        Ok(())
    }

    fn decide(&self, v: &Value, p: &Pipe) -> Result<bool, Stop> {
        match v.truth() {
            Some(b) => Ok(b),
            None => Err(opaque(
                p,
                match v {
                    Value::Opaque(why) | Value::Partial(_, why) => why.clone(),
                    _ => String::new(),
                },
            )),
        }
    }

    fn pipe(&mut self, p: &Pipe, dot: &Value) -> Result<Value, Stop> {
        let mut last: Option<Value> = None;
        for cmd in &p.commands {
            last = Some(self.command(cmd, last, p, dot)?);
        }
        Ok(last.unwrap_or(Value::Null))
    }

    fn arg(&mut self, a: &Arg, p: &Pipe, dot: &Value) -> Result<Value, Stop> {
        Ok(match a {
            Arg::Lit(v) => v.clone(),
            Arg::Field(path) => lookup(dot, path),
            Arg::Var(name, path) => {
                let Some((_, v)) = self.vars.iter().rev().find(|(n, _)| n == name) else {
                    return Err(unsupported(&p.source, p.line));
                };
                lookup(&v.clone(), path)
            }
            Arg::Sub(sub) => self.pipe(sub, dot)?,
            Arg::Ident(name) => self.call(name, Vec::new(), p)?,
        })
    }

    fn command(
        &mut self,
        cmd: &[Arg],
        piped: Option<Value>,
        p: &Pipe,
        dot: &Value,
    ) -> Result<Value, Stop> {
        match cmd {
            [Arg::Ident(name), rest @ ..] => {
                // `and`/`or` decide on their arguments in order, as Go's do.
                let mut args = Vec::with_capacity(rest.len() + 1);
                for a in rest {
                    args.push(self.arg(a, p, dot)?);
                }
                args.extend(piped);
                self.call(name, args, p)
            }
            [single] if piped.is_none() => self.arg(single, p, dot),
            _ => Err(unsupported(&p.source, p.line)),
        }
    }

    fn call(&mut self, name: &str, args: Vec<Value>, p: &Pipe) -> Result<Value, Stop> {
        let bad = || unsupported(&p.source, p.line);
        let text_of = |v: &Value| -> Result<Option<String>, Stop> {
            match v {
                Value::Opaque(_) => Ok(None),
                Value::Str(_) | Value::Bool(_) | Value::Null => Ok(Some(v.text())),
                _ => Err(bad()),
            }
        };
        let first_opaque = |args: &[Value]| {
            args.iter().find_map(|a| match a {
                Value::Opaque(why) => Some(Value::Opaque(why.clone())),
                _ => None,
            })
        };
        match (name, args.as_slice()) {
            ("env" | "requiredEnv", [Value::Str(var)]) => {
                Ok(Value::Opaque(format!("the environment variable {var}")))
            }
            ("eq" | "ne", [a, rest @ ..]) if !rest.is_empty() => {
                if let Some(o) = first_opaque(&args) {
                    return Ok(o);
                }
                let a = text_of(a)?;
                let mut any = false;
                for b in rest {
                    any |= text_of(b)? == a;
                }
                Ok(Value::Bool(if name == "eq" { any } else { !any }))
            }
            ("and" | "or", [_, ..]) => {
                for a in &args {
                    match a.truth() {
                        None => return Ok(a.clone()),
                        Some(t) if t == (name == "or") => return Ok(a.clone()),
                        Some(_) => {}
                    }
                }
                Ok(args.last().cloned().unwrap_or(Value::Null))
            }
            ("not", [a]) => Ok(match a.truth() {
                Some(t) => Value::Bool(!t),
                None => a.clone(),
            }),
            ("default", [fallback, given]) => Ok(match given.truth() {
                Some(true) | None => given.clone(),
                Some(false) => fallback.clone(),
            }),
            ("default", [fallback]) => Ok(fallback.clone()),
            ("quote" | "squote" | "lower" | "upper" | "trim" | "toString", [a]) => {
                let Some(t) = text_of(a)? else {
                    return Ok(a.clone());
                };
                Ok(Value::Str(match name {
                    "quote" => format!("{t:?}"),
                    "squote" => format!("'{t}'"),
                    "lower" => t.to_lowercase(),
                    "upper" => t.to_uppercase(),
                    "trim" => t.trim().to_owned(),
                    _ => t,
                }))
            }
            ("index", [base, keys @ ..]) => {
                let mut v = base.clone();
                for k in keys {
                    v = match (v, k) {
                        (Value::Opaque(w), _) => Value::Opaque(w),
                        (_, Value::Opaque(w)) => Value::Opaque(w.clone()),
                        (Value::Map(m), Value::Str(k)) => m.get(k).cloned().unwrap_or(Value::Null),
                        (Value::Partial(m, w), Value::Str(k)) => m
                            .get(k)
                            .cloned()
                            .unwrap_or_else(|| Value::Opaque(w.clone())),
                        (Value::List(l), Value::Str(k)) => k
                            .parse::<usize>()
                            .ok()
                            .and_then(|i| l.get(i).cloned())
                            .unwrap_or(Value::Null),
                        _ => return Err(bad()),
                    };
                }
                Ok(v)
            }
            _ => Err(bad()),
        }
    }
}

fn opaque(p: &Pipe, why: String) -> Stop {
    Stop {
        line: p.line,
        expression: p.source.clone(),
        why: StopWhy::Opaque(if why.is_empty() {
            "a value".into()
        } else {
            why
        }),
    }
}

/// `.a.b` below `v`: a missing key is null, below an opaque value it is opaque.
fn lookup(v: &Value, path: &[String]) -> Value {
    let mut v = v;
    for key in path {
        match v {
            Value::Map(m) => match m.get(key) {
                Some(next) => v = next,
                None => return Value::Null,
            },
            Value::Partial(m, why) => match m.get(key) {
                Some(next) => v = next,
                None => return Value::Opaque(why.clone()),
            },
            Value::Opaque(_) => return v.clone(),
            _ => return Value::Null,
        }
    }
    v.clone()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: Vec<(&str, Value)>) -> Value {
        Value::Map(pairs.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())
    }

    fn s(x: &str) -> Value {
        Value::Str(x.to_owned())
    }

    fn dot() -> Value {
        map(vec![
            ("Environment", map(vec![("Name", s("production"))])),
            (
                "Values",
                map(vec![
                    ("replicas", s("3")),
                    ("regions", Value::List(vec![s("eu"), s("us")])),
                    ("secret", Value::Opaque("the values file x.env".into())),
                ]),
            ),
        ])
    }

    #[test]
    fn the_subset_evaluates_with_the_lines_it_came_from() {
        let raw = evaluate("x: {{ `{{ .Release.Name }}` }}\n", 1, &dot()).expect("raw");
        assert_eq!(raw.text, "x: {{ .Release.Name }}\n");
        let t = "a: {{ .Environment.Name }}\n{{- if eq .Environment.Name \"production\" }}\nb: {{ .Values.replicas | quote }}\n{{- else }}\nb: 1\n{{- end }}\n{{- range $i, $r := .Values.regions }}\nr{{ $i }}: {{ $r }}\n{{- end }}\nc: {{ default \"x\" .Values.nope }}\nd: {{ or (eq .Environment.Name \"staging\") (eq .Environment.Name \"production\") }}\n";
        let out = evaluate(t, 1, &dot()).expect("evaluates");
        assert_eq!(
            out.text,
            "a: production\nb: \"3\"\nr0: eu\nr1: us\nc: x\nd: true\n"
        );
        assert_eq!(out.source_line(2), 3);
        assert_eq!(out.source_line(4), 8);
        assert_eq!(out.source_line(5), 10);
    }

    #[test]
    fn a_raw_string_writes_braces_for_a_later_template() {
        let out = evaluate("x: {{ `{{ .Release.Name }}` }}\n", 1, &dot()).expect("raw");
        assert_eq!(out.text, "x: {{ .Release.Name }}\n");
    }

    #[test]
    fn env_is_opaque_and_a_branch_on_it_stops() {
        let out = evaluate("x: {{ requiredEnv \"TOKEN\" }}\n", 1, &dot()).expect("prints");
        assert_eq!(out.text, format!("x: {OPAQUE_MARK}\n"));
        assert_eq!(out.opaque, ["the environment variable TOKEN"]);
        let stop = evaluate("{{ if env \"X\" }}a{{ end }}", 1, &dot()).expect_err("stops");
        assert_eq!(
            stop.to_string(),
            "`{{ if env \"X\" }}` depends on the environment variable X, which is not known statically"
        );
        let stop = evaluate("\n{{ .Values | toYaml }}", 1, &dot()).expect_err("stops");
        assert_eq!(stop.line, 2);
        assert_eq!(stop.why, StopWhy::Unsupported);
    }

    #[test]
    fn evaluation_stops_at_its_step_budget() {
        let list = Value::List((0..60).map(|i| s(&i.to_string())).collect());
        let dot = map(vec![("l", list)]);
        let t = "{{ range .l }}{{ range $.l }}{{ range $.l }}x{{ end }}{{ end }}{{ end }}";
        let stop = evaluate(t, 1, &dot).expect_err("over budget");
        assert_eq!(stop.why, StopWhy::Budget);
    }
}
