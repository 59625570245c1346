"""Repository root on sys.path, so tests import ``core`` and ``pages`` from the checkout."""
