//! Each route's facts stand in three files that three different tools read:
//! `routes.rs` (the `ROUTES` table: file, public path, methods,
//! `max_duration`; read by the dispatcher, the dev router and the OpenAPI
//! test), `vercel.json` (`functions`: one key per route file with its
//! `maxDuration`; `crons`; read by Vercel) and the root `Cargo.toml` (one
//! `[[bin]]` per route file: the binary's name and its path; read by Cargo
//! and by Vercel's Rust builder). This test fails when they disagree.
//!
//! Why a test and not a generator: `vercel.json` and `Cargo.toml` are read
//! by Vercel and Cargo before any of our code is built, so they must be
//! committed files; a generator would be one more step to remember, and its
//! output would still need a check like this one to catch a stale copy. The
//! two files stay hand-written and readable, each fact keeps one owner
//! (`routes.rs` for path, methods and `maxDuration`; `Cargo.toml` for the
//! binary name, which nothing else needs), and the test names the file to
//! fix (docs/adr/0007-route-facts.md).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde_json::Value;

use super::{Handler, ROUTES};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn read(relative: &str) -> String {
    std::fs::read_to_string(repo().join(relative))
        .unwrap_or_else(|error| panic!("cannot read {relative}: {error}"))
}

/// `[[bin]]` path → name, from the root `Cargo.toml`.
fn cargo_bins() -> BTreeMap<String, String> {
    let manifest = read("Cargo.toml");
    let mut bins = BTreeMap::new();
    let mut current: Option<(Option<String>, Option<String>)> = None;
    let mut finish = |entry: Option<(Option<String>, Option<String>)>| {
        if let Some((name, path)) = entry {
            let (Some(name), Some(path)) = (name, path) else {
                panic!("Cargo.toml: a [[bin]] without both name and path");
            };
            assert!(
                bins.insert(path.clone(), name).is_none(),
                "Cargo.toml: two [[bin]]s build {path}"
            );
        }
    };
    for line in manifest.lines().map(str::trim) {
        if line.starts_with('[') {
            finish(current.take());
            current = (line == "[[bin]]").then_some((None, None));
            continue;
        }
        let (Some(entry), Some((key, value))) = (current.as_mut(), line.split_once('=')) else {
            continue;
        };
        let value = value.trim().trim_matches('"').to_owned();
        match key.trim() {
            "name" => entry.0 = Some(value),
            "path" => entry.1 = Some(value),
            _ => {}
        }
    }
    finish(current);
    bins
}

fn vercel_json() -> Value {
    serde_json::from_str(&read("vercel.json")).expect("vercel.json is JSON")
}

/// Every `.rs` file under `api/`, relative to the repository.
fn route_files_on_disk() -> BTreeSet<String> {
    fn walk(dir: &Path, found: &mut BTreeSet<String>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, found);
            } else if path.extension().is_some_and(|ext| ext == "rs") {
                let relative = path.strip_prefix(repo()).unwrap();
                found.insert(relative.to_string_lossy().into_owned());
            }
        }
    }
    let mut found = BTreeSet::new();
    walk(&repo().join("api"), &mut found);
    found
}

/// The route static a binary serves: the `routes::NAME` its `main` names.
fn served_route(bin_source: &str) -> Option<&str> {
    let after = bin_source.split("routes::").nth(1)?;
    let end = after.find(|c: char| !(c.is_ascii_uppercase() || c == '_'))?;
    Some(&after[..end])
}

/// The `file` of the route static `name`, as `routes.rs` declares it.
fn declared_file<'a>(routes_source: &'a str, name: &str) -> Option<&'a str> {
    let declaration = format!("pub static {name}: Route = Route {{");
    let after = &routes_source[routes_source.find(&declaration)?..];
    let file = after.split("file: \"").nth(1)?;
    file.split('"').next()
}

#[test]
fn routes_vercel_json_and_cargo_toml_agree() {
    let routed: BTreeSet<String> = ROUTES.iter().map(|r| r.file.to_owned()).collect();
    assert_eq!(
        routed.len(),
        ROUTES.len(),
        "routes.rs: two routes share a file"
    );
    let bins = cargo_bins();
    let vercel = vercel_json();
    let functions = vercel["functions"]
        .as_object()
        .expect("vercel.json has functions");
    let sets = [
        (
            "Cargo.toml [[bin]] paths",
            bins.keys().cloned().collect::<BTreeSet<_>>(),
        ),
        ("vercel.json functions", functions.keys().cloned().collect()),
        ("the .rs files under api/", route_files_on_disk()),
    ];
    for (what, files) in sets {
        let missing: Vec<_> = routed.difference(&files).collect();
        let unknown: Vec<_> = files.difference(&routed).collect();
        assert!(
            missing.is_empty() && unknown.is_empty(),
            "{what} disagree with routes.rs: missing {missing:?}, not a route {unknown:?}"
        );
    }
    for route in ROUTES {
        let declared = &functions[route.file]["maxDuration"];
        assert_eq!(
            declared.as_u64(),
            Some(u64::from(route.max_duration)),
            "vercel.json gives {} maxDuration {declared}, routes.rs says {}",
            route.file,
            route.max_duration
        );
    }
}

#[test]
fn each_binary_serves_the_route_of_its_own_file() {
    let routes_source = read("shared/src/routes.rs");
    let mut names = BTreeSet::new();
    for (path, name) in cargo_bins() {
        assert!(
            names.insert(name.clone()),
            "Cargo.toml: two [[bin]]s are named {name}"
        );
        let source = read(&path);
        let served = served_route(&source)
            .unwrap_or_else(|| panic!("{path} (bin {name}) names no routes::ROUTE"));
        assert_eq!(
            declared_file(&routes_source, served),
            Some(path.as_str()),
            "{path} (bin {name}) serves routes::{served}, whose file is another"
        );
    }
}

#[test]
fn every_cron_calls_a_cron_route() {
    let vercel = vercel_json();
    let crons = vercel["crons"].as_array().expect("vercel.json has crons");
    assert!(!crons.is_empty());
    for cron in crons {
        let path = cron["path"].as_str().unwrap();
        let route = ROUTES.iter().find(|r| r.pattern == path);
        assert!(
            route.is_some_and(|r| matches!(r.handler, Handler::Cron(_))),
            "vercel.json cron {path} is not a Handler::Cron route in routes.rs"
        );
    }
}
