"""Every use of wasmtime-py's private API, in one module, behind one guard.

wasmtime-py's public component API is correct but slow on the data plane: ``Func.__call__`` rebuilds the function's
type objects on every call and converts a ``list<u8>`` one Python object per byte (DESIGN.md section 6). The engine's
fast paths therefore reach past it, into wasmtime-py's ctypes bindings (``wasmtime._ffi``, ``wasmtime._bindings``),
private attributes (``Func._func``, ``Store._context``, ``WasmtimeError._from_ptr``, ``ResourceAny._from_ptr``), its
call helpers (``wasmtime.component._enter``), its types' ``convert_to_c``, and CPython's ``bytes`` layout. This
module is the only one that does (``tests/unit/engine/test_ffi.py`` proves it for the whole package). What it offers
is vendor-neutral: addresses and raw C calls for the message codec (``engine/codec.py``), a generic bound call that
lifts any component value (``GenericCall``, used by the AIO world), a host method answering ``list<u8>`` with one
strided copy (``add_bytes_method``), and WASI's network grant, which ``WasiConfig`` does not wrap.

:func:`fast_path_problems` checks every assumption at import time (layouts, constants, attributes, functions); when
one fails, ``FAST_PATH`` is false, nothing here is used, and the engine runs on wasmtime-py's public API alone (the
host logs why). The private modules themselves are imported directly: without them no version of the fast path
could exist, and the import failing is louder than any fallback.

Layouts of the wasmtime C API (include/wasmtime/component/val.h) as wasmtime-py lays them out on a 64-bit
little-endian machine, each number verified by :func:`fast_path_problems`::

    wasmtime_component_val_t      32 bytes: kind u8 @0, union @8 (24 bytes)
      string (wasm_name_t)        size @8, data @16
      list / tuple / record       size @8, data @16
      variant                     discriminant {size @8, data @16}, val* @24
      option                      val* @8 (NULL: none)
      result                      is_ok bool @8, val* @16
      u64 / bool                  @8
    wasmtime_component_valrecord_entry_t  48 bytes: name {size @0, data @8}, val @16
"""

from __future__ import annotations

import ctypes
import itertools
import sys
from collections.abc import Callable
from typing import Any, NoReturn

from wasmtime import Store, StoreContext, WasiConfig, WasmtimeError, _bindings
from wasmtime import _ffi as _c
from wasmtime import component as cm
from wasmtime.component import Func, LinkerInstance, Record, ResourceAny, Variant
from wasmtime.component._enter import catch_exceptions, enter_wasm, maybe_raise_last_exn

#: sizeof(wasmtime_component_val_t) and offsetof(..., of): one value, and where its payload starts.
VAL_SIZE = ctypes.sizeof(_c.wasmtime_component_val_t)
VALUE_OFFSET: int = _c.wasmtime_component_val_t.of.offset
ENTRY_SIZE = 48

#: The value kinds the codecs write and read (``WASMTIME_COMPONENT_*``).
K_BOOL, K_U8, K_U64, K_STRING, K_LIST, K_RECORD, K_TUPLE, K_VARIANT, K_OPTION, K_RESULT = (
    0, 2, 8, 12, 13, 14, 15, 16, 18, 19,
)  # fmt: skip
_KIND_NAMES = (
    "BOOL", "S8", "U8", "S16", "U16", "S32", "U32", "S64", "U64", "F32", "F64", "CHAR", "STRING", "LIST", "RECORD",
    "TUPLE", "VARIANT", "ENUM", "OPTION", "RESULT", "FLAGS", "RESOURCE",
)  # fmt: skip
#: Every kind ``lift_value`` reads, by name (-1 where wasmtime-py lacks the constant: the guard reports it).
KINDS: dict[str, int] = {
    n: int(getattr(getattr(_c, f"WASMTIME_COMPONENT_{n}", None), "value", -1)) for n in _KIND_NAMES
}

#: The whole address space as one byte view: C results are read with ``struct.unpack_from(MEM, address)`` and
#: slices, three times cheaper than a ``ctypes.string_at`` per field. Only addresses the C API just handed us are
#: ever read through it.
MEM = memoryview((ctypes.c_char * sys.maxsize).from_address(0)).cast("B")
#: CPython: the offset of ``ob_sval`` in a bytes object, so ``id(data) + BYTES_DATA`` is its contents' address.
BYTES_DATA = bytes.__basicsize__ - 1
string_at = ctypes.string_at


def bytes_address(data: bytes) -> int:
    """Address of a bytes object's contents in CPython, without a ctypes call (~20x cheaper than ``cast``)."""
    return id(data) + BYTES_DATA


