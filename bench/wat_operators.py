"""The bench's own WAT operators: °F→°C on a JSON payload (map) and a range check on it (filter).

They do the same job as ``tests/components/python/f2c_map`` and ``range_filter`` (and the jco ``js_f2c_map``), by
hand against the canonical ABI, so the language comparison of ``bench_languages`` and the pipeline figure of
``bench_pipeline`` have a component with no language runtime inside. Built like a C or Rust component is: a core
module, ``wasm-tools component embed`` with the contract's WIT, then ``wasm-tools component new`` (cached by content).

What they understand of JSON is what the benchmark sends: the first ``"value":`` key, a number with an optional
sign and fraction (no exponent), and an object that ends with ``}``. The map rewrites the number in Celsius rounded
to two decimals (``100``, ``37.78``) and appends ``"unit":"C"``: parsed, the output equals the Python operator's.
Anything else is an ``operator-error``, as it is for the other languages. ``init`` accepts any configuration.

Canonical ABI layout (see tests/components/engine/wat.py): ``message`` flattens to (payload-case, ptr, len,
topic-ptr, topic-len, ct-case, ct-ptr, ct-len, props-ptr, props-len, timestamp); results are written at 128.
"""

from __future__ import annotations

import fcntl
import hashlib
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from tests.components.build import WIT_DIR
from tests.components.build import cache_dir as components_dir

WASM_TOOLS = str(Path(sys.executable).parent / "wasm-tools")

_PRELUDE = """
  (memory (export "memory") 1)
  (global $bump (mut i32) (i32.const 4096))
  ;; 1024: the key, 1032: the error message (48 bytes), 1080: ,"unit":"C"}  1092: application/json
  (data (i32.const 1024) "\\"value\\":")
  (data (i32.const 1032) "expected JSON with a numeric 'value' (bench WAT)")
  (data (i32.const 1080) ",\\"unit\\":\\"C\\"}")
  (data (i32.const 1092) "application/json")
  (global $num_end (mut i32) (i32.const 0))
  (global $num_start (mut i32) (i32.const 0))
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
  (func (export "wasmflow:operator/lifecycle@0.1.0#init") (param i32 i32 i32 i32) (result i32)
    (i32.store8 (i32.const 64) (i32.const 0))
    (i32.const 64))
  (func (export "cabi_post_wasmflow:operator/lifecycle@0.1.0#init") (param i32)
    (global.set $bump (i32.const 4096)))

  ;; The number after the first "value": in [ptr, ptr+len): sets $num_start/$num_end, returns it; NaN if none.
  (func $value (param $ptr i32) (param $len i32) (result f64)
    (local $i i32) (local $end i32) (local $k i32) (local $c i32) (local $neg i32) (local $digits i32)
    (local $x f64) (local $scale f64)
    (local.set $end (i32.add (local.get $ptr) (local.get $len)))
    (local.set $i (local.get $ptr))
    (block $found
      (loop $scan
        (if (i32.gt_u (i32.add (local.get $i) (i32.const 8)) (local.get $end)) (then (return (f64.const nan))))
        (local.set $k (i32.const 0))
        (block $mismatch
          (loop $cmp
            (br_if $mismatch (i32.ne (i32.load8_u (i32.add (local.get $i) (local.get $k)))
                                     (i32.load8_u (i32.add (i32.const 1024) (local.get $k)))))
            (local.set $k (i32.add (local.get $k) (i32.const 1)))
            (br_if $cmp (i32.lt_u (local.get $k) (i32.const 8))))
          (local.set $i (i32.add (local.get $i) (i32.const 8)))
          (br $found))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $scan)))
    ;; skip blanks
    (block $b (loop $l
      (br_if $b (i32.ge_u (local.get $i) (local.get $end)))
      (br_if $b (i32.ne (i32.load8_u (local.get $i)) (i32.const 32)))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $l)))
    (global.set $num_start (local.get $i))
    (if (i32.and (i32.lt_u (local.get $i) (local.get $end)) (i32.eq (i32.load8_u (local.get $i)) (i32.const 45)))
      (then (local.set $neg (i32.const 1)) (local.set $i (i32.add (local.get $i) (i32.const 1)))))
    (block $b (loop $l
      (br_if $b (i32.ge_u (local.get $i) (local.get $end)))
      (local.set $c (i32.sub (i32.load8_u (local.get $i)) (i32.const 48)))
      (br_if $b (i32.gt_u (local.get $c) (i32.const 9)))
      (local.set $x (f64.add (f64.mul (local.get $x) (f64.const 10)) (f64.convert_i32_u (local.get $c))))
      (local.set $digits (i32.add (local.get $digits) (i32.const 1)))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $l)))
    (if (i32.and (i32.lt_u (local.get $i) (local.get $end)) (i32.eq (i32.load8_u (local.get $i)) (i32.const 46)))
      (then
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (local.set $scale (f64.const 0.1))
        (block $b (loop $l
          (br_if $b (i32.ge_u (local.get $i) (local.get $end)))
          (local.set $c (i32.sub (i32.load8_u (local.get $i)) (i32.const 48)))
          (br_if $b (i32.gt_u (local.get $c) (i32.const 9)))
          (local.set $x (f64.add (local.get $x) (f64.mul (local.get $scale) (f64.convert_i32_u (local.get $c)))))
          (local.set $scale (f64.mul (local.get $scale) (f64.const 0.1)))
          (local.set $digits (i32.add (local.get $digits) (i32.const 1)))
          (local.set $i (i32.add (local.get $i) (i32.const 1)))
          (br $l)))))
    (if (i32.eqz (local.get $digits)) (then (return (f64.const nan))))
    (global.set $num_end (local.get $i))
    (if (result f64) (local.get $neg) (then (f64.neg (local.get $x))) (else (local.get $x))))

  ;; result<_, operator-error>::err at 128 with the error text; the payload of the result starts at $at.
  (func $error (param $at i32) (result i32)
    (i32.store8 (i32.const 128) (i32.const 1))
    (i32.store (local.get $at) (i32.const 1032))
    (i32.store (i32.add (local.get $at) (i32.const 4)) (i32.const 48))
    (i32.const 128))
"""

