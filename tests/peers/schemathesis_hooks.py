"""Schemathesis hooks for faults::schemathesis_finds_no_request_the_document_and_the_server_disagree_on
(loaded through SCHEMATHESIS_HOOKS): what the OpenAPI document says in words because a JSON
Schema cannot state it.

- PUT /admin/v1/callers/{identity}/link refuses linking an identity to itself (400
  invalid_link): the schema of `to` cannot refer to the path's identity, so a generated `to`
  equal to it (the Identity schema's examples are used for both) is replaced by another
  identity before the call. The path's value is percent-encoded by then; the comparison
  lower-cases, as e-mail identities are matched so.
"""

from urllib.parse import unquote

import schemathesis

OTHERS = ("phone:13800000000", "phone:13900000000")


@schemathesis.hook
def before_call(context, case, **kwargs):
    if not case.operation.path.endswith("/link") or not isinstance(case.body, dict):
        return
    to = case.body.get("to")
    identity = (case.path_parameters or {}).get("identity")
    if isinstance(to, str) and isinstance(identity, str) and to.lower() == unquote(identity).lower():
        case.body["to"] = OTHERS[1] if unquote(identity) == OTHERS[0] else OTHERS[0]
