;; A component importing a WASI version no host provides (`wasi:cli/environment@0.2.99`) and
;; exporting `count-args: func() -> u32`, which calls its `get-arguments`. wasmtime's linker treats
;; 0.2 patch versions as compatible (an import of 0.2.99 resolves to the 0.2.x the host defines),
;; as jco does (it drops the version): future-wasi.wat imports a version nothing provides.
(component
  (import "wasi:cli/environment@0.2.99" (instance $env
    (export "get-arguments" (func (result (list string))))))
  ;; Memory and allocator first: lowering get-arguments needs both.
  (core module $heap
    (memory (export "memory") 1)
    (global $bump (mut i32) (i32.const 1024))
    (func (export "cabi_realloc") (param $old i32) (param $old_size i32) (param $align i32) (param $new_size i32) (result i32)
      (local $ptr i32)
      (local.set $ptr
        (i32.and
          (i32.add (global.get $bump) (i32.sub (local.get $align) (i32.const 1)))
          (i32.sub (i32.const 0) (local.get $align))))
      (global.set $bump (i32.add (local.get $ptr) (local.get $new_size)))
      (if (i32.gt_u (global.get $bump) (i32.mul (memory.size) (i32.const 65536)))
        (then unreachable))
      (local.get $ptr)))
  (core instance $heap (instantiate $heap))
  (core func $get-arguments (canon lower (func $env "get-arguments") (memory (core memory $heap "memory")) (realloc (core func $heap "cabi_realloc"))))
  (core module $main
    (import "env" "memory" (memory 1))
    (import "env" "get-arguments" (func $get-arguments (param i32)))
    ;; The list's (ptr, len) is written at 8; its length is the answer.
    (func (export "count-args") (result i32)
      (call $get-arguments (i32.const 8))
      (i32.load (i32.const 12))))
  (core instance $main (instantiate $main
    (with "env" (instance
      (export "memory" (memory $heap "memory"))
      (export "get-arguments" (func $get-arguments))))))
  (func (export "count-args") (result u32) (canon lift (core func $main "count-args"))))
