//! Who may do what: one rule for every change and every action that costs (uploads, settings,
//! deletes, rollbacks, jobs, `/train`, Start Training, the annotations counted toward
//! automatic training, and the first `/setup`, which fixes Label Studio's address), and one
//! guard on every route against DNS rebinding. See docs/security.md for the threat model.
//!
//! - With Basic auth on, whoever passes it (every route but /health and /webhook asks).
//! - Without it, only a server bound to a loopback address trusts anyone, and then only
//!   requests whose `Host` names this machine: a web page that rebinds its own name to
//!   127.0.0.1 reaches the port, but its requests carry its name, so they get nothing, reads
//!   included. Any other bind answers changes with 403, saying how to turn them on.
//! - In both cases a browser's cross-site or cross-origin request is refused, so a form on
//!   another site cannot delete a model or start a training.

use std::{net::IpAddr, sync::Arc};

use warp::{Filter, Rejection, http::HeaderMap};

#[derive(Debug, Clone)]
pub struct Trust {
    basic_auth: bool,
    loopback: bool,
    /// Host names besides localhost that are this machine (ML_ALLOWED_HOSTS), lowercase.
    listed: Arc<[String]>,
    /// The Basic-auth user, for the log lines of changes.
    user: Option<String>,
}

/// Why a request was refused; answered with 403 and these words.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error(
        "changing models or starting work through the API needs HTTP Basic auth when the server listens beyond \
         this machine: set BASIC_AUTH_USER and BASIC_AUTH_PASS (or listen on 127.0.0.1)"
    )]
    NeedsAuth,
    #[error("a cross-site request may not change models or start work")]
    CrossSite,
    #[error("a request from {origin} may not change models or start work on {host} (another origin)")]
    OtherOrigin { origin: String, host: String },
    #[error(
        "this server answers to localhost, 127.0.0.1 and [::1] only, not to the name `{host}`: if that name is \
         this machine, add it to ML_ALLOWED_HOSTS"
    )]
    ForeignHost { host: String },
}

/// The rejection carrying a refusal.
#[derive(Debug)]
pub struct Forbidden(pub Refusal);

impl warp::reject::Reject for Forbidden {}

impl Trust {
    pub fn new(basic_auth: bool, loopback: bool, allowed_hosts: &[String], user: Option<String>) -> Self {
        let listed = allowed_hosts
            .iter()
            .map(|h| h.trim().trim_end_matches('.').to_ascii_lowercase())
            .filter(|h| !h.is_empty())
            .collect();
        Self {
            basic_auth,
            loopback,
            listed,
            user,
        }
    }

    pub fn who(&self) -> String {
        match &self.user {
            Some(user) => format!("user `{user}`"),
            None => "a local client".to_string(),
        }
    }

    /// Every route. Without Basic auth on a loopback bind, the `Host` must name this machine.
    /// A request without one (HTTP/1.0) is not a browser's, so it passes.
    pub fn check_host(&self, headers: &HeaderMap) -> Result<(), Refusal> {
        if self.basic_auth || !self.loopback {
            return Ok(());
        }
        let Some(host) = headers.get("host") else {
            return Ok(());
        };
        let host = String::from_utf8_lossy(host.as_bytes());
        let name = host_name(&host);
        let local = name == "localhost"
            || name.ends_with(".localhost")
            || name
                .trim_start_matches('[')
                .trim_end_matches(']')
                .parse::<IpAddr>()
                .is_ok_and(|ip| ip.is_loopback())
            || self.listed.contains(&name);
        if local {
            Ok(())
        } else {
            Err(Refusal::ForeignHost {
                host: host.chars().take(100).collect(),
            })
        }
    }

    /// Changes and actions that cost. Basic auth itself, when on, is checked by the route's
    /// own guard (or by the caller, for /webhook) before this.
    pub fn check(&self, headers: &HeaderMap) -> Result<(), Refusal> {
        if !self.basic_auth && !self.loopback {
            return Err(Refusal::NeedsAuth);
        }
        self.check_host(headers)?;
        let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
        if header("sec-fetch-site").is_some_and(|site| site.eq_ignore_ascii_case("cross-site")) {
            return Err(Refusal::CrossSite);
        }
        if let Some(origin) = headers.get("origin") {
            let origin = String::from_utf8_lossy(origin.as_bytes());
            let origin_host = origin.split_once("://").map_or(&*origin, |(_, rest)| rest);
            let host = header("host").unwrap_or("");
            if !origin_host.eq_ignore_ascii_case(host) {
                return Err(Refusal::OtherOrigin {
                    origin: origin.chars().take(100).collect(),
                    host: host.chars().take(100).collect(),
                });
            }
        }
        Ok(())
    }
}

