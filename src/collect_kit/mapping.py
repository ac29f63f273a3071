"""A first sources YAML for a folder of a team's own files (``collect-kit sources init``).

:func:`propose` reads the headers and a sample of every CSV and Parquet file of a folder
(or every table of a DuckDB file), decides which canonical table each file is (an
account-level extract is recognised by its balance and arrears columns), matches columns
by name — English and common Spanish names, accents and case ignored — and lists the
codes of categorical columns. :func:`render` writes the proposal as a commented YAML:
every match is marked as a guess to check, every unmapped column is listed as a candidate
``extra:`` field with the type its sample suggests, codes without a canonical match are
marked TODO. Nothing is read beyond the sample; nothing is written here (the CLI writes
the text, never over an existing file).
"""

from __future__ import annotations

import os
import re
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from . import engine, schema
from .errors import ConfigError

SAMPLE_ROWS = 2_000
MAX_CODES = 25

#: canonical column -> names it is known by (normalised: lower case, no accents, "_")
SYNONYMS: dict[str, dict[str, tuple[str, ...]]] = {
    "customers": {
        "customer_id": ("customer_id", "id_cliente", "cliente_id", "rut", "rut_cliente", "dni",
                        "nit", "cuit", "rfc", "ruc", "cod_cliente", "codigo_cliente",
                        "client_id", "customer_number", "debtor_id", "id_deudor"),
        "customer_type": ("customer_type", "tipo_cliente", "tipo_persona", "client_type"),
        "company_size": ("company_size", "tamano_empresa", "tamano"),
        "industry": ("industry", "rubro", "giro", "sector", "actividad"),
        "region": ("region", "zona", "provincia", "estado_region"),
        "customer_since": ("customer_since", "cliente_desde", "fecha_alta", "fecha_ingreso",
                           "start_date", "since", "fecha_inicio_relacion"),
        "phone": ("phone", "telefono", "celular", "movil", "fono", "phone_number", "mobile"),
        "email": ("email", "correo", "mail", "e_mail", "correo_electronico"),
        "preferred_channel": ("preferred_channel", "canal_preferido"),
        "open_dispute": ("open_dispute", "reclamo_abierto", "disputa", "en_disputa"),
    },
    "receivables": {
        "receivable_id": ("receivable_id", "invoice_id", "invoice", "invoice_number", "factura",
                          "nro_factura", "num_factura", "documento", "nro_documento",
                          "id_documento", "folio", "cuota_id", "id_cuota"),
        "product": ("product", "producto", "tipo_documento", "document_type"),
        "issued_at": ("issued_at", "fecha_emision", "issue_date", "invoice_date",
                      "fecha_factura", "emision", "fecha_documento"),
        "due_at": ("due_at", "fecha_vencimiento", "due_date", "vencimiento", "fecha_venc"),
        "amount": ("amount", "monto", "importe", "total", "valor", "monto_documento"),
        "currency": ("currency", "moneda", "divisa"),
    },
    "payments": {
        "payment_id": ("payment_id", "id_pago", "pago_id", "nro_pago", "receipt", "recibo",
                       "comprobante"),
        "paid_at": ("paid_at", "fecha_pago", "payment_date", "fecha_abono", "fecha_recaudacion"),
        "amount": ("amount", "monto", "monto_pago", "importe", "abono", "valor", "pago"),
        "method": ("method", "medio_pago", "forma_pago", "payment_method", "medio_de_pago"),
    },
    "contacts": {
        "contact_id": ("contact_id", "id_gestion", "gestion_id", "action_id", "id_accion"),
        "at": ("at", "fecha_gestion", "contact_date", "fecha_contacto", "fecha", "date"),
        "channel": ("channel", "canal", "medio"),
        "outcome": ("outcome", "resultado", "result", "tipificacion"),
        "promise_amount": ("promise_amount", "monto_promesa", "monto_compromiso"),
        "promise_due": ("promise_due", "fecha_promesa", "fecha_compromiso"),
        "cost": ("cost", "costo", "coste"),
        "agent": ("agent", "agente", "ejecutivo", "gestor", "operador"),
        "queue": ("queue", "cola", "campana", "campaign", "cartera_asignada"),
    },
    "extract": {
        "account_id": ("account_id", "cuenta", "nro_cuenta", "operacion", "nro_operacion",
                       "loan_id", "contrato", "credito", "id_credito"),
        "extracted_at": ("extracted_at", "fecha_corte", "fecha_extraccion", "extraction_date",
                         "snapshot_date", "fecha_cierre", "periodo"),
        "balance": ("balance", "saldo", "saldo_capital", "outstanding", "saldo_insoluto",
                    "outstanding_balance"),
        "overdue_amount": ("overdue_amount", "monto_vencido", "vencido", "saldo_vencido",
                           "arrears", "past_due_amount", "monto_moroso"),
        "days_past_due": ("days_past_due", "dias_mora", "dpd", "dias_atraso", "dias_vencido",
                          "mora_dias"),
        "oldest_due_at": ("oldest_due_at", "fecha_vencimiento_mas_antigua", "oldest_due_date",
                          "primer_vencimiento_impago"),
        "status": ("status", "estado", "loan_status", "estado_cuenta", "situacion"),
        "product": ("product", "producto"),
        "issued_at": ("issued_at", "fecha_apertura", "fecha_otorgamiento", "issue_date",
                      "open_date", "fecha_desembolso"),
    },
}  # fmt: skip
SYNONYMS["receivables"]["customer_id"] = SYNONYMS["customers"]["customer_id"]
SYNONYMS["payments"]["customer_id"] = SYNONYMS["customers"]["customer_id"]
SYNONYMS["payments"]["receivable_id"] = SYNONYMS["receivables"]["receivable_id"]
SYNONYMS["contacts"]["customer_id"] = SYNONYMS["customers"]["customer_id"]
SYNONYMS["extract"]["customer_id"] = SYNONYMS["customers"]["customer_id"]

