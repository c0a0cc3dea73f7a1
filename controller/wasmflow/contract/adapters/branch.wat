;; wasmflow's branch adapter: exports wasmflow:operator's branch-operator world, imports wasmflow:branch-rules/rules.
;;
;; The rules' message and error have the operator's layout (contract/wit/rules/branch.wit), so each export is a
;; trampoline: the host lowers the message into this module's memory, the flat values go on to the rules as they
;; came, and the rules' result, lowered back here by the composed component's fused adapter, is returned as is.
;; The bump allocator serves the host's and the fused adapter's lowering; the post-return functions reset it.
(module
  (import "wasmflow:branch-rules/rules@0.1.0" "init" (func $rules_init (param i32 i32 i32)))
  (import "wasmflow:branch-rules/rules@0.1.0" "process"
    (func $rules_process (param i32 i32 i32 i32 i32 i32 i32 i32 i32 i32 i64 i32)))
  (memory (export "memory") 1)
  ;; 8..64: the return area (result<bool, string> is 12 bytes); the heap starts at 1024.
  (global $heap i32 (i32.const 1024))
  (global $bump (mut i32) (i32.const 1024))
  (func (export "cabi_realloc") (param $old i32) (param $old_size i32) (param $align i32) (param $size i32) (result i32)
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
  ;; init(configuration{node, properties}) -> result<_, string>: the rules get the properties.
  (func (export "wasmflow:operator/lifecycle@0.1.0#init") (param i32 i32 i32 i32) (result i32)
    (call $rules_init (local.get 2) (local.get 3) (i32.const 8))
    (i32.const 8))
  (func (export "cabi_post_wasmflow:operator/lifecycle@0.1.0#init") (param i32) (call $reset (local.get 0)))
  ;; process(message) -> result<bool, operator-error>: the message's 11 flat values, then the return area.
  (func (export "wasmflow:operator/branch@0.1.0#process")
    (param i32 i32 i32 i32 i32 i32 i32 i32 i32 i32 i64) (result i32)
    (call $rules_process (local.get 0) (local.get 1) (local.get 2) (local.get 3) (local.get 4) (local.get 5)
      (local.get 6) (local.get 7) (local.get 8) (local.get 9) (local.get 10) (i32.const 8))
    (i32.const 8))
  (func (export "cabi_post_wasmflow:operator/branch@0.1.0#process") (param i32) (call $reset (local.get 0)))
)
