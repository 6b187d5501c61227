;; `recurse` calls itself without end until the wasm stack runs out; `depth_ok` stops at n.
(module
  (func $recurse (export "recurse") (param $n i32) (result i32)
    (i32.add
      (call $recurse (i32.add (local.get $n) (i32.const 1)))
      (i32.const 1)))
  (func $depth_ok (export "depth_ok") (param $n i32) (result i32)
    (if (result i32) (i32.eqz (local.get $n))
      (then (i32.const 0))
      (else (i32.add (call $depth_ok (i32.sub (local.get $n) (i32.const 1))) (i32.const 1))))))
