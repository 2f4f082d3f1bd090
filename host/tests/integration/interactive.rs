//! Interactive labeling with a YOLO segmentation model (FastSAM's method) through the real
//! server: Label Studio's smart tools send a click or a box in `params.context`, and the
//! answer is the model's own best instance under it, as a mask and a polygon (or, with only
//! a rectangle tag, its tight box). Every ground-truth object of eval-a is clicked at its
//! pole of inaccessibility; the answer must be exactly the instance a plain prediction at the
//! same threshold gives there, a negative click must take it away, and a jittered ground-truth
//! box must find the same instance.

use std::collections::HashMap;

use crate::common::*;
use serde_json::{Value, json};

const SEG: &str = "yolov8n-shapes-seg-320.onnx";

fn smart_config() -> String {
    r#"<View>
  <Image name="image" value="$image"/>
  <BrushLabels name="mask" toName="image"><Label value="circle"/><Label value="square"/><Label value="triangle"/></BrushLabels>
  <PolygonLabels name="outline" toName="image"><Label value="circle"/><Label value="square"/><Label value="triangle"/></PolygonLabels>
  <KeyPointLabels name="click" toName="image" smart="true"><Label value="circle" smart="true"/><Label value="square" smart="true"/><Label value="triangle" smart="true"/></KeyPointLabels>
  <RectangleLabels name="drag" toName="image" smart="true" model_skip="true"><Label value="circle"/><Label value="square"/><Label value="triangle"/></RectangleLabels>
</View>"#
        .to_string()
}

/// A ground-truth object of eval-a.
struct Object {
    file: String,
    width: f64,
    height: f64,
    class: String,
    polygon: Vec<(f64, f64)>,
    bbox: [f64; 4],
}

fn objects() -> Vec<Object> {
    let gt = load_json(&fixtures().join("eval-a/ground_truth_coco.json"));
    let images: HashMap<u64, &Value> = gt["images"]
        .as_array()
        .expect("images")
        .iter()
        .map(|i| (i["id"].as_u64().expect("id"), i))
        .collect();
    gt["annotations"]
        .as_array()
        .expect("annotations")
        .iter()
        .map(|a| {
            let image = images[&a["image_id"].as_u64().expect("image id")];
            let flat: Vec<f64> = a["segmentation"][0]
                .as_array()
                .expect("polygon")
                .iter()
                .map(|v| v.as_f64().expect("number"))
                .collect();
            let b: Vec<f64> = a["bbox_xyxy"]
                .as_array()
                .expect("box")
                .iter()
                .map(|v| v.as_f64().expect("number"))
                .collect();
            Object {
                file: image["file_name"].as_str().expect("file").to_string(),
                width: image["width"].as_f64().expect("width"),
                height: image["height"].as_f64().expect("height"),
                class: a["class_name"].as_str().expect("class").to_string(),
                polygon: flat.chunks(2).map(|p| (p[0], p[1])).collect(),
                bbox: [b[0], b[1], b[2], b[3]],
            }
        })
        .collect()
}

fn inside(polygon: &[(f64, f64)], x: f64, y: f64) -> bool {
    let mut yes = false;
    let n = polygon.len();
    for i in 0..n {
        let (a, b) = (polygon[i], polygon[(i + n - 1) % n]);
        if (a.1 > y) != (b.1 > y) && x < (b.0 - a.0) * (y - a.1) / (b.1 - a.1) + a.0 {
            yes = !yes;
        }
    }
    yes
}

fn edge_distance(polygon: &[(f64, f64)], x: f64, y: f64) -> f64 {
    let n = polygon.len();
    (0..n)
        .map(|i| {
            let (a, b) = (polygon[i], polygon[(i + 1) % n]);
            let (dx, dy) = (b.0 - a.0, b.1 - a.1);
            let len2 = dx * dx + dy * dy;
            let t = if len2 > 0.0 {
                (((x - a.0) * dx + (y - a.1) * dy) / len2).clamp(0.0, 1.0)
            } else {
                0.0
            };
            ((x - a.0 - t * dx).powi(2) + (y - a.1 - t * dy).powi(2)).sqrt()
        })
        .fold(f64::INFINITY, f64::min)
}

