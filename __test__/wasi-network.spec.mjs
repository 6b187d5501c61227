// The `wasi.network` option: a component's wasi:sockets reach nothing by default, the host's
// network with `true`, and only the listed `host:port` rules with `{ allow }` (connect, bind and
// name lookup alike). The guest (examples/components/rust-command/src/net.rs, Rust std for
// wasm32-wasip2) prints one line saying what happened.
import net from 'node:net'

import test from 'ava'

import { Component, Sandbox } from 'wasm-memory-sandbox'

import { guestPath, guestText } from './helpers/guests.mjs'

const guest = Component.fromFile(guestPath('build/net.rust.component.wasm'))

/** A TCP server on 127.0.0.1 answering `pong:` + what it got; closed when the test ends. */
async function echoServer(t) {
  const server = net.createServer((socket) => {
    let received = ''
    socket.on('data', (data) => (received += data))
    socket.on('end', () => socket.end(`pong:${received}`))
  })
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => server.close())
  return server.address().port
}

/** Runs `net <command> <target>` with `network` on the pool; its one line of output. */
async function netGuest(network, command, target) {
  const wasi = { args: ['net', command, target] }
  if (network !== undefined) wasi.network = network
  const result = await guest.instantiate({ wasi }).runAsync()
  return result.stdout.toString().trim()
}

const denied = /^error PermissionDenied/

test('no network by default: connect, listen, UDP and name lookup are all refused', async (t) => {
  const port = await echoServer(t)
  t.regex(await netGuest(undefined, 'connect', `127.0.0.1:${port}`), denied)
  t.regex(await netGuest(undefined, 'listen', '127.0.0.1:0'), denied)
  t.regex(await netGuest(undefined, 'udp', '127.0.0.1:0'), denied)
  t.regex(await netGuest(undefined, 'lookup', 'localhost'), /^error/)
  t.regex(await netGuest(false, 'connect', `127.0.0.1:${port}`), denied)
})

test('network: true gives the host network (connect, listen, lookup)', async (t) => {
  const port = await echoServer(t)
  t.is(await netGuest(true, 'connect', `127.0.0.1:${port}`), 'reply pong:ping')
  t.regex(await netGuest(true, 'listen', '127.0.0.1:0'), /^bound 127\.0\.0\.1:\d+$/)
  t.regex(await netGuest(true, 'lookup', 'localhost'), /^resolved .*127\.0\.0\.1/)
})

test('an allow list lets the guest connect and bind only where a rule says', async (t) => {
  const port = await echoServer(t)
  const other = await echoServer(t)
  const allow = { allow: [`127.0.0.1:${port}`] }
  t.is(await netGuest(allow, 'connect', `127.0.0.1:${port}`), 'reply pong:ping')
  t.regex(await netGuest(allow, 'connect', `127.0.0.1:${other}`), denied)
  // Binding an ephemeral port is port 0: not this rule's port.
  t.regex(await netGuest(allow, 'listen', '127.0.0.1:0'), denied)
  const anyPort = { allow: ['127.0.0.1:*'] }
  t.is(await netGuest(anyPort, 'connect', `127.0.0.1:${other}`), 'reply pong:ping')
  t.regex(await netGuest(anyPort, 'listen', '127.0.0.1:0'), /^bound 127\.0\.0\.1:\d+$/)
  t.regex(await netGuest(anyPort, 'udp', '127.0.0.1:0'), /^bound 127\.0\.0\.1:\d+$/)
  t.regex(await netGuest({ allow: [`127.0.0.2:${port}`] }, 'connect', `127.0.0.1:${port}`), denied)
})

test('a name in a rule: the guest may look it up and connect to what it resolves to, and look up nothing else', async (t) => {
  const port = await echoServer(t)
  const allow = { allow: [`localhost:${port}`] }
  t.regex(await netGuest(allow, 'lookup', 'localhost'), /^resolved .*127\.0\.0\.1/)
  t.is(await netGuest(allow, 'connect', `localhost:${port}`), 'reply pong:ping')
  // Another name is refused before any query leaves the host.
  t.regex(await netGuest(allow, 'lookup', 'example.com'), /^error/)
  t.regex(await netGuest(allow, 'connect', `example.com:${port}`), /^error/)
  // An address rule allows looking up that address only, not names.
  t.regex(await netGuest({ allow: [`127.0.0.1:${port}`] }, 'lookup', 'localhost'), /^error/)
  t.regex(await netGuest({ allow: [`127.0.0.1:${port}`] }, 'lookup', '127.0.0.1'), /^resolved 127\.0\.0\.1$/)
})

test('bad network options are coded errors naming the rule', (t) => {
  const make = (network) => guest.instantiate({ wasi: { args: ['net'], network } })
  t.throws(() => make('yes'), { code: 'ERR_INVALID_ARG_TYPE', message: /options\.wasi\.network/ })
  t.throws(() => make({ deny: [] }), { code: 'ERR_INVALID_ARG_TYPE', message: /Unknown property "deny"/ })
  t.throws(() => make({ allow: '127.0.0.1:1' }), { code: 'ERR_INVALID_ARG_TYPE', message: /allow/ })
  t.throws(() => make({ allow: [7] }), { code: 'ERR_INVALID_ARG_TYPE', message: /allow\[0\]/ })
  t.throws(() => make({ allow: ['127.0.0.1'] }), { code: 'ERR_INVALID_ARG_VALUE', message: /host:port/ })
  t.throws(() => make({ allow: ['h:99999'] }), { code: 'ERR_INVALID_ARG_VALUE', message: /0 to 65535/ })
  t.throws(() => make({ allow: ['bad host:1'] }), { code: 'ERR_INVALID_ARG_VALUE', message: /allow\[0\]/ })
  t.throws(() => make({ allow: ['[nope]:1'] }), { code: 'ERR_INVALID_ARG_VALUE', message: /IPv6/ })
  // The sandbox options take it too (preview 1 guests cannot open sockets, so it changes nothing).
  t.notThrows(() => new Sandbox(guestText('wasi/sleep.wat'), { wasi: { network: { allow: ['[::1]:80', '*:443'] } } }))
})
