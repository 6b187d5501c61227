// A small, dependency-free timing harness: each operation runs in batches, and the median of
// the batches' per-operation times is reported. Comparisons run side by side in one process.

const now = () => process.hrtime.bigint()

/**
 * Median nanoseconds per call of `operation` over `samples` batches of `batch` calls.
 * `operation` gets the index within the batch.
 */
export function measure(operation, { batch = 10_000, samples = 25, warmup = 3 } = {}) {
  const run = freshLoop()
  const perOperation = []
  for (let sample = 0; sample < samples + warmup; sample++) {
    const started = now()
    run(operation, batch)
    const elapsed = Number(now() - started) / batch
    if (sample >= warmup) perOperation.push(elapsed)
  }
  return median(perOperation)
}

/**
 * A new loop function for each measurement. A loop shared by all of them sees a different
 * `operation` each time, its call site goes megamorphic after a few, and every operation measured
 * from then on pays a few nanoseconds of call overhead that the first ones did not: the floors,
 * measured first, would be timed faster than what is compared with them. A fresh function has
 * its own feedback, so every operation is inlined into its loop alike.
 */
function freshLoop() {
  return new Function('operation', 'batch', 'for (let index = 0; index < batch; index++) operation(index)')
}

/** Like `measure`, for operations that are async or need their own loop: `run(batch)` times itself. */
export async function measureBatches(run, { batch, samples = 9, warmup = 1 }) {
  const perOperation = []
  for (let sample = 0; sample < samples + warmup; sample++) {
    const nanoseconds = await run(batch)
    if (sample >= warmup) perOperation.push(nanoseconds / batch)
  }
  return median(perOperation)
}

export function formatTime(nanoseconds) {
  if (nanoseconds >= 1e6) return `${(nanoseconds / 1e6).toFixed(2)} ms`
  if (nanoseconds >= 1e3) return `${(nanoseconds / 1e3).toFixed(2)} us`
  return `${nanoseconds.toFixed(1)} ns`
}

/**
 * Medians of several operations measured in interleaved rounds (each round times every
 * operation once, in turn), for operations whose ratios are reported. Timed one after another,
 * whatever runs first gets the machine at its freshest (on this 2-core VM the first operation
 * of a process was timed ~15% faster than the same one later), which would favour one side.
 */
export function measureInterleaved(operations, { rounds = 7, ...options } = {}) {
  const names = Object.keys(operations)
  const perRound = Object.fromEntries(names.map((name) => [name, []]))
  for (let round = 0; round < rounds; round++) {
    for (const name of names) perRound[name].push(measure(operations[name], options))
  }
  return Object.fromEntries(names.map((name) => [name, median(perRound[name])]))
}

/**
 * Medians of operations too slow or too heavy for `measureInterleaved`'s batches: each round runs
 * every operation `batch` times in turn, then calls `between()` outside the timing (the WASI rows
 * collect garbage there: node:wasi instances are freed only by GC, and V8 crashes past a few
 * hundred uncollected wasm memories on this machine).
 */
export function measureRounds(operations, { batch, rounds = 7, warmup = 1, between = () => {} }) {
  const names = Object.keys(operations)
  const perRound = Object.fromEntries(names.map((name) => [name, []]))
  for (let round = 0; round < rounds + warmup; round++) {
    for (const name of names) {
      const operation = operations[name]
      const started = now()
      for (let index = 0; index < batch; index++) operation(index)
      const elapsed = Number(now() - started) / batch
      between()
      if (round >= warmup) perRound[name].push(elapsed)
    }
  }
  return Object.fromEntries(names.map((name) => [name, median(perRound[name])]))
}

function median(values) {
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.floor(sorted.length / 2)]
}
