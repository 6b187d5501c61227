;; A WASI command that attacks its preopens: `argv[1]` names an operation on the first preopen
;; (fd 3), `argv[2]` and `argv[3]` are its paths, taken as the guest gives them (`..`, absolute,
;; through symlinks). It exits with the operation's errno (0 on success); `read` copies what it
;; managed to open to stdout. The host checks the exit code and that nothing outside changed.
;;
;;   read PATH          open PATH (following symlinks) and copy it to stdout
;;   write PATH         create or truncate PATH and write "pwned" into it
;;   trunc PATH         open PATH with O_TRUNC
;;   mkdir PATH         rmdir PATH        unlink PATH
;;   symlink TARGET P   create the symlink P -> TARGET
;;   nrename OLD NEW    rename OLD to NEW          Nrename: NEW in the second preopen (fd 4)
;;   link OLD NEW       hard-link NEW to OLD (following a symlink OLD)   Link: NEW in fd 4
;;   Times PATH         set PATH's access and modification times to now
;;
;; Exit code 100 means too few arguments; 101 an unknown operation.
(module
  (import "wasi_snapshot_preview1" "args_sizes_get" (func $args_sizes_get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "args_get" (func $args_get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $proc_exit (param i32)))
  (import "wasi_snapshot_preview1" "path_open"
    (func $path_open (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_read" (func $fd_read (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "path_create_directory" (func $path_create_directory (param i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "path_remove_directory" (func $path_remove_directory (param i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "path_unlink_file" (func $path_unlink_file (param i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "path_symlink" (func $path_symlink (param i32 i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "path_rename" (func $path_rename (param i32 i32 i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "path_link" (func $path_link (param i32 i32 i32 i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "path_filestat_set_times"
    (func $path_filestat_set_times (param i32 i32 i32 i32 i64 i64 i32) (result i32)))

  ;; 0: argv pointers; 64: argc, 68: argv size; 128: opened fd; 132: byte count; 136: iovec;
  ;; 200: "pwned"; 256: argv strings; 8192: copy buffer.
  (memory (export "memory") 1)
  (data (i32.const 200) "pwned")

  (func $strlen (param $p i32) (result i32) (local $n i32)
    (block $done
      (loop $next
        (br_if $done (i32.eqz (i32.load8_u (i32.add (local.get $p) (local.get $n)))))
        (local.set $n (i32.add (local.get $n) (i32.const 1)))
        (br $next)))
    (local.get $n))

  (func $arg (param $index i32) (result i32) (i32.load (i32.shl (local.get $index) (i32.const 2))))

  ;; Exits with `errno` unless it is 0.
  (func $check (param $errno i32)
    (if (local.get $errno) (then (call $proc_exit (local.get $errno)))))

  ;; Opens `path` under fd 3 with `oflags` and `rights`, following symlinks; the fd is at 128.
  (func $open (param $path i32) (param $oflags i32) (param $rights i64)
    (call $check
      (call $path_open (i32.const 3) (i32.const 1) (local.get $path) (call $strlen (local.get $path))
        (local.get $oflags) (local.get $rights) (i64.const 0) (i32.const 0) (i32.const 128))))

  (func (export "_start") (local $op i32) (local $a i32) (local $b i32) (local $fd i32)
    (call $check (call $args_sizes_get (i32.const 64) (i32.const 68)))
    (if (i32.lt_u (i32.load (i32.const 64)) (i32.const 3)) (then (call $proc_exit (i32.const 100))))
    (if (i32.gt_u (i32.load (i32.const 64)) (i32.const 16)) (then (call $proc_exit (i32.const 100))))
    (if (i32.gt_u (i32.load (i32.const 68)) (i32.const 7000)) (then (call $proc_exit (i32.const 100))))
    (call $check (call $args_get (i32.const 0) (i32.const 256)))
    (local.set $op (i32.load8_u (call $arg (i32.const 1))))
    (local.set $a (call $arg (i32.const 2)))
    (local.set $b
      (if (result i32) (i32.gt_u (i32.load (i32.const 64)) (i32.const 3))
        (then (call $arg (i32.const 3)))
        (else (local.get $a))))

    ;; read: O_RDONLY with FD_READ; copy everything to stdout
    (if (i32.eq (local.get $op) (i32.const 114)) (then
      (call $open (local.get $a) (i32.const 0) (i64.const 2))
      (local.set $fd (i32.load (i32.const 128)))
      (loop $copy
        (i32.store (i32.const 136) (i32.const 8192))
        (i32.store (i32.const 140) (i32.const 32768))
        (call $check (call $fd_read (local.get $fd) (i32.const 136) (i32.const 1) (i32.const 132)))
        (if (i32.load (i32.const 132)) (then
          (i32.store (i32.const 140) (i32.load (i32.const 132)))
          (call $check (call $fd_write (i32.const 1) (i32.const 136) (i32.const 1) (i32.const 132)))
          (br $copy))))
      (return)))
    ;; write: O_CREAT | O_TRUNC with FD_WRITE, then write "pwned"
    (if (i32.eq (local.get $op) (i32.const 119)) (then
      (call $open (local.get $a) (i32.const 9) (i64.const 64))
      (i32.store (i32.const 136) (i32.const 200))
      (i32.store (i32.const 140) (i32.const 5))
      (call $check (call $fd_write (i32.load (i32.const 128)) (i32.const 136) (i32.const 1) (i32.const 132)))
      (return)))
    ;; trunc: O_TRUNC with FD_WRITE
    (if (i32.eq (local.get $op) (i32.const 116)) (then
      (call $open (local.get $a) (i32.const 8) (i64.const 64))
      (return)))
    ;; mkdir
    (if (i32.eq (local.get $op) (i32.const 109)) (then
      (call $check (call $path_create_directory (i32.const 3) (local.get $a) (call $strlen (local.get $a))))
      (return)))
    ;; rmdir
    (if (i32.eq (local.get $op) (i32.const 100)) (then
      (call $check (call $path_remove_directory (i32.const 3) (local.get $a) (call $strlen (local.get $a))))
      (return)))
    ;; unlink
    (if (i32.eq (local.get $op) (i32.const 117)) (then
      (call $check (call $path_unlink_file (i32.const 3) (local.get $a) (call $strlen (local.get $a))))
      (return)))
    ;; symlink TARGET PATH
    (if (i32.eq (local.get $op) (i32.const 115)) (then
      (call $check
        (call $path_symlink (local.get $a) (call $strlen (local.get $a))
          (i32.const 3) (local.get $b) (call $strlen (local.get $b))))
      (return)))
    ;; nrename OLD NEW (fd 3 to fd 3); Nrename: to fd 4
    (if (i32.or (i32.eq (local.get $op) (i32.const 110)) (i32.eq (local.get $op) (i32.const 78))) (then
      (call $check
        (call $path_rename (i32.const 3) (local.get $a) (call $strlen (local.get $a))
          (select (i32.const 4) (i32.const 3) (i32.eq (local.get $op) (i32.const 78)))
          (local.get $b) (call $strlen (local.get $b))))
      (return)))
    ;; link OLD NEW (following OLD if it is a symlink); Link: NEW in fd 4
    (if (i32.or (i32.eq (local.get $op) (i32.const 108)) (i32.eq (local.get $op) (i32.const 76))) (then
      (call $check
        (call $path_link (i32.const 3) (i32.const 1) (local.get $a) (call $strlen (local.get $a))
          (select (i32.const 4) (i32.const 3) (i32.eq (local.get $op) (i32.const 76)))
          (local.get $b) (call $strlen (local.get $b))))
      (return)))
    ;; times: ATIM_NOW | MTIM_NOW
    (if (i32.eq (local.get $op) (i32.const 84)) (then
      (call $check
        (call $path_filestat_set_times (i32.const 3) (i32.const 1) (local.get $a) (call $strlen (local.get $a))
          (i64.const 0) (i64.const 0) (i32.const 10)))
      (return)))
    (call $proc_exit (i32.const 101)))
)
