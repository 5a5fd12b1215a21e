"""One receiver process of the overhead measurement: ``python -m ccskit.distributed.receiver
KIND SHARE_FILE EXPECTED TIMEOUT_S`` prints ``READY n`` once connected, then its figures as JSON.

For ``kit`` Locust is imported before anything else, as the ``locust`` command does, so gevent
patches the standard library before ``ssl`` and friends are imported (patching later recurses).
"""

import sys

if __name__ == "__main__" and sys.argv[1:2] == ["kit"]:
    import locust  # noqa: F401
elif __name__ == "__main__" and sys.argv[1:2] == ["kit-unpatched"]:
    # the same receive path without gevent's patching: what the patching itself costs
    import os

    os.environ["LOCUST_SKIP_MONKEY_PATCH"] = "1"

import json
from pathlib import Path

from ccskit.distributed.overhead import RECEIVERS
from ccskit.distributed.plan import Share
from ccskit.load import raise_fd_limit


def main(argv: list[str]) -> int:
    kind, share_file, expected, timeout_s = argv[0], argv[1], int(argv[2]), float(argv[3])
    raise_fd_limit()
    share = Share.from_dict(json.loads(Path(share_file).read_text()))
    print(json.dumps({**RECEIVERS[kind](share, expected, timeout_s), "kind": kind}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
