"""The dashboard's price alerts: the bell's panel, and create, pause/resume and
delete from it (issue 25).

Thin views like dashboard/views.py's watchlist ones: the session-authenticated
page posts forms (CSRF) here, with ``Accept: application/json`` from fetch() or
as plain form posts without JavaScript, and every write is one call of
realtime/alerts/services.py, the module the REST API calls too. A JSON reply
carries the panel's lists rendered again (``html``), so the page never builds
them a second way.
"""

from __future__ import annotations

from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.template.loader import render_to_string
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from dashboard.alert_forms import AlertActiveForm, AlertForm
from dashboard.alert_panel import alert_panel_context, alert_row
from dashboard.views import _done, _error, login_required
from realtime.alerts import selectors, services
from realtime.alerts.models import PriceAlert


def _panel_payload(request: HttpRequest) -> dict[str, object]:
    context = alert_panel_context(user=request.user)
    return {
        "html": render_to_string(
            "dashboard/_alerts_lists.html", context, request=request
        ),
        "latest_event_id": context["alert_latest_event_id"],
        "active_count": context["alert_active_count"],
    }


def _form_error(
    request: HttpRequest, form: AlertForm | AlertActiveForm
) -> HttpResponse:
    """400 naming each bad field ("Threshold: Enter a number.")."""
    message = " ".join(
        f"{form.fields[name].label or name}: {error}"
        if name in form.fields
        else str(error)
        for name, errors in form.errors.items()
        for error in errors
    )
    return _error(request, message, status=400, watchlist=None)


def _own_alert(request: HttpRequest, alert_id: int) -> PriceAlert:
    """The user's alert with that id; 404 for anyone else's, like watchlists."""
    alert = selectors.alert_get(owner=request.user, pk=alert_id)
    if alert is None:
        raise Http404("No such alert.")
    return alert


def _home() -> str:
    return reverse("dashboard:home")


@login_required
@require_GET
def alert_panel(request: HttpRequest) -> JsonResponse:
    """The panel's lists again: the page asks after an ``alert`` message (a
    ``once`` alert that fired is now paused) and after another tab's change."""
    return JsonResponse(_panel_payload(request))


@login_required
@require_POST
def alert_new(request: HttpRequest) -> HttpResponse:
    form = AlertForm(request.POST)
    if not form.is_valid():
        return _form_error(request, form)
    try:
        alert = services.alert_create(owner=request.user, **form.service_values())
    except services.AlertLimitReached as exc:
        return _error(request, str(exc), status=409, watchlist=None)
    except services.AlertInvalid as exc:
        return _error(request, f"{exc.field}: {exc}", status=400, watchlist=None)
    row = alert_row(alert)
    message = f"Alert set: {row.symbol} {row.verb} {row.threshold}."
    body = {"id": alert.pk, "symbol": alert.symbol, **_panel_payload(request)}
    return _done(request, message, body, url=_home(), status=201)


@login_required
@require_POST
def alert_active(request: HttpRequest, alert_id: int) -> HttpResponse:
    """Pause or resume; resuming counts against the active limit."""
    alert = _own_alert(request, alert_id)
    form = AlertActiveForm(request.POST)
    if not form.is_valid():
        return _form_error(request, form)
    active = form.cleaned_data["active"]
    try:
        services.alert_update(alert=alert, active=active)
    except services.AlertLimitReached as exc:
        return _error(request, str(exc), status=409, watchlist=None)
    verb = "Resumed" if active else "Paused"
    message = f"{verb} the alert on {alert.symbol}."
    body = {"id": alert.pk, "active": active, **_panel_payload(request)}
    return _done(request, message, body, url=_home())


@login_required
@require_POST
def alert_delete(request: HttpRequest, alert_id: int) -> HttpResponse:
    alert = _own_alert(request, alert_id)
    symbol = alert.symbol
    services.alert_delete(alert=alert)
    body = {"id": alert_id, "deleted": True, **_panel_payload(request)}
    return _done(request, f"Deleted the alert on {symbol}.", body, url=_home())