_MAP = """
  ;; Write hundredths (a rounded Celsius value times 100) as decimal text at $out; returns the end.
  (func $write_hundredths (param $out i32) (param $h i64) (result i32)
    (local $int i64) (local $frac i64) (local $p i32) (local $n i32)
    (if (i64.lt_s (local.get $h) (i64.const 0))
      (then (i32.store8 (local.get $out) (i32.const 45))
            (local.set $out (i32.add (local.get $out) (i32.const 1)))
            (local.set $h (i64.sub (i64.const 0) (local.get $h)))))
    (local.set $int (i64.div_u (local.get $h) (i64.const 100)))
    (local.set $frac (i64.rem_u (local.get $h) (i64.const 100)))
    ;; integer digits, backwards into 200..231, then forwards to $out
    (local.set $p (i32.const 232))
    (loop $d
      (local.set $p (i32.sub (local.get $p) (i32.const 1)))
      (i64.store8 (local.get $p) (i64.add (i64.const 48) (i64.rem_u (local.get $int) (i64.const 10))))
      (local.set $int (i64.div_u (local.get $int) (i64.const 10)))
      (br_if $d (i64.ne (local.get $int) (i64.const 0))))
    (local.set $n (i32.sub (i32.const 232) (local.get $p)))
    (memory.copy (local.get $out) (local.get $p) (local.get $n))
    (local.set $out (i32.add (local.get $out) (local.get $n)))
    (if (i64.ne (local.get $frac) (i64.const 0))
      (then
        (i32.store8 (local.get $out) (i32.const 46))
        (i64.store8 (i32.add (local.get $out) (i32.const 1))
                    (i64.add (i64.const 48) (i64.div_u (local.get $frac) (i64.const 10))))
        (local.set $out (i32.add (local.get $out) (i32.const 2)))
        (if (i64.ne (i64.rem_u (local.get $frac) (i64.const 10)) (i64.const 0))
          (then (i64.store8 (local.get $out) (i64.add (i64.const 48) (i64.rem_u (local.get $frac) (i64.const 10))))
                (local.set $out (i32.add (local.get $out) (i32.const 1)))))))
    (local.get $out))

  (func (export "wasmflow:operator/map@0.1.0#process")
    (param $pc i32) (param $pp i32) (param $pl i32) (param $tp i32) (param $tl i32)
    (param $cc i32) (param $cp i32) (param $cl i32) (param $lp i32) (param $ll i32) (param $ts i64) (result i32)
    (local $f f64) (local $out i32) (local $w i32) (local $close i32) (local $n i32)
    (local.set $f (call $value (local.get $pp) (local.get $pl)))
    (if (f64.ne (local.get $f) (local.get $f)) (then (return (call $error (i32.const 136)))))
    ;; the closing brace: the last non-blank byte must be }
    (local.set $close (i32.add (local.get $pp) (local.get $pl)))
    (block $b (loop $l
      (br_if $b (i32.le_u (local.get $close) (global.get $num_end)))
      (local.set $close (i32.sub (local.get $close) (i32.const 1)))
      (br_if $b (i32.eq (i32.load8_u (local.get $close)) (i32.const 125)))
      (br $l)))
    (if (i32.ne (i32.load8_u (local.get $close)) (i32.const 125)) (then (return (call $error (i32.const 136)))))
    (local.set $out (call $realloc (i32.const 0) (i32.const 0) (i32.const 1) (i32.add (local.get $pl) (i32.const 48))))
    ;; prefix up to the number, the number in Celsius, the rest up to the brace, then ,"unit":"C"}
    (local.set $n (i32.sub (global.get $num_start) (local.get $pp)))
    (memory.copy (local.get $out) (local.get $pp) (local.get $n))
    (local.set $w (call $write_hundredths (i32.add (local.get $out) (local.get $n))
      (i64.trunc_f64_s (f64.nearest
        (f64.mul (f64.div (f64.mul (f64.sub (local.get $f) (f64.const 32)) (f64.const 5)) (f64.const 9))
                 (f64.const 100))))))
    (local.set $n (i32.sub (local.get $close) (global.get $num_end)))
    (memory.copy (local.get $w) (global.get $num_end) (local.get $n))
    (local.set $w (i32.add (local.get $w) (local.get $n)))
    (memory.copy (local.get $w) (i32.const 1080) (i32.const 12))
    (local.set $w (i32.add (local.get $w) (i32.const 12)))
    (i32.store8 (i32.const 128) (i32.const 0))
    (i32.store8 (i32.const 136) (i32.const 0))
    (i32.store (i32.const 140) (local.get $out))
    (i32.store (i32.const 144) (i32.sub (local.get $w) (local.get $out)))
    (i32.store (i32.const 148) (local.get $tp))
    (i32.store (i32.const 152) (local.get $tl))
    (i32.store8 (i32.const 156) (i32.const 1))
    (i32.store (i32.const 160) (i32.const 1092))
    (i32.store (i32.const 164) (i32.const 16))
    (i32.store (i32.const 168) (local.get $lp))
    (i32.store (i32.const 172) (local.get $ll))
    (i64.store (i32.const 176) (local.get $ts))
    (i32.const 128))
  (func (export "cabi_post_wasmflow:operator/map@0.1.0#process") (param i32)
    (global.set $bump (i32.const 4096)))
"""

