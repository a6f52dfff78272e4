//! How domain values are written in API responses, where serde's defaults are not what
//! clients expect.

/// Addresses as EIP-55 checksummed hex (alloy serializes them lowercase), so that wallets
/// and block explorers show the same string.
pub mod checksummed {
    use alloy::primitives::Address;
    use serde::Serializer;

    pub fn serialize<S: Serializer>(address: &Address, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&address.to_checksum(None))
    }
}

/// For PATCH bodies: tells a member set to `null` (`Some(None)`, clear it) from one left out
/// (`None`, keep it). Use with `#[serde(default, deserialize_with = "...")]`.
pub fn double_option<'de, D, T>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: serde::Deserialize<'de>,
{
    <Option<T> as serde::Deserialize>::deserialize(deserializer).map(Some)
}
