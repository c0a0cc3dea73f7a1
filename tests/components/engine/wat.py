"""Small operator components written in component WAT, assembled in-process by ``wasmtime.wat2wasm``.

They exercise the engine without a toolchain and in milliseconds: a hand-written canonical-ABI core module (the
same layout as ``tests/components/wat/identity_map_core.wat``) wrapped in a component that exports the contract's
``lifecycle`` and one operator interface. ``body`` is WAT inserted at the start of ``process``, so a test fixture
shows exactly how its operator misbehaves.

Canonical ABI reminders: ``message`` flattens to (payload-case, ptr, len, topic-ptr, topic-len, ct-case, ct-ptr,
ct-len, props-ptr, props-len, timestamp); a ``result<message, operator-error>`` is written at 128 (case byte, then
the message from 136); ``result<bool, operator-error>`` puts the bool at 132.
"""

from __future__ import annotations

import hashlib

from wasmtime import wat2wasm

_TYPES = """
  (type $payload (variant (case "text" string) (case "binary" (list u8))))
  (type $message (record
    (field "payload" $payload) (field "topic" string) (field "content-type" (option string))
    (field "properties" (list (tuple string string))) (field "timestamp-ms" u64)))
  (type $operator-error (record (field "message" string)))
  (type $configuration (record (field "node" string) (field "properties" (list (tuple string string)))))
"""

_CORE = """
  {before}
  (core module $m
    {imports}
    (memory (export "memory") 1)
    (global $bump (mut i32) (i32.const 4096))
    (data (i32.const 1024) "textbinaryrefused on purpose")
    (data (i32.const 1536) "{init_error}")
    (func $realloc (export "cabi_realloc") (param $old i32) (param $old_size i32) (param $align i32) (param $size i32)
      (result i32)
      (local $ptr i32) (local $need i32)
      (local.set $ptr
        (i32.and (i32.add (global.get $bump) (i32.sub (local.get $align) (i32.const 1)))
                 (i32.sub (i32.const 0) (local.get $align))))
      (global.set $bump (i32.add (local.get $ptr) (local.get $size)))
      (local.set $need (i32.sub (global.get $bump) (i32.mul (memory.size) (i32.const 65536))))
      (if (i32.gt_s (local.get $need) (i32.const 0))
        (then (if (i32.lt_s (memory.grow (i32.add (i32.div_u (local.get $need) (i32.const 65536)) (i32.const 1)))
                            (i32.const 0))
          (then unreachable))))
      (if (i32.and (i32.ne (local.get $old) (i32.const 0)) (i32.ne (local.get $old_size) (i32.const 0)))
        (then (memory.copy (local.get $ptr) (local.get $old) (local.get $old_size))))
      (local.get $ptr))
    (func (export "init") (param i32 i32 i32 i32) (result i32)
      {init})
    (func (export "reset") (param i32)
      (global.set $bump (i32.const 4096)))
    (func (export "accumulate") (param $args i32) (result i32)
      ;; (state, input) arrive by pointer (22 flat values are over the ABI's 16): answer the input, as a map would.
      (i32.store8 (i32.const 128) (i32.const 0))
      (memory.copy (i32.const 136) (i32.add (local.get $args) (i32.const 48)) (i32.const 48))
      (i32.const 128))
    (func (export "process")
      (param $pc i32) (param $pp i32) (param $pl i32) (param $tp i32) (param $tl i32)
      (param $cc i32) (param $cp i32) (param $cl i32) (param $lp i32) (param $ll i32) (param $ts i64) (result i32)
      {body}
      {result})
  )
  (core instance $i (instantiate $m {with_args}))
"""

#: Echo the message (map).
_ECHO = """
      (i32.store8 (i32.const 128) (i32.const 0))
      (i32.store8 (i32.const 136) (local.get $pc))
      (i32.store (i32.const 140) (local.get $pp))
      (i32.store (i32.const 144) (local.get $pl))
      (i32.store (i32.const 148) (local.get $tp))
      (i32.store (i32.const 152) (local.get $tl))
      (i32.store8 (i32.const 156) (local.get $cc))
      (i32.store (i32.const 160) (local.get $cp))
      (i32.store (i32.const 164) (local.get $cl))
      (i32.store (i32.const 168) (local.get $lp))
      (i32.store (i32.const 172) (local.get $ll))
      (i64.store (i32.const 176) (local.get $ts))
      (i32.const 128)"""

