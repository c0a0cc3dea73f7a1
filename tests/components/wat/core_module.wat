;; A core WebAssembly module, not a component.
(module
  (memory (export "memory") 1)
  (func (export "process") (param i32) (result i32) local.get 0))
