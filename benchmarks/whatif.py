"""LDAP cost per login, the measurement behind `get_info=NONE` in slicerhub/auth.py.

``python -m benchmarks.whatif`` measures the client-side CPU of one login's LDAP
work (bind + the group searches SlicerHub's demo configuration makes) against a
throw-away slapd, with and without the schema fetch.
"""

from __future__ import annotations

import resource
import sys
import tempfile
import time
from pathlib import Path

import ldap3
from ldap3.utils.conv import escape_filter_chars



def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def measure_login_ldap_cpu(repeats: int = 50) -> list[tuple[str, float, float]]:
    """(variant, CPU ms per login, wall ms per login) against a throw-away slapd."""
    from slicerhub.devenv.ldap import Slapd

    from .burst import PASSWORD, build_directory, plan_users

    directory = build_directory(plan_users([50, 100, 200]))
    groups = [directory.group_dn(g) for g in ("slicerhub-admins", "teachers", "students", "anat101")]
    uid = "c200-001"
    dn = directory.user_dn(uid)
    group_filter = f"(|(member={escape_filter_chars(dn)})(uniqueMember={escape_filter_chars(dn)})(memberUid={uid}))"
    variants = [
        ("ldap3 default get_info=SCHEMA (SlicerHub before), group attributes member/uniqueMember/memberUid", ldap3.SCHEMA, ["member", "uniqueMember", "memberUid"]),
        ("get_info=NONE (SlicerHub now), same group attributes", ldap3.NONE, ["member", "uniqueMember", "memberUid"]),
        ("get_info=NONE, no group attributes", ldap3.NONE, []),
    ]
    out = []
    with tempfile.TemporaryDirectory() as tmp, Slapd(Path(tmp) / "ldap", directory) as slapd:

        def login(get_info, attrs):
            server = ldap3.Server("127.0.0.1", port=slapd.port, get_info=get_info, connect_timeout=5)
            conn = ldap3.Connection(
                server, user=dn, password=PASSWORD.format(uid=uid), auto_bind=ldap3.AUTO_BIND_NO_TLS, receive_timeout=10
            )
            for group in groups:
                conn.search(group, group_filter, search_scope=ldap3.BASE, attributes=attrs)
            conn.unbind()

        for label, get_info, attrs in variants:
            login(get_info, attrs)  # warm-up
            cpu0, wall0 = _cpu(), time.perf_counter()
            for _ in range(repeats):
                login(get_info, attrs)
            out.append((label, 1000 * (_cpu() - cpu0) / repeats, 1000 * (time.perf_counter() - wall0) / repeats))
    return out


def main() -> int:
    for label, cpu_ms, wall_ms in measure_login_ldap_cpu():
        print(f"{cpu_ms:6.1f} ms CPU, {wall_ms:6.1f} ms wall per login  {label}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
