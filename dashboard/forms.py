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

    def __init__(self, *args: object, user: AbstractBaseUser, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self.fields["watchlist"].queryset = watchlist_list(user=user)

    def clean_symbol(self) -> str:
        try:
            return normalize_symbol(self.cleaned_data["symbol"])
        except InvalidSymbol as exc:
            raise forms.ValidationError(str(exc), code="invalid_symbol") from exc
