;; A WASI command that prints, counts its runs in a global, then exits with code 7 through
;; proc_exit (the `unreachable` after it is never reached). Its other exports stay callable
;; after run(): `runs` reads the global, `exit_now` exits from inside a call().
(module
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $proc_exit (param i32)))
  (memory (export "memory") 1)
  (data (i32.const 64) "before exit\n")
  (global $runs (mut i32) (i32.const 0))
  (func (export "_start")
    (global.set $runs (i32.add (global.get $runs) (i32.const 1)))
    (i32.store (i32.const 0) (i32.const 64))
    (i32.store (i32.const 4) (i32.const 12))
    (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))
    (call $proc_exit (i32.const 7))
    unreachable)
  (func (export "runs") (result i32) (global.get $runs))
  (func (export "exit_now") (param i32) (call $proc_exit (local.get 0)))
)
