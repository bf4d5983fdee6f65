"""Copy the screenshots docs/user-guide.md shows from the last test run
(artifacts/screenshots/) to docs/images/user-guide/, 960 px wide.

    make guide-pictures    (after `make test`, or the e2e tests it names)
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
GUIDE = ROOT / "docs" / "user-guide.md"
SHOTS = ROOT / "artifacts" / "screenshots"
OUT = ROOT / "docs" / "images" / "user-guide"
WIDTH = 960


def main() -> int:
    names = sorted(set(re.findall(r"\(images/user-guide/([\w.-]+\.png)\)", GUIDE.read_text())))
    missing = [n for n in names if not (SHOTS / n).is_file()]
    if missing:
        print(f"not in {SHOTS} (run the tests that take them first): {', '.join(missing)}", file=sys.stderr)
        return 1
    OUT.mkdir(parents=True, exist_ok=True)
    for name in names:
        picture = Image.open(SHOTS / name).convert("RGB")
        if picture.width > WIDTH:
            picture = picture.resize((WIDTH, round(picture.height * WIDTH / picture.width)), Image.LANCZOS)
        picture.save(OUT / name, optimize=True)
        print(f"{name}: {(OUT / name).stat().st_size // 1024} KiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
