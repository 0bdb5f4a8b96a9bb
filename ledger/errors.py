"""The one error tree of the service, mapped to HTTP in one place by the HTTP layer above."""

from __future__ import annotations


class CivicError(Exception):
    """Base of every error the service reports to a caller; carries its HTTP status."""

    status_code = 400

    def __init__(self, message: str, status_code: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        if status_code is not None:
            self.status_code = status_code


class NotFound(CivicError):
    status_code = 404


class RecordNotFound(NotFound):
    pass


class BatchNotFound(NotFound):
    pass


class SuggestionNotFound(NotFound):
    pass


class InvalidInput(CivicError):
    status_code = 422


class PayloadTooLarge(CivicError):
    status_code = 413


class Conflict(CivicError):
    status_code = 409


class ServiceUnavailable(CivicError):
    status_code = 503
