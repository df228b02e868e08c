"""Run ``python -m moderation ...`` under cProfile in every thread, and write one stats file.

``python -m cProfile`` sees only the main thread, and a batch does its database work in
worker threads (``asyncio.to_thread``). Here each new thread starts a profiler of its own,
and all of them are merged at exit.

    python bench/profiled.py OUT.prof --json        # arguments after OUT go to `moderate`
"""

from __future__ import annotations

import atexit
import cProfile
import pstats
import runpy
import sys
import threading

PROFILES: list[cProfile.Profile] = []


def _start_in_thread(*_: object) -> None:
    # Called as the thread's profile function on its first event: swap in a real profiler.
    sys.setprofile(None)
    profile = cProfile.Profile()
    PROFILES.append(profile)
    profile.enable()


def _dump(path: str) -> None:
    main = PROFILES[0]
    main.disable()
    stats = pstats.Stats(main)
    for other in PROFILES[1:]:
        # Threads still alive keep their profiler on; what they recorded so far is merged.
        other.create_stats()
        stats.add(other)
    stats.dump_stats(path)


def main() -> None:
    out = sys.argv[1]
    sys.argv = ["moderate", *sys.argv[2:]]
    threading.setprofile(_start_in_thread)
    profile = cProfile.Profile()
    PROFILES.append(profile)
    atexit.register(_dump, out)
    profile.enable()
    runpy.run_module("moderation", run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
