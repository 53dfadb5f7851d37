"""The dashboard page, its JSON/form endpoints, and the guide's demo page.

Thin views (STYLE.md): parse the input with a form, call one service, shape
the reply. Writes answer JSON to ``fetch()`` (``Accept: application/json``)
and otherwise redirect back with a message, so the page works without JavaScript.
A request whose session ended gets 401 JSON (not the login page's HTML), so the
open page can say "Your session ended" instead of failing obscurely.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.views import redirect_to_login
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render, resolve_url
from django.template.loader import render_to_string
from django.templatetags.static import static
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from dashboard.alert_panel import alert_panel_context
from dashboard.forms import MoveForm, PreferenceForm, SymbolForm, WatchlistNameForm
from dashboard.models import Watchlist, WatchlistItem
from dashboard.selectors import (
    bar_intervals,
    preference_get,
    price_card,
    symbol_suggestions,
    watchlist_cards,
    watchlist_get,
    watchlist_list,
    watchlist_symbols,
)
from dashboard.services import (
    WatchlistFull,
    WatchlistLimitReached,
    WatchlistNameTaken,
    preference_update,
    watchlist_add_symbol,
    watchlist_create,
    watchlist_delete,
    watchlist_get_or_create_default,
    watchlist_move_symbol,
    watchlist_remove_symbol,
    watchlist_rename,
)

SESSION_ENDED = "Your session ended. Log in again to keep editing your watchlists."

# Routed by Channels (realtime/fanout/routing.py), not by Django's URLconf, so
# there is no reverse() for it; the JS builds ws(s)://<this host><path> from it.
WS_PATH = "/api/v2/realtime/ws/prices"
PING_INTERVAL_MS = 30_000


def _wants_json(request: HttpRequest) -> bool:
    return request.headers.get("Accept", "").startswith("application/json")


def login_required(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Django's login_required, except that ``fetch()`` gets ``401`` JSON naming the
    login URL instead of a redirect to an HTML page it cannot show."""

    @functools.wraps(view)
    def wrapper(request: HttpRequest, *args: object, **kwargs: object) -> HttpResponse:
        if request.user.is_authenticated:
            return view(request, *args, **kwargs)
        if _wants_json(request):
            return JsonResponse(
                {
                    "error": SESSION_ENDED,
                    "session_ended": True,
                    "login_url": _login_url(),
                },
                status=401,
            )
        return redirect_to_login(request.get_full_path())

    return wrapper


def _login_url() -> str:
    return f"{resolve_url(settings.LOGIN_URL)}?next={reverse('dashboard:home')}"


def is_simulated() -> bool:
    """Prices come from the built-in simulator when no FMP key is configured."""
    return not settings.FMP_API_KEY


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


def _done(
    request: HttpRequest,
    message: str,
    payload: dict[str, object],
    *,
    url: str,
    status: int = 200,
    level: Callable[[HttpRequest, str], None] = messages.success,
) -> HttpResponse:
    """A change went through: ``fetch()`` gets the payload and the message as
    JSON, a plain form post a flash message and a redirect to ``url``."""
    if _wants_json(request):
        return JsonResponse({**payload, "message": message}, status=status)
    level(request, message)
    return redirect(url)


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
        "preference": preference_get(user=request.user),
        "simulated": is_simulated(),
        "max_symbols": settings.REALTIME_MAX_SYMBOLS_PER_CONNECTION,
        "sort_columns": SORT_COLUMNS,
        "bar_intervals": ",".join(bar_intervals()),
        **alert_panel_context(user=request.user),
    }
    return render(request, "dashboard/home.html", context)


# The table's columns: (sort key, heading, numeric).
SORT_COLUMNS = [
    ("symbol", "Symbol", False),
    ("name", "Name", False),
    ("last", "Last", True),
    ("change", "Change", True),
    ("change_pct", "% Change", True),
    ("bid", "Bid", True),
    ("ask", "Ask", True),
    ("time", "Time", True),
    # From the day's bars in the browser (static/dashboard/intraday.js): "—" while
    # bars are off.
    ("day_high", "Day high", True),
    ("day_low", "Day low", True),
    ("day_volume", "Day volume", True),
]


@require_GET
def session_status(request: HttpRequest) -> JsonResponse:
    """Whether this browser's session is still logged in. The page asks after every
    WebSocket reconnect: with anonymous sockets allowed (DEBUG), the socket alone
    cannot tell that the session ended."""
    if request.user.is_authenticated:
        return JsonResponse(
            {"authenticated": True, "username": request.user.get_username()}
        )
    return JsonResponse(
        {
            "authenticated": False,
            "error": SESSION_ENDED,
            "login_url": _login_url(),
        },
        status=401,
    )


@login_required
@require_POST
def preferences(request: HttpRequest) -> HttpResponse:
    """Save the view (cards/table) and the table's sort for this user."""
    form = PreferenceForm(request.POST)
    if not form.is_valid():
        return _form_error(request, form)
    data = form.cleaned_data
    try:
        preference = preference_update(
            user=request.user,
            view=data["view"] or None,
            # Present but empty: back to the watchlist's own order.
            sort_key=data["sort_key"] if "sort_key" in request.POST else None,
            sort_dir=data["sort_dir"] or None,
        )
    except ValueError as exc:
        return _error(request, str(exc), status=400, watchlist=None)
    payload = {
        "view": preference.view,
        "sort_key": preference.sort_key,
        "sort_dir": preference.sort_dir,
    }
    if _wants_json(request):
        return JsonResponse(payload)
    return redirect(_home_url(None))


