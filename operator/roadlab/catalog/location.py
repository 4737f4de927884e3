"""Where the lab catalog (the labs/<id>/ directories) is, in a checkout or an installed wheel.

The catalog is the repository's top-level labs/. The wheel ships a copy of it as package
data, roadlab/catalog_data (mapped in pyproject.toml), so that an installed `kubectl lab`
has a catalog without the repository.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

CATALOG_ENV = "ROADLAB_CATALOG"
_PACKAGE = Path(__file__).resolve().parents[1]  # roadlab/
PACKAGED_CATALOG = _PACKAGE / "catalog_data"
# operator/roadlab/ -> the repository root.
REPO_CATALOG = _PACKAGE.parents[1] / "labs"


def default_catalog_dir(env: Mapping[str, str] | None = None) -> Path:
    """$ROADLAB_CATALOG if set; else the wheel's packaged copy; else the checkout's labs/.

    The packaged copy comes first because an installed package's grandparent is some
    unrelated directory of the Python installation; in a checkout (editable install
    included) there is no operator/roadlab/catalog_data, so labs/ is used.
    """
    environment = os.environ if env is None else env
    override = environment.get(CATALOG_ENV)
    if override:
        return Path(override)
    if PACKAGED_CATALOG.is_dir():
        return PACKAGED_CATALOG
    return REPO_CATALOG
