//! One video task: fetch the file, probe it against the limits, stream its frames out of
//! ffmpeg, detect on each (a few frames in flight, so both sessions stay busy), track the
//! detections frame by frame in order, and write one `videorectangle` region per track.
//!
//! The tracker lives here, per task: nothing of one video's tracks reaches another's.

use std::{
    collections::{HashMap, VecDeque},
    sync::Arc,
    time::Instant,
};

use log::{info, warn};
use plugin_api::{FrameOutput, Params};
use serde_json::Value;
use tokio::sync::oneshot;

use labelstudio_protocol::{
    label_config::VideoControl,
    protocol::Task,
    region::Region,
    results::ImageSize,
    video::{self, TrackPath, TrackedBox, VideoFrame},
};
use ls_tracking::{
    Detection, FrameRef, GMC_DOWNSCALE, Tracker, TrackerConfig, TrackerKind,
    gmc::{Affine, Gmc, GmcMethod},
};

use super::{StageTimes, TaskError, guard, plan::VideoGroup};
use crate::{
    imaging::RgbImage,
    models::{RunError, RunTimes},
    video::{
        VideoSettings,
        decode::{DecodedFrame, FrameStream},
        probe,
        timeline::Timeline,
    },
    worker::{WorkerFailed, off_executor as blocking},
};
use ls_labelstudio::media::{MediaClient, SizeLimit};

/// Frames whose detection may run at once: enough to keep the model's sessions busy while
/// the tracker, which must go in order, catches up.
const FRAMES_IN_FLIGHT: usize = 3;
/// How often a long video reports its progress.
const PROGRESS_EVERY: std::time::Duration = std::time::Duration::from_secs(10);

/// What a `<VideoRectangle>` asks for, read from its attributes with the official YOLO
/// backend's names and defaults.
#[derive(Debug, Clone, PartialEq)]
struct TrackSettings {
    tracker: TrackerConfig,
    conf: f32,
    iou: f32,
    step: u32,
}

/// Whether a `<VideoRectangle>`'s tracker and detection settings can be read.
pub fn check_settings(control: &VideoControl) -> Result<(), TaskError> {
    TrackSettings::from_control(control, 1).map(drop)
}

impl TrackSettings {
    fn from_control(control: &VideoControl, default_step: u32) -> Result<TrackSettings, TaskError> {
        let bad =
            |message: String| TaskError::VideoConfig(format!("<VideoRectangle name=\"{}\">: {message}", control.name));
        let kind = match control.attribute("model_tracker") {
            None | Some("") => TrackerKind::BotSort,
            Some(name) => name
                .parse::<TrackerKind>()
                .map_err(|e| bad(format!("model_tracker: {e}")))?,
        };
        let prefix = match kind {
            TrackerKind::ByteTrack => "bytetrack_",
            TrackerKind::BotSort => "botsort_",
        };
        let mut tracker = TrackerConfig::defaults(kind);
        for (name, value) in &control.attributes {
            if let Some(key) = name.strip_prefix(prefix) {
                // The tracker's errors name the attribute themselves.
                tracker.set(key, value.trim()).map_err(|e| bad(e.to_string()))?;
            }
        }
        let number = |name: &str, default: f32| -> Result<f32, TaskError> {
            match control.attribute(name) {
                None | Some("") => Ok(default),
                Some(v) => v
                    .parse::<f32>()
                    .ok()
                    .filter(|x| (0.0..=1.0).contains(x))
                    .ok_or_else(|| bad(format!("{name}=\"{v}\" must be a number from 0 to 1"))),
            }
        };
        let step = match control.attribute("model_frame_step") {
            None | Some("") => default_step.max(1),
            Some(v) => v
                .parse::<u32>()
                .ok()
                .filter(|s| *s >= 1)
                .ok_or_else(|| bad(format!("model_frame_step=\"{v}\" must be a whole number of 1 or more")))?,
        };
        Ok(TrackSettings {
            tracker,
            conf: number("model_conf", 0.25)?,
            iou: number("model_iou", 0.7)?,
            step,
        })
    }
}

/// A frame whose detection (and camera motion) is under way.
struct Pending {
    frame: DecodedFrame,
    detection: Aborting<Result<(FrameOutput, RunTimes), RunError>>,
    warp: Option<oneshot::Receiver<Affine>>,
}

/// A spawned task that is cancelled when the video's work is dropped (a failed frame ends
/// the task; the frames behind it need not finish).
struct Aborting<T>(tokio::task::JoinHandle<T>);

impl<T> Drop for Aborting<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// BoT-SORT's camera motion estimator on a thread of its own, fed the frames in order.
struct MotionWorker {
    frames: std::sync::mpsc::Sender<(Arc<RgbImage>, oneshot::Sender<Affine>)>,
}

