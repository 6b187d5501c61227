// Guests written to break out of their preopens, and to change a read-only one. Every attempt
// goes through the guest's own WASI imports: `fs_attack.wat` is a command that performs one file
// operation with the paths it is given, `fs_proxy.wat` a reactor that hands raw WASI calls to
// the test. Each attack must fail with a WASI errno and leave the host untouched.
import {
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  statSync,
  symlinkSync,
  utimesSync,
  writeFileSync,
} from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

import test from 'ava'

import { Module, Sandbox } from 'wasm-memory-sandbox'

import { guestText } from './helpers/guests.mjs'

const attack = new Module(guestText('wasi/fs_attack.wat'))
const proxy = new Module(guestText('wasi/fs_proxy.wat'))

// WASI errnos (wasi_snapshot_preview1).
const ERRNO = { BADF: 8, EXIST: 20, INVAL: 28, ISDIR: 31, LOOP: 32, NOENT: 44, NOTDIR: 54, PERM: 63, NOTCAPABLE: 76 }
const ERRNO_NAME = Object.fromEntries(Object.entries(ERRNO).map(([name, value]) => [value, name]))

/**
 * A fresh host tree:
 *   outside/secret.txt             never reachable
 *   box/  (rw, guest /box)         file.txt, sub/, link-out -> ../outside, abs-link -> outside/secret.txt
 *   box2/ (rw, guest /box2)
 *   ro/   (read-only, guest /ro)   file.txt, dir/, dir/inner.txt
 */
function tree(t) {
  const root = mkdtempSync(join(tmpdir(), 'wasi-attack-'))
  t.teardown(() => rmSync(root, { recursive: true, force: true }))
  const path = (...parts) => join(root, ...parts)
  mkdirSync(path('outside'))
  writeFileSync(path('outside', 'secret.txt'), 'top secret')
  mkdirSync(path('box', 'sub'), { recursive: true })
  writeFileSync(path('box', 'file.txt'), 'inside')
  symlinkSync('../outside', path('box', 'link-out'))
  symlinkSync(path('outside', 'secret.txt'), path('box', 'abs-link'))
  mkdirSync(path('box2'))
  mkdirSync(path('ro', 'dir'), { recursive: true })
  writeFileSync(path('ro', 'file.txt'), 'read only')
  writeFileSync(path('ro', 'dir', 'inner.txt'), 'inner')
  const old = new Date('2001-02-03T04:05:06Z')
  utimesSync(path('ro', 'file.txt'), old, old)
  utimesSync(path('outside', 'secret.txt'), old, old)
  return { root, path }
}

/** A snapshot of a host directory (names, kinds, sizes, contents, mtimes) to compare after an attack. */
function snapshot(directory) {
  const entries = {}
  const walk = (relative) => {
    for (const name of readdirSync(join(directory, relative)).sort()) {
      const child = join(relative, name)
      const stat = lstatSync(join(directory, child))
      entries[child] = stat.isSymbolicLink()
        ? 'symlink'
        : stat.isDirectory()
          ? 'dir'
          : `${stat.size}:${stat.mtimeMs}:${readFileSync(join(directory, child), 'utf8')}`
      if (stat.isDirectory() && !stat.isSymbolicLink()) walk(child)
    }
  }
  walk('')
  return entries
}

/** Runs fs_attack with `args` against the preopens (the first is fd 3, the second fd 4). */
function run(preopens, ...args) {
  return new Sandbox(attack, { wasi: { args: ['attack', ...args], preopens } }).run()
}

const refused = (t, result, what) => {
  t.not(result.exitCode, 0, `${what} must fail`)
  t.true(result.exitCode in ERRNO_NAME, `${what} failed with errno ${result.exitCode}, a WASI errno`)
  t.is(result.stdout.length, 0, `${what} read nothing`)
}

test('sanity: the attack guest reads and writes inside its preopen', (t) => {
  const { path } = tree(t)
  const box = { '/box': path('box') }
  const read = run(box, 'read', 'sub/../file.txt')
  t.is(read.exitCode, 0)
  t.is(read.stdout.toString(), 'inside')
  t.is(run(box, 'write', 'sub/new.txt').exitCode, 0)
  t.is(readFileSync(path('box', 'sub', 'new.txt'), 'utf8'), 'pwned')
  t.is(run(box, 'symlink', 'file.txt', 'inner-link').exitCode, 0, 'a symlink that stays inside is fine')
  t.is(run(box, 'read', 'inner-link').stdout.toString(), 'inside')
})

test('no way out of a preopen by reading: .., absolute paths, symlinks out', (t) => {
  const { path } = tree(t)
  const box = { '/box': path('box') }
  const attempts = [
    '../outside/secret.txt',
    'sub/../../outside/secret.txt',
    'sub/../../../../../../../../etc/passwd',
    '..',
    path('outside', 'secret.txt'),
    '/etc/passwd',
    '/box/../outside/secret.txt',
    'link-out/secret.txt',
    'link-out',
    'abs-link',
  ]
  for (const attempt of attempts) {
    const result = run(box, 'read', attempt)
    refused(t, result, `read ${attempt}`)
    t.true(
      [ERRNO.PERM, ERRNO.NOTCAPABLE, ERRNO.NOENT, ERRNO.LOOP].includes(result.exitCode),
      `read ${attempt}: ${ERRNO_NAME[result.exitCode]}`,
    )
  }
})

