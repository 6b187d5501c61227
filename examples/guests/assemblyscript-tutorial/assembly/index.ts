// The tutorial's guest ("WebAssembly Linear Memory") in AssemblyScript: a 2-byte buffer in linear
// memory shared with JavaScript, and the tutorial's three exports.

const BUFFER_SIZE: i32 = 2
const buffer = memory.data(BUFFER_SIZE)

/** The index of the buffer in linear memory. */
export function getWasmMemoryBufferPointer(): usize {
  return buffer
}

/** Stores `value` at index 0 of the buffer. */
export function storeValueInWasmMemoryBufferIndexZero(value: u8): void {
  store<u8>(buffer, value)
}

/** Reads index 1 of the buffer. */
export function readWasmMemoryBufferAndReturnIndexOne(): u8 {
  return load<u8>(buffer + 1)
}
