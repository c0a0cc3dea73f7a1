"""Real components, built by real toolchains, checked against the contract."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from wasmflow.contract.capabilities import Capability
from wasmflow.contract.check import apply_grants, check_component
from wasmflow.contract.report import Code, ContractReport
from wasmflow.contract.signatures import MESSAGE, OperatorKind

Bytes = Callable[[str], bytes]


@pytest.fixture(scope="module")
def checked(component_bytes: Bytes) -> Callable[[str], ContractReport]:
    cache: dict[str, ContractReport] = {}

    def check(name: str) -> ContractReport:
        if name not in cache:
            cache[name] = check_component(component_bytes(name))
        return cache[name]

    return check


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("identity_map", OperatorKind.MAP),
        ("range_filter", OperatorKind.FILTER),
        ("threshold_branch", OperatorKind.BRANCH),
        ("average_accumulate", OperatorKind.ACCUMULATE),
    ],
)
def test_componentize_py_operators_of_every_kind_are_accepted(
    checked: Callable[[str], ContractReport], name: str, kind: OperatorKind
) -> None:
    report = checked(name)
    assert report.problems == ()
    assert report.operator is kind
    assert report.world == f"wasmflow:operator/{kind.value}-operator@0.1.0"


def test_componentize_py_extras_do_not_fail_a_good_component(checked: Callable[[str], ContractReport]) -> None:
    report = checked("identity_map")
    assert "exports" in report.exports  # componentize-py's own pre-init instance
    assert any(i.name.startswith("wasi:sockets/") and not i.granted for i in report.imports)
    assert report.valid


def test_a_javascript_component_from_componentize_js_is_accepted(checked: Callable[[str], ContractReport]) -> None:
    report = checked("js_f2c_map")
    assert report.valid, report.problems
    assert report.operator is OperatorKind.MAP


def test_a_hand_written_canonical_abi_component_is_accepted(checked: Callable[[str], ContractReport]) -> None:
    # Built with wasm-tools from a core module: no producer any other test uses. Types decide, not producers.
    report = checked("wat_identity_map")
    assert report.valid, report.problems
    assert report.operator is OperatorKind.MAP


def test_a_truncated_component_is_reported_as_truncated(component_bytes: Bytes) -> None:
    report = check_component(component_bytes("identity_map")[:4096])
    (problem,) = report.problems
    assert problem.code is Code.TRUNCATED
    assert "end-of-file" in problem.message


def test_a_corrupt_component_is_reported_as_corrupt(component_bytes: Bytes) -> None:
    data = bytearray(component_bytes("wat_identity_map"))
    data[8] = 0x7F  # the first section id becomes one that does not exist
    (problem,) = check_component(bytes(data)).problems
    assert problem.code is Code.CORRUPT
    assert "section" in problem.message


def test_a_core_module_is_refused(checked: Callable[[str], ContractReport]) -> None:
    assert [p.code for p in checked("core_module").problems] == [Code.CORE_MODULE]


def test_a_component_without_an_operator_interface_is_refused(checked: Callable[[str], ContractReport]) -> None:
    (problem,) = checked("no_operator").problems
    assert problem.code is Code.NO_OPERATOR
    assert "acme:thing/answers@1.0.0" in problem.message


def test_two_operator_interfaces_are_refused(checked: Callable[[str], ContractReport]) -> None:
    (problem,) = checked("extra_operator").problems
    assert problem.code is Code.MULTIPLE_OPERATORS
    assert problem.found == "wasmflow:operator/map@0.1.0, wasmflow:operator/filter@0.1.0"


def test_a_missing_function_names_the_interface_and_function(checked: Callable[[str], ContractReport]) -> None:
    problems = [p for p in checked("missing_function").problems if p.code is Code.MISSING_FUNCTION]
    where = {(p.where.interface, p.where.function) for p in problems}
    assert ("wasmflow:operator/map@0.1.0", "process") in where
    assert ("wasmflow:operator/lifecycle@0.1.0", "init") in where
    process = next(p for p in problems if p.where.function == "process")
    assert process.found == "transform"


def test_a_wrong_signature_names_parameter_and_expected_vs_found(checked: Callable[[str], ContractReport]) -> None:
    problems = [p for p in checked("wrong_signature").problems if p.code is Code.SIGNATURE_MISMATCH]
    by_parameter = {p.where.parameter: p for p in problems}
    assert by_parameter["input"].where.interface == "wasmflow:operator/map@0.1.0"
    assert by_parameter["input"].where.function == "process"
    assert by_parameter["input"].expected == MESSAGE
    assert by_parameter["input"].found == "string"
    assert by_parameter["result"].found == "string"
    assert by_parameter["result"].expected is not None
    assert by_parameter["result"].expected.startswith("result<record")


def test_an_incompatible_contract_version_is_refused(checked: Callable[[str], ContractReport]) -> None:
    (problem,) = checked("future_version").problems
    assert problem.code is Code.INCOMPATIBLE_VERSION
    assert (problem.expected, problem.found) == ("0.1.0", "0.2.0")
    assert problem.where.interface == "wasmflow:operator/map@0.2.0"


def test_an_import_the_host_cannot_provide_is_refused(checked: Callable[[str], ContractReport]) -> None:
    problems = [p for p in checked("unknown_import").problems if p.code is Code.UNSUPPORTED_IMPORT]
    assert [p.where.interface for p in problems] == ["acme:vault/secrets@1.0.0"]


def test_size_over_the_limit_is_refused(component_bytes: Bytes) -> None:
    data = component_bytes("identity_map")
    (problem,) = check_component(data, max_bytes=1_000_000).problems
    assert problem.code is Code.TOO_LARGE
    assert problem.found == f"{len(data)} bytes"


def test_strict_mode_refuses_imports_beyond_the_grants(component_bytes: Bytes) -> None:
    report = check_component(component_bytes("identity_map"), strict=True)
    denied = {
        p.where.interface.split("@")[0] for p in report.problems if p.code is Code.NOT_GRANTED if p.where.interface
    }
    assert "wasi:sockets/tcp" in denied
    assert "wasi:filesystem/preopens" in denied


def test_strict_mode_accepts_imports_the_grants_cover(component_bytes: Bytes) -> None:
    grants = [Capability.NETWORK, Capability.FILESYSTEM, Capability.ENVIRONMENT, Capability.STDIO]
    assert check_component(component_bytes("identity_map"), strict=True, grants=grants).valid


def test_a_module_declared_as_another_kind_is_refused(component_bytes: Bytes) -> None:
    report = check_component(component_bytes("wat_identity_map"), expected_kind=OperatorKind.FILTER)
    (problem,) = report.problems
    assert problem.code is Code.KIND_MISMATCH
    assert (problem.expected, problem.found) == ("filter", "map")


@pytest.mark.parametrize("name", ["identity_map", "unknown_import", "wat_identity_map", "range_filter"])
def test_grants_applied_to_the_grant_free_report_give_the_same_verdict_as_a_full_check(
    component_bytes: Bytes, checked: Callable[[str], ContractReport], name: str
) -> None:
    """The controller compiles a component once and applies each WasmModule's grants afterwards (apply_grants)."""
    data = component_bytes(name)
    settings: list[dict[str, object]] = [
        {},
        {"strict": True},
        {"strict": True, "grants": [Capability.NETWORK, Capability.STDIO]},
        {"expected_kind": OperatorKind.FILTER},
        {"expected_kind": OperatorKind.MAP, "strict": True, "grants": [Capability.HTTP]},
    ]
    for setting in settings:
        assert apply_grants(checked(name), **setting) == check_component(data, **setting), setting  # type: ignore[arg-type]
