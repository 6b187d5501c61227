// The wasi:http side of scripts/wasi-testsuite.mjs: the suite's mock HTTP servers (its JSON
// `servers`), a component served through `component.httpHandler()`, and the suite's `request`
// operations, each as the suite's own runner (test-runner/wasi_test_runner/test_case.py and
// test_suite_runner.py) defines them:
//
// - A server is `listening` (an HTTP/1.1 server on 127.0.0.1 answering its `endpoints`) or
//   `closed` (a reserved 127.0.0.1 address nothing listens on, so connecting is refused); the
//   guest finds it as `HTTP_SERVER_<NAME>` = `host:port` in its environment.
// - An endpoint is routed by method and the raw request target (path and query as sent) and
//   answers in its `mode`: `static` (its `response`: a string for a 200 with that body, or
//   { status, headers, body } with a Content-Length, or { status, headers, chunks, trailers } in
//   chunked encoding with a trailer section), `echo-body` (the request body back) or
//   `echo-headers` (the request line as `x-request-method` and `x-request-path`, each request
//   header as `x-echo-<name>`, each request trailer as `x-trailer-<name>`). Anything else is a 404.
//   Every reply closes its connection.
// - A `request` goes to the served component on a fresh connection and passes when the status,
//   each listed header (case-insensitively named, repeated values joined by ", ") and the whole
//   body match.
import http from 'node:http'
import net from 'node:net'

/** Prefix under which request headers are echoed back as response headers. */
export const ECHO_HEADER_PREFIX = 'x-echo-'
/** Prefix under which request trailers are echoed back as response headers. */
export const TRAILER_HEADER_PREFIX = 'x-trailer-'

const HTTP_METHODS = new Set(['GET', 'POST', 'PUT', 'DELETE', 'PATCH', 'HEAD', 'OPTIONS'])
const ENDPOINT_MODES = new Set(['static', 'echo-body', 'echo-headers'])
const SERVER_NAME = /^[A-Za-z0-9_]+$/

const isObject = (value) => value !== null && typeof value === 'object' && !Array.isArray(value)
const isStringMap = (value) => isObject(value) && Object.values(value).every((item) => typeof item === 'string')

/** An endpoint's `response`, checked and completed as EndpointResponse.from_config does. */
function endpointResponse(config) {
  if (typeof config === 'string') return { status: 200, headers: {}, body: config, chunks: null, trailers: {} }
  if (!isObject(config)) throw new Error('Endpoint response should be a str or an object')
  const { status = 200, headers = {}, body = '', chunks = null, trailers = {} } = config
  if (!Number.isInteger(status)) throw new Error('Response status code should be an int')
  if (!isStringMap(headers)) throw new Error('Response headers should be an object of str to str')
  if (typeof body !== 'string') throw new Error('Response body should be a str')
  if (chunks !== null) {
    if (!Array.isArray(chunks) || !chunks.every((chunk) => typeof chunk === 'string'))
      throw new Error('Endpoint response chunks should be a list of str')
    if ('body' in config) throw new Error("Endpoint response takes 'body' or 'chunks', not both")
  }
  if (!isStringMap(trailers)) throw new Error('Endpoint response trailers should be an object of str to str')
  if (Object.keys(trailers).length > 0 && chunks === null)
    throw new Error("Endpoint response trailers require 'chunks'")
  return { status, headers, body, chunks, trailers }
}

/** An endpoint, as Endpoint.from_config reads it. */
function endpoint(config) {
  const { method = 'GET', path = '/', mode = 'static' } = config
  if (typeof method !== 'string' || !HTTP_METHODS.has(method.toUpperCase()))
    throw new Error(`Unknown endpoint method: ${method}`)
  if (typeof path !== 'string') throw new Error('Endpoint path should be a str')
  if (!ENDPOINT_MODES.has(mode)) throw new Error(`Unknown endpoint mode: ${mode}`)
  if (mode !== 'static') {
    if ('response' in config) throw new Error(`An endpoint in '${mode}' mode takes no 'response'`)
    return { method: method.toUpperCase(), path, mode, response: null }
  }
  return { method: method.toUpperCase(), path, mode, response: endpointResponse(config.response ?? '') }
}

/**
 * The test's `servers`, checked and completed as Server.from_config does: [{ name, kind, envVar,
 * endpoints }]. Throws on a malformed specification.
 */
