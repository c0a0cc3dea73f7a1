"""wasmflow: WebAssembly data-processing pipelines on Kubernetes.

The folder layout is the architecture (see DESIGN.md section 2): ``api`` and ``contract`` are the shared
vocabulary, ``oci`` and ``engine`` the building blocks, ``connectors`` move messages in and out, ``operator``
(control plane) and ``worker`` (data plane) assemble them, and ``cli`` is the only entry point.
"""

__version__ = "0.1.0"