/// The name part of a `Host` header: lowercase, without the port or a trailing dot.
fn host_name(host: &str) -> String {
    let host = host.trim();
    let name = if host.starts_with('[') {
        host.split_once(']').map_or(host, |(name, _)| name).to_string() + "]"
    } else {
        match host.rsplit_once(':') {
            Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) => name.to_string(),
            _ => host.to_string(),
        }
    };
    name.trim_end_matches('.').to_ascii_lowercase()
}

/// A filter that passes what `check` passes, and refuses the rest with its reason.
fn filter(
    trust: Trust,
    check: fn(&Trust, &HeaderMap) -> Result<(), Refusal>,
) -> impl Filter<Extract = (), Error = Rejection> + Clone {
    warp::header::headers_cloned()
        .and_then(move |headers: HeaderMap| {
            let verdict = check(&trust, &headers).map_err(|why| warp::reject::custom(Forbidden(why)));
            async move { verdict }
        })
        .untuple_one()
}

/// Every route: refuses a foreign `Host` (see `Trust::check_host`).
pub fn host_guard(trust: Trust) -> impl Filter<Extract = (), Error = Rejection> + Clone {
    filter(trust, Trust::check_host)
}

/// Changes and actions that cost (see `Trust::check`).
pub fn guard(trust: Trust) -> impl Filter<Extract = (), Error = Rejection> + Clone {
    filter(trust, Trust::check)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (k, v) in pairs {
            map.insert(*k, warp::http::HeaderValue::from_static(v));
        }
        map
    }

    fn local() -> Trust {
        Trust::new(false, true, &["ml.internal".to_string()], None)
    }

    #[test]
    fn cross_site_and_cross_origin_changes_are_refused() {
        let trust = local();
        assert!(
            trust.check(&headers(&[("host", "127.0.0.1:9090")])).is_ok(),
            "curl sends no origin"
        );
        assert!(
            trust
                .check(&headers(&[
                    ("host", "127.0.0.1:9090"),
                    ("origin", "http://127.0.0.1:9090")
                ]))
                .is_ok()
        );
        assert!(matches!(
            trust.check(&headers(&[
                ("host", "127.0.0.1:9090"),
                ("origin", "https://evil.example")
            ])),
            Err(Refusal::OtherOrigin { .. })
        ));
        assert_eq!(
            trust.check(&headers(&[("sec-fetch-site", "cross-site")])),
            Err(Refusal::CrossSite)
        );
    }

    #[test]
    fn a_rebound_name_gets_nothing_on_a_loopback_bind() {
        let trust = local();
        for good in [
            "localhost:9090",
            "LOCALHOST",
            "127.0.0.1:9090",
            "127.3.4.5",
            "[::1]:9090",
            "app.localhost:9090",
            "ml.internal:9090",
            "ml.internal.",
        ] {
            let h = HeaderMap::from_iter([(
                warp::http::header::HOST,
                warp::http::HeaderValue::from_str(good).expect("value"),
            )]);
            assert!(trust.check_host(&h).is_ok(), "{good}");
        }
        for bad in [
            "evil.example:9090",
            "evil.example",
            "localhost.evil.example",
            "10.0.0.5:9090",
            "[::2]:9090",
        ] {
            let h = HeaderMap::from_iter([(
                warp::http::header::HOST,
                warp::http::HeaderValue::from_str(bad).expect("value"),
            )]);
            assert!(
                matches!(trust.check_host(&h), Err(Refusal::ForeignHost { .. })),
                "{bad}"
            );
            // The same-origin check alone passed this (Origin and Host agree).
            let mut with_origin = h.clone();
            with_origin.insert(
                "origin",
                warp::http::HeaderValue::from_str(&format!("http://{bad}")).expect("value"),
            );
            assert!(trust.check(&with_origin).is_err(), "{bad}");
        }
        assert!(trust.check_host(&HeaderMap::new()).is_ok(), "no Host: not a browser");
    }

    #[test]
    fn beyond_loopback_changes_need_basic_auth_and_any_host_may_read() {
        let open = Trust::new(false, false, &[], None);
        assert_eq!(open.check(&HeaderMap::new()), Err(Refusal::NeedsAuth));
        assert!(open.check_host(&headers(&[("host", "ml.example")])).is_ok());
        let with_auth = Trust::new(true, false, &[], Some("ann".into()));
        assert!(with_auth.check(&headers(&[("host", "ml.example")])).is_ok());
        assert!(with_auth.check(&headers(&[("sec-fetch-site", "cross-site")])).is_err());
        assert_eq!(with_auth.who(), "user `ann`");
    }
}
