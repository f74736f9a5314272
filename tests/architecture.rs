//! The module graph stays as the design says: no import cycle between the top-level modules of
//! `src/` (data flows one way: source -> model -> reconcile -> index -> dns), and the DNS side
//! never names a Kubernetes type. Read from the source text: every `crate::<module>` path outside
//! comments and test modules is an edge.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The code of a file without its comments and its `#[cfg(test)]` module.
fn code(text: &str) -> String {
    let text = text.split("#[cfg(test)]").next().unwrap_or("");
    text.lines().map(|l| l.split("//").next().unwrap_or("")).collect::<Vec<_>>().join("\n")
}

/// `module -> modules it names`, for the top-level modules of `src/` (the crate root excluded).
fn graph() -> BTreeMap<String, BTreeSet<String>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for file in files {
        let rel = file.strip_prefix(&src).unwrap();
        let top = rel.components().next().unwrap().as_os_str().to_string_lossy().trim_end_matches(".rs").to_owned();
        if top == "lib" || top == "main" {
            continue;
        }
        let text = code(&std::fs::read_to_string(&file).unwrap());
        let set = edges.entry(top.clone()).or_default();
        for (i, _) in text.match_indices("crate::") {
            let name: String = text[i + 7..].chars().take_while(|c| c.is_ascii_lowercase() || *c == '_').collect();
            if !name.is_empty() && name != top {
                set.insert(name);
            }
        }
    }
    edges
}

#[test]
fn top_level_modules_import_each_other_without_a_cycle() {
    let edges = graph();
    // Kahn's algorithm: repeatedly remove modules that import nothing left.
    let mut left = edges.clone();
    loop {
        let free: Vec<String> = left
            .iter()
            .filter(|(_, deps)| deps.iter().all(|d| !left.contains_key(d)))
            .map(|(m, _)| m.clone())
            .collect();
        if free.is_empty() {
            break;
        }
        for m in free {
            left.remove(&m);
        }
    }
    let shown: Vec<String> = edges.iter().map(|(m, d)| format!("{m} -> {d:?}")).collect();
    assert!(
        left.is_empty(),
        "an import cycle among {:?}; graph:\n{}",
        left.keys().collect::<Vec<_>>(),
        shown.join("\n")
    );
    // The direction of the data flow, edge by edge.
    for (from, to) in [
        ("index", "reconcile"),
        ("index", "dns"),
        ("index", "journal"),
        ("journal", "dns"),
        ("journal", "reconcile"),
        ("dns", "reconcile"),
        ("model", "index"),
        ("dns", "config"),
    ] {
        assert!(!edges.get(from).is_some_and(|d| d.contains(to)), "{from} must not import {to}:\n{}", shown.join("\n"));
    }
}

#[test]
fn the_dns_side_never_names_a_kubernetes_type() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/dns");
    let mut files = Vec::new();
    rust_files(&dir, &mut files);
    for file in files {
        let text = code(&std::fs::read_to_string(&file).unwrap());
        assert!(
            !text.contains("k8s_openapi") && !text.contains("kube::"),
            "{} names a Kubernetes type",
            file.display()
        );
    }
}
