//! Getting a task's image, in every form Label Studio puts in `task.data`:
//!
//! - `/data/upload/...` (and `upload/...`): files uploaded to Label Studio, downloaded from it
//!   with its API key;
//! - `/data/local-files/?d=...`: Local Files storage, read from disk when
//!   LOCAL_FILES_DOCUMENT_ROOT is mounted here, else downloaded from Label Studio;
//! - `s3://`, `gs://`, `azure-blob://`: cloud storage, through Label Studio's presign endpoint,
//!   whose redirect to the cloud is followed without Label Studio's credentials;
//! - `http(s)://...`: fetched as is; credentials only if it is Label Studio's own address.
//!
//! Label Studio's address is LABEL_STUDIO_URL, or else the `hostname` that /setup sends.

use std::{
    path::{Component, Path, PathBuf},
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use base64::Engine;
use bytes::{Bytes, BytesMut};
use parking_lot::RwLock;
use reqwest::{StatusCode, Url, header};
use serde_json::Value;

use super::{
    auth::{AuthError, Credentials, KeyKind},
    media_cache::MediaCache,
    media_policy::{GuardedResolver, MediaPolicy},
};
use labelstudio_protocol::Secret;

const MAX_REDIRECTS: usize = 5;

#[derive(Debug, thiserror::Error)]
pub enum MediaError {
    #[error(
        "`{0}` is a Label Studio path, but Label Studio's address is unknown: set LABEL_STUDIO_URL \
         (or connect the model from Label Studio, whose /setup call tells it)"
    )]
    NoLabelStudioUrl(String),
    #[error("`{url}` cannot be downloaded: {reason}")]
    Unsupported { url: String, reason: String },
    #[error("downloading {url} failed: {message}")]
    Request { url: String, message: String },
    #[error("downloading {url} failed with HTTP {status}{detail}{hint}")]
    Status {
        url: String,
        status: StatusCode,
        detail: String,
        hint: &'static str,
    },
    #[error("{url} is larger than the {limit} byte limit ({setting})")]
    TooLarge {
        url: String,
        limit: u64,
        setting: &'static str,
    },
    #[error("reading the local file {path} failed: {message}")]
    LocalFile { path: String, message: String },
    #[error(transparent)]
    Auth(#[from] AuthError),
    #[error("`{url}` is refused: {reason}")]
    Refused { url: String, reason: String },
}

/// Why the clients cannot be built from the settings.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("LABEL_STUDIO_URL `{url}` is not a URL: {message}")]
    LabelStudioUrl { url: String, message: String },
    #[error("LOCAL_FILES_DOCUMENT_ROOT {path} cannot be used: {source}")]
    DocumentRoot { path: String, source: std::io::Error },
    #[error("cannot build the HTTP client: {source}")]
    Http { source: reqwest::Error },
}

/// Where a task's image comes from.
#[derive(Debug, PartialEq)]
#[cfg(test)]
pub enum Source {
    Http { url: Url, presign: bool },
    LocalFile(PathBuf),
}

/// What the last /setup call said about Label Studio.
#[derive(Default)]
struct SetupHints {
    hostname: Option<Url>,
    /// The project creator's legacy token, used only when LABEL_STUDIO_API_KEY is unset.
    credentials: Option<Arc<Credentials>>,
    token: Option<Secret>,
}

/// A `/data/local-files/?d=...` URL as a path under the document root, if it is one. A
/// path that would leave the root is an error, not a download. Looks at no file.
fn local_candidate(root: &Path, url: &Url) -> Result<Option<PathBuf>, MediaError> {
    if !url.path().ends_with("/data/local-files/") && !url.path().ends_with("/data/local-files") {
        return Ok(None);
    }
    let Some((_, d)) = url.query_pairs().find(|(k, _)| k == "d") else {
        return Ok(None);
    };
    let relative = Path::new(d.as_ref());
    if relative
        .components()
        .any(|c| !matches!(c, Component::Normal(_) | Component::CurDir))
    {
        return Err(leaves_root(url));
    }
    Ok(Some(root.join(relative)))
}

fn leaves_root(url: &Url) -> MediaError {
    MediaError::Unsupported {
        url: url.to_string(),
        reason: "the path leaves LOCAL_FILES_DOCUMENT_ROOT".into(),
    }
}

/// The candidate's real path if the file is there and really inside the root (symbolic
/// links may point anywhere); None when it is not mounted here, for Label Studio to serve.
/// Blocking.
fn checked_local(root: &Path, url: &Url, candidate: PathBuf) -> Result<Option<PathBuf>, MediaError> {
    match candidate.canonicalize() {
        Ok(real) if real.starts_with(root) => Ok(Some(real)),
        Ok(_) => Err(leaves_root(url)),
        Err(_) => Ok(None),
    }
}

