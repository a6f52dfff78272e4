//! Decision tickets: what the ad server promised a hoster, in a form the server can check
//! later without a lookup.
//!
//! A ticket is a fixed binary layout followed by an HMAC-SHA256 tag under a server key,
//! base64url-encoded. Only the server holds the key, so a hoster can neither forge a ticket
//! nor change its price, ad or expiry; single use is the billing side's job (one billable
//! impression per ticket id).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::adserver::pricing::{EventType, UnitPrices};
use crate::money::Amount;

type HmacSha256 = Hmac<Sha256>;

/// Version 2 adds the placement after the node; version 1 tickets (issued before, valid
/// for at most their lifetime) are still read, with no placement.
const VERSION: u8 = 2;
const TAG_LEN: usize = 32;
/// Version 1: version, 4 ids, viewer flag and hash, issued and expiry, price mask; version 2
/// has one id more.
const FIXED_LEN: usize = 1 + 4 * 16 + 1 + 32 + 8 + 8 + 1;

/// What a hoster may bill for one decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ticket {
    pub id: Uuid,
    pub ad_id: Uuid,
    pub campaign_id: Uuid,
    /// The node the ad was served to; only it may report events for this ticket.
    pub hoster_node_id: Uuid,
    /// The placement it was decided for; none on a version 1 ticket.
    pub placement_id: Option<Uuid>,
    /// SHA-256 of the viewer's pseudonymous id, when the request named one.
    pub viewer: Option<[u8; 32]>,
    pub prices: UnitPrices,
    /// Unix seconds.
    pub issued_at: i64,
    /// Unix seconds; events after this are not billable.
    pub expires_at: i64,
}

/// The ticket's commitment to a viewer id.
pub fn viewer_hash(viewer_id: &str) -> [u8; 32] {
    Sha256::digest(viewer_id.as_bytes()).into()
}

/// Why a ticket string was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TicketError {
    #[error("ticket is not a well-formed adescrow ticket")]
    Malformed,
    #[error("ticket was not issued by this server or was altered")]
    Forged,
}

/// Issues and checks tickets with the server's key.
pub struct TicketKeys {
    mac: HmacSha256,
}

impl std::fmt::Debug for TicketKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TicketKeys").finish_non_exhaustive()
    }
}

impl TicketKeys {
    /// `secret` must be at least 32 bytes; the caller checks.
    #[allow(clippy::expect_used, reason = "HMAC takes keys of any length: this cannot fail")]
    pub fn new(secret: &[u8]) -> Self {
        Self {
            mac: HmacSha256::new_from_slice(secret).expect("HMAC takes keys of any length"),
        }
    }

    pub fn issue(&self, ticket: &Ticket) -> String {
        let mut bytes = encode(ticket);
        let mut mac = self.mac.clone();
        mac.update(&bytes);
        bytes.extend_from_slice(&mac.finalize().into_bytes());
        URL_SAFE_NO_PAD.encode(bytes)
    }

    /// Checks the tag and decodes. Expiry is the caller's to judge against its own clock.
    pub fn verify(&self, token: &str) -> Result<Ticket, TicketError> {
        let bytes = URL_SAFE_NO_PAD.decode(token).map_err(|_| TicketError::Malformed)?;
        if bytes.len() < FIXED_LEN + TAG_LEN {
            return Err(TicketError::Malformed);
        }
        let (body, tag) = bytes.split_at(bytes.len() - TAG_LEN);
        let mut mac = self.mac.clone();
        mac.update(body);
        mac.verify_slice(tag).map_err(|_| TicketError::Forged)?;
        decode(body).ok_or(TicketError::Malformed)
    }
}

impl Ticket {
    /// Reads a ticket without checking its tag, for those who hold no key: a witness node
    /// reads the expiry of what it is told it saw. Nothing read this way may be billed.
    pub fn read_unverified(token: &str) -> Result<Ticket, TicketError> {
        let bytes = URL_SAFE_NO_PAD.decode(token).map_err(|_| TicketError::Malformed)?;
        let body = bytes
            .len()
            .checked_sub(TAG_LEN)
            .filter(|&len| len >= FIXED_LEN)
            .map(|len| &bytes[..len])
            .ok_or(TicketError::Malformed)?;
        decode(body).ok_or(TicketError::Malformed)
    }
}

fn encode(ticket: &Ticket) -> Vec<u8> {
    let mut out = Vec::with_capacity(FIXED_LEN + 5 * 16 + TAG_LEN);
    out.push(VERSION);
    let placement = ticket.placement_id.unwrap_or_else(Uuid::nil);
    for id in [
        ticket.id,
        ticket.ad_id,
        ticket.campaign_id,
        ticket.hoster_node_id,
        placement,
    ] {
        out.extend_from_slice(id.as_bytes());
    }
    out.push(u8::from(ticket.viewer.is_some()));
    out.extend_from_slice(&ticket.viewer.unwrap_or_default());
    out.extend_from_slice(&ticket.issued_at.to_be_bytes());
    out.extend_from_slice(&ticket.expires_at.to_be_bytes());
    let mask = EventType::ALL
        .iter()
        .enumerate()
        .filter(|(_, event)| ticket.prices.get(**event).is_some())
        .fold(0u8, |mask, (bit, _)| mask | 1 << bit);
    out.push(mask);
    for price in EventType::ALL.iter().filter_map(|event| ticket.prices.get(*event)) {
        out.extend_from_slice(&price.0.to_be_bytes());
    }
    out
}

