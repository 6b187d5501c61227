// WebAssembly text to binary for the WebAssembly namespace specs (which, like the JS API, take
// binary modules only), with binaryen (a dependency of the AssemblyScript compiler).
import binaryen from 'binaryen'

/** The binary of a module in WebAssembly text. */
export function wat(text) {
  const module = binaryen.parseText(text)
  try {
    module.setFeatures(binaryen.Features.All)
    if (!module.validate()) throw new Error('invalid module text')
    return module.emitBinary()
  } finally {
    module.dispose()
  }
}
