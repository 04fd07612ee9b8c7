//! The server-side request forgery guard: a webhook may reach public addresses only, unless
//! the admin allows a network (`KEPU_WEBHOOK_ALLOW`). Checked when a URL is subscribed and on
//! every attempt after DNS resolution; the sender connects to exactly the addresses checked
//! (its resolver is [`GuardedResolver`]), so a name that resolves anew to a private address
//! (DNS rebinding) is refused too.

use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use ipnet::IpNet;

/// Networks that are not the public internet: loopback, private, link-local, unique-local,
/// CGNAT, multicast, unspecified, documentation, benchmarking, reserved and translation
/// ranges. IPv4-mapped IPv6 addresses are judged as the IPv4 address they carry.
static NOT_PUBLIC: LazyLock<Vec<IpNet>> = LazyLock::new(|| {
    [
        "0.0.0.0/8",
        "10.0.0.0/8",
        "100.64.0.0/10",
        "127.0.0.0/8",
        "169.254.0.0/16",
        "172.16.0.0/12",
        "192.0.0.0/24",
        "192.0.2.0/24",
        "192.88.99.0/24",
        "192.168.0.0/16",
        "198.18.0.0/15",
        "198.51.100.0/24",
        "203.0.113.0/24",
        "224.0.0.0/4",
        "240.0.0.0/4",
        "::/128",
        "::1/128",
        "64:ff9b::/96",
        "64:ff9b:1::/48",
        "100::/64",
        "2001::/32",
        "2001:db8::/32",
        "2002::/16",
        "fc00::/7",
        "fe80::/10",
        "fec0::/10",
        "ff00::/8",
    ]
    .iter()
    .filter_map(|n| n.parse().ok())
    .collect()
});

/// The guard's rule: which addresses a webhook may reach.
#[derive(Debug, Clone, Default)]
pub struct Guard {
    allow: Arc<Vec<IpNet>>,
}

impl Guard {
    pub fn new(allow: Vec<IpNet>) -> Self {
        Self { allow: Arc::new(allow) }
    }

    /// Whether `ip` may be reached: public, or in an allowed network.
    pub fn permits(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        self.allow.iter().any(|n| n.contains(&ip)) || !NOT_PUBLIC.iter().any(|n| n.contains(&ip))
    }

    /// The addresses of `host:port`, all of them permitted, or why not.
    pub async fn resolve(&self, host: &str, port: u16) -> Result<Vec<SocketAddr>, String> {
        let host = host.trim_start_matches('[').trim_end_matches(']');
        if let Ok(ip) = host.parse::<IpAddr>() {
            return if self.permits(ip) {
                Ok(vec![SocketAddr::new(ip, port)])
            } else {
                Err(format!("{ip} is not a public address"))
            };
        }
        let found = tokio::time::timeout(Duration::from_secs(5), tokio::net::lookup_host((host, port)))
            .await
            .map_err(|_| format!("{host} did not resolve in time"))?
            .map_err(|_| format!("{host} does not resolve"))?;
        let addrs: Vec<SocketAddr> = found.collect();
        if addrs.is_empty() {
            return Err(format!("{host} does not resolve"));
        }
        // One private address among public ones is refused whole: the sender could be led there.
        if let Some(bad) = addrs.iter().find(|a| !self.permits(a.ip())) {
            return Err(format!("{host} resolves to {}, which is not a public address", bad.ip()));
        }
        Ok(addrs)
    }
}

/// reqwest's resolver for webhook deliveries: resolves, then refuses any name with an address
/// the guard does not permit; the connection goes to the addresses returned.
#[derive(Debug, Clone)]
pub struct GuardedResolver(pub Guard);

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let guard = self.0.clone();
        Box::pin(async move {
            let addrs = guard
                .resolve(name.as_str(), 0)
                .await
                .map_err(|e| -> Box<dyn std::error::Error + Send + Sync> { e.into() })?;
            Ok(Box::new(addrs.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn only_public_addresses_are_permitted_by_default() {
        let g = Guard::default();
        for bad in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "224.0.0.1",
            "255.255.255.255",
            "192.0.2.10",
            "198.51.100.1",
            "203.0.113.9",
            "::1",
            "::",
            "fe80::1",
            "fd00::1",
            "ff02::1",
            "2001:db8::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "64:ff9b::a00:1",
        ] {
            assert!(!g.permits(ip(bad)), "{bad} should be refused");
        }
        for good in ["93.184.215.14", "8.8.8.8", "2606:4700:4700::1111", "::ffff:8.8.8.8"] {
            assert!(g.permits(ip(good)), "{good} should be permitted");
        }
    }

    #[test]
    fn an_allowed_network_opens_just_that_network() {
        let g = Guard::new(vec!["127.0.0.0/8".parse().unwrap(), "10.1.0.0/16".parse().unwrap()]);
        assert!(g.permits(ip("127.0.0.1")));
        assert!(g.permits(ip("::ffff:127.0.0.1")));
        assert!(g.permits(ip("10.1.200.3")));
        assert!(!g.permits(ip("10.2.0.1")));
        assert!(!g.permits(ip("192.168.0.1")));
    }

    #[tokio::test]
    async fn names_are_judged_by_every_address_they_resolve_to() {
        let g = Guard::default();
        assert!(g.resolve("localhost", 80).await.is_err());
        assert!(g.resolve("[::1]", 80).await.is_err());
        let allowed = Guard::new(vec!["127.0.0.0/8".parse().unwrap(), "::1/128".parse().unwrap()]);
        assert!(allowed.resolve("127.0.0.1", 80).await.is_ok());
    }
}
