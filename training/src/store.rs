//! Jobs on disk: one JSON file per job in `ML_STATE_DIR/jobs/`, replaced atomically (written
//! beside, then renamed), so a crash mid-write leaves the previous state, never half a file.

use std::{
    fs,
    path::{Path, PathBuf},
};

use super::record::Job;

/// What the store's one writer does next.
pub enum Write {
    Save(Box<Job>),
    Remove(u64),
}

pub struct Store {
    dir: PathBuf,
}

impl Store {
    /// The jobs folder in the state folder; made with the first job, so a server that never
    /// runs one leaves nothing behind.
    pub fn open(state_dir: &Path) -> Result<Self, String> {
        let dir = state_dir.join("jobs");
        if dir.exists() && !dir.is_dir() {
            return Err(format!("{} is not a folder", dir.display()));
        }
        Ok(Self { dir })
    }

    fn file(&self, id: u64) -> PathBuf {
        self.dir.join(format!("{id}.json"))
    }

    /// Every job kept, oldest first. Files that do not parse are reported and left alone.
    pub fn load(&self) -> Vec<Job> {
        let mut jobs = Vec::new();
        let Ok(entries) = fs::read_dir(&self.dir) else {
            return jobs;
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
        jobs
    }

    /// Forgets a job: its record goes. Blocking.
    pub fn remove(&self, id: u64) {
        if let Err(e) = fs::remove_file(self.file(id))
            && e.kind() != std::io::ErrorKind::NotFound
        {
            log::warn!("cannot remove the record of job {id}: {e}");
        }
    }

    /// Writes the job's state. Blocking.
    pub fn save(&self, job: &Job) -> Result<(), String> {
        let bytes = serde_json::to_vec_pretty(job).map_err(|e| e.to_string())?;
        fs::create_dir_all(&self.dir)
            .and_then(|()| ls_core::models::files::write_atomically(&self.file(job.id), &bytes))
            .map_err(|e| format!("cannot save job {} in {}: {e}", job.id, self.dir.display()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::{JobKind, JobOptions, JobState};

    #[test]
    fn jobs_round_trip_and_bad_files_are_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let mut job = Job::new(7, JobKind::Predict, 3, JobOptions::default(), "api");
        job.state = JobState::Running;
        store.save(&job).unwrap();
        store
            .save(&Job::new(2, JobKind::Train, 4, JobOptions::default(), "api"))
            .unwrap();
        fs::write(dir.path().join("jobs/9.json"), b"{not json").unwrap();
        let loaded = store.load();
        assert_eq!(loaded.iter().map(|j| j.id).collect::<Vec<_>>(), vec![2, 7]);
        assert_eq!(loaded[1].state, JobState::Running);
        assert_eq!(loaded[1].kind, JobKind::Predict);
    }
}
