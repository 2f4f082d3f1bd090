//! What ffprobe says of a video: its displayed size (rotation applied, as ffmpeg's decoder
//! applies it), frame rate, frame count and duration, read before any frame is decoded so
//! that the limits refuse a video early.

use std::{path::Path, process::Stdio, time::Duration};

use serde::Deserialize;
use serde_json::Value;

use super::VideoError;

#[derive(Debug, Clone, PartialEq)]
pub struct VideoInfo {
    /// The size of the decoded frames, after rotation.
    pub width: u32,
    pub height: u32,
    /// Clockwise rotation the player applies (0, 90, 180, 270).
    pub rotation: u32,
    /// Frames per second on average (frames / duration), as the container gives it.
    pub fps: f64,
    /// The base rate: the least rate at which every frame's time falls on a tick (for a
    /// variable-rate video, about its highest rate).
    pub base_fps: f64,
    /// Whether frame durations vary (the container's base rate and average rate differ).
    pub variable_rate: bool,
    /// Frames in the video stream (counted packets, or the container's count).
    pub frames: u64,
    /// Seconds.
    pub duration: f64,
    pub codec: String,
    /// The stream's index in the file, for ffmpeg's `-map`.
    pub stream_index: u32,
}

#[derive(Deserialize)]
struct Probe {
    #[serde(default)]
    streams: Vec<Stream>,
    format: Option<Format>,
}

#[derive(Deserialize)]
struct Stream {
    index: Option<u32>,
    codec_type: Option<String>,
    codec_name: Option<String>,
    width: Option<u32>,
    height: Option<u32>,
    r_frame_rate: Option<String>,
    avg_frame_rate: Option<String>,
    nb_frames: Option<String>,
    nb_read_packets: Option<String>,
    duration: Option<String>,
    #[serde(default)]
    side_data_list: Vec<Value>,
    #[serde(default)]
    tags: serde_json::Map<String, Value>,
    #[serde(default)]
    disposition: serde_json::Map<String, Value>,
}

#[derive(Deserialize)]
struct Format {
    duration: Option<String>,
}

/// Runs ffprobe on the file (counting the video's packets, which reads the file but decodes
/// nothing) and reads what it says.
pub async fn probe(ffprobe: &Path, file: &Path, stall: Duration) -> Result<VideoInfo, VideoError> {
    let mut command = tokio::process::Command::new(ffprobe);
    command
        .args(super::INPUT_WHITELISTS)
        .args([
            "-v",
            "error",
            "-count_packets",
            "-show_streams",
            "-show_format",
            "-of",
            "json",
        ])
        .arg(file)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let child = command.spawn().map_err(|e| VideoError::Spawn {
        program: ffprobe.display().to_string(),
        message: e.to_string(),
    })?;
    let output = tokio::time::timeout(stall, child.wait_with_output())
        .await
        .map_err(|_| VideoError::ProbeTimedOut { secs: stall.as_secs() })?
        .map_err(|e| VideoError::Unreadable(e.to_string()))?;
    if !output.status.success() {
        let said = String::from_utf8_lossy(&output.stderr);
        // What a whitelist refused says more than the "Invalid argument" that follows it.
        let refused = said
            .lines()
            .find(|l| l.contains("not on whitelist"))
            .map(|l| format!("{} (only local files of real video containers are read)", l.trim()));
        return Err(VideoError::Unreadable(refused.unwrap_or_else(|| last_line(&said))));
    }
    parse(&output.stdout)
}

fn last_line(text: &str) -> String {
    text.lines()
        .map(str::trim)
        .rfind(|l| !l.is_empty())
        .unwrap_or("it exited with an error and said nothing")
        .to_string()
}

/// Reads ffprobe's JSON.
pub fn parse(json: &[u8]) -> Result<VideoInfo, VideoError> {
    let probe: Probe = serde_json::from_slice(json).map_err(|e| VideoError::Unreadable(e.to_string()))?;
    // A cover picture is a one-frame "video" stream of its own: not the video.
    let cover = |s: &Stream| s.disposition.get("attached_pic").and_then(Value::as_i64) == Some(1);
    let Some(stream) = probe
        .streams
        .iter()
        .find(|s| s.codec_type.as_deref() == Some("video") && !cover(s))
    else {
        let others: Vec<&str> = probe.streams.iter().filter_map(|s| s.codec_type.as_deref()).collect();
        let detail = if others.is_empty() {
            String::new()
        } else {
            format!(" (it holds {})", others.join(", "))
        };
        return Err(VideoError::NoVideo(detail));
    };
    let (Some(coded_w), Some(coded_h)) = (stream.width, stream.height) else {
        return Err(VideoError::NoVideo(" with a frame size".into()));
    };
    let rotation = rotation(stream);
    let (width, height) = if rotation % 180 == 90 {
        (coded_h, coded_w)
    } else {
        (coded_w, coded_h)
    };
    let number = |s: &Option<String>| s.as_deref().and_then(|v| v.trim().parse::<f64>().ok());
    let count = |s: &Option<String>| s.as_deref().and_then(|v| v.trim().parse::<u64>().ok());
    let frames = count(&stream.nb_read_packets).or(count(&stream.nb_frames)).unwrap_or(0);
    let avg = stream.avg_frame_rate.as_deref().and_then(rate);
    let base = stream.r_frame_rate.as_deref().and_then(rate);
    let duration = number(&stream.duration)
        .or(probe.format.as_ref().and_then(|f| number(&f.duration)))
        .or_else(|| avg.map(|fps| frames as f64 / fps))
        .unwrap_or(0.0);
    let fps = avg
        .or((duration > 0.0).then(|| frames as f64 / duration))
        .or(base)
        .unwrap_or(0.0);
    let variable_rate = match (avg, base) {
        (Some(a), Some(b)) => (a - b).abs() > 0.01 * b.max(1.0),
        _ => false,
    };
    Ok(VideoInfo {
        width,
        height,
        rotation,
        fps,
        base_fps: base.unwrap_or(fps),
        variable_rate,
        frames,
        duration,
        codec: stream.codec_name.clone().unwrap_or_default(),
        stream_index: stream.index.unwrap_or(0),
    })
}

