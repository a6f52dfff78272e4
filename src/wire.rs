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
