'use strict'
// What the JS API needs from a module's bytes that wasmtime does not report: its custom sections,
// and the function index behind each function export (an exported function's `name`).
// Only called on bytes wasmtime has already validated.

const decoder = new TextDecoder()

/** Reads an unsigned LEB128 number at `state.offset`. */
function readU32(bytes, state) {
  let result = 0
  let shift = 0
  for (;;) {
    const byte = bytes[state.offset++]
    result += (byte & 0x7f) * 2 ** shift
    if ((byte & 0x80) === 0) return result
    shift += 7
  }
}

function readName(bytes, state) {
  const length = readU32(bytes, state)
  const name = decoder.decode(bytes.subarray(state.offset, state.offset + length))
  state.offset += length
  return name
}

/** Calls `visit(id, start, end)` for each section. */
function forEachSection(bytes, visit) {
  const state = { offset: 8 }
  while (state.offset < bytes.length) {
    const id = bytes[state.offset++]
    const size = readU32(bytes, state)
    const start = state.offset
    visit(id, start, start + size)
    state.offset = start + size
  }
}

/** Copies of the payloads of the custom sections named `name`, in order. */
function customSections(bytes, name) {
  const sections = []
  forEachSection(bytes, (id, start, end) => {
    if (id !== 0) return
    const state = { offset: start }
    if (readName(bytes, state) === name) sections.push(bytes.slice(state.offset, end).buffer)
  })
  return sections
}

/** A map from each function export's name to its function index. */
function exportedFunctionIndexes(bytes) {
  const indexes = new Map()
  forEachSection(bytes, (id, start) => {
    if (id !== 7) return
    const state = { offset: start }
    const count = readU32(bytes, state)
    for (let i = 0; i < count; i++) {
      const name = readName(bytes, state)
      const kind = bytes[state.offset++]
      const index = readU32(bytes, state)
      if (kind === 0) indexes.set(name, index)
    }
  })
  return indexes
}

module.exports = { customSections, exportedFunctionIndexes }
