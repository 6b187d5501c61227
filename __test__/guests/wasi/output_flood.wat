;; A WASI command that floods its output: 16,384 writes of 64 KiB of 'x' to
;; stdout (1 GiB in all) and one line to stderr. It counts the writes that failed (exported as
;; `failures`) and exits with the errno of the last failed write, or 0 if none failed.
(module
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
  (memory (export "memory") 2)
  (data (i32.const 32) "flooded\n")
  (global $failures (mut i32) (i32.const 0))
  (func (export "failures") (result i32) (global.get $failures))
  (func (export "_start") (local $i i32) (local $errno i32) (local $last i32)
    (memory.fill (i32.const 65536) (i32.const 120) (i32.const 65536))
    (i32.store (i32.const 0) (i32.const 65536))
    (i32.store (i32.const 4) (i32.const 65536))
    (loop $write
      (local.set $errno (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))
      (if (local.get $errno) (then
        (local.set $last (local.get $errno))
        (global.set $failures (i32.add (global.get $failures) (i32.const 1)))))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $write (i32.lt_u (local.get $i) (i32.const 16384))))
    (i32.store (i32.const 16) (i32.const 32))
    (i32.store (i32.const 20) (i32.const 8))
    (drop (call $fd_write (i32.const 2) (i32.const 16) (i32.const 1) (i32.const 24)))
    (if (local.get $last) (then (call $exit (local.get $last)))))
)
