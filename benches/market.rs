//! Marketplace search, in process against a real Postgres with 100,000 items (95,000
//! published across five categories, titles and descriptions drawn from a 2,000-word
//! vocabulary, up to three tags from 200): `items::search` for a mix of queries (one word,
//! two words, a phrase, a tag, a category, words and a category, no filter, and a second
//! page), p50 and p99 over all of them.
//!
//! ```text
//! cargo bench --bench market
//! ```
//!
//! `DATABASE_URL` (default `postgres://postgres@127.0.0.1:5432/postgres`) is only used to
//! create and finally drop the database `adescrow_bench_market`. Prints one line per query
//! kind and the overall figure with its target, and exits non-zero when it is missed.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a bench that cannot set up has nothing to measure"
)]
// A bench binary reports on stdout.
#![allow(clippy::print_stdout)]

mod support;

use std::time::{Duration, Instant};

use adescrow::platform::db::MIGRATOR;
use adescrow::platform::values::{Bounded, Text};
use adescrow::programs::market::items::{self, Category, Cursor, Search, Tag};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;
use url::Url;

use support::percentile;

const DATABASE: &str = "adescrow_bench_market";
const ITEMS: usize = 100_000;
const WORDS: usize = 2_000;
const TAGS: usize = 200;
const SEARCHES_PER_KIND: usize = 300;
const TARGET_P99: Duration = Duration::from_millis(20);
const FEE: i32 = 1500;

const CATEGORIES: [Category; 5] = [
    Category::CreativeTemplate,
    Category::AudienceResearch,
    Category::DataSet,
    Category::Software,
    Category::Other,
];

/// A pronounceable word for index `i`: the same vocabulary on every run.
fn word(i: usize) -> String {
    const SYLLABLES: [&str; 16] = [
        "ka", "lo", "mi", "ne", "su", "ta", "ro", "vi", "de", "pa", "zu", "fe", "go", "hi", "ju", "be",
    ];
    let mut n = i + 16;
    let mut word = String::new();
    while n > 0 {
        word.push_str(SYLLABLES[n % 16]);
        n /= 16;
    }
    word
}

/// Zipf-like: low indexes are common, as words are.
fn pick(rng: &mut StdRng, count: usize) -> usize {
    let u: f64 = rng.random();
    ((count as f64).powf(u) - 1.0) as usize % count
}

async fn seed(pool: &PgPool) -> anyhow::Result<()> {
    let sellers: Vec<uuid::Uuid> = sqlx::query_scalar(
        "INSERT INTO users (address) SELECT decode(lpad(to_hex(n), 40, '0'), 'hex') FROM generate_series(1, 100) n
         RETURNING id",
    )
    .fetch_all(pool)
    .await?;
    let mut rng = StdRng::seed_from_u64(7);
    for chunk in 0..ITEMS / 5_000 {
        let mut ids = Vec::with_capacity(5_000);
        let (mut seller, mut title, mut description, mut category, mut tags, mut state, mut published) =
            (vec![], vec![], vec![], vec![], vec![], vec![], vec![]);
        for i in 0..5_000 {
            let n = chunk * 5_000 + i;
            ids.push(uuid::Uuid::from_u128(n as u128 + 1));
            seller.push(sellers[n % sellers.len()]);
            title.push(
                (0..4)
                    .map(|_| word(pick(&mut rng, WORDS)))
                    .collect::<Vec<_>>()
                    .join(" "),
            );
            description.push(
                (0..30)
                    .map(|_| word(pick(&mut rng, WORDS)))
                    .collect::<Vec<_>>()
                    .join(" "),
            );
            category.push(CATEGORIES[n % CATEGORIES.len()]);
            let count = rng.random_range(0..=3);
            let item_tags: Vec<String> = (0..count).map(|_| format!("t{}", pick(&mut rng, TAGS))).collect();
            tags.push(format!("{{{}}}", item_tags.join(",")));
            state.push(if n % 20 == 0 { "draft" } else { "published" });
            published.push(n as i64);
        }
        sqlx::query(
            "INSERT INTO market_items (id, seller_id, title, description, category, tags, activation_limit, state,
                                       published_at)
             SELECT id, seller, title, description, category, tags::text[], 1, state::market_item_state,
                    CASE WHEN state = 'published' THEN timestamptz '2026-01-01' + n * interval '1 minute' END
             FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::market_category[], $6::text[],
                         $7::text[], $8::bigint[]) AS t(id, seller, title, description, category, tags, state, n)",
        )
        .bind(&ids)
        .bind(&seller)
        .bind(&title)
        .bind(&description)
        .bind(&category)
        .bind(&tags)
        .bind(&state)
        .bind(&published)
        .execute(pool)
        .await?;
        sqlx::query(
            "INSERT INTO market_prices (item_id, token, price) SELECT id, decode(repeat('aa', 20), 'hex'), 1000
             FROM unnest($1::uuid[]) id",
        )
        .bind(&ids)
        .execute(pool)
        .await?;
    }
    sqlx::query("ANALYZE market_items").execute(pool).await?;
    sqlx::query("ANALYZE market_prices").execute(pool).await?;
    Ok(())
}