@login_required
@require_GET
def symbol_search(request: HttpRequest) -> JsonResponse:
    """Symbols with their names for the symbol box's suggestions."""
    query = request.GET.get("q", "")[:40]
    return JsonResponse({"query": query, "results": symbol_suggestions(query)})


def _watchlists_payload(user: object) -> list[dict[str, object]]:
    return [
        {"id": wl.pk, "name": wl.name, "url": _home_url(wl)}
        for wl in watchlist_list(user=user)
    ]


@login_required
@require_POST
def watchlist_new(request: HttpRequest) -> HttpResponse:
    form = WatchlistNameForm(request.POST)
    if not form.is_valid():
        return _form_error(request, form)
    try:
        watchlist = watchlist_create(user=request.user, name=form.cleaned_data["name"])
    except WatchlistLimitReached as exc:
        return _error(request, str(exc), status=409, watchlist=None)
    except (ValueError, WatchlistNameTaken) as exc:
        return _error(request, str(exc), status=400, watchlist=None)
    # The created list only: the page it leads to lists them all, and other tabs
    # add it to the tabs they show (static/dashboard/dashboard.js).
    body = {"id": watchlist.pk, "name": watchlist.name, "url": _home_url(watchlist)}
    message = f"Created {watchlist.name!r}."
    return _done(request, message, body, url=_home_url(watchlist), status=201)


@login_required
@require_POST
def watchlist_rename_view(request: HttpRequest, watchlist_id: int) -> HttpResponse:
    watchlist = watchlist_get(user=request.user, watchlist_id=watchlist_id)
    form = WatchlistNameForm(request.POST)
    if not form.is_valid():
        return _form_error(request, form)
    try:
        watchlist_rename(watchlist=watchlist, name=form.cleaned_data["name"])
    except (ValueError, WatchlistNameTaken) as exc:
        return _error(request, str(exc), status=400, watchlist=watchlist)
    body = {
        "id": watchlist.pk,
        "name": watchlist.name,
        "watchlists": _watchlists_payload(request.user),
    }
    message = f"Renamed to {watchlist.name!r}."
    return _done(request, message, body, url=_home_url(watchlist))


@login_required
@require_POST
def watchlist_delete_view(request: HttpRequest, watchlist_id: int) -> HttpResponse:
    watchlist = watchlist_get(user=request.user, watchlist_id=watchlist_id)
    name = watchlist.name
    watchlist_delete(watchlist=watchlist)
    home = reverse("dashboard:home")
    body = {
        "id": watchlist_id,
        "deleted": True,
        "url": home,
        "watchlists": _watchlists_payload(request.user),
    }
    return _done(request, f"Deleted {name!r}.", body, url=home)


@login_required
@require_POST
def watchlist_move(request: HttpRequest) -> HttpResponse:
    """Move a symbol one place up or down (the keyboard-accessible reorder)."""
    form = MoveForm(request.POST, user=request.user)
    if not form.is_valid():
        return _form_error(request, form)
    watchlist = form.cleaned_data["watchlist"] or watchlist_get_or_create_default(
        user=request.user
    )
    symbol = form.cleaned_data["symbol"]
    offset = -1 if form.cleaned_data["direction"] == "up" else 1
    try:
        order = watchlist_move_symbol(watchlist=watchlist, symbol=symbol, offset=offset)
    except WatchlistItem.DoesNotExist as exc:
        return _error(request, str(exc), status=404, watchlist=watchlist)
    message = f"Moved {symbol} {form.cleaned_data['direction']}."
    body = {"symbol": symbol, "order": order}
    return _done(request, message, body, url=_home_url(watchlist))


@login_required
@require_POST
def watchlist_add(request: HttpRequest) -> HttpResponse:
    form = SymbolForm(request.POST, user=request.user)
    if not form.is_valid():
        return _form_error(request, form)
    watchlist = _chosen_watchlist(request, form)
    try:
        item, created = watchlist_add_symbol(
            watchlist=watchlist,
            symbol=form.cleaned_data["symbol"],
            index=form.cleaned_data.get("index"),
        )
    except WatchlistFull as exc:
        return _error(request, str(exc), status=409, watchlist=watchlist)
    message = (
        f"Added {item.symbol}."
        if created
        else f"{item.symbol} is already in your watchlist."
    )
    body: dict[str, object] = {
        "symbol": item.symbol,
        "created": created,
        "watchlist": watchlist.pk,
        "order": watchlist_symbols(watchlist=watchlist),
    }
    if created and _wants_json(request):
        body["html"] = render_to_string(
            "dashboard/_price_card.html",
            {"card": price_card(symbol=item.symbol), "watchlist": watchlist},
            request=request,
        )
    return _done(
        request,
        message,
        body,
        url=_home_url(form.cleaned_data["watchlist"]),
        status=201 if created else 200,
        level=messages.success if created else messages.info,
    )


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
    body = {"symbol": symbol, "removed": removed, "watchlist": watchlist.pk}
    return _done(
        request,
        message,
        body,
        url=_home_url(form.cleaned_data["watchlist"]),
        level=messages.success if removed else messages.info,
    )


@require_GET
def favicon(request: HttpRequest) -> HttpResponse:
    """``/favicon.ico`` for pages that do not link the icon (the admin, DRF's
    browsable API) and for tools that ask the root: the static SVG."""
    return redirect(static("favicon.svg"), permanent=False)


@require_GET
def guide_demo(request: HttpRequest) -> HttpResponse:
    """The original guide's vanilla-JS example page, as a protocol compatibility
    demo (docs/dashboard.md lists what was adapted). No login: the socket accepts
    it when anonymous clients are allowed or the visitor is logged in."""
    return render(request, "demo/guide_example.html")
