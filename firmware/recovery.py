"""What the terminal does with its journal at start, after a crash or a power cut.

- A payment left "awaiting_reply" may have reached the host: its outcome is unknown, so a
  reversal is queued (the host drops the charge if it made one).
- A payment left "started" or "card_read" never sent anything: it ends as "error".
- An offline approval not yet advised gets its advice queued.
- A partially approved purchase whose rest was never paid (stopped while asking for it) has
  every part voided: a void queued for each, so that nothing stays charged.
- A UPI payment left "upi_pending" (firmware.upi.tender) is asked about at the PSP and ends as
  the PSP says: approved only on its SUCCESS, declined on FAILURE or EXPIRED; a request still
  pending is withdrawn first (a payer who paid meanwhile is still approved); one the PSP never
  got ends as "error" (not charged). A UPI refund left pending is asked again (the PSP answers
  a repeated refund as the first). While the PSP cannot be reached it stays "upi_pending",
  never shown approved, and the next start asks again.
- A settlement run left "started" or "sent" is reported; the next settlement
  (`firmware.host.settlement.settle_day`, `pitap settle`) resumes it with the same batch number.

`open_journal_at_start(cfg)` is the one way a command opens the journal to write it (`pitap
pay`, `refund`, `run`, `settle`, the demo): it checks that config and secrets are private, opens
the journal, claims it for this process (one writer at a time: a payment another process is
still waiting on is not interrupted) and runs recovery. Recovery only writes the journal;
draining the queues is store-and-forward's job (firmware.host.saf). It touches no network but
the UPI PSP's, and that only for a UPI request left pending (`recover_upi`).
`pitap journal` only reads, and shows the journal as it is, without recovery.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from firmware.config import Config
from firmware.journal import Journal, JournalError
from firmware.payment import PaymentState, QueueKind, TxnType
from firmware.private_files import check_private_files, no_core_dumps
from firmware.upi.outcome import record_answer, settle_refund
from firmware.upi.psp import Psp, PspError, UnknownRequest

log = logging.getLogger(__name__)


@dataclass
class RecoveryReport:
    """What recovery found and did; all lists hold payment ids unless said otherwise."""

    reversals_queued: list[int] = field(default_factory=list)
    advices_queued: list[int] = field(default_factory=list)
    partials_voided: list[int] = field(default_factory=list)  # parts of unfinished purchases
    interrupted: list[int] = field(default_factory=list)  # ended as "error": nothing was sent
    settlements_to_resume: list[int] = field(default_factory=list)  # settlement ids
    upi_settled: list[int] = field(default_factory=list)  # pending UPI ended as the PSP said
    upi_pending: list[int] = field(default_factory=list)  # pending UPI the PSP did not answer
    problems: list[str] = field(default_factory=list)

    @property
    def anything(self) -> bool:
        return bool(
            self.reversals_queued
            or self.advices_queued
            or self.partials_voided
            or self.interrupted
            or self.settlements_to_resume
            or self.upi_settled
            or self.upi_pending
            or self.problems
        )

    def summary(self) -> str:
        return (
            f"recovery: {len(self.reversals_queued)} reversal(s) queued, "
            f"{len(self.advices_queued)} advice(s) queued, "
            f"{len(self.partials_voided)} part(s) of unfinished purchases voided, "
            f"{len(self.interrupted)} interrupted payment(s) closed, "
            f"{len(self.settlements_to_resume)} settlement(s) to resume"
            + (f", {len(self.upi_settled)} pending UPI payment(s) ended as the PSP said"
               if self.upi_settled else "")
            + (f", {len(self.upi_pending)} UPI payment(s) still pending (PSP not answering)"
               if self.upi_pending else "")
            + (f", {len(self.problems)} problem(s)" if self.problems else "")
        )


def open_journal_at_start(cfg: Config) -> tuple[Journal, RecoveryReport]:
    """What the terminal runs at start: no core dumps, the private-files check, then the journal
    (integrity check, migrations), claimed for this process, then recovery. Raises ConfigError /
    JournalError (one line); JournalBusy while another pitap process has the journal."""
    no_core_dumps()
    check_private_files(cfg)
    journal = Journal.from_config(cfg)
    try:
        journal.claim()
        report = recover(journal)
        if journal.payments_in_state(PaymentState.UPI_PENDING):
            from firmware.upi.config import upi_settings
            from firmware.upi.psp import connect_psp

            psp = connect_psp(upi_settings(cfg), cfg.source)
            try:
                recover_upi(journal, psp, report)
            finally:
                psp.close()
    except BaseException:
        journal.close()
        raise
    return journal, report


def recover(journal: Journal) -> RecoveryReport:
    """Bring every payment the journal left half-way to a state store-and-forward can finish.

    Safe to run any number of times: a second run finds nothing more to do."""
    report = RecoveryReport()
    for p in journal.payments_in_state(PaymentState.AWAITING_REPLY, PaymentState.REVERSAL_QUEUED):
        pid = p.id
        try:
            journal.enqueue(QueueKind.REVERSAL, pid)  # returns the pending one if already queued
        except JournalError as exc:
            # Only when no STAN was ever recorded, i.e. no request can have left.
            msg = f"payment {pid}: outcome unknown and cannot be reversed ({exc})"
            log.error(msg)
            report.problems.append(msg)
            journal.record(pid, PaymentState.ERROR,
                           reason="outcome unknown after restart; not reversible")
            continue
        if p.outcome is None:
            journal.record(pid, PaymentState.ERROR,
                           reason="interrupted while waiting for the host; reversing")
        if p.state is PaymentState.AWAITING_REPLY:
            report.reversals_queued.append(pid)

    for p in journal.payments_in_state(PaymentState.STARTED, PaymentState.CARD_READ):
        journal.record(p.id, PaymentState.ERROR, reason="interrupted before anything was sent")
        report.interrupted.append(p.id)

    queued_advices = {q.payment_id for q in journal.queue(QueueKind.ADVICE)}
    for p in journal.payments_in_state(PaymentState.APPROVED, PaymentState.ADVICE_QUEUED):
        pid = p.id
        if not p.offline or pid in queued_advices:
            continue
        try:
            journal.enqueue(QueueKind.ADVICE, pid)
        except JournalError as exc:
            msg = f"payment {pid}: offline approval cannot be advised ({exc})"
            log.error(msg)
            report.problems.append(msg)
            continue
        report.advices_queued.append(pid)

    for first, parts in journal.unfinished_partials():
        for part in (first, *parts):
            if part.state in (PaymentState.APPROVED, PaymentState.ADVISED):
                journal.enqueue(QueueKind.VOID, part.id)
                report.partials_voided.append(part.id)
            elif journal.drop_advice(part.id, "part of an unfinished purchase; never advised"):
                report.partials_voided.append(part.id)

    report.settlements_to_resume = [s.id for s in journal.unfinished_settlements()]
    if report.anything:
        log.warning(report.summary())
    return report


def recover_upi(journal: Journal, psp: Psp, report: RecoveryReport | None = None
                ) -> RecoveryReport:
    """End every UPI payment left "upi_pending" as the PSP says (see the module's docstring);
    one the PSP does not answer stays pending (in `upi_pending`). Never approves without the
    PSP's SUCCESS."""
    report = report if report is not None else RecoveryReport()
    for p in journal.payments_in_state(PaymentState.UPI_PENDING):
        try:
            if p.txn_type is TxnType.REFUND:
                if settle_refund(journal, psp, p.id) is None:
                    report.upi_pending.append(p.id)
                else:
                    report.upi_settled.append(p.id)
                continue
            try:
                answer = psp.status(p.upi_reference)
            except UnknownRequest:
                journal.record(p.id, PaymentState.ERROR,
                               reason="UPI: the PSP never got the request; not charged")
                report.upi_settled.append(p.id)
                continue
            if not answer.status.final:
                answer = psp.cancel(p.upi_reference)
        except PspError as exc:
            msg = f"payment {p.id}: UPI request {p.upi_reference} still pending ({exc})"
            log.error(msg)
            report.problems.append(msg)
            report.upi_pending.append(p.id)
            continue
        if answer.status.final:
            record_answer(journal, p.id, answer)
            report.upi_settled.append(p.id)
        else:
            report.upi_pending.append(p.id)
    if report.upi_settled or report.upi_pending:
        log.warning(report.summary())
    return report
