//! The outbox as any domain uses it: a kind of its own, a key that makes a second enqueue a
//! no-op, a follow-up that runs with the row's final status or not at all.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use adescrow::platform::outbox::{
    self, BoxFuture, Enqueued, Finished, Followup, Kind, NewTransaction, Outbox, Outcome, Status,
};
use sqlx::PgConnection;

use super::*;

const PING: Kind = Kind::new("test_ping");

/// Counts final rows; fails its first `failures` calls, as a domain whose write errors.
#[derive(Debug, Clone, Default)]
struct Recorder {
    calls: Arc<AtomicUsize>,
    failures: usize,
    last: Arc<std::sync::Mutex<Option<Finished>>>,
}

impl Followup for Recorder {
    fn finished<'a>(&'a self, conn: &'a mut PgConnection, row: &'a Finished) -> BoxFuture<'a, Result<(), sqlx::Error>> {
        Box::pin(async move {
            // The row's own status is already written in this transaction.
            let status: String = sqlx::query_scalar("SELECT status::text FROM outbox WHERE id = $1")
                .bind(row.id)
                .fetch_one(&mut *conn)
                .await?;
            assert_eq!(status, "confirmed");
            let call = self.calls.fetch_add(1, Ordering::SeqCst);
            if call < self.failures {
                return Err(sqlx::Error::Protocol("the domain's write failed".into()));
            }
            *self.last.lock().unwrap() = Some(row.clone());
            Ok(())
        })
    }
}

fn ping(key: &str) -> NewTransaction {
    NewTransaction {
        kind: PING,
        key: key.to_owned(),
        // A plain call to an account without code: it cannot revert.
        target: Address::repeat_byte(0x77),
        calldata: Bytes::from_static(b"ping"),
        gas_limit: None,
    }
}

async fn enqueue(world: &World, new: &NewTransaction) -> Enqueued {
    let mut conn = world.pool.acquire().await.unwrap();
    let mut tx = conn.begin().await.unwrap();
    let enqueued = outbox::enqueue(&mut tx, CHAIN_ID, new).await.unwrap();
    tx.commit().await.unwrap();
    enqueued
}

async fn status(world: &World, key: &str) -> Status {
    outbox::latest(&world.pool, CHAIN_ID, PING, key)
        .await
        .unwrap()
        .unwrap()
        .status
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn any_kind_is_sent_once_per_key_and_followed_up_with_its_final_status(pool: PgPool) {
    let world = World::new(pool).await;
    let first = enqueue(&world, &ping("a")).await;
    assert!(first.created);
    let again = enqueue(&world, &ping("a")).await;
    assert_eq!(
        again,
        Enqueued {
            id: first.id,
            created: false
        },
        "the key makes it a no-op"
    );

    // The relayer's outbox does not know this kind: the row waits without a nonce.
    let relayer = world.relayer(1);
    relayer.tick().await.unwrap();
    world.chain.mine(2).await;
    relayer.tick().await.unwrap();
    assert_eq!(status(&world, "a").await, Status::Queued);

    let settler = PrivateKeySigner::from(world.chain.anvil.keys()[1].clone());
    let recorder = Recorder {
        failures: 1,
        ..Recorder::default()
    };
    let sender = Outbox::new(
        world.pool.clone(),
        ChainRpc::new(world.chain.anvil.endpoint_url(), CHAIN_ID, Duration::from_secs(5)),
        EthereumWallet::new(settler),
        OutboxConfig {
            confirmations: 2,
            replace_after: Duration::from_secs(600),
            fee_ceiling: 1_000 * GWEI,
        },
    )
    .handles(PING, recorder.clone());
    assert_eq!(sender.assign().await.unwrap(), 1, "simulated, then given a nonce");
    // Signed and broadcast (anvil mines it on arrival); the next check finds the receipt.
    sender.tick().await.unwrap();
    assert_eq!(status(&world, "a").await, Status::Sent);
    sender.check().await.unwrap();
    assert_eq!(status(&world, "a").await, Status::Mined);
    world.chain.mine(1).await;

    // The follow-up fails once: the row stays mined, as if the step had never run.
    assert!(sender.confirm().await.is_err());
    assert_eq!(status(&world, "a").await, Status::Mined);
    sender.confirm().await.unwrap();
    let entry = outbox::latest(&world.pool, CHAIN_ID, PING, "a").await.unwrap().unwrap();
    assert_eq!(entry.status, Status::Confirmed);
    let finished = recorder.last.lock().unwrap().clone().unwrap();
    assert_eq!(finished.key, "a");
    assert_eq!(
        finished.outcome,
        Outcome::Confirmed {
            tx_hash: entry.tx_hash.unwrap()
        }
    );
    assert_eq!(recorder.calls.load(Ordering::SeqCst), 2);

    // Confirmed, the key still makes a second enqueue a no-op.
    assert!(!enqueue(&world, &ping("a")).await.created);
    sender.tick().await.unwrap();
    let sent: i64 = sqlx::query_scalar("SELECT count(*) FROM outbox_attempts")
        .fetch_one(&world.pool)
        .await
        .unwrap();
    assert_eq!(sent, 1, "one transaction for the key");
}