/// A plain file path in task data: a relative one (`videos/a.mp4`), or an absolute one inside
/// LOCAL_FILES_DOCUMENT_ROOT. The official backend opens such paths where they exist; here
/// they are read only under the root, and never sent to Label Studio's address. Other paths
/// that start with `/` are Label Studio's own (`/data/upload/...`), as before.
fn plain_path<'r>(reference: &'r str, root: Option<&Path>) -> Option<&'r str> {
    let reference = reference.trim();
    if reference.is_empty() || reference.contains("://") || reference.starts_with("upload/") {
        return None;
    }
    let absolute_inside = reference.starts_with('/') && root.is_some_and(|root| Path::new(reference).starts_with(root));
    (!reference.starts_with('/') || absolute_inside).then_some(reference)
}

/// The real path of a plain file path, which must be a file inside `root` (relative paths
/// are taken from it; symbolic links and `..` are followed, then checked). Blocking.
fn plain_file(root: Option<&Path>, path: &str) -> Result<PathBuf, MediaError> {
    let refused = |reason: &str| MediaError::Unsupported {
        url: path.to_string(),
        reason: reason.to_string(),
    };
    let root = root.ok_or_else(|| {
        refused("a file path in task data is read only under LOCAL_FILES_DOCUMENT_ROOT, which is not set")
    })?;
    // Refused before looking, so that no answer tells whether a file outside exists.
    let given = Path::new(path);
    let lexically_inside = !given.components().any(|c| matches!(c, Component::ParentDir))
        && (given.is_relative() || given.starts_with(root));
    if !lexically_inside {
        return Err(refused("the path leaves LOCAL_FILES_DOCUMENT_ROOT"));
    }
    let candidate = root.join(given);
    let real = candidate.canonicalize().map_err(|e| MediaError::LocalFile {
        path: path.to_string(),
        message: format!("{e} (looked under LOCAL_FILES_DOCUMENT_ROOT)"),
    })?;
    if !real.starts_with(root) {
        return Err(refused("the path leaves LOCAL_FILES_DOCUMENT_ROOT"));
    }
    Ok(real)
}

/// How large a download may be, and the setting that says so (for the error).
#[derive(Debug, Clone, Copy)]
pub struct SizeLimit {
    pub bytes: u64,
    pub setting: &'static str,
}

/// Checks a local file's size against the limit. Blocking.
fn check_local(path: &Path, limit: SizeLimit) -> Result<(), MediaError> {
    let shown = path.display().to_string();
    let len = std::fs::metadata(path)
        .map_err(|e| MediaError::LocalFile {
            path: shown.clone(),
            message: e.to_string(),
        })?
        .len();
    if len > limit.bytes {
        return Err(MediaError::TooLarge {
            url: shown,
            limit: limit.bytes,
            setting: limit.setting,
        });
    }
    Ok(())
}

/// Reads a local file within the size limit. Blocking.
fn read_local(path: &Path, limit: SizeLimit) -> Result<Bytes, MediaError> {
    check_local(path, limit)?;
    std::fs::read(path).map(Bytes::from).map_err(|e| MediaError::LocalFile {
        path: path.display().to_string(),
        message: e.to_string(),
    })
}

/// A video to decode: a file under LOCAL_FILES_DOCUMENT_ROOT read in place, or a download
/// in a temporary file (removed when this is dropped).
pub enum MediaFile {
    Local(PathBuf),
    Downloaded(tempfile::TempPath),
}

impl MediaFile {
    pub fn path(&self) -> &Path {
        match self {
            MediaFile::Local(path) => path,
            MediaFile::Downloaded(path) => path,
        }
    }
}

/// Where a download goes.
enum Sink {
    Memory(BytesMut),
    File(tokio::fs::File),
}

impl Sink {
    async fn push(&mut self, chunk: &[u8]) -> std::io::Result<()> {
        use tokio::io::AsyncWriteExt;
        match self {
            Sink::Memory(body) => {
                body.extend_from_slice(chunk);
                Ok(())
            }
            Sink::File(file) => file.write_all(chunk).await,
        }
    }
}

/// A video download may take much longer than an image's; a stalled one still fails after
/// ML_FETCH_TIMEOUT without data (the client's read timeout).
const VIDEO_DOWNLOAD_TIMEOUT: Duration = Duration::from_secs(3600);

/// Where Label Studio is and how media is fetched (from LABEL_STUDIO_URL,
/// LABEL_STUDIO_API_KEY, LOCAL_FILES_DOCUMENT_ROOT and the ML_MEDIA_* / ML_FETCH_* settings).
#[derive(Debug, Clone, Default)]
pub struct MediaSettings {
    pub label_studio_url: Option<String>,
    pub api_key: Option<Secret>,
    pub local_files_document_root: Option<PathBuf>,
    pub allowed_hosts: Vec<String>,
    pub block_private: bool,
    pub fetch_timeout_secs: u64,
    pub max_image_bytes: u64,
    pub cache_mb: u64,
}

pub struct MediaClient {
    http: reqwest::Client,
    label_studio: Option<Url>,
    credentials: Option<Arc<Credentials>>,
    setup: RwLock<SetupHints>,
    local_root: Option<PathBuf>,
    max_bytes: u64,
    cache: MediaCache,
    policy: Arc<MediaPolicy>,
    untrusted_setup_logged: AtomicBool,
}

