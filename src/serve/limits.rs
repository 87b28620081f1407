//! Request-rate limits: a token bucket per bearer token, and one per peer address for refused
//! requests (401/403), so a noisy sender cannot starve the others and a client guessing tokens is
//! slowed down.
//!
//! Each bucket holds up to `burst` requests and refills at `per_second`. Tokens are few and known
//! at start, so their buckets are a fixed list. Peers are many: a bucket is made on a peer's first
//! refused request, IPv6 peers share one per /64 (one host usually holds a whole /64), and once
//! [`MAX_TRACKED_PEERS`] are tracked the idle ones (whose bucket has refilled) are dropped; if
//! none is idle, new peers share one overflow bucket. Memory stays bounded whatever the traffic.
//!
//! Time is `tokio::time`, so tests on a paused clock can drive the refill.

use std::net::IpAddr;
use std::sync::Mutex;

use dashmap::DashMap;
use squad_config::RateLimitSettings;
use tokio::time::Instant;

/// At most this many peer buckets (a few hundred kilobytes).
pub(crate) const MAX_TRACKED_PEERS: usize = 10_000;

/// Which limit refused a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Limit {
    /// The bearer token's own bucket.
    Token,
    /// The peer address's bucket for refused requests.
    Peer,
}

impl Limit {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Limit::Token => "token",
            Limit::Peer => "peer",
        }
    }
}

/// Over the limit: wait this many whole seconds (at least 1) before trying again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RetryAfter(pub(crate) u64);

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

#[derive(Debug, Clone, Copy)]
struct Rate {
    per_second: f64,
    burst: f64,
}

impl Bucket {
    fn full(rate: Rate, now: Instant) -> Bucket {
        Bucket {
            tokens: rate.burst,
            at: now,
        }
    }

    fn refill(&mut self, rate: Rate, now: Instant) {
        let elapsed = now.saturating_duration_since(self.at).as_secs_f64();
        self.tokens = (self.tokens + elapsed * rate.per_second).min(rate.burst);
        self.at = now;
    }

    /// Takes one request's worth, or says how long until there is one.
    fn take(&mut self, rate: Rate, now: Instant) -> Result<(), RetryAfter> {
        self.refill(rate, now);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Ok(())
        } else {
            Err(self.retry_after(rate))
        }
    }

    fn retry_after(&self, rate: Rate) -> RetryAfter {
        let secs = ((1.0 - self.tokens) / rate.per_second).ceil();
        RetryAfter((secs as u64).max(1))
    }

    /// Refilled to the brim: forgetting it changes nothing.
    fn idle(&self, rate: Rate, now: Instant) -> bool {
        let mut b = *self;
        b.refill(rate, now);
        b.tokens >= rate.burst
    }
}

/// A peer as the limit sees it: an IPv4 address, or an IPv6 /64.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum PeerKey {
    V4(u32),
    V6Prefix(u64),
    /// Every new peer once the table is full of busy ones.
    Overflow,
}

impl PeerKey {
    fn of(ip: IpAddr) -> PeerKey {
        match ip {
            IpAddr::V4(v4) => PeerKey::V4(u32::from(v4)),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => PeerKey::V4(u32::from(v4)),
                None => PeerKey::V6Prefix((u128::from(v6) >> 64) as u64),
            },
        }
    }
}

/// The limits of one daemon.
pub(crate) struct RateLimits {
    rate: Option<Rate>,
    tokens: Vec<Mutex<Bucket>>,
    peers: DashMap<PeerKey, Bucket>,
    max_peers: usize,
    last_sweep: Mutex<Option<Instant>>,
}

impl RateLimits {
    /// Buckets for `tokens` tokens; `per_second = 0` turns every limit off.
    pub(crate) fn new(settings: &RateLimitSettings, tokens: usize) -> RateLimits {
        RateLimits::with_peer_capacity(settings, tokens, MAX_TRACKED_PEERS)
    }

