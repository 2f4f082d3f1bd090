//! The layout's rules (docs/architecture.md): our crates depend on one another only as the
//! layout allows (read from `cargo metadata`); inside each crate, the top-level modules import
//! one another one way, without circles (read from the source); and only the edge (start-up
//! and the command line) reads the configuration; every other part gets its own settings.

use std::{
    collections::{BTreeMap, BTreeSet},
    path::{Path, PathBuf},
};

fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("source folder").flatten() {
        let path = entry.path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The top-level module a source file belongs to (`lib` for lib.rs and main.rs).
fn module_of(src: &Path, file: &Path) -> String {
    let relative = file.strip_prefix(src).expect("inside src");
    let first = relative.components().next().expect("a component");
    let name = first.as_os_str().to_string_lossy();
    let name = name.trim_end_matches(".rs");
    if name == "main" { "lib".into() } else { name.to_string() }
}

/// The modules a file names as `crate::x`, outside its unit tests.
fn imports(text: &str) -> BTreeSet<String> {
    let code = text.split("#[cfg(test)]\nmod tests").next().unwrap_or(text);
    let mut found = BTreeSet::new();
    for (at, _) in code.match_indices("crate::") {
        let rest = &code[at + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            // `crate::{a, b::c, d::{e, f}}`: the first segment of each path at depth 0.
            let mut depth = 0;
            let mut start = true;
            let mut word = String::new();
            for c in group.chars() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => break,
                    '}' => depth -= 1,
                    ',' if depth == 0 => {
                        if !word.is_empty() {
                            found.insert(std::mem::take(&mut word));
                        }
                        start = true;
                    }
                    c if start && (c.is_alphanumeric() || c == '_') => word.push(c),
                    _ if start && !word.is_empty() => {
                        found.insert(std::mem::take(&mut word));
                        start = false;
                    }
                    _ => {}
                }
            }
            if !word.is_empty() {
                found.insert(word);
            }
        } else {
            let word: String = rest.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
            if !word.is_empty() {
                found.insert(word);
            }
        }
    }
    found
}

/// The module graph of the crate in `dir` (relative to the repository).
fn graph(dir: &str) -> BTreeMap<String, BTreeSet<String>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(dir).join("src");
    let mut files = Vec::new();
    sources(&src, &mut files);
    let modules: BTreeSet<String> = files.iter().map(|f| module_of(&src, f)).collect();
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for file in &files {
        let from = module_of(&src, file);
        let text = std::fs::read_to_string(file).expect("source");
        let entry = graph.entry(from.clone()).or_default();
        for to in imports(&text) {
            if to != from && modules.contains(&to) {
                entry.insert(to);
            }
        }
    }
    graph
}

/// A circle through `start`, if there is one.
fn circle(graph: &BTreeMap<String, BTreeSet<String>>, start: &str) -> Option<Vec<String>> {
    fn walk(
        graph: &BTreeMap<String, BTreeSet<String>>,
        at: &str,
        start: &str,
        path: &mut Vec<String>,
        seen: &mut BTreeSet<String>,
    ) -> bool {
        for next in graph.get(at).into_iter().flatten() {
            if next == start {
                return true;
            }
            if seen.insert(next.clone()) {
                path.push(next.clone());
                if walk(graph, next, start, path, seen) {
                    return true;
                }
                path.pop();
            }
        }
        false
    }
    let mut path = vec![start.to_string()];
    walk(graph, start, start, &mut path, &mut BTreeSet::new()).then(|| {
        path.push(start.to_string());
        path
    })
}

#[test]
fn the_parser_sees_every_import_form() {
    let text =
        "use crate::{a, b::c, d::{e, f}, g};\nfn x() { crate::h::y(); }\n#[cfg(test)]\nmod tests { use crate::z; }";
    let found: Vec<String> = imports(text).into_iter().collect();
    assert_eq!(found, ["a", "b", "d", "g", "h"]);
    let looped = BTreeMap::from([
        ("a".to_string(), BTreeSet::from(["b".to_string()])),
        ("b".to_string(), BTreeSet::from(["a".to_string()])),
    ]);
    assert_eq!(circle(&looped, "a"), Some(vec!["a".into(), "b".into(), "a".into()]));
}

