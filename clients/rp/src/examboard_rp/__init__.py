"""examboard_rp: the relying-party kit for services that trust the exam-board identity provider.

The core (this package) needs only joserfc; ``examboard_rp.flask`` adds Flask decorators.
"""

from .errors import (ConfigurationError, InsufficientProfile, InvalidToken, LogoutTokenError,
                     ProviderUnavailable, RPError)
from .jwks import JWKSCache
from .logout import (BACKCHANNEL_LOGOUT_EVENT, LogoutRequest, LogoutTokenValidator, MemoryReplayCache,
                     RedisReplayCache, logout_response)
from .resource import ResourceServer, bearer_token
from .tokens import DEFAULT_ALGORITHMS, AccessToken, AccessTokenValidator

__all__ = [
    "AccessToken", "AccessTokenValidator", "BACKCHANNEL_LOGOUT_EVENT", "ConfigurationError",
    "DEFAULT_ALGORITHMS", "InsufficientProfile", "InvalidToken", "JWKSCache", "LogoutRequest",
    "LogoutTokenError", "LogoutTokenValidator", "MemoryReplayCache", "ProviderUnavailable", "RPError",
    "RedisReplayCache", "ResourceServer", "bearer_token", "logout_response",
]
__version__ = "0.1.0"
