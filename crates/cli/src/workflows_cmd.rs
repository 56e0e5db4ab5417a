//! `valinectl workflows check [PATH…]`: no workflow interpolates what its caller controls into a
//! script. GitHub pastes `${{ … }}` into a `run:` script (or an `actions/github-script`
//! `script:`) before the shell or Node reads it, so `${{ inputs.url }}` holding `"; curl … | sh
//! #` runs that. Such values go through `env:` and are read as `"$VAR"`. Checked: `inputs.*`
//! (`github.event.inputs.*` too), every `github.event.*` field (titles, bodies, branch names,
//! commit messages…) and `github.head_ref`.
//!
//! The files are read as lines, not parsed: a `run:` or `script:` key's value is the rest of its
//! line and every line after it indented deeper than the key (YAML's rule for block scalars and
//! continued plain scalars), which is all this check needs.

use std::path::{Path, PathBuf};

/// Where the workflows live, from the repository root: the repository's own and the examples
/// the docs give operators to copy.
pub(crate) const DEFAULT_DIRS: [&str; 2] = [".github/workflows", "docs/examples"];

/// One interpolation of a value its caller controls into a script.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Finding {
    pub line: usize,
    pub key: String,
    pub expression: String,
}

/// The keys whose value is a script.
const SCRIPT_KEYS: [&str; 2] = ["run", "script"];

/// The key a line opens (`run` in `      - run: |`), with its column and the rest of the line.
fn key_of(line: &str) -> Option<(&str, usize, &str)> {
    let indent = line.len() - line.trim_start().len();
    let mut rest = &line[indent..];
    let mut column = indent;
    if let Some(item) = rest.strip_prefix("- ") {
        let spaces = item.len() - item.trim_start().len();
        column += 2 + spaces;
        rest = item.trim_start();
    }
    let (key, value) = rest.split_once(':')?;
    let key = key.trim_matches(|c| c == '"' || c == '\'');
    (SCRIPT_KEYS.contains(&key) && (value.is_empty() || value.starts_with(' '))).then_some((key, column, value))
}

/// Whether the inside of a `${{ … }}` names something its caller controls.
fn untrusted(expression: &str) -> bool {
    let e = expression.to_ascii_lowercase();
    let named = |needle: &str| {
        e.match_indices(needle).any(|(at, _)| {
            // `inputs.` must start a name (or follow `github.event.`), not end one (`myinputs.`).
            at.checked_sub(1)
                .and_then(|before| e.as_bytes().get(before))
                .is_none_or(|&b| !b.is_ascii_alphanumeric() && b != b'_')
        })
    };
    named("inputs.") || named("github.event.") || named("github.head_ref")
}

/// Every `${{ … }}` of `text` that names something its caller controls.
fn expressions(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("${{") {
        let after = &rest[start + 3..];
        let Some(end) = after.find("}}") else { break };
        let inner = &after[..end];
        if untrusted(inner) {
            out.push(format!("${{{{{inner}}}}}"));
        }
        rest = &after[end + 2..];
    }
    out
}

/// The findings of one workflow file's text.
pub(crate) fn scan(text: &str) -> Vec<Finding> {
    let lines: Vec<&str> = text.lines().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while let Some(&opening) = lines.get(i) {
        let Some((key, column, value)) = key_of(opening).filter(|_| !opening.trim_start().starts_with('#')) else {
            i += 1;
            continue;
        };
        let mut block = vec![(i, value)];
        let mut j = i + 1;
        while let Some(&line) = lines.get(j) {
            let indent = line.len() - line.trim_start().len();
            if !line.trim().is_empty() && indent <= column {
                break;
            }
            block.push((j, line));
            j += 1;
        }
        for (at, line) in block {
            for expression in expressions(line) {
                out.push(Finding { line: at + 1, key: key.to_string(), expression });
            }
        }
        i = j;
    }
    out
}

