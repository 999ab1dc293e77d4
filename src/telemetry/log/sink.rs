//! Where log lines go: a buffer that a writer thread of its own drains to
//! stdout.
//!
//! Writing each line to stdout from the request path costs a `write(2)`
//! per request, and two runtime workers logging at once also contend for
//! stdout's lock; the load benchmark measured about 10 µs of system time
//! per request for it (docs/performance.md). Here a worker only copies its
//! line into a shared buffer; the writer thread takes the whole buffer at
//! once, so under load one `write(2)` carries many lines, and nothing on
//! the request path waits for the disk or the pipe.
//!
//! Waking the writer is itself a system call on each side (a futex wake
//! and wait), so once woken it lets lines gather for [`GATHER`] before it
//! takes them: under load the wake-ups come a few hundred times a second,
//! not once per request, and a line reaches stdout at most a few
//! milliseconds late. Measured on the load benchmark: 2.8 futex calls and
//! 0.8 writes per request before, see docs/performance.md for after.
//!
//! The buffer is bounded: when stdout stops taking lines (a full disk, a
//! stuck pipe), lines past [`MAX_PENDING_BYTES`] are dropped and counted,
//! and the count is written once the writer gets through again, rather
//! than stalling requests behind the log.

use std::io::{self, Write};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock};
use std::thread;
use std::time::Duration;

use tracing_subscriber::fmt::MakeWriter;

/// The most bytes of lines held while the writer is behind.
const MAX_PENDING_BYTES: usize = 8 * 1024 * 1024;

/// How long the writer, once woken, lets lines gather before it writes.
/// Short enough that a line is never noticeably late; long enough that at
/// thousands of requests a second one wake-up and one write carry dozens.
const GATHER: Duration = Duration::from_millis(5);

/// Lines waiting for the writer thread, and what became of the rest.
#[derive(Default)]
struct Pending {
    lines: Vec<u8>,
    /// Lines dropped since the writer last got through.
    dropped: u64,
    /// Set while the writer thread waits for lines, so that only then does
    /// a producer pay for a wake-up.
    idle: bool,
    /// Set while the writer holds a batch it has not written yet.
    writing: bool,
    /// How many callers of [`flush`] wait for the writer: only then does
    /// the writer signal after a write.
    flushing: usize,
}

/// The shared half of the sink: the buffer and the writer's wake-up.
struct Shared {
    /// The `service` of the notice line about dropped lines, JSON-quoted.
    service: String,
    pending: Mutex<Pending>,
    /// Signals lines for an idle writer, and a finished batch for
    /// [`flush`].
    signal: Condvar,
}

