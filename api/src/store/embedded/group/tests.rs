//! The committer alone: groups share one sync, batches are all or
//! nothing, readers see a batch only after its sync, and what was
//! acknowledged is in the file after a close and a reopen.

use super::super::table::{self, Table};
use super::super::wal;
use super::super::Conflict;
use super::*;
use std::time::Duration;

struct Fixture {
    dir: tempfile::TempDir,
    db: Arc<Database>,
    committer: Arc<Committer>,
}

/// A committer on a fresh file; no checkpoint runs unless `checkpoints`.
fn committer(checkpoints: bool) -> Fixture {
    committer_with(checkpoints, |wal| wal)
}

/// [`committer`] with its log changed by `log` first.
fn committer_with(checkpoints: bool, log: impl FnOnce(Wal) -> Wal) -> Fixture {
    committer_lingering(checkpoints, LINGER, log)
}

/// [`committer_with`], lingering `linger` under load.
fn committer_lingering(
    checkpoints: bool,
    linger: Duration,
    log: impl FnOnce(Wal) -> Wal,
) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let db = Arc::new(Database::create(dir.path().join("t.redb")).unwrap());
    let tx = db.begin_write().unwrap();
    table::create_all(&tx).unwrap();
    tx.commit().unwrap();
    let committer = Committer::start(Start {
        db: db.clone(),
        wal: log(Wal::create(dir.path(), 1).unwrap()),
        next_position: 1,
        fits: Box::new(|| true),
        checkpoint_every: if checkpoints {
            Duration::from_millis(20)
        } else {
            Duration::from_secs(3600)
        },
        linger,
    })
    .unwrap();
    Fixture {
        dir,
        db,
        committer: Arc::new(committer),
    }
}

/// Inserts `key` unless it is there (a batch with a condition).
fn insert_new(key: &'static str, value: u64) -> Work {
    Box::new(move |tx| {
        if tx.get(Table::Users, key.as_bytes())?.is_some() {
            return Err(StoreError::Conflict(Conflict::AlreadyExists("key")));
        }
        tx.insert(Table::Users, key.as_bytes(), &value.to_le_bytes());
        Ok(())
    })
}

/// `key` as readers see it (overlay, then file).
fn read(f: &Fixture, key: &str) -> Option<u64> {
    let value = match f.committer.shared.overlay.get(Table::Users, key.as_bytes()) {
        Some(v) => v.map(|v| v.to_vec()),
        None => table::get(&f.db.begin_read().unwrap(), Table::Users, key.as_bytes())
            .unwrap()
            .map(|v| v.to_vec()),
    };
    value.map(|v| u64::from_le_bytes(v.try_into().unwrap()))
}

fn syncs(f: &Fixture) -> u64 {
    f.committer.shared.syncs.load(Ordering::SeqCst)
}

/// The first batch holds the committer until the others are queued, so
/// they make one group, checked by the count of syncs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batches_queued_during_a_commit_share_one_sync() {
    let f = committer(false);
    let keys = ["a", "b", "c", "d", "e", "f", "g", "h", "i", "j"];
    let works = (0..).zip(keys).map(|(i, key)| insert_new(key, i)).collect();
    for answer in one_group(&f.committer, works).await {
        answer.unwrap();
    }
    // The holding batch wrote nothing: one sync, for the ten.
    assert_eq!(syncs(&f), 1);
    for (i, key) in keys.iter().enumerate() {
        assert_eq!(read(&f, key), Some(i as u64));
    }
}