/// Every crate of ours that is built from modules of its own.
const LAYERED: [&str; 4] = ["host", "core", "training", "labelstudio"];

#[test]
fn each_crate_s_modules_import_one_way() {
    for dir in LAYERED {
        let graph = graph(dir);
        assert!(graph.len() > 1, "{dir}: no modules found");
        let circles: Vec<String> = graph
            .keys()
            .filter_map(|m| circle(&graph, m))
            .map(|c| c.join(" -> "))
            .collect();
        assert!(circles.is_empty(), "import circles in {dir}:\n{}", circles.join("\n"));
    }
    // Only the edge reads the configuration; the rest get settings structs from it.
    let graph = graph("host");
    let readers: Vec<&String> = graph
        .iter()
        .filter(|(_, to)| to.contains("config"))
        .map(|(from, _)| from)
        .collect();
    assert_eq!(readers, ["cli", "server"], "modules that import config");
}

/// Which of our crates each may depend on (normal, build and dev dependencies alike). A crate
/// of ours missing here fails the test, so a new one is placed in the layout on purpose.
fn allowed() -> BTreeMap<&'static str, &'static [&'static str]> {
    BTreeMap::from([
        ("plugin-api", &[][..]),
        ("mask-geometry", &[][..]),
        ("ls-tracking", &["mask-geometry"][..]),
        ("yolov8-common", &["plugin-api"][..]),
        ("yolov8-detect", &["plugin-api", "yolov8-common"][..]),
        ("yolov8-seg", &["plugin-api", "yolov8-common", "mask-geometry"][..]),
        ("yolov8-cls", &["plugin-api", "yolov8-common"][..]),
        ("yolov8-obb", &["plugin-api", "yolov8-common"][..]),
        ("yolov8-pose", &["plugin-api", "yolov8-common"][..]),
        ("sam", &["plugin-api", "mask-geometry"][..]),
        ("faulty-plugin", &["plugin-api", "yolov8-common"][..]),
        ("labelstudio-protocol", &["plugin-api", "mask-geometry"][..]),
        ("ls-labelstudio", &["labelstudio-protocol"][..]),
        (
            "ls-core",
            &[
                "plugin-api",
                "mask-geometry",
                "ls-tracking",
                "labelstudio-protocol",
                "ls-labelstudio",
            ][..],
        ),
        (
            "ls-training",
            &[
                "plugin-api",
                "mask-geometry",
                "labelstudio-protocol",
                "ls-labelstudio",
                "ls-core",
            ][..],
        ),
        (
            "ls-ml-backend",
            &[
                "plugin-api",
                "mask-geometry",
                "labelstudio-protocol",
                "ls-labelstudio",
                "ls-core",
                "ls-training",
            ][..],
        ),
        (
            "ls-ml-bench",
            &["ls-ml-backend", "labelstudio-protocol", "plugin-api", "yolov8-common"][..],
        ),
    ])
}

#[test]
fn crates_depend_one_way() {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = std::process::Command::new(cargo)
        .args(["metadata", "--format-version", "1", "--no-deps", "--offline"])
        .current_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join(".."))
        .output()
        .expect("cargo metadata");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let metadata: serde_json::Value = serde_json::from_slice(&out.stdout).expect("metadata JSON");
    let packages = metadata["packages"].as_array().expect("packages");
    let ours: BTreeSet<&str> = packages.iter().filter_map(|p| p["name"].as_str()).collect();
    let allowed = allowed();
    let mut wrong = Vec::new();
    for package in packages {
        let name = package["name"].as_str().expect("name");
        let Some(may) = allowed.get(name) else {
            wrong.push(format!("{name} is not in the layout"));
            continue;
        };
        for dep in package["dependencies"].as_array().into_iter().flatten() {
            let dep = dep["name"].as_str().expect("dependency name");
            if ours.contains(dep) && !may.contains(&dep) {
                wrong.push(format!("{name} -> {dep}"));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "dependencies outside the layout:\n{}",
        wrong.join("\n")
    );
    let listed: BTreeSet<&str> = allowed.keys().copied().collect();
    assert_eq!(ours, listed, "the workspace's crates and the layout's");
}
