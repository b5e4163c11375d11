"""A short, human label for a session's device: ``"Chrome on Linux"``.

Framework-free, and deliberately simple: it is for a list of sessions that a
user reads to recognise their own devices, not for analytics or decisions.
The rule: the first browser token found in :data:`BROWSERS` (order matters:
Edge and Opera also say "Chrome", Chrome also says "Safari") and the first
platform token found in :data:`PLATFORMS`, joined as ``"<browser> on
<platform>"``. When only one is known, it alone; when neither, ``"Unknown
device"``. Versions are left out: they change every few weeks and make the
same device look like a new one.
"""

from __future__ import annotations

#: ``(token in the User-Agent, browser name)``, tried in this order.
BROWSERS: tuple[tuple[str, str], ...] = (
    ("Edg/", "Edge"),
    ("EdgA/", "Edge"),
    ("EdgiOS/", "Edge"),
    ("OPR/", "Opera"),
    ("SamsungBrowser/", "Samsung Internet"),
    ("Firefox/", "Firefox"),
    ("FxiOS/", "Firefox"),
    ("HeadlessChrome/", "Headless Chrome"),
    ("CriOS/", "Chrome"),
    ("Chromium/", "Chromium"),
    ("Chrome/", "Chrome"),
    ("Version/", "Safari"),
    ("curl/", "curl"),
    ("python-requests/", "Python requests"),
    ("python-httpx/", "Python httpx"),
    ("Werkzeug/", "Werkzeug test client"),
)

#: ``(token in the User-Agent, platform name)``, tried in this order.
PLATFORMS: tuple[tuple[str, str], ...] = (
    ("iPhone", "iPhone"),
    ("iPad", "iPad"),
    ("Android", "Android"),
    ("CrOS", "ChromeOS"),
    ("Windows", "Windows"),
    ("Macintosh", "macOS"),
    ("Mac OS X", "macOS"),
    ("Linux", "Linux"),
    ("FreeBSD", "FreeBSD"),
)

UNKNOWN = "Unknown device"


def _first(user_agent: str, table: tuple[tuple[str, str], ...]) -> str | None:
    for token, name in table:
        if token in user_agent:
            return name
    return None


def device_label(user_agent: str | None) -> str:
    """Return ``"<browser> on <platform>"`` for a User-Agent header.

    >>> device_label("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 "
    ...              "(KHTML, like Gecko) Chrome/126.0 Safari/537.36")
    'Chrome on Linux'
    """
    if not user_agent:
        return UNKNOWN
    browser = _first(user_agent, BROWSERS)
    # Safari's "Version/" token is only Safari's with "Safari/" beside it.
    if browser == "Safari" and "Safari/" not in user_agent:
        browser = None
    platform = _first(user_agent, PLATFORMS)
    if browser and platform:
        return f"{browser} on {platform}"
    return browser or platform or UNKNOWN


__all__ = ["UNKNOWN", "device_label"]
