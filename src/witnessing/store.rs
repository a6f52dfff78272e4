//! The embedded store a node keeps what it saw in: one SQLite database (WAL) owned by one
//! thread, since SQLite has one writer anyway.
//!
//! Writes are grouped: the thread runs every write waiting in its queue in one transaction,
//! each in a savepoint of its own (one write failing leaves the others in), and answers them
//! after the commit. A beacon is acknowledged only once it is on disk, and thousands of
//! beacons a second cost a few commits, not thousands.

use std::path::Path;
use std::sync::mpsc;

use rusqlite::{Connection, Transaction};
use tokio::sync::oneshot;

/// The most writes one transaction takes, so that a flood of beacons still commits often.
const MAX_GROUP: usize = 4096;

#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    #[error("node store: {0}")]
    Sqlite(String),
    #[error("node store: its thread stopped")]
    Stopped,
}

impl From<rusqlite::Error> for StoreError {
    fn from(error: rusqlite::Error) -> Self {
        Self::Sqlite(error.to_string())
    }
}

/// Sends a write's outcome once its transaction committed (or failed to).
type Reply = Box<dyn FnOnce(Option<&StoreError>) + Send>;
type Write = Box<dyn FnOnce(&Transaction<'_>) -> Reply + Send>;
type Read = Box<dyn FnOnce(&Connection) + Send>;

enum Job {
    Write(Write),
    Read(Read),
}

/// A handle on the store's thread; cheap to clone.
#[derive(Debug, Clone)]
pub struct Store {
    jobs: mpsc::Sender<Job>,
}

impl std::fmt::Debug for Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Write(_) => "Write",
            Self::Read(_) => "Read",
        })
    }
}

impl Store {
    /// Opens (creating if needed) the database at `path` and applies `schema`, which must be
    /// idempotent (`CREATE TABLE IF NOT EXISTS ...`).
    pub fn open(path: &Path, schema: &str) -> Result<Self, StoreError> {
        let mut connection = Connection::open(path)?;
        // WAL with NORMAL sync: a commit survives a crash of the process; the last few may
        // be lost only to a power failure, which the nodes' retries cover.
        connection
            .execute_batch("PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;")?;
        let tx = connection.transaction()?;
        tx.execute_batch(schema)?;
        tx.commit()?;
        let (jobs, queue) = mpsc::channel();
        std::thread::Builder::new()
            .name("node-store".into())
            .spawn(move || run(connection, &queue))
            .map_err(|error| StoreError::Sqlite(error.to_string()))?;
        Ok(Self { jobs })
    }

    /// Runs `write` in a transaction shared with the other writes queued meanwhile, and
    /// returns its result once that transaction committed.
    pub async fn write<T: Send + 'static>(
        &self,
        write: impl FnOnce(&Transaction<'_>) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let (answer, answered) = oneshot::channel();
        let job: Write = Box::new(move |tx| {
            let result = in_savepoint(tx, write);
            Box::new(move |commit: Option<&StoreError>| {
                let _ = answer.send(match commit {
                    Some(error) => Err(error.clone()),
                    None => result,
                });
            })
        });
        self.jobs.send(Job::Write(job)).map_err(|_| StoreError::Stopped)?;
        answered.await.map_err(|_| StoreError::Stopped)?
    }

    /// Runs `read` on the store's connection, between write groups.
    pub async fn read<T: Send + 'static>(
        &self,
        read: impl FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let (answer, answered) = oneshot::channel();
        let job: Read = Box::new(move |connection| {
            let _ = answer.send(read(connection));
        });
        self.jobs.send(Job::Read(job)).map_err(|_| StoreError::Stopped)?;
        answered.await.map_err(|_| StoreError::Stopped)?
    }
}

/// Runs one write in a savepoint, so that its failure undoes only its own changes.
fn in_savepoint<T>(
    tx: &Transaction<'_>,
    write: impl FnOnce(&Transaction<'_>) -> Result<T, StoreError>,
) -> Result<T, StoreError> {
    tx.execute_batch("SAVEPOINT write")?;
    match write(tx) {
        Ok(value) => {
            tx.execute_batch("RELEASE write")?;
            Ok(value)
        }
        Err(error) => {
            tx.execute_batch("ROLLBACK TO write; RELEASE write")?;
            Err(error)
        }
    }
}

/// The store's thread: until every handle is dropped, runs reads one by one and writes in
/// groups.
fn run(mut connection: Connection, queue: &mpsc::Receiver<Job>) {
    let mut next = queue.recv().ok();
    while let Some(job) = next.take() {
        match job {
            Job::Read(read) => read(&connection),
            Job::Write(first) => {
                let mut writes = vec![first];
                while writes.len() < MAX_GROUP {
                    match queue.try_recv() {
                        Ok(Job::Write(write)) => writes.push(write),
                        Ok(read) => {
                            next = Some(read);
                            break;
                        }
                        Err(_) => break,
                    }
                }
                commit_group(&mut connection, writes);
            }
        }
        if next.is_none() {
            next = queue.recv().ok();
        }
    }
}

fn commit_group(connection: &mut Connection, writes: Vec<Write>) {
    let tx = match connection.transaction() {
        Ok(tx) => tx,
        Err(error) => {
            // Nothing ran: dropping the writes drops their answers, so their callers see
            // `StoreError::Stopped` and retry or refuse.
            let error = StoreError::from(error);
            tracing::error!(%error, "cannot begin a store transaction");
            return;
        }
    };
    let replies: Vec<Reply> = writes.into_iter().map(|write| write(&tx)).collect();
    let outcome = tx.commit().err().map(StoreError::from);
    if let Some(error) = &outcome {
        tracing::error!(%error, "a store commit failed");
    }
    for reply in replies {
        reply(outcome.as_ref());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SCHEMA: &str = "CREATE TABLE IF NOT EXISTS seen (key TEXT PRIMARY KEY) WITHOUT ROWID;";

    fn count(connection: &Connection) -> Result<i64, StoreError> {
        Ok(connection.query_row("SELECT count(*) FROM seen", [], |row| row.get(0))?)
    }

    #[tokio::test]
    async fn grouped_writes_commit_and_one_failure_leaves_the_others_in() {
        let dir = tempfile_dir();
        let store = Store::open(&dir.join("store.sqlite"), SCHEMA).unwrap();
        let writes = (0..100).map(|i| {
            let store = store.clone();
            tokio::spawn(async move {
                store
                    .write(move |tx| {
                        tx.execute("INSERT INTO seen VALUES (?1)", [format!("k{}", i % 50)])?;
                        Ok(())
                    })
                    .await
            })
        });
        let results: Vec<_> = futures_join(writes).await;
        assert_eq!(
            results.iter().filter(|r| r.is_ok()).count(),
            50,
            "the repeats fail alone"
        );
        assert_eq!(store.read(count).await.unwrap(), 50);
        drop(store);
        let reopened = Store::open(&dir.join("store.sqlite"), SCHEMA).unwrap();
        assert_eq!(reopened.read(count).await.unwrap(), 50, "on disk after a reopen");
    }

    async fn futures_join<T: Send + 'static>(handles: impl Iterator<Item = tokio::task::JoinHandle<T>>) -> Vec<T> {
        let mut out = Vec::new();
        for handle in handles {
            out.push(handle.await.unwrap());
        }
        out
    }

    fn tempfile_dir() -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("adescrow-store-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }
}
