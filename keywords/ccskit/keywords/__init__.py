"""The keyword classes of the ``CCS`` library, one per area, each given the shared context.

Adding a keyword class (say ``ModelKeywords`` in ``ccskit/keywords/model.py``):

1. Write a plain class whose ``__init__`` takes the :class:`ccskit.context.KitContext` and keeps
   it as ``self.ctx``; decorate each keyword method with ``robot.api.deco.keyword``. Private
   state of the area stays on the class; anything another area owns is reached through
   ``self.ctx`` (never through another keyword class, Robot's library instances or the process
   environment). Shared state a new area needs goes onto ``KitContext`` as a field.
2. Append the class to :data:`KEYWORD_CLASSES` below. Keyword names must stay unique across
   classes (``tests/kit/test_facade.py`` fails on a clash).
3. Suites get the keywords through the one ``Library  ../keywords/CCS.py`` import of the
   resources; no resource imports a second kit library.
"""

from __future__ import annotations

from .api import ApiKeywords
from .database import DatabaseKeywords
from .devices import DeviceKeywords
from .distributed import DistributedKeywords
from .faults import FaultKeywords
from .hostile.bystander import BystanderKeywords
from .hostile.raw import RawConnectionKeywords
from .hostile.rest import RestInputKeywords
from .hostile.stored import StoredStateKeywords
from .hostile.tokens import HostileTokenKeywords
from .inflight import InFlightKeywords
from .load import LoadKeywords
from .model import ModelKeywords
from .pabot import PabotServerKeywords
from .recovery import RecoveryKeywords
from .server import ServerKeywords

KEYWORD_CLASSES: list[type] = [
    ServerKeywords,
    PabotServerKeywords,
    ApiKeywords,
    DeviceKeywords,
    DatabaseKeywords,
    FaultKeywords,
    RecoveryKeywords,
    InFlightKeywords,
    LoadKeywords,
    DistributedKeywords,
    RawConnectionKeywords,
    RestInputKeywords,
    HostileTokenKeywords,
    BystanderKeywords,
    StoredStateKeywords,
    ModelKeywords,
]