test('no way out of a preopen by writing, creating, deleting or touching', (t) => {
  const { path } = tree(t)
  const box = { '/box': path('box') }
  const before = snapshot(path('outside'))
  const attempts = [
    ['write', '../outside/new.txt'],
    ['write', '../outside/secret.txt'],
    ['write', 'link-out/new.txt'],
    ['write', 'abs-link'],
    ['write', path('outside', 'new.txt')],
    ['trunc', 'abs-link'],
    ['trunc', 'link-out/secret.txt'],
    ['mkdir', '../outside/dir'],
    ['mkdir', 'link-out/dir'],
    ['rmdir', '../outside'],
    ['unlink', '../outside/secret.txt'],
    ['unlink', 'link-out/secret.txt'],
    ['Times', '../outside/secret.txt'],
    ['Times', 'abs-link'],
    ['Times', 'link-out/secret.txt'],
  ]
  for (const args of attempts) refused(t, run(box, ...args), args.join(' '))
  t.deepEqual(snapshot(path('outside')), before, 'nothing outside changed')
  t.true(existsSync(path('box', 'link-out')), 'the symlinks themselves are still there')
})

test('no way out by renaming or hard-linking across the boundary', (t) => {
  const { path } = tree(t)
  const box = { '/box': path('box') }
  const before = snapshot(path('outside'))
  const attempts = [
    ['nrename', 'file.txt', '../outside/stolen.txt'],
    ['nrename', '../outside/secret.txt', 'stolen.txt'],
    ['nrename', 'link-out/secret.txt', 'stolen.txt'],
    ['nrename', 'file.txt', 'link-out/stolen.txt'],
    ['nrename', 'sub', '../outside/sub'],
    ['link', '../outside/secret.txt', 'hard.txt'],
    ['link', 'link-out/secret.txt', 'hard.txt'],
    ['link', 'abs-link', 'hard.txt'],
    ['link', 'file.txt', '../outside/hard.txt'],
    ['link', 'file.txt', 'link-out/hard.txt'],
  ]
  for (const args of attempts) refused(t, run(box, ...args), args.join(' '))
  t.deepEqual(snapshot(path('outside')), before, 'nothing outside changed')
  t.false(existsSync(path('box', 'stolen.txt')))
  t.false(existsSync(path('box', 'hard.txt')))
  t.is(readFileSync(path('box', 'file.txt'), 'utf8'), 'inside')
})

test('a symlink the guest makes cannot point it outside', (t) => {
  const { path } = tree(t)
  const box = { '/box': path('box') }
  for (const [target, name] of [
    ['../outside/secret.txt', 'evil'],
    [path('outside', 'secret.txt'), 'evil-absolute'],
    ['/etc/passwd', 'evil-etc'],
    ['sub/../../outside', 'evil-dir'],
  ]) {
    const made = run(box, 'symlink', target, name)
    if (made.exitCode === 0) {
      // Creating a dangling-looking link may be allowed; following it never is.
      refused(t, run(box, 'read', name), `read through ${name} -> ${target}`)
      refused(t, run(box, 'read', `${name}/secret.txt`), `read through ${name}/ -> ${target}`)
      refused(t, run(box, 'write', name), `write through ${name} -> ${target}`)
    } else {
      refused(t, made, `symlink ${name} -> ${target}`)
    }
  }
  t.is(readFileSync(path('outside', 'secret.txt'), 'utf8'), 'top secret')
})

test('a read-only preopen can be read, and refuses every change', (t) => {
  const { path } = tree(t)
  const preopens = { '/ro': { path: path('ro'), readonly: true }, '/box': path('box') }
  t.is(run(preopens, 'read', 'file.txt').stdout.toString(), 'read only')
  t.is(run(preopens, 'read', 'dir/inner.txt').stdout.toString(), 'inner')
  const before = snapshot(path('ro'))
  const attempts = [
    ['write', 'file.txt'],
    ['write', 'new.txt'],
    ['write', 'dir/new.txt'],
    ['trunc', 'file.txt'],
    ['mkdir', 'newdir'],
    ['rmdir', 'dir'],
    ['unlink', 'file.txt'],
    ['unlink', 'dir/inner.txt'],
    ['symlink', 'file.txt', 'link'],
    ['nrename', 'file.txt', 'renamed.txt'],
    ['nrename', 'dir', 'dir2'],
    ['Nrename', 'file.txt', 'moved.txt'],
    ['link', 'file.txt', 'hard.txt'],
    ['Link', 'file.txt', 'hard.txt'],
    ['Times', 'file.txt'],
    ['Times', 'dir'],
  ]
  for (const args of attempts) refused(t, run(preopens, ...args), args.join(' '))
  t.deepEqual(snapshot(path('ro')), before, 'nothing in the read-only preopen changed')
  t.deepEqual(readdirSync(path('box')).sort(), ['abs-link', 'file.txt', 'link-out', 'sub'], 'nothing moved in')
})

