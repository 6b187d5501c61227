'use strict'

// wasi:http for components, on the JS side: the guest's outgoing requests sent with Node's HTTP
// client (or the embedder's `fetch`), and `httpHandler()`'s request listener, which serves each
// request with a fresh instance. The native side streams bytes both ways with bounded buffers:
// `data` events carry a credit given back once Node has taken the bytes, and `httpPush` says when
// to pause a source until a `resume` event.

/** The stream of a served request's body and of its response's body. */
const SERVED = 0

function codedError(Class, code, message) {
  const error = new Class(message)
  error.code = code
  return error
}

/** Validates the `http` instance option: `{ allowedHosts?, fetch? }`. */
function parseHttpOption(value) {
  if (value === undefined) return { allowedHosts: null, fetch: undefined }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw codedError(TypeError, 'ERR_INVALID_ARG_TYPE', 'options.http must be an object: { allowedHosts?, fetch? }')
  }
  for (const key of Object.keys(value)) {
    if (key !== 'allowedHosts' && key !== 'fetch') {
      throw codedError(
        TypeError,
        'ERR_INVALID_ARG_TYPE',
        `Unknown option "http.${key}": the options are allowedHosts, fetch`,
      )
    }
  }
  const { allowedHosts, fetch } = value
  if (fetch !== undefined && typeof fetch !== 'function') {
    throw codedError(TypeError, 'ERR_INVALID_ARG_TYPE', "options.http.fetch must be a function of fetch's shape")
  }
  if (
    allowedHosts !== undefined &&
    (!Array.isArray(allowedHosts) || !allowedHosts.every((host) => typeof host === 'string'))
  ) {
    throw codedError(TypeError, 'ERR_INVALID_ARG_TYPE', 'options.http.allowedHosts must be an array of strings')
  }
  // With `fetch` alone every request goes to it; `allowedHosts` narrows either way.
  return { allowedHosts: allowedHosts ?? (fetch ? ['*'] : []), fetch }
}

/** Flat `[name, value, ...]` as `[[name, value], ...]`. */
function pairs(flat) {
  const result = []
  for (let index = 0; index + 1 < flat.length; index += 2) result.push([flat[index], flat[index + 1]])
  return result
}

/** The wasi:http error-code for a Node client error. */
function errorCode(error) {
  switch (error?.code) {
    case 'ECONNREFUSED':
      return 'connection-refused'
    case 'ECONNRESET':
    case 'EPIPE':
    case 'UND_ERR_SOCKET':
      return 'connection-terminated'
    case 'ETIMEDOUT':
    case 'UND_ERR_CONNECT_TIMEOUT':
      return 'connection-timeout'
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return 'dns'
    case 'EHOSTUNREACH':
    case 'ENETUNREACH':
      return 'destination-unavailable'
    case 'ERR_INVALID_URL':
      return 'uri-invalid'
    case 'HPE_INVALID_CONSTANT':
    case 'HPE_INVALID_HEADER_TOKEN':
      return 'protocol'
    default:
      if (typeof error?.code === 'string' && /CERT|SELF_SIGNED|UNABLE_TO_VERIFY/.test(error.code))
        return 'tls-certificate'
      return 'internal'
  }
}

/**
 * The JS side of one instance's HTTP exchanges: the sink its native core sends events to, the
 * outgoing requests in flight, and the request it serves, if any.
 */
class HttpLink {
  #core
  #fetch
  #exchanges = new Map()
  /** The served request's response side (`serve()`). */
  served = null

  constructor(core, fetch) {
    this.#core = core
    this.#fetch = fetch
    // Referenced weakly by the native instance: the facade keeps this link (and so the sink)
    // alive with the instance.
    this.sink = (event) => {
      try {
        this.#dispatch(event)
      } catch (error) {
        // A failure here must not reach the native caller; the exchange fails instead.
        this.#fail(event, error)
      }
    }
    core.setHttpSink(this.sink)
  }

