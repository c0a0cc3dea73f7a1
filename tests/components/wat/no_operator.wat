;; A valid component that exports no wasmflow operator interface.
(component
  (core module $m (func (export "f") (result i32) i32.const 7))
  (core instance $i (instantiate $m))
  (func $f (result u32) (canon lift (core func $i "f")))
  (instance $thing (export "answer" (func $f)))
  (export "acme:thing/answers@1.0.0" (instance $thing))
)
