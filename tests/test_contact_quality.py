"""Phones and e-mails checked with phonenumbers and email-validator, once per distinct
value, with the engine deciding what it can by the libraries' own rules."""

from __future__ import annotations

import ibis
import numpy as np
import pandas as pd
import phonenumbers
import pytest
import yaml
from email_validator import EmailNotValidError, validate_email
from typer.testing import CliRunner

from collect_kit import sources
from collect_kit.cli import app
from collect_kit.contact_quality import check_contacts
from collect_kit.snapshot import snapshot

PHONES = {
    "CL": ["+56 9 2345 6789", "+56 9 1234 5678", "+56 2 2345 6789", "(+56) 9-2345-6789",
           "0056 9 2345 6789", "+56912345678", "912345678", "229876543", "56-1234", "123",
           "+56 9 2345 678", "+56 600 123 4567", "+56 800 123 456", "+1 202 555 0143",
           "+56 9 2345 6789 ext 12", "abc", "12", "+5612", "561234", "56923456789"],
    "ES": ["+34 612 345 678", "612345678", "+34 912 345 678", "+34 512 345 678", "91234",
           "0034 612 345 678", "+34 61234567"],
    "MX": ["+52 55 1234 5678", "55 1234 5678", "+52 1 55 1234 5678", "01 55 1234 5678", "5512"],
    "US": ["+1 202 555 0143", "(202) 555-0143", "202-555-014", "+1 613 555 0143"],
}  # fmt: skip
EMAILS = ["a@b.cl", "A.B@Gmail.COM", "a..b@x.cl", ".a@x.cl", "a@x", "a@-x.cl", "x@",
          "juan.pérez@x.cl", "日本@x.jp", "a\u00a0b@x.cl", "e\u0301l@x.cl", "a@x.c", "a@x.co1",
          "a@b@c.cl", "a+b@x.cl", "a@b.test", "x.at.gmail.com", "a@ab--c.cl",
          "a@xn--bcher-kva.ch", "pagos.perez.0000042@empresa.cl", "a" * 65 + "@x.cl",
          "ñandú.ñandú.ñandú.ñandú.ñandú@x.cl", '"quoted"@x.cl', "user@[192.168.0.1]"]  # fmt: skip


def _library_phone(value: str, region: str) -> tuple[bool, bool]:
    try:
        n = phonenumbers.parse(value, region)
    except phonenumbers.NumberParseException:
        return False, False
    return phonenumbers.is_valid_number(n), phonenumbers.is_possible_number(n)


def _library_email(value: str) -> bool:
    try:
        validate_email(value, check_deliverability=False)
        return True
    except EmailNotValidError:
        return False


def _flags(phones, emails, region):
    n = max(len(phones), len(emails))
    frame = pd.DataFrame({
        "customer_id": [f"c{i:03d}" for i in range(n)],
        "phone": (list(phones) + [None] * n)[:n],
        "email": (list(emails) + [None] * n)[:n],
    })  # fmt: skip
    result = check_contacts(ibis.memtable(frame), region)
    return result, frame.merge(result.flags.to_pandas(), on="customer_id")


@pytest.mark.parametrize("region", sorted(PHONES))
def test_every_verdict_is_the_libraries_own(region):
    result, f = _flags(PHONES[region], EMAILS, region)
    for row in f.itertuples():
        if isinstance(row.phone, str):
            valid, possible = _library_phone(row.phone, region)
            assert (bool(row.phone_valid), bool(row.phone_possible)) == (valid, possible), row.phone
        if isinstance(row.email, str):
            assert bool(row.email_valid) == _library_email(row.email), row.email
    # the engine decided most of them: the libraries saw only what it could not
    assert result.library_calls < len(PHONES[region]) + len(EMAILS)