    fn with_peer_capacity(
        settings: &RateLimitSettings,
        tokens: usize,
        max_peers: usize,
    ) -> RateLimits {
        let rate = (settings.per_second > 0).then(|| Rate {
            per_second: f64::from(settings.per_second),
            burst: f64::from(settings.burst.max(1)),
        });
        let now = Instant::now();
        let full = rate.map_or(
            Bucket {
                tokens: 0.0,
                at: now,
            },
            |r| Bucket::full(r, now),
        );
        RateLimits {
            rate,
            tokens: (0..tokens).map(|_| Mutex::new(full)).collect(),
            peers: DashMap::new(),
            max_peers,
            last_sweep: Mutex::new(None),
        }
    }

    /// One request authenticated with token `index`.
    pub(crate) fn token(&self, index: usize) -> Result<(), RetryAfter> {
        let (Some(rate), Some(bucket)) = (self.rate, self.tokens.get(index)) else {
            return Ok(());
        };
        let mut b = bucket
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        b.take(rate, Instant::now())
    }

    /// Before looking at a request's credentials: refused when its peer has used up its
    /// allowance of refused requests (then even a right token waits, or guessing would go on at
    /// full speed, told apart by the answers). A peer without a bucket of its own (never
    /// refused, or sharing the overflow one) is not held back here.
    pub(crate) fn peer_blocked(&self, ip: Option<IpAddr>) -> Result<(), RetryAfter> {
        let (Some(rate), Some(ip)) = (self.rate, ip) else {
            return Ok(());
        };
        let Some(entry) = self.peers.get(&PeerKey::of(ip)) else {
            return Ok(());
        };
        let mut b = *entry;
        drop(entry);
        b.refill(rate, Instant::now());
        if b.tokens >= 1.0 {
            Ok(())
        } else {
            Err(b.retry_after(rate))
        }
    }

    /// A request from `ip` was refused (401/403): it uses up the peer's allowance.
    pub(crate) fn peer_refused(&self, ip: Option<IpAddr>) -> Result<(), RetryAfter> {
        let (Some(rate), Some(ip)) = (self.rate, ip) else {
            return Ok(());
        };
        let now = Instant::now();
        let mut key = PeerKey::of(ip);
        if !self.peers.contains_key(&key) && self.peers.len() >= self.max_peers {
            self.sweep(rate, now);
            if self.peers.len() >= self.max_peers {
                key = PeerKey::Overflow;
            }
        }
        let mut entry = self
            .peers
            .entry(key)
            .or_insert_with(|| Bucket::full(rate, now));
        entry.take(rate, now)
    }

    /// Drops the idle peers, at most once a second (a full table of busy peers would otherwise
    /// make every new peer's request walk the whole table).
    fn sweep(&self, rate: Rate, now: Instant) {
        {
            let mut last = self
                .last_sweep
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            if last.is_some_and(|t| now.saturating_duration_since(t).as_secs_f64() < 1.0) {
                return;
            }
            *last = Some(now);
        }
        self.peers.retain(|_, b| !b.idle(rate, now));
    }

    #[cfg(test)]
    fn tracked_peers(&self) -> usize {
        self.peers.len()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr};
    use std::time::Duration;

    fn limits(per_second: u32, burst: u32, tokens: usize) -> RateLimits {
        RateLimits::new(&RateLimitSettings { per_second, burst }, tokens)
    }

    fn ip(n: u32) -> Option<IpAddr> {
        Some(IpAddr::V4(Ipv4Addr::from(n)))
    }

    #[tokio::test(start_paused = true)]
    async fn a_token_gets_its_burst_then_waits_for_the_refill() {
        let l = limits(10, 20, 2);
        for _ in 0..20 {
            assert_eq!(l.token(0), Ok(()));
        }
        assert_eq!(l.token(0), Err(RetryAfter(1)));
        // The other token is not affected.
        assert_eq!(l.token(1), Ok(()));
        tokio::time::advance(Duration::from_millis(100)).await;
        assert_eq!(l.token(0), Ok(()));
        assert_eq!(l.token(0), Err(RetryAfter(1)));
    }