#: columns that hint at a balance the source reports per receivable (a candidate
#: ``reported_balance``, proposed commented)
REPORTED_BALANCE = ("saldo", "balance", "saldo_pendiente", "outstanding", "saldo_documento")

#: file-name hints per table (normalised words)
FILE_HINTS = {
    "customers": ("clientes", "customers", "deudores", "clients", "debtors"),
    "receivables": ("documentos", "facturas", "invoices", "receivables", "cuotas", "deuda"),
    "payments": ("pagos", "payments", "recaudacion", "abonos", "cobros"),
    "contacts": ("gestiones", "contacts", "contactos", "acciones", "actions", "llamadas"),
    "extract": ("cartera", "extract", "portfolio", "loans", "creditos", "stock"),
}

#: codes users write -> canonical code, per categorical column (normalised)
CODE_SYNONYMS: dict[str, dict[str, str]] = {
    "channel": {"llamada": "call", "telefono": "call", "phone": "call", "correo": "email",
                "mail": "email", "e_mail": "email", "carta": "letter", "mensaje": "sms",
                "texto": "sms", "wsp": "whatsapp", "wa": "whatsapp"},
    "outcome": {"sin_respuesta": "no_answer", "no_contesta": "no_answer", "entregado": "delivered",
                "contactado": "contacted", "tercero": "contacted", "titular": "right_party",
                "contacto_titular": "right_party", "promesa": "promise",
                "compromiso": "promise", "compromiso_pago": "promise", "rechazo": "refused",
                "se_niega": "refused", "negativa": "refused"},
    "customer_type": {"persona": "person", "natural": "person", "persona_natural": "person",
                      "empresa": "company", "juridica": "company", "persona_juridica": "company"},
    "status": {"vigente": "current", "al_dia": "current", "moroso": "delinquent",
               "en_mora": "delinquent", "vencido": "delinquent", "pagado": "paid_off",
               "cancelado": "paid_off", "castigado": "written_off", "castigo": "written_off",
               "charged_off": "written_off"},
}  # fmt: skip


def normalise(name: str) -> str:
    """Lower case, accents removed, runs of other characters as one ``_``."""
    text = unicodedata.normalize("NFKD", str(name)).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")


@dataclass
class TableProposal:
    """What :func:`propose` makes of one file or database table."""

    table: str  # canonical table
    source: str  # file name, or the database table's name
    columns: dict[str, str]  # canonical -> the source's column
    missing: list[str]  # required canonical columns not found
    unmapped: dict[str, str]  # source column -> suggested type
    codes: dict[str, dict[str, str | None]] = field(
        default_factory=dict
    )  # canonical -> value -> code
    reported_balance: str | None = None


@dataclass
class Proposal:
    folder: Path
    database: str | None
    tables: list[TableProposal]
    skipped: list[str]  # files that matched no table, or a table already taken


def _columns_of(table: str) -> dict[str, tuple[str, ...]]:
    return SYNONYMS[table]


