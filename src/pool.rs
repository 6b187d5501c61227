//! The threads that run guests off the JS thread (`callAsync`, `runAsync`).
//!
//! The addon owns them: libuv's pool (4 threads by default) is what `fs`, `dns` and `zlib` run
//! on, and a guest holding one of those for seconds would stall them. Threads start on demand,
//! up to the pool's size (the machine's cores unless set), and idle ones wait for the next job;
//! jobs beyond the size wait in order.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

/// How long an idle thread watches for the next job before it sleeps: a job that comes within
/// it starts without the few microseconds of waking a sleeping thread.
const SPIN_BEFORE_SLEEP: Duration = Duration::from_micros(50);

/// Jobs queued and not yet taken, readable without the lock (for spinning threads).
static QUEUED: AtomicUsize = AtomicUsize::new(0);

/// Native stack of a pool thread: the guest's allowance (`stack::MAX_WASM_STACK`) plus room for
/// wasmtime's and the host's own frames, with a wide margin.
const POOL_THREAD_STACK: usize = 8 * 1024 * 1024;

/// Environment variable read when the pool is first used: its size.
pub const POOL_SIZE_VARIABLE: &str = "WASM_MEMORY_SANDBOX_THREADS";

/// Largest pool size accepted.
pub const MAX_POOL_SIZE: usize = 256;

type Job = Box<dyn FnOnce() + Send>;

#[derive(Default)]
struct Queue {
    jobs: VecDeque<Job>,
    /// Threads alive (running a job or waiting for one).
    threads: usize,
    /// Threads waiting for a job (spinning or asleep).
    idle: usize,
    /// Of them, the one spinning (at most one: on a machine with few cores, several spinning
    /// threads took the cores from the JS thread and the guest they were waiting for).
    spinning: usize,
    /// Of them, those asleep on the condition variable: only they need its system call.
    sleeping: usize,
    size: usize,
}

struct Pool {
    queue: Mutex<Queue>,
    wake: Condvar,
}

fn pool() -> &'static Pool {
    static POOL: OnceLock<Pool> = OnceLock::new();
    POOL.get_or_init(|| Pool {
        queue: Mutex::new(Queue {
            size: default_size(),
            ..Queue::default()
        }),
        wake: Condvar::new(),
    })
}

fn default_size() -> usize {
    std::env::var(POOL_SIZE_VARIABLE)
        .ok()
        .and_then(|value| value.trim().parse::<usize>().ok())
        .filter(|&size| (1..=MAX_POOL_SIZE).contains(&size))
        .unwrap_or_else(|| thread::available_parallelism().map_or(2, |cores| cores.get()))
}

/// The pool's size: how many guest calls run at once.
#[cfg_attr(test, allow(dead_code))] // read by the glue, not by the core's tests
pub fn size() -> usize {
    lock().size
}

/// Sets the pool's size (1 to `MAX_POOL_SIZE`). Growing starts threads as jobs need them;
/// shrinking lets surplus threads end once their current job is done.
pub fn set_size(size: usize) {
    let mut queue = lock();
    queue.size = size.clamp(1, MAX_POOL_SIZE);
    drop(queue);
    // Surplus idle threads notice and end; waiting jobs may now get a thread.
    pool().wake.notify_all();
    start_threads_for_waiting_jobs();
}

/// Runs `job` on a pool thread, now or after the jobs queued before it.
/// Fails only if the operating system refuses a new thread and none is running.
pub fn spawn(job: impl FnOnce() + Send + 'static) -> Result<(), String> {
    let mut queue = lock();
    queue.jobs.push_back(Box::new(job));
    QUEUED.fetch_add(1, Ordering::Release);
    // Idle threads that have not yet taken the jobs queued before this one are spoken for.
    if queue.idle >= queue.jobs.len() {
        // A spinning thread sees the job by itself (`QUEUED`); beyond it, one asleep needs waking.
        let wake = queue.jobs.len() > queue.spinning && queue.sleeping > 0;
        drop(queue);
        if wake {
            pool().wake.notify_one();
        }
        return Ok(());
    }
    if queue.threads < queue.size {
        queue.threads += 1;
        drop(queue);
        if let Err(error) = start_thread() {
            let mut queue = lock();
            queue.threads -= 1;
            if queue.threads == 0 {
                // Nobody will ever take it: hand the failure back (the job is dropped here).
                queue.jobs.pop_back();
                QUEUED.fetch_sub(1, Ordering::Release);
                return Err(format!("could not start a thread for the guest: {error}"));
            }
        }
    }
    Ok(())
}

fn start_threads_for_waiting_jobs() {
    loop {
        let mut queue = lock();
        if queue.jobs.len() <= queue.idle || queue.threads >= queue.size {
            return;
        }
        queue.threads += 1;
        drop(queue);
        if start_thread().is_err() {
            lock().threads -= 1;
            return;
        }
    }
}

fn start_thread() -> std::io::Result<()> {
    thread::Builder::new()
        .name("wasm-sandbox".to_owned())
        .stack_size(POOL_THREAD_STACK)
        .spawn(work)
        .map(drop)
}

fn work() {
    let pool = pool();
    let mut queue = lock();
    loop {
        if queue.threads > queue.size {
            queue.threads -= 1;
            return;
        }
        if let Some(job) = queue.jobs.pop_front() {
            QUEUED.fetch_sub(1, Ordering::Release);
            drop(queue);
            // A job catches its own panics (it must answer its caller); this guard only keeps the
            // thread's bookkeeping right if one escapes.
            let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(job));
            queue = lock();
            continue;
        }
        queue.idle += 1;
        let spin = queue.spinning == 0;
        if spin {
            queue.spinning += 1;
            drop(queue);
            let until = Instant::now() + SPIN_BEFORE_SLEEP;
            while QUEUED.load(Ordering::Acquire) == 0 && Instant::now() < until {
                std::hint::spin_loop();
            }
            queue = lock();
            queue.spinning -= 1;
        }
        if queue.jobs.is_empty() && queue.threads <= queue.size {
            queue.sleeping += 1;
            queue = pool.wake.wait(queue).unwrap_or_else(|poisoned| poisoned.into_inner());
            queue.sleeping -= 1;
        }
        queue.idle -= 1;
    }
}

fn lock() -> std::sync::MutexGuard<'static, Queue> {
    // The queue is left consistent at every unlock, so a poisoned lock is still usable.
    pool().queue.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::{Duration, Instant};

    #[test]
    fn jobs_run_in_parallel_up_to_the_size_and_all_finish() {
        set_size(2);
        let running = Arc::new(AtomicUsize::new(0));
        let most = Arc::new(AtomicUsize::new(0));
        let done = Arc::new(AtomicUsize::new(0));
        for _ in 0..8 {
            let (running, most, done) = (running.clone(), most.clone(), done.clone());
            spawn(move || {
                let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                most.fetch_max(now, Ordering::SeqCst);
                thread::sleep(Duration::from_millis(20));
                running.fetch_sub(1, Ordering::SeqCst);
                done.fetch_add(1, Ordering::SeqCst);
            })
            .unwrap();
        }
        let started = Instant::now();
        while done.load(Ordering::SeqCst) < 8 && started.elapsed() < Duration::from_secs(10) {
            thread::sleep(Duration::from_millis(5));
        }
        assert_eq!(done.load(Ordering::SeqCst), 8);
        assert_eq!(most.load(Ordering::SeqCst), 2);
    }
}
