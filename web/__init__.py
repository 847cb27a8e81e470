"""hazardloop's outer layer and composition root: the ``hazardloop`` CLI (``web.cli``).

It is the only layer that may import both ``engine`` and ``notifiers`` (STYLE rule 1); the Flask
application factory arrives here with the web UI.
"""

from __future__ import annotations
