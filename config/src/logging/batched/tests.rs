use super::*;
use tracing_subscriber::fmt::MakeWriter as _;

/// An output that keeps what is written, and can be held shut until
/// opened (a stalled reader).
#[derive(Clone, Default)]
struct Output {
    bytes: Arc<Mutex<Vec<u8>>>,
    shut: Arc<(Mutex<bool>, Condvar)>,
}

impl Output {
    fn shut() -> Self {
        let output = Output::default();
        *output.shut.0.lock().unwrap() = true;
        output
    }

    fn open(&self) {
        *self.shut.0.lock().unwrap() = false;
        self.shut.1.notify_all();
    }

    fn text(&self) -> String {
        String::from_utf8(self.bytes.lock().unwrap().clone()).unwrap()
    }
}

impl std::io::Write for Output {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let (shut, opened) = &*self.shut;
        drop(
            opened
                .wait_while(shut.lock().unwrap(), |shut| *shut)
                .unwrap(),
        );
        self.bytes.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn log(writer: &Batched, line: &str) {
    writer.make_writer().write_all(line.as_bytes()).unwrap();
}

/// Lines from several threads all reach the output whole, each thread's
/// in its order, by the time the guard is dropped.
#[test]
fn lines_from_many_threads_arrive_whole_and_in_order() {
    let output = Output::default();
    let (writer, guard) = Batched::start(output.clone(), "test-log").unwrap();
    std::thread::scope(|s| {
        for t in 0..4 {
            let writer = writer.clone();
            s.spawn(move || {
                for i in 0..5_000 {
                    log(&writer, &format!("thread {t} line {i}\n"));
                }
            });
        }
    });
    drop(guard);
    let text = output.text();
    let mut next = [0; 4];
    for line in text.lines() {
        let words: Vec<&str> = line.split(' ').collect();
        assert_eq!(words.len(), 4, "a whole line: {line:?}");
        let (t, i): (usize, usize) = (words[1].parse().unwrap(), words[3].parse().unwrap());
        assert_eq!(i, next[t], "thread {t}'s lines in order");
        next[t] += 1;
    }
    assert_eq!(next, [5_000; 4]);
    assert_eq!(writer.dropped_lines(), 0);
}

/// Waits until `output` holds `text`.
fn wait_for(output: &Output, text: &str) {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while output.text() != text {
        assert!(
            std::time::Instant::now() < deadline,
            "not written: {text:?}"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Lines are written while the process runs, not only at the end, also
/// a line that comes after a quiet while (the thread sleeps until a line
/// arrives).
#[test]
fn lines_are_written_without_a_stop() {
    let output = Output::default();
    let (writer, _guard) = Batched::start(output.clone(), "test-log").unwrap();
    log(&writer, "first\n");
    wait_for(&output, "first\n");
    std::thread::sleep(FLUSH_EVERY * 5);
    log(&writer, "second\n");
    wait_for(&output, "first\nsecond\n");
}

/// Lines an output refuses are counted as dropped.
#[test]
fn lines_a_failed_write_loses_are_counted() {
    struct Closed;
    impl std::io::Write for Closed {
        fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
            Err(std::io::ErrorKind::BrokenPipe.into())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let (writer, guard) = Batched::start(Closed, "test-log").unwrap();
    for i in 0..100 {
        log(&writer, &format!("line {i}\n"));
    }
    drop(guard);
    assert_eq!(writer.dropped_lines(), 100);
}

/// While the output is stalled, lines past BUFFERED_BYTES are dropped
/// and counted, whole, and the logging code never waits; once the
/// output takes them, the lines kept are written and later lines fit
/// again.
#[test]
fn a_stalled_output_drops_and_counts_lines_past_the_limit() {
    let output = Output::shut();
    let (writer, guard) = Batched::start(output.clone(), "test-log").unwrap();
    let line = format!("{}\n", "x".repeat(1023));
    // One more than two buffers: the thread may hold one batch (taken
    // before it blocked in write) beside the full buffer, so at least
    // one line is dropped whenever the thread takes its batch.
    let lines = 2 * BUFFERED_BYTES / line.len() + 1;
    let logger = {
        let writer = writer.clone();
        std::thread::spawn(move || {
            for _ in 0..lines {
                log(&writer, &line);
            }
        })
    };
    // Logging that waited for the output would never end: the output is
    // opened either way, so that a failure here fails rather than hangs.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while !logger.is_finished() && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    let finished = logger.is_finished();
    let dropped = writer.dropped_lines() as usize;
    output.open();
    assert!(finished, "logging waited for a stalled output");
    assert!(dropped > 0, "nothing dropped of {lines} lines");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !writer.shared.lock().is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "the output was not drained"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    log(&writer, "after\n");
    drop(guard);
    let text = output.text();
    assert!(text.ends_with("after\n"));
    let kept = text.lines().filter(|l| l.len() == 1023).count();
    assert_eq!(kept + dropped, lines, "every line kept or counted");
    assert!(text.lines().all(|l| l.len() == 1023 || l == "after"));
}
