"""What withdrawing consent changes (撤回同意的效果), derived from the declaration's legal bases.

A withdrawal stops the processing that rests on the consent withdrawn, from the moment of withdrawal; what
was done before is not affected (PIPL 15, RULES C6). Processing on another basis of PIPL 13 (a contract, a
statutory duty …) continues: the person must be told which, and on what basis, not left to believe that
everything stops. Withdrawing the policy (撤回隐私政策) withdraws every consent: the gate requires the policy
consent for every consent-based processing, so each function and each provision based on consent stops.

The statement is built from the same declaration elements the gate decides on (a function's
``legal_basis``; a recipient's ``legal_basis`` for provision, transfer and disclosure), never written by hand.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from yinsi.domain.consent import GUARDIAN, POLICY, scope_kind
from yinsi.domain.policy import Declaration
from yinsi.domain.taxonomy import LEGAL_BASIS_ZH, LegalBasis, taxonomy

_PROVISION = ("provide", "transfer", "disclose", "transfer_abroad")
_ACTION_ZH = {"provide": "提供", "transfer": "转让", "disclose": "公开披露", "transfer_abroad": "向境外提供"}


@dataclass(frozen=True, slots=True)
class Effect:
    """One processing and what a withdrawal does to it."""

    what: str  # Chinese: 功能「…」 / 向「…」提供个人信息
    element: str  # the declaration element: features[id], recipients[id]
    basis: LegalBasis

    def to_json(self) -> dict[str, Any]:
        return {"what": self.what, "element": self.element, "basis": self.basis.value,
                "basis_zh": LEGAL_BASIS_ZH[self.basis]}


@dataclass(frozen=True, slots=True)
class WithdrawalEffects:
    """The processing a withdrawal of ``scopes`` stops, and the processing that continues on other bases."""

    scopes: tuple[str, ...]
    stops: tuple[Effect, ...]
    continues: tuple[Effect, ...]
    everything: bool  # the policy (or a guardian's consent) itself was withdrawn

    def statement(self, when: str | None = None) -> str:
        """Plain Chinese for the person: what stops, what continues and on which basis, and what a withdrawal
        is not (a deletion or a cancellation)."""
        at = f"自{when}起" if when else "自撤回时起"
        parts: list[str] = []
        if self.stops:
            parts.append(f"{at}，我们将停止以下基于您同意的处理：" + "；".join(e.what for e in self.stops) + "。")
        else:
            parts.append(f"{at}，该项同意不再作为处理依据。")
        parts.append("撤回前基于您的同意已进行的处理不受影响（PIPL 15，C6）。")
        if not self.everything:
            parts.append("您的其他同意不受影响；拒绝或撤回扩展业务功能不影响基本业务功能的使用（C7）。")
        if self.continues:
            parts.append("以下处理不以您的同意为依据，撤回同意后仍将依法继续："
                         + "；".join(f"{e.what}——{LEGAL_BASIS_ZH[e.basis]}" for e in self.continues) + "。")
        parts.append("撤回同意不等于删除个人信息或注销账号；如需删除，可提出删除请求或申请注销账号（PIPL 47）。")
        return "".join(parts)

    def to_json(self) -> dict[str, Any]:
        return {"scopes": list(self.scopes), "everything": self.everything,
                "stops": [e.to_json() for e in self.stops], "continues": [e.to_json() for e in self.continues]}


def withdrawal_effects(decl: Declaration, scopes: Iterable[str]) -> WithdrawalEffects:
    """The effects of withdrawing ``scopes`` under ``decl``.

    ``policy`` or ``guardian``: every consent-based function and provision stops, every other continues.
    ``feature:<id>``: that function stops if it rests on consent (else it continues on its basis).
    ``item:<feature>:<item>``: processing of that item for that function stops. ``recipient:<id>`` and
    ``cross_border:<id>``: providing to that recipient (abroad) stops if it rests on consent.
    """
    wanted = tuple(dict.fromkeys(scopes))
    tax = taxonomy()
    everything = any(s in (POLICY, GUARDIAN) for s in wanted)
    stops: list[Effect] = []
    continues: list[Effect] = []
    for f in decl.features:
        effect = Effect(f"功能「{f.name}」", f"features[{f.id}]", f.legal_basis)
        hit = everything or f"feature:{f.id}" in wanted
        if hit:
            (stops if f.legal_basis is LegalBasis.CONSENT else continues).append(effect)
        elif everything is False and f.legal_basis is LegalBasis.CONSENT:
            for s in wanted:
                parts = s.split(":")
                if scope_kind(s) == "item" and len(parts) == 3 and parts[1] == f.id:
                    name = tax.item(parts[2]).name if parts[2] in tax.items else parts[2]
                    stops.append(Effect(f"功能「{f.name}」处理「{name}」", f"features[{f.id}].collections[{parts[2]}]",
                                        f.legal_basis))
    for r in decl.recipients:
        if r.action not in _PROVISION:
            continue
        hit = everything or any(s in (f"recipient:{r.id}", f"cross_border:{r.id}") for s in wanted)
        if not hit:
            continue
        what = f"向「{r.name}」{_ACTION_ZH.get(r.action, '提供')}个人信息"
        if any(s == f"cross_border:{r.id}" for s in wanted) and not everything:
            what = f"向境外的「{r.name}」提供个人信息"
        (stops if r.legal_basis is LegalBasis.CONSENT else continues).append(Effect(what, f"recipients[{r.id}]",
                                                                                    r.legal_basis))
    return WithdrawalEffects(wanted, tuple(stops), tuple(continues), everything)