#: Keep (filter) when the payload is non-empty and starts with "y".
_FIRST_BYTE_IS_Y = """
      (i32.store8 (i32.const 128) (i32.const 0))
      (i32.store8 (i32.const 132)
        (if (result i32) (i32.eqz (local.get $pl))
          (then (i32.const 0))
          (else (i32.eq (i32.load8_u (local.get $pp)) (i32.const 121)))))
      (i32.const 128)"""

#: Snippets for ``body``.
LOOP = "(loop $forever (br $forever))"
TRAP = "unreachable"
#: Grow memory a page at a time until the store refuses, then give up as allocators do.
MEMORY_BOMB = """(loop $more (br_if $more (i32.ge_s (memory.grow (i32.const 1)) (i32.const 0)))) unreachable"""


def grow_and_fill(pages: int) -> str:
    """A ``body`` snippet: grow the operator's own memory by ``pages`` and fill them (resident); traps if refused."""
    return f"""(memory.fill (i32.mul (memory.grow (i32.const {pages})) (i32.const 65536)) (i32.const 1)
                   (i32.const {pages * 65536}))"""


#: Return err(operator-error { message: "refused on purpose" }).
ERR = """(i32.store8 (i32.const 128) (i32.const 1))
      (i32.store (i32.const 136) (i32.const 1034))
      (i32.store (i32.const 140) (i32.const 18))
      (return (i32.const 128))"""
#: Echo, but the topic says which payload case arrived ("text" or "binary").
REPORT_CASE = """(local.set $tp (i32.add (i32.const 1024) (i32.mul (local.get $pc) (i32.const 4))))
      (local.set $tl (i32.add (i32.const 4) (i32.mul (local.get $pc) (i32.const 2))))"""


def on_first_byte(char: str, snippet: str) -> str:
    """``snippet`` only for payloads that start with ``char`` (the rest are echoed)."""
    return f"""(if (i32.and (i32.ne (local.get $pl) (i32.const 0))
                    (i32.eq (i32.load8_u (local.get $pp)) (i32.const {ord(char)})))
        (then {snippet}))"""


def operator(
    kind: str = "map", body: str = "", init_error: str | None = None, *, linked: tuple[str, str, str] = ("", "", "")
) -> bytes:
    """A component exporting ``lifecycle`` and ``kind``, with ``body`` run first in process (map, filter, branch;
    an accumulate answers its input); ``init`` returns ``err(init_error)`` when one is given. ``linked`` is WAT put
    (before the operator's core module, among its imports, among the arguments of its instantiation), for operators
    that call other core instances."""
    if init_error is None:
        init = "(i32.store8 (i32.const 64) (i32.const 0)) (i32.const 64)"
    else:
        init = f"""(i32.store8 (i32.const 64) (i32.const 1))
      (i32.store (i32.const 68) (i32.const 1536))
      (i32.store (i32.const 72) (i32.const {len(init_error.encode())}))
      (i32.const 64)"""
    if kind == "map":
        result_type, result = "(result $message (error $operator-error))", _ECHO
    elif kind in ("filter", "branch"):
        result_type, result = "(result bool (error $operator-error))", _FIRST_BYTE_IS_Y
    elif kind == "accumulate":
        result_type, result = "(result $message (error $operator-error))", _ECHO
    else:
        raise ValueError(f"no WAT operator of kind {kind!r}")
    params, core = '(param "input" $message)', "process"
    if kind == "accumulate":
        params, core = '(param "state" $message) (param "input" $message)', "accumulate"
    text = f"""(component
  {
        _CORE.format(
            body=body,
            result=result,
            init=init,
            init_error=init_error or "",
            before=linked[0],
            imports=linked[1],
            with_args=linked[2],
        )
    }
  {_TYPES}
  (func $init (param "config" $configuration) (result (result (error string)))
    (canon lift (core func $i "init") (memory (core memory $i "memory")) (realloc (core func $i "cabi_realloc"))))
  (func $process {params} (result {result_type})
    (canon lift (core func $i "{core}") (memory (core memory $i "memory")) (realloc (core func $i "cabi_realloc"))
      (post-return (core func $i "reset"))))
  (instance $lifecycle (export "configuration" (type $configuration)) (export "init" (func $init)))
  (instance $operator
    (export "payload" (type $payload)) (export "message" (type $message))
    (export "operator-error" (type $operator-error)) (export "process" (func $process)))
  (export "wasmflow:operator/lifecycle@0.1.0" (instance $lifecycle))
  (export "wasmflow:operator/{kind}@0.1.0" (instance $operator))
)"""
    return wat2wasm(text)


