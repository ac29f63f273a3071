"""Are the customers' phones and e-mails usable? Checked once per distinct value.

Phones are validated with ``phonenumbers`` for the portfolio's region (valid =
``is_valid_number``; ``is_possible_number``, a length check, is reported beside it) and
e-mails by syntax with ``email-validator`` (no DNS lookup). Both libraries work one value
at a time (about 70 microseconds each), so the engine decides what it can first, with the
libraries' own rules:

- a phone written internationally with the region's country code (``+56 9 2345 6789``),
  or nationally where the region has no national prefix, is checked on the engine
  against the region's number patterns from ``phonenumbers``' metadata — the same
  patterns ``is_valid_number`` matches;
- an e-mail without exactly one ``@`` is invalid; a plain ASCII dot-atom address with a
  letters-only top-level domain, within the length limits and outside the special-use
  names, is valid.

Every other distinct value goes to the libraries. Contact points (a phone or e-mail) that
more than ``max_customers`` customers share are flagged too. The results are validation
warnings, never errors.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import ibis
import pandas as pd
from ibis.expr.types import Table

#: e-mail domains email-validator refuses (RFC 6761 special-use names)
SPECIAL_USE = ("arpa", "invalid", "local", "localhost", "onion", "test")
_ATEXT = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]"
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
#: a local part of letters (any script), digits and RFC 5322 atext, with one @ and an ASCII
#: domain whose top-level label is letters: what email-validator accepts
_LOCAL = r"[\p{L}0-9!#$%&'*+/=?^_`{|}~-]"
SURE_EMAIL = rf"^{_LOCAL}+(?:\.{_LOCAL}+)*@(?:{_LABEL}\.)+[A-Za-z]{{1,63}}$"
PHONE_SEPARATORS = r"[\s\-\.\(\)/]"
#: contact points shared by more customers than this are flagged
MAX_CUSTOMERS = 5


@dataclass(frozen=True)
class ContactCheck:
    """The outcome of :func:`check_contacts`.

    ``flags``: one row per customer with ``phone_valid``, ``phone_possible`` and
    ``email_valid`` (null when the customer has no phone / e-mail), an Ibis table on the
    customers' engine (row-level: it goes to the cache file, not to Python); release it
    (``flags.release()``) before closing that connection.
    ``summary``: one row per kind (``phone``, ``email``) with ``present``, ``valid``,
    ``possible`` (phones), ``invalid``, ``shared_points`` (contact points used by more
    than ``max_customers`` customers) and ``customers_on_shared`` (their customers).
    ``library_calls``: the distinct values the libraries had to check.
    """

    region: str
    max_customers: int
    flags: Table
    summary: pd.DataFrame
    library_calls: int


def _phone_metadata(region: str):
    import phonenumbers

    meta = phonenumbers.PhoneMetadata.metadata_for_region(region.upper())
    if meta is None:
        from .errors import ConfigError

        raise ConfigError(
            f"contact_quality.region: '{region}' is not a region phonenumbers knows (ISO 3166 code such as CL, MX, ES)"
        )
    return meta


def _matches(nsn, desc, general) -> object:
    """An Ibis test of a national significant number against a phonenumbers description."""
    if desc is None or desc.national_number_pattern is None:
        return ibis.literal(False)
    lengths = desc.possible_length or general.possible_length
    if lengths == (-1,):
        return ibis.literal(False)
    test = nsn.re_search(f"^(?:{desc.national_number_pattern})$")
    if lengths:
        test = test & nsn.length().isin(list(lengths))
    return test


_TYPES = ("premium_rate", "toll_free", "shared_cost", "voip", "personal_number", "pager",
          "uan", "voicemail", "fixed_line", "mobile")  # fmt: skip


def _phone_on_engine(clean, meta):
    """(decided, valid, possible) Ibis expressions for a cleaned phone text."""
    import phonenumbers

    cc = str(meta.country_code)
    shared_cc = len(phonenumbers.region_codes_for_country_code(meta.country_code)) > 1
    intl = clean.re_search(rf"^\+{cc}[0-9]+$")
    intl00 = clean.re_search(rf"^00{cc}[0-9]+$")
    national_ok = meta.national_prefix is None and meta.national_prefix_for_parsing is None
    national = clean.re_search(r"^[0-9]+$") & ~clean.startswith(cc) & ~clean.startswith("00")
    national = national if national_ok else ibis.literal(False)
    nsn = ibis.cases(
        (intl, clean.substr(1 + len(cc))),
        (intl00, clean.substr(2 + len(cc))),
        else_=clean,
    )
    general = meta.general_desc
    typed = ibis.literal(False)
    for name in _TYPES:
        typed = typed | _matches(nsn, getattr(meta, name), general)
    valid = _matches(nsn, general, general) & typed
    lengths = list(general.possible_length) + list(general.possible_length_local_only or ())
    possible = nsn.length().isin(lengths)
    decided = (intl | intl00 | national) & ~nsn.startswith("0") & ibis.literal(not shared_cc)
    # a number with fewer digits than any possible length is neither possible nor valid
    # however it is read (parsing only removes digits)
    short = clean.re_search(r"^\+?[0-9]+$") & (clean.replace("+", "").length() < min(lengths))
    decided = decided | short
    valid = valid & ~short
    possible = possible & ~short
    return decided, valid, possible


def _phone_library(values: Sequence[str], region: str) -> pd.DataFrame:
    import phonenumbers

    rows = []
    for v in values:
        try:
            n = phonenumbers.parse(v, region)
            rows.append((v, phonenumbers.is_valid_number(n), phonenumbers.is_possible_number(n)))
        except phonenumbers.NumberParseException:
            rows.append((v, False, False))
    return pd.DataFrame(rows, columns=["_v", "_valid", "_possible"])


def _email_library(values: Sequence[str]) -> pd.DataFrame:
    from email_validator import EmailNotValidError, validate_email

    rows = []
    for v in values:
        try:
            validate_email(v, check_deliverability=False)
            rows.append((v, True))
        except EmailNotValidError:
            rows.append((v, False))
    return pd.DataFrame(rows, columns=["_v", "_valid"])


def _sure_email(e):
    """(decided, valid) for an e-mail text on the engine."""
    ats = e.length() - e.replace("@", "").length()
    domain = e.split("@")[1].lower()
    special = ibis.literal(False)
    for name in SPECIAL_USE:
        special = special | (domain == name) | domain.endswith("." + name)
    local = e.split("@")[0]
    # the limits are in bytes: at most 4 per character outside ASCII
    wide = local.length() - local.re_replace(r"[^\x00-\x7f]", "").length()
    fits = (local.length() + 3 * wide) <= 64
    plain = (
        e.re_search(SURE_EMAIL) & ~e.contains("xn--") & ~domain.contains("--") & fits
        & (e.length() <= 254)
    )  # fmt: skip
    sure_valid = (ats == 1) & plain & ~special
    return (ats != 1) | sure_valid, sure_valid


def check_contacts(
    customers: Table, region: str, max_customers: int = MAX_CUSTOMERS
) -> ContactCheck:
    """Check the ``phone`` and ``email`` columns of ``customers`` (an Ibis table; either
    column may be absent). ``region``: the ISO 3166 code phones are read in (``CL``)."""
    meta = _phone_metadata(region)
    calls = 0
    parts = {}
    intermediate = []  # cached tables released at the end
    summaries = []
    base = customers.select("customer_id")
    if "phone" in customers.columns:
        raw = customers.phone.strip()
        clean = raw.re_replace(PHONE_SEPARATORS, "")
        decided, valid, possible = _phone_on_engine(clean, meta)
        t = (
            customers.filter(raw.notnull() & (raw != ""))
            .select(
                "customer_id",
                _v=raw,
                _key=clean,
                _decided=decided,
                _valid=valid,
                _possible=possible,
            )
            .cache()
        )  # the patterns run once per row
        rest = t.filter(~t._decided).select("_v").distinct().to_pandas()["_v"].tolist()
        calls += len(rest)
        lib = ibis.memtable(_phone_library(rest, region.upper()))
        j = t.left_join(lib, t._v == lib._v)
        phones = j.select(
            "customer_id", "_key",
            phone_valid=ibis.cases((j._decided, j._valid), else_=j._valid_right),
            phone_possible=ibis.cases((j._decided, j._possible), else_=j._possible_right),
        )  # fmt: skip
        parts["phone"] = phones = phones.cache()
        intermediate.append(phones)
        summaries.append(_summary(phones, "phone", "phone_valid", max_customers, "phone_possible"))
    if "email" in customers.columns:
        e = customers.email.strip()
        decided, valid = _sure_email(e)
        t = (
            customers.filter(e.notnull() & (e != ""))
            .select("customer_id", _v=e, _key=e.lower(), _decided=decided, _valid=valid)
            .cache()
        )
        rest = t.filter(~t._decided).select("_v").distinct().to_pandas()["_v"].tolist()
        calls += len(rest)
        lib = ibis.memtable(_email_library(rest))
        j = t.left_join(lib, t._v == lib._v)
        emails = j.select(
            "customer_id", "_key",
            email_valid=ibis.cases((j._decided, j._valid), else_=j._valid_right),
        )  # fmt: skip
        parts["email"] = emails = emails.cache()
        intermediate.append(emails)
        summaries.append(_summary(emails, "email", "email_valid", max_customers))
    flags = base
    for part in parts.values():
        flags = flags.left_join(part.drop("_key"), "customer_id").drop("customer_id_right")
    for col in ("phone_valid", "phone_possible", "email_valid"):
        if col not in flags.columns:
            flags = flags.mutate(**{col: ibis.null("boolean")})
    summary = pd.concat(summaries, ignore_index=True) if summaries else pd.DataFrame()
    flags = flags.cache()
    flags.count().execute()  # materialised before the intermediate results go
    for kept in intermediate:
        kept.release()
    return ContactCheck(region.upper(), max_customers, flags, summary, calls)


def _summary(
    t: Table, kind: str, valid: str, max_customers: int, possible: str | None = None
) -> pd.DataFrame:
    """Counts of one kind of contact point, and the points shared by many customers."""
    aggs = {"present": t.count(), "valid": t[valid].sum()}
    if possible:
        aggs["possible"] = t[possible].sum()
    row = t.aggregate(**aggs).to_pandas().iloc[0].to_dict()
    per_point = t.group_by("_key").aggregate(n=t.customer_id.nunique())
    shared = per_point.filter(per_point.n > max_customers)
    s = shared.aggregate(points=shared.count(), customers=shared.n.sum()).to_pandas().iloc[0]
    out = {"kind": kind, "present": int(row["present"]), "valid": int(row["valid"] or 0),
           "possible": int(row["possible"] or 0) if possible else None}  # fmt: skip
    out["invalid"] = out["present"] - out["valid"]
    out["shared_points"] = int(s["points"] or 0)
    out["customers_on_shared"] = int(s["customers"] or 0)
    return pd.DataFrame([out])


# ------------------------------------------------------------------- cache and warnings


def _cache_key(customers: Table, region: str, max_customers: int) -> str:
    """Content digest of the customers' ids, phones and e-mails, with the settings."""
    import hashlib

    from .snapshot import table_digest

    cols = [c for c in ("customer_id", "phone", "email") if c in customers.columns]
    digest = table_digest(customers.select(*cols))
    text = f"{digest}|{','.join(cols)}|{region.upper()}|{max_customers}"
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def cache_paths(customers: Table, region: str, max_customers: int):
    """(flags Parquet, summary CSV) of the check of this data in the kit's cache."""
    from .files import cache_root

    key = _cache_key(customers, region, max_customers)
    folder = cache_root() / "contacts"
    return folder / f"{key}-flags.parquet", folder / f"{key}-summary.csv"


