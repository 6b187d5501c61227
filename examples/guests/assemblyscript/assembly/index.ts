// An AssemblyScript guest that works on bytes the host puts in its linear memory.
// Compiled with `--runtime stub`; `assert` failures call the host's `env.abort(msg, file, line, col)`.

/** Reserves `length` bytes in linear memory for the host to write into. */
export function alloc(length: i32): usize {
  return heap.alloc(<usize>length)
}

/** A 31-based rolling hash of `length` bytes at `pointer`. */
export function checksum(pointer: usize, length: i32): u32 {
  let hash: u32 = 0
  for (let index = 0; index < length; index++) {
    hash = hash * 31 + <u32>load<u8>(pointer + <usize>index)
  }
  return hash
}

/** Fills `length` bytes at `pointer` with `value`. */
export function fill(pointer: usize, length: i32, value: u8): void {
  memory.fill(pointer, value, <usize>length)
}

/** Returns `count`, which must be positive: otherwise the guest aborts through `env.abort`. */
export function requirePositive(count: i32): i32 {
  assert(count > 0, 'count must be positive')
  return count
}
