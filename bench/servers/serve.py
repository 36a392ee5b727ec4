"""Start uvicorn (its command line, unchanged) with the open-files limit raised to the hard limit.

Usage: ``python serve.py APP --host 127.0.0.1 --port PORT --ws websockets-sansio ...``
"""

from __future__ import annotations

import resource
import sys


def raise_open_files_limit() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = 1 << 20 if hard == resource.RLIM_INFINITY else hard
    if soft != resource.RLIM_INFINITY and soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))


if __name__ == "__main__":
    raise_open_files_limit()
    from uvicorn.main import main

    sys.argv[0] = "uvicorn"
    main()