def _bytes_layout_ok() -> bool:
    probe = b"wasmflow probe \\xff"
    address = bytes_address(probe)
    return (
        sys.implementation.name == "cpython"
        and string_at(address, len(probe)) == probe
        and MEM[address : address + len(probe)].tobytes() == probe
    )


def _offset(structure: Any, name: str) -> int:
    return int(getattr(structure, name).offset)


def fast_path_problems() -> list[str]:
    """Every assumption of this module that does not hold with the installed wasmtime-py (empty: all hold)."""
    problems: list[str] = []
    expect: dict[str, tuple[object, object]] = {
        "sizeof(void*)": (ctypes.sizeof(ctypes.c_void_p), 8),
        "byte order": (sys.byteorder, "little"),
        "sizeof(wasmtime_component_val_t)": (VAL_SIZE, 32),
        "offsetof(wasmtime_component_val_t, of)": (VALUE_OFFSET, 8),
        "sizeof(wasmtime_component_valrecord_entry_t)": (ctypes.sizeof(_c.wasmtime_component_valrecord_entry), 48),
        "offsetof(wasmtime_component_valrecord_entry_t, val)": (
            _offset(_c.wasmtime_component_valrecord_entry, "val"),
            16,
        ),
        "offsetof(wasmtime_component_valvariant_t, val)": (_offset(_c.wasmtime_component_valvariant_t, "val"), 16),
        "offsetof(wasmtime_component_valresult_t, val)": (_offset(_c.wasmtime_component_valresult_t, "val"), 8),
        "sizeof(wasm_name_t)": (ctypes.sizeof(_c.wasm_name_t), 16),
        "offsetof(wasm_name_t, data)": (_offset(_c.wasm_name_t, "data"), 8),
        "offsetof(wasmtime_component_vallist_t, data)": (_offset(_c.wasmtime_component_vallist_t, "data"), 8),
    }
    written = {
        "BOOL": K_BOOL, "U8": K_U8, "U64": K_U64, "STRING": K_STRING, "LIST": K_LIST, "RECORD": K_RECORD,
        "TUPLE": K_TUPLE, "VARIANT": K_VARIANT, "OPTION": K_OPTION, "RESULT": K_RESULT,
    }  # fmt: skip
    for name, value in written.items():
        expect[f"WASMTIME_COMPONENT_{name}"] = (KINDS[name], value)
    problems += [
        f"{what} is {actual!r}, expected {wanted!r}" for what, (actual, wanted) in expect.items() if actual != wanted
    ]
    problems += [f"wasmtime._ffi has no WASMTIME_COMPONENT_{n}" for n, v in KINDS.items() if v < 0]
    for attribute in (
        "_wasmtime_component_func_call",
        "_wasmtime_component_val_delete",
        "_wasmtime_context_set_epoch_deadline",
    ):
        if not hasattr(_bindings, attribute):
            problems.append(f"wasmtime._bindings has no {attribute}")
    for name in (
        "wasmtime_component_func_call",
        "wasmtime_component_val_delete",
        "wasmtime_component_vallist_new_uninit",
        "wasmtime_component_linker_instance_add_func",
        "wasmtime_component_func_callback_t",
        "wasmtime_error_t",
        "wasi_config_inherit_network",
        "wasi_config_allow_ip_name_lookup",
        "take_pointer",
    ):
        if not hasattr(_c, name):
            problems.append(f"wasmtime._ffi has no {name}")
    if not isinstance(getattr(_c, "dll", None), ctypes.CDLL):
        problems.append("wasmtime._ffi no longer exposes its library as dll")
    if "_func" not in getattr(Func, "__annotations__", {}):
        problems.append("wasmtime.component.Func no longer keeps its handle in _func")
    for owner, attribute in (
        (Store, "_context"),
        (WasmtimeError, "_from_ptr"),
        (ResourceAny, "_from_ptr"),
        (cm.ValType, "convert_to_c"),
        (LinkerInstance, "ptr"),
    ):
        if not callable(getattr(owner, attribute, None)):
            problems.append(f"{owner.__module__}.{owner.__qualname__} has no {attribute}()")
    if not _bytes_layout_ok():
        problems.append("this Python does not lay bytes out as CPython does (id + header size)")
    return problems


#: Why the fast paths are off, if they are (the engine host logs it once).
FAST_PATH_PROBLEMS = fast_path_problems()
FAST_PATH = not FAST_PATH_PROBLEMS


# -- raw calls: integer addresses in, integers out ---------------------------------------------------------------


