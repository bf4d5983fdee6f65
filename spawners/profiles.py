"""Which profiles a user may pick, and the choice the server accepts.

Pure functions over plain dicts (the validated `profiles` of the deployment
file), shared by both backends and by the tests.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from jinja2 import Environment

Profile = Mapping[str, object]


class ProfileError(Exception):
    """A profile choice is refused. `status` is the HTTP status to answer with."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


def visible_profiles(profiles: Sequence[Profile], groups: Iterable[str], admin: bool) -> list[Profile]:
    """Profiles the user may use: those open to all, or to one of their groups.

    Admins may use every profile (they support the others).
    """
    mine = set(groups)
    return [p for p in profiles if admin or not p.get("groups") or mine & set(p["groups"])]


def choose_profile(
    profiles: Sequence[Profile], groups: Iterable[str], admin: bool, slug: str | None
) -> Profile:
    """The profile to start, or ProfileError if `slug` is unknown or not allowed.

    No slug means the user's default: the first visible profile marked default,
    else the first visible one.
    """
    allowed = visible_profiles(profiles, groups, admin)
    if slug in (None, ""):
        if not allowed:
            raise ProfileError(403, "No server profile is open to your groups; ask your teacher.")
        return next((p for p in allowed if p.get("default")), allowed[0])
    if not isinstance(slug, str):
        raise ProfileError(400, "The profile choice must be a profile name.")
    for p in allowed:
        if p["slug"] == slug:
            return p
    if any(p["slug"] == slug for p in profiles):
        raise ProfileError(403, f"You may not use the profile {slug!r}.")
    raise ProfileError(400, f"There is no profile {slug!r}.")


_FORM = Environment(autoescape=True).from_string(
    """\
<fieldset class="slicerhub-profiles">
  <legend>Choose a server</legend>
  {% for p in profiles %}
  <div class="radio">
    <label>
      <input type="radio" name="profile" value="{{ p.slug }}"
             {% if p.slug == selected %}checked{% endif %}>
      <strong>{{ p.display_name }}</strong>
      {% if p.description %}<br><span class="text-muted">{{ p.description }}</span>{% endif %}
      <br><small>
        {{ p.cpu_limit or "shared" }} CPU ·
        {{ p.mem_limit or "shared" }} memory ·
        {% if p.gpus %}{{ p.gpus }} GPU{% else %}CPU rendering{% endif %}
      </small>
    </label>
  </div>
  {% endfor %}
</fieldset>
"""
)


def render_form(profiles: Sequence[Profile], selected: str | None) -> str:
    return _FORM.render(profiles=profiles, selected=selected)
