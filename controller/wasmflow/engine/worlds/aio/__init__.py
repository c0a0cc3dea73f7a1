"""Azure IoT Operations' operator worlds (``wasm-graph:processor@1.1.0``, ``tinykube-graph:processor@1.0.0``).

``adapter`` (the node's view of the world), ``codec`` (AIO values and host buffers), ``imports`` (logger, metrics,
state store, HLC types, denied imports), ``state`` (the state store), ``metrics`` (the metrics import's collector),
``model`` (the hybrid logical clock and the ``data-model`` cases).
"""
