//! The password-hashing pool: a fixed number of threads, each owning one
//! argon2 memory buffer that it reuses for every hash and verification.
//!
//! **Memory budget**: `threads × HASH_MEMORY_BYTES` (19 MiB each; the
//! default 4 threads hold 76 MiB), allocated on a thread's first job and
//! kept until the pool is dropped. No hash allocates or frees its 19 MiB,
//! so the resident size of the process does not grow with the number or
//! the concurrency of logins.
//!
//! Why not `spawn_blocking` with argon2's own allocation (the previous
//! design): every hash allocated and freed a 19 MiB block. After the first
//! such free, glibc raises its dynamic mmap threshold above 19 MiB and
//! serves the next blocks from its heaps (one arena per thread, and the
//! blocking pool runs many threads), where small allocations made in
//! between pin the freed space, so each heap keeps growing. Measured on
//! `nax-hub`: 400 logins 16 at a time took VmRSS from 44 MB to 2.2 GB,
//! never returned; with `MALLOC_MMAP_THRESHOLD_` fixed it stayed at 48 MB.
//!
//! **Concurrency**: at most `threads` hashes run at once. Callers wait
//! for a thread in FIFO order; at most [`MAX_WAITING_PER_THREAD`] ×
//! `threads` may wait, more get [`HashError::Busy`] (503 upstream). A
//! caller that gives up (a dropped request) does not free its thread
//! before the hash it queued ends, so the bound holds under cancellation.
//!
//! Verification parses the stored PHC string, refuses parameters larger
//! than the buffer ([`MAX_TIME_COST`] passes at most), recomputes into the
//! buffer and compares in constant time, so hashes written by argon2's
//! `PasswordHasher` (every hash in existing stores) keep verifying.

use argon2::password_hash::{Output, ParamsString, PasswordHash, Salt, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use thiserror::Error;
use tokio::sync::{oneshot, Semaphore};

/// argon2 memory cost of new hashes and the largest one verified, in
/// 1 KiB blocks (the crate's OWASP default, 19 MiB).
pub const MEMORY_BLOCKS: usize = Params::DEFAULT_M_COST as usize;
/// Bytes of one thread's buffer.
pub const HASH_MEMORY_BYTES: usize = MEMORY_BLOCKS * Block::SIZE;
/// Most argon2 passes a stored hash may ask for (new hashes use 2).
pub const MAX_TIME_COST: u32 = 8;
/// Most threads a pool may have.
pub const MAX_THREADS: usize = 64;
/// Callers that may wait per thread before new ones are refused.
pub const MAX_WAITING_PER_THREAD: usize = 64;
/// Bytes of the salt of new hashes.
const SALT_BYTES: usize = 16;
/// Bytes of the output of new hashes.
const OUTPUT_BYTES: usize = 32;

/// Why hashing did not produce an answer.
#[derive(Debug, Error)]
pub enum HashError {
    /// Every thread is busy and the queue is full.
    #[error("password hashing is saturated")]
    Busy,
    /// The pool's threads are gone (the pool is shutting down) or one
    /// panicked on this job.
    #[error("password hashing thread unavailable")]
    Unavailable,
    #[error("password hashing pool: {0}")]
    Spawn(std::io::Error),
    /// argon2 refused its input (not expected with the fixed parameters).
    #[error("argon2: {0}")]
    Argon2(String),
}

impl From<HashError> for crate::error::ApiError {
    /// Busy: 503 `auth_busy` with `Retry-After: 1`; anything else: 500.
    fn from(e: HashError) -> Self {
        match e {
            HashError::Busy => crate::error::ApiError::unavailable(
                "auth_busy",
                "too many sign-ins in progress; retry shortly",
                1,
            ),
            other => crate::error::ApiError::internal(other),
        }
    }
}

/// What a thread runs: the job gets the thread's buffer.
type Job = Box<dyn FnOnce(&mut [Block]) + Send>;

/// A fixed set of hashing threads with one buffer each (module doc).
pub struct HashPool {
    jobs: mpsc::Sender<Job>,
    permits: Arc<Semaphore>,
    waiting: AtomicUsize,
    max_waiting: usize,
    threads: usize,
}

impl HashPool {
    /// Starts `threads` threads (1 to [`MAX_THREADS`]); their buffers are
    /// allocated on first use.
    pub fn new(threads: usize) -> Result<Self, HashError> {
        let threads = threads.clamp(1, MAX_THREADS);
        let (jobs, queue) = mpsc::channel::<Job>();
        let queue = Arc::new(Mutex::new(queue));
        for i in 0..threads {
            let queue = queue.clone();
            std::thread::Builder::new()
                .name(format!("nax-argon2-{i}"))
                .spawn(move || serve(&queue))
                .map_err(HashError::Spawn)?;
        }
        Ok(HashPool {
            jobs,
            permits: Arc::new(Semaphore::new(threads)),
            waiting: AtomicUsize::new(0),
            max_waiting: threads * MAX_WAITING_PER_THREAD,
            threads,
        })
    }

    /// Threads of the pool.
    pub fn threads(&self) -> usize {
        self.threads
    }

    /// Runs `f` with a thread's buffer once a thread is free (FIFO).
    pub async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut [Block]) -> T + Send + 'static,
    ) -> Result<T, HashError> {
        let permit = {
            let waiting = Waiting::enter(&self.waiting, self.max_waiting)?;
            let permit = self.permits.clone().acquire_owned().await;
            drop(waiting);
            permit.map_err(|_| HashError::Unavailable)?
        };
        let (reply, answer) = oneshot::channel();
        let job: Job = Box::new(move |buffer| {
            let _ = reply.send(f(buffer));
            // The thread is free again only once the job is done.
            drop(permit);
        });
        self.jobs.send(job).map_err(|_| HashError::Unavailable)?;
        answer.await.map_err(|_| HashError::Unavailable)
    }
}

