"""The "Slicer" Jupyter kernel: IPython with a ready Slicer scene.

Before the kernel starts, a slicer-core session is made and installed, so that
in a notebook ``import slicer`` gives ``slicer.mrmlScene`` and working
``slicer.util`` helpers, as in the full application's SlicerJupyter kernel.
"""

from __future__ import annotations


def main() -> None:
    from . import session

    session.install()
    from ipykernel.kernelapp import IPKernelApp

    IPKernelApp.launch_instance()


if __name__ == "__main__":
    main()
