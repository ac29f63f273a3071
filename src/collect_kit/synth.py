"""A seeded, vectorized sample portfolio with a documented ground truth.

:func:`generate` returns every canonical table (:mod:`collect_kit.schema`) as Arrow tables,
plus a :class:`GroundTruth` that the tables never contain, so no analysis can pass a test
by reading the answer.

Customers are drawn in blocks of :data:`BLOCK` (25 000); each block draws from its own
``numpy.random.Generator`` (block 0 from ``seed`` itself, block ``b`` from
``SeedSequence(seed, spawn_key=(b,))``), so a sample of any size is the same whether it is
built in memory (:func:`generate`) or written to Parquet chunk by chunk
(:func:`collect_kit.synth_parquet.write_sample`). Loops run over months and blocks, never
over customers. The model:

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
    around 120 000; the instalments due by the 20th of the month after the extraction were
    issued in its last month and are in the data (open, not yet due), so the last month
    looks like the others. Companies: Poisson(0.8/1.2/2/3 by size) invoices a month, payment
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
from .errors import InvalidParameterError

DEFECT_KINDS = ("invalid_contact_details", "duplicate_ids", "orphan_payments", "negative_amounts")
#: canonical inputs the sample does not have: it is an event book (no extract) whose source
#: reports no balance per receivable
NOT_GENERATED = ("extract", "receivables.reported_balance")

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


@dataclass(frozen=True)
class _Grid:
    """The calendar: month ends, and first/last day of each month as int days since 1970."""

    month_ends: pd.DatetimeIndex
    start: np.ndarray
    end: np.ndarray

    @classmethod
    def of(cls, end: pd.Timestamp, months: int) -> _Grid:
        ends = pd.date_range(end=end, periods=months, freq="ME")
        starts = ends - pd.offsets.MonthBegin(1)
        epoch = np.datetime64("1970-01-01", "D")

        def to_days(ix):
            return (ix.values.astype("datetime64[D]") - epoch).astype(np.int64)

        return cls(ends, to_days(starts), to_days(ends))

    @property
    def months(self) -> int:
        return len(self.start)

    @property
    def days(self) -> np.ndarray:
        return self.end - self.start + 1

    @property
    def calendar_month(self) -> np.ndarray:
        return self.month_ends.month.to_numpy()


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


@dataclass
class _Customers:
    """Per customer (arrays of length n): profile, latent willingness and lifecycle."""

    is_company: np.ndarray
    size_ix: np.ndarray
    size_effect: np.ndarray
    z: np.ndarray
    propensity: np.ndarray
    since: np.ndarray  # int days
    first_active: np.ndarray  # first month index with documents
    default_month: np.ndarray  # month index of a permanent stop, or -1
    last_billing: np.ndarray  # month index after the last document

    @property
    def n(self) -> int:
        return len(self.z)


@dataclass
class _Decisions:
    """Per customer x month: probability of paying, the uniform draw, pay day, discount offer."""

    p: np.ndarray
    u: np.ndarray
    pay_day: np.ndarray
    offer: np.ndarray

    @property
    def mask(self) -> np.ndarray:
        return self.u < self.p


@dataclass
class _Experiment:
    experiment_id: str
    month: int
    ids: np.ndarray
    challenger: np.ndarray
    segment: np.ndarray
    labels: list[str]


#: customers per random stream: block ``b`` of a sample (customers ``b * BLOCK`` to
#: ``(b + 1) * BLOCK - 1``) draws everything from its own stream, so a sample is the same
#: whether its blocks are generated together, in chunks or in parallel processes
BLOCK = 25_000
#: id numbers reserved per block for receivables, payments and contacts / adjustments
_ID_STRIDE = 1_000_000
_ADJUSTMENT_STRIDE = 100_000


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
    docstring. The tables are the blocks of :func:`generate_block` one after the other,
    exactly what :func:`collect_kit.synth_parquet.write_sample` writes in chunks.
    """
    defects = tuple(defects)
    unknown = sorted(set(defects) - set(DEFECT_KINDS))
    if unknown:
        raise InvalidParameterError(f"defects: {unknown} not in {DEFECT_KINDS}")
    grid = sample_grid(n_customers, end, months)
    blocks = [generate_block(n_customers, seed, grid, b) for b in range(n_blocks(n_customers))]
    tables = {
        name: pa.concat_tables([blk.tables[name] for blk in blocks]).combine_chunks()
        for name in blocks[0].tables
    }
    # defects come from a stream of their own, after every block
    defect_rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(2**31,)))
    injected = _inject_defects(tables, defects, defect_rng) if defects else {}
    truth = GroundTruth(
        customers=pd.concat([blk.customers for blk in blocks], ignore_index=True),
        experiments=experiment_truth([blk.experiments for blk in blocks]),
        months=grid.month_ends,
        defects=injected,
    )
    return Sample(tables=tables, truth=truth, extraction_date=grid.month_ends[-1])


