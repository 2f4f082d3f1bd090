//! Where job records are kept, behind [`JobStore`]: the queue writes through it and reads it
//! back at start. [`LocalJobs`], one JSON file per job in `ML_STATE_DIR/jobs/`, is the default;
//! a store shared by several replicas implements the same trait.

use std::{
    fs,
    path::{Path, PathBuf},
};

use super::record::Job;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{0} is not a folder")]
    NotAFolder(PathBuf),
    #[error("cannot encode job {id}: {source}")]
    Encode { id: u64, source: serde_json::Error },
    #[error("cannot {what}: {source}")]
    Io { what: String, source: std::io::Error },
}

/// Job records. Every method blocks (files, a database): the queue calls them from its one
/// writer thread, in order, so a later state never loses to an earlier one.
pub trait JobStore: Send + Sync + 'static {
    /// Every job kept, oldest first. A record that does not read is reported and skipped: one
    /// bad record never hides the others.
    fn load(&self) -> Result<Vec<Job>, StoreError>;
    /// Writes a job's state, replacing the one kept.
    fn save(&self, job: &Job) -> Result<(), StoreError>;
    /// Forgets a job; forgetting one that is not kept is no error.
    fn remove(&self, id: u64) -> Result<(), StoreError>;
}

/// What the store's one writer does next.
pub enum Write {
    Save(Box<Job>),
    Remove(u64),
}

/// One JSON file per job, replaced atomically (written beside, then renamed), so a crash
/// mid-write leaves the previous state, never half a file.
pub struct LocalJobs {
    dir: PathBuf,
}

impl LocalJobs {
    /// The jobs folder in the state folder; made with the first job, so a server that never
    /// runs one leaves nothing behind.
    pub fn open(state_dir: &Path) -> Result<Self, StoreError> {
        let dir = state_dir.join("jobs");
        if dir.exists() && !dir.is_dir() {
            return Err(StoreError::NotAFolder(dir));
        }
        Ok(Self { dir })
    }

    fn file(&self, id: u64) -> PathBuf {
        self.dir.join(format!("{id}.json"))
    }
}

impl JobStore for LocalJobs {
    fn load(&self) -> Result<Vec<Job>, StoreError> {
        let mut jobs = Vec::new();
        let entries = match fs::read_dir(&self.dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(jobs),
            Err(source) => {
                return Err(StoreError::Io {
                    what: format!("read the jobs folder {}", self.dir.display()),
                    source,
                });
            }
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.extension().and_then(|e| e.to_str()) != Some("json") {
                continue;
            }
            match fs::read(&path)
                .map_err(|e| e.to_string())
                .and_then(|bytes| serde_json::from_slice::<Job>(&bytes).map_err(|e| e.to_string()))
            {
                Ok(job) => jobs.push(job),
                Err(e) => log::warn!("ignoring the job file {}: {e}", path.display()),
            }
        }
        jobs.sort_by_key(|j| j.id);
        Ok(jobs)
    }

    fn remove(&self, id: u64) -> Result<(), StoreError> {
        match fs::remove_file(self.file(id)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(StoreError::Io {
                what: format!("remove the record of job {id}"),
                source: e,
            }),
            _ => Ok(()),
        }
    }

    fn save(&self, job: &Job) -> Result<(), StoreError> {
        let bytes = serde_json::to_vec_pretty(job).map_err(|source| StoreError::Encode { id: job.id, source })?;
        fs::create_dir_all(&self.dir)
            .and_then(|()| ls_core::models::files::write_atomically(&self.file(job.id), &bytes))
            .map_err(|source| StoreError::Io {
                what: format!("save job {} in {}", job.id, self.dir.display()),
                source,
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::{JobKind, JobOptions, JobState};

    #[test]
    fn jobs_round_trip_and_bad_files_are_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalJobs::open(dir.path()).unwrap();
        assert!(store.load().unwrap().is_empty(), "no folder yet: no jobs");
        let mut job = Job::new(7, JobKind::Predict, 3, JobOptions::default(), "api");
        job.state = JobState::Running;
        store.save(&job).unwrap();
        store
            .save(&Job::new(2, JobKind::Train, 4, JobOptions::default(), "api"))
            .unwrap();
        fs::write(dir.path().join("jobs/9.json"), b"{not json").unwrap();
        let loaded = store.load().unwrap();
        assert_eq!(loaded.iter().map(|j| j.id).collect::<Vec<_>>(), vec![2, 7]);
        assert_eq!(loaded[1].state, JobState::Running);
        assert_eq!(loaded[1].kind, JobKind::Predict);
        store.remove(7).unwrap();
        store.remove(7).unwrap();
        assert_eq!(store.load().unwrap().len(), 1);
    }

    #[test]
    fn a_file_where_the_folder_goes_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("jobs"), b"").unwrap();
        assert!(matches!(LocalJobs::open(dir.path()), Err(StoreError::NotAFolder(_))));
    }
}
