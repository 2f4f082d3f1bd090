//! Optional HTTP Basic auth (BASIC_AUTH_USER / BASIC_AUTH_PASS), the one kind of credentials
//! Label Studio can send to a backend.

use std::sync::Arc;

use base64::Engine;
use sha2::{Digest, Sha256};
use warp::{Filter, Rejection};

use crate::config::Secret;

/// The rejection for a missing or wrong `Authorization` header; answered with 401.
#[derive(Debug)]
pub struct Unauthorized;

impl warp::reject::Reject for Unauthorized {}

/// What a client must send: the digest of `user:pass`. Comparing digests makes the check's
/// time independent of where, or whether, the lengths differ.
#[derive(Clone)]
pub struct Expected(Option<Arc<[u8; 32]>>);

impl Expected {
    pub fn new(credentials: Option<(String, Secret)>) -> Self {
        Self(credentials.map(|(user, pass)| Arc::new(digest(format!("{user}:{}", pass.expose()).as_bytes()))))
    }

    pub fn is_on(&self) -> bool {
        self.0.is_some()
    }

    pub fn admits(&self, header: Option<&str>) -> bool {
        let Some(expected) = &self.0 else {
            return true;
        };
        let Some((scheme, encoded)) = header.and_then(|h| h.trim().split_once(' ')) else {
            return false;
        };
        if !scheme.eq_ignore_ascii_case("basic") {
            return false;
        }
        let Ok(given) = base64::engine::general_purpose::STANDARD.decode(encoded.trim()) else {
            return false;
        };
        constant_time_eq(&digest(&given), expected)
    }
}

fn digest(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

fn constant_time_eq(a: &[u8; 32], b: &[u8; 32]) -> bool {
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(diff) == 0
}

/// Passes requests that carry the right credentials (all of them when auth is off).
pub fn guard(expected: Expected) -> impl Filter<Extract = (), Error = Rejection> + Clone {
    warp::header::optional::<String>("authorization")
        .and_then(move |header: Option<String>| {
            let admitted = expected.admits(header.as_deref());
            async move {
                if admitted {
                    Ok(())
                } else {
                    Err(warp::reject::custom(Unauthorized))
                }
            }
        })
        .untuple_one()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(user_pass: &str) -> String {
        format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(user_pass))
    }

    #[test]
    fn checks_user_and_password() {
        let expected = Expected::new(Some(("ann".into(), Secret::from("s3cret".to_string()))));
        assert!(expected.admits(Some(&header("ann:s3cret"))));
        assert!(expected.admits(Some(&format!("basic {}", &header("ann:s3cret")[6..]))));
        assert!(!expected.admits(Some(&header("ann:s3cre"))));
        assert!(!expected.admits(Some(&header("ann:s3cret "))));
        assert!(!expected.admits(Some(&header("bob:s3cret"))));
        assert!(!expected.admits(Some("Bearer ann:s3cret")));
        assert!(!expected.admits(Some("Basic !!!")));
        assert!(!expected.admits(None));
    }

    #[test]
    fn off_admits_everyone() {
        let expected = Expected::new(None);
        assert!(!expected.is_on());
        assert!(expected.admits(None));
    }
}
