//! Segmentation parity with Ultralytics 8.4.190: every eval-a image through the real server
//! with a config holding RectangleLabels, PolygonLabels and BrushLabels at once. Boxes must
//! match as for detection; each instance's polygon area (default simplification) must be
//! within 2% of Ultralytics' polygon, its brush mask must overlap the rasterised reference
//! polygon with IoU >= 0.95, and Label Studio's own SDK must decode our RLE to the same bytes
//! as our decoder.

use std::collections::HashMap;

use crate::common::*;
use labelstudio_protocol::brush;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

const SEG: &str = "yolov8n-shapes-seg-320.onnx";
/// All three kinds of tag at once: each gets what its type takes.
fn config() -> String {
    shapes_config(&[
        ("RectangleLabels", "boxes"),
        ("PolygonLabels", "outlines"),
        ("BrushLabels", "masks"),
    ])
}

/// The reference mask in original pixels. The reference polygon is Ultralytics' outline of
/// its mask at the model's input size (OpenCV contour points, pixel indices), mapped back
/// with `(p - pad) / gain`. Undoing that mapping and filling the outline with its boundary
/// (as `cv2.fillPoly` does) gives back the input-size mask; each original pixel then shows
/// the input pixel under its centre, as the seg plugin maps its own masks.
fn reference_mask(polygon: &[(f64, f64)], letterbox: &Value, width: usize, height: usize) -> Vec<bool> {
    let num = |v: &Value| v.as_f64().expect("number");
    let (pad_l, pad_t) = (num(&letterbox["pad_ltrb"][0]), num(&letterbox["pad_ltrb"][1]));
    let (gx, gy) = (num(&letterbox["gain_xy"][0]), num(&letterbox["gain_xy"][1]));
    let (in_h, in_w) = (
        num(&letterbox["input_hw"][0]) as usize,
        num(&letterbox["input_hw"][1]) as usize,
    );
    let (new_w, new_h) = (num(&letterbox["new_unpad_wh"][0]), num(&letterbox["new_unpad_wh"][1]));
    let pts: Vec<(i64, i64)> = polygon
        .iter()
        .map(|&(x, y)| ((x * gx + pad_l).round() as i64, (y * gy + pad_t).round() as i64))
        .collect();
    let mut input = vec![false; in_w * in_h];
    let mut mark = |x: i64, y: i64| {
        if (0..in_w as i64).contains(&x) && (0..in_h as i64).contains(&y) {
            input[y as usize * in_w + x as usize] = true;
        }
    };
    // The outline itself: contour edges run in the 8 chain directions.
    for i in 0..pts.len() {
        let (a, b) = (pts[i], pts[(i + 1) % pts.len()]);
        let steps = (b.0 - a.0).abs().max((b.1 - a.1).abs()).max(1);
        for k in 0..=steps {
            mark(a.0 + (b.0 - a.0) * k / steps, a.1 + (b.1 - a.1) * k / steps);
        }
    }
    // The inside: pixel indices strictly between crossings of each row.
    for y in 0..in_h as i64 {
        let yf = y as f64;
        let mut xs: Vec<f64> = Vec::new();
        for i in 0..pts.len() {
            let (a, b) = (pts[i], pts[(i + 1) % pts.len()]);
            let (ay, by) = (a.1 as f64, b.1 as f64);
            if (ay <= yf) != (by <= yf) {
                xs.push(a.0 as f64 + (yf - ay) / (by - ay) * (b.0 - a.0) as f64);
            }
        }
        xs.sort_by(f64::total_cmp);
        for pair in xs.chunks(2) {
            if let [x0, x1] = pair {
                for x in (x0.floor() as i64 + 1)..=(x1.ceil() as i64 - 1) {
                    mark(x, y);
                }
            }
        }
    }
    let map = |i: usize, gain: f64, pad: f64, len: f64| {
        (pad as usize + ((i as f64 + 0.5) * gain).floor() as usize).min(pad as usize + len as usize - 1)
    };
    let mut out = vec![false; width * height];
    for y in 0..height {
        let iy = map(y, gy, pad_t, new_h);
        for x in 0..width {
            out[y * width + x] = input[iy * in_w + map(x, gx, pad_l, new_w)];
        }
    }
    out
}

/// The number of 8-connected pieces of a mask.
fn pieces(mask: &[bool], width: usize) -> usize {
    let mut seen = vec![false; mask.len()];
    let mut count = 0;
    for start in 0..mask.len() {
        if !mask[start] || seen[start] {
            continue;
        }
        count += 1;
        let mut stack = vec![start];
        seen[start] = true;
        while let Some(i) = stack.pop() {
            let (x, y) = ((i % width) as i64, (i / width) as i64);
            for (dx, dy) in [(-1, -1), (0, -1), (1, -1), (-1, 0), (1, 0), (-1, 1), (0, 1), (1, 1)] {
                let (nx, ny) = (x + dx, y + dy);
                if nx < 0 || ny < 0 || nx >= width as i64 {
                    continue;
                }
                let j = ny as usize * width + nx as usize;
                if j < mask.len() && mask[j] && !seen[j] {
                    seen[j] = true;
                    stack.push(j);
                }
            }
        }
    }
    count
}