  #dispatch(event) {
    switch (event.type) {
      case 'response':
        // The body's first chunk and its end may come in the same event (see deliver_event).
        this.served?.head(event.status, event.headers)
        // With its end, the chunk's credit is not wanted back: the body is over.
        if (event.chunk !== undefined) this.served?.write(event.chunk, event.end ? 0 : event.credit)
        if (event.end) this.served?.end(event.trailers)
        return
      case 'outgoing':
        return this.#fetch ? this.#sendWithFetch(event) : this.#sendWithNode(event)
      case 'data':
        return this.#target(event.stream)?.write(event.chunk, event.credit)
      case 'end':
        return this.#target(event.stream)?.end(event.trailers)
      case 'failed':
        return this.#target(event.stream)?.fail(event.message)
      case 'resume':
        return this.#target(event.stream)?.resume()
    }
  }

  #target(stream) {
    return stream === SERVED ? this.served : this.#exchanges.get(stream)
  }

  #fail(event, error) {
    const stream = event?.stream ?? event?.id
    if (stream === undefined) return
    if (stream === SERVED) this.served?.fail(String(error?.message ?? error))
    else {
      this.#exchanges.get(stream)?.fail(String(error?.message ?? error))
      this.#core.httpReject(stream, 'internal', String(error?.message ?? error))
    }
  }

  /** Ends every exchange still open (the instance is done). */
  close() {
    for (const exchange of this.#exchanges.values()) exchange.fail('the guest is gone')
    this.#exchanges.clear()
  }

  #sendWithNode({ id, method, url, headers }) {
    const core = this.#core
    const exchanges = this.#exchanges
    let target
    try {
      target = new URL(url)
    } catch (error) {
      return core.httpReject(id, 'uri-invalid', error.message)
    }
    const client = target.protocol === 'https:' ? require('node:https') : require('node:http')
    let response = null
    let answered = false
    const request = client.request(target, { method, headers })
    const done = () => exchanges.delete(id)
    request.on('response', (incoming) => {
      response = incoming
      answered = true
      core.httpRespond(id, incoming.statusCode, incoming.rawHeaders)
      incoming.on('data', (chunk) => {
        if (!core.httpPush(id, chunk)) incoming.pause()
      })
      incoming.on('end', () => {
        core.httpEnd(id, incoming.rawTrailers, null)
        done()
      })
      incoming.on('error', (error) => {
        core.httpEnd(id, null, error.message)
        done()
      })
    })
    request.on('error', (error) => {
      if (answered) core.httpEnd(id, null, error.message)
      else core.httpReject(id, errorCode(error), error.message)
      answered = true
      done()
    })
    exchanges.set(id, {
      write(chunk, credit) {
        request.write(chunk, () => core.httpCredit(id, credit))
      },
      end(trailers) {
        if (trailers?.length) {
          try {
            request.addTrailers(pairs(trailers))
          } catch {
            // Not chunked (the guest set a length): Node cannot send trailers then.
          }
        }
        request.end()
      },
      fail(message) {
        request.destroy(new Error(message))
      },
      resume() {
        response?.resume()
      },
    })
  }

  #sendWithFetch({ id, method, url, headers }) {
    const core = this.#core
    const exchanges = this.#exchanges
    let controller = null
    let owed = 0
    const repay = () => {
      if (owed > 0) core.httpCredit(id, owed)
      owed = 0
    }
    const hasBody = method !== 'GET' && method !== 'HEAD'
    const body = hasBody
      ? new ReadableStream({
          start(started) {
            controller = started
          },
          pull: repay,
        })
      : undefined
    let resumed = null
    exchanges.set(id, {
      write(chunk, credit) {
        if (!controller) return core.httpCredit(id, credit)
        controller.enqueue(new Uint8Array(chunk))
        owed += credit
        if (controller.desiredSize > 0) repay()
      },
      end() {
        controller?.close()
      },
      fail(message) {
        controller?.error(new Error(message))
      },
      resume() {
        resumed?.()
      },
    })
    const run = async () => {
      const request = new Request(url, { method, headers: pairs(headers), body, duplex: hasBody ? 'half' : undefined })
      const response = await this.#fetch(request)
      if (response === null || typeof response !== 'object' || typeof response.status !== 'number') {
        throw new TypeError('http.fetch must return (a Promise of) a Response')
      }
      const flat = []
      for (const [name, value] of new Headers(response.headers ?? {})) flat.push(name, value)
      core.httpRespond(id, response.status, flat)
      if (response.body) {
        const reader = response.body.getReader()
        for (;;) {
          const { done, value } = await reader.read()
          if (done) break
          if (!core.httpPush(id, Buffer.from(value.buffer, value.byteOffset, value.byteLength))) {
            await new Promise((resolve) => (resumed = resolve))
          }
        }
      }
      core.httpEnd(id, null, null)
    }
    run()
      .catch((error) => {
        // Before the head, the guest's request fails; after it, its response body does.
        core.httpReject(id, errorCode(error?.cause ?? error), String(error?.message ?? error))
        core.httpEnd(id, null, String(error?.message ?? error))
      })
      .finally(() => exchanges.delete(id))
  }
}

