//! A video's frames, streamed out of an ffmpeg child process as raw RGB over a pipe: one
//! frame in memory per slot of a small channel, whatever the video's length.
//!
//! ffmpeg applies the file's rotation (its default autorotate), passes every decoded frame
//! through once (`-vsync passthrough`: no frames dropped or repeated for a constant rate),
//! and reports each frame's presentation time through the `showinfo` filter on stderr.

use std::{
    collections::VecDeque,
    io::{BufRead, BufReader, Read},
    path::Path,
    process::{Child, Command, Stdio},
    sync::Arc,
    time::Duration,
};

use parking_lot::Mutex;
use tokio::sync::mpsc;

use super::{VideoError, probe::VideoInfo};
use crate::imaging::RgbImage;

/// Decoded frames the reader may hold ahead of the consumer.
const AHEAD: usize = 2;
/// Lines of ffmpeg's own messages kept for an error.
const KEPT_LINES: usize = 8;

pub struct DecodedFrame {
    /// 0-based, in presentation order, counting every frame of the video (also those the
    /// frame step skips).
    pub index: u64,
    pub image: Arc<RgbImage>,
}

/// The frames of one video, in order. Dropping it kills ffmpeg.
pub struct FrameStream {
    frames: mpsc::Receiver<Result<DecodedFrame, VideoError>>,
    child: Arc<Mutex<Option<Child>>>,
    stderr: Arc<Mutex<Said>>,
    decoded: Arc<Mutex<u64>>,
    stall: Duration,
}

/// What ffmpeg printed: each frame's time, and its last other lines.
#[derive(Default)]
struct Said {
    times: Vec<f64>,
    lines: VecDeque<String>,
}

