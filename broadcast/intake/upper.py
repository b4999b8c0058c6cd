"""Upper-platform EBMs (上级平台消息) at the intake: the same refusal path as CAP and JSON.

An EBM from the city, province or national platform is already a draft (the interconnect decoded and
verified it); what is particular to it is checked here before the common path: a Cancel is not a new
broadcast (it names what it cancels through RelatedInfo, handled as a stop). Everything else —
expiry, areas, terminals, dedupe, the policy — is the intake's and the desk's, as for any source.
"""

from __future__ import annotations

from broadcast.intake.intake import Accepted, Intake, RefusalKind, Refused
from broadcast.model import MessageDraft, MsgType
from broadcast.policy.types import Origin


async def submit_upper(intake: Intake, draft: MessageDraft) -> Accepted:
    """Take an upper platform's draft; raises Refused like any other intake."""
    source = draft.source
    if draft.msg_type is MsgType.CANCEL:
        raise Refused(
            RefusalKind.NOT_BROADCASTABLE,
            f"取消消息（来源 {source.identifier}）不能作为新播发提交，请在 RelatedInfo 中引用要取消的 EBMID",
        )
    return await intake.submit_draft(draft, origin=Origin.of(draft), actor=f"upper:{source.sender}")
