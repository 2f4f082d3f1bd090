//! The plugins loaded so far, from the plugins folder. It only grows: libraries are never
//! unloaded, because a plugin's code may still be running.

use std::{
    collections::BTreeMap,
    fs,
    path::{Path, PathBuf},
    sync::{Arc, Mutex, PoisonError, RwLock},
    time::SystemTime,
};

use log::warn;

use super::{Plugin, library_files, load_file};

/// A library file's size and modification time: a changed file is tried again.
type Stamp = Option<(u64, Option<SystemTime>)>;

pub struct Catalog {
    dir: PathBuf,
    plugins: RwLock<Vec<Arc<Plugin>>>,
    /// Library files already tried, with their size and time, so each version is tried once.
    tried: Mutex<BTreeMap<PathBuf, Stamp>>,
}

impl Catalog {
    pub fn new(dir: PathBuf) -> Self {
        Self {
            dir,
            plugins: RwLock::new(Vec::new()),
            tried: Mutex::new(BTreeMap::new()),
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn all(&self) -> Vec<Arc<Plugin>> {
        self.plugins.read().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// Loads the libraries in the folder not tried before (or changed since). Returns how
    /// many new plugins were added. Blocking: it reads whole library files.
    pub fn load_new(&self) -> usize {
        let files = match library_files(&self.dir) {
            Ok(files) => files,
            Err(e) => {
                warn!("{e}");
                return 0;
            }
        };
        let mut added = 0;
        for file in files {
            let stamp = fs::metadata(&file).ok().map(|m| (m.len(), m.modified().ok()));
            {
                let mut tried = self.tried.lock().unwrap_or_else(PoisonError::into_inner);
                if tried.get(&file) == Some(&stamp) {
                    continue;
                }
                tried.insert(file.clone(), stamp);
            }
            let current = self.all();
            if let Some(plugin) = load_file(&file, current.iter().map(|p| p.as_ref())) {
                self.plugins
                    .write()
                    .unwrap_or_else(PoisonError::into_inner)
                    .push(Arc::new(plugin));
                added += 1;
            }
        }
        added
    }
}
