//! Property and fuzz-style tests of the YAML reader itself (`documents::yaml::parse_stream`,
//! the entry point every caller uses: libyaml-safer, then saphyr-parser where libyaml-safer
//! panics) and of the config loader (`Config::parse`), called directly: outside the per-file
//! panic guard, so a panic that escapes the reader fails the test. Bounded: fixed seeds and
//! case counts, a few seconds.

use std::path::Path;

use envfence::config::Config;
use envfence::documents::guard;
use envfence::documents::yaml::parse_stream;
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config as ProptestConfig, RngSeed};

/// A real manifest with the constructs that matter: block scalars (literal, folded, with
/// chomping indicators), flow collections, anchors and aliases, quoted scalars with escapes,
/// comments, tags, several documents, and a block scalar that ends the file.
const MANIFEST: &str = r#"# A deployment, as people write them.
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web   # trailing comment
  namespace: "prod-\u00e9u"
  labels: &labels {app: web, tier: 'front end', env: production}
  annotations:
    note: >-
      folded text
      over two lines
spec:
  replicas: !!int 3
  selector:
    matchLabels: *labels
  template:
    metadata: {labels: *labels}
    spec:
      containers:
        - name: web
          image: "registry.example/web:1.2"
          args: [--port, "8080", ? complex]
          env:
            - {name: DATABASE_URL, value: 'postgres://db:5432/app'}
          command:
            - sh
            - -c
            - |
              echo "starting ${HOME}"
              exec web
---
apiVersion: v1
kind: ConfigMap
metadata: {name: cfg}
data:
  script: |+
    keep trailing

  tail: |
    no final line break"#;

/// The config loader's own example, ending in a block scalar without a line break.
const CONFIG: &str = "clusters:\n  - name: prod-eu\n    environment: production\n    server: https://prod.example\n    aliases: [eu, 'prod eu']\nenvironments:\n  production:\n    words: [live]\nignore:\n  - vendor/**\nrules:\n  invalid-yaml: warning\n# last\npaths:\n  - glob: |\n      apps/**";

/// Feeds `text` to both readers; a panic fails the calling test.
fn read_everything(text: &str) {
    quiet_caught_panics();
    // Outside any guard: a panic escaping `parse_stream` reaches the test.
    assert!(!guard::in_guarded_read());
    let stream = parse_stream(text);
    // Spans stay inside the text's lines (+1 for the end marker after the last line). YAML
    // breaks lines at CR, NEL and LS/PS too (CRLF counts twice here: only a looser bound).
    let breaks = text
        .chars()
        .filter(|c| matches!(c, '\n' | '\r' | '\u{85}' | '\u{2028}' | '\u{2029}'))
        .count();
    let lines = u32::try_from(breaks + 1).unwrap_or(u32::MAX);
    for doc in &stream.docs {
        assert!(doc.root.span.line >= 1);
        assert!(
            doc.root.span.line <= lines.saturating_add(1),
            "{:?} past {lines} lines",
            doc.root.span
        );
    }
    let _ = Config::parse(Path::new(".envfence.yaml"), text);
}

/// The binary's panic hook: silent for panics the reader catches (its fallback), loud for
/// any other.
fn quiet_caught_panics() {
    static HOOK: std::sync::Once = std::sync::Once::new();
    HOOK.call_once(|| {
        let loud = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !guard::in_guarded_read() {
                loud(info);
            }
        }));
    });
}

/// Whether libyaml-safer alone panics on `text`, as `parse_stream` reads it (with a final
/// line break): those inputs take the saphyr-parser path.
fn libyaml_safer_panics(text: &str) -> bool {
    quiet_caught_panics();
    let padded = if text.ends_with(['\n', '\r']) {
        text.to_owned()
    } else {
        format!("{text}\n")
    };
    guard::guarded(|| {
        let mut input = padded.as_bytes();
        let mut parser = libyaml_safer::Parser::new();
        parser.set_input_string(&mut input);
        parser.take_while(Result::is_ok).count()
    })
    .is_err()
}

/// Flow collections with tags right before `,` or `}` (yaml-test-suite WZ62): where
/// libyaml-safer panics even on text with a final line break, so these inputs are read by
/// saphyr-parser. With anchors, aliases and nesting for its side of the tree builder.
fn flow_fragment() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec![
        "{",
        "}",
        "[",
        "]",
        ", ",
        ",",
        "!!str",
        "!!str ",
        "!t",
        ": ",
        ":",
        "a",
        "b: ",
        "&a ",
        "*a",
        "!!str,",
        "!t,",
        "{a: !!str,",
        "? ",
        "'q'",
        "\"d\"",
        " ",
        "\n",
        "\n  ",
        " #c\n",
        "- ",
        "|",
        "\\",
        "---\n",
    ])
}

/// The flow fuzzing reaches both readers: some of its inputs make libyaml-safer panic, so
/// `parse_stream` reads them with saphyr-parser (where a panic would fail `flow_fragments`).
#[test]
fn flow_fragments_reach_the_fallback() {
    let mut runner = proptest::test_runner::TestRunner::new(config(2_000, 0x5eed_0004));
    let strategy = prop::collection::vec(flow_fragment(), 0..32);
    let fallbacks = (0..2_000)
        .filter_map(|_| strategy.new_tree(&mut runner).ok())
        .filter(|tree| libyaml_safer_panics(&tree.current().concat()))
        .count();
    eprintln!("{fallbacks} of 2000 inputs took the fallback");
    assert!(
        fallbacks >= 100,
        "only {fallbacks} of 2000 inputs took the fallback"
    );
    assert!(libyaml_safer_panics("{ foo: !!str, !!str : bar }\n"));
}

