// Run by component-http.spec.mjs with WASM_MEMORY_SANDBOX_SERVICE_SLOTS=2: eight requests at
// once to a service whose pooled engine holds two instances, each fetching from an upstream that
// answers only once all eight are waiting on it (or after 5 s). Prints { answers, waitingAtOnce,
// took } as JSON: a service serving two at a time would have at most two waiting at once.
import { once } from 'node:events'
import { readFileSync } from 'node:fs'
import http from 'node:http'

import { Component } from 'wasm-memory-sandbox'

const [servicePath] = process.argv.slice(2)
const service = new Component(readFileSync(servicePath))

const REQUESTS = 8
const waiting = []
let waitingAtOnce = 0
const answerAll = () => {
  for (const res of waiting.splice(0)) res.end('slow')
}
const giveUp = setTimeout(answerAll, 5000)
const upstream = http.createServer((req, res) => {
  waiting.push(res)
  waitingAtOnce = Math.max(waitingAtOnce, waiting.length)
  if (waiting.length === REQUESTS) {
    clearTimeout(giveUp)
    answerAll()
  }
})
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
  Array.from({ length: REQUESTS }, () =>
    fetch(`${url}/fetch?url=${target}`).then(async (response) => `${response.status} ${await response.text()}`),
  ),
)
const took = Date.now() - started
clearTimeout(giveUp)
server.close()
upstream.close()
process.stdout.write(JSON.stringify({ answers, waitingAtOnce, took }))