impl MediaClient {
    pub fn new(config: &MediaSettings) -> Result<Self, ClientError> {
        let label_studio = match config
            .label_studio_url
            .as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
        {
            Some(raw) => Some(base_url(raw).map_err(|message| ClientError::LabelStudioUrl {
                url: raw.to_string(),
                message,
            })?),
            None => None,
        };
        let local_root = match &config.local_files_document_root {
            Some(root) => Some(root.canonicalize().map_err(|source| ClientError::DocumentRoot {
                path: root.display().to_string(),
                source,
            })?),
            None => None,
        };
        let policy = Arc::new(MediaPolicy::new(&config.allowed_hosts, config.block_private));
        if let Some(ls) = &label_studio {
            policy.set_label_studio(ls);
        }
        let timeout = Duration::from_secs(config.fetch_timeout_secs.max(1));
        let http = reqwest::Client::builder()
            .dns_resolver(Arc::new(GuardedResolver(Arc::clone(&policy))))
            .connect_timeout(timeout)
            .read_timeout(timeout)
            .timeout(timeout * 2)
            // Redirects are followed by hand, to decide at each hop whether Label Studio's
            // credentials may go along.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("ls-ml-backend/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|source| ClientError::Http { source })?;
        Ok(Self {
            http,
            label_studio,
            credentials: config.api_key.clone().map(|k| Arc::new(Credentials::new(k))),
            setup: RwLock::new(SetupHints::default()),
            untrusted_setup_logged: AtomicBool::new(false),
            local_root,
            max_bytes: config.max_image_bytes,
            cache: MediaCache::new(config.cache_mb.saturating_mul(1024 * 1024)),
            policy,
        })
    }

    /// The kind of key configured, for the start-up log.
    pub fn key_kind(&self) -> Option<KeyKind> {
        self.credentials.as_ref().map(|c| c.kind())
    }

    /// Remembers what a trusted /setup said (see `http::trust`): Label Studio's address, used
    /// when LABEL_STUDIO_URL is unset, and the project creator's legacy token, used when
    /// LABEL_STUDIO_API_KEY is unset. The first trusted address is kept for good: no later
    /// request re-points the key, and an untrusted /setup changes nothing. The address from
    /// /setup is not exempt from the media policy either; only LABEL_STUDIO_URL is.
    pub fn note_setup(&self, hostname: Option<&str>, token: Option<&Secret>, trusted: bool) {
        let hostname = hostname
            .map(str::trim)
            .filter(|h| h.starts_with("http://") || h.starts_with("https://"))
            .and_then(|h| base_url(h).ok());
        if !trusted {
            if (hostname.is_some() || token.is_some()) && !self.untrusted_setup_logged.swap(true, Ordering::Relaxed) {
                log::warn!(
                    "a /setup that is not trusted (no Basic auth beyond loopback, or another origin) named a Label \
                     Studio address or token: ignored, here and from now on. Set LABEL_STUDIO_URL, or BASIC_AUTH_USER \
                     and BASIC_AUTH_PASS"
                );
            }
            return;
        }
        let mut setup = self.setup.write();
        if let Some(h) = hostname
            && self.label_studio.is_none()
        {
            match &setup.hostname {
                None => {
                    log::info!("Label Studio's address from the first /setup: {h} (LABEL_STUDIO_URL is not set)");
                    setup.hostname = Some(h);
                }
                Some(fixed) if *fixed != h => log::warn!(
                    "a /setup named Label Studio at {h}, but it is fixed at {fixed} since the first /setup: ignored \
                     (set LABEL_STUDIO_URL to choose)"
                ),
                Some(_) => {}
            }
        }
        if let Some(token) = token.filter(|t| !t.expose().trim().is_empty())
            && setup.token.as_ref() != Some(token)
        {
            setup.credentials = Some(Arc::new(Credentials::new(token.clone())));
            setup.token = Some(token.clone());
        }
    }

    /// Label Studio's base address: LABEL_STUDIO_URL, else what /setup said.
    pub fn label_studio(&self) -> Option<Url> {
        self.label_studio.clone().or_else(|| self.setup.read().hostname.clone())
    }

    /// The key for Label Studio: LABEL_STUDIO_API_KEY, else the legacy token from /setup.
    pub fn credentials(&self) -> Option<Arc<Credentials>> {
        self.credentials
            .clone()
            .or_else(|| self.setup.read().credentials.clone())
    }

    /// Where a task's image reference points (what `fetch` does, without fetching).
    /// `task_id` is needed for cloud URIs only. Blocking: a `/data/local-files/` URL is looked up under LOCAL_FILES_DOCUMENT_ROOT.
    #[cfg(test)]
    pub fn resolve(&self, reference: &str, task_id: Option<&Value>) -> Result<Source, MediaError> {
        if let Some(path) = plain_path(reference, self.local_root.as_deref()) {
            return plain_file(self.local_root.as_deref(), path).map(Source::LocalFile);
        }
        let (url, presign) = self.resolve_url(reference, task_id)?;
        if let Some(root) = &self.local_root
            && let Some(candidate) = local_candidate(root, &url)?
            && let Some(path) = checked_local(root, &url, candidate)?
        {
            return Ok(Source::LocalFile(path));
        }
        Ok(Source::Http { url, presign })
    }

