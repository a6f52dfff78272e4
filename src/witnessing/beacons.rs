//! Beacons: what the publisher SDK sends both nodes for each event it saw in the page.
//!
//! `POST /v1/e` with a `text/plain` body (a CORS "simple" request: no preflight) holding
//! `{"events": [{"ticket": "...", "event": "impression" | "view" | "click"}]}`. The paths
//! avoid what ad blockers match (`/ads/`, `/impression`, `/pixel`, `/track`). The time of an
//! event is the node's own clock when the beacon arrives: a page's clock is not evidence.

use serde::{Deserialize, Serialize};

use crate::adserver::pricing::EventType;

/// The most events one beacon carries, and the longest ticket a node looks at.
pub const MAX_EVENTS: usize = 64;
pub const MAX_TICKET_LEN: usize = 512;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Body {
    events: Vec<WireEvent>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct WireEvent {
    ticket: String,
    event: EventType,
}

/// One event of a beacon.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Beacon {
    pub ticket: String,
    pub event: EventType,
}

/// Why a beacon's body was refused as a whole, naming the field at fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct BeaconError {
    pub field: String,
    pub reason: String,
}

/// Parses a beacon body. Pages report impressions, views and clicks; acquisitions come from
/// the advertiser, never from a page.
pub fn parse(body: &[u8]) -> Result<Vec<Beacon>, BeaconError> {
    let deserializer = &mut serde_json::Deserializer::from_slice(body);
    let parsed: Body = serde_path_to_error::deserialize(deserializer).map_err(|error| BeaconError {
        field: error.path().to_string(),
        reason: error.inner().to_string(),
    })?;
    if parsed.events.is_empty() || parsed.events.len() > MAX_EVENTS {
        return Err(BeaconError {
            field: "events".into(),
            reason: format!("a beacon holds 1 to {MAX_EVENTS} events"),
        });
    }
    parsed
        .events
        .into_iter()
        .enumerate()
        .map(|(i, event)| {
            let refuse = |field: &str, reason: &str| BeaconError {
                field: format!("events[{i}].{field}"),
                reason: reason.into(),
            };
            if event.ticket.is_empty() || event.ticket.len() > MAX_TICKET_LEN {
                return Err(refuse("ticket", "must be a ticket as the node issued it"));
            }
            if event.event == EventType::Acquisition {
                return Err(refuse("event", "pages report impressions, views and clicks"));
            }
            Ok(Beacon {
                ticket: event.ticket,
                event: event.event,
            })
        })
        .collect()
}

/// What a node answers a beacon: how many events it kept and how many it ignored (unknown
/// or expired tickets; repeats are kept once and count as kept).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Taken {
    pub accepted: usize,
    pub ignored: usize,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_events_and_refuses_what_pages_cannot_report() {
        let beacons =
            parse(br#"{"events":[{"ticket":"t1","event":"impression"},{"ticket":"t1","event":"view"}]}"#).unwrap();
        assert_eq!(beacons.len(), 2);
        assert_eq!(beacons[1].event, EventType::View);
        let error = parse(br#"{"events":[{"ticket":"t1","event":"acquisition"}]}"#).unwrap_err();
        assert_eq!(error.field, "events[0].event");
        let error = parse(br#"{"events":[{"ticket":"","event":"click"}]}"#).unwrap_err();
        assert_eq!(error.field, "events[0].ticket");
        assert_eq!(parse(br#"{"events":[]}"#).unwrap_err().field, "events");
        assert_eq!(
            parse(br#"{"events":[{"ticket":"t","event":"seen"}]}"#)
                .unwrap_err()
                .field,
            "events[0].event"
        );
        assert!(parse(b"not json").is_err());
    }
}
