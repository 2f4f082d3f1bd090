//! The prompt of an interactive request: the regions an annotator just drew with a smart tool
//! (`params.context.result`), read as one prompt for one object. Positions stay in percent of
//! the image, as Label Studio sends them; the host turns them into pixels once it knows the
//! image's size.

use serde_json::Value;

/// One click of a smart `KeyPointLabels` tool.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Click {
    /// Percent of the image width and height.
    pub x: f64,
    pub y: f64,
    /// A normal click says "this object"; a negative one (`is_positive: false`) "not this".
    pub positive: bool,
}

/// A box of a smart `RectangleLabels` tool, in percent of the image.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PromptBox {
    pub x: f64,
    pub y: f64,
    pub width: f64,
    pub height: f64,
}

/// Every click and the box of one request: together they describe one object.
#[derive(Debug, Clone, PartialEq)]
pub struct Prompt {
    /// The `<Image>` the regions were drawn on (their `to_name`).
    pub image: String,
    /// The label the annotator chose (`value[type][0]` of the last region that has one).
    pub label: Option<String>,
    pub clicks: Vec<Click>,
    /// The last box drawn, as the reference backends use it.
    pub bbox: Option<PromptBox>,
}

/// Why a context gives no prompt. Each is answered with an empty prediction and a log line.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PromptError {
    #[error("the interactive request has no regions in context.result")]
    NoRegions,
    #[error("none of the {0} regions in context.result is a keypoint click or a box")]
    NothingUsable(usize),
    #[error("a prompt lies outside the image ({what} at {x:.1} %, {y:.1} %)")]
    OutsideImage { what: &'static str, x: f64, y: f64 },
    #[error("the prompt's regions are on different images (`{0}` and `{1}`)")]
    SeveralImages(String, String),
    #[error("the prompt has {0} clicks; at most {MAX_CLICKS} describe one object")]
    TooManyClicks(usize),
}

/// Clicks one prompt may hold: more describe no object better, and each costs the decoder.
pub const MAX_CLICKS: usize = 64;

/// The prompt in `params.context`: `None` for an ordinary prediction (no context, or no
/// `result` in it); an error when the context holds regions that make no prompt.
pub fn prompt(context: Option<&Value>) -> Option<Result<Prompt, PromptError>> {
    let regions = context?.get("result")?.as_array()?;
    Some(read(regions))
}

fn read(regions: &[Value]) -> Result<Prompt, PromptError> {
    if regions.is_empty() {
        return Err(PromptError::NoRegions);
    }
    let mut prompt = Prompt {
        image: String::new(),
        label: None,
        clicks: Vec::new(),
        bbox: None,
    };
    for region in regions {
        let kind = region.get("type").and_then(Value::as_str).unwrap_or_default();
        let value = region.get("value").unwrap_or(&Value::Null);
        let number = |key: &str| value.get(key).and_then(Value::as_f64);
        match kind {
            "keypointlabels" => {
                let (Some(x), Some(y)) = (number("x"), number("y")) else {
                    continue;
                };
                let (x, y) = inside("a click", x, y)?;
                // Label Studio puts the sign at the region's top level; newer clients in `value`.
                let positive = region
                    .get("is_positive")
                    .or_else(|| value.get("positive"))
                    .and_then(Value::as_bool)
                    .unwrap_or(true);
                prompt.clicks.push(Click { x, y, positive });
            }
            "rectanglelabels" => {
                let (Some(x), Some(y), Some(width), Some(height)) =
                    (number("x"), number("y"), number("width"), number("height"))
                else {
                    continue;
                };
                let (x0, y0) = inside("a box corner", x, y)?;
                let (x1, y1) = inside("a box corner", x + width, y + height)?;
                prompt.bbox = Some(PromptBox {
                    x: x0,
                    y: y0,
                    width: x1 - x0,
                    height: y1 - y0,
                });
            }
            _ => continue,
        }
        let image = region.get("to_name").and_then(Value::as_str).unwrap_or_default();
        if prompt.image.is_empty() {
            prompt.image = image.to_string();
        } else if !image.is_empty() && image != prompt.image {
            return Err(PromptError::SeveralImages(prompt.image, image.to_string()));
        }
        if let Some(label) = value.get(kind).and_then(|l| l.get(0)).and_then(Value::as_str) {
            prompt.label = Some(label.to_string());
        }
    }
    if prompt.clicks.is_empty() && prompt.bbox.is_none() {
        return Err(PromptError::NothingUsable(regions.len()));
    }
    if prompt.clicks.len() > MAX_CLICKS {
        return Err(PromptError::TooManyClicks(prompt.clicks.len()));
    }
    Ok(prompt)
}