impl FrameStream {
    /// Starts ffmpeg on the file. Every `step`th frame is sent on, as Ultralytics' vid_stride
    /// picks them: the `step`th, the `2 * step`th, ...
    /// Blocking (starts a process and two reader threads).
    /// More than `max_frames` decoded frames (a file whose container undercounts them) stop it.
    pub fn start(
        ffmpeg: &Path,
        file: &Path,
        info: &VideoInfo,
        step: u32,
        max_frames: u64,
        stall: Duration,
    ) -> Result<Self, VideoError> {
        use std::os::unix::process::CommandExt;
        let mut child = Command::new(ffmpeg)
            // Its own process group, so that a kill reaches whatever it started too.
            .process_group(0)
            .args(["-nostdin", "-hide_banner", "-nostats", "-loglevel", "info"])
            .args(super::INPUT_WHITELISTS)
            .arg("-i")
            .arg(file)
            .arg("-map")
            .arg(format!("0:{}", info.stream_index))
            .args([
                "-an",
                "-sn",
                "-dn",
                "-vsync",
                "passthrough",
                "-vf",
                "showinfo=checksum=0",
            ])
            .args(["-f", "rawvideo", "-pix_fmt", "rgb24", "pipe:1"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| VideoError::Spawn {
                program: ffmpeg.display().to_string(),
                message: e.to_string(),
            })?;
        let (Some(stdout), Some(stderr)) = (child.stdout.take(), child.stderr.take()) else {
            let _ = child.kill();
            let _ = child.wait();
            return Err(VideoError::Spawn {
                program: ffmpeg.display().to_string(),
                message: "its output pipes could not be opened".into(),
            });
        };
        let child = Arc::new(Mutex::new(Some(child)));
        let said = Arc::new(Mutex::new(Said::default()));
        let decoded = Arc::new(Mutex::new(0));
        let (tx, rx) = mpsc::channel(AHEAD);

        // From here on a failure to start a thread must not leave the child behind.
        let stream = FrameStream {
            frames: rx,
            child,
            stderr: said,
            decoded,
            stall,
        };
        let (child, said, decoded) = (&stream.child, &stream.stderr, &stream.decoded);
        let stderr_said = Arc::clone(said);
        let stderr_reader = std::thread::Builder::new()
            .name("ffmpeg-stderr".into())
            .spawn(move || read_stderr(stderr, &stderr_said))
            .map_err(|e| spawn_error(ffmpeg, e))?;
        let (width, height) = (info.width, info.height);
        let (reader_child, reader_said, reader_decoded) = (Arc::clone(child), Arc::clone(said), Arc::clone(decoded));
        std::thread::Builder::new()
            .name("ffmpeg-frames".into())
            .spawn(move || {
                let ended = read_frames(stdout, width, height, step.max(1), max_frames, &tx, &reader_decoded);
                if let Err(Stop::TooManyFrames) = ended {
                    // Not ffmpeg's fault: stop it before reading its last words.
                    if let Some(mut c) = take(&reader_child) {
                        let _ = c.kill();
                        let _ = c.wait();
                    }
                }
                // ffmpeg's last words (the reason it failed) are on stderr: read them all.
                let _ = stderr_reader.join();
                let frames = *reader_decoded.lock();
                let status = take(&reader_child).map(|mut c| c.wait());
                let outcome = match (ended, status) {
                    (Err(Stop::TooManyFrames), _) => Err(VideoError::TooManyFrames {
                        frames,
                        limit: max_frames,
                    }),
                    // A crash or an error exit says more than the broken pipe it left.
                    (_, Some(Ok(status))) if !status.success() => Err(VideoError::Decode {
                        frames,
                        message: last_words(&reader_said, status),
                    }),
                    (Err(Stop::Broken(message)), _) => Err(VideoError::Decode { frames, message }),
                    (Ok(()), Some(Err(e))) => Err(VideoError::Decode {
                        frames,
                        message: e.to_string(),
                    }),
                    _ if frames == 0 => Err(VideoError::NoFrames),
                    _ => return,
                };
                let _ = tx.blocking_send(outcome);
            })
            .map_err(|e| spawn_error(ffmpeg, e))?;
        Ok(stream)
    }

    /// The next frame, None at the end. A stalled ffmpeg is killed and reported.
    pub async fn next(&mut self) -> Option<Result<DecodedFrame, VideoError>> {
        match tokio::time::timeout(self.stall, self.frames.recv()).await {
            Ok(next) => next,
            Err(_) => {
                self.kill();
                Some(Err(VideoError::Stalled {
                    program: "ffmpeg",
                    secs: self.stall.as_secs(),
                }))
            }
        }
    }

    /// Frames decoded so far, skipped ones included: after the end, the video's frame count.
    pub fn decoded(&self) -> u64 {
        *self.decoded.lock()
    }

    /// Each decoded frame's presentation time in seconds, as ffmpeg reported it. After the
    /// end, one per frame.
    pub fn times(&self) -> Vec<f64> {
        self.stderr.lock().times.clone()
    }

    fn kill(&self) {
        if let Some(mut child) = take(&self.child) {
            if let Ok(group) = libc::pid_t::try_from(child.id()) {
                // SAFETY: kill(2) on the group we created; no memory is involved.
                unsafe { libc::kill(-group, libc::SIGKILL) };
            }
            let _ = child.kill();
            // Reaped off the executor; a killed process exits at once.
            std::thread::spawn(move || child.wait());
        }
    }
}

impl Drop for FrameStream {
    fn drop(&mut self) {
        self.kill();
    }
}

fn take(child: &Mutex<Option<Child>>) -> Option<Child> {
    child.lock().take()
}

fn spawn_error(ffmpeg: &Path, e: std::io::Error) -> VideoError {
    VideoError::Spawn {
        program: ffmpeg.display().to_string(),
        message: format!("cannot start a reader thread: {e}"),
    }
}

/// Why frames stopped before the pipe's end.
#[derive(Debug)]
enum Stop {
    Broken(String),
    TooManyFrames,
}

/// Reads whole frames until the pipe ends; sends every `step`th.
fn read_frames(
    mut stdout: impl Read,
    width: u32,
    height: u32,
    step: u32,
    max_frames: u64,
    tx: &mpsc::Sender<Result<DecodedFrame, VideoError>>,
    decoded: &Mutex<u64>,
) -> Result<(), Stop> {
    let size = width as usize * height as usize * 3;
    let mut index: u64 = 0;
    let mut skip = vec![0u8; if step > 1 { size } else { 0 }];
    loop {
        // As Ultralytics' vid_stride: frames step, 2 * step, ... (1-based).
        let keep = (index + 1).is_multiple_of(step as u64);
        let mut pixels = if keep { vec![0u8; size] } else { Vec::new() };
        let buffer = if keep { &mut pixels[..] } else { &mut skip[..] };
        match read_full(&mut stdout, buffer) {
            Ok(0) => return Ok(()),
            Ok(n) if n < size => {
                return Err(Stop::Broken(format!(
                    "the last frame was cut short ({n} of {size} bytes)"
                )));
            }
            Ok(_) => {}
            Err(e) => return Err(Stop::Broken(format!("reading frames failed: {e}"))),
        }
        if index >= max_frames {
            return Err(Stop::TooManyFrames);
        }
        *decoded.lock() = index + 1;
        if keep {
            let frame = DecodedFrame {
                index,
                image: Arc::new(RgbImage { width, height, pixels }),
            };
            // The consumer is gone (the task failed or was dropped): stop reading.
            if tx.blocking_send(Ok(frame)).is_err() {
                return Ok(());
            }
        }
        index += 1;
    }
}

/// Like read_exact, but says how much was read before the end.
fn read_full(reader: &mut impl Read, buffer: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buffer.len() {
        match reader.read(&mut buffer[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

fn read_stderr(stderr: impl Read, said: &Mutex<Said>) {
    for line in BufReader::new(stderr).split(b'\n') {
        let Ok(line) = line else { break };
        let line = String::from_utf8_lossy(&line);
        let mut said = said.lock();
        if line.contains("Parsed_showinfo") {
            if let Some(time) = showinfo_time(&line) {
                said.times.push(time);
            }
            continue;
        }
        // Indented lines are the stream listing and its metadata.
        if line.starts_with(' ') || line.trim().is_empty() {
            continue;
        }
        let line = line.trim();
        if said.lines.len() == KEPT_LINES {
            said.lines.pop_front();
        }
        said.lines.push_back(line.to_string());
    }
}

/// `pts_time:1.234` of a showinfo frame line (the filter's own header line has none).
fn showinfo_time(line: &str) -> Option<f64> {
    let rest = &line[line.find(" n:")?..];
    let value = rest.split("pts_time:").nth(1)?.split_whitespace().next()?;
    value.parse().ok()
}

/// Why ffmpeg failed: a crash by its signal, else the last line that reads as an error.
fn last_words(said: &Mutex<Said>, status: std::process::ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    if let Some(signal) = status.signal() {
        return format!("ffmpeg crashed (signal {signal})");
    }
    let said = said.lock();
    let reason = said
        .lines
        .iter()
        .rev()
        .find(|l| {
            let l = l.to_ascii_lowercase();
            l.contains("error") || l.contains("invalid") || l.contains("corrupt") || l.contains("failed")
        })
        .cloned();
    match reason {
        Some(reason) => reason,
        None => format!("ffmpeg exited with {status}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_frame_times_from_showinfo_lines() {
        let line = "[Parsed_showinfo_0 @ 0x55d0c8a0] n:  12 pts:   6144 pts_time:0.4     duration:512 \
                    duration_time:0.0333333 fmt:yuv420p sar:1/1 s:480x320 i:P iskey:0 type:P";
        assert_eq!(showinfo_time(line), Some(0.4));
        let header = "[Parsed_showinfo_0 @ 0x55d0c8a0] config in time_base: 1/15360, frame_rate: 30/1";
        assert_eq!(showinfo_time(header), None);
    }

    #[test]
    fn frames_are_cut_at_whole_frames_and_stepped() {
        let (tx, mut rx) = mpsc::channel(16);
        let decoded = Mutex::new(0);
        // 5 frames of 2x1 pixels.
        let data: Vec<u8> = (0..30).collect();
        read_frames(&data[..], 2, 1, 2, 100, &tx, &decoded).expect("whole frames");
        drop(tx);
        let mut kept = Vec::new();
        while let Ok(Ok(frame)) = rx.try_recv() {
            kept.push((frame.index, frame.image.pixels[0]));
        }
        assert_eq!(kept, vec![(1, 6), (3, 18)]);
        assert_eq!(*decoded.lock(), 5);

        let (tx, _rx) = mpsc::channel(16);
        let cut = read_frames(&data[..27], 2, 1, 1, 100, &tx, &Mutex::new(0)).expect_err("cut short");
        assert!(matches!(&cut, Stop::Broken(m) if m.contains("cut short")), "{cut:?}");
        let (tx, _rx) = mpsc::channel(16);
        let over = read_frames(&data[..], 2, 1, 1, 3, &tx, &Mutex::new(0)).expect_err("over the limit");
        assert!(matches!(over, Stop::TooManyFrames));
    }
}
