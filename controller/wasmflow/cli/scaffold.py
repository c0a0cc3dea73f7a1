"""What ``wasmflow new`` writes: a project an operator author can build and run at once.

Pure functions from (kind, name, language) to file contents, so the scaffold is tested without touching disk.
Every project has the WIT it builds against, the operator with one function to fill in, a sample input, a local
Dataflow to run it in, a WasmModule manifest to deploy it, a test that runs it through the engine, and a README.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from wasmflow.contract.signatures import OperatorKind, world_of
from wasmflow.contract.wit import wit_files
from wasmflow.errors import ConfigError

NAME = re.compile(r"^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$")
LANGUAGES = ("python", "javascript")
TEMPLATES = Path(__file__).resolve().parent / "templates"
COMPONENTIZE_JS = "0.22.0"


@dataclass(frozen=True)
class Project:
    """The identity of a scaffolded project, also written to ``operator.json`` for ``wasmflow build``."""

    name: str
    kind: OperatorKind
    language: str
    #: Business rules only (``wasmflow:<kind>-rules``), composed with wasmflow's adapter by ``wasmflow build``.
    composed: bool = False

    @property
    def world(self) -> str:
        return f"{self.kind.value}-rules" if self.composed else world_of(self.kind)

    @property
    def artifact(self) -> str:
        return f"build/{self.name}.wasm"

    @property
    def rules_artifact(self) -> str:
        """Where a composed project's rules component goes (``artifact`` is then the composed operator)."""
        return f"build/{self.name}-rules.wasm"


def validate(name: str, kind: str, language: str, composed: bool = False) -> Project:
    if not NAME.match(name):
        raise ConfigError(
            "must be a lowercase DNS label (a-z, 0-9, '-', starting with a letter, at most 63 characters)",
            where=f"NAME {name!r}",
        )
    if language not in LANGUAGES:
        raise ConfigError(f"must be one of {', '.join(LANGUAGES)}", where=f"--lang {language!r}")
    return Project(name=name, kind=OperatorKind(kind), language=language, composed=composed)


_PY_BODIES = {
    OperatorKind.MAP: (
        "Map",
        '''def transform(body: dict) -> dict:
    """Return the new JSON body. Raise Reject("why") to send the message to the error policy."""
    body["processedBy"] = CONFIG.get("label", "{name}")
    return body''',
        """    def process(self, input: types.Message) -> types.Message:
        def run() -> types.Message:
            body = transform(json.loads(payload_bytes(input)))
            return with_payload(input, json.dumps(body, separators=(",", ":")).encode(), "application/json")

        return guard(run)""",
    ),
    OperatorKind.FILTER: (
        "Filter",
        '''def keep(body: dict) -> bool:
    """Return True to pass the message on, False to drop it."""
    return float(body["value"]) >= float(CONFIG.get("min", "0"))''',
        """    def process(self, input: types.Message) -> bool:
        return guard(lambda: keep(json.loads(payload_bytes(input))))""",
    ),
    OperatorKind.BRANCH: (
        "Branch",
        '''def is_true_arm(body: dict) -> bool:
    """Return True to route the message along the `arm: true` edges, False for the `arm: false` ones."""
    return float(body["value"]) > float(CONFIG.get("threshold", "50"))''',
        """    def process(self, input: types.Message) -> bool:
        return guard(lambda: is_true_arm(json.loads(payload_bytes(input))))""",
    ),
    OperatorKind.ACCUMULATE: (
        "Accumulate",
        '''def fold(state: dict | None, body: dict) -> dict:
    """Fold one message into the window's state (None for the first message of a window)."""
    state = state or {{"count": 0, "sum": 0.0}}
    state["count"] += 1
    state["sum"] += float(body["value"])
    state["avg"] = state["sum"] / state["count"]
    return state''',
        """    def process(self, state: types.Message, input: types.Message) -> types.Message:
        def run() -> types.Message:
            previous = payload_bytes(state)
            folded = fold(json.loads(previous) if previous else None, json.loads(payload_bytes(input)))
            return with_payload(input, json.dumps(folded, separators=(",", ":")).encode(), "application/json")

        return guard(run)""",
    ),
}