def spread_memory(memories: int, pages: int, kind: str = "map") -> bytes:
    """An operator whose ``process`` grows ``memories`` linear memories of its own (one per extra core instance,
    beside the operator's own) by ``pages`` 64 KiB pages each and fills them (so they are resident), then answers
    as ``kind`` does; a refused grow traps. Each memory stays under a per-memory limit while together they do not."""
    before = "\n".join(
        f"""(core module $spread{i}
    (memory 1)
    (func (export "grow") (param $pages i32) (result i32)
      (local $old i32)
      (local.set $old (memory.grow (local.get $pages)))
      (if (i32.ge_s (local.get $old) (i32.const 0))
        (then (memory.fill (i32.mul (local.get $old) (i32.const 65536)) (i32.const 1)
                           (i32.mul (local.get $pages) (i32.const 65536)))))
      (local.get $old)))
  (core instance $spread{i} (instantiate $spread{i}))"""
        for i in range(memories)
    )
    imports = " ".join(f'(import "spread{i}" "grow" (func $grow{i} (param i32) (result i32)))' for i in range(memories))
    with_args = " ".join(f'(with "spread{i}" (instance $spread{i}))' for i in range(memories))
    body = " ".join(
        f"(if (i32.lt_s (call $grow{i} (i32.const {pages})) (i32.const 0)) (then unreachable))" for i in range(memories)
    )
    return operator(kind, body, linked=(before, imports, with_args))


def gc_arrays(arrays: int, mib_each: int = 8, fill_pages: int = 0) -> bytes:
    """A map whose ``process`` fills ``fill_pages`` more pages of its memory, then allocates ``arrays`` wasm GC arrays
    of ``mib_each`` MiB and keeps them in a table: GC objects live in a heap of their own, beside the linear memory
    (an engine without GC refuses to compile it)."""
    types = "(type $array (array (mut i64))) (table $keep 64 (ref null $array))"
    fill = grow_and_fill(fill_pages) if fill_pages else ""
    body = f"""{fill}
      (local.set $pc (i32.const 0))
      (loop $more
        (table.set $keep (local.get $pc)
          (array.new $array (i64.const 1) (i32.const {mib_each * 2**20 // 8})))
        (local.set $pc (i32.add (local.get $pc) (i32.const 1)))
        (br_if $more (i32.lt_u (local.get $pc) (i32.const {arrays}))))
      (local.set $pc (i32.const 0))"""
    return operator("map", body, linked=("", types, ""))


def digest(component: bytes) -> str:
    return "sha256:" + hashlib.sha256(component).hexdigest()


#: wasi:sockets/network ``error-code``, in WIT order (the import's enum must match the host's exactly).
_SOCKET_ERRORS = """
  "unknown" "access-denied" "not-supported" "invalid-argument" "out-of-memory" "timeout" "concurrency-conflict"
  "not-in-progress" "would-block" "invalid-state" "new-socket-limit" "address-not-bindable" "address-in-use"
  "remote-unreachable" "connection-refused" "connection-reset" "connection-aborted" "datagram-too-large"
  "name-unresolvable" "temporary-resolver-failure" "permanent-resolver-failure"
"""


