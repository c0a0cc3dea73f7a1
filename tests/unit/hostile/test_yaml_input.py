"""The one YAML guard (``wasmflow.api.yaml_input``): every YAML read from outside is a plain, bounded tree."""

from __future__ import annotations

import time

import pytest

from tests.fault_report import Report
from tests.integration.faults.test_hostile_yaml import bomb
from wasmflow.api.frontends.aio import parse_graph
from wasmflow.api.manifests import parse_manifests
from wasmflow.api.yaml_input import MAX_DEPTH, load_yaml, load_yaml_all
from wasmflow.errors import ConfigError


def test_an_anchor_is_refused_naming_its_field_and_line() -> None:
    text = "a:\n  b:\n    - x\n    - &here {c: 1}\nd: *here\n"
    with pytest.raises(ConfigError, match=r"^f.yaml: a\.b\[1\] \(line 4\): YAML anchors are not accepted \(&here\)"):
        load_yaml(text, "f.yaml", max_bytes=1000)


def test_an_alias_is_refused_even_without_its_anchor() -> None:
    with pytest.raises(ConfigError, match=r"^f.yaml: a \(line 1\): YAML aliases are not accepted \(\*nowhere\)"):
        load_yaml("a: *nowhere\n", "f.yaml", max_bytes=1000)


def test_a_merge_key_needs_an_alias_and_is_refused() -> None:
    with pytest.raises(ConfigError, match="anchors are not accepted"):
        load_yaml("base: &b {x: 1}\nother:\n  <<: *b\n", "f.yaml", max_bytes=1000)


def test_text_over_the_limit_is_refused_before_parsing() -> None:
    with pytest.raises(ConfigError, match="1,001 bytes of YAML, over the limit of 1,000 bytes"):
        load_yaml("#" * 1001, "f.yaml", max_bytes=1000)


def test_nesting_deeper_than_the_bound_is_refused(report: Report) -> None:
    deep = "[" * (MAX_DEPTH + 1) + "]" * (MAX_DEPTH + 1)
    assert load_yaml("[" * MAX_DEPTH + "]" * MAX_DEPTH, "ok", max_bytes=10_000) is not None
    with pytest.raises(ConfigError, match=f"nested deeper than {MAX_DEPTH} levels"):
        load_yaml(deep, "f.yaml", max_bytes=10_000)
    report(max_depth=MAX_DEPTH)


def test_every_document_of_a_manifest_stream_is_guarded() -> None:
    assert load_yaml_all("a: 1\n---\nb: 2\n", "m.yaml", max_bytes=100) == [{"a": 1}, {"b": 2}]
    with pytest.raises(ConfigError, match=r"^m\.yaml#2: b \(line 3\): YAML anchors"):
        parse_manifests("a: 1\n---\nb: &x 1\nc: *x\n", "m.yaml")


def test_a_graph_parameter_default_must_be_a_scalar() -> None:
    text = "operations: []\nmoduleConfigurations:\n  - name: op\n    parameters:\n      p: {default: [1, 2]}\n"
    with pytest.raises(ConfigError, match=r"parameters\.p\.default: a parameter default must be text, a number"):
        parse_graph(text, "g.yaml")
    plain = "operations: []\nmoduleConfigurations:\n  - name: op\n    parameters:\n      p: {default: 2.5}\n"
    assert parse_graph(plain, "g.yaml").parameters("op") == (("p", "2.5"),)


def test_a_billion_laughs_graph_is_refused_before_it_expands(report: Report) -> None:
    started = time.perf_counter()
    with pytest.raises(ConfigError, match=r"x0 \(line 1\): YAML anchors are not accepted"):
        parse_graph(bomb(8), "bomb.yaml")
    report(refused_in_process_ms=(time.perf_counter() - started) * 1000)
