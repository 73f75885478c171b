//! Image inputs given as http(s) URLs: off unless configured. Each hop of a redirect chain is
//! re-checked (scheme, and every resolved address against the private-address rule), with
//! connect and total timeouts and a size cap. Runs on the blocking pool.

use std::io::Read;
use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::time::Duration;

use crate::config::UrlFetchConfig;

/// A configured fetcher.
#[derive(Debug, Clone)]
pub struct UrlFetcher {
    agent: ureq::Agent,
    config: UrlFetchConfig,
}

/// Whether an address is private, loopback, link-local or otherwise not on the public internet.
pub fn is_non_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, c, _] = v4.octets();
            v4.is_private()
                || v4.is_loopback()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_multicast()
                || a == 0
                || a >= 240
                || (a == 100 && (64..128).contains(&b))
                || (a == 192 && b == 0 && c == 0)
                || (a == 198 && (b == 18 || b == 19))
                // Documentation ranges (TEST-NET-1, -2, -3): never a real server.
                || (a == 192 && b == 0 && c == 2)
                || (a == 198 && b == 51 && c == 100)
                || (a == 203 && b == 0 && c == 113)
        }
        IpAddr::V6(v6) => {
            let s = v6.segments();
            let embedded = |hi: u16, lo: u16| {
                let [h1, h2] = hi.to_be_bytes();
                let [l1, l2] = lo.to_be_bytes();
                is_non_public(IpAddr::V4(std::net::Ipv4Addr::new(h1, h2, l1, l2)))
            };
            // IPv4-mapped (::ffff:0:0/96): a way around the IPv4 rules, refused whatever it maps.
            if v6.to_ipv4_mapped().is_some() {
                return true;
            }
            // Documentation (2001:db8::/32).
            if s[0] == 0x2001 && s[1] == 0x0db8 {
                return true;
            }
            // IPv4-compatible (::a.b.c.d) and NAT64 (64:ff9b::/96) carry an IPv4 address last.
            if (s[..6] == [0; 6] && s[6] != 0) || s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
                return embedded(s[6], s[7]);
            }
            // 6to4 (2002::/16) carries one in bits 16..48.
            if s[0] == 0x2002 {
                return embedded(s[1], s[2]);
            }
            v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (s[0] & 0xfe00) == 0xfc00 // unique local
                || (s[0] & 0xffc0) == 0xfe80 // link-local
                || (s[0] & 0xffc0) == 0xfec0 // site-local
                || (s[0] == 0x64 && s[1] == 0xff9b) // local-use NAT64 (64:ff9b:1::/48)
                || (s[0] == 0x2001 && s[1] == 0) // Teredo
        }
    }
}

/// Why an image URL gave no image. Messages are safe to show to clients: a failed fetch says
/// only that it failed, so that a client cannot tell a refused port from a silent one or an
/// answering one (the detail goes to the log).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FetchError {
    /// URL inputs are switched off (`url_fetch.enabled`).
    #[error("image URLs are not enabled on this server; send the image as base64 or a data URL")]
    Disabled,
    /// The body is over `url_fetch.max_bytes`.
    #[error("the image at the URL is larger than {max_bytes} bytes")]
    TooLarge {
        /// The limit.
        max_bytes: u64,
    },
    /// The URL itself is malformed or not http(s): the client's own input, said as it is.
    #[error("{0}")]
    BadUrl(String),
    /// Anything on the way: a refused address, DNS, a connection, a timeout, an HTTP error.
    #[error("the image URL could not be fetched")]
    Failed,
}

/// A failed fetch: the detail is logged, the client hears only that it failed.
fn fetch_failed(detail: impl std::fmt::Display) -> FetchError {
    tracing::info!(%detail, "image URL fetch failed");
    FetchError::Failed
}

/// The addresses of `netloc` (`host:port`), or an error after `timeout`: the system resolver
/// has no timeout of its own, so the lookup runs on a thread of its own, abandoned if late.
fn resolve(netloc: &str, timeout: Duration) -> std::io::Result<Vec<SocketAddr>> {
    let (sender, receiver) = std::sync::mpsc::channel();
    let netloc = netloc.to_string();
    std::thread::Builder::new()
        .name("dns".into())
        .spawn(move || {
            let _ = sender.send(netloc.to_socket_addrs().map(Iterator::collect));
        })?;
    receiver.recv_timeout(timeout).unwrap_or_else(|_| {
        Err(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            "the DNS lookup took too long",
        ))
    })
}

