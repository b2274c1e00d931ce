"""The line screen: a local web page beside the sorter, served by the controller itself."""
from .server import Screen, start_screen
from .settings import ScreenSettings, TokenFileError, screen_settings

__all__ = ["Screen", "ScreenSettings", "TokenFileError", "screen_settings", "start_screen"]
