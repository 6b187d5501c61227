;; A component made of two core modules, each with its own memory (one page to start), and
;; exports that grow or measure each: `maxMemoryBytes` must hold for every memory.
(component
  (core module $a
    (memory 1)
    (func (export "grow") (param $pages i32) (result i32) (memory.grow (local.get $pages)))
    (func (export "size") (result i32) (memory.size)))
  (core module $b
    (memory 1)
    (func (export "grow") (param $pages i32) (result i32) (memory.grow (local.get $pages)))
    (func (export "size") (result i32) (memory.size)))
  (core instance $ia (instantiate $a))
  (core instance $ib (instantiate $b))
  ;; memory.grow on the first module's memory: the previous size in pages, or -1.
  (func (export "grow-a") (param "pages" u32) (result s32) (canon lift (core func $ia "grow")))
  (func (export "size-a") (result u32) (canon lift (core func $ia "size")))
  ;; The same on the second module's memory.
  (func (export "grow-b") (param "pages" u32) (result s32) (canon lift (core func $ib "grow")))
  (func (export "size-b") (result u32) (canon lift (core func $ib "size"))))
