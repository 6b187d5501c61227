// The wasi:http rows of `npm run bench`: requests per second of a hello-world service through
// `http.createServer(component.httpHandler())` (a fresh instance per request), against `jco serve`
// of the same WASI 0.2 component on V8 and a plain Node handler writing the same bytes; and the
// latency a fresh instance adds (imported by bench.mjs). The load comes from a child process
// (benchmark/http-load.mjs), so the server under test has this process's JS thread to itself.
import { spawn } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import os from 'node:os'
import { join } from 'node:path'
import { once } from 'node:events'
import http from 'node:http'
import { createRequire } from 'node:module'
import { fileURLToPath } from 'node:url'

const require = createRequire(import.meta.url)
const { Component } = require('wasm-memory-sandbox')
const root = fileURLToPath(new URL('..', import.meta.url))
const loadScript = fileURLToPath(new URL('http-load.mjs', import.meta.url))
const servicePath = `${root}__test__/guests/build/http.rust.component.wasm`

/** Runs the load generator against `url`: `{ requests, seconds, p50, p99, errors }`. */
async function load(url, connections, seconds) {
  const child = spawn(process.execPath, [loadScript, url, String(connections), String(seconds)], {
    stdio: ['ignore', 'pipe', 'inherit'],
  })
  let output = ''
  child.stdout.on('data', (chunk) => (output += chunk))
  const [code] = await once(child, 'exit')
  if (code !== 0) throw new Error(`the load generator failed (exit code ${code})`)
  return JSON.parse(output)
}

async function listen(listener) {
  const server = http.createServer(listener)
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  return { url: `http://127.0.0.1:${server.address().port}/`, close: () => server.close() }
}

/** `jco serve` of the service in its own processes (it forks one), until `stop()`. */
async function jcoServe() {
  const port = 20000 + Math.floor(Math.random() * 20000)
  // jco serve transpiles into a temporary folder it never removes (it is killed): give it one of
  // ours, removed with the server.
  const temporary = mkdtempSync(join(os.tmpdir(), 'wasm-memory-sandbox-bench-jco-serve-'))
  const jco = spawn(
    process.execPath,
    [`${root}node_modules/@bytecodealliance/jco/dist/jco.js`, 'serve', servicePath, '--port', String(port)],
    {
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
      env: { ...process.env, TMPDIR: temporary },
    },
  )
  let said = ''
  jco.stdout.on('data', (chunk) => (said += chunk))
  jco.stderr.on('data', (chunk) => (said += chunk))
  const deadline = Date.now() + 60_000
  while (!said.includes('listening')) {
    if (Date.now() > deadline || jco.exitCode !== null) throw new Error(`jco serve did not start: ${said}`)
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
  // jco serve runs the server in a child it spawns: the process group ends both.
  return {
    url: `http://127.0.0.1:${port}/`,
    close: () => {
      process.kill(-jco.pid, 'SIGKILL')
      rmSync(temporary, { recursive: true, force: true })
    },
  }
}

export async function httpRows({ row, quick }) {
  const seconds = quick ? 2 : 5
  const connections = 16
  const service = Component.fromFile(servicePath)
  const servers = {
    ours: await listen(service.httpHandler()),
    plain: await listen((request, response) => {
      response.writeHead(200, { 'content-type': 'text/plain' })
      response.end('hello from wasm\n')
    }),
    jco: await jcoServe(),
  }
  try {
    const throughput = {}
    const latency = {}
    // Interleaved rounds, so no side gets the machine at its freshest.
    for (let round = 0; round < 2; round++) {
      for (const [name, server] of Object.entries(servers)) {
        const result = await load(server.url, connections, seconds / 2)
        if (result.errors > 0) throw new Error(`${name}: ${result.errors} requests failed`)
        ;(throughput[name] ??= []).push(result.requests / result.seconds)
        if (name !== 'jco') (latency[name] ??= []).push((await load(server.url, 1, seconds / 2)).p99)
      }
    }
    const rps = Object.fromEntries(
      Object.entries(throughput).map(([name, values]) => [name, values.reduce((a, b) => a + b) / values.length]),
    )
    const p99 = Object.fromEntries(Object.entries(latency).map(([name, values]) => [name, Math.min(...values)]))
    const perRequest = (name) => 1e9 / rps[name]
    row({
      operation: `wasi:http hello service, fresh instance per request (${connections} connections; ${Math.round(rps.ours)} requests/s)`,
      ours: perRequest('ours'),
      baseline: perRequest('jco'),
      against: `\`jco serve\` (WASI 0.2) on V8 (${Math.round(rps.jco)} requests/s)`,
      kind: 'faster',
      target: 3,
    })
    row({
      operation: 'wasi:http hello service: time per request',
      ours: perRequest('ours'),
      baseline: perRequest('plain'),
      against: `plain Node handler writing the same bytes (${Math.round(rps.plain)} requests/s)`,
      kind: 'slower',
      target: 2,
    })
    const added = (p99.ours - p99.plain) / 1000
    const line = `wasi:http p99 latency, one connection: ${(p99.ours / 1000).toFixed(2)} ms through \`httpHandler()\` against ${(p99.plain / 1000).toFixed(2)} ms for the plain Node handler: a fresh instance adds ${added.toFixed(2)} ms at the 99th percentile (the load generator runs in a child process on the same 2 cores).`
    console.error(line)
    return line
  } finally {
    for (const server of Object.values(servers)) server.close()
  }
}
