//! Which hosts task images may come from: an optional allow-list (ML_MEDIA_ALLOWED_HOSTS),
//! and optionally no loopback, private or link-local addresses (ML_MEDIA_BLOCK_PRIVATE), so
//! that a task's URL cannot make the backend probe the network it runs in. Label Studio's own
//! host is always allowed: the backend has to download from it.
//!
//! Names are checked where they are resolved (a resolver that drops refused addresses), so
//! a name cannot pass a check and then connect somewhere else.

use std::{
    net::{IpAddr, SocketAddr},
    sync::Arc,
};

use parking_lot::RwLock;
use reqwest::{
    Url,
    dns::{Addrs, Name, Resolve, Resolving},
};

#[derive(Default)]
pub struct MediaPolicy {
    allowed: Vec<String>,
    block_private: bool,
    /// Label Studio's host and port, exempt from both rules.
    label_studio: RwLock<Option<(String, Option<u16>)>>,
}

impl MediaPolicy {
    pub fn new(allowed: &[String], block_private: bool) -> Self {
        Self {
            allowed: allowed
                .iter()
                .map(|h| h.trim().to_ascii_lowercase())
                .filter(|h| !h.is_empty())
                .collect(),
            block_private,
            label_studio: RwLock::new(None),
        }
    }

    pub fn set_label_studio(&self, url: &Url) {
        *self.label_studio.write() = url
            .host_str()
            .map(|h| (h.to_ascii_lowercase(), url.port_or_known_default()));
    }

    /// Whether `host` is Label Studio's host name (resolution happens before ports matter).
    fn is_label_studio_host(&self, host: &str) -> bool {
        self.label_studio
            .read()
            .as_ref()
            .is_some_and(|(ls, _)| ls.eq_ignore_ascii_case(host))
    }

    pub fn is_label_studio(&self, url: &Url) -> bool {
        self.label_studio.read().as_ref().is_some_and(|(ls, port)| {
            url.host_str().is_some_and(|h| ls.eq_ignore_ascii_case(h)) && *port == url.port_or_known_default()
        })
    }

    /// Why a URL may not be fetched, if it may not. Addresses behind names are checked when
    /// they are resolved.
    pub fn refusal(&self, url: &Url) -> Option<String> {
        let host = url.host_str()?.trim_start_matches('[').trim_end_matches(']');
        if self.is_label_studio(url) {
            return None;
        }
        if !self.allowed.is_empty() && !self.allowed.iter().any(|a| a.eq_ignore_ascii_case(host)) {
            return Some(format!("the host `{host}` is not in ML_MEDIA_ALLOWED_HOSTS"));
        }
        if self.block_private
            && let Ok(ip) = host.parse::<IpAddr>()
            && !is_public(ip)
        {
            return Some(format!(
                "{ip} is a private or loopback address (ML_MEDIA_BLOCK_PRIVATE)"
            ));
        }
        None
    }
}

/// Whether an address is on the public internet: not loopback, private, link-local,
/// unique-local, shared (CGNAT), unspecified, broadcast or multicast.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            !(v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_multicast()
                || (a == 100 && (64..128).contains(&b)))
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_public(IpAddr::V4(v4));
            }
            let first = v6.segments()[0];
            !(v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (first & 0xfe00) == 0xfc00
                || (first & 0xffc0) == 0xfe80)
        }
    }
}

/// The system resolver, minus the addresses the policy refuses.
pub struct GuardedResolver(pub Arc<MediaPolicy>);

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let policy = Arc::clone(&self.0);
        let host = name.as_str().to_string();
        Box::pin(async move {
            let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            if !policy.block_private || policy.is_label_studio_host(&host) {
                return Ok(Box::new(addrs.into_iter()) as Addrs);
            }
            let public: Vec<SocketAddr> = addrs.into_iter().filter(|a| is_public(a.ip())).collect();
            if public.is_empty() {
                return Err(format!(
                    "`{host}` resolves only to private or loopback addresses (ML_MEDIA_BLOCK_PRIVATE)"
                )
                .into());
            }
            Ok(Box::new(public.into_iter()) as Addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_addresses() {
        for private in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "::1",
            "fd00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
        ] {
            assert!(!is_public(private.parse().expect("ip")), "{private}");
        }
        for public in ["8.8.8.8", "1.1.1.1", "2606:4700:4700::1111", "172.32.0.1"] {
            assert!(is_public(public.parse().expect("ip")), "{public}");
        }
    }

    #[test]
    fn allow_list_and_private_block() {
        let url = |u: &str| Url::parse(u).expect("url");
        let policy = MediaPolicy::new(&["images.example.com".into()], true);
        assert!(policy.refusal(&url("https://images.example.com/a.png")).is_none());
        assert!(policy.refusal(&url("https://IMAGES.example.com/a.png")).is_none());
        assert!(policy.refusal(&url("https://evil.example.com/a.png")).is_some());
        let policy = MediaPolicy::new(&[], true);
        assert!(policy.refusal(&url("http://127.0.0.1:8080/a.png")).is_some());
        assert!(policy.refusal(&url("http://[::1]/a.png")).is_some());
        assert!(policy.refusal(&url("http://8.8.8.8/a.png")).is_none());
        policy.set_label_studio(&url("http://127.0.0.1:8080/"));
        assert!(
            policy
                .refusal(&url("http://127.0.0.1:8080/data/upload/1/a.png"))
                .is_none()
        );
        let open = MediaPolicy::new(&[], false);
        assert!(open.refusal(&url("http://127.0.0.1/a.png")).is_none());
    }
}
