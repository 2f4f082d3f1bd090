//! The web page (`/ui`): one HTML file with its script and styles, embedded at build time, so
//! the page works offline and needs no build step.

use std::sync::LazyLock;

use base64::Engine;
use sha2::{Digest, Sha256};
use warp::{Reply, reply::Response};

const PAGE: &str = include_str!("../../ui/index.html");

/// The page only talks to this server and is never framed. Its one script is allowed by its
/// hash, so a script injected into the page (say, through a model name) does not run.
static POLICY: LazyLock<String> = LazyLock::new(|| {
    format!(
        "default-src 'self'; img-src 'self' data: blob: *; script-src '{}'; style-src 'unsafe-inline'; \
         frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
        script_hash(PAGE)
    )
});

/// `sha256-<base64>` of the page's inline script, as CSP hashes it.
fn script_hash(page: &str) -> String {
    let script = page
        .split_once("<script>")
        .and_then(|(_, rest)| rest.split_once("</script>"))
        .map_or("", |(script, _)| script);
    format!(
        "sha256-{}",
        base64::engine::general_purpose::STANDARD.encode(Sha256::digest(script.as_bytes()))
    )
}

#[utoipa::path(get, path = "/ui", tag = "server", description = "The web page (models, uploads, tries, jobs).", responses((status = 200, description = "The page", content_type = "text/html")))]
pub fn page() -> Response {
    warp::reply::with_header(
        warp::reply::with_header(PAGE, "content-type", "text/html; charset=utf-8"),
        "content-security-policy",
        POLICY.as_str(),
    )
    .into_response()
}

/// A browser asking for `/` gets the page; Label Studio's own calls keep their JSON.
pub fn wants_page(accept: Option<&str>) -> bool {
    accept.is_some_and(|a| a.contains("text/html"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_browsers_are_sent_to_the_page() {
        assert!(wants_page(Some("text/html,application/xhtml+xml,*/*;q=0.8")));
        assert!(!wants_page(Some("application/json")));
        assert!(!wants_page(None));
    }

    #[test]
    fn the_policy_allows_the_pages_one_script_by_hash() {
        assert_eq!(PAGE.matches("<script").count(), 1, "one inline script, the one hashed");
        assert!(!POLICY.contains("script-src 'unsafe-inline'"));
        assert!(POLICY.contains(&format!("script-src '{}'", script_hash(PAGE))));
        assert_ne!(script_hash(PAGE), script_hash("<script></script>"));
    }
}