_JS_BODIES = {
    OperatorKind.MAP: (
        "map",
        """// Return the new JSON body. Throw new Reject("why") to send the message to the error policy.
function transform(body) {{
  body.processedBy = config.label ?? "{name}";
  return body;
}}""",
        """  process(input) {
    return guard(() => withPayload(input, JSON.stringify(transform(JSON.parse(payloadText(input))))));
  },""",
    ),
    OperatorKind.FILTER: (
        "filter",
        """// Return true to pass the message on, false to drop it.
function keep(body) {{
  return Number(body.value) >= Number(config.min ?? 0);
}}""",
        """  process(input) {
    return guard(() => keep(JSON.parse(payloadText(input))));
  },""",
    ),
    OperatorKind.BRANCH: (
        "branch",
        """// Return true to route the message along the `arm: true` edges, false for the `arm: false` ones.
function isTrueArm(body) {{
  return Number(body.value) > Number(config.threshold ?? 50);
}}""",
        """  process(input) {
    return guard(() => isTrueArm(JSON.parse(payloadText(input))));
  },""",
    ),
    OperatorKind.ACCUMULATE: (
        "accumulate",
        """// Fold one message into the window's state (null for the first message of a window).
function fold(state, body) {{
  state = state ?? {{ count: 0, sum: 0 }};
  state.count += 1;
  state.sum += Number(body.value);
  state.avg = state.sum / state.count;
  return state;
}}""",
        """  process(state, input) {
    return guard(() => {
      const previous = payloadText(state);
      const folded = fold(previous ? JSON.parse(previous) : null, JSON.parse(payloadText(input)));
      return withPayload(input, JSON.stringify(folded));
    });
  },""",
    ),
}

_JS_HELPERS = """// Helpers: payloads as text whichever case they travelled in, Reject -> operator error, configuration.
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
    throw { message: e instanceof Error ? `${e.name}: ${e.message}` : String(e) };
  }
}

export const lifecycle = {
  init(configuration) {
    for (const [key, value] of configuration.properties) config[key] = value;
  },
};
"""


def python_app(project: Project) -> str:
    cls, body, method = _PY_BODIES[project.kind]
    return f'''"""{project.name}: a wasmflow {project.kind.value} operator. Edit the function below, then:

    wasmflow build && wasmflow run dataflow.yaml --module {project.name}={project.artifact} --input sample.jsonl
"""

import json

from wit_world import exports
from wit_world.imports import types

from wasmflow_guest import CONFIG, Reject, configure, guard, payload_bytes, with_payload  # noqa: F401


{body.format(name=project.name)}


class Lifecycle(exports.Lifecycle):
    def init(self, config: types.Configuration) -> None:
        configure(config)


class {cls}(exports.{cls}):
{method}
'''


def javascript_app(project: Project) -> str:
    export, body, method = _JS_BODIES[project.kind]
    return f"""// {project.name}: a wasmflow {project.kind.value} operator. Edit the function below, then:
//   wasmflow build && wasmflow run dataflow.yaml --module {project.name}={project.artifact} --input sample.jsonl

{body.format(name=project.name)}

export const {export} = {{
{method}
}};

{_JS_HELPERS}"""


def dataflow(project: Project) -> str:
    """A local Dataflow: MQTT in, this operator, MQTT out (``wasmflow run`` reads and writes files instead)."""
    configuration = {
        OperatorKind.MAP: f'{{label: "{project.name}"}}',
        OperatorKind.FILTER: '{min: "30"}',
        OperatorKind.BRANCH: '{threshold: "50"}',
        OperatorKind.ACCUMULATE: "{}",
    }[project.kind]
    op = f"""    - name: {project.name}
      type: {project.kind.value}
      module: {project.name}
      configuration: {configuration}"""
    if project.kind is OperatorKind.ACCUMULATE:
        op += "\n      window: {count: 3}"
    sinks = "    - {name: out, type: sink, endpoint: broker, topic: " + f"{project.name}/out" + "}"
    edges = f"    - {{from: in, to: {project.name}}}\n"
    if project.kind is OperatorKind.BRANCH:
        sinks += "\n    - {name: other, type: sink, endpoint: broker, topic: " + f"{project.name}/other" + "}"
        edges += (
            f"    - {{from: {project.name}, to: out, arm: true}}\n    - {{from: {project.name}, to: other, arm: false}}"
        )
    else:
        edges += f"    - {{from: {project.name}, to: out}}"
    return f"""apiVersion: wasmflow.io/v1alpha1
kind: Dataflow
metadata:
  name: {project.name}-demo
spec:
  endpoints:
    broker:
      mqtt: {{url: "mqtt://mosquitto:1883", qos: 1}}
  nodes:
    - {{name: in, type: source, endpoint: broker, topic: "sensors/+/temperature"}}
{op}
{sinks}
  edges:
{edges}
"""


def wasmmodule(project: Project) -> str:
    return f"""apiVersion: wasmflow.io/v1alpha1
kind: WasmModule
metadata:
  name: {project.name}
spec:
  source:
    oci:
      # `wasmflow push {project.artifact} <registry>/{project.name}:0.1.0` prints the digest to pin here.
      reference: registry.example:5000/operators/{project.name}:0.1.0
  operator: {project.kind.value}
  limits: {{memory: 64Mi, timeoutPerMessage: 100ms}}
"""


def sample() -> str:
    rows = [
        {"topic": "sensors/1/temperature", "payload": json.dumps({"sensor": 1, "value": 21.5})},
        {"topic": "sensors/2/temperature", "payload": json.dumps({"sensor": 2, "value": 73.0})},
        {"topic": "sensors/1/temperature", "payload": json.dumps({"sensor": 1, "value": 48.25})},
    ]
    return "".join(json.dumps(r) + "\n" for r in rows)


