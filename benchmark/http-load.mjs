// A closed-loop HTTP load generator for `npm run bench` (run in a child process, so the server
// under test has the bench process's JS thread to itself): `connections` keep-alive connections,
// each sending its next GET as soon as the previous response ended, for `seconds`. Prints
// `{ requests, seconds, p50, p99, errors }` (latencies in microseconds) as JSON.
import http from 'node:http'

const [url, connections, seconds] = [process.argv[2], Number(process.argv[3]), Number(process.argv[4])]
const agent = new http.Agent({ keepAlive: true, maxSockets: connections })
const latencies = []
let errors = 0
let running = true

function once() {
  return new Promise((resolve) => {
    const started = process.hrtime.bigint()
    const request = http.get(url, { agent }, (response) => {
      response.on('data', () => {})
      response.on('end', () => {
        if (response.statusCode === 200) latencies.push(Number(process.hrtime.bigint() - started) / 1000)
        else errors++
        resolve()
      })
    })
    request.on('error', () => {
      errors++
      resolve()
    })
  })
}

async function client() {
  while (running) await once()
}

// A short warm-up, not counted.
const warmEnd = Date.now() + 500
await Promise.all(
  Array.from({ length: connections }, async () => {
    while (Date.now() < warmEnd) await once()
  }),
)
latencies.length = 0
errors = 0
const started = process.hrtime.bigint()
setTimeout(() => (running = false), seconds * 1000)
await Promise.all(Array.from({ length: connections }, client))
const elapsed = Number(process.hrtime.bigint() - started) / 1e9
latencies.sort((a, b) => a - b)
const at = (q) => latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))] ?? NaN
console.log(JSON.stringify({ requests: latencies.length, seconds: elapsed, p50: at(0.5), p99: at(0.99), errors }))
agent.destroy()
