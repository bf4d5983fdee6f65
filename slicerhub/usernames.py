"""Login-name rules, checked before a name reaches LDAP, Docker or Kubernetes.

ldapauthenticator 2.x escapes names it puts in filters and DNs, but we refuse
dangerous names outright: a clear message beats a silently failed bind, and the
same name later becomes a container, volume and PVC name.
"""

from __future__ import annotations

import re
import unicodedata

MAX_LENGTH = 32
# Characters with a meaning in LDAP filters (RFC 4515) or DNs (RFC 4514).
LDAP_METACHARACTERS = frozenset('*()\\\x00,=+<>;"#')
_VALID = re.compile(r"^[a-z][a-z0-9._-]*$")


class InvalidUsername(ValueError):
    """The login name is refused; the message is safe to show to the user."""


def check_login_name(raw: str) -> str:
    """Return the normalised login name, or raise InvalidUsername saying why.

    Normalisation is only stripping and lower-casing; anything else that
    differs (look-alike letters, full-width forms) is refused rather than
    mapped, so two people can never end up with the same account.
    """
    if raw is None:
        raise InvalidUsername("Enter a username.")
    name = raw.strip()
    if not name:
        raise InvalidUsername("Enter a username.")
    if len(name) > MAX_LENGTH:
        raise InvalidUsername(f"Usernames are at most {MAX_LENGTH} characters long.")
    bad = sorted({c for c in name if c in LDAP_METACHARACTERS})
    if bad:
        shown = " ".join(repr(c) for c in bad)
        raise InvalidUsername(f"Usernames may not contain {shown}.")
    if any(ord(c) > 127 for c in name) or unicodedata.normalize("NFKC", name) != name:
        raise InvalidUsername(
            "Usernames may only use plain ASCII letters, digits, '.', '_' and '-'."
        )
    name = name.lower()
    if not _VALID.match(name):
        raise InvalidUsername(
            "Usernames start with a letter and use only letters, digits, '.', '_' and '-'."
        )
    return name