_FILTER = """
  (func (export "wasmflow:operator/filter@0.1.0#process")
    (param $pc i32) (param $pp i32) (param $pl i32) (param $tp i32) (param $tl i32)
    (param $cc i32) (param $cp i32) (param $cl i32) (param $lp i32) (param $ll i32) (param $ts i64) (result i32)
    (local $f f64)
    (local.set $f (call $value (local.get $pp) (local.get $pl)))
    (if (f64.ne (local.get $f) (local.get $f)) (then (return (call $error (i32.const 132)))))
    (i32.store8 (i32.const 128) (i32.const 0))
    (i32.store8 (i32.const 132)
      (i32.and (f64.ge (local.get $f) (f64.const {low})) (f64.le (local.get $f) (f64.const {high}))))
    (i32.const 128))
  (func (export "cabi_post_wasmflow:operator/filter@0.1.0#process") (param i32)
    (global.set $bump (i32.const 4096)))
"""


def map_text() -> str:
    """The core module of the °F→°C map."""
    return f"(module {_PRELUDE} {_MAP})"


def filter_text(low: float = -50.0, high: float = 150.0) -> str:
    """The core module of the range filter: keeps ``low <= value <= high`` (the Python range_filter's defaults)."""
    return f"(module {_PRELUDE} {_FILTER.format(low=low, high=high)})"


def _wasm_tools(*args: str) -> None:
    result = subprocess.run([WASM_TOOLS, *args], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"wasm-tools {' '.join(args)} failed ({result.returncode}): {result.stderr[-2000:]}")


def componentize(text: str, world: str, out_dir: Path | None = None) -> bytes:
    """Core WAT -> component with wasm-tools (embed the contract WIT, then ``component new``), cached by content."""
    digest = hashlib.sha256(f"{world}\0{text}".encode())
    for path in sorted(WIT_DIR.rglob("*.wit")):
        digest.update(path.read_bytes())
    directory = out_dir or components_dir()
    target = directory / f"bench-wat-{world}-{digest.hexdigest()[:24]}.wasm"
    if target.exists():
        return target.read_bytes()
    with (directory / ".bench-wat.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not target.exists():
            with tempfile.TemporaryDirectory(prefix="bench-wat-") as tmp:
                work = Path(tmp)
                (work / "core.wat").write_text(text)
                _wasm_tools("parse", str(work / "core.wat"), "-o", str(work / "core.wasm"))
                _wasm_tools(
                    "component",
                    "embed",
                    str(WIT_DIR),
                    "--world",
                    world,
                    str(work / "core.wasm"),
                    "-o",
                    str(work / "embedded.wasm"),
                )
                _wasm_tools("component", "new", str(work / "embedded.wasm"), "-o", str(work / "out.wasm"))
                staged = target.with_suffix(".tmp")
                shutil.copyfile(work / "out.wasm", staged)
                staged.replace(target)
    return target.read_bytes()


def f2c_map() -> bytes:
    return componentize(map_text(), "map-operator")


def _leb128(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def tagged(component: bytes, tag: str) -> bytes:
    """``component`` with a custom section ``wasmflow-bench`` holding ``tag`` appended: distinct bytes (another
    digest), the same behaviour; custom sections may follow any section of a component."""
    name = b"wasmflow-bench"
    body = _leb128(len(name)) + name + tag.encode()
    return component + b"\x00" + _leb128(len(body)) + body


def range_filter() -> bytes:
    return componentize(filter_text(), "filter-operator")
