// The demo:types `mirror` interface (examples/components/wit/types.wit): one imported function per
// WIT type the api's echo-* functions cover, `mirror-<type>(v) -> same type`, which the guest's
// `through-<type>` exports call. Every instance of the types component needs it among its imports.

/** The suffixes of `mirror-<type>` (and `through-<type>`, `echo-<type>`). */
export const mirrorTypes = [
  'bool',
  's8',
  'u8',
  's16',
  'u16',
  's32',
  'u32',
  's64',
  'u64',
  'f32',
  'f64',
  'char',
  'string',
  'list-u8',
  'list-s8',
  'list-u16',
  'list-s16',
  'list-u32',
  'list-s32',
  'list-u64',
  'list-s64',
  'list-f32',
  'list-f64',
  'list-string',
  'list-record',
  'tuple',
  'point',
  'record',
  'variant',
  'enum',
  'flags',
  'option-u32',
  'option-option-u32',
  'option-string',
  'result',
  'result-unit',
  'list-result',
]

/** `mirror-list-u8` -> `mirrorListU8`, as jco names it. */
export const mirrorJsName = (type) => `mirror${type.replace(/(^|-)([a-z0-9])/g, (_, __, c) => c.toUpperCase())}`

/** An implementation of the interface: every function returns what it received. */
export function mirrorImports() {
  return Object.fromEntries(mirrorTypes.map((type) => [mirrorJsName(type), (value) => value]))
}
