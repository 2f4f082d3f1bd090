//! Interactive labeling latency, end to end through the release server, against plain ONNX
//! Runtime `session.run` of the same graphs:
//! - segment-anything (the two-file fixture): a first click on a new image (encode + decode)
//!   and a repeated click (the embedding cached: decode only), against the encoder's and the
//!   decoder's bare `session.run`;
//! - a YOLO segmentation model: one interactive request (a click) against one plain /predict.
//!
//! Every request is a whole HTTP round trip: the image from a local HTTP server, decode,
//! prompt, inference, mask, outline, Label Studio JSON. Run it on an otherwise idle machine.
//!   target/release/interactive-bench --repo .

use std::{
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use anyhow::{Context as _, bail};
use clap::Parser;
use ort::{
    session::{Session, builder::GraphOptimizationLevel},
    value::TensorRef,
};
use serde_json::{Value, json};

#[derive(Parser)]
struct Args {
    /// The repository (fixtures, target/release, vendor/onnxruntime).
    #[arg(long, default_value = ".")]
    repo: PathBuf,
    /// Rounds per measurement (the median is printed).
    #[arg(long, default_value_t = 15)]
    rounds: usize,
}

const SEG: &str = "yolov8n-shapes-seg-320.onnx";
const SAM: &str = "sam-tiny";
const CONFIG: &str = r#"<View><Image name="image" value="$image"/>
  <BrushLabels name="mask" toName="image"><Label value="circle"/><Label value="square"/><Label value="triangle"/></BrushLabels>
  <PolygonLabels name="outline" toName="image"><Label value="circle"/><Label value="square"/><Label value="triangle"/></PolygonLabels>
  <KeyPointLabels name="click" toName="image" smart="true" model_skip="true"><Label value="circle"/><Label value="square"/><Label value="triangle"/></KeyPointLabels>
</View>"#;

trait Plain<T> {
    fn plain(self) -> anyhow::Result<T>;
}

impl<T, E: std::fmt::Display> Plain<T> for Result<T, E> {
    fn plain(self) -> anyhow::Result<T> {
        self.map_err(|e| anyhow::anyhow!("{e}"))
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(0.0)
}

fn ms(t: Instant) -> f64 {
    t.elapsed().as_secs_f64() * 1e3
}

/// A plain session on all cores with all optimizations, ONNX Runtime's defaults otherwise.
fn session(env: &ort::environment::Environment, path: &Path) -> anyhow::Result<Session> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    Session::builder(env)
        .plain()?
        .with_optimization_level(GraphOptimizationLevel::All)
        .plain()?
        // Its threads stop spinning when a run ends, as the server's do: spinning on would steal
        // the cores from the server's request that is timed right after.
        .with_config_entry("session.force_spinning_stop", "1")
        .plain()?
        .with_intra_threads(threads)
        .plain()?
        .commit_from_file(path)
        .plain()
}

/// Plain sessions of SAM's two graphs, timed one `session.run` at a time, so that each can be
/// measured right beside the server's answer for the same image (this machine's speed drifts).
struct BareSam {
    encoder: Session,
    decoder: Session,
    image: Vec<f32>,
    embedding: Vec<f32>,
    dims: Vec<usize>,
    mask_input: Vec<f32>,
}

impl BareSam {
    fn new(env: &ort::environment::Environment, models: &Path) -> anyhow::Result<Self> {
        let mut bare = BareSam {
            encoder: session(env, &models.join(format!("{SAM}.encoder.onnx")))?,
            decoder: session(env, &models.join(format!("{SAM}.decoder.onnx")))?,
            image: vec![0.1f32; 3 * 1024 * 1024],
            embedding: Vec::new(),
            dims: Vec::new(),
            mask_input: Vec::new(),
        };
        // Two untimed runs of each graph first.
        for _ in 0..2 {
            bare.encode()?;
            bare.decode(640, 480)?;
        }
        Ok(bare)
    }

    fn encode(&mut self) -> anyhow::Result<f64> {
        let t = Instant::now();
        let outputs = self
            .encoder
            .run(ort::inputs![
                TensorRef::from_array_view(([1usize, 3, 1024, 1024], self.image.as_slice())).plain()?
            ])
            .plain()?;
        let took = ms(t);
        let (shape, values) = outputs[0].try_extract_tensor::<f32>().plain()?;
        self.dims = shape.iter().map(|d| *d as usize).collect();
        self.embedding = values.to_vec();
        self.mask_input = vec![0.0f32; 16 * self.dims[2] * self.dims[3]];
        Ok(took)
    }

    /// One decoder run for a click in the middle of a `w` x `h` image (its masks come out at
    /// the image's size, so the cost depends on it).
    fn decode(&mut self, w: usize, h: usize) -> anyhow::Result<f64> {
        let (mh, mw) = (4 * self.dims[2], 4 * self.dims[3]);
        let coords = [w as f32 / 2.0, h as f32 / 2.0, 0.0, 0.0];
        let labels = [1.0f32, -1.0];
        let t = Instant::now();
        let outputs = self
            .decoder
            .run(ort::inputs![
                "image_embeddings" => TensorRef::from_array_view((self.dims.clone(), self.embedding.as_slice())).plain()?,
                "point_coords" => TensorRef::from_array_view(([1usize, 2, 2], coords.as_slice())).plain()?,
                "point_labels" => TensorRef::from_array_view(([1usize, 2], labels.as_slice())).plain()?,
                "mask_input" => TensorRef::from_array_view(([1usize, 1, mh, mw], self.mask_input.as_slice())).plain()?,
                "has_mask_input" => TensorRef::from_array_view(([1usize], [0.0f32].as_slice())).plain()?,
                "orig_im_size" => TensorRef::from_array_view(([2usize], [h as f32, w as f32].as_slice())).plain()?,
            ])
            .plain()?;
        let took = ms(t);
        drop(outputs);
        Ok(took)
    }
}

fn bare_seg(env: &ort::environment::Environment, models: &Path, rounds: usize) -> anyhow::Result<f64> {
    let mut seg = session(env, &models.join(SEG))?;
    let input = vec![0.5f32; 3 * 320 * 320];
    let mut times = Vec::new();
    for round in 0..rounds + 2 {
        let t = Instant::now();
        drop(
            seg.run(ort::inputs![
                TensorRef::from_array_view(([1usize, 3, 320, 320], input.as_slice())).plain()?
            ])
            .plain()?,
        );
        if round >= 2 {
            times.push(ms(t));
        }
    }
    Ok(median(times))
}

struct ServerProcess(Child);

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

fn start_server(repo: &Path, models: &Path, port: u16) -> anyhow::Result<ServerProcess> {
    let exe = repo.join("target/release/ls-ml-backend");
    let child = Command::new(&exe)
        .env("ML_BACKEND_ADDR", "127.0.0.1")
        .env("ML_BACKEND_PORT", port.to_string())
        .env("ML_MODELS_DIR", models)
        .env("ML_PLUGINS_DIR", repo.join("target/release"))
        .env("ML_WATCH", "off")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .with_context(|| format!("starting {}", exe.display()))?;
    Ok(ServerProcess(child))
}

fn click(x: f64, y: f64, w: f64, h: f64) -> Value {
    json!({"id": "k", "from_name": "click", "to_name": "image", "type": "keypointlabels", "is_positive": true,
           "original_width": w, "original_height": h,
           "value": {"x": x / w * 100.0, "y": y / h * 100.0, "width": 0.5, "keypointlabels": ["circle"]}})
}

fn body(url: &str, model: &str, context: Value) -> Value {
    let config = CONFIG.replace("name=\"mask\"", &format!("name=\"mask\" model_path=\"{model}\""));
    let config = config.replace("name=\"outline\"", &format!("name=\"outline\" model_path=\"{model}\""));
    json!({"tasks": [{"id": 1, "data": {"image": url}}], "label_config": config, "project": "1",
           "params": {"login": null, "password": null, "context": context}})
}

async fn timed(client: &reqwest::Client, url: &str, body: &Value) -> anyhow::Result<(f64, Value)> {
    let t = Instant::now();
    let answer: Value = client
        .post(url)
        .json(body)
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    Ok((ms(t), answer))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let repo = args.repo.canonicalize()?;
    let fixtures = repo.join("tests/fixtures");
    let models = tempfile::tempdir()?;
    for file in [
        SEG.to_string(),
        format!("{SAM}.encoder.onnx"),
        format!("{SAM}.decoder.onnx"),
    ] {
        std::fs::copy(fixtures.join("models").join(&file), models.path().join(&file))
            .with_context(|| format!("copying {file} (make it with scripts/fixtures/make-sam-fixture.py)"))?;
    }
    let env = ort::init_from(repo.join("vendor/onnxruntime/libonnxruntime.so"))
        .plain()?
        .with_telemetry(false)
        .build()
        .plain()?;

    let images_dir = fixtures.join("eval-a/images");
    let manifest: Value = serde_json::from_slice(&std::fs::read(fixtures.join("eval-a/manifest.json"))?)?;
    let images: Vec<(String, f64, f64)> = manifest
        .as_array()
        .context("manifest")?
        .iter()
        .map(|e| {
            (
                e["file_name"].as_str().unwrap_or_default().to_string(),
                e["width"].as_f64().unwrap_or(0.0),
                e["height"].as_f64().unwrap_or(0.0),
            )
        })
        .collect();
    let files = warp::fs::dir(images_dir);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let files_addr = listener.local_addr()?;
    tokio::spawn(warp::serve(files).incoming(listener).run());

    let port = free_port()?;
    let _server = start_server(&repo, models.path(), port)?;
    let client = reqwest::Client::new();
    let listing = format!("http://127.0.0.1:{port}/models");
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let ready = match client.get(&listing).send().await {
            Ok(r) => r.json::<Value>().await.ok().is_some_and(|v| {
                v["models"]
                    .as_array()
                    .is_some_and(|m| m.len() == 2 && m.iter().all(|m| m["state"] == "ready"))
            }),
            Err(_) => false,
        };
        if ready {
            break;
        }
        if Instant::now() > deadline {
            bail!("the server did not come up");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let predict = format!("http://127.0.0.1:{port}/predict");

    // segment-anything: per image, the bare runs, a first click, then repeated clicks.
    let mut bare = BareSam::new(&env, models.path())?;
    let (mut encoders, mut decoders) = (Vec::new(), Vec::new());
    let (mut first, mut repeated) = (Vec::new(), Vec::new());
    let (mut first_ratio, mut repeated_ratio) = (Vec::new(), Vec::new());
    let again = args.rounds.div_ceil(images.len()).max(3);
    for (file, w, h) in &images {
        let (wu, hu) = (*w as usize, *h as usize);
        let encoder = bare.encode()?;
        let decoder = median(
            (0..again)
                .map(|_| bare.decode(wu, hu))
                .collect::<anyhow::Result<Vec<f64>>>()?,
        );
        let url = format!("http://{files_addr}/{file}");
        let context = json!({"result": [click(w / 2.0, h / 2.0, *w, *h)]});
        let (t, answer) = timed(&client, &predict, &body(&url, SAM, context.clone())).await?;
        if answer["results"][0]["result"].as_array().is_none_or(Vec::is_empty) {
            eprintln!("note: no mask for {file}");
        }
        first.push(t);
        first_ratio.push(t / (encoder + decoder));
        let mut clicks = Vec::new();
        for _ in 0..again {
            clicks.push(timed(&client, &predict, &body(&url, SAM, context.clone())).await?.0);
        }
        let t = median(clicks);
        repeated.push(t);
        repeated_ratio.push(t / decoder);
        encoders.push(encoder);
        decoders.push(decoder);
    }
    let encoder = median(encoders);
    println!(
        "interactive-bench on {} cores, eval-a images ({} of them, 240-640 px on their longest side)",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        images.len()
    );
    println!("segment-anything fixture ({SAM}: narrow TinyViT encoder + SAM's decoder), medians over the images:");
    println!(
        "  bare session.run: encoder {encoder:.1} ms; decoder {:.1} ms (at each image's size: {:.1} to {:.1} ms)",
        median(decoders.clone()),
        decoders.iter().copied().fold(f64::INFINITY, f64::min),
        decoders.iter().copied().fold(0.0, f64::max)
    );
    println!(
        "  first click on a new image (HTTP round trip): {:.1} ms, {:.2}x the bare encoder + decoder",
        median(first),
        median(first_ratio)
    );
    println!(
        "  repeated click (embedding cached): {:.1} ms, {:.2}x the bare decoder",
        median(repeated),
        median(repeated_ratio)
    );

    // YOLO-seg: one interactive click against one plain prediction, on each image.
    let (mut plain, mut prompted) = (Vec::new(), Vec::new());
    for _ in 0..args.rounds.div_ceil(images.len()).max(2) {
        for (file, w, h) in &images {
            let url = format!("http://{files_addr}/{file}");
            let model = SEG.trim_end_matches(".onnx");
            plain.push(timed(&client, &predict, &body(&url, model, Value::Null)).await?.0);
            let context = json!({"result": [click(w / 2.0, h / 2.0, *w, *h)]});
            prompted.push(timed(&client, &predict, &body(&url, model, context)).await?.0);
        }
    }
    let bare = bare_seg(&env, models.path(), args.rounds)?;
    let (plain_ms, prompted_ms) = (median(plain), median(prompted));
    println!("YOLO-seg ({SEG}), medians:");
    println!("  bare session.run {bare:.1} ms");
    println!(
        "  plain /predict {plain_ms:.1} ms, interactive click {prompted_ms:.1} ms ({:.2}x the plain prediction)",
        prompted_ms / plain_ms
    );
    Ok(())
}
