//! Tracker settings: Ultralytics' tracker YAML keys, as Label Studio attributes set them.

use std::fmt;
use std::str::FromStr;

use crate::gmc::GmcMethod;

/// Which tracker.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TrackerKind {
    ByteTrack,
    BotSort,
}

impl TrackerKind {
    /// The name Ultralytics' `tracker_type` uses, which is also the attribute prefix.
    pub fn name(self) -> &'static str {
        match self {
            TrackerKind::ByteTrack => "bytetrack",
            TrackerKind::BotSort => "botsort",
        }
    }
}

impl fmt::Display for TrackerKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for TrackerKind {
    type Err = ConfigError;

    fn from_str(s: &str) -> Result<Self, ConfigError> {
        match s.trim().to_ascii_lowercase().as_str() {
            "bytetrack" => Ok(TrackerKind::ByteTrack),
            "botsort" => Ok(TrackerKind::BotSort),
            _ => Err(ConfigError::UnknownTracker(s.to_owned())),
        }
    }
}

/// A setting that cannot be applied. The messages name the Label Studio attribute
/// (`bytetrack_track_buffer`, ...) and say what it accepts.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum ConfigError {
    #[error("unknown tracker \"{0}\": use \"bytetrack\" or \"botsort\"")]
    UnknownTracker(String),
    #[error("{attribute} is not a tracker setting; {kind} accepts {allowed}")]
    UnknownKey {
        attribute: String,
        kind: TrackerKind,
        allowed: String,
    },
    #[error("{attribute} only applies to BoT-SORT (use botsort_{key} with the botsort tracker)")]
    BotSortOnly { attribute: String, key: String },
    #[error("{attribute}=\"{value}\" is not allowed: {expected}")]
    InvalidValue {
        attribute: String,
        value: String,
        expected: String,
    },
    #[error("{attribute}=\"{value}\": re-identification is not supported; leave it out or set it to false")]
    ReidUnsupported { attribute: String, value: String },
}

/// A tracker's settings; the field names are Ultralytics' YAML keys.
#[derive(Clone, Debug, PartialEq)]
pub struct TrackerConfig {
    pub kind: TrackerKind,
    /// Detections scoring at least this go to the first association.
    pub track_high_thresh: f64,
    /// Detections scoring above this (and below the high threshold) go to the second.
    pub track_low_thresh: f64,
    /// An unmatched detection starts a track if it scores at least this.
    pub new_track_thresh: f64,
    /// Frames a lost track is kept for, to be found again.
    pub track_buffer: u32,
    /// The first association's largest accepted cost (1 − IoU, or 1 − IoU·score when fused).
    pub match_thresh: f64,
    /// Whether the first association and the unconfirmed stage weigh IoU by the detection score.
    pub fuse_score: bool,
    /// BoT-SORT's camera-motion estimate.
    pub gmc_method: GmcMethod,
    /// BoT-SORT re-identification settings: without re-identification they change nothing, but
    /// they are kept so that a configuration round-trips.
    pub proximity_thresh: f64,
    pub appearance_thresh: f64,
}

/// The keys both trackers take, as `set` spells them.
const COMMON_KEYS: &[&str] = &[
    "track_high_thresh",
    "track_low_thresh",
    "new_track_thresh",
    "track_buffer",
    "match_thresh",
    "fuse_score",
];
const BOTSORT_KEYS: &[&str] = &["gmc_method", "proximity_thresh", "appearance_thresh", "with_reid"];

impl TrackerConfig {
    /// The settings of the official Label Studio YOLO backend's tracker YAML files (stricter than
    /// Ultralytics' own 0.25 thresholds).
    pub fn defaults(kind: TrackerKind) -> Self {
        TrackerConfig {
            kind,
            track_high_thresh: 0.5,
            track_low_thresh: 0.1,
            new_track_thresh: 0.6,
            track_buffer: 30,
            match_thresh: 0.8,
            fuse_score: true,
            gmc_method: match kind {
                TrackerKind::ByteTrack => GmcMethod::None,
                TrackerKind::BotSort => GmcMethod::SparseOptFlow,
            },
            proximity_thresh: 0.5,
            appearance_thresh: 0.25,
        }
    }

