// A WIT world using every WIT type (in exports, imports, resources and world-level functions), and
// the description `component.exports` / `component.imports` give for it (index.d.ts, ComponentItems),
// written by hand: for the `wasm-memory-sandbox types` specs, which compare what componentDts()
// makes of it with what `jco transpile` makes of the same world.

export const witSource = `package demo:kinds@0.1.0;

interface api {
  record point { x: s32, y-coord: f64, label: option<string>, nested: option<option<u8>> }
  enum color { red, hot-pink }
  flags perms { read, write-all }
  variant shape { circle(f32), none, square(point) }
  type pair = tuple<u32, string>;
  type bytes = list<u8>;
  type maybe = option<u32>;
  type res = result<u32, string>;
  resource counter {
    constructor(start: u32);
    get-value: func() -> u64;
    add: func(delta: s64, other: borrow<counter>);
    merge: static func(a: own<counter>, b: borrow<counter>) -> counter;
  }
  resource no-ctor {
    id: func() -> u32;
  }
  prims: func(a: bool, b: s8, c: u8, d: s16, e: u16, f: s32, g: u32, h: s64, i: u64, j: f32, k: f64, l: char, m: string) -> tuple<bool, s8, u64, char>;
  echo-point: func(p: point) -> point;
  try-it: func(in: string, default: bool) -> result<point, color>;
  try-void: func() -> result<_, string>;
  try-err-void: func() -> result<u32>;
  nested-res: func(r: result<u32, string>) -> list<result<_, u8>>;
  opts: func(a: option<option<u32>>, b: option<option<option<u32>>>, c: maybe) -> option<color>;
  lists: func(a: list<s8>, b: list<u16>, c: list<s16>, d: list<u32>, e: list<s32>, f: list<u64>, g: list<s64>, h: list<f32>, i: list<f64>, j: list<string>, k: list<bool>, l: bytes) -> list<list<u8>>;
  tup: func(t: tuple<u8, tuple<string, char>>) -> pair;
  shapes: func(s: shape, c: color, p: perms) -> tuple<shape, perms>;
  make: func() -> counter;
  named-res: func() -> res;
}

interface logger {
  use api.{point};
  resource store {
    constructor(name: string);
    get: func(k: string) -> option<string>;
    open: static func() -> store;
  }
  resource handle {
    id: func() -> u32;
  }
  log: func(message: string, at: point);
  fetch: func(s: borrow<store>) -> result<string, u32>;
}

interface plain {
  hello: func() -> string;
}

world kinds {
  import logger;
  import host-fn: func(x: u32) -> string;
  import plain;
  export api;
  export plain;
  export world-fn: func(a: s64) -> u64;
  export other: interface {
    f: func() -> bool;
  }
}
`

