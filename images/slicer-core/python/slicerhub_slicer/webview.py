"""Slicer Web (trame-slicer's medical viewer) inside a notebook.

The viewer runs in the kernel, on a loopback port; the notebook shows it in an
iframe through the single-user server's ``proxy/<port>/`` route (so it is
reached with the user's hub login only), and Python cells drive it: load a
volume, change window/level, take the picture the browser gets::

    from slicerhub_slicer.webview import SlicerWebView
    web = await SlicerWebView.start()     # top-level await: the kernel's loop serves it
    web                                    # the live viewer
    web.set_window_level(400, 200)
"""

from __future__ import annotations

import asyncio
import html
import os
import socket
from pathlib import Path

import numpy as np


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class SlicerWebView:
    def __init__(self, app, port: int, height: int):
        self.app, self.port, self.height = app, port, height
        self.volume = None

    @classmethod
    async def start(cls, volume: str | None = None, height: int = 600, timeout: float = 60) -> "SlicerWebView":
        from trame_slicer.app.medical_viewer_app import MedicalViewerApp

        port = _free_port()
        view = cls(MedicalViewerApp(), port, height)
        view.load(volume)
        view.app.server.start(exec_mode="task", host="127.0.0.1", port=port, open_browser=False,
                              show_connection_info=False)
        loop = asyncio.get_running_loop()
        end = loop.time() + timeout
        while True:  # until it accepts connections
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", port)
                writer.close()
                return view
            except OSError:
                if loop.time() > end:
                    raise TimeoutError(f"Slicer Web did not start on port {port}") from None
                await asyncio.sleep(0.2)

    @property
    def slicer(self):
        """trame-slicer's SlicerApp: its MRML scene, display manager, logics."""
        return self.app._slicer_app

    def load(self, path: str | None = None):
        """Show a volume (default: the sample) in the slice views; returns its MRML node."""
        from . import data

        path = Path(path or data.sample_path())
        self.volume = self.slicer.io_manager.load_volumes([str(path)])[-1]
        self.volume.SetName(path.name.split(".")[0])  # "MNI152-T1", as Slicer names it
        self.slicer.display_manager.show_volume_in_slice_background(self.volume)
        self.slicer.display_manager.reset_views()
        return self.volume

    def set_window_level(self, window: float, level: float) -> None:
        display = self.volume.GetDisplayNode()
        display.SetAutoWindowLevel(False)
        display.SetWindowLevel(window, level)

    def picture(self) -> np.ndarray:
        """The first slice view as rendered on the server (what the browser is sent), RGB."""
        from vtkmodules.util.numpy_support import vtk_to_numpy
        from vtkmodules.vtkRenderingCore import vtkWindowToImageFilter

        window = self.slicer.view_manager.get_slice_views()[0].render_window()
        window.Render()  # now: the view's own render waits for a browser to be connected
        grab = vtkWindowToImageFilter()
        grab.SetInput(window)
        grab.ReadFrontBufferOff()
        grab.Update()
        image = grab.GetOutput()
        w, h, _ = image.GetDimensions()
        pixels = vtk_to_numpy(image.GetPointData().GetScalars()).reshape(h, w, -1)[::-1, :, :3]
        return pixels.copy()

    @property
    def url(self) -> str:
        """Its address through the single-user server (hub login required)."""
        return f"{os.environ.get('JUPYTERHUB_SERVICE_PREFIX', '/')}proxy/{self.port}/"

    def _repr_html_(self) -> str:
        return (f'<iframe src="{html.escape(self.url)}" title="Slicer Web" '
                f'style="width: 100%; height: {int(self.height)}px; border: 0"></iframe>')
