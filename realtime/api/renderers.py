"""DRF's browsable API, fit for the Content-Security-Policy.

DRF adds a ``<style>`` block of pygments rules to the page whenever pygments is
installed (it comes with development tools); ``style-src 'self'`` refuses it and
the browser logs a violation. The page needs none of those rules (its code is
coloured by prettify's stylesheet), so they are left out.
"""

from __future__ import annotations

from typing import Any

from rest_framework import renderers


class BrowsableAPIRenderer(renderers.BrowsableAPIRenderer):
    def get_context(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context(*args, **kwargs)
        context["code_style"] = None
        return context
