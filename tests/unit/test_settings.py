from paygate import settings
from paygate.domain.access import DAY_MS


def test_webhook_secrets_are_comma_separated_for_rotation(monkeypatch):
    monkeypatch.setenv("WEBHOOK_SECRET", " whsec_new , whsec_old,,")
    assert settings.webhook_secrets() == ["whsec_new", "whsec_old"]


def test_no_secret_configured_is_an_empty_list(monkeypatch):
    monkeypatch.delenv("WEBHOOK_SECRET", raising=False)
    monkeypatch.delenv("WEBHOOK_SECRET_ARN", raising=False)
    assert settings.webhook_secrets() == []


def test_the_grace_period_comes_from_the_environment(monkeypatch):
    monkeypatch.delenv("GRACE_PERIOD_DAYS", raising=False)
    assert settings.access_policy().grace_period_ms == 7 * DAY_MS
    monkeypatch.setenv("GRACE_PERIOD_DAYS", "3")
    assert settings.access_policy().grace_period_ms == 3 * DAY_MS