/// After a group of [`gather::SIBLINGS`] batches, the next group waits
/// for a batch sent once the committer has taken its first, and both
/// share one sync; after that group of two, the next one does not wait:
/// a batch sent once its group's first was taken gets a sync of its own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn under_load_a_group_lingers_for_the_batches_that_follow() {
    let f = committer_lingering(false, Duration::from_secs(3), |wal| wal);
    let keys = ["a", "b", "c", "d"];
    assert_eq!(keys.len(), gather::SIBLINGS);
    let works = (0..).zip(keys).map(|(i, key)| insert_new(key, i)).collect();
    for answer in one_group(&f.committer, works).await {
        answer.unwrap();
    }
    assert_eq!(syncs(&f), 1);
    // The next group lingers: a batch sent after its first was taken
    // joins it.
    let (first, second) = one_after_the_other(&f, insert_new("e", 5), insert_new("f", 6)).await;
    first.unwrap();
    second.unwrap();
    assert_eq!(syncs(&f), 2, "the two batches shared one sync");
    // A group of two is no load: the next group does not linger, so the
    // batch sent after its first was taken has a sync of its own.
    let (first, second) = one_after_the_other(&f, insert_new("g", 7), insert_new("h", 8)).await;
    first.unwrap();
    second.unwrap();
    assert_eq!(syncs(&f), 4);
    assert_eq!((read(&f, "e"), read(&f, "h")), (Some(5), Some(8)));
}

/// Sends `first`; once the committer has taken it, sends `second`;
/// answers both.
async fn one_after_the_other(
    f: &Fixture,
    first: Work,
    second: Work,
) -> (Result<(), StoreError>, Result<(), StoreError>) {
    let taken = f.committer.shared.taken.load(Ordering::SeqCst);
    let c = f.committer.clone();
    let first = tokio::spawn(async move { c.commit(first).await });
    while f.committer.shared.taken.load(Ordering::SeqCst) == taken {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let second = f.committer.commit(second).await;
    (first.await.unwrap(), second)
}

/// A batch that writes and then refuses leaves nothing of itself, in the
/// middle of a group, and the batches on both sides of it land.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_refused_after_writing_leaves_nothing() {
    let f = committer(false);
    let half_written: Work = Box::new(|tx| {
        tx.insert(Table::Users, b"half", &7u64.to_le_bytes());
        Err(StoreError::Conflict(Conflict::AlreadyExists("key")))
    });
    let works = vec![
        insert_new("m", 1),
        insert_new("n", 2),
        half_written,
        insert_new("o", 3),
        insert_new("m", 4),
        insert_new("half", 5),
    ];
    let answers = one_group(&f.committer, works).await;
    assert!(answers[0].is_ok() && answers[1].is_ok() && answers[3].is_ok());
    assert!(matches!(answers[2], Err(StoreError::Conflict(_))));
    // It sees the batches before it in its group.
    assert!(matches!(answers[4], Err(StoreError::Conflict(_))));
    // And not the refused one's write.
    assert!(answers[5].is_ok());
    assert_eq!(
        (
            read(&f, "m"),
            read(&f, "n"),
            read(&f, "o"),
            read(&f, "half")
        ),
        (Some(1), Some(2), Some(3), Some(5))
    );
    assert_eq!(syncs(&f), 1);
}

/// A panicking batch is refused alone; the committer goes on, and what it
/// acknowledged is in the file after the store closes (its last
/// checkpoint), which deletes the log.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_batch_is_refused_alone_and_the_rest_is_kept() {
    let f = committer(false);
    let works: Vec<Work> = vec![
        insert_new("p", 1),
        Box::new(|_| panic!("a bug in a batch")),
        insert_new("p", 2),
    ];
    let answers = one_group(&f.committer, works).await;
    assert!(answers[0].is_ok());
    assert!(matches!(answers[1], Err(StoreError::Unavailable(_))));
    assert!(matches!(answers[2], Err(StoreError::Conflict(_))));
    f.committer.commit(insert_new("q", 9)).await.unwrap();
    // No checkpoint yet: the file has nothing, the log everything.
    let tx = f.db.begin_read().unwrap();
    assert_eq!(table::get(&tx, Table::Users, b"p").unwrap(), None);
    drop(tx);
    let Fixture { dir, db, committer } = f;
    drop(committer);
    let tx = db.begin_read().unwrap();
    let value = |k: &[u8]| {
        table::get(&tx, Table::Users, k)
            .unwrap()
            .map(|v| v.to_vec())
    };
    assert_eq!(value(b"p"), Some(1u64.to_le_bytes().to_vec()));
    assert_eq!(value(b"q"), Some(9u64.to_le_bytes().to_vec()));
    drop(tx);
    assert!(
        wal::segments(dir.path()).unwrap().is_empty(),
        "the closing checkpoint deleted the log"
    );
}