fn decode(body: &[u8]) -> Option<Ticket> {
    let mut reader = Reader(body);
    let version = reader.take::<1>()?[0];
    if !(1..=VERSION).contains(&version) {
        return None;
    }
    let mut uuid = || reader_uuid(&mut reader);
    let (id, ad_id, campaign_id, hoster_node_id) = (uuid()?, uuid()?, uuid()?, uuid()?);
    let placement_id = match version {
        1 => None,
        _ => Some(reader_uuid(&mut reader)?).filter(|placement| !placement.is_nil()),
    };
    let has_viewer = reader.take::<1>()?[0];
    let viewer_hash = reader.take::<32>()?;
    let issued_at = i64::from_be_bytes(reader.take::<8>()?);
    let expires_at = i64::from_be_bytes(reader.take::<8>()?);
    let mask = reader.take::<1>()?[0];
    let mut prices = UnitPrices::default();
    for (bit, event) in EventType::ALL.into_iter().enumerate() {
        if mask & (1 << bit) != 0 {
            prices.set(event, Some(Amount(u128::from_be_bytes(reader.take::<16>()?))));
        }
    }
    if !reader.0.is_empty() || has_viewer > 1 {
        return None;
    }
    Some(Ticket {
        id,
        ad_id,
        campaign_id,
        hoster_node_id,
        placement_id,
        viewer: (has_viewer == 1).then_some(viewer_hash),
        prices,
        issued_at,
        expires_at,
    })
}

struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn take<const N: usize>(&mut self) -> Option<[u8; N]> {
        let (head, rest) = self.0.split_first_chunk::<N>()?;
        self.0 = rest;
        Some(*head)
    }
}

fn reader_uuid(reader: &mut Reader<'_>) -> Option<Uuid> {
    reader.take::<16>().map(Uuid::from_bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ticket() -> Ticket {
        let mut prices = UnitPrices::default();
        prices.set(EventType::Impression, Some(Amount(2_000)));
        prices.set(EventType::Acquisition, Some(Amount(u128::MAX)));
        Ticket {
            id: Uuid::new_v4(),
            ad_id: Uuid::new_v4(),
            campaign_id: Uuid::new_v4(),
            hoster_node_id: Uuid::new_v4(),
            placement_id: Some(Uuid::new_v4()),
            viewer: Some(viewer_hash("vw_someone")),
            prices,
            issued_at: 1_700_000_000,
            expires_at: 1_700_003_600,
        }
    }

    #[test]
    fn round_trips() {
        let keys = TicketKeys::new(&[7; 32]);
        let ticket = ticket();
        assert_eq!(keys.verify(&keys.issue(&ticket)), Ok(ticket.clone()));
        let anonymous = Ticket { viewer: None, ..ticket };
        assert_eq!(keys.verify(&keys.issue(&anonymous)), Ok(anonymous));
    }

    #[test]
    fn a_version_1_ticket_is_read_without_a_placement() {
        let keys = TicketKeys::new(&[7; 32]);
        let ticket = ticket();
        let mut body = encode(&ticket);
        // Version 1: no placement after the node.
        body[0] = 1;
        body.drain(1 + 4 * 16..1 + 5 * 16);
        let mut mac = keys.mac.clone();
        mac.update(&body);
        body.extend_from_slice(&mac.finalize().into_bytes());
        let read = keys.verify(&URL_SAFE_NO_PAD.encode(body)).unwrap();
        assert_eq!(
            read,
            Ticket {
                placement_id: None,
                ..ticket
            }
        );
    }

    #[test]
    fn reads_without_the_key_but_only_well_formed_tickets() {
        let ticket = ticket();
        let token = TicketKeys::new(&[7; 32]).issue(&ticket);
        assert_eq!(Ticket::read_unverified(&token), Ok(ticket));
        assert_eq!(Ticket::read_unverified("not a ticket!"), Err(TicketError::Malformed));
        assert_eq!(
            Ticket::read_unverified(&URL_SAFE_NO_PAD.encode([1u8; 40])),
            Err(TicketError::Malformed)
        );
    }

    #[test]
    fn refuses_other_keys_and_any_altered_byte() {
        let keys = TicketKeys::new(&[7; 32]);
        let token = keys.issue(&ticket());
        assert_eq!(TicketKeys::new(&[8; 32]).verify(&token), Err(TicketError::Forged));
        let bytes = URL_SAFE_NO_PAD.decode(&token).unwrap();
        for i in 0..bytes.len() {
            let mut tampered = bytes.clone();
            tampered[i] ^= 1;
            assert_eq!(
                keys.verify(&URL_SAFE_NO_PAD.encode(tampered)),
                Err(TicketError::Forged),
                "byte {i}"
            );
        }
        assert_eq!(keys.verify("not a ticket!"), Err(TicketError::Malformed));
        assert_eq!(
            keys.verify(&URL_SAFE_NO_PAD.encode([1u8; 40])),
            Err(TicketError::Malformed)
        );
    }
}
