//! The web page in a real browser: Debian's Chromium, driven through chromedriver
//! (`scripts/setup-browser.sh` installs both). Open `/`, upload the detection fixture and
//! watch it become ready, change its labels and see the version change, try it on an eval-a
//! image and compare the drawn boxes with the API's, delete it; then submit a prediction job
//! from the Jobs form and see it fail (no Label Studio here) in the jobs table. A screenshot of
//! each step goes to `target/ui-screenshots/`.

use std::{
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use crate::common::*;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};

const DET: &str = "yolov8n-shapes-det-320.onnx";
const IMAGE: &str = "eval-a_0000.png";

struct Driver(Child);

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn browser() -> (Driver, Client) {
    let port = free_port();
    let driver = Command::new("chromedriver")
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("chromedriver (scripts/setup-browser.sh installs it)");
    let driver = Driver(driver);
    let mut capabilities = serde_json::Map::new();
    capabilities.insert(
        "goog:chromeOptions".into(),
        json!({
            "binary": "/usr/bin/chromium",
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1400,1000"]
        }),
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(capabilities.clone())
            .connect(&format!("http://127.0.0.1:{port}"))
            .await
        {
            Ok(client) => return (driver, client),
            Err(e) if Instant::now() < deadline => {
                let _ = e;
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(e) => panic!("chromedriver did not start a browser: {e}"),
        }
    }
}

fn shots() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/ui-screenshots");
    std::fs::create_dir_all(&dir).expect("screenshots dir");
    dir
}

async fn shot(client: &Client, name: &str) {
    let png = client.screenshot().await.expect("screenshot");
    std::fs::write(shots().join(format!("{name}.png")), png).expect("write screenshot");
}

/// Waits until `check` holds, polling the page.
async fn until<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + Duration::from_secs(60);
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Clicks the element. The page redraws its tables as models change state, so an element
/// found a moment ago can be gone by the click ("stale"): then it is found again.
async fn click(client: &Client, css: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let element = client
            .find(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("{css}: {e}"));
        match element.click().await {
            Ok(()) => return,
            Err(e) if e.to_string().contains("stale element") && Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => panic!("clicking {css}: {e}"),
        }
    }
}

async fn type_into(client: &Client, css: &str, text: &str) {
    client
        .find(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("{css}: {e}"))
        .send_keys(text)
        .await
        .unwrap_or_else(|e| panic!("typing into {css}: {e}"));
}

async fn row_text(client: &Client, column: usize) -> String {
    match client
        .find(Locator::Css(&format!("tr[data-model=\"det\"] td:nth-child({column})")))
        .await
    {
        Ok(cell) => cell.text().await.unwrap_or_default(),
        Err(_) => String::new(),
    }
}

