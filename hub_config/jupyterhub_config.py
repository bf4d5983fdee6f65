"""JupyterHub configuration for SlicerHub: read the deployment file, apply it.

Everything is in the YAML file named by $SLICERHUB_CONFIG (default: the demo
file beside this one); see docs/configuration.md. Keep this file thin.
"""

import os
import sys
from pathlib import Path

from slicerhub.config import ConfigError, load_config
from slicerhub.database import connect_hub
from slicerhub.runtime.programs import hub_ip, hub_tokens
from slicerhub.traitlets_config import apply, to_traitlets

c = get_config()  # noqa: F821 (provided by JupyterHub)

path = os.environ.get("SLICERHUB_CONFIG") or str(Path(__file__).with_name("demo.yaml"))
try:
    cfg = load_config(path)
except ConfigError as e:
    print(f"SlicerHub: {e.source} is not valid:", *e.messages, sep="\n  ", file=sys.stderr)
    raise SystemExit(2) from None

hub_connect_ip = None
if cfg.backend.type == "docker" and not cfg.backend.docker.hub_connect_ip:
    # Containers reach the hub API on their network's gateway address.
    hub_connect_ip = hub_ip(cfg)

# The database password (hub.database.password_file), and a first connection.
connect_hub(cfg)

Path(cfg.hub.data_dir).mkdir(parents=True, exist_ok=True)
# The proxy and the services run beside the hub (`slicerhub run`); these
# tokens, shared through files under data_dir, let the hub reach them.
try:
    traits = to_traitlets(cfg, hub_connect_ip=hub_connect_ip, tokens=hub_tokens(cfg))
except ConfigError as e:  # the jupyterhub: section, checked against the real classes
    print(f"SlicerHub: {path} is not valid:", *e.messages, sep="\n  ", file=sys.stderr)
    raise SystemExit(2) from None
apply(c, traits)
