//! Property tests on everything that parses outside input: arbitrary and near-valid data
//! must give a value or an error, never a panic, and the brush RLE must round-trip. They run
//! a few hundred cases each in CI; PROPTEST_CASES raises that for a longer session.

use labelstudio_protocol::{brush, label_config::LabelConfig, protocol::PredictRequest};
use plugin_api::Mask;
use plugin_api::sdk::parse_names;
use proptest::prelude::*;
use serde_json::Value;

/// Label-config-like text: tags, attributes and labels drawn from what real configs use,
/// cut and spliced at random.
fn config_like() -> impl Strategy<Value = String> {
    let tag = prop::sample::select(vec![
        "View",
        "Image",
        "RectangleLabels",
        "PolygonLabels",
        "BrushLabels",
        "KeyPointLabels",
        "Choices",
        "Label",
        "Choice",
        "Text",
        "Header",
    ]);
    let attr = prop::sample::select(vec![
        "name",
        "toName",
        "value",
        "alias",
        "predicted_values",
        "model_score_threshold",
        "model_path",
        "model_skip",
        "score_threshold",
    ]);
    let element = (
        tag,
        prop::collection::vec((attr, "[a-z$0-9.,/ ]{0,8}"), 0..4),
        any::<bool>(),
    )
        .prop_map(|(tag, attrs, close)| {
            let attrs: String = attrs.iter().map(|(k, v)| format!(" {k}=\"{v}\"")).collect();
            if close {
                format!("<{tag}{attrs}/>")
            } else {
                format!("<{tag}{attrs}>")
            }
        });
    (prop::collection::vec(element, 0..12), 0usize..200).prop_map(|(parts, cut)| {
        let text = format!("<View>{}</View>", parts.concat());
        text.chars().take(cut.max(6)).collect()
    })
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        "[a-z/.:0-9]{0,12}".prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 64, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec(
                (
                    prop::sample::select(vec![
                        "tasks",
                        "id",
                        "data",
                        "image",
                        "project",
                        "label_config",
                        "params",
                        "context",
                        "result"
                    ]),
                    inner
                ),
                0..6
            )
            .prop_map(|pairs| Value::Object(pairs.into_iter().map(|(k, v)| (k.to_string(), v)).collect())),
        ]
    })
}

proptest! {
    #[test]
    fn label_configs_parse_or_fail_cleanly(text in config_like()) {
        if let Ok(config) = LabelConfig::parse(&text) {
            for control in config.active_controls() {
                prop_assert!(config.image(&control.to_name).is_some());
            }
        }
    }

    #[test]
    fn arbitrary_text_is_not_a_panic_for_the_config_parser(text in ".{0,300}") {
        let _ = LabelConfig::parse(&text);
    }

    #[test]
    fn names_metadata_parses_or_fails_cleanly(text in r"[\{\}\[\]0-9a-z:,' \x22\\]{0,80}") {
        if let Some(names) = parse_names(&text) {
            prop_assert!(!names.is_empty());
        }
    }

    #[test]
    fn names_written_as_python_dicts_come_back(names in prop::collection::vec("[a-z][a-z _-]{0,10}", 1..20)) {
        let dict = names
            .iter()
            .enumerate()
            .map(|(i, n)| format!("{i}: '{n}'"))
            .collect::<Vec<_>>()
            .join(", ");
        prop_assert_eq!(parse_names(&format!("{{{dict}}}")), Some(names));
    }

    #[test]
    fn predict_requests_parse_or_fail_cleanly(value in json_value()) {
        if let Ok(request) = serde_json::from_value::<PredictRequest>(value) {
            for task in &request.tasks {
                let _ = task.label();
            }
        }
    }

    #[test]
    fn brush_rle_round_trips(width in 1u32..64, height in 1u32..64, cuts in prop::collection::vec(0u32..5000, 0..40)) {
        let pixels = width * height;
        let mut points: Vec<u32> = cuts.into_iter().map(|c| c % (pixels + 1)).collect();
        points.sort_unstable();
        let mut runs = Vec::new();
        let mut last = 0;
        for p in points.iter().chain(std::iter::once(&pixels)) {
            runs.push(p - last);
            last = *p;
        }
        let expected: Vec<u8> = runs
            .iter()
            .enumerate()
            .flat_map(|(i, r)| std::iter::repeat_n(if i % 2 == 0 { 0u8 } else { 255 }, *r as usize * 4))
            .collect();
        let mask = Mask { width, height, runs: runs.into() };
        prop_assert_eq!(brush::decode(&brush::encode(&mask)), Some(expected));
    }

    #[test]
    fn arbitrary_rle_bytes_decode_or_fail_cleanly(bytes in prop::collection::vec(any::<u8>(), 0..64)) {
        // A short header can claim billions of values; only decode what is cheap.
        if bytes.len() >= 4 && u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]) < 1 << 16 {
            let _ = brush::decode(&bytes);
        }
    }

    #[test]
    fn outlines_follow_foreground_pixels(width in 1usize..24, height in 1usize..24, seed in any::<u64>()) {
        let mut state = seed | 1;
        let bits: Vec<bool> = (0..width * height)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                state % 3 == 0
            })
            .collect();
        match mask_geometry::outline_of_bits(width, height, &bits) {
            None => prop_assert!(!bits.iter().any(|b| *b)),
            Some(points) => {
                for (x, y) in points {
                    prop_assert!(bits[y as usize * width + x as usize], "({}, {}) is not foreground", x, y);
                }
            }
        }
    }
}
