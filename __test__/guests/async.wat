;; Exports for the async-call specs: plain arithmetic, a call through a JS import (which may
;; return a Promise), a counted busy loop, an endless loop, i64 and multi-value results, and a
;; guest-side write the JS side can watch through a view.
(module
  (import "env" "get" (func $get (param i32) (result i32)))
  (import "env" "note" (func $note (param i32)))
  (memory (export "memory") 1)
  (func (export "add") (param i32 i32) (result i32) (i32.add (local.get 0) (local.get 1)))
  (func (export "wide") (param i64) (result i64) (i64.mul (local.get 0) (i64.const 3)))
  (func (export "pair") (param i32) (result i32 i32) (local.get 0) (i32.mul (local.get 0) (i32.const 2)))
  (func (export "viaImport") (param i32) (result i32)
    (i32.add (call $get (local.get 0)) (i32.const 1)))
  (func (export "twoImports") (param i32) (result i32)
    (i32.add (call $get (local.get 0)) (call $get (i32.add (local.get 0) (i32.const 1)))))
  (func (export "notify") (param i32) (call $note (local.get 0)))
  ;; Counts to n (a busy loop of about n iterations); returns n.
  (func (export "spin") (param i32) (result i32) (local i32)
    (loop $l
      (local.set 1 (i32.add (local.get 1) (i32.const 1)))
      (br_if $l (i32.lt_u (local.get 1) (local.get 0))))
    (local.get 1))
;; `spin`, telling the host when it starts (note 0) and ends (note 1).
  (func (export "markedSpin") (param i32) (result i32) (local i32)
    (call $note (i32.const 0))
    (loop $l
      (local.set 1 (i32.add (local.get 1) (i32.const 1)))
      (br_if $l (i32.lt_u (local.get 1) (local.get 0))))
    (call $note (i32.const 1))
    (local.get 1))
  ;; Writes 1, 2, 3... at byte 0 forever.
  (func (export "forever") (local i32)
    (loop $l
      (local.set 0 (i32.add (local.get 0) (i32.const 1)))
      (i32.store8 (i32.const 0) (local.get 0))
      (br $l)))
)
