"""Who may do what in a user's server: SlicerHub's access levels, in one place.

Both sides use this module. The hub defines the custom scopes, the scopes a
share gives and what a server's OAuth tokens may carry
(``slicerhub.traitlets_config``, ``slicerhub.sharing``). The single-user
server's scoped authorizer and route guard decide from the level a caller
holds (``slicerhub_server.guard`` and ``.policy``). Standard library only, so
the hub package and the user image install the same file.

Levels, strongest first (each includes the ones below it):

============  ======================================  ==========================================
level         scope (filtered to one server or user)  may
============  ======================================  ==========================================
execute       ``custom:jupyter_server:execute:*``     everything: the owner
collaborate   ``custom:jupyter_server:collaborate:*`` edit files and notebooks with the owner in
                                                      real time, run code in the owner's kernels;
                                                      no terminal, no shutdown, no settings, no
                                                      desktop control (a collaborate link)
write         ``custom:jupyter_server:write:*``       change files, run nothing (granted by
                                                      nothing in SlicerHub today)
read          ``custom:jupyter_server:read:*``        see notebooks, files and the desktop (a
                                                      read-only link, a teacher joining)
============  ======================================  ==========================================

Reaching a server at all needs JupyterHub's ``access:servers`` on it, which
the owner and the people it is shared with hold; the level decides what they
do there. Where a level comes from:

* the caller's token: the owner's role holds ``execute`` on their own servers
  and everyone's role ``read`` on all (harmless without ``access:servers``);
  a server's OAuth tokens carry those (``server_oauth_scopes``);
* the caller's share on the server (``share_scopes``): JupyterHub's OAuth
  hands a token only scopes of its holder's *roles*, never a share's, so the
  server looks the share up (``level_with_share``).
"""

from __future__ import annotations

SCOPE_PREFIX = "custom:jupyter_server"
LEVELS = ("execute", "collaborate", "write", "read")  # strongest first
SHAREABLE = ("collaborate", "read")  # what a link or a teacher may be given

_DESCRIPTIONS = {
    "execute": "Everything on a server: run code, terminals, the desktop.",
    "collaborate": "Edit notebooks and files on a server with its owner and run code in its kernels; "
                   "no terminals, shutdown or settings.",
    "write": "Change files on a server (no code execution).",
    "read": "See notebooks, files and the desktop of a server; change nothing.",
}

# What each level may do to Jupyter Server's resources (the Authorizer's
# ``action`` on ``resource``). Read is every level's; the rest is listed.
# The resources are jupyter_server's own names (jupyter_server/auth/utils.py);
# jupyter-collaboration's document handlers use "contents".
_WRITES = {
    "execute": None,  # no limit
    "collaborate": {("write", "contents"), ("write", "kernels"), ("execute", "kernels"),
                    ("write", "sessions")},
    "write": {("write", "contents")},
    "read": set(),
}


def scope(level: str) -> str:
    """The custom scope of ``level``, unfiltered."""
    if level not in LEVELS:
        raise ValueError(f"unknown access level {level!r}")
    return f"{SCOPE_PREFIX}:{level}:*"


def custom_scopes() -> dict[str, dict]:
    """JupyterHub's ``custom_scopes``: each level with the weaker ones as subscopes."""
    out = {}
    for i, level in enumerate(LEVELS):
        entry = {"description": _DESCRIPTIONS[level]}
        if LEVELS[i + 1:]:
            entry["subscopes"] = [scope(weaker) for weaker in LEVELS[i + 1:]]
        out[scope(level)] = entry
    return out


# The levels users' roles hold (the rest come from shares).
ROLE_LEVELS = ("execute", "read")


def server_oauth_scopes() -> list[str]:
    """What a server's OAuth tokens may carry: the role levels, on that server
    only. The hub cuts a token to what its holder has (the owner: execute)."""
    return [f"{scope(level)}!server" for level in ROLE_LEVELS]


def share_scopes(level: str, owner: str, server: str = "") -> list[str]:
    """What a share at ``level`` on ``owner``'s server gives: reach it, and the level there."""
    if level not in SHAREABLE:
        raise ValueError(f"{level!r} cannot be shared (one of {', '.join(SHAREABLE)})")
    where = f"!server={owner}/{server}"
    return [f"access:servers{where}", f"{scope(level)}{where}"]


def managed_share_scopes(owner: str, server: str = "") -> set[str]:
    """Every scope a SlicerHub share on this server can hold (shares holding
    anything else were made by the owner by hand, not by a link)."""
    return {s for level in SHAREABLE for s in share_scopes(level, owner, server)}


def shared_level(scopes) -> str | None:
    """The strongest level a share's scopes give (None: no level)."""
    held = {s.split("!", 1)[0] for s in scopes}
    return next((level for level in LEVELS if scope(level) in held), None)


def _filtered(level: str, owner: str, server: str) -> set[str]:
    return {f"{scope(level)}!user={owner}", f"{scope(level)}!server={owner}/{server}"}


def level_of(check, owner: str, server: str) -> str | None:
    """The caller's strongest level on ``owner``'s server; ``check(scopes)``
    returns the ones of ``scopes`` the caller holds (HubAuth.check_scopes)."""
    for level in LEVELS:
        if check(_filtered(level, owner, server)):
            return level
    return None


def strongest(*levels: str | None) -> str | None:
    """The strongest of ``levels`` (None among them counts for nothing)."""
    known = [level for level in levels if level in LEVELS]
    return min(known, key=LEVELS.index) if known else None


def level_with_share(token_level: str | None, share_scopes_held) -> str | None:
    """A caller's level: their token's, raised by what their share on this
    server gives. A caller with no level from their token gets none."""
    if token_level is None:
        return None
    return strongest(token_level, shared_level(share_scopes_held))


def may(level: str | None, action: str, resource: str) -> bool:
    """Whether a caller at ``level`` may ``action`` (read, write, execute) on ``resource``."""
    if level not in LEVELS:
        return False
    if action == "read":
        return True
    writes = _WRITES[level]
    return writes is None or (action, resource) in writes


def can_edit(level: str | None) -> bool:
    """Whether ``level`` may change documents (a shared document's updates are accepted)."""
    return may(level, "write", "contents")
