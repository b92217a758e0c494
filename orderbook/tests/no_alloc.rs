//! Proves the book's hot path does not touch the heap: a counting global
//! allocator wraps `System` and counts every `alloc`, `alloc_zeroed` and
//! `realloc` made on a thread while that thread has counting switched on.
//! The test harness's own threads never switch it on, so they cannot
//! disturb the count, and measured sections are serialized by a lock so the
//! shared counter only ever sees one of them.
//!
//! Run: `cargo test -p orderbook --test no_alloc`

use orderbook::{BookDelta, L2Book, Price, Qty, Side};
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::hint::black_box;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

struct CountingAlloc;

static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    // `const` initialisation: reading it never allocates or registers a
    // destructor, so it is safe to touch from inside the allocator.
    static COUNTING: Cell<bool> = const { Cell::new(false) };
}

fn note_allocation() {
    if COUNTING.try_with(Cell::get).unwrap_or(false) {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
    }
}

unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note_allocation();
        System.alloc(layout)
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note_allocation();
        System.alloc_zeroed(layout)
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note_allocation();
        System.realloc(ptr, layout, new_size)
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout)
    }
}

#[global_allocator]
static GLOBAL: CountingAlloc = CountingAlloc;

/// One measured section at a time (tests run on parallel threads).
static MEASURE: Mutex<()> = Mutex::new(());

/// Runs `f` with counting on for this thread and returns how many
/// allocations (incl. reallocations) it made.
fn allocations_in<R>(f: impl FnOnce() -> R) -> usize {
    let _guard = MEASURE.lock().unwrap_or_else(|e| e.into_inner());
    ALLOCATIONS.store(0, Ordering::SeqCst);
    COUNTING.with(|c| c.set(true));
    let result = f();
    COUNTING.with(|c| c.set(false));
    // Drop outside the counted section; drops never allocate anyway.
    drop(black_box(result));
    ALLOCATIONS.load(Ordering::SeqCst)
}

const DEPTH: usize = 1_000;
const MID: u64 = 6_400_000;

/// Deterministic xorshift64*: no dependency, no allocation.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn side(&mut self) -> Side {
        if self.next() & 1 == 0 {
            Side::Buy
        } else {
            Side::Sell
        }
    }

    /// Non-zero, BTC-sized raw quantity (up to 10^8 at scale 6).
    fn qty(&mut self) -> Qty {
        Qty(1 + self.below(100_000_000))
    }
}

/// Level `i` (0 = best) of `side`: `2i + 1` ticks from the mid, leaving a
/// free tick between any two levels.
fn level_price(side: Side, i: u64) -> Price {
    match side {
        Side::Buy => Price(MID - (2 * i + 1)),
        Side::Sell => Price(MID + (2 * i + 1)),
    }
}

/// 1 000 levels per side, in `L2Book::new`'s reserved capacity (1 024).
fn book() -> L2Book {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut side = |s| -> Vec<(Price, Qty)> {
        (0..DEPTH as u64)
            .map(|i| (level_price(s, i), rng.qty()))
            .collect()
    };
    let (bids, asks) = (side(Side::Buy), side(Side::Sell));
    let mut book = L2Book::new();
    book.apply_snapshot(&bids, &asks).unwrap();
    assert_eq!(book.bids().len(), DEPTH);
    assert!(book.bids().capacity() >= DEPTH && book.asks().capacity() >= DEPTH);
    book
}

fn capacities(book: &L2Book) -> (usize, usize) {
    (book.bids().capacity(), book.asks().capacity())
}

#[test]
fn counter_sees_an_allocation() {
    let n = allocations_in(|| Vec::<u64>::with_capacity(10));
    assert!(n >= 1, "the counting allocator must see Vec::with_capacity");
    let mut grown: Vec<u64> = Vec::with_capacity(1);
    let n = allocations_in(|| grown.extend_from_slice(&[1, 2, 3, 4, 5, 6, 7, 8]));
    assert!(n >= 1, "the counting allocator must see a realloc");
}

