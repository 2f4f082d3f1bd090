//! Discovering plugin libraries and loading them through abi_stable.
//!
//! Two measured pitfalls shape this code: `RootModule::load_from_file` caches one module per
//! type forever (a second plugin would come back as the first), so each library is loaded
//! through its header; and overwriting a mapped `.so` in place (a rebuild while the host
//! runs) crashes the process, so each library is first copied to a private path.

use std::{
    fs,
    path::{Path, PathBuf},
    sync::atomic::{AtomicUsize, Ordering},
};

use abi_stable::library::{RootModule, lib_header_from_path};
use log::{info, warn};
use plugin_api::AdapterModuleRef;

use super::Plugin;

/// The symbol every plugin exports; a library without it is not a plugin.
const LOADER_SYMBOL: &[u8] = b"_1as_0lib_1header_0root_bmodule_bloader";
/// Longest abi_stable error we print: its layout mismatch reports run to kilobytes.
const MAX_ERROR_LEN: usize = 300;

#[derive(Debug, thiserror::Error)]
pub enum PluginError {
    #[error("cannot read plugin folder {dir}: {source}")]
    Dir { dir: PathBuf, source: std::io::Error },
}

static COPIES: AtomicUsize = AtomicUsize::new(0);

/// Loads every plugin library in `dir`. A library that cannot be loaded is logged and skipped.
pub fn load_dir(dir: &Path) -> Result<Vec<Plugin>, PluginError> {
    let entries = fs::read_dir(dir).map_err(|source| PluginError::Dir {
        dir: dir.to_path_buf(),
        source,
    })?;
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| is_library(p))
        .collect();
    files.sort();
    let mut plugins: Vec<Plugin> = Vec::new();
    for file in files {
        match fs::read(&file) {
            Ok(bytes) if contains(&bytes, LOADER_SYMBOL) => {}
            _ => continue,
        }
        match load(&file) {
            Ok(plugin) => {
                if let Some(existing) = plugins.iter().find(|p| p.name() == plugin.name()) {
                    warn!(
                        "plugin {} from {} ignored: {} already provides it",
                        plugin.name(),
                        file.display(),
                        existing.file.display()
                    );
                    continue;
                }
                info!(
                    "plugin {} {} loaded from {} (tasks: {})",
                    plugin.name(),
                    plugin.version(),
                    file.display(),
                    plugin.tasks().join(", ")
                );
                plugins.push(plugin);
            }
            Err(message) => warn!("plugin {} refused: {message}", file.display()),
        }
    }
    Ok(plugins)
}

fn is_library(path: &Path) -> bool {
    let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
        return false;
    };
    name.starts_with(std::env::consts::DLL_PREFIX)
        && name.ends_with(std::env::consts::DLL_SUFFIX)
        && !name.contains("onnxruntime")
        && path.is_file()
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

fn load(file: &Path) -> Result<Plugin, String> {
    let copy = private_copy(file)?;
    let header = lib_header_from_path(&copy);
    // The mapping outlives the file on Unix, so the copy need not stay on disk.
    let _ = fs::remove_file(&copy);
    let module = header
        .and_then(|h| h.init_root_module::<AdapterModuleRef>())
        .map_err(|e| shorten(&e.to_string()))?;
    Plugin::new(module, file.to_path_buf()).map_err(|e| format!("it failed to describe itself: {e}"))
}

fn private_copy(file: &Path) -> Result<PathBuf, String> {
    let dir = std::env::temp_dir().join(format!("ls-ml-backend-{}", std::process::id()));
    fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let n = COPIES.fetch_add(1, Ordering::Relaxed);
    let name = file
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let copy = dir.join(format!("{n}-{name}"));
    fs::copy(file, &copy).map_err(|e| format!("cannot copy it to {}: {e}", copy.display()))?;
    Ok(copy)
}

/// First line of an abi_stable error, cut to a readable length, with the expected version.
fn shorten(error: &str) -> String {
    let first = error.lines().find(|l| !l.trim().is_empty()).unwrap_or(error).trim();
    let mut short: String = first.chars().take(MAX_ERROR_LEN).collect();
    if short.len() < first.len() || error.lines().count() > 1 {
        short.push_str(" [...]");
    }
    let expected = AdapterModuleRef::VERSION_STRINGS;
    format!(
        "incompatible plugin ({short}); this host expects plugin-api {}",
        expected.version
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_errors_are_cut_to_one_line() {
        let long = format!("layout mismatch {}\nmore\nlines", "x".repeat(5000));
        let s = shorten(&long);
        assert!(s.len() < MAX_ERROR_LEN + 120, "{}", s.len());
        assert!(s.contains("[...]"));
        assert!(s.contains("plugin-api 1."));
    }

    #[test]
    fn finds_the_loader_symbol() {
        assert!(contains(
            b"....._1as_0lib_1header_0root_bmodule_bloader...",
            LOADER_SYMBOL
        ));
        assert!(!contains(b"nothing here", LOADER_SYMBOL));
    }

    #[test]
    fn loader_symbol_matches_abi_stable() {
        assert_eq!(LOADER_SYMBOL, abi_stable::library::ROOT_MODULE_LOADER_NAME.as_bytes());
    }
}