    /// The URL a reference stands for, without looking at any file.
    fn resolve_url(&self, reference: &str, task_id: Option<&Value>) -> Result<(Url, bool), MediaError> {
        let reference = reference.trim();
        let unsupported = |reason: String| MediaError::Unsupported {
            url: Url::parse(reference).map_or_else(|_| reference.to_string(), |u| redact(&u)),
            reason,
        };
        let scheme = reference.split_once("://").map(|(s, _)| s.to_ascii_lowercase());
        match scheme.as_deref() {
            Some("http" | "https") => {
                let url = Url::parse(reference).map_err(|e| unsupported(e.to_string()))?;
                Ok((url, false))
            }
            Some("s3" | "gs" | "gcs" | "azure-blob") => {
                let ls = self
                    .label_studio()
                    .ok_or_else(|| MediaError::NoLabelStudioUrl(reference.to_string()))?;
                let id = task_id
                    .and_then(|id| id.as_u64().or_else(|| id.as_str()?.parse().ok()))
                    .ok_or_else(|| {
                        unsupported("a cloud storage URI needs the task's id, and the task has none".into())
                    })?;
                let encoded = base64::engine::general_purpose::URL_SAFE.encode(reference);
                let mut url = ls
                    .join(&format!("tasks/{id}/presign/"))
                    .map_err(|e| unsupported(e.to_string()))?;
                url.query_pairs_mut().append_pair("fileuri", &encoded);
                Ok((url, true))
            }
            Some(other) => Err(unsupported(format!(
                "the scheme `{other}` is not supported; use http(s), a Label Studio path, or s3://, gs://, azure-blob://"
            ))),
            None => {
                // `upload/1/a.png` is how some exports write `/data/upload/1/a.png`.
                let path = if reference.starts_with("upload/") {
                    format!("/data/{reference}")
                } else if reference.starts_with('/') {
                    reference.to_string()
                } else {
                    return Err(unsupported("it is neither a URL nor a Label Studio path".into()));
                };
                let ls = self
                    .label_studio()
                    .ok_or_else(|| MediaError::NoLabelStudioUrl(reference.to_string()))?;
                let url = ls
                    .join(path.trim_start_matches('/'))
                    .map_err(|e| unsupported(e.to_string()))?;
                Ok((url, false))
            }
        }
    }

    /// Downloads (or reads) a task's image. Files under LOCAL_FILES_DOCUMENT_ROOT are
    /// checked and read on a blocking thread.
    pub async fn fetch(&self, reference: &str, task_id: Option<&Value>) -> Result<Bytes, MediaError> {
        if let Some(path) = plain_path(reference, self.local_root.as_deref()) {
            let (root, path, limit) = (self.local_root.clone(), path.to_string(), self.image_limit());
            return tokio::task::spawn_blocking(move || read_local(&plain_file(root.as_deref(), &path)?, limit))
                .await
                .map_err(|e| MediaError::LocalFile {
                    path: reference.to_string(),
                    message: e.to_string(),
                })?;
        }
        let (url, presign) = self.resolve_url(reference, task_id)?;
        if let Some(root) = &self.local_root
            && let Some(candidate) = local_candidate(root, &url)?
        {
            let (root, url, limit) = (root.clone(), url.clone(), self.image_limit());
            let read = tokio::task::spawn_blocking(move || {
                checked_local(&root, &url, candidate)?
                    .map(|path| read_local(&path, limit))
                    .transpose()
            })
            .await
            .map_err(|e| MediaError::LocalFile {
                path: reference.to_string(),
                message: e.to_string(),
            })??;
            if let Some(bytes) = read {
                return Ok(bytes);
            }
        }
        let key = url.to_string();
        if let Some(hit) = self.cache.get(&key) {
            return Ok(hit);
        }
        let mut sink = Sink::Memory(BytesMut::new());
        self.download(url, presign, self.image_limit(), None, &mut sink).await?;
        let Sink::Memory(body) = sink else {
            unreachable!("the sink stays in memory")
        };
        let bytes = body.freeze();
        self.cache.insert(&key, bytes.clone());
        Ok(bytes)
    }

    fn image_limit(&self) -> SizeLimit {
        SizeLimit {
            bytes: self.max_bytes,
            setting: "ML_MAX_IMAGE_BYTES",
        }
    }