def n_blocks(n_customers: int) -> int:
    """Number of :data:`BLOCK`-sized random streams in a sample of ``n_customers``."""
    return -(-n_customers // BLOCK)


def sample_grid(n_customers: int, end: str | pd.Timestamp, months: int) -> _Grid:
    """Check the sample's size and calendar; return its month grid."""
    if months < 12:
        raise InvalidParameterError(f"months: must be at least 12 (got {months})")
    if n_customers < 10:
        raise InvalidParameterError(f"n_customers: must be at least 10 (got {n_customers})")
    end = pd.Timestamp(end)
    if end != end + pd.offsets.MonthEnd(0):
        raise InvalidParameterError(f"end: must be a month end (got {end.date()})")
    return _Grid.of(end, months)


@dataclass(frozen=True)
class Block:
    """One block of a sample: its rows of every table and its part of the ground truth.

    ``experiments`` holds, per experiment x segment, the sum of the true lifts and the
    customers per arm (combined over blocks by :func:`experiment_truth`).
    """

    tables: dict[str, pa.Table]
    customers: pd.DataFrame
    experiments: list[dict]


def _stream(seed: int, block: int) -> np.random.Generator:
    """Block ``block``'s random stream; block 0 draws from ``seed`` itself."""
    if block == 0:
        return np.random.default_rng(seed)
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(block,)))


@dataclass(frozen=True)
class _Numbering:
    """Global numbers of one block's rows: customers by position, other rows by a stride."""

    block: int
    n_blocks: int
    n_customers: int

    @property
    def first_customer(self) -> int:
        return self.block * BLOCK

    def customer_ix(self, local: np.ndarray) -> np.ndarray:
        return self.first_customer + np.asarray(local, dtype=np.int64)

    @property
    def customer_width(self) -> int:
        return max(7, len(str(self.n_customers - 1)))

    def numbers(self, count: int, stride: int) -> np.ndarray:
        if count > stride:
            raise RuntimeError(
                f"a block of the sample has {count} rows of a table (at most {stride})"
            )
        return self.block * stride + np.arange(count, dtype=np.int64)

    def width(self, base: int, stride: int) -> int:
        return max(base, len(str(self.n_blocks * stride - 1)))

    def ids(self, prefix: str, count: int, base: int, stride: int = _ID_STRIDE) -> pa.Array:
        return _ids(prefix, self.numbers(count, stride), self.width(base, stride))


def generate_block(n_customers: int, seed: int, grid: _Grid, block: int) -> Block:
    """Generate block ``block`` of a sample of ``n_customers`` (see :data:`BLOCK`)."""
    n = min(BLOCK, n_customers - block * BLOCK)
    num = _Numbering(block, n_blocks(n_customers), n_customers)
    rng = _stream(seed, block)
    cust = _draw_customers(rng, n, grid)
    dec = _draw_decisions(rng, cust, grid)
    rc = _draw_receivables(rng, cust, grid)
    score, scored = _draw_scores(rng, cust, grid)
    st, experiments, exp_truth = _run_experiments(rng, rc, dec, score, scored, grid)
    details = _draw_contact_details(rng, cust)
    contacts = _draw_contacts(rng, rc, st, cust, dec, details, experiments[0], grid)

    customer_id = _customer_ids(num.customer_ix(np.arange(n)), num.customer_width)
    rc_numbers = num.numbers(len(rc.cust), _ID_STRIDE)
    receivable_id = _ids("RC", rc_numbers, num.width(9, _ID_STRIDE))
    tables = {
        "customers": _customers_table(rng, cust, details, customer_id, num),
        "receivables": _receivables_table(rc, customer_id, receivable_id),
        "payments": _payments_table(rng, rc, st, grid, customer_id, receivable_id, num),
        "adjustments": _adjustments_table(rc, st, grid, customer_id, receivable_id, num),
        "contacts": _contacts_table(contacts, customer_id, num),
        "scores": _scores_table(score, scored, grid, customer_id),
        "assignments": _assignments_table(experiments, grid, customer_id),
    }
    customers = pd.DataFrame(
        {
            "customer_id": customer_id.to_pandas(),
            "latent_z": cust.z,
            "propensity": cust.propensity,
            "default_month": cust.default_month,
        }
    )
    return Block(tables=tables, customers=customers, experiments=exp_truth)


