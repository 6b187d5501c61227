// `stream<u8>` and `future<T>` values as JS sees them, as jco's WASI 0.3 mapping types them: a
// stream the guest gives is a web `ReadableStream` (of `Uint8Array` chunks), a future a Promise.
// JS gives a stream as a `ReadableStream`, an async or sync iterable of byte chunks (a Node
// `Readable` is one) or one `Uint8Array`, and a future as a Promise (or a plain value). The
// native glue (src/js/component/transmit.rs) calls `hook(op, id, value, message)`; the bytes
// move through `transmitPush`/`transmitEnd` (toward the guest, pausing when a push says so) and
// `transmitCredit`/`transmitCancel` (toward JS: the guest sends only what JS has room for).
'use strict'

/** Whether `value` can feed a `stream<u8>`. */
function isByteSource(value) {
  if (value === null || (typeof value !== 'object' && typeof value !== 'function')) return false
  if (ArrayBuffer.isView(value) || value instanceof ArrayBuffer) return true
  return (
    typeof value.getReader === 'function' ||
    typeof value[Symbol.asyncIterator] === 'function' ||
    typeof value[Symbol.iterator] === 'function'
  )
}

/** A chunk of a JS stream source as bytes; `undefined` for what is not bytes. */
function chunkBytes(chunk) {
  if (chunk instanceof Uint8Array) return chunk
  if (ArrayBuffer.isView(chunk)) return new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength)
  if (chunk instanceof ArrayBuffer) return new Uint8Array(chunk)
  if (typeof chunk === 'string') return Buffer.from(chunk)
  return undefined
}

/** The chunks of `source`, as an async iterable. */
function chunksOf(source) {
  if (ArrayBuffer.isView(source) || source instanceof ArrayBuffer) return [source]
  if (typeof source[Symbol.asyncIterator] === 'function' || typeof source[Symbol.iterator] === 'function') return source
  // A ReadableStream without async iteration (another realm's, or an old one).
  return {
    async *[Symbol.asyncIterator]() {
      const reader = source.getReader()
      try {
        for (;;) {
          const { done, value } = await reader.read()
          if (done) return
          yield value
        }
      } finally {
        reader.releaseLock()
      }
    },
  }
}

/**
 * The hook of one instance's native core, and what the facade's calls need of it: `returns`, the
 * async calls whose value may come before they end (a value holding streams still open).
 */
