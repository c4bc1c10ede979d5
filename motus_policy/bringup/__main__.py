import sys

from motus_policy.bringup.runner import main

sys.exit(main())
