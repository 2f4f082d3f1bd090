//! The stages of one task's prediction, and the time spent in each.

use std::time::Duration;

/// A stage of a task, as the metrics and the request log name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    Fetch,
    Decode,
    Prepare,
    Infer,
    Finish,
    /// The whole task, from taking a slot to its results.
    Task,
}

impl Stage {
    pub const ALL: [Stage; 6] = [
        Stage::Fetch,
        Stage::Decode,
        Stage::Prepare,
        Stage::Infer,
        Stage::Finish,
        Stage::Task,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Fetch => "fetch",
            Stage::Decode => "decode",
            Stage::Prepare => "prepare",
            Stage::Infer => "infer",
            Stage::Finish => "finish",
            Stage::Task => "task",
        }
    }
}

/// Time spent in each stage, summed over the tasks of a request.
#[derive(Debug, Default, Clone, Copy)]
pub struct StageTimes {
    pub fetch: Duration,
    pub decode: Duration,
    pub prepare: Duration,
    pub infer: Duration,
    pub finish: Duration,
}

impl StageTimes {
    pub fn add(&mut self, other: &StageTimes) {
        self.fetch += other.fetch;
        self.decode += other.decode;
        self.prepare += other.prepare;
        self.infer += other.infer;
        self.finish += other.finish;
    }

    /// Each stage with its time (the whole task's is not kept here).
    pub fn by_stage(&self) -> [(Stage, Duration); 5] {
        [
            (Stage::Fetch, self.fetch),
            (Stage::Decode, self.decode),
            (Stage::Prepare, self.prepare),
            (Stage::Infer, self.infer),
            (Stage::Finish, self.finish),
        ]
    }
}
