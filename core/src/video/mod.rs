//! Videos: what ffprobe says of a file ([`probe`]), its frames streamed out of ffmpeg
//! ([`decode`]), and where each frame lands on Label Studio's timeline ([`timeline`]).
//!
//! ffmpeg runs as a child process that writes raw RGB frames to a pipe, rather than through a
//! binding: Debian's ffmpeg package is all it needs (no headers, no build-time linking, no
//! version coupling between the binding and the system's libav*), a crash or hang in a decoder
//! kills only the child, and the child can be killed on a timeout without unsafe code.

pub mod decode;
pub mod probe;
pub mod timeline;

use std::{path::PathBuf, time::Duration};

use probe::VideoInfo;

/// Given to ffprobe and ffmpeg before their input. A video is read from a local file only (no
/// network, no other files: a "video" that is really an HLS playlist or a concat list would
/// otherwise make them read what it names), and only by the demuxers of real video containers,
/// whatever the build of ffmpeg allows by default.
pub const INPUT_WHITELISTS: [&str; 4] = [
    "-protocol_whitelist",
    "file,pipe",
    "-format_whitelist",
    "mov,matroska,avi,mpegts,flv,ogg,mpeg,asf",
];

/// The programs and the limits a video task runs under.
#[derive(Debug, Clone)]
pub struct VideoSettings {
    pub ffmpeg: PathBuf,
    pub ffprobe: PathBuf,
    pub max_bytes: u64,
    pub max_frames: u64,
    pub max_seconds: f64,
    pub max_frame_pixels: u64,
    pub frame_step: u32,
    /// A child that delivers nothing for this long is killed.
    pub stall: Duration,
}

impl VideoSettings {
    /// Checks what ffprobe found against the limits, before anything is decoded.
    pub fn check(&self, info: &VideoInfo) -> Result<(), VideoError> {
        if info.width as u64 * info.height as u64 > self.max_frame_pixels {
            return Err(VideoError::FrameTooLarge {
                width: info.width,
                height: info.height,
                limit: self.max_frame_pixels,
            });
        }
        if info.frames > self.max_frames {
            return Err(VideoError::TooManyFrames {
                frames: info.frames,
                limit: self.max_frames,
            });
        }
        if info.duration > self.max_seconds {
            return Err(VideoError::TooLong {
                seconds: info.duration,
                limit: self.max_seconds,
            });
        }
        if info.frames == 0 && info.duration <= 0.0 {
            return Err(VideoError::NoFrames);
        }
        Ok(())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum VideoError {
    #[error("cannot start {program}: {message} (install ffmpeg, or set ML_FFMPEG / ML_FFPROBE)")]
    Spawn { program: String, message: String },
    #[error("ffprobe cannot read the file: {0}")]
    Unreadable(String),
    #[error("the file has no video stream{0}")]
    NoVideo(String),
    #[error("the video has no frames")]
    NoFrames,
    #[error("the video's frames are {width}x{height}, more than ML_MAX_IMAGE_PIXELS ({limit}) pixels")]
    FrameTooLarge { width: u32, height: u32, limit: u64 },
    #[error("the video has {frames} frames, more than ML_VIDEO_MAX_FRAMES ({limit})")]
    TooManyFrames { frames: u64, limit: u64 },
    #[error("the video lasts {seconds:.1} s, longer than ML_VIDEO_MAX_SECONDS ({limit})")]
    TooLong { seconds: f64, limit: f64 },
    #[error("{program} sent nothing for {secs} s and was stopped (ML_VIDEO_STALL_SECS)")]
    Stalled { program: &'static str, secs: u64 },
    #[error("ffprobe did not finish reading the file within {secs} s and was stopped (ML_VIDEO_STALL_SECS)")]
    ProbeTimedOut { secs: u64 },
    #[error("ffmpeg failed after {frames} frames: {message}")]
    Decode { frames: u64, message: String },
}
