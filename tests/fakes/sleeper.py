"""A stand-in node process for runner tests: prints READY, writes its pid, sleeps until SIGINT."""

from __future__ import annotations

import os
import sys
import time

if __name__ == "__main__":
    pid_file = os.environ["SLEEPER_PID_FILE"]
    with open(pid_file, "w") as f:
        f.write(str(os.getpid()))
    print("READY", flush=True)
    try:
        while True:
            time.sleep(0.1)
    except KeyboardInterrupt:
        sys.exit(0)