const t = (kind, extra = {}) => ({ kind, ...extra })
const fn = (name, jsName, params, result, extra = {}) => ({
  kind: 'function',
  name,
  jsName,
  params: params.map(([n, ty]) => ({ name: n, type: ty })),
  ...(result ? { result } : {}),
  async: false,
  ...extra,
})
const point = {
  name: 'point',
  kind: 'record',
  fields: [
    { name: 'x', type: t('s32') },
    { name: 'y-coord', type: t('f64') },
    { name: 'label', type: t('option', { type: t('string') }) },
    { name: 'nested', type: t('option', { type: t('option', { type: t('u8') }) }) },
  ],
}
const color = { name: 'color', kind: 'enum', cases: ['red', 'hot-pink'] }
const perms = { name: 'perms', kind: 'flags', flags: ['read', 'write-all'] }
const shape = {
  name: 'shape',
  kind: 'variant',
  cases: [{ name: 'circle', type: t('f32') }, { name: 'none' }, { name: 'square', type: point }],
}
const pair = { name: 'pair', kind: 'tuple', elements: [t('u32'), t('string')] }
const bytes = { name: 'bytes', kind: 'list', element: t('u8') }
const maybe = { name: 'maybe', kind: 'option', type: t('u32') }
const res = { name: 'res', kind: 'result', ok: t('u32'), err: t('string') }
const list = (k) => t('list', { element: typeof k === 'string' ? t(k) : k })
const api = {
  kind: 'interface',
  name: 'demo:kinds/api@0.1.0',
  jsName: 'api',
  functions: [
    fn(
      'prims',
      'prims',
      [
        ['a', t('bool')],
        ['b', t('s8')],
        ['c', t('u8')],
        ['d', t('s16')],
        ['e', t('u16')],
        ['f', t('s32')],
        ['g', t('u32')],
        ['h', t('s64')],
        ['i', t('u64')],
        ['j', t('f32')],
        ['k', t('f64')],
        ['l', t('char')],
        ['m', t('string')],
      ],
      t('tuple', { elements: [t('bool'), t('s8'), t('u64'), t('char')] }),
    ),
    fn('echo-point', 'echoPoint', [['p', point]], point),
    fn(
      'try-it',
      'tryIt',
      [
        ['in', t('string')],
        ['default', t('bool')],
      ],
      t('result', { ok: point, err: color }),
    ),
    fn('try-void', 'tryVoid', [], t('result', { err: t('string') })),
    fn('try-err-void', 'tryErrVoid', [], t('result', { ok: t('u32') })),
    fn(
      'nested-res',
      'nestedRes',
      [['r', t('result', { ok: t('u32'), err: t('string') })]],
      list(t('result', { err: t('u8') })),
    ),
    fn(
      'opts',
      'opts',
      [
        ['a', t('option', { type: t('option', { type: t('u32') }) })],
        ['b', t('option', { type: t('option', { type: t('option', { type: t('u32') }) }) })],
        ['c', maybe],
      ],
      t('option', { type: color }),
    ),
    fn(
      'lists',
      'lists',
      [
        ['a', list('s8')],
        ['b', list('u16')],
        ['c', list('s16')],
        ['d', list('u32')],
        ['e', list('s32')],
        ['f', list('u64')],
        ['g', list('s64')],
        ['h', list('f32')],
        ['i', list('f64')],
        ['j', list('string')],
        ['k', list('bool')],
        ['l', bytes],
      ],
      list(list('u8')),
    ),
    fn(
      'tup',
      'tup',
      [['t', t('tuple', { elements: [t('u8'), t('tuple', { elements: [t('string'), t('char')] })] })]],
      pair,
    ),
    fn(
      'shapes',
      'shapes',
      [
        ['s', shape],
        ['c', color],
        ['p', perms],
      ],
      t('tuple', { elements: [shape, perms] }),
    ),
    fn('make', 'make', [], t('own', { resource: 'counter' })),
    fn('named-res', 'namedRes', [], res),
  ],
  resources: [
    {
      name: 'counter',
      jsName: 'Counter',
      constructor: fn('[constructor]counter', 'constructor', [['start', t('u32')]], t('own', { resource: 'counter' })),
      methods: [
        fn('[method]counter.get-value', 'getValue', [['self', t('borrow', { resource: 'counter' })]], t('u64')),
        fn('[method]counter.add', 'add', [
          ['self', t('borrow', { resource: 'counter' })],
          ['delta', t('s64')],
          ['other', t('borrow', { resource: 'counter' })],
        ]),
      ],
      statics: [
        fn(
          '[static]counter.merge',
          'merge',
          [
            ['a', t('own', { resource: 'counter' })],
            ['b', t('borrow', { resource: 'counter' })],
          ],
          t('own', { resource: 'counter' }),
        ),
      ],
    },
    {
      name: 'no-ctor',
      jsName: 'NoCtor',
      methods: [fn('[method]no-ctor.id', 'id', [['self', t('borrow', { resource: 'no-ctor' })]], t('u32'))],
      statics: [],
    },
  ],
  types: [point, color, perms, shape, pair, bytes, maybe, res].map((type) => ({ name: type.name, type })),
}
const plainFns = [fn('hello', 'hello', [], t('string'))]
/** The description of `kinds` (plus a WASI import, which the types leave to the `wasi` option). */
export const description = {
  exports: {
    'demo:kinds/api@0.1.0': api,
    'demo:kinds/plain@0.1.0': {
      kind: 'interface',
      name: 'demo:kinds/plain@0.1.0',
      jsName: 'plain',
      functions: plainFns,
      resources: [],
      types: [],
    },
    other: {
      kind: 'interface',
      name: 'other',
      jsName: 'other',
      functions: [fn('f', 'f', [], t('bool'))],
      resources: [],
      types: [],
    },
    'world-fn': fn('world-fn', 'worldFn', [['a', t('s64')]], t('u64')),
  },
  imports: {
    // Only the type logger uses: as for a guest that calls nothing of the api it imports. The
    // component jco builds for `kinds` (a core module importing every function of the world)
    // imports all of api's functions and resources, and its description says so.
    'demo:kinds/api@0.1.0': {
      kind: 'interface',
      name: 'demo:kinds/api@0.1.0',
      jsName: 'api',
      functions: [],
      resources: [],
      types: [{ name: 'point', type: point }],
    },
    'demo:kinds/logger@0.1.0': {
      kind: 'interface',
      name: 'demo:kinds/logger@0.1.0',
      jsName: 'logger',
      functions: [
        fn('log', 'log', [
          ['message', t('string')],
          ['at', point],
        ]),
        fn(
          'fetch',
          'fetch',
          [['s', t('borrow', { resource: 'store' })]],
          t('result', { ok: t('string'), err: t('u32') }),
        ),
      ],
      resources: [
        {
          name: 'store',
          jsName: 'Store',
          constructor: fn(
            '[constructor]store',
            'constructor',
            [['name', t('string')]],
            t('own', { resource: 'store' }),
          ),
          methods: [
            fn(
              '[method]store.get',
              'get',
              [
                ['self', t('borrow', { resource: 'store' })],
                ['k', t('string')],
              ],
              t('option', { type: t('string') }),
            ),
          ],
          statics: [fn('[static]store.open', 'open', [], t('own', { resource: 'store' }))],
        },
        {
          name: 'handle',
          jsName: 'Handle',
          methods: [fn('[method]handle.id', 'id', [['self', t('borrow', { resource: 'handle' })]], t('u32'))],
          statics: [],
        },
      ],
      types: [{ name: 'point', type: point }],
    },
    'demo:kinds/plain@0.1.0': {
      kind: 'interface',
      name: 'demo:kinds/plain@0.1.0',
      jsName: 'plain',
      functions: plainFns,
      resources: [],
      types: [],
    },
    'wasi:cli/environment@0.2.0': {
      kind: 'interface',
      name: 'wasi:cli/environment@0.2.0',
      jsName: 'environment',
      functions: [fn('get-arguments', 'getArguments', [], list('string'))],
      resources: [],
      types: [],
    },
    'host-fn': fn('host-fn', 'hostFn', [['x', t('u32')]], t('string')),
  },
}
