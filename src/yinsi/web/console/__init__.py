"""The staff console (工作人员控制台) at ``/console/``: server-rendered pages over the staff use cases.

Routes parse the form, authenticate the member of staff from the console's session cookie, check the role
for the page or action with the same check as ``/api/v1/staff/`` (:func:`yinsi.api.deps.check_staff`), and
call the use cases of :mod:`yinsi.staff.actions` and :mod:`yinsi.services.staff_desk`, which check the
account's roles again as they are now and audit refusals. No rule lives here or in the templates.
"""

from __future__ import annotations

from yinsi.web.console.pages import router

__all__ = ["router"]
