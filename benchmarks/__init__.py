"""SlicerHub benchmarks: `python -m benchmarks` (or `make bench`).

Two benchmarks, each against a real JupyterHub + configurable-http-proxy + slapd
on 127.0.0.1 (see benchmarks/README.md):

- class burst: N students log in and start lightweight servers at once;
- LDAP stall: /hub/health latency while every LDAP reply is delayed.

Figures are reported next to a baseline measured in the same run, never
asserted on.
"""