def experiment_truth(parts: list[list[dict]]) -> pd.DataFrame:
    """Combine the blocks' experiment truth (block order) into one row per experiment x segment."""
    rows: dict[tuple[str, str], dict] = {}
    for part in parts:
        for r in part:
            key = (r["experiment_id"], r["segment"])
            if key not in rows:
                rows[key] = dict(r)
                continue
            for col in ("lift_sum", "n_champion", "n_challenger"):
                rows[key][col] += r[col]
    out = pd.DataFrame(list(rows.values()))
    n = out["n_champion"] + out["n_challenger"]
    out.insert(3, "true_lift", np.where(n > 0, out.pop("lift_sum") / n.where(n > 0, 1), np.nan))
    return out


# ------------------------------------------------------------------ the model, step by step


def _draw_customers(rng, n: int, grid: _Grid) -> _Customers:
    months = grid.months
    is_company = rng.random(n) < 0.30
    size_ix = rng.choice(4, size=n, p=_SIZE_P)
    size_effect = np.where(is_company, _SIZE_EFFECT[size_ix], 0.0)
    z = rng.standard_normal(n)
    existing = rng.random(n) < 0.55
    w = np.array([_ARRIVALS.get(int(mo), 1.0) for mo in grid.calendar_month])
    arrival = np.where(existing, -1, rng.choice(months, size=n, p=w / w.sum()))
    arrival_ix = np.maximum(arrival, 0)
    since = np.where(
        existing,
        grid.start[0] - rng.integers(30, 6 * 365, size=n),
        grid.start[arrival_ix] + (rng.random(n) * grid.days[arrival_ix]).astype(np.int64),
    )
    defaults = rng.random(n) < _sigmoid(-3.2 - 1.2 * z)
    first_active = np.maximum(arrival + 1, 0)
    default_month = np.where(defaults, first_active + rng.integers(0, months, size=n), -1)
    default_month = np.where(default_month >= months, -1, default_month)
    return _Customers(
        is_company=is_company,
        size_ix=size_ix,
        size_effect=size_effect,
        z=z,
        propensity=_sigmoid(1.5 + 1.7 * z + size_effect),
        since=since,
        first_active=first_active,
        default_month=default_month,
        last_billing=np.where(default_month >= 0, default_month + 3, months),
    )


def _draw_decisions(rng, cust: _Customers, grid: _Grid) -> _Decisions:
    n, months = cust.n, grid.months
    season = np.array([_SEASON[int(mo)] for mo in grid.calendar_month])
    logit = 1.5 + 1.7 * cust.z[:, None] + cust.size_effect[:, None] + season[None, :]
    p = _sigmoid(logit).astype(np.float32)
    stopped = (cust.default_month[:, None] >= 0) & (
        np.arange(months)[None, :] >= cust.default_month[:, None]
    )
    p[stopped] = 0.0
    u = rng.random((n, months), dtype=np.float32)
    # good payers pay earlier in the month
    early = rng.beta(1.2, 1.8, size=(n, months)).astype(np.float32)
    early = np.where(cust.propensity[:, None] > 0.8, early * 0.7, early)
    pay_day = (early * grid.days[None, :]).astype(np.int64)
    return _Decisions(p=p, u=u, pay_day=pay_day, offer=np.zeros((n, months), dtype=bool))


