"""Settings read from the process environment: found again without decoding it, yet any change is seen."""

from paygate import settings


def test_an_unchanged_environment_gives_the_same_object(monkeypatch):
    monkeypatch.setattr(settings, "_built", {})
    monkeypatch.setenv("CLERK_ISSUER", "https://clerk.one.test")
    assert settings.authorizer_settings() is settings.authorizer_settings()


def test_a_changed_added_or_removed_variable_is_seen_at_once(monkeypatch):
    # An empty cache: one that other tests left nearly full (64 entries) is cleared midway, by design.
    monkeypatch.setattr(settings, "_built", {})
    monkeypatch.setenv("CLERK_ISSUER", "https://clerk.one.test")
    monkeypatch.delenv("STORE_AUTHORITATIVE", raising=False)
    first = settings.authorizer_settings()
    monkeypatch.setenv("CLERK_ISSUER", "https://clerk.two.test")
    assert settings.authorizer_settings().tokens.issuer == "https://clerk.two.test"
    monkeypatch.setenv("STORE_AUTHORITATIVE", "true")
    assert settings.authorizer_settings().store_authoritative is True
    monkeypatch.delenv("STORE_AUTHORITATIVE")
    monkeypatch.setenv("CLERK_ISSUER", "https://clerk.one.test")
    assert settings.authorizer_settings() is first


def test_values_are_read_as_text(monkeypatch):
    monkeypatch.setenv("TABLE_NAME", "  paygate-é  ")
    assert settings.account_settings().table_name == "paygate-é"
