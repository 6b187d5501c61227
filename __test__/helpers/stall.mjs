// How long the event loop stalls while some work runs, for the specs of compiles that must not
// block it.

/**
 * Runs `work()` with a 5 ms timer ticking; resolves to its value, the longest gap between ticks
 * (`longest`, ms) and the time it took (`elapsed`, ms). Waits 30 ms after, so a stall that ended
 * just now is seen.
 */
export async function longestStall(work) {
  let last = performance.now()
  let longest = 0
  const ticker = setInterval(() => {
    const now = performance.now()
    longest = Math.max(longest, now - last)
    last = now
  }, 5)
  const started = performance.now()
  try {
    const value = await work()
    await new Promise((resolve) => setTimeout(resolve, 30))
    return { value, longest, elapsed: performance.now() - started }
  } finally {
    clearInterval(ticker)
  }
}