impl MotionWorker {
    fn start(method: GmcMethod) -> Result<MotionWorker, TaskError> {
        let (tx, rx) = std::sync::mpsc::channel::<(Arc<RgbImage>, oneshot::Sender<Affine>)>();
        std::thread::Builder::new()
            .name("camera-motion".into())
            .spawn(move || {
                let mut gmc = Gmc::new(method, GMC_DOWNSCALE);
                // Ends when the video's work drops its sender.
                while let Ok((image, answer)) = rx.recv() {
                    let frame = FrameRef {
                        rgb: &image.pixels,
                        width: image.width,
                        height: image.height,
                    };
                    let _ = answer.send(gmc.apply(frame));
                }
            })
            .map_err(|e| WorkerFailed(format!("cannot start the motion estimator: {e}")))?;
        Ok(MotionWorker { frames: tx })
    }

    fn estimate(&self, image: Arc<RgbImage>) -> Result<oneshot::Receiver<Affine>, TaskError> {
        let (answer, warp) = oneshot::channel();
        self.frames
            .send((image, answer))
            .map_err(|_| WorkerFailed("the motion estimator stopped".into()))?;
        Ok(warp)
    }
}

/// The boxes on Label Studio's timeline. Where a coarse `framerate` puts two frames on one
/// grid frame, the later box is kept: a track has one box per frame.
fn placed(boxes: Vec<TrackedBox>, timeline: &Timeline) -> Vec<TrackedBox> {
    let mut out: Vec<TrackedBox> = Vec::with_capacity(boxes.len());
    for mut b in boxes {
        let Some((frame, time)) = timeline.position(b.index) else {
            continue;
        };
        b.frame = frame;
        b.time = time;
        if out.last().is_some_and(|last| last.frame == frame) {
            out.pop();
        }
        out.push(b);
    }
    out
}

/// A track as it grows: the label of its latest box (as the official backend keeps it) and
/// its boxes; boxes of classes the config has no label for are left out.
struct Growing {
    label: String,
    boxes: Vec<TrackedBox>,
}

/// One video task: its file opened, every frame detected and tracked, the tracks placed on
/// Label Studio's timeline as `videorectangle` regions.
pub async fn track_video(
    media: &MediaClient,
    settings: &VideoSettings,
    defaults: Params,
    group: &VideoGroup,
    task: &Task,
    times: &mut StageTimes,
) -> Result<Vec<Region>, TaskError> {
    let started = Instant::now();
    let track = TrackSettings::from_control(&group.control, settings.frame_step)?;
    if group.control.labels_from.is_none() {
        warn!(
            "<VideoRectangle name=\"{}\"> has no <Labels toName=\"{}\"> beside it: its tracks have no label to \
             take, so none is sent",
            group.control.name, group.control.to_name
        );
    }
    // The file stays until the frames are read: a downloaded one is a temporary file.
    let (_file, info, mut frames) = open_video(media, settings, group, task, track.step, times).await?;
    let mut run = TrackRun::start(group, &track, defaults, &info)?;
    run.follow(&mut frames, task, &info, times).await?;

    let framerate = group.framerate.as_ref().and_then(|r| r.resolve(&task.data));
    let timeline = Timeline::new(&info, frames.decoded(), &frames.times(), framerate);
    if timeline.variable && framerate.is_none() {
        warn!(
            "task {}: the video's frame rate varies, and <Video> has no frameRate: Label Studio's player then \
             assumes 24 frames/s; its frames were placed at {:.3} frames/s, so set frameRate=\"{:.3}\"",
            task.label(),
            timeline.rate,
            timeline.rate
        );
    }
    let tracked = run.tracked;
    let video = VideoFrame {
        width: info.width,
        height: info.height,
        frames_count: timeline.frames_count,
        duration: timeline.duration,
    };
    let regions = video::regions(&group.control, &run.paths(&timeline), video, track.step as u64);
    let seconds = started.elapsed().as_secs_f64();
    info!(
        "task {}: video {}x{} {}, {} frames at {:.2} fps{}, {tracked} tracked ({:?}), {} tracks in {:.2} s ({:.1} frames/s)",
        task.label(),
        info.width,
        info.height,
        info.codec,
        frames.decoded(),
        info.fps,
        if info.variable_rate { " (variable)" } else { "" },
        track.tracker.kind,
        regions.len(),
        seconds,
        frames.decoded() as f64 / seconds.max(1e-9),
    );
    Ok(regions)
}