    /// Applies one setting, `key` being the YAML key (the Label Studio attribute without its
    /// `bytetrack_` / `botsort_` prefix). `tracker_type` is accepted when it names this tracker,
    /// and BoT-SORT's `model` (the re-identification model) is accepted and ignored, so that an
    /// Ultralytics YAML file applies as it is.
    pub fn set(&mut self, key: &str, value: &str) -> Result<(), ConfigError> {
        let attribute = format!("{}_{key}", self.kind.name());
        let invalid = |expected: &str| ConfigError::InvalidValue {
            attribute: attribute.clone(),
            value: value.to_owned(),
            expected: expected.to_owned(),
        };
        let fraction = || -> Result<f64, ConfigError> {
            value
                .trim()
                .parse::<f64>()
                .ok()
                .filter(|v| (0.0..=1.0).contains(v))
                .ok_or_else(|| invalid("expected a number from 0 to 1"))
        };
        let botsort_only = || {
            if self.kind == TrackerKind::BotSort {
                Ok(())
            } else {
                Err(ConfigError::BotSortOnly {
                    attribute: attribute.clone(),
                    key: key.to_owned(),
                })
            }
        };
        match key {
            "tracker_type" => {
                let named: Result<TrackerKind, _> = value.parse();
                if named != Ok(self.kind) {
                    return Err(invalid(&format!("this is the {} tracker's setting", self.kind)));
                }
            }
            "track_high_thresh" => self.track_high_thresh = fraction()?,
            "track_low_thresh" => self.track_low_thresh = fraction()?,
            "new_track_thresh" => self.new_track_thresh = fraction()?,
            "match_thresh" => self.match_thresh = fraction()?,
            "track_buffer" => {
                self.track_buffer = value
                    .trim()
                    .parse()
                    .map_err(|_| invalid("expected a whole number of frames, 0 or more"))?
            }
            "fuse_score" => self.fuse_score = parse_bool(value).ok_or_else(|| invalid("expected true or false"))?,
            "gmc_method" => {
                botsort_only()?;
                self.gmc_method = value
                    .trim()
                    .parse()
                    .map_err(|_| invalid("expected sparseOptFlow or none (orb, sift and ecc are not supported)"))?;
            }
            "proximity_thresh" => {
                botsort_only()?;
                self.proximity_thresh = fraction()?;
            }
            "appearance_thresh" => {
                botsort_only()?;
                self.appearance_thresh = fraction()?;
            }
            "with_reid" => {
                botsort_only()?;
                match parse_bool(value) {
                    Some(false) => {}
                    Some(true) => {
                        return Err(ConfigError::ReidUnsupported {
                            attribute,
                            value: value.to_owned(),
                        });
                    }
                    None => return Err(invalid("expected false (re-identification is not supported)")),
                }
            }
            "model" => botsort_only()?,
            _ => {
                let mut keys: Vec<&str> = COMMON_KEYS.to_vec();
                if self.kind == TrackerKind::BotSort {
                    keys.extend(BOTSORT_KEYS);
                }
                let prefix = self.kind.name();
                let allowed = keys
                    .iter()
                    .map(|k| format!("{prefix}_{k}"))
                    .collect::<Vec<_>>()
                    .join(", ");
                return Err(ConfigError::UnknownKey {
                    attribute,
                    kind: self.kind,
                    allowed,
                });
            }
        }
        Ok(())
    }
}

