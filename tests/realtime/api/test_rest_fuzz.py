"""Hypothesis over the REST surface beyond the symbol bodies of
test_rest_schema.py (issue 12, "extend the hypothesis suites"): arbitrary query
strings on every read, arbitrary content types and nesting on the writes,
arbitrary paths under /api/. Every request gets a status the schema documents
for the operation (or the documented 404 for an unknown path) and a JSON body,
never a 500 or an HTML page."""

from __future__ import annotations

import json
from urllib.parse import quote

import pytest
import yaml
from django.test import Client
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.factories import make_token, make_user, publish_status, seed_price

pytestmark = pytest.mark.django_db

API = "/api/v2/realtime"
FUZZ = settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
READS = ["health", "status", "cache", "cache/{symbol}"]

query_text = st.text(
    alphabet=st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=40
)
query = st.dictionaries(
    st.sampled_from(["limit", "format", "symbol", "x", "page", ""]) | query_text,
    query_text | st.integers(-(10**9), 10**9).map(str),
    max_size=4,
)


@pytest.fixture(scope="module")
def documented(django_db_blocker) -> dict[tuple[str, str], set[int]]:
    with django_db_blocker.unblock():
        document = yaml.safe_load(Client().get("/api/schema/").content)
    return {
        (path.removeprefix(f"{API}/"), method): {int(code) for code in op["responses"]}
        for path, item in document["paths"].items()
        for method, op in item.items()
    }


def assert_json(response) -> dict:
    assert response["Content-Type"] == "application/json", response.content[:200]
    body = response.json()
    assert isinstance(body, dict)
    return body


@pytest.mark.parametrize("name", READS)
def test_fuzz_query_strings_on_reads(documented, name):
    publish_status()
    seed_price("AAPL")
    codes = documented[(name, "get")]
    client = Client()
    path = f"{API}/{name.replace('{symbol}', 'AAPL')}"

    @FUZZ
    @given(params=query)
    def check(params):
        response = client.get(path, params)
        # ?format= picks a renderer: an unknown one is a 404 in DRF (documented
        # for /cache/{symbol} only), so it is excluded from the documented check.
        allowed = codes | ({404} if "format" in params else set())
        assert response.status_code in allowed, (params, response.content[:200])
        if response.status_code != 404 or "format" not in params:
            body = assert_json(response)
            if response.status_code >= 400:
                assert body["detail"]

    check()


@pytest.mark.parametrize("name", ["subscribe", "unsubscribe"])
def test_fuzz_content_types_and_nesting_on_writes(documented, name):
    codes = documented[(name, "post")]
    headers = {"Authorization": f"Token {make_token(make_user(is_staff=True))}"}
    client = Client()
    nested = st.recursive(
        st.sampled_from(["AAPL", 1, None, True]),
        lambda children: (
            st.lists(children, max_size=2)
            | st.dictionaries(st.sampled_from(["symbols", "x"]), children, max_size=2)
        ),
        max_leaves=200,
    )
    content_types = st.sampled_from(
        [
            "application/json",
            "application/json; charset=utf-8",
            "application/json; charset=latin-1",
            "text/plain",
            "application/x-www-form-urlencoded",
            "multipart/form-data; boundary=x",
            "application/xml",
            "",
        ]
    )

    @FUZZ
    @given(body=nested, depth=st.integers(0, 3000), content_type=content_types)
    def check(body, depth, content_type):
        raw = ("[" * depth + json.dumps(body) + "]" * depth).encode()
        response = client.post(
            f"{API}/{name}", raw, content_type=content_type, headers=headers
        )
        assert response.status_code in codes, (content_type, response.content[:200])
        assert_json(response)

    check()


def test_fuzz_paths_under_the_api_are_json(documented):
    client = Client()
    segment = st.text(
        alphabet=st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=15
    )

    @FUZZ
    @given(parts=st.lists(segment, min_size=1, max_size=4))
    def check(parts):
        path = f"{API}/" + "/".join(quote(p, safe="") for p in parts)
        response = client.get(path)
        assert response.status_code < 500, (path, response.content[:200])
        assert_json(response)

    check()