impl Shared {
    fn new(service: &str) -> Arc<Self> {
        Arc::new(Shared {
            service: serde_json::to_string(service).unwrap_or_else(|_| "null".to_owned()),
            pending: Mutex::new(Pending::default()),
            signal: Condvar::new(),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Pending> {
        // A producer that panicked mid-copy leaves at worst a torn line.
        self.pending
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// The process's sink, started by the first [`stdout`].
static SINK: OnceLock<Arc<Shared>> = OnceLock::new();

/// Returns a writer for the log layer that batches lines to stdout through
/// the writer thread, starting the thread on first use; `service` names
/// the process in the notice about dropped lines.
pub fn stdout(service: &str) -> BatchedStdout {
    let shared = SINK.get_or_init(|| {
        let shared = Shared::new(service);
        let drained = shared.clone();
        // Spawning fails only when the process is out of threads at start;
        // the sink then drops every line past the bound, and counts them.
        let _ = thread::Builder::new()
            .name("tollgate-log".into())
            .spawn(move || drain(&drained, &mut io::stdout(), GATHER));
        shared
    });
    BatchedStdout {
        shared: shared.clone(),
    }
}

/// Waits until every line handed over so far has been written (or dropped),
/// for the end of the process. Does nothing when the sink never started.
pub fn flush() {
    if let Some(shared) = SINK.get() {
        // Bounded: the writer thread may be stuck on a blocked stdout.
        wait_until_written(shared, Duration::from_secs(2));
    }
}

/// Waits until the writer has written every line pending now, or for
/// `timeout`.
fn wait_until_written(shared: &Shared, timeout: Duration) {
    let mut pending = shared.lock();
    pending.flushing += 1;
    let deadline = std::time::Instant::now() + timeout;
    while !pending.lines.is_empty() || pending.writing {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        if left.is_zero() {
            break;
        }
        pending = match shared.signal.wait_timeout(pending, left) {
            Ok((guard, _)) => guard,
            Err(poisoned) => poisoned.into_inner().0,
        };
    }
    pending.flushing -= 1;
}

/// The writer thread: waits for a line, lets more gather for `gather`,
/// then takes every pending line at once and writes them.
fn drain(shared: &Shared, out: &mut impl Write, gather: Duration) {
    let mut batch = Vec::new();
    loop {
        wait_for_lines(shared);
        thread::sleep(gather);

        let dropped = {
            let mut pending = shared.lock();
            pending.writing = true;
            std::mem::swap(&mut batch, &mut pending.lines);
            std::mem::take(&mut pending.dropped)
        };

        // Logging has nowhere to report its own failure: a line that
        // cannot be written is lost, as with a direct write.
        let _ = out.write_all(&batch);
        if dropped > 0 {
            let now = humantime::format_rfc3339_micros(std::time::SystemTime::now());
            let _ = writeln!(
                out,
                "{{\"timestamp\":\"{now}\",\"level\":\"WARN\",\"service\":{},\
                 \"user_id\":null,\"request_id\":null,\"message\":\"log lines dropped \
                 while stdout was not taking them\",\"dropped\":{dropped}}}",
                shared.service
            );
        }
        let _ = out.flush();
        batch.clear();
    }
}

/// Marks the last batch written, tells any [`flush`] so, and sleeps until
/// there is something to write.
fn wait_for_lines(shared: &Shared) {
    let mut pending = shared.lock();
    pending.writing = false;
    if pending.flushing > 0 {
        shared.signal.notify_all();
    }

    while pending.lines.is_empty() && pending.dropped == 0 {
        pending.idle = true;
        pending = match shared.signal.wait(pending) {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
    }
    pending.idle = false;
}

/// A log writer that hands lines to the writer thread.
#[derive(Clone)]
pub struct BatchedStdout {
    shared: Arc<Shared>,
}

impl BatchedStdout {
    fn push(&self, line: &[u8]) {
        let mut pending = self.shared.lock();
        if pending.lines.len() + line.len() > MAX_PENDING_BYTES {
            pending.dropped += 1;
            return;
        }
        pending.lines.extend_from_slice(line);
        if pending.idle {
            pending.idle = false;
            self.shared.signal.notify_all();
        }
    }
}

impl Write for BatchedStdout {
    /// Takes whole lines: the log layer writes each line with one call.
    fn write(&mut self, line: &[u8]) -> io::Result<usize> {
        self.push(line);
        Ok(line.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for BatchedStdout {
    type Writer = BatchedStdout;

    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Starts a writer thread over a shared buffer instead of stdout.
    fn sink() -> (BatchedStdout, Arc<Mutex<Vec<u8>>>) {
        #[derive(Clone)]
        struct Into(Arc<Mutex<Vec<u8>>>);
        impl Write for Into {
            fn write(&mut self, data: &[u8]) -> io::Result<usize> {
                self.0.lock().expect("not poisoned").extend_from_slice(data);
                Ok(data.len())
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        let shared = Shared::new("test");
        let written = Arc::new(Mutex::new(Vec::new()));
        let mut out = Into(written.clone());
        let drained = shared.clone();
        thread::spawn(move || drain(&drained, &mut out, GATHER));
        (BatchedStdout { shared }, written)
    }

    fn wait_for(written: &Mutex<Vec<u8>>, lines: usize) -> String {
        for _ in 0..200 {
            let text =
                String::from_utf8(written.lock().expect("not poisoned").clone()).expect("utf-8");
            if text.lines().count() >= lines {
                return text;
            }
            thread::sleep(std::time::Duration::from_millis(5));
        }
        panic!("the writer thread did not write {lines} lines");
    }

    #[test]
    fn lines_reach_the_output_whole_and_in_order() {
        let (mut writer, written) = sink();
        for at in 0..1000 {
            writer
                .write_all(format!("line {at}\n").as_bytes())
                .expect("written");
        }
        let text = wait_for(&written, 1000);
        let expected: Vec<String> = (0..1000).map(|at| format!("line {at}")).collect();
        assert_eq!(text.lines().collect::<Vec<_>>(), expected);
    }

    /// Counts the `write` calls that reach the output.
    #[derive(Clone, Default)]
    struct Counted(Arc<Mutex<(usize, Vec<u8>)>>);

    impl Write for Counted {
        fn write(&mut self, data: &[u8]) -> io::Result<usize> {
            let mut seen = self.0.lock().expect("not poisoned");
            seen.0 += 1;
            seen.1.extend_from_slice(data);
            Ok(data.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn lines_arriving_while_the_writer_gathers_share_one_write() {
        let shared = Shared::new("test");
        let out = Counted::default();
        let (drained, mut sink) = (shared.clone(), out.clone());
        // A long gather, so that a slow machine still fits every line in.
        thread::spawn(move || drain(&drained, &mut sink, Duration::from_millis(500)));
        let mut writer = BatchedStdout { shared };

        for at in 0..20 {
            writer
                .write_all(format!("line {at}\n").as_bytes())
                .expect("written");
            thread::sleep(Duration::from_millis(1));
        }
        for _ in 0..300 {
            if out.0.lock().expect("not poisoned").1.len() >= 20 * 7 {
                break;
            }
            thread::sleep(Duration::from_millis(5));
        }

        let (writes, bytes) = out.0.lock().expect("not poisoned").clone();
        let text = String::from_utf8(bytes).expect("utf-8");
        assert_eq!(text.lines().count(), 20, "{text}");
        // One per line before the gather; two allows for a stall past it.
        assert!(writes <= 2, "{writes} writes for 20 lines");
    }

    #[test]
    fn flush_waits_for_lines_still_gathering() {
        let shared = Shared::new("test");
        let out = Counted::default();
        let (drained, mut sink) = (shared.clone(), out.clone());
        thread::spawn(move || drain(&drained, &mut sink, Duration::from_millis(100)));
        let mut writer = BatchedStdout {
            shared: shared.clone(),
        };
        writer.write_all(b"last words\n").expect("written");

        wait_until_written(&shared, Duration::from_secs(10));

        assert_eq!(out.0.lock().expect("not poisoned").1, b"last words\n");
    }

    #[test]
    fn lines_past_the_bound_are_dropped_and_counted() {
        let shared = Shared::new("test");
        // No writer thread: nothing drains, as with a stuck stdout.
        let mut writer = BatchedStdout {
            shared: shared.clone(),
        };
        let line = vec![b'x'; 1024];
        for _ in 0..(MAX_PENDING_BYTES / 1024 + 10) {
            writer.write_all(&line).expect("never an error");
        }
        let pending = shared.lock();
        assert_eq!(pending.lines.len(), MAX_PENDING_BYTES);
        assert_eq!(pending.dropped, 10);
    }
}
