"""Offline reading of the Terraform configuration with python-hcl2 (no terraform binary, no providers)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import hcl2
from hcl2 import SerializationOptions

ROOT = Path(__file__).resolve().parents[2]
TERRAFORM = ROOT / "terraform"
MODULE = TERRAFORM
RBAC_MODULE = TERRAFORM / "modules" / "rbac"
EXAMPLE = TERRAFORM / "examples" / "basic"
MODULE_DIRS = (MODULE, RBAC_MODULE, EXAMPLE)

_OPTIONS = SerializationOptions(strip_string_quotes=True, preserve_heredocs=False, with_comments=False)

# var.x, local.x, module.x, data.TYPE.NAME, and TYPE.NAME for managed resources of the providers in use.
_REFERENCE = re.compile(r"(?<![\w.])(var|local|module)\.([A-Za-z_][\w-]*)")
_DATA_REFERENCE = re.compile(r"(?<![\w.])data\.([A-Za-z_][\w-]*)\.([A-Za-z_][\w-]*)")
_RESOURCE_REFERENCE = re.compile(r"(?<![\w.])((?:google|kubernetes|archive|random)_[a-z0-9_]+)\.([A-Za-z_][\w-]*)")
_META_ARGUMENTS = frozenset({"source", "version", "count", "for_each", "providers", "depends_on"})


def parse_file(path: Path) -> dict[str, Any]:
    with path.open(encoding="utf-8") as handle:
        parsed: dict[str, Any] = hcl2.load(handle, serialization_options=_OPTIONS)
    return parsed


def _blocks(parsed: Mapping[str, Any], kind: str) -> Iterator[tuple[str, Any]]:
    for block in parsed.get(kind, []):
        yield from block.items()


@dataclass
class Module:
    path: Path
    files: dict[str, dict[str, Any]] = field(default_factory=dict)
    variables: dict[str, dict[str, Any]] = field(default_factory=dict)
    locals: dict[str, Any] = field(default_factory=dict)
    resources: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    data: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    modules: dict[str, dict[str, Any]] = field(default_factory=dict)
    outputs: dict[str, dict[str, Any]] = field(default_factory=dict)

    def resources_of(self, kind: str) -> dict[str, dict[str, Any]]:
        return {name: body for (type_, name), body in self.resources.items() if type_ == kind}

    def expressions(self) -> Iterator[tuple[str, str]]:
        """(file, text) for every string in the module that holds an interpolation."""
        for name, parsed in self.files.items():
            for text in strings(parsed):
                if "${" in text:
                    yield name, text


def load_module(path: Path) -> Module:
    module = Module(path=path)
    for file in sorted(path.glob("*.tf")):
        parsed = parse_file(file)
        module.files[file.name] = parsed
        for name, body in _blocks(parsed, "variable"):
            module.variables[name] = body
        for block in parsed.get("locals", []):
            module.locals.update({k: v for k, v in block.items() if not k.startswith("__")})
        for type_, named in _blocks(parsed, "resource"):
            for name, body in named.items():
                module.resources[(type_, name)] = body
        for type_, named in _blocks(parsed, "data"):
            for name, body in named.items():
                module.data[(type_, name)] = body
        for name, body in _blocks(parsed, "module"):
            module.modules[name] = body
        for name, body in _blocks(parsed, "output"):
            module.outputs[name] = body
    return module


def strings(value: Any) -> Iterator[str]:
    """Every string leaf (and object key) under ``value``."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, Mapping):
        for key, item in value.items():
            if isinstance(key, str) and not key.startswith("__"):
                yield key
            yield from strings(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from strings(item)


def references(text: str) -> Iterator[tuple[str, str]]:
    """(kind, name) for var/local/module references, ("data", "TYPE.NAME") and ("resource", "TYPE.NAME")."""
    for match in _REFERENCE.finditer(text):
        yield match[1], match[2]
    for match in _DATA_REFERENCE.finditer(text):
        yield "data", f"{match[1]}.{match[2]}"
    for match in _RESOURCE_REFERENCE.finditer(text):
        yield "resource", f"{match[1]}.{match[2]}"


def module_arguments(call: Mapping[str, Any]) -> set[str]:
    return {key for key in call if key not in _META_ARGUMENTS and not key.startswith("__")}


def first(blocks: Any) -> dict[str, Any]:
    """The single nested block ``blocks`` (python-hcl2 gives nested blocks as lists)."""
    assert isinstance(blocks, list), f"expected a nested block, got {blocks!r}"
    assert len(blocks) == 1, f"expected one block, got {blocks!r}"
    block: dict[str, Any] = blocks[0]
    return block


def unwrap(expression: str) -> str:
    """The inside of a whole-string interpolation "${...}"."""
    return expression[2:-1] if expression.startswith("${") and expression.endswith("}") else expression


_INTERPOLATION = re.compile(r"\$\{([^${}]+)\}")


def render(text: str, module: Module, *, variables: Mapping[str, str], bindings: Mapping[str, str]) -> str:
    """Substitute ``${var.X}``, ``${local.X}`` (string locals, recursively) and the given ``bindings``
    (e.g. ``each.value.filter``) in ``text``; anything else left is an error."""

    def value(match: re.Match[str]) -> str:
        expression = match[1].strip()
        if expression in bindings:
            return bindings[expression]
        kind, _, name = expression.partition(".")
        if kind == "var":
            if name in variables:
                return variables[name]
            default = module.variables[name].get("default")
            assert isinstance(default, str), f"var.{name} has no string default; pass it"
            return default
        if kind == "local":
            local = module.locals[name]
            assert isinstance(local, str), f"local.{name} is not a string"
            return local
        raise AssertionError(f"cannot render ${{{expression}}}")

    for _ in range(10):
        rendered = _INTERPOLATION.sub(value, text)
        if rendered == text:
            break
        text = rendered
    assert "${" not in text, f"unrendered interpolation left in {text!r}"
    return text


# --- the module's README: input and output tables, as terraform-docs lays them out -------------------------------

README_BEGIN = "<!-- BEGIN_TF_DOCS -->"
README_END = "<!-- END_TF_DOCS -->"


def hcl_value(value: Any) -> str:
    """A parsed default written back as HCL on one line."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int | float):
        return str(int(value)) if float(value).is_integer() else repr(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(hcl_value(item) for item in value) + "]"
    if isinstance(value, Mapping):
        items = [(key, item) for key, item in value.items() if not str(key).startswith("__")]
        return "{" + ", ".join(f"{key} = {hcl_value(item)}" for key, item in items) + "}" if items else "{}"
    raise TypeError(f"no HCL for {value!r}")


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def readme_tables(module: Module) -> str:
    """The Inputs and Outputs sections of the module's README, from variables.tf and outputs.tf."""
    lines = [
        "## Inputs",
        "",
        "| Name | Description | Type | Default | Required |",
        "|------|-------------|------|---------|:--------:|",
    ]
    for name in sorted(module.variables):
        body = module.variables[name]
        required = "default" not in body
        default = "n/a" if required else f"`{_cell(hcl_value(body['default']))}`"
        lines.append(
            f"| {name} | {_cell(body['description'])} | `{_cell(unwrap(str(body['type'])))}` | {default} | "
            f"{'yes' if required else 'no'} |"
        )
    lines += ["", "## Outputs", "", "| Name | Description |", "|------|-------------|"]
    lines += [f"| {name} | {_cell(module.outputs[name]['description'])} |" for name in sorted(module.outputs)]
    return "\n".join(lines) + "\n"


def readme_with_tables(readme: str, module: Module) -> str:
    """``readme`` with the text between the terraform-docs markers replaced by :func:`readme_tables`."""
    head, begin, rest = readme.partition(README_BEGIN)
    _, end, tail = rest.partition(README_END)
    assert begin, f"the README has no {README_BEGIN} line"
    assert end, f"the README has no {README_END} line"
    return f"{head}{README_BEGIN}\n{readme_tables(module)}{README_END}{tail}"


if __name__ == "__main__":  # python -m tests.support.terraform: rewrite terraform/README.md's tables
    path = MODULE / "README.md"
    path.write_text(readme_with_tables(path.read_text(encoding="utf-8"), load_module(MODULE)), encoding="utf-8")
