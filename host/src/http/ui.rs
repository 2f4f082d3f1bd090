//! The web page (`/ui`): one HTML file with its script and styles, embedded at build time, so
//! the page works offline and needs no build step.

use warp::{Reply, reply::Response};

const PAGE: &str = include_str!("../../ui/index.html");

pub fn page() -> Response {
    warp::reply::with_header(
        warp::reply::with_header(PAGE, "content-type", "text/html; charset=utf-8"),
        // The page only talks to this server; it is never framed by another site.
        "content-security-policy",
        "default-src 'self'; img-src 'self' data: blob: *; script-src 'unsafe-inline'; style-src 'unsafe-inline'; \
         frame-ancestors 'none'",
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
}