#[test]
fn updating_existing_levels_does_not_allocate() {
    let mut book = book();
    let mut rng = Rng(42);
    // 100 000 deltas, each a new non-zero quantity at an existing level
    // anywhere in the 1 000 of either side; generated before counting.
    let deltas: Vec<BookDelta> = (0..100_000)
        .map(|_| {
            let side = rng.side();
            BookDelta {
                side,
                price: level_price(side, rng.below(DEPTH as u64)),
                qty: rng.qty(),
            }
        })
        .collect();
    let caps = capacities(&book);
    let n = allocations_in(|| {
        for d in &deltas {
            let old = book.apply_delta(*d);
            assert!(!old.is_zero(), "every delta hits an existing level");
        }
    });
    assert_eq!(n, 0, "apply_delta on existing levels allocated {n} times");
    assert_eq!(capacities(&book), caps);
    assert_eq!((book.bids().len(), book.asks().len()), (DEPTH, DEPTH));
}

#[test]
fn inserts_and_deletes_within_capacity_do_not_allocate() {
    let mut book = book();
    let caps = capacities(&book);
    assert!(caps.0 >= DEPTH + 24 && caps.1 >= DEPTH + 24);
    let mut rng = Rng(7);
    // Rounds of: insert 24 new levels in the free ticks (at the top, deep
    // and anywhere), then delete them again; plus deleting and restoring
    // existing levels. The book peaks at 1 024 levels per side.
    let mut deltas = Vec::new();
    for round in 0..1_000u64 {
        let side = if round % 2 == 0 {
            Side::Buy
        } else {
            Side::Sell
        };
        let mut free: Vec<Price> = Vec::with_capacity(24);
        for k in 0..24u64 {
            let mut i = match k % 3 {
                0 => k / 3,                    // near the top
                1 => DEPTH as u64 - 1 - k / 3, // deepest levels
                _ => 8 + rng.below(DEPTH as u64 - 16),
            };
            // the free tick just worse than level i, each used once a round
            let free_tick = |i| match side {
                Side::Buy => Price(level_price(side, i).0 - 1),
                Side::Sell => Price(level_price(side, i).0 + 1),
            };
            while free.contains(&free_tick(i)) {
                i = 8 + rng.below(DEPTH as u64 - 16);
            }
            free.push(free_tick(i));
        }
        for &price in &free {
            deltas.push(BookDelta {
                side,
                price,
                qty: rng.qty(),
            });
        }
        for &price in free.iter().rev() {
            deltas.push(BookDelta {
                side,
                price,
                qty: Qty::ZERO,
            });
        }
        // delete then re-insert an existing level
        let price = level_price(side, rng.below(DEPTH as u64));
        deltas.push(BookDelta {
            side,
            price,
            qty: Qty::ZERO,
        });
        deltas.push(BookDelta {
            side,
            price,
            qty: rng.qty(),
        });
    }
    let mut max_depth = 0;
    let n = allocations_in(|| {
        for d in &deltas {
            let old = book.apply_delta(*d);
            // every insert hits a free tick, every delete an existing level
            assert_eq!(old.is_zero(), !d.qty.is_zero());
            max_depth = max_depth.max(book.side(d.side).len());
        }
    });
    assert_eq!(n, 0, "inserts/deletes within capacity allocated {n} times");
    assert_eq!(max_depth, DEPTH + 24);
    assert!(max_depth <= caps.0.min(caps.1));
    assert_eq!(capacities(&book), caps);
    assert_eq!((book.bids().len(), book.asks().len()), (DEPTH, DEPTH));
}

#[test]
fn checksum_does_not_allocate() {
    let book = book();
    let mut sum = 0u32;
    let n = allocations_in(|| {
        for _ in 0..10_000 {
            sum ^= black_box(&book).checksum();
        }
    });
    assert_eq!(n, 0, "L2Book::checksum allocated {n} times");
    assert_eq!(black_box(sum), 0, "an even number of equal checksums");
    assert_ne!(book.checksum(), 0);
}

#[test]
fn apply_deltas_batch_with_cross_check_does_not_allocate() {
    let mut book = book();
    let batch: Vec<BookDelta> = (0..100u64)
        .map(|i| {
            let side = if i % 2 == 0 { Side::Buy } else { Side::Sell };
            BookDelta {
                side,
                price: level_price(side, i % 10),
                qty: Qty(1_000 + i),
            }
        })
        .collect();
    let n = allocations_in(|| {
        for _ in 0..1_000 {
            book.apply_deltas(&batch).unwrap();
        }
    });
    assert_eq!(n, 0, "apply_deltas allocated {n} times");
}
