"""The edge controller: decides a chute for every parcel before its deadline."""

# The one place the version is written: setup.py reads it from here, `sortline --version` prints it.
__version__ = "0.3.0"
