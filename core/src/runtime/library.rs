//! Finding the ONNX Runtime shared library, which this project never downloads at build time.

use std::path::{Path, PathBuf};

/// Where `scripts/setup-onnxruntime.sh` puts the library, relative to the repository root.
pub const VENDOR_DIR: &str = "vendor/onnxruntime";

#[cfg(target_os = "windows")]
const LIB_NAME: &str = "onnxruntime.dll";
#[cfg(target_os = "macos")]
const LIB_NAME: &str = "libonnxruntime.dylib";
#[cfg(not(any(target_os = "windows", target_os = "macos")))]
const LIB_NAME: &str = "libonnxruntime.so";

/// The library to load: `explicit` (ORT_DYLIB_PATH) if given, else the first of: next to the
/// executable, `vendor/onnxruntime/` in the working directory or a parent of the executable
/// (which covers `target/debug/` and `target/release/` inside a checkout).
pub fn locate(explicit: Option<&Path>) -> Result<PathBuf, String> {
    if let Some(path) = explicit {
        return if path.is_file() {
            Ok(path.to_path_buf())
        } else {
            Err(format!(
                "ORT_DYLIB_PATH points to {}, which is not a file",
                path.display()
            ))
        };
    }
    let mut candidates = Vec::new();
    let exe_dir = std::env::current_exe()
        .ok()
        .and_then(|p| p.parent().map(Path::to_path_buf));
    if let Some(dir) = &exe_dir {
        candidates.push(dir.join(LIB_NAME));
    }
    if let Ok(cwd) = std::env::current_dir() {
        candidates.push(cwd.join(VENDOR_DIR).join(LIB_NAME));
    }
    if let Some(dir) = &exe_dir {
        candidates.extend(dir.ancestors().skip(1).map(|a| a.join(VENDOR_DIR).join(LIB_NAME)));
    }
    candidates.iter().find(|c| c.is_file()).cloned().ok_or_else(|| {
        format!(
            "ONNX Runtime was not found (looked for {LIB_NAME} next to the executable and in {VENDOR_DIR}/). \
             Run scripts/setup-onnxruntime.sh, or set ORT_DYLIB_PATH to your libonnxruntime"
        )
    })
}
