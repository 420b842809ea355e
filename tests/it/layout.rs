//! The layout the README's contributor section promises, checked: no two modules of a crate
//! import each other in a circle (a lower layer reaching up), `src/main.rs` stays a thin CLI,
//! and no source file grows past 700 lines.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use crate::repo;

fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "rs") {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

/// `crate::x` edges between the top-level modules of the crate whose sources are in `src`,
/// from production code only (tests may reach anywhere).
fn module_edges(src: &Path) -> BTreeMap<String, BTreeSet<String>> {
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for file in rust_files(src) {
        let rel = file.strip_prefix(src).unwrap();
        let module = rel
            .components()
            .next()
            .unwrap()
            .as_os_str()
            .to_string_lossy()
            .trim_end_matches(".rs")
            .to_owned();
        if module == "main" || module == "lib" {
            continue;
        }
        let text = std::fs::read_to_string(&file).unwrap();
        let code = text.split("#[cfg(test)]").next().unwrap();
        let mut add = |target: &str| {
            if !target.is_empty() && target != module {
                edges
                    .entry(module.clone())
                    .or_default()
                    .insert(target.to_owned());
            }
        };
        for (i, _) in code.match_indices("crate::") {
            let rest = &code[i + "crate::".len()..];
            if rest.starts_with('{') {
                let group = &rest[1..rest.find('}').unwrap_or(rest.len())];
                for item in group.split(',') {
                    add(item.trim().split("::").next().unwrap_or("").trim());
                }
            } else {
                let name: String = rest
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                add(&name);
            }
        }
    }
    edges
}

/// A module that reaches itself again through its imports, with the path taken.
fn find_circle(edges: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn walk(
        node: &str,
        edges: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(at) = path.iter().position(|p| p == node) {
            let mut circle = path[at..].to_vec();
            circle.push(node.to_owned());
            return Some(circle);
        }
        if done.contains(node) {
            return None;
        }
        path.push(node.to_owned());
        for next in edges.get(node).into_iter().flatten() {
            if let Some(c) = walk(next, edges, path, done) {
                return Some(c);
            }
        }
        path.pop();
        done.insert(node.to_owned());
        None
    }
    let mut done = BTreeSet::new();
    edges
        .keys()
        .find_map(|n| walk(n, edges, &mut Vec::new(), &mut done))
}

#[test]
fn no_module_imports_another_in_a_circle() {
    for krate in [
        "src",
        "crates/model/src",
        "crates/evidence/src",
        "crates/aws/src",
    ] {
        let edges = module_edges(&repo(krate));
        assert!(
            !edges.is_empty() || krate == "crates/aws/src",
            "{krate}: no edges read"
        );
        if let Some(circle) = find_circle(&edges) {
            panic!(
                "{krate}: modules import each other in a circle: {}",
                circle.join(" -> ")
            );
        }
    }
}

#[test]
fn the_circle_finder_finds_a_circle() {
    let edges: BTreeMap<String, BTreeSet<String>> = [
        ("engine", &["safety", "target"][..]),
        ("target", &["safety"]),
        ("safety", &["engine"]),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.iter().map(|s| s.to_string()).collect()))
    .collect();
    let circle = find_circle(&edges).expect("engine -> safety -> engine");
    assert_eq!(circle.first(), circle.last());
    assert!(circle.contains(&"safety".to_owned()), "{circle:?}");
}

#[test]
fn the_cli_is_thin_and_no_source_file_is_over_700_lines() {
    let main = std::fs::read_to_string(repo("src/main.rs")).unwrap();
    assert!(
        main.lines().count() < 400,
        "src/main.rs has {} lines",
        main.lines().count()
    );
    let mut long = Vec::new();
    for dir in ["src", "crates", "tests", "benches"] {
        for f in rust_files(&repo(dir)) {
            let n = std::fs::read_to_string(&f).unwrap().lines().count();
            if n > 700 {
                long.push(format!("{} ({n} lines)", f.display()));
            }
        }
    }
    assert!(long.is_empty(), "over 700 lines: {long:?}");
}
