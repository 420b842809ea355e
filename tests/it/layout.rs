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

/// A module's path within its crate (`scenario::validate` is `["scenario", "validate"]`) from
/// its file: `a/mod.rs` and `a.rs` are `a`; `lib.rs` and `main.rs` the crate's root.
fn module_of(src: &Path, file: &Path) -> Vec<String> {
    let mut parts: Vec<String> = file
        .strip_prefix(src)
        .unwrap()
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    let last = parts.pop().unwrap();
    let stem = last.trim_end_matches(".rs");
    let root_file = parts.is_empty() && (stem == "lib" || stem == "main");
    if stem != "mod" && !root_file {
        parts.push(stem.to_owned());
    }
    parts
}

/// Every path a piece of code names through `crate::` or `super::` (groups expanded:
/// `super::{a, b::{c, d}}` names `a`, `b::c` and `b::d`), resolved against `module` into
/// segments from the crate's root. Paths through a parent's re-exports end at the parent.
fn named_paths(code: &str, module: &[String]) -> Vec<Vec<String>> {
    fn expand(rest: &str, prefix: Vec<String>, out: &mut Vec<Vec<String>>) {
        let mut path = prefix;
        let mut rest = rest;
        loop {
            if let Some(group) = rest.strip_prefix('{') {
                let mut depth = 0;
                let mut start = 0;
                for (i, c) in group.char_indices() {
                    match c {
                        '{' => depth += 1,
                        '}' if depth == 0 => {
                            expand(group[start..i].trim(), path.clone(), out);
                            return;
                        }
                        '}' => depth -= 1,
                        ',' if depth == 0 => {
                            expand(group[start..i].trim(), path.clone(), out);
                            start = i + 1;
                        }
                        _other => {}
                    }
                }
                return;
            }
            let name: String = rest
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            if name.is_empty() {
                break;
            }
            rest = &rest[name.len()..];
            path.push(name);
            match rest.strip_prefix("::") {
                Some(more) => rest = more,
                None => break,
            }
        }
        out.push(path);
    }
    let mut out = Vec::new();
    for (i, _) in code.match_indices("crate::") {
        // `$crate::` and `firedrill_model::crate::` are not this crate's paths.
        if code[..i].ends_with('$') {
            continue;
        }
        expand(&code[i + "crate::".len()..], Vec::new(), &mut out);
    }
    for (i, _) in code.match_indices("super::") {
        if code[..i].ends_with("super::") {
            continue;
        }
        let mut base = module.to_vec();
        let mut rest = &code[i..];
        while let Some(more) = rest.strip_prefix("super::") {
            base.pop();
            rest = more;
        }
        expand(rest, base, &mut out);
    }
    out
}

