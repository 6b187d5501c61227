//! A compute-heavy WASI command for the benchmark: counts the primes below N (argv[1], default
//! 5,000,000) with a sieve, then hashes the sieve (FNV-1a) ROUNDS times (argv[2], default 20),
//! and prints both results. Runs a few hundred milliseconds; output is one line.

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let limit: usize = args.get(1).and_then(|n| n.parse().ok()).unwrap_or(5_000_000);
    let rounds: u32 = args.get(2).and_then(|n| n.parse().ok()).unwrap_or(20);
    let mut composite = vec![false; limit];
    let mut count = 0u32;
    for n in 2..limit {
        if !composite[n] {
            count += 1;
            let mut multiple = n * n;
            while multiple < limit {
                composite[multiple] = true;
                multiple += n;
            }
        }
    }
    let mut hash = 0xcbf2_9ce4_8422_2325u64;
    for round in 0..rounds {
        for (index, &is_composite) in composite.iter().enumerate() {
            hash ^= (is_composite as u64) ^ (index as u64).wrapping_mul(round as u64 + 1);
            hash = hash.wrapping_mul(0x100_0000_01b3);
        }
    }
    println!("{count} primes below {limit}, hash {hash:016x}");
}
