"""A seeded, vectorized sample portfolio with a documented ground truth.

:func:`generate` returns every canonical table (:mod:`collect_kit.schema`) as Arrow tables,
plus a :class:`GroundTruth` that the tables never contain, so no analysis can pass a test
by reading the answer.

The model (all draws from one ``numpy.random.Generator`` seeded by ``seed``; loops run
over months, never over customers):

Customers
    70 % persons, 30 % companies (size micro/small/medium/large = 45/30/17/8 %). 55 % exist
    before the first month (``customer_since`` up to six years earlier); the rest arrive
    month by month (more in December and March, fewer in February). Each customer has a
    latent willingness ``z ~ N(0, 1)``.

Monthly payment decision (the heart of the model)
    In month ``m`` a customer with something due or overdue *pays* with probability
    ``p = sigmoid(1.5 + 1.7 z + size_effect + season[m])`` where ``size_effect`` is
    -0.4/0/+0.4/+0.8 for micro/small/medium/large companies (0 for persons) and
    ``season`` is the Chilean calendar (-0.25 in February, -0.3 in March, -0.1 in September,
    +0.3 in December for the year-end bonus). ``GroundTruth.customers.propensity`` is that
    probability without the seasonal term. A customer who pays settles everything due or
    overdue on one pay day of the month (good payers earlier in the month), so "paid
    anything in the month" equals the decision. Some customers stop paying for good
    (probability ``sigmoid(-3.2 - 1.2 z)``, from a random month on); their account stops
    billing three months later.

Receivables
    Persons: one instalment or card statement per month (85 % of months) due on the
    customer's due day (5, 10, 15, 20 or 25), issued 20 days before, lognormal amounts
    around 120 000. Companies: Poisson(0.8/1.2/2/3 by size) invoices a month, payment
    terms of 30, 45 or 60 days, lognormal amounts around 900 000 (larger for larger
    firms). 3 % of invoices get a credit note (5-30 %) the day after issue.

Payments and adjustments
    A late receivable is paid partially (30-70 %) 20 % of the time, the rest on the
    customer's next pay day. Paid at 60+ days past due, 15 % of receivables get a 5-20 %
    discount (adjustment) and the payment covers the rest. A receivable still open six
    months after its due month is written off at a month end with probability 0.15 per
    month (adjustment for the remaining balance; nothing is paid after). In 15 % of
    customer-months the customer pays on account: that month's payments become one
    payment with no ``receivable_id`` (the snapshot allocates it oldest due first).

Contacts
    Each month a customer starts with an overdue balance gets Poisson(2.5) collection
    actions on a channel (60 % the preferred one) with nested outcomes driven by the
    validity of the phone / e-mail (8 % of phones missing, 4 % of the rest invalid; e-mail
    missing 30 % / 10 % for persons / companies, 3 % of the rest invalid). On a call 35 %
    reach the right party; of those, 45 % promise when the customer will pay that month
    (promise dated before the pay day, so it is kept) and 20 % when not (broken).
    Costs per action (CLP): sms 40, e-mail 5, WhatsApp 25, call 650, letter 1 200.

External score (``scores``, source ``bureau``, higher is safer)
    At every month end for 90 % of the customers that exist:
    ``score = 650 + 100 (z + e_c + e_cm) / sqrt(1 + 0.6² + 0.4²)`` clipped to 300-999, with a
    persistent bureau error ``e_c ~ N(0, 0.6)`` and monthly noise ``e_cm ~ N(0, 0.4)``
    (``GroundTruth.score_noise_sd``), so the score partly reveals ``z``.

Experiments (``assignments``; true effects in ``GroundTruth.experiments``)
    ``sms_call_pilot``: on the first day of month ``months - 8``, customers with an overdue
    balance are split champion 80 % / challenger 20 % (two extra actions: an SMS and a
    call, on the first days of the month). Segment at assignment from the latest score:
    ``High risk`` (< 550), ``Medium risk`` (550-699), ``Low risk`` (>= 700). The challenger
    adds **+3 points** to the probability of paying in the assignment month for High risk,
    **+1.5 points** for Medium risk and **nothing** for Low risk.
    ``discount_offer``: on the first day of month ``months - 4``, customers 61+ days past
    due are split 50/50; the challenger is offered a 15 % discount on what it settles that
    month. Segments by days past due at assignment: ``61-90`` (**+3 points**), ``91-180``
    (**+2 points**), ``181+`` (**nothing**). The outcome window of both is the calendar
    month of assignment. ``true_lift`` is the mean over the segment's assigned customers of
    ``min(p + lift, 1) - p``, the expected difference in payer rate between the arms.

Ids, names, phones and e-mails are distinctive generated strings (``CU0000042QX``,
``"Camila Zorendo Tixavi"``, ``"+56 9 4821 7730"``) so a leak test can search for them.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from . import schema

DEFECT_KINDS = ("invalid_contact_details", "duplicate_ids", "orphan_payments", "negative_amounts")
CURRENCY = "CLP"
SCORE_NOISE_SD = (0.6, 0.4)  # persistent bureau error, monthly noise (in units of z)
SCORE_SOURCE = "bureau"

_SEASON = {1: 0.0, 2: -0.25, 3: -0.3, 4: 0.0, 5: 0.0, 6: 0.0, 7: 0.0, 8: 0.0, 9: -0.1,
           10: 0.0, 11: 0.0, 12: 0.3}  # fmt: skip
_ARRIVALS = {2: 0.7, 3: 1.2, 12: 1.3}
_SIZES = np.array(schema.COMPANY_SIZES)
_SIZE_P = [0.45, 0.30, 0.17, 0.08]
_SIZE_EFFECT = np.array([-0.4, 0.0, 0.4, 0.8])
_SIZE_INVOICES = np.array([0.8, 1.2, 2.0, 3.0])
_SIZE_AMOUNT = np.array([-0.5, 0.0, 0.6, 1.2])
_INDUSTRIES = np.array(["retail", "construction", "manufacturing", "transport", "services",
                        "agriculture", "hospitality", "health"])  # fmt: skip
_REGIONS = np.array(["Metropolitana", "Valparaíso", "Biobío", "Maule", "Araucanía",
                     "Antofagasta", "Los Lagos", "Coquimbo"])  # fmt: skip
_REGION_P = [0.40, 0.11, 0.09, 0.07, 0.07, 0.06, 0.06, 0.14]
_FIRST = np.array(["Camila", "Valentina", "Javiera", "Martina", "Catalina", "Fernanda",
                   "Isidora", "Antonia", "Sofía", "Florencia", "Benjamín", "Vicente",
                   "Matías", "Joaquín", "Tomás", "Agustín", "Cristóbal", "Maximiliano",
                   "Sebastián", "Diego", "Ignacio", "Francisca", "Constanza", "Rodrigo"])  # fmt: skip
_SYL_A = ["Zor", "Tix", "Quen", "Vel", "Drax", "Mord", "Brev", "Xal", "Runn", "Pelt",
          "Gavr", "Hix", "Lorv", "Nerm", "Oxt", "Sarv"]  # fmt: skip
_SYL_B = ["endo", "avi", "oxa", "ira", "unda", "eta", "orre", "aldo", "ucci", "embe",
          "ilar", "osta"]  # fmt: skip
_SURNAMES = np.array([a + b for a in _SYL_A for b in _SYL_B])
_COMPANY_SUFFIX = np.array(["SpA", "Ltda.", "S.A.", "EIRL"])
_DOMAINS = np.array(["correo.example.cl", "mail.example.com", "empresa.example.cl"])
_CHANNEL_COST = {"sms": 40.0, "email": 5.0, "whatsapp": 25.0, "call": 650.0, "letter": 1200.0}
_PERSON_CHANNEL_P = [0.30, 0.15, 0.25, 0.25, 0.05]  # in schema.CHANNELS order
_COMPANY_CHANNEL_P = [0.05, 0.45, 0.40, 0.00, 0.10]


@dataclass(frozen=True)
class GroundTruth:
    """What the generator knows and the tables never show.

    ``customers``: customer_id, latent_z, propensity (monthly probability of paying when
    something is due, before seasonality; a fraction), default_month (first month index of
    a permanent stop, or -1). ``experiments``: per experiment x segment, the designed lift
    and the expected lift in payer rate over the outcome window (fractions), with the
    number of customers per arm. ``score_noise_sd``: the bureau error and monthly noise, in
    units of ``z``. ``defects``: injected defect kind -> affected ids.
    """

    customers: pd.DataFrame
    experiments: pd.DataFrame
    months: pd.DatetimeIndex
    score_noise_sd: tuple[float, float] = SCORE_NOISE_SD
    defects: dict[str, list[str]] = field(default_factory=dict)


@dataclass(frozen=True)
class Sample:
    """A generated portfolio: canonical tables (Arrow) and the ground truth kept apart."""

    tables: dict[str, pa.Table]
    truth: GroundTruth
    currency: str = CURRENCY
    extraction_date: pd.Timestamp | None = None

    def frame(self, name: str) -> pd.DataFrame:
        """Return one table as a pandas DataFrame."""
        return self.tables[name].to_pandas()


# ---------------------------------------------------------------------------- helpers


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def _ids(
    prefix: str, numbers: np.ndarray, width: int, suffix: np.ndarray | None = None
) -> pa.Array:
    """Fixed-width ids ``prefix + zero-padded number (+ suffix bytes)`` built without Python loops."""
    n = len(numbers)
    extra = 0 if suffix is None else suffix.shape[1]
    step = len(prefix) + width + extra
    buf = np.empty((n, step), dtype=np.uint8)
    for i, ch in enumerate(prefix.encode()):
        buf[:, i] = ch
    v = np.asarray(numbers, dtype=np.int64).copy()
    for k in range(width - 1, -1, -1):
        buf[:, len(prefix) + k] = 48 + (v % 10)
        v //= 10
    if suffix is not None:
        buf[:, len(prefix) + width :] = suffix
    offsets = np.arange(0, (n + 1) * step, step, dtype=np.int64)
    arr = pa.LargeStringArray.from_buffers(n, pa.py_buffer(offsets), pa.py_buffer(buf.reshape(-1)))
    return arr.cast(pa.string())


def _take(pool: np.ndarray, index: np.ndarray) -> pa.Array:
    return pa.array(pool).take(pa.array(index))


def _join(*parts) -> pa.Array:
    return pc.binary_join_element_wise(*parts, "")


def _dates(days: np.ndarray, valid: np.ndarray | None = None) -> pa.Array:
    """int days since 1970-01-01 -> Arrow date32 (null where ``valid`` is False)."""
    mask = None if valid is None else ~np.asarray(valid)
    return pa.array(np.asarray(days, dtype=np.int32), type=pa.int32(), mask=mask).cast(pa.date32())


def _month_grid(end: pd.Timestamp, months: int):
    ends = pd.date_range(end=end, periods=months, freq="ME")
    starts = ends - pd.offsets.MonthBegin(1)
    epoch = np.datetime64("1970-01-01", "D")
    to_days = lambda ix: (ix.values.astype("datetime64[D]") - epoch).astype(np.int64)  # noqa: E731
    return ends, to_days(starts), to_days(ends)


def _next_true(mask: np.ndarray) -> np.ndarray:
    """For each row and month m, the first month >= m where ``mask`` holds (len = months if none)."""
    n, months = mask.shape
    nxt = np.full((n, months + 1), months, dtype=np.int16)
    for m in range(months - 1, -1, -1):
        nxt[:, m] = np.where(mask[:, m], m, nxt[:, m + 1])
    return nxt


# -------------------------------------------------------------------------- generator


@dataclass
class _Receivables:
    cust: np.ndarray
    issued: np.ndarray
    due: np.ndarray
    due_month: np.ndarray
    amount: np.ndarray
    to_pay: np.ndarray  # amount after any credit note
    credit_note: np.ndarray
    product: np.ndarray  # index into _PRODUCTS
    partial_u: np.ndarray
    partial_f: np.ndarray
    discount_u: np.ndarray
    discount_f: np.ndarray
    writeoff_gap: np.ndarray


_PRODUCTS = np.array(["consumer_loan", "credit_card", "invoice"])


@dataclass
class _Settlement:
    """Per receivable: first (maybe partial) payment, second payment, write-off, discount."""

    pay1_month: np.ndarray
    pay1_day: np.ndarray
    pay1_amount: np.ndarray
    pay2_month: np.ndarray
    pay2_day: np.ndarray
    pay2_amount: np.ndarray
    discount: np.ndarray
    discount_day: np.ndarray
    writeoff_day: np.ndarray  # -1 when none
    writeoff_amount: np.ndarray
    close_day: np.ndarray  # day the balance reached 0, or a large number when still open


_OPEN = np.iinfo(np.int32).max


def _settle(rc: _Receivables, mask, pay_day, month_start, offer, months) -> _Settlement:
    """Apply the monthly payment decisions to every receivable (vectorized)."""
    nxt = _next_true(mask)
    c = rc.cust
    dm = np.minimum(rc.due_month, months)
    m1 = nxt[c, dm].astype(np.int64)
    paid1 = m1 < months
    m1c = np.minimum(m1, months - 1)
    d1 = month_start[m1c] + pay_day[c, m1c]
    d1 = np.maximum(d1, rc.issued + 1)
    late1 = d1 > rc.due
    partial = paid1 & late1 & (rc.partial_u < 0.2)
    m2 = np.where(partial, nxt[c, np.minimum(m1 + 1, months)], months).astype(np.int64)
    paid2 = partial & (m2 < months)
    m2c = np.minimum(m2, months - 1)
    d2 = month_start[m2c] + pay_day[c, m2c]

    first = np.where(partial, np.round(rc.to_pay * rc.partial_f), rc.to_pay)
    rest = rc.to_pay - first
    # write-off: six months after the due month, then 15 % a month; nothing paid afterwards
    wo_month = rc.due_month.astype(np.int64) + 6 + rc.writeoff_gap
    final_month = np.where(partial, m2, m1)
    written = (final_month > wo_month) & (wo_month < months)
    month_end = np.append(month_start[1:] - 1, month_start[-1] + 30)
    wo_day = np.where(written, month_end[np.minimum(wo_month, months - 1)], -1)
    keep1 = paid1 & ~(written & (m1 > wo_month))
    keep2 = paid2 & ~written
    wo_amount = np.where(written, np.where(keep1, rest, rc.to_pay), 0.0)

    # discount on the settling payment: 60+ days late (15 %) or a discount offer that month
    settle_day = np.where(partial, d2, d1)
    settle_month = np.where(partial, m2c, m1c)
    settles = np.where(partial, keep2, keep1 & ~partial)
    offered = offer[c, settle_month]
    disc_f = np.where(offered, 0.15, np.where(settle_day - rc.due >= 60, rc.discount_f, 0.0))
    disc_on = settles & (offered | ((settle_day - rc.due >= 60) & (rc.discount_u < 0.15)))
    base = np.where(partial, rest, first)
    discount = np.where(disc_on, np.round(base * disc_f), 0.0)
    pay1_amount = np.where(keep1, first - np.where(disc_on & ~partial, discount, 0.0), 0.0)
    pay2_amount = np.where(keep2, rest - np.where(disc_on & partial, discount, 0.0), 0.0)

    close = np.full(len(c), _OPEN, dtype=np.int64)
    close = np.where(settles, settle_day, close)
    close = np.where(written, wo_day, close)
    return _Settlement(
        pay1_month=np.where(keep1, m1, -1),
        pay1_day=d1,
        pay1_amount=pay1_amount,
        pay2_month=np.where(keep2, m2, -1),
        pay2_day=d2,
        pay2_amount=pay2_amount,
        discount=discount,
        discount_day=settle_day,
        writeoff_day=wo_day,
        writeoff_amount=wo_amount,
        close_day=close,
    )


def _open_at_month_start(rc: _Receivables, st: _Settlement, month_start, n, months):
    """Per customer x month: number and amount of overdue receivables open at the month start."""
    # open overdue at start of m  <=>  due < start(m) <= close day
    first = np.searchsorted(month_start, rc.due, side="right")  # first m with start(m) > due
    last = (
        np.searchsorted(month_start, np.minimum(st.close_day, month_start[-1] + 40), side="right")
        - 1
    )
    ok = first <= last
    c, f, la = rc.cust[ok], first[ok], last[ok]
    width = months + 1
    idx_add = c * width + f
    idx_sub = c * width + la + 1
    count = np.bincount(idx_add, minlength=n * width) - np.bincount(idx_sub, minlength=n * width)
    amt = rc.to_pay[ok]
    amount = np.bincount(idx_add, amt, n * width) - np.bincount(idx_sub, amt, n * width)
    count = count.reshape(n, width).cumsum(axis=1)[:, :months]
    amount = amount.reshape(n, width).cumsum(axis=1)[:, :months]
    return count, amount


def _oldest_overdue_due(rc, st, day, n):
    """Per customer: the oldest due date among receivables overdue and open on ``day`` (or max)."""
    open_ = (rc.due < day) & (st.close_day >= day)
    oldest = np.full(n, _OPEN, dtype=np.int64)
    np.minimum.at(oldest, rc.cust[open_], rc.due[open_])
    return oldest


def generate(
    n_customers: int = 20_000,
    seed: int = 7,
    end: str | pd.Timestamp = "2026-10-31",
    months: int = 18,
    defects: Iterable[str] = (),
) -> Sample:
    """Return a sample portfolio of ``n_customers`` over ``months`` calendar months ending ``end``.

    ``end`` is the data's extraction date (a month end); ``defects`` injects data-quality
    problems for tests (any of :data:`DEFECT_KINDS`; a few rows each, ids in
    ``truth.defects``). The model and the experiments' true effects are in the module
    docstring.
    """
    defects = tuple(defects)
    unknown = sorted(set(defects) - set(DEFECT_KINDS))
    if unknown:
        raise ValueError(f"defects: {unknown} not in {DEFECT_KINDS}")
    if months < 12:
        raise ValueError(f"months: must be at least 12 (got {months})")
    if n_customers < 10:
        raise ValueError(f"n_customers: must be at least 10 (got {n_customers})")
    end = pd.Timestamp(end)
    if end != end + pd.offsets.MonthEnd(0):
        raise ValueError(f"end: must be a month end (got {end.date()})")
    rng = np.random.default_rng(seed)
    n = n_customers
    month_ends, month_start, month_end = _month_grid(end, months)
    cal_month = month_ends.month.to_numpy()
    dim = (month_end - month_start + 1).astype(np.int64)

    # ---------------------------------------------------------------- customers
    is_company = rng.random(n) < 0.30
    size_ix = rng.choice(4, size=n, p=_SIZE_P)
    size_effect = np.where(is_company, _SIZE_EFFECT[size_ix], 0.0)
    z = rng.standard_normal(n)
    propensity = _sigmoid(1.5 + 1.7 * z + size_effect)
    existing = rng.random(n) < 0.55
    w = np.array([_ARRIVALS.get(int(mo), 1.0) for mo in cal_month])
    arrival = np.where(existing, -1, rng.choice(months, size=n, p=w / w.sum()))
    since = np.where(
        existing,
        month_start[0] - rng.integers(30, 6 * 365, size=n),
        month_start[np.maximum(arrival, 0)]
        + (rng.random(n) * dim[np.maximum(arrival, 0)]).astype(np.int64),
    )
    defaults = rng.random(n) < _sigmoid(-3.2 - 1.2 * z)
    first_active = np.maximum(arrival + 1, 0)
    default_month = np.where(defaults, first_active + rng.integers(0, months, size=n), -1)
    default_month = np.where(default_month >= months, -1, default_month)
    last_billing = np.where(default_month >= 0, default_month + 3, months)

    # --------------------------------------------------------- monthly decisions
    season = np.array([_SEASON[int(mo)] for mo in cal_month])
    p = _sigmoid(1.5 + 1.7 * z[:, None] + size_effect[:, None] + season[None, :]).astype(np.float32)
    stopped = (default_month[:, None] >= 0) & (np.arange(months)[None, :] >= default_month[:, None])
    p[stopped] = 0.0
    u = rng.random((n, months), dtype=np.float32)
    # good payers pay earlier in the month
    early = rng.beta(1.2, 1.8, size=(n, months)).astype(np.float32)
    pay_day = (np.where(propensity[:, None] > 0.8, early * 0.7, early) * dim[None, :]).astype(
        np.int64
    )
    offer = np.zeros((n, months), dtype=bool)

    # -------------------------------------------------------------- receivables
    month_ix = np.arange(months)
    bill = (month_ix[None, :] >= first_active[:, None]) & (
        month_ix[None, :] < last_billing[:, None]
    )
    person_bill = bill & ~is_company[:, None] & (rng.random((n, months)) < 0.85)
    pc_c, pc_m = np.nonzero(person_bill)
    due_day = rng.choice(np.array([5, 10, 15, 20, 25]), size=n)
    p_due = month_start[pc_m] + due_day[pc_c] - 1
    p_issued = p_due - 20
    scale = rng.lognormal(np.log(120_000), 0.8, size=n)
    p_amount = np.round(scale[pc_c] * rng.lognormal(0.0, 0.25, size=len(pc_c)))
    p_product = np.where(rng.random(n) < 0.6, 0, 1)[pc_c]

    lam = np.where(bill & is_company[:, None], _SIZE_INVOICES[size_ix][:, None], 0.0)
    counts = rng.poisson(lam)
    cc_flat = np.repeat(np.arange(n * months), counts.reshape(-1))
    co_c, co_m = np.divmod(cc_flat, months)
    c_issued = month_start[co_m] + (rng.random(len(co_c)) * dim[co_m]).astype(np.int64)
    c_issued = np.minimum(c_issued, month_end[-1])
    term = rng.choice(np.array([30, 45, 60]), size=n, p=[0.5, 0.3, 0.2])
    c_due = c_issued + term[co_c]
    c_scale = rng.lognormal(np.log(900_000) + _SIZE_AMOUNT[size_ix], 1.0, size=n)
    c_amount = np.round(c_scale[co_c] * rng.lognormal(0.0, 0.3, size=len(co_c)))

    cust = np.concatenate([pc_c, co_c])
    issued = np.concatenate([p_issued, c_issued])
    due = np.concatenate([p_due, c_due])
    amount = np.maximum(np.concatenate([p_amount, c_amount]), 1000.0)
    product = np.concatenate([p_product, np.full(len(co_c), 2)])
    order = np.lexsort((due, cust))
    cust, issued, due, amount, product = (
        cust[order],
        issued[order],
        due[order],
        amount[order],
        product[order],
    )
    n_rc = len(cust)
    credit_note = np.where(
        (product == 2) & (rng.random(n_rc) < 0.03),
        np.round(amount * rng.uniform(0.05, 0.3, n_rc)),
        0.0,
    )
    rc = _Receivables(
        cust=cust,
        issued=issued,
        due=due,
        due_month=np.searchsorted(month_start, due, side="right") - 1,
        amount=amount,
        to_pay=amount - credit_note,
        credit_note=credit_note,
        product=product,
        partial_u=rng.random(n_rc),
        partial_f=rng.uniform(0.3, 0.7, n_rc),
        discount_u=rng.random(n_rc),
        discount_f=rng.uniform(0.05, 0.2, n_rc),
        writeoff_gap=rng.geometric(0.15, n_rc) - 1,
    )
    rc.due_month = np.where(due > month_end[-1], months, rc.due_month)
    # a relationship starts no later than its first document
    np.minimum.at(since, rc.cust, rc.issued)

    # ------------------------------------------------------------------- scores
    bureau = rng.random(n) < 0.90
    e_c = rng.normal(0.0, SCORE_NOISE_SD[0], n)
    e_cm = rng.normal(0.0, SCORE_NOISE_SD[1], (n, months)).astype(np.float32)
    norm = np.sqrt(1 + SCORE_NOISE_SD[0] ** 2 + SCORE_NOISE_SD[1] ** 2)
    score = np.clip(np.round(650 + 100 * (z[:, None] + e_c[:, None] + e_cm) / norm), 300, 999)
    scored = bureau[:, None] & (since[:, None] <= month_end[None, :])

    # --------------------------------------------------------------- experiments
    exp_rows = []
    assignments = []

    def run_experiment(exp_id, m, eligible, seg_labels, seg_ix, lifts, challenger_share, kind):
        nonlocal mask, st
        ids = np.nonzero(eligible)[0]
        arm_is_ch = rng.random(len(ids)) < challenger_share
        seg = seg_ix[ids]
        lift = np.asarray(lifts)[seg]
        base = p[ids, m].astype(np.float64)
        true_lift = np.minimum(base + lift, 1.0) - base
        ch = ids[arm_is_ch]
        p[ch, m] = np.minimum(p[ch, m] + np.asarray(lifts, dtype=np.float32)[seg[arm_is_ch]], 1.0)
        if kind == "discount":
            offer[ch, m] = True
        mask = u < p
        st = _settle(rc, mask, pay_day, month_start, offer, months)
        for s, label in enumerate(seg_labels):
            in_s = seg == s
            exp_rows.append(
                {
                    "experiment_id": exp_id,
                    "segment": label,
                    "designed_lift": lifts[s],
                    "true_lift": float(true_lift[in_s].mean()) if in_s.any() else np.nan,
                    "n_champion": int((in_s & ~arm_is_ch).sum()),
                    "n_challenger": int((in_s & arm_is_ch).sum()),
                    "window_start": month_ends[m] - pd.offsets.MonthBegin(1),
                    "window_end": month_ends[m],
                }
            )
        assignments.append(
            (exp_id, ids, np.where(arm_is_ch, 1, 0), seg, seg_labels, month_start[m])
        )
        return ids, arm_is_ch

    mask = u < p
    st = _settle(rc, mask, pay_day, month_start, offer, months)

    m1 = months - 8
    od_count, _ = _open_at_month_start(rc, st, month_start, n, months)
    last_score = np.where(scored[:, m1 - 1], score[:, m1 - 1], np.nan)
    risk_seg = np.where(last_score < 550, 0, np.where(last_score < 700, 1, 2))
    eligible1 = (od_count[:, m1] > 0) & ~np.isnan(last_score)
    e1_ids, e1_ch = run_experiment(
        "sms_call_pilot", m1, eligible1, ["High risk", "Medium risk", "Low risk"],
        risk_seg, [0.03, 0.015, 0.0], 0.2, "contact",
    )  # fmt: skip

    m2 = months - 4
    oldest = _oldest_overdue_due(rc, st, month_start[m2], n)
    dpd = month_start[m2] - oldest
    dpd_seg = np.where(dpd <= 90, 0, np.where(dpd <= 180, 1, 2))
    eligible2 = (oldest < _OPEN) & (dpd >= 61)
    run_experiment(
        "discount_offer", m2, eligible2, ["61-90", "91-180", "181+"],
        dpd_seg, [0.03, 0.02, 0.0], 0.5, "discount",
    )  # fmt: skip

    # ----------------------------------------------------------------- payments
    pay_c = np.concatenate([rc.cust[st.pay1_month >= 0], rc.cust[st.pay2_month >= 0]])
    pay_r = np.concatenate([np.nonzero(st.pay1_month >= 0)[0], np.nonzero(st.pay2_month >= 0)[0]])
    pay_m = np.concatenate([st.pay1_month[st.pay1_month >= 0], st.pay2_month[st.pay2_month >= 0]])
    pay_d = np.concatenate([st.pay1_day[st.pay1_month >= 0], st.pay2_day[st.pay2_month >= 0]])
    pay_a = np.concatenate([st.pay1_amount[st.pay1_month >= 0], st.pay2_amount[st.pay2_month >= 0]])
    keep = pay_a > 0
    pay_c, pay_r, pay_m, pay_d, pay_a = (
        pay_c[keep],
        pay_r[keep],
        pay_m[keep],
        pay_d[keep],
        pay_a[keep],
    )
    on_account = (rng.random((n, months)) < 0.15)[pay_c, pay_m]
    # merge each on-account customer-month into one payment without a receivable
    key = pay_c[on_account] * (months + 1) + pay_m[on_account]
    ukey, inv = np.unique(key, return_inverse=True)
    u_amount = np.bincount(inv, pay_a[on_account])
    u_day = np.zeros(len(ukey), dtype=np.int64)
    u_day[inv] = pay_d[on_account]
    pay_c = np.concatenate([pay_c[~on_account], ukey // (months + 1)])
    pay_r = np.concatenate([pay_r[~on_account], np.full(len(ukey), -1)])
    pay_d = np.concatenate([pay_d[~on_account], u_day])
    pay_a = np.concatenate([pay_a[~on_account], u_amount])
    order = np.lexsort((pay_c, pay_d))
    pay_c, pay_r, pay_d, pay_a = pay_c[order], pay_r[order], pay_d[order], pay_a[order]

    # -------------------------------------------------------------- adjustments
    adj_parts = []
    for kind, amt, day in (
        ("credit_note", rc.credit_note, np.minimum(rc.issued + 1, month_end[-1])),
        ("discount", st.discount, st.discount_day),
        ("write_off", st.writeoff_amount, st.writeoff_day),
    ):
        sel = np.nonzero(amt > 0)[0]
        adj_parts.append(
            (np.full(len(sel), schema.ADJUSTMENT_KINDS.index(kind)), sel, day[sel], amt[sel])
        )
    adj_kind = np.concatenate([a[0] for a in adj_parts])
    adj_r = np.concatenate([a[1] for a in adj_parts])
    adj_d = np.concatenate([a[2] for a in adj_parts])
    adj_a = np.concatenate([a[3] for a in adj_parts])
    order = np.lexsort((adj_r, adj_d))
    adj_kind, adj_r, adj_d, adj_a = adj_kind[order], adj_r[order], adj_d[order], adj_a[order]

    # ----------------------------------------------------------------- contacts
    od_count, od_amount = _open_at_month_start(rc, st, month_start, n, months)
    k = rng.poisson(2.5, size=(n, months)) * (od_count > 0)
    flat = np.repeat(np.arange(n * months), k.reshape(-1))
    ct_c, ct_m = np.divmod(flat, months)
    # the pilot's challenger arm: an extra SMS and call early in the assignment month
    extra_c = np.repeat(e1_ids[e1_ch], 2)
    ct_c = np.concatenate([ct_c, extra_c])
    ct_m = np.concatenate([ct_m, np.full(len(extra_c), m1)])
    n_ct = len(ct_c)
    ch_idx = np.empty(n_ct, dtype=np.int64)
    person = ~is_company[ct_c]
    ch_idx[person] = rng.choice(5, size=person.sum(), p=_PERSON_CHANNEL_P)
    ch_idx[~person] = rng.choice(5, size=(~person).sum(), p=_COMPANY_CHANNEL_P)
    pref_ix = np.where(is_company, rng.choice(5, size=n, p=[0.05, 0.6, 0.3, 0.0, 0.05]),
                       rng.choice(5, size=n, p=[0.2, 0.25, 0.2, 0.35, 0.0]))  # fmt: skip
    use_pref = rng.random(n_ct) < 0.6
    ch_idx = np.where(use_pref, pref_ix[ct_c], ch_idx)
    n_extra = len(extra_c)
    ch_idx[n_ct - n_extra :] = np.tile(
        [schema.CHANNELS.index("sms"), schema.CHANNELS.index("call")], n_extra // 2
    )
    ct_day = month_start[ct_m] + (rng.random(n_ct) * dim[ct_m]).astype(np.int64)
    ct_day[n_ct - n_extra :] = month_start[m1] + rng.integers(0, 5, n_extra)

    # contact details and their validity
    has_phone = rng.random(n) < 0.92
    phone_ok = has_phone & (rng.random(n) >= 0.04)
    has_email = rng.random(n) < np.where(is_company, 0.90, 0.70)
    email_ok = has_email & (rng.random(n) >= 0.03)
    channel = np.array(schema.CHANNELS)[ch_idx]
    reachable = np.where(
        np.isin(channel, ["sms", "whatsapp", "call"]), phone_ok[ct_c],
        np.where(channel == "email", email_ok[ct_c], True),
    )  # fmt: skip
    pays_now = mask[ct_c, ct_m]
    r = rng.random(n_ct)
    is_call = channel == "call"
    # calls: no answer 50 %, a third party 15 %, the right party 35 %;
    # written channels: delivered, and 10 % of those get a reply from the right party
    rpc = reachable & np.where(is_call, r >= 0.65, r < 0.10)
    contacted = reachable & is_call & (r >= 0.50)
    r2 = rng.random(n_ct)
    promise = rpc & (r2 < np.where(pays_now, 0.45, 0.20))
    refused = rpc & ~promise & (r2 > 0.85)
    outcome_ix = np.where(
        promise, 4, np.where(refused, 5, np.where(rpc, 3, np.where(contacted, 2,
        np.where(reachable & ~is_call, 1, 0)))),
    )  # fmt: skip
    pay_day_abs = month_start[ct_m] + pay_day[ct_c, ct_m]
    # a promise made when the customer will pay this month comes 1-7 days before the pay day
    promise_kept_day = np.maximum(pay_day_abs - rng.integers(1, 8, n_ct), month_start[ct_m])
    ct_day = np.where(promise & pays_now, promise_kept_day, ct_day)
    ct_day = np.minimum(ct_day, month_end[-1])
    promise_due = ct_day + rng.integers(3, 15, n_ct)
    promise_due = np.where(promise & pays_now, np.maximum(promise_due, pay_day_abs), promise_due)
    promise_amount = np.round(od_amount[ct_c, ct_m] * rng.uniform(0.3, 0.9, n_ct))
    promise = promise & (promise_amount > 0)
    outcome_ix = np.where((outcome_ix == 4) & ~promise, 3, outcome_ix)
    cost = np.array([_CHANNEL_COST[c] for c in schema.CHANNELS])[ch_idx]
    order = np.lexsort((ct_c, ct_day))
    ct_c, ct_day, ch_idx, outcome_ix = ct_c[order], ct_day[order], ch_idx[order], outcome_ix[order]
    promise, promise_due, promise_amount, cost = (
        promise[order],
        promise_due[order],
        promise_amount[order],
        cost[order],
    )

    # -------------------------------------------------------------------- tables
    letters = (
        np.stack([(np.arange(n) * 7919) % 26, (np.arange(n) * 104729 // 7) % 26], axis=1) + 65
    ).astype(np.uint8)
    customer_id = _ids("CU", np.arange(n), 7, letters)
    first = rng.integers(0, len(_FIRST), n)
    s1 = rng.integers(0, len(_SURNAMES), n)
    s2 = rng.integers(0, len(_SURNAMES), n)
    person_name = _join(_take(_FIRST, first), " ", _take(_SURNAMES, s1), " ", _take(_SURNAMES, s2))
    company_name = _join(
        _take(_SURNAMES, s1),
        " ",
        _take(_SURNAMES, s2),
        " ",
        _take(_COMPANY_SUFFIX, rng.integers(0, 4, n)),
    )
    name = pc.if_else(pa.array(is_company), company_name, person_name)
    num = _ids("", np.arange(n), 7)
    local = pc.utf8_lower(_join(pc.if_else(pa.array(is_company), _take(np.array(["pagos"]), np.zeros(n, int)), _take(_FIRST, first)),
                                ".", _take(_SURNAMES, s1), ".", num))  # fmt: skip
    at = pc.if_else(pa.array(email_ok | ~has_email), "@", ".at.")
    email = _join(local, at, _take(_DOMAINS, rng.integers(0, len(_DOMAINS), n)))
    email = pc.if_else(pa.array(has_email), email, pa.scalar(None, pa.string()))
    d4a = _ids("", rng.integers(0, 10_000, n), 4)
    d4b = _ids("", rng.integers(0, 10_000, n), 4)
    phone = pc.if_else(pa.array(phone_ok), _join("+56 9 ", d4a, " ", d4b), _join("56-", d4a))
    phone = pc.if_else(pa.array(has_phone), phone, pa.scalar(None, pa.string()))
    null_str = pa.scalar(None, pa.string())
    customers = pa.table(
        {
            "customer_id": customer_id,
            "name": name,
            "customer_type": pc.if_else(pa.array(is_company), "company", "person"),
            "company_size": pc.if_else(pa.array(is_company), _take(_SIZES, size_ix), null_str),
            "industry": pc.if_else(
                pa.array(is_company),
                _take(_INDUSTRIES, rng.integers(0, len(_INDUSTRIES), n)),
                null_str,
            ),
            "region": _take(_REGIONS, rng.choice(len(_REGIONS), size=n, p=_REGION_P)),
            "customer_since": _dates(since),
            "phone": phone,
            "email": email,
            "preferred_channel": _take(np.array(schema.CHANNELS), pref_ix),
            "open_dispute": pa.array(rng.random(n) < np.where(is_company, 0.06, 0.02)),
        }
    )
    receivable_id = _ids("RC", np.arange(n_rc), 9)
    receivables = pa.table(
        {
            "receivable_id": receivable_id,
            "customer_id": customer_id.take(pa.array(rc.cust)),
            "product": _take(_PRODUCTS, rc.product),
            "issued_at": _dates(rc.issued),
            "due_at": _dates(rc.due),
            "amount": pa.array(rc.amount, pa.float64()),
            "currency": pa.array(np.full(n_rc, CURRENCY)),
        }
    )
    linked = pay_r >= 0
    payments = pa.table(
        {
            "payment_id": _ids("PY", np.arange(len(pay_c)), 9),
            "customer_id": customer_id.take(pa.array(pay_c)),
            "receivable_id": receivable_id.take(pa.array(np.where(linked, pay_r, 0), mask=~linked)),
            "paid_at": _dates(pay_d),
            "amount": pa.array(pay_a, pa.float64()),
        }
    )
    adjustments = pa.table(
        {
            "adjustment_id": _ids("AJ", np.arange(len(adj_r)), 8),
            "receivable_id": receivable_id.take(pa.array(adj_r)),
            "customer_id": customer_id.take(pa.array(rc.cust[adj_r])),
            "at": _dates(adj_d),
            "kind": _take(np.array(schema.ADJUSTMENT_KINDS), adj_kind),
            "amount": pa.array(adj_a, pa.float64()),
        }
    )
    contacts = pa.table(
        {
            "contact_id": _ids("CT", np.arange(len(ct_c)), 9),
            "customer_id": customer_id.take(pa.array(ct_c)),
            "at": _dates(ct_day),
            "channel": _take(np.array(schema.CHANNELS), ch_idx),
            "outcome": _take(np.array(schema.OUTCOMES), outcome_ix),
            "promise_amount": pa.array(promise_amount, pa.float64(), mask=~promise),
            "promise_due": _dates(promise_due, promise),
            "cost": pa.array(cost, pa.float64()),
        }
    )
    sc_c, sc_m = np.nonzero(scored)
    scores = pa.table(
        {
            "customer_id": customer_id.take(pa.array(sc_c)),
            "scored_at": _dates(month_end[sc_m]),
            "score": pa.array(score[sc_c, sc_m], pa.float64()),
            "source": pa.array(np.full(len(sc_c), SCORE_SOURCE)),
        }
    )
    a_parts = []
    for exp_id, ids, arm, seg, labels, day in assignments:
        a_parts.append(
            pa.table(
                {
                    "experiment_id": pa.array(np.full(len(ids), exp_id)),
                    "customer_id": customer_id.take(pa.array(ids)),
                    "arm": _take(np.array(["champion", "challenger"]), arm),
                    "segment": _take(np.array(labels), seg),
                    "assigned_at": _dates(np.full(len(ids), day)),
                }
            )
        )
    tables = {
        "customers": customers,
        "receivables": receivables,
        "payments": payments,
        "adjustments": adjustments,
        "contacts": contacts,
        "scores": scores,
        "assignments": pa.concat_tables(a_parts),
    }
    injected = _inject_defects(tables, defects, rng) if defects else {}
    truth = GroundTruth(
        customers=pd.DataFrame(
            {
                "customer_id": customer_id.to_pandas(),
                "latent_z": z,
                "propensity": propensity,
                "default_month": default_month,
            }
        ),
        experiments=pd.DataFrame(exp_rows),
        months=month_ends,
        defects=injected,
    )
    return Sample(tables=tables, truth=truth, extraction_date=end)


def _inject_defects(
    tables: dict[str, pa.Table], defects: tuple[str, ...], rng
) -> dict[str, list[str]]:
    """Damage a few rows per requested defect kind; return kind -> the ids concerned."""
    out: dict[str, list[str]] = {}
    if "invalid_contact_details" in defects:
        t = tables["customers"]
        rows = rng.choice(t.num_rows, size=min(5, t.num_rows), replace=False)
        phone = t["phone"].to_numpy(zero_copy_only=False).astype(object)
        email = t["email"].to_numpy(zero_copy_only=False).astype(object)
        phone[rows] = "12-34"
        email[rows] = "no-at-sign.example.cl"
        t = t.set_column(t.column_names.index("phone"), "phone", pa.array(phone, pa.string()))
        t = t.set_column(t.column_names.index("email"), "email", pa.array(email, pa.string()))
        tables["customers"] = t
        out["invalid_contact_details"] = t["customer_id"].take(pa.array(rows)).to_pylist()
    if "duplicate_ids" in defects:
        t = tables["payments"]
        rows = rng.choice(t.num_rows, size=min(3, t.num_rows), replace=False)
        tables["payments"] = pa.concat_tables([t, t.take(pa.array(rows))])
        out["duplicate_ids"] = t["payment_id"].take(pa.array(rows)).to_pylist()
    if "orphan_payments" in defects:
        t = tables["payments"]
        rows = rng.choice(t.num_rows, size=min(4, t.num_rows), replace=False)
        cid = t["customer_id"].to_numpy(zero_copy_only=False).astype(object)
        cid[rows] = [f"CU9{i:06d}ZZ" for i in range(len(rows))]
        tables["payments"] = t.set_column(1, "customer_id", pa.array(cid, pa.string()))
        out["orphan_payments"] = t["payment_id"].take(pa.array(rows)).to_pylist()
    if "negative_amounts" in defects:
        t = tables["payments"]
        rows = rng.choice(t.num_rows, size=min(6, t.num_rows), replace=False)
        amt = t["amount"].to_numpy().copy()
        amt[rows] = -amt[rows]
        tables["payments"] = t.set_column(t.column_names.index("amount"), "amount", pa.array(amt))
        out["negative_amounts"] = t["payment_id"].take(pa.array(rows)).to_pylist()
    return out
