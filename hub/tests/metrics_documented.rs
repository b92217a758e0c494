//! The operator's page lists every metric: each `nax_*` name the workspace's
//! code records with `counter!`, `gauge!` or `histogram!` has a row in
//! docs/OPERATIONS.md, "Metrics", and each row names a metric the code
//! still records.
//!
//! Names are read from the sources: a string literal as the macro's first
//! argument, or a `const NAME: &str = "nax_...";` whose name is a macro's
//! first argument somewhere in the workspace (constants are shared across
//! crates: `hub` describes `api`'s, `api`'s modules record `hub`'s). A
//! `nax_*` constant never passed to a macro is not a metric, except those
//! the hub's `/metrics` writes itself (`hub::metrics::RENDERED`).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

const OPERATIONS: &str = include_str!("../../docs/OPERATIONS.md");
const MACROS: [&str; 3] = ["counter!(", "gauge!(", "histogram!("];

/// Every `*.rs` file under `dir`, skipping `target`.
fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.expect("a directory entry").path();
        if path.is_dir() {
            if path.file_name().is_some_and(|n| n != "target") {
                rust_files(&path, out);
            }
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The first argument of each metric macro call in `code` (comments
/// skipped): `Ok(name)` for a string literal, `Err(ident)` for a path
/// (its last segment, e.g. `HTTP_CONNECTIONS` of `m::HTTP_CONNECTIONS`).
fn macro_arguments(code: &str) -> Vec<Result<String, String>> {
    let code: String = code
        .lines()
        .filter(|l| !l.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n");
    let mut found = Vec::new();
    for mac in MACROS {
        for (at, _) in code.match_indices(mac) {
            // `describe_counter!(` is not a recording.
            let before = code[..at].chars().next_back();
            if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
                continue;
            }
            let arg = code[at + mac.len()..].trim_start();
            if let Some(literal) = arg.strip_prefix('"') {
                found.push(Ok(literal.split('"').next().unwrap_or_default().to_owned()));
            } else {
                let path: String = arg
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_' || *c == ':')
                    .collect();
                found.push(Err(path.rsplit("::").next().unwrap_or_default().to_owned()));
            }
        }
    }
    found
}

/// `NAME` and its value for each `const NAME: &str = "nax_...";` line.
fn nax_constants(code: &str) -> Vec<(String, String)> {
    code.lines()
        .filter_map(|line| {
            let (_, rest) = line.split_once("const ")?;
            let (name, rest) = rest.split_once(": &str = \"")?;
            let value = rest.strip_suffix("\";")?;
            value
                .starts_with("nax_")
                .then(|| (name.trim().to_owned(), value.to_owned()))
        })
        .collect()
}

/// Every metric name the workspace's crates record.
fn recorded() -> BTreeSet<String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut files = Vec::new();
    for krate in std::fs::read_dir(&root).expect("the workspace") {
        let src = krate.expect("a directory entry").path().join("src");
        if src.is_dir() {
            rust_files(&src, &mut files);
        }
    }
    let (mut names, mut idents, mut constants) = (BTreeSet::new(), BTreeSet::new(), Vec::new());
    for file in &files {
        let code = std::fs::read_to_string(file).expect("a source file");
        for arg in macro_arguments(&code) {
            match arg {
                Ok(literal) if literal.starts_with("nax_") => {
                    names.insert(literal);
                }
                Ok(_) => {}
                Err(ident) => {
                    idents.insert(ident);
                }
            }
        }
        constants.extend(nax_constants(&code));
    }
    for (name, value) in constants {
        if idents.contains(&name) {
            names.insert(value);
        }
    }
    names.extend(hub::metrics::RENDERED.map(String::from));
    names
}

/// The `nax_*` names in the first column of the "Metrics" table.
fn documented() -> BTreeSet<String> {
    let section = OPERATIONS
        .split_once("\n## Metrics\n")
        .expect("docs/OPERATIONS.md has a \"Metrics\" section")
        .1;
    let section = section.split("\n## ").next().unwrap_or_default();
    let mut names = BTreeSet::new();
    for row in section.lines().filter(|l| l.starts_with("| `nax_")) {
        let first = row.split('|').nth(1).unwrap_or_default();
        for name in first.split('`').skip(1).step_by(2) {
            names.insert(name.to_owned());
        }
    }
    names
}

#[test]
fn every_recorded_metric_has_a_row_in_operations_md() {
    let recorded = recorded();
    // The scan found the literal names and the constants' alike.
    for known in [
        "nax_worker_processed_total",
        "nax_connections",
        "nax_http_requests_total",
    ] {
        assert!(
            recorded.contains(known),
            "{known} not found in {recorded:?}"
        );
    }
    assert!(
        recorded.len() >= 60,
        "only {} metrics found: {recorded:?}",
        recorded.len()
    );
    let documented = documented();
    let missing: Vec<_> = recorded.difference(&documented).collect();
    assert!(
        missing.is_empty(),
        "metrics recorded in the code but without a row in docs/OPERATIONS.md, \"Metrics\": \
         {missing:?}; add a row (| name | kind | labels | what |) for each"
    );
    let stale: Vec<_> = documented.difference(&recorded).collect();
    assert!(
        stale.is_empty(),
        "docs/OPERATIONS.md, \"Metrics\", has rows for metrics the code no longer records: \
         {stale:?}; remove or rename those rows"
    );
}