fn search(text: Option<String>, category: Option<Category>, tag: Option<String>) -> Search {
    Search {
        text: text.map(|t| Text::parse(&t).unwrap()),
        category,
        tag: tag.map(|t| Tag::parse(&t).unwrap()),
        token: None,
        limit: Bounded::parse(20).unwrap(),
        after: None,
    }
}

async fn run(db_url: &Url) -> anyhow::Result<bool> {
    let pool = PgPoolOptions::new().max_connections(4).connect(db_url.as_str()).await?;
    MIGRATOR.run(&pool).await?;
    let started = Instant::now();
    seed(&pool).await?;
    println!("seeded {ITEMS} items in {:.1} s", started.elapsed().as_secs_f64());

    let mut rng = StdRng::seed_from_u64(11);
    type Make = fn(&mut StdRng) -> Search;
    let kinds: [(&str, Make); 7] = [
        ("one word", |rng| search(Some(word(pick(rng, WORDS))), None, None)),
        ("two words", |rng| {
            search(
                Some(format!("{} {}", word(pick(rng, WORDS)), word(pick(rng, WORDS)))),
                None,
                None,
            )
        }),
        ("a phrase", |rng| {
            search(
                Some(format!("\"{} {}\"", word(pick(rng, 50)), word(pick(rng, 50)))),
                None,
                None,
            )
        }),
        ("a tag", |rng| search(None, None, Some(format!("t{}", pick(rng, TAGS))))),
        ("a category", |rng| {
            search(None, Some(CATEGORIES[rng.random_range(0..5)]), None)
        }),
        ("a word in a category", |rng| {
            search(
                Some(word(pick(rng, WORDS))),
                Some(CATEGORIES[rng.random_range(0..5)]),
                None,
            )
        }),
        ("everything", |_| search(None, None, None)),
    ];
    let mut all = Vec::new();
    for (name, make) in kinds {
        let mut latencies = Vec::with_capacity(SEARCHES_PER_KIND);
        for _ in 0..SEARCHES_PER_KIND {
            let query = make(&mut rng);
            let started = Instant::now();
            let page = items::search(&pool, &query, FEE).await?;
            latencies.push(started.elapsed());
            // The next page from where this one ended, timed as a search of its own.
            if let Some(cursor) = page.next_cursor {
                let next = Search {
                    after: Some(Cursor::parse(&cursor).unwrap()),
                    ..query
                };
                let started = Instant::now();
                items::search(&pool, &next, FEE).await?;
                latencies.push(started.elapsed());
            }
        }
        latencies.sort();
        println!(
            "  {name:<22} p50 {:>6.2} ms   p99 {:>6.2} ms   ({} searches)",
            percentile(&latencies, 0.5).as_secs_f64() * 1e3,
            percentile(&latencies, 0.99).as_secs_f64() * 1e3,
            latencies.len()
        );
        all.extend(latencies);
    }
    all.sort();
    let p99 = percentile(&all, 0.99);
    let met = p99 <= TARGET_P99;
    println!(
        "item search over {ITEMS} items, in process: p50 {:.2} ms, p99 {:.2} ms (target p99 <= {} ms) {}",
        percentile(&all, 0.5).as_secs_f64() * 1e3,
        p99.as_secs_f64() * 1e3,
        TARGET_P99.as_millis(),
        if met { "ok" } else { "MISSED" }
    );
    pool.close().await;
    Ok(met)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    support::with_database(DATABASE, |url| async move { run(&url).await }).await
}
