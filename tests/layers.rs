//! The module map of `src/lib.rs` is true: each top-level module uses only modules listed
//! before it in the layer order `lib.rs` states (doc links and tests excepted), so imports
//! never go round in a circle and data flows one way.

use std::path::Path;

/// The order as `lib.rs` states it, read from its doc comment.
fn layer_order() -> Vec<String> {
    let lib = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/src/lib.rs")).unwrap();
    let doc: String = lib
        .lines()
        .filter_map(|l| l.strip_prefix("//!"))
        .flat_map(str::split_whitespace)
        .collect::<Vec<_>>()
        .join(" ");
    let start = doc
        .find("each module uses only modules listed before it in")
        .expect("lib.rs states the layer order");
    let list = &doc[start..];
    let list = &list[list.find(" in ").unwrap() + 4..list.find('(').unwrap()];
    list.split(',')
        .map(|m| m.trim().to_string())
        .filter(|m| !m.is_empty())
        .collect()
}

/// The `crate::NAME` paths used by the code of a file, leaving out comments and the tests at
/// its end (`#[cfg(test)] mod tests { ... }` and files named `tests.rs`).
fn used_modules(text: &str) -> Vec<String> {
    let code = text.split("#[cfg(test)]\nmod tests").next().unwrap_or(text);
    let mut out = Vec::new();
    for line in code.lines() {
        let line = line.split("//").next().unwrap_or("");
        let mut rest = line;
        while let Some(at) = rest.find("crate::") {
            rest = &rest[at + "crate::".len()..];
            let name: String = rest
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            out.push(name);
        }
    }
    out
}

fn files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn each_module_uses_only_the_modules_below_it() {
    let order = layer_order();
    assert!(order.len() >= 10, "the order read from lib.rs: {order:?}");
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut bad = Vec::new();
    for (rank, module) in order.iter().enumerate() {
        let mut paths = Vec::new();
        let dir = src.join(module);
        if dir.is_dir() {
            files(&dir, &mut paths);
        }
        let file = src.join(format!("{module}.rs"));
        if file.is_file() {
            paths.push(file);
        }
        assert!(!paths.is_empty(), "no source for module {module}");
        for path in paths.iter().filter(|p| !p.ends_with("tests.rs")) {
            let text = std::fs::read_to_string(path).unwrap();
            for used in used_modules(&text) {
                let Some(used_rank) = order.iter().position(|m| *m == used) else {
                    continue;
                };
                if used_rank > rank {
                    bad.push(format!("{} uses crate::{used}", path.display()));
                }
            }
        }
    }
    bad.sort();
    bad.dedup();
    assert!(
        bad.is_empty(),
        "arrows up the layer order:\n{}",
        bad.join("\n")
    );
}

#[test]
fn the_checker_sees_an_arrow_up() {
    let uses = used_modules("use crate::engine::Control;\n// crate::http in a comment\n");
    assert_eq!(uses, ["engine"]);
}
