"""Login for the facility: who may sign in, as which VO member, and why not.

- :class:`IAMAuthenticator` signs users in with the experiment's IAM (OIDC),
  reads their VO groups from the token claims and admits them by VO.
- :func:`admit_by_vo` is the VO rule; the demo login uses it too.
- :class:`LoginDenied` is a refusal whose page says why and what to do.
"""

from .bearer import BEARER_TOKEN_SCOPE, CUSTOM_SCOPES, bearer_token_roles
from .claims import groups_from_claims, normalize_group
from .denial import LoginDenied
from .iam import IAMAuthenticator
from .id_token import IDTokenInvalid, verify_id_token
from .provider import IdPUnreachable, OIDCProvider
from .vo import VOAdmission, admit_by_vo, vo_of, vos_of

__all__ = [
    "BEARER_TOKEN_SCOPE",
    "CUSTOM_SCOPES",
    "IAMAuthenticator",
    "IDTokenInvalid",
    "IdPUnreachable",
    "LoginDenied",
    "OIDCProvider",
    "VOAdmission",
    "admit_by_vo",
    "bearer_token_roles",
    "groups_from_claims",
    "normalize_group",
    "verify_id_token",
    "vo_of",
    "vos_of",
]
