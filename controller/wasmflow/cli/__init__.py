"""The ``wasmflow`` command line: one sub-command per job, each a thin shell over the packages below it."""
