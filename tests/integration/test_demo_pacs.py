"""`make demo`'s site PACS (slicerhub.devenv.demo): a real Orthanc seeded with
the demo study, and the deployment file the demo writes for the hub, whose
`pacs:` section reaches that study with its own credentials. (The gateway
itself against slapd, the hub and Orthanc: test_pacs_gateway.py.)"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from slicerhub.config import load_config
from slicerhub.devenv import demo
from slicerhub.dicom import stow

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def site():
    pacs, study = demo.site_pacs()
    try:
        yield pacs, study
    finally:
        pacs.cleanup()
    assert not pacs.workdir.exists() and not pacs.password_file.exists()


def test_the_demo_hub_is_configured_for_its_seeded_pacs(site, tmp_path):
    pacs, study = site
    path = demo.demo_config(8010, 3390, pacs, path=tmp_path / "slicerhub.yaml")
    cfg = load_config(path)
    assert cfg.pacs.groups == ["teachers", "slicerhub-admins"]
    assert cfg.pacs.dicomweb_url == pacs.dicomweb_url.rstrip("/")
    assert cfg.pacs.dicomweb_url.startswith("http://127.0.0.1:")
    assert pacs.password not in path.read_text()  # the file names the password file only

    password = Path(cfg.pacs.password_file).read_text().strip()
    web = stow.client(cfg.pacs.dicomweb_url, (cfg.pacs.username, password))
    studies = [s["0020000D"]["Value"][0] for s in web.search_for_studies()]
    assert studies == [study.uid]
    series = {s["0020000E"]["Value"][0]: s["00080060"]["Value"][0]
              for s in web.search_for_series(study_instance_uid=study.uid)}
    assert series == {study.ct_series: "CT", study.mr_series: "MR"}
    assert len(web.search_for_instances(study.uid, study.ct_series, limit=1000)) == len(study.ct)

    banner = demo.pacs_banner("http://127.0.0.1:8010", pacs, study)
    assert "http://127.0.0.1:8010/services/pacs/\n" in banner
    assert f"http://127.0.0.1:8010/services/pacs/open?study={study.uid}" in banner


def test_without_a_pacs_the_demo_file_has_none(tmp_path):
    path = demo.demo_config(8010, 3390, path=tmp_path / "slicerhub.yaml")
    assert "pacs" not in yaml.safe_load(path.read_text())
    assert load_config(path).pacs.dicomweb_url is None