/// Fills the holes of a mask: what its outer outline encloses.
fn without_holes(mask: &[bool], width: usize, height: usize) -> Vec<bool> {
    // Background reachable from the border stays background; the rest is inside.
    let mut outside = vec![false; mask.len()];
    let mut stack: Vec<usize> = (0..width)
        .flat_map(|x| [x, (height - 1) * width + x])
        .chain((0..height).flat_map(|y| [y * width, y * width + width - 1]))
        .filter(|&i| !mask[i])
        .collect();
    while let Some(i) = stack.pop() {
        if outside[i] || mask[i] {
            continue;
        }
        outside[i] = true;
        let (x, y) = (i % width, i / width);
        if x > 0 {
            stack.push(i - 1)
        }
        if x + 1 < width {
            stack.push(i + 1)
        }
        if y > 0 {
            stack.push(i - width)
        }
        if y + 1 < height {
            stack.push(i + width)
        }
    }
    outside.iter().map(|o| !o).collect()
}

fn shoelace(points: &[(f64, f64)]) -> f64 {
    let n = points.len();
    (0..n)
        .map(|i| points[i].0 * points[(i + 1) % n].1 - points[(i + 1) % n].0 * points[i].1)
        .sum::<f64>()
        .abs()
        / 2.0
}

/// The region of `kind` for a reference instance: same class, the closest score.
fn instance<'a>(candidates: &[&'a Value], kind: &str, class: &str, conf: f64) -> Option<&'a Value> {
    candidates
        .iter()
        .filter(|r| r["value"][kind][0] == class)
        .min_by(|a, b| {
            let da = (a["score"].as_f64().unwrap_or(0.0) - conf).abs();
            let db = (b["score"].as_f64().unwrap_or(0.0) - conf).abs();
            da.total_cmp(&db)
        })
        .filter(|r| (r["score"].as_f64().unwrap_or(0.0) - conf).abs() <= 0.01)
        .copied()
}

#[tokio::test]
async fn masks_polygons_and_boxes_match_ultralytics() {
    let server = Server::start_with_plugins(&[(SEG, SEG)], &[], &["yolov8_detect", "yolov8_seg"]).await;
    let (_, models) = server.get("/models").await;
    assert_eq!(models["models"][0]["adapter"], "yolov8-seg 0.1.0", "{models}");
    let (reference, results) = predict_eval_set(&server, "eval-a", SEG, &config()).await;
    let entries = reference["images"].as_array().expect("images");

    let mut boxes = MatchStats::default();
    let (mut instances, mut found, mut area_ok, mut iou_ok) = (0, 0, 0, 0);
    let (mut worst_area, mut worst_iou, mut iou_sum) = (0.0f64, 1.0f64, 0.0);
    let (mut single, mut worst_mask_area) = (0, 0.0f64);
    for (entry, prediction) in entries.iter().zip(&results) {
        let (w, h) = (
            entry["width"].as_u64().expect("w") as usize,
            entry["height"].as_u64().expect("h") as usize,
        );
        let rects: Vec<Value> = regions_of(prediction, "rectanglelabels").into_iter().cloned().collect();
        let ours = dets_of(&json!({ "result": rects }));
        match_dets(&reference_dets(entry), &ours, 0.98, 0.01, &mut boxes);
        let polygons = regions_of(prediction, "polygonlabels");
        let brushes = regions_of(prediction, "brushlabels");
        // A mask in several pieces has a polygon per piece.
        assert!(polygons.len() >= rects.len(), "a polygon per box");
        assert_eq!(brushes.len(), rects.len(), "a mask per box");

        for det in entry["detections"].as_array().expect("detections") {
            instances += 1;
            let class = det["class_name"].as_str().expect("class");
            let conf = det["confidence"].as_f64().expect("conf");
            let (Some(polygon), Some(brush_region)) = (
                instance(&polygons, "polygonlabels", class, conf),
                instance(&brushes, "brushlabels", class, conf),
            ) else {
                println!("  {}: no polygon/mask for {class} {conf}", entry["file_name"]);
                continue;
            };
            found += 1;
            let reference_polygon: Vec<(f64, f64)> = det["polygon_xy"]
                .as_array()
                .expect("polygon")
                .iter()
                .map(|p| (p[0].as_f64().expect("x"), p[1].as_f64().expect("y")))
                .collect();
            let ours_polygon: Vec<(f64, f64)> = polygon["value"]["points"]
                .as_array()
                .expect("points")
                .iter()
                .map(|p| {
                    (
                        p[0].as_f64().expect("x") * w as f64 / 100.0,
                        p[1].as_f64().expect("y") * h as f64 / 100.0,
                    )
                })
                .collect();
            let expected_area = det["polygon_area_orig"].as_f64().expect("area");
            let area_diff = (shoelace(&ours_polygon) - expected_area).abs() / expected_area;

            let rle = rle_of(brush_region);
            let decoded = brush::decode(&rle).expect("our decoder reads it");
            assert_eq!(decoded.len(), w * h * 4, "the RLE covers the image exactly");
            let mask: Vec<bool> = decoded.chunks(4).map(|px| px[3] == 255).collect();
            // Ultralytics' outline of a mask in several pieces is its pieces' outlines joined
            // into one list, whose area means nothing; ours is the largest piece's.
            let one_piece = pieces(&mask, w) == 1;
            if one_piece {
                single += 1;
                worst_area = worst_area.max(area_diff);
                area_ok += (area_diff <= 0.02) as usize;
            }
            // The mask's own area, holes included, against Ultralytics' mask area.
            let pixels = mask.iter().filter(|m| **m).count() as f64;
            let expected_pixels = det["mask_area_orig"].as_f64().expect("mask area");
            worst_mask_area = worst_mask_area.max((pixels - expected_pixels).abs() / expected_pixels);
            // The reference polygon is an outer outline: compare shapes without holes.
            let iou = mask_iou(
                &without_holes(&mask, w, h),
                &reference_mask(&reference_polygon, &entry["letterbox"], w, h),
            );
            worst_iou = worst_iou.min(iou);
            iou_sum += iou;
            iou_ok += (iou >= 0.95) as usize;
            if (one_piece && area_diff > 0.02) || iou < 0.95 {
                println!(
                    "  {} {class} {conf}: polygon area {:.1} vs {expected_area} ({:.2}%), mask IoU {iou:.4}",
                    entry["file_name"],
                    shoelace(&ours_polygon),
                    area_diff * 100.0
                );
            }
        }
    }
    report(&format!(
        "seg parity {SEG}: boxes {}/{} matched, {} extra, min IoU {:.4}, max |dconf| {:.5}; instances with polygon \
         and mask {found}/{instances}; polygon area within 2%: {area_ok}/{single} one-piece outlines (worst {:.2}%; \
         {} in several pieces, not comparable); mask IoU >= 0.95: {iou_ok}/{found} (mean {:.4}, worst \
         {worst_iou:.4}); mask area vs Ultralytics' worst {:.2}%",
        boxes.matched,
        boxes.reference,
        boxes.extra(),
        boxes.min_iou,
        boxes.max_conf_diff,
        worst_area * 100.0,
        found - single,
        iou_sum / found.max(1) as f64,
        worst_mask_area * 100.0,
    ));
    assert!(
        boxes.matched_ratio() >= 0.99 && boxes.extra_ratio() <= 0.01,
        "box parity"
    );
    assert_eq!(found, instances, "every reference instance has a polygon and a mask");
    assert!(single * 3 >= found * 2, "most masks are one piece ({single}/{found})");
    assert_eq!(area_ok, single, "every one-piece polygon area within 2%");
    assert_eq!(iou_ok, found, "every mask IoU >= 0.95");
}