export function parseServers(config = []) {
  if (!Array.isArray(config)) throw new Error('servers should be a list')
  const servers = config.map((server) => {
    const { name, kind = 'listening' } = server ?? {}
    if (typeof name !== 'string' || !SERVER_NAME.test(name))
      throw new Error(`Server name should be a non-empty str of alphanumerics or '_': ${name}`)
    if (kind !== 'listening' && kind !== 'closed') throw new Error(`Unknown server kind: ${kind}`)
    if (kind === 'closed' && 'endpoints' in server) throw new Error("A server of kind 'closed' takes no 'endpoints'")
    const endpoints = server.endpoints ?? []
    if (!Array.isArray(endpoints)) throw new Error('Server endpoints should be a list')
    return { name, kind, envVar: `HTTP_SERVER_${name.toUpperCase()}`, endpoints: endpoints.map(endpoint) }
  })
  const names = servers.map((server) => server.envVar)
  const duplicates = names.filter((name, index) => names.indexOf(name) !== index)
  if (duplicates.length > 0) throw new Error(`Duplicate server names: ${[...new Set(duplicates)].join(', ')}`)
  return servers
}

/** Listens on an ephemeral port of 127.0.0.1; resolves to the port. */
function listen(server) {
  return new Promise((resolve, reject) => {
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      server.off('error', reject)
      resolve(server.address().port)
    })
  })
}

/** Stops a server now: no new connections, open ones destroyed. Resolves once it is closed. */
function shut(server) {
  return new Promise((resolve) => {
    if (!server.listening) return resolve()
    server.close(() => resolve())
    server.closeAllConnections?.()
  })
}

/** An address nothing listens on: a port of 127.0.0.1 the system handed out, released again. */
async function reserveClosedAddress() {
  const server = net.createServer()
  const port = await listen(server)
  await new Promise((resolve) => server.close(resolve))
  return `127.0.0.1:${port}`
}

/** Name-value pairs of a raw header (or trailer) list. */
function pairs(raw) {
  const result = []
  for (let index = 0; index + 1 < raw.length; index += 2) result.push([raw[index], raw[index + 1]])
  return result
}

/** Sends a reply with a Content-Length, as _EndpointRequestHandler._reply does. */
function reply(request, response, status, headers, body) {
  response.writeHead(status, [...headers.flat(), 'Content-Length', String(body.length), 'Connection', 'close'])
  response.end(request.method === 'HEAD' ? undefined : body)
}

/** Sends a reply in chunked encoding with a trailer section, as _reply_chunked does. */
function replyChunked(request, response, status, headers, chunks, trailers) {
  const names = Object.keys(trailers)
  const head = [...headers.flat(), 'Transfer-Encoding', 'chunked']
  if (names.length > 0) head.push('Trailer', names.join(', '))
  head.push('Connection', 'close')
  response.writeHead(status, head)
  if (request.method === 'HEAD') return response.end()
  // An empty chunk would end the body on the wire: there is nothing to send for one.
  for (const chunk of chunks) if (chunk.length > 0) response.write(chunk)
  if (names.length > 0) response.addTrailers(trailers)
  response.end()
}

/** The request listener of a listening server: its endpoints by method and raw target. */
function endpointListener(endpoints) {
  const routes = new Map(endpoints.map((endpoint) => [`${endpoint.method} ${endpoint.path}`, endpoint]))
  return (request, response) => {
    const body = []
    request.on('data', (chunk) => body.push(chunk))
    request.on('error', () => response.destroy())
    request.on('end', () => {
      // Trailer names lowercased, the last value of a repeated one, as _read_trailers keeps them.
      const trailers = {}
      for (const [name, value] of pairs(request.rawTrailers)) trailers[name.toLowerCase()] = value.trim()
      const endpoint = routes.get(`${request.method} ${request.url}`)
      if (!endpoint) return reply(request, response, 404, [], Buffer.alloc(0))
      if (endpoint.mode === 'echo-body') return reply(request, response, 200, [], Buffer.concat(body))
      if (endpoint.mode === 'echo-headers') {
        const echoed = [
          ['x-request-method', request.method],
          ['x-request-path', request.url],
        ]
        // Each header name (lowercased) in order of first appearance, with all its values.
        const values = new Map()
        for (const [name, value] of pairs(request.rawHeaders)) {
          const key = name.toLowerCase()
          values.set(key, [...(values.get(key) ?? []), value])
        }
        for (const [name, list] of values) for (const value of list) echoed.push([ECHO_HEADER_PREFIX + name, value])
        for (const [name, value] of Object.entries(trailers)) echoed.push([TRAILER_HEADER_PREFIX + name, value])
        return reply(request, response, 200, echoed, Buffer.alloc(0))
      }
      const { status, headers, body: text, chunks, trailers: sent } = endpoint.response
      if (chunks === null) return reply(request, response, status, Object.entries(headers), Buffer.from(text, 'utf8'))
      replyChunked(
        request,
        response,
        status,
        Object.entries(headers),
        chunks.map((chunk) => Buffer.from(chunk, 'utf8')),
        sent,
      )
    })
  }
}

/**
 * Starts the test's mock servers (from `parseServers`). Resolves to { env, allowedHosts, close }:
 * `env` maps each `HTTP_SERVER_<NAME>` to its `127.0.0.1:<port>`, `allowedHosts` lists those
 * addresses, and `close()` stops every server (resolving once they are closed).
 */
