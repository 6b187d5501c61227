// The tutorial's scenario in its AssemblyScript form: the module grows its memory by a page and
// writes 24 at address 0 when it starts; JS reads it, writes 15 at address 1, and the module reads
// that back. Built as the tutorial builds it: `asc index.ts`, default options.

// One page more than the module starts with, as the tutorial does before using the memory.
memory.grow(1)

// Written by wasm at start, read by JS.
store<u8>(0, 24)

/** Reads address 1, which JS writes. */
export function readWasmMemoryAndReturnIndexOne(): i32 {
  return load<u8>(1)
}
