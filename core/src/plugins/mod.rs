//! Adapter plugins: finding and loading their libraries (plugin-api 2.x, and 1.x through a
//! shim), and calling them safely.

mod catalog;
mod loader;
mod plugin;
mod v1;

pub use catalog::Catalog;
pub use loader::{is_library_name, library_files, load_file};
pub use plugin::{Adapter, Plugin};
