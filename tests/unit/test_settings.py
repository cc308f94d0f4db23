"""Settings: one reader per function kind, rebuilt when (and only when) a variable it reads changes."""

import pytest

from paygate import settings
from paygate.domain.access import DAY_MS


def test_webhook_secrets_are_comma_separated_for_rotation():
    config = settings.webhook_settings({"WEBHOOK_SECRET": " whsec_new , whsec_old,,"})
    assert settings.webhook_secrets(config) == ["whsec_new", "whsec_old"]


def test_no_secret_configured_is_an_empty_list():
    assert settings.webhook_secrets(settings.webhook_settings({})) == []


def test_the_grace_period_comes_from_the_environment():
    assert settings.webhook_settings({}).policy.grace_period_ms == 7 * DAY_MS
    assert settings.webhook_settings({"GRACE_PERIOD_DAYS": "3"}).policy.grace_period_ms == 3 * DAY_MS
    assert settings.authorizer_settings({"GRACE_PERIOD_DAYS": "3"}).policy.grace_period_ms == 3 * DAY_MS


def test_the_same_environment_gives_the_same_settings_object():
    first = settings.account_settings({"TABLE_NAME": "t"})
    assert settings.account_settings({"TABLE_NAME": "t", "UNRELATED": "x"}) is first
    assert settings.account_settings({"TABLE_NAME": "u"}) != first


def test_a_variable_no_reader_declares_cannot_be_read():
    with pytest.raises(KeyError):
        settings._Env({"TABLE_NAME": "t"}).text("SOMETHING_ELSE")


@pytest.mark.parametrize(
    ("env", "variable"),
    [
        ({"STORE_AUTHORITATIVE": "yes"}, "STORE_AUTHORITATIVE"),
        ({"PAYGATE_STORE_CACHE_SECONDS": "soon"}, "PAYGATE_STORE_CACHE_SECONDS"),
        ({"GRACE_PERIOD_DAYS": "-1"}, "GRACE_PERIOD_DAYS"),
        ({"CLERK_CLOCK_SKEW_SECONDS": "five"}, "CLERK_CLOCK_SKEW_SECONDS"),
    ],
)
def test_a_bad_value_names_its_variable(env, variable):
    with pytest.raises(settings.SettingsError, match=variable):
        settings.authorizer_settings(env)


def test_the_token_settings():
    config = settings.authorizer_settings(
        {
            "CLERK_ISSUER": " https://clerk.example.com ",
            "CLERK_AUTHORIZED_PARTIES": "https://a.example.com, https://b.example.com",
            "CLERK_CLOCK_SKEW_SECONDS": "10",
            "CLERK_JWT_KEY": "-----BEGIN PUBLIC KEY-----",
        }
    )
    assert config.tokens.issuer == "https://clerk.example.com"
    assert config.tokens.authorized_parties == ("https://a.example.com", "https://b.example.com")
    assert config.tokens.clock_skew_s == 10 and config.tokens.jwks_url is None
    assert settings.authorizer_settings({"CLERK_ISSUER": "x"}).tokens.clock_skew_s == 5


@pytest.mark.parametrize(
    ("url", "secure"),
    [
        ("https://clerk.example.com/.well-known/jwks.json", True),
        ("http://127.0.0.1:8123/.well-known/jwks.json", True),
        ("http://localhost:8123", True),
        ("http://[::1]/jwks", True),
        ("http://localhost", True),
        ("http://clerk.example.com/.well-known/jwks.json", False),
        ("http://localhost.example.com/jwks", False),
        ("http://127.0.0.1.nip.io/jwks", False),
        ("http://127.0.0.1@example.com/jwks", False),
        ("http://localhost:x@evil.example/jwks", False),
        ("http://127.0.0.1:@evil.example:8080/", False),
        ("http://localhost:8123/@evil.example", True),
        ("https://", False),
        ("ftp://clerk.example.com/jwks", False),
    ],
)
def test_keys_and_api_keys_travel_over_https_or_stay_on_this_machine(url, secure):
    tokens = settings.authorizer_settings({"CLERK_ISSUER": "https://clerk.example.com", "CLERK_JWKS_URL": url}).tokens
    assert (tokens.problems() == []) is secure
    if secure:
        assert settings.reconcile_settings({"CLERK_API_URL": url, "DODO_PAYMENTS_BASE_URL": url}).clerk_api_url
    else:
        for variable in ("CLERK_API_URL", "DODO_PAYMENTS_BASE_URL"):
            with pytest.raises(settings.SettingsError, match=f"{variable} must be an https:// URL"):
                settings.reconcile_settings({variable: url})


def test_the_log_level_never_fails():
    assert settings.log_level({"POWERTOOLS_LOG_LEVEL": "warning"}) == "WARNING"
    assert settings.log_level({"POWERTOOLS_LOG_LEVEL": "loud"}) == "INFO"