test('renames and links from a read-write preopen into a read-only one are refused', (t) => {
  const { path } = tree(t)
  // fd 3 is read-write here, fd 4 read-only.
  const preopens = { '/box': path('box'), '/ro': { path: path('ro'), readonly: true } }
  const before = snapshot(path('ro'))
  refused(t, run(preopens, 'Nrename', 'file.txt', 'dropped.txt'), 'rename into read-only')
  refused(t, run(preopens, 'Link', 'file.txt', 'dropped.txt'), 'link into read-only')
  t.deepEqual(snapshot(path('ro')), before)
  t.true(existsSync(path('box', 'file.txt')))
})

/** Calls of fs_proxy from JS: paths are written into its memory at 1024, results at 16. */
function proxied(preopens) {
  const sandbox = new Sandbox(proxy, { wasi: { preopens } })
  const put = (text, at = 1024) => {
    const bytes = Buffer.from(text)
    sandbox.write(at, bytes)
    return [at, bytes.length]
  }
  return {
    sandbox,
    /** path_open under `dirfd`; returns { errno, fd }. */
    open(dirfd, path, { oflags = 0, rights = 2n, fdflags = 0, follow = 1 } = {}) {
      const [pointer, length] = put(path)
      const errno = sandbox.call('path_open', dirfd, follow, pointer, length, oflags, rights, 0n, fdflags, 16)
      return { errno, fd: sandbox.read(16, 4).readUInt32LE(0) }
    },
    /** fd_write of `text` to `fd`; returns the errno. */
    write(fd, text) {
      const [pointer, length] = put(text, 2048)
      sandbox.write(32, Buffer.from(new Uint32Array([pointer, length]).buffer))
      return sandbox.call('fd_write', fd, 32, 1, 40)
    },
  }
}

test('a file opened from a read-only preopen cannot be written, truncated, grown or touched', (t) => {
  const { path } = tree(t)
  const before = snapshot(path('ro'))
  const guest = proxied({ '/ro': { path: path('ro'), readonly: true } })
  const opened = guest.open(3, 'file.txt')
  t.is(opened.errno, 0)
  const fd = opened.fd
  t.not(guest.write(fd, 'overwrite'), 0, 'fd_write')
  t.not(guest.sandbox.call('fd_filestat_set_size', fd, 0n), 0, 'fd_filestat_set_size')
  t.not(guest.sandbox.call('fd_filestat_set_times', fd, 0n, 0n, 10), 0, 'fd_filestat_set_times')
  t.not(guest.sandbox.call('fd_allocate', fd, 0n, 4096n), 0, 'fd_allocate')
  t.not(guest.open(3, 'file.txt', { rights: 64n }).errno, 0, 'opening for writing')
  t.not(guest.open(3, 'file.txt', { rights: 64n, fdflags: 1 }).errno, 0, 'opening for appending')
  t.not(guest.open(3, 'created.txt', { oflags: 1 }).errno, 0, 'O_CREAT without write rights')
  t.not(guest.open(3, 'file.txt', { oflags: 8 }).errno, 0, 'O_TRUNC without write rights')
  t.deepEqual(snapshot(path('ro')), before)
  t.is(statSync(path('ro', 'file.txt')).mtime.toISOString(), '2001-02-03T04:05:06.000Z')
})

test('a directory descriptor opened inside a preopen is a capability of its own: nothing above it', (t) => {
  const { path } = tree(t)
  writeFileSync(path('box', 'sub', 'here.txt'), 'here')
  const guest = proxied({ '/box': path('box') })
  const sub = guest.open(3, 'sub', { oflags: 2 })
  t.is(sub.errno, 0)
  t.is(guest.open(sub.fd, 'here.txt').errno, 0)
  for (const attempt of ['..', '../file.txt', '../..', '../../outside/secret.txt', '../link-out/secret.txt']) {
    const result = guest.open(sub.fd, attempt)
    t.not(result.errno, 0, `open ${attempt} from box/sub`)
  }
})

test('preopens are listed to the guest with their guest names only', (t) => {
  const { path } = tree(t)
  const guest = proxied({ '/box': path('box'), '/ro': { path: path('ro'), readonly: true } })
  const names = []
  for (let fd = 3; ; fd++) {
    const errno = guest.sandbox.call('fd_prestat_get', fd, 64)
    if (errno !== 0) {
      t.is(errno, ERRNO.BADF)
      break
    }
    const length = guest.sandbox.read(68, 4).readUInt32LE(0)
    t.is(guest.sandbox.call('fd_prestat_dir_name', fd, 128, length), 0)
    names.push(guest.sandbox.read(128, length).toString())
  }
  t.deepEqual(names, ['/box', '/ro'])
})
