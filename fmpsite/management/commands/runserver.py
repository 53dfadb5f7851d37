"""``runserver`` without Django's static handler: WhiteNoise serves /static/.

daphne's runserver (ASGI) wraps the application in Django's
``ASGIStaticFilesHandler`` in DEBUG, which answers a URL-encoded ``..`` under
``/static/`` with a 500 and logs absolute paths. WhiteNoise is already in the
middleware chain (fmpsite/staticfiles.py) and serves the same files in DEBUG
from the source folders, refusing non-canonical paths (404). ``--static``
brings Django's handler back for comparison.
"""

from __future__ import annotations

from typing import Any

from daphne.management.commands.runserver import Command as DaphneRunserver


class Command(DaphneRunserver):
    def add_arguments(self, parser: Any) -> None:
        super().add_arguments(parser)
        parser.add_argument(
            "--static",
            action="store_true",
            dest="use_static_handler",
            help="Serve static files with Django's handler instead of WhiteNoise.",
        )
        parser.set_defaults(use_static_handler=False)
