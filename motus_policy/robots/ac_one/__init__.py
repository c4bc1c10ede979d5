"""AC-One: dual ARX X5 arms on the vendor's ROS 2 driver.

The RobotStatus <-> JointState relay core is :mod:`motus_policy.robots.ac_one.relay`.
"""
