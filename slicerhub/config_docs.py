"""docs/configuration.md's field tables, generated from the deployment file's models.

Every field is described once, in slicerhub/config.py (`Field(description=...)`); the
docs, the JSON Schema and the chart's values.schema.json all read it from there. In the
docs a table sits between two markers and is rewritten by `slicerhub config docs`:

    <!-- generated: ldap -->
    | field | default | meaning |
    ...
    <!-- end generated -->

The name after `generated:` is a dotted path in the deployment file (`hub`, `ldap`,
`backend.docker`, `profiles`, `jupyterhub`). Its table lists the fields there, nested
models as dotted paths (`timeouts.connect`, `tls.cert_file`), each after a row of its
own; a part that has a marker of its own (`backend.docker` inside `backend`) is left to
that marker. Everything outside the markers is kept as it is.
"""

from __future__ import annotations

import json
import re
import types
import typing
from pathlib import Path
from typing import Any

from pydantic import BaseModel
from pydantic.fields import FieldInfo

from .config import SlicerHubConfig

DOCS = Path(__file__).resolve().parent.parent / "docs" / "configuration.md"

BLOCK = re.compile(r"(<!-- generated: ([A-Za-z0-9_.]+) -->\n)(.*?)(<!-- end generated -->)", re.S)
HEADER = "| field | default | meaning |\n|---|---|---|\n"


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    """The models an annotation holds: `X`, `X | None`, `list[X]`, `dict[str, X]`."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    out: list[type[BaseModel]] = []
    for arg in typing.get_args(annotation):
        out += _models_in(arg)
    return out


def _is_list(annotation: Any) -> bool:
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        return any(_is_list(a) for a in typing.get_args(annotation))
    return origin is list


def all_models(root: type[BaseModel] = SlicerHubConfig) -> list[type[BaseModel]]:
    """Every model reachable from the deployment file's top level, `root` first."""
    found: list[type[BaseModel]] = []
    todo = [root]
    while todo:
        model = todo.pop(0)
        if model in found:
            continue
        found.append(model)
        for field in model.model_fields.values():
            todo += _models_in(field.annotation)
    return found


def _field_at(path: str) -> FieldInfo:
    model: type[BaseModel] | None = SlicerHubConfig
    field = None
    for part in path.split("."):
        if model is None or part not in model.model_fields:
            raise KeyError(f"{path}: no such section of the deployment file")
        field = model.model_fields[part]
        models = _models_in(field.annotation)
        model = models[0] if models else None
    assert field is not None
    return field


def _code(value: str) -> str:
    return f"`{value}`".replace("|", "\\|")


_NO_VALUE = object()


def _default(field: FieldInfo, value: Any = _NO_VALUE) -> str:
    """The default cell; ``value``: the default a containing model's default gives this field."""
    if value is _NO_VALUE:
        if field.is_required():
            return "**required**"
        value = field.get_default(call_default_factory=True)
    if value is None:
        return "unset"
    if isinstance(value, BaseModel):
        return ""  # its fields follow
    if isinstance(value, bool):
        return _code("true" if value else "false")
    if isinstance(value, float) and value.is_integer():
        return _code(str(int(value)))
    if isinstance(value, str):
        return _code(value) if value else '`""`'
    if isinstance(value, list | tuple | dict):
        return _code(json.dumps(list(value) if isinstance(value, tuple) else value))
    return _code(str(value))


def _text(description: str | None) -> str:
    """A description (Markdown) as a table cell: `|` would start a new column, and <user>
    outside a code span would be an HTML tag."""
    parts = (description or "").split("`")
    parts[::2] = [p.replace("<", "\\<") for p in parts[::2]]
    return "`".join(parts).replace("|", "\\|")


def _rows(model: type[BaseModel], prefix: str, where: str, skip: set[str],
          instance: BaseModel | None = None) -> list[str]:
    """Rows of ``model``'s fields; ``instance``: the default the containing field gives
    (``companions.orthanc`` defaults to an image the Companion model itself requires)."""
    rows = []
    for name, field in model.model_fields.items():
        if f"{where}{name}" in skip:
            continue
        path = f"{prefix}{name}"
        default = _default(field) if instance is None else _default(field, getattr(instance, name))
        rows.append(f"| {_code(path)} | {default} | {_text(field.description)} |\n")
        value = getattr(instance, name) if instance is not None else (
            None if field.is_required() else field.get_default(call_default_factory=True))
        for sub in _models_in(field.annotation):
            mark = "[]" if _is_list(field.annotation) else ""
            rows += _rows(sub, f"{path}{mark}.", f"{where}{name}.", skip,
                          value if isinstance(value, sub) else None)
    return rows


def render_table(section: str, skip: set[str] = frozenset()) -> str:
    """The table of one section (a dotted path), leaving out the paths in `skip`."""
    field = _field_at(section)
    models = _models_in(field.annotation)
    if not models:  # a section that is one field (jupyterhub)
        rows = [f"| {_code(section.rsplit('.', 1)[-1])} | {_default(field)} | {_text(field.description)} |\n"]
    else:
        rows = _rows(models[0], "", f"{section}.", set(skip))
    return HEADER + "".join(rows)


def render(text: str) -> str:
    """`text` with the table between each pair of markers regenerated, the rest unchanged."""
    sections = [m.group(2) for m in BLOCK.finditer(text)]

    def table(m: re.Match) -> str:
        name = m.group(2)
        inner = {s for s in sections if s.startswith(name + ".")}
        return f"{m.group(1)}\n{render_table(name, inner)}\n{m.group(4)}"

    return BLOCK.sub(table, text)


def update(path: Path = DOCS, check: bool = False) -> bool:
    """Rewrite the tables in `path`; with `check`, only say whether they are current."""
    text = path.read_text(encoding="utf-8")
    new = render(text)
    if new == text:
        return True
    if not check:
        path.write_text(new, encoding="utf-8")
    return False
