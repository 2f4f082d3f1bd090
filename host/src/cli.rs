//! `ls-ml-backend predict-project`: asks the running server for a project prediction job and
//! follows it to the end, with a progress bar on a terminal (a line per change elsewhere).

use std::{io::IsTerminal, process::ExitCode, time::Duration};

use base64::Engine;
use serde_json::{Value, json};

use crate::config::Config;

pub async fn predict_project(config: &Config, project: u64, force: bool, server: Option<&str>) -> ExitCode {
    let base = server
        .map(|s| s.trim_end_matches('/').to_string())
        .unwrap_or_else(|| format!("http://127.0.0.1:{}", config.port));
    match follow(config, &base, project, force).await {
        Ok(code) => code,
        Err(e) => {
            log::error!("{e}");
            ExitCode::FAILURE
        }
    }
}

async fn follow(config: &Config, base: &str, project: u64, force: bool) -> Result<ExitCode, String> {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .map_err(|e| format!("cannot build an HTTP client: {e}"))?;
    let auth = config
        .basic_auth()
        .map_err(|e| format!("{e}: set both BASIC_AUTH_USER and BASIC_AUTH_PASS, or neither"))?
        .map(|(user, pass)| {
            format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(format!("{user}:{}", pass.expose()))
            )
        });
    let request = |r: reqwest::RequestBuilder| match &auth {
        Some(a) => r.header("authorization", a),
        None => r,
    };
    let answer = request(http.post(format!("{base}/jobs")))
        .json(&json!({"kind": "predict", "project": project, "force": force}))
        .send()
        .await
        .map_err(|e| format!("the server at {base} did not answer ({e}); start it first (or pass --server URL)"))?;
    let status = answer.status();
    let job: Value = answer
        .json()
        .await
        .map_err(|e| format!("the server's answer is not JSON: {e}"))?;
    if !status.is_success() {
        return Err(format!(
            "the server refused the job ({status}): {}",
            job.get("detail").and_then(Value::as_str).unwrap_or("")
        ));
    }
    let id = job
        .get("id")
        .and_then(Value::as_u64)
        .ok_or("the server's answer has no job id")?;
    eprintln!("job {id}: predicting project {project} ({base}/jobs/{id})");
    let terminal = std::io::stderr().is_terminal();
    let bar = indicatif::ProgressBar::new(1000);
    if terminal {
        bar.set_style(
            indicatif::ProgressStyle::with_template("{bar:40} {percent:>3}% {msg}").map_err(|e| e.to_string())?,
        );
    } else {
        bar.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }
    let mut last_step = String::new();
    loop {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let job: Value = match request(http.get(format!("{base}/jobs/{id}"))).send().await {
            Ok(r) => r
                .json()
                .await
                .map_err(|e| format!("the server's answer is not JSON: {e}"))?,
            Err(e) => {
                return Err(format!(
                    "lost the server: {e}; the job may still run (GET {base}/jobs/{id})"
                ));
            }
        };
        let progress = job.get("progress").and_then(Value::as_f64).unwrap_or(0.0);
        let step = job.get("step").and_then(Value::as_str).unwrap_or("").to_string();
        let rate = job.pointer("/metrics/tasks_per_second").and_then(Value::as_f64);
        let eta = job.pointer("/metrics/eta_seconds").and_then(Value::as_f64);
        let message = match (rate, eta) {
            (Some(rate), Some(eta)) => format!("{step}, {rate:.1} tasks/s, about {eta:.0} s left"),
            _ => step.clone(),
        };
        bar.set_position((progress * 1000.0) as u64);
        bar.set_message(message.clone());
        if !terminal && step != last_step {
            eprintln!("{message}");
        }
        last_step = step;
        let state = job
            .get("state")
            .cloned()
            .and_then(|s| serde_json::from_value::<ls_training::JobState>(s).ok());
        match state {
            Some(ls_training::JobState::Succeeded) => {
                bar.finish();
                println!("{}", job.get("result").cloned().unwrap_or(Value::Null));
                return Ok(ExitCode::SUCCESS);
            }
            Some(state @ (ls_training::JobState::Failed | ls_training::JobState::Cancelled)) => {
                bar.abandon();
                return Err(format!(
                    "job {id} {}: {}",
                    state.as_str(),
                    job.get("error").and_then(Value::as_str).unwrap_or("")
                ));
            }
            _ => {}
        }
    }
}
