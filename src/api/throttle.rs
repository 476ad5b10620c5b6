//! Wrong tokens counted per client: after [`MAX_FAILURES`] wrong tokens (a bearer token or the
//! login form's) from one address within [`WINDOW`], that address is answered 429 for
//! [`BLOCK`] whatever it sends, so a token cannot be guessed at the speed of the network. An
//! IPv6 client is counted by its /64 (one host may hold the whole prefix).
//!
//! Input: the client's address, each token check's outcome, the time. Output: whether the
//! address is refused now, and for how long.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Wrong tokens from one client within [`WINDOW`] that get it refused.
pub const MAX_FAILURES: u32 = 10;
/// The span the wrong tokens are counted over.
pub const WINDOW: Duration = Duration::from_secs(60);
/// How long a client is refused after [`MAX_FAILURES`].
pub const BLOCK: Duration = Duration::from_secs(300);
/// Clients remembered at once; past it, expired ones are forgotten, then the oldest.
const MAX_CLIENTS: usize = 4096;

/// The clients that sent wrong tokens lately.
#[derive(Debug, Default)]
pub struct Throttle {
    clients: Mutex<HashMap<IpAddr, Client>>,
}

#[derive(Debug, Clone, Copy)]
struct Client {
    /// Start of the window the failures are counted in.
    since: Instant,
    failures: u32,
    blocked_until: Option<Instant>,
}

impl Client {
    fn live(&self, now: Instant) -> bool {
        now.duration_since(self.since) < WINDOW || self.blocked_until.is_some_and(|u| u > now)
    }
}

/// The address a client is counted by: IPv4 (also when mapped into IPv6), or an IPv6 /64.
fn key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
        v4 => v4,
    }
}

impl Throttle {
    /// How much longer `ip` is refused, if it is.
    pub fn blocked(&self, ip: IpAddr, now: Instant) -> Option<Duration> {
        let clients = self.clients.lock().unwrap_or_else(|e| e.into_inner());
        let until = clients.get(&key(ip))?.blocked_until?;
        (until > now).then(|| until - now)
    }

    /// A wrong token from `ip`: true when this one gets it refused.
    pub fn failed(&self, ip: IpAddr, now: Instant) -> bool {
        let ip = key(ip);
        let mut clients = self.clients.lock().unwrap_or_else(|e| e.into_inner());
        if clients.len() >= MAX_CLIENTS && !clients.contains_key(&ip) {
            clients.retain(|_, c| c.live(now));
            if clients.len() >= MAX_CLIENTS
                && let Some(oldest) = clients.iter().min_by_key(|(_, c)| c.since).map(|(k, _)| *k)
            {
                clients.remove(&oldest);
            }
        }
        let c = clients.entry(ip).or_insert(Client {
            since: now,
            failures: 0,
            blocked_until: None,
        });
        if now.duration_since(c.since) >= WINDOW {
            (c.since, c.failures) = (now, 0);
        }
        c.failures += 1;
        if c.failures < MAX_FAILURES {
            return false;
        }
        (c.since, c.failures, c.blocked_until) = (now, 0, Some(now + BLOCK));
        true
    }

    /// A right token from `ip`: its wrong ones are forgotten.
    pub fn succeeded(&self, ip: IpAddr) {
        let mut clients = self.clients.lock().unwrap_or_else(|e| e.into_inner());
        clients.remove(&key(ip));
    }

    /// Clients remembered now.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.clients.lock().unwrap().len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    const A: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 168, 1, 20));
    const B: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 168, 1, 21));

    #[test]
    fn the_tenth_wrong_token_in_a_minute_refuses_the_client_for_five_minutes() {
        let t = Throttle::default();
        let now = Instant::now();
        for i in 1..MAX_FAILURES {
            assert!(!t.failed(A, now + Duration::from_secs(u64::from(i))));
        }
        assert_eq!(t.blocked(A, now + Duration::from_secs(9)), None);
        let at = now + Duration::from_secs(10);
        assert!(t.failed(A, at));
        assert_eq!(t.blocked(A, at), Some(BLOCK));
        assert_eq!(t.blocked(B, at), None, "another client is not refused");
        assert_eq!(
            t.blocked(A, at + BLOCK - Duration::from_secs(1)),
            Some(Duration::from_secs(1))
        );
        assert_eq!(t.blocked(A, at + BLOCK), None);
    }

    #[test]
    fn wrong_tokens_spread_over_more_than_a_minute_or_followed_by_a_right_one_are_not_refused() {
        let t = Throttle::default();
        let now = Instant::now();
        for i in 0..3 * u64::from(MAX_FAILURES) {
            assert!(!t.failed(A, now + Duration::from_secs(i * 7)));
        }
        for _ in 1..MAX_FAILURES {
            assert!(!t.failed(B, now));
        }
        t.succeeded(B);
        assert!(!t.failed(B, now));
    }

    #[test]
    fn ipv6_clients_count_by_their_64_and_mapped_ipv4_as_ipv4() {
        let t = Throttle::default();
        let now = Instant::now();
        for i in 0..MAX_FAILURES {
            let ip: IpAddr = format!("2001:db8:1:2::{:x}", i + 1).parse().unwrap();
            t.failed(ip, now);
        }
        let same: IpAddr = "2001:db8:1:2:ffff::1".parse().unwrap();
        let other: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert!(t.blocked(same, now).is_some());
        assert!(t.blocked(other, now).is_none());
        let mapped: IpAddr = "::ffff:192.168.1.20".parse().unwrap();
        t.succeeded(mapped);
        assert!(!t.failed(A, now));
        assert_eq!(t.len(), 2, "the /64 and A");
    }

    #[test]
    fn the_clients_remembered_are_bounded() {
        let t = Throttle::default();
        let now = Instant::now();
        for i in 0..MAX_CLIENTS as u32 + 100 {
            t.failed(IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + i)), now);
        }
        assert_eq!(t.len(), MAX_CLIENTS);
        let later = now + WINDOW;
        t.failed(A, later);
        assert_eq!(t.len(), 1, "the expired ones forgotten");
    }
}
