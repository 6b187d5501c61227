// quick: rps of httpHandler vs plain node
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import http from 'node:http'
import { readFileSync } from 'node:fs'
import { Component } from 'wasm-memory-sandbox'
const root = '/work/main/'
const component = new Component(readFileSync(`${root}__test__/guests/build/http.rust.component.wasm`))
async function load(url, connections, seconds) {
  const child = spawn(process.execPath, [`${root}benchmark/http-load.mjs`, url, String(connections), String(seconds)], { stdio: ['ignore', 'pipe', 'inherit'] })
  let output = ''
  child.stdout.on('data', (c) => (output += c))
  await once(child, 'exit')
  return JSON.parse(output)
}
async function run(listener, label) {
  const server = http.createServer(listener)
  server.listen(0, '127.0.0.1'); await once(server, 'listening')
  const url = `http://127.0.0.1:${server.address().port}/`
  await load(url, 16, 1)
  const r = await load(url, 16, 4)
  console.log(label, (r.requests / r.seconds).toFixed(0), 'req/s', 'p50', r.p50, 'p99', r.p99, 'errors', r.errors)
  server.close()
}
await run(component.httpHandler({ wasi: {} }), 'ours')
if (!process.env.ONLY_OURS) await run((req, res) => { res.writeHead(200, { 'content-type': 'text/plain' }); res.end('Hello from a wasi:http component!\n') }, 'plain')
