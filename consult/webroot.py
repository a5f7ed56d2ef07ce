"""Where the pages, their scripts and their message catalogues are (``web/``)."""

from __future__ import annotations

from pathlib import Path

__all__ = ["WEB_ROOT"]

WEB_ROOT = Path(__file__).resolve().parent.parent / "web"