/// A group whose log record cannot be written (a disk that refuses
/// writes) is shown to nobody: its batches get an error, their writes
/// are in no read, and the store stops (it would show them if it
/// published before the log's sync).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_log_write_shows_nothing_and_stops_the_store() {
    let f = committer_with(false, |wal| wal.read_only());
    let answers = one_group(
        &f.committer,
        vec![insert_new("lost", 1), insert_new("too", 2)],
    )
    .await;
    for answer in answers {
        assert!(
            matches!(answer, Err(StoreError::Unavailable(_))),
            "{answer:?}"
        );
    }
    assert_eq!((read(&f, "lost"), read(&f, "too")), (None, None));
    assert!(f.committer.shared.check().is_err(), "the store goes on");
    assert!(matches!(
        f.committer.commit(insert_new("after", 3)).await,
        Err(StoreError::Unavailable(_))
    ));
}

/// Checkpoints move the overlay into the file and retire the segments
/// (one kept as the spare); reads answer the same throughout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checkpoints_move_writes_into_the_file_and_retire_the_log() {
    let f = committer(true);
    for (i, key) in ["r", "s", "t"].into_iter().enumerate() {
        f.committer.commit(insert_new(key, i as u64)).await.unwrap();
        assert_eq!(read(&f, key), Some(i as u64));
    }
    let removal: Work = Box::new(|tx| {
        tx.remove(Table::Users, b"s");
        Ok(())
    });
    f.committer.commit(removal).await.unwrap();
    assert_eq!(read(&f, "s"), None);
    let checkpoints = || f.committer.shared.checkpoints.load(Ordering::SeqCst);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    // Until the overlay, frozen layer included, is empty: a checkpoint
    // may have taken the inserts before the removal, and the removal's
    // own checkpoint may still be writing once the active layer is empty.
    while checkpoints() == 0 || !f.committer.shared.overlay.is_empty() {
        assert!(std::time::Instant::now() < deadline, "no checkpoint");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let tx = f.db.begin_read().unwrap();
    assert_eq!(
        table::get(&tx, Table::Users, b"t")
            .unwrap()
            .map(|v| v.to_vec()),
        Some(2u64.to_le_bytes().to_vec())
    );
    assert_eq!(table::get(&tx, Table::Users, b"s").unwrap(), None);
    assert_eq!((read(&f, "r"), read(&f, "s")), (Some(0), None));
    let segments = wal::segments(f.dir.path()).unwrap();
    assert!(
        segments.len() <= 2,
        "the current segment and the spare: {segments:?}"
    );
}

/// A poisoned store fails writes at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_poisoned_store_fails_writes_at_once() {
    let f = committer(false);
    f.committer.shared.poison();
    assert!(matches!(
        f.committer.commit(insert_new("z", 1)).await,
        Err(StoreError::Unavailable(_))
    ));
}

/// Holds the committer in a first batch until `works` are queued, in
/// order, behind it, so that they make one group; returns their answers.
/// For a fresh committer only: after a group of [`gather::SIBLINGS`] the
/// holding batch's group would linger and take `works` in with it.
async fn one_group(committer: &Arc<Committer>, works: Vec<Work>) -> Vec<Result<(), StoreError>> {
    let (release, held) = std::sync::mpsc::channel::<()>();
    let held = std::sync::Mutex::new(held);
    let blocker = {
        let committer = committer.clone();
        tokio::spawn(async move {
            committer
                .commit(Box::new(move |_| {
                    held.lock().unwrap().recv().unwrap();
                    Ok(())
                }))
                .await
        })
    };
    while committer.shared.taken.load(Ordering::SeqCst) < 1 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let mut answers = Vec::new();
    for work in works {
        let c = committer.clone();
        answers.push(tokio::spawn(async move { c.commit(work).await }));
        while committer.shared.queued() < answers.len() as u64 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
    release.send(()).unwrap();
    blocker.await.unwrap().unwrap();
    let mut out = Vec::new();
    for answer in answers {
        out.push(answer.await.unwrap());
    }
    out
}
