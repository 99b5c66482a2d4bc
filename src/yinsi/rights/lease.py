"""One run of a request at a time (执行租约): a run claims its request as ``host:pid`` until ``LEASE`` from now,
renewed with every layer of steps; a second run is refused while the first is alive. A run that died leaves
a claim another run takes over at once on the same host (the process is gone) and after ``LEASE`` from
another host. The owner and liveness checks are the jobs module's (``yinsi.jobs.lease``); a queued run is the
job ``rights.run`` (``yinsi.jobs.builtin``)."""

from __future__ import annotations

from datetime import datetime, timedelta

from yinsi.domain.rights import State
from yinsi.jobs.lease import alive, process_owner
from yinsi.rights.context import RequestError
from yinsi.storage.rights_tables import RightsRequest

#: How long a run's claim on a request holds without being renewed (each layer of steps renews it).
LEASE = timedelta(minutes=5)


def lease_owner() -> str:
    """This process, as ``host:pid`` (the jobs module's process lease owner)."""
    return process_owner()


def claim(row: RightsRequest, state: State, now: datetime) -> None:
    """Take the request for this process, or refuse while another live run holds it: two runs of one
    request at once would race on its steps. A claim ends with the run; a run that died leaves one
    that expires after ``LEASE`` (at once on the same host, where the process can be seen gone)."""
    owner = row.lease_owner
    if state is State.IN_PROGRESS and owner and owner != lease_owner() and row.lease_until and row.lease_until > now \
            and alive(owner):
        raise RequestError(f"该请求正在由另一进程（{owner}）执行，请稍后再查看进度（yinsi request show）")
    row.lease_owner, row.lease_until = lease_owner(), now + LEASE