def socket_probe() -> bytes:
    """A map that asks wasi:sockets to resolve "localhost" and answers with the outcome: topic ``ok``, or ``err``
    with the wasi:sockets ``error-code`` case number as the timestamp (20 is permanent-resolver-failure, what
    wasmtime answers when name lookup is not allowed). The payload is echoed."""
    errors = _SOCKET_ERRORS
    text = f"""(component
  (import "wasi:sockets/network@0.2.0" (instance $net
    (export "network" (type (sub resource)))
    (type $ec (enum {errors}))
    (export "error-code" (type (eq $ec)))))
  (alias export $net "network" (type $network))
  (alias export $net "error-code" (type $error-code))
  (import "wasi:sockets/instance-network@0.2.0" (instance $inet
    (export "network" (type $n (eq $network)))
    (export "instance-network" (func (result (own $n))))))
  (import "wasi:sockets/ip-name-lookup@0.2.0" (instance $lookup
    (export "network" (type $n (eq $network)))
    (export "error-code" (type $e (eq $error-code)))
    (export "resolve-address-stream" (type $s (sub resource)))
    (export "resolve-addresses"
      (func (param "network" (borrow $n)) (param "name" string) (result (result (own $s) (error $e)))))))
  (core module $libc
    (memory (export "memory") 1)
    (global $bump (mut i32) (i32.const 4096))
    (func (export "realloc") (param i32 i32 i32 i32) (result i32)
      (local $ptr i32)
      (local.set $ptr (i32.and (i32.add (global.get $bump) (i32.sub (local.get 2) (i32.const 1)))
                               (i32.sub (i32.const 0) (local.get 2))))
      (global.set $bump (i32.add (local.get $ptr) (local.get 3)))
      (if (i32.gt_u (global.get $bump) (i32.mul (memory.size) (i32.const 65536)))
        (then (drop (memory.grow (i32.add (i32.const 1) (i32.div_u
          (i32.sub (global.get $bump) (i32.mul (memory.size) (i32.const 65536))) (i32.const 65536)))))))
      (local.get $ptr))
    (func (export "reset") (param i32) (global.set $bump (i32.const 4096))))
  (core instance $libc (instantiate $libc))
  (alias export $inet "instance-network" (func $instance-network))
  (alias export $lookup "resolve-addresses" (func $resolve-addresses))
  (core func $instance-network-lowered (canon lower (func $instance-network)))
  (core func $resolve-lowered (canon lower (func $resolve-addresses) (memory (core memory $libc "memory"))))
  (core module $m
    (import "libc" "memory" (memory 1))
    (import "host" "instance-network" (func $instance-network (result i32)))
    (import "host" "resolve" (func $resolve (param i32 i32 i32 i32)))
    (data (i32.const 1024) "localhostokerr")
    (func (export "init") (param i32 i32 i32 i32) (result i32)
      (i32.store8 (i32.const 64) (i32.const 0)) (i32.const 64))
    (func (export "process")
      (param $pc i32) (param $pp i32) (param $pl i32) (param $tp i32) (param $tl i32)
      (param $cc i32) (param $cp i32) (param $cl i32) (param $lp i32) (param $ll i32) (param $ts i64) (result i32)
      (call $resolve (call $instance-network) (i32.const 1024) (i32.const 9) (i32.const 512))
      (if (i32.eqz (i32.load8_u (i32.const 512)))
        (then (local.set $tp (i32.const 1033)) (local.set $tl (i32.const 2)) (local.set $ts (i64.const 0)))
        (else (local.set $tp (i32.const 1035)) (local.set $tl (i32.const 3))
              (local.set $ts (i64.load8_u (i32.const 516)))))
      {_ECHO}))
  (core instance $i (instantiate $m
    (with "libc" (instance $libc))
    (with "host" (instance
      (export "instance-network" (func $instance-network-lowered)) (export "resolve" (func $resolve-lowered))))))
  {_TYPES}
  (func $init (param "config" $configuration) (result (result (error string)))
    (canon lift (core func $i "init") (memory (core memory $libc "memory")) (realloc (core func $libc "realloc"))))
  (func $process (param "input" $message) (result (result $message (error $operator-error)))
    (canon lift (core func $i "process") (memory (core memory $libc "memory")) (realloc (core func $libc "realloc"))
      (post-return (core func $libc "reset"))))
  (instance $lifecycle (export "configuration" (type $configuration)) (export "init" (func $init)))
  (instance $operator
    (export "payload" (type $payload)) (export "message" (type $message))
    (export "operator-error" (type $operator-error)) (export "process" (func $process)))
  (export "wasmflow:operator/lifecycle@0.1.0" (instance $lifecycle))
  (export "wasmflow:operator/map@0.1.0" (instance $operator))
)"""
    return wat2wasm(text)