/// The task's video fetched, probed against the limits, and its frames streaming out of
/// ffmpeg every `step` frames.
async fn open_video(
    media: &MediaClient,
    settings: &VideoSettings,
    group: &VideoGroup,
    task: &Task,
    step: u32,
    times: &mut StageTimes,
) -> Result<(ls_labelstudio::media::MediaFile, probe::VideoInfo, FrameStream), TaskError> {
    let reference = task
        .data
        .get(&group.video_key)
        .and_then(Value::as_str)
        .ok_or_else(|| TaskError::NoVideo(group.video_key.clone()))?;
    let t = Instant::now();
    let limit = SizeLimit {
        bytes: settings.max_bytes,
        setting: "ML_MAX_VIDEO_MB",
    };
    let file = media.fetch_file(reference, task.id.as_ref(), limit).await?;
    times.fetch += t.elapsed();

    let t = Instant::now();
    let info = probe::probe(&settings.ffprobe, file.path(), settings.stall).await?;
    settings.check(&info)?;
    let (ffmpeg, path, stall) = (settings.ffmpeg.clone(), file.path().to_path_buf(), settings.stall);
    let (probed, max_frames) = (info.clone(), settings.max_frames);
    let frames = blocking(move || FrameStream::start(&ffmpeg, &path, &probed, step, max_frames, stall)).await??;
    times.decode += t.elapsed();
    Ok((file, info, frames))
}

/// Detection and tracking over one video's frames, and the tracks as they grow.
struct TrackRun<'a> {
    group: &'a VideoGroup,
    model: Arc<crate::models::LoadedModel>,
    params: Params,
    size: ImageSize,
    motion: Option<MotionWorker>,
    tracker: Arc<parking_lot::Mutex<Tracker>>,
    /// Track ids in the order they appeared.
    order: Vec<u64>,
    growing: HashMap<u64, Growing>,
    tracked: u64,
}

impl<'a> TrackRun<'a> {
    fn start(
        group: &'a VideoGroup,
        track: &TrackSettings,
        defaults: Params,
        info: &probe::VideoInfo,
    ) -> Result<Self, TaskError> {
        let model = Arc::clone(&group.model);
        let base = model.params(defaults);
        // BoT-SORT's camera motion needs only the frames, in order: it is estimated on its own
        // thread while the frames' detections run, instead of on the tracker's path.
        let motion = (track.tracker.kind == TrackerKind::BotSort && track.tracker.gmc_method != GmcMethod::None)
            .then(|| MotionWorker::start(track.tracker.gmc_method))
            .transpose()?;
        Ok(Self {
            group,
            model,
            params: Params {
                conf: track.conf,
                iou: track.iou,
                max_det: base.max_det,
            },
            size: ImageSize {
                width: info.width,
                height: info.height,
            },
            motion,
            tracker: Arc::new(parking_lot::Mutex::new(Tracker::new(track.tracker.clone()))),
            order: Vec::new(),
            growing: HashMap::new(),
            tracked: 0,
        })
    }

    /// Every frame: a few detections in flight ahead of the tracker, which takes them in order.
    async fn follow(
        &mut self,
        frames: &mut FrameStream,
        task: &Task,
        info: &probe::VideoInfo,
        times: &mut StageTimes,
    ) -> Result<(), TaskError> {
        let mut in_flight: VecDeque<Pending> = VecDeque::new();
        let mut ended = false;
        let mut last_report = Instant::now();
        loop {
            while !ended && in_flight.len() < FRAMES_IN_FLIGHT {
                let t = Instant::now();
                let next = frames.next().await;
                times.decode += t.elapsed();
                match next {
                    Some(Ok(frame)) => in_flight.push_back(self.detect(frame)?),
                    Some(Err(e)) => return Err(e.into()),
                    None => ended = true,
                }
            }
            let Some(pending) = in_flight.pop_front() else {
                return Ok(());
            };
            let index = pending.frame.index;
            self.track(pending, times).await?;
            if last_report.elapsed() >= PROGRESS_EVERY {
                last_report = Instant::now();
                info!(
                    "task {}: video frame {}/{} ({} tracked)",
                    task.label(),
                    index + 1,
                    info.frames,
                    self.tracked
                );
            }
        }
    }

    /// Starts a frame's detection (and its camera motion) without waiting for it.
    fn detect(&self, frame: DecodedFrame) -> Result<Pending, TaskError> {
        let warp = self
            .motion
            .as_ref()
            .map(|m| m.estimate(Arc::clone(&frame.image)))
            .transpose()?;
        let (model, image, params) = (Arc::clone(&self.model), Arc::clone(&frame.image), self.params);
        // A task of its own, so that detections go on while the tracker works.
        let detection = Aborting(tokio::spawn(async move { model.predict(image, params).await }));
        Ok(Pending { frame, detection, warp })
    }