/// `30000/1001` or `25`; `0/0` (unknown) is None.
fn rate(text: &str) -> Option<f64> {
    let value = match text.split_once('/') {
        Some((n, d)) => {
            let (n, d) = (n.trim().parse::<f64>().ok()?, d.trim().parse::<f64>().ok()?);
            if d == 0.0 {
                return None;
            }
            n / d
        }
        None => text.trim().parse().ok()?,
    };
    (value.is_finite() && value > 0.0).then_some(value)
}

/// The clockwise rotation a player applies: the display matrix's (counter-clockwise in
/// ffprobe's side data), else the old `rotate` tag. Only quarter turns (within a degree, as
/// ffmpeg's autorotate takes them): ffmpeg leaves other angles alone, and so do we.
fn rotation(stream: &Stream) -> u32 {
    let from_matrix = stream
        .side_data_list
        .iter()
        .find_map(|d| d.get("rotation").and_then(Value::as_f64))
        .map(|ccw| -ccw);
    let from_tag = stream
        .tags
        .get("rotate")
        .and_then(Value::as_str)
        .and_then(|r| r.trim().parse::<f64>().ok());
    let degrees = from_matrix.or(from_tag).unwrap_or(0.0).rem_euclid(360.0);
    let quarter = (degrees / 90.0).round();
    if (degrees - quarter * 90.0).abs() > 1.0 {
        return 0;
    }
    (quarter as i64).rem_euclid(4) as u32 * 90
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(streams: &str, format: &str) -> Result<VideoInfo, VideoError> {
        parse(format!(r#"{{"streams": [{streams}], "format": {format}}}"#).as_bytes())
    }

    #[test]
    fn reads_size_rate_count_and_duration() {
        let v = info(
            r#"{"codec_type": "video", "codec_name": "h264", "width": 480, "height": 320,
                "r_frame_rate": "30/1", "avg_frame_rate": "30/1", "nb_frames": "120",
                "nb_read_packets": "120", "duration": "4.000000"}"#,
            r#"{"duration": "4.02", "format_name": "mov,mp4"}"#,
        )
        .expect("probe");
        assert_eq!((v.width, v.height, v.rotation, v.frames), (480, 320, 0, 120));
        assert_eq!((v.fps, v.duration, v.variable_rate), (30.0, 4.0, false));
    }

    #[test]
    fn a_display_matrix_turns_the_frame() {
        let v = info(
            r#"{"codec_type": "video", "width": 480, "height": 320, "avg_frame_rate": "25/1",
                "r_frame_rate": "25/1", "nb_read_packets": "50",
                "side_data_list": [{"side_data_type": "Display Matrix", "rotation": -90}]}"#,
            r#"{"duration": "2.0"}"#,
        )
        .expect("probe");
        assert_eq!((v.width, v.height, v.rotation), (320, 480, 90));
        let tagged = info(
            r#"{"codec_type": "video", "width": 480, "height": 320, "tags": {"rotate": "180"}}"#,
            r#"{"duration": "2.0"}"#,
        )
        .expect("probe");
        assert_eq!((tagged.width, tagged.height, tagged.rotation), (480, 320, 180));
        let odd = info(
            r#"{"codec_type": "video", "width": 480, "height": 320, "tags": {"rotate": "45"}}"#,
            r#"{"duration": "2.0"}"#,
        )
        .expect("probe");
        assert_eq!(
            (odd.width, odd.height, odd.rotation),
            (480, 320, 0),
            "ffmpeg turns only quarter turns"
        );
    }

    #[test]
    fn variable_rate_is_told_by_the_two_rates() {
        let v = info(
            r#"{"codec_type": "video", "width": 64, "height": 64, "r_frame_rate": "30/1",
                "avg_frame_rate": "1200/53", "nb_read_packets": "80"}"#,
            r#"{"duration": "3.53"}"#,
        )
        .expect("probe");
        assert!(v.variable_rate);
        assert!((v.fps - 1200.0 / 53.0).abs() < 1e-9);
        assert_eq!(v.base_fps, 30.0);
    }

    #[test]
    fn a_cover_picture_is_not_the_video() {
        let v = info(
            r#"{"index": 0, "codec_type": "video", "codec_name": "mjpeg", "width": 600, "height": 600,
                "disposition": {"attached_pic": 1}},
               {"index": 1, "codec_type": "video", "codec_name": "h264", "width": 64, "height": 48,
                "avg_frame_rate": "25/1", "r_frame_rate": "25/1", "nb_read_packets": "10",
                "disposition": {"attached_pic": 0}}"#,
            r#"{"duration": "0.4"}"#,
        )
        .expect("probe");
        assert_eq!((v.codec.as_str(), v.width, v.stream_index), ("h264", 64, 1));
    }

    #[test]
    fn audio_only_and_garbage_are_errors_that_say_so() {
        let audio = info(r#"{"codec_type": "audio", "codec_name": "aac"}"#, "{}").expect_err("no video");
        assert_eq!(audio.to_string(), "the file has no video stream (it holds audio)");
        assert!(matches!(parse(b"not json"), Err(VideoError::Unreadable(_))));
        assert_eq!(rate("0/0"), None);
        assert_eq!(rate("30000/1001").map(|r| (r * 1000.0).round()), Some(29970.0));
    }
}
