// What a Linux `.node` binary is built for, read from its ELF headers in plain JS (no readelf):
// the machine, the program interpreter if any, the shared libraries it needs (DT_NEEDED) and the
// symbol versions it needs from them (DT_VERNEED: GLIBC_2.17, ...). Used by `npm run package --
// --target` (never packs a binary that is not what its package claims) and by
// __test__/binaries.spec.mjs (every `.node` in dist/ and the host's own build).
import { gunzipSync } from 'node:zlib'

const EM = { 62: 'x64', 183: 'arm64' }
const PT_LOAD = 1
const PT_DYNAMIC = 2
const PT_INTERP = 3
const DT_NEEDED = 1
const DT_STRTAB = 5
const DT_STRSZ = 10
const DT_VERNEED = 0x6ffffffe
const DT_VERNEEDNUM = 0x6fffffff

/**
 * The facts of a 64-bit little-endian ELF shared object: `{ machine, cpu, type, interpreter,
 * needed, versions }`, `cpu` being Node's name for the machine (x64, arm64) or null.
 */
export function readElf(bytes) {
  const buffer = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  if (buffer.length < 64 || buffer.readUInt32BE(0) !== 0x7f454c46) throw new Error('not an ELF file')
  if (buffer[4] !== 2) throw new Error('not a 64-bit ELF file')
  if (buffer[5] !== 1) throw new Error('not a little-endian ELF file')
  const type = buffer.readUInt16LE(16)
  const machine = buffer.readUInt16LE(18)
  const phoff = Number(buffer.readBigUInt64LE(32))
  const phentsize = buffer.readUInt16LE(54)
  const phnum = buffer.readUInt16LE(56)
  const segments = []
  for (let index = 0; index < phnum; index++) {
    const at = phoff + index * phentsize
    segments.push({
      type: buffer.readUInt32LE(at),
      offset: Number(buffer.readBigUInt64LE(at + 8)),
      vaddr: Number(buffer.readBigUInt64LE(at + 16)),
      filesz: Number(buffer.readBigUInt64LE(at + 32)),
    })
  }
  /** The file offset of a virtual address, through the PT_LOAD segment that maps it. */
  const fileOffset = (vaddr) => {
    const load = segments.find(
      (segment) => segment.type === PT_LOAD && vaddr >= segment.vaddr && vaddr < segment.vaddr + segment.filesz,
    )
    if (!load) throw new Error(`ELF: address 0x${vaddr.toString(16)} is in no loaded segment`)
    return vaddr - load.vaddr + load.offset
  }
  const cString = (at) => buffer.toString('latin1', at, buffer.indexOf(0, at))

  const interp = segments.find((segment) => segment.type === PT_INTERP)
  const interpreter = interp ? cString(interp.offset) : null

  const dynamic = segments.find((segment) => segment.type === PT_DYNAMIC)
  const entries = []
  if (dynamic) {
    for (let at = dynamic.offset; at < dynamic.offset + dynamic.filesz; at += 16) {
      const tag = Number(buffer.readBigInt64LE(at))
      if (tag === 0) break
      entries.push({ tag, value: Number(buffer.readBigUInt64LE(at + 8)) })
    }
  }
  const value = (tag) => entries.find((entry) => entry.tag === tag)?.value
  const needed = []
  const versions = []
  if (entries.length > 0) {
    const strtab = fileOffset(value(DT_STRTAB))
    if (value(DT_STRSZ) === undefined) throw new Error('ELF: no DT_STRSZ')
    for (const { tag, value: name } of entries) if (tag === DT_NEEDED) needed.push(cString(strtab + name))
    // Elf64_Verneed { vn_version u16, vn_cnt u16, vn_file u32, vn_aux u32, vn_next u32 } and
    // Elf64_Vernaux { vna_hash u32, vna_flags u16, vna_other u16, vna_name u32, vna_next u32 }.
    const verneed = value(DT_VERNEED)
    let at = verneed === undefined ? null : fileOffset(verneed)
    for (let count = value(DT_VERNEEDNUM) ?? 0; at !== null && count > 0; count--) {
      const file = cString(strtab + buffer.readUInt32LE(at + 4))
      let aux = at + buffer.readUInt32LE(at + 8)
      for (let auxCount = buffer.readUInt16LE(at + 2); auxCount > 0; auxCount--) {
        versions.push({ file, name: cString(strtab + buffer.readUInt32LE(aux + 8)) })
        aux += buffer.readUInt32LE(aux + 12)
      }
      const next = buffer.readUInt32LE(at + 12)
      at = next === 0 ? null : at + next
    }
  }
  return { machine, cpu: EM[machine] ?? null, type, interpreter, needed, versions }
}

/**
 * The format and machine of any `.node` (ELF, Mach-O or PE), for the platforms whose binaries
 * can only be identified here, not linked: `{ format, cpu }`.
 */
export function binaryKind(bytes) {
  const buffer = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  if (buffer.length >= 64 && buffer.readUInt32BE(0) === 0x7f454c46) return { format: 'elf', cpu: readElf(buffer).cpu }
  if (buffer.length >= 8 && buffer.readUInt32LE(0) === 0xfeedfacf) {
    const cputype = buffer.readUInt32LE(4)
    return { format: 'macho', cpu: { 0x01000007: 'x64', 0x0100000c: 'arm64' }[cputype] ?? null }
  }
  if (buffer.length >= 64 && buffer.toString('latin1', 0, 2) === 'MZ') {
    const pe = buffer.readUInt32LE(60)
    if (buffer.toString('latin1', pe, pe + 4) === 'PE\0\0') {
      return { format: 'pe', cpu: { 0x8664: 'x64', 0xaa64: 'arm64' }[buffer.readUInt16LE(pe + 4)] ?? null }
    }
  }
  return { format: 'unknown', cpu: null }
}

