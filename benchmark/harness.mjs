// A small, dependency-free timing harness: each operation runs in batches, and the median of
// the batches' per-operation times is reported. Comparisons run side by side in one process.

const now = () => process.hrtime.bigint()

/**
 * Median nanoseconds per call of `operation` over `samples` batches of `batch` calls.
 * `operation` gets the index within the batch; `setup`/`teardown` run outside the timing.
 */
export function measure(operation, { batch = 10_000, samples = 25, warmup = 3 } = {}) {
  const perOperation = []
  for (let sample = 0; sample < samples + warmup; sample++) {
    const started = now()
    for (let index = 0; index < batch; index++) operation(index)
    const elapsed = Number(now() - started) / batch
    if (sample >= warmup) perOperation.push(elapsed)
  }
  perOperation.sort((a, b) => a - b)
  return perOperation[Math.floor(perOperation.length / 2)]
}

/** Like `measure`, for operations that are async or need their own loop: `run(batch)` times itself. */
export async function measureBatches(run, { batch, samples = 9, warmup = 1 }) {
  const perOperation = []
  for (let sample = 0; sample < samples + warmup; sample++) {
    const nanoseconds = await run(batch)
    if (sample >= warmup) perOperation.push(nanoseconds / batch)
  }
  perOperation.sort((a, b) => a - b)
  return perOperation[Math.floor(perOperation.length / 2)]
}

export function formatTime(nanoseconds) {
  if (nanoseconds >= 1e6) return `${(nanoseconds / 1e6).toFixed(2)} ms`
  if (nanoseconds >= 1e3) return `${(nanoseconds / 1e3).toFixed(2)} us`
  return `${nanoseconds.toFixed(1)} ns`
}