    /// A task's video as a file for ffmpeg: read in place under LOCAL_FILES_DOCUMENT_ROOT,
    /// else streamed to a temporary file within `limit`. Not cached: videos are large.
    pub async fn fetch_file(
        &self,
        reference: &str,
        task_id: Option<&Value>,
        limit: SizeLimit,
    ) -> Result<MediaFile, MediaError> {
        let local_error = |e: &dyn std::fmt::Display| MediaError::LocalFile {
            path: reference.to_string(),
            message: e.to_string(),
        };
        if let Some(path) = plain_path(reference, self.local_root.as_deref()) {
            let (root, path) = (self.local_root.clone(), path.to_string());
            let real = tokio::task::spawn_blocking(move || {
                let real = plain_file(root.as_deref(), &path)?;
                check_local(&real, limit)?;
                Ok::<_, MediaError>(real)
            })
            .await
            .map_err(|e| local_error(&e))??;
            return Ok(MediaFile::Local(real));
        }
        let (url, presign) = self.resolve_url(reference, task_id)?;
        if let Some(root) = &self.local_root
            && let Some(candidate) = local_candidate(root, &url)?
        {
            let (root, url) = (root.clone(), url.clone());
            let found = tokio::task::spawn_blocking(move || {
                let path = checked_local(&root, &url, candidate)?;
                if let Some(path) = &path {
                    check_local(path, limit)?;
                }
                Ok::<_, MediaError>(path)
            })
            .await
            .map_err(|e| local_error(&e))??;
            if let Some(path) = found {
                return Ok(MediaFile::Local(path));
            }
        }
        let temp = tokio::task::spawn_blocking(|| tempfile::Builder::new().prefix("ls-ml-video-").tempfile())
            .await
            .map_err(|e| local_error(&e))?
            .map_err(|e| local_error(&e))?;
        let (file, path) = temp.into_parts();
        let mut sink = Sink::File(tokio::fs::File::from_std(file));
        self.download(url, presign, limit, Some(VIDEO_DOWNLOAD_TIMEOUT), &mut sink)
            .await?;
        if let Sink::File(mut file) = sink {
            use tokio::io::AsyncWriteExt;
            file.flush().await.map_err(|e| local_error(&e))?;
        }
        Ok(MediaFile::Downloaded(path))
    }

    async fn download(
        &self,
        mut url: Url,
        presign: bool,
        limit: SizeLimit,
        timeout: Option<Duration>,
        sink: &mut Sink,
    ) -> Result<(), MediaError> {
        let ls = self.label_studio();
        let credentials = self.credentials();
        let mut retried = false;
        let mut hops = 0;
        loop {
            let shown = redact(&url);
            let to_ls = ls.as_ref().is_some_and(|ls| same_origin(ls, &url));
            // Every hop: a redirect must not lead where a task URL may not.
            if !to_ls && let Some(reason) = self.policy.refusal(&url) {
                return Err(MediaError::Refused { url: shown, reason });
            }
            let mut request = self.http.get(url.clone());
            if let Some(timeout) = timeout {
                request = request.timeout(timeout);
            }
            let mut sent = None;
            if to_ls && let (Some(ls), Some(creds)) = (&ls, &credentials) {
                request = request.header(header::AUTHORIZATION, creds.header(&self.http, ls).await?);
                sent = Some(creds.kind());
            }
            let mut response = request.send().await.map_err(|e| MediaError::Request {
                url: shown.clone(),
                message: error_chain(&e),
            })?;
            let status = response.status();
            if status.is_redirection()
                && let Some(location) = response.headers().get(header::LOCATION)
            {
                hops += 1;
                if hops > MAX_REDIRECTS {
                    return Err(MediaError::Request {
                        url: shown,
                        message: format!("more than {MAX_REDIRECTS} redirects"),
                    });
                }
                let location = location.to_str().unwrap_or_default();
                url = url.join(location).map_err(|e| MediaError::Request {
                    url: shown.clone(),
                    message: format!("bad redirect to `{location}`: {e}"),
                })?;
                continue;
            }
            if status == StatusCode::UNAUTHORIZED
                && sent.is_some()
                && !retried
                && let Some(creds) = &credentials
                && creds.refused().await
            {
                retried = true;
                continue;
            }
            if !status.is_success() {
                let detail = read_detail(response).await;
                return Err(MediaError::Status {
                    url: shown,
                    status,
                    detail,
                    hint: status_hint(status, to_ls, sent, presign),
                });
            }
            let too_large = |url: String| MediaError::TooLarge {
                url,
                limit: limit.bytes,
                setting: limit.setting,
            };
            let expected = response.content_length();
            if expected.is_some_and(|len| len > limit.bytes) {
                return Err(too_large(shown));
            }
            let mut received: u64 = 0;
            while let Some(chunk) = response.chunk().await.map_err(|e| MediaError::Request {
                url: shown.clone(),
                message: error_chain(&e),
            })? {
                received += chunk.len() as u64;
                if received > limit.bytes {
                    return Err(too_large(shown));
                }
                sink.push(&chunk).await.map_err(|e| MediaError::Request {
                    url: shown.clone(),
                    message: format!("cannot store the download: {e}"),
                })?;
            }
            // Label Studio's proxy cuts long streams; a short file must not pass for whole.
            if let Some(expected) = expected
                && received < expected
            {
                return Err(MediaError::Request {
                    url: shown,
                    message: format!("the download ended after {received} of {expected} bytes"),
                });
            }
            return Ok(());
        }
    }
}

