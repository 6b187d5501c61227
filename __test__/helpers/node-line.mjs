// What differs between the Node lines the suite runs on, in one place, so each spec tests every
// line for what it does there (README, "Node lines").

/** The running Node's major version. */
export const nodeLine = Number(process.versions.node.split('.')[0])

/**
 * Transferring an external ArrayBuffer (a zero-copy view's): Node 20 silently sends a copy and
 * leaves the view attached; from Node 22 on, `structuredClone`/`postMessage` with it in the
 * transfer list throw a `DataCloneError` and send nothing.
 */
export const transferOfExternalBufferThrows = nodeLine >= 22

/** V8's message when a typed array over a detached buffer is iterated: Node 26 added "or out-of-bounds". */
export const detachedIterationMessage =
  nodeLine >= 26 ? /on a detached or out-of-bounds ArrayBuffer$/ : /on a detached ArrayBuffer$/