fn config(cases: u32, seed: u64) -> ProptestConfig {
    ProptestConfig {
        cases,
        rng_seed: RngSeed::Fixed(seed),
        failure_persistence: None,
        max_shrink_iters: 2_000,
        ..ProptestConfig::default()
    }
}

/// Every prefix of the manifest and of the config, as LF, CRLF, with a BOM and with tabs
/// for indentation: truncation is how block scalars end up at the end of a file.
#[test]
fn truncation_at_every_offset() {
    for source in [MANIFEST, CONFIG] {
        let variants = [
            source.to_owned(),
            source.replace('\n', "\r\n"),
            format!("\u{feff}{source}"),
            source.replace("  ", "\t"),
        ];
        for variant in &variants {
            for end in (0..=variant.len()).filter(|&i| variant.is_char_boundary(i)) {
                read_everything(&variant[..end]);
            }
        }
    }
}

/// Pieces of YAML syntax, including the awkward ones: indicators, tags before `,`, block
/// scalar headers, tabs, BOMs, CR, NUL, directives, document markers.
fn fragment() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec![
        "a",
        "key",
        ": ",
        ":",
        "- ",
        "-",
        "? ",
        "|",
        "|-",
        "|+",
        "|2",
        ">",
        ">-",
        "[",
        "]",
        "{",
        "}",
        ", ",
        ",",
        "!",
        "!!str",
        "!t ",
        "&a ",
        "*a",
        "'",
        "\"",
        "\\",
        "#",
        " # c",
        "\n",
        "\r\n",
        "\r",
        "\t",
        " ",
        "  ",
        "    ",
        "\u{feff}",
        "\0",
        "---",
        "...",
        "%YAML 1.2",
        "%TAG ! tag:x,2000:",
        "${X}",
        "{{ x }}",
        "é",
        "\u{2028}",
        "\u{85}",
        "@",
        "`",
        "%",
        "0x1F",
        "~",
        "null",
        "<<: *a",
    ])
}

proptest! {
    #![proptest_config(config(3_000, 0x5eed_0001))]

    /// Random sequences of YAML syntax.
    #[test]
    fn random_fragments(parts in prop::collection::vec(fragment(), 0..48)) {
        read_everything(&parts.concat());
    }
}

proptest! {
    #![proptest_config(config(600, 0x5eed_0002))]

    /// The manifest with a few bytes replaced, inserted or removed (bytes that break UTF-8
    /// are read as the replacement character, as a file would be after decoding).
    #[test]
    fn byte_flips(edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0u8..3), 1..6)) {
        let mut bytes = MANIFEST.as_bytes().to_vec();
        for (at, byte, op) in edits {
            let i = at.index(bytes.len() + 1);
            match op {
                0 if i < bytes.len() => bytes[i] = byte,
                1 => bytes.insert(i, byte),
                _ if i < bytes.len() => { bytes.remove(i); }
                _ => bytes.push(byte),
            }
        }
        read_everything(&String::from_utf8_lossy(&bytes));
    }

    /// A block scalar at the end of the input, with any header and any last line: no line
    /// break, trailing spaces, tabs, CR, a comment, a document marker.
    #[test]
    fn block_scalars_at_end_of_input(
        key in "[a-z]{1,3}",
        header in prop::sample::select(vec!["|", "|-", "|+", ">", ">-", ">+", "|2", ">1-", "|9"]),
        indent in 0usize..6,
        lines in prop::collection::vec("[ -~\t]{0,8}", 0..4),
        last in prop::sample::select(vec!["", " ", "   ", "\t", "\r", "\n ", " #c", "\n---", "\n..."]),
        in_sequence in any::<bool>(),
    ) {
        let prefix = if in_sequence { "- " } else { "" };
        let mut text = format!("{prefix}{key}: {header}");
        for line in &lines {
            text.push('\n');
            text.push_str(&" ".repeat(indent));
            text.push_str(line);
        }
        text.push_str(last);
        read_everything(&text);
    }

}

proptest! {
    #![proptest_config(config(2_000, 0x5eed_0004))]

    /// Flow collections with tags, anchors and aliases, the fallback's inputs.
    #[test]
    fn flow_fragments(parts in prop::collection::vec(flow_fragment(), 0..32)) {
        read_everything(&parts.concat());
    }
}

proptest! {
    #![proptest_config(config(48, 0x5eed_0003))]

    /// Deep and unbalanced flow nesting, with and without content and commas.
    #[test]
    fn deep_flow_nesting(depth in 0usize..3_000, close in 0usize..3_000, item in prop::sample::select(vec!["", "a", "a,", "!t,", "{a: ", "- "])) {
        let text = format!("x: {}{item}{}", "[".repeat(depth), "]".repeat(close));
        read_everything(&text);
        let text = format!("{}{item}{}", "{a: ".repeat(depth / 2), "}".repeat(close / 2));
        read_everything(&text);
    }
}