def _match(columns: list[str], table: str) -> dict[str, str]:
    """canonical -> source column, each source column used once (first synonym wins)."""
    by_norm = {normalise(c): c for c in columns}
    found: dict[str, str] = {}
    used: set[str] = set()
    for canon, names in _columns_of(table).items():
        for n in names:
            if n in by_norm and by_norm[n] not in used:
                found[canon] = by_norm[n]
                used.add(by_norm[n])
                break
    return found


def _score(columns: list[str], table: str, name: str) -> float:
    """How well a file fits a table: required columns found count 2, others 1; a file
    name hint 1.5; an extract needs a balance and arrears (days past due, overdue amount
    or status)."""
    found = _match(columns, table)
    spec = schema.TABLES[table]
    score = sum(2.0 if spec.column(c).required else 1.0 for c in found)
    if any(h in normalise(name) for h in FILE_HINTS[table]):
        score += 1.5
    if table == "extract" and not (
        "balance" in found and {"days_past_due", "overdue_amount", "status"} & set(found)
    ):
        return 0.0
    if table != "extract" and table != "customers":
        dated = {"receivables": "issued_at", "payments": "paid_at", "contacts": "channel"}[table]
        if dated not in found:
            return 0.0
    return score


def _suggest_type(values: pd.Series) -> str:
    """The canonical type a sample of text values suggests."""
    v = values.dropna().astype(str).str.strip()
    v = v[v != ""]
    if v.empty:
        return "string"
    if v.str.lower().isin(["true", "false", "yes", "no", "si", "sí", "0", "1"]).all() and \
            not v.str.fullmatch(r"[01]").all():  # fmt: skip
        return "bool"
    if v.str.fullmatch(r"-?\d+").all():
        return "int"
    if v.str.fullmatch(r"-?\d+(\.\d+)?([eE][-+]?\d+)?").all():
        return "float"
    if v.str.fullmatch(r"\d{4}-\d{2}-\d{2}").all():
        return "date"
    return "string"


def _codes(values: pd.Series, canon: str, allowed: tuple[str, ...]) -> dict[str, str | None]:
    """Each distinct sampled value (at most MAX_CODES) -> its canonical code or None."""
    out: dict[str, str | None] = {}
    for value in sorted(values.dropna().astype(str).unique())[:MAX_CODES]:
        n = normalise(value)
        out[value] = n if n in allowed else CODE_SYNONYMS.get(canon, {}).get(n)
    return out


def _sources(folder: Path) -> tuple[str | None, list[tuple[str, object]]]:
    """(database file name or None, [(source name, reader)]) of a folder or DuckDB file."""
    if folder.is_file() and folder.suffix.lower() == ".duckdb":
        con = engine.connect("duckdb", folder)
        return folder.name, [(n, (con, n)) for n in sorted(con.list_tables())]
    if not folder.is_dir():
        raise ConfigError(f"DATA_FOLDER: '{folder}' is neither a folder nor a DuckDB file")
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in (".csv", ".parquet"))
    if not files:
        raise ConfigError(f"DATA_FOLDER: '{folder}' holds no .csv or .parquet file")
    return None, [(p.name, p) for p in files]


def _sample(reader) -> pd.DataFrame:
    """The first SAMPLE_ROWS rows as text (CSV) or as stored (Parquet, DuckDB)."""
    if isinstance(reader, tuple):
        con, name = reader
        return con.table(name).limit(SAMPLE_ROWS).to_pandas()
    con = engine.session()
    fmt = reader.suffix.lower().lstrip(".")
    with engine.reading(reader, "data file"):
        t = engine.read_file(con, reader, fmt) if fmt == "parquet" else con.read_csv(
            str(reader), all_varchar=True, header=True
        )  # fmt: skip
        return t.limit(SAMPLE_ROWS).to_pandas()


def propose(folder: str | os.PathLike) -> Proposal:
    """Read the files of ``folder`` (or a DuckDB file's tables) and propose a mapping."""
    folder = Path(folder)
    database, items = _sources(folder)
    samples = {name: _sample(reader) for name, reader in items}
    # best table per file, strongest first; each canonical table taken once
    scored = sorted(
        ((max(schema.TABLES.keys() & SYNONYMS.keys(), key=lambda t: _score(list(f.columns), t, n)), n)
         for n, f in samples.items()),
        key=lambda tn: -_score(list(samples[tn[1]].columns), tn[0], tn[1]),
    )  # fmt: skip
    taken: set[str] = set()
    tables, skipped = [], []
    for table, name in scored:
        frame = samples[name]
        if _score(list(frame.columns), table, name) <= 0 or table in taken:
            skipped.append(name)
            continue
        taken.add(table)
        tables.append(_table_proposal(table, name, frame))
    order = list(schema.TABLES)
    tables.sort(key=lambda p: order.index(p.table))
    return Proposal(folder, database, tables, skipped)


