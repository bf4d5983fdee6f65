"""A stand-in for Slicer's ``slicer.app`` where there is no Qt application.

``slicer.util.loadVolume``, ``loadNodeFromFile``, ``saveNode`` and friends call
``slicer.app.coreIOManager()``; this answers those calls with Slicer's own
logics (volumes logic, storage nodes), so notebooks written for the Slicer
kernel of the full application run unchanged for file I/O. What needs the Qt
GUI (layout manager, dialogs) raises a clear error instead.
"""

from __future__ import annotations

from pathlib import Path

_VOLUME_SUFFIXES = (".nrrd", ".nhdr", ".nii", ".nii.gz", ".mha", ".mhd", ".hdr", ".img", ".tif", ".tiff", ".dcm")
_MODEL_SUFFIXES = (".vtk", ".vtp", ".stl", ".obj", ".ply")


def _suffix_in(filename: str, suffixes) -> bool:
    lower = filename.lower()
    return any(lower.endswith(s) for s in suffixes)


class CoreIOManager:
    """The subset of qSlicerCoreIOManager that slicer.util uses."""

    def __init__(self, session):
        self._session = session

    def fileType(self, filename) -> str:  # noqa: N802 - Slicer's API
        name = str(filename)
        if name.lower().endswith(".seg.nrrd"):
            return "SegmentationFile"
        if _suffix_in(name, _VOLUME_SUFFIXES):
            return "VolumeFile"
        if _suffix_in(name, _MODEL_SUFFIXES):
            return "ModelFile"
        if name.lower().endswith(".mrml"):
            return "SceneFile"
        return "NoFile"

    def fileWriterFileType(self, node) -> str:  # noqa: N802
        if node.IsA("vtkMRMLSegmentationNode"):
            return "SegmentationFile"
        if node.IsA("vtkMRMLVolumeNode"):
            return "VolumeFile"
        if node.IsA("vtkMRMLModelNode"):
            return "ModelFile"
        return "NoFile"

    def loadNodes(self, filetype, properties, loaded_nodes=None, messages=None) -> bool:  # noqa: N802
        filename = properties.get("fileName")
        try:
            node = self._load(filetype, filename, properties)
        except (OSError, RuntimeError, ValueError) as exc:
            if messages is not None:
                messages.AddMessage(0, str(exc))  # 0: error
            return False
        if loaded_nodes is not None and node is not None:
            loaded_nodes.AddItem(node)
        return node is not None

    def _load(self, filetype, filename, properties):
        io = self._session.app.io_manager
        if filetype == "VolumeFile":
            return self._session.load_volume(
                filename, name=properties.get("name"), labelmap=bool(properties.get("labelmap"))
            )
        if filetype == "SegmentationFile":
            return io.load_segmentation(filename)
        if filetype == "ModelFile":
            return io.load_model(filename)
        raise ValueError(f"slicer-core cannot load {filename!r} (file type {filetype!r})")

    def saveNodes(self, filetype, properties, messages=None) -> bool:  # noqa: N802
        scene = self._session.scene
        node = scene.GetNodeByID(properties.get("nodeID", ""))
        filename = properties.get("fileName")
        if node is None or not filename:
            if messages is not None:
                messages.AddMessage(0, "saveNodes needs an existing nodeID and a fileName")
            return False
        storage = node.GetStorageNode()
        if storage is None:
            storage = node.CreateDefaultStorageNode()
            scene.AddNode(storage)
            node.SetAndObserveStorageNodeID(storage.GetID())
        storage.SetFileName(str(filename))
        Path(filename).parent.mkdir(parents=True, exist_ok=True)
        ok = bool(storage.WriteData(node))
        if not ok and messages is not None:
            messages.AddMessage(0, f"could not write {filename}")
        return ok


class CoreApplication:
    """``slicer.app`` for a slicer-core process."""

    applicationName = "Slicer (slicer-core)"  # noqa: N815

    def __init__(self, session):
        self.session = session
        self._io = CoreIOManager(session)

    def coreIOManager(self):  # noqa: N802
        return self._io

    def applicationLogic(self):  # noqa: N802
        return self.session.app.app_logic

    def mrmlScene(self):  # noqa: N802
        return self.session.scene

    def testingEnabled(self) -> bool:  # noqa: N802
        return False

    def processEvents(self) -> None:  # noqa: N802
        """Nothing to do: there is no Qt event loop."""

    def pauseRender(self) -> None:  # noqa: N802
        """Views render on demand here."""

    def resumeRender(self) -> None:  # noqa: N802
        """Views render on demand here."""

    def __getattr__(self, name):
        raise AttributeError(
            f"slicer.app.{name} needs the full 3D Slicer application (Qt GUI); "
            "this kernel runs on slicer-core. Use slicerhub_slicer.notebook for views."
        )
