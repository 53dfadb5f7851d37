"""The dashboard page, its add/remove endpoints, and the guide's demo page.

Thin views (STYLE.md): parse the input with ``SymbolForm``, call one service, shape
the reply. Add/remove answer JSON to ``fetch()`` (``Accept: application/json``)
and otherwise redirect back with a message, so the page works without JavaScript.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from dashboard.forms import SymbolForm
from dashboard.models import Watchlist
from dashboard.selectors import (
    price_card,
    watchlist_cards,
    watchlist_get,
    watchlist_list,
)
from dashboard.services import (
    WatchlistFull,
    watchlist_add_symbol,
    watchlist_get_or_create_default,
    watchlist_remove_symbol,
)

# Routed by Channels (realtime/fanout/routing.py), not by Django's URLconf, so
# there is no reverse() for it; the JS builds ws(s)://<this host><path> from it.
WS_PATH = "/api/v2/realtime/ws/prices"
PING_INTERVAL_MS = 30_000


def _wants_json(request: HttpRequest) -> bool:
    return request.headers.get("Accept", "").startswith("application/json")


def _home_url(watchlist: Watchlist | None) -> str:
    url = reverse("dashboard:home")
    return f"{url}?watchlist={watchlist.pk}" if watchlist is not None else url


def _form_error(request: HttpRequest, form: SymbolForm) -> HttpResponse:
    message = " ".join(
        str(error) for errors in form.errors.values() for error in errors
    )
    return _error(request, message, status=400, watchlist=None)


def _error(
    request: HttpRequest, message: str, *, status: int, watchlist: Watchlist | None
) -> HttpResponse:
    if _wants_json(request):
        return JsonResponse({"error": message}, status=status)
    messages.error(request, message)
    return redirect(_home_url(watchlist))


def _chosen_watchlist(request: HttpRequest, form: SymbolForm) -> Watchlist:
    return form.cleaned_data["watchlist"] or watchlist_get_or_create_default(
        user=request.user
    )


@login_required
@require_GET
def home(request: HttpRequest) -> HttpResponse:
    raw_id = request.GET.get("watchlist", "")
    if raw_id.isdigit():
        watchlist = watchlist_get(user=request.user, watchlist_id=int(raw_id))
    else:
        watchlist = watchlist_get_or_create_default(user=request.user)
    context = {
        "watchlist": watchlist,
        "watchlists": watchlist_list(user=request.user),
        "cards": watchlist_cards(watchlist=watchlist),
        "form": SymbolForm(user=request.user, initial={"watchlist": watchlist}),
        "ws_path": WS_PATH,
        "ping_interval_ms": PING_INTERVAL_MS,
    }
    return render(request, "dashboard/home.html", context)


@login_required
@require_POST
def watchlist_add(request: HttpRequest) -> HttpResponse:
    form = SymbolForm(request.POST, user=request.user)
    if not form.is_valid():
        return _form_error(request, form)
    watchlist = _chosen_watchlist(request, form)
    try:
        item, created = watchlist_add_symbol(
            watchlist=watchlist, symbol=form.cleaned_data["symbol"]
        )
    except WatchlistFull as exc:
        return _error(request, str(exc), status=409, watchlist=watchlist)
    message = (
        f"Added {item.symbol}."
        if created
        else f"{item.symbol} is already in your watchlist."
    )
    if _wants_json(request):
        payload: dict[str, object] = {
            "symbol": item.symbol,
            "created": created,
            "message": message,
        }
        if created:
            payload["html"] = render_to_string(
                "dashboard/_price_card.html",
                {"card": price_card(symbol=item.symbol), "watchlist": watchlist},
                request=request,
            )
        return JsonResponse(payload, status=201 if created else 200)
    (messages.success if created else messages.info)(request, message)
    return redirect(_home_url(form.cleaned_data["watchlist"]))


@login_required
@require_POST
def watchlist_remove(request: HttpRequest) -> HttpResponse:
    form = SymbolForm(request.POST, user=request.user)
    if not form.is_valid():
        return _form_error(request, form)
    watchlist = _chosen_watchlist(request, form)
    symbol = form.cleaned_data["symbol"]
    removed = watchlist_remove_symbol(watchlist=watchlist, symbol=symbol)
    message = (
        f"Removed {symbol}." if removed else f"{symbol} was not in your watchlist."
    )
    if _wants_json(request):
        return JsonResponse({"symbol": symbol, "removed": removed, "message": message})
    (messages.success if removed else messages.info)(request, message)
    return redirect(_home_url(form.cleaned_data["watchlist"]))


@require_GET
def guide_demo(request: HttpRequest) -> HttpResponse:
    """The original guide's vanilla-JS example page, as a protocol compatibility
    demo (docs/dashboard.md lists what was adapted). No login: the socket accepts
    it when anonymous clients are allowed or the visitor is logged in."""
    return render(request, "demo/guide_example.html")
