//! A WASI 0.3 command (`wasi:cli/run@0.3.0`, an async export), one subcommand per thing the
//! tests check:
//!
//! - `hello`: prints its arguments on stdout through a WASI 0.3 stream, and a line on stderr
//!   through Rust std (WASI 0.2), so both WASI versions serve one guest
//! - `stream BYTES`: writes BYTES bytes of `y` to stdout through a WASI 0.3 stream, 64 KiB a
//!   write, then `done` on stderr
//! - `sleep MS`: waits MS milliseconds on WASI 0.3's monotonic clock (an async import), then
//!   prints `woke`
//! - `fail`: returns an error from `run` (exit code 1)
//! - `exit CODE`: exits with CODE through `wasi:cli/exit#exit-with-code`
//! - `spin`: loops forever

use wasip3::wit_stream;

wasip3::cli::command::export!(Command);

struct Command;

impl wasip3::exports::cli::run::Guest for Command {
    async fn run() -> Result<(), ()> {
        let args = wasip3::cli::environment::get_arguments();
        let command = args.get(1).map(String::as_str).unwrap_or("hello");
        let number = || args.get(2).and_then(|value| value.parse::<u64>().ok()).unwrap_or(0);
        match command {
            "hello" => {
                write_stdout(format!("hello from WASI 0.3, args: {args:?}\n").into_bytes()).await;
                eprintln!("a line on stderr through WASI 0.2");
            }
            "stream" => {
                let total = number() as usize;
                let (mut tx, rx) = wit_stream::new();
                futures::join!(
                    async { wasip3::cli::stdout::write_via_stream(rx).await.unwrap() },
                    async {
                        let mut written = 0;
                        while written < total {
                            let length = (total - written).min(65_536);
                            let remaining = tx.write_all(vec![b'y'; length]).await;
                            assert!(remaining.is_empty(), "stdout closed early");
                            written += length;
                        }
                        drop(tx);
                    }
                );
                eprintln!("done");
            }
            "sleep" => {
                wasip3::clocks::monotonic_clock::wait_for(number() * 1_000_000).await;
                write_stdout(b"woke\n".to_vec()).await;
            }
            "fail" => return Err(()),
            "exit" => wasip3::cli::exit::exit_with_code(number() as u8),
            "spin" => {
                let mut counter = 0u64;
                loop {
                    counter = std::hint::black_box(counter.wrapping_add(1));
                }
            }
            other => {
                eprintln!("unknown command {other:?}");
                return Err(());
            }
        }
        Ok(())
    }
}

/// Writes `bytes` to stdout through a WASI 0.3 stream.
async fn write_stdout(bytes: Vec<u8>) {
    let (mut tx, rx) = wit_stream::new();
    futures::join!(
        async { wasip3::cli::stdout::write_via_stream(rx).await.unwrap() },
        async {
            let remaining = tx.write_all(bytes).await;
            assert!(remaining.is_empty());
            drop(tx);
        }
    );
}

fn main() {}
