// A strict TypeScript consumer, type-checked by `npm test` (tsc --noEmit -p __test__).
// It imports the package the way users do, so the published index.d.ts is what is checked.
import { BufferSandbox } from 'wasm-memory-sandbox'

const sandbox: BufferSandbox = new BufferSandbox()
sandbox.storeValueInWasmMemoryBufferIndexZero(24)
const memory: Buffer = sandbox.memory()
const pointer: number = sandbox.getWasmMemoryBufferPointer()
const first: number | undefined = memory[pointer]
memory[pointer + 1] = 15
const second: number = sandbox.readWasmMemoryBufferAndReturnIndexOne()
const guestBuffer: Buffer = sandbox.buffer()
const previousPages: number = sandbox.grow(1)
const bytes: number = sandbox.memorySize
const isDisposed: boolean = sandbox.disposed
sandbox.dispose()

function scoped(): number {
  using scopedSandbox = new BufferSandbox()
  return scopedSandbox.memory().length
}

// @ts-expect-error the value is a number, not a string
sandbox.storeValueInWasmMemoryBufferIndexZero('15')
// @ts-expect-error the value is required
sandbox.storeValueInWasmMemoryBufferIndexZero()
// @ts-expect-error memory() returns a Buffer, not a string
const notAString: string = sandbox.memory()
// @ts-expect-error memorySize is read-only
sandbox.memorySize = 0
// @ts-expect-error the constructor takes no arguments
new BufferSandbox('guest.wasm')

export { first, second, guestBuffer, previousPages, bytes, isDisposed, scoped, notAString }