/// For each module with children, the imports between its children (`a::x -> a::y` when code
/// anywhere in `a::x` names something in `a::y`), from production code only (tests may reach
/// anywhere): the graphs in which a circle means a lower layer reaches up, at every depth.
fn module_edges(src: &Path) -> BTreeMap<String, BTreeMap<String, BTreeSet<String>>> {
    let files = rust_files(src);
    let modules: BTreeSet<Vec<String>> = files.iter().map(|f| module_of(src, f)).collect();
    let mut graphs: BTreeMap<String, BTreeMap<String, BTreeSet<String>>> = BTreeMap::new();
    for file in &files {
        let from = module_of(src, file);
        let text = std::fs::read_to_string(file).unwrap();
        // Comments (doc links included) name modules without using them.
        let code: String = text
            .split("#[cfg(test)]")
            .next()
            .unwrap()
            .lines()
            .filter(|l| !l.trim_start().starts_with("//"))
            .collect::<Vec<_>>()
            .join("\n");
        for named in named_paths(&code, &from) {
            // The longest known module the path names.
            let to: Vec<String> = (0..=named.len())
                .rev()
                .map(|n| named[..n].to_vec())
                .find(|p| modules.contains(p))
                .unwrap_or_default();
            let common = from.iter().zip(&to).take_while(|(a, b)| a == b).count();
            if common < from.len() && common < to.len() {
                graphs
                    .entry(from[..common].join("::"))
                    .or_default()
                    .entry(from[common].clone())
                    .or_default()
                    .insert(to[common].clone());
            }
        }
    }
    graphs
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

/// The circles among the children of every module of the crate whose sources are in `src`.
fn circles(src: &Path) -> Vec<String> {
    module_edges(src)
        .iter()
        .flat_map(|(parent, edges)| {
            let within = if parent.is_empty() {
                "the crate's root".to_owned()
            } else {
                format!("`{parent}`")
            };
            // Every circle, not only the first: each found one is cut at its last edge.
            let mut edges = edges.clone();
            let mut found = Vec::new();
            while let Some(circle) = find_circle(&edges) {
                let [.., from, to] = &circle[..] else {
                    unreachable!("a circle has an edge")
                };
                edges.get_mut(from).unwrap().remove(to);
                found.push(format!("within {within}: {}", circle.join(" -> ")));
            }
            found
        })
        .collect()
}

#[test]
fn no_module_imports_another_in_a_circle_at_any_depth() {
    let mut found = Vec::new();
    for krate in [
        "src",
        "crates/model/src",
        "crates/evidence/src",
        "crates/aws/src",
        "xtask/src",
    ] {
        let edges = module_edges(&repo(krate));
        assert!(
            !edges.is_empty() || matches!(krate, "crates/aws/src" | "xtask/src"),
            "{krate}: no edges read"
        );
        found.extend(
            circles(&repo(krate))
                .into_iter()
                .map(|c| format!("{krate}: {c}")),
        );
    }
    assert!(
        found.is_empty(),
        "modules import each other in a circle:\n{}",
        found.join("\n")
    );
}

#[test]
fn a_circle_planted_two_levels_down_is_found() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path();
    let write = |rel: &str, text: &str| {
        let path = src.join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    };
    write("lib.rs", "pub mod outer;\n");
    write("outer/mod.rs", "pub mod inner;\n");
    write("outer/inner/mod.rs", "mod low;\nmod high;\n");
    write(
        "outer/inner/low.rs",
        "use super::{high::{Up, Down}};\npub fn f() {}\n",
    );
    write(
        "outer/inner/high.rs",
        "pub fn g() { crate::outer::inner::low::f() }\n#[cfg(test)]\nuse super::super::x;\n",
    );
    assert_eq!(
        circles(src),
        ["within `outer::inner`: high -> low -> high"],
        "{:?}",
        module_edges(src)
    );
    // Without the upward import there is none.
    write("outer/inner/low.rs", "pub fn f() {}\n");
    assert_eq!(circles(src), Vec::<String>::new());
}

#[test]
fn the_circle_finder_finds_a_circle() {
    let edges: BTreeMap<String, BTreeSet<String>> = [
        ("engine", &["safety", "systems"][..]),
        ("systems", &["safety"]),
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

/// Many contributors' global git excludes hold `target/` (Cargo's build folder): no tracked
/// source may sit under a folder of that name, or a new file there would never be committed
/// (and tools that skip build folders would skip the code). Asked of git itself, with such an
/// exclude file, for every tracked file.
#[test]
fn no_tracked_file_is_hidden_by_a_global_exclude_of_target() {
    let root = repo(".");
    if !root.join(".git").exists() {
        eprintln!("not a git checkout: nothing to ask git");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let excludes = dir.path().join("ignore");
    std::fs::write(&excludes, "target/\n").unwrap();
    let git = |args: &[&str], input: Option<&[u8]>| {
        use std::io::Write;
        let mut child = std::process::Command::new("git")
            .arg("-C")
            .arg(&root)
            .arg("-c")
            .arg(format!("core.excludesFile={}", excludes.display()))
            .args(args)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("git runs");
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.unwrap_or_default())
            .unwrap();
        child.wait_with_output().unwrap()
    };
    let tracked = git(&["ls-files", "-z"], None);
    assert!(tracked.status.success());
    assert!(
        tracked
            .stdout
            .split(|b| *b == 0)
            .any(|f| f == b"src/lib.rs"),
        "git lists the tracked files"
    );
    // `--no-index`: tracked files are checked too. Exit 1 means none is ignored.
    let ignored = git(
        &["check-ignore", "--no-index", "-z", "--stdin"],
        Some(&tracked.stdout),
    );
    let hidden: Vec<String> = ignored
        .stdout
        .split(|b| *b == 0)
        .filter(|f| !f.is_empty())
        .map(|f| String::from_utf8_lossy(f).into_owned())
        .collect();
    assert!(
        hidden.is_empty(),
        "hidden by a global exclude of `target/`: {hidden:?}"
    );
    // The check can fail: a path under a `target` folder is named.
    let planted = git(
        &["check-ignore", "--no-index", "--stdin"],
        Some(b"src/target/new_kind.rs\n"),
    );
    assert_eq!(
        String::from_utf8_lossy(&planted.stdout).trim(),
        "src/target/new_kind.rs"
    );
}