fn parse_bool(value: &str) -> Option<bool> {
    match value.trim().to_ascii_lowercase().as_str() {
        "true" => Some(true),
        "false" => Some(false),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_parse_and_print() {
        assert_eq!("bytetrack".parse::<TrackerKind>(), Ok(TrackerKind::ByteTrack));
        assert_eq!("BoTSORT".parse::<TrackerKind>(), Ok(TrackerKind::BotSort));
        assert!("deepsort".parse::<TrackerKind>().is_err());
        assert_eq!(TrackerKind::BotSort.to_string(), "botsort");
    }

    #[test]
    fn settings_apply() {
        let mut c = TrackerConfig::defaults(TrackerKind::BotSort);
        c.set("track_high_thresh", "0.25").unwrap();
        c.set("track_buffer", " 60 ").unwrap();
        c.set("fuse_score", "FALSE").unwrap();
        c.set("gmc_method", "none").unwrap();
        c.set("with_reid", "False").unwrap();
        c.set("tracker_type", "botsort").unwrap();
        c.set("model", "auto").unwrap();
        assert_eq!(c.track_high_thresh, 0.25);
        assert_eq!(c.track_buffer, 60);
        assert!(!c.fuse_score);
        assert_eq!(c.gmc_method, GmcMethod::None);
    }

    #[test]
    fn bad_settings_say_what_is_allowed() {
        let mut c = TrackerConfig::defaults(TrackerKind::ByteTrack);
        let msg = |r: Result<(), ConfigError>| r.unwrap_err().to_string();
        assert_eq!(
            msg(c.set("match_thresh", "high")),
            "bytetrack_match_thresh=\"high\" is not allowed: expected a number from 0 to 1"
        );
        assert!(msg(c.set("track_high_thresh", "1.5")).contains("from 0 to 1"));
        assert!(msg(c.set("track_low_thresh", "NaN")).contains("from 0 to 1"));
        assert!(msg(c.set("track_buffer", "-3")).contains("whole number of frames"));
        assert!(msg(c.set("fuse_score", "yes")).contains("true or false"));
        let unknown = msg(c.set("max_age", "3"));
        assert!(
            unknown.starts_with("bytetrack_max_age is not a tracker setting"),
            "{unknown}"
        );
        assert!(
            unknown.contains("bytetrack_track_buffer") && !unknown.contains("gmc_method"),
            "{unknown}"
        );
        assert!(msg(c.set("gmc_method", "none")).contains("only applies to BoT-SORT"));
        assert!(msg(c.set("tracker_type", "botsort")).contains("bytetrack tracker"));

        let mut c = TrackerConfig::defaults(TrackerKind::BotSort);
        assert!(msg(c.set("with_reid", "true")).contains("re-identification is not supported"));
        assert!(msg(c.set("gmc_method", "ecc")).contains("sparseOptFlow or none"));
        assert!(msg(c.set("max_age", "3")).contains("botsort_gmc_method"));
        assert_eq!(
            c,
            TrackerConfig::defaults(TrackerKind::BotSort),
            "a refused setting changes nothing"
        );
    }

    #[test]
    fn unknown_keys_and_mistyped_values_name_the_attribute() {
        let mut c = TrackerConfig::defaults(TrackerKind::ByteTrack);
        assert_eq!(
            c.set("max_age", "3"),
            Err(ConfigError::UnknownKey {
                attribute: "bytetrack_max_age".into(),
                kind: TrackerKind::ByteTrack,
                allowed: "bytetrack_track_high_thresh, bytetrack_track_low_thresh, bytetrack_new_track_thresh, \
                          bytetrack_track_buffer, bytetrack_match_thresh, bytetrack_fuse_score"
                    .into(),
            })
        );
        assert_eq!(
            c.set("track_buffer", "60.5").map_err(|e| e.to_string()),
            Err("bytetrack_track_buffer=\"60.5\" is not allowed: expected a whole number of frames, 0 or more".into())
        );
        assert_eq!(
            c.set("fuse_score", "1").map_err(|e| e.to_string()),
            Err("bytetrack_fuse_score=\"1\" is not allowed: expected true or false".into())
        );
        // The tracker is named before the value is read.
        assert!(matches!(
            c.set("gmc_method", "ecc"),
            Err(ConfigError::BotSortOnly { .. })
        ));
        assert!(matches!(c.set("model", "auto"), Err(ConfigError::BotSortOnly { .. })));
        let mut c = TrackerConfig::defaults(TrackerKind::BotSort);
        assert_eq!(
            c.set("with_reid", "maybe").map_err(|e| e.to_string()),
            Err(
                "botsort_with_reid=\"maybe\" is not allowed: expected false (re-identification is not supported)"
                    .into()
            )
        );
    }
}
