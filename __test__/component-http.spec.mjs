// wasi:http: component.httpHandler() serving WASI 0.2 (`wasi:http/incoming-handler`) and WASI 0.3
// (`wasi:http/handler`) services through Node's http server, a fresh instance per request, bodies
// streamed both ways; failures as 500/504/413 with the server still serving; outgoing requests
// denied by default, allowed per host through Node's client, or handed to a `fetch` function.
import { spawn } from 'node:child_process'
import http from 'node:http'
import { fileURLToPath } from 'node:url'
import { once } from 'node:events'
import { randomBytes } from 'node:crypto'

import test from 'ava'

import { Component } from 'wasm-memory-sandbox'

import { guestPath } from './helpers/guests.mjs'

const services = {
  'WASI 0.2': Component.fromFile(guestPath('build/http.rust.component.wasm')),
  'WASI 0.3': Component.fromFile(guestPath('build/p3-http.rust.component.wasm')),
}
const fetchCommand = Component.fromFile(guestPath('build/http-fetch.rust.component.wasm'))

/** Serves `listener` on an ephemeral port for the test; its base URL. */
async function listen(t, listener) {
  const server = http.createServer(listener)
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  t.teardown(() => {
    server.closeAllConnections()
    server.close()
  })
  return `http://127.0.0.1:${server.address().port}`
}

/** An upstream server for outgoing requests: `/hello` answers, `/echo` echoes the body. */
async function upstream(t) {
  const seen = []
  const url = await listen(t, (req, res) => {
    seen.push({ method: req.method, url: req.url, headers: req.headers })
    if (req.url === '/echo') {
      res.writeHead(200, { 'content-type': 'application/octet-stream' })
      req.pipe(res)
    } else if (req.url === '/slow') {
      setTimeout(() => res.end('slow'), 400)
    } else if (req.url === '/hello') {
      res.writeHead(200, { 'content-type': 'text/plain' })
      res.end('hello from upstream')
    } else {
      res.writeHead(404)
      res.end()
    }
  })
  return { url, host: new URL(url).host, seen }
}

