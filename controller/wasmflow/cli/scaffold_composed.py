"""What ``wasmflow new KIND NAME --composed`` writes: a business-rules project for the composed pattern.

The rules implement ``wasmflow:<kind>-rules`` (contract/wit/rules): plain data, no SDK, no host import, no helper
module. ``wasmflow build`` compiles them to ``build/NAME-rules.wasm`` and composes them with the adapter wasmflow
ships into ``build/NAME.wasm``, the operator that runs. The function to edit, the sample, the Dataflow and the test
are those of a monolithic project of the same kind, so the two patterns give the same output.
"""

from __future__ import annotations

import json

from wasmflow.cli import scaffold
from wasmflow.cli.scaffold import Project
from wasmflow.contract.signatures import OperatorKind
from wasmflow.contract.wit import rules_wit_file

_PY_METHODS = {
    OperatorKind.MAP: """    def process(self, input: rules.Message) -> rules.Message:
        return guard(lambda: with_json(input, transform(json.loads(text(input)))))""",
    OperatorKind.FILTER: """    def process(self, input: rules.Message) -> bool:
        return guard(lambda: keep(json.loads(text(input))))""",
    OperatorKind.BRANCH: """    def process(self, input: rules.Message) -> bool:
        return guard(lambda: is_true_arm(json.loads(text(input))))""",
    OperatorKind.ACCUMULATE: """    def process(self, state: rules.Message, input: rules.Message) -> rules.Message:
        def run() -> rules.Message:
            previous = text(state)
            return with_json(input, fold(json.loads(previous) if previous else None, json.loads(text(input))))

        return guard(run)""",
}


def python_rules(project: Project) -> str:
    _, body, _ = scaffold._PY_BODIES[project.kind]
    kind = project.kind.value
    return f'''"""{project.name}: business rules for a wasmflow {kind} operator, with no SDK (wasmflow:{kind}-rules).

Edit the function below, then `wasmflow build`: it builds these rules into {project.rules_artifact} and composes
them with the {kind} adapter wasmflow ships into {project.artifact}, the operator that runs:

    wasmflow run dataflow.yaml --module {project.name}={project.artifact} --input sample.jsonl
"""

import json
from collections.abc import Callable
from typing import TypeVar

from componentize_py_types import Err
from wit_world import exports
from wit_world.exports import rules

#: The node's configuration properties (dataflow.yaml), set once by init.
CONFIG: dict[str, str] = {{}}
T = TypeVar("T")


class Reject(Exception):  # noqa: N818 - the name says what it does to the message
    """Raise Reject("why") to send the message to the node's error policy."""


{body.format(name=project.name)}


def text(msg: rules.Message) -> str:
    """The payload as text, whichever case it travelled in."""
    payload = msg.payload
    return payload.value if isinstance(payload, rules.Payload_Text) else payload.value.decode()


def with_json(msg: rules.Message, body: dict) -> rules.Message:
    msg.payload = rules.Payload_Text(json.dumps(body, separators=(",", ":")))
    msg.content_type = "application/json"
    return msg


def guard(fn: Callable[[], T]) -> T:
    """Any failure of the rules fails this message only, with its text (the pipeline goes on)."""
    try:
        return fn()
    except Exception as exc:  # noqa: BLE001 - reported as the message's error, not swallowed
        raise Err(f"{{type(exc).__name__}}: {{exc}}") from exc


class Rules(exports.Rules):
    def init(self, properties: list[tuple[str, str]]) -> None:
        CONFIG.update(properties)

{_PY_METHODS[project.kind]}
'''


_JS_HELPERS = """// Helpers: payloads as text whichever case they travelled in, Reject -> the error, configuration.
class Reject extends Error {}
const config = {};

function payloadText(msg) {
  return msg.payload.tag === "text" ? msg.payload.val : new TextDecoder().decode(msg.payload.val);
}

function withPayload(msg, text) {
  return { ...msg, payload: { tag: "text", val: text }, contentType: "application/json" };
}

function guard(fn) {
  try {
    return fn();
  } catch (e) {
    throw e instanceof Error ? `${e.name}: ${e.message}` : String(e);
  }
}
"""


def javascript_rules(project: Project) -> str:
    _, body, method = scaffold._JS_BODIES[project.kind]
    kind = project.kind.value
    return f"""// {project.name}: business rules for a wasmflow {kind} operator, with no SDK (wasmflow:{kind}-rules).
// Edit the function below, then `wasmflow build`: it builds these rules into {project.rules_artifact} and composes
// them with the {kind} adapter wasmflow ships into {project.artifact}, the operator that runs.

{body.format(name=project.name)}

export const rules = {{
  init(properties) {{
    for (const [key, value] of properties) config[key] = value;
  }},
{method}
}};

{_JS_HELPERS}"""


def readme(project: Project) -> str:
    edit = "app.py" if project.language == "python" else "app.js"
    kind = project.kind.value
    return f"""# {project.name}: business rules for a wasmflow {kind} operator ({project.language}, composed)
These rules implement `wasmflow:{kind}-rules` (`wit/rules.wit`): plain data in and out, no SDK, no host import.
The platform layer (wasmflow's {kind} adapter) is fused with them at build time, or by the controller at deploy time.
1. Edit the function at the top of `{edit}`.
2. `wasmflow build` compiles the rules to `{project.rules_artifact}`, composes them into `{project.artifact}` and
   checks the result against the contract (`wasmflow inspect {project.artifact}` shows its parts).
3. `wasmflow run dataflow.yaml --module {project.name}={project.artifact} --input sample.jsonl` runs it locally.
4. `python test_operator.py` runs it as a test.
5. Ship `{project.rules_artifact}` alone (`wasmflow push`) when the platform team composes at deploy time.
"""


def render_composed(project: Project) -> dict[str, str]:
    """Every file of a composed project, by relative path."""
    files = {
        "operator.json": json.dumps(
            {"name": project.name, "operator": project.kind.value, "language": project.language, "composed": True},
            indent=2,
        )
        + "\n",
        "dataflow.yaml": scaffold.dataflow(project),
        "wasmmodule.yaml": scaffold.wasmmodule(project),
        "sample.jsonl": scaffold.sample(),
        "test_operator.py": scaffold.test_file(project),
        "README.md": readme(project),
        ".gitignore": "build/\n__pycache__/\nnode_modules/\n",
        "wit/rules.wit": rules_wit_file(project.kind.value).read_text(encoding="utf-8"),
    }
    if project.language == "python":
        files["app.py"] = python_rules(project)
    else:
        files["app.js"] = javascript_rules(project)
        files["package.json"] = (
            json.dumps(
                {
                    "name": project.name,
                    "private": True,
                    "type": "module",
                    "devDependencies": {"@bytecodealliance/componentize-js": scaffold.COMPONENTIZE_JS},
                },
                indent=2,
            )
            + "\n"
        )
    return files