/// How far past an edge, in percent, a position still counts as on it. Label Studio sends
/// pixels divided by the image size: a box drawn to the right edge of a 301-px image ends at
/// 100.00000000000001 %. 1e-4 % is ten orders of magnitude above that rounding and covers
/// coordinates rounded to 4 decimals (x and width each off by at most 5e-5), yet it is a tenth
/// of a pixel on a 100,000-px image, so no position that is really off the image gets in.
pub const EDGE_TOLERANCE: f64 = 1e-4;

/// The position clamped onto the image, if it lies on it within [`EDGE_TOLERANCE`].
fn inside(what: &'static str, x: f64, y: f64) -> Result<(f64, f64), PromptError> {
    let within = |v: f64| v.is_finite() && (-EDGE_TOLERANCE..=100.0 + EDGE_TOLERANCE).contains(&v);
    if within(x) && within(y) {
        Ok((x.clamp(0.0, 100.0), y.clamp(0.0, 100.0)))
    } else {
        Err(PromptError::OutsideImage { what, x, y })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn click(x: f64, y: f64, sign: Option<bool>) -> Value {
        let mut region = json!({
            "id": "Kx9s", "from_name": "tag2", "to_name": "image", "type": "keypointlabels",
            "origin": "manual", "original_width": 800, "original_height": 600, "image_rotation": 0,
            "value": {"x": x, "y": y, "width": 0.6, "keypointlabels": ["Object"]}
        });
        if let Some(sign) = sign {
            region["is_positive"] = json!(sign);
        }
        region
    }

    fn rect(x: f64, y: f64, w: f64, h: f64, label: &str) -> Value {
        json!({"id": "r", "from_name": "box", "to_name": "image", "type": "rectanglelabels",
               "value": {"x": x, "y": y, "width": w, "height": h, "rotation": 0, "rectanglelabels": [label]}})
    }

    fn read_context(result: Vec<Value>) -> Result<Prompt, PromptError> {
        prompt(Some(&json!({ "result": result }))).expect("a context with a result")
    }

    #[test]
    fn an_ordinary_prediction_has_no_prompt() {
        assert!(prompt(None).is_none());
        assert!(prompt(Some(&Value::Null)).is_none());
        assert!(prompt(Some(&json!({}))).is_none());
    }

    /// The capture's click: a positive keypoint with its label; a missing sign is positive,
    /// `value.positive` is read too, and clicks and a box together are one prompt whose box is
    /// the last one drawn.
    #[test]
    fn clicks_and_the_last_box_make_one_prompt() {
        let mut newer = click(10.0, 20.0, None);
        newer["value"]["positive"] = json!(false);
        let p = read_context(vec![
            click(42.1, 55.3, Some(true)),
            click(1.0, 2.0, None),
            newer,
            click(5.0, 5.0, Some(false)),
            rect(0.0, 0.0, 10.0, 10.0, "First"),
            rect(20.0, 30.0, 40.0, 50.0, "Object"),
        ])
        .expect("prompt");
        assert_eq!(p.image, "image");
        assert_eq!(p.label.as_deref(), Some("Object"));
        let signs: Vec<bool> = p.clicks.iter().map(|c| c.positive).collect();
        assert_eq!(signs, vec![true, true, false, false]);
        assert_eq!((p.clicks[0].x, p.clicks[0].y), (42.1, 55.3));
        assert_eq!(
            p.bbox,
            Some(PromptBox {
                x: 20.0,
                y: 30.0,
                width: 40.0,
                height: 50.0
            })
        );
    }

    #[test]
    fn prompts_that_are_empty_outside_or_on_two_images_are_errors() {
        assert_eq!(read_context(vec![]), Err(PromptError::NoRegions));
        let text = json!({"type": "labels", "to_name": "text", "value": {"start": 0, "end": 3, "labels": ["A"]}});
        assert_eq!(read_context(vec![text]), Err(PromptError::NothingUsable(1)));
        assert!(matches!(
            read_context(vec![click(100.5, 3.0, Some(true))]),
            Err(PromptError::OutsideImage { .. })
        ));
        assert!(matches!(
            read_context(vec![rect(80.0, 80.0, 30.0, 10.0, "A")]),
            Err(PromptError::OutsideImage { .. })
        ));
        let mut other = click(3.0, 3.0, Some(true));
        other["to_name"] = json!("second");
        assert!(matches!(
            read_context(vec![click(1.0, 1.0, Some(true)), other]),
            Err(PromptError::SeveralImages(..))
        ));
    }

    #[test]
    fn a_flood_of_clicks_and_unreadable_coordinates_make_no_prompt() {
        let many: Vec<Value> = (0..10_000).map(|i| click((i % 100) as f64, 50.0, Some(true))).collect();
        assert_eq!(read_context(many), Err(PromptError::TooManyClicks(10_000)));
        let mut nan = click(1.0, 1.0, Some(true));
        nan["value"]["x"] = json!("NaN");
        assert_eq!(read_context(vec![nan]), Err(PromptError::NothingUsable(1)));
    }

    /// Label Studio's percent for boxes drawn from a pixel to the right edge of a 301-px image
    /// (`px / 301 * 100`): from pixel 250 x + width is exactly 100; from pixel 226 it comes out
    /// a rounding error past it.
    #[test]
    fn a_box_to_the_edge_of_the_image_is_taken_and_clamped() {
        let percent = |px: f64| px / 301.0 * 100.0;
        let (y, height) = (percent(10.0), percent(291.0));
        for left in [250.0, 226.0] {
            let (x, width) = (percent(left), percent(301.0 - left));
            let p = read_context(vec![rect(x, y, width, height, "Object")]).expect("an edge box is a prompt");
            let b = p.bbox.expect("a box");
            assert_eq!((b.x, b.y), (x, y), "the near corner is kept as sent");
            assert!(b.x + b.width <= 100.0, "right edge {} from pixel {left}", b.x + b.width);
            assert!(b.y + b.height <= 100.0, "bottom edge {}", b.y + b.height);
            assert!((b.width - width).abs() < 1e-9, "width {} from pixel {left}", b.width);
            assert_eq!(p.label.as_deref(), Some("Object"));
        }
        assert!(
            percent(226.0) + percent(75.0) > 100.0,
            "the case under test: {}",
            percent(226.0) + percent(75.0)
        );
    }

    #[test]
    fn a_click_a_rounding_error_off_the_edge_is_clamped_onto_it() {
        let p = read_context(vec![click(100.000_000_000_1, -1e-9, Some(true))]).expect("prompt");
        assert_eq!((p.clicks[0].x, p.clicks[0].y), (100.0, 0.0));
        let p = read_context(vec![click(100.0 + EDGE_TOLERANCE, 0.0, Some(false))]).expect("prompt");
        assert_eq!(p.clicks[0].x, 100.0);
        assert!(!p.clicks[0].positive);
        let corner = read_context(vec![rect(-5e-5, -5e-5, 100.000_1, 100.000_1, "A")]).expect("prompt");
        assert_eq!(
            corner.bbox,
            Some(PromptBox {
                x: 0.0,
                y: 0.0,
                width: 100.0,
                height: 100.0
            })
        );
    }

    #[test]
    fn positions_clearly_off_the_image_are_still_refused() {
        let refused = |regions| matches!(read_context(regions), Err(PromptError::OutsideImage { .. }));
        assert!(refused(vec![rect(50.0, 10.0, 51.0, 10.0, "A")]), "a box to 101 %");
        assert!(
            refused(vec![rect(101.0, 10.0, 5.0, 5.0, "A")]),
            "a box starting at 101 %"
        );
        assert!(refused(vec![rect(-1.0, 10.0, 5.0, 5.0, "A")]), "a box starting at -1 %");
        assert!(
            refused(vec![click(100.001, 50.0, Some(true))]),
            "a click 0.001 % past the edge"
        );
        assert!(refused(vec![click(50.0, -0.01, Some(true))]), "a click above the image");
        let mut infinite = click(1.0, 1.0, Some(true));
        infinite["value"]["x"] = json!(f64::MAX);
        assert!(refused(vec![infinite]), "a huge x");
    }
}
