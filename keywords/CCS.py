"""``CCS``: the one Robot Framework library of the kit (import it once, from a resource).

*** Settings ***
Library    ../keywords/CCS.py
"""

from __future__ import annotations

from ccskit.context import KitContext
from ccskit.healing import NothingHealed
from ccskit.keywords import KEYWORD_CLASSES
from robotlibcore import DynamicCore

__version__ = "1.0"


class CCS(DynamicCore):
    """Keywords for testing a CCS server: the server under test, REST fixtures, device clients
    over real WebSockets, SQL checks, fault injection, live traffic, load and hostile input.

    = Areas =

    One keyword class per area, all sharing one context (the server under test, the fixture
    names, the event loop, the device clients, the fault kit, the database link, the metrics):

    | *Area*             | *Keywords, for example*                                        |
    | Server             | `Start Or Attach Server`, `Start Reference Node`                |
    | REST and fixtures  | `Create User`, `Create Device`, `Create Conversation`           |
    | Devices            | `Connect Device`, `Send Message`, `Wait For Frame`              |
    | Database           | `Insert Message As Another Program`, `Use Database`             |
    | Faults             | `Start Private PostgreSQL`, `Kill PostgreSQL`, `Cut Proxy`       |
    | Recovery           | `Start Live Traffic`, `Live Traffic Should Be Consistent`       |
    | Load               | `Create Load Fleet`, `Send Load`, `Check Load Consistency`      |
    | Distributed load   | `Start Distributed Load`, `Distributed Load Should Have Lost Nothing` |
    | Hostile input      | `Open Raw Connection`, `Hostile Token`, `Start Bystander`       |

    = Fixture names =

    Tests name what they create (``alice``, ``alice-phone``, ``team-room``); the server sees
    ids unique per run and pabot process. Every keyword taking a fixture accepts its name or
    its real id; an unknown name fails with the list of known names.

    = Nothing had to heal =

    A test that injects no fault (no ``fault`` or ``stress`` tag) fails when the server under test
    repaired lost deliveries during it (``ccs_gaps_repaired_total`` grew): the repair sweep is a
    safety net, and a test it rescued would otherwise pass on a broken delivery path.

    = Timeouts =

    Every wait is multiplied by ``CCS_TIMEOUT_SCALE`` (slow machines). Failure messages say
    what was expected, what arrived, and the device's last frames and close code.
    """

    ROBOT_LIBRARY_SCOPE = "GLOBAL"
    ROBOT_LIBRARY_VERSION = __version__

    def __init__(self) -> None:
        self.ctx = KitContext()
        self.ROBOT_LIBRARY_LISTENER = NothingHealed(self.ctx)
        super().__init__([keyword_class(self.ctx) for keyword_class in KEYWORD_CLASSES])
