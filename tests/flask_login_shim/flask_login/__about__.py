"""``flask_login.__about__``: Flask-Signoff's package metadata."""

from importlib import metadata

import flask_signoff

_meta = metadata.metadata("flask-signoff")

__title__ = _meta["Name"]
__description__ = _meta["Summary"]
__url__ = (_meta.get_all("Project-URL") or [""])[0].rpartition(", ")[2]
__version__ = flask_signoff.__version__
__version_info__ = tuple(__version__.split("."))
__author__ = _meta.get("Author") or _meta.get("Author-email") or ""
__author_email__ = _meta.get("Author-email") or ""
__maintainer__ = _meta.get("Maintainer") or __author__
__license__ = _meta.get("License") or _meta.get("License-Expression") or ""
__copyright__ = f"(c) {__author__}"
