"""examboard_rp: the relying-party kit for services that trust the exam-board identity provider.

The core (this package) needs only joserfc; ``examboard_rp.flask`` adds Flask decorators.
"""

from .dpop import ProofVerifier
from .errors import (ConfigurationError, InsufficientProfile, InvalidDPoPProof, InvalidToken, LogoutTokenError,
                     ProviderUnavailable, RPError)
from .jwks import JWKSCache
from .logout import (BACKCHANNEL_LOGOUT_EVENT, LogoutRequest, LogoutTokenValidator, MemoryReplayCache,
                     RedisReplayCache, logout_response)
from .resource import ResourceServer, bearer_token, presented_token
from .tokens import DEFAULT_ALGORITHMS, AccessToken, AccessTokenValidator

__all__ = [
    "AccessToken", "AccessTokenValidator", "BACKCHANNEL_LOGOUT_EVENT", "ConfigurationError",
    "DEFAULT_ALGORITHMS", "InsufficientProfile", "InvalidDPoPProof", "InvalidToken", "JWKSCache", "LogoutRequest",
    "LogoutTokenError", "LogoutTokenValidator", "MemoryReplayCache", "ProviderUnavailable", "RPError",
    "ProofVerifier", "RedisReplayCache", "ResourceServer", "bearer_token", "logout_response", "presented_token",
]
__version__ = "0.1.0"