/// The interior point farthest from the outline (the pole of inaccessibility), on a fine grid.
fn pole(polygon: &[(f64, f64)], b: [f64; 4]) -> (f64, f64) {
    let mut best = ((b[0] + b[2]) / 2.0, (b[1] + b[3]) / 2.0, -1.0);
    for i in 0..=60 {
        for j in 0..=60 {
            let x = b[0] + (b[2] - b[0]) * i as f64 / 60.0;
            let y = b[1] + (b[3] - b[1]) * j as f64 / 60.0;
            if inside(polygon, x, y) {
                let d = edge_distance(polygon, x, y);
                if d > best.2 {
                    best = (x, y, d);
                }
            }
        }
    }
    (best.0, best.1)
}

fn click(x: f64, y: f64, o: &Object, positive: bool, label: &str) -> Value {
    json!({
        "id": "k", "from_name": "click", "to_name": "image", "type": "keypointlabels", "origin": "manual",
        "original_width": o.width, "original_height": o.height, "image_rotation": 0, "is_positive": positive,
        "value": {"x": x / o.width * 100.0, "y": y / o.height * 100.0, "width": 0.5, "keypointlabels": [label]}
    })
}

fn drag(b: [f64; 4], o: &Object, label: &str) -> Value {
    json!({
        "id": "r", "from_name": "drag", "to_name": "image", "type": "rectanglelabels", "origin": "manual",
        "original_width": o.width, "original_height": o.height, "image_rotation": 0,
        "value": {"x": b[0] / o.width * 100.0, "y": b[1] / o.height * 100.0,
                  "width": (b[2] - b[0]) / o.width * 100.0, "height": (b[3] - b[1]) / o.height * 100.0,
                  "rotation": 0, "rectanglelabels": [label]}
    })
}

fn interactive_body(url: &str, config: &str, context: Value) -> Value {
    let mut body = predict_body(&[url.to_string()], "7", config);
    body["params"]["context"] = context;
    body
}

async fn ask(server: &Server, url: &str, config: &str, regions: Vec<Value>) -> Value {
    let (status, answer) = server
        .post("/predict", &interactive_body(url, config, json!({ "result": regions })))
        .await;
    assert_eq!(status, 200, "{answer}");
    let results = answer["results"].as_array().expect("results");
    assert_eq!(results.len(), 1, "one prediction for the one task: {answer}");
    results[0].clone()
}