/// A cell of the det row once `ok` holds for its text (30 s at most), as the page redraws.
async fn cell_when(client: &Client, column: usize, ok: impl Fn(&str) -> bool) -> String {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let text = row_text(client, column).await;
        if ok(&text) {
            return text;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "column {column} of the det row is `{text}`"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The visible text of the element, or "" if there is none.
async fn text_of(client: &Client, css: &str) -> String {
    match client.find(Locator::Css(css)).await {
        Ok(element) => element.text().await.unwrap_or_default(),
        Err(_) => String::new(),
    }
}

/// `GET /jobs`, through the API.
async fn jobs_of(server: &Server) -> Vec<Value> {
    let body: Value = server
        .http
        .get(server.url("/jobs"))
        .send()
        .await
        .expect("GET /jobs")
        .json()
        .await
        .expect("json");
    body["jobs"].as_array().cloned().unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs Chromium and chromedriver (scripts/setup-browser.sh); scripts/test.sh runs it"]
async fn upload_configure_try_and_delete_in_a_real_browser() {
    let server = Server::start_in(
        tempfile::tempdir().expect("models"),
        plugins_dir(&["yolov8_detect"]),
        &[],
    )
    .await;
    let (_driver, client) = browser().await;

    // 1. A browser at / lands on the page.
    client.goto(&server.url("/")).await.expect("open /");
    let url = client.current_url().await.expect("url");
    assert_eq!(url.path(), "/ui");
    until("the empty models table", || async {
        client.find(Locator::Css("#model-rows")).await.is_ok() && row_text(&client, 1).await.is_empty()
    })
    .await;
    shot(&client, "1-open").await;

    // 2. Upload the detection fixture and watch it become ready.
    let upload = tempfile::tempdir().expect("upload dir");
    let file = upload.path().join("det.onnx");
    std::fs::copy(fixture_model(DET), &file).expect("copy");
    type_into(&client, "#upload-file", &file.display().to_string()).await;
    click(&client, "#upload-button").await;
    until("the model to be ready", || async {
        row_text(&client, 2).await == "ready"
    })
    .await;
    // The page rebuilds its rows on every poll: a cell read while that happens is empty, so
    // the version is read once it is there, not at the moment "ready" was.
    let version = cell_when(&client, 5, |v| v.starts_with("det-")).await;
    shot(&client, "2-uploaded").await;

    // 3. Change its labels: the version changes.
    click(&client, "tr[data-model=\"det\"] button").await;
    let labels = client.find(Locator::Css("#cfg-labels")).await.expect("labels field");
    labels.clear().await.expect("clear");
    labels.send_keys("ring, box, wedge").await.expect("type labels");
    click(&client, "#cfg-save").await;
    until("the new version", || async {
        let now = row_text(&client, 5).await;
        !now.is_empty() && now != version && row_text(&client, 7).await == "ring, box, wedge"
    })
    .await;
    shot(&client, "3-configured").await;

    // 4. Try it on an image: the drawn boxes are the API's.
    click(&client, "#try-model option[value=\"det\"]").await;
    let image = eval_images().join(IMAGE).canonicalize().expect("image path");
    type_into(&client, "#try-file", &image.display().to_string()).await;
    click(&client, "#try-button").await;
    until("the drawn boxes", || async {
        client
            .find_all(Locator::Css("#try-overlay rect.box"))
            .await
            .is_ok_and(|boxes| !boxes.is_empty())
    })
    .await;
    let mut drawn = Vec::new();
    for rect in client
        .find_all(Locator::Css("#try-overlay rect.box"))
        .await
        .expect("boxes")
    {
        let number = |v: Option<String>| v.and_then(|v| v.parse::<f64>().ok()).unwrap_or(f64::NAN);
        let (x, y) = (
            number(rect.attr("x").await.expect("x")),
            number(rect.attr("y").await.expect("y")),
        );
        let (w, h) = (
            number(rect.attr("width").await.expect("w")),
            number(rect.attr("height").await.expect("h")),
        );
        let label = rect.attr("data-label").await.expect("label").unwrap_or_default();
        drawn.push((label, [x, y, x + w, y + h]));
    }
    let image = std::fs::read(eval_images().join(IMAGE)).expect("image");
    let api: Value = server
        .http
        .post(server.url("/models/det/try?conf=0.25"))
        .header("content-type", "image/png")
        .body(image)
        .send()
        .await
        .expect("try")
        .json()
        .await
        .expect("json");
    let expected: Vec<(String, [f64; 4])> = api["instances"]
        .as_array()
        .expect("instances")
        .iter()
        .map(|i| {
            let b = &i["box"];
            let n = |k: &str| b[k].as_f64().unwrap_or(f64::NAN);
            (
                i["label"].as_str().unwrap_or_default().to_string(),
                [n("x"), n("y"), n("x") + n("width"), n("y") + n("height")],
            )
        })
        .collect();
    assert_eq!(drawn.len(), expected.len(), "drawn {drawn:?}\nAPI {expected:?}");
    for (label, xyxy) in &expected {
        assert!(
            drawn.iter().any(|(l, d)| l == label && iou(d, xyxy) > 0.999),
            "{label} {xyxy:?} is not drawn: {drawn:?}"
        );
    }
    assert!(
        expected
            .iter()
            .all(|(label, _)| ["ring", "box", "wedge"].contains(&label.as_str()))
    );
    client
        .execute("document.getElementById('try').scrollIntoView()", Vec::new())
        .await
        .expect("scroll");
    shot(&client, "4-tried").await;

    // 4b. Click on an object to prompt the model: the answer is that object alone.
    let (label, target) = expected[0].clone();
    let (cx, cy) = ((target[0] + target[2]) / 2.0, (target[1] + target[3]) / 2.0);
    client
        .execute(
            "const svg = document.getElementById('try-overlay'); const r = svg.getBoundingClientRect();
             const vb = svg.viewBox.baseVal;
             svg.dispatchEvent(new MouseEvent('click', {bubbles: true,
               clientX: r.left + arguments[0] / vb.width * r.width, clientY: r.top + arguments[1] / vb.height * r.height}));",
            vec![json!(cx), json!(cy)],
        )
        .await
        .expect("click on the image");
    until("the prompted object", || async {
        let summary = client
            .find(Locator::Css("#try-summary"))
            .await
            .expect("summary")
            .text()
            .await
            .unwrap_or_default();
        summary.contains("the object at your 1 click(s)")
    })
    .await;
    let answered = client
        .find_all(Locator::Css("#try-overlay rect.box"))
        .await
        .expect("boxes");
    assert_eq!(answered.len(), 1, "one object for one click");
    let dots = client
        .find_all(Locator::Css("#try-overlay circle.click"))
        .await
        .expect("clicks");
    assert_eq!(dots.len(), 1, "the click is drawn");
    let held = answered[0].attr("data-label").await.expect("label").unwrap_or_default();
    assert!(
        expected
            .iter()
            .any(|(l, b)| *l == held && (b[0]..=b[2]).contains(&cx) && (b[1]..=b[3]).contains(&cy)),
        "the answer ({held}) is an object under the click on {label}"
    );
    shot(&client, "4b-prompted").await;
    report(&format!(
        "web page: upload, configure, try ({} boxes drawn as the API's), click-to-prompt, delete in Chromium",
        drawn.len()
    ));

    // 5. Delete it, confirming the dialog.
    click(&client, "tr[data-model=\"det\"] button.danger").await;
    client.accept_alert().await.expect("confirm");
    until("the model to be gone", || async {
        client.find(Locator::Css("tr[data-model=\"det\"]")).await.is_err()
    })
    .await;
    shot(&client, "5-deleted").await;
    assert!(!server.models_dir.path().join("det.onnx").exists());

    // 6. Jobs: an empty project is refused on the page, without a request.
    let started = Instant::now();
    client
        .execute("document.getElementById('jobs').scrollIntoView()", Vec::new())
        .await
        .expect("scroll");
    click(&client, "#job-kind option[value=\"predict\"]").await;
    click(&client, "#job-submit").await;
    let refusal = text_of(&client, "#job-error").await;
    assert!(refusal.contains("project id"), "{refusal:?}");
    assert_eq!(jobs_of(&server).await, Vec::<Value>::new(), "nothing was sent");
    // A prediction of project 7 fails at once: this server knows no Label Studio.
    type_into(&client, "#job-project", "7").await;
    click(&client, "#job-submit").await;
    let failed = "#job-rows tr[data-state=\"failed\"]";
    until("the failed job", || async {
        text_of(&client, &format!("{failed} td.outcome"))
            .await
            .starts_with("Label Studio's address is unknown")
    })
    .await;
    let row = client.find(Locator::Css(failed)).await.expect("the job's row");
    let id = row.attr("data-job").await.expect("id").unwrap_or_default();
    assert_eq!(text_of(&client, &format!("{failed} td:nth-child(2)")).await, "predict");
    assert_eq!(text_of(&client, &format!("{failed} td:nth-child(3)")).await, "7");
    assert_eq!(text_of(&client, &format!("{failed} td:nth-child(4)")).await, "failed");
    assert!(text_of(&client, "#job-error").await.is_empty());
    let listed = jobs_of(&server).await;
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0]["id"].to_string(), id);
    assert_eq!(
        (listed[0]["kind"].as_str(), listed[0]["project"].as_u64()),
        (Some("predict"), Some(7))
    );
    assert_eq!(listed[0]["state"], "failed");
    // Its details open from the keyboard-reachable button.
    click(&client, &format!("{failed} button[data-action=\"details\"]")).await;
    until("the job's details", || async {
        text_of(&client, "#job-details-title")
            .await
            .starts_with(&format!("Job {id}:"))
    })
    .await;
    shot(&client, "6-jobs").await;
    report(&format!(
        "web page: a predict job submitted from the Jobs form failed as expected and was listed ({:.1} s)",
        started.elapsed().as_secs_f64()
    ));
    client.close().await.expect("close the browser");
}
