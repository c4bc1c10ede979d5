"""Service types of ROS 2 ``composition_interfaces``, as names only (test-only stand-in).

Using one fails loudly: this project starts no composable nodes, and a launch file that tried
would need the real message package of a ROS 2 installation.
"""


class _Unavailable:
    def __init__(self, *args, **kwargs):
        raise RuntimeError(
            f"{type(self).__qualname__}: composition_interfaces is a test-only stand-in here "
            "(no composable nodes); install ROS 2's composition_interfaces to load components"
        )


class LoadNode:
    """``composition_interfaces/srv/LoadNode`` (stand-in: constructing a request raises)."""

    class Request(_Unavailable):
        pass

    class Response(_Unavailable):
        pass


class UnloadNode:
    """``composition_interfaces/srv/UnloadNode`` (stand-in: constructing a request raises)."""

    class Request(_Unavailable):
        pass

    class Response(_Unavailable):
        pass


class ListNodes:
    """``composition_interfaces/srv/ListNodes`` (stand-in: constructing a request raises)."""

    class Request(_Unavailable):
        pass

    class Response(_Unavailable):
        pass