function transmitHook(core) {
  const readables = new Map() // stream toward JS: its bytes, end and reader
  const feeders = new Map() // stream toward the guest: its pump's state
  const promises = new Map() // future toward JS
  const returns = []

  const readable = (id) => {
    let state = readables.get(id)
    if (state === undefined) {
      state = {
        id,
        chunks: [],
        ended: false,
        error: undefined,
        wake: undefined,
        stream: undefined,
        controller: undefined,
      }
      readables.set(id, state)
    }
    return state
  }
  // Gives a waiting reader what came (a chunk, the end or the error): a pull that resolves
  // without enqueueing is not called again, so what arrives later is enqueued here. From the
  // check phase: Node runs many deliveries back to back in one turn of its event loop, so a
  // reader woken in each would keep a fast guest's stream flowing with timers starved.
  const wake = (state) => {
    if (state.wake === undefined || state.waking) return
    state.waking = true
    setImmediate(() => {
      state.waking = false
      const resume = state.wake
      if (resume === undefined) return
      state.wake = undefined
      serve(state)
      resume()
    })
  }
  const promise = (id) => {
    let state = promises.get(id)
    if (state === undefined) {
      state = {}
      state.promise = new Promise((resolve, reject) => {
        state.resolve = resolve
        state.reject = reject
      })
      // A Promise nobody awaits must not be an unhandled rejection when its call fails.
      state.promise.catch(() => {})
      promises.set(id, state)
    }
    return state
  }

  // One step of a reader's pull: a chunk (its bytes credited back to the guest), the end or the
  // error; `false` when nothing has come yet.
  const serve = (state) => {
    const controller = state.controller
    if (state.chunks.length > 0) {
      const chunk = state.chunks.shift()
      controller.enqueue(chunk)
      core.transmitCredit(state.id, chunk.byteLength)
      return true
    }
    if (state.error !== undefined) {
      readables.delete(state.id)
      controller.error(state.error)
      return true
    }
    if (state.ended) {
      readables.delete(state.id)
      controller.close()
      return true
    }
    return false
  }

  const makeReadable = (id) => {
    const state = readable(id)
    state.stream = new ReadableStream(
      {
        start(controller) {
          state.controller = controller
        },
        pull() {
          if (serve(state)) return undefined
          return new Promise((resolve) => {
            state.wake = resolve
          })
        },
        cancel() {
          readables.delete(id)
          state.wake = undefined
          core.transmitCancel(id)
        },
      },
      { highWaterMark: 0 },
    )
    return state.stream
  }

  const feed = (id, source) => {
    const feeder = { cancelled: false, resume: undefined }
    feeders.set(id, feeder)
    const push = (bytes) => {
      if (core.transmitPush(id, bytes)) return undefined
      return new Promise((resolve) => {
        feeder.resume = resolve
      })
    }
    ;(async () => {
      try {
        for await (const chunk of chunksOf(source)) {
          if (feeder.cancelled) break
          const bytes = chunkBytes(chunk)
          if (bytes === undefined) break // not bytes: the stream ends here (README)
          if (bytes.byteLength > 0) await push(bytes)
          if (feeder.cancelled) break
        }
      } catch {
        // A failing source ends the stream early: a WIT stream carries no error.
      } finally {
        feeders.delete(id)
        if (!feeder.cancelled) core.transmitEnd(id)
      }
    })()
  }

  const stopFeeding = (id) => {
    const feeder = feeders.get(id)
    if (feeder === undefined) return false
    feeder.cancelled = true
    const resume = feeder.resume
    feeder.resume = undefined
    resume?.()
    return true
  }

  const hook = (op, id, value, message) => {
    switch (op) {
      case 'source':
        return isByteSource(value)
      case 'feed':
        return feed(id, value)
      case 'await':
        Promise.resolve(value).then(
          (settled) => core.transmitSettle(id, settled, true),
          (reason) => core.transmitSettle(id, String(reason?.message ?? reason), false),
        )
        return undefined
      case 'readable':
        return makeReadable(id)
      case 'promise':
        return promise(id).promise
      case 'data': {
        const state = readable(id)
        state.chunks.push(value)
        return wake(state)
      }
      case 'end': {
        const state = readable(id)
        if (message !== undefined) state.error = new Error(message)
        state.ended = true
        return wake(state)
      }
      case 'resolve': {
        const state = promise(id)
        promises.delete(id)
        return state.resolve(value)
      }
      case 'reject': {
        const state = promise(id)
        promises.delete(id)
        return state.reject(Object.assign(new Error(message), { code: 'ERR_WASM_FUTURE_DROPPED' }))
      }
      case 'resume': {
        const feeder = feeders.get(id)
        const resume = feeder?.resume
        if (feeder) feeder.resume = undefined
        return resume?.()
      }
      case 'cancel':
        // The guest let go of a stream JS feeds (a future JS settles needs nothing stopped).
        stopFeeding(id)
        return undefined
      case 'close': {
        // The call that owned the channel is over (it failed): whatever is still open fails.
        if (stopFeeding(id)) return undefined
        const failure = Object.assign(new Error(message), { code: value })
        const future = promises.get(id)
        if (future !== undefined) {
          promises.delete(id)
          return future.reject(failure)
        }
        const state = readable(id)
        if (state.stream === undefined) return readables.delete(id)
        state.error = failure
        state.chunks.length = 0
        return wake(state)
      }
      case 'returned': {
        const entry = returns.shift()
        if (entry === undefined) return undefined
        entry.done = true
        return message === undefined ? entry.resolve(value) : entry.reject(new Error(message))
      }
      default:
        return undefined
    }
  }

  /**
   * Calls export `index` of `core` asynchronously: a Promise that settles with its value as soon
   * as the guest returns it, which may be before the call ends (its streams still flowing).
   */
  const call = (index, args) => {
    const entry = { done: false }
    const settled = new Promise((resolve, reject) => {
      entry.resolve = resolve
      entry.reject = reject
    })
    returns.push(entry)
    const finish = (settle) => (outcome) => {
      if (entry.done) return
      entry.done = true
      const at = returns.indexOf(entry)
      if (at >= 0) returns.splice(at, 1)
      settle(outcome)
    }
    core.callAsync(index, args).then(finish(entry.resolve), finish(entry.reject))
    return settled
  }

  return { hook, call }
}

module.exports = { transmitHook }