    #[tokio::test(start_paused = true)]
    async fn retry_after_rounds_up_to_whole_seconds() {
        // One request every ten seconds.
        let l = RateLimits {
            rate: Some(Rate {
                per_second: 0.1,
                burst: 1.0,
            }),
            ..limits(1, 1, 1)
        };
        assert_eq!(l.token(0), Ok(()));
        assert_eq!(l.token(0), Err(RetryAfter(10)));
        tokio::time::advance(Duration::from_millis(2_500)).await;
        assert_eq!(l.token(0), Err(RetryAfter(8)));
    }

    #[tokio::test(start_paused = true)]
    async fn zero_per_second_disables_every_limit() {
        let l = limits(0, 0, 1);
        for _ in 0..10_000 {
            assert_eq!(l.token(0), Ok(()));
            assert_eq!(l.peer_refused(ip(1)), Ok(()));
        }
        assert_eq!(l.peer_blocked(ip(1)), Ok(()));
        assert_eq!(l.tracked_peers(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn a_peer_refused_too_often_is_blocked_until_it_refills() {
        let l = limits(1, 3, 1);
        assert_eq!(l.peer_blocked(ip(7)), Ok(()));
        for _ in 0..3 {
            assert_eq!(l.peer_refused(ip(7)), Ok(()));
        }
        assert_eq!(l.peer_blocked(ip(7)), Err(RetryAfter(1)));
        assert_eq!(l.peer_refused(ip(7)), Err(RetryAfter(1)));
        // Another peer is not.
        assert_eq!(l.peer_blocked(ip(8)), Ok(()));
        tokio::time::advance(Duration::from_secs(1)).await;
        assert_eq!(l.peer_blocked(ip(7)), Ok(()));
    }

    #[tokio::test(start_paused = true)]
    async fn ipv6_peers_share_a_bucket_per_64_and_mapped_v4_is_v4() {
        let l = limits(1, 1, 0);
        let a = "2001:db8:1:2::10".parse::<Ipv6Addr>().unwrap();
        let b = "2001:db8:1:2:ffff::1".parse::<Ipv6Addr>().unwrap();
        let c = "2001:db8:1:3::10".parse::<Ipv6Addr>().unwrap();
        assert_eq!(l.peer_refused(Some(IpAddr::V6(a))), Ok(()));
        assert!(l.peer_blocked(Some(IpAddr::V6(b))).is_err());
        assert_eq!(l.peer_blocked(Some(IpAddr::V6(c))), Ok(()));
        let mapped = Ipv4Addr::new(10, 0, 0, 1).to_ipv6_mapped();
        assert_eq!(l.peer_refused(Some(IpAddr::V6(mapped))), Ok(()));
        assert!(
            l.peer_blocked(Some(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1))))
                .is_err()
        );
    }

    #[tokio::test(start_paused = true)]
    async fn the_peer_table_stays_bounded_and_idle_peers_are_dropped() {
        let l = RateLimits::with_peer_capacity(
            &RateLimitSettings {
                per_second: 1,
                burst: 2,
            },
            0,
            100,
        );
        // 100 busy peers fill the table; the 101st shares the overflow bucket.
        for n in 0..100 {
            assert_eq!(l.peer_refused(ip(n)), Ok(()));
        }
        assert_eq!(l.tracked_peers(), 100);
        for n in 100..1_000 {
            let _ = l.peer_refused(ip(n));
        }
        assert_eq!(l.tracked_peers(), 101);
        assert!(l.peer_refused(ip(5_000)).is_err(), "overflow is shared");
        // A peer never refused is not held back by the overflow bucket.
        assert_eq!(l.peer_blocked(ip(5_000)), Ok(()));
        // Once they are idle, new peers get their own buckets again.
        tokio::time::advance(Duration::from_secs(5)).await;
        assert_eq!(l.peer_refused(ip(5_001)), Ok(()));
        assert_eq!(l.tracked_peers(), 1);
    }
}
