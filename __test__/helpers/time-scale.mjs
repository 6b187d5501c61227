// How much slower than native this process runs: 1 natively; under qemu-user emulation
// (`npm run test:arm64`, scripts/test-arm64.mjs) the runner sets WASM_MEMORY_SANDBOX_TIME_SCALE.
// Specs whose bounds assume native speed multiply those bounds by it, and say so; the lower
// bounds (a timeout fires no sooner than asked) never scale.
export const timeScale = Math.max(1, Number(process.env.WASM_MEMORY_SANDBOX_TIME_SCALE) || 1)

/** `ms` scaled for this machine's speed. */
export const scaled = (ms) => ms * timeScale
