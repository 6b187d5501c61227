//! A small WASI command, one subcommand per thing the tests check:
//!
//! - `args`: prints each argument (argv[0] included) on its own line
//! - `env`: prints each environment variable as `KEY=value`, in the order given
//! - `cat`: copies stdin to stdout
//! - `read PATH`: prints the file at PATH
//! - `write PATH TEXT`: writes TEXT into the file at PATH (created or truncated)
//! - `ls DIR`: prints the names in DIR, sorted, one a line
//! - `exit CODE`: exits with CODE (after printing `exiting` to stderr)
//! - `spam BYTES`: writes BYTES bytes of `x` to stdout in 64 KiB writes, then reports on stderr
//!   how many writes failed
//! - `time`: prints the wall-clock seconds since the epoch and 16 random bytes in hex
//!
//! An error exits with code 1 and the message on stderr.

use std::io::{Read, Write};
use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    match run(&args) {
        Ok(code) => code,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::from(1)
        }
    }
}

fn run(args: &[String]) -> Result<ExitCode, String> {
    let command = args.get(1).map(String::as_str).unwrap_or("");
    let arg = |index: usize| args.get(index).ok_or_else(|| format!("{command}: argument {index} is missing"));
    let mut stdout = std::io::stdout().lock();
    match command {
        "args" => {
            for arg in args {
                writeln!(stdout, "{arg}").map_err(|e| e.to_string())?;
            }
        }
        "env" => {
            for (key, value) in std::env::vars() {
                writeln!(stdout, "{key}={value}").map_err(|e| e.to_string())?;
            }
        }
        "cat" => {
            let mut input = Vec::new();
            std::io::stdin().read_to_end(&mut input).map_err(|e| e.to_string())?;
            stdout.write_all(&input).map_err(|e| e.to_string())?;
        }
        "read" => {
            let path = arg(2)?;
            let text = std::fs::read(path).map_err(|e| format!("read {path}: {e}"))?;
            stdout.write_all(&text).map_err(|e| e.to_string())?;
        }
        "write" => {
            let path = arg(2)?;
            std::fs::write(path, arg(3)?).map_err(|e| format!("write {path}: {e}"))?;
        }
        "ls" => {
            let path = arg(2)?;
            let mut names: Vec<String> = std::fs::read_dir(path)
                .map_err(|e| format!("ls {path}: {e}"))?
                .map(|entry| entry.map(|entry| entry.file_name().to_string_lossy().into_owned()))
                .collect::<Result<_, _>>()
                .map_err(|e| format!("ls {path}: {e}"))?;
            names.sort();
            for name in names {
                writeln!(stdout, "{name}").map_err(|e| e.to_string())?;
            }
        }
        "exit" => {
            let code: i32 = arg(2)?.parse().map_err(|_| "exit: CODE must be an integer".to_owned())?;
            eprintln!("exiting");
            std::process::exit(code);
        }
        "spam" => {
            let total: u64 = arg(2)?.parse().map_err(|_| "spam: BYTES must be an integer".to_owned())?;
            let chunk = vec![b'x'; 65_536];
            let (mut written, mut failed) = (0u64, 0u64);
            while written < total {
                let length = chunk.len().min((total - written) as usize);
                // Not `write_all`: a failed write is counted, not retried.
                if stdout.write(&chunk[..length]).is_err() {
                    failed += 1;
                }
                written += length as u64;
            }
            eprintln!("{failed} writes failed");
        }
        "time" => {
            let seconds = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_err(|e| e.to_string())?
                .as_secs();
            let mut bytes = [0u8; 16];
            // Read through the WASI file API: std has no public random source.
            random(&mut bytes);
            let hex: String = bytes.iter().map(|byte| format!("{byte:02x}")).collect();
            writeln!(stdout, "{seconds} {hex}").map_err(|e| e.to_string())?;
        }
        other => return Err(format!("unknown command {other:?}")),
    }
    stdout.flush().map_err(|e| e.to_string())?;
    Ok(ExitCode::SUCCESS)
}

#[link(wasm_import_module = "wasi_snapshot_preview1")]
unsafe extern "C" {
    #[link_name = "random_get"]
    fn wasi_random_get(buffer: *mut u8, length: usize) -> u16;
}

fn random(bytes: &mut [u8]) {
    // SAFETY: the buffer is valid for writes of its length.
    let errno = unsafe { wasi_random_get(bytes.as_mut_ptr(), bytes.len()) };
    assert_eq!(errno, 0, "random_get failed");
}
