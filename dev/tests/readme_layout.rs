//! The README's layout tables are the map a newcomer reads first, so they
//! must match the tree: every path they name exists, and every top-level
//! entry and every module of `shared/src` and `dev/src` is named.

#![allow(clippy::unwrap_used, reason = "in a test an unwrap is an assertion")]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The paths in backticks that open the rows of the README's "Layout"
/// section, e.g. "| `shared/src/db.rs` | ... |" gives "shared/src/db.rs".
fn layout_paths() -> BTreeSet<String> {
    let readme = std::fs::read_to_string(repo().join("README.md")).unwrap();
    let section = readme
        .split("\n## Layout\n")
        .nth(1)
        .expect("README has a Layout section");
    let section = section.split("\n## ").next().unwrap();
    section
        .lines()
        .filter_map(|line| line.strip_prefix("| `"))
        .filter_map(|rest| rest.split('`').next())
        .map(str::to_owned)
        .collect()
}

/// What a layout table must name below `dir`: its directories (as
/// "dir/name/") and, with `files`, its Rust files.
fn entries(dir: &str, files: bool) -> BTreeSet<String> {
    let ignored = ["target", "node_modules"];
    std::fs::read_dir(repo().join(dir))
        .unwrap()
        .map(|entry| entry.unwrap())
        .filter_map(|entry| {
            let name = entry.file_name().into_string().unwrap();
            let prefix = if dir.is_empty() {
                String::new()
            } else {
                format!("{dir}/")
            };
            if name.starts_with('.') || ignored.contains(&name.as_str()) {
                None
            } else if entry.file_type().unwrap().is_dir() {
                Some(format!("{prefix}{name}/"))
            } else if files && name.ends_with(".rs") && name != "lib.rs" && name != "main.rs" {
                Some(format!("{prefix}{name}"))
            } else {
                None
            }
        })
        .collect()
}

#[test]
fn every_path_the_layout_names_exists() {
    let missing: Vec<_> = layout_paths()
        .into_iter()
        .filter(|path| !repo().join(path).exists())
        .collect();
    assert!(
        missing.is_empty(),
        "README layout names missing paths: {missing:?}"
    );
}

#[test]
fn the_layout_names_every_top_level_directory_and_every_module() {
    let named = layout_paths();
    let mut expected = entries("", false);
    expected.extend(entries("shared/src", true));
    expected.extend(entries("dev/src", true));
    let unnamed: Vec<_> = expected.difference(&named).collect();
    assert!(
        unnamed.is_empty(),
        "README layout does not name: {unnamed:?}"
    );
}
