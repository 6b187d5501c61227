;; A component exporting `greet: func(person: person) -> string` (record person { name: string,
;; age: u32 }) whose core code does nothing but return a constant string: a call's time is all the
;; host's (lowering the record, lifting the string). For the benchmark, beside jco on V8.
(component
  (core module $m
    (memory (export "memory") 1)
    ;; The bump allocator's next free byte. Arguments live only during a call, so each call
    ;; starts again from the heap's base: the memory does not grow however many calls are made.
    (global $bump (mut i32) (i32.const 1024))
    (func (export "cabi_realloc") (param $old i32) (param $old_size i32) (param $align i32) (param $new_size i32) (result i32)
      (local $ptr i32)
      (local $end i32)
      (local.set $ptr
        (i32.and
          (i32.add (global.get $bump) (i32.sub (local.get $align) (i32.const 1)))
          (i32.sub (i32.const 0) (local.get $align))))
      (local.set $end (i32.add (local.get $ptr) (local.get $new_size)))
      (if (i32.gt_u (local.get $end) (i32.mul (memory.size) (i32.const 65536)))
        (then
          (if (i32.eq
                (memory.grow
                  (i32.shr_u
                    (i32.add (i32.sub (local.get $end) (i32.mul (memory.size) (i32.const 65536))) (i32.const 65535))
                    (i32.const 16)))
                (i32.const -1))
            (then unreachable))))
      (if (local.get $old_size)
        (then (memory.copy (local.get $ptr) (local.get $old) (local.get $old_size))))
      (global.set $bump (local.get $end))
      (local.get $ptr))
    ;; greet(name_ptr, name_len, age) -> pointer to the result string's (ptr, len).
    (func (export "greet") (param $name_ptr i32) (param $name_len i32) (param $age i32) (result i32)
      (global.set $bump (i32.const 1024))
      (i32.const 16))
    (data (i32.const 16) "\20\00\00\00\0d\00\00\00")
    (data (i32.const 32) "Hello, world!"))
  (core instance $i (instantiate $m))
  ;; A type defined in a world is one of its imports (as componentize-js encodes greeter.wit).
  (type $person-record (record (field "name" string) (field "age" u32)))
  (import "person" (type $person (eq $person-record)))
  (func $greet (param "person" $person) (result string)
    (canon lift (core func $i "greet") (memory (core memory $i "memory")) (realloc (core func $i "cabi_realloc"))))
  (export "greet" (func $greet)))
