"""OCI distribution client: resolve, pull, verify digest, cache, push."""
