//! EIP-191 `personal_sign` signatures, as wallets produce them for sign-in and node
//! registration. Recovery is alloy's; this module adds the policy: 65 bytes, `v` of 27/28
//! or 0/1, low s (docs/ENCODING.md, "Signatures").

use alloy::primitives::{Address, Signature};

/// Why a signature was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("signature must be 65 bytes of 0x-prefixed hex, ending in a v of 27, 28, 0 or 1")]
    Encoding,
    /// Malleable signatures are refused so that each message has exactly one valid signature.
    #[error("signature has a high s value")]
    HighS,
    #[error("signature does not recover to a public key")]
    Unrecoverable,
}

/// Parses a 0x-prefixed 65-byte `r || s || v` signature.
pub fn parse(signature: &str) -> Result<Signature, SignatureError> {
    let hex = signature.strip_prefix("0x").ok_or(SignatureError::Encoding)?;
    let bytes = hex::decode(hex).map_err(|_| SignatureError::Encoding)?;
    // alloy would also read an EIP-155 `v` (35 and up); that is a transaction's, never a
    // message signature's, so it is refused rather than guessed at.
    if bytes.len() != 65 || !matches!(bytes.last(), Some(0 | 1 | 27 | 28)) {
        return Err(SignatureError::Encoding);
    }
    let signature = Signature::from_raw(&bytes).map_err(|_| SignatureError::Encoding)?;
    if signature.normalize_s().is_some() {
        return Err(SignatureError::HighS);
    }
    Ok(signature)
}

/// Returns the address that signed `message` with `personal_sign`.
pub fn recover(message: &str, signature: &str) -> Result<Address, SignatureError> {
    parse(signature)?
        .recover_address_from_msg(message)
        .map_err(|_| SignatureError::Unrecoverable)
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy::signers::SignerSync;
    use alloy::signers::local::PrivateKeySigner;

    #[test]
    fn recovers_the_signer() {
        let signer = PrivateKeySigner::random();
        let signature = signer.sign_message_sync(b"hello").unwrap();
        let encoded = format!("0x{}", hex::encode(signature.as_bytes()));
        assert_eq!(recover("hello", &encoded), Ok(signer.address()));
    }

    #[test]
    fn refuses_high_s_twin_of_a_valid_signature() {
        let signer = PrivateKeySigner::random();
        let signature = signer.sign_message_sync(b"hello").unwrap();
        // (r, n - s, !v) verifies the same message: the malleable twin.
        let n = alloy::primitives::U256::from_str_radix(
            "fffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141",
            16,
        )
        .unwrap();
        let twin = Signature::new(signature.r(), n - signature.s(), !signature.v());
        let encoded = format!("0x{}", hex::encode(twin.as_bytes()));
        assert_eq!(recover("hello", &encoded), Err(SignatureError::HighS));
    }

    #[test]
    fn takes_v_as_27_28_or_0_1_only() {
        let signer = PrivateKeySigner::random();
        let mut bytes = signer.sign_message_sync(b"hello").unwrap().as_bytes();
        let parity = bytes[64] - 27;
        for (v, accepted) in [
            (27 + parity, true),
            (parity, true),
            (35 + parity, false),
            (2, false),
            (29, false),
        ] {
            bytes[64] = v;
            let result = recover("hello", &format!("0x{}", hex::encode(bytes)));
            if accepted {
                assert_eq!(result, Ok(signer.address()), "v = {v}");
            } else {
                assert_eq!(result, Err(SignatureError::Encoding), "v = {v}");
            }
        }
    }

    #[test]
    fn refuses_bad_encodings() {
        for bad in ["", "0x", "0x1234", "not hex", &format!("0x{}", "zz".repeat(65))] {
            assert_eq!(recover("hello", bad), Err(SignatureError::Encoding), "{bad:?}");
        }
    }
}
