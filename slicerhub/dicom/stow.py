"""Store DICOM instances in a PACS over DICOMweb (STOW-RS), with dicomweb-client.

Usage::

    store(pacs.dicomweb_url, (user, password), datasets)
    client(pacs.dicomweb_url, (user, password)).search_for_studies()
"""

from __future__ import annotations

import copy
from collections.abc import Sequence

import requests
from dicomweb_client import DICOMwebClient
from pydicom.dataset import Dataset

# Instances per STOW-RS request: one multipart body each, kept to tens of MB.
BATCH = 64


def _with_preamble(ds: Dataset) -> Dataset:
    if getattr(ds, "preamble", None):
        return ds
    if "TransferSyntaxUID" not in getattr(ds, "file_meta", {}):
        raise ValueError(f"instance {ds.get('SOPInstanceUID', '?')} has no file meta (TransferSyntaxUID)")
    ds = copy.copy(ds)  # shallow: the caller's dataset is left as it was
    ds.preamble = b"\x00" * 128
    return ds


def client(dicomweb_url: str, auth: tuple[str, str] | None = None) -> DICOMwebClient:
    """A DICOMwebClient on DICOMWEB_URL (e.g. http://host:port/dicom-web) with HTTP basic auth."""
    session = requests.Session()
    if auth is not None:
        session.auth = auth
    return DICOMwebClient(dicomweb_url, session=session)


def store(dicomweb_url: str, auth: tuple[str, str] | None, datasets: Sequence[Dataset],
          *, batch: int = BATCH) -> list[Dataset]:
    """STOW-RS DATASETS (any studies; sent in batches); return the PACS's responses.

    Raises requests.HTTPError when the PACS refuses a request, and RuntimeError
    when it answers but lists failed instances (FailedSOPSequence)."""
    web = client(dicomweb_url, auth)
    # dicomweb-client encodes with a plain pydicom.dcmwrite, which under pydicom 3
    # writes no preamble and no "DICM" for a dataset without one; Orthanc keeps
    # such a body as sent and WADO-RS returns it so, which dcmread (and so
    # dicomweb-client's own retrieve) refuses. Send Part 10 files.
    datasets = [_with_preamble(ds) for ds in datasets]
    responses = []
    for start in range(0, len(datasets), batch):
        response = web.store_instances(list(datasets[start:start + batch]))
        failed = response.get("FailedSOPSequence") if "FailedSOPSequence" in response else None
        if failed:
            reasons = ", ".join(f"{item.get('ReferencedSOPInstanceUID', '?')}: {item.get('FailureReason', '?')}"
                                for item in failed)
            raise RuntimeError(f"the PACS refused {len(failed)} instance(s): {reasons}")
        responses.append(response)
    return responses