/// A base URL that `join` extends instead of replacing its last segment.
fn base_url(raw: &str) -> Result<Url, String> {
    Url::parse(&format!("{}/", raw.trim().trim_end_matches('/'))).map_err(|e| e.to_string())
}

/// A URL as it may appear in a log line: no password, and no value of query parameters that
/// look like credentials (presigned URLs carry signatures, some image hosts take tokens).
pub fn redact(url: &Url) -> String {
    let mut shown = url.clone();
    if shown.password().is_some() {
        let _ = shown.set_password(Some("***"));
    }
    let secret = |key: &str| {
        let key = key.to_ascii_lowercase();
        ["sig", "token", "key", "secret", "credential", "password", "auth"]
            .iter()
            .any(|s| key.contains(s))
    };
    if url.query_pairs().any(|(k, _)| secret(&k)) {
        let pairs: Vec<(String, String)> = url
            .query_pairs()
            .map(|(k, v)| {
                let v = if secret(&k) { "***".to_string() } else { v.into_owned() };
                (k.into_owned(), v)
            })
            .collect();
        shown.query_pairs_mut().clear().extend_pairs(pairs);
    }
    shown.to_string()
}

fn same_origin(a: &Url, b: &Url) -> bool {
    a.scheme() == b.scheme() && a.host_str() == b.host_str() && a.port_or_known_default() == b.port_or_known_default()
}

/// reqwest's top-level error says only "error sending request"; the cause says why.
fn error_chain(e: &reqwest::Error) -> String {
    let mut message = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    if e.is_timeout() {
        message.push_str(" (ML_FETCH_TIMEOUT)");
    }
    message
}

/// Label Studio explains refusals in a JSON `detail`; show it, briefly.
async fn read_detail(response: reqwest::Response) -> String {
    let Ok(body) = response.bytes().await else {
        return String::new();
    };
    let detail = serde_json::from_slice::<Value>(&body[..body.len().min(64 * 1024)])
        .ok()
        .and_then(|v| v.get("detail").and_then(Value::as_str).map(str::to_string));
    match detail {
        Some(d) => format!(" ({})", d.chars().take(300).collect::<String>()),
        None => String::new(),
    }
}

