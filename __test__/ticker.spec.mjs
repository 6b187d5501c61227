// The epoch ticker (the clock of timeoutMs, cpuTimeMs, async calls and the profiler) ticks only
// while a call needs it: a process holding a thousand limited sandboxes uses no CPU while they
// are idle, and limits still hold for the first call after an idle spell, for calls longer than
// the ticker's idle delay and across a long JS import. Linux: the ticker thread's CPU time is
// read from /proc/self/task.
import { readdirSync, readFileSync } from 'node:fs'

import test from 'ava'

import { Sandbox } from 'wasm-memory-sandbox'

const text = `(module
  (import "env" "wait" (func $wait))
  (func (export "id") (param i32) (result i32) local.get 0)
  (func (export "spin") (loop br 0))
  (func (export "wait_then_spin") call $wait (loop br 0)))`

/** CPU time of the ticker thread so far, in milliseconds (0 before it exists). */
function tickerCpuMs() {
  const ticks = 100 // USER_HZ on Linux
  for (const task of readdirSync('/proc/self/task')) {
    const stat = readFileSync(`/proc/self/task/${task}/stat`, 'utf8')
    if (!stat.includes('(wasm-sandbox-ep')) continue
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / ticks
  }
  return 0
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))
const busy = (ms) => {
  const end = performance.now() + ms
  while (performance.now() < end);
}

test.serial('a thousand idle sandboxes with timeoutMs or cpuTimeMs cost the ticker no CPU', async (t) => {
  const sandboxes = Array.from(
    { length: 1000 },
    (_, index) =>
      new Sandbox(text, { imports: { env: { wait() {} } }, ...(index % 2 ? { timeoutMs: 100 } : { cpuTimeMs: 100 }) }),
  )
  for (const sandbox of sandboxes) sandbox.call('id', 1)
  // The ticker keeps ticking for 200 ms after the last call, then sleeps.
  await sleep(400)
  const before = tickerCpuMs()
  await sleep(2000)
  const used = tickerCpuMs() - before
  t.log(`ticker CPU over 2 s idle: ${used} ms (it ticked 1000 times a second before it could sleep: ~50 ms)`)
  t.true(used <= 10, `the ticker used ${used} ms`)
  // The first call after the idle spell wakes it: a runaway guest still stops at its limit.
  const started = performance.now()
  t.throws(() => sandboxes[1].call('spin'), { code: 'ERR_WASM_TIMEOUT' })
  const elapsed = performance.now() - started
  t.true(elapsed >= 95 && elapsed < 1000, `stopped after ${elapsed} ms`)
  t.throws(() => sandboxes[0].call('spin'), { code: 'ERR_WASM_CPU_LIMIT' })
})

test.serial('a call longer than the ticker’s idle delay is still stopped at its limit', (t) => {
  const sandbox = new Sandbox(text, { timeoutMs: 700, imports: { env: { wait() {} } } })
  const started = performance.now()
  t.throws(() => sandbox.call('spin'), { code: 'ERR_WASM_TIMEOUT' })
  const elapsed = performance.now() - started
  t.true(elapsed >= 695 && elapsed < 2000, `stopped after ${elapsed} ms`)
})

test.serial('a JS import longer than the idle delay counts toward timeoutMs', (t) => {
  const sandbox = new Sandbox(text, { timeoutMs: 1000, imports: { env: { wait: () => busy(1200) } } })
  const started = performance.now()
  t.throws(() => sandbox.call('wait_then_spin'), { code: 'ERR_WASM_TIMEOUT' })
  const elapsed = performance.now() - started
  // The limit passed while the import ran: the guest stops as soon as it is back in wasm, not
  // a whole timeoutMs later (2200 ms) as it would if the import's time did not count.
  t.true(elapsed >= 1200 && elapsed < 2000, `stopped after ${elapsed} ms`)
})
