"""Reads the catalog file (``paygate.toml``) once per path and process.

The path comes from the settings (``PAYGATE_CONFIG``, else the ``paygate.toml`` shipped beside the
package in the layer). A bad entry fails the cold start with a :class:`CatalogError` that names it.
"""

from __future__ import annotations

import tomllib
from functools import lru_cache
from pathlib import Path

from paygate.domain.catalog import Catalog, CatalogError, parse_catalog

#: The catalog shipped in the layer.
DEFAULT_PATH = Path(__file__).resolve().parent.parent.parent / "paygate.toml"

__all__ = ["DEFAULT_PATH", "CatalogError", "load_catalog"]


@lru_cache(maxsize=8)
def load_catalog(path: Path = DEFAULT_PATH) -> Catalog:
    try:
        raw = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise CatalogError(f"{path}: the catalog file does not exist (set PAYGATE_CONFIG)") from None
    except tomllib.TOMLDecodeError as exc:
        raise CatalogError(f"{path}: not valid TOML: {exc}") from None
    return parse_catalog(raw, source=str(path))
