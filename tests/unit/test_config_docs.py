"""docs/configuration.md's field tables come from the models' descriptions, and every field has one."""

from __future__ import annotations

import pytest

from slicerhub.cli import main
from slicerhub.config import SlicerHubConfig
from slicerhub.config_docs import BLOCK, DOCS, all_models, render, render_table


def test_committed_docs_are_the_generated_ones():
    text = DOCS.read_text(encoding="utf-8")
    assert render(text) == text, (
        "docs/configuration.md's field tables are stale: run `slicerhub config docs`")


def test_every_field_of_every_model_has_a_description():
    models = all_models()
    assert SlicerHubConfig in models and len(models) >= 15, [m.__name__ for m in models]
    missing = [f"{m.__name__}.{name}" for m in models for name, field in m.model_fields.items()
               if not (field.description or "").strip()]
    assert not missing, "fields without Field(description=...): " + ", ".join(missing)


def test_every_section_of_the_file_has_a_table_in_the_docs():
    sections = {m.group(2) for m in BLOCK.finditer(DOCS.read_text(encoding="utf-8"))}
    assert set(SlicerHubConfig.model_fields) <= sections


def test_text_outside_the_markers_is_kept():
    text = ("# Title\n\nProse before.\n\n<!-- generated: culler -->\nold table\n<!-- end generated -->\n\n"
            "Prose between | with a pipe.\n\n<!-- generated: storage -->\n<!-- end generated -->\nTail")
    out = render(text)
    assert out.startswith("# Title\n\nProse before.\n\n<!-- generated: culler -->\n\n| field |")
    assert "old table" not in out
    assert "\n<!-- end generated -->\n\nProse between | with a pipe.\n\n<!-- generated: storage -->\n" in out
    assert out.endswith("<!-- end generated -->\nTail")
    assert "| `timeout` | `3600` | Seconds idle" in out and "| `home_path` | `/home/slicer` |" in out
    assert render(out) == out


def test_nested_models_are_dotted_paths_and_required_fields_are_marked():
    hub = render_table("hub")
    for path in ("tls", "tls.cert_file", "tls.key_file", "database.url", "database.password_file"):
        assert f"| `{path}` |" in hub
    ldap = render_table("ldap")
    assert "| `server` | **required** |" in ldap
    assert "| `timeouts.connect` | `5` |" in ldap and "| `lookup.search_base` | **required** |" in ldap
    assert "| `port` | unset |" in ldap
    # A pipe in a value is escaped so it stays in its column.
    assert "`(\\|(member={userdn})" in ldap
    assert "| `spawn_retry_seconds` | `[5, 15]` |" in hub


def test_a_part_with_its_own_marker_is_left_to_it():
    text = ("<!-- generated: backend -->\n<!-- end generated -->\n"
            "<!-- generated: backend.docker -->\n<!-- end generated -->\n")
    backend, docker = render(text).split("<!-- generated: backend.docker -->")
    assert "`type`" in backend and "docker.network" not in backend and "`network`" not in backend
    assert "| `network` | `slicerhub` |" in docker
    assert "`docker.network`" in render_table("backend")  # without a marker of its own: dotted


def test_angle_brackets_outside_code_are_escaped():
    assert "\\<" not in render_table("backend.docker")  # `<prefix>-<username>` is code
    assert "`<prefix>-<username>`" in render_table("backend.docker")


def test_unknown_section_is_an_error():
    with pytest.raises(KeyError, match="nonsense"):
        render("<!-- generated: nonsense -->\n<!-- end generated -->\n")


def test_cli_check_and_write(tmp_path, capsys):
    doc = tmp_path / "c.md"
    doc.write_text("Intro\n<!-- generated: sharing -->\n<!-- end generated -->\n")
    assert main(["config", "docs", "--check", "--file", str(doc)]) == 1
    assert "run `slicerhub config docs`" in capsys.readouterr().err
    assert main(["config", "docs", "--file", str(doc)]) == 0
    assert "| `max_expiry` | `86400` |" in doc.read_text()
    assert main(["config", "docs", "--check", "--file", str(doc)]) == 0


def test_the_walk_reaches_models_inside_optionals_lists_and_dicts():
    from pydantic import BaseModel

    class Leaf(BaseModel):
        x: int = 1

    class Other(BaseModel):
        y: int = 2

    class Third(BaseModel):
        z: int = 3

    class Root(BaseModel):
        a: Leaf | None = None
        b: list[Other] = []
        c: dict[str, Third] = {}

    assert all_models(Root) == [Root, Leaf, Other, Third]
