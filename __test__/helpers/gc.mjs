// Garbage collection for the GC child scripts (run with `node --expose-gc`).
import { setImmediate as nextTurn } from 'node:timers/promises'

/**
 * Collects until `ref` is cleared. `deref()` keeps its target alive until the current job ends,
 * so every gc() runs a turn after the last deref(); the turns also let Node run finalizers.
 */
export async function collect(ref) {
  for (let round = 0; round < 50; round++) {
    globalThis.gc()
    await nextTurn()
    if (ref.deref() === undefined) return true
    await nextTurn()
  }
  return false
}