/// Label Studio's own decoder reads our RLE of every real mask into exactly the bytes ours does.
#[tokio::test]
#[ignore = "needs Label Studio's SDK (scripts/setup-label-studio.sh); scripts/test.sh runs it"]
async fn label_studios_sdk_decodes_our_brush_masks_byte_for_byte() {
    let server = Server::start_with_plugins(&[(SEG, SEG)], &[], &["yolov8_detect", "yolov8_seg"]).await;
    let (_, results) = predict_eval_set(&server, "eval-a", SEG, &config()).await;
    let rles: Vec<Vec<u8>> = results
        .iter()
        .flat_map(|prediction| regions_of(prediction, "brushlabels"))
        .map(rle_of)
        .collect();
    assert!(!rles.is_empty(), "the eval set has masks");
    let ours_decoded: Vec<(usize, String)> = rles
        .iter()
        .map(|rle| {
            let decoded = brush::decode(rle).expect("our decoder reads it");
            (decoded.len(), hex::encode(Sha256::digest(&decoded)))
        })
        .collect();
    let sdk = sdk_decode(&rles);
    assert_eq!(sdk.len(), ours_decoded.len());
    let identical = sdk.iter().zip(&ours_decoded).filter(|(a, b)| a == b).count();
    report(&format!(
        "brush RLE: label-studio-sdk decode_rle output byte-identical to ours for {identical}/{} real masks",
        sdk.len()
    ));
    assert_eq!(identical, sdk.len());
}

#[tokio::test]
async fn a_detection_model_fills_only_rectangles() {
    let images = serve_dir(eval_images());
    let server = Server::start(&[("yolov8n-shapes-det-320.onnx", "d.onnx")], &[]).await;
    let urls = [format!("http://{images}/eval-a_0000.png")];
    let (status, body) = server.post("/predict", &predict_body(&urls, "1.1", &config())).await;
    assert_eq!(status, 200, "{body}");
    let kinds: HashMap<String, usize> =
        body["results"][0]["result"]
            .as_array()
            .expect("result")
            .iter()
            .fold(HashMap::new(), |mut m, r| {
                *m.entry(r["type"].as_str().expect("type").to_string()).or_default() += 1;
                m
            });
    assert!(kinds.get("rectanglelabels").is_some_and(|n| *n > 0), "{kinds:?}");
    assert_eq!(kinds.len(), 1, "no polygons or masks from boxes: {kinds:?}");
}