def _raw(name: str, restype: Any, *argtypes: Any) -> Any:
    """A C function of wasmtime's library taking addresses as plain integers: a fresh function object (wasmtime-py's
    own keep their typed signatures), so a call converts no pointer objects (three such calls per message)."""
    library = getattr(_c, "dll", None)
    if library is None or not FAST_PATH:
        return None
    return ctypes.CFUNCTYPE(restype, *argtypes)((name, library))


_P = ctypes.c_void_p
#: ``wasmtime_component_func_call(func*, context*, args*, nargs, results*, nresults) -> wasmtime_error_t*``
func_call: Any = _raw("wasmtime_component_func_call", _P, _P, _P, _P, ctypes.c_size_t, _P, ctypes.c_size_t)
#: ``wasmtime_component_val_delete(val*)``
val_delete: Any = _raw("wasmtime_component_val_delete", None, _P)
#: ``wasmtime_context_set_epoch_deadline(context*, ticks)``
set_epoch_deadline: Any = _raw("wasmtime_context_set_epoch_deadline", None, _P, ctypes.c_uint64)


def _pointer_value(pointer: Any) -> int:
    """The address a ctypes pointer (or ``byref``) holds."""
    return int(ctypes.cast(pointer, ctypes.c_void_p).value or 0)


def func_address(func: Func) -> int:
    """The address of ``func``'s handle (valid while ``func`` lives: keep it)."""
    return _pointer_value(ctypes.byref(func._func))


def context_address(store: Store) -> int:
    """The address of ``store``'s context (valid while ``store`` lives: keep it)."""
    return _pointer_value(store._context())


def raise_call_error(error: int) -> NoReturn:
    """Raise the ``wasmtime_error_t*`` a raw call returned; a Python exception raised in a host function during
    the call wins, as in wasmtime-py's own ``enter_wasm``."""
    exc = WasmtimeError._from_ptr(ctypes.cast(error, ctypes.POINTER(_c.wasmtime_error_t)))
    maybe_raise_last_exn()
    raise exc


# -- generic component values ------------------------------------------------------------------------------------

_NUMBERS = {KINDS[n]: n.lower() for n in ("S8", "U8", "S16", "U16", "S32", "U32", "S64", "U64", "F32", "F64")}


def _name(vec: Any) -> str:
    return ctypes.string_at(vec.data, vec.size).decode("utf-8") if vec.size else ""


def lift_value(val: Any) -> Any:
    """A C component value as Python: ``Record``, tagged ``Variant`` (results too: ``ok``/``err``), bytes for
    list<u8>, resources as owned ``ResourceAny`` (taken out of ``val``, so deleting ``val`` afterwards does not drop
    them). The value carries its kinds and names, so no type information is needed."""
    kind = val.kind
    if kind in _NUMBERS:
        return getattr(val.of, _NUMBERS[kind])
    if kind == K_BOOL:
        return bool(val.of.boolean)
    if kind == K_STRING:
        return _name(val.of.string)
    if kind == KINDS["CHAR"]:
        return chr(val.of.character)
    if kind == KINDS["ENUM"]:
        return _name(val.of.enumeration)
    if kind == K_LIST:
        size = val.of.list.size
        if not size:
            return []  # an empty list<u8> too: the element kind is unknown, and [] reads as empty bytes
        first = val.of.list.data[0]
        if first.kind == K_U8:
            base = ctypes.addressof(val.of.list.data.contents)
            view = memoryview((ctypes.c_ubyte * (size * VAL_SIZE)).from_address(base)).cast("B")
            return bytes(view[VALUE_OFFSET::VAL_SIZE])
        return [lift_value(val.of.list.data[i]) for i in range(size)]
    if kind == K_RECORD:
        value = Record()
        for i in range(val.of.record.size):
            entry = val.of.record.data[i]
            setattr(value, _name(entry.name), lift_value(entry.val))
        return value
    if kind == K_TUPLE:
        return tuple(lift_value(val.of.tuple.data[i]) for i in range(val.of.tuple.size))
    if kind == K_VARIANT:
        inner = val.of.variant.val
        return Variant(_name(val.of.variant.discriminant), lift_value(inner.contents) if inner else None)
    if kind == K_OPTION:
        return lift_value(val.of.option.contents) if val.of.option else None
    if kind == K_RESULT:
        inner = val.of.result.val
        return Variant("ok" if val.of.result.is_ok else "err", lift_value(inner.contents) if inner else None)
    if kind == KINDS["RESOURCE"]:
        return ResourceAny._from_ptr(_c.take_pointer(val.of, "resource"))
    raise TypeError(f"cannot lift a component value of kind {kind}")


