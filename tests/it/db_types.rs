//! Chain values and amounts through a real Postgres: what goes in comes back, Postgres reads
//! the same number we meant, and a column that does not fit the Rust type is a decode error.

use adescrow::money::Amount;
use adescrow::platform::db::MIGRATOR;
use adescrow_chain::sql::{SqlAddress, SqlB256, SqlU256};
use alloy::primitives::{Address, B256, U256};
use sqlx::{PgPool, Row};

/// Decodes the numeric literal `text` as `T`.
async fn decode<T>(pool: &PgPool, text: &str) -> Result<T, sqlx::Error>
where
    T: for<'r> sqlx::Decode<'r, sqlx::Postgres> + sqlx::Type<sqlx::Postgres> + Send + Unpin,
{
    sqlx::query_scalar::<_, T>("SELECT $1::text::numeric")
        .bind(text)
        .fetch_one(pool)
        .await
}

fn assert_refused<T: std::fmt::Debug>(result: Result<T, sqlx::Error>, what: &str) {
    match result {
        Err(sqlx::Error::ColumnDecode { .. }) => {}
        other => panic!("{what}: expected a decode error, got {other:?}"),
    }
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn amounts_round_trip_as_the_numbers_they_are(pool: PgPool) {
    // Around the base-10,000 digit boundaries the binary format is written in, and the ends.
    let values = [
        0u128,
        1,
        9_999,
        10_000,
        10_001,
        99_999_999,
        100_000_000,
        100_000_001,
        10u128.pow(36),
        u128::MAX - 1,
        u128::MAX,
    ];
    for value in values {
        let (back, text): (Amount, String) = sqlx::query_as("SELECT $1::numeric, $1::numeric::text")
            .bind(Amount(value))
            .fetch_one(&pool)
            .await
            .unwrap();
        assert_eq!(back, Amount(value));
        assert_eq!(text, value.to_string(), "Postgres reads {value} as that number");
        assert_eq!(
            decode::<Amount>(&pool, &value.to_string()).await.unwrap(),
            Amount(value)
        );
    }
    // Arrays, as billing binds its running totals.
    let amounts: Vec<Amount> = values.iter().copied().map(Amount).collect();
    let (back, sum): (Vec<Amount>, String) =
        sqlx::query_as("SELECT $1::numeric[], (SELECT sum(a)::text FROM unnest($1::numeric[]) a)")
            .bind(&amounts[..])
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(back, amounts);
    let expected: U256 = values.iter().map(|v| U256::from(*v)).sum();
    assert_eq!(sum, expected.to_string());
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn amounts_decode_from_a_simple_query_in_text(pool: PgPool) {
    let row = sqlx::raw_sql("SELECT 340282366920938463463374607431768211455::numeric, 0::numeric")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(row.try_get::<Amount, _>(0).unwrap(), Amount(u128::MAX));
    assert_eq!(row.try_get::<Amount, _>(1).unwrap(), Amount::ZERO);
    let row = sqlx::raw_sql("SELECT 340282366920938463463374607431768211456::numeric, (-1)::numeric")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert!(row.try_get::<Amount, _>(0).is_err(), "2^128 in text");
    assert!(row.try_get::<Amount, _>(1).is_err(), "-1 in text");
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn uint256_round_trips_up_to_its_maximum(pool: PgPool) {
    for value in [
        U256::ZERO,
        U256::from(u128::MAX) + U256::from(1),
        U256::MAX - U256::from(1),
        U256::MAX,
    ] {
        let (back, text): (SqlU256, String) = sqlx::query_as("SELECT $1::numeric(78, 0), $1::numeric::text")
            .bind(SqlU256(value))
            .fetch_one(&pool)
            .await
            .unwrap();
        assert_eq!(back, SqlU256(value));
        assert_eq!(text, value.to_string());
    }
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn numbers_that_do_not_fit_are_refused(pool: PgPool) {
    let two_to_128 = (U256::from(u128::MAX) + U256::from(1)).to_string();
    assert_refused(decode::<Amount>(&pool, &two_to_128).await, "2^128 as an amount");
    assert_eq!(
        decode::<SqlU256>(&pool, &two_to_128).await.unwrap(),
        SqlU256(U256::from(u128::MAX) + U256::from(1)),
        "2^128 is a uint256"
    );
    assert_eq!(
        decode::<SqlU256>(&pool, &U256::MAX.to_string()).await.unwrap(),
        SqlU256(U256::MAX)
    );
    // numeric(78, 0) holds up to 10^78 - 1, past 2^256 - 1 (about 1.16 * 10^77).
    let past_u256 = "115792089237316195423570985008687907853269984665640564039457584007913129639936";
    assert_eq!(U256::MAX.to_string().len(), past_u256.len());
    assert_refused(decode::<SqlU256>(&pool, past_u256).await, "2^256 as a uint256");
    assert_refused(
        decode::<SqlU256>(&pool, &"9".repeat(78)).await,
        "10^78 - 1 as a uint256",
    );
    for (text, what) in [
        ("-1", "negative"),
        ("1.5", "fractional"),
        ("0.0001", "fractional"),
        ("NaN", "NaN"),
    ] {
        assert_refused(
            decode::<Amount>(&pool, text).await,
            &format!("{what} {text} as an amount"),
        );
        assert_refused(
            decode::<SqlU256>(&pool, text).await,
            &format!("{what} {text} as a uint256"),
        );
    }
}

/// A row of one `bytea` column of `n` bytes.
async fn bytes(pool: &PgPool, n: usize) -> sqlx::postgres::PgRow {
    sqlx::query("SELECT $1::bytea")
        .bind(vec![7u8; n])
        .fetch_one(pool)
        .await
        .unwrap()
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn addresses_and_hashes_round_trip_at_their_width_only(pool: PgPool) {
    let address = Address::repeat_byte(0xab);
    let (back, length): (SqlAddress, i32) = sqlx::query_as("SELECT $1::bytea, octet_length($1::bytea)")
        .bind(SqlAddress(address))
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!((back.0, length), (address, 20));
    let hash = B256::repeat_byte(0xcd);
    let (back, length): (SqlB256, i32) = sqlx::query_as("SELECT $1::bytea, octet_length($1::bytea)")
        .bind(SqlB256(hash))
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!((back.0, length), (hash, 32));

    for n in [0, 19, 21, 32] {
        assert_refused(
            bytes(&pool, n).await.try_get::<SqlAddress, _>(0),
            &format!("{n} bytes as an address"),
        );
    }
    for n in [20, 31, 33] {
        assert_refused(
            bytes(&pool, n).await.try_get::<SqlB256, _>(0),
            &format!("{n} bytes as a hash"),
        );
    }
    assert_eq!(
        bytes(&pool, 20).await.try_get::<SqlAddress, _>(0).unwrap(),
        SqlAddress(Address::repeat_byte(7))
    );
}