for (const [version, service] of Object.entries(services)) {
  test(`${version}: httpHandler() serves the component's response (status, headers, body)`, async (t) => {
    const url = await listen(t, service.httpHandler())
    const response = await fetch(`${url}/`)
    t.is(response.status, 200)
    t.is(response.headers.get('content-type'), 'text/plain')
    t.is(await response.text(), 'hello from wasm\n')
    const missing = await fetch(`${url}/no-such-route`)
    t.is(missing.status, 404)
  })

  test(`${version}: a 4 MiB request body streams through the guest and back byte for byte, headers both ways`, async (t) => {
    const url = await listen(t, service.httpHandler())
    const body = randomBytes(4 << 20)
    const response = await fetch(`${url}/echo`, {
      method: 'POST',
      body,
      headers: { 'content-type': 'application/x-test', 'x-echo': 'ping' },
    })
    t.is(response.status, 200)
    t.is(response.headers.get('x-echoed'), 'ping')
    t.true(Buffer.from(await response.arrayBuffer()).equals(body))
  })

  test(`${version}: each request gets a fresh instance with the wasi options (env)`, async (t) => {
    const url = await listen(t, service.httpHandler({ wasi: { env: { GREETING: 'bonjour' } } }))
    const answers = await Promise.all([1, 2, 3].map(() => fetch(`${url}/env?name=GREETING`).then((r) => r.text())))
    t.deepEqual(answers, ['bonjour', 'bonjour', 'bonjour'])
    t.is((await fetch(`${url}/env?name=HOME`)).status, 404)
  })

  test(`${version}: a trap before the response is a 500, reported to onError, and the server goes on`, async (t) => {
    const errors = []
    const url = await listen(t, service.httpHandler({ onError: (error) => errors.push(error.code) }))
    const trapped = await fetch(`${url}/trap`)
    t.is(trapped.status, 500)
    t.deepEqual(errors, ['ERR_WASM_TRAP'])
    t.is(await (await fetch(`${url}/`)).text(), 'hello from wasm\n')
  })

  test(`${version}: a trap after the guest set its response never reads as a complete response`, async (t) => {
    const url = await listen(t, service.httpHandler())
    // Cut if the head reached Node before the trap, a 500 if the trap came first.
    const outcome = await fetch(`${url}/trap-after-head`).then(
      (response) =>
        response.status === 500
          ? 500
          : response.text().then(
              () => 'complete',
              () => 'cut',
            ),
      () => 'cut',
    )
    t.true(outcome === 'cut' || outcome === 500, `got ${outcome}`)
    t.is((await fetch(`${url}/`)).status, 200)
  })

  test(`${version}: timeoutMs per request: a guest that spins gets a 504`, async (t) => {
    const url = await listen(t, service.httpHandler({ timeoutMs: 300 }))
    const started = Date.now()
    const response = await fetch(`${url}/spin`)
    t.is(response.status, 504)
    t.true(Date.now() - started < 5000)
    t.is((await fetch(`${url}/`)).status, 200)
  })

  // Serial: the process's CPU time is the measure, so no other test of this file runs meanwhile.
  test.serial(`${version}: a client that disconnects stops its guest`, async (t) => {
    const url = await listen(t, service.httpHandler())
    const controller = new AbortController()
    const request = fetch(`${url}/spin`, { signal: controller.signal }).catch(() => 'aborted')
    await new Promise((resolve) => setTimeout(resolve, 200))
    controller.abort()
    t.is(await request, 'aborted')
    await new Promise((resolve) => setTimeout(resolve, 200))
    // A guest still spinning would use a whole core from here on.
    const before = process.cpuUsage()
    const wall = Date.now()
    await new Promise((resolve) => setTimeout(resolve, 500))
    const used = process.cpuUsage(before)
    t.true((used.user + used.system) / 1000 < (Date.now() - wall) * 0.6, 'the guest went on spinning')
  })

  test(`${version}: maxRequestBodyBytes: a declared length over it is a 413 without a guest, a chunked body is cut at it`, async (t) => {
    const errors = []
    const url = await listen(
      t,
      service.httpHandler({ maxRequestBodyBytes: 1024, onError: (error) => errors.push(error) }),
    )
    const declared = await fetch(`${url}/echo`, { method: 'POST', body: Buffer.alloc(4096) })
    t.is(declared.status, 413)
    const chunks = (async function* () {
      for (let index = 0; index < 8; index++) {
        yield Buffer.alloc(512)
        await new Promise((resolve) => setTimeout(resolve, 10))
      }
    })()
    // The echo guest answers before it has read its body: its head may reach the client before the
    // limit does, and the cut then shows in the body, which never completes.
    const streamed = await fetch(`${url}/echo`, { method: 'POST', body: chunks, duplex: 'half' }).then(
      (response) =>
        response.arrayBuffer().then(
          () => response.status,
          () => 'cut',
        ),
      () => 'cut',
    )
    t.true(streamed === 413 || streamed === 'cut', `got ${streamed}`)
    const small = await fetch(`${url}/echo`, { method: 'POST', body: Buffer.alloc(1000, 1) })
    t.is((await small.arrayBuffer()).byteLength, 1000)
    t.deepEqual(errors, [])
  })

  // Serial: the process's resident memory is the measure, so no other test runs meanwhile.
  test.serial(
    `${version}: a slow client holds back the guest: 64 MiB of response keep the host's memory bounded`,
    async (t) => {
      const url = await listen(t, service.httpHandler())
      const before = process.memoryUsage().rss
      const { port } = new URL(url)
      const response = await new Promise((resolve) => http.get({ port, path: `/big?bytes=${64 << 20}` }, resolve))
      response.pause()
      await new Promise((resolve) => setTimeout(resolve, 800))
      const grown = process.memoryUsage().rss - before
      let received = 0
      response.on('data', (chunk) => (received += chunk.length))
      response.resume()
      await once(response, 'end')
      t.is(received, 64 << 20)
      t.true(grown < 32 << 20, `the host grew by ${grown >> 20} MiB while the client did not read`)
    },
  )

  test(`${version}: outgoing requests from a served request: allowed hosts reach upstream, others are denied`, async (t) => {
    const up = await upstream(t)
    const allowed = await listen(t, service.httpHandler({ http: { allowedHosts: [up.host] } }))
    const target = encodeURIComponent(`${up.url}/hello`)
    const response = await fetch(`${allowed}/fetch?url=${target}`)
    t.is(await response.text(), '200 hello from upstream')
    const denied = await listen(t, service.httpHandler())
    const refused = await fetch(`${denied}/fetch?url=${target}`)
    t.is(refused.status, 502)
    t.regex(await refused.text(), /HttpRequestDenied/)
    t.is(up.seen.length, 1)
  })

  test(`${version}: requests waiting on I/O hold no thread: 12 at once, each waiting 400 ms upstream, take about 400 ms`, async (t) => {
    const up = await upstream(t)
    const url = await listen(t, service.httpHandler({ http: { allowedHosts: [up.host] } }))
    const target = encodeURIComponent(`${up.url}/slow`)
    // One request first, so the timed ones do not also pay for the service's first instance.
    await (await fetch(`${url}/fetch?url=${encodeURIComponent(`${up.url}/hello`)}`)).text()
    const started = Date.now()
    const answers = await Promise.all(
      Array.from({ length: 12 }, () => fetch(`${url}/fetch?url=${target}`).then((r) => r.text())),
    )
    const took = Date.now() - started
    t.deepEqual(new Set(answers), new Set(['200 slow']))
    // On the addon's pool (one thread per core) they would take 12 / cores * 400 ms: 2,400 ms on
    // 2 cores. Alone they take about 450 ms; under the full suite with other processes busy on the
    // same 2 cores, up to 1.7 s was seen, so the bound sits between the two.
    t.true(took < 2000, `took ${took} ms`)
  })

  test(`${version}: a POSTed body streams guest -> Node client -> upstream and back`, async (t) => {
    const up = await upstream(t)
    const url = await listen(t, service.httpHandler({ http: { allowedHosts: ['127.0.0.1:*'] } }))
    const body = randomBytes(1 << 20)
    const response = await fetch(`${url}/fetch-post?url=${encodeURIComponent(`${up.url}/echo`)}`, {
      method: 'POST',
      body,
    })
    const text = Buffer.from(await response.arrayBuffer())
    t.is(text.subarray(0, 4).toString(), '200 ')
    t.true(text.subarray(4).equals(body))
  })
}