fn status_hint(status: StatusCode, to_ls: bool, sent: Option<KeyKind>, presign: bool) -> &'static str {
    match (status.as_u16(), to_ls, sent) {
        (401, true, Some(KeyKind::Legacy)) => {
            ": Label Studio refused the legacy token. New organizations have legacy tokens disabled since Label \
             Studio 1.17: put a personal access token (Account & Settings > Personal Access Token) in \
             LABEL_STUDIO_API_KEY, or have an admin enable legacy tokens (Organization > Access Token Settings)"
        }
        (401, true, Some(KeyKind::Personal)) => {
            ": Label Studio refused the access token made from the personal access token in LABEL_STUDIO_API_KEY; \
             it may have been revoked: create a new one"
        }
        (401, true, None) => {
            ": Label Studio needs an API key for its files: set LABEL_STUDIO_API_KEY to a personal access token \
             (Account & Settings > Personal Access Token)"
        }
        (403, true, _) => {
            ": the API key's user may not read this file. For /data/local-files/, Label Studio also needs \
             LOCAL_FILES_SERVING_ENABLED=true and a Local Storage connection covering the path"
        }
        (401 | 403, false, _) => {
            ": the image host wants credentials; Label Studio's API key is only ever sent to Label Studio"
        }
        (404, _, _) if presign => {
            ": Label Studio does not know this cloud URI; it must belong to a cloud storage connected to the \
             task's project"
        }
        (404, _, _) => ": the file does not exist",
        (500, true, _) => ": Label Studio answers 500 when an uploaded file is missing from its disk",
        _ => "",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// The settings the server starts with by default, with `args` (flag, value) on top.
    fn client_with(args: &[&str]) -> MediaClient {
        let mut settings = MediaSettings {
            label_studio_url: None,
            api_key: None,
            local_files_document_root: None,
            allowed_hosts: Vec::new(),
            block_private: false,
            fetch_timeout_secs: 30,
            max_image_bytes: 64 * 1024 * 1024,
            cache_mb: 64,
        };
        for pair in args.chunks(2) {
            match pair {
                ["--label-studio-url", v] => settings.label_studio_url = Some(v.to_string()),
                ["--label-studio-api-key", v] => settings.api_key = Some(Secret::from(v.to_string())),
                ["--local-files-document-root", v] => settings.local_files_document_root = Some(v.into()),
                other => panic!("no such test setting: {other:?}"),
            }
        }
        MediaClient::new(&settings).expect("client")
    }

    fn client(ls: Option<&str>) -> MediaClient {
        match ls {
            Some(ls) => client_with(&["--label-studio-url", ls]),
            None => client_with(&[]),
        }
    }

    fn http_url(source: Source) -> String {
        match source {
            Source::Http { url, .. } => url.to_string(),
            other => panic!("expected a download, got {other:?}"),
        }
    }

    #[test]
    fn relative_paths_resolve_against_label_studio() {
        let c = client(Some("http://ls.example:8080/"));
        assert_eq!(
            http_url(c.resolve("/data/upload/3/a.png", None).expect("resolve")),
            "http://ls.example:8080/data/upload/3/a.png"
        );
        assert_eq!(
            http_url(c.resolve("upload/3/a.png", None).expect("resolve")),
            "http://ls.example:8080/data/upload/3/a.png"
        );
        let c = client(Some("http://ls.example/prefix"));
        assert_eq!(
            http_url(c.resolve("/data/upload/1/b.jpg", None).expect("resolve")),
            "http://ls.example/prefix/data/upload/1/b.jpg"
        );
    }

    #[test]
    fn setup_hostname_is_the_fallback_address() {
        let c = client(None);
        assert!(matches!(
            c.resolve("/data/upload/1/a.png", None),
            Err(MediaError::NoLabelStudioUrl(_))
        ));
        c.note_setup(Some("http://localhost:8080"), None, true);
        assert_eq!(
            http_url(c.resolve("/data/upload/1/a.png", None).expect("resolve")),
            "http://localhost:8080/data/upload/1/a.png"
        );
        // LABEL_STUDIO_URL wins over what /setup says.
        let c = client(Some("http://ls.internal:8080"));
        c.note_setup(Some("http://localhost:8080"), None, true);
        assert_eq!(
            http_url(c.resolve("/data/upload/1/a.png", None).expect("resolve")),
            "http://ls.internal:8080/data/upload/1/a.png"
        );
    }

    #[test]
    fn the_first_trusted_setup_fixes_the_address_and_untrusted_ones_change_nothing() {
        let c = client(None);
        c.note_setup(
            Some("http://attacker.example"),
            Some(&Secret::from("t".to_string())),
            false,
        );
        assert!(c.label_studio().is_none(), "an untrusted /setup names no address");
        assert!(c.credentials().is_none(), "nor a token");
        c.note_setup(Some("http://localhost:8080"), None, true);
        c.note_setup(Some("http://attacker.example"), None, true);
        assert_eq!(
            c.label_studio().map(|u| u.to_string()).as_deref(),
            Some("http://localhost:8080/"),
            "the first trusted address stays"
        );
        // Not exempt from the media policy: only LABEL_STUDIO_URL is.
        assert!(
            !c.policy
                .is_label_studio(&Url::parse("http://localhost:8080/x").expect("url"))
        );
    }

    #[test]
    fn setup_token_is_used_only_without_a_configured_key() {
        let c = client(None);
        assert!(c.credentials().is_none());
        c.note_setup(None, Some(&Secret::from("legacy".to_string())), true);
        assert!(c.credentials().is_some_and(|k| k.kind() == KeyKind::Legacy));
        let c = client_with(&["--label-studio-api-key", "configured"]);
        c.note_setup(None, Some(&Secret::from("legacy".to_string())), true);
        let creds = c.credentials().expect("credentials");
        assert!(Arc::ptr_eq(&creds, c.credentials.as_ref().expect("configured")));
    }

    #[test]
    fn cloud_uris_go_through_presign() {
        let c = client(Some("http://ls.example:8080"));
        let url = http_url(c.resolve("s3://bucket/dir/a b.jpg", Some(&json!(42))).expect("resolve"));
        let encoded = base64::engine::general_purpose::URL_SAFE.encode("s3://bucket/dir/a b.jpg");
        assert_eq!(
            url,
            format!(
                "http://ls.example:8080/tasks/42/presign/?fileuri={}",
                encoded.replace('=', "%3D")
            )
        );
        assert!(matches!(
            c.resolve("gs://bucket/a.jpg", None),
            Err(MediaError::Unsupported { .. })
        ));
    }

    #[test]
    fn unknown_schemes_and_plain_words_are_refused() {
        let c = client(Some("http://ls.example"));
        for bad in [
            "ftp://x/a.png",
            "file:///etc/passwd",
            "javascript://x",
            "just-a-name.png",
        ] {
            assert!(
                matches!(c.resolve(bad, Some(&json!(1))), Err(MediaError::Unsupported { .. })),
                "{bad}"
            );
        }
    }

    #[test]
    fn local_files_stay_inside_the_document_root() {
        let root = tempfile::tempdir().expect("root");
        std::fs::create_dir(root.path().join("imgs")).expect("dir");
        std::fs::write(root.path().join("imgs/a.png"), b"png").expect("file");
        let outside = tempfile::tempdir().expect("outside");
        std::fs::write(outside.path().join("secret.png"), b"secret").expect("file");
        #[cfg(unix)]
        std::os::unix::fs::symlink(outside.path().join("secret.png"), root.path().join("imgs/link.png")).expect("link");
        let root_arg = root.path().to_str().expect("utf-8");
        let c = client_with(&[
            "--label-studio-url",
            "http://ls.example",
            "--local-files-document-root",
            root_arg,
        ]);

        let expected = root.path().canonicalize().expect("canon").join("imgs/a.png");
        assert_eq!(
            c.resolve("/data/local-files/?d=imgs/a.png", None).expect("local"),
            Source::LocalFile(expected.clone())
        );
        assert_eq!(
            c.resolve("/data/local-files/?d=imgs%2Fa.png", None).expect("encoded"),
            Source::LocalFile(expected)
        );
        for escape in [
            "/data/local-files/?d=../etc/passwd",
            "/data/local-files/?d=imgs/../../x",
            "/data/local-files/?d=/etc/passwd",
            "/data/local-files/?d=%2E%2E/x",
        ] {
            assert!(
                matches!(c.resolve(escape, None), Err(MediaError::Unsupported { .. })),
                "{escape}"
            );
        }
        #[cfg(unix)]
        assert!(matches!(
            c.resolve("/data/local-files/?d=imgs/link.png", None),
            Err(MediaError::Unsupported { .. })
        ));
        // A file that is not mounted here is left to Label Studio to serve.
        assert_eq!(
            http_url(
                c.resolve("/data/local-files/?d=imgs/missing.png", None)
                    .expect("remote")
            ),
            "http://ls.example/data/local-files/?d=imgs/missing.png"
        );
    }

    #[test]
    fn plain_file_paths_are_read_under_the_document_root_only() {
        let root = tempfile::tempdir().expect("root");
        std::fs::create_dir(root.path().join("videos")).expect("dir");
        std::fs::write(root.path().join("videos/a.mp4"), b"mp4").expect("file");
        let outside = tempfile::tempdir().expect("outside");
        std::fs::write(outside.path().join("secret.mp4"), b"secret").expect("file");
        #[cfg(unix)]
        std::os::unix::fs::symlink(outside.path().join("secret.mp4"), root.path().join("videos/link.mp4"))
            .expect("link");
        let root_arg = root.path().to_str().expect("utf-8");
        let c = client_with(&[
            "--label-studio-url",
            "http://ls.example",
            "--local-files-document-root",
            root_arg,
        ]);
        let expected = root.path().canonicalize().expect("canon").join("videos/a.mp4");
        let absolute = expected.to_str().expect("utf-8").to_string();
        for inside in ["videos/a.mp4", "./videos/a.mp4", absolute.as_str()] {
            assert_eq!(
                c.resolve(inside, None).expect(inside),
                Source::LocalFile(expected.clone()),
                "{inside}"
            );
        }
        for escape in ["../x/secret.mp4", "videos/../../x/secret.mp4", "videos/link.mp4"] {
            assert!(
                matches!(c.resolve(escape, None), Err(MediaError::Unsupported { .. })),
                "{escape}: {:?}",
                c.resolve(escape, None)
            );
        }
        // A missing file is an error here, never a request to Label Studio's address.
        assert!(matches!(
            c.resolve("videos/missing.mp4", None),
            Err(MediaError::LocalFile { .. })
        ));
        // Without a document root, no plain path is read at all.
        let without = client(Some("http://ls.example"));
        assert!(matches!(
            without.resolve("videos/a.mp4", None),
            Err(MediaError::Unsupported { .. })
        ));
        // Paths from `/` outside the root are Label Studio's, as they always were.
        let elsewhere = outside.path().join("secret.mp4").display().to_string();
        assert_eq!(
            http_url(c.resolve(&elsewhere, None).expect("a Label Studio path")),
            format!("http://ls.example{elsewhere}")
        );
        assert_eq!(
            http_url(without.resolve("/data/upload/1/a.png", None).expect("upload")),
            "http://ls.example/data/upload/1/a.png"
        );
    }

    #[test]
    fn logged_urls_hide_credentials() {
        let url = Url::parse(
            "https://user:hunter2@bucket.s3.amazonaws.com/a.jpg?X-Amz-Signature=abc123&X-Amz-Credential=AKIA&size=2&token=t0k",
        )
        .expect("url");
        let shown = redact(&url);
        for secret in ["hunter2", "abc123", "AKIA", "t0k"] {
            assert!(!shown.contains(secret), "{shown}");
        }
        assert!(shown.contains("size=2") && shown.contains("user"), "{shown}");
        let plain = Url::parse("http://ls/data/local-files/?d=imgs/a.png").expect("url");
        assert_eq!(redact(&plain), "http://ls/data/local-files/?d=imgs/a.png");
    }

    #[test]
    fn only_label_studio_gets_credentials() {
        let ls = Url::parse("http://ls.example:8080/").expect("url");
        assert!(same_origin(
            &ls,
            &Url::parse("http://ls.example:8080/data/upload/1/a.png").expect("url")
        ));
        assert!(!same_origin(
            &ls,
            &Url::parse("http://ls.example:9090/a.png").expect("url")
        ));
        assert!(!same_origin(
            &ls,
            &Url::parse("https://ls.example:8080/a.png").expect("url")
        ));
        assert!(!same_origin(
            &ls,
            &Url::parse("http://images.example/a.png").expect("url")
        ));
    }
}