export async function startMockServers(servers) {
  const running = []
  const env = {}
  const close = () => Promise.all(running.map(shut)).then(() => {})
  try {
    for (const server of servers) {
      if (server.kind === 'closed') {
        env[server.envVar] = await reserveClosedAddress()
        continue
      }
      // Like Python's http.server, a request without Host is answered, not refused.
      const listener = http.createServer({ requireHostHeader: false }, endpointListener(server.endpoints))
      running.push(listener)
      env[server.envVar] = `127.0.0.1:${await listen(listener)}`
    }
  } catch (error) {
    await close()
    throw error
  }
  return { env, allowedHosts: Object.values(env), close }
}

/**
 * Serves `component` on 127.0.0.1 (an ephemeral port) through `component.httpHandler(options)`.
 * Resolves to { port, errors, serverErrors, close }: `errors` collects each request's failure (what
 * the handler reports to `onError`, or throws), `serverErrors` what the server itself emits;
 * `close()` stops the server and resolves once it is closed.
 */
export async function serveComponent(component, options) {
  if (typeof component.httpHandler !== 'function')
    throw new Error('Component has no httpHandler(): this build of the addon cannot serve wasi:http/service')
  const errors = []
  const serverErrors = []
  const handler = component.httpHandler({ ...options, onError: (error) => errors.push(error) })
  const failed = (response) => (error) => {
    errors.push(error)
    if (!response.headersSent) response.writeHead(500, { 'Content-Length': 0, Connection: 'close' }).end()
    else response.destroy()
  }
  const server = http.createServer((request, response) => {
    try {
      const settled = handler(request, response)
      if (typeof settled?.then === 'function') settled.then(undefined, failed(response))
    } catch (error) {
      failed(response)(error)
    }
  })
  server.on('error', (error) => serverErrors.push(error))
  const port = await listen(server)
  return { port, errors, serverErrors, close: () => shut(server) }
}

/**
 * Sends a `request` operation to the served component on its own connection, as the suite's
 * runner sends it with `requests`: the body (UTF-8) with its Content-Length, or none (then a
 * Content-Length of 0 for methods other than GET and HEAD). Resolves to { status, rawHeaders,
 * body } (body a Buffer), or rejects after `timeoutMs`.
 */
export function sendRequest(port, operation, timeoutMs) {
  const method = operation.method ?? 'GET'
  const path = operation.path ?? '/'
  const headers = { ...(operation.headers ?? {}) }
  const body = Buffer.from(operation.body ?? '', 'utf8')
  const hasLength = Object.keys(headers).some((name) => name.toLowerCase() === 'content-length')
  if (!hasLength && (body.length > 0 || !['GET', 'HEAD'].includes(method.toUpperCase())))
    headers['Content-Length'] = String(body.length)
  return new Promise((resolve, reject) => {
    const request = http.request(
      {
        host: '127.0.0.1',
        port,
        method,
        path: path.startsWith('/') ? path : `/${path}`,
        headers,
        agent: false,
      },
      (response) => {
        const chunks = []
        response.on('data', (chunk) => chunks.push(chunk))
        response.on('error', reject)
        response.on('end', () =>
          resolve({ status: response.statusCode, rawHeaders: response.rawHeaders, body: Buffer.concat(chunks) }),
        )
      },
    )
    request.setTimeout(timeoutMs, () => request.destroy(new Error(`no response within ${timeoutMs} ms`)))
    request.on('error', reject)
    request.end(body.length > 0 ? body : undefined)
  })
}

/** The values of a header in a raw header list (case-insensitive), joined by ", "; undefined if absent. */
export function headerValue(rawHeaders, name) {
  const values = pairs(rawHeaders)
    .filter(([key]) => key.toLowerCase() === name.toLowerCase())
    .map(([, value]) => value)
  return values.length > 0 ? values.join(', ') : undefined
}

/**
 * Compares a response with a `request` operation's expected `response` (status default 200,
 * listed headers, body default ""), as TestCaseRunner.do_request does: the first mismatch as a
 * message, or undefined when it matches.
 */
export function responseMismatch(operation, got) {
  const expected = operation.response ?? {}
  const what = `${operation.method ?? 'GET'} ${operation.path ?? '/'}`
  const status = expected.status ?? 200
  if (got.status !== status) return `${what}: expected status ${status}, got ${got.status}`
  for (const [name, value] of Object.entries(expected.headers ?? {})) {
    const actual = headerValue(got.rawHeaders, name)
    if (actual === undefined) return `${what}: response missing header ${name}`
    if (actual !== value)
      return `${what}: expected response header ${name}=${JSON.stringify(value)}, got ${JSON.stringify(actual)}`
  }
  const body = got.body.toString('utf8')
  if (body !== (expected.body ?? ''))
    return `${what}: expected response body ${JSON.stringify(expected.body ?? '')}, got ${JSON.stringify(body)}`
  return undefined
}