    /// Waits for a frame's detection and runs the tracker on it.
    async fn track(&mut self, mut pending: Pending, times: &mut StageTimes) -> Result<(), TaskError> {
        let (found, run) = (&mut pending.detection.0)
            .await
            .map_err(|e| WorkerFailed(e.to_string()))??;
        let warp = match pending.warp {
            Some(rx) => Some(
                rx.await
                    .map_err(|_| WorkerFailed("the motion estimator stopped".into()))?,
            ),
            None => None,
        };
        times.prepare += run.prepare;
        times.infer += run.infer;
        times.finish += run.finish;
        let found = guard::sanitize(
            found,
            self.model.class_names.len(),
            self.params.max_det as usize,
            self.size,
        );
        let detections: Vec<Detection> = found
            .instances
            .iter()
            .filter_map(|i| {
                // Trackers follow upright boxes; an oriented one is tracked by the box around it.
                let b = i.bbox.as_ref().into_option()?;
                Some(Detection {
                    bbox: b.bounds(),
                    score: i.score,
                    class_id: i.class_id,
                })
            })
            .collect();
        let t = Instant::now();
        let tracker = Arc::clone(&self.tracker);
        let tracks = blocking(move || {
            // Frames are tracked one at a time, in order: the lock is never contended.
            let mut tracker = tracker.lock();
            tracker.update_with_warp(&detections, warp)
        })
        .await?;
        times.finish += t.elapsed();
        let (w, h) = (self.size.width as f32, self.size.height as f32);
        for t in tracks {
            let Some(class_name) = self.model.class_names.get(t.class_id as usize) else {
                continue;
            };
            let Some(label) = self.group.control.label_for(class_name) else {
                continue;
            };
            let order = &mut self.order;
            let entry = self.growing.entry(t.id).or_insert_with(|| {
                order.push(t.id);
                Growing {
                    label: label.to_string(),
                    boxes: Vec::new(),
                }
            });
            entry.label = label.to_string();
            // Ultralytics clips the tracker's boxes to the frame before they reach a result.
            let [x1, y1, x2, y2] = t.bbox;
            entry.boxes.push(TrackedBox {
                frame: 0,
                time: 0.0,
                index: pending.frame.index,
                xyxy: [x1.clamp(0.0, w), y1.clamp(0.0, h), x2.clamp(0.0, w), y2.clamp(0.0, h)],
                score: t.score,
            });
        }
        self.tracked += 1;
        Ok(())
    }

    /// The tracks, in the order they appeared, on Label Studio's timeline.
    fn paths(&mut self, timeline: &Timeline) -> Vec<TrackPath> {
        let order = std::mem::take(&mut self.order);
        order
            .iter()
            .filter_map(|id| self.growing.remove(id))
            .map(|g| TrackPath {
                label: g.label,
                boxes: placed(g.boxes, timeline),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use labelstudio_protocol::label_config::LabelConfig;

    use super::*;

    fn settings(attributes: &str) -> Result<TrackSettings, TaskError> {
        let config = LabelConfig::parse(&format!(
            r#"<View><Video name="video" value="$video"/><VideoRectangle name="box" toName="video" {attributes}/>
               <Labels name="l" toName="video"><Label value="a"/></Labels></View>"#
        ))
        .expect("config");
        TrackSettings::from_control(&config.video_controls[0], 1)
    }

    #[test]
    fn the_official_backends_defaults_and_prefixes() {
        let defaults = settings("").expect("defaults");
        assert_eq!(defaults.tracker, TrackerConfig::defaults(TrackerKind::BotSort));
        assert_eq!((defaults.conf, defaults.iou, defaults.step), (0.25, 0.7, 1));
        let tuned = settings(
            r#"model_tracker="bytetrack" model_conf="0.4" model_frame_step="3" bytetrack_track_buffer="60"
               botsort_track_buffer="5""#,
        )
        .expect("tuned");
        assert_eq!(tuned.tracker.kind, TrackerKind::ByteTrack);
        assert_eq!(
            tuned.tracker.track_buffer, 60,
            "only the chosen tracker's prefix applies"
        );
        assert_eq!((tuned.conf, tuned.step), (0.4, 3));
    }

    #[test]
    fn a_bad_attribute_is_an_error_that_names_it() {
        for (attributes, named) in [
            (r#"model_tracker="deepsort""#, "model_tracker"),
            (r#"model_conf="1.5""#, "model_conf"),
            (r#"model_frame_step="0""#, "model_frame_step"),
            (r#"botsort_track_buffer="many""#, "botsort_track_buffer"),
        ] {
            let message = settings(attributes).expect_err(attributes).to_string();
            assert!(message.starts_with("<VideoRectangle name=\"box\">: "), "{message}");
            assert!(message.contains(named), "{attributes}: {message}");
        }
    }
}
