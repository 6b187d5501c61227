;; Grows its memory one page at a time until memory.grow fails (-1) or wasm32's 65536 pages.
(module
  (memory (export "memory") 1)
  (func (export "bomb") (result i32)
    (block $done
      (loop $grow
        (br_if $done (i32.eq (memory.grow (i32.const 1)) (i32.const -1)))
        (br_if $done (i32.ge_u (memory.size) (i32.const 65536)))
        br $grow))
    memory.size)
  (func (export "pages") (result i32)
    memory.size))
