"""Input of the dashboard's add/remove endpoints (form POSTs and fetch() alike)."""

from __future__ import annotations

from django import forms
from django.contrib.auth.base_user import AbstractBaseUser

from dashboard.selectors import watchlist_list
from realtime.symbols import InvalidSymbol, normalize_symbol


class SymbolForm(forms.Form):
    """A symbol and, optionally, which of the user's watchlists it is about.

    The watchlist choices are only the user's own, so a forged id for someone
    else's list is rejected like any other invalid choice.
    """

    symbol = forms.CharField(
        label="Symbol",
        max_length=40,
        strip=True,
        widget=forms.TextInput(
            attrs={
                "placeholder": "Enter symbol (e.g., NVDA)",
                "autocomplete": "off",
                "autocapitalize": "characters",
                "spellcheck": "false",
            }
        ),
    )
    watchlist = forms.ModelChoiceField(
        queryset=None, required=False, widget=forms.HiddenInput
    )
    # Where to insert (Undo puts a removed symbol back in its place); add only.
    index = forms.IntegerField(
        required=False, min_value=0, max_value=10_000, widget=forms.HiddenInput
    )

    def __init__(self, *args: object, user: AbstractBaseUser, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self.fields["watchlist"].queryset = watchlist_list(user=user)

    def clean_symbol(self) -> str:
        try:
            return normalize_symbol(self.cleaned_data["symbol"])
        except InvalidSymbol as exc:
            raise forms.ValidationError(str(exc), code="invalid_symbol") from exc


class MoveForm(SymbolForm):
    """A symbol to move one place ``up`` or ``down`` in its watchlist."""

    direction = forms.ChoiceField(choices=[("up", "up"), ("down", "down")])


class WatchlistNameForm(forms.Form):
    name = forms.CharField(label="Watchlist name", max_length=100, strip=True)


class PreferenceForm(forms.Form):
    """The dashboard layout; any field may be left out. An empty ``sort_key`` that
    is sent means the watchlist's own order."""

    view = forms.ChoiceField(
        required=False, choices=[("", ""), ("cards", "cards"), ("table", "table")]
    )
    sort_key = forms.CharField(required=False, max_length=20)
    sort_dir = forms.ChoiceField(
        required=False, choices=[("", ""), ("asc", "asc"), ("desc", "desc")]
    )