impl UrlFetcher {
    /// A fetcher with `config`'s timeouts and address rule.
    pub fn new(config: &UrlFetchConfig) -> Self {
        let allow_private = config.allow_private_addresses;
        let dns_timeout = Duration::from_millis(config.connect_timeout_ms);
        let agent = ureq::AgentBuilder::new()
            .timeout_connect(Duration::from_millis(config.connect_timeout_ms))
            .timeout(Duration::from_millis(config.total_timeout_ms))
            .redirects(0)
            // Never through a proxy from the environment: the address rule checks the target.
            .try_proxy_from_env(false)
            .resolver(move |netloc: &str| -> std::io::Result<Vec<SocketAddr>> {
                let addresses = resolve(netloc, dns_timeout)?;
                let allowed: Vec<SocketAddr> = addresses
                    .into_iter()
                    .filter(|a| allow_private || !is_non_public(a.ip()))
                    .collect();
                if allowed.is_empty() {
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::PermissionDenied,
                        "the host resolves only to private, loopback or link-local addresses",
                    ));
                }
                Ok(allowed)
            })
            .build();
        Self {
            agent,
            config: config.clone(),
        }
    }

    /// Downloads an image body, following and re-checking redirects.
    pub fn fetch(&self, url: &str) -> Result<Vec<u8>, FetchError> {
        if !self.config.enabled {
            return Err(FetchError::Disabled);
        }
        let mut current =
            url::Url::parse(url).map_err(|e| FetchError::BadUrl(format!("bad image URL: {e}")))?;
        // One deadline for the whole chain of redirects.
        let deadline =
            std::time::Instant::now() + Duration::from_millis(self.config.total_timeout_ms);
        for _ in 0..=self.config.max_redirects {
            let remaining = deadline.saturating_duration_since(std::time::Instant::now());
            if remaining.is_zero() {
                return Err(fetch_failed("the redirect chain took too long"));
            }
            if !matches!(current.scheme(), "http" | "https") {
                return Err(FetchError::BadUrl(
                    "image URLs must be http or https".into(),
                ));
            }
            let response = match self
                .agent
                .request_url("GET", &current)
                .timeout(remaining)
                .call()
            {
                Ok(response) => response,
                Err(ureq::Error::Status(code, _)) => {
                    return Err(fetch_failed(format!("HTTP {code}")))
                }
                Err(error) => return Err(fetch_failed(error)),
            };
            if (300..400).contains(&response.status()) {
                let location = response
                    .header("location")
                    .ok_or_else(|| fetch_failed("a redirect without a Location"))?;
                current = current
                    .join(location)
                    .map_err(|e| fetch_failed(format!("bad redirect: {e}")))?;
                continue;
            }
            let mut body = Vec::new();
            response
                .into_reader()
                .take(self.config.max_bytes + 1)
                .read_to_end(&mut body)
                .map_err(fetch_failed)?;
            if body.len() as u64 > self.config.max_bytes {
                return Err(FetchError::TooLarge {
                    max_bytes: self.config.max_bytes,
                });
            }
            return Ok(body);
        }
        Err(fetch_failed("too many redirects"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_addresses_are_recognised() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "0.0.0.0",
            "100.64.0.1",
            "::1",
            "fe80::1",
            "fd00::1",
            "::ffff:127.0.0.1",
            "198.18.0.1",
            "240.0.0.1",
            "192.0.0.8",
            "fec0::1",
            "::127.0.0.1",
            "64:ff9b::a9fe:a9fe",
            "64:ff9b:1::1",
            "2002:7f00:1::1",
            "2001:0:4136:e378::1",
            "192.0.2.1",
            "198.51.100.7",
            "203.0.113.9",
            "::ffff:8.8.8.8",
            "2001:db8::1",
        ] {
            assert!(is_non_public(ip.parse().unwrap()), "{ip}");
        }
        for ip in [
            "8.8.8.8",
            "1.1.1.1",
            "2606:4700::1111",
            "64:ff9b::808:808",
            "2002:808:808::1",
        ] {
            assert!(!is_non_public(ip.parse().unwrap()), "{ip}");
        }
    }

    #[test]
    fn disabled_fetcher_refuses() {
        let fetcher = UrlFetcher::new(&UrlFetchConfig::default());
        assert_eq!(
            fetcher.fetch("http://example.com/x.png").unwrap_err(),
            FetchError::Disabled
        );
    }
}