def _draw_receivables(rng, cust: _Customers, grid: _Grid) -> _Receivables:
    """Monthly instalments for persons, Poisson invoices for companies (sorted by customer, due)."""
    n, months = cust.n, grid.months
    month_ix = np.arange(months)
    bill = (month_ix[None, :] >= cust.first_active[:, None]) & (
        month_ix[None, :] < cust.last_billing[:, None]
    )
    person_bill = bill & ~cust.is_company[:, None] & (rng.random((n, months)) < 0.85)
    pc_c, pc_m = np.nonzero(person_bill)
    due_day = rng.choice(np.array([5, 10, 15, 20, 25]), size=n)
    p_due = grid.start[pc_m] + due_day[pc_c] - 1
    scale = rng.lognormal(np.log(120_000), 0.8, size=n)
    p_amount = np.round(scale[pc_c] * rng.lognormal(0.0, 0.25, size=len(pc_c)))
    loan_or_card = np.where(rng.random(n) < 0.6, 0, 1)
    p_product = loan_or_card[pc_c]
    # next month's instalments are issued 20 days before they fall due, so those due by the
    # 20th of the month after the extraction were issued in its last month: drawn from a
    # stream of their own, so every other draw of the sample stays as it was
    nx = np.random.default_rng(rng.bit_generator.seed_seq.spawn(1)[0])
    next_start = grid.end[-1] + 1
    still = np.where(cust.default_month >= 0, cust.last_billing > months, True)
    nx_c = np.nonzero(
        (cust.first_active <= months) & still & ~cust.is_company & (nx.random(n) < 0.85)
        & (next_start + due_day - 1 - 20 <= grid.end[-1])
    )[0]  # fmt: skip
    nx_due = next_start + due_day[nx_c] - 1
    nx_amount = np.round(scale[nx_c] * nx.lognormal(0.0, 0.25, size=len(nx_c)))

    lam = np.where(bill & cust.is_company[:, None], _SIZE_INVOICES[cust.size_ix][:, None], 0.0)
    counts = rng.poisson(lam)
    co_c, co_m = np.divmod(np.repeat(np.arange(n * months), counts.reshape(-1)), months)
    c_issued = grid.start[co_m] + (rng.random(len(co_c)) * grid.days[co_m]).astype(np.int64)
    term = rng.choice(np.array([30, 45, 60]), size=n, p=[0.5, 0.3, 0.2])
    c_scale = rng.lognormal(np.log(900_000) + _SIZE_AMOUNT[cust.size_ix], 1.0, size=n)
    c_amount = np.round(c_scale[co_c] * rng.lognormal(0.0, 0.3, size=len(co_c)))

    cust_ix = np.concatenate([pc_c, co_c])
    issued = np.concatenate([p_due - 20, c_issued])
    due = np.concatenate([p_due, c_issued + term[co_c]])
    amount = np.maximum(np.concatenate([p_amount, c_amount]), 1000.0)
    product = np.concatenate([p_product, np.full(len(co_c), 2)])
    order = np.lexsort((due, cust_ix))
    cust_ix, issued, due, amount, product = (
        a[order] for a in (cust_ix, issued, due, amount, product)
    )
    n_rc = len(cust_ix)
    credit_note = np.where(
        (product == 2) & (rng.random(n_rc) < 0.03),
        np.round(amount * rng.uniform(0.05, 0.3, n_rc)),
        0.0,
    )
    draws = {
        "partial_u": rng.random(n_rc), "partial_f": rng.uniform(0.3, 0.7, n_rc),
        "discount_u": rng.random(n_rc), "discount_f": rng.uniform(0.05, 0.2, n_rc),
        "writeoff_gap": rng.geometric(0.15, n_rc) - 1,
    }  # fmt: skip
    # append next month's instalments (their own stream) and keep the (customer, due) order
    k = len(nx_c)
    extra = {
        "partial_u": nx.random(k), "partial_f": nx.uniform(0.3, 0.7, k),
        "discount_u": nx.random(k), "discount_f": nx.uniform(0.05, 0.2, k),
        "writeoff_gap": nx.geometric(0.15, k) - 1,
    }  # fmt: skip
    cust_ix = np.concatenate([cust_ix, nx_c])
    issued = np.concatenate([issued, nx_due - 20])
    due = np.concatenate([due, nx_due])
    amount = np.concatenate([amount, np.maximum(nx_amount, 1000.0)])
    product = np.concatenate([product, loan_or_card[nx_c]])
    credit_note = np.concatenate([credit_note, np.zeros(k)])
    draws = {name: np.concatenate([v, extra[name]]) for name, v in draws.items()}
    order = np.lexsort((due, cust_ix))
    cust_ix, issued, due, amount, product, credit_note = (
        a[order] for a in (cust_ix, issued, due, amount, product, credit_note)
    )
    draws = {name: v[order] for name, v in draws.items()}
    due_month = np.searchsorted(grid.start, due, side="right") - 1
    # a relationship starts no later than its first document
    np.minimum.at(cust.since, cust_ix, issued)
    return _Receivables(
        cust=cust_ix,
        issued=issued,
        due=due,
        due_month=np.where(due > grid.end[-1], months, due_month),
        amount=amount,
        to_pay=amount - credit_note,
        credit_note=credit_note,
        product=product,
        **draws,
    )


def _draw_scores(rng, cust: _Customers, grid: _Grid) -> tuple[np.ndarray, np.ndarray]:
    """Month-end bureau score (customer x month) and whether it exists."""
    n, months = cust.n, grid.months
    bureau = rng.random(n) < 0.90
    e_c = rng.normal(0.0, SCORE_NOISE_SD[0], n)
    e_cm = rng.normal(0.0, SCORE_NOISE_SD[1], (n, months)).astype(np.float32)
    norm = np.sqrt(1 + SCORE_NOISE_SD[0] ** 2 + SCORE_NOISE_SD[1] ** 2)
    latent = cust.z[:, None] + e_c[:, None] + e_cm
    score = np.clip(np.round(650 + 100 * latent / norm), 300, 999)
    scored = bureau[:, None] & (cust.since[:, None] <= grid.end[None, :])
    return score, scored