#: What the template's function does with sample.jsonl (readings 21.5, 73.0 and 48.25) and the configuration that
#: dataflow.yaml gives it, as the assertion the generated test makes.
_EXPECTED = {
    OperatorKind.MAP: (
        "every reading goes on, marked with the label from the configuration",
        '[(o["sink"], body(o)["value"], body(o)["processedBy"]) for o in outputs]',
        '[("out", 21.5, "{name}"), ("out", 73.0, "{name}"), ("out", 48.25, "{name}")]',
    ),
    OperatorKind.FILTER: (
        "readings under min (30 in dataflow.yaml) are dropped",
        '[(o["sink"], body(o)["value"]) for o in outputs]',
        '[("out", 73.0), ("out", 48.25)]',
    ),
    OperatorKind.BRANCH: (
        "readings over threshold (50) take the true arm (sink out), the others the false arm (sink other)",
        '{{sink: [body(o)["value"] for o in outputs if o["sink"] == sink] for sink in ("out", "other")}}',
        '{{"out": [73.0], "other": [21.5, 48.25]}}',
    ),
    OperatorKind.ACCUMULATE: (
        "the window of 3 readings (window: {{count: 3}}) is folded into one count and average",
        '[(o["sink"], body(o)["count"], round(body(o)["avg"], 3)) for o in outputs]',
        '[("out", 3, 47.583)]',
    ),
}


def test_file(project: Project) -> str:
    what, actual, expected = (text.format(name=project.name) for text in _EXPECTED[project.kind])
    edit = "app.py" if project.language == "python" else "app.js"
    return f'''"""Runs the operator through the engine on sample.jsonl: `python test_operator.py` or `pytest`.

Build first (`wasmflow build`). When you change the function in {edit}, change the expectation below with it.
"""

import json
import shutil
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
WASMFLOW = shutil.which("wasmflow") or str(Path(sys.executable).with_name("wasmflow"))


def run_sample() -> list[dict]:
    result = subprocess.run(
        [WASMFLOW, "run", "dataflow.yaml", "--module", "{project.name}={project.artifact}",
         "--input", "sample.jsonl", "--output", "-"],
        cwd=HERE, capture_output=True, text=True, check=False,
    )
    assert result.returncode == 0, result.stderr
    return [json.loads(line) for line in result.stdout.splitlines() if line.strip()]


def body(output: dict) -> dict:
    return json.loads(output["payload"])


def test_the_operator_processes_the_sample() -> None:
    outputs = run_sample()
    # {what}
    actual = {actual}
    assert actual == {expected}, outputs


if __name__ == "__main__":
    test_the_operator_processes_the_sample()
    print("ok: the operator does what test_operator.py expects on sample.jsonl")
'''


def readme(project: Project) -> str:
    edit = "app.py" if project.language == "python" else "app.js"
    return f"""# {project.name}: a wasmflow {project.kind.value} operator ({project.language})
1. Edit the function at the top of `{edit}`.
2. `wasmflow build` compiles it to `{project.artifact}` and checks it against the contract (`wit/`).
3. `wasmflow run dataflow.yaml --module {project.name}={project.artifact} --input sample.jsonl` runs it locally.
4. `python test_operator.py` runs it as a test.
5. `wasmflow push {project.artifact} REGISTRY/{project.name}:0.1.0` publishes it; apply `wasmmodule.yaml` to deploy.
"""


def render(project: Project) -> dict[str, str]:
    """Every file of a monolithic project, by relative path (a composed one: ``scaffold_composed.render_composed``)."""
    files = {
        "operator.json": json.dumps(
            {"name": project.name, "operator": project.kind.value, "language": project.language}, indent=2
        )
        + "\n",
        "dataflow.yaml": dataflow(project),
        "wasmmodule.yaml": wasmmodule(project),
        "sample.jsonl": sample(),
        "test_operator.py": test_file(project),
        "README.md": readme(project),
        ".gitignore": "build/\n__pycache__/\nnode_modules/\n",
    }
    for wit in wit_files():
        files[f"wit/{wit.name}"] = wit.read_text(encoding="utf-8")
    if project.language == "python":
        files["app.py"] = python_app(project)
        files["wasmflow_guest.py"] = (TEMPLATES / "wasmflow_guest.py.tmpl").read_text(encoding="utf-8")
    else:
        files["app.js"] = javascript_app(project)
        files["package.json"] = (
            json.dumps(
                {
                    "name": project.name,
                    "private": True,
                    "type": "module",
                    "devDependencies": {"@bytecodealliance/componentize-js": COMPONENTIZE_JS},
                },
                indent=2,
            )
            + "\n"
        )
    return files
