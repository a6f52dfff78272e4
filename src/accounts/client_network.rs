//! The network a request came from, as a keyed hash: what anonymous traffic is counted by
//! (rate-limit buckets, outstanding sign-in nonces) without any raw address being kept.
//!
//! An IPv4 client is its address: IPv4 addresses are scarce, and one already stands for a
//! whole home, office or carrier NAT, so widening to a /24 would make unrelated neighbours
//! share a budget. An IPv6 client is its /64: that is what one subscriber gets, so counting
//! single addresses would let anyone mint 2^64 fresh budgets. IPv4-mapped IPv6 addresses
//! count as their IPv4 address.
//!
//! The hash is HMAC-SHA256 under a key derived from the session secret with its own label,
//! so it cannot be reversed by hashing the (small) IPv4 address space without that secret.
//!
//! Sign-up networks, which the referral rules compare, are coarser: an IPv4 client is its
//! /24, so that one person's two wallets behind neighbouring addresses still match; they are
//! hashed under a key of their own, so neither kind of hash can be matched to the other.

use std::net::IpAddr;

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

type HmacSha256 = Hmac<Sha256>;

/// The keyed hash of a client's network.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ClientNetwork([u8; 32]);

impl ClientNetwork {
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

/// Hashes client addresses into [`ClientNetwork`]s.
#[derive(Clone)]
pub struct ClientNetworks {
    mac: HmacSha256,
    /// How many leading bytes of an IPv4 address count.
    v4_bytes: usize,
}

impl std::fmt::Debug for ClientNetworks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientNetworks").finish_non_exhaustive()
    }
}

impl ClientNetworks {
    /// Networks for counting requests: IPv4 addresses whole.
    pub fn new(session_secret: &[u8]) -> Self {
        Self::keyed(b"adescrow client networks\0", session_secret, 4)
    }

    /// Networks for comparing sign-ups: IPv4 /24s.
    pub fn sign_ups(session_secret: &[u8]) -> Self {
        Self::keyed(b"adescrow sign-up networks\0", session_secret, 3)
    }

    fn keyed(label: &[u8], session_secret: &[u8], v4_bytes: usize) -> Self {
        let key = Sha256::new()
            .chain_update(label)
            .chain_update(session_secret)
            .finalize();
        #[allow(clippy::expect_used, reason = "HMAC takes keys of any length (RFC 2104)")]
        let mac = HmacSha256::new_from_slice(&key).expect("HMAC takes keys of any length");
        Self { mac, v4_bytes }
    }

    /// The network of a peer; callers with no peer address (in-process ones) share one.
    pub fn of(&self, peer: Option<IpAddr>) -> ClientNetwork {
        let mut mac = self.mac.clone();
        // A tag byte keeps the three kinds apart whatever their bytes.
        match peer.map(|ip| ip.to_canonical()) {
            Some(IpAddr::V4(v4)) => {
                mac.update(&[4]);
                mac.update(&v4.octets()[..self.v4_bytes]);
            }
            Some(IpAddr::V6(v6)) => {
                mac.update(&[6]);
                mac.update(&v6.octets()[..8]);
            }
            None => mac.update(&[0]),
        }
        ClientNetwork(mac.finalize().into_bytes().into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn network(ip: &str) -> ClientNetwork {
        ClientNetworks::new(b"secret").of(Some(ip.parse().unwrap()))
    }

    #[test]
    fn ipv4_clients_are_their_address() {
        assert_eq!(network("192.0.2.1"), network("192.0.2.1"));
        assert_ne!(network("192.0.2.1"), network("192.0.2.2"));
        assert_eq!(network("::ffff:192.0.2.1"), network("192.0.2.1"));
    }

    #[test]
    fn ipv6_clients_are_their_slash_64() {
        assert_eq!(network("2001:db8:1:2::1"), network("2001:db8:1:2:ffff::9"));
        assert_ne!(network("2001:db8:1:2::1"), network("2001:db8:1:3::1"));
    }

    #[test]
    fn the_hash_depends_on_the_secret() {
        let ip = Some("192.0.2.1".parse().unwrap());
        assert_ne!(ClientNetworks::new(b"one").of(ip), ClientNetworks::new(b"two").of(ip));
        assert_ne!(ClientNetworks::new(b"one").of(ip), ClientNetworks::new(b"one").of(None));
    }

    #[test]
    fn sign_up_networks_are_ipv4_slash_24s_under_their_own_key() {
        let sign_ups = ClientNetworks::sign_ups(b"secret");
        let of = |ip: &str| sign_ups.of(Some(ip.parse().unwrap()));
        assert_eq!(of("192.0.2.1"), of("192.0.2.254"));
        assert_ne!(of("192.0.2.1"), of("192.0.3.1"));
        assert_eq!(of("2001:db8:1:2::1"), of("2001:db8:1:2:ffff::9"));
        assert_ne!(
            of("192.0.2.1"),
            network("192.0.2.1"),
            "a request hash never matches a sign-up hash"
        );
    }
}