def _run_experiments(rng, rc, dec: _Decisions, score, scored, grid: _Grid):
    """Assign and apply the two past experiments; return the final settlement and the truth."""
    months, n = grid.months, dec.p.shape[0]
    st = _settle(rc, dec.mask, dec.pay_day, grid.start, dec.offer, months)
    experiments: list[_Experiment] = []
    truth: list[dict] = []

    def run(exp_id, m, eligible, labels, seg_ix, lifts, challenger_share, discount):
        ids = np.nonzero(eligible)[0]
        challenger = rng.random(len(ids)) < challenger_share
        seg = seg_ix[ids]
        base = dec.p[ids, m].astype(np.float64)
        true_lift = np.minimum(base + np.asarray(lifts)[seg], 1.0) - base
        ch = ids[challenger]
        lift32 = np.asarray(lifts, dtype=np.float32)[seg[challenger]]
        dec.p[ch, m] = np.minimum(dec.p[ch, m] + lift32, 1.0)
        if discount:
            dec.offer[ch, m] = True
        experiments.append(_Experiment(exp_id, m, ids, challenger, seg, labels))
        for s, label in enumerate(labels):
            in_s = seg == s
            truth.append(
                {
                    "experiment_id": exp_id,
                    "segment": label,
                    "designed_lift": lifts[s],
                    "lift_sum": float(true_lift[in_s].sum()),
                    "n_champion": int((in_s & ~challenger).sum()),
                    "n_challenger": int((in_s & challenger).sum()),
                    "window_start": grid.month_ends[m] - pd.offsets.MonthBegin(1),
                    "window_end": grid.month_ends[m],
                }
            )
        # later months' payments follow the changed decisions; earlier ones do not move
        return _settle(rc, dec.mask, dec.pay_day, grid.start, dec.offer, months)

    m1 = months - 8
    od_count, _ = _open_at_month_start(rc, st, grid.start, n, months)
    last_score = np.where(scored[:, m1 - 1], score[:, m1 - 1], np.nan)
    risk_seg = np.where(last_score < 550, 0, np.where(last_score < 700, 1, 2))
    eligible = (od_count[:, m1] > 0) & ~np.isnan(last_score)
    st = run(
        "sms_call_pilot", m1, eligible, ["High risk", "Medium risk", "Low risk"],
        risk_seg, [0.03, 0.015, 0.0], 0.2, discount=False,
    )  # fmt: skip

    m2 = months - 4
    oldest = _oldest_overdue_due(rc, st, grid.start[m2], n)
    dpd = grid.start[m2] - oldest
    dpd_seg = np.where(dpd <= 90, 0, np.where(dpd <= 180, 1, 2))
    eligible = (oldest < _OPEN) & (dpd >= 61)
    st = run(
        "discount_offer", m2, eligible, ["61-90", "91-180", "181+"],
        dpd_seg, [0.03, 0.02, 0.0], 0.5, discount=True,
    )  # fmt: skip
    return st, experiments, truth


@dataclass
class _ContactDetails:
    """Per customer: preferred channel (index into CHANNELS), phone and e-mail presence/validity."""

    preferred: np.ndarray
    has_phone: np.ndarray
    phone_ok: np.ndarray
    has_email: np.ndarray
    email_ok: np.ndarray


def _draw_contact_details(rng, cust: _Customers) -> _ContactDetails:
    n = cust.n
    preferred = np.where(
        cust.is_company,
        rng.choice(5, size=n, p=[0.05, 0.6, 0.3, 0.0, 0.05]),
        rng.choice(5, size=n, p=[0.2, 0.25, 0.2, 0.35, 0.0]),
    )
    has_phone = rng.random(n) < 0.92
    has_email = rng.random(n) < np.where(cust.is_company, 0.90, 0.70)
    return _ContactDetails(
        preferred=preferred,
        has_phone=has_phone,
        phone_ok=has_phone & (rng.random(n) >= 0.04),
        has_email=has_email,
        email_ok=has_email & (rng.random(n) >= 0.03),
    )


@dataclass
class _Contacts:
    """Collection actions, sorted by date: customer index, day, channel and outcome indexes..."""

    cust: np.ndarray
    day: np.ndarray
    channel: np.ndarray
    outcome: np.ndarray
    promise: np.ndarray
    promise_amount: np.ndarray
    promise_due: np.ndarray
    cost: np.ndarray


