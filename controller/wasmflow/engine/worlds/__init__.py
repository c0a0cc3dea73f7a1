"""World adapters: what one operator contract needs from the host, below the one node lifecycle (``engine/node.py``).

``operator`` serves our ``wasmflow:operator`` world; ``aio`` serves Azure IoT Operations' ``wasm-graph:processor``
and ``tinykube-graph:processor``. Each finds the operator export, links the world's imports, calls ``init``, binds
the per-item call once per instance and converts values. The two never import each other (import-linter).
"""
