;; More parameters than the canonical ABI passes flat (17 u32: the limit is 16), both ways: the
;; export `echo17` gets them in memory (the host allocates them with the guest's realloc) and
;; returns a tuple through a return pointer; `call-sum17` calls the import `sum17` with them in
;; memory (the host reads them there). For the Component specs.
(component
  (import "sum17" (func $sum17 (param "p1" u32) (param "p2" u32) (param "p3" u32) (param "p4" u32) (param "p5" u32) (param "p6" u32) (param "p7" u32) (param "p8" u32) (param "p9" u32) (param "p10" u32) (param "p11" u32) (param "p12" u32) (param "p13" u32) (param "p14" u32) (param "p15" u32) (param "p16" u32) (param "p17" u32) (result u32)))
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
      (local.get $ptr)))
  (core instance $heap (instantiate $heap))
  (core func $sum17 (canon lower (func $sum17) (memory (core memory $heap "memory")) (realloc (core func $heap "cabi_realloc"))))
  (core module $m
    (import "host" "sum17" (func $sum17 (param i32) (result i32)))
    (import "heap" "memory" (memory 1))
    ;; Stores 1..17 at 256 and passes their address.
    (func (export "call-sum17") (result i32)
      (i32.store offset=0 (i32.const 256) (i32.const 1))
      (i32.store offset=4 (i32.const 256) (i32.const 2))
      (i32.store offset=8 (i32.const 256) (i32.const 3))
      (i32.store offset=12 (i32.const 256) (i32.const 4))
      (i32.store offset=16 (i32.const 256) (i32.const 5))
      (i32.store offset=20 (i32.const 256) (i32.const 6))
      (i32.store offset=24 (i32.const 256) (i32.const 7))
      (i32.store offset=28 (i32.const 256) (i32.const 8))
      (i32.store offset=32 (i32.const 256) (i32.const 9))
      (i32.store offset=36 (i32.const 256) (i32.const 10))
      (i32.store offset=40 (i32.const 256) (i32.const 11))
      (i32.store offset=44 (i32.const 256) (i32.const 12))
      (i32.store offset=48 (i32.const 256) (i32.const 13))
      (i32.store offset=52 (i32.const 256) (i32.const 14))
      (i32.store offset=56 (i32.const 256) (i32.const 15))
      (i32.store offset=60 (i32.const 256) (i32.const 16))
      (i32.store offset=64 (i32.const 256) (i32.const 17))
      (call $sum17 (i32.const 256)))
    ;; The 17 parameters are at $params: returns the address of (first, last).
    (func (export "echo17") (param $params i32) (result i32)
      (i32.store (i32.const 512) (i32.load (local.get $params)))
      (i32.store (i32.const 516) (i32.load offset=64 (local.get $params)))
      (i32.const 512)))
  (core instance $i
    (instantiate $m
      (with "host" (instance (export "sum17" (func $sum17))))
      (with "heap" (instance $heap))))
  (func (export "call-sum17") (result u32) (canon lift (core func $i "call-sum17")))
  (func (export "echo17") (param "p1" u32) (param "p2" u32) (param "p3" u32) (param "p4" u32) (param "p5" u32) (param "p6" u32) (param "p7" u32) (param "p8" u32) (param "p9" u32) (param "p10" u32) (param "p11" u32) (param "p12" u32) (param "p13" u32) (param "p14" u32) (param "p15" u32) (param "p16" u32) (param "p17" u32) (result (tuple u32 u32))
    (canon lift (core func $i "echo17") (memory (core memory $heap "memory")) (realloc (core func $heap "cabi_realloc")))))
