"""Why the verifier could not reach a verdict.

A verdict (``valid``, ``altered``, ``malformed``, …) is an answer, not an error. The classes
under ``VerificationError`` mean there is no answer yet: the receipt could not be read, the
chain endpoint did not respond usefully, or the service (a trail, a tally's records) or the
store (the audit) did not hand over what is checked. The CLI catches ``VerificationError`` once.
"""

from __future__ import annotations


class VerificationError(Exception):
    """Root of the verifier's errors: no verdict could be reached."""


class ReceiptUnreadable(VerificationError):
    """The receipt file or stream could not be read at all (missing, no permission, …)."""


class ChainError(VerificationError):
    """The chain endpoint answered, but not with something a verdict can rest on."""


class ChainUnreachable(ChainError):
    """The chain endpoint could not be reached: connection refused, timeout, bad URL."""


class ContractMismatch(VerificationError):
    """The contract at the receipt's address does not answer like an AnchorRegistry.

    ``verify_receipt`` turns this into the ``wrong_chain`` verdict; it only escapes from a
    ChainReader used on its own.
    """


class ReceiptMalformed(ValueError):
    """The receipt text is not strict JSON (``receipt_from_json``).

    Deliberately not a VerificationError: it is the ``malformed`` verdict of PROTOCOL §5
    step 1, which ``verify_receipt_json`` reports as such.
    """


class TrailUnavailable(VerificationError):
    """The service did not hand over a trail: unreachable, an HTTP error, or not a trail."""


class UnknownTrackingCode(TrailUnavailable):
    """The service knows no suggestion with this tracking code (HTTP 404)."""


class TallyUnavailable(VerificationError):
    """The service did not hand over what a tally check needs: unreachable, an HTTP error, an
    answer that is not JSON, or a simulation that has no tally yet."""


class UnknownSimulation(TallyUnavailable):
    """The service knows no simulation with this id (HTTP 404)."""


class AuditUnavailable(VerificationError):
    """The store could not be opened or read: no audit was made."""


class BatchUnavailable(VerificationError):
    """The service did not hand over a batch export: unreachable, an HTTP error, not JSON."""


class UnknownBatch(BatchUnavailable):
    """The service knows no such batch (HTTP 404)."""


class UsageError(VerificationError):
    """Options that do not make sense together, or a key given in the wrong form."""