test('more requests at once than the pooled engine holds: the rest get on-demand instances, none fails', async (t) => {
  // In a child process whose pool holds two instances (the default is 1,000).
  const child = spawn(
    process.execPath,
    [
      fileURLToPath(new URL('helpers/service-overflow.mjs', import.meta.url)),
      guestPath('build/http.rust.component.wasm'),
    ],
    {
      env: { ...process.env, WASM_MEMORY_SANDBOX_SERVICE_SLOTS: '2' },
      stdio: ['ignore', 'pipe', 'inherit'],
    },
  )
  let output = ''
  child.stdout.on('data', (chunk) => (output += chunk))
  const [code] = await once(child, 'exit')
  t.is(code, 0)
  const { answers, waitingAtOnce, took } = JSON.parse(output)
  t.deepEqual(answers, Array(8).fill('200 200 slow'))
  // All eight waited on the upstream together, not two at a time (counted, not timed: the
  // upstream answers only once all eight wait, or gives up after 5 s).
  t.is(waitingAtOnce, 8)
  t.true(took < 5000, `took ${took} ms`)
})

test('outgoing requests are denied by default: the guest sees HTTP-request-denied, nothing leaves the host', async (t) => {
  const up = await upstream(t)
  const result = await fetchCommand.instantiate({ wasi: { args: ['http-fetch', `${up.url}/hello`] } }).runAsync()
  t.is(result.exitCode, 1)
  t.regex(result.stdout.toString(), /error=ErrorCode::HttpRequestDenied/)
  t.is(up.seen.length, 0)
})

test('http.allowedHosts: a listed host:port is reached through Node, an unlisted port is denied', async (t) => {
  const up = await upstream(t)
  const run = (url, allowedHosts) =>
    fetchCommand.instantiate({ wasi: { args: ['http-fetch', url] }, http: { allowedHosts } }).runAsync()
  const allowed = await run(`${up.url}/hello`, [up.host])
  t.is(allowed.exitCode, 0)
  t.regex(allowed.stdout.toString(), /status=200/)
  t.regex(allowed.stdout.toString(), /hello from upstream/)
  const otherPort = await run(`${up.url}/hello`, ['127.0.0.1:1'])
  t.regex(otherPort.stdout.toString(), /error=ErrorCode::HttpRequestDenied/)
  const anyPort = await run(`${up.url}/hello`, ['127.0.0.1'])
  t.is(anyPort.exitCode, 0)
  t.is(up.seen.length, 2)
  t.is(up.seen[0].method, 'GET')
})

