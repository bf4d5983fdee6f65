"""Publishing to a course folder: versions, names, immutability, bad input."""

from __future__ import annotations

import json
import os

import nbformat
import pytest

from slicerhub.courses.store import CourseStore, PublishError

PNG = b"\x89PNG\r\n\x1a\n" + b"\0" * 16


def notebook(text="print('hi')") -> str:
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(text)])
    return nbformat.writes(nb)


@pytest.fixture
def store(tmp_path):
    return CourseStore(tmp_path / "courses", ["anat101", "neuro2"])


def test_publish_then_republish_makes_immutable_versions(store):
    app = store.publish("anat101", "seg-lab", notebook("v = 1"), by="teacher1", title="Segmentation lab",
                        description="Threshold a brain", thumbnail=PNG)
    assert [v.number for v in app.versions] == [1] and app.title == "Segmentation lab"
    app = store.publish("anat101", "seg-lab", notebook("v = 2"), by="teacher1")
    assert [v.number for v in app.versions] == [1, 2]
    assert app.title == "Segmentation lab" and app.description == "Threshold a brain"  # kept
    course = store.course_dir("anat101")
    first = course / "apps/seg-lab/v1/seg-lab.ipynb"
    assert "v = 1" in first.read_text() and "v = 2" in (course / "apps/seg-lab/v2/seg-lab.ipynb").read_text()
    assert (course / "apps/seg-lab/v1/thumbnail.png").read_bytes() == PNG
    assert app.versions[1].thumbnail is None
    # Published files are read-only, and only app.json is left beside the versions.
    assert not os.access(first, os.W_OK) or os.geteuid() == 0
    assert oct(first.stat().st_mode & 0o777) == "0o444"
    assert sorted(p.name for p in (course / "apps/seg-lab").iterdir()) == ["app.json", "v1", "v2"]
    assert store.get("anat101", "seg-lab").latest.number == 2


def test_unpublish_hides_and_republish_shows_again(store):
    store.publish("anat101", "seg-lab", notebook(), by="t", title="Lab")
    store.set_hidden("anat101", "seg-lab", True)
    assert store.list("anat101") == []
    assert [a.name for a in store.list("anat101", include_hidden=True)] == ["seg-lab"]
    store.publish("anat101", "seg-lab", notebook(), by="t")
    assert [a.name for a in store.list("anat101")] == ["seg-lab"]


def test_course_folders_are_made_with_shared_and_apps(store):
    folder = store.ensure_course("neuro2")
    assert (folder / "shared").is_dir() and (folder / "apps").is_dir()
    if os.geteuid() == 0:
        assert (folder / "shared").stat().st_uid == 1000


@pytest.mark.parametrize("name", ["../etc", "a/b", "A", "-x", "x-", "", "x" * 41, "seg lab", "..", ".hidden", "é"])
def test_bad_app_names_are_refused_and_nothing_is_written(store, name):
    with pytest.raises(PublishError) as err:
        store.publish("anat101", name, notebook(), by="t", title="T")
    assert err.value.status == 400 and "not allowed" in str(err.value)
    assert list((store.root / "anat101" / "apps").iterdir()) == []


def test_unknown_course_is_404(store):
    with pytest.raises(PublishError) as err:
        store.publish("../anat101", "x", notebook(), by="t", title="T")
    assert err.value.status == 404


@pytest.mark.parametrize(("body", "kwargs", "message"), [
    ("not json", {}, "not a valid Jupyter notebook"),
    (json.dumps({"cells": "nope"}), {}, "not a valid Jupyter notebook"),
    (None, {"title": ""}, "needs a title"),
    (None, {"title": "   "}, "title must not be empty"),
    (None, {"thumbnail": b"GIF89a"}, "thumbnail must be a PNG"),
])
def test_bad_input_is_refused_with_a_clear_message(store, body, kwargs, message):
    kwargs = {"title": "T", **kwargs}
    with pytest.raises(PublishError, match=message):
        store.publish("anat101", "lab", body if body is not None else notebook(), by="t", **kwargs)
    assert store.get("anat101", "lab") is None


def test_a_version_is_never_replaced(store, monkeypatch):
    store.publish("anat101", "lab", notebook("first"), by="t", title="T")
    # Two publishers racing for the same number: the second rename must fail.
    real_get = store.get
    monkeypatch.setattr(store, "get", lambda c, n: (lambda a: (a.versions.pop(), a)[1])(real_get(c, n)))
    with pytest.raises(PublishError) as err:
        store.publish("anat101", "lab", notebook("second"), by="t")
    assert err.value.status == 409
    monkeypatch.undo()
    assert "first" in (store.course_dir("anat101") / "apps/lab/v1/lab.ipynb").read_text()
    assert [p.name for p in (store.course_dir("anat101") / "apps/lab").iterdir() if p.name.startswith(".")] == []
