"""The Python API for apps written in Python: a small façade over the ledger and the gate.

    from yinsi.client import Yinsi, ProcessingRefused

    yinsi = Yinsi()                                   # Yinsi's configured database
    yinsi.consent("weiliaoke", "u1", "policy")        # the person accepted the policy
    d = yinsi.check("weiliaoke", "u1", "collect", feature="customer_chat", items=["location.precise"])
    if not d.allowed:
        print(d.explain())

    @yinsi.guard("weiliaoke", "collect", feature="customer_chat", items=["location.precise"])
    def share_location(subject: str, lat: float, lng: float) -> None: ...
    # raises ProcessingRefused (with the decision) when the gate says no
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Iterable
from typing import Any, ParamSpec, TypeVar

from yinsi.domain.consent import ConsentEvent, EventType, PermissionEvent, PermissionEventType
from yinsi.domain.gate import Decision
from yinsi.domain.taxonomy import Action
from yinsi.services.consent import ConsentService

P = ParamSpec("P")
R = TypeVar("R")


class ProcessingRefused(PermissionError):
    """The gate refused a processing; ``decision`` says what is missing and why."""

    def __init__(self, decision: Decision) -> None:
        self.decision = decision
        super().__init__(decision.explain())


class Yinsi:
    """Consent, permissions and the gate for one Yinsi database."""

    def __init__(self, url: str | None = None, **kwargs: Any) -> None:
        self.service = ConsentService(url, **kwargs)

    def close(self) -> None:
        self.service.close()

    def __enter__(self) -> Yinsi:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def consent(self, tenant: str, subject: str, scope: str, event: EventType | str = EventType.GIVEN,
                **kwargs: Any) -> ConsentEvent:
        """Record a consent event (see ``ConsentService.make_event`` for the options)."""
        return self.service.record_consent(tenant, subject, scope, event, **kwargs)

    def withdraw(self, tenant: str, subject: str, scope: str, **kwargs: Any) -> ConsentEvent:
        return self.service.record_consent(tenant, subject, scope, EventType.WITHDRAWN, **kwargs)

    def permission(self, tenant: str, subject: str, device: str, permission: str,
                   event: PermissionEventType | str, **kwargs: Any) -> PermissionEvent:
        return self.service.record_permission(tenant, subject, device, permission, event, **kwargs)

    def check(self, tenant: str, subject: str, action: Action | str, **kwargs: Any) -> Decision:
        """Ask the gate; the decision is appended to the processing record."""
        return self.service.check(tenant, subject, action, **kwargs)

    def require(self, tenant: str, subject: str, action: Action | str, **kwargs: Any) -> Decision:
        """Like ``check``, but raise ProcessingRefused when refused."""
        d = self.check(tenant, subject, action, **kwargs)
        if not d.allowed:
            raise ProcessingRefused(d)
        return d

    def report(self, tenant: str, subject: str) -> dict[str, Any]:
        """The person's 双清单 from the processing records."""
        return self.service.report(tenant, subject)

    def guard(self, tenant: str, action: Action | str, *, feature: str | None = None, purpose: str | None = None,
              items: Iterable[str] = (), recipient: str | None = None, subject_arg: str = "subject",
              device_arg: str | None = None) -> Callable[[Callable[P, R]], Callable[P, R]]:
        """Decorate a function that processes PI: the gate is asked before every call, with the subject
        taken from the argument named ``subject_arg``; a refusal raises ProcessingRefused."""
        item_list = tuple(items)

        def wrap(fn: Callable[P, R]) -> Callable[P, R]:
            sig = inspect.signature(fn)
            if subject_arg not in sig.parameters:
                raise TypeError(f"{fn.__name__} has no argument {subject_arg!r} to take the subject from")

            @functools.wraps(fn)
            def inner(*args: P.args, **kwargs: P.kwargs) -> R:
                bound = sig.bind(*args, **kwargs)
                subject = str(bound.arguments[subject_arg])
                device = str(bound.arguments[device_arg]) if device_arg and device_arg in bound.arguments else None
                self.require(tenant, subject, action, feature=feature, purpose=purpose, items=item_list,
                             recipient=recipient, device=device, actor=fn.__qualname__)
                return fn(*args, **kwargs)

            return inner

        return wrap