test("http.allowedHosts: a refused connection is the guest's connection-refused error", async (t) => {
  const closed = http.createServer()
  closed.listen(0, '127.0.0.1')
  await once(closed, 'listening')
  const { port } = closed.address()
  closed.close()
  await once(closed, 'close')
  const result = await fetchCommand
    .instantiate({ wasi: { args: ['http-fetch', `http://127.0.0.1:${port}/`] }, http: { allowedHosts: ['*'] } })
    .runAsync()
  t.regex(result.stdout.toString(), /error=ErrorCode::ConnectionRefused/)
})

test('http.fetch: every allowed request goes to the function, with a Request in and a Response out', async (t) => {
  const requests = []
  const fake = async (request) => {
    requests.push(request)
    return new Response(`answered ${request.method} ${new URL(request.url).pathname}`, { status: 201 })
  }
  const result = await fetchCommand
    .instantiate({ wasi: { args: ['http-fetch', 'https://api.example.com/v1/items'] }, http: { fetch: fake } })
    .runAsync()
  t.is(requests.length, 1)
  t.true(requests[0] instanceof Request)
  t.regex(result.stdout.toString(), /status=201/)
  t.regex(result.stdout.toString(), /answered GET \/v1\/items/)
  const narrowed = await fetchCommand
    .instantiate({
      wasi: { args: ['http-fetch', 'https://other.example.com/'] },
      http: { fetch: fake, allowedHosts: ['api.example.com'] },
    })
    .runAsync()
  t.regex(narrowed.stdout.toString(), /error=ErrorCode::HttpRequestDenied/)
  t.is(requests.length, 1)
  const failing = await fetchCommand
    .instantiate({
      wasi: { args: ['http-fetch', 'https://api.example.com/'] },
      http: { fetch: () => Promise.reject(new Error('offline')) },
    })
    .runAsync()
  t.regex(failing.stdout.toString(), /error=ErrorCode::InternalError\(Some\("offline"\)\)/)
})

test('a synchronous run cannot wait for Node: an allowed request fails in the guest with a message saying why', (t) => {
  const result = fetchCommand
    .instantiate({ wasi: { args: ['http-fetch', 'http://127.0.0.1:9/'] }, http: { allowedHosts: ['*'] } })
    .run()
  t.is(result.exitCode, 1)
  t.regex(result.stdout.toString(), /callAsync\(\), runAsync\(\) and httpHandler\(\)/)
})

test('bad http options and handler options throw coded errors up front', (t) => {
  const service = services['WASI 0.2']
  t.throws(() => fetchCommand.instantiate({ wasi: {}, http: 5 }), {
    instanceOf: TypeError,
    code: 'ERR_INVALID_ARG_TYPE',
  })
  t.throws(() => fetchCommand.instantiate({ wasi: {}, http: { allowed: [] } }), {
    code: 'ERR_INVALID_ARG_TYPE',
    message: /Unknown option "http.allowed"/,
  })
  t.throws(() => fetchCommand.instantiate({ wasi: {}, http: { allowedHosts: 'x' } }), { instanceOf: TypeError })
  t.throws(() => fetchCommand.instantiate({ wasi: {}, http: { allowedHosts: ['a/b'] } }), {
    code: 'ERR_INVALID_ARG_VALUE',
  })
  t.throws(() => fetchCommand.instantiate({ wasi: {}, http: { allowedHosts: ['host:99999'] } }), {
    code: 'ERR_INVALID_ARG_VALUE',
  })
  t.throws(() => fetchCommand.instantiate({ wasi: {}, http: { fetch: 'no' } }), { instanceOf: TypeError })
  t.throws(() => service.httpHandler({ maxRequestBodyBytes: -1 }), { instanceOf: RangeError, code: 'ERR_OUT_OF_RANGE' })
  t.throws(() => service.httpHandler({ maxRequestBodyBytes: Number.NaN }), { instanceOf: RangeError })
  t.throws(() => service.httpHandler({ onError: 1 }), { instanceOf: TypeError })
  t.throws(() => service.httpHandler({ maxMemoryBytes: -5 }), { code: 'ERR_OUT_OF_RANGE' })
  t.throws(() => fetchCommand.httpHandler(), { code: 'ERR_WASM_EXPORT', message: /cannot serve requests/ })
})
