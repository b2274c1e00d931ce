"""Characters the text model can print; index 0 is the CTC blank."""
CHARSET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ-*.:& "
BLANK = 0


def encode(text: str) -> list[int]:
    return [CHARSET.index(ch) + 1 for ch in text]


def keep_known(text: str) -> str:
    """`text` reduced to what the model can print, as training targets are."""
    kept = "".join(ch for ch in text.upper() if ch in CHARSET)
    return " ".join(kept.split())
