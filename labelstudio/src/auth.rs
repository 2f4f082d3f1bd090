//! The `Authorization` header for requests to Label Studio.
//!
//! Label Studio 1.17+ has two kinds of API key. A legacy token (40 hex digits) is sent as
//! `Token <key>`, and works only while the organization allows legacy tokens (off by default
//! for new organizations in 1.23). A personal access token is a JWT refresh token: it is never
//! sent itself, but exchanged at `/api/token/refresh` for an access token that lives about
//! five minutes and is sent as `Bearer <access>`.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use reqwest::{StatusCode, Url};
use serde_json::Value;
use tokio::sync::Mutex;

use labelstudio_protocol::Secret;

/// Refresh this long before the access token's expiry, so a download never starts with a
/// token that runs out on the way.
const REFRESH_MARGIN: Duration = Duration::from_secs(30);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    Legacy,
    Personal,
}

impl KeyKind {
    /// Tells the kinds apart as Label Studio's SDK does: a key that decodes as a JWT with an
    /// expiry is a personal access token, anything else is a legacy token.
    pub fn of(key: &str) -> KeyKind {
        match jwt_expiry(key) {
            Some(_) => KeyKind::Personal,
            None => KeyKind::Legacy,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error(
        "the personal access token in LABEL_STUDIO_API_KEY has expired: create a new one in Label Studio \
         (Account & Settings > Personal Access Token)"
    )]
    Expired,
    #[error("exchanging the personal access token at {url} failed: {message}")]
    Refresh { url: String, message: String },
}

/// The seconds-since-epoch `exp` claim of a JWT, read without checking its signature (only
/// Label Studio can check it; we only need to know the kind and when to refresh).
pub fn jwt_expiry(token: &str) -> Option<u64> {
    let mut parts = token.trim().split('.');
    let (_, payload, _, None) = (parts.next()?, parts.next()?, parts.next()?, parts.next()) else {
        return None;
    };
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    let claims: Value = serde_json::from_slice(&bytes).ok()?;
    claims.get("exp")?.as_f64().map(|exp| exp.max(0.0) as u64)
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// A Label Studio API key, and for a personal access token the cached access token.
pub struct Credentials {
    key: Secret,
    kind: KeyKind,
    /// Held across the refresh request, so that concurrent downloads trigger one refresh.
    access: Mutex<Option<(Secret, u64)>>,
}

impl Credentials {
    pub fn new(key: Secret) -> Self {
        let kind = KeyKind::of(key.expose());
        Self {
            key,
            kind,
            access: Mutex::new(None),
        }
    }

    pub fn kind(&self) -> KeyKind {
        self.kind
    }

    /// The header value to send to Label Studio at `base`.
    pub async fn header(&self, http: &reqwest::Client, base: &Url) -> Result<String, AuthError> {
        match self.kind {
            KeyKind::Legacy => Ok(format!("Token {}", self.key.expose())),
            KeyKind::Personal => {
                let mut access = self.access.lock().await;
                if let Some((token, exp)) = access.as_ref()
                    && now_secs() + REFRESH_MARGIN.as_secs() < *exp
                {
                    return Ok(format!("Bearer {}", token.expose()));
                }
                let (token, exp) = self.refresh(http, base).await?;
                let header = format!("Bearer {}", token.expose());
                *access = Some((token, exp));
                Ok(header)
            }
        }
    }

    /// Forgets the access token after Label Studio refused it, so the next header refreshes.
    /// Returns whether a retry can help (only a refreshed access token can change the answer).
    pub async fn refused(&self) -> bool {
        match self.kind {
            KeyKind::Legacy => false,
            KeyKind::Personal => {
                self.access.lock().await.take();
                true
            }
        }
    }

    async fn refresh(&self, http: &reqwest::Client, base: &Url) -> Result<(Secret, u64), AuthError> {
        if jwt_expiry(self.key.expose()).is_some_and(|exp| exp <= now_secs()) {
            return Err(AuthError::Expired);
        }
        let url = base.join("api/token/refresh").map_err(|e| AuthError::Refresh {
            url: base.to_string(),
            message: e.to_string(),
        })?;
        let fail = |message: String| AuthError::Refresh {
            url: url.to_string(),
            message,
        };
        let response = http
            .post(url.clone())
            .json(&serde_json::json!({ "refresh": self.key.expose() }))
            .send()
            .await
            .map_err(|e| fail(e.to_string()))?;
        let status = response.status();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        if !status.is_success() {
            let detail = body.get("detail").and_then(Value::as_str).unwrap_or("");
            let hint = match status {
                StatusCode::UNAUTHORIZED | StatusCode::BAD_REQUEST => {
                    ": the token was refused; it may have been revoked or belong to another Label Studio"
                }
                StatusCode::NOT_FOUND => ": this Label Studio has no personal access tokens (it is older than 1.17?)",
                _ => "",
            };
            return Err(fail(format!("HTTP {status} {detail}{hint}")));
        }
        let access = body
            .get("access")
            .and_then(Value::as_str)
            .ok_or_else(|| fail("the answer has no `access` token".into()))?;
        // An access token without a readable expiry is used for the documented five minutes.
        let exp = jwt_expiry(access).unwrap_or_else(|| now_secs() + 300);
        log::debug!(
            "refreshed the Label Studio access token; it expires in {} s",
            exp.saturating_sub(now_secs())
        );
        Ok((Secret::from(access.to_string()), exp))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jwt(claims: &str) -> String {
        let enc = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
        format!(
            "{}.{}.{}",
            enc(r#"{"alg":"HS256","typ":"JWT"}"#),
            enc(claims),
            enc("signature")
        )
    }

    #[test]
    fn tells_the_key_kinds_apart() {
        assert_eq!(KeyKind::of("0123456789abcdef0123456789abcdef01234567"), KeyKind::Legacy);
        assert_eq!(
            KeyKind::of(&jwt(r#"{"token_type":"refresh","exp":4102444800}"#)),
            KeyKind::Personal
        );
        // A JWT without an expiry is not a personal access token.
        assert_eq!(KeyKind::of(&jwt(r#"{"token_type":"refresh"}"#)), KeyKind::Legacy);
        assert_eq!(KeyKind::of("a.b.c"), KeyKind::Legacy);
        assert_eq!(KeyKind::of("a.b.c.d"), KeyKind::Legacy);
    }

    #[test]
    fn reads_the_expiry() {
        assert_eq!(
            jwt_expiry(&jwt(r#"{"exp":1700000000,"iat":1699999700}"#)),
            Some(1_700_000_000)
        );
        assert_eq!(jwt_expiry("not a jwt"), None);
    }

    #[tokio::test]
    async fn an_expired_personal_token_is_a_clear_error() {
        let creds = Credentials::new(Secret::from(jwt(r#"{"token_type":"refresh","exp":1000}"#)));
        let base = Url::parse("http://127.0.0.1:9/").expect("url");
        let err = creds.header(&reqwest::Client::new(), &base).await.expect_err("expired");
        assert!(matches!(err, AuthError::Expired), "{err}");
    }

    #[tokio::test]
    async fn a_legacy_key_is_sent_as_token() {
        let creds = Credentials::new(Secret::from("abc123".to_string()));
        let base = Url::parse("http://127.0.0.1:9/").expect("url");
        let header = creds.header(&reqwest::Client::new(), &base).await.expect("header");
        assert_eq!(header, "Token abc123");
        assert!(!creds.refused().await);
    }
}