/// The `.yml` and `.yaml` files directly in `dir`, sorted; none when it does not exist.
fn workflow_files(dir: &Path) -> Result<Vec<PathBuf>, String> {
    let Ok(entries) = std::fs::read_dir(dir) else { return Ok(Vec::new()) };
    let mut files = Vec::new();
    for entry in entries {
        let path = entry.map_err(|e| format!("{}: {e}", dir.display()))?.path();
        if path.is_file() && path.extension().is_some_and(|x| x == "yml" || x == "yaml") {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

/// What `check` found: how many files it read, and one line per finding.
#[derive(Debug, Default)]
pub(crate) struct Report {
    pub files: usize,
    pub lines: Vec<String>,
}

/// Checks `paths` (files, or directories of workflows), or the [`DEFAULT_DIRS`] under `root`.
pub(crate) fn check(root: &Path, paths: &[PathBuf]) -> Result<Report, String> {
    let mut files = Vec::new();
    let given: Vec<PathBuf> =
        if paths.is_empty() { DEFAULT_DIRS.iter().map(|d| root.join(d)).collect() } else { paths.to_vec() };
    for path in given {
        if path.is_dir() {
            files.extend(workflow_files(&path)?);
        } else if path.is_file() {
            files.push(path);
        } else if !paths.is_empty() {
            return Err(format!("{}: no such file or directory", path.display()));
        }
    }
    let mut report = Report { files: files.len(), lines: Vec::new() };
    for file in files {
        let text = std::fs::read_to_string(&file).map_err(|e| format!("{}: {e}", file.display()))?;
        let shown = file.strip_prefix(root).unwrap_or(&file).display().to_string();
        for f in scan(&text) {
            report.lines.push(format!(
                "{shown}:{}: `{}:` interpolates `{}`, which its caller controls: pass it through `env:` and read \"$VAR\"",
                f.line, f.key, f.expression
            ));
        }
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    const BAD: &str = r#"name: bad
on:
  workflow_dispatch:
    inputs:
      url: {required: true}
jobs:
  j:
    runs-on: ubuntu-latest
    if: ${{ inputs.url != '' }}
    steps:
      - name: fine
        env:
          URL: ${{ inputs.url }}
        run: curl "$URL"
      - run: curl ${{ inputs.url }}
      - name: block
        run: |
          echo start
          echo "${{github.event.inputs.url}}"
        # a comment at the step's level ends the block: ${{ inputs.url }}
      - uses: actions/github-script@v7
        with:
          script: |
            console.log("${{ github.event.issue.title }}")
      - run: echo "${{ github.sha }} ${{ steps.x.outputs.myinputs.y }} ${{ secrets.TOKEN }}"
      - run: >-
          git checkout ${{ github.head_ref }}
"#;

    #[test]
    fn finds_every_interpolation_into_a_script_and_nothing_else() {
        let findings = scan(BAD);
        let found: Vec<(usize, &str, &str)> =
            findings.iter().map(|f| (f.line, f.key.as_str(), f.expression.as_str())).collect();
        assert_eq!(
            found,
            [
                (15, "run", "${{ inputs.url }}"),
                (19, "run", "${{github.event.inputs.url}}"),
                (24, "script", "${{ github.event.issue.title }}"),
                (27, "run", "${{ github.head_ref }}"),
            ]
        );
    }

    #[test]
    fn keys_are_found_in_list_items_and_mappings_only() {
        assert_eq!(key_of("      - run: echo").map(|k| (k.0, k.1)), Some(("run", 8)));
        assert_eq!(key_of("        run: |").map(|k| (k.0, k.1)), Some(("run", 8)));
        assert_eq!(key_of("  script: x").map(|k| k.0), Some("script"));
        assert_eq!(key_of("  run-name: x"), None);
        assert_eq!(key_of("  runs-on: x"), None);
        assert_eq!(key_of("  run:x"), None);
    }

    #[test]
    fn untrusted_names_are_whole_names() {
        assert!(untrusted(" inputs.url "));
        assert!(untrusted("format('{0}', inputs.url)"));
        assert!(untrusted(" GitHub.Event.Pull_Request.Title "));
        assert!(!untrusted(" steps.a.outputs.myinputs.b "));
        assert!(!untrusted(" github.sha "));
        assert!(!untrusted(" secrets.X "));
    }
}