/**
 * Why the binary `bytes` does not match a platform package's `os`, `cpu` and `libc`: ELF for
 * Linux (machine, libc, glibc floor: see `mismatches`), Mach-O for darwin, PE for win32.
 */
export function binaryMismatches(bytes, { os, cpu, libc }) {
  const [osName] = [os].flat()
  const [cpuName] = [cpu].flat()
  const kind = binaryKind(bytes)
  const format = { linux: 'elf', darwin: 'macho', win32: 'pe' }[osName]
  if (!format) return [`os ${osName}: no binary format known for it`]
  if (kind.format !== format) return [`a ${kind.format} file, not the ${format} binary ${osName} loads`]
  if (format === 'elf') return mismatches(readElf(bytes), { os, cpu, libc })
  return kind.cpu === cpuName ? [] : [`built for ${kind.cpu ?? 'an unknown machine'}, not ${cpuName}`]
}

/** Compares dotted versions numerically ('2.17' < '2.2' is false). */
export function compareVersions(left, right) {
  const a = left.split('.').map(Number)
  const b = right.split('.').map(Number)
  for (let index = 0; index < Math.max(a.length, b.length); index++) {
    const difference = (a[index] ?? 0) - (b[index] ?? 0)
    if (difference !== 0) return difference
  }
  return 0
}

/** The newest GLIBC_x.y the binary needs, or null. */
export function newestGlibc(elf) {
  const glibc = elf.versions
    .map(({ name }) => /^GLIBC_(\d+(?:\.\d+)+)$/.exec(name)?.[1])
    .filter(Boolean)
    .sort(compareVersions)
  return glibc.at(-1) ?? null
}

/** The oldest glibc the gnu binaries must load on (napi-rs's cross toolchain's sysroot). */
export const GLIBC_FLOOR = '2.17'

/**
 * Why `elf` does not match a platform package's `os`, `cpu` and `libc` fields, as a list of
 * sentences (empty when it matches). Linux only: any other `os` is reported as unverifiable.
 */
export function mismatches(elf, { os, cpu, libc }) {
  const problems = []
  const [osName] = [os].flat()
  const [cpuName] = [cpu].flat()
  const [libcName] = [libc ?? []].flat()
  if (osName !== 'linux') return [`os ${osName}: only Linux ELF binaries can be checked here`]
  if (elf.type !== 3) problems.push(`ELF type ${elf.type}, not a shared object (ET_DYN)`)
  if (elf.cpu !== cpuName)
    problems.push(`built for ELF machine ${elf.machine} (${elf.cpu ?? 'unknown'}), not ${cpuName}`)
  const glibcLibraries = elf.needed.filter((name) => /^(libc\.so\.6|ld-linux.*\.so\.\d+)$/.test(name))
  const glibcInterpreter = elf.interpreter && /ld-linux/.test(elf.interpreter)
  const muslInterpreter = elf.interpreter && /ld-musl/.test(elf.interpreter)
  const glibcVersions = elf.versions.filter(({ name }) => name.startsWith('GLIBC_'))
  if (libcName === 'glibc') {
    if (muslInterpreter) problems.push(`interpreter ${elf.interpreter} is musl's`)
    if (!elf.needed.includes('libc.so.6')) problems.push(`needs ${elf.needed.join(', ') || 'nothing'}, not libc.so.6`)
    const newest = newestGlibc(elf)
    if (newest && compareVersions(newest, GLIBC_FLOOR) > 0) {
      problems.push(`needs GLIBC_${newest}, newer than the GLIBC_${GLIBC_FLOOR} floor`)
    }
  } else if (libcName === 'musl') {
    if (glibcInterpreter) problems.push(`interpreter ${elf.interpreter} is glibc's`)
    if (glibcLibraries.length > 0) problems.push(`needs glibc's ${glibcLibraries.join(', ')}`)
    if (glibcVersions.length > 0) problems.push(`needs glibc symbol versions (${glibcVersions[0].name}, ...)`)
    if (!elf.needed.some((name) => /^(libc\.so|libc\.musl-[a-z0-9_]+\.so\.1|ld-musl-[a-z0-9_]+\.so\.1)$/.test(name))) {
      problems.push(`needs ${elf.needed.join(', ') || 'nothing'}: no musl libc`)
    }
  } else {
    problems.push(`libc ${libcName ?? '(none)'}: a Linux package must say glibc or musl`)
  }
  return problems
}

/** The files of a .tgz as `Map(path -> Buffer)` (ustar, as `npm pack` writes it). */
export function untar(gzipped) {
  const tar = gunzipSync(gzipped)
  const files = new Map()
  let longName = null
  for (let at = 0; at + 512 <= tar.length;) {
    const header = tar.subarray(at, at + 512)
    if (header.every((byte) => byte === 0)) break
    const field = (start, length) => header.toString('utf8', start, start + length).replace(/\0.*$/s, '')
    const size = parseInt(field(124, 12).trim() || '0', 8)
    const kind = String.fromCharCode(header[156] || 48)
    const prefix = field(345, 155)
    const name = longName ?? (prefix ? `${prefix}/${field(0, 100)}` : field(0, 100))
    const body = tar.subarray(at + 512, at + 512 + size)
    longName = null
    if (kind === 'L') longName = body.toString('utf8').replace(/\0.*$/s, '')
    else if (kind === '0' || kind === '7') files.set(name, Buffer.from(body))
    at += 512 + Math.ceil(size / 512) * 512
  }
  return files
}
