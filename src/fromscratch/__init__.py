"""fromscratch: small shared utilities for the numbered recipes in recipes/.

Each module is about one thing; recipes import them, they never import recipes.
"""

__version__ = "0.1.0"