/// Counts a caller waiting for a thread while it exists.
struct Waiting<'a>(&'a AtomicUsize);

impl<'a> Waiting<'a> {
    fn enter(count: &'a AtomicUsize, max: usize) -> Result<Self, HashError> {
        if count.fetch_add(1, Ordering::AcqRel) >= max {
            count.fetch_sub(1, Ordering::AcqRel);
            return Err(HashError::Busy);
        }
        Ok(Waiting(count))
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// A hashing thread: takes jobs until the pool is dropped.
fn serve(queue: &Mutex<mpsc::Receiver<Job>>) {
    let mut buffer: Vec<Block> = Vec::new();
    loop {
        let job = {
            // A poisoned lock still guards a working receiver.
            let queue = queue.lock().unwrap_or_else(|e| e.into_inner());
            queue.recv()
        };
        let Ok(job) = job else {
            return;
        };
        if buffer.is_empty() {
            buffer = vec![Block::new(); MEMORY_BLOCKS];
        }
        // A panicking job drops its reply (the caller sees `Unavailable`);
        // the thread and its buffer carry on.
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| job(&mut buffer)));
    }
}

/// An argon2id PHC string (`$argon2id$v=19$m=19456,t=2,p=1$salt$hash`) of
/// `password` with `salt`, computed in `buffer`.
pub fn hash_in(
    buffer: &mut [Block],
    password: &[u8],
    salt: &[u8; SALT_BYTES],
) -> Result<String, HashError> {
    let argon = |e: &dyn std::fmt::Display| HashError::Argon2(e.to_string());
    let params = Params::DEFAULT;
    let mut out = [0u8; OUTPUT_BYTES];
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone())
        .hash_password_into_with_memory(password, salt, &mut out, buffer)
        .map_err(|e| argon(&e))?;
    let salt = SaltString::encode_b64(salt).map_err(|e| argon(&e))?;
    let phc = PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(&params).map_err(|e| argon(&e))?,
        salt: Some(salt.as_salt()),
        hash: Some(Output::new(&out).map_err(|e| argon(&e))?),
    };
    Ok(phc.to_string())
}

/// Why a stored hash was not checked.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum Unverifiable {
    #[error("not an argon2 PHC string")]
    Malformed,
    #[error("parameters above the budget (m={m_cost} KiB, t={t_cost})")]
    TooCostly { m_cost: u32, t_cost: u32 },
}