fn at(mask: &[bool], width: usize, x: f64, y: f64) -> bool {
    mask[y as usize * width + x as usize]
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    if v.is_empty() { 0.0 } else { v[v.len() / 2] }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clicks_and_boxes_pick_the_models_own_instance_on_eval_a() {
    // The plain prediction runs at the same threshold as the interactive one, so it holds every
    // instance the prompt could pick.
    let server = Server::start_with_plugins(&[(SEG, "seg.onnx")], &[("ML_CONF", "0.05")], &["yolov8_seg"]).await;
    let images = serve_dir(eval_images());
    let config = smart_config();
    let objects = objects();
    let mut plain: HashMap<String, Value> = HashMap::new();
    let (mut gt_ious, mut same_box, mut removed, mut answered) = (Vec::new(), 0usize, 0usize, 0usize);
    let mut checked = 0usize;
    for o in &objects {
        let url = format!("http://{images}/{}", o.file);
        let (w, h) = (o.width as usize, o.height as usize);
        if !plain.contains_key(&o.file) {
            let (status, answer) = server
                .post("/predict", &predict_body(std::slice::from_ref(&url), "7", &config))
                .await;
            assert_eq!(status, 200);
            plain.insert(o.file.clone(), answer["results"][0].clone());
        }
        let (px, py) = pole(&o.polygon, o.bbox);
        // The model's own best instance under the click: the highest score whose mask holds it,
        // of the annotator's class where there is one.
        let under: Vec<(f64, Vec<bool>, bool)> = regions_of(&plain[&o.file], "brushlabels")
            .into_iter()
            .map(|r| {
                (
                    r["score"].as_f64().expect("score"),
                    brush_mask(r, w, h),
                    r["value"]["brushlabels"][0] == o.class.as_str(),
                )
            })
            .filter(|(_, m, _)| at(m, w, px, py))
            .collect();
        let of_class = under.iter().any(|u| u.2);
        let expected = under
            .into_iter()
            .filter(|u| u.2 || !of_class)
            .max_by(|a, b| a.0.total_cmp(&b.0));

        let answer = ask(&server, &url, &config, vec![click(px, py, o, true, &o.class)]).await;
        let masks = regions_of(&answer, "brushlabels");
        let polygons = regions_of(&answer, "polygonlabels");
        checked += 1;
        let Some((score, expected_mask, _)) = &expected else {
            assert!(
                answer["result"].as_array().expect("result").is_empty(),
                "nothing under the click: {answer}"
            );
            continue;
        };
        answered += 1;
        assert_eq!(masks.len(), 1, "{}: one mask: {answer}", o.file);
        assert!(!polygons.is_empty(), "{}: and its outline", o.file);
        assert!(regions_of(&answer, "keypointlabels").is_empty() && regions_of(&answer, "rectanglelabels").is_empty());
        assert_eq!(
            masks[0]["value"]["brushlabels"][0],
            o.class.as_str(),
            "the annotator's label"
        );
        assert_eq!(polygons[0]["value"]["polygonlabels"][0], o.class.as_str());
        let ours = brush_mask(masks[0], w, h);
        assert_eq!(
            &ours, expected_mask,
            "{}: the model's own best instance under the click",
            o.file
        );
        assert!((masks[0]["score"].as_f64().expect("score") - score).abs() < 1e-6);
        let truth: Vec<bool> = (0..w * h)
            .map(|i| inside(&o.polygon, (i % w) as f64 + 0.5, (i / w) as f64 + 0.5))
            .collect();
        gt_ious.push(mask_iou(&ours, &truth));

        // A negative click elsewhere on the chosen mask takes that instance away.
        let off = (0..w * h)
            .filter(|&i| ours[i])
            .map(|i| ((i % w) as f64 + 0.5, (i / w) as f64 + 0.5))
            .max_by(|a, b| {
                let d = |p: &(f64, f64)| (p.0 - px).powi(2) + (p.1 - py).powi(2);
                d(a).total_cmp(&d(b))
            })
            .expect("a pixel of the mask");
        let without = ask(
            &server,
            &url,
            &config,
            vec![
                click(px, py, o, true, &o.class),
                click(off.0, off.1, o, false, &o.class),
            ],
        )
        .await;
        let still = regions_of(&without, "brushlabels");
        assert!(
            still.iter().all(|r| !at(&brush_mask(r, w, h), w, off.0, off.1)),
            "{}: no answer holds the negative click",
            o.file
        );
        removed += 1;

        // The ground-truth box, jittered by 3 % of its size, finds the same instance.
        let (bw, bh) = (o.bbox[2] - o.bbox[0], o.bbox[3] - o.bbox[1]);
        let jittered = [
            o.bbox[0] - 0.03 * bw,
            o.bbox[1] + 0.03 * bh,
            (o.bbox[2] + 0.02 * bw).min(o.width),
            (o.bbox[3] - 0.03 * bh).min(o.height),
        ];
        let boxed = ask(&server, &url, &config, vec![drag(jittered, o, &o.class)]).await;
        if let [only] = regions_of(&boxed, "brushlabels").as_slice()
            && brush_mask(only, w, h) == ours
        {
            same_box += 1;
        }
    }
    let share = gt_ious.iter().filter(|v| **v >= 0.5).count() as f64 / gt_ious.len().max(1) as f64;
    report(&format!(
        "interactive YOLO-seg on eval-a: {checked} objects clicked, {answered} answered with the model's own instance; \
         mask IoU with ground truth median {:.3}, share >= 0.5 {:.1} %; {removed} removed by a negative click; a \
         jittered box found the same instance for {same_box} of {answered}",
        median(gt_ious.clone()),
        share * 100.0
    ));
    assert!(
        answered as f64 >= 0.9 * checked as f64,
        "{answered} of {checked} clicks found an object"
    );
    assert!(
        share >= 0.9,
        "share of answers overlapping the ground truth at IoU >= 0.5: {share}"
    );
    assert!(same_box as f64 >= 0.9 * answered as f64, "{same_box} of {answered}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_box_alone_refines_to_the_tight_box_and_bad_prompts_get_empty_answers() {
    let server = Server::start_with_plugins(&[(SEG, "seg.onnx")], &[], &["yolov8_seg"]).await;
    let images = serve_dir(eval_images());
    let objects = objects();
    let o = &objects[0];
    let url = format!("http://{images}/{}", o.file);
    // No mask tag: the smart rectangle's box comes back as the object's tight box.
    let rect_only = r#"<View><Image name="image" value="$image"/>
      <RectangleLabels name="drag" toName="image" smart="true"><Label value="circle"/><Label value="square"/><Label value="triangle"/></RectangleLabels></View>"#;
    let (bw, bh) = (o.bbox[2] - o.bbox[0], o.bbox[3] - o.bbox[1]);
    let loose = [
        o.bbox[0] - 0.05 * bw,
        o.bbox[1] - 0.05 * bh,
        o.bbox[2] + 0.05 * bw,
        o.bbox[3] + 0.05 * bh,
    ];
    let answer = ask(&server, &url, rect_only, vec![drag(loose, o, &o.class)]).await;
    let boxes = regions_of(&answer, "rectanglelabels");
    assert_eq!(boxes.len(), 1, "{answer}");
    let v = &boxes[0]["value"];
    let num = |k: &str| v[k].as_f64().expect("number");
    let refined = [
        num("x") / 100.0 * o.width,
        num("y") / 100.0 * o.height,
        (num("x") + num("width")) / 100.0 * o.width,
        (num("y") + num("height")) / 100.0 * o.height,
    ];
    let loose_iou = iou(&loose, &o.bbox);
    let refined_iou = iou(&refined, &o.bbox);
    report(&format!(
        "box refinement: the drawn box's IoU with ground truth {loose_iou:.3}, the answer's {refined_iou:.3}"
    ));
    assert!(
        refined_iou > loose_iou && refined_iou > 0.85,
        "{refined:?} vs {:?}",
        o.bbox
    );
    assert_eq!(v["rectanglelabels"][0], o.class.as_str());

    let config = smart_config();
    let (px, py) = pole(&o.polygon, o.bbox);
    let good = click(px, py, o, true, &o.class);
    let mut outside = good.clone();
    outside["value"]["x"] = json!(120.0);
    let mut nan = good.clone();
    nan["value"]["x"] = json!("NaN");
    let unknown = click(px, py, o, true, "hexagon");
    let flood: Vec<Value> = (0..10_000).map(|_| good.clone()).collect();
    let cases: Vec<(&str, Value)> = vec![
        ("an empty context", json!({ "result": [] })),
        ("a click outside the image", json!({ "result": [outside] })),
        ("a NaN coordinate", json!({ "result": [nan] })),
        ("a label not in the config", json!({ "result": [unknown] })),
        ("10,000 clicks", json!({ "result": flood })),
    ];
    for (what, context) in cases {
        let (status, answer) = server.post("/predict", &interactive_body(&url, &config, context)).await;
        assert_eq!(status, 200, "{what}: {answer}");
        let results = answer["results"].as_array().expect("results");
        assert_eq!(results.len(), 1, "{what}");
        assert!(
            results[0]["result"].as_array().expect("result").is_empty(),
            "{what}: {answer}"
        );
    }
    let log = server.log();
    for reason in [
        "no regions in context.result",
        "outside the image",
        "is in none of the tags",
        "at most 64",
    ] {
        assert!(log.contains(reason), "the log says why ({reason})");
    }
    // And the server still answers the good prompt.
    let answer = ask(&server, &url, &config, vec![good]).await;
    assert_eq!(regions_of(&answer, "brushlabels").len(), 1, "{answer}");
    assert!(
        server.log().contains("interactive: task"),
        "one log line per interactive request"
    );
}
