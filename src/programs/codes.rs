//! Codes people type and share (referral codes, affiliate codes): upper case letters and
//! digits without the look-alikes (0/O, 1/I/L, and U, which reads as V), random, and
//! matched whatever the case they are typed in.

use rand::Rng;

/// The 30 characters a code is made of.
pub const ALPHABET: &[u8; 30] = b"23456789ABCDEFGHJKMNPQRSTVWXYZ";

/// Characters after the prefix: 30^8 (about 6.6 * 10^11) codes, so that guessing one is hopeless
/// against the API's rate limits.
pub const LENGTH: usize = 8;

/// A fresh random code: `prefix` then [`LENGTH`] characters of [`ALPHABET`].
pub fn generate(prefix: &str) -> String {
    let mut rng = rand::rng();
    let mut code = String::with_capacity(prefix.len() + LENGTH);
    code.push_str(prefix);
    for _ in 0..LENGTH {
        code.push(char::from(ALPHABET[rng.random_range(0..ALPHABET.len())]));
    }
    code
}

/// `input` as a code with `prefix`, in the case it is stored in; `None` when it cannot be
/// one (so that it is refused before any lookup).
pub fn normalize(input: &str, prefix: &str) -> Option<String> {
    let code = input.trim().to_ascii_uppercase();
    let rest = code.strip_prefix(prefix)?;
    (rest.len() == LENGTH && rest.bytes().all(|b| ALPHABET.contains(&b))).then_some(code)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_codes_normalize_to_themselves_in_any_case() {
        for _ in 0..100 {
            let code = generate("AFF");
            assert_eq!(normalize(&code.to_lowercase(), "AFF").as_deref(), Some(code.as_str()));
            assert_eq!(normalize(&code, ""), None, "the prefix is part of the length");
        }
    }

    #[test]
    fn look_alikes_and_wrong_lengths_are_not_codes() {
        assert_eq!(normalize(" k7m2qrst ", "").as_deref(), Some("K7M2QRST"));
        for bad in [
            "K7M2QRS0",
            "K7M2QRSO",
            "K7M2QRS1",
            "K7M2QRSI",
            "K7M2QRSL",
            "K7M2QRSU",
            "K7M2QRS",
            "K7M2QRSTV",
            "",
        ] {
            assert_eq!(normalize(bad, ""), None, "{bad}");
        }
    }
}
