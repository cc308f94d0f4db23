import pytest

from paygate.domain.catalog import CatalogError, parse_catalog
from paygate.infra.catalog_file import load_catalog


def test_the_shipped_catalog_loads():
    catalog = load_catalog()
    assert "pro" in catalog.plans
    assert catalog.features_of(["pro"]) == catalog.plans["pro"].features


def test_features_of_unknown_plans_are_empty():
    assert parse_catalog({"plans": {"pro": {"features": ["export"]}}}).features_of(["gold"]) == frozenset()


@pytest.mark.parametrize(
    ("raw", "names"),
    [
        ({"plans": {"pro": {"scope": "team"}}}, "plans.pro.scope"),
        ({"plans": {"pro": {"features": "export"}}}, "plans.pro.features"),
        ({"plans": {"pro": {"features": ["o:export"]}}}, "plans.pro.features"),
        ({"plans": {"pro": {"limits": {"seats": 2.5}}}}, "plans.pro.limits"),
        ({"plans": {"pro": {"colour": "red"}}}, "plans.pro"),
        ({"plans": {"pro": {}}, "products": {"pdt_1": "gold"}}, "products.pdt_1"),
        ({"plan": {}}, "plan"),
    ],
)
def test_a_bad_entry_is_named(raw, names):
    with pytest.raises(CatalogError, match=names.replace(".", r"\.")):
        parse_catalog(raw)


def test_a_missing_or_broken_file_says_so(tmp_path):
    with pytest.raises(CatalogError, match="does not exist"):
        load_catalog(tmp_path / "nope.toml")
    broken = tmp_path / "broken.toml"
    broken.write_text("[plans\n")
    with pytest.raises(CatalogError, match="not valid TOML"):
        load_catalog(broken)


def test_who_sees_organization_billing_is_a_gate_in_the_catalog():
    from paygate.domain.gate import Grants

    default = parse_catalog({}).organization_billing
    assert default.allows(Grants("u", "o", "org:admin"))
    assert default.allows(Grants("u", "o", "org:member", frozenset({"org:sys_billing:read"})))
    assert not default.allows(Grants("u", "o", "org:member"))
    custom = parse_catalog({"account": {"organization_billing": {"role": "org:owner"}}}).organization_billing
    assert custom.allows(Grants("u", "o", "org:owner")) and not custom.allows(Grants("u", "o", "org:admin"))
    with pytest.raises(CatalogError, match=r"account\.organization_billing"):
        parse_catalog({"account": {"organization_billing": {"plans": "x"}}})
