//! Adapter plugins: finding and loading their libraries, and calling them safely.

mod adapter;
mod loader;

pub use adapter::Plugin;
pub use loader::{is_library_name, library_files, load_file};
