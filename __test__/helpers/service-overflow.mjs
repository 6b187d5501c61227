// Run by component-http.spec.mjs with WASM_MEMORY_SANDBOX_SERVICE_SLOTS=2: eight requests at
// once to a service whose pooled engine holds two instances, each waiting 300 ms on an upstream.
// Prints { answers, took } as JSON.
import { once } from 'node:events'
import { readFileSync } from 'node:fs'
import http from 'node:http'

import { Component } from 'wasm-memory-sandbox'

const [servicePath] = process.argv.slice(2)
const service = new Component(readFileSync(servicePath))

const upstream = http.createServer((req, res) => setTimeout(() => res.end('slow'), 300))
upstream.listen(0, '127.0.0.1')
await once(upstream, 'listening')
const host = `127.0.0.1:${upstream.address().port}`

const server = http.createServer(service.httpHandler({ wasi: {}, http: { allowedHosts: [host] } }))
server.listen(0, '127.0.0.1')
await once(server, 'listening')
const url = `http://127.0.0.1:${server.address().port}`

const target = encodeURIComponent(`http://${host}/slow`)
const started = Date.now()
const answers = await Promise.all(
  Array.from({ length: 8 }, () =>
    fetch(`${url}/fetch?url=${target}`).then(async (response) => `${response.status} ${await response.text()}`),
  ),
)
const took = Date.now() - started
server.close()
upstream.close()
process.stdout.write(JSON.stringify({ answers, took }))
