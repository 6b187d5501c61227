;; A component whose core memory starts at 2000 pages (125 MiB): instantiating it under a smaller
;; `maxMemoryBytes` fails with a coded error.
(component
  (core module $m
    (memory 2000)
    (func (export "size") (result i32) (memory.size)))
  (core instance $i (instantiate $m))
  ;; The memory's size in pages.
  (func (export "size") (result u32) (canon lift (core func $i "size"))))
