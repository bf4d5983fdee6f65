"""Read-only share links and teachers joining students\x27 sessions (a JupyterHub service)."""
