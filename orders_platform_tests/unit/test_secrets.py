"""The one redactor and the one list of secret variables."""

from __future__ import annotations

import json
from urllib.parse import quote, quote_plus

import pytest

from orders_platform.secrets import MASK, SECRET_ENV_VARS, Redactor, redact

SECRET = "s3cr/t p@ss:wörd"


@pytest.mark.parametrize(
    "spelling",
    [SECRET, quote(SECRET, safe=""), quote_plus(SECRET), json.dumps(SECRET)[1:-1]],
)
def test_every_spelling_of_an_explicit_secret_is_masked(spelling: str) -> None:
    redactor = Redactor([SECRET])
    assert redactor(f"error near {spelling}!") == f"error near {MASK}!"


def test_passwords_inside_dsns_and_urls_are_masked_on_their_own() -> None:
    redactor = Redactor(["postgresql://loader:hunter22@db:5432/orders"])
    # the password alone, wherever it turns up later
    assert redactor("auth failed for hunter22") == f"auth failed for {MASK}"
    kv = Redactor(["host=db user=loader password='pa ss word' dbname=x"])
    assert "pa ss word" not in kv("connect: password 'pa ss word' rejected")


def test_unknown_credentials_in_text_are_masked_too() -> None:
    redactor = Redactor()
    assert redactor("dsn host=db password=abc123 user=x") == f"dsn host=db password={MASK} user=x"
    assert redactor("GET https://bob:letmein@api.example.com/x") == (
        f"GET https://bob:{MASK}@api.example.com/x"
    )
    assert redactor("nothing secret here") == "nothing secret here"


def test_environment_values_are_read_at_each_call() -> None:
    environ: dict[str, str] = {}
    redactor = Redactor(env_names=["SNOWFLAKE_PASSWORD"], environ=environ)
    assert redactor("pw=rotated-1") == "pw=rotated-1"
    environ["SNOWFLAKE_PASSWORD"] = "rotated-1"
    assert redactor("pw=rotated-1") == f"pw={MASK}"
    environ["SNOWFLAKE_PASSWORD"] = "rotated-2"
    assert redactor("pw=rotated-1 pw=rotated-2") == f"pw=rotated-1 pw={MASK}"


def test_short_values_are_not_masked() -> None:
    assert Redactor(["abc"])("abc abcd") == "abc abcd"


def test_redact_uses_the_one_secret_list(monkeypatch: pytest.MonkeyPatch) -> None:
    for i, name in enumerate(SECRET_ENV_VARS):
        monkeypatch.setenv(name, f"value-of-secret-{i}")
    text = " ".join(f"value-of-secret-{i}" for i in range(len(SECRET_ENV_VARS)))
    assert redact(text) == " ".join([MASK] * len(SECRET_ENV_VARS))
    # what the settings and the logs once disagreed on
    assert {"DAGSTER_PG_PASSWORD", "ORDERS_PG_DSN", "SNOWFLAKE_PASSWORD"} <= set(SECRET_ENV_VARS)
