"""Login for the facility: who may sign in, as which VO member, and why not.

Today this holds the VO admission rule and the denial that explains it; the
demo login uses both. IAMAuthenticator (OIDC against the experiment's IAM)
joins them here with the "IAM/VO login" issue.
"""

from .denial import LoginDenied
from .vo import VOAdmission, admit_by_vo, vo_of, vos_of

__all__ = ["LoginDenied", "VOAdmission", "admit_by_vo", "vo_of", "vos_of"]
