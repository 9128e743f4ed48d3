//! The crate map tells the truth: the root README's table and each crate's README name exactly
//! the workspace crates that crate depends on (normal dependencies, optional ones included), as
//! `cargo metadata` reports them.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failure is a finding

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

/// Every workspace crate, by name: its directory and the workspace crates it depends on.
fn workspace() -> BTreeMap<String, (PathBuf, BTreeSet<String>)> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let out = Command::new(cargo)
        .args([
            "metadata",
            "--format-version",
            "1",
            "--no-deps",
            "--offline",
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("cargo metadata runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let meta: serde_json::Value = serde_json::from_slice(&out.stdout).expect("metadata JSON");
    let packages = meta["packages"].as_array().expect("packages");
    let names: BTreeSet<String> = packages
        .iter()
        .map(|p| p["name"].as_str().expect("name").to_owned())
        .collect();
    // Unpublished crates too (the report generator): the map names every crate.
    packages
        .iter()
        .map(|p| {
            let name = p["name"].as_str().expect("name").to_owned();
            let manifest = PathBuf::from(p["manifest_path"].as_str().expect("manifest"));
            let deps = p["dependencies"]
                .as_array()
                .expect("dependencies")
                .iter()
                .filter(|d| d["kind"].is_null())
                .map(|d| d["name"].as_str().expect("dep name").to_owned())
                .filter(|d| names.contains(d))
                .collect();
            (name, (manifest.parent().expect("dir").to_owned(), deps))
        })
        .collect()
}

/// The crate names in backticks in `text`.
fn named(text: &str) -> BTreeSet<String> {
    text.split('`')
        .skip(1)
        .step_by(2)
        .filter(|s| s.starts_with("mynacard"))
        .map(str::to_owned)
        .collect()
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn each_crate_readme_names_its_workspace_dependencies() {
    let mut wrong = Vec::new();
    for (name, (dir, deps)) in workspace() {
        if name == "mynacard-workspace-examples" {
            continue;
        }
        let readme = read(&dir.join("README.md"));
        let Some(line) = readme.lines().find(|l| l.starts_with("Depends on:")) else {
            wrong.push(format!("{name}: README.md has no `Depends on:` line"));
            continue;
        };
        let said = named(line);
        if said != deps {
            wrong.push(format!(
                "{name}: README says {said:?}, Cargo.toml has {deps:?}"
            ));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn the_root_crate_map_names_every_crate_and_its_workspace_dependencies() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let readme = read(&root.join("README.md"));
    let rows: BTreeMap<String, BTreeSet<String>> = readme
        .lines()
        .skip_while(|l| !l.starts_with("| Crate | Depends on |"))
        .skip(2)
        .take_while(|l| l.starts_with('|'))
        .map(|l| {
            let cells: Vec<&str> = l.split('|').collect();
            let crates = named(cells.get(1).copied().unwrap_or_default());
            assert_eq!(crates.len(), 1, "one crate per row: {l}");
            let name = crates.into_iter().next().expect("one");
            (name, named(cells.get(2).copied().unwrap_or_default()))
        })
        .collect();
    assert!(
        !rows.is_empty(),
        "README.md has no `| Crate | Depends on | Job |` table"
    );
    let mut wrong = Vec::new();
    let crates = workspace();
    for (name, (_, deps)) in &crates {
        if name == "mynacard-workspace-examples" {
            continue;
        }
        match rows.get(name) {
            None => wrong.push(format!("{name}: not in the crate map")),
            Some(said) if said != deps => wrong.push(format!(
                "{name}: the map says {said:?}, Cargo.toml has {deps:?}"
            )),
            Some(_) => {}
        }
    }
    for name in rows.keys() {
        if !crates.contains_key(name) {
            wrong.push(format!("{name}: in the crate map but not in the workspace"));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}