def _draw_contacts(rng, rc, st, cust, dec, details: _ContactDetails, pilot: _Experiment, grid):
    """Actions for customers who start a month overdue, plus the pilot challenger's extra ones."""
    n, months = cust.n, grid.months
    od_count, od_amount = _open_at_month_start(rc, st, grid.start, n, months)
    k = rng.poisson(2.5, size=(n, months)) * (od_count > 0)
    ct_c, ct_m = np.divmod(np.repeat(np.arange(n * months), k.reshape(-1)), months)
    # the pilot's challenger arm: an extra SMS and call in the first days of the month
    extra_c = np.repeat(pilot.ids[pilot.challenger], 2)
    n_extra = len(extra_c)
    ct_c = np.concatenate([ct_c, extra_c])
    ct_m = np.concatenate([ct_m, np.full(n_extra, pilot.month)])
    n_ct = len(ct_c)
    ch_idx = np.empty(n_ct, dtype=np.int64)
    person = ~cust.is_company[ct_c]
    ch_idx[person] = rng.choice(5, size=person.sum(), p=_PERSON_CHANNEL_P)
    ch_idx[~person] = rng.choice(5, size=(~person).sum(), p=_COMPANY_CHANNEL_P)
    ch_idx = np.where(rng.random(n_ct) < 0.6, details.preferred[ct_c], ch_idx)
    sms_call = [schema.CHANNELS.index("sms"), schema.CHANNELS.index("call")]
    ch_idx[n_ct - n_extra :] = np.tile(sms_call, n_extra // 2)
    day = grid.start[ct_m] + (rng.random(n_ct) * grid.days[ct_m]).astype(np.int64)
    day[n_ct - n_extra :] = grid.start[pilot.month] + rng.integers(0, 5, n_extra)

    channel = np.array(schema.CHANNELS)[ch_idx]
    reachable = np.where(
        np.isin(channel, ["sms", "whatsapp", "call"]), details.phone_ok[ct_c],
        np.where(channel == "email", details.email_ok[ct_c], True),
    )  # fmt: skip
    pays_now = dec.mask[ct_c, ct_m]
    r = rng.random(n_ct)
    is_call = channel == "call"
    # calls: no answer 50 %, a third party 15 %, the right party 35 %;
    # written channels: delivered, and 10 % of those get a reply from the right party
    rpc = reachable & np.where(is_call, r >= 0.65, r < 0.10)
    contacted = reachable & is_call & (r >= 0.50)
    r2 = rng.random(n_ct)
    promise = rpc & (r2 < np.where(pays_now, 0.45, 0.20))
    refused = rpc & ~promise & (r2 > 0.85)
    pay_day = grid.start[ct_m] + dec.pay_day[ct_c, ct_m]
    # a promise made when the customer will pay this month comes 1-7 days before the pay day
    before_pay = np.maximum(pay_day - rng.integers(1, 8, n_ct), grid.start[ct_m])
    day = np.minimum(np.where(promise & pays_now, before_pay, day), grid.end[-1])
    promise_due = day + rng.integers(3, 15, n_ct)
    promise_due = np.where(promise & pays_now, np.maximum(promise_due, pay_day), promise_due)
    promise_amount = np.round(od_amount[ct_c, ct_m] * rng.uniform(0.3, 0.9, n_ct))
    promise = promise & (promise_amount > 0)
    outcome = np.select(
        [promise, refused, rpc, contacted, reachable & ~is_call],
        [
            schema.OUTCOMES.index(o)
            for o in ("promise", "refused", "right_party", "contacted", "delivered")
        ],
        default=schema.OUTCOMES.index("no_answer"),
    )
    cost = np.array([_CHANNEL_COST[c] for c in schema.CHANNELS])[ch_idx]
    order = np.lexsort((ct_c, day))
    return _Contacts(
        *(
            a[order]
            for a in (ct_c, day, ch_idx, outcome, promise, promise_amount, promise_due, cost)
        )
    )


# ------------------------------------------------------------------------------ tables


def _customer_ids(ix: np.ndarray, width: int = 7) -> pa.Array:
    """``CU`` + the customer's position in the sample + two letters derived from it."""
    letters = (np.stack([(ix * 7919) % 26, (ix * 104729 // 7) % 26], axis=1) + 65).astype(np.uint8)
    return _ids("CU", ix, width, letters)


def _customers_table(
    rng, cust: _Customers, details: _ContactDetails, customer_id, num: _Numbering
) -> pa.Table:
    n = cust.n
    company = pa.array(cust.is_company)
    null_str = pa.scalar(None, pa.string())
    first = _take(_FIRST, rng.integers(0, len(_FIRST), n))
    s1 = _take(_SURNAMES, rng.integers(0, len(_SURNAMES), n))
    s2 = _take(_SURNAMES, rng.integers(0, len(_SURNAMES), n))
    suffix = _take(_COMPANY_SUFFIX, rng.integers(0, len(_COMPANY_SUFFIX), n))
    name = pc.if_else(company, _join(s1, " ", s2, " ", suffix), _join(first, " ", s1, " ", s2))
    mailbox = pc.if_else(company, pa.scalar("pagos"), first)
    position = _ids("", num.customer_ix(np.arange(n)), num.customer_width)
    local = pc.utf8_lower(_join(mailbox, ".", s1, ".", position))
    at = pc.if_else(pa.array(details.email_ok | ~details.has_email), "@", ".at.")
    email = _join(local, at, _take(_DOMAINS, rng.integers(0, len(_DOMAINS), n)))
    # valid mobiles use the +56 9 20xx-35xx ranges phonenumbers accepts (the same draw as
    # before, mapped into them); invalid ones are too short to be possible
    d4a = _ids("", 2000 + rng.integers(0, 10_000, n) % 1600, 4)
    d4b = _ids("", rng.integers(0, 10_000, n), 4)
    phone = pc.if_else(
        pa.array(details.phone_ok), _join("+56 9 ", d4a, " ", d4b), _join("56-", d4a)
    )
    industry = _take(_INDUSTRIES, rng.integers(0, len(_INDUSTRIES), n))
    return pa.table(
        {
            "customer_id": customer_id,
            "name": name,
            "customer_type": pc.if_else(company, "company", "person"),
            "company_size": pc.if_else(company, _take(_SIZES, cust.size_ix), null_str),
            "industry": pc.if_else(company, industry, null_str),
            "region": _take(_REGIONS, rng.choice(len(_REGIONS), size=n, p=_REGION_P)),
            "customer_since": _dates(cust.since),
            "phone": pc.if_else(pa.array(details.has_phone), phone, null_str),
            "email": pc.if_else(pa.array(details.has_email), email, null_str),
            "preferred_channel": _take(np.array(schema.CHANNELS), details.preferred),
            "open_dispute": pa.array(rng.random(n) < np.where(cust.is_company, 0.06, 0.02)),
        }
    )


def _receivables_table(rc: _Receivables, customer_id, receivable_id) -> pa.Table:
    return pa.table(
        {
            "receivable_id": receivable_id,
            "customer_id": customer_id.take(pa.array(rc.cust)),
            "product": _take(_PRODUCTS, rc.product),
            "issued_at": _dates(rc.issued),
            "due_at": _dates(rc.due),
            "amount": pa.array(rc.amount, pa.float64()),
            "currency": pa.array(np.full(len(rc.cust), CURRENCY)),
        }
    )


def _payments_table(
    rng, rc, st: _Settlement, grid: _Grid, customer_id, receivable_id, num: _Numbering
) -> pa.Table:
    """One payment per receivable paid; in 15 % of customer-months one payment on account."""
    months, n = grid.months, len(customer_id)
    first, second = st.pay1_month >= 0, st.pay2_month >= 0
    cust = np.concatenate([rc.cust[first], rc.cust[second]])
    rec = np.concatenate([np.nonzero(first)[0], np.nonzero(second)[0]])
    month = np.concatenate([st.pay1_month[first], st.pay2_month[second]])
    day = np.concatenate([st.pay1_day[first], st.pay2_day[second]])
    amount = np.concatenate([st.pay1_amount[first], st.pay2_amount[second]])
    keep = amount > 0
    cust, rec, month, day, amount = (a[keep] for a in (cust, rec, month, day, amount))
    on_account = (rng.random((n, months)) < 0.15)[cust, month]
    # merge each on-account customer-month into one payment without a receivable
    key = cust[on_account] * (months + 1) + month[on_account]
    ukey, inv = np.unique(key, return_inverse=True)
    u_day = np.zeros(len(ukey), dtype=np.int64)
    u_day[inv] = day[on_account]  # one pay day per customer-month
    cust = np.concatenate([cust[~on_account], ukey // (months + 1)])
    rec = np.concatenate([rec[~on_account], np.full(len(ukey), -1)])
    day = np.concatenate([day[~on_account], u_day])
    amount = np.concatenate([amount[~on_account], np.bincount(inv, amount[on_account])])
    order = np.lexsort((cust, day))
    cust, rec, day, amount = (a[order] for a in (cust, rec, day, amount))
    linked = rec >= 0
    return pa.table(
        {
            "payment_id": num.ids("PY", len(cust), 9),
            "customer_id": customer_id.take(pa.array(cust)),
            "receivable_id": receivable_id.take(pa.array(np.where(linked, rec, 0), mask=~linked)),
            "paid_at": _dates(day),
            "amount": pa.array(amount, pa.float64()),
            "method": _take(
                np.array(PAYMENT_METHODS), _payment_method(num.block * _ID_STRIDE + rec, linked)
            ),
        }
    )


#: the sample's payment methods; payments on account arrive by transfer
PAYMENT_METHODS = ("transfer", "card", "cash")
#: the sample's agents (codes) and queues of actions
AGENTS = tuple(f"AG{i:02d}" for i in range(1, 13))
QUEUES = {"call": "phone", "whatsapp": "phone", "sms": "digital", "email": "digital",
          "letter": "mail"}  # fmt: skip


def _payment_method(rec: np.ndarray, linked: np.ndarray) -> np.ndarray:
    """Index into PAYMENT_METHODS: a fixed mix per receivable (50 % transfer, 30 % card,
    20 % cash), transfer on account; a function of the ids so the draws stay unchanged."""
    mix = (rec * 7919) % 10
    return np.where(~linked, 0, np.select([mix < 5, mix < 8], [0, 1], 2))


def _adjustments_table(
    rc, st: _Settlement, grid: _Grid, customer_id, receivable_id, num: _Numbering
) -> pa.Table:
    parts = []
    for kind, amount, day in (
        ("credit_note", rc.credit_note, np.minimum(rc.issued + 1, grid.end[-1])),
        ("discount", st.discount, st.discount_day),
        ("write_off", st.writeoff_amount, st.writeoff_day),
    ):
        sel = np.nonzero(amount > 0)[0]
        kind_ix = np.full(len(sel), schema.ADJUSTMENT_KINDS.index(kind))
        parts.append((kind_ix, sel, day[sel], amount[sel]))
    kind_ix, rec, day, amount = (np.concatenate([p[i] for p in parts]) for i in range(4))
    order = np.lexsort((rec, day))
    kind_ix, rec, day, amount = (a[order] for a in (kind_ix, rec, day, amount))
    return pa.table(
        {
            "adjustment_id": num.ids("AJ", len(rec), 8, _ADJUSTMENT_STRIDE),
            "receivable_id": receivable_id.take(pa.array(rec)),
            "customer_id": customer_id.take(pa.array(rc.cust[rec])),
            "at": _dates(day),
            "kind": _take(np.array(schema.ADJUSTMENT_KINDS), kind_ix),
            "amount": pa.array(amount, pa.float64()),
        }
    )


def _contacts_table(ct: _Contacts, customer_id, num: _Numbering) -> pa.Table:
    channel = np.array(schema.CHANNELS)[ct.channel]
    return pa.table(
        {
            "contact_id": num.ids("CT", len(ct.cust), 9),
            "customer_id": customer_id.take(pa.array(ct.cust)),
            "at": _dates(ct.day),
            "channel": _take(np.array(schema.CHANNELS), ct.channel),
            "outcome": _take(np.array(schema.OUTCOMES), ct.outcome),
            "promise_amount": pa.array(ct.promise_amount, pa.float64(), mask=~ct.promise),
            "promise_due": _dates(ct.promise_due, ct.promise),
            "cost": pa.array(ct.cost, pa.float64()),
            # calls and WhatsApp are worked by an agent, each customer by the same one
            "agent": pa.array(
                np.array(AGENTS)[(num.customer_ix(ct.cust) * 7) % len(AGENTS)],
                mask=~np.isin(channel, ["call", "whatsapp"]),
            ),
            "queue": _take(np.array([QUEUES[c] for c in schema.CHANNELS]), ct.channel),
        }
    )


def _scores_table(score, scored, grid: _Grid, customer_id) -> pa.Table:
    c, m = np.nonzero(scored)
    return pa.table(
        {
            "customer_id": customer_id.take(pa.array(c)),
            "scored_at": _dates(grid.end[m]),
            "score": pa.array(score[c, m], pa.float64()),
            "source": pa.array(np.full(len(c), SCORE_SOURCE)),
        }
    )


def _assignments_table(experiments: list[_Experiment], grid: _Grid, customer_id) -> pa.Table:
    parts = []
    for e in experiments:
        parts.append(
            pa.table(
                {
                    "experiment_id": pa.array(np.full(len(e.ids), e.experiment_id)),
                    "customer_id": customer_id.take(pa.array(e.ids)),
                    "arm": pc.if_else(pa.array(e.challenger), "challenger", "champion"),
                    "segment": _take(np.array(e.labels), e.segment),
                    "assigned_at": _dates(np.full(len(e.ids), grid.start[e.month])),
                }
            )
        )
    return pa.concat_tables(parts)


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
