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

use abi_stable::library::{LibHeader, LibraryError, RootModule, lib_header_from_path};
use log::{info, warn};
use plugin_api::PluginModuleRef;

use super::{Plugin, plugin::Abi, v1};

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

/// The shared libraries in `dir`, sorted (ONNX Runtime's own excepted).
pub fn library_files(dir: &Path) -> Result<Vec<PathBuf>, PluginError> {
    let entries = fs::read_dir(dir).map_err(|source| PluginError::Dir {
        dir: dir.to_path_buf(),
        source,
    })?;
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| is_library(p))
        .collect();
    files.sort();
    Ok(files)
}

/// Loads one library if it is a plugin whose name none of `loaded` has; logs why not
/// otherwise. Loaded libraries are never unloaded: a plugin's code may still be running.
pub fn load_file<'a>(file: &Path, mut loaded: impl Iterator<Item = &'a Plugin>) -> Option<Plugin> {
    match fs::read(file) {
        Ok(bytes) if contains(&bytes, LOADER_SYMBOL) => {}
        _ => return None,
    }
    match load(file) {
        Ok(plugin) => {
            if let Some(existing) = loaded.find(|p| p.name() == plugin.name()) {
                warn!(
                    "plugin {} from {} ignored: {} already provides it (plugins are never unloaded; restart the \
                     server to replace one)",
                    plugin.name(),
                    file.display(),
                    existing.file.display()
                );
                return None;
            }
            info!(
                "plugin {} {} loaded from {} (tasks: {})",
                plugin.name(),
                plugin.version(),
                file.display(),
                plugin.tasks().join(", ")
            );
            Some(plugin)
        }
        Err(message) => {
            warn!("plugin {} refused: {message}", file.display());
            None
        }
    }
}

/// Whether a file name could be a plugin library (`lib*.so`, not ONNX Runtime's own).
pub fn is_library_name(path: &Path) -> bool {
    path.file_name().and_then(|n| n.to_str()).is_some_and(|name| {
        name.starts_with(std::env::consts::DLL_PREFIX)
            && name.ends_with(std::env::consts::DLL_SUFFIX)
            && !name.contains("onnxruntime")
    })
}

fn is_library(path: &Path) -> bool {
    is_library_name(path) && path.is_file()
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

fn load(file: &Path) -> Result<Plugin, String> {
    let copy = private_copy(file)?;
    let header = lib_header_from_path(&copy);
    // The mapping outlives the file on Unix, so the copy need not stay on disk.
    let _ = fs::remove_file(&copy);
    let header = header.map_err(|e| explain(&e))?;
    let built = header.version_strings();
    let abi = match built.parsed().map(|v| v.major) {
        Ok(2) => Abi::V2(header.init_root_module::<PluginModuleRef>().map_err(|e| explain(&e))?),
        Ok(1) => Abi::V1(v1::Module::new(
            load_v1(header).map_err(|e| explain(&e))?,
            built.version.to_string(),
        )),
        _ => return Err(incompatible(built.version.as_str())),
    };
    Plugin::new(abi, file.to_path_buf()).map_err(|e| format!("it failed to describe itself: {e}"))
}

fn load_v1(header: &'static LibHeader) -> Result<plugin_api_v1::AdapterModuleRef, LibraryError> {
    header.init_root_module::<plugin_api_v1::AdapterModuleRef>()
}

fn incompatible(built: &str) -> String {
    let expected = PluginModuleRef::VERSION_STRINGS.version;
    format!(
        "it was built against plugin-api {built}, which is incompatible with this host's plugin-api {expected} \
         (it loads plugins built against 1.x and 2.x); rebuild it against plugin-api {expected}"
    )
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

/// One readable line for a load failure; abi_stable's own texts run to kilobytes.
fn explain(error: &LibraryError) -> String {
    let expected = PluginModuleRef::VERSION_STRINGS.version;
    match error {
        LibraryError::OpenError { err, .. } => shorten(&format!("it cannot be opened as a shared library: {err}")),
        LibraryError::GetSymbolError { .. } => "it is a shared library but not an ls-ml-backend plugin".to_string(),
        LibraryError::IncompatibleVersionNumber { actual_version, .. } => incompatible(&actual_version.to_string()),
        LibraryError::AbiInstability(_) | LibraryError::InvalidAbiHeader(_) | LibraryError::InvalidCAbi { .. } => {
            log::debug!("plugin ABI check: {error}");
            format!(
                "its ABI does not match this host's plugin-api {expected} (a type layout differs; rebuild it against \
                 plugin-api {expected})"
            )
        }
        other => shorten(&format!("incompatible plugin: {other}")),
    }
}

/// The text on one line, cut to a readable length.
fn shorten(text: &str) -> String {
    let one_line = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if one_line.chars().count() <= MAX_ERROR_LEN {
        return one_line;
    }
    let mut short: String = one_line.chars().take(MAX_ERROR_LEN).collect();
    short.push_str(" [...]");
    short
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_errors_are_cut_to_one_line() {
        let long = format!("layout mismatch {}\nmore\nlines", "x".repeat(5000));
        let s = shorten(&long);
        assert!(s.len() <= MAX_ERROR_LEN + 6, "{}", s.len());
        assert!(s.ends_with("[...]") && !s.contains('\n'));
        assert_eq!(shorten("short\n  text"), "short text");
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