/// Whether `password` matches the PHC string `phc`, recomputed in
/// `buffer` and compared in constant time.
pub fn verify_in(buffer: &mut [Block], password: &[u8], phc: &str) -> Result<bool, Unverifiable> {
    let parsed = PasswordHash::new(phc).map_err(|_| Unverifiable::Malformed)?;
    let algorithm = Algorithm::try_from(parsed.algorithm).map_err(|_| Unverifiable::Malformed)?;
    let version = match parsed.version {
        Some(v) => Version::try_from(v).map_err(|_| Unverifiable::Malformed)?,
        None => Version::default(),
    };
    let params = Params::try_from(&parsed).map_err(|_| Unverifiable::Malformed)?;
    if params.block_count() > buffer.len() || params.t_cost() > MAX_TIME_COST {
        return Err(Unverifiable::TooCostly {
            m_cost: params.m_cost(),
            t_cost: params.t_cost(),
        });
    }
    let (Some(salt), Some(expected)) = (parsed.salt, parsed.hash) else {
        return Err(Unverifiable::Malformed);
    };
    let mut salt_bytes = [0u8; Salt::MAX_LENGTH];
    let salt = salt
        .decode_b64(&mut salt_bytes)
        .map_err(|_| Unverifiable::Malformed)?;
    let mut out = [0u8; Output::MAX_LENGTH];
    let out = &mut out[..expected.len()];
    Argon2::new(algorithm, version, params)
        .hash_password_into_with_memory(password, salt, out, buffer)
        .map_err(|_| Unverifiable::Malformed)?;
    Ok(subtle::ConstantTimeEq::ct_eq(&*out, expected.as_bytes()).into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use argon2::password_hash::{PasswordHasher, PasswordVerifier};

    fn buffer() -> Vec<Block> {
        vec![Block::new(); MEMORY_BLOCKS]
    }

    /// Hashes of argon2's own `PasswordHasher` (what stores hold) verify
    /// here, and ours verify there: the format did not change.
    #[test]
    fn hashes_stay_compatible_with_argon2s_phc_strings() {
        let mut buf = buffer();
        let theirs = Argon2::default()
            .hash_password(
                b"Correct-Horse-9-Battery",
                &SaltString::encode_b64(&[3u8; 16]).unwrap(),
            )
            .unwrap()
            .to_string();
        assert_eq!(
            verify_in(&mut buf, b"Correct-Horse-9-Battery", &theirs),
            Ok(true)
        );
        assert_eq!(
            verify_in(&mut buf, b"Correct-Horse-9-Batter", &theirs),
            Ok(false)
        );

        let ours = hash_in(&mut buf, b"Correct-Horse-9-Battery", &[3u8; 16]).unwrap();
        assert_eq!(ours, theirs, "same PHC string for the same salt");
        let parsed = PasswordHash::new(&ours).unwrap();
        assert!(Argon2::default()
            .verify_password(b"Correct-Horse-9-Battery", &parsed)
            .is_ok());
    }

    /// A smaller stored cost (a hash from a cheaper configuration) uses
    /// the front of the buffer and still verifies.
    #[test]
    fn smaller_parameters_verify_in_the_same_buffer() {
        let mut buf = buffer();
        let params = Params::new(4096, 3, 2, None).unwrap();
        let salt = SaltString::encode_b64(&[5u8; 16]).unwrap();
        let phc = Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
            .hash_password(b"pw-Secret-123!", &salt)
            .unwrap()
            .to_string();
        assert_eq!(verify_in(&mut buf, b"pw-Secret-123!", &phc), Ok(true));
        assert_eq!(verify_in(&mut buf, b"pw-Secret-124!", &phc), Ok(false));
    }

    #[test]
    fn parameters_above_the_buffer_are_refused_unrun() {
        let mut buf = buffer();
        let big_memory = "$argon2id$v=19$m=1048576,t=2,p=1$AwMDAwMDAwMDAwMDAwMDAw$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
        assert_eq!(
            verify_in(&mut buf, b"x", big_memory),
            Err(Unverifiable::TooCostly {
                m_cost: 1_048_576,
                t_cost: 2
            })
        );
        let many_passes = "$argon2id$v=19$m=19456,t=1000,p=1$AwMDAwMDAwMDAwMDAwMDAw$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
        assert!(matches!(
            verify_in(&mut buf, b"x", many_passes),
            Err(Unverifiable::TooCostly { t_cost: 1000, .. })
        ));
        for bad in ["", "not a hash", "$scrypt$ln=4,r=8,p=1$c2FsdA$aGFzaA"] {
            assert_eq!(
                verify_in(&mut buf, b"x", bad),
                Err(Unverifiable::Malformed),
                "{bad}"
            );
        }
    }

    #[tokio::test]
    async fn the_pool_bounds_waiting_callers() {
        let pool = Arc::new(HashPool::new(1).unwrap());
        let (release, hold) = std::sync::mpsc::channel::<()>();
        let hold = Arc::new(Mutex::new(hold));
        // Occupy the only thread until released.
        let busy = {
            let (pool, hold) = (pool.clone(), hold.clone());
            tokio::spawn(async move {
                pool.run(move |_| {
                    let _ = hold.lock().unwrap().recv();
                })
                .await
            })
        };
        while pool.permits.available_permits() > 0 {
            tokio::task::yield_now().await;
        }
        let mut queued = Vec::new();
        for _ in 0..MAX_WAITING_PER_THREAD {
            let pool = pool.clone();
            queued.push(tokio::spawn(async move { pool.run(|b| b.len()).await }));
        }
        while pool.waiting.load(Ordering::Acquire) < MAX_WAITING_PER_THREAD {
            tokio::task::yield_now().await;
        }
        assert!(matches!(pool.run(|b| b.len()).await, Err(HashError::Busy)));
        release.send(()).unwrap();
        busy.await.unwrap().unwrap();
        for q in queued {
            assert_eq!(q.await.unwrap().unwrap(), MEMORY_BLOCKS);
        }
    }
}
