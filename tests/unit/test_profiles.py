"""Which profiles a user may pick, and the choice the server accepts."""

from __future__ import annotations

import pytest
from bs4 import BeautifulSoup

from slicerhub.spawners.profiles import ProfileError, choose_profile, render_form, visible_profiles

from .helpers import demo_config

PROFILES = [p.model_dump() for p in demo_config().profiles]  # standard, teacher, gpu (teachers only)

EXTRA = PROFILES + [
    {"slug": "anat", "display_name": "Anatomy", "description": "", "image": "slicer:anat",
     "cpu_limit": None, "mem_limit": None, "gpus": 0, "groups": ["anat101", "teachers"], "default": False},
]


def slugs(profiles):
    return [p["slug"] for p in profiles]


# ------------------------------------------------------------ visibility


@pytest.mark.parametrize(
    ("groups", "admin", "expected"),
    [
        ([], False, ["standard"]),
        (["students"], False, ["standard"]),
        (["teachers"], False, ["standard", "teacher", "gpu", "anat"]),
        (["anat101"], False, ["standard", "anat"]),
        (["students", "anat101"], False, ["standard", "anat"]),
        (["Teachers"], False, ["standard"]),  # group names are case-sensitive
        ([], True, ["standard", "teacher", "gpu", "anat"]),
        (["students"], True, ["standard", "teacher", "gpu", "anat"]),
    ],
)
def test_visible_profiles(groups, admin, expected):
    assert slugs(visible_profiles(EXTRA, groups, admin)) == expected


def test_visible_profiles_accepts_any_iterable_of_groups():
    assert slugs(visible_profiles(PROFILES, iter(["teachers"]), False)) == ["standard", "teacher", "gpu"]
    assert slugs(visible_profiles(PROFILES, (g for g in ["teachers"]), False)) == ["standard", "teacher", "gpu"]


def test_visible_profiles_keeps_order_and_objects():
    mine = visible_profiles(PROFILES, ["teachers"], False)
    assert all(a is b for a, b in zip(mine, PROFILES))


# ---------------------------------------------------------------- choice


def test_no_slug_picks_the_default():
    assert choose_profile(PROFILES, [], False, None)["slug"] == "standard"
    assert choose_profile(PROFILES, ["teachers"], False, "")["slug"] == "standard"


def test_default_is_the_one_marked_default_not_the_first():
    profiles = [dict(p) for p in PROFILES]
    profiles[0]["default"] = False
    profiles[1]["default"] = True  # teacher
    assert choose_profile(profiles, ["teachers"], False, None)["slug"] == "teacher"
    # A default the user may not use is skipped: first visible one instead.
    assert choose_profile(profiles, ["students"], False, None)["slug"] == "standard"


def test_without_any_default_the_first_visible_is_chosen():
    profiles = [dict(p, default=False) for p in PROFILES]
    assert choose_profile(profiles, [], False, None)["slug"] == "standard"
    restricted = [dict(p, groups=["teachers"]) for p in profiles]
    assert choose_profile(restricted, ["teachers"], False, None)["slug"] == "standard"


def test_allowed_slug_is_chosen():
    assert choose_profile(PROFILES, ["teachers"], False, "gpu")["slug"] == "gpu"
    assert choose_profile(PROFILES, [], False, "standard")["slug"] == "standard"


def test_admin_may_choose_any_profile():
    assert choose_profile(PROFILES, [], True, "gpu")["slug"] == "gpu"
    assert choose_profile(PROFILES, [], True, "teacher")["slug"] == "teacher"


@pytest.mark.parametrize("slug", ["gpu", "teacher"])
def test_forged_slug_of_restricted_profile_is_403(slug):
    with pytest.raises(ProfileError) as info:
        choose_profile(PROFILES, ["students"], False, slug)
    assert info.value.status == 403
    assert slug in info.value.message
    assert str(info.value) == info.value.message


@pytest.mark.parametrize("slug", ["nope", "GPU", "gpu ", "../gpu", "standard\x00"])
def test_unknown_slug_is_400(slug):
    with pytest.raises(ProfileError) as info:
        choose_profile(PROFILES, ["teachers"], True, slug)
    assert info.value.status == 400
    assert "There is no profile" in info.value.message


@pytest.mark.parametrize("slug", [["gpu"], 1, {"slug": "gpu"}, True, 3.5])
def test_non_string_slug_is_400(slug):
    with pytest.raises(ProfileError) as info:
        choose_profile(PROFILES, ["teachers"], False, slug)
    assert info.value.status == 400
    assert info.value.message == "The profile choice must be a profile name."


def test_no_visible_profile_is_403():
    only_teachers = [dict(p, groups=["teachers"]) for p in PROFILES]
    with pytest.raises(ProfileError) as info:
        choose_profile(only_teachers, ["students"], False, None)
    assert info.value.status == 403
    # A slug that exists but is closed to them is refused the same way.
    with pytest.raises(ProfileError) as info:
        choose_profile(only_teachers, ["students"], False, "standard")
    assert info.value.status == 403


def test_no_profiles_at_all():
    with pytest.raises(ProfileError) as info:
        choose_profile([], [], False, None)
    assert info.value.status == 403
    with pytest.raises(ProfileError) as info:
        choose_profile([], [], True, "gpu")
    assert info.value.status == 400


# ------------------------------------------------------------------ form


def _radios(html):
    return BeautifulSoup(html, "html.parser").find_all("input", attrs={"type": "radio", "name": "profile"})


def test_form_lists_the_given_profiles_and_marks_the_selected_one():
    html = render_form(visible_profiles(PROFILES, ["teachers"], False), "teacher")
    radios = _radios(html)
    assert [r["value"] for r in radios] == ["standard", "teacher", "gpu"]
    assert [r.has_attr("checked") for r in radios] == [False, True, False]
    text = BeautifulSoup(html, "html.parser").get_text(" ", strip=True)
    assert "Slicer (GPU)" in text and "1 GPU" in text
    assert "CPU rendering" in text  # the CPU profiles say so
    assert "4G memory" in text


def test_form_with_nothing_selected_checks_nothing():
    radios = _radios(render_form(PROFILES, None))
    assert not any(r.has_attr("checked") for r in radios)


def test_form_shows_shared_when_no_limits():
    html = render_form(EXTRA[3:], "anat")
    text = BeautifulSoup(html, "html.parser").get_text(" ", strip=True)
    assert "shared CPU" in text and "shared memory" in text


def test_form_escapes_html():
    evil = dict(
        PROFILES[0],
        slug="standard",
        display_name='<script>alert("x")</script>',
        description='<img src=x onerror=alert(1)> & "quoted"',
    )
    html = render_form([evil], "standard")
    assert "<script>" not in html
    assert "<img" not in html
    assert "&lt;script&gt;" in html
    assert "&lt;img src=x onerror=alert(1)&gt; &amp; &#34;quoted&#34;" in html
    soup = BeautifulSoup(html, "html.parser")
    assert soup.find("script") is None and soup.find("img") is None
    assert soup.find("strong").get_text() == '<script>alert("x")</script>'


def test_form_escapes_attribute_values():
    evil = dict(PROFILES[0], slug='x" onclick="alert(1)')
    html = render_form([evil], None)
    (radio,) = _radios(html)
    assert radio["value"] == 'x" onclick="alert(1)'
    assert not radio.has_attr("onclick")
