"""Data plane core: sandboxed operator instances, the message codec, graph execution."""