def check_and_cache(
    customers: Table, region: str, max_customers: int = MAX_CUSTOMERS
) -> ContactCheck:
    """:func:`check_contacts`, then its flags and summary written to the kit's cache (by
    a digest of the data), where report runs and snapshots find them without calling the
    libraries again."""
    from .files import make_folder, write_atomic

    result = check_contacts(customers, region, max_customers)
    flags_path, summary_path = cache_paths(customers, region, max_customers)
    make_folder(flags_path.parent, "contact check cache (COLLECT_KIT_CACHE)")
    write_atomic(flags_path, lambda tmp: result.flags.to_parquet(tmp), "contact checks")
    write_atomic(summary_path, result.summary.to_csv(index=False), "contact check summary")
    result.flags.release()
    return result


def cached_summary(customers: Table, region: str, max_customers: int) -> pd.DataFrame | None:
    """The summary of the last check of exactly this data, or None (never checks)."""
    _, summary_path = cache_paths(customers, region, max_customers)
    return pd.read_csv(summary_path) if summary_path.exists() else None


def warnings_of(result: ContactCheck, origin: str):
    """The check as validation warnings (:class:`~collect_kit.sources.Problem`)."""
    from .sources import Problem

    out = []
    for row in result.summary.itertuples():
        if row.invalid:
            what = (
                f"a valid number for region {result.region} (phonenumbers; {int(row.possible)} "
                f"of {row.present} have a possible length)"
                if row.kind == "phone"
                else "a well-formed address (email-validator, no DNS lookup)"
            )
            out.append(
                Problem(
                    "customers", origin, row.kind, f"invalid_{row.kind}", int(row.invalid), what
                )
            )
        if row.shared_points:
            out.append(
                Problem(
                    "customers", origin, row.kind, "shared_contact_point",
                    int(row.customers_on_shared),
                    f"at most {result.max_customers} customers per {row.kind} "
                    f"({row.shared_points} {row.kind}(s) are shared by more)",
                )
            )  # fmt: skip
    return out
