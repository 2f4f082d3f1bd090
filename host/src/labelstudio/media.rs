//! Downloading task images. Label Studio gives relative URLs for its own files
//! (`/data/upload/...`), which need its address and an API key; other URLs are fetched as
//! they are, without Label Studio's credentials.

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use reqwest::{StatusCode, Url, header::AUTHORIZATION};

use crate::config::{Config, Secret};

#[derive(Debug, thiserror::Error)]
pub enum MediaError {
    #[error("`{0}` is a Label Studio path, but LABEL_STUDIO_URL is not set")]
    NoLabelStudioUrl(String),
    #[error("`{url}` is not a URL this backend can download ({reason})")]
    Unsupported { url: String, reason: &'static str },
    #[error("downloading {url} failed: {message}")]
    Request { url: String, message: String },
    #[error("downloading {url} failed with HTTP {status}{hint}")]
    Status {
        url: String,
        status: StatusCode,
        hint: &'static str,
    },
    #[error("{url} is larger than the {limit} byte limit (ML_MAX_IMAGE_BYTES)")]
    TooLarge { url: String, limit: u64 },
}

pub struct MediaClient {
    http: reqwest::Client,
    label_studio: Option<Url>,
    api_key: Option<Secret>,
    max_bytes: u64,
}

impl MediaClient {
    pub fn new(config: &Config) -> Result<Self, String> {
        let label_studio = match config
            .label_studio_url
            .as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
        {
            Some(raw) => Some(
                Url::parse(&format!("{}/", raw.trim_end_matches('/')))
                    .map_err(|e| format!("LABEL_STUDIO_URL `{raw}` is not a URL: {e}"))?,
            ),
            None => None,
        };
        let timeout = Duration::from_secs(config.fetch_timeout_secs.max(1));
        let http = reqwest::Client::builder()
            .connect_timeout(timeout)
            .read_timeout(timeout)
            .timeout(timeout * 2)
            .redirect(reqwest::redirect::Policy::limited(5))
            .user_agent(concat!("ls-ml-backend/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| format!("cannot build the HTTP client: {e}"))?;
        Ok(Self {
            http,
            label_studio,
            api_key: config.api_key().cloned(),
            max_bytes: config.max_image_bytes,
        })
    }

    /// Resolves a task's image reference to a URL, and whether it points at Label Studio.
    pub fn resolve(&self, reference: &str) -> Result<(Url, bool), MediaError> {
        let reference = reference.trim();
        if reference.starts_with("http://") || reference.starts_with("https://") {
            let url = Url::parse(reference).map_err(|e| MediaError::Request {
                url: reference.to_string(),
                message: e.to_string(),
            })?;
            let is_ls = self.label_studio.as_ref().is_some_and(|ls| same_origin(ls, &url));
            return Ok((url, is_ls));
        }
        if reference.starts_with('/') {
            let base = self
                .label_studio
                .as_ref()
                .ok_or_else(|| MediaError::NoLabelStudioUrl(reference.to_string()))?;
            let url = base
                .join(reference.trim_start_matches('/'))
                .map_err(|e| MediaError::Request {
                    url: reference.to_string(),
                    message: e.to_string(),
                })?;
            return Ok((url, true));
        }
        let reason = match reference.split_once("://").map(|(s, _)| s) {
            Some("s3" | "gs" | "azure-blob") => {
                "cloud storage URIs are not supported yet; connect the storage so Label Studio serves the files"
            }
            Some(_) => "unknown scheme",
            None => "not a URL",
        };
        Err(MediaError::Unsupported {
            url: reference.to_string(),
            reason,
        })
    }

    pub async fn fetch(&self, reference: &str) -> Result<Bytes, MediaError> {
        let (url, is_ls) = self.resolve(reference)?;
        let shown = url.to_string();
        let mut request = self.http.get(url);
        if is_ls && let Some(key) = &self.api_key {
            request = request.header(AUTHORIZATION, format!("Token {}", key.expose()));
        }
        let mut response = request.send().await.map_err(|e| MediaError::Request {
            url: shown.clone(),
            message: e.to_string(),
        })?;
        let status = response.status();
        if !status.is_success() {
            return Err(MediaError::Status {
                url: shown,
                status,
                hint: status_hint(status, is_ls),
            });
        }
        if response.content_length().is_some_and(|len| len > self.max_bytes) {
            return Err(MediaError::TooLarge {
                url: shown,
                limit: self.max_bytes,
            });
        }
        let mut body = BytesMut::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| MediaError::Request {
            url: shown.clone(),
            message: e.to_string(),
        })? {
            if body.len() as u64 + chunk.len() as u64 > self.max_bytes {
                return Err(MediaError::TooLarge {
                    url: shown,
                    limit: self.max_bytes,
                });
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body.freeze())
    }
}

fn same_origin(a: &Url, b: &Url) -> bool {
    a.scheme() == b.scheme() && a.host_str() == b.host_str() && a.port_or_known_default() == b.port_or_known_default()
}

fn status_hint(status: StatusCode, is_ls: bool) -> &'static str {
    match (status.as_u16(), is_ls) {
        (401, true) => {
            ": Label Studio refused the API key; check LABEL_STUDIO_API_KEY (legacy tokens may be disabled in this \
             organization)"
        }
        (401, false) | (403, false) => ": the image host wants credentials this backend does not send",
        (403, true) => ": the API key's user may not read this project's files",
        (404, _) => ": the file does not exist",
        _ => "",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn client(ls: Option<&str>) -> MediaClient {
        let mut args = vec!["ls-ml-backend".to_string()];
        if let Some(ls) = ls {
            args.push("--label-studio-url".into());
            args.push(ls.into());
        }
        MediaClient::new(&Config::parse_from(args)).expect("client")
    }

    #[test]
    fn relative_paths_resolve_against_label_studio() {
        let c = client(Some("http://ls.example:8080/"));
        let (url, is_ls) = c.resolve("/data/upload/3/a.png").expect("resolve");
        assert_eq!(url.as_str(), "http://ls.example:8080/data/upload/3/a.png");
        assert!(is_ls);
        let c = client(Some("http://ls.example/prefix"));
        assert_eq!(
            c.resolve("/data/upload/1/b.jpg").expect("resolve").0.as_str(),
            "http://ls.example/prefix/data/upload/1/b.jpg"
        );
    }

    #[test]
    fn only_label_studio_urls_get_credentials() {
        let c = client(Some("http://ls.example:8080"));
        assert!(c.resolve("http://ls.example:8080/data/upload/1/a.png").expect("ls").1);
        assert!(!c.resolve("http://ls.example:9090/a.png").expect("other port").1);
        assert!(!c.resolve("https://images.example/a.png").expect("other host").1);
    }

    #[test]
    fn relative_paths_need_label_studio_url() {
        assert!(matches!(
            client(None).resolve("/data/upload/1/a.png"),
            Err(MediaError::NoLabelStudioUrl(_))
        ));
    }

    #[test]
    fn unknown_schemes_are_refused() {
        assert!(matches!(
            client(None).resolve("ftp://x/a.png"),
            Err(MediaError::Unsupported { .. })
        ));
        assert!(matches!(
            client(None).resolve("s3://bucket/a.png"),
            Err(MediaError::Unsupported { .. })
        ));
    }
}
