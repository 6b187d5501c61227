;; A command whose behaviour `argv[1]`'s first letter picks, to show that limits apply in run():
;;   spin    loops forever (timeoutMs, fuel)
;;   grow    grows memory by 64 pages; exits 1 if memory.grow failed (maxMemoryBytes), else 0
;;   trap    prints "partial output\n", then reaches `unreachable`
;;   big     exits with 200, past the range a Unix shell leaves to programs (still an exit code)
(module
  (import "wasi_snapshot_preview1" "args_sizes_get" (func $args_sizes_get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "args_get" (func $args_get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $proc_exit (param i32)))
  (memory (export "memory") 1)
  (data (i32.const 512) "partial output\n")
  (func (export "_start") (local $op i32)
    (drop (call $args_sizes_get (i32.const 0) (i32.const 4)))
    (if (i32.lt_u (i32.load (i32.const 0)) (i32.const 2)) (then (call $proc_exit (i32.const 100))))
    (if (i32.gt_u (i32.load (i32.const 4)) (i32.const 256)) (then (call $proc_exit (i32.const 100))))
    (drop (call $args_get (i32.const 16) (i32.const 1024)))
    (local.set $op (i32.load8_u (i32.load (i32.const 20))))
    ;; s: spin
    (if (i32.eq (local.get $op) (i32.const 115)) (then (loop $forever (br $forever))))
    ;; g: grow
    (if (i32.eq (local.get $op) (i32.const 103)) (then
      (call $proc_exit (i32.eq (memory.grow (i32.const 64)) (i32.const -1)))))
    ;; t: trap after output
    (if (i32.eq (local.get $op) (i32.const 116)) (then
      (i32.store (i32.const 8) (i32.const 512))
      (i32.store (i32.const 12) (i32.const 15))
      (drop (call $fd_write (i32.const 1) (i32.const 8) (i32.const 1) (i32.const 0)))
      unreachable))
    ;; b: an exit code of 126 or more
    (if (i32.eq (local.get $op) (i32.const 98)) (then (call $proc_exit (i32.const 200))))
    (call $proc_exit (i32.const 101)))
)