def _table_proposal(table: str, name: str, frame: pd.DataFrame) -> TableProposal:
    spec = schema.TABLES[table]
    found = _match(list(frame.columns), table)
    reported = None
    if table == "receivables":
        reported = next(
            (c for c in frame.columns if normalise(c) in REPORTED_BALANCE and c not in found.values()),
            None,
        )  # fmt: skip
    missing = [c.name for c in spec.columns if c.required and c.name not in found]
    if table == "extract":  # derived when absent
        missing = [c for c in missing if c not in ("customer_id", "extracted_at")]
    used = set(found.values()) | ({reported} if reported else set())
    unmapped = {c: _suggest_type(frame[c]) for c in frame.columns if c not in used}
    codes = {
        canon: _codes(frame[col], canon, spec.column(canon).categories)
        for canon, col in found.items()
        if spec.column(canon).categories
    }
    return TableProposal(table, name, found, missing, unmapped, codes, reported)


def _quote(value: str) -> str:
    """A YAML scalar for ``value`` (quoted when YAML would read it as something else)."""
    import yaml

    text = yaml.safe_dump(value, default_style=None).strip()
    return text.removesuffix("...").strip()


def render(proposal: Proposal) -> str:
    """The proposal as a commented sources YAML."""
    q = _quote
    lines = [
        f"# Proposed by `collect-kit sources init` from {proposal.folder.name}.",
        "# Every mapping below was matched by column name only (GUESS): check each one, fill",
        "# the TODOs, then run `collect-kit validate --sources <this file>`.",
        "version: 1",
        f"portfolio: {q(proposal.folder.stem)}   # GUESS: the folder's name",
        "currency: XXX   # TODO: the portfolio's ISO 4217 currency, e.g. CLP, MXN, EUR",
        "# extraction_date: YYYY-MM-DD   # optional; default: the newest date in the data",
    ]
    if proposal.database:
        lines.append(f"database: {q(proposal.database)}")
    lines.append("tables:")
    for t in proposal.tables:
        lines.append(f"  {t.table}:")
        where = "table" if proposal.database else "path"
        lines.append(f"    {where}: {q(t.source)}")
        renamed = {c: s for c, s in t.columns.items() if c != s}
        same = [c for c, s in t.columns.items() if c == s]
        if renamed or t.reported_balance:
            lines.append("    columns:   # canonical: yours")
            for canon, src in renamed.items():
                lines.append(f"      {canon}: {q(src)}   # GUESS")
            if t.reported_balance:
                lines.append(
                    f"      # reported_balance: {q(t.reported_balance)}   # candidate: the balance "
                    "your system reports; uncomment to have validation compare it"
                )
        if same:
            lines.append(f"    # found with their canonical names: {', '.join(same)}")
        for canon in t.missing:
            lines.append(f"    # TODO: no column found for the required {canon}")
        coded = {
            c: v for c, v in t.codes.items() if any(code != value for value, code in v.items())
        }
        if coded:
            lines.append("    values:   # your code: canonical code")
            for canon, mapping in coded.items():
                allowed = ", ".join(schema.TABLES[t.table].column(canon).categories)
                lines.append(f"      {canon}:   # one of {allowed}")
                for value, code in mapping.items():
                    if code is None:
                        lines.append(f"        {q(value)}: TODO")
                    elif code != value:
                        lines.append(f"        {q(value)}: {code}   # GUESS")
        if t.unmapped:
            rollup = "" if t.table == "customers" else ", rollup: first"
            lines.append("    # unmapped columns: to carry one, uncomment it (types from a sample;")
            lines.append("    # personal data such as names and phones: add personal: true)")
            lines.append("    # extra:")
            for col, kind in t.unmapped.items():
                lines.append(f"    #   {q(col)}: {{type: {kind}{rollup}}}")
    for name in proposal.skipped:
        lines.append(f"# skipped {name}: it matched no canonical table (or one already taken)")
    return "\n".join(lines) + "\n"
