;; Built against a contract version this host does not speak (0.2.0).
(component
  (core module $m
    (memory (export "memory") 1)
    (func (export "f") (param i32 i32) (result i32) i32.const 0)
    (func (export "realloc") (param i32 i32 i32 i32) (result i32) i32.const 16))
  (core instance $i (instantiate $m))
  (func $f (param "input" string) (result string)
    (canon lift (core func $i "f") (memory (core memory $i "memory")) (realloc (core func $i "realloc"))))
  (instance $map (export "process" (func $f)))
  (export "wasmflow:operator/map@0.2.0" (instance $map))
)