def test_known_answers():
    _, f = _flags(["+56 9 2345 6789", "123", "+56 9 1234 5678"], ["a@b.cl", "x@", "a@b.test"], "CL")
    f = f.set_index("customer_id")
    assert f.phone_valid.tolist() == [True, False, False]
    assert f.phone_possible.tolist() == [True, False, True]  # a possible length, not a number
    assert f.email_valid.tolist() == [True, False, False]


def test_contact_points_shared_by_many_customers():
    phones = ["+56 9 2345 6789"] * 7 + ["+56 9 3456 7890"] * 5 + ["+56 9 2222 3333"]
    emails = ["cobranza@empresa.cl"] * 6 + [f"p{i}@x.cl" for i in range(7)]
    result, _ = _flags(phones, emails, "CL")
    s = result.summary.set_index("kind")
    assert (s.shared_points["phone"], s.customers_on_shared["phone"]) == (1, 7)
    assert (s.shared_points["email"], s.customers_on_shared["email"]) == (1, 6)


def test_the_sample_has_its_documented_invalid_shares(small_sample):
    """The generator draws valid phones from ranges phonenumbers accepts and invalid ones
    it rejects: 4 % of present phones and 3 % of present e-mails are invalid."""
    result = check_contacts(ibis.memtable(small_sample.frame("customers")), "CL")
    s = result.summary.set_index("kind")
    for kind, share in (("phone", 0.04), ("email", 0.03)):
        n, bad = s.present[kind], s.invalid[kind]
        sd = np.sqrt(share * (1 - share) / n)
        assert abs(bad / n - share) < 4 * sd, (kind, bad / n)
    assert result.library_calls == 0  # the sample's values are all decided on the engine


def test_validate_warns_caches_and_the_snapshot_follows(tmp_path, frames, monkeypatch):
    monkeypatch.setenv("COLLECT_KIT_CACHE", str(tmp_path / "cache"))
    # 300 customers of the sample and their events (enough, and quick)
    keep = set(frames["customers"].customer_id[:300])
    frames = {n: f[f.customer_id.isin(keep)] for n, f in frames.items()}
    done = set(frames["receivables"].receivable_id)
    for name in ("payments", "adjustments"):
        f = frames[name]
        frames[name] = f[f.receivable_id.isna() | f.receivable_id.isin(done)]
    customers = frames["customers"].copy()
    customers.loc[customers.index[:3], "phone"] = "+56 9 1234 5678"  # a pattern match, not a number
    for name, frame in {**frames, "customers": customers}.items():
        frame.to_csv(tmp_path / f"{name}.csv", index=False)
    cfg = {"portfolio": "x", "currency": "CLP", "extraction_date": "2026-10-31",
           "contact_quality": {"region": "CL", "max_customers": 5},
           "tables": {n: {"path": f"{n}.csv"} for n in frames}}  # fmt: skip
    (tmp_path / "s.yaml").write_text(yaml.safe_dump(cfg))
    before = sources.load(tmp_path / "s.yaml")
    assert before.contact_flags() is None  # not checked yet: the pattern decides
    plain = snapshot(before.tables, "2026-10-31", **before.snapshot_options).to_pandas()
    result = CliRunner().invoke(app, ["validate", "--sources", str(tmp_path / "s.yaml")])
    assert result.exit_code == 0, result.output
    assert "Warnings:" in result.output and "invalid_phone" in result.output
    after = sources.load(tmp_path / "s.yaml")
    assert after.contact_flags() is not None
    checked = snapshot(after.tables, "2026-10-31", **after.snapshot_options).to_pandas()
    ids = set(customers.customer_id[:3])
    p, c = plain.set_index("customer_id"), checked.set_index("customer_id")
    assert p.has_valid_phone[list(ids)].all() and not c.has_valid_phone[list(ids)].any()
    expected = customers.set_index("customer_id").phone.map(
        lambda v: v is not None and not pd.isna(v) and _library_phone(v, "CL")[0]
    )
    assert (c.has_valid_phone == expected.reindex(c.index)).all()
    before.close()
    after.close()
