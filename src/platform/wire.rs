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

    /// The same for an optional address (`null` when none).
    pub fn serialize_option<S: Serializer>(address: &Option<Address>, serializer: S) -> Result<S::Ok, S::Error> {
        match address {
            Some(address) => serialize(address, serializer),
            None => serializer.serialize_none(),
        }
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

/// Schemas of the hex encodings the API reads and writes, named in `#[schema(value_type =
/// ...)]` on fields of alloy types (which have no schema of their own). The patterns are what
/// the parsers accept: hex digits of either case, the `0x` prefix optional on input.
pub mod schema {
    use std::borrow::Cow;

    use utoipa::openapi::{ObjectBuilder, RefOr, Schema, Type};

    fn hex(pattern: &'static str, description: &'static str, example: &'static str) -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .pattern(Some(pattern))
            .description(Some(description))
            .examples([example])
            .into()
    }

    /// Declares a marker type whose schema is `$schema`, named after the type in the document.
    macro_rules! named_schema {
        ($(#[$doc:meta])* $name:ident => $schema:expr) => {
            $(#[$doc])*
            #[derive(Debug)]
            pub struct $name;

            impl utoipa::PartialSchema for $name {
                fn schema() -> RefOr<Schema> {
                    $schema
                }
            }

            impl utoipa::ToSchema for $name {
                fn name() -> Cow<'static, str> {
                    Cow::Borrowed(stringify!($name))
                }
            }
        };
    }

    macro_rules! hex_schema {
        ($name:ident, $pattern:literal, $description:literal, $example:literal) => {
            named_schema!(#[doc = $description] $name => hex($pattern, $description, $example));
        };
    }

    hex_schema!(
        Address,
        "^(0[xX])?[0-9a-fA-F]{40}$",
        "A 20-byte account or contract address in hex; responses give it EIP-55 checksummed.",
        "0x90F79bf6EB2c4f870365E785982E1f101E93b906"
    );
    hex_schema!(
        TokenAddress,
        "^(0[xX])?[0-9a-fA-F]{40}$",
        "The address of an ERC-20 token contract, in hex; responses give it EIP-55 checksummed.",
        "0x9fE46736679d2D9a65F0992F2272dE9f3c7fa6e0"
    );
    hex_schema!(
        Bytes32,
        "^(0[xX])?[0-9a-fA-F]{64}$",
        "32 bytes in hex: a hash, a Merkle root, or an escrow campaign id.",
        "0x3f5d1b5e8b0e9d4c2a7f6e5d4c3b2a1908f7e6d5c4b3a291807f6e5d4c3b2a19"
    );
    hex_schema!(
        Signature,
        "^0x[0-9a-fA-F]{128}(0[01]|1[bBcC])$",
        "A 65-byte `r || s || v` ECDSA signature, 0x-prefixed hex, with `v` 27 or 28 (or 0 or 1).",
        "0x5f1ac1c4a1e3b7e6d1c7b5a7f3e9d2c1b0a9f8e7d6c5b4a39281706f5e4d3c2b1a0f1e2d3c4b5a69788796a5b4c3d2e1f0a1b2c3d4e5f60718293a4b5c6d7e8f901b"
    );
    hex_schema!(
        HexBytes,
        "^(0[xX])?([0-9a-fA-F]{2})*$",
        "Bytes in hex: signatures, calldata.",
        "0xa9059cbb"
    );

    named_schema!(
        /// A 256-bit unsigned integer: a decimal or `0x` hex string, or a JSON integer up to
        /// 2^64 - 1 (what alloy's `U256` reads). Decimal strings stop at 77 digits, all below 2^256.
        Uint256 => {
            ObjectBuilder::new()
                .schema_type(utoipa::openapi::schema::SchemaType::from_iter([
                    Type::String,
                    Type::Integer,
                ]))
                .pattern(Some("^(0[xX][0-9a-fA-F]{1,64}|[0-9]{1,77})$"))
                .minimum(Some(0))
                .maximum(Some(u64::MAX))
                .description(Some("A 256-bit unsigned integer, best sent as a decimal string."))
                .examples(["0"])
                .into()
        }
    );

    /// What `str::trim` removes (Unicode `White_Space`), spelled out: regex engines disagree
    /// on `\s`. U+0000 is refused in every body, so no text schema admits it either.
    const WHITE_SPACE: &str = r"\t\n\u000B\f\r \u0085\u00A0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000";

    /// Text the API trims before checking that `min` (0 or 1) to `max` characters remain.
    fn trimmed(min: usize, max: usize, description: &'static str) -> RefOr<Schema> {
        trimmed_without(r"\u0000", min, max, description)
    }

    /// Like [`trimmed`], with the characters of the class `excluded` refused inside the text
    /// (surrounding white space is dropped before the check, as the server does).
    fn trimmed_without(excluded: &str, min: usize, max: usize, description: &'static str) -> RefOr<Schema> {
        debug_assert!(min <= 1 && max >= 1);
        let letter = format!(r"[^{excluded}{WHITE_SPACE}]");
        let core = match max {
            1 => letter.clone(),
            _ => format!(r"{letter}(?:[^{excluded}]{{0,{}}}{letter})?", max - 2),
        };
        let core = if min == 0 { format!("(?:{core})?") } else { core };
        ObjectBuilder::new()
            .schema_type(Type::String)
            .pattern(Some(format!("^[{WHITE_SPACE}]*{core}[{WHITE_SPACE}]*$")))
            .description(Some(format!(
                "{description} Surrounding white space is dropped; {min} to {max} characters remain."
            )))
            .into()
    }

    macro_rules! text_schema {
        ($name:ident, $min:literal, $max:literal, $description:literal) => {
            named_schema!(#[doc = $description] $name => trimmed($min, $max, $description));
        };
    }

    named_schema!(
        /// A display name: no control characters (Unicode's Cc, which `char::is_control` tests).
        Name => trimmed_without(r"\u0000-\u001f\u007f-\u009f", 1, 100, "A display name, without control characters.")
    );
    text_schema!(Reason, 1, 500, "Why, in words.");
    text_schema!(Title, 1, 200, "A creative's headline.");
    text_schema!(BodyText, 0, 2000, "A creative's body text.");
    text_schema!(Description, 0, 500, "A description.");
    text_schema!(Label, 1, 64, "A targeting label, compared without case.");
    text_schema!(Reference, 1, 128, "An opaque reference chosen by the caller.");
    text_schema!(ItemTitle, 1, 200, "A marketplace item's title.");
    text_schema!(ItemDescription, 0, 10000, "A marketplace item's description.");
    text_schema!(SearchWords, 1, 200, "Words to search for.");
    text_schema!(FileName, 1, 200, "A file's name as buyers see it.");
    text_schema!(
        Device,
        1,
        200,
        "A device a license is activated on, named by the seller's software."
    );

    named_schema!(
        /// A marketplace tag. The pattern is narrower than what the server reads (any letters
        /// and digits); every tag it admits is accepted.
        ItemTag => {
            ObjectBuilder::new()
                .schema_type(Type::String)
                .pattern(Some("^[A-Za-z0-9-]{1,32}$"))
                .description(Some("A tag: 1 to 32 letters, digits or hyphens, compared in lower case."))
                .examples(["banner"])
                .into()
        }
    );

    named_schema!(
        /// What a wallet signing in for the first time presents: a referral code, a referral
        /// link's `ref`, or an affiliate code, in any case.
        Invitation => {
            ObjectBuilder::new()
                .schema_type(Type::String)
                .pattern(Some(r"^([Aa][Ff][Ff])?[2-9A-HJKMNP-TV-Za-hjkmnp-tv-z]{8}(\.[0-9]{1,19}\.[0-9a-f]{32})?$"))
                .description(Some("A referral code (8 characters), a referral link's `ref`, or an affiliate code (`AFF` and 8 characters)."))
                .examples(["K7M2QRST"])
                .into()
        }
    );

    named_schema!(
        /// An affiliate code: `AFF` and 8 characters, in any case.
        AffiliateCode => {
            ObjectBuilder::new()
                .schema_type(Type::String)
                .pattern(Some(r"^[Aa][Ff][Ff][2-9A-HJKMNP-TV-Za-hjkmnp-tv-z]{8}$"))
                .description(Some("An affiliate code: `AFF` and 8 characters, in any case."))
                .examples(["AFFK7M2QRST"])
                .into()
        }
    );

    named_schema!(
        /// A link shown to viewers: http or https with a host, at most 2048 characters. The
        /// pattern is narrower than what the server reads (any URL it parses); every URL it
        /// admits is accepted.
        WebUrl => {
            ObjectBuilder::new()
                .schema_type(Type::String)
                .format(Some(utoipa::openapi::SchemaFormat::Custom("uri".to_owned())))
                .pattern(Some(r"^https?://[a-z0-9]+(\.[a-z0-9]+)*(/[A-Za-z0-9._~-]*)*$"))
                .max_length(Some(2048))
                .description(Some("An http or https URL."))
                .examples(["https://example.com/landing"])
                .into()
        }
    );

    named_schema!(
        /// An IANA time zone name, as the bundled time zone database knows them.
        TimeZone => {
            let mut names: Vec<String> = jiff::tz::db().available().map(|name| name.to_string()).collect();
            names.sort();
            ObjectBuilder::new()
                .schema_type(Type::String)
                .enum_values(Some(names))
                .description(Some("An IANA time zone name."))
                .examples(["Europe/Berlin"])
                .into()
        }
    );
}
