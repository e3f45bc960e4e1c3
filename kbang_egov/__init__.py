"""kbang_egov: score, check and rank districts' e-government self-assessments (Chính quyền điện tử cấp huyện).

The package is grouped by job:

- `reading`: take a returned workbook off the disk safely and read its cells;
- `rules`: the rulebook, scoring, the checks that yield findings, the finding codes, the districts;
- `reporting`: the run's pandas tables, the ranking, the workbook and CSVs, the summary and run log;
- `forms`: the standard template and the sample returns;
- `operations`: the nightly run, worker isolation, the lock, publishing the outputs together;
- `mail`: the email loop: contacts, sending templates and feedback, collecting the returns.

`cli` is a thin click shell over the names below, which are the public API. They are imported on first use
(PEP 562), so `import kbang_egov` stays light for a worker or for `--help`.
"""

from importlib import import_module
from typing import Any

__version__ = "0.1.0"

_PUBLIC = {
    # rules
    "Rulebook": "rules.rulebook", "RulebookError": "rules.rulebook", "load_rulebook": "rules.rulebook",
    "Criterion": "rules.rulebook",
    "CriterionInput": "rules.scoring", "Score": "rules.scoring", "score_criterion": "rules.scoring",
    "check_submission": "rules.checks", "Checked": "rules.checks",
    "Finding": "rules.findings", "REGISTRY": "rules.findings", "make_finding": "rules.findings",
    "District": "rules.districts", "DistrictListError": "rules.districts", "load_districts": "rules.districts",
    "match_district": "rules.districts",
    # reading
    "Submission": "reading.reader", "ReadError": "reading.reader", "read_submission": "reading.reader",
    "screen": "reading.guard",
    # forms
    "write_template": "forms.template", "write_templates": "forms.template", "TemplateError": "forms.template",
    "write_samples": "forms.samples", "SampleError": "forms.samples",
    # reporting
    "rank_districts": "reporting.ranking", "run_tables": "reporting.tables", "write_outputs": "reporting.report_writer",
    "OutputError": "reporting.report_writer",
    "overview": "reporting.tables", "Overview": "reporting.tables",
    "load_baseline": "reporting.baseline", "BaselineError": "reporting.baseline",
    "list_runs": "reporting.history", "district_path": "reporting.history", "HistoryError": "reporting.history",
    "Comparison": "rules.results",
    # operations
    "run_batch": "operations.pipeline", "FolderClash": "operations.pipeline", "NoReturnsFound": "operations.pipeline",
    "LockHeld": "operations.runlock",
    "validate_files": "operations.validate", "write_feedback": "reporting.feedback",
    "content_key": "operations.feedback_pass", "reuse_previous": "operations.feedback_pass",
    # mail
    "Contacts": "mail.contacts", "ContactsError": "mail.contacts", "load_contacts": "mail.contacts",
    "send_templates": "mail.outgoing", "send_feedback": "mail.outgoing", "Outgoing": "mail.smtp",
    "SendError": "mail.smtp",
    "collect_returns": "mail.collect", "maildir_messages": "mail.collect", "imap_messages": "mail.collect",
    "CollectError": "mail.collect", "Ledger": "mail.ledger",
}

__all__ = ["__version__", *_PUBLIC]


def __getattr__(name: str) -> Any:
    """Import a public name's module on first use."""
    if name in _PUBLIC:
        return getattr(import_module(f".{_PUBLIC[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
