"""map: misbehaves on request, to prove the sandbox. The payload names the behaviour:

loop      spin forever (the per-message deadline must stop it)
alloc     allocate without bound (the memory limit must stop it)
trap      raise a Python exception that is not Err (a trap in the component)
recurse   unbounded recursion
err       return an operator error
socket    try to open a TCP connection to 127.0.0.1:9 (must be denied)
file      try to read /etc/passwd (must be denied: nothing is preopened)
env       read the environment (must be empty)
huge      return a 32 MiB payload
anything else: returned unchanged.
Denied attempts are reported in the output payload ("denied: ...") so tests can assert what happened.
"""

import os
import sys

from componentize_py_types import Err
from wit_world import exports
from wit_world.imports import logging, types


class Lifecycle(exports.Lifecycle):
    def init(self, config: types.Configuration) -> None:
        return None


def reply(input: types.Message, text: str) -> types.Message:
    return types.Message(types.Payload_Text(text), input.topic, None, [], input.timestamp_ms)


def recurse(n: int) -> int:
    return recurse(n + 1) + 1


class Map(exports.Map):
    def process(self, input: types.Message) -> types.Message:
        payload = input.payload
        what = payload.value if isinstance(payload, types.Payload_Text) else bytes(payload.value).decode()
        if what == "loop":
            while True:
                pass
        if what == "alloc":
            hoard = []
            while True:
                hoard.append(bytearray(1 << 20))
        if what == "trap":
            raise RuntimeError("boom")
        if what == "recurse":
            sys.setrecursionlimit(10**8)
            recurse(0)
        if what == "err":
            raise Err(types.OperatorError("refused on purpose"))
        if what == "socket":
            import socket

            try:
                socket.create_connection(("127.0.0.1", 9), timeout=1)
                return reply(input, "allowed: socket connected")
            except Exception as exc:
                return reply(input, f"denied: socket {type(exc).__name__}")
        if what == "file":
            try:
                with open("/etc/passwd") as f:
                    return reply(input, "allowed: " + f.read(20))
            except Exception as exc:
                return reply(input, f"denied: file {type(exc).__name__}")
        if what == "env":
            return reply(input, "env: " + ",".join(sorted(os.environ)))
        if what == "huge":
            return reply(input, "x" * (32 << 20))
        if what == "log":
            logging.log(logging.Level.INFO, "hello from the guest")
            print("printed to stdout")
        return input
