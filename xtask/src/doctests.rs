//! Whether the workspace has any doc-test at all. `cargo test --doc` resolves features apart
//! from nextest's build, so running it rebuilds the libraries twice (90 s here) even when it
//! then runs nothing; it runs only where a doc comment holds a Rust code block.

use std::path::Path;

/// Info strings of fenced blocks rustdoc does not compile and run.
const NOT_RUST: [&str; 10] = [
    "text", "sh", "bash", "console", "json", "yaml", "toml", "sql", "ignore", "markdown",
];

/// The first doc-test found under `dirs`, as `file:line`.
pub fn first(dirs: &[&Path]) -> Option<String> {
    let mut stack: Vec<std::path::PathBuf> = dirs.iter().map(|d| d.to_path_buf()).collect();
    let mut files = Vec::new();
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "rs") {
                files.push(p);
            }
        }
    }
    files.sort();
    files.into_iter().find_map(|f| {
        let text = std::fs::read_to_string(&f).ok()?;
        in_text(&text).map(|line| format!("{}:{line}", f.display()))
    })
}

/// The line (1-based) of the first doc-test in a source file: a fence opening a Rust block in a
/// doc comment, or a doc attribute that includes a file (which may hold one).
fn in_text(text: &str) -> Option<usize> {
    let mut open = false;
    for (i, line) in text.lines().enumerate() {
        let t = line.trim_start();
        if t.starts_with("#![doc") || t.starts_with("#[doc") {
            if t.contains("include_str!") {
                return Some(i + 1);
            }
            continue;
        }
        let Some(doc) = t.strip_prefix("///").or_else(|| t.strip_prefix("//!")) else {
            continue;
        };
        let Some(info) = doc.trim().strip_prefix("```") else {
            continue;
        };
        if open {
            open = false;
            continue;
        }
        open = true;
        let info = info.trim();
        let rust = info
            .split(',')
            .map(str::trim)
            .all(|word| !NOT_RUST.contains(&word));
        if info.is_empty() || rust {
            return Some(i + 1);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::in_text;

    #[test]
    fn a_rust_block_in_a_doc_comment_is_a_doc_test() {
        assert_eq!(
            in_text("//! a\n//! ```\n//! let x = 1;\n//! ```\n"),
            Some(2)
        );
        assert_eq!(in_text("/// ```rust,no_run\n/// f();\n/// ```\n"), Some(1));
        assert_eq!(
            in_text("#![doc = include_str!(\"../README.md\")]\n"),
            Some(1)
        );
    }

    #[test]
    fn text_blocks_and_plain_comments_are_not() {
        assert_eq!(in_text("/// ```text\n/// a\n/// ```\n// ```\n"), None);
        assert_eq!(
            in_text("/// ```sh\n/// ls\n/// ```\n/// ```yaml\n/// a: 1\n/// ```\n"),
            None
        );
        assert_eq!(in_text("fn f() {}\n"), None);
    }
}
