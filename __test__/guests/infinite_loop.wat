;; A guest that never returns from `spin`, and a quick `add` to show the sandbox is usable after.
(module
  (func (export "spin")
    (loop $forever
      br $forever))
  (func (export "add") (param i32 i32) (result i32)
    local.get 0
    local.get 1
    i32.add))
