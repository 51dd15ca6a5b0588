"""``python -m webid_provider``: the ``webid-provider`` command without the console script.

Security: see :mod:`webid_provider._cli`; this module only forwards to it.
"""

from __future__ import annotations

import sys

from webid_provider._cli import main

if __name__ == "__main__":
    sys.exit(main())