/**
 * The first value of header `name` (lower case) in Node's `rawHeaders`: read there, since
 * `req.headers` builds an object of every header on first use, per request.
 */
function rawHeader(rawHeaders, name) {
  for (let index = 0; index < rawHeaders.length; index += 2) {
    const key = rawHeaders[index]
    if (key.length === name.length && key.toLowerCase() === name) return rawHeaders[index + 1]
  }
  return undefined
}

/** Validates `maxRequestBodyBytes`. */
function parseBodyLimit(value) {
  if (value === undefined) return undefined
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) {
    throw codedError(
      RangeError,
      'ERR_OUT_OF_RANGE',
      `options.maxRequestBodyBytes must be a non-negative safe integer; got ${String(value)}`,
    )
  }
  return value
}

/** A plain-text error response, if nothing has been sent yet. */
function replyError(res, status, message) {
  if (res.headersSent || res.destroyed) return false
  res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', 'content-length': Buffer.byteLength(message) })
  res.end(message)
  return true
}

/**
 * Serves `req` with `instance` (fresh, its HttpLink `link`): the guest's response streams to `res`;
 * a trap or a timeout before the head is a 500 or 504, after it the connection is cut.
 */
function serve({ instance, core, link }, req, res, { maxRequestBodyBytes, onError }) {
  let tooLarge = false
  let received = 0
  let ended = false
  // Credit for bytes Node buffered past its high-water mark, given back at its next 'drain'.
  let owed = 0
  const repay = () => {
    const credit = owed
    owed = 0
    if (credit > 0) core.httpCredit(SERVED, credit)
  }
  link.served = {
    head(status, headers) {
      if (!tooLarge) res.writeHead(status, headers)
    },
    write(chunk, credit) {
      if (tooLarge || res.destroyed) return core.httpCredit(SERVED, credit)
      const waiting = owed > 0
      owed += credit
      if (waiting) res.write(chunk)
      else if (res.write(chunk)) repay()
      else res.once('drain', repay)
    },
    end(trailers) {
      ended = true
      if (tooLarge) return
      if (trailers?.length) res.addTrailers(pairs(trailers))
      res.end()
    },
    fail(message) {
      res.destroy(new Error(message))
    },
    resume() {
      req.resume()
    },
  }
  const rejectBody = () => {
    tooLarge = true
    core.httpEnd(SERVED, null, 'body-size')
    // A guest that answered before reading its whole body has sent its head: the response is
    // then cut, as after any failure past the head, never left to look complete.
    if (!replyError(res, 413, 'request body too large\n')) res.destroy(new Error('the request body is too large'))
    instance.interrupt()
  }
  req.on('data', (chunk) => {
    if (tooLarge) return
    received += chunk.length
    if (maxRequestBodyBytes !== undefined && received > maxRequestBodyBytes) return rejectBody()
    if (!core.httpPush(SERVED, chunk)) req.pause()
  })
  req.on('end', () => core.httpEnd(SERVED, req.rawTrailers, null))
  req.on('error', (error) => core.httpEnd(SERVED, null, error.message))
  // A client that goes away ends its guest's work.
  res.on('close', () => {
    if (!res.writableFinished) instance.interrupt()
  })
  const authority = rawHeader(req.rawHeaders, 'host') ?? `${req.socket.localAddress}:${req.socket.localPort}`
  core
    .serveAsync(req.method, req.url, authority, req.rawHeaders)
    .then(
      () => {
        if (!ended && !replyError(res, 500, 'the guest did not finish its response\n') && !res.writableEnded) res.end()
      },
      (error) => {
        if (tooLarge) return
        if (res.writableFinished || (res.destroyed && !res.headersSent)) return
        onError?.(error, req)
        const timedOut = error?.code === 'ERR_WASM_TIMEOUT'
        if (!replyError(res, timedOut ? 504 : 500, timedOut ? 'the guest timed out\n' : 'the guest failed\n'))
          res.destroy(error)
      },
    )
    .finally(() => {
      link.close()
      instance.dispose()
    })
}

module.exports = { HttpLink, parseHttpOption, parseBodyLimit, rawHeader, serve, replyError }
