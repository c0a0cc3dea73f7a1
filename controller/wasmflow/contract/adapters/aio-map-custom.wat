;; AIO's map (wasm-graph:processor/map@1.1.0) over the map:custom/custom interface of Azure's composition sample:
;; a rules binary written for the sample plugs in unchanged (contract/wit/aio/map-custom/custom.wit).
;;
;; process: the payload of the item (a message's, or a bare buffer-or-bytes) goes to custom.process as bytes; the
;; item comes back with the returned bytes as its payload and everything else as it came (the host's buffer handles
;; for the topic and the rest are handed back to the host untouched). A payload given as a host buffer is read
;; with buffer.read and its handle dropped. On an error, and for a snapshot (the sample's interface has no frames),
;; every handle the item carried is dropped and the error's text is returned.
;; init: the graph's properties go to custom.init; the module schemas are not part of the sample's interface.
;;
;; Layouts (canonical ABI, wasm-graph 1.1.0): data-model is 128 bytes, 8-aligned, its case at +8. In a message
;; (+8): timestamp.node-id at +24, topic +40, content-type +52 (option, case at +56), payload +68, properties +80,
;; schema +88 (option; message-schema at +92, its case at +96). In a snapshot: format at +40, frame at +60.
;; A buffer-or-bytes / buffer-or-string is a u8 case (0 = buffer) and, at +4, a handle or a (pointer, length).
(module
  (import "wasm-graph:processor/types@1.1.0" "[method]buffer.read" (func $buffer_read (param i32 i32)))
  (import "wasm-graph:processor/types@1.1.0" "[resource-drop]buffer" (func $buffer_drop (param i32)))
  (import "map:custom/custom" "process" (func $custom_process (param i32 i32 i32)))
  (import "map:custom/custom" "init" (func $custom_init (param i32 i32) (result i32)))
  (memory (export "memory") 1)
  ;; 8..144 the return area (result<data-model, error>: 136 bytes), 160..176 custom.process's, 192..200
  ;; buffer.read's; 256.. fixed texts; the heap starts at 1024.
  (data (i32.const 256) "map:custom adapter: a snapshot has no payload for map:custom/custom")
  (global $ret i32 (i32.const 8))
  (global $custom_ret i32 (i32.const 160))
  (global $read_ret i32 (i32.const 192))
  (global $heap i32 (i32.const 1024))
  (global $bump (mut i32) (i32.const 1024))
  (func $realloc (export "cabi_realloc") (param $old i32) (param $old_size i32) (param $align i32) (param $size i32) (result i32)
    (local $ptr i32) (local $need i32)
    (local.set $ptr
      (i32.and (i32.add (global.get $bump) (i32.sub (local.get $align) (i32.const 1)))
               (i32.sub (i32.const 0) (local.get $align))))
    (global.set $bump (i32.add (local.get $ptr) (local.get $size)))
    (local.set $need (i32.sub (global.get $bump) (i32.mul (memory.size) (i32.const 65536))))
    (if (i32.gt_s (local.get $need) (i32.const 0))
      (then (if (i32.lt_s (memory.grow (i32.add (i32.div_u (local.get $need) (i32.const 65536)) (i32.const 1))) (i32.const 0))
        (then unreachable))))
    (if (i32.and (i32.ne (local.get $old) (i32.const 0)) (i32.ne (local.get $old_size) (i32.const 0)))
      (then (memory.copy (local.get $ptr) (local.get $old) (local.get $old_size))))
    (local.get $ptr))
  (func $reset (param i32) (global.set $bump (global.get $heap)))

  ;; Drop the handle of the buffer-or-* at $at when it is a buffer.
  (func $drop_at (param $at i32)
    (if (i32.eqz (i32.load8_u (local.get $at)))
      (then (call $buffer_drop (i32.load offset=4 (local.get $at))))))

  ;; Every handle a message (at $m, its case) carries, the payload's excepted (read and dropped already).
  (func $drop_message (param $m i32)
    (local $p i32) (local $end i32)
    (call $drop_at (i32.add (local.get $m) (i32.const 24)))
    (call $drop_at (i32.add (local.get $m) (i32.const 40)))
    (if (i32.load8_u offset=52 (local.get $m))
      (then (call $drop_at (i32.add (local.get $m) (i32.const 56)))))
    (local.set $p (i32.load offset=80 (local.get $m)))
    (local.set $end (i32.add (local.get $p) (i32.mul (i32.load offset=84 (local.get $m)) (i32.const 24))))
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $p) (local.get $end)))
        (call $drop_at (local.get $p))
        (call $drop_at (i32.add (local.get $p) (i32.const 12)))
        (local.set $p (i32.add (local.get $p) (i32.const 24)))
        (br $next)))
    (if (i32.load8_u offset=88 (local.get $m))
      (then
        (call $drop_at (i32.add (local.get $m) (i32.const 96)))
        (if (i32.load8_u offset=92 (local.get $m))
          (then (call $drop_at (i32.add (local.get $m) (i32.const 108))))))))

  ;; An error result whose text is (ptr, len).
  (func $fail (param $ptr i32) (param $len i32) (result i32)
    (i32.store8 (global.get $ret) (i32.const 1))
    (i32.store offset=8 (global.get $ret) (local.get $ptr))
    (i32.store offset=12 (global.get $ret) (local.get $len))
    (global.get $ret))

  (func (export "wasm-graph:processor/map@1.1.0#init") (param i32 i32 i32 i32) (result i32)
    (call $custom_init (local.get 0) (local.get 1)))
  (func (export "cabi_post_wasm-graph:processor/map@1.1.0#init") (param i32) (call $reset (local.get 0)))

  (func (export "wasm-graph:processor/map@1.1.0#process") (param $item i32) (result i32)
    (local $case i32) (local $payload i32) (local $ptr i32) (local $len i32)
    (local.set $case (i32.load8_u (local.get $item)))
    ;; A snapshot: drop its handles (node id, format, frame) and refuse it.
    (if (i32.eq (local.get $case) (i32.const 2))
      (then
        (call $drop_at (i32.add (local.get $item) (i32.const 32)))
        (call $drop_at (i32.add (local.get $item) (i32.const 48)))
        (call $drop_at (i32.add (local.get $item) (i32.const 68)))
        (return (call $fail (i32.const 256) (i32.const 67)))))
    ;; Where the payload is: a message's at +76, a bare buffer-or-bytes' at +8.
    (local.set $payload
      (i32.add (local.get $item) (select (i32.const 76) (i32.const 8) (local.get $case))))
    (if (i32.eqz (i32.load8_u (local.get $payload)))
      (then
        (call $buffer_read (i32.load offset=4 (local.get $payload)) (global.get $read_ret))
        (call $buffer_drop (i32.load offset=4 (local.get $payload)))
        (local.set $ptr (i32.load (global.get $read_ret)))
        (local.set $len (i32.load offset=4 (global.get $read_ret))))
      (else
        (local.set $ptr (i32.load offset=4 (local.get $payload)))
        (local.set $len (i32.load offset=8 (local.get $payload)))))
    (call $custom_process (local.get $ptr) (local.get $len) (global.get $custom_ret))
    (if (i32.load8_u (global.get $custom_ret))
      (then
        (if (local.get $case) (then (call $drop_message (i32.add (local.get $item) (i32.const 8)))))
        (return (call $fail (i32.load offset=8 (global.get $custom_ret)) (i32.load offset=12 (global.get $custom_ret))))))
    ;; ok: the item as it came, with the returned bytes as its payload.
    (i32.store8 (global.get $ret) (i32.const 0))
    (memory.copy (i32.add (global.get $ret) (i32.const 8)) (local.get $item) (i32.const 128))
    (local.set $payload
      (i32.add (global.get $ret) (select (i32.const 84) (i32.const 16) (local.get $case))))
    (i32.store8 (local.get $payload) (i32.const 1))
    (i32.store offset=4 (local.get $payload) (i32.load offset=4 (global.get $custom_ret)))
    (i32.store offset=8 (local.get $payload) (i32.load offset=8 (global.get $custom_ret)))
    (global.get $ret))
  (func (export "cabi_post_wasm-graph:processor/map@1.1.0#process") (param i32) (call $reset (local.get 0)))
)
