"""Share links, teachers joining students' sessions and teachers who help (a JupyterHub service)."""
