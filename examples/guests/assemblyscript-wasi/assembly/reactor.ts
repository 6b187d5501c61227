// An AssemblyScript WASI reactor (built with `--exportStart _initialize`): the host initialises
// it at instantiation and then calls its exports; each export may print through WASI.

let calls = 0

/** Prints `count` lines to stdout and returns how many lines it has printed in all. */
export function shout(count: i32): i32 {
  for (let index = 0; index < count; index++) {
    calls++
    console.log(`line ${calls}`)
  }
  return calls
}

/** The wall clock in milliseconds, from WASI's clock_time_get. */
export function now(): f64 {
  return <f64>Date.now()
}
