//! Optional HTTP Basic auth (BASIC_AUTH_USER / BASIC_AUTH_PASS), the one kind of credentials
//! Label Studio can send to a backend.

use std::{collections::HashMap, net::IpAddr, sync::Arc, time::Instant};

use headers::{Authorization, Header, authorization::Basic};
use parking_lot::Mutex;
use sha2::{Digest, Sha256};
use warp::{Filter, Rejection};

use labelstudio_protocol::Secret;

/// The rejection for a missing or wrong `Authorization` header; answered with 401.
#[derive(Debug)]
pub struct Unauthorized;

impl warp::reject::Reject for Unauthorized {}

/// The rejection for an address that failed too often this minute; answered with 429.
#[derive(Debug)]
pub struct TooManyFailures {
    pub retry_after_secs: u64,
}

impl warp::reject::Reject for TooManyFailures {}

/// Failed attempts per client address in the current minute (ML_AUTH_FAILURES_PER_MINUTE),
/// so that guessing the password takes years, not hours.
pub struct Throttle {
    per_minute: u32,
    start: Instant,
    failures: Mutex<HashMap<IpAddr, (u64, u32)>>,
}

impl Throttle {
    pub fn new(per_minute: u32) -> Self {
        Self {
            per_minute: per_minute.max(1),
            start: Instant::now(),
            failures: Mutex::default(),
        }
    }

    fn minute(&self) -> u64 {
        self.start.elapsed().as_secs() / 60
    }

    /// Seconds until `ip` may try again, if it is over the limit.
    fn blocked(&self, ip: IpAddr) -> Option<u64> {
        let minute = self.minute();
        let failures = self.failures.lock();
        match failures.get(&ip) {
            Some(&(m, n)) if m == minute && n >= self.per_minute => Some(60 - self.start.elapsed().as_secs() % 60),
            _ => None,
        }
    }

    fn failed(&self, ip: IpAddr) {
        let minute = self.minute();
        let mut failures = self.failures.lock();
        // Addresses of past minutes are forgotten, so a scan of many addresses stays bounded.
        if failures.len() > 10_000 {
            failures.retain(|_, (m, _)| *m == minute);
        }
        let entry = failures.entry(ip).or_insert((minute, 0));
        if entry.0 != minute {
            *entry = (minute, 0);
        }
        entry.1 += 1;
        if entry.1 == self.per_minute {
            log::warn!(
                "{ip} failed Basic auth {} times this minute (ML_AUTH_FAILURES_PER_MINUTE): refused until the minute is over",
                self.per_minute
            );
        }
    }
}

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
        let basic = header
            .and_then(|h| warp::http::HeaderValue::from_str(h.trim()).ok())
            .and_then(|value| Authorization::<Basic>::decode(&mut std::iter::once(&value)).ok());
        let Some(basic) = basic else {
            return false;
        };
        let given = format!("{}:{}", basic.username(), basic.password());
        constant_time_eq(&digest(given.as_bytes()), expected)
    }
}

pub(super) fn digest(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

pub(super) fn constant_time_eq(a: &[u8; 32], b: &[u8; 32]) -> bool {
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(diff) == 0
}

/// Passes requests that carry the right credentials (all of them when auth is off); an
/// address that failed too often this minute is refused without a check.
pub fn guard(expected: Expected, throttle: Arc<Throttle>) -> impl Filter<Extract = (), Error = Rejection> + Clone {
    warp::header::optional::<String>("authorization")
        .and(warp::ext::optional::<super::listener::ClientAddr>())
        .and_then(
            move |header: Option<String>, client: Option<super::listener::ClientAddr>| {
                let verdict = if !expected.is_on() {
                    Ok(())
                } else if let Some(retry_after_secs) = client.and_then(|c| throttle.blocked(c.0)) {
                    Err(warp::reject::custom(TooManyFailures { retry_after_secs }))
                } else if expected.admits(header.as_deref()) {
                    Ok(())
                } else {
                    if let Some(client) = client {
                        throttle.failed(client.0);
                    }
                    Err(warp::reject::custom(Unauthorized))
                };
                async move { verdict }
            },
        )
        .untuple_one()
}

#[cfg(test)]
mod tests {
    use base64::Engine;

    use super::*;

    fn header(user_pass: &str) -> String {
        format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(user_pass))
    }

    #[test]
    fn the_scheme_is_case_blind_and_a_password_may_hold_colons() {
        let expected = Expected::new(Some(("u".into(), Secret::from("p:q".to_string()))));
        assert!(expected.admits(Some(&header("u:p:q"))));
        assert!(expected.admits(Some(&header("u:p:q").replacen("Basic", "basic", 1))));
        assert!(!expected.admits(Some(&header("u:p"))));
        assert!(!expected.admits(Some("Basic not-base64!")));
        assert!(!expected.admits(Some(&header("u:p:q").replacen("Basic", "Bearer", 1))));
        assert!(!expected.admits(None));
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
    fn an_address_is_refused_past_its_failures_and_others_are_not() {
        let throttle = Throttle::new(3);
        let a: IpAddr = "10.0.0.1".parse().expect("ip");
        let b: IpAddr = "10.0.0.2".parse().expect("ip");
        for _ in 0..2 {
            throttle.failed(a);
        }
        assert!(throttle.blocked(a).is_none(), "two of three");
        throttle.failed(a);
        assert!(throttle.blocked(a).is_some_and(|s| (1..=60).contains(&s)));
        assert!(throttle.blocked(b).is_none());
    }

    #[test]
    fn off_admits_everyone() {
        let expected = Expected::new(None);
        assert!(!expected.is_on());
        assert!(expected.admits(None));
    }
}
