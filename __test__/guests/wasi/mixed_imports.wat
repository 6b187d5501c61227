;; A command importing WASI and a JS function side by side: it asks `env.pick` for a number,
;; prints "picked N\n" (N a single digit) through WASI and exits with N.
(module
  (import "env" "pick" (func $pick (result i32)))
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $proc_exit (param i32)))
  (memory (export "memory") 1)
  (data (i32.const 64) "picked ?\n")
  (func (export "_start") (local $n i32)
    (local.set $n (call $pick))
    (i32.store8 (i32.const 71) (i32.add (i32.const 48) (i32.rem_u (local.get $n) (i32.const 10))))
    (i32.store (i32.const 0) (i32.const 64))
    (i32.store (i32.const 4) (i32.const 9))
    (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))
    (call $proc_exit (local.get $n)))
)
