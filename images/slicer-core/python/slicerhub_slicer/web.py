"""Slicer Web: trame-slicer's medical viewer with the sample volume loaded."""

from __future__ import annotations

import argparse


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="slicerhub-slicer-web")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--volume", help="volume file to open (default: the sample)")
    args = parser.parse_args(argv)

    from trame_slicer.app.medical_viewer_app import MedicalViewerApp

    from . import data

    app = MedicalViewerApp()
    volume = args.volume or str(data.sample_path())
    nodes = app._slicer_app.io_manager.load_volumes([volume])
    if nodes:
        app._slicer_app.display_manager.show_volume_in_slice_background(nodes[-1])
        app._slicer_app.display_manager.reset_views()
    app.server.start(port=args.port, host=args.host, open_browser=False, show_connection_info=False)


if __name__ == "__main__":
    main()