class GenericCall:
    """A component function bound to one instance: arguments lowered through the parameter types read once (as
    wasmtime-py lowers them), the result lifted by ``lift_value`` (every variant and result comes back tagged).

    ``Func.__call__`` would rebuild the function's type objects on every call and lift a list<u8> one Python object
    per byte; this keeps the types and reads a list<u8> with one strided copy.
    """

    def __init__(self, store: Store, func: Func) -> None:
        self._store = store
        self._func = func
        self._type = func.type(store)  # keeps the parameter types below alive
        self._params = [ty for _name, ty in self._type.params]

    def __call__(self, *args: Any) -> Any:
        store = self._store
        count = len(args)
        values = (_c.wasmtime_component_val_t * count)()
        result = _c.wasmtime_component_val_t()
        lowered = 0
        try:
            for ty, arg in zip(self._params, args, strict=True):
                ty.convert_to_c(store, arg, ctypes.pointer(values[lowered]))
                lowered += 1

            def run() -> Any:
                return _c.wasmtime_component_func_call(
                    ctypes.byref(self._func._func), store._context(), values, count, ctypes.byref(result), 1
                )

            enter_wasm(run)
        finally:
            for i in range(lowered):
                _c.wasmtime_component_val_delete(ctypes.byref(values[i]))
        try:
            return lift_value(result)
        finally:
            _c.wasmtime_component_val_delete(ctypes.byref(result))


# -- host functions ----------------------------------------------------------------------------------------------


def _set_bytes_list(val: Any, data: bytes) -> None:
    """Write ``data`` into ``val`` as the C API's list<u8> (one 32-byte value per byte) with one strided copy."""
    raw = _c.wasmtime_component_vallist_t()
    _c.wasmtime_component_vallist_new_uninit(ctypes.byref(raw), len(data))
    if data:
        view = memoryview(
            (ctypes.c_ubyte * (len(data) * VAL_SIZE)).from_address(ctypes.addressof(raw.data.contents))
        ).cast("B")
        view[0::VAL_SIZE] = bytes([K_U8]) * len(data)
        view[VALUE_OFFSET::VAL_SIZE] = data
    val.kind = K_LIST
    val.of.list = raw


#: The readers of the bytes methods linked with ``add_bytes_method``, by the id the C API hands back.
_BYTES_METHODS: dict[int, Callable[[StoreContext, ResourceAny], bytes]] = {}
_BYTES_METHOD_IDS = itertools.count(1)


@_c.wasmtime_component_func_callback_t  # type: ignore[untyped-decorator]
def _bytes_method(idx: int, context: Any, _ty: Any, args: Any, _nargs: int, results: Any, _nresults: int) -> Any:
    def run(store: StoreContext) -> None:
        handle = ResourceAny._from_ptr(_c.take_pointer(args[0].of, "resource"))
        read = _BYTES_METHODS.get(idx or 0)
        _set_bytes_list(results[0], read(store, handle) if read is not None else b"")

    return catch_exceptions(context, run)


@ctypes.CFUNCTYPE(None, ctypes.c_void_p)  # type: ignore[untyped-decorator]
def _bytes_method_done(idx: int | None) -> None:
    _BYTES_METHODS.pop(idx or 0, None)


def add_bytes_method(instance: LinkerInstance, name: str, read: Callable[[StoreContext, ResourceAny], bytes]) -> None:
    """Link ``name``, a method of one resource argument returning list<u8>, answered by ``read(store, handle)``.

    wasmtime-py's ``add_func`` converts the returned bytes one Python object per byte (about 4 µs a byte, 65 ms
    for 16 KiB); this writes the C value array with one strided copy. It is registered with the C API directly,
    as ``add_func`` does. An exception ``read`` raises fails the call (the guest traps), as in ``add_func``.
    """
    idx = next(_BYTES_METHOD_IDS)
    _BYTES_METHODS[idx] = read
    encoded = name.encode()
    error = _c.wasmtime_component_linker_instance_add_func(
        instance.ptr(), ctypes.create_string_buffer(encoded), len(encoded), _bytes_method, idx, _bytes_method_done
    )
    if error:
        _BYTES_METHODS.pop(idx, None)
        raise WasmtimeError._from_ptr(error)


def wasi_inherit_network(config: WasiConfig) -> None:
    """Grant TCP/UDP and name lookup: the C API has it, wasmtime-py's ``WasiConfig`` does not wrap it (yet)."""
    _c.wasi_config_inherit_network(config.ptr())
    _c.wasi_config_allow_ip_name_lookup(config.ptr(), True)
