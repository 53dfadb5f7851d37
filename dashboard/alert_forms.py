"""Input of the dashboard's alert endpoints (form POSTs and fetch() alike).

The forms only parse what the browser sends; the rules (symbol, limit, webhook
target) are realtime/alerts/services.py's, shared with the REST API, so the
views turn that module's ``AlertInvalid`` into an error on the named field.
"""

from __future__ import annotations

from decimal import Decimal

from django import forms

from realtime.alerts.models import Condition, Frequency

VALUE_BOUND = Decimal("1e9")  # as the REST API's bounds (realtime/api/alerts.py)


class AlertForm(forms.Form):
    """A new alert: what the card's "Alert" button prefills and the user edits."""

    symbol = forms.CharField(label="Symbol", max_length=20, strip=True)
    condition = forms.ChoiceField(
        label="When", choices=Condition.choices, initial=Condition.CROSSES_ABOVE
    )
    threshold = forms.DecimalField(
        label="Threshold",
        max_digits=20,
        decimal_places=8,
        min_value=-VALUE_BOUND,
        max_value=VALUE_BOUND,
    )
    frequency = forms.ChoiceField(
        label="Frequency", choices=Frequency.choices, initial=Frequency.ONCE
    )
    hysteresis = forms.DecimalField(
        label="Re-arm distance",
        required=False,
        max_digits=20,
        decimal_places=8,
        min_value=Decimal("0"),
        max_value=VALUE_BOUND,
    )
    note = forms.CharField(label="Note", max_length=200, required=False, strip=True)
    webhook_url = forms.CharField(
        label="Webhook URL", max_length=500, required=False, strip=True
    )

    def service_values(self) -> dict[str, object]:
        """The cleaned fields as ``alert_create`` takes them (blank optionals out)."""
        data = self.cleaned_data
        values: dict[str, object] = {
            "symbol": data["symbol"],
            "condition": data["condition"],
            "threshold": data["threshold"],
            "frequency": data["frequency"],
            "note": data["note"],
            "webhook_url": data["webhook_url"],
        }
        if data.get("hysteresis") is not None:
            values["hysteresis"] = data["hysteresis"]
        return values


class AlertActiveForm(forms.Form):
    """Pause (``active=false``) or resume (``active=true``) one alert."""

    active = forms.TypedChoiceField(
        choices=[("true", "resume"), ("false", "pause")],
        coerce=lambda value: value == "true",
    )
