// SHA-256 (FIPS 180-4) over bytes the host writes into linear memory: a compute-bound guest for
// comparing the run time of code from Cranelift, Winch and V8. Built by scripts/build-guests.mjs
// with `--runtime stub`.

const K: StaticArray<u32> = [
  0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5, 0xd807aa98,
  0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786,
  0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da, 0x983e5152, 0xa831c66d, 0xb00327c8,
  0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13,
  0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819,
  0xd6990624, 0xf40e3585, 0x106aa070, 0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a,
  0x5b9cca4f, 0x682e6ff3, 0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7,
  0xc67178f2,
]

const state = new StaticArray<u32>(8)
const schedule = new StaticArray<u32>(64)
const block = new StaticArray<u8>(64)
const digestBytes = new StaticArray<u8>(32)

/** Reserves `length` bytes in linear memory for the host to write into. */
export function alloc(length: i32): usize {
  return heap.alloc(<usize>length)
}

function compress(pointer: usize): void {
  for (let index = 0; index < 16; index++) {
    const at = pointer + <usize>(index << 2)
    unchecked(
      (schedule[index] =
        ((<u32>load<u8>(at)) << 24) |
        ((<u32>load<u8>(at + 1)) << 16) |
        ((<u32>load<u8>(at + 2)) << 8) |
        (<u32>load<u8>(at + 3))),
    )
  }
  for (let index = 16; index < 64; index++) {
    const w15 = unchecked(schedule[index - 15])
    const w2 = unchecked(schedule[index - 2])
    const s0 = rotr<u32>(w15, 7) ^ rotr<u32>(w15, 18) ^ (w15 >>> 3)
    const s1 = rotr<u32>(w2, 17) ^ rotr<u32>(w2, 19) ^ (w2 >>> 10)
    unchecked((schedule[index] = unchecked(schedule[index - 16]) + s0 + unchecked(schedule[index - 7]) + s1))
  }
  let a = unchecked(state[0])
  let b = unchecked(state[1])
  let c = unchecked(state[2])
  let d = unchecked(state[3])
  let e = unchecked(state[4])
  let f = unchecked(state[5])
  let g = unchecked(state[6])
  let h = unchecked(state[7])
  for (let index = 0; index < 64; index++) {
    const s1 = rotr<u32>(e, 6) ^ rotr<u32>(e, 11) ^ rotr<u32>(e, 25)
    const choice = (e & f) ^ (~e & g)
    const t1 = h + s1 + choice + unchecked(K[index]) + unchecked(schedule[index])
    const s0 = rotr<u32>(a, 2) ^ rotr<u32>(a, 13) ^ rotr<u32>(a, 22)
    const majority = (a & b) ^ (a & c) ^ (b & c)
    const t2 = s0 + majority
    h = g
    g = f
    f = e
    e = d + t1
    d = c
    c = b
    b = a
    a = t1 + t2
  }
  unchecked((state[0] += a))
  unchecked((state[1] += b))
  unchecked((state[2] += c))
  unchecked((state[3] += d))
  unchecked((state[4] += e))
  unchecked((state[5] += f))
  unchecked((state[6] += g))
  unchecked((state[7] += h))
}

/** Hashes `length` bytes at `pointer`; returns where the 32-byte digest is. */
export function sha256(pointer: usize, length: i32): usize {
  unchecked((state[0] = 0x6a09e667))
  unchecked((state[1] = 0xbb67ae85))
  unchecked((state[2] = 0x3c6ef372))
  unchecked((state[3] = 0xa54ff53a))
  unchecked((state[4] = 0x510e527f))
  unchecked((state[5] = 0x9b05688c))
  unchecked((state[6] = 0x1f83d9ab))
  unchecked((state[7] = 0x5be0cd19))
  const whole = length & ~63
  for (let offset = 0; offset < whole; offset += 64) compress(pointer + <usize>offset)
  const rest = length - whole
  const blockPointer = changetype<usize>(block)
  memory.fill(blockPointer, 0, 64)
  memory.copy(blockPointer, pointer + <usize>whole, <usize>rest)
  store<u8>(blockPointer + <usize>rest, 0x80)
  if (rest >= 56) {
    compress(blockPointer)
    memory.fill(blockPointer, 0, 64)
  }
  const bits = (<u64>length) << 3
  for (let index = 0; index < 8; index++) store<u8>(blockPointer + 63 - <usize>index, <u8>(bits >>> (index << 3)))
  compress(blockPointer)
  const out = changetype<usize>(digestBytes)
  for (let index = 0; index < 8; index++) {
    const word = unchecked(state[index])
    store<u8>(out + <usize>(index << 2), <u8>(word >>> 24))
    store<u8>(out + <usize>(index << 2) + 1, <u8>(word >>> 16))
    store<u8>(out + <usize>(index << 2) + 2, <u8>(word >>> 8))
    store<u8>(out + <usize>(index << 2) + 3, <u8>word)
  }
  return out
}
